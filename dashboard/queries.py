"""Read-only SQL behind the REST API (the IO edge of the dashboard; no HTTP here).

Times go out as UTC epoch milliseconds (what the pages and deck.gl compute with). Every function takes an
open connection so the caller decides its lifetime; nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from dashboard import scoping
from tracker.cases.access import Scope
from tracker.edges.history import HISTORY_COLUMNS

#: No restriction (the default of every query: callers pass the user's scope).
ALL = Scope()


def ms(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp() * 1000)


def from_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


# -- vehicles ------------------------------------------------------------------------------------------------

_VEHICLE_COLS = "v.vehicle_id, v.kind, v.company, v.district, v.plate, v.vendor_profile, v.attrs"


def _vehicle_row(r: tuple[Any, ...]) -> dict[str, Any]:
    attrs = r[6] or {}
    return {"id": r[0], "kind": r[1], "company": r[2], "district": r[3], "plate": r[4], "vendor_profile": r[5],
            "sensors": list(attrs.get("sensors", []))}


def vehicles(conn: psycopg.Connection, kind: str | None = None, company: str | None = None,
             district: str | None = None, scope: Scope = ALL) -> list[dict[str, Any]]:
    where, params = scoping.sql(scope)
    rows = conn.execute(
        f"SELECT {_VEHICLE_COLS} FROM vehicles v WHERE (%(k)s::text IS NULL OR v.kind = %(k)s) "
        "AND (%(c)s::text IS NULL OR v.company = %(c)s) AND (%(d)s::text IS NULL OR v.district = %(d)s) "
        f"AND {where} ORDER BY v.vehicle_id",
        {"k": kind, "c": company, "d": district, **params},
    ).fetchall()
    return [_vehicle_row(r) for r in rows]


def vehicle(conn: psycopg.Connection, vehicle_id: str) -> dict[str, Any] | None:
    r = conn.execute(f"SELECT {_VEHICLE_COLS} FROM vehicles v WHERE v.vehicle_id = %s", (vehicle_id,)).fetchone()
    return None if r is None else _vehicle_row(r)


def kinds_by_vehicle(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT vehicle_id, kind FROM vehicles").fetchall())


def owners_by_vehicle(conn: psycopg.Connection) -> dict[str, tuple[str, tuple[str | None, str | None]]]:
    """vehicle id → (kind, (company, district)): what the live hub needs to scope pushes."""
    rows = conn.execute("SELECT vehicle_id, kind, company, district FROM vehicles").fetchall()
    return {vid: (kind, (company, district)) for vid, kind, company, district in rows}


def facets(conn: psycopg.Connection, scope: Scope = ALL) -> dict[str, list[str]]:
    """Distinct companies and districts (of the vehicles in scope), for the filter drop-downs."""
    where, params = scoping.sql(scope)
    companies = [r[0] for r in conn.execute(
        f"SELECT DISTINCT company FROM vehicles v WHERE company IS NOT NULL AND company <> '' AND {where} "
        "ORDER BY 1", params)]
    districts = [r[0] for r in conn.execute(
        f"SELECT DISTINCT district FROM vehicles v WHERE district IS NOT NULL AND district <> '' AND {where} "
        "ORDER BY 1", params)]
    return {"companies": companies, "districts": districts}


# -- alerts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    """Every field optional. The time range selects alerts *overlapping* [since, until): an episode that began
    before `since` and is still open is part of the picture an enforcement team needs."""

    kinds: tuple[str, ...] = ()
    vehicle_kinds: tuple[str, ...] = ()
    companies: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    status: str | None = None  # open | closed
    severity: str | None = None
    vehicle_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    scope: Scope = ALL  # whose vehicles' alerts (a tenant never sees another's)

    def where(self) -> tuple[str, dict[str, Any]]:
        scoped, params = scoping.sql(self.scope)
        parts = [scoped]
        for col, name, values in (("a.kind", "kinds", self.kinds), ("v.kind", "vkinds", self.vehicle_kinds),
                                  ("v.company", "companies", self.companies),
                                  ("v.district", "districts", self.districts)):
            if values:
                parts.append(f"{col} = ANY(%({name})s)")
                params[name] = list(values)
        for col, name, value in (("a.status", "status", self.status), ("a.severity", "severity", self.severity),
                                 ("a.vehicle_id", "vid", self.vehicle_id)):
            if value:
                parts.append(f"{col} = %({name})s")
                params[name] = value
        if self.since is not None:
            parts.append("(a.end_ts IS NULL OR a.end_ts >= %(since)s)")
            params["since"] = self.since
        if self.until is not None:
            parts.append("a.start_ts < %(until)s")
            params["until"] = self.until
        return " AND ".join(parts), params


_ALERT_COLS = ("a.alert_id, a.kind, a.vehicle_id, a.severity, a.start_ts, a.end_ts, a.status, a.lon, a.lat, "
               "a.place_id, a.backfilled, a.updated_at, v.kind, v.company, v.district, v.plate")


def _alert_row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "kind": r[1], "vehicle_id": r[2], "severity": r[3], "start_ts_ms": ms(r[4]),
            "end_ts_ms": ms(r[5]), "status": r[6], "lon": r[7], "lat": r[8], "place_id": r[9],
            "backfilled": r[10], "updated_ts_ms": ms(r[11]),
            "vehicle": {"kind": r[12], "company": r[13], "district": r[14], "plate": r[15]}}


def alerts(conn: psycopg.Connection, f: AlertFilter, limit: int = 200, offset: int = 0
           ) -> tuple[list[dict[str, Any]], int]:
    """(newest first page of alerts, total matching)."""
    where, params = f.where()
    base = f"FROM alerts a LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id WHERE {where}"
    total = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # type: ignore[index]
    rows = conn.execute(f"SELECT {_ALERT_COLS} {base} ORDER BY a.start_ts DESC, a.alert_id "
                        "LIMIT %(limit)s OFFSET %(offset)s", {**params, "limit": limit, "offset": offset})
    return [_alert_row(r) for r in rows], int(total)


def alert(conn: psycopg.Connection, alert_id: str) -> dict[str, Any] | None:
    r = conn.execute(f"SELECT {_ALERT_COLS}, a.evidence FROM alerts a LEFT JOIN vehicles v "
                     "ON v.vehicle_id = a.vehicle_id WHERE a.alert_id = %s", (alert_id,)).fetchone()
    if r is None:
        return None
    return {**_alert_row(r), "evidence": r[16] or {}}


def alerts_per_day(conn: psycopg.Connection, since: datetime, until: datetime, utc_offset_min: int,
                   scope: Scope = ALL) -> list[dict[str, Any]]:
    """Alerts per violation kind per *local* day (the day a city reports on), by start time."""
    where, params = scoping.sql(scope)
    rows = conn.execute(
        "SELECT to_char(date_trunc('day', a.start_ts + make_interval(mins => %(off)s)), 'YYYY-MM-DD') AS day, "
        "a.kind, count(*) FROM alerts a LEFT JOIN vehicles v ON v.vehicle_id = a.vehicle_id "
        f"WHERE a.start_ts >= %(since)s AND a.start_ts < %(until)s AND {where} GROUP BY 1, 2 ORDER BY 1, 2",
        {"off": utc_offset_min, "since": since, "until": until, **params},
    ).fetchall()
    return [{"day": d, "kind": k, "count": n} for d, k, n in rows]


def company_ranking(conn: psycopg.Connection, since: datetime, until: datetime, scope: Scope = ALL
                    ) -> list[dict[str, Any]]:
    """Companies by alerts per registered vehicle (fair to big and small fleets), worst first — over the
    vehicles in scope (an operator sees its own companies only)."""
    where, params = scoping.sql(scope)
    rows = conn.execute(
        f"""WITH fleet AS (SELECT v.company, count(*) AS vehicles FROM vehicles v WHERE {where} GROUP BY v.company),
                hits AS (SELECT v.company, count(*) AS alerts,
                                count(*) FILTER (WHERE a.severity = 'confirmed') AS confirmed,
                                count(DISTINCT a.vehicle_id) AS vehicles_alerted
                         FROM alerts a JOIN vehicles v ON v.vehicle_id = a.vehicle_id
                         WHERE a.start_ts >= %(since)s AND a.start_ts < %(until)s AND {where} GROUP BY v.company)
           SELECT f.company, f.vehicles, coalesce(h.alerts, 0), coalesce(h.confirmed, 0),
                  coalesce(h.vehicles_alerted, 0)
           FROM fleet f LEFT JOIN hits h ON h.company IS NOT DISTINCT FROM f.company
           ORDER BY coalesce(h.alerts, 0)::float / greatest(f.vehicles, 1) DESC, f.company""",
        {"since": since, "until": until, **params},
    ).fetchall()
    return [{"company": c, "vehicles": nv, "alerts": a, "confirmed": conf, "vehicles_alerted": va,
             "alerts_per_vehicle": round(a / max(nv, 1), 3)} for c, nv, a, conf, va in rows]


# -- history -------------------------------------------------------------------------------------------------


def tracks(conn: psycopg.Connection, vehicle_ids: list[str], since: datetime, until: datetime
           ) -> list[dict[str, Any]]:
    """Columnar tracks (one dict of arrays per vehicle) for replay and evidence: compact JSON, and what
    deck.gl's TripsLayer and the sensor chart consume directly. Sensors stay null where not reported."""
    cols = ("ts", "lon", "lat", "speed_kmh", "heading_deg", "valid", "cover_closed", "lifting", "load",
            "device_on", "drum", "backfill")
    assert set(cols) <= set(HISTORY_COLUMNS)
    rows = conn.execute(
        f"SELECT vehicle_id, {', '.join(cols)} FROM fixes WHERE vehicle_id = ANY(%s) AND ts >= %s AND ts < %s "
        "ORDER BY vehicle_id, ts",
        (vehicle_ids, since, until),
    ).fetchall()
    out: dict[str, dict[str, list[Any]]] = {}
    for r in rows:
        t = out.setdefault(r[0], {c: [] for c in ("ts_ms",) + cols[1:]})
        t["ts_ms"].append(ms(r[1]))
        for c, v in zip(cols[1:], r[2:], strict=True):
            t[c].append(round(v, 6) if isinstance(v, float) else v)
    return [{"vehicle_id": vid, **out[vid]} for vid in vehicle_ids if vid in out]


def density(conn: psycopg.Connection, since: datetime, until: datetime, res: int, scope: Scope = ALL
            ) -> list[dict[str, Any]]:
    """Fix counts per H3 cell at `res`, derived in SQL from the fine `h3` column by bit arithmetic (set the
    resolution field, fill the finer digits with 7) — no H3 call, no PostGIS. Only vehicles in `scope`."""
    low = (1 << (3 * (15 - res))) - 1
    where, params = scoping.sql(scope)
    only = "" if scope.unrestricted else f"AND vehicle_id IN (SELECT v.vehicle_id FROM vehicles v WHERE {where})"
    rows = conn.execute(
        "SELECT ((h3 & ~(15::bigint << 52)) | (%(res)s::bigint << 52) | %(low)s::bigint) AS cell, "
        "count(*), count(DISTINCT vehicle_id) FROM fixes WHERE ts >= %(since)s AND ts < %(until)s AND h3 <> 0 "
        f"{only} GROUP BY 1",
        {"res": res, "low": low, "since": since, "until": until, **params},
    ).fetchall()
    return [{"h3": format(cell & 0xFFFFFFFFFFFFFFFF, "x"), "fixes": n, "vehicles": nv} for cell, n, nv in rows]


def newest_fix(conn: psycopg.Connection) -> datetime | None:
    r = conn.execute("SELECT max(ts) FROM fixes").fetchone()
    return None if r is None else r[0]


# -- reference documents -------------------------------------------------------------------------------------


def docs(conn: psycopg.Connection, doc_type: str, doc_id: str | None = None, all_versions: bool = False
         ) -> list[dict[str, Any]]:
    """Reference documents (permits, orders) with their version metadata; latest version unless asked."""
    distinct = "" if all_versions else "DISTINCT ON (doc_id)"
    rows = conn.execute(
        f"SELECT {distinct} doc_id, version, body, created_at, created_by FROM reference_docs "
        "WHERE doc_type = %s AND (%s::text IS NULL OR doc_id = %s) ORDER BY doc_id, version DESC",
        (doc_type, doc_id, doc_id),
    ).fetchall()
    return [{**body, "id": did, "version": v, "created_ts_ms": ms(created), "created_by": by}
            for did, v, body, created, by in rows]


def table_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]  # type: ignore[index]


# -- trips ---------------------------------------------------------------------------------------------------

#: Trip outcomes the engine writes (`tracker.trips.OUTCOMES`).
TRIP_OUTCOMES = ("completed", "failed", "dumped", "open", "arrived")
EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC).date()


@dataclass(frozen=True)
class TripFilter:
    """Every field optional. `sites` match the trip's origin (the construction site / plant it left loaded),
    `disposal_sites` its destination; `days` are local calendar days (the day a city counts trips on); the
    time range selects trips that *started* in [since, until)."""

    vehicle_id: str | None = None
    vehicle_kinds: tuple[str, ...] = ()
    companies: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    disposal_sites: tuple[str, ...] = ()
    days: tuple[int, ...] = ()  # local days since the epoch (`trips.local_day`)
    outcomes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    scope: Scope = ALL  # a trip is visible when its vehicle is

    def where(self) -> tuple[str, dict[str, Any]]:
        scoped, params = scoping.sql(self.scope)
        parts = [scoped]
        for col, name, values in (("t.vehicle_kind", "vkinds", self.vehicle_kinds),
                                  ("coalesce(t.company, v.company)", "companies", self.companies),
                                  ("t.origin_fence", "sites", self.sites),
                                  ("t.dest_fence", "disposal", self.disposal_sites),
                                  ("t.local_day", "days", self.days), ("t.outcome", "outcomes", self.outcomes)):
            if values:
                parts.append(f"{col} = ANY(%({name})s)")
                params[name] = list(values)
        if self.vehicle_id:
            parts.append("t.vehicle_id = %(vid)s")
            params["vid"] = self.vehicle_id
        if self.since is not None:
            parts.append("t.start_ts >= %(since)s")
            params["since"] = self.since
        if self.until is not None:
            parts.append("t.start_ts < %(until)s")
            params["until"] = self.until
        return " AND ".join(parts), params


_LATEST_FENCES = ("(SELECT DISTINCT ON (fence_id) fence_id, name, company FROM fence_versions "
                  "ORDER BY fence_id, version DESC)")
_TRIP_COLS = ("t.trip_id, t.vehicle_id, t.vehicle_kind, coalesce(t.company, v.company), t.start_ts, t.end_ts, "
              "t.origin_fence, t.dest_fence, t.doc_id, t.outcome, t.load_source, t.local_day, t.decided_ts, "
              "t.backfilled, t.updated_at, v.plate, v.district, fo.name, fo.company, fd.name, fd.company")


def _place(fence_id: str | None, name: str | None, company: str | None, companies: frozenset[str] | None
           ) -> dict[str, Any] | None:
    """A trip end: the fence id always (the trip is the vehicle's, so is where it went); its name only when
    the reader sees that fence (`scoping.fence_visible`)."""
    if fence_id is None:
        return None
    return {"id": fence_id, "name": name if scoping.fence_visible(company, companies) else None}


def local_day(value: int) -> str:
    return (EPOCH_DAY + timedelta(days=value)).isoformat()


def trips(conn: psycopg.Connection, f: TripFilter, limit: int = 200, offset: int = 0,
          fence_companies: frozenset[str] | None = None) -> tuple[list[dict[str, Any]], int]:
    """(newest first page of trips, total matching). `fence_companies`: whose fences' names the reader sees
    (`scoping.visible_companies`; None = all)."""
    where, params = f.where()
    base = f"FROM trips t LEFT JOIN vehicles v ON v.vehicle_id = t.vehicle_id WHERE {where}"
    total = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]  # type: ignore[index]
    rows = conn.execute(
        f"SELECT {_TRIP_COLS} FROM (SELECT t.* {base} ORDER BY t.start_ts DESC, t.trip_id "
        "LIMIT %(limit)s OFFSET %(offset)s) t LEFT JOIN vehicles v ON v.vehicle_id = t.vehicle_id "
        f"LEFT JOIN {_LATEST_FENCES} fo ON fo.fence_id = t.origin_fence "
        f"LEFT JOIN {_LATEST_FENCES} fd ON fd.fence_id = t.dest_fence ORDER BY t.start_ts DESC, t.trip_id",
        {**params, "limit": limit, "offset": offset}).fetchall()
    out = [{"id": r[0], "vehicle_id": r[1], "vehicle_kind": r[2], "company": r[3], "start_ts_ms": ms(r[4]),
            "end_ts_ms": ms(r[5]), "origin": _place(r[6], r[17], r[18], fence_companies),
            "destination": _place(r[7], r[19], r[20], fence_companies), "doc_id": r[8], "outcome": r[9],
            "load_source": r[10], "day": local_day(r[11]), "decided_ts_ms": ms(r[12]), "backfilled": r[13],
            "updated_ts_ms": ms(r[14]), "vehicle": {"plate": r[15], "district": r[16]}} for r in rows]
    return out, int(total)


def trip_counts(conn: psycopg.Connection, f: TripFilter, by: str, fence_companies: frozenset[str] | None = None
                ) -> list[dict[str, Any]]:
    """Trips per origin site (`by="origin"`) or per disposal site (`by="destination"`), most first; trips with
    no known place at that end are left out (a load picked up somewhere unknown is not a site's trip)."""
    col = {"origin": "t.origin_fence", "destination": "t.dest_fence"}[by]
    where, params = f.where()
    rows = conn.execute(
        f"SELECT c.place, c.n, p.name, p.company FROM (SELECT {col} AS place, count(*) AS n FROM trips t "
        f"LEFT JOIN vehicles v ON v.vehicle_id = t.vehicle_id WHERE {where} AND {col} IS NOT NULL GROUP BY 1) c "
        f"LEFT JOIN {_LATEST_FENCES} p ON p.fence_id = c.place ORDER BY c.n DESC, c.place", params).fetchall()
    return [{"place_id": place, "name": name if scoping.fence_visible(company, fence_companies) else None,
             "trips": n} for place, n, name, company in rows]
