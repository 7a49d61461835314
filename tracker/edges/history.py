"""Position history and alerts in PostgreSQL.

Fixes are written in large batches with COPY into a temporary table, then moved with
`INSERT … ON CONFLICT DO NOTHING`: a block delivered twice (at-least-once bus) is stored exactly once. The
COPY payload is produced by polars in one vectorised call (no per-row Python). Daily partitions are created
before a batch lands in them, so the DEFAULT partition stays empty and new partitions can always attach.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import msgspec
import numpy as np
import polars as pl
import psycopg

from tracker.episode import Episode

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


def write_fixes(conn: psycopg.Connection, df: pl.DataFrame) -> int:
    """Insert fixes (FIX_SCHEMA + `h3`); returns how many were new. Call inside a transaction."""
    if df.height == 0:
        return 0
    days = (
        df.select(pl.from_epoch("ts_ms", time_unit="ms").dt.date().unique()).to_series().to_list()
    )
    ensure_partitions(conn, days)
    cols = ", ".join(HISTORY_COLUMNS)
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS fixes_in (LIKE fixes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY fixes_in ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(_copy_payload(df))
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


def count_fixes(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT vehicle_id, count(*) FROM fixes GROUP BY vehicle_id").fetchall())


def np_days(ts_ms: np.ndarray) -> list[date]:
    return sorted({datetime.fromtimestamp(int(d) * 86400, tz=UTC).date() for d in np.unique(ts_ms // 86_400_000)})
