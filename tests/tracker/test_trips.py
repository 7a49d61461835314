"""Trips and manifests: origin → destination with load states, counts per vehicle, company, site, day."""

import numpy as np

from tests.tracker import synth


def _two_trips(vid="M1"):
    rng = np.random.default_rng(1)
    legs = []
    for _ in range(2):
        legs += [synth.leg("A", 30.0, dwell_s=400.0, load=0, load_after=3),
                 synth.leg("D", 36.0, dwell_s=300.0, load=3, load_after=0, lift=True)]
    return synth.track(synth.vehicle(vid), legs, rng, start="depot", t0_ms=synth.T0 - 5 * 3_600_000)


def test_sensor_truck_makes_two_completed_trips_with_manifest_fields():
    _, eng = synth.run(_two_trips())
    df = eng.trips.frame()
    done = df.filter(df["outcome"] == "completed")
    assert done.height == 2
    assert set(done["origin_fence"]) == {"A"} and set(done["dest_fence"]) == {"D"}
    assert set(done["doc_id"]) == {"P1"} and set(done["load_source"]) == {"sensor"}
    assert eng.trips.counts("vehicle_id")["trips"].to_list() == [2]
    assert eng.trips.counts("company")["trips"].sum() == 2
    assert eng.trips.counts("dest_fence")["dest_fence"].to_list() == ["D"]


def test_truck_without_sensor_infers_loading_from_dwell_at_its_site():
    _, eng = synth.run(_two_trips("M2"))
    done = eng.trips.frame().filter(eng.trips.frame()["outcome"] == "completed")
    assert done.height == 2 and set(done["load_source"]) == {"inferred"}


def test_live_state_names_the_current_trip():
    rng = np.random.default_rng(2)
    legs = [synth.leg("A", 30.0, dwell_s=400.0, load=0, load_after=3, cover=True),
            synth.leg("road", 36.0, load=3, cover=True)]
    df = synth.track(synth.vehicle("M1"), legs, rng, start="depot", t0_ms=synth.T0 - 5 * 3_600_000)
    from tracker.config import Settings
    from tracker.engine import Engine

    s = Settings()
    eng = Engine(synth.world(s), s)
    eng.process(df)
    live = eng.live_state()
    row = live.row(0, named=True)
    assert row["vehicle_id"] == "M1" and row["status"] == "moving" and row["trip_id"] is not None


def test_take_changed_reports_each_decision_once():
    from tracker.config import Settings
    from tracker.engine import Engine

    s = Settings()
    eng = Engine(synth.world(s), s)
    df = _two_trips().sort("ts_ms")
    half = df.height // 2
    eng.process(df[:half])
    first = eng.trips.take_changed()
    eng.process(df[half:])
    second = eng.trips.take_changed()
    assert eng.trips.take_changed().height == 0
    done = [t for t in first["id"].to_list() + second["id"].to_list()]
    assert len(set(done)) == 2 and set(first["id"]).isdisjoint(second["id"])


def _outage_at_the_disposal_site(back_to: str):
    """M2 (no sensors) loads at A, drives to D, unloads, drives off to `back_to`; every fix from just before
    it reached D until it had left is lost (no back-fill)."""
    import polars as pl

    from geofences.local import to_xy_m

    rng = np.random.default_rng(3)
    legs = [synth.leg("A", 30.0, dwell_s=400.0), synth.leg("D", 36.0, dwell_s=300.0),
            synth.leg(back_to, 36.0)]
    df = synth.track(synth.vehicle("M2"), legs, rng, start="depot", t0_ms=synth.T0 - 5 * 3_600_000)
    x, y = to_xy_m(df["lon"].to_numpy(), df["lat"].to_numpy(), synth.ORIGIN)
    near_d = np.hypot(x - 3000.0, y) < 200.0
    return df.filter(pl.Series(~near_d))


def test_a_sensorless_truck_back_in_view_next_to_its_destination_after_an_outage_completed_its_trip():
    eps, eng = synth.run(_outage_at_the_disposal_site("far"))
    trips = eng.trips.frame()
    done = trips.filter(trips["outcome"] == "completed")
    assert done.height == 1 and done["dest_fence"].to_list() == ["D"]
    # driving off to the north-west afterwards is an empty truck going elsewhere, not a loaded detour
    assert synth.of_kind(eps, "route_deviation") == [] and synth.of_kind(eps, "suspected_dumping") == []


def test_an_outage_far_from_any_destination_does_not_complete_a_trip():
    import polars as pl

    rng = np.random.default_rng(4)
    legs = [synth.leg("A", 30.0, dwell_s=400.0), synth.leg("road", 36.0, gap_s=400.0), synth.leg("road", 36.0, dx=300.0)]
    df = synth.track(synth.vehicle("M2"), legs, rng, start="depot", t0_ms=synth.T0 - 5 * 3_600_000)
    _, eng = synth.run(df)
    trips = eng.trips.frame()
    assert trips.filter(pl.col("outcome") == "completed").height == 0


def test_a_loaded_truck_that_stops_outside_its_own_site_and_drives_back_in_was_not_queueing():
    """Left its site loaded (no sensor), stood 10 minutes 250 m down the road, went back in to load again:
    a queue at a gate is for getting in — a truck that just left loaded does not queue to return."""
    rng = np.random.default_rng(5)
    legs = [synth.leg("A", 30.0, dwell_s=400.0), synth.leg("A", 30.0, dx=250.0, dwell_s=600.0),
            synth.leg("A", 20.0, dwell_s=400.0)]
    df = synth.track(synth.vehicle("M2"), legs, rng, start="depot", t0_ms=synth.T0 - 5 * 3_600_000)
    eps, _ = synth.run(df)
    (e,) = synth.of_kind(eps, "suspected_dumping", "M2")
    assert e.severity == "suspected"
