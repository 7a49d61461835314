"""Plans compiled once into arrays: segment pieces in a local metric frame, a spatial hash, window tables.

Why arrays: every fix of every sanitation vehicle is matched against the corridors of the segments it may
serve, and windows are looked up per fix; both must be a fancy-index or a numba loop, never Python per fix.

*Occurrences*: a plan's window j on local day d is one occurrence, encoded `d * 16 + j` (≤ 16 windows per
plan). A window crossing midnight belongs to the day it opens (a night shift). Coverage is judged per
(segment, occurrence) — the required passes are per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tracker.coverage.params import CoverageParams
from tracker.coverage.plans import Plans, as_plans
from tracker.reference import parse_window
from tracker.windows import MS_PER_MIN

MAX_WINDOWS = 16
KIND_CODES: dict[str, int] = {}  # filled lazily from tracker.world (avoids an import cycle at module load)


def _kind_code(kind: str) -> int:
    if not KIND_CODES:
        from tracker.world import KIND_CODE

        KIND_CODES.update(KIND_CODE)
    return KIND_CODES.get(kind, KIND_CODES.get("unknown", -1))


def _epoch_day(d: Any, default: int) -> int:
    if d is None:
        return default
    from datetime import date

    return (d - date(1970, 1, 1)).days


@dataclass
class WindowSet:
    """Daily windows of a set of documents: `table[doc, minute]` = window index or −1, plus bounds."""

    table: npt.NDArray[np.int8]  # (n_docs, 1440)
    start_min: npt.NDArray[np.int32]  # (n_docs, MAX_WINDOWS) local minute the window opens
    length_min: npt.NDArray[np.int32]  # (n_docs, MAX_WINDOWS)
    crosses: npt.NDArray[np.bool_]  # (n_docs, MAX_WINDOWS) crosses midnight
    labels: list[list[str]]

    @classmethod
    def of(cls, window_lists: list[list[str]]) -> WindowSet:
        n = len(window_lists)
        table = np.full((n, 1440), -1, np.int8)
        start = np.zeros((n, MAX_WINDOWS), np.int32)
        length = np.zeros((n, MAX_WINDOWS), np.int32)
        crosses = np.zeros((n, MAX_WINDOWS), np.bool_)
        for d, ws in enumerate(window_lists):
            for j, w in enumerate(ws[:MAX_WINDOWS]):
                a, b = parse_window(w)
                a, b = a % 1440, (b if b <= 1440 else 1440)
                span = (b - a) % 1440 or 1440
                mins = (a + np.arange(span)) % 1440
                free = table[d, mins] < 0  # overlapping windows: the first listed wins
                table[d, mins[free]] = j
                start[d, j], length[d, j], crosses[d, j] = a, span, a + span > 1440
        return cls(table, start, length, crosses, [list(w[:MAX_WINDOWS]) for w in window_lists])

    def occurrence(self, doc: np.ndarray, minute: np.ndarray, day: np.ndarray) -> npt.NDArray[np.int64]:
        """Occurrence key per row (−1 outside every window of the row's document, or doc < 0)."""
        ok = doc >= 0
        d = np.where(ok, doc, 0)
        j = self.table[d, minute].astype(np.int64)
        j[~ok] = -1
        jj = np.maximum(j, 0)
        before_open = minute < self.start_min[d, jj]  # the after-midnight part of a crossing window
        occ_day = day.astype(np.int64) - (self.crosses[d, jj] & before_open)
        return np.where(j >= 0, occ_day * MAX_WINDOWS + j, -1)

    def bounds_ms(self, doc: np.ndarray, occ: np.ndarray, utc_offset_min: int) -> tuple[np.ndarray, np.ndarray]:
        """UTC epoch-ms [start, end) of occurrences."""
        day, j = occ // MAX_WINDOWS, occ % MAX_WINDOWS
        start = (day * 1440 + self.start_min[doc, j] - utc_offset_min) * MS_PER_MIN
        return start, start + self.length_min[doc, j].astype(np.int64) * MS_PER_MIN

    def label(self, doc: int, occ: int) -> str:
        return self.labels[doc][int(occ) % MAX_WINDOWS]


@dataclass
class CompiledPlans:
    plans: Plans
    origin: tuple[float, float]
    # vehicles named by a plan or a schedule
    vehicle_ids: list[str]
    vehicle_index: dict[str, int]
    veh_kind: npt.NDArray[np.int8]
    veh_plan: npt.NDArray[np.int32]  # first work plan of the vehicle, −1 none
    veh_sched: npt.NDArray[np.int32]  # first collection schedule, −1 none
    # work plans
    plan_veh: npt.NDArray[np.int32]
    plan_kind: npt.NDArray[np.int8]
    plan_vmin: npt.NDArray[np.float64]
    plan_vmax: npt.NDArray[np.float64]
    plan_device: npt.NDArray[np.bool_]
    plan_days: npt.NDArray[np.int32]  # (n, 2) valid from/to local epoch day
    plan_windows: WindowSet
    plan_banned: npt.NDArray[np.bool_]  # (n, 1440)
    plan_has_banned: npt.NDArray[np.bool_]
    # segments
    seg_ids: list[str]
    seg_plan: npt.NDArray[np.int32]
    seg_veh: npt.NDArray[np.int32]
    seg_kind: npt.NDArray[np.int8]
    seg_len_m: npt.NDArray[np.float64]
    seg_corr_m: npt.NDArray[np.float64]
    seg_req: npt.NDArray[np.int32]
    seg_grade: npt.NDArray[np.int8]
    seg_nbins: npt.NDArray[np.int32]
    seg_slot: npt.NDArray[np.int32]  # position among its vehicle's segments (distinct episode ids)
    seg_mid_lonlat: npt.NDArray[np.float64]  # (n, 2)
    # pieces (one per polyline edge) and the spatial hash over them
    piece: dict[str, np.ndarray]
    grid: dict[str, Any]
    # collection schedules
    sched_veh: npt.NDArray[np.int32]
    sched_days: npt.NDArray[np.int32]
    sched_windows: WindowSet
    bin_m: float = 5.0
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def n_segments(self) -> int:
        return len(self.seg_ids)

    def vehicle_codes(self, vehicle_ids: list[str]) -> npt.NDArray[np.int32]:
        """Vehicle ids → compiled vehicle index (−1 for vehicles without a plan or schedule)."""
        get = self.vehicle_index.get
        return np.fromiter((get(v, -1) for v in vehicle_ids), np.int32, len(vehicle_ids))

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from geofences.local import to_xy_m

        return to_xy_m(lon, lat, self.origin)


def compile_plans(plans: Any, params: CoverageParams) -> CompiledPlans:
    """Compile plans (ours or any plans-shaped object) for the coverage engine."""
    from geofences.local import to_lonlat, to_xy_m

    p = as_plans(plans)
    wps, css = p.work_plans, p.collection_schedules
    vehicle_ids: list[str] = []
    vindex: dict[str, int] = {}
    vkind: list[int] = []

    def vid(v: str, kind: str) -> int:
        if v not in vindex:
            vindex[v] = len(vehicle_ids)
            vehicle_ids.append(v)
            vkind.append(_kind_code(kind))
        return vindex[v]

    plan_veh = np.array([vid(w.vehicle_id, w.vehicle_kind) for w in wps], np.int32)
    sched_veh = np.array([vid(c.vehicle_id, "refuse_truck") for c in css], np.int32)
    nv = len(vehicle_ids)
    veh_plan = np.full(nv, -1, np.int32)
    for i in range(len(wps) - 1, -1, -1):
        veh_plan[plan_veh[i]] = i
    veh_sched = np.full(nv, -1, np.int32)
    for i in range(len(css) - 1, -1, -1):
        veh_sched[sched_veh[i]] = i

    coords = [np.asarray(s.coordinates, np.float64).reshape(-1, 2) for w in wps for s in w.segments]
    allc = np.concatenate(coords) if coords else np.zeros((1, 2))
    origin = (float(allc[:, 0].mean()), float(allc[:, 1].mean()))
    # one projection for every vertex of every segment, then per-segment pieces by offsets (no Python per vertex)
    nv = np.array([c.shape[0] for c in coords], np.int64)
    ax, ay = to_xy_m(allc[:, 0], allc[:, 1], origin) if coords else (np.zeros(0), np.zeros(0))
    vseg = np.repeat(np.arange(nv.size), nv)
    same = vseg[1:] == vseg[:-1] if vseg.size else np.zeros(0, bool)
    dx_all, dy_all = np.diff(ax), np.diff(ay)
    ln_all = np.hypot(dx_all, dy_all)
    keep = same & (ln_all > 1e-6)
    pseg = vseg[:-1][keep].astype(np.int32) if vseg.size else np.zeros(0, np.int32)
    px0, py0 = ax[:-1][keep], ay[:-1][keep]
    pdx, pdy, pln = dx_all[keep], dy_all[keep], ln_all[keep]
    seg_len_a = np.bincount(pseg, weights=pln, minlength=nv.size) if nv.size else np.zeros(0)
    cum = np.cumsum(pln)
    first_piece = np.r_[True, pseg[1:] != pseg[:-1]] if pseg.size else np.zeros(0, bool)
    seg_start_cum = np.zeros(nv.size)
    if pseg.size:
        seg_start_cum[pseg[first_piece]] = cum[first_piece] - pln[first_piece]
    ps0 = cum - pln - seg_start_cum[pseg] if pseg.size else np.zeros(0)
    piece = {"seg": pseg, "x0": px0, "y0": py0, "dx": pdx, "dy": pdy, "s0": ps0, "len": pln}
    seg_ids, seg_plan, seg_corr, seg_req, seg_grade, seg_slot = [], [], [], [], [], []
    slot_of_vehicle: dict[int, int] = {}
    for pi, w in enumerate(wps):
        v = int(plan_veh[pi])
        for s in w.segments:
            seg_ids.append(s.id)
            seg_plan.append(pi)
            seg_corr.append(params.corridor_m(s.half_width_m))
            seg_req.append(max(int(s.passes), 1))
            seg_grade.append(int(s.grade))
            seg_slot.append(slot_of_vehicle.get(v, 0))
            slot_of_vehicle[v] = seg_slot[-1] + 1
    # a point half-way along each segment, for labels and alert positions
    mids = np.zeros((nv.size, 2))
    if pseg.size:
        half = seg_len_a / 2
        k = np.clip(np.searchsorted(pseg.astype(np.float64) * 1e9 + ps0 + pln, np.arange(nv.size) * 1e9 + half),
                    0, pseg.size - 1)
        t = np.clip((half[pseg[k]] - ps0[k]) / pln[k], 0.0, 1.0)
        mlon, mlat = to_lonlat(px0[k] + t * pdx[k], py0[k] + t * pdy[k], origin)
        mids = np.column_stack([mlon, mlat])
        mids[np.bincount(pseg, minlength=nv.size) == 0] = allc[np.r_[0, np.cumsum(nv)[:-1]]][
            np.bincount(pseg, minlength=nv.size) == 0]
    piece["len2"] = piece["len"] ** 2
    seg_plan_a = np.array(seg_plan, np.int32)
    seg_corr_a = np.array(seg_corr, np.float64)
    grid = _grid(piece, seg_corr_a, params.grid_m, plan_veh[seg_plan_a] if seg_ids else np.zeros(0, np.int32))
    return CompiledPlans(
        plans=p, origin=origin, vehicle_ids=vehicle_ids, vehicle_index=vindex, veh_kind=np.array(vkind, np.int8),
        veh_plan=veh_plan, veh_sched=veh_sched, plan_veh=plan_veh,
        plan_kind=np.array([_kind_code(w.vehicle_kind) for w in wps], np.int8),
        plan_vmin=np.array([w.speed_min_kmh for w in wps], np.float64),
        plan_vmax=np.array([w.speed_max_kmh for w in wps], np.float64),
        plan_device=np.array([w.device_on for w in wps], np.bool_),
        plan_days=np.array([(_epoch_day(w.valid_from, -10**7), _epoch_day(w.valid_to, 10**7)) for w in wps],
                           np.int32).reshape(-1, 2),
        plan_windows=WindowSet.of([list(w.windows) for w in wps]),
        plan_banned=_banned(wps), plan_has_banned=np.array([bool(w.banned_windows) for w in wps], np.bool_),
        seg_ids=seg_ids, seg_plan=seg_plan_a, seg_veh=plan_veh[seg_plan_a] if seg_ids else np.zeros(0, np.int32),
        seg_kind=np.array([_kind_code(wps[i].vehicle_kind) for i in seg_plan], np.int8), seg_len_m=seg_len_a,
        seg_corr_m=seg_corr_a, seg_req=np.array(seg_req, np.int32), seg_grade=np.array(seg_grade, np.int8),
        seg_nbins=np.maximum(np.ceil(seg_len_a / params.bin_m), 1).astype(np.int32),
        seg_slot=np.array(seg_slot, np.int32), seg_mid_lonlat=np.asarray(mids, np.float64).reshape(-1, 2),
        piece=piece, grid=grid, sched_veh=sched_veh,
        sched_days=np.array([(_epoch_day(c.valid_from, -10**7), _epoch_day(c.valid_to, 10**7)) for c in css],
                            np.int32).reshape(-1, 2),
        sched_windows=WindowSet.of([list(c.windows) for c in css]), bin_m=params.bin_m)


def _banned(wps: list[Any]) -> np.ndarray:
    from tracker.windows import window_table

    out = np.zeros((len(wps), 1440), np.bool_)
    for i, w in enumerate(wps):
        if w.banned_windows:
            out[i] = window_table(w.banned_windows)
    return out


def _grid(piece: dict[str, np.ndarray], seg_corr: np.ndarray, gm: float, seg_veh: np.ndarray) -> dict[str, Any]:
    """Spatial hashes over the pieces' corridors: a dense grid cell (ix, iy) → pieces reaching into it (CSR,
    for `any_vehicle`), and the same keyed by (vehicle, cell) — sorted keys searched per fix — so a fix only
    ever meets its own vehicle's pieces, however many plans share a street."""
    if piece["x0"].size == 0:
        return {"gx0": 0.0, "gy0": 0.0, "gm": gm, "nx": 0, "ny": 0, "ptr": np.zeros(1, np.int64),
                "piece": np.zeros(0, np.int32), "vkeys": np.zeros(0, np.int64), "vptr": np.zeros(1, np.int64),
                "vpiece": np.zeros(0, np.int32)}
    r = seg_corr[piece["seg"]]
    x1, y1 = piece["x0"] + piece["dx"], piece["y0"] + piece["dy"]
    minx, maxx = np.minimum(piece["x0"], x1) - r, np.maximum(piece["x0"], x1) + r
    miny, maxy = np.minimum(piece["y0"], y1) - r, np.maximum(piece["y0"], y1) + r
    gx0, gy0 = float(minx.min()), float(miny.min())
    nx = int(np.floor((maxx.max() - gx0) / gm)) + 1
    ny = int(np.floor((maxy.max() - gy0) / gm)) + 1
    ix0 = np.floor((minx - gx0) / gm).astype(np.int64)
    ix1 = np.floor((maxx - gx0) / gm).astype(np.int64)
    iy0 = np.floor((miny - gy0) / gm).astype(np.int64)
    iy1 = np.floor((maxy - gy0) / gm).astype(np.int64)
    nxs, nys = ix1 - ix0 + 1, iy1 - iy0 + 1
    count = nxs * nys
    pid = np.repeat(np.arange(count.size, dtype=np.int64), count)
    k = np.arange(pid.size) - np.repeat(np.cumsum(count) - count, count)
    cx = ix0[pid] + k // nys[pid]
    cy = iy0[pid] + k % nys[pid]
    cell = cx * ny + cy
    order = np.lexsort((pid, cell))
    cell, pid = cell[order], pid[order]
    ptr = np.zeros(nx * ny + 1, np.int64)
    np.add.at(ptr, cell + 1, 1)
    vk = seg_veh[piece["seg"][pid]].astype(np.int64) * (nx * ny) + cell
    o2 = np.argsort(vk, kind="stable")
    vk, vp = vk[o2], pid[o2]
    start = np.flatnonzero(np.r_[True, vk[1:] != vk[:-1]])
    return {"gx0": gx0, "gy0": gy0, "gm": float(gm), "nx": nx, "ny": ny, "ptr": np.cumsum(ptr),
            "piece": pid.astype(np.int32), "vkeys": vk[start], "vptr": np.r_[start, vk.size].astype(np.int64),
            "vpiece": vp.astype(np.int32)}


# -- the compiled plans a World carries ----------------------------------------------------------------------------


def for_world(world: Any, params: CoverageParams) -> CompiledPlans | None:
    """The world's plans compiled (cached on the world), or None when it carries none: the sanitation rules
    are active only where a city loads work plans (`World.build(..., plans=...)`)."""
    if getattr(world, "plans", None) is None:
        return None
    cache = world.__dict__.setdefault("_coverage", {})
    key = (id(world.plans), params.model_dump_json())
    got = cache.get(key)
    if got is None:
        cache.clear()
        got = cache[key] = compile_plans(world.plans, params)
        if len(got.plans) == 0:
            got = cache[key] = None  # type: ignore[assignment]
    return got


def world_vehicle_map(world: Any, cp: CompiledPlans) -> npt.NDArray[np.int32]:
    """World vidx → compiled vehicle index (−1 none); extended when the world registers new vehicles."""
    m = cp.cache.get("world_map")
    n = len(world.vehicle_ids)
    if m is None or m.shape[0] < n:
        m = cp.vehicle_codes(list(world.vehicle_ids))
        cp.cache["world_map"] = m
    return m
