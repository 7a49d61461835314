"""Sane facts about the real Jersey City refuse-truck feed (read from ../shared, not copied)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from scenarios.shared_data import shared_dir
from scenarios.jersey import read_dedup, read_snapshots, replay, report, stops

DATA = shared_dir() / "data" / "jersey_city_refuse"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared data not present")


@pytest.fixture(scope="module")
def dedup() -> pl.DataFrame:
    return read_dedup(DATA / "all_dedup.csv")


@pytest.fixture(scope="module")
def snap():
    return read_snapshots(DATA / "snapshots_raw.csv.gz")


def test_all_68_trucks_and_local_time_converted_to_utc(dedup):
    assert dedup["vehicle_id"].n_unique() == 68
    # first line of the file: E-7 at 2015-12-10T21:14:37 US/Eastern (EST, UTC-5) = 2015-12-11T02:14:37Z
    row = dedup.filter((pl.col("vehicle_id") == "E-7") & (pl.col("lat") == 40.6635) & (pl.col("lon") == -74.19887))
    assert row.height == 1
    assert row["ts_ms"].item() == int(datetime(2015, 12, 11, 2, 14, 37, tzinfo=UTC).timestamp() * 1000)


def test_snapshot_stale_and_duplicate_fixes_are_counted_not_stored(snap, dedup):
    assert snap.rows == 198_075 and snap.polls > 1000
    assert snap.stale_repeats > 100_000 and snap.duplicates > 0
    # one stored fix per (truck, fix time): stale repeats never become new positions
    assert snap.fixes.height == snap.fixes.unique(["vehicle_id", "ts_ms"]).height
    assert snap.fixes.height + snap.stale_repeats + snap.duplicates == snap.rows
    assert snap.conflicting > 0
    # nothing is received before it happened (the poll time is UTC, the fix time US/Eastern)
    assert (snap.fixes["received_ts_ms"] >= snap.fixes["ts_ms"]).all()
    assert set(dedup["vehicle_id"]) <= set(snap.fixes["vehicle_id"])


def test_report_stops_and_gaps_are_plausible(dedup):
    r = report(DATA)
    assert r["dedup"]["trucks"] == 68
    assert r["dedup"]["duplicate_fixes"] == r["dedup"]["fixes"] - r["dedup"]["valid_fixes"] > 0
    assert 50 <= r["dedup"]["median_interval_s"] <= 90  # the feed reports about once a minute
    assert r["stops"]["count"] > 50 and 120 <= r["stops"]["median_dwell_s"] <= 3600
    assert r["signal_gaps"]["count"] > 0 and r["signal_gaps"]["longest_s"] < 86_400  # same-day gaps only
    st = stops(dedup.unique(["vehicle_id", "ts_ms"]))
    assert (st["end_ts_ms"] > st["start_ts_ms"]).all()


def test_replay_through_the_engine(dedup):
    few = dedup.filter(pl.col("vehicle_id").is_in(sorted(dedup["vehicle_id"].unique())[:5]))
    found = replay(few.unique(["vehicle_id", "ts_ms"]), batch_s=600.0)
    assert isinstance(found, dict) and all(isinstance(n, int) and n > 0 for n in found.values())
