"""Coverage in PostgreSQL: plans as versioned reference documents, fixes read for a day, reports stored.

Plans go through `tracker.edges.refstore` (doc_type "plan" for work plans, "schedule" for collection
schedules): an edit inserts version n+1 and the audit trigger records who changed what. A computed day
(`tracker.coverage.report.DayReport`) is stored as Parquet parts (migration 0400) so the dashboard and the
API serve it without re-reading a day of history; recomputing replaces it.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import polars as pl
import psycopg

from tracker.coverage.plans import CollectionSchedule, Plans, WorkPlan

PARTS = ("segments", "points", "vehicles", "hexes")


# -- plans ------------------------------------------------------------------------------------------------------


def save_plans(conn: psycopg.Connection, plans: Plans, actor: str | None = None) -> dict[str, int]:
    """Store every plan and schedule; unchanged ones are left as they are. Returns versions written."""
    from tracker.edges.refstore import save_docs

    with conn.transaction():
        a = save_docs(conn, "plan", list(plans.work_plans), actor)
        b = save_docs(conn, "schedule", list(plans.collection_schedules), actor)
    return {"work_plans": a, "collection_schedules": b}


def load_plans(conn: psycopg.Connection) -> Plans:
    """The latest version of every work plan and collection schedule."""
    from tracker.edges.refstore import load_docs

    return Plans(work_plans=load_docs(conn, "plan", WorkPlan),
                 collection_schedules=load_docs(conn, "schedule", CollectionSchedule))


# -- fixes ------------------------------------------------------------------------------------------------------


def read_fixes(conn: psycopg.Connection, since_ms: int, until_ms: int, vehicle_ids: list[str]) -> pl.DataFrame:
    """Fixes of the given vehicles in [since, until), as the coverage engine reads them (COPY, not rows)."""
    sql = ("COPY (SELECT vehicle_id, (extract(epoch FROM ts) * 1000)::bigint AS ts_ms, lon, lat, speed_kmh, "
           "valid::int, device_on::int, lifting::int FROM fixes WHERE ts >= %s AND ts < %s AND vehicle_id = ANY(%s)) "
           "TO STDOUT (FORMAT csv, HEADER true)")
    buf = io.BytesIO()
    with conn.cursor() as cur:
        with cur.copy(sql, (_dt(since_ms), _dt(until_ms), vehicle_ids)) as cp:
            for chunk in cp:
                buf.write(chunk)
    schema = {"vehicle_id": pl.String, "ts_ms": pl.Int64, "lon": pl.Float64, "lat": pl.Float64,
              "speed_kmh": pl.Float64, "valid": pl.Int8, "device_on": pl.Int8, "lifting": pl.Int8}
    flags = [pl.col(c).cast(pl.Boolean) for c in ("valid", "device_on", "lifting")]
    if buf.tell() == 0:
        return pl.DataFrame(schema=schema).with_columns(flags)
    buf.seek(0)
    return pl.read_csv(buf, schema=schema).with_columns(flags)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# -- reports ----------------------------------------------------------------------------------------------------


def compute(conn: psycopg.Connection, day: date, settings: Any) -> Any:
    """Compute a day's report from what the database holds: plans, fixes, and the fences as they stood that
    day (noon, local) — or, for fences recorded only later, their current version."""
    from geofences.store import fences_in_force, list_fences
    from tracker.coverage.params import load_coverage_params
    from tracker.coverage.report import Verdicts, compute_day, day_bounds_ms

    plans = load_plans(conn)
    off = settings.city.utc_offset_min
    verdicts = Verdicts.from_settings(settings)
    a, b = day_bounds_ms(day, off, verdicts.grace_s)
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone(timedelta(minutes=off)))
    fences = fences_in_force(conn, noon)
    have = {f.id for f in fences}
    # fences recorded after that day (imported later, a back-fill): their current version rather than none
    fences += [f for f in list_fences(conn) if f.id not in have]
    ids = sorted({p.vehicle_id for p in plans.work_plans} | {c.vehicle_id for c in plans.collection_schedules})
    fixes = read_fixes(conn, a, b, ids)
    now_ms = int(datetime.now(tz=UTC).timestamp() * 1000)  # today's open windows are in progress, not missed
    return compute_day(fixes, plans, fences, day, off, load_coverage_params(settings), verdicts,
                       as_of_ms=now_ms if now_ms < b else None)


def save_report(conn: psycopg.Connection, rep: Any, actor: str | None = None) -> None:
    meta = {"geometry": rep.geometry, "point_lonlat": {k: list(v) for k, v in rep.point_lonlat.items()}}
    with conn.transaction():  # upserts: two requests computing the same day at once both succeed
        conn.execute("INSERT INTO coverage_days (day, summary, meta, computed_by) VALUES (%s, %s::jsonb, %s::jsonb, %s) "
                     "ON CONFLICT (day) DO UPDATE SET summary = EXCLUDED.summary, meta = EXCLUDED.meta, "
                     "computed_by = EXCLUDED.computed_by, computed_at = now()",
                     (rep.day, msgspec.json.encode(rep.summary()).decode(), msgspec.json.encode(meta).decode(), actor))
        for part in PARTS:
            buf = io.BytesIO()
            getattr(rep, part).write_parquet(buf)
            conn.execute("INSERT INTO coverage_parts (day, part, data) VALUES (%s, %s, %s) "
                         "ON CONFLICT (day, part) DO UPDATE SET data = EXCLUDED.data", (rep.day, part, buf.getvalue()))


def load_report(conn: psycopg.Connection, day: date) -> Any | None:
    from tracker.coverage.report import DayReport

    row = conn.execute("SELECT meta FROM coverage_days WHERE day = %s", (day,)).fetchone()
    if row is None:
        return None
    parts = {p: pl.read_parquet(io.BytesIO(bytes(d))) for p, d in
             conn.execute("SELECT part, data FROM coverage_parts WHERE day = %s", (day,)).fetchall()}
    if set(parts) != set(PARTS):
        return None
    meta = row[0] or {}
    return DayReport(day, parts["segments"], parts["points"], parts["vehicles"], parts["hexes"],
                     meta.get("geometry", {}), {k: tuple(v) for k, v in meta.get("point_lonlat", {}).items()})


def days(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT day, computed_at, summary FROM coverage_days ORDER BY day DESC").fetchall()
    return [{"day": d.isoformat(), "computed_at": c.isoformat(), "summary": s} for d, c, s in rows]


def report(conn: psycopg.Connection, day: date, settings: Any, refresh: bool = False,
           actor: str | None = None) -> Any:
    """The stored report of a day, computed (and stored) when missing or when `refresh` — and always while the
    day is not over yet (its windows and rounds may still be open: a stored copy would be stale)."""
    from tracker.coverage.report import Verdicts, day_bounds_ms

    _, day_end_ms = day_bounds_ms(day, settings.city.utc_offset_min, Verdicts.from_settings(settings).grace_s)
    final = datetime.now(tz=UTC).timestamp() * 1000 >= day_end_ms
    rep = None if refresh or not final else load_report(conn, day)
    if rep is None:
        rep = compute(conn, day, settings)
        save_report(conn, rep, actor)
    return rep
