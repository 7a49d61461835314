"""REST: offline HTML exports of every map view (`/api/export/…`), for auditors' reports.

The pages link here with their current view (`lon`, `lat`, `zoom`); each answer is one self-contained
HTML file (deck.gl inlined, data inlined, no external URL — checked before it is sent). An export holds
exactly what its page shows the caller: the vehicles, fences and alerts of the caller's scope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from dashboard import fences, queries, scoping
from dashboard.api_alerts import _multi, alert_detail
from dashboard.api_core import fleet_clock, live_rows, vehicle_registry
from dashboard.api_history import MAX_REPLAY, replay
from dashboard.api_reference import visible_fences
from dashboard.assets import roads_path
from dashboard.auth import User, current_user
from dashboard.export import external_urls
from dashboard.export_views import alert_export, live_export, replay_export
from dashboard.roads import bounds
from dashboard.state import AppState
from tracker.cases.access import Scope


def _view(state: AppState, lon: float | None, lat: float | None, zoom: float | None,
          fallback: tuple[float, float] | None = None) -> dict[str, float]:
    if lon is None or lat is None:
        if fallback is not None:
            lon, lat = fallback
        else:
            w, s, e, n = state.cached("roads_bounds", 3600, lambda: bounds(roads_path(state.settings)))
            lon, lat = (w + e) / 2, (s + n) / 2
    return {"longitude": lon, "latitude": lat, "zoom": 13.0 if zoom is None else zoom, "pitch": 0, "bearing": 0}


def _fence_geo(state: AppState, at: datetime, scope: Scope = queries.ALL) -> dict[str, Any]:
    try:
        with state.db() as conn:
            return fences.feature_collection(visible_fences(state, scope, fences.in_force(conn, at)))
    except fences.FencesUnavailable:
        return {"type": "FeatureCollection", "features": []}


def _registry(state: AppState, scope: Scope) -> dict[str, dict[str, Any]]:
    reg = vehicle_registry(state)
    return reg if scope.unrestricted else {k: v for k, v in reg.items() if scoping.vehicle_allowed(scope, v)}


def _answer(page: str, filename: str, download: bool) -> HTMLResponse:
    leaks = external_urls(page)
    if leaks:  # never hand an auditor a report that phones home
        raise HTTPException(500, f"export would load external resources: {leaks[:3]}")
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if download else {}
    return HTMLResponse(page, headers=headers)


def make_router(state: AppState) -> APIRouter:
    router = APIRouter(tags=["export"])

    @router.get("/api/export/live.html", response_class=HTMLResponse,
                summary="Offline HTML snapshot of the live map")
    async def export_live(lon: float | None = None, lat: float | None = None, zoom: float | None = None,
                          download: bool = False, user: User = Depends(current_user)) -> HTMLResponse:
        scope = user.scope

        def build() -> str:
            rows = live_rows(state, scope)
            now = datetime.fromtimestamp(fleet_clock(state) / 1000, tz=UTC)
            reg = _registry(state, scope)
            return live_export(state, rows, reg, _fence_geo(state, now, scope), _view(state, lon, lat, zoom))

        page = await state.run_sync(build)
        return _answer(page, "fleetwatch-live.html", download)

    @router.get("/api/export/alert/{alert_id}.html", response_class=HTMLResponse,
                summary="Offline HTML of one alert's evidence (track, fences/route, episode)")
    async def export_alert(alert_id: str, zoom: float | None = None, download: bool = False,
                           user: User = Depends(current_user)) -> HTMLResponse:
        def build() -> str:
            a = alert_detail(state, alert_id, user.scope)
            track = a.get("track")
            centre = (a["lon"], a["lat"]) if a.get("lon") is not None else (
                (track["lon"][0], track["lat"][0]) if track and track["lon"] else None)
            return alert_export(state, a, _view(state, None, None, zoom if zoom is not None else 15, centre))

        page = await state.run_sync(build)
        return _answer(page, f"fleetwatch-alert-{alert_id}.html", download)

    @router.get("/api/export/replay.html", response_class=HTMLResponse,
                summary="Offline HTML replay of tracks with a time slider")
    async def export_replay(vehicle: list[str] = Query(...), since: datetime = Query(...),
                            until: datetime = Query(...), lon: float | None = None, lat: float | None = None,
                            zoom: float | None = None, download: bool = False,
                            user: User = Depends(current_user)) -> HTMLResponse:
        ids = list(dict.fromkeys(_multi(vehicle)))
        if not ids or until <= since or until - since > MAX_REPLAY:
            raise HTTPException(422, "give vehicles and a positive time range of at most 24 h")
        scope = user.scope

        def build() -> str:
            data = replay(state, ids, since, until, scope)
            first = next((t for t in data["tracks"] if t["lon"]), None)
            centre = (first["lon"][0], first["lat"][0]) if first else None
            return replay_export(state, data, _registry(state, scope), _fence_geo(state, since, scope),
                                 _view(state, lon, lat, zoom, centre))

        page = await state.run_sync(build)
        return _answer(page, "fleetwatch-replay.html", download)

    return router

