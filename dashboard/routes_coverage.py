"""Sanitation coverage over HTTP: the daily report (JSON, CSV/XLSX/Parquet/PNG), the map layers, the plans.

`make_router(get_state)` is the one line `create_app` needs. Every endpoint but the page runs as a logged-in
user and sees only its scope: a company user the segments, rounds and hexagons of its companies, a district
user those of its districts. Writing plans needs the admin, supervisor or sanitation role.

A day is computed from history the first time it is asked for and stored (`tracker.edges.coverage_store`);
`refresh=1` recomputes (a day still under way changes). Computing runs in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import FileResponse, Response

from dashboard.assets import STATIC_DIR
from dashboard.auth import User, current_user, require

MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "png": "image/png"}
CACHE_TTL_S = 60.0
_LOCKS: dict[str, threading.Lock] = {}  # one computation per day at a time (the page asks for two views at once)


def make_router(get_state: Callable[[], Any]) -> APIRouter:
    router = APIRouter(tags=["coverage"])

    @router.get("/coverage", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "coverage.html", headers={"Cache-Control": "no-cache"})

    async def day_report(day: date, refresh: bool, user: User) -> Any:
        state = get_state()

        def load() -> Any:
            from tracker.edges.coverage_store import report

            with state.db() as conn:
                return report(conn, day, state.settings, refresh=refresh, actor=f"api:{user.username}")

        key = f"coverage:{day.isoformat()}"
        if refresh:
            state.cache.pop(key, None)

        def cached() -> Any:
            with _LOCKS.setdefault(key, threading.Lock()):
                return state.cached(key, CACHE_TTL_S, load)

        rep = await state.run_sync(cached)
        return scoped(rep, user)

    @router.get("/api/coverage/days", summary="Days with a stored coverage report")
    async def days(user: User = Depends(current_user)) -> list[dict[str, Any]]:
        state = get_state()

        def load() -> list[dict[str, Any]]:
            from tracker.edges.coverage_store import days as stored

            with state.db() as conn:
                return stored(conn)

        return await state.run_sync(load)

    @router.get("/api/coverage/report", summary="A day's coverage: summary, tables per company / road / shift …")
    async def report_json(day: date = Query(..., alias="date"), company: str | None = None,
                          refresh: bool = False, user: User = Depends(current_user)) -> dict[str, Any]:
        rep = (await day_report(day, refresh, user)).filter_company(company)
        return {"date": day.isoformat(), "summary": rep.summary(), "companies": rep.companies().to_dicts(),
                "shifts": rep.by("shift").to_dicts(), "districts": rep.by("district").to_dicts(),
                "roads": rep.by("road").to_dicts(), "vehicles": rep.by("vehicle").join(
                    rep.vehicles.select("vehicle_id", "valid_work_km", "device_on_km"), on="vehicle_id",
                    how="left").to_dicts(),
                "rounds": rep.rounds().to_dicts()}

    @router.get("/api/coverage/report.{fmt}", summary="A day's coverage as a file (csv, xlsx, parquet, png)")
    async def report_file(fmt: str, day: date = Query(..., alias="date"), company: str | None = None,
                          table: str = "segments", refresh: bool = False,
                          user: User = Depends(current_user)) -> Response:
        from tracker.coverage.render import FORMATS, TABLES, render

        if fmt not in FORMATS:
            raise HTTPException(404, f"format must be one of {FORMATS}")
        if table not in TABLES:
            raise HTTPException(422, f"table must be one of {TABLES}")
        rep = (await day_report(day, refresh, user)).filter_company(company)
        data = await get_state().run_sync(lambda: render(rep, fmt, table))
        part = f"-{table}" if fmt in ("csv", "parquet") else ""
        name = f"coverage-{day.isoformat()}{'-' + company if company else ''}{part}.{fmt}"
        return Response(data, media_type=MEDIA[fmt],
                        headers={"Content-Disposition": f'attachment; filename="{_ascii(name)}"'})

    @router.get("/api/coverage/map", summary="Map layers: segments by status, H3 hexagons, collection points")
    async def map_layers(day: date = Query(..., alias="date"), company: str | None = None, refresh: bool = False,
                         user: User = Depends(current_user)) -> dict[str, Any]:
        from tracker.coverage.render import geojson

        rep = (await day_report(day, refresh, user)).filter_company(company)
        hexes = rep.hexes.group_by("h3").agg(pl_sum("planned_m"), pl_sum("covered_m")).to_dicts()
        pts = []
        for r in rep.points.group_by("point_id").agg(
                pl_any_missed(), pl_col_first("schedule_id"), pl_col_first("vehicle_id"), pl_col_first("company"),
                pl_visits()).iter_rows(named=True):
            ll = rep.point_lonlat.get(r["point_id"])
            if ll and ll[0] == ll[0]:
                pts.append({**r, "lon": ll[0], "lat": ll[1]})
        return {"date": day.isoformat(), "segments": geojson(rep),
                "hexes": [{"h3": f"{h['h3']:x}", "planned_m": round(h["planned_m"], 1),
                           "covered_m": round(h["covered_m"], 1),
                           "coverage_pct": round(100.0 * h["covered_m"] / h["planned_m"], 1) if h["planned_m"] else None}
                          for h in hexes],
                "points": pts, "bounds": _bounds(rep)}

    @router.get("/api/coverage/plans", summary="Work plans and collection schedules (the import format)")
    async def plans_get(user: User = Depends(current_user)) -> Response:
        state = get_state()

        def load() -> bytes:
            from tracker.coverage.plans import Plans, encode
            from tracker.edges.coverage_store import load_plans

            with state.db() as conn:
                p = load_plans(conn)
            sc = user.scope
            keep = lambda x: sc.allows(company=x.company, district=x.district)  # noqa: E731
            return encode(Plans(work_plans=[w for w in p.work_plans if keep(w)],
                                collection_schedules=[c for c in p.collection_schedules if keep(c)]))

        return Response(await state.run_sync(load), media_type="application/json")

    @router.put("/api/coverage/plans", summary="Import plans (all-or-nothing; unchanged plans keep their version)")
    async def plans_put(body: bytes = Body(..., media_type="application/json"),
                        user: User = Depends(require("admin", "supervisor", "sanitation"))) -> dict[str, Any]:
        state = get_state()

        def save() -> dict[str, Any]:
            from geofences.store import list_fences
            from tracker.coverage.plans import PlanError, checked, decode
            from tracker.edges.coverage_store import save_plans

            try:
                plans = decode(body)
                with state.db() as conn:
                    checked(plans, fence_ids={f.id for f in list_fences(conn)}, bbox=tuple(state.settings.city.bbox))
                    written = save_plans(conn, plans, actor=f"api:{user.username}")
            except PlanError as exc:
                raise HTTPException(422, {"problems": exc.problems}) from exc
            return {"work_plans": len(plans.work_plans), "collection_schedules": len(plans.collection_schedules),
                    "versions_written": written}

        return await state.run_sync(save)

    return router


def scoped(rep: Any, user: User) -> Any:
    """The part of a report the user's scope may see (company and district constraints)."""
    sc = user.scope
    if sc.companies is None and sc.districts is None:
        return rep
    import polars as pl

    from tracker.coverage.report import DayReport

    def keep(df: pl.DataFrame) -> pl.DataFrame:
        f = pl.lit(True)
        if sc.companies is not None and "company" in df.columns:
            f = f & pl.col("company").is_in(sorted(sc.companies))
        if sc.districts is not None and "district" in df.columns:
            f = f & pl.col("district").is_in(sorted(sc.districts))
        return df.filter(f)

    segs = keep(rep.segments)
    ids = set(segs["segment_id"].to_list())
    hexes = rep.hexes if sc.companies is None else rep.hexes.filter(pl.col("company").is_in(sorted(sc.companies)))
    if sc.districts is not None:  # hexagons carry companies only: recompute them is not worth it — none
        hexes = hexes.clear()
    return DayReport(rep.day, segs, keep(rep.points), keep(rep.vehicles), hexes,
                     {k: v for k, v in rep.geometry.items() if k in ids}, rep.point_lonlat)


def _bounds(rep: Any) -> list[float] | None:
    xs = [c[0] for line in rep.geometry.values() for c in line]
    ys = [c[1] for line in rep.geometry.values() for c in line]
    if not xs:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace("?", "_")


# small polars expression helpers (kept here so the endpoint bodies read as what they return)
def pl_sum(c: str) -> Any:
    import polars as pl

    return pl.col(c).sum()


def pl_any_missed() -> Any:
    import polars as pl

    return (pl.col("verdict") == "missed").any().alias("missed")


def pl_col_first(c: str) -> Any:
    import polars as pl

    return pl.col(c).first()


def pl_visits() -> Any:
    import polars as pl

    return pl.col("visited").sum().alias("visits")

