"""Track replay API: one vehicle's track, and which vehicles passed through an area.

* ``GET /api/vehicles/{id}/track?from=&to=[&format=geojson|parquet]`` — the vehicle's fixes in [from, to),
  time-ordered. GeoJSON: a FeatureCollection whose first feature is the track as a LineString (valid fixes
  only; properties: vehicle_id, from, to, count, ``times`` in UTC epoch ms per vertex) followed by one Point
  per fix with all its columns (sensors null when not reported). ``format=parquet`` returns the rows as a
  Parquet file (the history columns, ``ts`` as UTC timestamps), for analysts and auditors.
* ``GET /api/tracks?area=&from=&to=`` — vehicles with at least one fix inside the area in [from, to), with
  their fix count and first/last time there. ``area`` is a GeoJSON Polygon/MultiPolygon (a geometry or a
  Feature) in WGS-84, or a bbox ``west,south,east,north``.

How the area query stays an index query: the polygon is covered by H3 cells (every cell that overlaps it, at
the coarsest resolution that keeps the cover small), each cell is turned into the contiguous integer range
of its descendants at the fix resolution (`geofences.h3util.descendant_range`), and PostgreSQL answers
``h3 BETWEEN lo AND hi`` per range with the (h3, ts) index. The candidates are then tested exactly against
the polygon (shapely, vectorised), so cover cells sticking out of the area add no false positives.

Both endpoints respect the caller's scope when the app puts a user on the request (`dashboard.auth`):
vehicles outside it are invisible (404 for a track, absent from area results).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import polars as pl
import shapely
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["area_geometry", "cover_ranges", "make_router", "passed_through", "track_geojson"]

MAX_SPAN = timedelta(days=31)
MAX_COVER_CELLS = 20_000


def _range(ts_from: datetime | None, ts_to: datetime | None) -> tuple[datetime, datetime]:
    ts_to = ts_to or datetime.now(tz=UTC)
    ts_from = ts_from or ts_to - timedelta(days=1)
    if ts_from.tzinfo is None or ts_to.tzinfo is None:
        raise HTTPException(422, "from/to need a UTC offset (e.g. 2026-11-22T08:00:00+08:00)")
    if ts_to <= ts_from:
        raise HTTPException(422, "to must be after from")
    if ts_to - ts_from > MAX_SPAN:
        raise HTTPException(422, f"at most {MAX_SPAN.days} days per request")
    return ts_from, ts_to


def area_geometry(area: str) -> shapely.Geometry:
    """`area` parameter → a valid WGS-84 (multi)polygon. Raises ValueError with a reason."""
    text = area.strip()
    if text[:1] != "{":
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        if len(parts) != 4:
            raise ValueError("area: a GeoJSON polygon or a bbox 'west,south,east,north'")
        w, s, e, n = (float(p) for p in parts)
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ValueError("area bbox must be west < east, south < north, in degrees")
        return shapely.box(w, s, e, n)
    try:
        obj = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"area is not JSON: {exc}") from None
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, dict) or obj.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("area must be a GeoJSON Polygon or MultiPolygon (geometry or Feature)")
    try:
        geom = shapely.geometry.shape(obj)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(f"area is not a valid polygon: {exc}") from None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    minx, miny, maxx, maxy = geom.bounds
    if geom.is_empty or not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
        raise ValueError("area must be a non-empty polygon in WGS-84 degrees")
    return geom


def cover_ranges(geom: shapely.Geometry, fix_res: int, start_res: int) -> tuple[np.ndarray, np.ndarray]:
    """Merged [lo, hi] ranges of fix-resolution H3 integers covering every cell that overlaps `geom`."""
    import h3

    from geofences.h3util import descendant_range

    shape = h3.geo_to_h3shape(shapely.geometry.mapping(geom))
    res = min(start_res, fix_res)
    while True:
        cells = h3.h3shape_to_cells_experimental(shape, res, contain="overlap")
        if len(cells) <= MAX_COVER_CELLS or res == 0:
            break
        res -= 1
    ints = np.array([h3.str_to_int(c) for c in cells], dtype=np.uint64)
    if not len(ints):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = descendant_range(ints, fix_res)
    order = np.argsort(lo)
    lo, hi = lo[order].astype(np.int64), hi[order].astype(np.int64)
    # merge touching/overlapping ranges: fewer index probes
    keep_lo, keep_hi = [int(lo[0])], [int(hi[0])]
    for a, b in zip(lo[1:].tolist(), hi[1:].tolist(), strict=True):
        if a <= keep_hi[-1] + 1:
            keep_hi[-1] = max(keep_hi[-1], b)
        else:
            keep_lo.append(a)
            keep_hi.append(b)
    return np.array(keep_lo, np.int64), np.array(keep_hi, np.int64)


def passed_through(conn: Any, geom: shapely.Geometry, ts_from: datetime, ts_to: datetime, fix_res: int,
                   start_res: int) -> pl.DataFrame:
    """vehicle_id, fixes, first_ts, last_ts of vehicles with a fix inside `geom` in [from, to)."""
    lo, hi = cover_ranges(geom, fix_res, start_res)
    empty = pl.DataFrame(schema={"vehicle_id": pl.String, "fixes": pl.Int64, "first_ts": pl.Datetime("us", "UTC"),
                                 "last_ts": pl.Datetime("us", "UTC")})
    if not len(lo):
        return empty
    rows = conn.execute(
        "SELECT f.vehicle_id, f.ts, f.lon, f.lat FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi) "
        "JOIN fixes f ON f.h3 BETWEEN r.lo AND r.hi WHERE f.ts >= %s AND f.ts < %s",
        (lo.tolist(), hi.tolist(), ts_from, ts_to)).fetchall()
    if not rows:
        return empty
    cand = pl.DataFrame(rows, schema=["vehicle_id", "ts", "lon", "lat"], orient="row")
    inside = shapely.contains_xy(geom, cand.get_column("lon").to_numpy(), cand.get_column("lat").to_numpy())
    inside |= shapely.intersects_xy(geom.boundary, cand.get_column("lon").to_numpy(),
                                    cand.get_column("lat").to_numpy())
    hits = cand.filter(pl.Series(inside))
    if not hits.height:
        return empty
    return (hits.group_by("vehicle_id").agg(pl.len().cast(pl.Int64).alias("fixes"), pl.col("ts").min().alias("first_ts"),
                                            pl.col("ts").max().alias("last_ts")).sort("vehicle_id"))


def _ms(ts: Any) -> int:
    return int(ts.timestamp() * 1000)


def track_geojson(vehicle_id: str, df: pl.DataFrame, ts_from: datetime, ts_to: datetime) -> dict[str, Any]:
    """History rows (`tracker.edges.history.track`) → a GeoJSON FeatureCollection (see module docstring)."""
    features: list[dict[str, Any]] = []
    if df.height:
        valid = df.filter(pl.col("valid"))
        if valid.height:
            features.append({
                "type": "Feature", "id": f"{vehicle_id}:track",
                "geometry": {"type": "LineString",
                             "coordinates": [[x, y] for x, y in zip(valid.get_column("lon").to_list(),
                                                                    valid.get_column("lat").to_list(), strict=True)]},
                "properties": {"vehicle_id": vehicle_id, "kind": "track", "count": valid.height,
                               "times": [_ms(t) for t in valid.get_column("ts").to_list()]},
            })
        props = df.drop("lon", "lat").with_columns(pl.col("ts").dt.epoch("ms").alias("ts_ms"),
                                                   pl.col("received_ts").dt.epoch("ms").alias("received_ts_ms"),
                                                   pl.col("h3").cast(pl.UInt64).map_elements(hex, return_dtype=pl.String)
                                                   .alias("h3")).drop("ts", "received_ts")
        for (lon, lat), p in zip(zip(df.get_column("lon").to_list(), df.get_column("lat").to_list(), strict=True),
                                 props.iter_rows(named=True), strict=True):
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                             "properties": {**p, "kind": "fix"}})
    return {"type": "FeatureCollection", "features": features,
            "properties": {"vehicle_id": vehicle_id, "from": ts_from.isoformat(), "to": ts_to.isoformat(),
                           "fixes": df.height}}


def _scope_of(request: Request) -> Any:
    user = getattr(request.state, "user", None)
    return None if user is None else user.scope


def _allowed(conn: Any, scope: Any, vehicle_ids: list[str]) -> set[str]:
    if scope is None or all(getattr(scope, a, None) is None for a in ("companies", "districts", "vehicle_kinds")):
        return set(vehicle_ids)  # unrestricted (admin, supervisor…)
    rows = conn.execute("SELECT vehicle_id, company, district, kind FROM vehicles WHERE vehicle_id = ANY(%s)",
                        (vehicle_ids,)).fetchall()
    return {v for v, c, d, k in rows if scope.allows(company=c, district=d, vehicle_kind=k)}


def make_router(get_state: Callable[[], Any]) -> APIRouter:
    """`get_state()` returns the app state (`settings`, `db()`, `run_sync`), as `dashboard.state.AppState`."""
    from tracker.edges import history

    router = APIRouter(tags=["history"])

    @router.get("/api/vehicles/{vehicle_id}/track", summary="One vehicle's track (GeoJSON or Parquet)",
                responses={200: {"content": {"application/geo+json": {}, "application/vnd.apache.parquet": {}}}})
    async def vehicle_track(request: Request, vehicle_id: str,
                            ts_from: datetime | None = Query(None, alias="from", description="ISO-8601 with offset"),
                            ts_to: datetime | None = Query(None, alias="to", description="ISO-8601 with offset"),
                            format: str = Query("geojson", pattern="^(geojson|parquet)$")) -> Response:
        state = get_state()
        a, b = _range(ts_from, ts_to)
        scope = _scope_of(request)

        def load() -> pl.DataFrame | None:
            with state.db() as conn:
                if scope is not None and vehicle_id not in _allowed(conn, scope, [vehicle_id]):
                    return None
                return history.track(conn, vehicle_id, a, b)

        df = await state.run_sync(load)
        if df is None:
            raise HTTPException(404, f"no vehicle {vehicle_id!r} in your scope")
        if format == "parquet":
            buf = io.BytesIO()
            df.write_parquet(buf)
            return Response(buf.getvalue(), media_type="application/vnd.apache.parquet",
                            headers={"Content-Disposition": f'attachment; filename="{vehicle_id}-track.parquet"'})
        return JSONResponse(track_geojson(vehicle_id, df, a, b), media_type="application/geo+json")

    @router.get("/api/tracks", summary="Vehicles that passed through an area")
    async def tracks_in_area(request: Request,
                             area: str = Query(..., description="GeoJSON Polygon/MultiPolygon or bbox w,s,e,n"),
                             ts_from: datetime | None = Query(None, alias="from"),
                             ts_to: datetime | None = Query(None, alias="to")) -> dict[str, Any]:
        state = get_state()
        a, b = _range(ts_from, ts_to)
        try:
            geom = area_geometry(area)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        scope = _scope_of(request)
        h3s = state.settings.h3

        def load() -> pl.DataFrame:
            with state.db() as conn:
                got = passed_through(conn, geom, a, b, h3s.fix_res, h3s.fence_res)
                if scope is not None and got.height:
                    ok = _allowed(conn, scope, got.get_column("vehicle_id").to_list())
                    got = got.filter(pl.col("vehicle_id").is_in(list(ok)))
                return got

        got = await state.run_sync(load)
        vehicles = [{"vehicle_id": r["vehicle_id"], "fixes": r["fixes"], "first_ts": r["first_ts"].isoformat(),
                     "last_ts": r["last_ts"].isoformat()} for r in got.iter_rows(named=True)]
        return {"from": a.isoformat(), "to": b.isoformat(), "count": len(vehicles), "vehicles": vehicles}

    return router
