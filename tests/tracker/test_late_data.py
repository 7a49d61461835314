"""Late data: out-of-order and back-filled fixes are evaluated in fix-time order and marked back-filled;
fixes older than the retained window are still evaluated (detached), never skipped; re-deliveries of old
data make no second alert; memory per vehicle stays within budget."""

import numpy as np
import polars as pl

from tests.tracker import synth


def _dump_trip():
    rng = np.random.default_rng(1)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3),
            synth.leg("far", 36.0, dwell_s=300.0, load=3, load_after=0, lift=True), synth.leg("A", 36.0)]
    return synth.track(synth.vehicle("M1"), legs, rng, start="depot").sort("ts_ms")


def _dump_window(df):
    lift = df["lifting"].fill_null(False).to_numpy()
    i = np.flatnonzero(lift)
    return int(df["ts_ms"][int(i[0])]) - 60_000, int(df["ts_ms"][int(i[-1])]) + 60_000


def test_dumping_during_an_outage_back_filled_later_is_found_and_marked():
    df = _dump_trip()
    a, b = _dump_window(df)
    hole = (df["ts_ms"] >= a) & (df["ts_ms"] <= b)
    live, late = df.filter(~hole), df.filter(hole).with_columns(pl.lit(True).alias("backfill"))
    k = int((live["ts_ms"] < b).sum()) + 5  # the back-fill arrives after five newer live fixes
    eps, _ = synth.run(pl.concat([live[:k], late, live[k:]], how="diagonal"), batch=7)
    (e,) = synth.of_kind(eps, "illegal_dumping")
    assert e.backfilled


def test_back_fill_older_than_the_retained_window_is_still_evaluated():
    df = _dump_trip()
    a, b = _dump_window(df)
    hole = (df["ts_ms"] >= a) & (df["ts_ms"] <= b)
    live, late = df.filter(~hole), df.filter(hole)
    from tracker.config import Settings
    from tracker.engine import Engine

    s = Settings()
    eng = Engine(synth.world(s), s)
    seen = {}
    for part in [live[i:i + 5] for i in range(0, live.height, 5)] + [late]:  # after the whole rest of the day
        seen.update((e.id, e) for e in eng.process(part))
    seen.update((e.id, e) for e in eng.finish())
    eps = {k: e for k, e in seen.items() if not e.retracted}
    assert eng.stats["detached"] == late.height
    # the lift found in the back-fill is reported (the load found empty after the outage already was, live)
    (e,) = [e for e in synth.of_kind(eps, "illegal_dumping") if e.evidence.get("detached")]
    assert e.backfilled and e.start_ts_ms == int(late.filter(pl.col("lifting"))["ts_ms"].min())


def test_redelivering_old_data_makes_no_second_alert():
    df = _dump_trip()
    eps1, _ = synth.run(df, batch=9)
    eps2, eng = synth.run(pl.concat([df, df[:40]]), batch=9)
    assert sorted(eps1) == sorted(eps2)
    assert eng.stats["redelivered_dropped"] + eng.stats["duplicates"] >= 40


def test_state_bytes_per_vehicle_within_budget_for_a_mixed_fleet():
    from tracker.config import Settings
    from tracker.engine import Engine
    from tracker.reference import Vehicle
    from tracker.world import World

    s = Settings()
    kinds = ["muck_truck"] * 40 + ["concrete_mixer"] * 15 + ["refuse_truck"] * 15 + ["sweeper"] * 30
    vs = [Vehicle(id=f"v{i}", kind=k, company="c") for i, k in enumerate(kinds * 100)]
    eng = Engine(World.build(fences=synth.fences(), vehicles=vs, permits=[], orders=[], settings=s), s)
    n = len(vs)
    eng.process(pl.DataFrame({"vehicle_id": [v.id for v in vs], "ts_ms": np.full(n, synth.T0),
                              "lon": np.full(n, 114.05), "lat": np.full(n, 22.54)}))
    assert eng.state_bytes() / n <= 2048
