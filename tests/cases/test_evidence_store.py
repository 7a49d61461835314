"""The evidence package from stored data: the exact fence versions the rule recorded (from geofences'
versioned store, even after the fence was edited) and the rule's own thinned track when the raw
positions are gone."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import shapely
from shapely.geometry import shape

from tests.cases.conftest import IN_D1, T_ALERT, cases_config, seed_city
from tracker.cases.dispatch import Dispatcher
from tracker.cases.model import Actor
from tracker.edges import cases_store
from tracker.edges.history import upsert_alerts
from tracker.episode import Episode


def test_package_draws_the_recorded_fence_versions_and_falls_back_to_the_rule_track(pg_conn, cheap_argon2,
                                                                                   artifacts_dir):
    from geofences.model import Fence
    from geofences.store import save_fences

    seed_city(pg_conn)
    lon, lat = IN_D1
    route = Fence(id="R1", name="approved route", kind="route", shape="corridor", half_width_m=50,
                  geometry=shapely.LineString([(lon - 0.01, lat), (lon + 0.01, lat)]))
    site = Fence(id="S1", name="disposal", kind="disposal_site", shape="circle", radius_m=200,
                 geometry=shapely.Point(lon + 0.01, lat))
    save_fences(pg_conn, [route, site], actor="clerk")
    wider = Fence(id="R1", name="approved route", kind="route", shape="corridor", half_width_m=500,
                  geometry=route.geometry)
    save_fences(pg_conn, [wider], actor="clerk")  # R1 v2, after the alert: must not be drawn

    t0 = int(T_ALERT.timestamp() * 1000)
    n = 30
    fixes = {"ts_ms": [t0 + i * 10_000 for i in range(n)], "lon": [lon - 0.003 + i * 0.0002 for i in range(n)],
             "lat": [lat + 0.002] * n, "speed_kmh": [30.0] * n, "cover_closed": [1] * 10 + [0] * 20}
    ev = {"rule": "route_deviation", "thresholds": {"corridor_m": 50, "min_duration_s": 60},
          "doc": {"id": "P1", "type": "permit", "version": 3,
                  "route": {"id": "R1", "kind": "route", "version": 1},
                  "dest": {"id": "S1", "kind": "disposal_site", "version": 1}},
          "fixes": fixes}
    ep = Episode.new("route_deviation", "VA1", t0, end_ts_ms=t0 + 200_000, status="closed", lon=lon, lat=lat + 0.002,
                     evidence=ev)
    with pg_conn.transaction():
        upsert_alerts(pg_conn, [ep])
    cfg = cases_config()
    case, _ = cases_store.create_from_alert(pg_conn, ep.id, Actor.system(), Dispatcher(cfg.routing), cfg.sla)

    pkg = cases_store.evidence_package(pg_conn, case.id, minutes=2)
    zf = zipfile.ZipFile(io.BytesIO(pkg.to_zip()))
    body = json.loads(zf.read("case.json"))
    assert body["window"]["fixes"] == n  # no raw positions stored: the rule's own evidence track
    assert body["references"]["doc"]["route"] == {"id": "R1", "kind": "route", "version": 1}
    assert body["rule"] == {"kind": "route_deviation", "severity": "confirmed", "name": "route_deviation",
                            "thresholds": {"corridor_m": 50, "min_duration_s": 60}}
    covers = [(r["value"], r["fixes"]) for r in body["sensor_timeline"] if r["sensor"] == "cover_closed"]
    assert covers == [(True, 10), (False, 20)]
    gj = json.loads(zf.read("track.geojson"))
    drawn = {f["properties"]["name"]: f for f in gj["features"] if f["properties"]["role"] in ("route", "disposal_site")}
    assert set(drawn) == {"R1 v1", "S1 v1"}
    corridor = shape(drawn["R1 v1"]["geometry"])
    # the 50 m corridor of version 1 (≈ 0.02° × 100 m), not the 500 m one of version 2
    width_deg = corridor.area / 0.02
    assert 0.0008 < width_deg < 0.0011, width_deg
    assert drawn["R1 v1"]["properties"]["version"] == 1
    assert zf.read("map.png")[:4] == b"\x89PNG"
    (artifacts_dir / "case-evidence-fences.png").write_bytes(zf.read("map.png"))
    assert pkg.case_json["window"]["from"] == (T_ALERT - timedelta(minutes=2)).isoformat()
