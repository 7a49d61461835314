"""mixer_discharge: drum reversing outside sites and plants; without a drum sensor, a failed trip's stop."""

import numpy as np

from tests.tracker import synth


def test_reverse_drum_by_the_road_is_confirmed():
    rng = np.random.default_rng(1)
    legs = [synth.leg("plant", 20.0, dwell_s=300.0), synth.leg("far", 36.0, dwell_s=300.0, drum_dwell=2)]
    eps, _ = synth.run(synth.track(synth.vehicle("X1"), legs, rng, start="plant"))
    (e,) = synth.of_kind(eps, "mixer_discharge")
    assert e.severity == "confirmed"


def test_reverse_drum_at_the_construction_site_is_compliant():
    rng = np.random.default_rng(2)
    legs = [synth.leg("plant", 20.0, dwell_s=300.0), synth.leg("A", 36.0, dwell_s=300.0, drum_dwell=2)]
    eps, _ = synth.run(synth.track(synth.vehicle("X1"), legs, rng, start="plant"))
    assert synth.of_kind(eps, "mixer_discharge") == []


def test_mixer_without_drum_sensor_stopping_long_then_back_to_the_plant_is_suspected():
    rng = np.random.default_rng(3)
    legs = [synth.leg("plant", 20.0, dwell_s=300.0), synth.leg("far", 36.0, dwell_s=600.0),
            synth.leg("plant", 36.0, dwell_s=600.0)]
    eps, _ = synth.run(synth.track(synth.vehicle("X2"), legs, rng, start="plant"))
    (e,) = synth.of_kind(eps, "mixer_discharge")
    assert e.severity == "suspected"
