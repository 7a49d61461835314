"""Per-fix reference implementation of the engine: small Python loops, one fix at a time, the whole track at
once (no batches, no ring, no snapshots, no numba).

Why it exists: the vectorised engine is fast because it is clever (batched scans, state tables with
snapshots, replays of late fixes). This is the same specification written the obvious way, so that property
tests can check the clever one against it on random tracks cut into random batches
(`tests/tracker/test_equivalence.py`), and so that the benchmark has an honest naive baseline.

`ReferenceEngine(world, settings).run(fixes)` → the final version of every episode (not retracted). It
reads the same parameters (`tracker.rules.load_params`) and uses the same geometry library; everything
else — hygiene, trips, debouncing, every rule's condition — is re-implemented here per fix.
"""

from tracker.reference_impl.engine import ReferenceEngine

__all__ = ["ReferenceEngine"]
