"""Shared fixtures: real Redis and real PostgreSQL — embedded by default, external when
FLEETWATCH_REDIS_URL / FLEETWATCH_DATABASE_URL are set. Never a fake.

Isolation: every test that asks for `pg_url` gets a fresh, migrated database on the shared server, and every
`settings` gets its own Redis key prefix, so tests don't see each other's data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib

from scenarios.shared_data import shared_dir as shared_data_dir
from tracker.config import Settings
from tracker.edges.db import migrate
from tracker.edges.services import Services, ensure_services

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    # not under pytest's basetemp, which pytest resets to 0700: the embedded PostgreSQL runs as an
    # unprivileged user when tests run as root and must traverse the path
    data_dir = Path(tempfile.mkdtemp(prefix="fw-test-services-"))
    svc = ensure_services(Settings(data_dir=data_dir, redis_url=os.environ.get("FLEETWATCH_REDIS_URL"),
                                   database_url=os.environ.get("FLEETWATCH_DATABASE_URL")))
    yield svc
    svc.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def _with_db(url: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@contextmanager
def scratch_database(services: Services, prefix: str = "fwt") -> Iterator[str]:
    """A fresh database on the shared server with every migration applied (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(services.database_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        yield url
    finally:
        with psycopg.connect(services.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(services: Services) -> Iterator[str]:
    """A fresh database with every migration applied."""
    with scratch_database(services) as url:
        yield url


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture
def settings(tmp_path: Path, services: Services, pg_url: str) -> Settings:
    """Settings wired to the shared servers, a fresh database and a private Redis key prefix."""
    s = Settings(data_dir=tmp_path / "fw", redis_url=services.redis_url, database_url=pg_url)
    s.bus.prefix = f"t{uuid.uuid4().hex[:8]}"
    return s


@pytest.fixture
def redis_client(services: Services) -> Iterator[redis_lib.Redis]:
    r = redis_lib.Redis.from_url(services.redis_url)
    yield r
    r.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED}")
    return SHARED
