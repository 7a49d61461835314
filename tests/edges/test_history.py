"""History in a real PostgreSQL: idempotent writes, daily partitions, alert upserts by stable id."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from tracker.edges import history
from tracker.episode import Episode
from tracker.fix import conform


def _frame(n: int, t0: int = 1_763_800_000_000) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "vehicle_id": [f"V{i % 5}" for i in range(n)],
        "ts_ms": t0 + np.arange(n) * 60_000,  # spans two UTC days for n > 1440/5
        "lon": np.linspace(114.0, 114.1, n), "lat": np.full(n, 22.5),
        "cover_closed": [True, None] * (n // 2),
    })).with_columns(pl.lit(0x8C4BA0A415A0FFF, dtype=pl.UInt64).alias("h3"))


def test_write_is_idempotent_and_partitioned(pg_conn):
    df = _frame(3000)
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df) == 3000
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df) == 0  # redelivery stores nothing twice
    assert pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] == 3000
    assert pg_conn.execute("SELECT count(*) FROM fixes_default").fetchone()[0] == 0
    parts = pg_conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'fixes'::regclass").fetchone()[0]
    assert parts >= 3  # default + at least two days
    # nulls stay nulls (a missing sensor is not a closed cover)
    nulls = pg_conn.execute("SELECT count(*) FROM fixes WHERE cover_closed IS NULL").fetchone()[0]
    assert nulls == 1500


def test_track_returns_time_ordered_fixes(pg_conn):
    df = _frame(100)
    with pg_conn.transaction():
        history.write_fixes(pg_conn, df.reverse())
    t = history.track(pg_conn, "V1", datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    assert t.height == 20
    assert t.get_column("ts").is_sorted()


def test_alerts_upsert_by_stable_id(pg_conn):
    e = Episode.new("speeding", "V1", 1_763_800_000_000, lon=114.0, lat=22.5, evidence={"max_kmh": 61})
    history.upsert_alerts(pg_conn, [e])
    e2 = Episode.new("speeding", "V1", 1_763_800_000_000, lon=114.0, lat=22.5, status="closed",
                     end_ts_ms=1_763_800_060_000, evidence={"max_kmh": 65})
    assert e2.id == e.id
    history.upsert_alerts(pg_conn, [e2])
    rows = pg_conn.execute("SELECT status, evidence->>'max_kmh' FROM alerts").fetchall()
    assert rows == [("closed", "65")]
