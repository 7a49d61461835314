"""Cases over HTTP: list, open, act, evidence, statistics, company scores, and the `/ws/cases` push.

`include_routers(app)` adds this router, the admin router and the login routes, and starts the periodic
intake/escalation scan; it is the one line `create_app` needs. Every endpoint runs as a user
(`dashboard.auth`): lists and figures are restricted to the user's scope, a case outside it answers 404
(its existence is not revealed), an explicit filter on a foreign company/district answers 403, and the
state machine decides which role may take which action (403 wrong role/team, 409 wrong stage, 422 bad
arguments).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from dashboard.auth import User, auth_config, install_auth, require, send_hello, ws_user
from tracker.cases.access import Scope
from tracker.cases.dispatch import Dispatcher
from tracker.cases.machine import REPORTERS, WorkflowError, allowed_actions
from tracker.cases.model import Case, Command
from tracker.cases.settings import CasesSettings
from tracker.cases.stats import DIMENSIONS
from tracker.cases.vocab import CaseStage, Role
from tracker.edges import audit
from tracker.edges import cases_store as store

log = logging.getLogger(__name__)

__all__ = ["router", "include_routers"]

router = APIRouter(tags=["cases"])
ACTORS = (Role.ADMIN, Role.SUPERVISOR, Role.ENFORCEMENT)


def _ctx(request: Request | WebSocket) -> tuple[Any, CasesSettings, Dispatcher]:
    state = request.app.state.fw
    cfg = auth_config(request.app)
    disp = getattr(request.app.state, "fw_dispatcher", None)
    if disp is None:
        disp = request.app.state.fw_dispatcher = Dispatcher(cfg.settings.routing)
    return state, cfg.settings, disp


def _offset(state: Any) -> int:
    return int(state.settings.city.utc_offset_min)


def _view(case: Case, user: User) -> dict[str, Any]:
    d = case.to_dict()
    d["allowed_actions"] = [a.value for a in allowed_actions(case, user.actor)]
    return d


def _check_filters(scope: Scope, company: str | None, district: str | None) -> None:
    if company is not None and scope.companies is not None and company not in scope.companies:
        raise HTTPException(403, f"company {company!r} is outside your scope")
    if district is not None and scope.districts is not None and district not in scope.districts:
        raise HTTPException(403, f"district {district!r} is outside your scope")


async def _db(request: Request | WebSocket, fn: Any, *args: Any, **kw: Any) -> Any:
    state = request.app.state.fw

    def run() -> Any:
        with state.db() as conn:
            return fn(conn, *args, **kw)
    try:
        return await state.run_sync(run)
    except store.CaseNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except WorkflowError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _visible_or_404(case: Case | None, user: User, case_id: int) -> Case:
    if case is None or not store.visible(case, user.scope):
        raise HTTPException(404, f"no case {case_id}")
    return case


# --- list / open ---------------------------------------------------------------------------------------

def _overdue(case: Case, now: datetime) -> bool:
    """Open and past its current stage's deadline (what the escalations are about)."""
    return case.is_open and case.stage_due_at is not None and case.stage_due_at <= now


@router.get("/api/cases", summary="Cases in your scope, newest first")
async def list_cases(request: Request, user: User = Depends(require()), stage: str | None = None,
                     open_only: bool = Query(False, alias="open"), district: str | None = None,
                     company: str | None = None, team: str | None = None, kind: str | None = None,
                     overdue: bool = Query(False, description="only open cases past their stage deadline"),
                     limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    _check_filters(user.scope, company, district)
    if not overdue:
        rows = await _db(request, store.list_cases, user.scope, stage=stage, open_only=open_only,
                         district=district, company=company, team=team, kind=kind, limit=limit, offset=offset)
    else:  # open cases only, so the whole set is small; the deadline is checked against one `now`
        now = datetime.now(UTC)
        every = await _db(request, store.list_cases, user.scope, stage=stage, open_only=True, district=district,
                          company=company, team=team, kind=kind, limit=None)
        rows = [c for c in every if _overdue(c, now)][offset:offset + limit]
    return [_view(c, user) for c in rows]


@router.get("/api/cases/counts", summary="Open and overdue cases in your scope (the header badge)")
async def counts(request: Request, user: User = Depends(require())) -> dict[str, int]:
    """`overdue`: open cases past their current stage's deadline — what `?overdue=true` lists."""
    where, params = store.scope_clause(user.scope)
    closed = [CaseStage.CLOSED.value, CaseStage.ASSESSED.value]

    def q(conn: Any) -> tuple[int, int]:
        return conn.execute(f"SELECT count(*), count(*) FILTER (WHERE stage_due_at <= now()) FROM cases "
                            f"WHERE {where} AND stage <> ALL(%s)", (*params, closed)).fetchone()

    open_n, overdue_n = await _db(request, q)
    return {"open": int(open_n), "overdue": int(overdue_n)}


class CaseIn(BaseModel):
    """Either `alert_id` (open the alert's case) or a manual report (`kind`, `description`, a position or
    district, optionally the vehicle)."""

    alert_id: str | None = None
    kind: str | None = None
    description: str = Field("", max_length=4000)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    vehicle_id: str | None = None
    district: str | None = None
    priority: str | None = None


@router.post("/api/cases", status_code=201, summary="Open a case from an alert or a manual report")
async def create_case(body: CaseIn, request: Request, user: User = Depends(require(*REPORTERS))) -> dict[str, Any]:
    state, cfg, disp = _ctx(request)
    if body.alert_id:
        try:
            case, created = await _db(request, store.create_from_alert, body.alert_id, user.actor, disp, cfg.sla)
        except HTTPException as exc:  # an alert you may not report on is, to you, an alert that doesn't exist
            if exc.status_code == 403:
                raise HTTPException(404, f"no alert {body.alert_id!r}") from None
            raise
        case = _visible_or_404(case, user, 0)
    else:
        if not body.kind:
            raise HTTPException(422, "a manual report needs kind (or give alert_id)")
        if body.vehicle_id is not None:  # reporting on a vehicle you cannot see would reveal it exists
            await _vehicle_visible(request, user, body.vehicle_id)
        case = await _db(request, store.create_manual, user.actor, disp, cfg.sla, kind=body.kind,
                         description=body.description, lon=body.lon, lat=body.lat, vehicle_id=body.vehicle_id,
                         district=body.district, priority=body.priority)
        created = True
    if created:
        ev = (await _db(request, store.events, case.id))[0]
        await state.run_sync(store.notify, state.redis, state.settings.bus.prefix, case, ev, cfg.stream_maxlen)
    return {**_view(case, user), "created": created}


async def _vehicle_visible(request: Request, user: User, vehicle_id: str) -> None:
    def q(conn: Any) -> tuple[Any, ...] | None:
        return conn.execute("SELECT company, district, kind FROM vehicles WHERE vehicle_id = %s",
                            (vehicle_id,)).fetchone()
    row = await _db(request, q)
    if row is None or not user.scope.allows(company=row[0], district=row[1], vehicle_kind=row[2]):
        raise HTTPException(404, f"no vehicle {vehicle_id!r}")


# --- one case ------------------------------------------------------------------------------------------

@router.get("/api/cases/{case_id:int}", summary="A case with its history")
async def get_case(case_id: int, request: Request, user: User = Depends(require())) -> dict[str, Any]:
    case = _visible_or_404(await _db(request, store.load, case_id), user, case_id)
    history = await _db(request, store.events, case_id)
    return {**_view(case, user), "history": msgspec.to_builtins(history)}


class ActionIn(BaseModel):
    action: str
    note: str = Field("", max_length=4000)
    team: str | None = None
    district: str | None = None
    category: str | None = None
    priority: str | None = None
    passed: bool | None = None
    minutes: float | None = None
    rating: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    expected_version: int | None = Field(None, description="refuse (409) if someone acted first")


@router.post("/api/cases/{case_id:int}/actions", summary="Take an action (accept, dispatch, feedback, verify …)")
async def act(case_id: int, body: ActionIn, request: Request,
              user: User = Depends(require(*ACTORS))) -> dict[str, Any]:
    state, cfg, _ = _ctx(request)
    _visible_or_404(await _db(request, store.load, case_id), user, case_id)
    cmd = Command(**body.model_dump(exclude={"expected_version"}))
    case, ev = await _db(request, store.act, case_id, cmd, user.actor, cfg.sla,
                         expected_version=body.expected_version)
    await state.run_sync(store.notify, state.redis, state.settings.bus.prefix, case, ev, cfg.stream_maxlen)
    return {**_view(case, user), "event": msgspec.to_builtins(ev)}


@router.get("/api/cases/{case_id:int}/evidence", summary="Evidence package as JSON (case, track GeoJSON)")
async def evidence(case_id: int, request: Request, user: User = Depends(require()),
                   minutes: float | None = Query(None, gt=0, le=240)) -> dict[str, Any]:
    _, cfg, _ = _ctx(request)
    _visible_or_404(await _db(request, store.load, case_id), user, case_id)
    pkg = await _db(request, store.evidence_package, case_id, minutes=minutes or cfg.evidence_minutes,
                    exported_by=user.username, with_map=False)
    return {**pkg.case_json, "geojson": pkg.geojson, "audit_head": pkg.audit_head}


@router.get("/api/cases/{case_id:int}/evidence.zip", summary="Evidence package: JSON + GeoJSON + PNG map, zipped")
async def evidence_zip(case_id: int, request: Request, user: User = Depends(require()),
                       minutes: float | None = Query(None, gt=0, le=240)) -> Response:
    _, cfg, _ = _ctx(request)
    _visible_or_404(await _db(request, store.load, case_id), user, case_id)
    data = await _db(request, store.export_evidence, case_id, user.username, minutes=minutes or cfg.evidence_minutes)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="case-{case_id}-evidence.zip"'})


@router.get("/api/cases/{case_id:int}/map.png", summary="The evidence map alone")
async def evidence_map(case_id: int, request: Request, user: User = Depends(require())) -> Response:
    _, cfg, _ = _ctx(request)
    _visible_or_404(await _db(request, store.load, case_id), user, case_id)
    pkg = await _db(request, store.evidence_package, case_id, minutes=cfg.evidence_minutes)
    return Response(pkg.png, media_type="image/png")


# --- figures -------------------------------------------------------------------------------------------

def _csv(rows: list[dict[str, Any]], filename: str) -> Response:
    """UTF-8 with BOM (Excel opens Chinese text right); nested values as JSON; a download file name."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v for k, v in r.items()})
    return Response(buf.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _dt(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{name}: ISO date or datetime expected") from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@router.get("/api/cases/stats", summary="Dispatch / closure / on-time / rework rates, mean handling time")
async def stats(request: Request, user: User = Depends(require()),
                by: str = Query("all", description=" | ".join(DIMENSIONS)), since: str | None = None,
                until: str | None = None, district: str | None = None, company: str | None = None,
                kind: str | None = None, fmt: str = Query("json", alias="format", pattern="^(json|csv)$")) -> Any:
    if by not in DIMENSIONS:
        raise HTTPException(422, f"by: one of {', '.join(DIMENSIONS)}")
    _check_filters(user.scope, company, district)
    state = request.app.state.fw
    rows = await _db(request, store.case_stats, user.scope, by, since=_dt(since, "since"), until=_dt(until, "until"),
                     utc_offset_min=_offset(state), district=district, company=company, kind=kind)
    out = [r.to_dict() for r in rows]
    return _csv(out, f"case-stats-{by}.csv") if fmt == "csv" else {"by": by, "rows": out}


@router.get("/api/cases/scores", summary="Monthly company scores, grades and red/black lists")
async def scores(request: Request, user: User = Depends(require()),
                 month: str = Query(..., pattern=r"^\d{4}-\d{2}$"),
                 fmt: str = Query("json", alias="format", pattern="^(json|csv)$")) -> Any:
    _, cfg, _ = _ctx(request)
    state = request.app.state.fw
    rows = await _db(request, store.company_scores, user.scope, month, cfg.scoring, _offset(state))
    out = [msgspec.to_builtins(r) for r in rows]
    return _csv(out, f"company-scores-{month}.csv") if fmt == "csv" else {"month": month, "rows": out}


# --- push ----------------------------------------------------------------------------------------------

class _Subscriber:
    """One `/ws/cases` connection: its scope and the messages waiting to be sent (None = stop)."""

    __slots__ = ("scope", "queue", "closed")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=2000)
        self.closed = False

    def offer(self, msg: dict[str, Any]) -> None:
        if self.closed or not self.scope.allows(company=msg.get("company"), district=msg.get("district"),
                                                vehicle_kind=msg.get("vehicle_kind"),
                                                category=msg.get("category")):
            return
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:  # a client this far behind is dropped; the page reconnects and reloads
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class CaseHub:
    """One reader of the `{prefix}:cases` stream per web process, fanning out to every `/ws/cases`.

    Why: every page subscribes (overdue escalations are shown everywhere), and a blocking XREAD per
    connection would hold a worker thread each. The reader uses the asyncio Redis client, starts with the
    first subscriber (positioned at the stream's newest entry *before* that subscriber is told hello, so
    nothing after hello is missed) and stops with the last."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.redis_url, self.stream = redis_url, stream
        self.subs: set[_Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.last = "0-0"
        self._lock = asyncio.Lock()

    async def subscribe(self, scope: Scope) -> _Subscriber:
        async with self._lock:
            if self.task is None or self.task.done():
                import redis.asyncio as aioredis

                client = aioredis.Redis.from_url(self.redis_url)
                newest = await client.xrevrange(self.stream, count=1)
                self.last = newest[0][0].decode() if newest else "0-0"
                self.task = asyncio.create_task(self._follow(client))
            sub = _Subscriber(scope)
            self.subs.add(sub)
            return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        self.subs.discard(sub)
        if not self.subs and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _follow(self, client: Any) -> None:
        try:
            while True:
                try:
                    got = await client.xread({self.stream: self.last}, count=200, block=1000)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - Redis restarting: retry, the cursor is kept
                    log.warning("case push: reading %s failed; retrying", self.stream, exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                for _, entries in got or []:
                    for entry_id, fields in entries:
                        self.last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                        try:
                            msg = orjson.loads(fields[b"e"])
                        except (KeyError, orjson.JSONDecodeError):
                            log.warning("case push: skipping malformed entry %s", self.last)
                            continue
                        for sub in list(self.subs):
                            sub.offer(msg)
        finally:
            await client.aclose()


def _hub(app: Any) -> CaseHub:
    hub = getattr(app.state, "fw_case_hub", None)
    if hub is None:
        state = app.state.fw
        hub = app.state.fw_case_hub = CaseHub(state.redis_url, store.stream_name(state.settings.bus.prefix))
    return hub


@router.websocket("/ws/cases")
async def ws_cases(ws: WebSocket) -> None:
    """Case changes and SLA escalations as they happen, filtered to the user's scope. Messages are
    `tracker.edges.cases_store.case_message`: `{"type": "case"|"escalation", "case_id", "stage", …}`."""
    user = await ws_user(ws, hello=False)
    if user is None:
        return
    hub = _hub(ws.app)
    sub = await hub.subscribe(user.scope)
    try:
        await send_hello(ws, user)  # everything after this point is delivered

        async def drain() -> None:
            try:
                while True:
                    if (await ws.receive())["type"] == "websocket.disconnect":
                        break
            except (WebSocketDisconnect, RuntimeError):
                pass
            sub.close()

        gone = asyncio.create_task(drain())
        try:
            while True:
                msg = await sub.queue.get()
                if msg is None:
                    break
                await ws.send_text(orjson.dumps(msg).decode())
        finally:
            gone.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unsubscribe(sub)


# --- wiring --------------------------------------------------------------------------------------------

def _scan_once(state: Any, cfg: CasesSettings, disp: Dispatcher) -> int:
    with state.db() as conn:
        audit.drain_pending(conn)
        opened = store.intake(conn, disp, cfg.sla, cfg)
        escalated = store.escalate(conn, cfg.sla)
    for case in opened:
        store.publish(state.redis, state.settings.bus.prefix, store.case_message(case), cfg.stream_maxlen)
    for case, esc in escalated:
        store.publish(state.redis, state.settings.bus.prefix, store.case_message(case, esc=esc), cfg.stream_maxlen)
    return len(opened) + len(escalated)


def include_routers(app: FastAPI, cases: CasesSettings | None = None) -> FastAPI:
    """Cases + admin routers and the login routes; starts the intake/escalation scan every
    `[cases] scan_interval_s` seconds (0 = off). `cases` overrides the configured section (tests). Calling
    it again only replaces the settings (the scan reads them when the app starts)."""
    from dashboard.routes_admin import router as admin_router

    cfg = auth_config(app)
    if cases is not None:
        cfg.settings = cases
    if getattr(app.state, "fw_cases_routes", False):  # create_app already did: only the settings change
        app.state.fw_dispatcher = Dispatcher(cfg.settings.routing)
        return app
    app.state.fw_cases_routes = True
    install_auth(app)
    app.include_router(router)
    app.include_router(admin_router)
    app.state.fw_dispatcher = Dispatcher(cfg.settings.routing)

    async def scanner() -> None:
        state = app.state.fw
        while True:
            await asyncio.sleep(cfg.settings.scan_interval_s)
            try:
                await state.run_sync(_scan_once, state, cfg.settings, app.state.fw_dispatcher)
            except Exception:  # noqa: BLE001 - keep scanning; the next round retries
                log.exception("case scan failed")

    tasks: list[asyncio.Task[None]] = []

    async def _start_scan() -> None:
        if cfg.settings.scan_interval_s > 0:
            tasks.append(asyncio.create_task(scanner()))

    async def _stop_scan() -> None:
        for t in tasks:
            t.cancel()

    # Around the app's lifespan, not on_startup: FastAPI runs on_startup handlers only for apps without a
    # lifespan of their own, and create_app has one (the scan never ran in `fleetwatch serve`/`demo`).
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as value:
            await _start_scan()
            try:
                yield value
            finally:
                await _stop_scan()

    app.router.lifespan_context = lifespan

    return app
