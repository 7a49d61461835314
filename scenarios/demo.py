"""`fleetwatch demo`: a live simulated city on the dashboard, in one command.

Starts (or reuses) the embedded Redis and PostgreSQL, loads a simulated city's reference data (vehicles,
fences, permits, orders), starts the web server and a worker, and feeds the simulated fixes through the real
HTTP ingest as their time comes — at `speed`× real time. The simulated period starts *now*, so what the map
shows is "live". Everything started here stops on Ctrl-C or after `duration`.

Signing in: the dashboard needs a login, so the demo makes (or re-uses) an admin account `demo` with a new
random password on every run and prints it, with a one-time sign-in link (`/#login=…`, valid 10 minutes,
usable once, kept out of server logs because it is a URL fragment) that it also opens in the browser. No
fixed default password exists anywhere; a real deployment creates its accounts with `fleetwatch users add`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from scenarios.runtime import Runtime
from tracker.config import Settings

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    port: int = 8000
    vehicles: int = 60
    speed: float = 1.0
    duration_s: float | None = None
    seed: int = 7
    scenario: str = "standard"
    open_browser: bool = True
    gateway_port: int | None = 8808  # JT/T 808 terminals; None: no gateway, 0: any free port


def simulate_city(opts: DemoOptions, start_ms: int) -> Any:
    """Generate the scenario for the period the demo will show (at least 20 minutes of city time)."""
    from scenarios.sim import generate
    from scenarios.sim.config import load_scenario

    horizon_s = (opts.duration_s or 3600.0) * opts.speed + 120.0
    hours = min(max(horizon_s / 3600.0, 1 / 3), 6.0)
    cfg = load_scenario(opts.scenario, seed=opts.seed, vehicles=opts.vehicles, hours=hours,
                        start_ts_ms=start_ms)
    return generate(cfg)


def load_reference(database_url: str, sim: Any) -> None:
    """Write the simulated city's reference data through the same stores the import commands use."""
    from geofences.geojson import load_fences
    from geofences.store import save_fences
    from tracker.edges.coverage_store import save_plans
    from tracker.edges.refstore import save_docs, save_vehicles

    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            save_vehicles(conn, list(sim.vehicles))
            save_fences(conn, load_fences(sim.fence_collection), actor="demo")
            save_docs(conn, "permit", list(sim.permits), actor="demo")
            save_docs(conn, "order", list(sim.orders), actor="demo")
            if sim.plans is not None:  # sweeping plans and refuse rounds: the coverage page and rules
                save_plans(conn, sim.plans, actor="demo")


DEMO_USER = "demo"
LINK_TTL_S = 600


def demo_login(settings: Settings, database_url: str, redis_url: str) -> tuple[str, str]:
    """The demo admin (created once, re-enabled and given a fresh random password each run) → (password,
    one-time sign-in code)."""
    import redis

    from dashboard.auth import issue_login_link
    from tracker.edges import users

    password = secrets.token_urlsafe(12)
    with psycopg.connect(database_url, autocommit=True) as conn:
        if users.get_user(conn, DEMO_USER) is None:
            users.create_user(conn, "demo", DEMO_USER, "admin", password=password, display_name="演示管理员 Demo")
        else:
            users.update_user(conn, "demo", DEMO_USER, role="admin", disabled=False)
            users.set_password(conn, "demo", DEMO_USER, password)
    r = redis.Redis.from_url(redis_url)
    try:
        code = issue_login_link(r, settings.bus.prefix, DEMO_USER, LINK_TTL_S)
    finally:
        r.close()
    return password, code


def run_demo(settings: Settings, opts: DemoOptions, echo=print) -> int:
    settings.http.port = opts.port
    rt = Runtime(settings)
    finished = threading.Event()
    try:
        echo("starting Redis and PostgreSQL…" if not (settings.redis_url and settings.database_url)
             else "connecting to Redis and PostgreSQL…")
        services = rt.start_services()
        start_ms = int(time.time() * 1000)
        echo(f"simulating {opts.vehicles} vehicles on the Futian road network…")
        sim = simulate_city(opts, start_ms)
        load_reference(services.database_url, sim)
        from scenarios.warmup import warm_up

        echo("preparing the rule engine…")
        warm_up(settings)  # in this process: the worker's first batch then runs compiled kernels
        rt.start_server()
        rt.start_workers(1)
        if opts.gateway_port is not None:
            gw_port = rt.start_gateway(opts.gateway_port)
            echo(f"JT/T 808 gateway listening on {settings.http.host}:{gw_port}")
        token = next(iter(settings.http.ingest_tokens.values()))
        rt.start_feed(sim.fixes, opts.speed, token, start_ms, on_done=finished)
        url = f"{rt.base_url}/"
        password, code = demo_login(settings, services.database_url, services.redis_url)
        link = f"{url}#login={code}"
        echo(f"FleetWatch is live at {url}  (Ctrl-C to stop)")
        echo(f"  sign in as {DEMO_USER} / {password}  (a new password every run)")
        echo(f"  or open the one-time sign-in link (valid {LINK_TTL_S // 60} min): {link}")
        if opts.open_browser:
            import webbrowser

            webbrowser.open(link)
        deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
        while deadline is None or time.monotonic() < deadline:
            if not all(t.is_alive() for t in rt.threads if t.name != "feed"):
                raise RuntimeError("a demo component stopped unexpectedly; see the log above")
            time.sleep(0.2)
    except KeyboardInterrupt:
        echo("stopping…")
    finally:
        rt.stop()
    echo("stopped.")
    return 0
