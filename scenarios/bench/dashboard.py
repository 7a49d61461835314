"""Dashboard figures at city scale: bytes on `/ws/live` per changed vehicle, and the live map's frame rate.

Both run the real thing: embedded Redis and PostgreSQL, the web app under uvicorn, 20,000 registered vehicles
whose live state is republished every second with every vehicle moved (the worst case for deltas). The wire
figure counts every byte the server sends on one binary connection (hello, index table, summaries and
position frames) divided by the vehicle records delivered; its baseline is a second connection on the same
server asking for the naive JSON encoding (`?format=json`), measured over the same seconds.

The map figures are headless Chromium with software WebGL on the live page as a user opens it (logged in,
default mode: animated while frames are fast, one redraw per update when they are not), while every vehicle
moves each second; every one of the 20,000 vehicles is inside the view (checked: the bench fails otherwise);
each figure is the median of one-second samples. Software WebGL is the fastest path the installed Chromium
offers, chosen and reported per run: Mesa's llvmpipe through ANGLE's GL/EGL back end with software
compositing (`--use-angle=gl-egl --disable-gpu-compositing`) when Chromium can use it, else SwiftShader
(ANGLE/Vulkan, what `--disable-gpu` gives). With software WebGL the page draws the vehicles itself in a 2D
canvas (static/raster.js); the figure's unit names the renderer the page chose and the GL:

* `live_map_fps` — frames of moving vehicles the page draws per second with animation forced on
  (`?animate=1`: interpolated motion between the 1 Hz updates, whatever a frame costs) — redraws of all
  20,000 vehicles (the page's `vehicleRenders`, counted by whichever renderer drew them), not
  requestAnimationFrame callbacks, which an idle page delivers at 60 Hz. Its baseline is the same page in
  the same browser with the vehicles drawn by deck.gl's WebGL layer (`render=gl`, static/points.js: the
  page's path on a real GPU);
* `live_map_cpu_ms_per_frame` — CPU time of all the browser's processes (GPU process: software GL and
  compositing; renderer: the page's JavaScript) per redraw of the vehicles over the same seconds: what a frame
  costs whatever else the machine is doing (the frame rate also depends on the cores left to the browser);
* `live_map_frame_ms` — what one redraw of the vehicles takes (draw → the next frame after it was drawn,
  as the page measures it to decide whether to animate);
* `live_map_pan_fps` — frames per second of the whole map (roads and vehicles) at the new view while it
  is panned continuously: what dragging the map feels like. With software GL the page moves the road canvas
  as a picture while the view moves and redraws it when the view settles (and every 0.7 s of a long drag),
  so such a frame counts when the vehicles were redrawn and the roads redrawn or moved;
* `live_map_renders_per_s` — redraws per second in the default mode, where the page stops animating when
  frames are slow (≈ 1: one per update; up to the frame rate while they are fast);
* `machine_load_1m` — the 1-minute load average when the page was measured (the figures depend on it).
"""

from __future__ import annotations

import math
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from scenarios.bench import Figure, figure

CHROMIUM = "/usr/bin/chromium"
_COMMON = ["--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"]
#: SwiftShader (ANGLE on SwiftShader's Vulkan): what headless Chromium uses with no GPU, and the browser tests
BROWSER_ARGS = _COMMON[:2] + ["--disable-gpu"] + _COMMON[2:]
#: Mesa's llvmpipe through ANGLE's desktop-GL back end (EGL), pages composited in software: on this machine a
#: vehicle redraw costs ~40 % less CPU than on SwiftShader (its rasteriser is cheaper per fragment; GPU
#: compositing on llvmpipe would cost more than it saves)
LLVMPIPE_ARGS = _COMMON + ["--use-angle=gl-egl", "--ignore-gpu-blocklist", "--disable-gpu-compositing"]
_RENDERER = """() => { const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl) return null; const e = gl.getExtension("WEBGL_debug_renderer_info");
  return String(gl.getParameter(e ? e.UNMASKED_RENDERER_WEBGL : gl.RENDERER)); }"""


def _software_gl(pw: Any) -> tuple[list[str], str]:
    """(browser flags, short name) of the fastest software WebGL this Chromium runs: llvmpipe if it can."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=LLVMPIPE_ARGS)
    try:
        renderer = browser.new_page().evaluate(_RENDERER) or ""
    finally:
        browser.close()
    return (LLVMPIPE_ARGS, "llvmpipe") if "llvmpipe" in renderer else (BROWSER_ARGS, "swiftshader")


def _browser_cpu_s() -> float:
    """CPU seconds used so far by the Chromium processes this process started."""
    import psutil

    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name():
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _states(n: int, t_ms: int, step: int) -> list[dict[str, Any]]:
    """n vehicles on a grid over central Futian, each moved ~8 m per step."""
    cols = int(math.sqrt(n)) or 1
    out = []
    for i in range(n):
        x, y = i % cols, i // cols
        out.append({"vehicle_id": f"B{i:06d}", "ts_ms": t_ms, "lon": 114.003 + 0.03 * x / cols + 0.00008 * step,
                    "lat": 22.522 + 0.022 * y / math.ceil(n / cols), "speed_kmh": 25.0 + i % 20,
                    "heading_deg": float((i * 7) % 360), "cover_closed": True if i % 5 == 2 else None,
                    "lifting": None, "load": 3 if i % 5 == 2 else None, "device_on": None, "drum": None,
                    "alarm_kinds": []})
    return out


class _Feeder(threading.Thread):
    """Republishes every vehicle once a second, as workers would."""

    def __init__(self, redis_url: str, names: Any, n: int):
        super().__init__(daemon=True)
        import redis

        self.r = redis.Redis.from_url(redis_url)
        self.names, self.n = names, n
        self.stop = threading.Event()
        self.step = 0

    def publish_once(self) -> None:
        from tracker.edges.live import publish_live

        states = _states(self.n, int(time.time() * 1000), self.step)
        for k in range(0, len(states), 5000):
            publish_live(self.r, self.names, states[k:k + 5000], changes_maxlen=10_000)
        self.step += 1

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            self.publish_once()
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))


def _login(database_url: str, base_url: str) -> str:
    """A bench admin and a session token from the real login endpoint (every page and socket needs one)."""
    import secrets

    import httpx
    import psycopg

    from tracker.edges import users

    password = secrets.token_urlsafe(12)
    with psycopg.connect(database_url, autocommit=True) as conn:
        if users.get_user(conn, "bench") is None:
            users.create_user(conn, "bench", "bench", "admin", password=password)
        else:
            users.set_password(conn, "bench", "bench", password)
    resp = httpx.post(f"{base_url}/api/auth/login", json={"username": "bench", "password": password}, timeout=60)
    resp.raise_for_status()
    return str(resp.json()["token"])


def _measure_ws(base_ws: str, seconds: float, n: int, token: str) -> tuple[float, float, int]:
    """(binary bytes per record, JSON bytes per record, records) over the same `seconds` of updates."""
    from websockets.sync.client import connect

    from dashboard import wire

    results: dict[str, tuple[int, int]] = {}

    def follow(fmt: str) -> None:
        url = f"{base_ws}/ws/live" + ("?format=json" if fmt == "json" else "")
        total = records = 0
        with connect(url, open_timeout=30, max_size=None) as ws:
            ws.send(orjson.dumps({"token": token}).decode())  # not counted: the client's bytes
            dec = wire.LiveDecoder()
            deadline = None
            while True:
                timeout = 30 if deadline is None else max(0.05, deadline - time.monotonic())
                try:
                    msg = ws.recv(timeout=timeout)
                except TimeoutError:
                    break
                size = len(msg) if isinstance(msg, bytes) else len(msg.encode())
                total += size
                if fmt == "json":
                    records += len(orjson.loads(msg).get("v", []))
                else:
                    records += len(dec.feed(msg))
                if deadline is None and records >= n:
                    deadline = time.monotonic() + seconds
                if deadline is not None and time.monotonic() >= deadline:
                    break
        results[fmt] = (total, records)

    threads = [threading.Thread(target=follow, args=(f,)) for f in ("bin", "json")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    b_total, b_rec = results["bin"]
    j_total, j_rec = results["json"]
    return b_total / max(b_rec, 1), j_total / max(j_rec, 1), b_rec


_SAMPLE = """async (secs) => {
  const s = window.fleetwatch, out = [];
  for (let k = 0; k < secs; k++) {
    const r0 = s.vehicleRenders, f0 = (s.frameSamples || []).length, t0 = performance.now();
    let frames = 0;
    await new Promise((done) => { const f = () => { frames++;
      if (performance.now() - t0 < 1000) requestAnimationFrame(f); else done(); }; requestAnimationFrame(f); });
    const dt = (performance.now() - t0) / 1000;
    out.push({ fps: frames / dt, renders: (s.vehicleRenders - r0) / dt });
  }
  return { samples: out, frameMs: (s.frameSamples || []).slice(-secs * 3) };
}"""
_PAN = """async (secs) => {
  const deck = window.fwDeck, s = window.fleetwatch, out = [];
  const vp = deck.getViewports()[0];
  let v = { longitude: vp.longitude, latitude: vp.latitude, zoom: vp.zoom, pitch: 0, bearing: 0 }, sign = 1;
  const start = { ...v };
  for (let k = 0; k < secs; k++) {
    const r0 = s.vehicleRenders, b0 = s.baseRenders + s.baseShifts, t0 = performance.now();
    await new Promise((done) => { const f = () => {
      v = { ...v, longitude: v.longitude + sign * 0.0004 };
      if (Math.abs(v.longitude - start.longitude) > 0.01) sign = -sign;
      window.fwJumpTo(v);  // as the page moves the map (the base follows the vehicles' canvas)
      if (performance.now() - t0 < 1000) requestAnimationFrame(f); else done(); }; requestAnimationFrame(f); });
    const dt = (performance.now() - t0) / 1000;
    // a pan frame needs both canvases at the new view: the vehicles redrawn, the base redrawn or moved
    out.push(Math.min(s.vehicleRenders - r0, s.baseRenders + s.baseShifts - b0) / dt);
  }
  return out;
}"""


# vehicles whose position is inside the view of the vehicle canvas
_VISIBLE = """() => { const s = window.fleetwatch.store, vp = window.fwDeck.getViewports()[0]; let k = 0;
  for (let i = 0; i < s.n; i++) { const [x, y] = vp.project([s.lon[i], s.lat[i]]);
    if (x >= 0 && y >= 0 && x <= vp.width && y <= vp.height) k++; }
  return k; }"""


def _measure_page(pw: Any, args: list[str], base_url: str, n: int, secs: int, token: str,
                  modes: tuple[str, ...], pan: bool = True) -> dict[str, Any]:
    import os
    import statistics

    out: dict[str, Any] = {}
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        ctx = browser.new_context(viewport={"width": 1600, "height": 900})
        ctx.add_init_script(f"sessionStorage.setItem('fw-token', {orjson.dumps(token).decode()});")
        for mode in modes:
            page = ctx.new_page()
            page.goto(f"{base_url}/?{mode}")
            page.wait_for_function(f"window.fleetwatch && window.fleetwatch.rendered >= {n} && "
                                   "window.fleetwatch.baseRenders > 0 && window.fleetwatch.frames >= 3",
                                   timeout=300_000)
            page.wait_for_timeout(3000)  # past the first frames (shader compilation, roads tessellation)
            visible = page.evaluate(_VISIBLE)
            if visible < n:
                raise RuntimeError(f"only {visible} of {n} vehicles are in view: the frame rate would not be theirs")
            out.setdefault("load", os.getloadavg()[0])
            out.setdefault("renderer", page.evaluate(_RENDERER))
            out.setdefault("vehicles", page.evaluate("window.fleetwatch.vehicleLayer"))
            cpu0, r0 = _browser_cpu_s(), page.evaluate("window.fleetwatch.vehicleRenders")
            got = page.evaluate(_SAMPLE, secs)
            cpu1, r1 = _browser_cpu_s(), page.evaluate("window.fleetwatch.vehicleRenders")
            renders = statistics.median(x["renders"] for x in got["samples"])
            if mode:
                out["fps"] = renders
                out["cpu_ms"] = 1000 * (cpu1 - cpu0) / max(1, r1 - r0)
                out["frame_ms"] = statistics.median(got["frameMs"]) if got["frameMs"] else float("nan")
                if pan:
                    out["pan_fps"] = statistics.median(page.evaluate(_PAN, secs))
            else:
                out["renders"] = renders
            page.close()
    finally:
        browser.close()
    return out


def _measure_fps(base_url: str, n: int, seconds: float, token: str) -> dict[str, Any]:
    """Medians of one-second samples on the live page (see the module docstring), on the fastest software
    WebGL available, and the animated figure again with the vehicles drawn by deck.gl's WebGL (the page's
    GPU path, `render=gl`: the baseline) in the same browser."""
    import sys

    from playwright.sync_api import sync_playwright

    secs = max(3, int(seconds))
    with sync_playwright() as pw:
        args, gl = _software_gl(pw)
        out = _measure_page(pw, args, base_url, n, secs, token, ("animate=1", ""))
        out["gl"] = gl
        out["webgl_fps"] = _measure_page(pw, args, base_url, n, secs, token, ("animate=1&render=gl",), pan=False)["fps"]
    print(f"live map: vehicles drawn by {out['vehicles']}, software WebGL {gl} ({out['renderer']})", file=sys.stderr)
    return out


def bench_dashboard(quick: bool = False) -> list[Figure]:
    import psycopg

    from scenarios.runtime import Runtime
    from tracker.config import Settings
    from tracker.edges.bus import StreamNames
    from tracker.edges.refstore import save_vehicles
    from tracker.edges.services import ensure_services
    from tracker.reference import Vehicle
    from tracker.vocab import VehicleKind

    n = 2_000 if quick else 20_000
    seconds = 3.0 if quick else 6.0
    kinds = [k.value for k in VehicleKind]
    with tempfile.TemporaryDirectory(prefix="fw-bench-dash-") as tmp:
        base = Settings(data_dir=Path(tmp))
        services = ensure_services(base)
        settings = Settings(data_dir=Path(tmp), redis_url=services.redis_url, database_url=services.database_url)
        settings.http.port = _free_port()
        rt = Runtime(settings)
        feeder = None
        try:
            rt.start_services()
            with psycopg.connect(services.database_url, autocommit=True) as conn:
                save_vehicles(conn, [Vehicle(id=f"B{i:06d}", kind=kinds[i % 5], company=f"C{i % 40}",
                                             plate=f"粤B{i:06d}") for i in range(n)])
            names = StreamNames(settings.bus.prefix, settings.bus.shards)
            feeder = _Feeder(services.redis_url, names, n)
            feeder.publish_once()
            rt.start_server()
            token = _login(services.database_url, rt.base_url)
            feeder.start()
            per_vehicle, naive, records = _measure_ws(rt.base_url.replace("http", "ws"), seconds, n, token)
            figures = [figure("dashboard.ws_bytes_per_vehicle", per_vehicle, "bytes", target=40, baseline=naive)]
            if Path(CHROMIUM).exists():
                m = _measure_fps(rt.base_url, n, seconds, token)
                figures.append(figure("dashboard.live_map_fps", m["fps"], f"fps ({m['vehicles']}, {m['gl']})",
                                      target=30, baseline=m["webgl_fps"]))
                figures.append(figure("dashboard.live_map_cpu_ms_per_frame", m["cpu_ms"], f"ms ({m['gl']})"))
                figures.append(figure("dashboard.live_map_renders_per_s", m["renders"], "renders/s"))
                figures.append(figure("dashboard.live_map_frame_ms", m["frame_ms"], "ms"))
                figures.append(figure("dashboard.live_map_pan_fps", m["pan_fps"], "fps"))
                figures.append(figure("dashboard.machine_load_1m", m["load"], "load"))
            return figures
        finally:
            if feeder is not None:
                feeder.stop.set()
                feeder.join(timeout=5)
            rt.stop()
            services.stop()
