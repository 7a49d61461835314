"""unsealed_transport: loaded + cover open + moving outside sites; a dead declared sensor is suspected."""

import numpy as np
import polars as pl

from tests.tracker import synth


def _loaded_trip(cover, vid="M1", seed=1):
    rng = np.random.default_rng(seed)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3, cover=False),
            synth.leg("D", 36.0, load=3, cover=cover), synth.leg("D", 5.0, dwell_s=300, load=3, load_after=0)]
    return synth.track(synth.vehicle(vid), legs, rng, start="depot")


def test_open_cover_on_a_loaded_trip_is_one_episode():
    eps, _ = synth.run(_loaded_trip(cover=False))
    (e,) = synth.of_kind(eps, "unsealed_transport")
    assert e.severity == "confirmed" and e.status == "closed"


def test_closed_cover_is_compliant():
    eps, _ = synth.run(_loaded_trip(cover=True))
    assert synth.of_kind(eps, "unsealed_transport") == []


def test_declared_cover_sensor_reporting_nothing_is_suspected():
    df = _loaded_trip(cover=True).with_columns(pl.lit(None, dtype=pl.Boolean).alias("cover_closed"))
    eps, _ = synth.run(df)
    (e,) = synth.of_kind(eps, "unsealed_transport")
    assert e.severity == "suspected"


def test_truck_without_a_cover_sensor_is_not_judged_on_the_cover():
    eps, _ = synth.run(_loaded_trip(cover=False, vid="M2"))
    assert synth.of_kind(eps, "unsealed_transport") == []
