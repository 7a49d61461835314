"""The coverage engine inside the tracker: what the sanitation rules keep between batches and decide on.

Missed work is a question about a *window*, asked when it ends, about fixes that may arrive in any order
(back-filled after an outage, re-run after late fixes). So the window rules do not scan per vehicle like the
debounced rules; each keeps a small *log* of the facts it needs — corridor pairs of plan vehicles, their
data gaps, visits to collection points, facility arrivals — keyed by (vehicle, fix time, …) so that a fix
processed twice (re-run, redelivery) replaces its earlier row instead of counting twice, and a back-filled
fix lands in the log like any other. Decisions run the same pure functions as the daily report
(`tracker.coverage.work`, `tracker.coverage.collection`) over the log rows of one occurrence: the live alert
and the report cannot disagree.

The log hangs on the rule's `StateTable` (a `CoverageTable` with no per-vehicle slots); `fresh()` — used
for detached blocks of very late fixes — shares it, so such fixes still reach the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from tracker.coverage import work as W
from tracker.coverage.compiled import MAX_WINDOWS, CompiledPlans, WindowSet, for_world, world_vehicle_map
from tracker.coverage.params import CoverageParams, load_coverage_params
from tracker.state import StateTable
from tracker.windows import MS_PER_DAY, MS_PER_MIN

NONE_TS = np.iinfo(np.int64).max


class Log:
    """Append-only columns with last-writer-wins on a key (a few columns), compacted on read."""

    def __init__(self, key: tuple[str, ...]):
        self.key = key
        self.chunks: list[dict[str, np.ndarray]] = []
        self._n = 0
        self._clean = True  # chunks == [compacted rows]

    def add(self, rows: dict[str, np.ndarray]) -> None:
        n = int(next(iter(rows.values())).shape[0]) if rows else 0
        if n:
            self.chunks.append(rows)
            self._n += n
            self._clean = False

    def replace(self, rows: dict[str, np.ndarray]) -> None:
        """Swap the content for an equivalent, smaller set of rows (already unique by key)."""
        self.chunks = [rows] if rows and next(iter(rows.values())).shape[0] else []
        self._n = int(next(iter(rows.values())).shape[0]) if self.chunks else 0
        self._clean = True

    def rows(self) -> dict[str, np.ndarray]:
        if not self.chunks:
            return {}
        if self._clean:
            return self.chunks[0]
        if len(self.chunks) > 1:
            cat = {c: np.concatenate([ch[c] for ch in self.chunks]) for c in self.chunks[0]}
        else:
            cat = self.chunks[0]
        n = next(iter(cat.values())).shape[0]
        seq = np.arange(n)
        order = np.lexsort((seq, *(cat[k] for k in reversed(self.key))))
        keys = [cat[k][order] for k in self.key]
        last = np.ones(n, bool)
        if n > 1:
            same = np.ones(n - 1, bool)
            for k in keys:
                same &= k[1:] == k[:-1]
            last[:-1] = ~same  # keep the last written row of each key
        cat = {c: a[order[last]] for c, a in cat.items()}
        self.chunks = [cat]
        self._n = int(last.sum())
        self._clean = True
        return cat

    def drop_where(self, mask_fn: Any) -> None:
        cat = self.rows()
        if cat:
            keep = ~mask_fn(cat)
            self.chunks = [{c: a[keep] for c, a in cat.items()}]
            self._n = int(keep.sum())

    def nbytes(self) -> int:
        return sum(a.nbytes for ch in self.chunks for a in ch.values())


class CoverageState:
    """What one window rule keeps: logs, the first fix time seen, decisions and open warnings."""

    def __init__(self, logs: dict[str, tuple[str, ...]]):
        self.logs = {name: Log(key) for name, key in logs.items()}
        self.first_ts = NONE_TS
        self.decided: set[tuple[int, int]] = set()  # (document, occurrence)
        self.warned: dict[tuple[int, int, int], int] = {}  # (document, occurrence, item) → episode start ts
        self.items_done: set[tuple[int, int, int]] = set()  # (document, occurrence, item) with a verdict
        self.next_check_ms = -1

    def nbytes(self) -> int:
        return sum(lg.nbytes() for lg in self.logs.values()) + 64 * (len(self.decided) + len(self.warned))


class CoverageTable(StateTable):
    """A rule's state table without per-vehicle slots, carrying a shared `CoverageState`."""

    def __init__(self, name: str, n: int = 0, state: CoverageState | None = None,
                 logs: dict[str, tuple[str, ...]] | None = None):
        from tracker.world import KINDS

        super().__init__(name, (), (), None, n, np.zeros(len(KINDS), np.bool_))  # no per-vehicle rows at all
        self.cov = state if state is not None else CoverageState(logs or {})

    def fresh(self, n: int) -> CoverageTable:
        return CoverageTable(self.name, n, self.cov)

    def nbytes(self) -> int:
        return super().nbytes() + self.cov.nbytes()


# -- per batch -------------------------------------------------------------------------------------------------


def compiled(world: Any) -> tuple[CompiledPlans | None, CoverageParams]:
    params = _params(world)
    return for_world(world, params), params


def _params(world: Any) -> CoverageParams:
    cache = world.__dict__.setdefault("_coverage_params", {})
    got = cache.get("p")
    if got is None:
        got = cache["p"] = load_coverage_params(world.settings)
    return got


def batch_fixes(batch: Any, cp: CompiledPlans, params: CoverageParams) -> tuple[W.WorkFixes, np.ndarray]:
    """The batch's ok rows of vehicles a work plan may concern, as `WorkFixes` (+ the batch row of each)."""
    key = "coverage_fixes"
    got = batch.extra.get(key)
    if got is None:
        vmap = world_vehicle_map(batch.world, cp)
        veh = np.where(batch.vidx < vmap.shape[0], vmap[np.minimum(batch.vidx, vmap.shape[0] - 1)], -1)
        if params.any_vehicle:
            want = np.isin(batch.kind, np.unique(cp.seg_kind))
        else:
            want = (veh >= 0) & (cp.veh_plan[np.maximum(veh, 0)] >= 0) if cp.veh_plan.size else veh < -1
        rows = np.flatnonzero(want & batch.ok)
        ts = batch.ts_ms[rows]
        dt = batch.dt_s[rows]
        prev = np.where(dt >= 0, ts - np.round(dt * 1000).astype(np.int64), -1)
        wf = W.WorkFixes(vkey=batch.vidx[rows].astype(np.int32), veh=veh[rows].astype(np.int32),
                         kind=batch.kind[rows], ts_ms=ts, lon=batch.lon[rows], lat=batch.lat[rows],
                         speed_kmh=batch.speed_kmh[rows].astype(np.float64), device=batch.device_on[rows],
                         prev_ts_ms=prev, minute=batch.minute[rows], day=batch.day[rows])
        got = batch.extra[key] = (wf, rows)
    return got


def batch_pairs(batch: Any, cp: CompiledPlans, params: CoverageParams) -> dict[str, np.ndarray]:
    """Corridor pairs of the batch (all of them, in windows or not: late work is judged too)."""
    key = "coverage_pairs"
    got = batch.extra.get(key)
    if got is None:
        wf, rows = batch_fixes(batch, cp, params)
        got = W.pairs(wf, cp, params, windows_only=False)
        got["row"] = rows[got.pop("fix")]
        batch.extra[key] = got
    return got


def note_vehicle_facts(state: CoverageState, batch: Any, cp: CompiledPlans, params: CoverageParams,
                       veh: np.ndarray, rows: np.ndarray, home_kinds: tuple[str, ...]) -> None:
    """Log what the verdicts need besides the work itself, for the batch rows `rows` (compiled vehicle index
    `veh` each): data gaps (with where the vehicle was before and after, and whether at home) and at-home
    transitions (is the vehicle back at a depot: has its round ended?)."""
    if rows.size == 0:
        return
    n = len(batch.world.vehicle_ids)
    last = state.__dict__.setdefault("last", {"lon": np.full(n, np.nan), "lat": np.full(n, np.nan),
                                              "home": np.zeros(n, bool)})
    if last["lon"].shape[0] < n:
        for k, fill in (("lon", np.nan), ("lat", np.nan), ("home", False)):
            last[k] = np.concatenate([last[k], np.full(n - last[k].shape[0], fill, last[k].dtype)])
    at_home = batch.in_kinds(home_kinds)[rows] if home_kinds else np.zeros(rows.size, bool)
    vidx, ts = batch.vidx[rows], batch.ts_ms[rows]
    lon, lat = batch.lon[rows], batch.lat[rows]
    same_prev = np.r_[False, vidx[1:] == vidx[:-1]]
    plon = np.where(same_prev, np.r_[np.nan, lon[:-1]], last["lon"][vidx])
    plat = np.where(same_prev, np.r_[np.nan, lat[:-1]], last["lat"][vidx])
    phome = np.where(same_prev, np.r_[False, at_home[:-1]], last["home"][vidx])
    _fill_gaps(state.logs["gaps"], veh, ts, lon, lat, at_home, params.gap_min_s)
    dt = batch.dt_s[rows]
    g = (dt >= params.gap_min_s)
    if g.any():
        state.logs["gaps"].add({"veh": veh[g], "t0": ts[g] - np.round(dt[g] * 1000).astype(np.int64), "t1": ts[g],
                                "lon0": plon[g], "lat0": plat[g], "lon1": lon[g], "lat1": lat[g],
                                "home0": phome[g], "home1": at_home[g]})
    never = ~same_prev & np.isnan(last["lon"][vidx])  # the vehicle's first fix since we began watching
    if never.any() and state.first_ts != NONE_TS:
        lead = W.leading_gaps(veh, ts, never, lon, lat, at_home, int(state.first_ts), params)
        if lead["veh"].size:
            state.logs["gaps"].add(lead)
    # every fix's flag (compacted to debounced transitions with fix counts by `home_rows`)
    state.logs["home"].add({"veh": veh, "ts": ts, "home": at_home, "n": np.ones(ts.size, np.int64)})
    end = np.r_[vidx[1:] != vidx[:-1], True]
    last["lon"][vidx[end]], last["lat"][vidx[end]], last["home"][vidx[end]] = lon[end], lat[end], at_home[end]


def _fill_gaps(log: Log, veh: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, at_home: np.ndarray,
               gap_min_s: float) -> None:
    """Fixes that arrive for a time already logged as a data gap (a connectivity outage back-filled later)
    fill it: the gap is replaced by what is left of it before the first and after the last of them (when still
    `gap_min_s` long). A gap seen live and back-filled since is no excuse for missed work."""
    g = log.rows()
    if not g or g["veh"].size == 0 or ts.size == 0:
        return
    order = np.lexsort((g["t0"], g["veh"]))
    gv, g0, g1 = g["veh"][order].astype(np.int64), g["t0"][order], g["t1"][order]
    i = np.searchsorted(gv * (1 << 42) + g0, veh.astype(np.int64) * (1 << 42) + ts, "left") - 1
    ic = np.clip(i, 0, None)
    hit = (i >= 0) & (gv[ic] == veh) & (ts > g0[ic]) & (ts < g1[ic])
    if not hit.any():
        return
    f, j = np.flatnonzero(hit), ic[hit]
    gaps = np.unique(j)
    first = np.full(gv.size, np.iinfo(np.int64).max)
    last = np.full(gv.size, np.iinfo(np.int64).min)
    np.minimum.at(first, j, ts[f])
    np.maximum.at(last, j, ts[f])
    pick_first = {int(a): int(r) for a, r in zip(j.tolist(), f.tolist(), strict=True) if ts[r] == first[a]}
    pick_last = {int(a): int(r) for a, r in zip(j.tolist(), f.tolist(), strict=True) if ts[r] == last[a]}
    gone = order[gaps]
    drop = set(zip(g["veh"][gone].tolist(), g["t1"][gone].tolist(), strict=True))
    log.drop_where(lambda r: np.array([(a, b) in drop for a, b in zip(r["veh"].tolist(), r["t1"].tolist(),
                                                                          strict=True)], bool))
    pieces = []
    gap_ms = gap_min_s * 1000
    for a in gaps.tolist():
        k = int(order[a])
        r0, r1 = pick_first[a], pick_last[a]
        if ts[r0] - g["t0"][k] >= gap_ms:
            pieces.append((g["veh"][k], g["t0"][k], ts[r0], g["lon0"][k], g["lat0"][k], lon[r0], lat[r0],
                           g["home0"][k], at_home[r0]))
        if g["t1"][k] - ts[r1] >= gap_ms:
            pieces.append((g["veh"][k], ts[r1], g["t1"][k], lon[r1], lat[r1], g["lon1"][k], g["lat1"][k],
                           at_home[r1], g["home1"][k]))
    if pieces:
        cols = ("veh", "t0", "t1", "lon0", "lat0", "lon1", "lat1", "home0", "home1")
        log.add({c: np.array([p[n] for p in pieces], dtype=g[c].dtype) for n, c in enumerate(cols)})


def home_rows(state: CoverageState) -> dict[str, np.ndarray] | None:
    """At-home transitions of plan vehicles (the log is compacted to them as a side effect)."""
    lg = state.logs["home"]
    rows = lg.rows()
    if not rows:
        return None
    tr = W.home_transitions(rows["veh"], rows["ts"], rows["home"], rows["n"])
    if tr["ts"].size < rows["ts"].size:
        lg.replace(tr)
    return tr


def prune(state: CoverageState, now_ms: int, keep_s: float) -> None:
    """Forget log rows older than `keep_s` (windows that long ago are decided)."""
    if now_ms - state.__dict__.get("pruned_ms", -(1 << 62)) < 3_600_000:
        return
    state.__dict__["pruned_ms"] = now_ms
    horizon = now_ms - int(keep_s * 1000)
    for name, lg in state.logs.items():
        col = "t1" if name == "gaps" else "ts"
        lg.drop_where(lambda r, c=col: r[c] < horizon)
    state.first_ts = max(state.first_ts, horizon)  # older windows are neither judged again nor re-listed
    oldest = horizon // MS_PER_DAY - 2
    state.decided = {d for d in state.decided if d[1] // MAX_WINDOWS >= oldest}
    state.items_done = {d for d in state.items_done if d[1] // MAX_WINDOWS >= oldest}


class Emitter:
    """Collects episode transitions of window rules (decided at `advance`, not on a fix) as `Events`."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, etype: int, vidx: int, start: int, end: int, level: int, sev: int, place: int, peak: float,
            dist: float, last: int, lon: float, lat: float) -> None:
        self.rows.append((etype, vidx, -1, start, end, level, sev, place, peak, dist, last, lon, lat))

    def events(self) -> Any:
        from tracker.rules._base import Events

        if not self.rows:
            return Events.empty()
        cols = list(zip(*self.rows, strict=True))
        dt = (np.int8, np.int32, np.int64, np.int64, np.int64, np.int8, np.int8, np.int32, np.float64, np.float64,
              np.int64, np.float64, np.float64)
        a = [np.asarray(c, d) for c, d in zip(cols, dt, strict=True)]
        return Events(etype=a[0], vidx=a[1], row=a[2], start_ts=a[3], end_ts=a[4], level=a[5], sev=a[6],
                      place=a[7], peak=a[8], dist_m=a[9], last_ts=a[10], lon=a[11], lat=a[12])


def schedule_places(world: Any, cp: CompiledPlans) -> Any:
    from tracker.coverage.collection import SchedulePlaces

    got = cp.cache.get("schedule_places")
    if got is None:
        got = cp.cache["schedule_places"] = SchedulePlaces.of(cp, list(world.fences), world.fence_pos)
    return got


def batch_collection(batch: Any, cp: CompiledPlans, params: CoverageParams) -> tuple[dict, np.ndarray, np.ndarray]:
    """Stops at scheduled points and facility arrivals in the batch (see `collection.events`), plus the
    compiled vehicle index per row and the rows of schedule trucks."""
    from tracker.coverage import collection as C

    key = "coverage_collection"
    got = batch.extra.get(key)
    if got is None:
        vmap = world_vehicle_map(batch.world, cp)
        veh = np.where(batch.vidx < vmap.shape[0], vmap[np.minimum(batch.vidx, vmap.shape[0] - 1)], -1)
        truck = (veh >= 0) & (cp.veh_sched[np.maximum(veh, 0)] >= 0) & batch.ok if cp.veh_sched.size else \
            np.zeros(batch.n, bool)
        veh = np.where(truck, veh, -1).astype(np.int32)
        if truck.any():
            hr, hf = batch.hits()
            keep = truck[hr]
            ev = C.events(veh, batch.ts_ms, batch.speed_kmh, batch.lifting, batch.minute, batch.day, hr[keep],
                          hf[keep], cp, schedule_places(batch.world, cp), params)
        else:
            z = np.zeros(0, np.int64)
            ev = {"stops": {"sched": z.astype(np.int32), "point": z, "ts": z, "lift": z.astype(bool),
                            "lift_reported": z.astype(bool)}, "arrivals": {"sched": z.astype(np.int32), "ts": z}}
        got = batch.extra[key] = (ev, veh, np.flatnonzero(truck))
    return got


def empty_gaps() -> dict[str, np.ndarray]:
    z = np.zeros(0)
    return {"veh": z.astype(np.int32), "t0": z.astype(np.int64), "t1": z.astype(np.int64), "lon0": z, "lat0": z,
            "lon1": z, "lat1": z, "home0": z.astype(bool), "home1": z.astype(bool)}


def note_first(state: CoverageState, batch: Any) -> None:
    if batch.n and batch.ok.any():
        state.first_ts = min(state.first_ts, int(batch.ts_ms[batch.ok].min()))


# -- occurrences due --------------------------------------------------------------------------------------------


def due(ws: WindowSet, doc_days: np.ndarray, state: CoverageState, at_ms: int, after_end_ms: float,
        utc_offset_min: int, params: CoverageParams, n_docs: int) -> list[tuple[int, int, int, int]]:
    """(document, occurrence, start_ms, end_ms) of windows whose end + `after_end_ms` has passed by `at_ms`,
    that were observed from (nearly) their start, and not decided yet — oldest first."""
    if state.first_ts == NONE_TS or n_docs == 0:
        return []
    d0 = int((state.first_ts + utc_offset_min * MS_PER_MIN) // MS_PER_DAY) - 1
    d1 = int((at_ms + utc_offset_min * MS_PER_MIN) // MS_PER_DAY)
    out: list[tuple[int, int, int, int]] = []
    docs = np.arange(n_docs)
    for d in range(d0, d1 + 1):
        for j in range(MAX_WINDOWS):
            has = ws.length_min[:n_docs, j] > 0
            if not has.any():
                continue
            dd = docs[has & (doc_days[:n_docs, 0] <= d) & (d <= doc_days[:n_docs, 1])]
            if dd.size == 0:
                continue
            occ = np.full(dd.size, d * MAX_WINDOWS + j, np.int64)
            start, end = ws.bounds_ms(dd, occ, utc_offset_min)
            ok = (end + after_end_ms <= at_ms) & (state.first_ts <= start + params.judge_if_seen_from_s * 1000)
            for doc, o, a, b in zip(dd[ok].tolist(), occ[ok].tolist(), start[ok].tolist(), end[ok].tolist(),
                                    strict=True):
                if (doc, o) not in state.decided:
                    out.append((doc, o, a, b))
    out.sort(key=lambda x: (x[3], x[0]))
    return out


def running(ws: WindowSet, doc_days: np.ndarray, now_ms: int, utc_offset_min: int, n_docs: int
            ) -> list[tuple[int, int, int, int]]:
    """(document, occurrence, start_ms, end_ms) of windows open at `now_ms`."""
    out: list[tuple[int, int, int, int]] = []
    d1 = int((now_ms + utc_offset_min * MS_PER_MIN) // MS_PER_DAY)
    docs = np.arange(n_docs)
    for d in (d1 - 1, d1):
        for j in range(MAX_WINDOWS):
            has = (ws.length_min[:n_docs, j] > 0) & (doc_days[:n_docs, 0] <= d) & (d <= doc_days[:n_docs, 1])
            dd = docs[has]
            if dd.size == 0:
                continue
            occ = np.full(dd.size, d * MAX_WINDOWS + j, np.int64)
            start, end = ws.bounds_ms(dd, occ, utc_offset_min)
            ok = (start <= now_ms) & (now_ms < end)
            out += list(zip(dd[ok].tolist(), occ[ok].tolist(), start[ok].tolist(), end[ok].tolist(), strict=True))
    return out


def vidx_of(world: Any, vehicle_id: str) -> int:
    """The world's index of a plan's vehicle (registered as unknown if the register lacks it)."""
    v = world.vidx_of.get(vehicle_id)
    if v is None:
        world.register_unknown([vehicle_id])
        v = world.vidx_of[vehicle_id]
    return int(v)


def select(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in rows.items()}


def isin(values: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    return np.isin(values, np.fromiter(wanted, np.int64))
