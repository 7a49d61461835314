"""A small two-district, two-company city for the case tests, served through the real app over HTTP.

Districts d1 (west) and d2 (east) split a 0.1° square; company A runs muck truck VA1 registered in d1,
company B runs muck truck VB1 and sweeper SB1 registered in d2. Each role has a user; the app is
create_app + include_routers + install_auth, started by `Runtime` on a free port.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import numpy as np
import polars as pl
import psycopg
import pytest

from scenarios.runtime import Runtime
from tracker.cases.settings import CasesSettings
from tracker.edges import history, users
from tracker.edges.refstore import save_vehicles
from tracker.episode import Episode
from tracker.fix import conform
from tracker.reference import Vehicle

PASSWORD = "correct horse battery"
D1 = [[114.00, 22.50], [114.05, 22.50], [114.05, 22.55], [114.00, 22.55], [114.00, 22.50]]
D2 = [[114.05, 22.50], [114.10, 22.50], [114.10, 22.55], [114.05, 22.55], [114.05, 22.50]]
IN_D1 = (114.02, 22.52)
IN_D2 = (114.08, 22.52)
T_ALERT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 22:00 local

USERS = {
    "admin": dict(role="admin"),
    "sup": dict(role="supervisor"),
    "enf1": dict(role="enforcement", districts=["d1"], team="team-d1"),
    "enf2": dict(role="enforcement", districts=["d2"], team="team-d2"),
    "opA": dict(role="operator", companies=["A"]),
    "opB": dict(role="operator", companies=["B"]),
    "san": dict(role="sanitation"),
    "aud": dict(role="auditor"),
}


def cases_config(**over) -> CasesSettings:
    raw = {
        "scan_interval_s": 0,
        "evidence_minutes": 3,
        "routing": {
            "districts": {"d1": {"name": "West", "polygon": D1}, "d2": {"name": "East", "polygon": D2}},
            "rules": [{"district": "d1", "team": "team-d1"}, {"district": "d2", "team": "team-d2"}],
        },
    }
    raw.update(over)
    return CasesSettings.model_validate(raw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HASH: dict[str, str] = {}


@pytest.fixture
def cheap_argon2(monkeypatch):
    """argon2id with minimal cost for tests that hash or log in many times (production cost is ~0.1–0.6 s
    per hash here); the algorithm and code paths are the same. test_users checks the production hasher."""
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", cheap)
    monkeypatch.setattr(users, "_DUMMY_HASH", cheap.hash("dummy-password"))
    return cheap


def seed_city(conn: psycopg.Connection) -> None:
    """Vehicles and one user per role; the users share one password hash (computed once per hasher)."""
    save_vehicles(conn, [
        Vehicle(id="VA1", kind="muck_truck", company="A", district="d1", plate="粤B-A1"),
        Vehicle(id="VB1", kind="muck_truck", company="B", district="d2", plate="粤B-B1"),
        Vehicle(id="SB1", kind="sweeper", company="B", district="d2", plate="粤B-S1"),
    ])
    key = f"{users._hasher.time_cost}-{users._hasher.memory_cost}-{users._hasher.parallelism}"
    if key not in _HASH:
        _HASH[key] = users._hasher.hash(PASSWORD)
    for name, kw in USERS.items():
        users.create_user(conn, "test", name, **kw)
    conn.execute("UPDATE users SET password_hash = %s", (_HASH[key],))


def add_track(conn: psycopg.Connection, vehicle_id: str, lon0: float, lat0: float, t0: datetime,
              minutes: int = 20) -> int:
    """One fix every 10 s for `minutes`, centred on t0, drifting east; the cover opens for the middle third."""
    n = minutes * 6
    ts = int((t0 - timedelta(minutes=minutes / 2)).timestamp() * 1000) + np.arange(n) * 10_000
    cover = [not (n // 3 <= i < 2 * n // 3) for i in range(n)]
    df = conform(pl.DataFrame({"vehicle_id": [vehicle_id] * n, "ts_ms": ts,
                               "lon": lon0 + np.arange(n) * 0.00005, "lat": np.full(n, lat0),
                               "speed_kmh": np.full(n, 25.0), "cover_closed": cover,
                               "load": [3] * n})).with_columns(pl.lit(0x8C4BA0A415A0FFF, dtype=pl.UInt64).alias("h3"))
    with conn.transaction():
        return history.write_fixes(conn, df)


def add_alert(conn: psycopg.Connection, kind: str, vehicle_id: str, lon: float, lat: float, t0: datetime = T_ALERT,
              with_fence: bool = True) -> str:
    ev: dict = {"rule": kind, "thresholds": {"min_duration_s": 30, "min_speed_kmh": 5}, "permit_id": "P1",
                "permit_version": 2, "route_fence": "R1", "route_fence_version": 3}
    if with_fence:
        ev["fence"] = {"type": "Feature", "properties": {"id": "R1", "kind": "route", "version": 3},
                       "geometry": {"type": "LineString", "coordinates": [[lon - 0.01, lat], [lon + 0.01, lat + 0.002]]}}
    ep = Episode.new(kind, vehicle_id, int(t0.timestamp() * 1000), end_ts_ms=int(t0.timestamp() * 1000) + 120_000,
                     status="closed", lon=lon, lat=lat, evidence=ev)
    with conn.transaction():
        history.upsert_alerts(conn, [ep])
    return ep.id


@dataclass
class Server:
    rt: Runtime
    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str | None = None, token: str | None = None) -> httpx.Client:
        tok = token or (self.tokens[user] if user else None)
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def login(self, user: str, password: str = PASSWORD) -> httpx.Response:
        return httpx.post(f"{self.base_url}/api/auth/login", json={"username": user, "password": password},
                          timeout=60)


@pytest.fixture
def cases_cfg() -> CasesSettings:
    return cases_config()


@pytest.fixture
def server(settings, monkeypatch, cases_cfg, pg_conn, cheap_argon2):
    """The app with the cases/admin routers and login routes, on a free port, every user logged in."""
    import dashboard.app
    from dashboard.auth import install_auth
    from dashboard.routes_cases import include_routers

    real = dashboard.app.create_app

    def create_app(*a, **kw):
        app = real(*a, **kw)
        install_auth(app)
        include_routers(app, cases=cases_cfg)
        return app

    monkeypatch.setattr(dashboard.app, "create_app", create_app)
    settings.http.port = free_port()
    seed_city(pg_conn)
    rt = Runtime(settings)
    rt.start_services()
    rt.start_server()
    srv = Server(rt, rt.base_url)
    for name in USERS:
        resp = srv.login(name)
        assert resp.status_code == 200, resp.text
        srv.tokens[name] = resp.json()["token"]
    yield srv
    rt.stop()


def decode(resp: httpx.Response):
    return msgspec.json.decode(resp.content)
