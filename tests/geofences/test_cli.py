"""`fleetwatch fences import|list|export` through typer's CliRunner against a real database."""

from __future__ import annotations

import json
import warnings

import prcoords
import pytest
import shapely
from typer.testing import CliRunner

from geofences.local import transform_geometry_to_xy
from scenarios.cli.fences import app
from tracker.config import get_settings

SITE = [(114.0550, 22.5410), (114.0610, 22.5412), (114.0608, 22.5460), (114.0552, 22.5458), (114.0550, 22.5410)]


@pytest.fixture
def env(monkeypatch, pg_url, services, tmp_path):
    """The CLI reads settings from the environment (cached process-wide: cleared around each test)."""
    monkeypatch.setenv("FLEETWATCH_DATABASE_URL", pg_url)
    monkeypatch.setenv("FLEETWATCH_REDIS_URL", services.redis_url)
    monkeypatch.setenv("FLEETWATCH_DATA_DIR", str(tmp_path / "fw"))
    monkeypatch.setenv("FLEETWATCH_ACTOR", "test-clerk")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _gcj(coords):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [[p.lon, p.lat] for p in (prcoords.wgs_gcj((lat, lon)) for lon, lat in coords)]


def test_import_gcj02_export_wgs84_lands_where_drawn(env, tmp_path) -> None:
    drawn = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "site-9", "name": "福田工地"},
         "geometry": {"type": "Polygon", "coordinates": [_gcj(SITE)]}},
    ]}
    src = tmp_path / "amap.geojson"
    src.write_text(json.dumps(drawn, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["import", str(src), "--crs", "gcj02", "--kind", "construction_site"])
    assert r.exit_code == 0, r.output
    assert "1 new" in r.output
    r = runner.invoke(app, ["import", str(src), "--crs", "gcj02", "--kind", "construction_site"])
    assert "1 unchanged" in r.output

    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "site-9" in r.output and "construction_site" in r.output and "福田工地" in r.output

    out = tmp_path / "out.geojson"
    r = runner.invoke(app, ["export", "--crs", "wgs84", "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["coordinate_system"] == "wgs84"
    landed = shapely.geometry.shape(doc["features"][0]["geometry"])
    truth = shapely.Polygon(SITE)
    origin = (114.058, 22.543)
    err = shapely.hausdorff_distance(transform_geometry_to_xy(landed, origin), transform_geometry_to_xy(truth, origin))
    assert err < 0.05

    r = runner.invoke(app, ["export", "--crs", "gcj02"])
    assert json.loads(r.stdout)["coordinate_system"] == "gcj02"


def test_bad_file_is_refused_with_feature_and_reason(env, tmp_path) -> None:
    bad = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "ok", "kind": "depot"},
         "geometry": {"type": "Polygon", "coordinates": [SITE]}},
        {"type": "Feature", "properties": {"id": "bow", "kind": "depot"},
         "geometry": {"type": "Polygon", "coordinates": [[[114.05, 22.54], [114.06, 22.55], [114.06, 22.54],
                                                          [114.05, 22.55], [114.05, 22.54]]]}},
    ]}
    src = tmp_path / "bad.geojson"
    src.write_text(json.dumps(bad), encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["import", str(src)])
    assert r.exit_code == 2
    assert "feature #1 (bow): invalid polygon" in r.output and "nothing imported" in r.output
    assert "0 fences" in runner.invoke(app, ["list"]).output
    r = runner.invoke(app, ["import", str(src), "--repair"])
    assert r.exit_code == 0 and "2 new" in r.output
    r = runner.invoke(app, ["import", str(src), "--kind", "spaceport"])
    assert r.exit_code == 2 and "unknown kind" in r.output
