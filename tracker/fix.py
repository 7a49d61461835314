"""The shared record: one GPS fix, its columnar schema, and the block codec used on the bus.

Fixes travel in *blocks* (hundreds per Redis stream entry), never one by one: a block is an Arrow IPC stream
holding one record batch in `FIX_SCHEMA`. Arrow was chosen over a hand-rolled struct codec because it keeps
nulls (a missing sensor is `null`, never a guessed `False`), round-trips losslessly into polars without
copying, and costs ~1 µs per fix to encode and decode.

Column names carry units and frames: `ts_ms` / `received_ts_ms` are UTC epoch milliseconds, `lon`/`lat` are
WGS-84 degrees, `speed_kmh`, `heading_deg`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pyarrow as pa

# -- the record ------------------------------------------------------------------------------------------------


class Fix(msgspec.Struct, frozen=True, kw_only=True):
    """One position report. Sensors are optional: `None` means *not reported*, which rules treat differently
    from a reported value (they fall back to a weaker "suspected" alert, never to silence)."""

    vehicle_id: str
    ts_ms: int  # fix time, UTC epoch milliseconds (terminals report GMT+8; converted at the edge)
    lon: float  # WGS-84
    lat: float  # WGS-84
    speed_kmh: float = 0.0
    heading_deg: float = 0.0
    valid: bool = True
    alarm: int = 0  # JT/T 808 alarm word
    status: int = 0  # JT/T 808 status word
    cover_closed: bool | None = None
    lifting: bool | None = None
    load: int | None = None  # tracker.vocab.LoadState: 0 empty, 1 half, 3 full
    device_on: bool | None = None  # brush / pump
    drum: int | None = None  # tracker.vocab.DrumState: 0 stopped, 1 forward, 2 reverse
    backfill: bool = False  # arrived in a JT/T 808 0x0704 back-fill batch or a late upload
    source: str = "http"
    received_ts_ms: int = 0

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)


FIX_FIELDS: tuple[str, ...] = tuple(Fix.__struct_fields__)

# -- the columnar schema ---------------------------------------------------------------------------------------

FIX_SCHEMA: dict[str, pl.DataType] = {
    "vehicle_id": pl.String(),
    "ts_ms": pl.Int64(),
    "lon": pl.Float64(),
    "lat": pl.Float64(),
    "speed_kmh": pl.Float32(),
    "heading_deg": pl.Float32(),
    "valid": pl.Boolean(),
    "alarm": pl.UInt32(),
    "status": pl.UInt32(),
    "cover_closed": pl.Boolean(),
    "lifting": pl.Boolean(),
    "load": pl.Int8(),
    "device_on": pl.Boolean(),
    "drum": pl.Int8(),
    "backfill": pl.Boolean(),
    "source": pl.String(),
    "received_ts_ms": pl.Int64(),
}
assert tuple(FIX_SCHEMA) == FIX_FIELDS, "Fix and FIX_SCHEMA must list the same columns in the same order"

ARROW_SCHEMA: pa.Schema = pl.DataFrame(schema=FIX_SCHEMA).to_arrow().schema

#: Columns a producer must supply; everything else has a default.
REQUIRED: tuple[str, ...] = ("vehicle_id", "ts_ms", "lon", "lat")

_DEFAULTS: dict[str, Any] = {
    "speed_kmh": 0.0, "heading_deg": 0.0, "valid": True, "alarm": 0, "status": 0, "backfill": False,
    "source": "http", "received_ts_ms": 0,
}


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=FIX_SCHEMA)


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Cast a frame to `FIX_SCHEMA`: add missing optional columns (defaults or null), drop extras, order them.

    Raises KeyError naming a missing required column."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise KeyError(f"fix frame lacks required column(s): {', '.join(missing)}")
    cols = []
    for name, dtype in FIX_SCHEMA.items():
        if name in df.columns:
            col = pl.col(name)
            if name in _DEFAULTS:
                col = col.fill_null(_DEFAULTS[name])
            cols.append(col.cast(dtype, strict=False).alias(name))
        elif name in _DEFAULTS:
            cols.append(pl.lit(_DEFAULTS[name], dtype=dtype).alias(name))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(cols)


def frame_from_fixes(fixes: Iterable[Fix]) -> pl.DataFrame:
    rows = [msgspec.structs.asdict(f) for f in fixes]
    if not rows:
        return empty_frame()
    return pl.DataFrame(rows, schema=FIX_SCHEMA, orient="row")


def frame_from_rows(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Rows of already-validated dicts (e.g. decoded JT/T 808 locations) → a conformed frame."""
    if not rows:
        return empty_frame()
    return conform(pl.DataFrame(rows, infer_schema_length=None))


def fixes_from_frame(df: pl.DataFrame) -> list[Fix]:
    """Per-fix objects for reference implementations and tests — never on a hot path."""
    return [Fix(**row) for row in conform(df).iter_rows(named=True)]


# -- block codec -----------------------------------------------------------------------------------------------

_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression=None)


def encode_block(df: pl.DataFrame) -> bytes:
    """A block of fixes → bytes for one Redis stream entry (Arrow IPC stream, one record batch)."""
    table = conform(df).to_arrow()
    table = table.cast(ARROW_SCHEMA) if table.schema != ARROW_SCHEMA else table
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ARROW_SCHEMA, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_block(data: bytes) -> pl.DataFrame:
    """Inverse of `encode_block`. Raises `ValueError` on bytes that are not a fix block."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:  # pragma: no cover - exercised by tests with garbage
        raise ValueError(f"not a fix block: {exc}") from exc
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    if tuple(df.columns) != FIX_FIELDS:
        raise ValueError(f"fix block has columns {df.columns}, expected {list(FIX_FIELDS)}")
    return df


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def ms_to_dt(ts_ms: int | np.integer) -> datetime:
    return datetime.fromtimestamp(int(ts_ms) / 1000, tz=UTC)


def dt_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: every ts in FleetWatch is timezone-aware UTC")
    return int(dt.timestamp() * 1000)
