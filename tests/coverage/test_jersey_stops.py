"""Collection stops inferred from the real Jersey City refuse-truck feed: sane facts, per truck."""

from __future__ import annotations


import polars as pl
import pytest

from scenarios import jersey
from scenarios.shared_data import shared_dir
from scenarios.jersey_stops import MAX_STOP_S, MIN_STOP_S, inferred_stops, per_truck, report

DATA = shared_dir() / "data" / "jersey_city_refuse"
pytestmark = pytest.mark.skipif(not (DATA / "all_dedup.csv").is_file(), reason="shared Jersey City data absent")


@pytest.fixture(scope="module")
def fixes():
    return jersey.read_dedup(DATA / "all_dedup.csv")


@pytest.fixture(scope="module")
def clusters(fixes):
    return inferred_stops(fixes)


def test_stops_are_real_dwell_times_in_jersey_city(fixes, clusters):
    stops = clusters.filter(pl.col("kind") == "stop")
    assert stops.height > 500  # a day of 68 trucks on collection rounds
    assert stops["dwell_s"].min() >= MIN_STOP_S and stops["dwell_s"].max() <= MAX_STOP_S
    assert 90 <= stops["dwell_s"].median() <= 600
    # around Jersey City, NJ — with disposal trips as far as the Meadowlands (Lyndhurst, 40.86 N)
    assert stops["lon"].is_between(-74.35, -73.90).all() and stops["lat"].is_between(40.55, 40.95).all()
    assert stops.filter(pl.col("lat").is_between(40.66, 40.77) & pl.col("lon").is_between(-74.12, -74.02)).height \
        >= 0.8 * stops.height  # most of them in the city itself
    assert set(stops["vehicle_id"].unique().to_list()) <= set(fixes["vehicle_id"].unique().to_list())
    assert stops["site"].null_count() == 0 and stops["site"].n_unique() < stops.height  # points are revisited


def test_a_trucks_stops_do_not_overlap_and_lie_within_its_track(fixes, clusters):
    c = clusters.sort("vehicle_id", "start_ts_ms")
    overlap = c.filter((pl.col("vehicle_id") == pl.col("vehicle_id").shift(1))
                       & (pl.col("start_ts_ms") < pl.col("end_ts_ms").shift(1)))
    assert overlap.height == 0
    span = fixes.group_by("vehicle_id").agg(pl.col("ts_ms").min().alias("a"), pl.col("ts_ms").max().alias("b"))
    j = c.join(span, on="vehicle_id")
    assert j.filter((pl.col("start_ts_ms") < pl.col("a")) | (pl.col("end_ts_ms") > pl.col("b"))).height == 0


def test_per_truck_report(fixes, clusters):
    t = per_truck(fixes, clusters)
    assert t.height == fixes["vehicle_id"].n_unique() == 68
    busy = t.filter(pl.col("stops") > 0)
    assert busy.height >= 50
    assert (busy["sites"] <= busy["stops"]).all() and (busy["sites"] >= 1).all()
    assert (t["route_km"] >= 0).all() and t["route_km"].max() < 400
    assert (busy["dwell_min"] * 60 >= busy["stops"] * MIN_STOP_S - 1e-6).all()
    r = report(DATA)
    assert r["totals"]["trucks"] == 68 and r["totals"]["stops"] == clusters.filter(pl.col("kind") == "stop").height
