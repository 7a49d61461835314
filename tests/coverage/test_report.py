"""The daily report on a simulated city: coverage % against the simulator's true trajectories, the verdicts
against its labels, the tables and the rendered files."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import polars as pl
import pytest

from scenarios.cli.coverage import coverage_accuracy, truth_coverage
from scenarios.evaluate import fences_from_features
from scenarios.sim import generate, load_scenario
from tracker.coverage.render import FORMATS, TABLES, geojson, render
from tracker.coverage.report import DIMENSIONS, compute_day

DAY = date(2024, 5, 14)


@pytest.fixture(scope="module")
def sim():
    return generate(load_scenario("sanitation", vehicles=70, seed=21))


@pytest.fixture(scope="module")
def rep(sim):
    return compute_day(sim.fixes, sim.plans, fences_from_features(sim.fences), DAY, sim.config.utc_offset_min)


def test_coverage_per_segment_is_within_two_points_of_the_ground_truth(sim):
    acc = coverage_accuracy(sim)
    v = acc["verified"]
    assert v["n"] >= 150
    assert v["mean_abs_err_pt"] <= 1.0 and v["within_2pt_share"] >= 0.95, acc
    assert acc["unverified_data_gap"] <= 0.1 * acc["segment_windows"]  # a data gap is the only excuse


def test_the_ground_truth_sees_a_skipped_segment_as_unswept(sim, rep):
    missed = sim.truth.filter(pl.col("kind") == "missed_segment")
    assert missed.height > 0
    segs = rep.segments.filter(pl.col("segment_id").is_in(missed["place_id"].to_list())
                               & (pl.col("window") == rep.segments["window"].min()))
    truth = truth_coverage(sim, segs)
    assert (truth < 20).all() and (segs["coverage_pct"] < 20).all()


def test_every_labelled_missed_segment_is_missed_and_few_others(sim, rep):
    labelled = set(sim.truth.filter(pl.col("kind") == "missed_segment")["place_id"].to_list())
    missed = set(rep.segments.filter(pl.col("verdict") == "missed")["segment_id"].to_list())
    assert labelled <= missed
    assert len(missed - labelled) <= 2  # the simulator's own quirks (see the report to the lead)


def test_every_labelled_missed_collection_is_missed(sim, rep):
    labelled = set(sim.truth.filter(pl.col("kind") == "missed_collection")["place_id"].to_list())
    missed = set(rep.points.filter(pl.col("verdict") == "missed")["point_id"].to_list())
    assert labelled <= missed


def test_tables_add_up(rep):
    s = rep.summary()
    for dim in DIMENSIONS:
        t = rep.by(dim)
        assert t["segment_windows"].sum() == s["segment_windows"]
        assert abs(t["planned_km"].sum() - s["planned_km"]) < 0.01 * s["planned_km"] + 0.01
    comp = rep.companies()
    assert set(comp["company"].to_list()) >= set(rep.segments["company"].unique().to_list())
    assert 0 < s["coverage_pct"] <= 100 and s["valid_work_km"] > 0
    assert rep.hexes["planned_m"].sum() == pytest.approx((rep.segments["length_m"] * rep.segments["required"]).sum(),
                                                         rel=0.02)
    assert rep.vehicles.filter(pl.col("valid_work_km") > pl.col("device_on_km") + 0.05).height == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_render(rep, fmt):
    data = render(rep, fmt)
    if fmt == "csv":
        text = data.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("segment_id,window") and len(text.splitlines()) == rep.segments.height + 1
    elif fmt == "parquet":
        assert pl.read_parquet(io.BytesIO(data)).height == rep.segments.height
    elif fmt == "xlsx":
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        assert sum(n.startswith("xl/worksheets/sheet") for n in names) == 10
    else:
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_every_table_renders_and_the_map_has_every_segment(rep):
    for t in TABLES:
        assert render(rep, "csv", t)
    gj = geojson(rep)
    assert len(gj["features"]) == rep.segments["segment_id"].n_unique()
    assert {f["properties"]["status"] for f in gj["features"]} <= {"covered", "partial", "missed", "unverified",
                                                                     "late", "pending"}


def test_a_company_sees_its_own(rep):
    c = rep.segments["company"][0]
    sub = rep.filter_company(c)
    assert set(sub.segments["company"].unique().to_list()) == {c}
    assert sub.summary()["planned_km"] <= rep.summary()["planned_km"]



def test_a_report_asked_for_while_windows_are_open_calls_their_work_pending_not_missed(sim, rep):
    """Today's report is asked for during the shift: a segment or point whose window has not closed yet is
    in progress, whatever its coverage so far; once every window has closed the verdicts are the day's."""
    fences = fences_from_features(sim.fences)
    missed = rep.segments.filter(pl.col("verdict") == "missed")
    assert missed.height > 0
    during = int(missed["window_end_ms"].min()) - 60_000  # a minute before the missed ones' window closes
    early = compute_day(sim.fixes, sim.plans, fences, DAY, sim.config.utc_offset_min, as_of_ms=during)
    j = rep.segments.join(early.segments.select("segment_id", "window", pl.col("verdict").alias("v_early")),
                          on=["segment_id", "window"])
    open_ = j.filter(pl.col("window_end_ms") > during)
    assert open_.filter(pl.col("verdict") == "missed").height == missed.height
    assert set(open_.filter(pl.col("verdict").is_in(["missed", "unverified"]))["v_early"]) == {"pending"}
    assert (j.filter(pl.col("window_end_ms") <= during)["verdict"]
            == j.filter(pl.col("window_end_ms") <= during)["v_early"]).all()
    pts = rep.points.join(early.points.select("schedule_id", "window", "point_id", pl.col("verdict").alias("v")),
                          on=["schedule_id", "window", "point_id"])
    assert set(pts.filter((pl.col("window_end_ms") > during)
                          & pl.col("verdict").is_in(["missed", "unverified"]))["v"]) <= {"pending"}
    after = int(max(rep.segments["window_end_ms"].max(), rep.points["window_end_ms"].max())) + 1
    late = compute_day(sim.fixes, sim.plans, fences, DAY, sim.config.utc_offset_min, as_of_ms=after)
    assert late.segments["verdict"].to_list() == rep.segments["verdict"].to_list()
    assert late.points["verdict"].to_list() == rep.points["verdict"].to_list()
