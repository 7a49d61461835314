"""Fix files → conformed fix frames: CSV, Parquet, NDJSON, GPX (for `fleetwatch ingest FILE`).

CSV column mapping (header names, case-insensitive; first match wins):

    vehicle_id  ← vehicle_id | vehicle | id | plate | device_id          (or --vehicle for the whole file)
    ts_ms       ← ts_ms | epoch_ms  (UTC epoch ms);  or ts | time | timestamp | datetime (ISO-8601 with
                  offset; a naive time is refused, never guessed)
    lon / lat   ← lon | lng | longitude / lat | latitude                 (WGS-84 degrees)
    speed_kmh   ← speed_kmh | speed ;  heading_deg ← heading_deg | heading | course | bearing
    and, by their own names: valid, alarm, status, cover_closed, lifting, load, device_on, drum, backfill

Parquet and NDJSON use the same names. GPX: every <trkpt lat lon><time>, one vehicle per file (--vehicle,
else the track name). Rows that fail the HTTP ingest's checks (coordinates, time, speed, sensor codes) are
reported with their row number and nothing is published, exactly like a 422 from the HTTP ingest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from ingest.http import BatchError, parse_batch

__all__ = ["FORMATS", "detect_format", "read_fix_file"]

FORMATS = ("csv", "parquet", "ndjson", "gpx")
_ALIASES = {
    "vehicle_id": ("vehicle_id", "vehicle", "id", "plate", "device_id"),
    "ts_ms": ("ts_ms", "epoch_ms"),
    "ts": ("ts", "time", "timestamp", "datetime"),
    "lon": ("lon", "lng", "longitude"),
    "lat": ("lat", "latitude"),
    "speed_kmh": ("speed_kmh", "speed"),
    "heading_deg": ("heading_deg", "heading", "course", "bearing"),
}


def detect_format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    fmt = {"jsonl": "ndjson", "json": "ndjson", "pq": "parquet"}.get(ext, ext)
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format of {path.name}; use --format {'|'.join(FORMATS)}")
    return fmt


def _rename(df: pl.DataFrame) -> pl.DataFrame:
    lower = {c.lower(): c for c in df.columns}
    mapping = {}
    for target, names in _ALIASES.items():
        for n in names:
            if n in lower and lower[n] not in mapping:
                mapping[lower[n]] = target
                break
    return df.rename(mapping).select([c for c in dict.fromkeys(mapping.values())] +
                                     [c for c in df.columns if c not in mapping and c.lower() in
                                      ("valid", "alarm", "status", "cover_closed", "lifting", "load", "device_on",
                                       "drum", "backfill")])


def _gpx(path: Path, vehicle: str | None) -> pl.DataFrame:
    root = ET.parse(path).getroot()
    ns = {"g": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    q = (lambda t: f"g:{t}") if ns else (lambda t: t)
    rows = []
    for trk in root.iter(f"{{{ns['g']}}}trk" if ns else "trk"):
        name = trk.findtext(q("name"), default="", namespaces=ns) or vehicle or path.stem
        for pt in trk.iter(f"{{{ns['g']}}}trkpt" if ns else "trkpt"):
            rows.append({"vehicle_id": vehicle or name, "lat": float(pt.get("lat", "nan")),
                         "lon": float(pt.get("lon", "nan")), "ts": pt.findtext(q("time"), namespaces=ns)})
    return pl.DataFrame(rows, schema={"vehicle_id": pl.String, "lat": pl.Float64, "lon": pl.Float64, "ts": pl.String})


def read_fix_file(path: Path, fmt: str | None = None, vehicle: str | None = None, block_rows: int = 50_000,
                  source: str = "file") -> Iterator[pl.DataFrame]:
    """Yield conformed fix frames of ≤ `block_rows` rows (validated with the HTTP ingest's rules; a
    `BatchError` names bad rows by their row number in the file)."""
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        df = pl.read_csv(path, infer_schema_length=10_000)
    elif fmt == "parquet":
        df = pl.read_parquet(path)
    elif fmt == "ndjson":
        df = pl.read_ndjson(path)
    elif fmt == "gpx":
        df = _gpx(path, vehicle)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    df = _rename(df)
    if vehicle:
        df = df.with_columns(pl.lit(vehicle).alias("vehicle_id"))
    if "ts" in df.columns and df.schema["ts"] != pl.String:
        df = df.with_columns(pl.col("ts").cast(pl.String))
    for off in range(0, df.height, block_rows):
        part = df.slice(off, block_rows)
        try:
            yield parse_batch(part.write_ndjson().encode(), "application/x-ndjson", source)
        except BatchError as exc:
            for p in exc.problems:
                if p.get("row") is not None:
                    p["row"] += off
            raise
