"""Pending entries of a consumer that died and never came back are taken over (XAUTOCLAIM) by a live
worker and stored once; trimming keeps them while they are unacknowledged."""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from tracker.edges import bus
from tracker.edges.worker import Worker
from tracker.fix import conform


def _fixes(n: int) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "vehicle_id": [f"R{i % 6}" for i in range(n)],
        "ts_ms": 1_763_800_000_000 + np.arange(n) * 1000,
        "lon": np.full(n, 114.05), "lat": np.full(n, 22.54),
    }))


def test_dead_consumers_entries_are_claimed_stored_once_and_not_trimmed_before(settings, redis_client, pg_conn):
    settings.bus.shards = 1
    names = bus.StreamNames(settings.bus.prefix, 1)
    stream = names.fixes(0)
    bus.ensure_groups(redis_client, names)
    bus.publish_fixes(redis_client, names, _fixes(900), block_size=100)  # 9 entries
    taken = bus.read_new(redis_client, [stream], "dead-worker", 5, 100)[0]  # reads 5, dies before storing
    assert len(taken.ids) == 5
    w = Worker(settings, settings.redis_url, settings.database_url, [0], consumer="alive", claim_idle_ms=300)
    try:
        w._last_trim = 0.0
        w._maybe_trim()  # nothing acknowledged yet: nothing may go
        assert redis_client.xlen(stream) == 9
        deadline = time.monotonic() + 30
        while pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] < 900:
            assert time.monotonic() < deadline, "dead consumer's entries were never reclaimed"
            w.step(block_ms=100)
        assert redis_client.xpending(stream, bus.GROUP)["pending"] == 0
        w.step(block_ms=10)
        assert pg_conn.execute("SELECT count(*), count(DISTINCT (vehicle_id, ts)) FROM fixes").fetchone() == (900, 900)
        w._last_trim = 0.0
        w._maybe_trim()  # everything acknowledged: the stream can be emptied
        assert redis_client.xlen(stream) == 0
    finally:
        w.close()


def test_overlapped_steps_acknowledge_a_batch_only_after_its_commit(settings, redis_client, pg_conn):
    settings.bus.shards = 1
    names = bus.StreamNames(settings.bus.prefix, 1)
    stream = names.fixes(0)
    bus.ensure_groups(redis_client, names)
    w = Worker(settings, settings.redis_url, settings.database_url, [0], consumer="w")
    try:
        bus.publish_fixes(redis_client, names, _fixes(600), block_size=100)  # 6 entries
        assert w.step(block_ms=100, count=3, overlap=True) == 300
        # its transaction may be in flight, but nothing of it is acknowledged yet
        assert redis_client.xpending(stream, bus.GROUP)["pending"] == 3
        assert w.step(block_ms=100, count=3, overlap=True) == 300
        # the first batch was committed before it was acknowledged; the second is still on its way
        assert redis_client.xpending(stream, bus.GROUP)["pending"] == 3
        assert pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] >= 300
        w.flush()
        assert redis_client.xpending(stream, bus.GROUP)["pending"] == 0
        assert pg_conn.execute("SELECT count(*), count(DISTINCT (vehicle_id, ts)) FROM fixes").fetchone() == (600, 600)
        assert w.stats.stored == 600
    finally:
        w.close()
