"""Hypothesis strategies and brute-force oracles for the geofences tests.

The oracles are deliberately independent of `geofences.index` / `geofences.exact`: polygons are tested
with shapely on the raw lon/lat geometry, circles and corridors with shapely distances in metres in the
fence's local projection (`geofences.local`, the library's declared metric).
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import assume
from hypothesis import strategies as st

from geofences.kinds import FenceKind, ShapeKind
from geofences.local import Origin, to_lonlat, to_xy_m
from geofences.model import Fence

CITY = Origin(114.05, 22.54)
BOUNDARY_TOL_M = 1e-4
"""Points closer than this (≈ 1e-9°) to a fence's boundary are excluded: either answer is right there."""


def _star(cx: float, cy: float, radii: list[float], jitter: list[float]) -> np.ndarray:
    n = len(radii)
    ang = (np.arange(n) + np.asarray(jitter)) * (2 * np.pi / n)
    return np.column_stack([cx + np.asarray(radii) * np.cos(ang), cy + np.asarray(radii) * np.sin(ang)])


def _ll(xy: np.ndarray) -> np.ndarray:
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], CITY)
    return np.column_stack([lon, lat])


@st.composite
def stars(draw, cx: float, cy: float, scale: float) -> np.ndarray:
    n = draw(st.integers(5, 14))
    radii = draw(st.lists(st.floats(0.55 * scale, scale), min_size=n, max_size=n))
    jitter = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    return _star(cx, cy, radii, jitter)


@st.composite
def polygon_fences(draw, fid: str) -> Fence:
    scale = draw(st.sampled_from([3.0, 15.0, 60.0, 250.0, 1200.0]))
    cx, cy = draw(st.floats(-3000, 3000)), draw(st.floats(-3000, 3000))
    parts = []
    for k in range(draw(st.integers(1, 2))):
        ox = cx + k * 3.0 * scale
        shell = draw(stars(ox, cy, scale))
        holes = []
        if draw(st.booleans()):
            holes.append(draw(stars(ox, cy, 0.25 * scale))[::-1])
        parts.append(shapely.Polygon(_ll(shell), [_ll(h) for h in holes]))
    geom = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    assume(geom.is_valid and geom.area > 0)
    return Fence(id=fid, name=fid, kind=FenceKind.CONSTRUCTION_SITE, shape=ShapeKind.POLYGON, geometry=geom)


@st.composite
def circle_fences(draw, fid: str) -> Fence:
    cx, cy = draw(st.floats(-3000, 3000)), draw(st.floats(-3000, 3000))
    r = draw(st.sampled_from([0.5, 4.0, 25.0, 120.0, 900.0])) * draw(st.floats(0.7, 1.3))
    (lon, lat), = _ll(np.array([[cx, cy]]))
    return Fence(id=fid, name=fid, kind=FenceKind.COLLECTION_POINT, shape=ShapeKind.CIRCLE,
                 geometry=shapely.Point(lon, lat), radius_m=r)


@st.composite
def corridor_fences(draw, fid: str) -> Fence:
    k = draw(st.integers(1, 12))
    step = draw(st.sampled_from([5.0, 40.0, 300.0]))
    heading = draw(st.floats(0, 2 * np.pi)) + np.cumsum(draw(st.lists(st.floats(-2.0, 2.0), min_size=k, max_size=k)))
    start = np.array([draw(st.floats(-2000, 2000)), draw(st.floats(-2000, 2000))])
    xy = start + np.vstack([[0, 0], np.cumsum(np.column_stack([np.cos(heading), np.sin(heading)]) * step, 0)])
    hw = draw(st.sampled_from([2.0, 15.0, 50.0])) * draw(st.floats(0.7, 1.3))
    line = shapely.LineString(_ll(xy))
    assume(line.length > 0)
    return Fence(id=fid, name=fid, kind=FenceKind.ROUTE, shape=ShapeKind.CORRIDOR, geometry=line, half_width_m=hw)


@st.composite
def fence_sets(draw, max_fences: int = 6) -> list[Fence]:
    n = draw(st.integers(1, max_fences))
    makers = [polygon_fences, circle_fences, corridor_fences]
    return [draw(makers[draw(st.integers(0, 2))](f"f{i}")) for i in range(n)]


def sample_points(fences: list[Fence], seed: int, n_uniform: int = 300, n_edge: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points around the fences plus points scattered just either side of their boundaries, where
    a broad phase goes wrong first."""
    rng = np.random.default_rng(seed)
    bounds = np.array([f.area_geometry().bounds for f in fences])
    lo, hi = bounds[:, :2].min(0) - 1e-4, bounds[:, 2:].max(0) + 1e-4
    lon = [rng.uniform(lo[0], hi[0], n_uniform)]
    lat = [rng.uniform(lo[1], hi[1], n_uniform)]
    for f in fences:
        edge = f.area_geometry().boundary
        pts = shapely.line_interpolate_point(edge, rng.uniform(0, 1, n_edge // len(fences)), normalized=True)
        c = shapely.get_coordinates(pts)
        off = rng.choice([1e-7, 1e-6, 1e-5, 1e-4], c.shape[0])[:, None] * rng.normal(size=c.shape)
        lon.append(c[:, 0] + off[:, 0])
        lat.append(c[:, 1] + off[:, 1])
    return np.concatenate(lon), np.concatenate(lat)


def brute_force(fences: list[Fence], lon: np.ndarray, lat: np.ndarray) -> tuple[set, np.ndarray]:
    """(set of (point, fence) inside pairs, bool mask of points too close to some boundary to judge)."""
    pairs: set = set()
    ambiguous = np.zeros(lon.size, bool)
    for j, f in enumerate(fences):
        x, y = to_xy_m(lon, lat, f.origin)
        pts = shapely.points(x, y)
        if f.shape is ShapeKind.POLYGON:
            inside = shapely.intersects_xy(f.geometry, lon, lat)
            d = shapely.distance(shapely.transform(f.geometry.boundary, lambda c: np.column_stack(to_xy_m(c[:, 0], c[:, 1], f.origin))), pts)
        else:
            centre = shapely.transform(f.geometry, lambda c: np.column_stack(to_xy_m(c[:, 0], c[:, 1], f.origin)))
            size = f.radius_m if f.shape is ShapeKind.CIRCLE else f.half_width_m
            dist = shapely.distance(centre, pts)
            inside, d = dist <= size, np.abs(dist - size)
        ambiguous |= d < BOUNDARY_TOL_M
        pairs |= {(int(i), j) for i in np.flatnonzero(inside)}
    return pairs, ambiguous


def brute_distance_m(fence: Fence, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Distance in metres (local projection) to the boundary (polygon, circle) or centre line (corridor)."""
    x, y = to_xy_m(lon, lat, fence.origin)
    pts = shapely.points(x, y)
    g = shapely.transform(fence.geometry, lambda c: np.column_stack(to_xy_m(c[:, 0], c[:, 1], fence.origin)))
    if fence.shape is ShapeKind.POLYGON:
        return shapely.distance(g.boundary, pts)
    if fence.shape is ShapeKind.CIRCLE:
        return np.abs(shapely.distance(g, pts) - fence.radius_m)
    return shapely.distance(g, pts)
