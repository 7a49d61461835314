"""REST: reference data — fences (with versions), permits and delivery orders (with versions), trips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from dashboard import fences, queries
from dashboard.state import AppState

TRIPS_TODO = ("trip records are not stored yet: the engine keeps trips in memory (tracker.trips) and no trips "
              "table or read API exists; this endpoint will read it when it lands")


def permit_fence_ids(p: dict[str, Any]) -> set[str]:
    return {p[k] for k in ("origin_fence", "disposal_fence", "route_fence", "plant_fence", "site_fence")
            if p.get(k)}


def permits_for(conn: psycopg.Connection, vehicle_id: str, day: date | None = None) -> list[dict[str, Any]]:
    """Permits and delivery orders naming this vehicle (latest versions), marked valid today or not."""
    day = day or datetime.now(tz=UTC).date()
    out = []
    for doc_type in ("permit", "order"):
        for d in queries.docs(conn, doc_type):
            if vehicle_id not in (d.get("vehicles") or []):
                continue
            vf, vt = d.get("valid_from"), d.get("valid_to")
            valid = (vf is None or str(vf) <= day.isoformat()) and (vt is None or day.isoformat() <= str(vt))
            out.append({**d, "doc_type": doc_type, "valid_today": valid})
    return out


def _fence_geojson(state: AppState, at: datetime, kind: list[str] | None) -> dict[str, Any]:
    with state.db() as conn:
        found = fences.in_force(conn, at)
    if kind:
        wanted = {k for v in kind for k in v.split(",")}
        found = [f for f in found if str(getattr(f.kind, "value", f.kind)) in wanted]
    return fences.feature_collection(found)


def _unavailable(exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503)


def make_router(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.get("/api/fences", tags=["fences"],
                summary="Fences in force at a time (GeoJSON; circles/corridors as the areas they cover)")
    async def list_fences(at: datetime | None = Query(None, description="default: now"),
                          kind: list[str] | None = Query(None, description="fence kind(s)")) -> Any:
        try:
            return await state.run_sync(_fence_geojson, state, at or datetime.now(tz=UTC), kind)
        except fences.FencesUnavailable as exc:
            return _unavailable(exc)

    @router.get("/api/fences/{fence_id}/versions", tags=["fences"],
                summary="Every version of one fence (GeoJSON, oldest first): what was in force when")
    async def fence_versions(fence_id: str) -> Any:
        def load() -> dict[str, Any]:
            with state.db() as conn:
                found = fences.versions(conn, fence_id)
            if not found:
                raise HTTPException(404, f"unknown fence {fence_id!r}")
            return fences.versions_collection(found)

        try:
            return await state.run_sync(load)
        except fences.FencesUnavailable as exc:
            return _unavailable(exc)

    @router.get("/api/permits", tags=["permits"], summary="Muck-truck permits (latest version of each)")
    async def list_permits(vehicle_id: str | None = None) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                docs = queries.docs(conn, "permit")
            return [d for d in docs if vehicle_id is None or vehicle_id in (d.get("vehicles") or [])]

        return await state.run_sync(load)

    @router.get("/api/permits/{permit_id}/versions", tags=["permits"], summary="Every version of a permit")
    async def permit_versions(permit_id: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                return queries.docs(conn, "permit", permit_id, all_versions=True)

        found = await state.run_sync(load)
        if not found:
            raise HTTPException(404, f"unknown permit {permit_id!r}")
        return sorted(found, key=lambda d: d["version"])

    @router.get("/api/orders", tags=["permits"], summary="Concrete delivery orders (latest version of each)")
    async def list_orders() -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                return queries.docs(conn, "order")

        return await state.run_sync(load)

    @router.get("/api/trips", tags=["trips"], summary="Trips (origin → destination, load states)",
                responses={503: {"description": "no trip store in this build"}})
    async def list_trips(vehicle_id: str | None = None, since: datetime | None = None,
                         until: datetime | None = None) -> Any:
        return JSONResponse({"detail": TRIPS_TODO}, status_code=503)

    return router
