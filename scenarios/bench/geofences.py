"""Benchmark of `geofences.FenceIndex.locate`: 1,000,000 fixes against 5,000 mixed fences.

City: a 20 × 20 km square around Futian, Shenzhen (114.05, 22.54). Fences (seeded): construction sites
and other plots as star-shaped polygons of 40–300 m radius, a quarter with a hole; 60 restricted zones
of 1–3 km; collection points and depots as circles of 10–300 m; permitted routes as corridors of 1–6 km
with 25–60 m half-width. Fixes: half uniform over the square, half within 60 m of a random fence's bounding
box (vehicles spend their time at sites and on routes), H3 cells at the fix resolution given (the tracker
computes them once per fix).

Baseline: the naive way — a shapely STRtree over the fences' area polygons, queried point by point in
Python — measured on a subsample in the same run and scaled to points/s.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import shapely

from geofences.h3util import DEFAULT_FIX_RES, cells_at
from geofences.index import FenceIndex
from geofences.kinds import FenceKind, ShapeKind
from geofences.local import Origin, to_lonlat
from geofences.model import Fence
from scenarios.bench import Figure, figure, median_time

CENTRE = Origin(114.05, 22.54)
HALF_SIDE_M = 10_000.0
TARGET_POINTS_PER_S = 2_000_000.0


def _star(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int) -> np.ndarray:
    # evenly spread angles with jitter: every gap < π, so the star is a simple polygon
    angles = (np.arange(n) + rng.uniform(0.0, 0.8, n)) * (2 * np.pi / n)
    radii = radius * rng.uniform(0.6, 1.0, n)
    return np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)])


def _lonlat(xy: np.ndarray) -> np.ndarray:
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], CENTRE)
    return np.column_stack([lon, lat])


def synthetic_fences(n: int = 5000, seed: int = 42) -> list[Fence]:
    """A reproducible mix of polygons (some with holes), circles and corridors in the benchmark city."""
    rng = np.random.default_rng(seed)
    fences: list[Fence] = []
    n_zone, n_poly, n_circle = 60 * n // 5000, 2440 * n // 5000, 1500 * n // 5000
    n_corr = n - n_zone - n_poly - n_circle
    plot_kinds = [FenceKind.CONSTRUCTION_SITE, FenceKind.DISPOSAL_SITE, FenceKind.BATCHING_PLANT,
                  FenceKind.TRANSFER_STATION, FenceKind.LANDFILL, FenceKind.WORK_AREA]
    lim = HALF_SIDE_M * 0.95
    for i in range(n_zone + n_poly):
        zone = i < n_zone
        cx, cy = rng.uniform(-lim, lim, 2)
        radius = rng.uniform(1000, 3000) / 2 if zone else rng.uniform(40, 300)
        shell = _star(rng, cx, cy, radius, int(rng.integers(6, 24)))
        holes = []
        if rng.random() < 0.25:
            holes.append(_star(rng, cx, cy, radius * 0.35, 8)[::-1])
        geom = shapely.Polygon(_lonlat(shell), [_lonlat(h) for h in holes])
        if not geom.is_valid:
            geom = shapely.Polygon(_lonlat(shell))
        kind = FenceKind.RESTRICTED_ZONE if zone else plot_kinds[i % len(plot_kinds)]
        fences.append(Fence(id=f"P{i}", name=f"地块{i}", kind=kind, shape=ShapeKind.POLYGON, geometry=geom))
    for i in range(n_circle):
        cx, cy = rng.uniform(-lim, lim, 2)
        small = rng.random() < 0.8
        r = rng.uniform(10, 50) if small else rng.uniform(100, 300)
        kind = FenceKind.COLLECTION_POINT if small else FenceKind.DEPOT
        fences.append(Fence(id=f"C{i}", name=f"点{i}", kind=kind, shape=ShapeKind.CIRCLE,
                            geometry=shapely.Point(*_lonlat(np.array([[cx, cy]]))[0]), radius_m=r))
    for i in range(n_corr):
        length = rng.uniform(1000, 6000)
        k = int(rng.integers(4, 30))
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.4, k))
        step = length / k
        start = rng.uniform(-lim * 0.7, lim * 0.7, 2)
        xy = start + np.vstack([[0, 0], np.cumsum(np.column_stack([np.cos(heading), np.sin(heading)]) * step, 0)])
        fences.append(Fence(id=f"R{i}", name=f"路线{i}", kind=FenceKind.ROUTE, shape=ShapeKind.CORRIDOR,
                            geometry=shapely.LineString(_lonlat(xy)), half_width_m=rng.uniform(25, 60)))
    return fences


def synthetic_points(fences: list[Fence], n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Half uniform over the city, half near a random fence."""
    rng = np.random.default_rng(seed)
    n_uni = n // 2
    x = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M, n_uni)
    y = rng.uniform(-HALF_SIDE_M, HALF_SIDE_M, n_uni)
    lon_u, lat_u = to_lonlat(x, y, CENTRE)
    bounds = np.array([f.area_geometry().bounds for f in fences])
    pick = bounds[rng.integers(0, len(fences), n - n_uni)]
    pad = 60.0 / 111_000.0
    lon_n = rng.uniform(pick[:, 0] - pad, pick[:, 2] + pad)
    lat_n = rng.uniform(pick[:, 1] - pad, pick[:, 3] + pad)
    lon = np.concatenate([lon_u, lon_n])
    lat = np.concatenate([lat_u, lat_n])
    perm = rng.permutation(n)
    return lon[perm], lat[perm]


@dataclass
class Setup:
    fences: list[Fence]
    index: FenceIndex
    lon: np.ndarray
    lat: np.ndarray
    cells: np.ndarray
    build_s: float


def setup(n_fences: int, n_points: int, res: int = DEFAULT_FIX_RES) -> Setup:
    fences = synthetic_fences(n_fences)
    t0 = time.perf_counter()
    index = FenceIndex.build(fences, res=res)
    build_s = time.perf_counter() - t0
    lon, lat = synthetic_points(fences, n_points)
    return Setup(fences, index, lon, lat, cells_at(lon, lat, DEFAULT_FIX_RES), build_s)


def naive_strtree_points_per_s(fences: list[Fence], lon: np.ndarray, lat: np.ndarray) -> float:
    """Per-point STRtree query over area polygons: what one would write without an index of one's own."""
    tree = shapely.STRtree([f.area_geometry() for f in fences])
    t0 = time.perf_counter()
    hits = 0
    for x, y in zip(lon.tolist(), lat.tolist()):
        hits += len(tree.query(shapely.Point(x, y), predicate="intersects"))
    return len(lon) / (time.perf_counter() - t0)


def bench_locate(quick: bool = False) -> list[Figure]:
    """`locate` throughput (median wall time; cells given), its CPU-time twin (robust on a shared,
    overloaded machine: the work is single-threaded), the naive STRtree baseline and the build time."""
    n_fences, n_points, repeat, n_base = (1000, 200_000, 3, 3_000) if quick else (5000, 1_000_000, 5, 20_000)
    s = setup(n_fences, n_points)

    def run() -> None:
        s.index.locate(s.lon, s.lat, s.cells)

    wall = median_time(run, repeat)
    cpu = []
    for _ in range(repeat):
        t0 = time.process_time()
        run()
        cpu.append(time.process_time() - t0)
    baseline = statistics.median(
        naive_strtree_points_per_s(s.fences, s.lon[k * n_base:(k + 1) * n_base], s.lat[k * n_base:(k + 1) * n_base])
        for k in range(3)
    )
    return [
        figure("geofences.locate_points_per_s", n_points / wall, "points/s", target=TARGET_POINTS_PER_S, baseline=baseline),
        figure("geofences.locate_points_per_cpu_s", n_points / statistics.median(cpu), "points/s",
               target=TARGET_POINTS_PER_S),
        figure("geofences.index_build_s", s.build_s, "s"),
    ]
