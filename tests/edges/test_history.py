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


def test_overlapping_batch_and_duplicates_within_a_batch_are_stored_once(pg_conn):
    df = _frame(1000)
    with pg_conn.transaction():
        assert history.write_fixes(pg_conn, df.slice(0, 600)) == 600
    # a redelivered block overlapping what is stored, with one fix twice in the batch itself: the fast COPY
    # meets the primary key, and the batch is merged instead — only the 400 new fixes land, in the same
    # transaction as the caller's other writes (which survive the failed attempt)
    batch = pl.concat([df.slice(500, 500), df.slice(900, 1)])
    with pg_conn.transaction():
        pg_conn.execute("CREATE TEMP TABLE marker (x int)")
        assert history.write_fixes(pg_conn, batch) == 400
        pg_conn.execute("INSERT INTO marker VALUES (1)")
    assert pg_conn.execute("SELECT count(*) FROM marker").fetchone()[0] == 1
    rows = pg_conn.execute("SELECT vehicle_id, ts FROM fixes").fetchall()
    assert len(rows) == len(set(rows)) == 1000
    # later batches without conflicts are stored as before (the merge path for a while, then the fast one)
    for k in range(history.MERGE_AFTER_CONFLICT + 2):
        with pg_conn.transaction():
            assert history.write_fixes(pg_conn, _frame(50, t0=1_763_900_000_000 + k * 10_000_000)) == 50
    assert pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] == 1000 + 50 * (history.MERGE_AFTER_CONFLICT + 2)
