"""The real Jersey City refuse-truck feed (2015-12-10) as FleetWatch fixes, and what it tells us.

Two files in `shared/data/jersey_city_refuse/` (MIT, jersey-city-open-data):

* `all_dedup.csv` — pipe-separated `lat|lon|vehicle|address|local time` (US/Eastern, no header): the
  fixes de-duplicated by the collector.
* `snapshots_raw.csv.gz` — the raw per-minute polls of the city's live feed: every poll lists every truck's
  *latest* fix, so a parked truck (or one whose terminal is off) appears again and again with the same fix
  time: a *stale* repeat, which must not be stored as a new position. `snapshot_file` is the poll time
  (`jc-data-MMDDYY-HHMMSS.csv`, UTC); `gps_time` is local US/Eastern.

Conversions: local US/Eastern → UTC epoch ms (through the tz database: December is EST, UTC−5); the poll
time becomes `received_ts_ms` (when a server would have received the fix). A fix is *new* the first poll it
appears in; a later poll with the same (truck, fix time) is a stale repeat; two rows for the same (truck, fix
time) with different positions are *conflicting* duplicates (the first seen wins); a fix already older than
`stale_first_s` when first polled is a *stale first sight* (the truck was off before polling began).

Report (`report`): trucks, valid / stale / duplicate fixes, stops (dwell clusters: consecutive fixes within
`stop_radius_m` for at least `stop_min_s`) and signal gaps (no new fix for `gap_min_s` while the truck was
active that day). Vectorised polars throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from scenarios.shared_data import shared_dir
from tracker.fix import conform

DATA_DIR = shared_dir() / "data" / "jersey_city_refuse"
TZ = "US/Eastern"


def _local_to_utc_ms(col: pl.Expr) -> pl.Expr:
    return (col.str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="ms").dt.replace_time_zone(TZ, ambiguous="earliest")
            .dt.convert_time_zone("UTC").dt.epoch("ms"))


def read_dedup(path: str | Path | None = None) -> pl.DataFrame:
    """`all_dedup.csv` → FIX_SCHEMA frame (source "jersey"), sorted by (vehicle, ts)."""
    p = Path(path) if path else DATA_DIR / "all_dedup.csv"
    raw = pl.read_csv(p, separator="|", has_header=False, new_columns=["lat", "lon", "vehicle", "address", "local"],
                      schema_overrides={"vehicle": pl.String, "lat": pl.Float64, "lon": pl.Float64}, quote_char=None)
    df = raw.select(pl.col("vehicle").alias("vehicle_id"), _local_to_utc_ms(pl.col("local")).alias("ts_ms"),
                    "lon", "lat", pl.lit("jersey").alias("source"))
    df = df.with_columns(pl.col("ts_ms").alias("received_ts_ms"))
    return conform(df).sort(["vehicle_id", "ts_ms"], maintain_order=True)


@dataclass
class SnapshotFixes:
    fixes: pl.DataFrame  # FIX_SCHEMA: one row per distinct (truck, fix time), received at its first poll
    rows: int  # raw rows read
    polls: int
    stale_repeats: int  # later polls repeating a known (truck, fix time) and position: not new positions
    duplicates: int  # rows repeating a known (truck, fix time) with another position, or within one poll
    conflicting: int  # (truck, fix time) pairs reported with more than one position
    # rows == len(fixes) + stale_repeats + duplicates
    stale_first_sight: int  # new fixes already older than `stale_first_s` when first polled


def read_snapshots(path: str | Path | None = None, stale_first_s: float = 600.0) -> SnapshotFixes:
    p = Path(path) if path else DATA_DIR / "snapshots_raw.csv.gz"
    raw = pl.read_csv(p, schema_overrides={"vehicle": pl.String, "lat": pl.Float64, "lon": pl.Float64})
    df = raw.with_columns(
        pl.col("snapshot_file").str.extract(r"(\d{6}-\d{6})").str.to_datetime("%m%d%y-%H%M%S", time_unit="ms")
        .dt.replace_time_zone("UTC").dt.epoch("ms").alias("poll_ms"),
        _local_to_utc_ms(pl.col("gps_time")).alias("ts_ms"),
    ).with_row_index("row")
    first = df.sort(["vehicle", "ts_ms", "poll_ms", "row"]).unique(["vehicle", "ts_ms"], keep="first",
                                                                    maintain_order=True)
    # every other row repeats a known (truck, fix time): stale if it repeats the position, else a duplicate
    # fix time carrying a different position (or a repeat inside the same poll)
    rest = df.join(first.select("row"), on="row", how="anti").join(
        first.select("vehicle", "ts_ms", pl.col("lat").alias("lat0"), pl.col("lon").alias("lon0"),
                     pl.col("snapshot_file").alias("file0")), on=["vehicle", "ts_ms"], how="left")
    same = (pl.col("lat") == pl.col("lat0")) & (pl.col("lon") == pl.col("lon0")) & (pl.col("snapshot_file") != pl.col("file0"))
    stale_repeats = int(rest.select(same.sum()).item())
    duplicates = rest.height - stale_repeats
    positions = df.unique(["vehicle", "ts_ms", "lat", "lon"]).group_by(["vehicle", "ts_ms"]).len()
    conflicting = int((positions["len"] > 1).sum())
    fixes = conform(first.select(pl.col("vehicle").alias("vehicle_id"), "ts_ms", "lon", "lat",
                                 pl.col("poll_ms").alias("received_ts_ms"), pl.lit("jersey-poll").alias("source"),
                                 ((pl.col("poll_ms") - pl.col("ts_ms")) > stale_first_s * 1000).alias("backfill")))
    stale_first = int(fixes["backfill"].sum())
    return SnapshotFixes(fixes=fixes.sort(["vehicle_id", "ts_ms"]), rows=df.height,
                         polls=int(df["snapshot_file"].n_unique()), stale_repeats=stale_repeats,
                         duplicates=duplicates, conflicting=conflicting, stale_first_sight=stale_first)


def _metres(lon: pl.Expr, lat: pl.Expr, lon0: pl.Expr, lat0: pl.Expr) -> pl.Expr:
    kx = np.deg2rad(1.0) * 6_371_008.8
    return (((lon - lon0) * kx * (lat0 * np.pi / 180).cos()) ** 2 + ((lat - lat0) * kx) ** 2).sqrt()


def stops(fixes: pl.DataFrame, stop_radius_m: float = 50.0, stop_min_s: float = 120.0) -> pl.DataFrame:
    """Dwell clusters: runs of consecutive fixes staying within `stop_radius_m` of the run's first fix."""
    f = fixes.filter(pl.col("valid")).sort(["vehicle_id", "ts_ms"])
    # a new cluster starts when a fix is farther than the radius from the previous fix (a cheap, vectorised
    # approximation of "from the cluster's anchor" that holds for GPS dwell jitter of a few metres)
    step = _metres(pl.col("lon"), pl.col("lat"), pl.col("lon").shift(1), pl.col("lat").shift(1)).over("vehicle_id")
    f = f.with_columns(step.fill_null(np.inf).alias("step_m"))
    f = f.with_columns(((pl.col("step_m") > stop_radius_m).cum_sum().over("vehicle_id")).alias("cluster"))
    g = f.group_by(["vehicle_id", "cluster"]).agg(
        pl.col("ts_ms").min().alias("start_ts_ms"), pl.col("ts_ms").max().alias("end_ts_ms"),
        pl.col("lon").mean(), pl.col("lat").mean(), pl.len().alias("fixes"))
    return g.filter((pl.col("end_ts_ms") - pl.col("start_ts_ms")) >= stop_min_s * 1000).drop("cluster").sort(
        ["vehicle_id", "start_ts_ms"])


def gaps(fixes: pl.DataFrame, gap_min_s: float = 600.0) -> pl.DataFrame:
    """Signal gaps: consecutive fixes of a truck (same local day) more than `gap_min_s` apart."""
    day = pl.from_epoch("ts_ms", time_unit="ms").dt.replace_time_zone("UTC").dt.convert_time_zone(TZ).dt.date()
    f = fixes.sort(["vehicle_id", "ts_ms"]).with_columns(
        pl.col("ts_ms").shift(1).over("vehicle_id").alias("prev_ts_ms"), day.alias("day"))
    f = f.with_columns(pl.col("day").shift(1).over("vehicle_id").alias("prev_day"))
    return f.filter(((pl.col("ts_ms") - pl.col("prev_ts_ms")) >= gap_min_s * 1000)
                    & (pl.col("day") == pl.col("prev_day"))).select(
        "vehicle_id", pl.col("prev_ts_ms").alias("start_ts_ms"), pl.col("ts_ms").alias("end_ts_ms"),
        ((pl.col("ts_ms") - pl.col("prev_ts_ms")) / 1000).alias("gap_s"))


def report(data_dir: str | Path | None = None) -> dict[str, Any]:
    """Facts about the feed: trucks, valid/stale/duplicate fixes, stops, signal gaps."""
    d = Path(data_dir) if data_dir else DATA_DIR
    dedup = read_dedup(d / "all_dedup.csv")
    snap = read_snapshots(d / "snapshots_raw.csv.gz")
    dd_dupes = dedup.height - dedup.unique(["vehicle_id", "ts_ms"]).height
    clean = dedup.unique(["vehicle_id", "ts_ms"], keep="first", maintain_order=True)
    st = stops(clean)
    gp = gaps(clean)
    return {
        "dedup": {"trucks": int(dedup["vehicle_id"].n_unique()), "fixes": dedup.height,
                  "valid_fixes": clean.height, "duplicate_fixes": dd_dupes,
                  "first_ts_ms": int(dedup["ts_ms"].min()), "last_ts_ms": int(dedup["ts_ms"].max()),
                  "median_interval_s": float(clean.sort("vehicle_id", "ts_ms").select(
                      pl.col("ts_ms").diff().over("vehicle_id").median()).item() / 1000)},
        "snapshots": {"rows": snap.rows, "polls": snap.polls, "trucks": int(snap.fixes["vehicle_id"].n_unique()),
                      "new_fixes": snap.fixes.height, "stale_repeats": snap.stale_repeats,
                      "duplicates": snap.duplicates, "conflicting_positions": snap.conflicting,
                      "stale_first_sight": snap.stale_first_sight},
        "stops": {"count": st.height, "trucks_with_stops": int(st["vehicle_id"].n_unique()),
                  "median_dwell_s": float(((st["end_ts_ms"] - st["start_ts_ms"]) / 1000).median() or 0.0)},
        "signal_gaps": {"count": gp.height, "trucks": int(gp["vehicle_id"].n_unique()),
                        "longest_s": float(gp["gap_s"].max() or 0.0)},
    }


def replay(fixes: pl.DataFrame, batch_s: float = 60.0) -> dict[str, int]:
    """Run the feed through the real engine (trucks registered as refuse trucks, no fences): episodes by kind.

    Fixes are fed in arrival order (`received_ts_ms`) in `batch_s` slices, time advancing after each."""
    from tracker.config import Settings
    from tracker.engine import Engine
    from tracker.reference import Vehicle
    from tracker.world import World

    settings = Settings(city={"utc_offset_min": -300, "timezone": TZ})  # type: ignore[arg-type]
    vehicles = [Vehicle(id=v, kind="refuse_truck", company="Jersey City DPW")
                for v in sorted(fixes["vehicle_id"].unique().to_list())]
    engine = Engine(World.build(fences=[], vehicles=vehicles, permits=[], orders=[], settings=settings), settings)
    f = fixes.sort(["received_ts_ms", "vehicle_id", "ts_ms"])
    recv = f["received_ts_ms"].to_numpy()
    slot = (recv - recv.min()) // int(batch_s * 1000)
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(slot)) + 1, [recv.size]])
    latest: dict[str, Any] = {}
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        for e in engine.process(f.slice(a, b - a)):
            latest[e.id] = e
        for e in engine.advance(int(recv.min()) + (int(slot[a]) + 1) * int(batch_s * 1000)):
            latest[e.id] = e
    for e in engine.finish():
        latest[e.id] = e
    out: dict[str, int] = {}
    for e in latest.values():
        if not getattr(e, "retracted", False):
            out[e.kind] = out.get(e.kind, 0) + 1
    return dict(sorted(out.items()))
