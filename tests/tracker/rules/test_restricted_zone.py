"""restricted_zone: inside a zone while it is in force; a zone outside its window is not."""

import numpy as np

from tests.tracker import synth


def test_parking_in_the_all_day_zone_is_an_episode_naming_the_zone_and_version():
    rng = np.random.default_rng(1)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone", 25.0, dwell_s=300.0),
                                                          synth.leg("far", 25.0)], rng, start="road"))
    (e,) = synth.of_kind(eps, "restricted_zone")
    assert e.place_id == "zone" and e.evidence["fence"]["version"] == 2


def test_morning_zone_before_seven_is_not_in_force():
    rng = np.random.default_rng(2)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone_am", 25.0, dwell_s=300.0)], rng,
                                   start="road"))  # 05:30 local: the zone applies 07:00–09:00
    assert synth.of_kind(eps, "restricted_zone") == []


def test_morning_zone_at_eight_is():
    rng = np.random.default_rng(3)
    eps, _ = synth.run(synth.track(synth.vehicle("S1"), [synth.leg("zone_am", 25.0, dwell_s=300.0)], rng,
                                   start="road", t0_ms=synth.T0 + 150 * 60_000))
    assert len(synth.of_kind(eps, "restricted_zone")) == 1
