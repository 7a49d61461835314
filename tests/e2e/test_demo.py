"""The walking skeleton end to end, exactly as a newcomer runs it: `fleetwatch demo` in a subprocess.

One run of `fleetwatch demo --duration 30 --no-browser` serves three checks: (1) while it runs, every
simulated vehicle's fixes reach PostgreSQL, the websocket delivers positions for all of them and the page
renders them in headless Chromium with zero requests to non-local hosts; (2) it exits 0 by itself after the
duration; (3) it leaves no process behind (embedded Redis and PostgreSQL included).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import psutil
import psycopg
import pytest
from websockets.sync.client import connect as ws_connect

from dashboard.wire import LiveDecoder
from tracker.config import Settings
from tracker.edges.services import ensure_services

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--use-gl=swiftshader", "--enable-unsafe-swiftshader"]
VEHICLES = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_using(path: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            cwd = p.cwd()  # redis-server runs in its data dir; its title doesn't name it
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if (str(path) in cmd or cwd.startswith(str(path))) and p.pid != os.getpid():
            found.append(f"{p.pid}: {cmd[:160]}")
    return found


def _printed_login(log_path: Path, proc: subprocess.Popen, timeout_s: float) -> tuple[str, str, str]:
    """(user, password, one-time link) as the demo prints them for the person who started it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text()
        user = re.search(r"sign in as (\S+) / (\S+)", text)
        link = re.search(r"one-time sign-in link.*?: (http\S+#login=\S+)", text)
        if user and link:
            return user.group(1), user.group(2), link.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"demo exited early with {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError("the demo printed no login")


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited early with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"demo did not serve {url} within {timeout_s} s")


@pytest.mark.browser
def test_demo_end_to_end(tmp_path: Path, artifacts_dir: Path):
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (make test installs it)"
    from playwright.sync_api import sync_playwright

    port = _free_port()
    # not under pytest's basetemp: pytest resets its root to 0700, which the embedded PostgreSQL's
    # unprivileged user must traverse
    data_dir = Path(tempfile.mkdtemp(prefix="fw-e2e-")) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
    env["FLEETWATCH_DATA_DIR"] = str(data_dir)
    log_path = artifacts_dir / "demo_e2e.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scenarios.cli", "demo", "--duration", "30", "--no-browser", "--port",
             str(port), "--vehicles", str(VEHICLES), "--speed", "10", "--gateway-port", "0"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/health", proc, 90)
        t_up = time.monotonic()
        # the dashboard needs a login: use what the demo printed, as a newcomer would
        import httpx

        user, password, link = _printed_login(log_path, proc, 60)
        resp = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": password}, timeout=60)
        assert resp.status_code == 200, resp.text
        token = resp.json()["token"]

        # the embedded servers the demo started are reused (not owned) by this test to look inside
        svc = ensure_services(Settings(data_dir=data_dir))
        with psycopg.connect(svc.database_url) as conn:
            vehicle_ids = {r[0] for r in conn.execute("SELECT vehicle_id FROM vehicles")}
            kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM vehicles")}
        assert len(vehicle_ids) == VEHICLES
        # the sanitation manager's work plans are there too (coverage page and rules)
        plans = httpx.get(f"{base}/api/coverage/plans", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert plans.status_code == 200, plans.text
        if kinds & {"sweeper", "sprinkler"}:
            assert plans.json()["work_plans"], plans.json()

        # websocket: positions for every vehicle
        decoder = LiveDecoder()  # the binary fw-live/1 protocol, decoded as the page does
        with ws_connect(f"ws://127.0.0.1:{port}/ws/live", open_timeout=10) as ws:
            ws.send(json.dumps({"token": token}))
            while time.monotonic() - t_up < 20 and set(decoder.vehicles) != vehicle_ids:
                decoder.feed(ws.recv(timeout=5))
        assert set(decoder.vehicles) == vehicle_ids
        assert all(113 < v["lon"] < 115 and 22 < v["lat"] < 23 for v in decoder.vehicles.values())
        # live state is published only after the worker committed the batch, so history has them all
        with psycopg.connect(svc.database_url) as conn:
            stored = {r[0] for r in conn.execute("SELECT DISTINCT vehicle_id FROM fixes")}
        assert stored == vehicle_ids

        # browser: the page renders every vehicle, and asks nothing of the internet
        hosts: set[str] = set()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda req: hosts.add(urlparse(req.url).hostname or ""))
            page.goto(link)  # the one-time sign-in link: no login form in the way
            page.wait_for_function(
                f"window.fleetwatch && window.fleetwatch.rendered === {VEHICLES} && window.fleetwatch.roads",
                timeout=30_000)
            page.wait_for_timeout(1500)
            drawn = page.evaluate("window.fleetwatch.rendered")
            assert "#login=" not in page.url  # the code left the address bar
            shot = artifacts_dir / "demo_live_map.png"
            page.screenshot(path=str(shot))
            browser.close()
        assert drawn == VEHICLES
        assert hosts <= {"127.0.0.1", "localhost"}, f"non-local requests: {hosts}"
        assert shot.stat().st_size > 20_000

        svc.stop()  # not owned: a no-op for the servers

        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(1)
    assert _processes_using(data_dir) == [], "demo left processes behind"
    assert "FleetWatch is live at" in log_path.read_text()
