"""illegal_dumping: lift or load drop outside allowed places; unloading inside the disposal site is fine."""

import numpy as np

from tests.tracker import synth


def _trip(unload_at: str, seed=1):
    rng = np.random.default_rng(seed)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3),
            synth.leg(unload_at, 36.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    return synth.track(synth.vehicle("M1"), legs, rng, start="depot")


def test_lift_by_the_road_is_confirmed_dumping():
    eps, _ = synth.run(_trip("far"))
    (e,) = synth.of_kind(eps, "illegal_dumping")
    assert e.severity == "confirmed"
    x, y = synth.PLACES["far"]
    from geofences.local import to_lonlat

    lon, lat = to_lonlat(x, y, synth.ORIGIN)
    assert abs(e.lon - lon) < 0.001 and abs(e.lat - lat) < 0.001


def test_unloading_inside_the_disposal_site_is_compliant():
    eps, eng = synth.run(_trip("D"))
    assert synth.of_kind(eps, "illegal_dumping") == []
    trips = eng.trips.frame()
    assert trips.filter(trips["outcome"] == "completed").height == 1
