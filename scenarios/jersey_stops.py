"""Collection stops inferred from the real Jersey City refuse-truck feed, per truck (issue 8).

The feed (`scenarios.jersey`: 68 trucks, 2015-12-10, one fix a minute, repeated positions dropped by the
collector) has no schedules and no sensors, so where the trucks collect must be inferred: dwell clusters
(`tracker.coverage.stops`) of 40 m, a stop being 1–30 min at one place (shorter is traffic; longer is the
yard, a break or a terminal switched off: "parking"), and the stops of all trucks merged into *sites* within
60 m. Per truck: stops, sites, minutes dwelling, km driven, first and last stop (local time), parkings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from scenarios import jersey
from tracker.coverage.stops import dwell_clusters, sites

STOP_RADIUS_M = 40.0
MIN_STOP_S = 60.0
MAX_STOP_S = 1800.0
SITE_RADIUS_M = 60.0
SAMPLE_S = 60.0


def inferred_stops(fixes: pl.DataFrame) -> pl.DataFrame:
    """Dwell clusters of every truck, classified as `stop` (collection-like), `parking` or `pass`."""
    f = fixes.filter(pl.col("valid") & (pl.col("lon") != 0.0)).unique(["vehicle_id", "ts_ms"], keep="first").sort(
        ["vehicle_id", "ts_ms"])
    vid = f.get_column("vehicle_id")
    vkey = vid.rle_id().to_numpy().astype(np.int64)
    names = vid.unique(maintain_order=True).to_list()
    c = dwell_clusters(vkey, f.get_column("ts_ms").to_numpy(), f.get_column("lon").to_numpy(),
                       f.get_column("lat").to_numpy(), STOP_RADIUS_M, SAMPLE_S, MAX_STOP_S * 4)
    kind = np.where(c["dwell_s"] > MAX_STOP_S, "parking", np.where(c["dwell_s"] >= MIN_STOP_S, "stop", "pass"))
    out = pl.DataFrame({"vehicle_id": [names[k] for k in c["vkey"].tolist()], "start_ts_ms": c["start_ms"],
                        "end_ts_ms": c["end_ms"], "dwell_s": c["dwell_s"], "lon": c["lon"], "lat": c["lat"],
                        "fixes": c["fixes"], "kind": kind})
    stops = out.filter(pl.col("kind") == "stop")
    site = sites(stops["lon"].to_numpy(), stops["lat"].to_numpy(), SITE_RADIUS_M)
    return out.join(stops.with_columns(pl.Series("site", site)).select("vehicle_id", "start_ts_ms", "site"),
                    on=["vehicle_id", "start_ts_ms"], how="left")


def per_truck(fixes: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """The per-truck table: stops, sites, dwell, km driven, first/last stop (local), parkings."""
    from geofences.local import dist_m

    f = fixes.filter(pl.col("valid") & (pl.col("lon") != 0.0)).unique(["vehicle_id", "ts_ms"], keep="first").sort(
        ["vehicle_id", "ts_ms"])
    lon, lat = f["lon"].to_numpy(), f["lat"].to_numpy()
    step = np.r_[0.0, dist_m(lon[:-1], lat[:-1], lon[1:], lat[1:])] if lon.size else np.zeros(0)
    same = np.r_[False, f["vehicle_id"].to_numpy()[1:] == f["vehicle_id"].to_numpy()[:-1]] if lon.size else step > 0
    km = f.select("vehicle_id").with_columns(pl.Series("m", np.where(same, step, 0.0))).group_by("vehicle_id").agg(
        (pl.col("m").sum() / 1000).round(2).alias("route_km"), pl.len().alias("fixes"))
    local = pl.from_epoch("start_ts_ms", time_unit="ms").dt.replace_time_zone("UTC").dt.convert_time_zone(
        jersey.TZ).dt.strftime("%H:%M")
    st = clusters.filter(pl.col("kind") == "stop").group_by("vehicle_id").agg(
        pl.len().alias("stops"), pl.col("site").n_unique().alias("sites"),
        (pl.col("dwell_s").sum() / 60).round(1).alias("dwell_min"), pl.col("dwell_s").median().alias("median_dwell_s"),
        local.min().alias("first_stop"), local.max().alias("last_stop"))
    pk = clusters.filter(pl.col("kind") == "parking").group_by("vehicle_id").agg(pl.len().alias("parkings"))
    out = km.join(st, on="vehicle_id", how="left").join(pk, on="vehicle_id", how="left").with_columns(
        pl.col("stops").fill_null(0), pl.col("sites").fill_null(0), pl.col("dwell_min").fill_null(0.0),
        pl.col("parkings").fill_null(0))
    return out.sort(["stops", "vehicle_id"], descending=[True, False])


def report(data_dir: str | Path | None = None) -> dict[str, Any]:
    d = Path(data_dir) if data_dir else jersey.DATA_DIR
    fixes = jersey.read_dedup(d / "all_dedup.csv")
    clusters = inferred_stops(fixes)
    trucks = per_truck(fixes, clusters)
    stops = clusters.filter(pl.col("kind") == "stop")
    return {
        "totals": {"trucks": int(trucks.height), "stops": int(stops.height),
                   "sites": int(stops["site"].n_unique()) if stops.height else 0,
                   "trucks_with_stops": int((trucks["stops"] > 0).sum()),
                   "median_dwell_s": float(stops["dwell_s"].median() or 0.0),
                   "parkings": int((clusters["kind"] == "parking").sum())},
        "per_truck": trucks.to_dicts(),
    }
