"""REST: history — replay tracks, the H3 density layer, statistics; each over the vehicles in the caller's
scope (replaying a foreign vehicle is 404, as if it did not exist)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from dashboard import queries
from dashboard.api_alerts import _multi
from dashboard.api_core import check_vehicles, fleet_clock
from dashboard.auth import User, current_user
from dashboard.api_reference import fence_companies
from dashboard.models import DensityOut, ReplayOut, StatsOut
from dashboard.state import AppState
from tracker.cases.access import Scope

MAX_REPLAY = timedelta(hours=24)
MAX_REPLAY_VEHICLES = 50


def replay(state: AppState, vehicle_ids: list[str], since: datetime, until: datetime,
           scope: Scope = queries.ALL) -> dict[str, Any]:
    check_vehicles(state, scope, vehicle_ids)
    with state.db() as conn:
        tracks = queries.tracks(conn, vehicle_ids, since, until)
        alerts: list[dict[str, Any]] = []
        for vid in vehicle_ids:
            f = queries.AlertFilter(vehicle_id=vid, since=since, until=until, scope=scope)
            rows, _ = queries.alerts(conn, f, 1000)
            alerts.extend(rows)
    return {"since_ms": queries.ms(since), "until_ms": queries.ms(until), "tracks": tracks, "alerts": alerts}


def default_range(state: AppState, hours: float) -> tuple[datetime, datetime]:
    until = datetime.fromtimestamp(fleet_clock(state) / 1000, tz=UTC)
    return until - timedelta(hours=hours), until


def stats(state: AppState, since: datetime, until: datetime, scope: Scope = queries.ALL) -> dict[str, Any]:
    """Alerts per kind per local day, the company ranking, and completed trips (趟次) per origin site and per
    disposal site among the trips that started in [since, until) — all over the vehicles in `scope`."""
    companies = fence_companies(state, scope)
    trips = queries.TripFilter(outcomes=("completed",), since=since, until=until, scope=scope)
    with state.db() as conn:
        per_day = queries.alerts_per_day(conn, since, until, state.settings.city.utc_offset_min, scope)
        ranking = queries.company_ranking(conn, since, until, scope)
        by_origin = queries.trip_counts(conn, trips, "origin", companies)
        by_disposal = queries.trip_counts(conn, trips, "destination", companies)
    return {"since_ms": queries.ms(since), "until_ms": queries.ms(until), "alerts_per_day": per_day,
            "companies": ranking, "trips_available": True, "trips_by_origin": by_origin,
            "trips_by_disposal": by_disposal}


def make_router(state: AppState) -> APIRouter:
    router = APIRouter()

    @router.get("/api/replay", tags=["history"], response_model=ReplayOut,
                summary="Tracks (columnar) and alerts of some vehicles over a time range")
    async def get_replay(vehicle: list[str] = Query(..., description="vehicle id(s); repeat or comma-separate"),
                         since: datetime | None = Query(None, description="default: one hour before `until`"),
                         until: datetime | None = Query(None, description="default: the fleet clock"),
                         user: User = Depends(current_user)) -> dict[str, Any]:
        ids = list(dict.fromkeys(_multi(vehicle)))
        if not ids or len(ids) > MAX_REPLAY_VEHICLES:
            raise HTTPException(422, f"give 1 to {MAX_REPLAY_VEHICLES} vehicles")
        d_since, d_until = default_range(state, 1)
        until = until or (since + timedelta(hours=1) if since else d_until)
        since = since or until - timedelta(hours=1)
        if until <= since or until - since > MAX_REPLAY:
            raise HTTPException(422, f"time range must be positive and at most {MAX_REPLAY}")
        return await state.run_sync(replay, state, ids, since, until, user.scope)

    @router.get("/api/density", tags=["history"], response_model=DensityOut,
                summary="Fixes per H3 cell over the last minutes (the density layer)")
    async def get_density(res: int | None = Query(None, ge=5, le=12),
                          minutes: int | None = Query(None, ge=1, le=1440),
                          user: User = Depends(current_user)) -> dict[str, Any]:
        r = res or state.options.density_res
        since, until = default_range(state, (minutes or state.options.density_minutes) / 60)

        def load() -> list[dict[str, Any]]:
            with state.db() as conn:
                return queries.density(conn, since, until + timedelta(seconds=1), r, user.scope)

        cells = await state.run_sync(load)
        return {"res": r, "since_ms": queries.ms(since), "until_ms": queries.ms(until), "cells": cells}

    @router.get("/api/stats", tags=["statistics"], response_model=StatsOut,
                summary="Alerts per kind per local day, company ranking, trips per site")
    async def get_stats(since: datetime | None = None, until: datetime | None = None,
                        days: int = Query(14, ge=1, le=366), user: User = Depends(current_user)) -> dict[str, Any]:
        until = until or datetime.fromtimestamp(fleet_clock(state) / 1000, tz=UTC) + timedelta(seconds=1)
        since = since or until - timedelta(days=days)
        return await state.run_sync(stats, state, since, until, user.scope)

    return router
