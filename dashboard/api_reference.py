"""REST: reference data — fences (with versions), permits and delivery orders (with versions), trips.

Scoped by `dashboard.scoping`: city fences (no owning company) for every logged-in user, a company's sites and
routes for those who see that company; permits and orders when the caller sees one of their vehicles (the
other vehicles are left out of the list). A foreign fence, permit or order by id is 404."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from dashboard import fences, queries, scoping
from dashboard.auth import User, current_user
from dashboard.state import AppState
from tracker.cases.access import Scope

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


def fence_companies(state: AppState, scope: Scope) -> frozenset[str] | None:
    """Companies whose fences the scope sees (None = all); see `scoping.visible_companies`."""
    from dashboard.api_core import vehicle_registry

    return None if scope.unrestricted else scoping.visible_companies(scope, vehicle_registry(state))


def visible_fences(state: AppState, scope: Scope, found: list[Any]) -> list[Any]:
    companies = fence_companies(state, scope)
    return [f for f in found if scoping.fence_visible(f.company, companies)]


def _visible_docs(state: AppState, scope: Scope, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from dashboard.api_core import vehicle_registry

    ids = scoping.visible_ids(scope, vehicle_registry(state))
    return [scoping.trim_doc(d, ids) for d in docs if scoping.doc_visible(d, ids)]


def _fence_geojson(state: AppState, at: datetime, kind: list[str] | None, scope: Scope = queries.ALL
                   ) -> dict[str, Any]:
    with state.db() as conn:
        found = visible_fences(state, scope, fences.in_force(conn, at))
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
                          kind: list[str] | None = Query(None, description="fence kind(s)"),
                          user: User = Depends(current_user)) -> Any:
        try:
            return await state.run_sync(_fence_geojson, state, at or datetime.now(tz=UTC), kind, user.scope)
        except fences.FencesUnavailable as exc:
            return _unavailable(exc)

    @router.get("/api/fences/{fence_id}/versions", tags=["fences"],
                summary="Every version of one fence (GeoJSON, oldest first): what was in force when")
    async def fence_versions(fence_id: str, user: User = Depends(current_user)) -> Any:
        def load() -> dict[str, Any]:
            with state.db() as conn:
                found = fences.versions(conn, fence_id)
            companies = fence_companies(state, user.scope)
            found = [v for v in found if scoping.fence_visible(v.fence.company, companies)]
            if not found:
                raise HTTPException(404, f"unknown fence {fence_id!r}")
            return fences.versions_collection(found)

        try:
            return await state.run_sync(load)
        except fences.FencesUnavailable as exc:
            return _unavailable(exc)

    @router.get("/api/permits", tags=["permits"], summary="Muck-truck permits (latest version of each)")
    async def list_permits(vehicle_id: str | None = None, user: User = Depends(current_user)
                           ) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                docs = queries.docs(conn, "permit")
            docs = _visible_docs(state, user.scope, docs)
            return [d for d in docs if vehicle_id is None or vehicle_id in (d.get("vehicles") or [])]

        return await state.run_sync(load)

    @router.get("/api/permits/{permit_id}/versions", tags=["permits"], summary="Every version of a permit")
    async def permit_versions(permit_id: str, user: User = Depends(current_user)) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                docs = queries.docs(conn, "permit", permit_id, all_versions=True)
            return _visible_docs(state, user.scope, docs)

        found = await state.run_sync(load)
        if not found:
            raise HTTPException(404, f"unknown permit {permit_id!r}")
        return sorted(found, key=lambda d: d["version"])

    @router.get("/api/orders", tags=["permits"], summary="Concrete delivery orders (latest version of each)")
    async def list_orders(user: User = Depends(current_user)) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                docs = queries.docs(conn, "order")
            return _visible_docs(state, user.scope, docs)

        return await state.run_sync(load)

    @router.get("/api/trips", tags=["trips"], summary="Trips (origin → destination, load states)",
                responses={503: {"description": "no trip store in this build"}})
    async def list_trips(vehicle_id: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, user: User = Depends(current_user)) -> Any:
        from dashboard.api_core import check_vehicles

        if vehicle_id is not None:
            await state.run_sync(check_vehicles, state, user.scope, [vehicle_id])
        return JSONResponse({"detail": TRIPS_TODO}, status_code=503)

    return router
