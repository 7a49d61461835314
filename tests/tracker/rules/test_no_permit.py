"""no_permit: loaded and moving with no permit valid today (M3's permit expired in March)."""

import numpy as np

from tests.tracker import synth


def test_loaded_trip_on_an_expired_permit_is_no_permit():
    rng = np.random.default_rng(1)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3),
            synth.leg("D", 36.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    eps, _ = synth.run(synth.track(synth.vehicle("M3"), legs, rng, start="depot"))
    (e,) = synth.of_kind(eps, "no_permit")
    assert e.severity == "confirmed"
    assert synth.of_kind(eps, "out_of_window") == []


def test_empty_truck_without_permit_is_not():
    rng = np.random.default_rng(2)
    legs = [synth.leg("D", 36.0, load=0), synth.leg("far", 36.0, load=0)]
    eps, _ = synth.run(synth.track(synth.vehicle("M3"), legs, rng, start="depot"))
    assert synth.of_kind(eps, "no_permit") == []
