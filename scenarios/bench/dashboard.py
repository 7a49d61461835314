"""Dashboard figures at city scale: bytes on `/ws/live` per changed vehicle, and the live map's frame rate.

Both run the real thing: embedded Redis and PostgreSQL, the web app under uvicorn, 20,000 registered vehicles
whose live state is republished every second with every vehicle moved (the worst case for deltas). The wire
figure counts every byte the server sends on one binary connection (hello, index table, summaries and
position frames) divided by the vehicle records delivered; its baseline is a second connection on the same
server asking for the naive JSON encoding (`?format=json`), measured over the same seconds. The frame rate
is headless Chromium on the live page, counted with requestAnimationFrame while the fleet moves.
"""

from __future__ import annotations

import math
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scenarios.bench import Figure, figure

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


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


def _measure_ws(base_ws: str, seconds: float, n: int) -> tuple[float, float, int]:
    """(binary bytes per record, JSON bytes per record, records) over the same `seconds` of updates."""
    from websockets.sync.client import connect

    from dashboard import wire

    results: dict[str, tuple[int, int]] = {}

    def follow(fmt: str) -> None:
        url = f"{base_ws}/ws/live" + ("?format=json" if fmt == "json" else "")
        total = records = 0
        with connect(url, open_timeout=30, max_size=None) as ws:
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
                    import orjson

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


def _measure_fps(base_url: str, n: int, seconds: float) -> tuple[float, float]:
    """(requestAnimationFrame callbacks per second, deck.gl renders per second) on the live page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{base_url}/")
        page.wait_for_function(f"window.fleetwatch && window.fleetwatch.rendered >= {n}", timeout=180_000)
        page.wait_for_timeout(2000)
        raf, renders = page.evaluate("""async (secs) => {
            const s = window.fleetwatch, r0 = s.deckRenders || 0; let frames = 0; const t0 = performance.now();
            await new Promise((done) => { const f = () => { frames++;
              if (performance.now() - t0 < secs * 1000) requestAnimationFrame(f); else done(); }; requestAnimationFrame(f); });
            const dt = (performance.now() - t0) / 1000;
            return [frames / dt, ((s.deckRenders || 0) - r0) / dt]; }""", seconds)
        browser.close()
    return float(raf), float(renders)


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
            feeder.start()
            per_vehicle, naive, records = _measure_ws(rt.base_url.replace("http", "ws"), seconds, n)
            figures = [figure("dashboard.ws_bytes_per_vehicle", per_vehicle, "bytes", target=40, baseline=naive)]
            if Path(CHROMIUM).exists():
                fps, renders = _measure_fps(rt.base_url, n, seconds)
                figures.append(figure("dashboard.live_map_fps", fps, "fps", target=30))
                figures.append(figure("dashboard.live_map_renders_per_s", renders, "renders/s"))
            return figures
        finally:
            if feeder is not None:
                feeder.stop.set()
                feeder.join(timeout=5)
            rt.stop()
            services.stop()
