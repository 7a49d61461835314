"""Engine basics: speeding detected once, stable ids across batch splits and redelivery, state across batches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tracker.config import Settings
from tracker.engine import Engine
from tracker.reference import Vehicle
from tracker.world import World

T0 = 1_700_000_000_000


def _world() -> World:
    vs = [Vehicle(id=f"v{i}", kind="muck_truck", company="c1") for i in range(3)]
    return World.build(fences=[], vehicles=vs, permits=[], orders=[], settings=Settings())


def _track(vid: str, speeds: np.ndarray, dt_s: float = 10.0) -> pl.DataFrame:
    n = speeds.size
    step_deg = speeds / 3.6 * dt_s / (111_195.0 * np.cos(np.radians(22.5)))
    return pl.DataFrame({"vehicle_id": [vid] * n, "ts_ms": T0 + (np.arange(n) * dt_s * 1000).astype(np.int64),
                         "lon": 114.05 + np.cumsum(step_deg), "lat": np.full(n, 22.5), "speed_kmh": speeds})


def _final(eps):
    out = {}
    for e in eps:
        out[e.id] = e
    return out


def _run(eng: Engine, df: pl.DataFrame, cuts: list[int]) -> dict:
    eps = []
    bounds = [0, *cuts, df.height]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        eps += eng.process(df[a:b])
    eps += eng.finish()
    return _final(eps)


def test_speeding_one_episode_with_evidence():
    speeds = np.r_[np.full(20, 30.0), np.full(10, 55.0), np.full(20, 30.0)]
    eps = _run(Engine(_world(), Settings()), _track("v1", speeds), [])
    assert len(eps) == 1
    (e,) = eps.values()
    assert e.kind == "speeding" and e.status == "closed" and e.severity == "confirmed"
    assert e.start_ts_ms == T0 + 200_000 and e.end_ts_ms == T0 + 300_000
    assert e.evidence["thresholds"]["limit_kmh"] == 40.0
    fx = e.evidence["fixes"]["ts_ms"]
    assert fx[0] == T0 + 80_000 and fx[-1] == T0 + 420_000  # 2 min either side


def test_short_burst_is_not_speeding():
    speeds = np.r_[np.full(20, 30.0), np.full(3, 55.0), np.full(20, 30.0)]  # 20 s above the limit
    assert _run(Engine(_world(), Settings()), _track("v1", speeds), []) == {}


@pytest.mark.parametrize("cuts", [[1], [7, 21, 22], list(range(1, 60, 3))])
def test_batch_split_and_redelivery_give_identical_alerts(cuts):
    speeds = np.r_[np.full(20, 30.0), np.full(10, 55.0), np.full(5, 30.0), np.full(8, 60.0), np.full(17, 20.0)]
    df = pl.concat([_track("v1", speeds), _track("v2", speeds[::-1].copy())])
    whole = _run(Engine(_world(), Settings()), df.sort("ts_ms"), [])
    parts = _run(Engine(_world(), Settings()), df.sort("ts_ms"), cuts)
    eng = Engine(_world(), Settings())
    eps = eng.process(df) + eng.process(df) + eng.finish()  # at-least-once delivery
    again = _final(eps)
    assert len(whole) == 4
    strip = lambda d: {k: (v.start_ts_ms, v.end_ts_ms, v.severity, v.status) for k, v in d.items()}  # noqa: E731
    assert strip(whole) == strip(parts) == strip(again)
