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
point–segment distances instead of the whole polyline. Polygon boundary cells record the edges passing
within `grow` of their centre and whether the centre is inside: any edge crossing the short segment from
the centre to a point in the cell is among them, so the point is inside iff the centre is, XOR an odd
number of them cross (`_kernels.crosses`) — a point-in-polygon test that reads two or three edges instead of
the whole polygon. Circles are covered through their true radius.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt
import shapely

from geofences import _kernels as _k
from geofences._kernels import near_segments
from geofences.exact import corridor_segments, polygon_edges
from geofences.h3util import U64, cell_centres, nesting_margin_m
from geofences.kinds import ShapeKind
from geofences.local import dist_m, to_xy_m, transform_geometry_to_lonlat
from geofences.model import Fence

GEOMETRY_MARGIN_M = 0.05
"""Slack for H3 cell edges (great-circle arcs) versus straight lon/lat edges, and float round-off."""
RADIUS_SAFETY = 1.05
"""Cell sizes drift slowly across the grid; the radius measured at a fence's corners and centre is padded
by this."""

# What a point in a covered cell needs: nothing (interior), or an exact test (full polygon, circle, one
# corridor segment's capsule, or the local crossing-parity test against the polygon edges near the cell).
ACCEPT, TEST_POLYGON, TEST_CIRCLE = _k.ACCEPT, _k.TEST_POLYGON, _k.TEST_CIRCLE
TEST_CAPSULE, TEST_PARITY = _k.TEST_CAPSULE, _k.TEST_PARITY
CENTRE_CLEARANCE_M = 1e-6
"""A cell centre closer than this to a polygon edge cannot anchor the parity test."""


@dataclass(frozen=True)
class CoverEntries:
    """One row per (cell, test): interior cells once with ACCEPT; boundary cells with their exact test.

    `seg` is the segment number within the fence for TEST_CAPSULE (one row per segment passing near the
    cell) and the edge-list number for TEST_PARITY: list k holds the polygon edges passing near the
    cell (`list_edge[list_ptr[k]:list_ptr[k+1]]`, edge numbers of `exact.polygon_edges`), its centre in
    the fence's local frame and whether that centre is inside."""

    cells: U64
    test: npt.NDArray[np.int8]
    seg: npt.NDArray[np.int32]
    list_ptr: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, np.int64))
    list_edge: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    list_centre: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    list_inside: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))


def cell_radius_m(fence: Fence, res: int) -> float:
    """Upper bound (metres) of the circumradius of res cells over the fence's extent."""
    minx, miny, maxx, maxy = fence.geometry.bounds
    probes = ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy), fence.origin)
    return max(_tile_radius_m(round(lon, 1), round(lat, 1), res) for lon, lat in probes)


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
    circumscribed, and one more centimetre absorbs H3's own float round-off). Round parts get only 3
    segments per quarter turn: H3's fill costs time per vertex, a few extra candidates cost less."""
    grown = fence.area_geometry_xy(pad_m=grow + 0.01, circumscribe=True, quad_segs=3)
    outer = transform_geometry_to_lonlat(grown, fence.origin)
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
        interior = d < fence.radius_m - grow
        boundary = ~interior & (d <= fence.radius_m + grow)
        keep = interior | boundary
        return CoverEntries(cells[keep], np.where(interior, ACCEPT, TEST_CIRCLE)[keep].astype(np.int8),
                            np.zeros(int(keep.sum()), np.int32))
    return _polygon_entries(fence, cells, x, y, grow)


def _corridor_entries(fence: Fence, cells: U64, x: np.ndarray, y: np.ndarray, grow: float) -> CoverEntries:
    hw = float(fence.half_width_m)
    ci, sk, dmin = near_segments(x, y, corridor_segments(fence), hw + grow)
    interior = dmin < hw - grow  # wholly inside the capsule of the nearest segment
    edge = ~interior[ci]
    return CoverEntries(
        cells=np.concatenate([cells[interior], cells[ci[edge]]]),
        test=np.concatenate([np.full(int(interior.sum()), ACCEPT, np.int8), np.full(int(edge.sum()), TEST_CAPSULE, np.int8)]),
        seg=np.concatenate([np.zeros(int(interior.sum()), np.int32), sk[edge].astype(np.int32)]),
    )


def _polygon_entries(fence: Fence, cells: U64, x: np.ndarray, y: np.ndarray, grow: float) -> CoverEntries:
    g = fence.local_geometry
    shapely.prepare(g)
    inside = shapely.intersects_xy(g, x, y)
    ci, ek, dmin = near_segments(x, y, polygon_edges(fence), grow)
    interior = inside & (dmin > grow)
    boundary = ~interior & (inside | (dmin <= grow))
    # a centre (almost) on an edge cannot anchor the parity test: those cells take the full test
    parity = boundary & (dmin > CENTRE_CLEARANCE_M)
    full = boundary & ~parity
    pc = np.flatnonzero(parity)
    take = parity[ci]
    n_edges = np.bincount(ci[take], minlength=cells.size)[pc]
    n_int, n_full = int(interior.sum()), int(full.sum())
    return CoverEntries(
        cells=np.concatenate([cells[interior], cells[full], cells[pc]]),
        test=np.concatenate([np.full(n_int, ACCEPT, np.int8), np.full(n_full, TEST_POLYGON, np.int8),
                             np.full(pc.size, TEST_PARITY, np.int8)]),
        seg=np.concatenate([np.zeros(n_int + n_full, np.int32), np.arange(pc.size, dtype=np.int32)]),
        list_ptr=np.concatenate([[0], np.cumsum(n_edges)]).astype(np.int64),
        list_edge=ek[take].astype(np.int32),  # ci is sorted, so edges come grouped by cell in pc order
        list_centre=np.column_stack([x[pc], y[pc]]),
        list_inside=inside[pc],
    )


def cover(fence: Fence, res: int, cell_res: int | None = None) -> tuple[U64, U64]:
    """(interior, boundary): sorted unique cells at `res` wholly inside the fence / straddling its edge."""
    e = fence_cover(fence, res, cell_res)
    interior = np.unique(e.cells[e.test == ACCEPT])
    boundary = np.setdiff1d(e.cells[e.test != ACCEPT], interior)
    return interior, boundary
