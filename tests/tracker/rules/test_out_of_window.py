"""out_of_window: loaded and moving outside the permit's daily windows (22:00–06:00 for P1)."""

import numpy as np

from tests.tracker import synth


def _trip(t0_ms: int):
    rng = np.random.default_rng(1)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3),
            synth.leg("D", 36.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    return synth.track(synth.vehicle("M1"), legs, rng, start="depot", t0_ms=t0_ms)


def test_loaded_trip_after_six_is_out_of_window():
    eps, _ = synth.run(_trip(synth.T0 + 30 * 60_000))  # 06:00 local
    (e,) = synth.of_kind(eps, "out_of_window")
    assert e.place_id == "P1"


def test_loaded_trip_inside_the_night_window_is_compliant():
    eps, _ = synth.run(_trip(synth.T0 - 3 * 3_600_000))  # 02:30 local, the window that began at 22:00
    assert synth.of_kind(eps, "out_of_window") == []
    assert synth.of_kind(eps, "no_permit") == []
