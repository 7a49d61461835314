"""The pages in headless Chromium against a running app (Runtime), fed directly through the edges.

Checks the issue's done-when list: the live map renders every vehicle (count read from the page's state), a
toast appears when an alert fires, the alert centre zooms to the evidence, replay animates a track, every
request goes to the local server, the exported HTML renders with networking disabled. Screenshots land in
artifacts/ for people to look at.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.dashboard import seed
from tests.dashboard.conftest import LOCAL_HOSTS
from tracker.edges.bus import StreamNames
from tracker.episode import Episode

pytestmark = pytest.mark.browser
N = 50


@pytest.fixture(scope="module")
def world(runtime, db, rclient):  # noqa: ANN001, ANN201
    fleet = seed.vehicles(N)
    seed.save_fleet(db, fleet)
    names = StreamNames(runtime.settings.bus.prefix, runtime.settings.bus.shards)
    now = int(time.time() * 1000)
    seed.publish(rclient, names, seed.live_states(fleet, now, alarm={"V00012": ["suspected_dumping"]}))
    t0 = now - 40 * 60_000
    for i in (2, 7, 12):
        seed.write_fixes(db, seed.track_rows(fleet[i].id, t0, 30, seed.position(i, N), heading=i * 30))
    seed.save_permit(db, seed.permit(["V00002", "V00007"]))
    e = Episode.new("suspected_dumping", "V00012", t0 + 20 * 60_000, severity="suspected",
                    lon=seed.position(12, N)[0], lat=seed.position(12, N)[1],
                    evidence={"stop_s": 420, "min_stop_s": 300, "permit_id": "P-2024-001"})
    seed.inject_alert(db, rclient, names, e)
    return {"fleet": fleet, "names": names, "now": now, "t0": t0, "episode": e}


def shot(page, artifacts_dir: Path, name: str) -> Path:  # noqa: ANN001
    path = artifacts_dir / f"dashboard_{name}.png"
    page.screenshot(path=str(path))
    return path


def drawn_variety(png: bytes, box: tuple[int, int, int, int]) -> float:
    """Std-dev of pixel values in a region: ~0 for a blank canvas, large when a map is drawn."""
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png), format="png")
    x0, y0, x1, y1 = box
    return float(np.asarray(img)[y0:y1, x0:x1, :3].std())


def test_live_map_renders_every_vehicle_and_opens_its_panel(runtime, world, browser, artifacts_dir):  # noqa: ANN001
    page = browser.page()
    page.goto(f"{runtime.base_url}/")
    page.wait_for_function(f"window.fleetwatch.rendered === {N} && window.fleetwatch.roads && "
                           "window.fleetwatch.summary", timeout=30_000)
    assert page.evaluate("window.fleetwatch.store.ids.length") == N
    assert page.evaluate("window.fleetwatch.summary.total") == N
    assert page.evaluate("window.fleetwatch.summary.counts.muck_truck.alarm") == 1
    page.wait_for_timeout(1200)
    png = page.screenshot()
    (artifacts_dir / "dashboard_live_map.png").write_bytes(png)
    assert drawn_variety(png, (320, 60, 1500, 880)) > 0.02
    # click the vehicle in alarm where deck.gl draws it → the vehicle panel
    x, y = page.evaluate("""() => { const s = window.fleetwatch.store, i = s.index.get('V00012');
        const p = window.fwDeck.getViewports()[0].project([s.lon[i], s.lat[i]]);
        const r = document.getElementById('map').getBoundingClientRect(); return [r.left + p[0], r.top + p[1]]; }""")
    page.mouse.click(x, y)
    page.wait_for_function("window.fleetwatch.panel && document.querySelector('#panel.open .plate')", timeout=45_000)
    panel = page.inner_text("#panel")
    assert "粤B10012" in panel and "疑似偷倒" in panel
    assert page.evaluate("window.fleetwatch.panel.recent_alerts.length") == 1
    page.check("#toggle-density")
    page.wait_for_function("window.fleetwatch.densityCells > 0", timeout=10_000)
    page.wait_for_timeout(800)
    shot(page, artifacts_dir, "live_map_panel_density")
    page.close()


def test_toast_appears_when_an_alert_fires(runtime, world, browser, db, rclient, artifacts_dir):  # noqa: ANN001
    page = browser.page()
    page.goto(f"{runtime.base_url}/")
    page.wait_for_function("window.fleetwatch.alertsReady === true && window.fleetwatch.rendered > 0", timeout=30_000)
    assert page.locator(".toast").count() == 0
    e = Episode.new("unsealed_transport", "V00007", int(time.time() * 1000), lon=seed.position(7, N)[0],
                    lat=seed.position(7, N)[1], evidence={"min_speed_kmh": 5, "min_duration_s": 30})
    seed.inject_alert(db, rclient, world["names"], e)
    page.wait_for_selector(".toast.opened", timeout=10_000)
    text = page.inner_text(".toast.opened")
    assert "未密闭运输" in text and "粤B10007" in text
    assert page.evaluate("window.fleetwatch.toasts") == 1
    page.wait_for_timeout(400)
    shot(page, artifacts_dir, "toast")
    page.close()


def test_alert_centre_filters_and_zooms_to_evidence(runtime, world, browser, artifacts_dir):  # noqa: ANN001
    page = browser.page()
    e = world["episode"]
    page.goto(f"{runtime.base_url}/alerts")
    page.wait_for_function("window.fleetwatch.alerts && window.fleetwatch.alerts.length >= 1 && window.fleetwatch.roads",
                           timeout=30_000)
    page.select_option("select[name=kind]", "suspected_dumping")
    page.click("#filters button[type=submit]")
    page.wait_for_function("window.fleetwatch.alerts.every(a => a.kind === 'suspected_dumping')", timeout=10_000)
    assert page.locator("#rows tr").count() == 1
    page.click(f"#rows tr[data-id='{e.id}']")
    page.wait_for_function(f"window.fleetwatch.evidence && window.fleetwatch.evidence.id === '{e.id}' && "
                           "window.fleetwatch.zoomedTo", timeout=10_000)
    zoom = page.evaluate("window.fleetwatch.zoomedTo")
    assert zoom["zoom"] > 13
    track = page.evaluate("window.fleetwatch.evidence.track")
    assert abs(zoom["latitude"] - (min(track["lat"]) + max(track["lat"])) / 2) < 0.01
    assert {"track", "episode", "alert-point"} <= set(page.evaluate("window.fleetwatch.evidenceLayers"))
    assert "min_stop_s" in page.inner_text("#detail")
    page.wait_for_timeout(1200)
    shot(page, artifacts_dir, "alert_centre")
    page.close()


def test_replay_animates_a_track(runtime, world, browser, artifacts_dir):  # noqa: ANN001
    page = browser.page()
    page.goto(f"{runtime.base_url}/replay#v=V00002,V00012&t={world['t0']}")
    page.wait_for_function("window.fleetwatch.replay && window.fleetwatch.replay.tracks === 2", timeout=30_000)
    assert page.evaluate("window.fleetwatch.replay.fixes") == 2 * 180
    page.select_option("#speed", "60")
    t_before = page.evaluate("window.fleetwatch.replay.t")
    heads_before = page.evaluate("window.fleetwatch.replay.heads")
    page.click("#play")
    page.wait_for_timeout(2500)
    r = page.evaluate("window.fleetwatch.replay")
    assert r["t"] > t_before + 30  # ≥ 30 simulated seconds in 2.5 s at 60×
    assert r["heads"] != heads_before and len(r["heads"]) == 2
    page.wait_for_timeout(1500)
    shot(page, artifacts_dir, "replay")
    if page.evaluate("window.fleetwatch.replay.playing"):
        page.click("#play")
        page.wait_for_function("window.fleetwatch.replay.playing === false", timeout=30_000)
    page.close()


def test_statistics_and_language_switch(runtime, world, browser, artifacts_dir):  # noqa: ANN001
    page = browser.page()
    page.goto(f"{runtime.base_url}/stats")
    page.wait_for_function("window.fleetwatch.statsRendered > 0", timeout=30_000)
    assert page.locator("#per-day rect").count() >= 1
    assert page.locator("#ranking rect").count() == len(seed.COMPANIES)
    shot(page, artifacts_dir, "statistics")
    page.click("#lang")
    assert page.inner_text("nav a.active") == "Statistics"
    assert "Suspected dumping" in page.inner_text("#per-day-legend")
    page.click("#lang")  # back to Chinese for the other pages
    page.close()


def test_every_request_was_local(browser, world):  # noqa: ANN001
    assert browser.requests, "the browser made no requests at all?"
    assert browser.hosts <= LOCAL_HOSTS, f"non-local requests: {browser.hosts - LOCAL_HOSTS}"
    assert not browser.errors, browser.errors


@pytest.mark.parametrize("view", ["live", "alert", "replay"])
def test_exported_html_renders_offline(runtime, world, browser, artifacts_dir, view):  # noqa: ANN001
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(world["t0"] / 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(world["t0"] / 1000 + 3600))
    url = {"live": "/api/export/live.html", "alert": f"/api/export/alert/{world['episode'].id}.html",
           "replay": f"/api/export/replay.html?vehicle=V00002&vehicle=V00012&since={since}&until={until}"}[view]
    html = httpx.get(runtime.base_url + url, timeout=60).text
    path = artifacts_dir / f"dashboard_export_{view}.html"
    path.write_text(html, encoding="utf-8")
    ctx = browser.browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    attempted: list[str] = []
    def gate(route) -> None:  # noqa: ANN001
        attempted.append(route.request.url)
        route.continue_() if route.request.url == path.as_uri() else route.abort()

    ctx.route("**/*", gate)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())  # the file itself is the only thing allowed to load
    page.wait_for_function("window.fwExport && window.fwExport.rendered > 0", timeout=60_000)
    page.wait_for_timeout(1500)
    png = page.screenshot(path=str(artifacts_dir / f"dashboard_export_{view}.png"))
    ctx.close()
    assert attempted == [path.as_uri()], f"export tried to load: {attempted[1:]}"
    assert not errors, errors
    assert drawn_variety(png, (0, 150, 1280, 760)) > 0.02
