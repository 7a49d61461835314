"""Trips decided by the engine reach PostgreSQL through the worker, once per trip, counted per day."""

from __future__ import annotations

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
