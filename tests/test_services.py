"""Service start-up: embedded servers by default, one clear line for an unreachable external server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import redis

from tracker.config import Settings
from tracker.edges.services import ensure_services

ROOT = Path(__file__).resolve().parents[1]


def test_bad_database_url_gives_one_clear_line(tmp_path):
    url = "postgresql://fleetwatch@127.0.0.1:1/nowhere"
    env = {**os.environ, "FLEETWATCH_DATABASE_URL": url, "FLEETWATCH_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "scenarios.cli", "worker"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert url in lines[0] and "cannot connect to PostgreSQL" in lines[0]
    assert "Traceback" not in proc.stderr


def test_embedded_servers_start_reuse_and_stop(tmp_path, monkeypatch):
    """From a working directory with the data dir given relative to it — the default `.fleetwatch` of
    `make demo` (Redis chdirs to its --dir before binding its socket: a relative socket path broke there)."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("d"))
    first = ensure_services(settings)
    try:
        assert first.redis_url.startswith("unix://")
        redis.Redis.from_url(first.redis_url).set("k", "v")
        with psycopg.connect(first.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        second = ensure_services(settings)  # reuses the running servers, does not own them
        assert second.embedded_redis is not None and not second.embedded_redis.started
        assert second.embedded_pg is not None and not second.embedded_pg.started
        second.stop()
        assert redis.Redis.from_url(first.redis_url).get("k") == b"v"  # still running
    finally:
        first.stop()
    assert not (tmp_path / "d" / "redis" / "redis.sock").exists() or not _redis_alive(first.redis_url)
    assert not (tmp_path / "d" / "pg" / "postmaster.pid").exists()


def _redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False
