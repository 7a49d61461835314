"""Refuse collection: visits to scheduled collection points and arrivals at the end facility.

A *visit* to a point is a fix of the schedule's truck inside the point's fence (the circle the clerk drew,
typ. 30 m: GPS noise of ~8 m almost never throws a stopped truck out of it) that is either stopped
(speed ≤ `visit_stop_kmh`) or tipping a bin (lift up) — driving past a point is not collecting it. The
visit belongs to the schedule occurrence (window j on day d) its time falls in. An *arrival* is any fix of
the truck inside the facility fence (transfer station / landfill).

Inputs are (row, fence position) hits — from `geofences.FenceIndex.locate` in reports or `Batch.hits()` in
the live rules — so both paths share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tracker.coverage import work as W
from tracker.coverage.compiled import CompiledPlans
from tracker.coverage.params import CoverageParams


@dataclass
class SchedulePlaces:
    """Each schedule's points and facility as positions in a fence list (−1 when the fence is unknown)."""

    point_ptr: npt.NDArray[np.int64]  # CSR over schedules
    point_fence: npt.NDArray[np.int32]
    point_order: npt.NDArray[np.int32]  # position in the schedule's round
    point_lonlat: npt.NDArray[np.float64]  # (n, 2) the point fence's centre (NaN when unknown)
    facility: npt.NDArray[np.int32]

    @classmethod
    def of(cls, cp: CompiledPlans, fences: list, fence_pos: dict[str, int] | None = None) -> SchedulePlaces:
        """`fences`: the fence list the hit positions refer to (`geofences.model.Fence`)."""
        fence_pos = fence_pos if fence_pos is not None else {f.id: i for i, f in enumerate(fences)}
        css = cp.plans.collection_schedules
        ptr = np.zeros(len(css) + 1, np.int64)
        ptr[1:] = np.cumsum([len(c.points) for c in css])
        pf = np.array([fence_pos.get(p, -1) for c in css for p in c.points], np.int32)
        order = np.array([i for c in css for i in range(len(c.points))], np.int32)
        ll = np.full((pf.size, 2), np.nan)
        for i, f in enumerate(pf.tolist()):
            if f >= 0:
                o = fences[f].origin
                ll[i] = (o.lon, o.lat)
        fac = np.array([fence_pos.get(c.facility, -1) for c in css], np.int32)
        return cls(ptr, pf, order, ll, fac)

    def sched_of_point_row(self) -> npt.NDArray[np.int32]:
        return np.repeat(np.arange(self.point_ptr.size - 1, dtype=np.int32), np.diff(self.point_ptr))


def events(veh: np.ndarray, ts: np.ndarray, speed_kmh: np.ndarray, lifting: np.ndarray, minute: np.ndarray,
           day: np.ndarray, hit_row: np.ndarray, hit_fence: np.ndarray, cp: CompiledPlans, sp: SchedulePlaces,
           params: CoverageParams) -> dict[str, dict[str, np.ndarray]]:
    """Raw collection facts in a set of fixes: stops at scheduled points and arrivals at the facility.

    `veh` is the compiled vehicle index per fix (−1: none); hits are (fix row, fence position) pairs.
    Returns {"stops": {sched, point (CSR row), ts, lift, lift_reported}, "arrivals": {sched, ts}} — stops are
    fixes inside one of the truck's points, stopped or lifting; `visits()` turns them into visits."""
    sched = np.where(veh[hit_row] >= 0, cp.veh_sched[np.maximum(veh[hit_row], 0)], -1)
    ok = sched >= 0
    r, f, sch = hit_row[ok], hit_fence[ok], sched[ok]
    arr = f == sp.facility[sch]
    arrivals = {"sched": sch[arr], "ts": ts[r[arr]]}
    lo, hi = sp.point_ptr[sch], sp.point_ptr[sch + 1]
    cnt = hi - lo
    rr = np.repeat(np.arange(r.size), cnt)
    k = np.arange(rr.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    is_pt = sp.point_fence[k] == f[rr]
    rr, k = rr[is_pt], k[is_pt]
    row = r[rr]
    lift = lifting[row] == 1
    good = (speed_kmh[row] <= params.visit_stop_kmh) | lift
    rr, k, row = rr[good], k[good], row[good]
    stops = {"sched": sch[rr], "point": k.astype(np.int64), "ts": ts[row], "lift": lifting[row] == 1,
             "lift_reported": lifting[row] >= 0}
    return {"stops": stops, "arrivals": arrivals}


def visits(stops: dict[str, np.ndarray], cp: CompiledPlans, params: CoverageParams, utc_offset_min: int
           ) -> dict[str, np.ndarray]:
    """Stops → visits: a run of stops at one point (no more than `visit_run_gap_s` apart) is a visit when
    the bin lifter went up in it — required when the truck reports its lifter, since a truck waiting at a
    light inside a point's circle is not collecting — or, with no lifter reported, when it lasted
    `visit_min_dwell_s`. Returns {sched, occ, point, ts (first), last, lift} with the occurrence of the
    schedule's window the visit began in (−1 outside every window)."""
    if stops["ts"].size == 0:
        z = np.zeros(0, np.int64)
        return {"sched": z.astype(np.int32), "occ": z, "point": z, "ts": z, "last": z, "lift": z.astype(bool)}
    order = np.lexsort((stops["ts"], stops["point"]))
    pt, ts = stops["point"][order], stops["ts"][order]
    lift, rep = stops["lift"][order], stops["lift_reported"][order]
    new = np.ones(ts.size, bool)
    new[1:] = (pt[1:] != pt[:-1]) | (ts[1:] - ts[:-1] > params.visit_run_gap_s * 1000)
    start = np.flatnonzero(new)
    first = ts[start]
    last = np.maximum.reduceat(ts, start)
    any_lift = np.logical_or.reduceat(lift, start)
    reported = np.logical_or.reduceat(rep, start)
    ok = any_lift | (~reported & ((last - first) >= params.visit_min_dwell_s * 1000))
    sch = stops["sched"][order][start][ok]
    from tracker.windows import local_day, local_minute_of_day

    f0 = first[ok]
    occ = cp.sched_windows.occurrence(sch, local_minute_of_day(f0, utc_offset_min).astype(np.int64),
                                      local_day(f0, utc_offset_min))
    occ_day = np.where(occ >= 0, occ // 16, 0)
    valid = (occ_day >= cp.sched_days[sch, 0]) & (occ_day <= cp.sched_days[sch, 1])
    occ = np.where(valid, occ, -1)
    return {"sched": sch, "occ": occ, "point": pt[start][ok], "ts": f0, "last": last[ok], "lift": any_lift[ok]}


def planned_points(cp: CompiledPlans, sp: SchedulePlaces, days: list[int]) -> dict[str, np.ndarray]:
    """Every (schedule, occurrence, point) the schedules call for on the given local epoch days."""
    ws = cp.sched_windows
    n = len(cp.plans.collection_schedules)
    out_s, out_o = [], []
    for d in days:
        for j in range(ws.length_min.shape[1]):
            has = (ws.length_min[:n, j] > 0) & (cp.sched_days[:n, 0] <= d) & (d <= cp.sched_days[:n, 1])
            out_s.append(np.flatnonzero(has).astype(np.int32))
            out_o.append(np.full(int(has.sum()), d * 16 + j, np.int64))
    sched = np.concatenate(out_s) if out_s else np.zeros(0, np.int32)
    occ = np.concatenate(out_o) if out_o else np.zeros(0, np.int64)
    cnt = (sp.point_ptr[sched + 1] - sp.point_ptr[sched]).astype(np.int64)
    srow = np.repeat(np.arange(sched.size), cnt)
    k = np.arange(srow.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(sp.point_ptr[sched], cnt)
    return {"sched": sched[srow], "occ": occ[srow], "point": k.astype(np.int64)}


def judge(rows: dict[str, np.ndarray], ev: dict[str, dict[str, np.ndarray]], cp: CompiledPlans,
          sp: SchedulePlaces, utc_offset_min: int, params: CoverageParams, gp: dict[str, np.ndarray] | None = None,
          home: dict[str, np.ndarray] | None = None, grace_s: float = 0.0, in_progress_s: float = 600.0,
          visit_min_s: float = 60.0) -> dict[str, np.ndarray]:
    """Per planned (schedule, occurrence, point): the first visit inside the window (−1 none), dwell, lift
    seen, and the verdict the missed_collection rule gives — `collected`, `unverified` (a data gap long
    enough to drive there, stop `visit_min_s` and come back, or a stop inside the point at a gap's edge), `late` (still out on its round when the window
    closed and collected before returning home — see `work.round_bounds`), `pending` or `missed`; plus the
    facility arrival of the occurrence (first arrival from the window start to the round's last visit /
    window end + `arrival_within_s`; −1 none)."""
    from tracker.coverage.work import round_bounds

    n = rows["sched"].shape[0]
    ws, we = cp.sched_windows.bounds_ms(rows["sched"], rows["occ"], utc_offset_min)
    veh = cp.sched_veh[rows["sched"]] if n else np.zeros(0, np.int32)
    v = visits(ev["stops"], cp, params, utc_offset_min)
    first, last, lift = _visits(rows["point"], v, ws, we, n)
    verdict = np.where(first >= 0, "collected", "missed").astype(object)
    miss = np.flatnonzero(verdict == "missed")
    if gp is not None and miss.size:
        _, latest, _ = _visits(rows["point"], {**v, "last": v["ts"]}, ws, we, n)  # the latest visit's start
        lo, hi = _order_bounds(rows, first, latest, sp, ws, we, miss)
        sub = {k: v[miss] for k, v in rows.items()}
        cap = _gap_capacity(sub, gp, sp, veh[miss], lo, hi, params)
        verdict[miss[cap >= visit_min_s]] = "unverified"
        edge = _stopped_at_gap_edge(rows, ev["stops"], gp, veh, ws, we, np.flatnonzero(verdict == "missed"),
                                    params)
        verdict[edge] = "unverified"
    late_first = np.full(n, -1, np.int64)
    todo = np.flatnonzero(verdict == "missed")
    round_end = np.full(n, -1, np.int64)
    if todo.size and grace_s > 0:
        work = {"veh": cp.sched_veh[v["sched"]], "ts": v["ts"]}
        prog, end = round_bounds(veh[todo], ws[todo], we[todo], work, home, in_progress_s, grace_s)
        prog, end = _delivered(rows["sched"][todo], ws[todo], we[todo], v, ev["arrivals"], prog, end)
        arr_ts = ev["arrivals"]["ts"]
        newest = max(int(v["ts"].max()) if v["ts"].size else -1,
                     int(home["ts"].max()) if home is not None and home["ts"].size else -1,
                     int(arr_ts.max()) if arr_ts.size else -1)
        for k, r in enumerate(todo.tolist()):
            if not prog[k]:
                continue
            round_end[r] = end[k]
            f, _, _ = _visits(rows["point"][r:r + 1], v, ws[r:r + 1], end[k:k + 1], 1)
            late_first[r] = f[0]
            if f[0] >= 0:
                verdict[r] = "late"
            elif newest < end[k]:
                verdict[r] = "pending"
    arrival = _arrivals(rows, ev["arrivals"], ws, np.maximum(we, np.where(late_first >= 0, late_first, we)), params)
    dwell = np.where(first >= 0, (last - first) / 1000.0, 0.0)
    return {**rows, "window_start_ms": ws, "window_end_ms": we, "first_visit_ms": first, "dwell_s": dwell,
            "lift": lift, "visited": first >= 0, "late_visit_ms": late_first, "verdict": verdict,
            "round_end_ms": round_end, "arrival_ms": arrival}


def _stopped_at_gap_edge(rows: dict[str, np.ndarray], stops: dict[str, np.ndarray], gp: dict[str, np.ndarray],
                         veh: np.ndarray, ws: np.ndarray, we: np.ndarray, which: np.ndarray, params: CoverageParams
                         ) -> np.ndarray:
    """Rows of `which` whose truck was stopped inside the point right where a data gap (away from home) ends
    or begins (within `visit_run_gap_s`): the lift that makes the stop a visit may be in the missing data —
    unverified, not missed (the gap alone may be too short to have driven there and back)."""
    out = []
    if which.size == 0 or gp["veh"].size == 0 or stops["ts"].size == 0:
        return np.zeros(0, np.int64)
    run = params.visit_run_gap_s * 1000
    away = ~(gp["home0"] & gp["home1"])
    for r in which.tolist():
        st = stops["ts"][(stops["sched"] == rows["sched"][r]) & (stops["point"] == rows["point"][r])]
        st = st[(st >= ws[r] - run) & (st < we[r] + run)]
        if st.size == 0:
            continue
        g = (gp["veh"] == veh[r]) & away & (gp["t1"] > ws[r]) & (gp["t0"] < we[r])
        t0, t1 = gp["t0"][g], gp["t1"][g]
        near = ((st[:, None] >= t1[None, :]) & (st[:, None] <= t1[None, :] + run)) | \
               ((st[:, None] <= t0[None, :]) & (st[:, None] >= t0[None, :] - run))
        if near.any():
            out.append(r)
    return np.array(out, np.int64)


def _delivered(sched: np.ndarray, ws: np.ndarray, we: np.ndarray, v: dict[str, np.ndarray],
               arrivals: dict[str, np.ndarray], prog: np.ndarray, end: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """A refuse round ends where the refuse goes: at the schedule's facility as well as at home. A truck that
    reached its facility after its last visit of the window, before the window closed, had finished its round
    (not in progress); one still out when the window closed finishes it at its first arrival there after the
    close. (A truck that tips mid-round and comes back keeps collecting: only arrivals after the *last*
    visit count.)"""
    prog, end = prog.copy(), end.copy()
    if arrivals["ts"].size == 0:
        return prog, end
    for i in range(sched.shape[0]):
        a = arrivals["ts"][arrivals["sched"] == sched[i]]
        if a.size == 0:
            continue
        mine = v["last"][(v["sched"] == sched[i]) & (v["ts"] >= ws[i]) & (v["ts"] < we[i])]
        after = int(mine.max()) if mine.size else int(ws[i])
        if ((a > after) & (a <= we[i])).any():
            prog[i] = False
            continue
        later = a[a > we[i]]
        if prog[i] and later.size:
            end[i] = min(int(end[i]), int(later.min()))
    return prog, end


def _visits(point: np.ndarray, v: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray, n: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last visit time (−1 none) and lift seen, per row, among visits of the row's point in
    [a, b)."""
    first = np.full(n, -1, np.int64)
    last = np.full(n, -1, np.int64)
    lift = np.zeros(n, bool)
    if n == 0 or v["ts"].size == 0:
        return first, last, lift
    order = np.argsort(point, kind="stable")
    sk = point[order]
    pos = np.searchsorted(sk, v["point"], "left")
    end = np.searchsorted(sk, v["point"], "right")
    cnt = end - pos
    vi = np.repeat(np.arange(v["ts"].size), cnt)
    ri = order[np.arange(vi.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(pos, cnt)]
    t = v["ts"][vi]
    inside = (t >= a[ri]) & (t < b[ri])
    vi, ri, t = vi[inside], ri[inside], t[inside]
    big = np.iinfo(np.int64).max
    f = np.full(n, big, np.int64)
    np.minimum.at(f, ri, t)
    first = np.where(f == big, -1, f)
    np.maximum.at(last, ri, v["last"][vi])
    np.logical_or.at(lift, ri, v["lift"][vi])
    return first, last, lift


def _arrivals(rows: dict[str, np.ndarray], a: dict[str, np.ndarray], ws: np.ndarray, until: np.ndarray,
              params: CoverageParams) -> np.ndarray:
    n = rows["sched"].shape[0]
    arrival = np.full(n, -1, np.int64)
    if n == 0 or a["ts"].size == 0:
        return arrival
    order = np.argsort(a["sched"], kind="stable")
    s_sorted, t_sorted = a["sched"][order], a["ts"][order]
    lo = np.searchsorted(s_sorted, rows["sched"], "left")
    hi = np.searchsorted(s_sorted, rows["sched"], "right")
    cnt = hi - lo
    ri = np.repeat(np.arange(n), cnt)
    t = t_sorted[np.arange(ri.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)]
    ok = (t >= ws[ri]) & (t <= until[ri] + params.arrival_within_s * 1000)
    big = np.iinfo(np.int64).max
    f = np.full(n, big, np.int64)
    np.minimum.at(f, ri[ok], t[ok])
    return np.where(f == big, -1, f)


def _order_bounds(rows: dict[str, np.ndarray], first: np.ndarray, latest: np.ndarray, sp: SchedulePlaces,
                  ws: np.ndarray, we: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where in time each point of `which` belongs on its ordered round: after the arrival at an earlier
    point and before the arrival at a later one (the window's edges when there are none). A data gap
    elsewhere in the round cannot have hidden the visit. (Arrivals, not departures: a truck passing an
    earlier point again and waiting at a light inside it must not move the bound; and a later point's
    *latest* arrival — `latest`, the start of its last visit — since a truck without a lifter that waited at
    a light inside a later point on its way out "visited" it early, and that must not close the slot
    before the real visit.) Visited out of order: the order says nothing, the whole window."""
    lo, hi = ws[which].copy(), we[which].copy()
    key = rows["sched"].astype(np.int64) * (1 << 40) + rows["occ"]
    order = sp.point_order[rows["point"]]
    seen = first >= 0
    for k, a in enumerate(which.tolist()):
        same = (key == key[a]) & seen
        earlier = first[same & (order < order[a])]
        later = latest[same & (order > order[a])]
        if earlier.size:
            lo[k] = max(int(lo[k]), int(earlier.max()))
        if later.size:
            hi[k] = min(int(hi[k]), int(later.min()))
        if lo[k] >= hi[k]:
            lo[k], hi[k] = ws[a], we[a]
    return lo, hi


def _gap_capacity(rows: dict[str, np.ndarray], gp: dict[str, np.ndarray], sp: SchedulePlaces, veh: np.ndarray,
                  ws: np.ndarray, we: np.ndarray, params: CoverageParams) -> np.ndarray:
    """Per row: the longest stop a data gap of the truck in the window could hide at the point (the gap
    less the drive there and back at `gap_transit_kmh`); gaps that start and end at home hide nothing."""
    from geofences.local import dist_m

    out = np.zeros(veh.shape[0])
    if gp["veh"].size == 0:
        return out
    r, k, ov = W.gaps_in_windows(gp, veh, ws, we)
    pll = sp.point_lonlat[rows["point"][r]]
    d = dist_m(gp["lon0"][k], gp["lat0"][k], pll[:, 0], pll[:, 1]) + dist_m(pll[:, 0], pll[:, 1], gp["lon1"][k], gp["lat1"][k])
    cap = ov - np.nan_to_num(d, nan=0.0) / (params.gap_transit_kmh / 3.6)
    np.maximum.at(out, r, np.clip(cap, 0.0, None))
    return out
