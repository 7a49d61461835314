"""The coverage page in headless Chromium against the real app (Redis, PostgreSQL, uvicorn), the coverage
router mounted by `create_app` as in the product."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import psycopg
import pytest

from geofences.h3util import cells_at
from geofences.store import save_fences
from scenarios.runtime import Runtime
from tests.coverage import synth as S
from tests.coverage.test_rules import FENCES, day_plans, fix_stream
from tests.dashboard.conftest import ADMIN, CHROMIUM, PASSWORD, Browser, free_port
from tracker.config import Settings
from tracker.edges import coverage_store, users
from tracker.edges.history import write_fixes
from tracker.fix import conform

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, services) -> Iterator[Runtime]:
    from tests.conftest import scratch_database

    with scratch_database(services, "fwc") as url:
        yield from _runtime(tmp_path_factory, services, url)


def _runtime(tmp_path_factory: pytest.TempPathFactory, services, url: str) -> Iterator[Runtime]:
    with psycopg.connect(url, autocommit=True) as conn:
        save_fences(conn, FENCES, actor="test")
        coverage_store.save_plans(conn, day_plans(), actor="test")
        fx = conform(fix_stream().with_columns(pl.col("ts_ms").alias("received_ts_ms"), pl.lit("t").alias("source")))
        with conn.transaction():
            write_fixes(conn, fx.with_columns(pl.Series("h3", cells_at(fx["lon"].to_numpy(), fx["lat"].to_numpy(), 12))))
        users.create_user(conn, "test", ADMIN, "admin", password=PASSWORD, display_name="admin")
    s = Settings(data_dir=tmp_path_factory.mktemp("fw-cov"), redis_url=services.redis_url, database_url=url)
    s.bus.prefix = f"c{uuid.uuid4().hex[:8]}"
    s.http.port = free_port()
    rt = Runtime(s)
    rt.start_services()
    rt.start_server()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="module")
def token(runtime: Runtime) -> str:
    r = httpx.post(f"{runtime.base_url}/api/auth/login", json={"username": ADMIN, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def browser(token: str) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the browser tests (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = Browser(pw, {"width": 1500, "height": 900})
        b.login(token)
        yield b
        b.close()


def test_the_coverage_page_shows_the_day(runtime: Runtime, browser: Browser):
    page = browser.page()
    try:
        page.goto(f"{runtime.base_url}/coverage#date={S.DAY.isoformat()}")
        page.wait_for_function("() => window.fleetwatch && window.fleetwatch.coverage "
                               "&& window.fleetwatch.coverage.rendered > 0", timeout=90_000)
        cov = page.evaluate("() => window.fleetwatch.coverage")
        assert cov["segments"] == 4 and cov["points"] == 3 and cov["hexes"] > 0
        assert "c1" in page.inner_text("#companies")
        assert page.inner_text("#kpis").count("%") >= 2
        assert page.locator('header nav a[data-p="coverage"]').count() == 1
        page.click("#lang")  # English labels, re-rendered
        page.wait_for_function("() => window.fleetwatch.coverage.rendered > 1", timeout=30_000)
        assert "Missed" in page.inner_text("#kpis")
        assert not browser.errors, browser.errors
        assert browser.hosts <= {"127.0.0.1", "localhost"}
    finally:
        page.close()
