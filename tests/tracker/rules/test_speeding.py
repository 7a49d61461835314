"""speeding: per-kind limit, zone limit by road class, 30 s debounce, implied speed when none is reported."""

import numpy as np
import polars as pl

from tests.tracker import synth


def test_muck_truck_over_40_for_a_minute_is_one_confirmed_episode():
    rng = np.random.default_rng(1)
    df = synth.track(synth.vehicle("M1"), [synth.leg("far", 52.0, load=0, cover=True)], rng, start="depot")
    eps, _ = synth.run(df)
    (e,) = synth.of_kind(eps, "speeding")
    assert e.severity == "confirmed" and e.evidence["thresholds"]["limit_kmh"] == 40.0
    assert e.evidence["max_speed_kmh"] > 40.0


def test_sweeper_at_48_is_within_its_50_limit():
    rng = np.random.default_rng(2)
    df = synth.track(synth.vehicle("S1"), [synth.leg("far", 48.0)], rng, start="depot")
    eps, _ = synth.run(df)
    assert synth.of_kind(eps, "speeding") == []


def test_expressway_zone_raises_the_muck_truck_limit_to_60():
    rng = np.random.default_rng(3)
    # along y = 0 from x = 1100 to x = 1900: inside the expressway stretch the whole way
    synth.PLACES["exp_a"], synth.PLACES["exp_b"] = (1100.0, 0.0), (1900.0, 0.0)
    df = synth.track(synth.vehicle("M1"), [synth.leg("exp_b", 52.0, load=0)], rng, start="exp_a", noise_m=3.0)
    eps, _ = synth.run(df)
    assert synth.of_kind(eps, "speeding") == []


def test_no_speed_reported_falls_back_to_implied_speed_as_suspected():
    rng = np.random.default_rng(4)
    df = synth.track(synth.vehicle("M2"), [synth.leg("far", 60.0)], rng, start="depot", noise_m=2.0)
    df = df.with_columns(pl.lit(0.0).alias("speed_kmh"))
    eps, _ = synth.run(df)
    (e,) = synth.of_kind(eps, "speeding")
    assert e.severity == "suspected"


def test_brief_burst_is_not_an_episode():
    rng = np.random.default_rng(5)
    df = synth.track(synth.vehicle("M1"), [synth.leg("road", 30.0), synth.leg("zone", 55.0)], rng, start="A")
    df = df.with_columns(pl.when(pl.int_range(pl.len()) % 9 == 0).then(55.0).otherwise(30.0).alias("speed_kmh"))
    eps, _ = synth.run(df)
    assert synth.of_kind(eps, "speeding") == []
