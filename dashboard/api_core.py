"""REST: configuration for the pages, vocabulary, the road base layer, vehicles and their live state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from dashboard import queries
from dashboard.assets import roads_path
from dashboard.labels import vocabulary
from dashboard.live_table import describe
from dashboard.models import LiveOut, VehicleDetail, VehicleOut
from dashboard.roads import bounds, styled_roads
from dashboard.state import AppState
from dashboard.wire import KINDS
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


def live_rows(state: AppState) -> list[dict[str, Any]]:
    reg = vehicle_registry(state)
    now = fleet_clock(state)
    return [describe(s, reg.get(vid, {}).get("kind"), now, state.options)
            for vid, s in sorted(read_live(state.redis, state.names).items())]


def live_one(state: AppState, vehicle_id: str) -> dict[str, Any] | None:
    raw = state.redis.hget(state.names.live, vehicle_id)
    if raw is None:
        return None
    kind = vehicle_registry(state).get(vehicle_id, {}).get("kind")
    return describe(_dec.decode(raw), kind, fleet_clock(state), state.options)


def _vehicle_detail(state: AppState, vehicle_id: str) -> dict[str, Any]:
    from dashboard.api_reference import permits_for

    with state.db() as conn:
        v = queries.vehicle(conn, vehicle_id)
        f = queries.AlertFilter(vehicle_id=vehicle_id)
        recent, _ = queries.alerts(conn, f, limit=state.options.recent_alerts)
        permits = permits_for(conn, vehicle_id)
    live = live_one(state, vehicle_id)
    if v is None and live is None:
        raise HTTPException(404, f"unknown vehicle {vehicle_id!r}")
    trip = {"id": live["trip_id"]} if live and live.get("trip_id") else None
    return {"vehicle": v, "live": live, "permits": permits, "current_trip": trip, "recent_alerts": recent}


def make_router(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.get("/api/health", tags=["system"])
    def health() -> dict[str, Any]:
        return {"ok": True, "redis": bool(state.redis.ping())}

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

    @router.get("/api/facets", tags=["vehicles"], summary="Companies and districts (filter choices)")
    async def facets() -> dict[str, list[str]]:
        def load() -> dict[str, list[str]]:
            with state.db() as conn:
                return queries.facets(conn)

        return await state.run_sync(state.cached, "facets", 30, load)

    @router.get("/api/vehicles", tags=["vehicles"], response_model=list[VehicleOut])
    async def vehicles(kind: str | None = None, company: str | None = None, district: str | None = None
                       ) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                return queries.vehicles(conn, kind, company, district)

        return await state.run_sync(load)

    @router.get("/api/vehicles/{vehicle_id}", tags=["vehicles"], response_model=VehicleDetail,
                summary="One vehicle: registry, live sensors, current trip, permits, recent alerts")
    async def vehicle(vehicle_id: str) -> dict[str, Any]:
        return await state.run_sync(_vehicle_detail, state, vehicle_id)

    @router.get("/api/live", tags=["vehicles"], response_model=LiveOut, summary="Live state of every vehicle")
    async def live(kind: str | None = Query(None, description="only this vehicle kind")) -> dict[str, Any]:
        rows = await state.run_sync(live_rows, state)
        if kind:
            rows = [r for r in rows if r["kind"] == kind]
        return {"t": fleet_clock(state), "kinds": list(KINDS), "vehicles": rows}

    return router
