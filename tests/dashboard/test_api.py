"""REST API against a running app: vehicles, live state, alerts filters, evidence, permits, stats, exports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.export import external_urls
from tests.dashboard import seed
from tracker.edges.bus import StreamNames
from tracker.episode import Episode

N = 40


@pytest.fixture(scope="module")
def world(runtime, db, rclient):  # noqa: ANN001, ANN201
    fleet = seed.vehicles(N)
    seed.save_fleet(db, fleet)
    names = StreamNames(runtime.settings.bus.prefix, runtime.settings.bus.shards)
    now = int(time.time() * 1000)
    seed.publish(rclient, names, seed.live_states(fleet, now, alarm={"V00002": ["speeding"]}))
    t0 = now - 20 * 60_000
    seed.write_fixes(db, seed.track_rows("V00002", t0, 15, seed.position(2, N)))
    seed.save_permit(db, seed.permit(["V00002", "V00007"]))
    episodes = [
        Episode.new("speeding", "V00002", t0 + 5 * 60_000, lon=seed.position(2, N)[0], lat=seed.position(2, N)[1],
                    evidence={"limit_kmh": 40, "permit_id": "P-2024-001"}),
        Episode.new("unsealed_transport", "V00007", t0 + 60_000, end_ts_ms=t0 + 4 * 60_000, status="closed",
                    severity="confirmed", lon=114.05, lat=22.54),
        Episode.new("suspected_dumping", "V00012", t0 - 3 * 86_400_000, severity="suspected", lon=114.06, lat=22.53,
                    end_ts_ms=t0 - 3 * 86_400_000 + 600_000, status="closed"),
    ]
    for e in episodes:
        seed.inject_alert(db, rclient, names, e)
    return {"fleet": fleet, "names": names, "now": now, "t0": t0, "episodes": episodes}


def test_vehicles_and_live(api, world):  # noqa: ANN001
    vs = api.get("/api/vehicles").json()
    assert len(vs) == N and vs[0]["plate"].startswith("粤B")
    assert {v["kind"] for v in api.get("/api/vehicles", params={"kind": "muck_truck"}).json()} == {"muck_truck"}
    live = api.get("/api/live").json()
    assert len(live["vehicles"]) == N
    by_id = {v["id"]: v for v in live["vehicles"]}
    assert by_id["V00002"]["alarm_kinds"] == ["speeding"]
    assert by_id["V00003"]["motion"] == "stopped" and by_id["V00004"]["motion"] == "moving"
    assert by_id["V00002"]["cover_closed"] is True and by_id["V00000"]["cover_closed"] is None


def test_vehicle_panel(api, world):  # noqa: ANN001
    d = api.get("/api/vehicles/V00002").json()
    assert d["vehicle"]["company"] == seed.COMPANIES[2]
    assert d["live"]["load"] == 3
    assert [p["id"] for p in d["permits"]] == ["P-2024-001"] and d["permits"][0]["valid_today"]
    assert [a["kind"] for a in d["recent_alerts"]] == ["speeding"]
    assert api.get("/api/vehicles/NOPE").status_code == 404


def test_alert_filters(api, world):  # noqa: ANN001
    def ids(**params):  # noqa: ANN003, ANN202
        body = api.get("/api/alerts", params=params).json()
        return {a["vehicle_id"] for a in body["alerts"]}

    assert ids() == {"V00002", "V00007", "V00012"}
    assert ids(kind="speeding") == {"V00002"}
    assert ids(kind="speeding,unsealed_transport") == {"V00002", "V00007"}
    assert ids(status="open") == {"V00002"}
    assert ids(severity="suspected") == {"V00012"}
    assert ids(vehicle_kind="muck_truck") == {"V00002", "V00007", "V00012"}
    assert ids(vehicle_kind="sweeper") == set()
    assert ids(company=seed.COMPANIES[1]) == {"V00007"}
    assert ids(district=seed.DISTRICTS[0]) == {"V00002", "V00012"}
    day_ago = (datetime.now(tz=UTC) - timedelta(days=1)).isoformat()
    assert ids(since=day_ago) == {"V00002", "V00007"}  # the 3-day-old closed one is out
    assert ids(until=day_ago) == {"V00012"}
    first = api.get("/api/alerts", params={"limit": 1}).json()
    assert first["total"] == 3 and len(first["alerts"]) == 1
    assert api.get("/api/alerts", params={"status": "bogus"}).status_code == 422


def test_alert_evidence(api, world):  # noqa: ANN001
    e = world["episodes"][0]
    d = api.get(f"/api/alerts/{e.id}").json()
    assert d["kind"] == "speeding" and d["evidence"]["limit_kmh"] == 40
    assert d["permit"]["id"] == "P-2024-001"
    track = d["track"]
    assert track["vehicle_id"] == "V00002"
    # the track starts two minutes before the episode (the vehicle had no fixes earlier than t0)
    assert track["ts_ms"][0] == e.start_ts_ms - 120_000
    assert len(track["lon"]) == len(track["ts_ms"]) == len(track["cover_closed"])
    assert None in d["track"]["device_on"]  # not reported stays null


def test_replay_density_stats(api, world):  # noqa: ANN001
    t0 = world["t0"]
    since = datetime.fromtimestamp(t0 / 1000, tz=UTC)
    r = api.get("/api/replay", params={"vehicle": "V00002", "since": since.isoformat(),
                                       "until": (since + timedelta(minutes=30)).isoformat()}).json()
    assert len(r["tracks"]) == 1 and len(r["tracks"][0]["ts_ms"]) == 90
    assert [a["kind"] for a in r["alerts"]] == ["speeding"]
    assert api.get("/api/replay", params={"vehicle": "V00002", "since": since.isoformat(),
                                          "until": (since - timedelta(minutes=1)).isoformat()}).status_code == 422
    dens = api.get("/api/density", params={"res": 9, "minutes": 60}).json()
    assert sum(c["fixes"] for c in dens["cells"]) == 90
    import h3

    assert all(h3.is_valid_cell(c["h3"]) and h3.get_resolution(c["h3"]) == 9 for c in dens["cells"])
    st = api.get("/api/stats", params={"days": 7}).json()
    assert sum(x["count"] for x in st["alerts_per_day"]) == 3
    worst = st["companies"][0]
    assert worst["alerts"] >= 1 and worst["alerts_per_vehicle"] > 0


def test_permits_and_versions(api, world, db):  # noqa: ANN001
    assert [p["id"] for p in api.get("/api/permits").json()] == ["P-2024-001"]
    p2 = seed.permit(["V00002", "V00007", "V00017"])
    seed.save_permit(db, p2)
    versions = api.get("/api/permits/P-2024-001/versions").json()
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["vehicles"][-1] == "V00017"
    assert api.get("/api/trips").json()["trips"] == []  # no worker ran here: no trips, none invented


def test_exports_are_self_contained(api, world):  # noqa: ANN001
    for url in ("/api/export/live.html", f"/api/export/alert/{world['episodes'][0].id}.html"):
        r = api.get(url)
        assert r.status_code == 200, r.text[:300]
        page = r.text
        assert external_urls(page) == []
        assert "createDeck" in page and "sourceMappingURL" not in page
        assert "mapbox-gl.css" not in page.split("<script>")[0]


def test_external_url_check_catches_leaks():
    assert external_urls('<link rel="stylesheet" href="https://unpkg.com/x.css">')
    assert external_urls('<script src="//cdn.example.com/a.js"></script>')
    assert external_urls("<style>@import 'https://fonts.example.com/x.css';</style>")
    assert external_urls('<div style="background:url(https://tiles.example.com/1.png)"></div>')
    assert not external_urls('<script>var u = "https://api.mapbox.com";</script>')


def test_openapi_and_docs_are_local(api):  # noqa: ANN001
    spec = api.get("/openapi.json").json()
    for path in ("/api/alerts", "/api/fences", "/api/permits", "/api/trips", "/api/live", "/api/replay"):
        assert path in spec["paths"]
    docs = api.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert api.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_fences_in_force_and_versions(api, world, db):  # noqa: ANN001
    from shapely.geometry import LineString, Point, Polygon

    from geofences.model import Fence
    from geofences.store import save_fences

    site = Fence(id="site-1", name="福田工地", kind="construction_site", shape="polygon",
                 geometry=Polygon([(114.01, 22.53), (114.012, 22.53), (114.012, 22.532), (114.01, 22.532)]))
    point = Fence(id="cp-1", name="收集点", kind="collection_point", shape="circle", geometry=Point(114.02, 22.54),
                  radius_m=30)
    route = Fence(id="route-1", name="核准路线", kind="route", shape="corridor",
                  geometry=LineString([(114.0, 22.52), (114.03, 22.54)]), half_width_m=50)
    save_fences(db, [site, point, route], actor="test")
    gj = api.get("/api/fences").json()
    roles = sorted((f["properties"]["id"], f["properties"]["role"]) for f in gj["features"])
    assert roles == [("cp-1", "area"), ("route-1", "area"), ("route-1", "line"), ("site-1", "area")]
    circle = next(f for f in gj["features"] if f["properties"]["id"] == "cp-1")
    assert circle["geometry"]["type"] == "Polygon"  # drawn as the area it covers, built in metres
    assert {f["properties"]["id"] for f in api.get("/api/fences", params={"kind": "route"}).json()["features"]} == {"route-1"}
    moved = Fence(id="site-1", name="福田工地(扩建)", kind="construction_site", shape="polygon",
                  geometry=Polygon([(114.01, 22.53), (114.014, 22.53), (114.014, 22.533), (114.01, 22.533)]))
    save_fences(db, [moved], actor="test")
    versions = api.get("/api/fences/site-1/versions").json()["features"]
    assert [f["properties"]["version"] for f in versions] == [1, 2]
    assert versions[0]["properties"]["recorded_to_ms"] is not None and versions[1]["properties"]["recorded_to_ms"] is None
    assert api.get("/api/fences/nope/versions").status_code == 404
    # the alert's evidence shows the permit's fences as they were
    d = api.get(f"/api/alerts/{world['episodes'][0].id}").json()
    assert {f["properties"]["id"] for f in d["fences"]["features"]} == set()  # saved after the alert started


def test_login_required_and_scope_applied(runtime, api, world, db):  # noqa: ANN001
    import httpx

    from tracker.edges import users

    anon = httpx.Client(base_url=runtime.base_url, timeout=60)
    assert anon.get("/api/health").status_code == 200  # the probe stays public
    for path in ("/api/vehicles", "/api/live", "/api/alerts", "/api/config", "/api/export/live.html"):
        assert anon.get(path).status_code == 401, path
    # an operator of company 1 sees its own vehicles, their live state and alerts, nothing else
    company = seed.COMPANIES[1]
    users.create_user(db, "test", "op1", "operator", password="operator password", companies=[company])
    tok = anon.post("/api/auth/login", json={"username": "op1", "password": "operator password"}).json()["token"]
    op = httpx.Client(base_url=runtime.base_url, timeout=60, headers={"Authorization": f"Bearer {tok}"})
    own = {v.id for v in world["fleet"] if v.company == company}
    assert {v["id"] for v in op.get("/api/vehicles").json()} == own
    assert {v["id"] for v in op.get("/api/live").json()["vehicles"]} == own
    assert {a["vehicle_id"] for a in op.get("/api/alerts").json()["alerts"]} == {"V00007"}
    assert op.get("/api/vehicles/V00002").status_code == 404  # another company's: as if it did not exist
    assert op.get("/api/alerts", params={"company": seed.COMPANIES[2]}).status_code == 403
    assert [c["company"] for c in op.get("/api/stats").json()["companies"]] == [company]
    assert op.get("/api/facets").json()["companies"] == [company]
    assert op.get("/api/permits").json()[0]["vehicles"] == ["V00007"]  # V00002 (company 2) left out


def test_export_spec_reaches_deckgl_as_written(api, world):  # noqa: ANN001
    """pydeck 0.9 rewrites string props into expressions ("meters" → "@@=meters"); deck.gl then cannot
    parse the description and the exported page stays blank."""
    import re

    page = api.get("/api/export/live.html").text
    spec = page[page.index("var spec = ") + 11:page.index("var timeline")]
    assert "@@=@@=" not in spec
    assert re.findall(r'"lineWidthUnits":\s*"([^"]*)"', spec) == ["meters", "pixels"]
    assert '"getPosition":"@@=position"' in spec.replace(" ", "")
