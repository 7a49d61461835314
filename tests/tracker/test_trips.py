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
