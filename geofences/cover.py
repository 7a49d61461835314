"""H3 cover of a fence: which cells are wholly inside it, and which straddle its edge.

For every point p whose H3 cell at `cell_res` has bit-parent c at `res` (c is p's own cell when the two
resolutions are equal), the cover guarantees:

* c interior → p is inside the fence (accepted without an exact test);
* p inside the fence → c is interior or boundary.

How, without H3's slow polygon-overlap modes: let ρ bound the circumradius of res cells near the fence, so
every point of a cell lies within ρ of its centre (plus, when `cell_res` > `res`, the distance fine cells
stick out of their bit-parent: `h3util.nesting_margin_m`, plus a few centimetres for great-circle cell edges
and round-off). Call that total `grow`. Then, measuring in metres in the fence's local frame:

* candidates: cells whose centre lies in the fence grown by `grow` (H3's fast centre-containment fill);
* interior: centre inside and farther than `grow` from the edge;
* boundary: every other candidate with its centre within `grow` of the fence.

Corridors are classified per segment *capsule* (the points within the half-width of one segment): a
boundary cell records which segments pass near it, so the exact test later measures a handful of
point–segment distances instead of the whole polyline. Circles are covered through their true radius.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt
import shapely

from geofences.exact import corridor_segments, segment_dist2
from geofences.h3util import U64, cell_centres, nesting_margin_m
from geofences.kinds import ShapeKind
from geofences.local import dist_m, to_xy_m, transform_geometry_to_lonlat, transform_geometry_to_xy
from geofences.model import Fence

GEOMETRY_MARGIN_M = 0.05
"""Slack for H3 cell edges (great-circle arcs) versus straight lon/lat edges, and float round-off."""
RADIUS_SAFETY = 1.05
"""Cell sizes drift slowly across a grid; the radius measured at a fence's corners is padded by this."""

ACCEPT, TEST_POLYGON, TEST_CIRCLE, TEST_CAPSULE = 0, 1, 2, 3
"""What a point in a covered cell needs: nothing (interior), or the exact test of that shape."""

_CHUNK = 1 << 21  # cell × segment distances computed at a time for corridors


@dataclass(frozen=True)
class CoverEntries:
    """One row per (cell, test): interior cells once with ACCEPT; boundary cells with their exact test
    (one row per nearby segment for corridors, `seg` = segment number within the fence)."""

    cells: U64
    test: npt.NDArray[np.int8]
    seg: npt.NDArray[np.int32]


def cell_radius_m(fence: Fence, res: int) -> float:
    """Upper bound (metres) of the circumradius of res cells over the fence's extent."""
    minx, miny, maxx, maxy = fence.geometry.bounds
    corners = ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy))
    return max(_tile_radius_m(round(lon, 1), round(lat, 1), res) for lon, lat in corners)


@lru_cache(maxsize=4096)
def _tile_radius_m(lon: float, lat: float, res: int) -> float:
    """Largest circumradius of res cells around a 0.1° tile (cell sizes change by well under 1 % there)."""
    worst = 0.0
    for dlon, dlat in ((-0.06, -0.06), (-0.06, 0.06), (0.06, -0.06), (0.06, 0.06), (0.0, 0.0)):
        for cell in h3.grid_disk(h3.latlng_to_cell(lat + dlat, lon + dlon, res), 1):
            clat, clon = h3.cell_to_latlng(cell)
            b = np.array(h3.cell_to_boundary(cell))
            worst = max(worst, float(dist_m(clon, clat, b[:, 1], b[:, 0]).max()))
    return worst * RADIUS_SAFETY


def grow_m(fence: Fence, res: int, cell_res: int) -> float:
    """How far from a cell's centre a point that maps to that cell can be (see module docstring)."""
    nesting = nesting_margin_m(res, cell_res) if cell_res > res else 0.0
    return cell_radius_m(fence, res) + nesting + GEOMETRY_MARGIN_M


def candidate_cells(fence: Fence, res: int, grow: float) -> U64:
    """Cells whose centre lies within `grow` metres of the fence (a superset: the grown shape is
    circumscribed, and one more centimetre absorbs H3's own float round-off)."""
    outer = transform_geometry_to_lonlat(fence.area_geometry_xy(pad_m=grow + 0.01, circumscribe=True), fence.origin)
    cells = h3.h3shape_to_cells(h3.geo_to_h3shape(shapely.geometry.mapping(outer)), res)
    return np.unique(np.asarray(cells, dtype=np.uint64))


def fence_cover(fence: Fence, res: int, cell_res: int | None = None) -> CoverEntries:
    """The cover of one fence as entries (see `CoverEntries`)."""
    cell_res = res if cell_res is None else cell_res
    if cell_res < res:
        raise ValueError(f"points' cell resolution {cell_res} is coarser than the cover resolution {res}")
    grow = grow_m(fence, res, cell_res)
    cells = candidate_cells(fence, res, grow)
    lon, lat = cell_centres(cells)
    x, y = to_xy_m(lon, lat, fence.origin)
    if fence.shape is ShapeKind.CORRIDOR:
        return _corridor_entries(fence, cells, x, y, grow)
    if fence.shape is ShapeKind.CIRCLE:
        d = np.hypot(x, y)  # the origin of a circle's frame is its centre
        inside, edge_m = d <= fence.radius_m, np.abs(d - fence.radius_m)
        test = TEST_CIRCLE
    else:
        g = fence.local_geometry
        shapely.prepare(g)
        inside = shapely.intersects_xy(g, x, y)
        edge_m = shapely.distance(transform_geometry_to_xy(fence.geometry.boundary, fence.origin), shapely.points(x, y))
        test = TEST_POLYGON
    interior = inside & (edge_m > grow)
    boundary = ~interior & (inside | (edge_m <= grow))
    keep = interior | boundary
    return CoverEntries(
        cells=cells[keep],
        test=np.where(interior, ACCEPT, test)[keep].astype(np.int8),
        seg=np.zeros(int(keep.sum()), np.int32),
    )


def _corridor_entries(fence: Fence, cells: U64, x: np.ndarray, y: np.ndarray, grow: float) -> CoverEntries:
    seg = corridor_segments(fence)
    hw = float(fence.half_width_m)
    out_cells, out_test, out_seg = [], [], []
    step = max(1, _CHUNK // max(1, len(seg)))
    for lo in range(0, cells.size, step):
        cx, cy = x[lo:lo + step, None], y[lo:lo + step, None]
        d = np.sqrt(segment_dist2(cx, cy, seg[None, :, 0], seg[None, :, 1], seg[None, :, 2], seg[None, :, 3]))
        interior = d.min(axis=1) < hw - grow
        near = (d <= hw + grow) & ~interior[:, None]
        ci, si = np.nonzero(near)
        c = cells[lo:lo + step]
        out_cells += [c[interior], c[ci]]
        out_test += [np.full(int(interior.sum()), ACCEPT, np.int8), np.full(ci.size, TEST_CAPSULE, np.int8)]
        out_seg += [np.zeros(int(interior.sum()), np.int32), si.astype(np.int32)]
    return CoverEntries(np.concatenate(out_cells), np.concatenate(out_test), np.concatenate(out_seg))


def cover(fence: Fence, res: int, cell_res: int | None = None) -> tuple[U64, U64]:
    """(interior, boundary): sorted unique cells at `res` wholly inside the fence / straddling its edge."""
    e = fence_cover(fence, res, cell_res)
    interior = np.unique(e.cells[e.test == ACCEPT])
    boundary = np.setdiff1d(e.cells[e.test != ACCEPT], interior)
    return interior, boundary
