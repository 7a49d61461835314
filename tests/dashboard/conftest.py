"""Dashboard fixtures: one running app per test module (Runtime: real Redis, real PostgreSQL, uvicorn on a
free port), a logged-in admin (`token`, `api`), and a headless Chromium that records every request it makes
(its pages carry the admin's token, as the login page would leave it)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest

from scenarios.runtime import Runtime
from tests.conftest import scratch_database
from tracker.config import Settings
from tracker.edges import users
from tracker.edges.services import Services

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ADMIN, PASSWORD = "dash-admin", "dashboard test password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def module_db(services: Services) -> Iterator[str]:
    """A fresh migrated database shared by one test module (the app keeps running across its tests)."""
    with scratch_database(services, "fwd") as url:
        yield url


@pytest.fixture(scope="module")
def app_settings(tmp_path_factory: pytest.TempPathFactory, services: Services, module_db: str) -> Settings:
    s = Settings(data_dir=tmp_path_factory.mktemp("fw-dash"), redis_url=services.redis_url, database_url=module_db)
    s.bus.prefix = f"d{uuid.uuid4().hex[:8]}"
    s.http.port = free_port()
    return s


@pytest.fixture(scope="module")
def runtime(app_settings: Settings) -> Iterator[Runtime]:
    rt = Runtime(app_settings)
    rt.start_services()
    rt.start_server()
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def db(runtime: Runtime) -> Iterator[psycopg.Connection]:
    assert runtime.services is not None
    with psycopg.connect(runtime.services.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def token(runtime: Runtime, db: psycopg.Connection) -> str:
    """A session token of an admin (unrestricted scope), obtained through the real login endpoint."""
    users.create_user(db, "test", ADMIN, "admin", password=PASSWORD, display_name="测试管理员")
    resp = httpx.post(f"{runtime.base_url}/api/auth/login", json={"username": ADMIN, "password": PASSWORD},
                      timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


@pytest.fixture(scope="module")
def api(runtime: Runtime, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runtime.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture(scope="module")
def rclient(runtime: Runtime):  # noqa: ANN201
    import redis

    assert runtime.services is not None
    r = redis.Redis.from_url(runtime.services.redis_url)
    yield r
    r.close()


class Browser:
    """A Chromium page that records the host of every request it makes."""

    def __init__(self, pw, viewport: dict[str, int]):  # noqa: ANN001
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        self.context = self.browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
        self.hosts: set[str] = set()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", self._record)

    def _record(self, req) -> None:  # noqa: ANN001
        self.requests.append(req.url)
        host = urlparse(req.url).hostname
        if host:
            self.hosts.add(host)

    def login(self, token: str) -> None:
        """Every page of this context starts with the token in sessionStorage (what the login page leaves)."""
        self.context.add_init_script(f"sessionStorage.setItem('fw-token', {json.dumps(token)});")

    def page(self):  # noqa: ANN201
        p = self.context.new_page()
        p.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return p

    def close(self) -> None:
        self.context.close()
        self.browser.close()


@pytest.fixture(scope="module")
def browser(token: str) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the browser tests (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = Browser(pw, {"width": 1600, "height": 900})
        b.login(token)
        yield b
        b.close()
