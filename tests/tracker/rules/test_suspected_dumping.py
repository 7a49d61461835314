"""suspected_dumping: no sensor, a long loaded stop by the road and a trip that never reaches its destination."""

import numpy as np

from tests.tracker import synth


def _trip(stop_s: float, then: str, seed=1):
    rng = np.random.default_rng(seed)
    legs = [synth.leg("A", 20.0, dwell_s=400.0), synth.leg("far", 36.0, dwell_s=stop_s), synth.leg(then, 36.0, dwell_s=600.0)]
    return synth.track(synth.vehicle("M2"), legs, rng, start="depot")


def test_long_stop_then_back_to_the_site_is_suspected_dumping_at_the_stop():
    eps, eng = synth.run(_trip(600.0, "A"))
    (e,) = synth.of_kind(eps, "suspected_dumping")
    assert e.severity == "suspected"
    assert e.end_ts_ms - e.start_ts_ms >= 300_000
    assert "failed" in eng.trips.frame()["outcome"].to_list()


def test_long_stop_on_a_trip_that_reaches_the_disposal_site_is_not():
    eps, _ = synth.run(_trip(600.0, "D"))
    assert synth.of_kind(eps, "suspected_dumping") == []


def test_short_stop_is_not():
    eps, _ = synth.run(_trip(200.0, "A"))
    assert synth.of_kind(eps, "suspected_dumping") == []


def test_long_stop_just_outside_the_disposal_site_it_never_enters_is_suspected():
    """Dumping by the disposal site's fence (saving the fee) is still dumping: a stop 140 m from the site it
    then drives away from — back to its own site — was no queue at the gate."""
    rng = np.random.default_rng(4)
    legs = [synth.leg("A", 20.0, dwell_s=400.0), synth.leg("D", 36.0, dwell_s=600.0, dx=-260.0),
            synth.leg("A", 36.0, dwell_s=600.0)]
    eps, eng = synth.run(synth.track(synth.vehicle("M2"), legs, rng, start="depot"))
    (e,) = synth.of_kind(eps, "suspected_dumping")
    assert e.end_ts_ms - e.start_ts_ms >= 300_000
    assert "failed" in eng.trips.frame()["outcome"].to_list()


def test_the_same_stop_followed_by_unloading_at_the_disposal_site_is_a_queue():
    rng = np.random.default_rng(4)
    legs = [synth.leg("A", 20.0, dwell_s=400.0), synth.leg("D", 36.0, dwell_s=600.0, dx=-260.0),
            synth.leg("D", 10.0, dwell_s=300.0), synth.leg("A", 36.0, dwell_s=600.0)]
    eps, eng = synth.run(synth.track(synth.vehicle("M2"), legs, rng, start="depot"))
    assert synth.of_kind(eps, "suspected_dumping") == []
    assert "completed" in eng.trips.frame()["outcome"].to_list()
