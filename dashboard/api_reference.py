"""REST: reference data — fences (with versions), permits and delivery orders (with versions), trips (the
table the worker fills, `tracker.edges.trips_store`).

Scoped by `dashboard.scoping`: city fences (no owning company) for every logged-in user, a company's sites and
routes for those who see that company; permits and orders when the caller sees one of their vehicles (the
other vehicles are left out of the list); trips when the caller sees their vehicle. A foreign fence, permit or
order by id is 404, so is a trip filter on a foreign vehicle; a filter on a foreign company is 403."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dashboard import fences, queries, scoping
from dashboard.auth import User, current_user
from dashboard.state import AppState
from tracker.cases.access import Scope



class TripPlace(BaseModel):
    id: str
    name: str | None = None  # only when the reader sees that fence


class TripOut(BaseModel):
    id: str
    vehicle_id: str
    vehicle_kind: str
    company: str | None
    start_ts_ms: int
    end_ts_ms: int | None
    origin: TripPlace | None
    destination: TripPlace | None
    doc_id: str | None
    outcome: str
    load_source: str
    day: str
    decided_ts_ms: int
    backfilled: bool
    updated_ts_ms: int
    vehicle: dict[str, Any]


class TripPage(BaseModel):
    total: int
    limit: int
    offset: int
    trips: list[TripOut]


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

    @router.get("/api/trips", tags=["trips"], response_model=TripPage,
                summary="Trips (electronic manifests): origin site → disposal site, outcome, newest first")
    async def list_trips(
        vehicle_id: str | None = None,
        vehicle_kind: list[str] | None = Query(None, description="vehicle kind(s); repeat or comma-separate"),
        company: list[str] | None = Query(None, description="transport company(ies)"),
        site: list[str] | None = Query(None, description="origin fence id(s): the site / plant left loaded"),
        disposal_site: list[str] | None = Query(None, description="destination fence id(s)"),
        day: list[date] | None = Query(None, description="local calendar day(s) the trip was counted on"),
        outcome: list[str] | None = Query(None, description="completed, failed, dumped, open, arrived"),
        since: datetime | None = Query(None, description="trips that started at or after this time"),
        until: datetime | None = Query(None, description="trips that started before this time"),
        limit: int = Query(200, ge=1, le=5000),
        offset: int = Query(0, ge=0),
        user: User = Depends(current_user),
    ) -> dict[str, Any]:
        from dashboard.api_alerts import _multi
        from dashboard.api_core import check_vehicles

        scoping.check_filters(user.scope, _multi(company))
        outcomes = _multi(outcome)
        if set(outcomes) - set(queries.TRIP_OUTCOMES):
            raise HTTPException(422, f"outcome must be one of {', '.join(queries.TRIP_OUTCOMES)}")
        f = queries.TripFilter(vehicle_id=vehicle_id, vehicle_kinds=_multi(vehicle_kind), companies=_multi(company),
                               sites=_multi(site), disposal_sites=_multi(disposal_site),
                               days=tuple((d - queries.EPOCH_DAY).days for d in day or ()), outcomes=outcomes,
                               since=since, until=until, scope=user.scope)

        def load() -> tuple[list[dict[str, Any]], int]:
            if vehicle_id is not None:
                check_vehicles(state, user.scope, [vehicle_id])
            companies = fence_companies(state, user.scope)
            with state.db() as conn:
                return queries.trips(conn, f, limit, offset, companies)

        rows, total = await state.run_sync(load)
        return {"total": total, "limit": limit, "offset": offset, "trips": rows}

    return router
