"""signal_loss: a 10-minute silence while moving or loaded; a parked truck sleeping is not; time passing
opens the episode live; a back-filled outage is no gap."""

import numpy as np
import polars as pl

from tests.tracker import synth


def _drive_with_gap(gap_s: float, vid="S1", dwell_first=0.0, speed=30.0):
    rng = np.random.default_rng(1)
    legs = [synth.leg("road", speed, dwell_s=dwell_first, gap_s=gap_s), synth.leg("far", speed)]
    return synth.track(synth.vehicle(vid), legs, rng, start="depot")


def test_silence_while_moving_is_signal_loss():
    eps, _ = synth.run(_drive_with_gap(700.0))
    (e,) = synth.of_kind(eps, "signal_loss")
    assert e.evidence["gap_s"] >= 700


def test_short_silence_is_not():
    eps, _ = synth.run(_drive_with_gap(400.0))
    assert synth.of_kind(eps, "signal_loss") == []


def test_advance_opens_the_episode_before_the_vehicle_returns():
    df = _drive_with_gap(900.0).sort("ts_ms")
    cut = int(df["ts_ms"].diff().arg_max())  # first fix after the silence
    before, after = df[:cut], df[cut:]
    from tracker.config import Settings
    from tracker.engine import Engine

    s = Settings()
    eng = Engine(synth.world(s), s)
    eng.process(before)
    last = int(before["ts_ms"].max())
    assert [e for e in eng.advance(last + 5 * 60_000) if e.kind == "signal_loss"] == []
    (opened,) = [e for e in eng.advance(last + 11 * 60_000) if e.kind == "signal_loss"]
    assert opened.status == "open" and opened.start_ts_ms == last
    closed = [e for e in eng.process(after) if e.kind == "signal_loss"]
    assert closed and closed[0].id == opened.id and closed[0].status == "closed"


def test_backfilled_outage_is_not_a_gap_and_retracts_what_the_live_view_raised():
    df = _drive_with_gap(0.0, speed=8.0).sort("ts_ms")
    ts = df["ts_ms"].to_numpy()
    hole = (ts >= ts[10]) & (ts < ts[10] + 700_000)  # an outage, back-filled later
    live, late = df.filter(~pl.Series(hole)), df.filter(pl.Series(hole)).with_columns(pl.lit(True).alias("backfill"))
    from tracker.engine import Engine
    from tracker.config import Settings

    s = Settings()
    eng = Engine(synth.world(s), s)
    seen = {}
    cut = int(np.searchsorted(live["ts_ms"].to_numpy(), ts[10] + 700_000)) + 3
    for part in (live[:cut], late, live[cut:]):
        for e in eng.process(part):
            seen[e.id] = e
    for e in eng.finish():
        seen[e.id] = e
    sl = [e for e in seen.values() if e.kind == "signal_loss"]
    assert sl and all(e.retracted for e in sl)


def test_parked_truck_sleeping_is_not():
    rng = np.random.default_rng(2)
    legs = [synth.leg("depot", 20.0, dwell_s=120.0, gap_s=1800.0), synth.leg("depot", 5.0, dwell_s=120.0)]
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), legs, rng, start="depot"))
    assert synth.of_kind(eps, "signal_loss") == []
