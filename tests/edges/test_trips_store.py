"""Trips decided by the engine reach PostgreSQL through the worker, once per trip, counted per day."""

from __future__ import annotations

import polars as pl
import psycopg
import redis

from scenarios.demo import load_reference
from scenarios.sim import generate
from scenarios.sim.config import load_scenario
from tracker.edges import bus
from tracker.edges.trips_store import trip_counts
from tracker.edges.worker import Worker


def test_worker_persists_trips_exactly_once(settings, services):
    sim = generate(load_scenario("standard", seed=3, vehicles=20, hours=1.0))
    load_reference(settings.database_url, sim)
    r = redis.Redis.from_url(services.redis_url)
    names = bus.StreamNames(settings.bus.prefix, settings.bus.shards)
    bus.publish_fixes(r, names, sim.fixes, block_size=500)
    w = Worker(settings, services.redis_url, settings.database_url, consumer="t")
    try:
        while w.step(block_ms=200, count=16):
            pass
        expected = w.engine.trips.frame()
        bus.publish_fixes(r, names, sim.fixes.head(2000), block_size=500)  # redelivered data
        while w.step(block_ms=200, count=16):
            pass
    finally:
        w.close()
    assert expected.height >= 5
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT trip_id, vehicle_id, outcome FROM trips ORDER BY trip_id").fetchall()
        counts = trip_counts(conn, "vehicle_id")
    assert sorted(r[0] for r in rows) == sorted(expected["id"].to_list())
    assert sum(c[2] for c in counts) == expected.filter(expected["outcome"] == "completed").height


def test_live_state_carries_the_trip_under_way(settings, services):
    """While a truck is loaded on its way the live state names its trip (the vehicle panel's "current trip"),
    with the id the trip is stored under once decided; an ended trip is cleared from the live state."""
    from tracker.edges.live import read_live

    sim = generate(load_scenario("standard", seed=5, vehicles=20, hours=1.0))
    load_reference(settings.database_url, sim)
    r = redis.Redis.from_url(services.redis_url)
    names = bus.StreamNames(settings.bus.prefix, settings.bus.shards)
    fixes = sim.fixes.sort("received_ts_ms")
    half = fixes.height // 2
    w = Worker(settings, services.redis_url, settings.database_url, consumer="t")
    try:
        bus.publish_fixes(r, names, fixes.head(half), block_size=500)
        while w.step(block_ms=200, count=16):
            pass
        live = read_live(r, names)
        eng = w.engine
        vids = sorted(live)
        want = dict(zip(vids, eng.trips.current_trip_ids(eng.world.vidx(pl.Series(vids))),
                        strict=True))
        shown = {v: s.get("trip_id") for v, s in live.items()}
        assert shown == want
        under_way = {t for t in shown.values() if t}
        assert under_way, "no loaded truck mid-trip at half time"
        bus.publish_fixes(r, names, fixes.slice(half), block_size=500)
        while w.step(block_ms=200, count=16):
            pass
        w.trip_sink.write(w.conn, eng.trips.frame())
        live_after = read_live(r, names)
    finally:
        w.close()
    with psycopg.connect(settings.database_url) as conn:
        stored = {row[0] for row in conn.execute("SELECT trip_id FROM trips")}
    ended = {t for t in under_way if t not in {s.get("trip_id") for s in live_after.values()}}
    assert ended and ended <= stored  # the trip shown live is the trip stored, under the same id


def test_a_fleet_without_trip_vehicles_has_no_trip_under_way(settings):
    """Sweepers only: the trips table has no rows at all, and every vehicle's current trip is None."""
    import numpy as np

    from scenarios.evaluate import build_engine

    sim = generate(load_scenario("sanitation", seed=4, vehicles=6, hours=0.05))
    eng = build_engine(sim)
    eng.process(sim.fixes)
    ids = eng.trips.current_trip_ids(np.arange(eng.world.n_vehicles, dtype=np.int32))
    assert len(ids) == eng.world.n_vehicles > 0 and set(ids) == {None}
