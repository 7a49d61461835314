"""REST: alerts — filtered lists for the alert centre, and one alert with its evidence on a map. Both are
restricted to the alerts of vehicles in the caller's scope: a foreign alert is 404, a filter on a foreign
company or district 403."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from dashboard import fences, queries, scoping
from dashboard.auth import User, current_user
from dashboard.models import AlertDetail, AlertPage
from dashboard.state import AppState
from tracker.cases.access import Scope

#: Track shown around an episode: what enforcement needs to see how it started and ended.
EVIDENCE_MARGIN = timedelta(minutes=2)
EVIDENCE_MAX = timedelta(hours=3)


def _multi(values: list[str] | None) -> tuple[str, ...]:
    """Repeated (`?kind=a&kind=b`) or comma-separated (`?kind=a,b`) parameters."""
    return tuple(x for v in values or [] for x in v.split(",") if x)


def referenced_ids(alert: dict[str, Any]) -> set[str]:
    """Fence/permit ids an alert names: its place and any `*fence*` / `permit*` / `place*` evidence field."""
    ids: set[str] = set()
    if alert.get("place_id"):
        ids.add(alert["place_id"])
    for key, value in (alert.get("evidence") or {}).items():
        if not any(w in key for w in ("fence", "permit", "place", "route", "zone", "site")):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str):
                ids.add(item)
            elif isinstance(item, dict) and isinstance(item.get("id"), str):
                ids.add(item["id"])
    return ids


def alert_detail(state: AppState, alert_id: str, scope: Scope = queries.ALL) -> dict[str, Any]:
    from dashboard.api_reference import permit_fence_ids

    with state.db() as conn:
        a = queries.alert(conn, alert_id)
        if a is None or not scoping.vehicle_allowed(scope, a["vehicle"]):
            raise HTTPException(404, f"unknown alert {alert_id!r}")
        start = queries.from_ms(a["start_ts_ms"])
        end = queries.from_ms(a["end_ts_ms"]) if a["end_ts_ms"] else (queries.newest_fix(conn) or start)
        end = min(max(end, start), start + EVIDENCE_MAX)
        track = queries.tracks(conn, [a["vehicle_id"]], start - EVIDENCE_MARGIN, end + EVIDENCE_MARGIN)
        ids = referenced_ids(a)
        permits = [p for p in queries.docs(conn, "permit") if p["id"] in ids]
        for p in permits:
            ids |= permit_fence_ids(p)
        try:
            shown = fences.by_ids(conn, ids, start)
            geo = fences.feature_collection(shown)
        except fences.FencesUnavailable:
            geo = {"type": "FeatureCollection", "features": []}
    return {**a, "track": track[0] if track else None, "fences": geo, "permit": permits[0] if permits else None}


def make_router(state: AppState) -> APIRouter:
    router = APIRouter(tags=["alerts"])

    @router.get("/api/alerts", response_model=AlertPage, summary="Alerts, newest first, filtered")
    async def list_alerts(
        kind: list[str] | None = Query(None, description="violation kind(s); repeat or comma-separate"),
        vehicle_kind: list[str] | None = Query(None, description="vehicle kind(s)"),
        company: list[str] | None = Query(None),
        district: list[str] | None = Query(None),
        status: str | None = Query(None, pattern="^(open|closed)$"),
        severity: str | None = Query(None, pattern="^(suspected|confirmed)$"),
        vehicle_id: str | None = None,
        since: datetime | None = Query(None, description="alerts still open at or ending after this time"),
        until: datetime | None = Query(None, description="alerts that started before this time"),
        limit: int = Query(200, ge=1, le=5000),
        offset: int = Query(0, ge=0),
        user: User = Depends(current_user),
    ) -> dict[str, Any]:
        scoping.check_filters(user.scope, _multi(company), _multi(district))
        f = queries.AlertFilter(kinds=_multi(kind), vehicle_kinds=_multi(vehicle_kind), companies=_multi(company),
                                districts=_multi(district), status=status, severity=severity,
                                vehicle_id=vehicle_id, since=since, until=until, scope=user.scope)

        def load() -> tuple[list[dict[str, Any]], int]:
            with state.db() as conn:
                return queries.alerts(conn, f, limit, offset)

        rows, total = await state.run_sync(load)
        return {"total": total, "limit": limit, "offset": offset, "alerts": rows}

    @router.get("/api/alerts/{alert_id}", response_model=AlertDetail,
                summary="One alert with evidence: the track around it and the fences/route that fired")
    async def get_alert(alert_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        return await state.run_sync(alert_detail, state, alert_id, user.scope)

    return router
