"""Position history and alerts in PostgreSQL.

Fixes are written in large batches with one binary COPY (built with numpy, no per-row Python) straight into
the partitioned table; a batch holding a row already stored (a block delivered twice by the at-least-once
bus) is instead merged through a temporary table with `INSERT … ON CONFLICT DO NOTHING`, so every fix is
stored exactly once (`write_fixes`). Daily partitions are created before a batch lands in them, so the
DEFAULT partition stays empty and new partitions can always attach.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime, timedelta

import msgspec
import numpy as np
import polars as pl
import psycopg

from tracker.episode import Episode

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "vehicle_id", "ts", "lon", "lat", "h3", "speed_kmh", "heading_deg", "valid", "alarm", "status",
    "cover_closed", "lifting", "load", "device_on", "drum", "backfill", "source", "received_ts",
)

_known_partitions: set[tuple[str, date]] = set()


def partition_name(day: date) -> str:
    return f"fixes_{day:%Y%m%d}"


_PARTITION_LOCK = 0x46_57_50_41  # "FWPA": serialises partition creation between writer processes


def ensure_partitions(conn: psycopg.Connection, days: list[date]) -> None:
    """Create missing daily partitions. Two workers creating the same day at once would collide
    (`CREATE TABLE IF NOT EXISTS` is not race-safe: DuplicateTable aborts the transaction), so creators take a
    transaction-scoped advisory lock first; the check after the lock sees the other's committed table."""
    key = conn.info.dsn
    locked = False
    for day in sorted(set(days)):
        if (key, day) in _known_partitions:
            continue
        if not locked:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            locked = True
        nxt = day + timedelta(days=1)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF fixes "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') TO ('{nxt.isoformat()} 00:00:00+00')"
        )
        _known_partitions.add((key, day))


def _copy_payload(df: pl.DataFrame) -> bytes:
    out = df.select(
        pl.col("vehicle_id"),
        pl.from_epoch("ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        "lon", "lat",
        pl.col("h3").cast(pl.Int64),
        "speed_kmh", "heading_deg", "valid", "alarm", "status", "cover_closed", "lifting", "load",
        "device_on", "drum", "backfill", "source",
        pl.from_epoch("received_ts_ms", time_unit="ms").dt.replace_time_zone("UTC").alias("received_ts"),
    )
    buf = io.BytesIO()
    out.write_csv(buf, include_header=False, null_value="", datetime_format="%Y-%m-%dT%H:%M:%S%.3f%z")
    return buf.getvalue()


# -- binary COPY ------------------------------------------------------------------------------------------------
# PostgreSQL's binary COPY format: every row is int16 field count, then per field int32 length (-1 = NULL) and
# the big-endian value. PostgreSQL then skips all text parsing (timestamps and floats are what CSV COPY spends
# its time on). Rows differ in length only through the two text columns' byte lengths and which nullable
# sensors are NULL; rows that agree on those share one fixed layout, which is a numpy structured dtype. So the
# batch is grouped by layout (a handful of groups: vehicle ids of a fleet have a few lengths), each group is
# one structured array filled column by column, and the stream is the groups' raw bytes one after another
# (COPY does not care about row order). No per-row Python, no scatter.

_PG_EPOCH_MS = 946_684_800_000  # 2000-01-01 UTC, the origin of binary timestamps (µs)
_BIN_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_BIN_TRAILER = b"\xff\xff"
# HISTORY_COLUMNS order: (kind, big-endian dtype or None for text)
_BIN_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("vehicle_id", None), ("ts", ">i8"), ("lon", ">f8"), ("lat", ">f8"), ("h3", ">i8"), ("speed_kmh", ">f4"),
    ("heading_deg", ">f4"), ("valid", "u1"), ("alarm", ">i8"), ("status", ">i8"), ("cover_closed", "u1"),
    ("lifting", "u1"), ("load", ">i2"), ("device_on", "u1"), ("drum", ">i2"), ("backfill", "u1"), ("source", None),
    ("received_ts", ">i8"),
)


def _text(col: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of a string column and its n + 1 byte offsets into them (nulls are not allowed)."""
    import pyarrow as pa

    arr = col.to_arrow().cast(pa.large_string())
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets


def _binary_payload(df: pl.DataFrame) -> bytes:
    """The whole batch (FIX_SCHEMA + h3) as one binary COPY stream."""
    n = df.height
    texts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # name -> (bytes, offsets, lengths)
    values: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    for name, dtype in _BIN_FIELDS:
        if dtype is None:
            data, offsets = _text(df.get_column(name))
            texts[name] = (data, offsets, np.diff(offsets))
            continue
        src = {"ts": "ts_ms", "received_ts": "received_ts_ms"}.get(name, name)
        s = df.get_column(src)
        if s.null_count():
            nulls[name] = s.is_null().to_numpy()
        if name in ("ts", "received_ts"):
            vals = (s.fill_null(0).to_numpy().astype(np.int64) - _PG_EPOCH_MS) * 1000
        elif dtype == "u1":
            vals = s.fill_null(False).to_numpy().astype(np.uint8)
        else:
            vals = s.fill_null(0).to_numpy()
        values[name] = vals.astype(dtype, copy=False)
    if n == 0:
        return _BIN_HEADER + _BIN_TRAILER
    # layout key per row: text byte lengths and the NULL pattern (NULL in a NOT NULL column: PostgreSQL says so)
    key = (texts["vehicle_id"][2] << 40) | (texts["source"][2] << 24)
    for bit, name in enumerate(nulls):
        key = key | (nulls[name].astype(np.int64) << bit)
    if bool((key == key[0]).all()):
        groups: list[np.ndarray | None] = [None]
    else:
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        groups = list(np.split(order, bounds))
    parts = [_BIN_HEADER]
    for rows in groups:
        r0 = 0 if rows is None else int(rows[0])
        m = n if rows is None else len(rows)
        fields: list[tuple[str, str]] = [("nf", ">i2")]
        spec: list[tuple[str, int]] = []  # (name, data width or -1 for NULL) per field, in order
        for name, dtype in _BIN_FIELDS:
            if dtype is None:
                width = int(texts[name][2][r0])
                fields.append((f"len_{name}", ">i4"))
                if width:
                    fields.append((name, f"V{width}"))
            elif name in nulls and nulls[name][r0]:
                width = -1
                fields.append((f"len_{name}", ">i4"))
            else:
                width = np.dtype(dtype).itemsize
                fields += [(f"len_{name}", ">i4"), (name, dtype)]
            spec.append((name, width))
        layout = np.dtype(fields)
        arr = np.empty(m, dtype=layout)
        arr["nf"] = len(_BIN_FIELDS)
        raw = arr.view(np.uint8).reshape(m, layout.itemsize)
        for (name, dtype), (_, width) in zip(_BIN_FIELDS, spec, strict=True):
            arr[f"len_{name}"] = width
            if width <= 0:
                continue
            if dtype is None:
                data, offsets, _ = texts[name]
                starts = offsets[:-1] if rows is None else offsets[rows]
                off = layout.fields[name][1]
                raw[:, off:off + width] = data[starts[:, None] + np.arange(width)]
            else:
                arr[name] = values[name] if rows is None else values[name][rows]
        parts.append(arr.tobytes())
    parts.append(_BIN_TRAILER)
    return b"".join(parts)


#: "binary" or "csv": the format `write_fixes` feeds COPY. Measured on 300,000-row batches (busy 2-core
#: machine): the grouped-layout binary stream costs the worker ~0.1 s to build and PostgreSQL ~15 % less CPU
#: to read than polars' CSV (timestamps and floats need no parsing). Both stay selectable and tested equal.
COPY_FORMAT = "binary"

#: after a batch met a row already stored (a redelivery), this many following batches take the merge path
#: directly (redeliveries come in runs: a restarted worker re-reads everything it had pending)
MERGE_AFTER_CONFLICT = 8
_merge_left: dict[str, int] = {}


def _copy(cur: psycopg.Cursor, table: str, df: pl.DataFrame) -> None:
    cols = ", ".join(HISTORY_COLUMNS)
    if COPY_FORMAT == "binary":
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(_binary_payload(df))
    else:
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(_copy_payload(df))


def write_fixes(conn: psycopg.Connection, df: pl.DataFrame) -> int:
    """Insert fixes (FIX_SCHEMA + `h3`); returns how many were new. Call inside a transaction.

    Fast path: one COPY straight into `fixes` inside a savepoint. A row already stored (or twice in the batch)
    violates the (vehicle, ts) primary key and aborts that COPY as a whole; then — and for the next few
    batches — the batch goes the merge way: COPY into a temporary table and `INSERT … ON CONFLICT DO
    NOTHING`. Either way a fix is stored exactly once; the fast path only skips the temporary table and the
    second pass over the rows when there is nothing to merge (the normal case: redeliveries are rare)."""
    if df.height == 0:
        return 0
    days = (
        df.select(pl.from_epoch("ts_ms", time_unit="ms").dt.date().unique()).to_series().to_list()
    )
    ensure_partitions(conn, days)
    # in primary-key order: each vehicle's new rows go to one place in the (vehicle, ts) index instead of
    # one random leaf page per row — PostgreSQL spent ~25 % less CPU per row on a growing table (measured,
    # 300,000-row batches), for ~0.2 µs per row of sorting here
    df = df.sort("vehicle_id", "ts_ms")
    key = conn.info.dsn
    if _merge_left.get(key, 0) <= 0:
        try:
            with conn.transaction(), conn.cursor() as cur:
                _copy(cur, "fixes", df)
            return df.height
        except psycopg.errors.UniqueViolation as exc:
            log.info("history: %d fixes meet stored ones (%s); merging", df.height,
                     exc.diag.message_detail or exc)
            _merge_left[key] = MERGE_AFTER_CONFLICT
    else:
        _merge_left[key] -= 1
    return _merge(conn, df)


def _merge(conn: psycopg.Connection, df: pl.DataFrame) -> int:
    cols = ", ".join(HISTORY_COLUMNS)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS fixes_in (LIKE fixes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        _copy(cur, "fixes_in", df)
        cur.execute(f"INSERT INTO fixes ({cols}) SELECT {cols} FROM fixes_in ON CONFLICT DO NOTHING")
        inserted = cur.rowcount
        cur.execute("TRUNCATE fixes_in")
    return inserted


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def upsert_alerts(conn: psycopg.Connection, episodes: list[Episode]) -> None:
    """Alerts are keyed by the episode's stable id: a redelivered batch updates, never duplicates."""
    if not episodes:
        return
    rows = [
        (e.id, e.kind, e.vehicle_id, e.severity, _ts(e.start_ts_ms), _ts(e.end_ts_ms), e.status, e.lon, e.lat,
         e.place_id, e.backfilled, msgspec.json.encode(e.evidence).decode())
        for e in episodes
    ]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO alerts (alert_id, kind, vehicle_id, severity, start_ts, end_ts, status, lon, lat,
                                   place_id, backfilled, evidence)
               VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb)
               ON CONFLICT (alert_id) DO UPDATE SET
                 end_ts = EXCLUDED.end_ts, status = EXCLUDED.status, severity = EXCLUDED.severity,
                 backfilled = alerts.backfilled OR EXCLUDED.backfilled, evidence = EXCLUDED.evidence,
                 updated_at = now()""",
            rows,
        )


def track(conn: psycopg.Connection, vehicle_id: str, ts_from: datetime, ts_to: datetime) -> pl.DataFrame:
    """One vehicle's fixes in [from, to), time-ordered."""
    cur = conn.execute(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM fixes WHERE vehicle_id = %s AND ts >= %s AND ts < %s "
        "ORDER BY ts",
        (vehicle_id, ts_from, ts_to),
    )
    rows = cur.fetchall()
    return pl.DataFrame(rows, schema=list(HISTORY_COLUMNS), orient="row")


def apply_retention(conn: psycopg.Connection, days: int, *, actor: str = "retention",
                    now: datetime | None = None) -> dict[str, object]:
    """Remove raw positions older than `days` whole UTC days: every daily partition that ends at or before
    midnight (UTC) `days` days ago is dropped, through `tracker.edges.audit.purge_fixes` — the one
    sanctioned way past the append-only guard, which logs the run in the audit chain. Returns a summary."""
    from tracker.edges import audit

    if days < 1:
        raise ValueError("retention must keep at least one day")
    now = now or datetime.now(tz=UTC)
    cutoff = datetime.combine(now.astimezone(UTC).date() - timedelta(days=days), datetime.min.time(), tzinfo=UTC)
    before = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'fixes'::regclass")}
    removed = audit.purge_fixes(conn, actor, cutoff, reason=f"retention {days} days")
    after = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'fixes'::regclass")}
    _known_partitions.clear()  # a dropped day must be re-created if late data arrives for it
    return {"cutoff": cutoff.isoformat(), "rows": removed, "partitions_dropped": sorted(before - after)}


def count_fixes(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT vehicle_id, count(*) FROM fixes GROUP BY vehicle_id").fetchall())


def np_days(ts_ms: np.ndarray) -> list[date]:
    return sorted({datetime.fromtimestamp(int(d) * 86400, tz=UTC).date() for d in np.unique(ts_ms // 86_400_000)})
