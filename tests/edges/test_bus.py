"""The bus against a real Redis: sharding, groups, acknowledgement, reclaim, and trimming that keeps
unacknowledged entries."""

from __future__ import annotations

import numpy as np
import polars as pl

from tracker.edges import bus
from tracker.fix import conform


def _fixes(n: int, vehicles: int = 7) -> pl.DataFrame:
    return conform(pl.DataFrame({
        "vehicle_id": [f"V{i % vehicles}" for i in range(n)],
        "ts_ms": 1_763_800_000_000 + np.arange(n) * 1000,
        "lon": np.full(n, 114.05), "lat": np.full(n, 22.54),
    }))


def test_vehicle_always_maps_to_one_shard(settings, redis_client):
    names = bus.StreamNames(settings.bus.prefix, 3)
    bus.ensure_groups(redis_client, names)
    bus.publish_fixes(redis_client, names, _fixes(1000), block_size=100)
    seen: dict[str, set[str]] = {}
    for d in bus.read_new(redis_client, names.all_fixes(), "c1", 1000, 100):
        for vid in d.frame.get_column("vehicle_id").unique():
            seen.setdefault(vid, set()).add(d.stream)
    assert len(seen) == 7
    assert all(len(s) == 1 for s in seen.values())
    assert list(bus.shard_of(["V1", "V2"], 3)) == list(bus.shard_of(["V1", "V2"], 3))


def test_blocks_round_trip_every_fix(settings, redis_client):
    names = bus.StreamNames(settings.bus.prefix, 2)
    bus.ensure_groups(redis_client, names)
    src = _fixes(1234)
    ids = bus.publish_fixes(redis_client, names, src, block_size=500)
    assert len(ids) >= 3  # blocks, not one entry per fix
    got = pl.concat([d.frame for d in bus.read_new(redis_client, names.all_fixes(), "c", 100, 100)])
    assert got.sort(["vehicle_id", "ts_ms"]).equals(src.sort(["vehicle_id", "ts_ms"]))


def test_trim_never_drops_unacknowledged(settings, redis_client):
    names = bus.StreamNames(settings.bus.prefix, 1)
    bus.ensure_groups(redis_client, names)
    stream = names.fixes(0)
    bus.publish_fixes(redis_client, names, _fixes(300), block_size=100)  # 3 entries
    first = bus.read_new(redis_client, [stream], "c", 1, 100)[0]  # read 1, don't ack
    assert bus.safe_trim(redis_client, stream) == 0
    assert redis_client.xlen(stream) == 3
    bus.ack(redis_client, first)
    assert bus.safe_trim(redis_client, stream) == 1  # only the acknowledged entry goes
    assert redis_client.xlen(stream) == 2
    rest = bus.read_new(redis_client, [stream], "c", 10, 100)[0]
    assert len(rest.ids) == 2


def test_dead_consumer_entries_are_reclaimed(settings, redis_client):
    names = bus.StreamNames(settings.bus.prefix, 1)
    bus.ensure_groups(redis_client, names)
    stream = names.fixes(0)
    bus.publish_fixes(redis_client, names, _fixes(200), block_size=100)
    taken = bus.read_new(redis_client, [stream], "dead", 10, 100)[0]
    assert len(taken.ids) == 2
    # the consumer dies; a healthy one claims its idle entries
    claimed = bus.reclaim(redis_client, stream, "alive", min_idle_ms=0)
    assert claimed.ids == taken.ids
    assert claimed.frame.height == 200
    # and the dead consumer, restarted under its name, would also see what it had not acknowledged
    bus.ack(redis_client, claimed)
    assert bus.read_own_pending(redis_client, stream, "dead").ids == []


def test_garbage_entry_is_reported_not_fatal(settings, redis_client):
    names = bus.StreamNames(settings.bus.prefix, 1)
    bus.ensure_groups(redis_client, names)
    stream = names.fixes(0)
    redis_client.xadd(stream, {b"b": b"not arrow"})
    bus.publish_fixes(redis_client, names, _fixes(10), block_size=100)
    d = bus.read_new(redis_client, [stream], "c", 10, 100)[0]
    assert len(d.bad_ids) == 1 and len(d.ids) == 1 and d.frame.height == 10
