"""`Fence`: one reference place (site, zone, collection point, permitted route), in WGS-84.

A fence is a value: frozen, compared by content. Three shapes, each with an exact meaning that every part
of the library (index, distances, cover) agrees on:

* polygon — the (multi)polygon itself, holes excluded, straight edges in lon/lat, boundary counts as inside;
* circle — every point within `radius_m` of the centre (`geometry` is the centre Point);
* corridor — every point within `half_width_m` of the polyline (`geometry` is the LineString).

Metres are measured in the fence's local projection (`geofences.local`, around `Fence.origin`), so a
circle stays a circle and a corridor keeps its width: shapes are never buffered in degrees.

Time: `valid_from`/`valid_to` are inclusive local dates; `windows` are local minutes-of-day
`[start, end)`; a window with start > end crosses midnight (22:00–06:00 = (1320, 360)). The part after
midnight belongs to the *shift that started the evening before*, so a permit valid until 30 June with a
22:00–06:00 window still covers 1 July 02:00, and one valid from 1 July does not (its first night starts
1 July 22:00). No windows means active all day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geofences.kinds import FenceKind, ShapeKind
from geofences.local import Origin, transform_geometry_to_lonlat, transform_geometry_to_xy

QUAD_SEGS = 16
"""Segments per quarter circle when a circle/corridor is turned into a polygon (`area_geometry`)."""

_EPOCH = date(1970, 1, 1)
_DAY_MS = 86_400_000
_NO_DAY_LO = np.iinfo(np.int64).min // 4
_NO_DAY_HI = np.iinfo(np.int64).max // 4
_GEOM_TYPES: dict[ShapeKind, tuple[str, ...]] = {
    ShapeKind.POLYGON: ("Polygon", "MultiPolygon"),
    ShapeKind.CIRCLE: ("Point",),
    ShapeKind.CORRIDOR: ("LineString",),
}


def _positive(value: float | None) -> bool:
    return value is not None and bool(np.isfinite(value)) and value > 0


@dataclass(frozen=True)
class Fence:
    """One reference place. Construction checks the invariants and raises `ValueError` with the reason."""

    id: str
    name: str
    kind: FenceKind
    shape: ShapeKind
    geometry: BaseGeometry
    radius_m: float | None = None
    half_width_m: float | None = None
    company: str | None = None
    district: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    windows: tuple[tuple[int, int], ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FenceKind(self.kind))
        object.__setattr__(self, "shape", ShapeKind(self.shape))
        object.__setattr__(self, "windows", tuple((int(a), int(b)) for a, b in self.windows))
        object.__setattr__(self, "tags", dict(self.tags))
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        if not self.id:
            return "empty id"
        g = self.geometry
        if g is None or g.is_empty:
            return "empty geometry"
        if g.geom_type not in _GEOM_TYPES[self.shape]:
            return f"shape {self.shape.value!r} needs {' or '.join(_GEOM_TYPES[self.shape])}, got {g.geom_type}"
        if not np.isfinite(shapely.get_coordinates(g)).all():
            return "non-finite coordinate"
        if self.shape is ShapeKind.CIRCLE and not _positive(self.radius_m):
            return f"circle radius_m must be > 0 (got {self.radius_m})"
        if self.shape is ShapeKind.CORRIDOR:
            if not _positive(self.half_width_m):
                return f"corridor half_width_m must be > 0 (got {self.half_width_m})"
            if g.length == 0:
                return "corridor polyline has zero length"
        if self.shape is ShapeKind.POLYGON:
            if not g.is_valid:
                return f"invalid polygon: {shapely.is_valid_reason(g)}"
            if g.area == 0:
                return "polygon has zero area"
        for start, end in self.windows:
            if not (0 <= start < 1440 and 0 < end <= 1440) or start == end:
                return f"bad time window ({start}, {end}): minutes-of-day, start != end"
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            return f"valid_from {self.valid_from} is after valid_to {self.valid_to}"
        return None

    def __hash__(self) -> int:
        return hash((self.id, self.version))

    # --- geometry -------------------------------------------------------------------------------------

    @cached_property
    def origin(self) -> Origin:
        """Reference point of this fence's local metric projection (centre for circles, else bbox centre)."""
        if self.shape is ShapeKind.CIRCLE:
            return Origin(self.geometry.x, self.geometry.y)
        minx, miny, maxx, maxy = self.geometry.bounds
        return Origin((minx + maxx) / 2.0, (miny + maxy) / 2.0)

    @cached_property
    def local_geometry(self) -> BaseGeometry:
        """`geometry` in metres around `origin` (the centre Point for circles, the line for corridors)."""
        return transform_geometry_to_xy(self.geometry, self.origin)

    def area_geometry_xy(self, pad_m: float = 0.0, circumscribe: bool = False, quad_segs: int = QUAD_SEGS) -> BaseGeometry:
        """The covered area in local metres, optionally grown (pad_m > 0) or shrunk (pad_m < 0).

        Circles and corridors become polygons with `quad_segs` segments per quarter turn, whose vertices
        lie on the true arc (inscribed). `circumscribe=True` pushes the arcs out so the polygon contains
        the true round shape: the H3 cover needs a superset (and prefers few vertices), and being generous
        there only costs an exact test, while missing a sliver would lose fixes.
        """
        g = self.local_geometry
        if self.shape is ShapeKind.POLYGON:
            if pad_m == 0.0:
                return g
            # Mitre joins keep the vertex count; outward they contain the round buffer, inward they are
            # contained in it, so the padded shape errs in the direction asked for.
            return shapely.buffer(g, pad_m, join_style="mitre", mitre_limit=10.0)
        size = float(self.radius_m if self.shape is ShapeKind.CIRCLE else self.half_width_m) + pad_m
        if size <= 0:
            return shapely.Polygon()
        if circumscribe:
            size /= np.cos(np.pi / (4 * quad_segs))
        return shapely.buffer(g, size, quad_segs=quad_segs)

    @cached_property
    def _area_geometry(self) -> BaseGeometry:
        if self.shape is ShapeKind.POLYGON:
            return self.geometry
        return transform_geometry_to_lonlat(self.area_geometry_xy(), self.origin)

    def area_geometry(self) -> BaseGeometry:
        """The polygon actually covered, in WGS-84 (circles/corridors built in metres, then mapped back)."""
        return self._area_geometry

    def contains(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Exact membership of points (vectorised), with the meaning given in the module docstring."""
        from geofences.exact import ExactShapes

        lon = np.asarray(lon, dtype=np.float64)
        return ExactShapes.of([self]).contains(lon, lat, np.zeros(lon.shape, dtype=np.int32))

    def distance_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Distance in metres to the boundary (polygon, circle) or the centre line (corridor)."""
        from geofences.exact import ExactShapes

        lon = np.asarray(lon, dtype=np.float64)
        return ExactShapes.of([self]).distance_m(lon, lat, np.zeros(lon.shape, dtype=np.int32))

    # --- time -----------------------------------------------------------------------------------------

    def active_at(self, ts_utc: datetime, tz: str = "Asia/Shanghai") -> bool:
        """Is the fence in effect at this instant (validity dates and daily windows, local time `tz`)?"""
        if ts_utc.tzinfo is None:
            ts_utc = ts_utc.replace(tzinfo=timezone.utc)
        local = ts_utc.astimezone(ZoneInfo(tz))
        day = (local.date() - _EPOCH).days
        minute = local.hour * 60 + local.minute
        return bool(ActivityTable.of([self]).mask_local(np.array([day]), np.array([minute]), np.zeros(1, np.int32))[0])

    def active_mask(self, ts_ms: npt.ArrayLike, tz_offset_min: int = 480) -> npt.NDArray[np.bool_]:
        """Vectorised `active_at` over UTC epoch milliseconds, for a fixed UTC offset (China: +480)."""
        ts_ms = np.asarray(ts_ms, dtype=np.int64)
        return ActivityTable.of([self]).mask(ts_ms, np.zeros(ts_ms.shape, np.int32), tz_offset_min)


def epoch_day(d: date | None, default: int) -> int:
    return default if d is None else (d - _EPOCH).days


@dataclass(frozen=True)
class ActivityTable:
    """Validity dates and daily windows of many fences as arrays, to ask "active?" for (time, fence) pairs
    without a Python loop: what the tracker does per fix."""

    valid_from_day: npt.NDArray[np.int64]  # epoch days; very small when open-ended
    valid_to_day: npt.NDArray[np.int64]
    win_start: npt.NDArray[np.int16]  # (n_fences, max_windows); padding is start = end = -1
    win_end: npt.NDArray[np.int16]
    always: npt.NDArray[np.bool_]  # no windows: all day

    @classmethod
    def of(cls, fences: Sequence[Fence]) -> ActivityTable:
        n = len(fences)
        width = max([len(f.windows) for f in fences] + [1])
        start = np.full((n, width), -1, np.int16)
        end = np.full((n, width), -1, np.int16)
        for i, f in enumerate(fences):
            for j, (a, b) in enumerate(f.windows):
                start[i, j], end[i, j] = a, b
        return cls(
            valid_from_day=np.array([epoch_day(f.valid_from, _NO_DAY_LO) for f in fences], np.int64),
            valid_to_day=np.array([epoch_day(f.valid_to, _NO_DAY_HI) for f in fences], np.int64),
            win_start=start,
            win_end=end,
            always=np.array([not f.windows for f in fences], bool),
        )

    def mask(self, ts_ms: npt.ArrayLike, fence_idx: npt.ArrayLike, tz_offset_min: int = 480) -> npt.NDArray[np.bool_]:
        """For each pair i: is fence `fence_idx[i]` active at UTC epoch-ms `ts_ms[i]`?"""
        local_ms = np.asarray(ts_ms, dtype=np.int64) + np.int64(tz_offset_min) * 60_000
        day = local_ms // _DAY_MS
        minute = (local_ms - day * _DAY_MS) // 60_000
        return self.mask_local(day, minute, np.asarray(fence_idx))

    def mask_local(self, day: np.ndarray, minute: np.ndarray, fence_idx: np.ndarray) -> npt.NDArray[np.bool_]:
        vf = self.valid_from_day[fence_idx]
        vt = self.valid_to_day[fence_idx]
        active = self.always[fence_idx] & (day >= vf) & (day <= vt)
        for j in range(self.win_start.shape[1]):
            s = self.win_start[fence_idx, j].astype(np.int64)
            e = self.win_end[fence_idx, j].astype(np.int64)
            crossing = s > e
            inside = np.where(crossing, (minute >= s) | (minute < e), (minute >= s) & (minute < e)) & (s >= 0)
            shift_day = day - (crossing & (minute < e))  # after midnight: the shift began yesterday
            active |= inside & (shift_day >= vf) & (shift_day <= vt)
        return active
