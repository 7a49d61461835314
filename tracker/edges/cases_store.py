"""Cases in PostgreSQL and on the `{prefix}:cases` Redis stream.

Every state change goes through `act()`: lock the case row, run the pure state machine, write the new
record, the history event and the audit-log row in one transaction, so a case, its history and the audit
chain can never disagree. Pushes to Redis (`notify`, `escalate`'s messages) happen after the commit: a
push may be lost with a crash, a committed change never is, and the next scan re-derives escalations.

Visibility is a `Scope` (tracker.cases.access) turned into a WHERE clause here and checked again in Python
for single objects; callers answer 404 for an invisible case, so ids of other tenants' cases leak nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import redis

from tracker.cases.access import Scope
from tracker.cases.dispatch import Dispatcher
from tracker.cases.evidence import EvidencePackage, ReferenceGeometry, build_package
from tracker.cases.machine import InvalidTransition, apply, open_case
from tracker.cases.model import Actor, Case, CaseEvent, Command
from tracker.cases.scoring import CompanyScore, ScoringPolicy, score_companies
from tracker.cases.settings import CasesSettings
from tracker.cases.sla import Escalation, SlaPolicy, due_escalations
from tracker.cases.stats import StatRow, compute
from tracker.cases.vocab import CaseStage, Source
from tracker.edges import audit, history

log = logging.getLogger(__name__)

__all__ = [
    "CaseNotFound", "VersionConflict", "cases_settings", "stream_name", "visible", "scope_clause", "load",
    "events", "create_from_alert", "create_manual", "act", "list_cases", "intake", "escalate", "notify",
    "publish", "case_stats", "company_scores", "evidence_package", "export_evidence",
    "register_geometry_provider", "fence_geometries",
]

_enc = msgspec.json.Encoder()
_case_dec = msgspec.json.Decoder(Case)
_CLOSED = (CaseStage.CLOSED.value, CaseStage.ASSESSED.value)


class CaseNotFound(LookupError):
    pass


class VersionConflict(InvalidTransition):
    """The client acted on an outdated view of the case (someone else acted first)."""


def cases_settings(settings: Any) -> CasesSettings:
    """The `[cases]` section: `settings.cases` (or an extra field), else the TOML file's `[cases]` table."""
    raw = getattr(settings, "cases", None)
    if raw is None and getattr(settings, "model_extra", None):
        raw = settings.model_extra.get("cases")
    if raw is None:
        cfg = getattr(settings, "config", None)
        path = Path(cfg) if cfg else Path(os.environ.get("FLEETWATCH_CONFIG", "fleetwatch.toml"))
        if path.is_file():
            with path.open("rb") as f:
                raw = tomllib.load(f).get("cases")
    if isinstance(raw, CasesSettings):
        return raw
    return CasesSettings.model_validate(raw or {})


def stream_name(prefix: str) -> str:
    return f"{prefix}:cases"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# --- scope ---------------------------------------------------------------------------------------------

def visible(case: Case, scope: Scope) -> bool:
    return scope.allows(company=case.company, district=case.district, vehicle_kind=case.vehicle_kind,
                        category=case.category)


def scope_clause(scope: Scope, alias: str = "") -> tuple[str, list[Any]]:
    """SQL (starting with 'TRUE') restricting `cases` rows to a scope, and its parameters."""
    p = f"{alias}." if alias else ""
    sql, params = ["TRUE"], []
    if scope.companies is not None:
        sql.append(f"{p}company = ANY(%s)")
        params.append(sorted(scope.companies))
    if scope.districts is not None:
        sql.append(f"{p}district = ANY(%s)")
        params.append(sorted(scope.districts))
    if scope.vehicle_kinds is not None:
        sql.append(f"({p}vehicle_kind = ANY(%s) OR {p}category = ANY(%s))")
        params += [sorted(scope.vehicle_kinds), sorted(scope.categories or ())]
    return " AND ".join(sql), params


# --- rows ----------------------------------------------------------------------------------------------

_COLS = ("case_id", "alert_id", "source", "kind", "category", "priority", "stage", "company", "district", "team",
         "vehicle_id", "vehicle_kind", "created_at", "occurred_at", "stage_due_at", "due_at", "version", "body")


def _params(case: Case) -> tuple[Any, ...]:
    return (case.id, case.alert_id, case.source, case.kind, case.category, case.priority, case.stage, case.company,
            case.district, case.team, case.vehicle_id, case.vehicle_kind, case.created_at,
            case.occurred_at or case.created_at, case.stage_due_at,
            case.due_at, case.version, _enc.encode(case).decode())


def _update(conn: psycopg.Connection, case: Case) -> None:
    sets = ", ".join(f"{c} = %s" for c in _COLS[1:])
    conn.execute(f"UPDATE cases SET {sets} WHERE case_id = %s", (*_params(case)[1:], case.id))


def _insert_event(conn: psycopg.Connection, case: Case, ev: CaseEvent) -> None:
    """`case` is the record *after* the event: history row n+1 belongs to version n (collect = row 1)."""
    conn.execute(
        "INSERT INTO case_events (case_id, seq, at, actor, role, action, from_stage, to_stage, details) "
        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb)",
        (case.id, case.version + 1, ev.at, ev.actor, ev.role, ev.action, ev.from_stage, ev.to_stage,
         _enc.encode(ev.details).decode()))


def _audit(conn: psycopg.Connection, case: Case, ev: CaseEvent) -> None:
    audit.append(conn, ev.actor, f"case.{ev.action}", "case", case.id,
                 {"role": ev.role, "from": ev.from_stage, "to": ev.to_stage, "version": case.version,
                  "details": msgspec.to_builtins(ev.details)})


def load(conn: psycopg.Connection, case_id: int, *, for_update: bool = False) -> Case | None:
    row = conn.execute("SELECT body::text FROM cases WHERE case_id = %s" + (" FOR UPDATE" if for_update else ""),
                       (case_id,)).fetchone()
    return _case_dec.decode(row[0]) if row else None


def events(conn: psycopg.Connection, case_id: int) -> list[CaseEvent]:
    rows = conn.execute("SELECT action, at, actor, role, from_stage, to_stage, details FROM case_events "
                        "WHERE case_id = %s ORDER BY seq", (case_id,)).fetchall()
    return [CaseEvent(action=r[0], at=r[1], actor=r[2], role=r[3], from_stage=r[4], to_stage=r[5],
                      details=r[6] or {}) for r in rows]


def _insert_new(conn: psycopg.Connection, case: Case, ev: CaseEvent) -> tuple[Case, bool]:
    """Insert a new case; with an alert id already taken, return the existing case instead."""
    with conn.transaction():
        case_id = conn.execute("SELECT nextval(pg_get_serial_sequence('cases', 'case_id'))").fetchone()[0]  # type: ignore[index]
        case = msgspec.structs.replace(case, id=int(case_id))
        got = conn.execute(
            f"INSERT INTO cases ({', '.join(_COLS)}) VALUES ({', '.join(['%s'] * (len(_COLS) - 1))}, %s::jsonb) "
            "ON CONFLICT (alert_id) DO NOTHING RETURNING case_id", _params(case)).fetchone()
        if got is None:
            existing = conn.execute("SELECT body::text FROM cases WHERE alert_id = %s", (case.alert_id,)).fetchone()
            return _case_dec.decode(existing[0]), False  # type: ignore[index]
        conn.execute(
            "INSERT INTO case_events (case_id, seq, at, actor, role, action, from_stage, to_stage, details) "
            "VALUES (%s,1,%s,%s,%s,%s,%s,%s,%s::jsonb)",
            (case.id, ev.at, ev.actor, ev.role, ev.action, ev.from_stage, ev.to_stage,
             _enc.encode(ev.details).decode()))
        audit.append(conn, ev.actor, "case.collect", "case", case.id,
                     {"role": ev.role, "to": ev.to_stage, "details": msgspec.to_builtins(ev.details)})
    return case, True


def _vehicle(conn: psycopg.Connection, vehicle_id: str | None) -> dict[str, Any] | None:
    if not vehicle_id:
        return None
    row = conn.execute("SELECT vehicle_id, kind, company, district, plate FROM vehicles WHERE vehicle_id = %s",
                       (vehicle_id,)).fetchone()
    return dict(zip(("vehicle_id", "kind", "company", "district", "plate"), row)) if row else None


_ALERT_COLS = ("alert_id", "kind", "vehicle_id", "severity", "start_ts", "end_ts", "status", "lon", "lat",
               "place_id", "backfilled", "evidence")


def alert_row(conn: psycopg.Connection, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {', '.join(_ALERT_COLS)} FROM alerts WHERE alert_id = %s", (alert_id,)).fetchone()
    return dict(zip(_ALERT_COLS, row)) if row else None


def create_from_alert(conn: psycopg.Connection, alert_id: str, actor: Actor, dispatcher: Dispatcher,
                      policy: SlaPolicy, now: datetime | None = None) -> tuple[Case, bool]:
    """Open the case of an alert (idempotent: one case per alert); returns (case, created)."""
    existing = conn.execute("SELECT body::text FROM cases WHERE alert_id = %s", (alert_id,)).fetchone()
    if existing:
        return _case_dec.decode(existing[0]), False
    alert = alert_row(conn, alert_id)
    if alert is None:
        raise CaseNotFound(f"no alert {alert_id!r}")
    veh = _vehicle(conn, alert["vehicle_id"]) or {}
    a = dispatcher.route(alert["kind"], alert["lon"], alert["lat"], veh.get("district"))
    case, ev = open_case(
        source=Source.ALERT, kind=alert["kind"], category=a.category, priority=a.priority, actor=actor,
        now=_now(now), policy=policy, alert_id=alert_id, vehicle_id=alert["vehicle_id"],
        vehicle_kind=veh.get("kind"), company=veh.get("company"), district=a.district, grid=a.grid, team=a.team,
        lon=alert["lon"], lat=alert["lat"], occurred_at=alert["start_ts"],
        description=f"{alert['kind']} ({alert['severity']})")
    return _insert_new(conn, case, ev)


def create_manual(conn: psycopg.Connection, actor: Actor, dispatcher: Dispatcher, policy: SlaPolicy, *,
                  kind: str, description: str, lon: float | None = None, lat: float | None = None,
                  vehicle_id: str | None = None, district: str | None = None, priority: str | None = None,
                  occurred_at: datetime | None = None, now: datetime | None = None) -> Case:
    """A case reported by a person (patrol, hotline); position or district decides the team."""
    veh = _vehicle(conn, vehicle_id) or {}
    if vehicle_id and not veh:
        raise CaseNotFound(f"no vehicle {vehicle_id!r}")
    a = dispatcher.route(kind, lon, lat, district or veh.get("district"))
    case, ev = open_case(
        source=Source.MANUAL, kind=kind, category=a.category, priority=priority or a.priority, actor=actor,
        now=_now(now), policy=policy, vehicle_id=vehicle_id or None, vehicle_kind=veh.get("kind"),
        company=veh.get("company"), district=a.district, grid=a.grid, team=a.team, lon=lon, lat=lat,
        occurred_at=occurred_at or _now(now), description=description)
    return _insert_new(conn, case, ev)[0]


def act(conn: psycopg.Connection, case_id: int, cmd: Command, actor: Actor, policy: SlaPolicy, *,
        now: datetime | None = None, expected_version: int | None = None) -> tuple[Case, CaseEvent]:
    """Apply one command under the row lock; case, history event and audit row commit together."""
    with conn.transaction():
        case = load(conn, case_id, for_update=True)
        if case is None:
            raise CaseNotFound(f"no case {case_id}")
        if expected_version is not None and expected_version != case.version:
            raise VersionConflict(f"case {case_id} is at version {case.version}, not {expected_version}")
        new, ev = apply(case, cmd, actor, _now(now), policy)
        _insert_event(conn, new, ev)
        _update(conn, new)
        _audit(conn, case, ev)
    return new, ev


def list_cases(conn: psycopg.Connection, scope: Scope, *, stage: str | None = None, open_only: bool = False,
               district: str | None = None, company: str | None = None, team: str | None = None,
               kind: str | None = None, since: datetime | None = None, until: datetime | None = None,
               occurred_since: datetime | None = None, occurred_until: datetime | None = None,
               limit: int | None = 100, offset: int = 0) -> list[Case]:
    """Newest first. `since`/`until` bound the collection time, `occurred_*` the violation time."""
    where, params = scope_clause(scope)
    sql = [where]
    for col, val in (("stage", stage), ("district", district), ("company", company), ("team", team),
                     ("kind", kind)):
        if val is not None:
            sql.append(f"{col} = %s")
            params.append(val)
    if open_only:
        sql.append("stage <> ALL(%s)")
        params.append(list(_CLOSED))
    if since is not None:
        sql.append("created_at >= %s")
        params.append(since)
    if until is not None:
        sql.append("created_at < %s")
        params.append(until)
    if occurred_since is not None:
        sql.append("occurred_at >= %s")
        params.append(occurred_since)
    if occurred_until is not None:
        sql.append("occurred_at < %s")
        params.append(occurred_until)
    q = f"SELECT body::text FROM cases WHERE {' AND '.join(sql)} ORDER BY case_id DESC"
    if limit is not None:
        q += " LIMIT %s OFFSET %s"
        params += [limit, offset]
    return [_case_dec.decode(r[0]) for r in conn.execute(q, params)]


# --- automation ----------------------------------------------------------------------------------------

def intake(conn: psycopg.Connection, dispatcher: Dispatcher, policy: SlaPolicy, settings: CasesSettings, *,
           limit: int = 1000, now: datetime | None = None) -> list[Case]:
    """Open a case for every alert that has none yet (kinds/severities per settings); idempotent."""
    sql = ["NOT EXISTS (SELECT 1 FROM cases c WHERE c.alert_id = a.alert_id)", "a.severity = ANY(%s)"]
    params: list[Any] = [list(settings.intake_severities)]
    if settings.intake_kinds:
        sql.append("a.kind = ANY(%s)")
        params.append(list(settings.intake_kinds))
    rows = conn.execute(f"SELECT a.alert_id FROM alerts a WHERE {' AND '.join(sql)} ORDER BY a.start_ts LIMIT %s",
                        (*params, limit)).fetchall()
    out = []
    for (alert_id,) in rows:
        case, created = create_from_alert(conn, alert_id, Actor.system(), dispatcher, policy, now=now)
        if created:
            out.append(case)
    return out


def escalate(conn: psycopg.Connection, policy: SlaPolicy, now: datetime | None = None
             ) -> list[tuple[Case, Escalation]]:
    """Record every new escalation level reached (as a case event and an audit row); returns them so the
    caller can push them. A case acted on meanwhile is skipped and re-evaluated on the next scan."""
    now = _now(now)
    rows = conn.execute("SELECT body::text FROM cases WHERE stage_due_at <= %s AND stage <> ALL(%s)",
                        (now, list(_CLOSED))).fetchall()
    done = []
    for esc in due_escalations((_case_dec.decode(r[0]) for r in rows), now, policy):
        with conn.transaction():
            case = load(conn, esc.case_id, for_update=True)
            if case is None or case.version != esc.version:
                continue
            new = msgspec.structs.replace(case, escalation=esc.level, version=case.version + 1)
            ev = CaseEvent(action="escalate", at=now, actor="system", role="system", from_stage=case.stage,
                           to_stage=case.stage,
                           details={"clock": esc.clock.value, "level": esc.level, "due_at": esc.due_at.isoformat(),
                                    "overdue_min": esc.overdue_min})
            _insert_event(conn, new, ev)
            _update(conn, new)
            _audit(conn, case, ev)
        done.append((new, esc))
    return done


def case_message(case: Case, ev: CaseEvent | None = None, esc: Escalation | None = None) -> dict[str, Any]:
    """What the dashboard receives; carries the scope attributes so the push can be filtered per user."""
    msg: dict[str, Any] = {
        "type": "escalation" if esc else "case", "case_id": case.id, "stage": case.stage, "kind": case.kind,
        "category": case.category, "priority": case.priority, "company": case.company, "district": case.district,
        "vehicle_kind": case.vehicle_kind, "team": case.team, "version": case.version,
        "stage_due_at": case.stage_due_at.isoformat() if case.stage_due_at else None,
    }
    if ev is not None:
        msg.update(action=ev.action, actor=ev.actor, at=ev.at.isoformat())
    if esc is not None:
        msg.update(action="escalate", clock=esc.clock.value, level=esc.level, due_at=esc.due_at.isoformat(),
                   overdue_min=esc.overdue_min)
    return msg


def publish(r: redis.Redis, prefix: str, message: dict[str, Any], maxlen: int = 100_000) -> bytes | None:
    try:
        return r.xadd(stream_name(prefix), {b"e": _enc.encode(message)}, maxlen=maxlen, approximate=True)
    except redis.RedisError as exc:  # the change is committed; the push is best effort
        log.warning("could not push case message: %s", exc)
        return None


def notify(r: redis.Redis, prefix: str, case: Case, ev: CaseEvent, maxlen: int = 100_000) -> None:
    publish(r, prefix, case_message(case, ev), maxlen)


# --- figures -------------------------------------------------------------------------------------------

def case_stats(conn: psycopg.Connection, scope: Scope, by: str, *, now: datetime | None = None,
               since: datetime | None = None, until: datetime | None = None, utc_offset_min: int = 480,
               **filters: Any) -> list[StatRow]:
    cases = list_cases(conn, scope, since=since, until=until, limit=None, **filters)
    return compute(cases, by, _now(now), utc_offset_min)


def company_scores(conn: psycopg.Connection, scope: Scope, month: str, policy: ScoringPolicy,
                   utc_offset_min: int = 480) -> list[CompanyScore]:
    start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC) - timedelta(minutes=utc_offset_min)
    cases = list_cases(conn, scope, occurred_since=start, occurred_until=start + timedelta(days=32), limit=None)
    where, params = ["company IS NOT NULL"], []
    if scope.companies is not None:
        where.append("company = ANY(%s)")
        params.append(sorted(scope.companies))
    if scope.districts is not None:
        where.append("district = ANY(%s)")
        params.append(sorted(scope.districts))
    if scope.vehicle_kinds is not None:
        where.append("kind = ANY(%s)")
        params.append(sorted(scope.vehicle_kinds))
    companies = [r[0] for r in conn.execute(
        f"SELECT DISTINCT company FROM vehicles WHERE {' AND '.join(where)}", params)]
    return score_companies(cases, month, policy, companies, utc_offset_min)


# --- evidence ------------------------------------------------------------------------------------------

GeometryProvider = Callable[[psycopg.Connection, Case, dict[str, Any] | None], Iterable[ReferenceGeometry]]
_providers: list[GeometryProvider] = []


def register_geometry_provider(fn: GeometryProvider) -> GeometryProvider:
    """Let the fence/permit stores add the geometries in force for a case (fence, route corridor) to its map;
    geometries embedded in the alert's evidence are always drawn."""
    _providers.append(fn)
    return fn


def _fence_refs(obj: Any) -> list[tuple[str, int]]:
    """(fence id, version) of every fence reference in a rule's evidence (`fence`, a permit's origin,
    destination and route …): dicts with id, kind and version, as `tracker.world.World.fence_ref` writes."""
    from tracker.vocab import FenceKind

    kinds = {k.value for k in FenceKind}
    out: list[tuple[str, int]] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("id"), str) and obj.get("kind") in kinds and isinstance(obj.get("version"), int):
            out.append((obj["id"], obj["version"]))
        for v in obj.values():
            out += _fence_refs(v)
    elif isinstance(obj, list) and obj and isinstance(obj[0], (dict, list)):
        for v in obj:
            out += _fence_refs(v)
    return out


def fence_geometries(conn: psycopg.Connection, case: Case, alert: dict[str, Any] | None
                     ) -> list[ReferenceGeometry]:
    """The exact fence versions the rule recorded, from `fence_versions` (geofences.store): the covered
    area as drawn by the rule (circles and corridors as their true polygons)."""
    refs = list(dict.fromkeys(_fence_refs((alert or {}).get("evidence") or {})))
    if not refs or conn.execute("SELECT to_regclass('fence_versions')").fetchone()[0] is None:  # type: ignore[index]
        return []
    import shapely.geometry

    from geofences.store import fence_versions

    out = []
    for fid, version in refs:
        for fv in fence_versions(conn, fid):
            if fv.fence.version == version:
                f = fv.fence
                out.append(ReferenceGeometry(
                    name=f"{f.id} v{f.version}", role=f.kind.value,
                    geometry=shapely.geometry.mapping(f.area_geometry()),
                    properties={"id": f.id, "version": f.version, "kind": f.kind.value, "fence_name": f.name,
                                "recorded_from": fv.recorded_from.isoformat()}))
    return out


def _evidence_track(alert: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The thinned track the rule kept in its evidence (columns of lists), as rows: the fallback when the
    raw positions are gone (retention) or not stored yet."""
    fx = ((alert or {}).get("evidence") or {}).get("fixes")
    if not isinstance(fx, dict) or not fx.get("ts_ms"):
        return []
    n = len(fx["ts_ms"])
    cols = {k: v for k, v in fx.items() if isinstance(v, list) and len(v) == n}
    rows = []
    for i in range(n):
        row = {k: v[i] for k, v in cols.items()}
        row["ts"] = datetime.fromtimestamp(row.pop("ts_ms") / 1000, tz=UTC)
        for k in ("cover_closed", "lifting", "device_on"):
            if row.get(k) is not None:
                row[k] = bool(row[k])
        rows.append(row)
    return rows


def evidence_package(conn: psycopg.Connection, case_id: int, *, minutes: float, exported_by: str | None = None,
                     now: datetime | None = None, with_map: bool = True) -> EvidencePackage:
    case = load(conn, case_id)
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    alert = alert_row(conn, case.alert_id) if case.alert_id else None
    start = (alert or {}).get("start_ts") or case.occurred_at or case.created_at
    end = (alert or {}).get("end_ts") or start
    pad = timedelta(minutes=minutes)
    window = (start - pad, end + pad)
    track: list[dict[str, Any]] = []
    if case.vehicle_id:
        track = history.track(conn, case.vehicle_id, *window).to_dicts()
    if not track:
        track = _evidence_track(alert)
    geoms: list[ReferenceGeometry] = []
    for provider in [fence_geometries, *_providers]:
        try:
            geoms += list(provider(conn, case, alert))
        except Exception as exc:  # noqa: BLE001 - a broken provider must not block the export
            log.warning("geometry provider %s failed: %s", getattr(provider, "__name__", provider), exc)
    seq, h = audit.head(conn)
    return build_package(case=case, events=events(conn, case_id), alert=alert, vehicle=_vehicle(conn, case.vehicle_id),
                         track=track, window=window, geometries=geoms, audit_head={"seq": seq, "hash": h},
                         exported_by=exported_by, exported_at=_now(now), with_map=with_map)


def export_evidence(conn: psycopg.Connection, case_id: int, actor: str, *, minutes: float) -> bytes:
    """The evidence zip; the export itself (who, which case, the zip's SHA-256) goes into the audit log."""
    data = evidence_package(conn, case_id, minutes=minutes, exported_by=actor).to_zip()
    audit.append(conn, actor, "case.export_evidence", "case", case_id,
                 {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "minutes": minutes})
    return data
