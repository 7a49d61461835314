"""Fences in PostgreSQL, versioned (table `fence_versions`, migration 0100_fences.sql).

The only module of `geofences` that knows SQL. It takes an open psycopg 3 connection and never reads
configuration or starts anything. Each function runs in `conn.transaction()`: a transaction of its own on an
idle connection, a savepoint inside the caller's.

Versioning: saving a fence whose content differs from its current version closes that version
(`recorded_to` = now) and inserts the next; saving identical content changes nothing. Old versions are kept
(a trigger makes the table append-only), so an alert can always be explained with the fence as it was.
Record times come from the database clock (`clock_timestamp()`), one instant per call.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
import shapely.geometry

from geofences.model import Fence

LOCAL_TZ = "Asia/Shanghai"

_COLUMNS = (
    "fence_id, version, name, kind, shape, geometry, radius_m, half_width_m, company, district, "
    "valid_from, valid_to, windows, tags"
)


@dataclass(frozen=True)
class FenceVersion:
    """One stored version and when it was the current one ([recorded_from, recorded_to), None = now)."""

    fence: Fence
    recorded_from: datetime
    recorded_to: datetime | None
    actor: str | None


def _fence(row: tuple) -> Fence:
    fid, version, name, kind, shape, geometry, radius_m, half_width_m, company, district, vf, vt, windows, tags = row
    return Fence(
        id=fid, name=name, kind=kind, shape=shape, geometry=shapely.geometry.shape(geometry),
        radius_m=radius_m, half_width_m=half_width_m, company=company, district=district,
        valid_from=vf, valid_to=vt, windows=tuple(tuple(w) for w in windows), tags=tags, version=version,
    )


def _params(f: Fence, version: int, now: datetime, actor: str | None) -> tuple:
    return (
        f.id, version, f.name, f.kind.value, f.shape.value, json.dumps(shapely.geometry.mapping(f.geometry)),
        f.radius_m, f.half_width_m, f.company, f.district, f.valid_from, f.valid_to,
        json.dumps([list(w) for w in f.windows]), json.dumps(dict(f.tags)), now, actor,
    )


def _same_content(a: Fence, b: Fence) -> bool:
    return dataclasses.replace(a, version=b.version) == b


def _lock(conn: psycopg.Connection, ids: Iterable[str]) -> None:
    """Serialise concurrent writers of the same fences (also of a fence that does not exist yet)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('fence:' || id, 0)) FROM unnest(%s::text[]) AS id ORDER BY id",
        (sorted(set(ids)),),
    )


def save_fences(conn: psycopg.Connection, fences: Sequence[Fence], actor: str | None = None) -> list[Fence]:
    """Store fences: new ids get version 1, changed ones the next version, unchanged ones stay as they are.
    Returns the fences as stored (with their version numbers). `Fence.version` of the input is ignored."""
    ids = [f.id for f in fences]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate fence ids in one save")
    out: list[Fence] = []
    with conn.transaction():
        _lock(conn, ids)
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM fence_versions WHERE recorded_to IS NULL AND fence_id = ANY(%s)", (ids,)
        ).fetchall()
        current = {r[0]: _fence(r) for r in rows}
        last = dict(conn.execute(  # a retired fence saved again continues its numbering
            "SELECT fence_id, max(version) FROM fence_versions WHERE fence_id = ANY(%s) GROUP BY fence_id", (ids,)
        ).fetchall())
        inserts, closes = [], []
        for f in fences:
            cur = current.get(f.id)
            if cur is not None and _same_content(f, cur):
                out.append(cur)
                continue
            version = last.get(f.id, 0) + 1
            if cur is not None:
                closes.append((now, f.id))
            inserts.append(_params(f, version, now, actor))
            out.append(dataclasses.replace(f, version=version))
        with conn.cursor() as cur:
            if closes:
                cur.executemany(
                    "UPDATE fence_versions SET recorded_to = %s WHERE fence_id = %s AND recorded_to IS NULL", closes
                )
            if inserts:
                cur.executemany(
                    f"INSERT INTO fence_versions ({_COLUMNS}, recorded_from, actor) "
                    "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)",
                    inserts,
                )
    return out


def retire_fences(conn: psycopg.Connection, fence_ids: Iterable[str], actor: str | None = None) -> int:
    """End fences (no current version afterwards; history kept). Returns how many were current."""
    ids = list(fence_ids)
    with conn.transaction():
        _lock(conn, ids)
        cur = conn.execute(
            "UPDATE fence_versions SET recorded_to = clock_timestamp() WHERE recorded_to IS NULL AND fence_id = ANY(%s)",
            (ids,),
        )
        return cur.rowcount


def list_fences(conn: psycopg.Connection) -> list[Fence]:
    """Current version of every fence that has not been retired, by id (validity dates not applied)."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM fence_versions WHERE recorded_to IS NULL ORDER BY fence_id").fetchall()
    return [_fence(r) for r in rows]


def fences_in_force(conn: psycopg.Connection, at: datetime) -> list[Fence]:
    """The fences as they stood at instant `at`: the version current then, if valid on that local date.

    Validity is checked by local date with one day of slack at the end, because a window crossing midnight
    belongs to the shift that started the evening before (see `geofences.model`); the exact per-instant
    decision (dates and daily windows) is `Fence.active_at` / `ActivityTable`, made per fix."""
    rows = conn.execute(
        f"""
        SELECT {_COLUMNS} FROM fence_versions
        WHERE recorded_from <= %(at)s AND (recorded_to IS NULL OR recorded_to > %(at)s)
          AND (valid_from IS NULL OR valid_from <= (%(at)s AT TIME ZONE %(tz)s)::date)
          AND (valid_to IS NULL OR valid_to >= (%(at)s AT TIME ZONE %(tz)s)::date - 1)
        ORDER BY fence_id
        """,
        {"at": at, "tz": LOCAL_TZ},
    ).fetchall()
    return [_fence(r) for r in rows]


def fence_versions(conn: psycopg.Connection, fence_id: str) -> list[FenceVersion]:
    """Every version of one fence, oldest first, with when each was current and who recorded it."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}, recorded_from, recorded_to, actor FROM fence_versions WHERE fence_id = %s ORDER BY version",
        (fence_id,),
    ).fetchall()
    return [FenceVersion(_fence(r[:14]), r[14], r[15], r[16]) for r in rows]
