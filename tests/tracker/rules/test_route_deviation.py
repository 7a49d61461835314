"""route_deviation: ≥ 60 s and ≥ 200 m outside the permit's corridor while loaded; escalation; the
provisional path for trucks first seen with their load unknown."""

import numpy as np

from tests.tracker import synth


def _trip(via: str, vid="M1", start="depot", first_leg=True, seed=1):
    rng = np.random.default_rng(seed)
    legs = ([synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3)] if first_leg else []) + [
        synth.leg(via, 30.0, load=3), synth.leg("D", 30.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    return synth.track(synth.vehicle(vid), legs, rng, start=start)


def test_detour_off_the_corridor_is_a_deviation_with_route_evidence():
    eps, _ = synth.run(_trip("far"))
    (e,) = synth.of_kind(eps, "route_deviation")
    assert e.place_id == "P1" and e.severity == "confirmed"
    assert e.evidence["doc"]["route"] == {"id": "route", "kind": "route", "version": 3}
    assert e.evidence["max_off_route_m"] > 500


def test_driving_along_the_corridor_is_compliant():
    eps, _ = synth.run(_trip("road"))
    assert synth.of_kind(eps, "route_deviation") == []


def test_long_deviation_escalates():
    rng = np.random.default_rng(5)
    legs = [synth.leg("A", 20.0, dwell_s=400.0, load=0, load_after=3), synth.leg("far", 8.0, load=3),
            synth.leg("D", 30.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    eps, _ = synth.run(synth.track(synth.vehicle("M1"), legs, rng, start="depot"))
    (e,) = synth.of_kind(eps, "route_deviation")
    assert e.evidence["level"] >= 2  # the detour at 8 km/h lasts well over 10 minutes


def test_truck_first_seen_on_the_road_deviating_then_unloading_at_its_destination_is_alerted():
    eps, _ = synth.run(_trip("far", vid="M2", start="road", first_leg=False))
    (e,) = synth.of_kind(eps, "route_deviation")
    assert e.severity == "suspected"


def test_truck_first_seen_on_the_road_driving_home_off_the_corridor_is_not():
    rng = np.random.default_rng(6)
    legs = [synth.leg("far", 30.0), synth.leg("depot", 30.0, dwell_s=600.0)]
    eps, _ = synth.run(synth.track(synth.vehicle("M2"), legs, rng, start="road"))
    assert synth.of_kind(eps, "route_deviation") == []


def test_two_multipath_outliers_minutes_apart_are_not_a_deviation():
    """Two lone fixes thrown ~180 m off the corridor 130 s apart: the step into the second one (~200 m) is
    not travel outside the corridor — only steps between two fixes that are both outside count."""
    import polars as pl

    df = _trip("road")
    x_lat = 180.0 / 111_000.0
    on_route = (df["load"] == 3) & (df["speed_kmh"] > 20)
    idx = np.flatnonzero(on_route.to_numpy())
    a, b = int(idx[len(idx) // 3]), int(idx[len(idx) // 3]) + 13  # 13 fixes = 130 s later
    lat = df["lat"].to_numpy().copy()
    lat[[a, b]] += x_lat
    eps, _ = synth.run(df.with_columns(pl.Series("lat", lat)))
    assert synth.of_kind(eps, "route_deviation") == []
    # the same two fixes as the ends of a real excursion (every fix between them off the corridor) do deviate
    lat2 = df["lat"].to_numpy().copy()
    lat2[a:b + 1] += x_lat
    eps2, _ = synth.run(df.with_columns(pl.Series("lat", lat2)))
    assert len(synth.of_kind(eps2, "route_deviation")) == 1
