"""Exact membership and distances for (point, fence) pairs, vectorised across many fences.

What "inside" and "distance" mean (see `geofences.model`), for `Fence.contains`, `Fence.distance_m`,
`FenceIndex.distance_m` and the index's fallback test. Pairs are grouped by shape, never looped per fence:

* polygons: `shapely.intersects_xy` on prepared lon/lat geometries (boundary counts as inside);
* circles: squared distance in the fence's local metric frame, pure numpy;
* corridors: the union of one *capsule* per polyline segment (points within `half_width_m` of that
  segment), tested with point–segment distances in the fence's local frame.

The index's compiled hot path (`geofences._kernels`) answers the same questions with local shortcuts
(the segment or edges near each H3 cell); the property tests hold both to brute-force shapely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from geofences._kernels import capsule_any_pairs, line_dist_pairs, seg_dist2_pairs
from geofences.kinds import ShapeKind
from geofences.local import M_PER_DEG_LAT, project_pairs, transform_geometry_to_xy, xy_scale
from geofences.model import Fence

SHAPE_CODES = {ShapeKind.POLYGON: 0, ShapeKind.CIRCLE: 1, ShapeKind.CORRIDOR: 2}

F64 = npt.NDArray[np.float64]


def polygon_edges(fence: Fence) -> npt.NDArray[np.float64]:
    """(m, 4) array of every ring edge (ax, ay, bx, by) of a (multi)polygon in its local frame."""
    rings = shapely.get_rings(shapely.get_parts(fence.local_geometry))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


def corridor_segments(fence: Fence) -> npt.NDArray[np.float64]:
    """(k, 4) array of the corridor's segments (ax, ay, bx, by) in its local frame, repeated points dropped."""
    c = shapely.get_coordinates(shapely.remove_repeated_points(fence.local_geometry))
    return np.column_stack([c[:-1], c[1:]])


@dataclass(frozen=True)
class ExactShapes:
    shape_code: npt.NDArray[np.int8]
    lon0: F64  # local frame origin per fence
    lat0: F64
    kx: F64  # metres per degree of longitude at the origin
    size_m: F64  # radius (circle) or half-width (corridor); 0 for polygons
    geoms_lonlat: npt.NDArray[np.object_]  # prepared polygons (None for other shapes)
    lines_xy: npt.NDArray[np.object_]  # polygon boundary or corridor line in local metres; None for circles
    seg_ptr: npt.NDArray[np.int64]  # CSR: segments of fence f are seg[seg_ptr[f]:seg_ptr[f+1]]
    seg: F64  # (n_segments, 4): ax, ay, bx, by in the owning fence's local frame

    @classmethod
    def of(cls, fences: Sequence[Fence]) -> ExactShapes:
        code = np.array([SHAPE_CODES[f.shape] for f in fences], np.int8)
        geoms = np.array([f.geometry if f.shape is ShapeKind.POLYGON else None for f in fences], dtype=object)
        shapely.prepare(geoms)
        lines = np.empty(len(fences), dtype=object)
        segs = []
        none = np.zeros((0, 4))
        for i, f in enumerate(fences):
            if f.shape is ShapeKind.POLYGON:
                lines[i] = transform_geometry_to_xy(f.geometry.boundary, f.origin)
            elif f.shape is ShapeKind.CORRIDOR:
                lines[i] = f.local_geometry
            segs.append(corridor_segments(f) if f.shape is ShapeKind.CORRIDOR else none)
        size = [f.radius_m if f.shape is ShapeKind.CIRCLE else f.half_width_m or 0.0 for f in fences]
        lat0 = np.array([f.origin.lat for f in fences], np.float64)
        return cls(
            shape_code=code,
            lon0=np.array([f.origin.lon for f in fences], np.float64),
            lat0=lat0,
            kx=xy_scale(lat0)[0],
            size_m=np.array(size, np.float64),
            geoms_lonlat=geoms,
            lines_xy=lines,
            seg_ptr=np.concatenate([[0], np.cumsum([len(s) for s in segs])]).astype(np.int64),
            seg=np.concatenate(segs) if segs else none,
        )

    def local_xy(self, lon: F64, lat: F64, fidx: npt.NDArray[np.integer]) -> tuple[F64, F64]:
        """Points in the local metric frame of the fence each is paired with."""
        dlon = (lon - self.lon0[fidx] + 180.0) % 360.0 - 180.0
        return dlon * self.kx[fidx], (lat - self.lat0[fidx]) * M_PER_DEG_LAT

    # --- membership -----------------------------------------------------------------------------------

    def contains_polygon(self, lon: F64, lat: F64, fidx: np.ndarray) -> npt.NDArray[np.bool_]:
        return shapely.intersects_xy(self.geoms_lonlat[fidx], lon, lat)

    def contains_circle(self, lon: F64, lat: F64, fidx: np.ndarray) -> npt.NDArray[np.bool_]:
        x, y = self.local_xy(lon, lat, fidx)
        return x * x + y * y <= self.size_m[fidx] ** 2

    def contains_capsule(self, lon: F64, lat: F64, fidx: np.ndarray, seg: np.ndarray) -> npt.NDArray[np.bool_]:
        """Is each point within the half-width of segment `seg[i]` (global segment index) of its corridor?"""
        x, y = self.local_xy(lon, lat, fidx)
        return seg_dist2_pairs(x, y, self.seg, np.asarray(seg, np.int64)) <= self.size_m[fidx] ** 2

    def contains(self, lon: npt.ArrayLike, lat: npt.ArrayLike, fence_idx: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """For each pair i: is point (lon[i], lat[i]) inside fence `fence_idx[i]`?"""
        lon = np.atleast_1d(np.asarray(lon, np.float64))
        lat = np.atleast_1d(np.asarray(lat, np.float64))
        fidx = np.broadcast_to(np.asarray(fence_idx), lon.shape)
        out = np.zeros(lon.shape, bool)
        code = self.shape_code[fidx]
        for c, test in ((0, self.contains_polygon), (1, self.contains_circle)):
            sel = np.flatnonzero(code == c)
            if sel.size:
                out[sel] = test(lon[sel], lat[sel], fidx[sel])
        sel = np.flatnonzero(code == 2)
        if sel.size:  # any segment of the corridor (its capsules' union), one compiled loop per pair
            f = fidx[sel]
            x, y = self.local_xy(lon[sel], lat[sel], f)
            out[sel] = capsule_any_pairs(x, y, np.asarray(f, np.int64), self.seg_ptr, self.seg,
                                         self.size_m[f] ** 2)
        return out

    # --- distances ------------------------------------------------------------------------------------

    def distance_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike, fence_idx: npt.ArrayLike) -> F64:
        """For each pair i: metres from the point to the boundary (polygon, circle) or centre line (corridor)."""
        lon = np.atleast_1d(np.asarray(lon, np.float64))
        lat = np.atleast_1d(np.asarray(lat, np.float64))
        fidx = np.broadcast_to(np.asarray(fence_idx), lon.shape)
        x, y = self.local_xy(lon, lat, fidx)
        out = np.empty(lon.shape, np.float64)
        circ = self.shape_code[fidx] == 1
        out[circ] = np.abs(np.hypot(x[circ], y[circ]) - self.size_m[fidx[circ]])
        sel = np.flatnonzero(~circ)
        if sel.size:
            seg_ptr, seg = self._line_segments()
            f = fidx[sel]
            ok = seg_ptr[f + 1] > seg_ptr[f]  # an empty line (none in practice) goes to shapely
            if ok.all():
                out[sel] = line_dist_pairs(x[sel], y[sel], np.asarray(f, np.int64), seg_ptr, seg)
            else:
                out[sel] = shapely.distance(self.lines_xy[f], shapely.points(x[sel], y[sel]))
        return out

    def _line_segments(self) -> tuple[npt.NDArray[np.int64], F64]:
        """`lines_xy` as segments (CSR per fence, rows ax, ay, bx, by; every part's consecutive vertices,
        repeated points kept), for the compiled distance that matches shapely's (`line_dist_pairs`)."""
        got = self.__dict__.get("_line_seg")
        if got is None:  # all fences at once, as `polygon_edges` takes a polygon's rings
            n = len(self.lines_xy)
            has = np.flatnonzero([g is not None for g in self.lines_xy])
            parts, fence = shapely.get_parts(self.lines_xy[has], return_index=True)
            coords, part = shapely.get_coordinates(parts, return_index=True)
            same = part[1:] == part[:-1]  # consecutive vertices of one part
            seg = np.ascontiguousarray(np.column_stack([coords[:-1][same], coords[1:][same]]))
            counts = np.bincount(has[fence[part[1:][same]]], minlength=n)
            seg_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            got = self.__dict__["_line_seg"] = (seg_ptr, seg)
        return got


def corridor_offsets_m(fence: Fence, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[F64, F64]:
    """(signed offset, along-route position) in metres of points relative to a corridor's polyline.

    The offset is the distance to the centre line, positive left of the direction of travel (the order of
    the line's vertices), negative right; `along_m` is the distance along the route to the nearest point,
    which tells how far a vehicle has progressed on its permitted route.
    """
    if fence.shape is not ShapeKind.CORRIDOR:
        raise ValueError(f"fence {fence.id} is a {fence.shape.value}, not a corridor")
    line = shapely.remove_repeated_points(fence.local_geometry)  # every segment then has a direction
    coords = shapely.get_coordinates(line)
    x, y = project_pairs(np.atleast_1d(lon), np.atleast_1d(lat), fence.origin.lon, fence.origin.lat)
    pts = shapely.points(x, y)
    dist = shapely.distance(line, pts)
    along = shapely.line_locate_point(line, pts)
    seg_len = np.hypot(*np.diff(coords, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    seg = np.clip(np.searchsorted(cum, along, side="right") - 1, 0, len(seg_len) - 1)
    nearest = shapely.get_coordinates(shapely.line_interpolate_point(line, along))
    d = coords[seg + 1] - coords[seg]
    cross = d[:, 0] * (y - nearest[:, 1]) - d[:, 1] * (x - nearest[:, 0])
    return np.where(cross < 0, -dist, dist), along
