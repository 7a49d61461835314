"""`World`: the reference data the rules need, compiled once into arrays.

Rules run over batches of fixes as numpy arrays, so everything they look up per fix must be an array indexed
by a small integer: vehicles become `vidx` (0..n-1) with kind and company codes; fences become positions in
the `FenceIndex`, with kind codes, versions and activity tables; permits and delivery orders become rows
with their fence positions, validity days and window tables, and each vehicle points at its documents
through a CSR list (`veh_doc_ptr` / `veh_doc_idx`).

A World is immutable reference data, except that vehicles never seen in the register are added on the fly
(kind "unknown"): fixes from an unregistered terminal must still be tracked (signal loss, jumps, restricted
zones) rather than dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np
import numpy.typing as npt
import polars as pl

from tracker.config import Settings
from tracker.reference import DeliveryOrder, Permit, Vehicle
from tracker.vocab import FenceKind, VehicleKind
from tracker.windows import window_tables

if TYPE_CHECKING:  # geofences is imported lazily so the tracker works (without zones) before fences exist
    from geofences.model import Fence

#: Vehicle kinds as small ints; UNKNOWN_KIND for terminals missing from the register.
KINDS: tuple[str, ...] = tuple(k.value for k in VehicleKind) + ("unknown",)
KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
UNKNOWN_KIND = KIND_CODE["unknown"]

FENCE_KINDS: tuple[str, ...] = tuple(k.value for k in FenceKind)
FENCE_KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(FENCE_KINDS)}

DOC_PERMIT = 0
DOC_ORDER = 1


def kind_code(kind: str) -> int:
    return KIND_CODE.get(str(kind), UNKNOWN_KIND)


@dataclass
class Docs:
    """Permits and delivery orders as arrays (one row per document).

    For a permit, `origin` is the construction site and `dest` the disposal site; for an order, the plant
    and the construction site. `route` is the corridor fence (−1 when none)."""

    ids: list[str]
    doc_type: npt.NDArray[np.int8]  # DOC_PERMIT / DOC_ORDER
    version: npt.NDArray[np.int32]
    origin: npt.NDArray[np.int32]  # fence positions, −1 when the fence is unknown
    dest: npt.NDArray[np.int32]
    route: npt.NDArray[np.int32]
    valid_from_day: npt.NDArray[np.int32]  # local epoch days, inclusive
    valid_to_day: npt.NDArray[np.int32]
    windows: npt.NDArray[np.bool_]  # (n_docs, 1440) local minute table
    has_windows: npt.NDArray[np.bool_]
    morning_end: npt.NDArray[np.int16]  # a window crossing midnight: minutes before this belong to yesterday


@dataclass
class World:
    settings: Settings
    fences: list[Fence]
    fence_index: Any  # geofences.index.FenceIndex | None
    fence_ids: list[str]
    fence_pos: dict[str, int]
    fence_kind: npt.NDArray[np.int8]
    fence_version: npt.NDArray[np.int32]
    hit_mask: npt.NDArray[np.bool_]  # fences `Batch.hits` locates (route corridors are checked per permit)
    fence_speed_limit_kmh: npt.NDArray[np.float64]  # from tag "speed_limit_kmh"; NaN when absent
    fence_activity: Any  # geofences.model.ActivityTable | None
    vehicles: list[Vehicle]
    vehicle_ids: list[str]
    vidx_of: dict[str, int]
    vehicle_kind: npt.NDArray[np.int8]
    vehicle_company: npt.NDArray[np.int32]
    vehicle_sensors: npt.NDArray[np.uint8]  # bit set of declared sensors (SENSOR_BITS); 0 = not declared
    companies: list[str]
    docs: Docs
    veh_doc_ptr: npt.NDArray[np.int64]  # CSR over registered vehicles: docs of vehicle v are
    veh_doc_idx: npt.NDArray[np.int32]  # veh_doc_idx[veh_doc_ptr[v]:veh_doc_ptr[v+1]], permits first
    plans: Any = None
    _id_frame: pl.DataFrame | None = field(default=None, repr=False)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def build(cls, *, fences: Sequence[Fence], vehicles: Sequence[Vehicle], permits: Sequence[Permit],
              orders: Sequence[DeliveryOrder], settings: Settings, plans: Any = None,
              fence_index: Any = None) -> World:
        """Compile reference data. `fence_index`: a `FenceIndex` already built over exactly `fences` (building
        one over thousands of fences takes a while; reuse it when only vehicles or permits changed)."""
        fences = list(fences)
        activity = None
        if fences:
            from geofences.index import FenceIndex
            from geofences.model import ActivityTable

            if fence_index is None or [f.id for f in fence_index.fences] != [f.id for f in fences]:
                fence_index = FenceIndex.build(fences, settings.h3.fence_res, settings.h3.fix_res)
            activity = ActivityTable.of(fences)
        else:
            fence_index = None
        fence_ids = [f.id for f in fences]
        fence_pos = {fid: i for i, fid in enumerate(fence_ids)}
        fence_kind = np.array([FENCE_KIND_CODE[str(f.kind)] for f in fences], dtype=np.int8)
        fence_version = np.array([int(f.version) for f in fences], dtype=np.int32)
        limits = np.full(len(fences), np.nan)
        # fences every batch locates fixes in: all but route corridors (a route matters only to the vehicles
        # on that permit, checked pair-wise; downtown, dozens of corridors overlap every fix)
        hit_mask = np.array([str(f.kind) != "route" or bool({"speed_limit_kmh", "road_class"} & set(f.tags or {}))
                             for f in fences], dtype=bool)
        for i, f in enumerate(fences):
            raw = (f.tags or {}).get("speed_limit_kmh")
            if raw not in (None, ""):
                try:
                    limits[i] = float(raw)
                except ValueError:
                    pass

        vehicles = list(vehicles)
        vehicle_ids = [v.id for v in vehicles]
        vidx_of = {vid: i for i, vid in enumerate(vehicle_ids)}
        companies = sorted({v.company for v in vehicles if v.company})
        company_code = {c: i for i, c in enumerate(companies)}
        vehicle_kind = np.array([kind_code(v.kind) for v in vehicles], dtype=np.int8)
        vehicle_company = np.array([company_code.get(v.company, -1) for v in vehicles], dtype=np.int32)
        vehicle_sensors = np.array([sensor_bits(v.sensors) for v in vehicles], dtype=np.uint8)

        docs, veh_ptr, veh_idx = _compile_docs(list(permits), list(orders), fence_pos, vidx_of, settings)
        return cls(settings=settings, fences=fences, fence_index=fence_index, fence_ids=fence_ids,
                   fence_pos=fence_pos, fence_kind=fence_kind, fence_version=fence_version, hit_mask=hit_mask,
                   fence_speed_limit_kmh=limits, fence_activity=activity, vehicles=vehicles,
                   vehicle_ids=vehicle_ids, vidx_of=vidx_of, vehicle_kind=vehicle_kind,
                   vehicle_company=vehicle_company, vehicle_sensors=vehicle_sensors, companies=companies,
                   docs=docs, veh_doc_ptr=veh_ptr, veh_doc_idx=veh_idx, plans=plans)

    # -- vehicles ---------------------------------------------------------------------------------------
    @property
    def n_vehicles(self) -> int:
        return len(self.vehicle_ids)

    def vidx(self, vehicle_ids: pl.Series) -> npt.NDArray[np.int32]:
        """Vehicle ids → small ints, registering unknown vehicles (kind "unknown") on the way."""
        ids = vehicle_ids.cast(pl.String)
        if ids.len() <= 4096 and not ids.null_count():  # small batches: a dict beats a join's fixed cost
            get = self.vidx_of.get
            out = [get(x) for x in ids.to_list()]
            if None not in out:
                return np.fromiter(out, np.int32, len(out))
        if len(self.vidx_of) == len(self.vehicle_ids):  # ids as an Enum of the register: its codes are vidx
            enum = self.__dict__.get("_id_enum")
            if enum is None or len(enum.categories) != len(self.vehicle_ids):
                enum = self.__dict__["_id_enum"] = pl.Enum(self.vehicle_ids)
            codes = ids.cast(enum, strict=False)
            if codes.null_count() == ids.null_count() == 0:
                return codes.to_physical().to_numpy().astype(np.int32, copy=False)
        if self._id_frame is None or self._id_frame.height != len(self.vehicle_ids):
            self._id_frame = pl.DataFrame({"vehicle_id": self.vehicle_ids,
                                           "vidx": np.arange(len(self.vehicle_ids), dtype=np.int32)},
                                          schema={"vehicle_id": pl.String, "vidx": pl.Int32})
        joined = pl.DataFrame({"vehicle_id": ids}).join(self._id_frame, on="vehicle_id", how="left",
                                                         maintain_order="left")
        vidx = joined.get_column("vidx")
        if vidx.null_count():
            unknown = joined.filter(pl.col("vidx").is_null()).get_column("vehicle_id").unique(maintain_order=True)
            self.register_unknown(unknown.to_list())
            return self.vidx(vehicle_ids)
        return vidx.to_numpy().astype(np.int32, copy=False)

    def register_unknown(self, vehicle_ids: Sequence[str]) -> None:
        new = [v for v in vehicle_ids if v not in self.vidx_of]
        if not new:
            return
        for vid in new:
            self.vidx_of[vid] = len(self.vehicle_ids)
            self.vehicle_ids.append(vid)
        k = len(new)
        self.vehicle_kind = np.concatenate([self.vehicle_kind, np.full(k, UNKNOWN_KIND, np.int8)])
        self.vehicle_company = np.concatenate([self.vehicle_company, np.full(k, -1, np.int32)])
        self.vehicle_sensors = np.concatenate([self.vehicle_sensors, np.zeros(k, np.uint8)])
        self.veh_doc_ptr = np.concatenate([self.veh_doc_ptr, np.full(k, self.veh_doc_ptr[-1], np.int64)])
        self._id_frame = None

    # -- fences -----------------------------------------------------------------------------------------
    def kind_set_mask(self, kinds: tuple[str, ...]) -> npt.NDArray[np.bool_]:
        """Cached `fence_kind_mask` (rules ask for the same few kind sets on every batch)."""
        cache = self.__dict__.setdefault("_kind_masks", {})
        got = cache.get(kinds)
        if got is None:
            got = cache[kinds] = self.fence_kind_mask(kinds)
        return got

    def fence_kind_mask(self, kinds: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Boolean over fence positions: is the fence one of `kinds`?"""
        codes = [FENCE_KIND_CODE[str(k)] for k in kinds]
        return np.isin(self.fence_kind, np.array(codes, dtype=np.int8))

    def fence_ref(self, pos: int) -> dict[str, Any]:
        """Evidence reference to a fence: id, kind and version (alerts must say which version fired)."""
        if pos < 0:
            return {}
        return {"id": self.fence_ids[pos], "kind": FENCE_KINDS[self.fence_kind[pos]],
                "version": int(self.fence_version[pos])}

    def doc_ref(self, d: int) -> dict[str, Any]:
        if d < 0:
            return {}
        docs = self.docs
        ref: dict[str, Any] = {"id": docs.ids[d], "type": "permit" if docs.doc_type[d] == DOC_PERMIT else "order",
                               "version": int(docs.version[d])}
        for name, arr in (("origin", docs.origin), ("dest", docs.dest), ("route", docs.route)):
            if arr[d] >= 0:
                ref[name] = self.fence_ref(int(arr[d]))
        return ref

    def nearest_of_kinds(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], kinds: Sequence[str],
                         within_m: float) -> npt.NDArray[np.int32]:
        """Per point outside them: the nearest fence of one of `kinds` within `within_m` metres of its edge, or
        −1 (e.g. the disposal site a truck reappears next to after a data gap). Candidates as `near_kinds`."""
        out = np.full(lon.shape[0], -1, np.int32)
        got = self._kind_candidates(lon, lat, kinds, within_m)
        if got is None:
            return out
        pi, fence, _, _ = got
        d = self.fence_index.distance_m(lon[pi], lat[pi], fence)
        keep = d <= within_m
        pi, fence, d = pi[keep], fence[keep], d[keep]
        order = np.lexsort((fence, d, pi))  # per point: the nearest, then the lowest position
        first = np.ones(order.size, bool)
        first[1:] = pi[order][1:] != pi[order][:-1]
        out[pi[order][first]] = fence[order][first]
        return out

    def near_kinds(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], kinds: Sequence[str],
                   within_m: float) -> npt.NDArray[np.bool_]:
        """Per point: within `within_m` metres of (or inside) a fence of one of `kinds` — e.g. a truck queueing
        at a site gate. A k-d tree over fence origins finds candidates; `FenceIndex.distance_m` decides."""
        out = np.zeros(lon.shape[0], np.bool_)
        got = self._kind_candidates(lon, lat, kinds, within_m)
        if got is None:
            return out
        pi, fence, dist, inner = got
        sure = dist <= within_m + inner  # inside the fence's inscribed disc + margin: certainly near
        out[pi[sure]] = True
        maybe = ~sure & ~out[pi]  # else decided exactly below
        pi, fence = pi[maybe], fence[maybe]
        if pi.size == 0:
            return out
        d = self.fence_index.distance_m(lon[pi], lat[pi], fence)
        out[pi[d <= within_m]] = True
        return out

    def _kind_candidates(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], kinds: Sequence[str],
                         within_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(point, fence position, distance to the fence's origin, origin → nearest edge when the origin is
        inside) for every pair that may lie within `within_m` of the fence: the fences of `kinds` whose origin
        is within `within_m` + the fence's reach of the point (a uniform grid over the origins, cached per
        kinds and distance, finds them). None: no pairs."""
        if lon.shape[0] == 0 or self.fence_index is None:
            return None
        key = tuple(sorted(str(k) for k in kinds))
        cache = self.__dict__.setdefault("_near_cache", {})
        got = cache.get(key)
        if got is None:
            from geofences.local import dist_m, to_xy_m

            sel = np.flatnonzero(self.fence_kind_mask(key))
            origin = (float(np.mean(self.settings.city.bbox[0::2])), float(np.mean(self.settings.city.bbox[1::2])))
            olon = np.array([self.fences[f].origin.lon for f in sel])
            olat = np.array([self.fences[f].origin.lat for f in sel])
            reach = np.zeros(sel.size)  # origin → farthest point of the fence (bbox corner: an upper bound)
            inner = np.zeros(sel.size)  # origin → nearest boundary point when the origin is inside (lower bound)
            for j, f in enumerate(sel.tolist()):
                fence = self.fences[f]
                minx, miny, maxx, maxy = fence.area_geometry().bounds
                corners = dist_m(olon[j], olat[j], np.array([minx, maxx, minx, maxx]), np.array([miny, miny, maxy, maxy]))
                reach[j] = float(corners.max())
                if str(fence.shape) != "corridor" and bool(fence.contains(olon[j:j + 1], olat[j:j + 1])[0]):
                    inner[j] = float(fence.distance_m(olon[j:j + 1], olat[j:j + 1])[0])
            x, y = to_xy_m(olon, olat, origin)
            got = (np.column_stack([x, y]) if sel.size else None, sel, reach, inner, origin, {})
            cache[key] = got
        oxy, sel, reach, inner, origin, grids = got
        if oxy is None:
            return None
        from geofences.local import to_xy_m

        grid = grids.get(within_m)
        if grid is None:
            grid = grids[within_m] = _OriginGrid.build(oxy, within_m + reach)
        x, y = to_xy_m(lon, lat, origin)
        pi, fj, dist = _grid_pairs(x, y, float(within_m), reach, oxy[:, 0], oxy[:, 1], grid.x0, grid.y0,
                                   grid.cell_m, grid.nx, grid.ny, grid.ptr, grid.idx)
        return pi, sel[fj], dist, inner[fj]

    # -- documents --------------------------------------------------------------------------------------
    def doc_count(self, vidx: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        reg = vidx < self.veh_doc_ptr.shape[0] - 1
        out = np.zeros(vidx.shape[0], np.int64)
        out[reg] = self.veh_doc_ptr[vidx[reg] + 1] - self.veh_doc_ptr[vidx[reg]]
        return out

    def is_doc_fence(self, vidx: npt.NDArray[np.int32], fence: npt.NDArray[np.int32], which: str = "origin"
                     ) -> npt.NDArray[np.bool_]:
        """Per row: is `fence` the origin (or "dest") fence of one of the vehicle's documents?"""
        return _is_doc_fence(np.asarray(vidx), np.asarray(fence), self.veh_doc_ptr, self.veh_doc_idx,
                             getattr(self.docs, which))

    def doc_match(self, vidx: npt.NDArray[np.int32], minute: npt.NDArray[np.int16], day: npt.NDArray[np.int32],
                  doc_type: npt.NDArray[np.int8]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        """For each row, the vehicle's document of `doc_type[row]` (permit / order; −1 = none wanted) that
        covers the row's date — preferring one whose window covers the minute — as (doc or −1, in_window).

        Dates follow the shift rule of `geofences.model`: the after-midnight part of a 22:00–06:00 window
        belongs to the evening before, so a permit valid until the 5th still covers the 6th at 02:00."""
        D = self.docs
        # preference: in window (2) > date-valid (1); the first document wins ties
        return _doc_match(np.asarray(vidx), np.asarray(minute), np.asarray(day), np.asarray(doc_type),
                          self.veh_doc_ptr, self.veh_doc_idx, D.doc_type, D.morning_end, D.valid_from_day,
                          D.valid_to_day, D.windows)


@dataclass
class _OriginGrid:
    """Fences by the grid cells their search disc (origin, radius) overlaps: CSR `ptr`/`idx` over the
    `nx` × `ny` cells of `cell_m` metres from (`x0`, `y0`). A point's candidates are its cell's list."""

    x0: float
    y0: float
    cell_m: float
    nx: int
    ny: int
    ptr: npt.NDArray[np.int64]
    idx: npt.NDArray[np.int64]

    @classmethod
    def build(cls, oxy: np.ndarray, radius: np.ndarray) -> _OriginGrid:
        r = radius + 1.0  # a metre of slack: the cell range must cover every point the exact test accepts
        lo_x, hi_x = oxy[:, 0] - r, oxy[:, 0] + r
        lo_y, hi_y = oxy[:, 1] - r, oxy[:, 1] + r
        x0, y0 = float(lo_x.min()), float(lo_y.min())
        span = max(float(hi_x.max()) - x0, float(hi_y.max()) - y0, 1.0)
        cell = max(span / 512.0, float(np.median(r)) / 2.0, 1.0)
        nx = int((float(hi_x.max()) - x0) // cell) + 1
        ny = int((float(hi_y.max()) - y0) // cell) + 1
        cx0 = ((lo_x - x0) // cell).astype(np.int64)
        cx1 = np.minimum(((hi_x - x0) // cell).astype(np.int64), nx - 1)
        cy0 = ((lo_y - y0) // cell).astype(np.int64)
        cy1 = np.minimum(((hi_y - y0) // cell).astype(np.int64), ny - 1)
        cells, owners = [], []
        for f in range(oxy.shape[0]):
            gx, gy = np.meshgrid(np.arange(cx0[f], cx1[f] + 1), np.arange(cy0[f], cy1[f] + 1))
            cells.append((gy * nx + gx).ravel())
            owners.append(np.full(cells[-1].size, f, np.int64))
        cell_of = np.concatenate(cells)
        owner = np.concatenate(owners)
        order = np.argsort(cell_of, kind="stable")
        ptr = np.zeros(nx * ny + 1, np.int64)
        np.cumsum(np.bincount(cell_of, minlength=nx * ny), out=ptr[1:])
        return cls(x0, y0, cell, nx, ny, ptr, owner[order])


@nb.njit(cache=True)
def _grid_pairs(x, y, within, reach, ox, oy, x0, y0, cell, nx, ny, ptr, idx):
    """(point, fence, distance) for every fence whose origin is within `within` + its reach of the point —
    the distance computed as the k-d tree this replaces did, sqrt(dx² + dy²)."""
    n = x.shape[0]
    cell_of = np.full(n, -1, np.int64)
    total = 0
    for i in range(n):
        gx = np.floor((x[i] - x0) / cell)
        gy = np.floor((y[i] - y0) / cell)
        if gx >= 0 and gy >= 0 and gx < nx and gy < ny:
            c = np.int64(gy) * nx + np.int64(gx)
            cell_of[i] = c
            total += ptr[c + 1] - ptr[c]
    pi = np.empty(total, np.int64)
    fj = np.empty(total, np.int64)
    dist = np.empty(total, np.float64)
    k = 0
    for i in range(n):
        c = cell_of[i]
        if c < 0:
            continue
        for j in range(ptr[c], ptr[c + 1]):
            f = idx[j]
            dx = x[i] - ox[f]
            dy = y[i] - oy[f]
            d = np.sqrt(dx * dx + dy * dy)
            if d <= within + reach[f]:
                pi[k] = i
                fj[k] = f
                dist[k] = d
                k += 1
    return pi[:k], fj[:k], dist[:k]


@nb.njit(cache=True)
def _is_doc_fence(vidx, fence, ptr, idx, doc_fence):
    n = vidx.shape[0]
    out = np.zeros(n, np.bool_)
    n_reg = ptr.shape[0] - 1
    for i in range(n):
        v = vidx[i]
        if v >= n_reg or fence[i] < 0:
            continue
        for j in range(ptr[v], ptr[v + 1]):
            if doc_fence[idx[j]] == fence[i]:
                out[i] = True
                break
    return out


@nb.njit(cache=True)
def _doc_match(vidx, minute, day, want, ptr, idx, doc_type, morning_end, valid_from, valid_to, windows):
    """Per row: the vehicle's first document of type `want[row]` with the best score — 2 in its window, 1
    valid that (shift) day — as (doc or −1, in window)."""
    n = vidx.shape[0]
    doc = np.full(n, -1, np.int32)
    inwin = np.zeros(n, np.bool_)
    n_reg = ptr.shape[0] - 1
    for i in range(n):
        v = vidx[i]
        if v >= n_reg or want[i] < 0:
            continue
        m = np.int64(minute[i])
        best = 0
        for j in range(ptr[v], ptr[v + 1]):
            d = idx[j]
            shift_day = np.int64(day[i]) - (1 if m < morning_end[d] else 0)
            ok = doc_type[d] == want[i] and shift_day >= valid_from[d] and shift_day <= valid_to[d]
            if not ok:
                continue
            score = 2 if windows[d, m] else 1
            if score > best:
                best = score
                doc[i] = d
                inwin[i] = score == 2
                if score == 2:
                    break
    return doc, inwin


SENSOR_BITS: dict[str, int] = {"cover_closed": 1, "lifting": 2, "load": 4, "device_on": 8, "drum": 16}


def sensor_bits(sensors: Sequence[str]) -> int:
    bits = 0
    for s in sensors:
        bits |= SENSOR_BITS.get(s, 0)
    return bits


def _day(d) -> int:
    from datetime import date

    return (d - date(1970, 1, 1)).days


def _compile_docs(permits: list[Permit], orders: list[DeliveryOrder], fence_pos: dict[str, int],
                  vidx_of: dict[str, int], settings: Settings) -> tuple[Docs, np.ndarray, np.ndarray]:
    ids: list[str] = []
    dtype: list[int] = []
    version: list[int] = []
    origin: list[int] = []
    dest: list[int] = []
    route: list[int] = []
    vfrom: list[int] = []
    vto: list[int] = []
    wins: list[tuple[str, ...]] = []
    members: list[tuple[str, ...]] = []
    for p in permits:
        ids.append(p.id); dtype.append(DOC_PERMIT); version.append(int(p.version))
        origin.append(fence_pos.get(p.origin_fence, -1)); dest.append(fence_pos.get(p.disposal_fence, -1))
        route.append(fence_pos.get(p.route_fence, -1)); vfrom.append(_day(p.valid_from)); vto.append(_day(p.valid_to))
        wins.append(tuple(p.windows)); members.append(tuple(p.vehicles))
    for o in orders:
        ids.append(o.id); dtype.append(DOC_ORDER); version.append(int(getattr(o, "version", 1)))
        origin.append(fence_pos.get(o.plant_fence, -1)); dest.append(fence_pos.get(o.site_fence, -1))
        route.append(fence_pos.get(o.route_fence, -1) if o.route_fence else -1)
        vfrom.append(_day(o.valid_from)); vto.append(_day(o.valid_to))
        wins.append(tuple(o.windows)); members.append(tuple(o.vehicles))
    n = len(ids)
    table = window_tables(wins, empty_means_all_day=True)
    table = table.reshape(n, 1440)
    crossing = table[:, 0] & table[:, -1] & ~table.all(axis=1)
    morning_end = np.where(crossing, np.argmin(table, axis=1), 0).astype(np.int16)
    docs = Docs(ids=ids, doc_type=np.array(dtype, np.int8), version=np.array(version, np.int32),
                origin=np.array(origin, np.int32), dest=np.array(dest, np.int32), route=np.array(route, np.int32),
                valid_from_day=np.array(vfrom, np.int32), valid_to_day=np.array(vto, np.int32),
                windows=table, has_windows=np.array([bool(w) for w in wins], bool), morning_end=morning_end)
    per_vehicle: list[list[int]] = [[] for _ in range(len(vidx_of))]
    for d, vs in enumerate(members):
        for vid in vs:
            v = vidx_of.get(vid)
            if v is not None:
                per_vehicle[v].append(d)
    ptr = np.zeros(len(vidx_of) + 1, np.int64)
    ptr[1:] = np.cumsum([len(x) for x in per_vehicle])
    idx = np.array([d for x in per_vehicle for d in x], dtype=np.int32)
    return docs, ptr, idx
