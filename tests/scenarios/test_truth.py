"""Done-when 2: every labelled episode is visible in the raw fixes (per-fix re-derivation), and the deliberate
near misses are not."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from scenarios.truth import Checker, rederive

NEAR_AS = {"brief_overspeed": "speeding", "brief_fast_work": "sweeping_too_fast", "congestion_stop": "suspected_dumping",
           "gate_wait": "suspected_dumping",
           "route_deviation": "route_deviation", "speeding": "speeding", "sweeping_too_fast": "sweeping_too_fast"}


@pytest.mark.parametrize("which", ["standard_sim", "sanitation_sim"])
def test_every_labelled_episode_is_visible_in_the_fixes(which, request):
    sim = request.getfixturevalue(which)
    assert sim.truth.height >= 15
    bad = [(r["kind"], r["vehicle_id"], c.reason) for r, c in rederive(sim) if not c.ok]
    assert not bad, bad


def test_truth_is_visible_at_any_time_of_day():
    """Short periods starting at arbitrary times (as the demo runs them) label only what the data shows."""
    from scenarios.sim import generate, load_scenario

    sim = generate(load_scenario("standard", vehicles=120, hours=0.5, start_local="2024-05-14T14:00", seed=21))
    assert sim.truth.height > 0
    bad = [(r["kind"], r["vehicle_id"], c.reason) for r, c in rederive(sim) if not c.ok]
    assert not bad, bad


def test_truth_covers_the_kinds_of_issue_4(standard_sim, sanitation_sim):
    kinds = set(standard_sim.truth["kind"]) | set(sanitation_sim.truth["kind"])
    expected = {"route_deviation", "illegal_dumping", "suspected_dumping", "out_of_window", "no_permit",
                "restricted_zone", "signal_loss", "mixer_discharge", "sweeping_too_fast", "missed_segment",
                "missed_collection", "banned_hours_work", "no_transfer_arrival"}
    assert expected <= kinds, expected - kinds


def test_near_misses_do_not_pass_the_violation_check(standard_sim):
    ch = Checker(standard_sim)
    rows = [r for r in standard_sim.near_misses.iter_rows(named=True) if r["kind"] in NEAR_AS]
    assert rows, "the scenario should contain near misses"
    passed = []
    for r in rows:
        r2 = {**r, "kind": NEAR_AS[r["kind"]]}
        if r2["kind"] == "suspected_dumping":
            r2["place_id"] = next((p.id for p in standard_sim.city.permits if r["vehicle_id"] in p.vehicles), None)
        if ch.check(r2).ok:
            passed.append(r)
    assert not passed, passed


def test_checker_rejects_a_fabricated_episode(standard_sim):
    """The check can fail: a speeding label on a compliant vehicle's ordinary drive is rejected."""
    labelled = set(standard_sim.truth["vehicle_id"]) | set(standard_sim.near_misses["vehicle_id"])
    v = next(v for v in standard_sim.vehicles if v.kind == "muck_truck" and v.id not in labelled)
    row = {"kind": "speeding", "vehicle_id": v.id, "start_ts_ms": standard_sim.start_ts_ms,
           "end_ts_ms": standard_sim.end_ts_ms, "place_id": None}
    assert not Checker(standard_sim).check(row).ok
    row = {**row, "kind": "signal_loss", "end_ts_ms": standard_sim.start_ts_ms + 900_000}
    assert not Checker(standard_sim).check(row).ok


def test_missed_work_is_labelled_only_where_the_data_shows_it(sanitation_sim):
    """Missed work is a window's verdict, stamped at the window's end inside the simulated period, and its
    label passes the per-fix check."""
    sim = sanitation_sim
    ch = Checker(sim)
    rows = sim.truth.filter(pl.col("kind").is_in(["missed_segment", "missed_collection"]))
    assert rows.height > 0
    for r in rows.iter_rows(named=True):
        assert sim.start_ts_ms < r["end_ts_ms"] <= sim.end_ts_ms and ch.check(r).ok


def test_a_truck_collects_at_the_point_even_when_the_point_is_at_its_yards_gate(sanitation_sim):
    """Every collection stop happens inside the point's circle — also a first point at the truck's own depot
    gate (it must drive out of the yard first; it used to 'collect' from the middle of the yard, and the
    truth then held a collection the data could not show)."""
    from scenarios.city import Place
    from scenarios.sim import behaviour as B

    sim = sanitation_sim
    city = sim.city
    s = next(s for s in sim.plans.collection_schedules if len(s.points) >= 2)
    home = city.places[city.home[s.vehicle_id]]
    gate = Place(id="cp-gate", kind="collection_point", name="gate", node=home.node,
                 x=float(city.net.node_x[home.node]), y=float(city.net.node_y[home.node]), shape="circle",
                 radius_m=30.0)
    assert not home.contains(np.array([gate.x]), np.array([gate.y]), pad_m=-10.0)[0]  # the gate is not the yard
    pts = [gate, city.places[s.points[1]]]
    v = next(v for v in sim.vehicles if v.id == s.vehicle_id)
    ctx = B.Ctx(city=city, vehicle=v, rng=np.random.default_rng(5), t_begin_s=-600.0, t_end_s=3600.0 * 2)
    B.refuse_truck(ctx, pts, city.places[s.facility], list(s.windows))
    stops = [leg for leg in ctx.tl.legs if leg.tag.startswith("collect:")]
    assert {leg.tag for leg in stops} == {"collect:cp-gate", f"collect:{pts[1].id}"}
    for leg in stops:
        pt = gate if leg.tag == "collect:cp-gate" else pts[1]
        x, y, _, _ = ctx.tl.true_at(np.array([leg.t0_s, leg.t1_s]))
        assert pt.contains(x, y).all(), (leg.tag, leg.t0_s)


def test_checker_rejects_a_fabricated_no_transfer_arrival(sanitation_sim):
    """A compliant truck reached its facility: a no_transfer_arrival label on it is rejected."""
    sim = sanitation_sim
    labelled = set(sim.truth["vehicle_id"].to_list()) | set(sim.near_misses["vehicle_id"].to_list())
    s = next(s for s in sim.plans.collection_schedules if s.points and s.vehicle_id not in labelled)
    row = {"kind": "no_transfer_arrival", "vehicle_id": s.vehicle_id, "place_id": s.facility,
           "start_ts_ms": sim.start_ts_ms, "end_ts_ms": sim.start_ts_ms + 5_400_000}
    ch = Checker(sim)
    assert not ch.check(row).ok, ch.check(row).reason
    real = sim.truth.filter(pl.col("kind") == "no_transfer_arrival")
    assert real.height > 0 and all(ch.check(r).ok for r in real.iter_rows(named=True))


def test_a_few_seconds_out_along_a_zone_edge_is_one_visit_not_two():
    """Seed 4105: mixer CM0026 leaves zone-02 for 7 s along its edge and comes back. The rule keeps one visit
    across exits shorter than its tolerance; the truth must count the same way (it labelled two, and the
    engine's one alert looked like a miss)."""
    from scenarios.sim import generate, load_scenario

    sim = generate(load_scenario("standard", seed=4105, noise_m=10, dropout=0.05))
    tp = sim.config.truth
    z = sim.truth.filter(pl.col("kind") == "restricted_zone").sort("vehicle_id", "place_id", "start_ts_ms")
    gaps = z.with_columns((pl.col("start_ts_ms") - pl.col("end_ts_ms").shift(1).over("vehicle_id", "place_id"))
                          .alias("gap_ms")).drop_nulls("gap_ms")
    assert gaps.height == 0 or gaps["gap_ms"].min() >= tp.zone_rejoin_s * 1000
    assert z.filter(pl.col("vehicle_id") == "CM0026").height == 1
