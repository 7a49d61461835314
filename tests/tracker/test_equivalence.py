"""Property: the vectorised engine, fed random tracks cut into random batches in delivery order (late,
back-filled, duplicated and invalid fixes included), ends with exactly the episodes of the per-fix reference
implementation run over the whole track at once."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tracker import synth
from tracker.config import Settings
from tracker.engine import Engine
from tracker.reference_impl import ReferenceEngine

LEG = st.fixed_dictionaries({
    "target": st.sampled_from(synth.LEG_TARGETS),
    "speed_kmh": st.sampled_from([8.0, 25.0, 36.0, 48.0, 65.0]),
    "dwell_s": st.sampled_from([0.0, 60.0, 200.0, 400.0, 700.0]),
    "load": st.sampled_from([None, 0, 3]),
    "load_after": st.sampled_from([0, 3]),
    "cover": st.booleans(),
    "lift": st.booleans(),
    "drum": st.sampled_from([1, 1, 2]),
    "drum_dwell": st.sampled_from([0, 1, 2]),
    "device": st.booleans(),
    "gap_s": st.sampled_from([0.0, 0.0, 0.0, 300.0, 700.0]),
    "dx": st.sampled_from([0.0, 0.0, 150.0, -400.0]),
    "dy": st.sampled_from([0.0, 0.0, 90.0, -300.0]),
})

TRACKS = st.lists(st.tuples(st.sampled_from([v.id for v in synth.VEHICLES]), st.lists(LEG, min_size=1, max_size=6),
                            st.sampled_from(["A", "D", "road", "depot", "plant"])), min_size=1, max_size=4,
                  unique_by=lambda t: t[0])  # one track per terminal: exactness holds within the retained window


#: batch sizes, cycled over the input (small ones make late fixes land after newer ones)
SIZES = st.lists(st.integers(1, 80), min_size=1, max_size=12)


def cut_points(n: int, sizes: list[int]) -> list[int]:
    cuts, at, i = [], 0, 0
    while at < n:
        at += sizes[i % len(sizes)]
        cuts.append(at)
        i += 1
    return cuts


#: the rules the per-fix reference implements (the sanitation rules of tracker.coverage have their own tests)
CORE = ["speeding", "unsealed_transport", "illegal_dumping", "suspected_dumping", "mixer_discharge",
        "route_deviation", "out_of_window", "no_permit", "restricted_zone", "signal_loss"]


def engine(s: Settings) -> Engine:
    return Engine(synth.world(s), s, rules=CORE)


def key(e) -> tuple:
    return (e.kind, e.vehicle_id, e.start_ts_ms, e.end_ts_ms, e.severity, e.place_id, e.status)


def run_engine(eng: Engine, parts: list[pl.DataFrame]) -> dict:
    latest = {}
    seen = 0
    for part in parts:
        for e in eng.process(part):
            latest[e.id] = e
        valid = part.filter(pl.col("valid")) if "valid" in part.columns else part
        if valid.height:
            seen = max(seen, int(valid["ts_ms"].max()))
        for e in eng.advance(seen):  # time passes, never beyond the data (the reference has no clock)
            latest[e.id] = e
    for e in eng.finish():
        latest[e.id] = e
    return latest


def make(tracks, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    vs = {v.id: v for v in synth.VEHICLES}
    frames = []
    for i, (vid, legs, start) in enumerate(tracks):
        df = synth.track(vs[vid], legs, rng, t0_ms=synth.T0 + i * 7_000, start=start)
        if df.height:
            frames.append(df)
    if not frames:
        return pl.DataFrame()
    df = pl.concat(frames, how="diagonal_relaxed").unique(subset=["vehicle_id", "ts_ms"], keep="first",
                                                           maintain_order=True)
    return synth.delivery_order(synth.add_faults(df, rng), rng, late_p=0.15, backfill_p=0.6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tracks=TRACKS, seed=st.integers(0, 2**31), sizes=SIZES)
def test_engine_matches_reference(tracks, seed, sizes):
    df = make(tracks, seed)
    if df.height == 0:
        return
    s = Settings()
    got = run_engine(engine(s), synth.batches(df, cut_points(df.height, sizes)))
    want = ReferenceEngine(synth.world(s), s).run(df)
    a = sorted(key(e) for e in got.values() if not e.retracted)
    b = sorted(key(e) for e in want)
    assert a == b


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks=TRACKS, seed=st.integers(0, 2**31), sizes1=SIZES, sizes2=SIZES)
def test_batch_splits_and_redelivery_agree(tracks, seed, sizes1, sizes2):
    """Two different cuts, and the whole input delivered twice, end with the same alerts."""
    df = make(tracks, seed)
    if df.height == 0:
        return
    cuts1, cuts2 = cut_points(df.height, sizes1), cut_points(df.height, sizes2)
    s = Settings()
    one = run_engine(engine(s), synth.batches(df, cuts1))
    two = run_engine(engine(s), synth.batches(df, cuts2))
    twice = run_engine(engine(s), [*synth.batches(df, cuts1), df])
    live = lambda d: sorted(key(e) for e in d.values() if not e.retracted)  # noqa: E731
    assert live(one) == live(two) == live(twice)
    for e in one.values():
        if e.retracted:
            continue
        assert e.id == two[e.id].id and e.evidence["thresholds"] == two[e.id].evidence["thresholds"]
