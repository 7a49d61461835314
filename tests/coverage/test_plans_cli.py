"""Plan files (format, validation, CRS) and the command line (plans import/export, coverage report)."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from geofences.crs import from_wgs84
from scenarios.cli import app
from tests.coverage import synth as S
from tests.coverage.test_rules import FENCES, day_plans, fix_stream
from tracker.coverage.plans import PlanError, convert_crs, decode, encode, segments_geojson, validate


def test_the_simulators_plans_json_is_the_file_format(tmp_path):
    from scenarios.sim import generate, load_scenario
    from scenarios.sim.output import write_outputs as write

    sim = generate(load_scenario("sanitation", vehicles=12, hours=3, seed=5))
    write(sim, tmp_path)
    plans = decode((tmp_path / "plans.json").read_bytes())
    assert len(plans.work_plans) == len(sim.plans.work_plans) and plans.collection_schedules
    assert not validate(plans, fence_ids={f["properties"]["id"] for f in sim.fences})
    assert decode(encode(plans)) == plans


def test_validation_lists_every_problem():
    p = day_plans()
    p.work_plans[0] = msgspec.structs.replace(p.work_plans[0], windows=["25:00-26:00"], speed_min_kmh=9.0)
    p.collection_schedules[0] = msgspec.structs.replace(p.collection_schedules[0], points=["P1", "NOPE"])
    problems = validate(p, fence_ids={f.id for f in FENCES}, bbox=(113.7, 22.3, 114.7, 22.9))
    text = " | ".join(problems)
    assert "25:00-26:00" in text and "speed band" in text and "NOPE" in text
    with pytest.raises(PlanError):
        decode(b'{"work_plans": [{"id": 1}]}')


def test_segments_drawn_in_gcj02_come_home_to_wgs84():
    p = day_plans()
    seg = p.work_plans[0].segments[0]
    a = np.asarray(seg.coordinates)
    lon, lat = from_wgs84(a[:, 0], a[:, 1], "gcj02")
    drawn = msgspec.structs.replace(seg, coordinates=np.column_stack([lon, lat]).tolist())
    p.work_plans[0] = msgspec.structs.replace(p.work_plans[0], segments=[drawn])
    back = np.asarray(convert_crs(p, "gcj02").work_plans[0].segments[0].coordinates)
    assert np.abs(back - a).max() < 1e-6  # ~ 0.1 m
    assert abs(lon[0] - a[0, 0]) > 1e-3  # the offset was hundreds of metres
    gj = segments_geojson(day_plans())
    assert len(gj["features"]) == 4 and gj["features"][0]["properties"]["vehicle_id"] == "V1"


def test_coverage_report_from_a_simulate_directory(tmp_path):
    out = tmp_path / "day"
    out.mkdir()
    fix_stream().with_columns(pl.col("ts_ms").alias("received_ts_ms")).write_parquet(out / "fixes.parquet")
    (out / "plans.json").write_bytes(encode(day_plans()))
    from geofences.geojson import dump_fences

    (out / "fences.geojson").write_text(json.dumps(dump_fences(FENCES)))
    r = CliRunner().invoke(app, ["coverage", "report", "--date", S.DAY.isoformat(), "--from-sim", str(out),
                                 "--format", "csv", "--table", "segments"])
    assert r.exit_code == 0, r.output
    rows = pl.read_csv(r.stdout.encode())
    assert rows.filter(pl.col("verdict") == "missed")["segment_id"].to_list() == ["V1-s2"]
    png = tmp_path / "map.png"
    r = CliRunner().invoke(app, ["coverage", "report", "--date", S.DAY.isoformat(), "--from-sim", str(out),
                                 "--format", "png", "--company", "c1", "--out", str(png)])
    assert r.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    r = CliRunner().invoke(app, ["coverage", "report", "--date", "14/05/2024", "--from-sim", str(out)])
    assert r.exit_code == 2


def test_plans_import_export_through_the_database(settings, monkeypatch, tmp_path):
    from geofences.store import save_fences
    from tracker.edges.db import connect_from_settings

    monkeypatch.setattr("tracker.config.get_settings", lambda: settings)
    with connect_from_settings(settings) as conn:
        save_fences(conn, FENCES, actor="test")
    f = tmp_path / "plans.json"
    f.write_bytes(encode(day_plans()))
    runner = CliRunner()
    r = runner.invoke(app, ["plans", "import", str(f)])
    assert r.exit_code == 0, r.output
    assert "3 work plans and 1 collection schedules" in r.output
    r = runner.invoke(app, ["plans", "import", str(f)])
    assert "0 + 0 new versions" in r.output
    exported = tmp_path / "out.json"
    assert runner.invoke(app, ["plans", "export", "--out", str(exported)]).exit_code == 0
    assert decode(exported.read_bytes()).work_plans[0].id == "WP-V1"
    bad = tmp_path / "bad.json"
    bad.write_bytes(encode(day_plans()).replace(b'"P2"', b'"P9"'))
    r = runner.invoke(app, ["plans", "import", str(bad)])
    assert r.exit_code == 2 and "P9" in r.output
    assert "3 work plans, 1 collection schedules" in runner.invoke(app, ["plans", "list"]).output
