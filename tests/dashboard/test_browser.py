"""The pages in headless Chromium against a running app (Runtime), fed directly through the edges.

Checks the issue's done-when list: the live map renders every vehicle (count read from the page's state), a
toast appears when an alert fires, the alert centre zooms to the evidence, replay animates a track, every
request goes to the local server, the exported HTML renders with networking disabled — and the login: no
page shows anything without one. Screenshots land in artifacts/ for people to look at.

Written to hold on a loaded machine with software WebGL (SwiftShader), where one frame of a map can take
seconds: every wait is on the page's own state (counters the pages keep in `window.fleetwatch`, deck.gl's
"nothing left to draw"), never a fixed sleep, with generous time limits; every page is closed when its test
ends, pass or fail, so no page keeps drawing while the next test runs; pages other than the first live-map
test open in quiet mode (`?static=1`: no interpolated motion or pulsing halos, one redraw per update), the
same page a slow control-room PC falls back to by itself. The tests still fail when the page is wrong: the
conditions are exact, only the time allowed is long.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

from tests.dashboard import seed
from tests.dashboard.conftest import ADMIN, LOCAL_HOSTS, PASSWORD
from tracker.edges.bus import StreamNames
from tracker.episode import Episode

pytestmark = pytest.mark.browser
N = 50
WAIT = 120_000  # ms: the most a page may take to reach a state on a loaded machine
# deck.gl has drawn everything it was given (every canvas of the page, every layer loaded)
SETTLED = """() => { const ds = [window.fwDeck, window.fwBaseDeck, window.fwExport && window.fwExport.deck]
    .filter(Boolean);
  return ds.length > 0 && ds.every((d) => d.isInitialized !== false && !d.needsRedraw({ clearRedrawFlags: false })
    && d.layerManager && d.layerManager.getLayers().every((l) => l.isLoaded)); }"""


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


@pytest.fixture
def page(browser):  # noqa: ANN001, ANN201
    """A page of the logged-in context, closed when the test ends however it ends."""
    p = browser.page()
    try:
        yield p
    finally:
        p.close()


def shot(page, artifacts_dir: Path, name: str) -> bytes:  # noqa: ANN001
    page.wait_for_function(SETTLED, timeout=WAIT)
    png = page.screenshot()
    (artifacts_dir / f"dashboard_{name}.png").write_bytes(png)
    return png


def drawn_variety(png: bytes, box: tuple[int, int, int, int]) -> float:
    """Std-dev of pixel values in a region: ~0 for a blank canvas, large when a map is drawn."""
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png), format="png")
    x0, y0, x1, y1 = box
    return float(np.asarray(img)[y0:y1, x0:x1, :3].std())


def no_dropped_sockets(page) -> None:  # noqa: ANN001
    """The page's websockets stayed up for the whole test (a drop shows '连接已断开' and loses pushes)."""
    closed = page.evaluate("window.fleetwatch.sockets")
    assert closed == [], f"websockets closed during the test: {closed}"


def test_live_map_renders_every_vehicle_and_opens_its_panel(runtime, world, page, artifacts_dir):  # noqa: ANN001
    page.goto(f"{runtime.base_url}/")  # as people open it: animated while frames are fast enough
    page.wait_for_function(f"window.fleetwatch.rendered === {N} && window.fleetwatch.roads && "
                           "window.fleetwatch.summary && window.fleetwatch.baseRenders > 0", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.store.ids.length") == N
    assert page.evaluate("window.fleetwatch.summary.total") == N
    assert page.evaluate("window.fleetwatch.summary.counts.muck_truck.alarm") == 1
    assert page.inner_text("#user").startswith("测试管理员")  # who is logged in, in the header
    png = shot(page, artifacts_dir, "live_map")
    assert drawn_variety(png, (320, 60, 1500, 880)) > 0.02
    page.wait_for_function("window.fleetwatch.frameMs > 0", timeout=WAIT)  # it measured its frames
    # software WebGL (SwiftShader here): the page draws the vehicles itself (static/raster.js); a click on a
    # vehicle where it is drawn opens its panel
    assert page.evaluate("window.fleetwatch.vehicleLayer") == "raster"
    x, y = vehicle_on_screen(page, "V00007")
    page.mouse.click(x, y)
    page.wait_for_function("window.fleetwatch.panel && window.fleetwatch.panel.vehicle.id === 'V00007'", timeout=WAIT)
    assert "粤B10007" in page.inner_text("#panel .plate")
    # find the vehicle in alarm by its plate → the map centres on it and its panel opens
    page.fill("#search", "粤B10012")
    page.dispatch_event("#search", "change")
    page.wait_for_function("window.fleetwatch.panel && document.querySelector('#panel.open .plate')", timeout=WAIT)
    panel = page.inner_text("#panel")
    assert "粤B10012" in panel and "疑似偷倒" in panel
    assert page.evaluate("window.fleetwatch.panel.recent_alerts.length") == 1
    page.check("#toggle-density")
    page.wait_for_function("window.fleetwatch.densityCells > 0", timeout=WAIT)
    shot(page, artifacts_dir, "live_map_panel_density")
    no_dropped_sockets(page)


def vehicle_on_screen(page, vid: str) -> tuple[float, float]:  # noqa: ANN001
    """Where a vehicle's live position is on the page (CSS pixels of the viewport), by deck.gl's projection."""
    xy = page.evaluate("""(vid) => { const s = window.fleetwatch.store, i = s.index.get(vid);
        const [x, y] = window.fwDeck.getViewports()[0].project([s.lon[i], s.lat[i]]);
        const r = window.fwDeck.getCanvas().getBoundingClientRect(); return [r.left + x, r.top + y]; }""", vid)
    return xy[0], xy[1]


def test_live_map_decodes_positions_and_moves_vehicles_on_the_gpu(runtime, world, page, rclient):  # noqa: ANN001
    """With deck.gl's WebGL layer (the page's choice on a real GPU, forced here): every record decoded in place
    where it belongs; an update uploads the vehicles' positions once and the animation frames that follow
    upload nothing (motion is a uniform, static/points.js), ending where the server says each vehicle is —
    drawn there and picked there."""
    page.goto(f"{runtime.base_url}/?animate=1&render=gl")
    page.wait_for_function(f"window.fleetwatch.rendered === {N} && window.fleetwatch.frames >= 1", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.vehicleLayer") == "points"
    fleet = world["fleet"]
    decoded = page.evaluate("""() => { const s = window.fleetwatch.store;
        return s.ids.map((id, i) => [id, s.lon[i], s.lat[i], s.speed[i], s.heading[i], s.inAlarm(i)]); }""")
    want = {v.id: st for v, st in zip(fleet, seed.live_states(fleet, 0, alarm={"V00012": ["x"]}), strict=True)}
    assert len(decoded) == N
    for vid, lon, lat, speed, heading, alarm in decoded:
        st = want[vid]
        assert (round(lon, 6), round(lat, 6)) == (st["lon"], st["lat"]), vid
        assert speed == round(st["speed_kmh"]) and abs(heading - st["heading_deg"]) <= 2 and alarm == (vid == "V00012")
    page.wait_for_function("!window.fleetwatch.animating", timeout=WAIT)
    before = page.evaluate("({ up: window.fleetwatch.uploads, frames: window.fleetwatch.frames })")
    moved = seed.live_states(fleet, int(time.time() * 1000) + 1000, t_s=300.0, alarm={"V00012": ["suspected_dumping"]})
    seed.publish(rclient, world["names"], moved)
    page.wait_for_function(f"window.fleetwatch.frames > {before['frames']} && !window.fleetwatch.animating",
                           timeout=WAIT)
    after = page.evaluate("({ up: window.fleetwatch.uploads, frames: window.fleetwatch.frames, "
                          "drawn: window.fleetwatch.animFrames })")
    updates = after["frames"] - before["frames"]
    assert after["up"] - before["up"] == updates  # one position upload per update …
    assert after["drawn"] > updates  # … however many animation frames were drawn in between
    picked = page.evaluate("""(want) => { const s = window.fleetwatch.store, i = s.index.get('V00012');
        const [x, y] = window.fwDeck.getViewports()[0].project(want);
        const hit = window.fwDeck.pickObject({ x, y, radius: 2, layerIds: ['vehicles'] });
        return hit && [s.ids[hit.index], s.lon[i], s.lat[i]]; }""", [moved[12]["lon"], moved[12]["lat"]])
    assert picked == ["V00012", moved[12]["lon"], moved[12]["lat"]]
    # back where the other tests expect the fleet
    seed.publish(rclient, world["names"], seed.live_states(fleet, int(time.time() * 1000) + 2000,
                                                          alarm={"V00012": ["suspected_dumping"]}))


def _vehicle_pixels(page, artifacts_dir: Path, name: str) -> np.ndarray:  # noqa: ANN001
    """RGB of the screenshot at every vehicle's position (fleet order), after the page drew its last update."""
    import matplotlib.image

    page.wait_for_function(f"window.fleetwatch.rendered === {N} && !window.fleetwatch.animating", timeout=WAIT)
    png = shot(page, artifacts_dir, name)
    img = np.asarray(matplotlib.image.imread(io.BytesIO(png), format="png"))[:, :, :3]
    ids = [f"V{i:05d}" for i in range(N)]
    xy = np.array([vehicle_on_screen(page, vid) for vid in ids])
    return img[np.floor(xy[:, 1]).astype(int), np.floor(xy[:, 0]).astype(int)] * 255


def test_raster_draws_what_webgl_draws_and_follows_updates(runtime, world, browser, rclient, artifacts_dir):  # noqa: ANN001
    """The page's own rasteriser (static/raster.js, chosen for software WebGL) against deck.gl's WebGL layer on
    the same view: every vehicle's dot has the same colour where it is; the background between them is the
    map's; after an update the raster's vehicles are drawn, and picked, where the server says they are."""
    pages = {}
    try:
        for mode in ("gl", "raster"):
            pages[mode] = browser.page()
            pages[mode].goto(f"{runtime.base_url}/?static=1&render={mode}")
        for p in pages.values():
            p.wait_for_function(f"window.fleetwatch.rendered === {N} && window.fleetwatch.baseRenders > 0",
                                timeout=WAIT)
        assert pages["gl"].evaluate("window.fleetwatch.vehicleLayer") == "points"
        assert pages["raster"].evaluate("window.fleetwatch.vehicleLayer") == "raster"
        gl = _vehicle_pixels(pages["gl"], artifacts_dir, "live_map_webgl")
        raster = _vehicle_pixels(pages["raster"], artifacts_dir, "live_map_raster")
        fills = np.array(fill_colours(pages["raster"]))  # each vehicle's fill colour (RGBA), as the page styles it
        solid = fills[:, 3] == 255
        colours = fills[:, :3]
        assert solid.sum() >= N // 2
        assert np.abs(gl - colours)[solid].max() < 40, "the WebGL dots are not the vehicles' colours"  # the yardstick
        assert np.abs(raster - gl).max() <= 24, f"raster and WebGL differ at a vehicle: {np.abs(raster - gl).max()}"
        # a vehicle moved by an update: drawn and picked at its new place, not the old
        fleet = world["fleet"]
        p = pages["raster"]
        old = vehicle_on_screen(p, "V00006")
        frames = p.evaluate("window.fleetwatch.frames")
        moved = seed.live_states(fleet, int(time.time() * 1000) + 1000, t_s=300.0, alarm={"V00012": ["suspected_dumping"]})
        seed.publish(rclient, world["names"], moved)
        p.wait_for_function(f"window.fleetwatch.frames > {frames} && !window.fleetwatch.animating", timeout=WAIT)
        new = vehicle_on_screen(p, "V00006")
        assert np.hypot(new[0] - old[0], new[1] - old[1]) > 12  # it moved on screen
        assert p.evaluate("([x, y]) => window.fwVehicleAt(x - window.fwDeck.getCanvas().getBoundingClientRect().left, "
                          "y - window.fwDeck.getCanvas().getBoundingClientRect().top)", list(new)) == "V00006"
        assert p.evaluate("([x, y]) => window.fwVehicleAt(x - window.fwDeck.getCanvas().getBoundingClientRect().left, "
                          "y - window.fwDeck.getCanvas().getBoundingClientRect().top)", list(old)) != "V00006"
        after = _vehicle_pixels(p, artifacts_dir, "live_map_raster_moved")
        assert solid[6] and np.abs(after[6] - colours[6]).max() < 40  # its dot is where it now is
    finally:
        for p in pages.values():
            p.close()
        seed.publish(rclient, world["names"], seed.live_states(world["fleet"], int(time.time() * 1000) + 2000,
                                                              alarm={"V00012": ["suspected_dumping"]}))


def test_raster_map_moves_the_roads_as_a_picture_until_the_view_settles(runtime, world, page):  # noqa: ANN001
    """With software GL a pan moves the base canvas (roads, fences) by a CSS transform that puts every place
    where the vehicles' view has it, and redraws the base once the view is still."""
    page.goto(f"{runtime.base_url}/?static=1&render=raster")
    page.wait_for_function(f"window.fleetwatch.rendered === {N} && window.fleetwatch.baseRenders > 0", timeout=WAIT)
    page.wait_for_function(SETTLED, timeout=WAIT)
    shifts, renders = page.evaluate("[window.fleetwatch.baseShifts, window.fleetwatch.baseRenders]")
    # pan and zoom a little; two frames later the top canvas shows the new view and the base was moved to it
    misfit = page.evaluate("""async () => {
        const t0 = window.fwDeck.getViewports()[0];
        window.fwJumpTo({ longitude: t0.longitude + 0.003, latitude: t0.latitude - 0.001, zoom: t0.zoom + 0.3,
                          pitch: 0, bearing: 0 });
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const c = document.querySelector('.map-base canvas'), tr = c.style.transform;
        const m = tr.match(/translate\\(([-\\d.e]+)px, ([-\\d.e]+)px\\) scale\\(([-\\d.e]+)\\)/);
        if (!m) return null;  // already redrawn (a very slow machine): nothing to check here
        const b = window.fwBaseDeck.getViewports()[0], t = window.fwDeck.getViewports()[0];
        const out = [];
        for (const p of [[10, 10], [t.width / 2, t.height / 2], [t.width - 10, t.height - 10]]) {
          const L = t.unproject(p), [bx, by] = b.project(L), [tx, ty] = t.project(L);
          out.push(Math.hypot(+m[1] + +m[3] * bx - tx, +m[2] + +m[3] * by - ty));
        }
        return out; }""")
    if misfit is not None:
        assert max(misfit) < 0.5, f"the moved base is off by {misfit} px"
    page.wait_for_function(f"window.fleetwatch.baseShifts > {shifts} || window.fleetwatch.baseRenders > {renders}",
                           timeout=WAIT)
    # once still: redrawn at the new view, no transform left
    page.wait_for_function("""() => { const b = window.fwBaseDeck.getViewports()[0], t = window.fwDeck.getViewports()[0];
        return document.querySelector('.map-base canvas').style.transform === '' &&
          Math.abs(b.longitude - t.longitude) < 1e-9 && Math.abs(b.zoom - t.zoom) < 1e-9; }""", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.baseRenders") > renders
    assert misfit is None or page.evaluate("window.fleetwatch.baseShifts") > shifts


def fill_colours(page) -> list[list[int]]:  # noqa: ANN001
    """Each vehicle's fill colour (RGBA) as the page styles it, in fleet order."""
    return page.evaluate("""() => { const s = window.fleetwatch.store, out = [];
        for (let k = 0; k < s.n; k++) out.push(window.fleetwatch.fillOf(s.index.get(`V${String(k).padStart(5, "0")}`)));
        return out; }""")


def test_toast_appears_when_an_alert_fires(runtime, world, page, db, rclient, artifacts_dir):  # noqa: ANN001
    page.goto(f"{runtime.base_url}/?static=1")
    page.wait_for_function("window.fleetwatch.alertsReady === true && window.fleetwatch.rendered > 0", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.toasts") == 0
    e = Episode.new("unsealed_transport", "V00007", int(time.time() * 1000), lon=seed.position(7, N)[0],
                    lat=seed.position(7, N)[1], evidence={"min_speed_kmh": 5, "min_duration_s": 30})
    seed.inject_alert(db, rclient, world["names"], e)
    page.wait_for_function("window.fleetwatch.toasts >= 1", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.toasts") == 1
    text = page.evaluate("window.fleetwatch.toastTexts[0]")
    assert "新报警" in text and "未密闭运输" in text and "粤B10007" in text
    assert page.evaluate("window.fleetwatch.alertsReceived") == [e.id]
    shot(page, artifacts_dir, "toast")
    no_dropped_sockets(page)


def test_alert_centre_filters_and_zooms_to_evidence(runtime, world, page, artifacts_dir):  # noqa: ANN001
    e = world["episode"]
    page.goto(f"{runtime.base_url}/alerts?static=1")
    page.wait_for_function("window.fleetwatch.alertLoads >= 1 && window.fleetwatch.roads", timeout=WAIT)
    page.select_option("select[name=kind]", "suspected_dumping")
    page.click("#filters button[type=submit]")
    page.wait_for_function("window.fleetwatch.alertLoads >= 2", timeout=WAIT)
    assert {a["kind"] for a in page.evaluate("window.fleetwatch.alerts")} == {"suspected_dumping"}
    assert page.locator("#rows tr").count() == 1
    page.click(f"#rows tr[data-id='{e.id}']")
    page.wait_for_function(f"window.fleetwatch.evidence && window.fleetwatch.evidence.id === '{e.id}' && "
                           "window.fleetwatch.zoomedTo", timeout=WAIT)
    zoom = page.evaluate("window.fleetwatch.zoomedTo")
    assert zoom["zoom"] > 13
    track = page.evaluate("window.fleetwatch.evidence.track")
    assert abs(zoom["latitude"] - (min(track["lat"]) + max(track["lat"])) / 2) < 0.01
    assert {"track", "episode", "alert-point"} <= set(page.evaluate("window.fleetwatch.evidenceLayers"))
    assert "min_stop_s" in page.inner_text("#detail")
    shot(page, artifacts_dir, "alert_centre")
    no_dropped_sockets(page)


def test_replay_animates_a_track(runtime, world, page, artifacts_dir):  # noqa: ANN001
    page.goto(f"{runtime.base_url}/replay?static=1#v=V00002,V00012&t={world['t0']}")
    page.wait_for_function("window.fleetwatch.replay && window.fleetwatch.replay.tracks === 2", timeout=WAIT)
    assert page.evaluate("window.fleetwatch.replay.fixes") == 2 * 180
    page.select_option("#speed", "60")
    before = page.evaluate("({t: window.fleetwatch.replay.t, heads: window.fleetwatch.replay.heads, "
                           "frames: window.fleetwatch.replay.frames})")
    page.click("#play")
    # playback follows the wall clock (60 simulated seconds per second) whatever the frame rate: wait for 30 s
    # of track time and at least three redraws, then the moving heads must have moved
    page.wait_for_function(f"window.fleetwatch.replay.t > {before['t']} + 30 && "
                           f"window.fleetwatch.replay.frames >= {before['frames']} + 3", timeout=WAIT)
    r = page.evaluate("window.fleetwatch.replay")
    assert r["heads"] != before["heads"] and len(r["heads"]) == 2
    if r["playing"]:
        page.click("#play")
        page.wait_for_function("window.fleetwatch.replay.playing === false", timeout=WAIT)
    shot(page, artifacts_dir, "replay")
    no_dropped_sockets(page)


def test_statistics_and_language_switch(runtime, world, page, artifacts_dir):  # noqa: ANN001
    page.goto(f"{runtime.base_url}/stats?static=1")
    page.wait_for_function("window.fleetwatch.statsRendered > 0", timeout=WAIT)
    assert page.locator("#per-day rect").count() >= 1
    assert page.locator("#ranking rect").count() == len(seed.COMPANIES)
    page.screenshot(path=str(artifacts_dir / "dashboard_statistics.png"))
    page.click("#lang")
    assert page.inner_text("nav a.active") == "Statistics"
    assert "Suspected dumping" in page.inner_text("#per-day-legend")
    assert page.inner_text("#logout") == "Sign out"
    page.click("#lang")  # back to Chinese for the other pages
    no_dropped_sockets(page)


def test_login_page_link_and_sign_out(runtime, world, browser, token):  # noqa: ANN001
    """Without a token every page sends you to the login; a wrong password says so; the right one brings you
    back where you were; a one-time link works once and leaves the address bar; sign-out ends the session."""
    import redis

    from dashboard.auth import issue_login_link

    ctx = browser.browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        p = ctx.new_page()
        p.goto(f"{runtime.base_url}/alerts?static=1")
        p.wait_for_url("**/login?next=*", timeout=WAIT)
        p.fill("input[name=username]", ADMIN)
        p.fill("input[name=password]", "not the password")
        p.click("button[type=submit]")
        p.wait_for_function("window.fleetwatch.login === 'failed'", timeout=WAIT)
        assert "错误" in p.inner_text("#login-error")
        p.fill("input[name=password]", PASSWORD)
        p.click("button[type=submit]")
        p.wait_for_url("**/alerts?static=1", timeout=WAIT)
        p.wait_for_function("window.fleetwatch.alertLoads >= 1", timeout=WAIT)
        assert "测试管理员" in p.inner_text("#user")
        p.click("#logout")
        p.wait_for_url("**/login", timeout=WAIT)
        assert p.evaluate("sessionStorage.getItem('fw-token')") is None
        p.goto(f"{runtime.base_url}/stats")
        p.wait_for_url("**/login?next=*", timeout=WAIT)
        # a one-time sign-in link, as `fleetwatch demo` prints
        r = redis.Redis.from_url(runtime.services.redis_url)
        code = issue_login_link(r, runtime.settings.bus.prefix, ADMIN, 60)
        r.close()
        p.goto(f"{runtime.base_url}/stats?static=1#login={code}")
        p.wait_for_function("window.fleetwatch.statsRendered > 0", timeout=WAIT)
        assert "#login" not in p.url and code not in p.url
        p2 = ctx.new_page()  # a second use of the same link: refused, to the login page
        p2.goto(f"{runtime.base_url}/?static=1#login={code}")
        p2.wait_for_url("**/login?next=*", timeout=WAIT)
    finally:
        ctx.close()


def test_every_request_was_local(browser, world):  # noqa: ANN001
    assert browser.requests, "the browser made no requests at all?"
    assert browser.hosts <= LOCAL_HOSTS, f"non-local requests: {browser.hosts - LOCAL_HOSTS}"
    assert not browser.errors, browser.errors


@pytest.mark.parametrize("view", ["live", "alert", "replay"])
def test_exported_html_renders_offline(api, world, browser, artifacts_dir, view):  # noqa: ANN001
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(world["t0"] / 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(world["t0"] / 1000 + 3600))
    url = {"live": "/api/export/live.html", "alert": f"/api/export/alert/{world['episode'].id}.html",
           "replay": f"/api/export/replay.html?vehicle=V00002&vehicle=V00012&since={since}&until={until}"}[view]
    resp = api.get(url)
    assert resp.status_code == 200, resp.text[:300]
    path = artifacts_dir / f"dashboard_export_{view}.html"
    path.write_text(resp.text, encoding="utf-8")
    # networking disabled: every request but the file itself is aborted (Chromium's offline emulation would
    # also refuse the file:// navigation itself)
    ctx = browser.browser.new_context(viewport={"width": 1280, "height": 800})
    attempted: list[str] = []
    errors: list[str] = []

    def gate(route) -> None:  # noqa: ANN001
        attempted.append(route.request.url)
        route.continue_() if route.request.url == path.as_uri() else route.abort()

    try:
        ctx.route("**/*", gate)
        p = ctx.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))
        p.goto(path.as_uri())  # the file itself is the only thing allowed to load
        p.wait_for_function("window.fwExport && window.fwExport.rendered > 0", timeout=WAIT)
        p.wait_for_function(SETTLED, timeout=WAIT)
        png = p.screenshot(path=str(artifacts_dir / f"dashboard_export_{view}.png"))
    finally:
        ctx.close()
    assert attempted == [path.as_uri()], f"export tried to load: {attempted[1:]}"
    assert not errors, errors
    assert drawn_variety(png, (0, 150, 1280, 760)) > 0.02
