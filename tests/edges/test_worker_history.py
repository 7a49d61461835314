"""History written by workers: the binary COPY payload stores exactly what the CSV one does, and retention
drops whole daily partitions, logs itself in the audit chain, and lets late data for a dropped day in again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tracker.edges import audit, history
from tracker.fix import conform

DAY = 86_400_000


def _frame(n: int, t0: int, step_ms: int = 60_000) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "vehicle_id": [f"Vé{i % 7}" if i % 3 else f"V{i % 7}" for i in range(n)],
        "ts_ms": t0 + np.arange(n) * step_ms,
        "lon": np.linspace(114.0, 114.1, n), "lat": np.full(n, 22.5),
        "cover_closed": [True, None, False] * (n // 3) + [None] * (n % 3),
        "load": [3, None] * (n // 2) + [None] * (n % 2), "drum": [None, 2] * (n // 2) + [0] * (n % 2),
        "alarm": np.full(n, 2**31 + 5), "status": np.arange(n) % 7, "source": ["jt808"] * n,
        "received_ts_ms": t0 + np.arange(n) * step_ms + 1234,
    })).with_columns(pl.Series("h3", np.arange(n, dtype=np.uint64) + np.uint64(0x8C4BA0A415A0FFF)))


def _rows(conn):
    return conn.execute(f"SELECT {', '.join(history.HISTORY_COLUMNS)} FROM fixes ORDER BY vehicle_id, ts").fetchall()


def test_binary_copy_stores_exactly_what_csv_stores(pg_conn, monkeypatch):
    df = _frame(1001, 1_763_800_000_000)
    monkeypatch.setattr(history, "COPY_FORMAT", "csv")
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df) == 1001
    via_csv = _rows(pg_conn)
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL fleetwatch.retention = 'on'")
        pg_conn.execute("DELETE FROM fixes")
    monkeypatch.setattr(history, "COPY_FORMAT", "binary")
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df) == 1001
    assert _rows(pg_conn) == via_csv
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df) == 0  # idempotent either way


def test_retention_drops_whole_days_and_is_audited(pg_conn):
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    t0 = int(datetime(2026, 11, 17, tzinfo=UTC).timestamp() * 1000)
    with pg_conn.transaction():
        history.write_fixes(pg_conn, _frame(6 * 24, t0, step_ms=3_600_000))  # hourly, 17th … 22nd
    with pytest.raises(Exception):  # the append-only guard still refuses an ordinary delete
        pg_conn.execute("DELETE FROM fixes")
    summary = history.apply_retention(pg_conn, 2, actor="tester", now=now)
    assert summary["partitions_dropped"] == ["fixes_20261117", "fixes_20261118", "fixes_20261119"]
    assert summary["rows"] == 3 * 24
    left = pg_conn.execute("SELECT min(ts), count(*) FROM fixes").fetchone()
    assert left == (datetime(2026, 11, 20, tzinfo=UTC), 3 * 24)
    last = audit.entries(pg_conn, limit=1)[0]
    assert (last.actor, last.action) == ("tester", "retention.purge")
    assert audit.verify(pg_conn).ok
    with pg_conn.transaction():  # late back-fill for a dropped day lands in a re-created partition
        assert history.write_fixes(pg_conn, _frame(1, t0)) == 1
    assert pg_conn.execute("SELECT count(*) FROM fixes_default").fetchone()[0] == 0


def test_retention_command(settings, pg_conn, monkeypatch):
    from scenarios.cli import app
    from tracker.config import get_settings

    old = int((datetime.now(tz=UTC) - timedelta(days=10)).timestamp() * 1000)
    with pg_conn.transaction():
        history.write_fixes(pg_conn, _frame(3, old, step_ms=DAY))
    for k, v in {"FLEETWATCH_REDIS_URL": settings.redis_url, "FLEETWATCH_DATABASE_URL": settings.database_url,
                 "FLEETWATCH_DATA_DIR": str(settings.data_dir)}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["history", "retention", "--days", "5"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["rows"] == 3 and len(out["partitions_dropped"]) == 3
