"""`fleetwatch ingest FILE` (CSV with mapped columns, GPX, bad rows refused) and `fleetwatch replay` round
trip (GPX written by replay ingests back to the same fixes) against real Redis and PostgreSQL."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from ingest.files import read_fix_file
from scenarios.cli import app
from tests.ingest.test_gateway_support import bus_frame
from tracker.config import get_settings
from tracker.edges import history
from tracker.edges.bus import StreamNames
from tracker.edges.worker import add_h3


@pytest.fixture
def cli_env(settings, monkeypatch):
    for k, v in {"FLEETWATCH_REDIS_URL": settings.redis_url, "FLEETWATCH_DATABASE_URL": settings.database_url,
                 "FLEETWATCH_DATA_DIR": str(settings.data_dir), "FLEETWATCH_BUS__PREFIX": settings.bus.prefix,
                 "FLEETWATCH_CONFIG": "/nonexistent.toml"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_csv_with_mapped_columns_is_published(cli_env, tmp_path, redis_client):
    f = tmp_path / "fixes.csv"
    f.write_text("Plate,Time,Longitude,Latitude,Speed,Course,load\n"
                 "粤B1,2026-11-22T08:00:00+08:00,114.05,22.54,31.5,90,3\n"
                 "粤B1,2026-11-22T08:00:10+08:00,114.06,22.54,30,91,\n"
                 "粤B2,2026-11-22T08:00:00+08:00,114.07,22.55,0,0,0\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["ingest", str(f)])
    assert res.exit_code == 0, res.output
    got = bus_frame(redis_client, StreamNames(cli_env.bus.prefix, cli_env.bus.shards)).sort("vehicle_id", "ts_ms")
    assert got.get_column("vehicle_id").to_list() == ["粤B1", "粤B1", "粤B2"]
    assert got.get_column("ts_ms").to_list()[0] == 1_795_305_600_000  # 2026-11-22 08:00 +08:00 = 00:00 UTC
    assert got.get_column("load").to_list() == [3, None, 0]
    assert got.get_column("source").unique().to_list() == ["file"]


def test_bad_rows_are_named_and_nothing_is_published(cli_env, tmp_path, redis_client):
    f = tmp_path / "bad.csv"
    f.write_text("vehicle_id,ts,lon,lat\nV1,2026-11-22T08:00:00+08:00,114,22.5\nV1,2026-11-22T08:00:00,114,22.5\n"
                 "V1,2026-11-22T08:00:09+08:00,514,22.5\n")
    res = CliRunner().invoke(app, ["ingest", str(f)])
    assert res.exit_code == 2
    assert "row 1" in res.output and "row 2" in res.output
    assert bus_frame(redis_client, StreamNames(cli_env.bus.prefix, cli_env.bus.shards)).height == 0


def test_replay_exports_and_gpx_ingests_back(cli_env, tmp_path, pg_conn):
    src = tmp_path / "in.csv"
    src.write_text("vehicle,epoch_ms,lon,lat,valid\n" + "".join(
        f"V9,{1_763_800_000_000 + i * 5000},{114 + i / 1000},22.5,true\n" for i in range(20)))
    df = pl.concat(list(read_fix_file(src)))
    with pg_conn.transaction():
        history.write_fixes(pg_conn, add_h3(df, 12))
    for ext in ("parquet", "csv", "gpx"):
        out = tmp_path / f"t.{ext}"
        res = CliRunner().invoke(app, ["replay", "V9", "--from", "2025-11-22T00:00:00Z", "--to",
                                       "2025-11-23T00:00:00Z", "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "20 fixes" in res.output
    assert pl.read_parquet(tmp_path / "t.parquet").height == 20
    back = pl.concat(list(read_fix_file(tmp_path / "t.gpx")))
    assert back.get_column("vehicle_id").unique().to_list() == ["V9"]
    assert back.get_column("ts_ms").to_list() == df.get_column("ts_ms").to_list()
    assert back.get_column("lon").round(6).to_list() == df.get_column("lon").round(6).to_list()
