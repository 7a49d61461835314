"""REST: configuration for the pages, vocabulary, the road base layer, vehicles and their live state.

`make_public_router` holds what needs no login (`/api/health`, for probes); everything in `make_router` is
mounted behind `require()` by `create_app`. Vehicles and live state are restricted to the caller's scope
(`dashboard.scoping`); config, vocabulary and the road network are the same for every logged-in user.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from dashboard import queries, scoping
from dashboard.auth import User, current_user
from dashboard.assets import roads_path
from dashboard.labels import vocabulary
from dashboard.live_table import describe
from dashboard.models import LiveOut, VehicleDetail, VehicleOut
from dashboard.roads import bounds, styled_roads
from dashboard.state import AppState
from dashboard.wire import KINDS
from tracker.cases.access import Scope
from tracker.edges.live import read_live

_dec = msgspec.msgpack.Decoder()


def vehicle_registry(state: AppState) -> dict[str, dict[str, Any]]:
    def load() -> dict[str, dict[str, Any]]:
        with state.db() as conn:
            return {v["id"]: v for v in queries.vehicles(conn)}

    return state.cached("vehicles", 10, load)


def fleet_clock(state: AppState) -> float:
    hub = state.live_hub
    if hub is not None and len(hub.table):
        return hub.table.clock_ms()
    return datetime.now(tz=UTC).timestamp() * 1000


def live_rows(state: AppState, scope: Scope = queries.ALL) -> list[dict[str, Any]]:
    reg = vehicle_registry(state)
    now = fleet_clock(state)
    return [describe(s, reg.get(vid, {}).get("kind"), now, state.options)
            for vid, s in sorted(read_live(state.redis, state.names).items())
            if scoping.vehicle_allowed(scope, reg.get(vid))]


def registry_for(state: AppState, vehicle_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Registry entries of these vehicles: the cache, or the database for ids registered since it was
    filled (so a vehicle registered a second ago is not mistaken for a foreign one)."""
    reg = vehicle_registry(state)
    missing = [v for v in vehicle_ids if v not in reg]
    if not missing:
        return reg
    with state.db() as conn:
        found = {v["id"]: v for v in (queries.vehicle(conn, vid) for vid in missing) if v}
    return {**reg, **found}


def check_vehicles(state: AppState, scope: Scope, vehicle_ids: list[str]) -> None:
    """404 unless the scope sees every one of these vehicles (blocking: call in a worker thread)."""
    if not scope.unrestricted:
        scoping.require_vehicles(scope, registry_for(state, vehicle_ids), vehicle_ids)


def live_one(state: AppState, vehicle_id: str) -> dict[str, Any] | None:
    raw = state.redis.hget(state.names.live, vehicle_id)
    if raw is None:
        return None
    kind = vehicle_registry(state).get(vehicle_id, {}).get("kind")
    return describe(_dec.decode(raw), kind, fleet_clock(state), state.options)


def _vehicle_detail(state: AppState, vehicle_id: str, scope: Scope = queries.ALL) -> dict[str, Any]:
    from dashboard.api_reference import permits_for

    check_vehicles(state, scope, [vehicle_id])
    ids = scoping.visible_ids(scope, vehicle_registry(state))
    with state.db() as conn:
        v = queries.vehicle(conn, vehicle_id)
        f = queries.AlertFilter(vehicle_id=vehicle_id, scope=scope)
        recent, _ = queries.alerts(conn, f, limit=state.options.recent_alerts)
        permits = [scoping.trim_doc(p, ids | {vehicle_id} if ids is not None else None)
                   for p in permits_for(conn, vehicle_id)]
    live = live_one(state, vehicle_id)
    if v is None and live is None:
        raise HTTPException(404, f"unknown vehicle {vehicle_id!r}")
    trip = {"id": live["trip_id"]} if live and live.get("trip_id") else None
    return {"vehicle": v, "live": live, "permits": permits, "current_trip": trip, "recent_alerts": recent}


def make_public_router(state: AppState) -> APIRouter:
    """Endpoints that answer without a login: only the health probe (says nothing about the fleet)."""
    router = APIRouter()

    @router.get("/api/health", tags=["system"], summary="Liveness probe (no login needed)")
    def health() -> dict[str, Any]:
        return {"ok": True, "redis": bool(state.redis.ping())}

    return router


def make_router(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.get("/api/config", tags=["system"], summary="What the pages need to start: city, view, tiles")
    def config() -> dict[str, Any]:
        city = state.settings.city
        west, south, east, north = state.cached("roads_bounds", 3600, lambda: bounds(roads_path(state.settings)))
        return {"city": city.name, "timezone": city.timezone, "utc_offset_min": city.utc_offset_min,
                "bounds": [west, south, east, north], "center": [(west + east) / 2, (south + north) / 2],
                "tile_url": state.options.tile_url, "tile_attribution": state.options.tile_attribution,
                "offline_after_s": state.options.offline_after_s, "moving_kmh": state.options.moving_kmh,
                "density_res": state.options.density_res, "density_minutes": state.options.density_minutes,
                "kinds": list(KINDS)}

    @router.get("/api/vocab", tags=["system"], summary="Chinese and English labels of every vocabulary")
    def vocab() -> dict[str, Any]:
        return vocabulary()

    @router.get("/api/roads", tags=["map"], summary="The city's road network (GeoJSON base layer, styled)",
                response_class=Response)
    def roads() -> Response:
        return Response(styled_roads(roads_path(state.settings)), media_type="application/geo+json",
                        headers={"Cache-Control": "max-age=3600"})

    @router.get("/api/facets", tags=["vehicles"], summary="Companies and districts in your scope (filter choices)")
    async def facets(user: User = Depends(current_user)) -> dict[str, list[str]]:
        scope = user.scope

        def load() -> dict[str, list[str]]:
            with state.db() as conn:
                return queries.facets(conn, scope)

        return await state.run_sync(state.cached, ("facets", scope), 30, load)

    @router.get("/api/vehicles", tags=["vehicles"], response_model=list[VehicleOut],
                summary="Registered vehicles in your scope")
    async def vehicles(kind: str | None = None, company: str | None = None, district: str | None = None,
                       user: User = Depends(current_user)) -> list[dict[str, Any]]:
        scoping.check_filters(user.scope, [company] if company else (), [district] if district else ())

        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                return queries.vehicles(conn, kind, company, district, user.scope)

        return await state.run_sync(load)

    @router.get("/api/vehicles/{vehicle_id}", tags=["vehicles"], response_model=VehicleDetail,
                summary="One vehicle: registry, live sensors, current trip, permits, recent alerts")
    async def vehicle(vehicle_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        return await state.run_sync(_vehicle_detail, state, vehicle_id, user.scope)

    @router.get("/api/live", tags=["vehicles"], response_model=LiveOut,
                summary="Live state of every vehicle in your scope")
    async def live(kind: str | None = Query(None, description="only this vehicle kind"),
                   user: User = Depends(current_user)) -> dict[str, Any]:
        rows = await state.run_sync(live_rows, state, user.scope)
        if kind:
            rows = [r for r in rows if r["kind"] == kind]
        return {"t": fleet_clock(state), "kinds": list(KINDS), "vehicles": rows}

    return router
