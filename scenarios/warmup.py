"""Compile the engine's numba kernels ahead of time.

The tracker's per-vehicle scans are numba kernels cached on disk (`cache=True`); the first process after a
fresh clone or a code change compiles them (~30 s on this machine), later ones load the cache in well under
a second. `make install` runs this once, and `fleetwatch demo` runs it before the feed starts, so nobody
sees a stalled map while the JIT works.
"""

from __future__ import annotations

import time

from tracker.config import Settings


def warm_up(settings: Settings | None = None) -> float:
    """Run a tiny simulated city through a throwaway engine; returns the seconds it took."""
    from geofences.geojson import load_fences
    from scenarios.sim import generate
    from scenarios.sim.config import load_scenario
    from tracker.engine import Engine
    from tracker.world import World

    settings = settings or Settings()
    t0 = time.perf_counter()
    sim = generate(load_scenario("standard", seed=1, vehicles=10, hours=0.25))
    world = World.build(fences=load_fences(sim.fence_collection), vehicles=sim.vehicles, permits=sim.permits,
                        orders=sim.orders, settings=settings)
    engine = Engine(world, settings)
    half = sim.fixes.height // 2
    engine.process(sim.fixes.slice(0, half))
    engine.process(sim.fixes.slice(half))
    engine.advance(sim.end_ts_ms + 3_600_000)
    engine.finish()
    return time.perf_counter() - t0
