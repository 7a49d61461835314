"""Sweepers and sprinklers: fixes → corridor pairs → passes → coverage per (segment, window occurrence).

A *valid pass* is made of steps between consecutive fixes of one vehicle on one segment's corridor, in one
occurrence of the plan's windows, by a vehicle of the plan's kind (the plan's own vehicle unless
`any_vehicle`), with the device on and the speed in the band. Each fix gets a state (`kernels.ST_*`):

* VALID — device on (or not reported and `device_missing = "count"`), speed within the band ± tolerance;
* PAUSED — device on but slower than the band: a sweeper waiting at a light, or starting off; it covers what
  it moves, which is next to nothing, and does not end the pass;
* OFF — the device was switched off at this fix; JT/T 808 terminals report a status change at once, so the
  device was on during the step *into* this fix, which still counts, and the pass ends here;
* BREAK — too fast for the band (transit with the brush left on): no step into or out of it counts.

The per-step rule and the pass logic (gaps, multipath jumps, direction reversals) are in `kernels.passes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from tracker.coverage import kernels as K
from tracker.coverage.compiled import CompiledPlans
from tracker.coverage.params import CoverageParams


@dataclass
class WorkFixes:
    """Fixes as arrays, sorted by (vehicle, ts): what the pipeline reads."""

    vkey: npt.NDArray[np.int32]  # any id unique per vehicle (passes never join two vehicles)
    veh: npt.NDArray[np.int32]  # compiled vehicle index (−1: no plan)
    kind: npt.NDArray[np.int8]  # tracker.world kind code
    ts_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    device: npt.NDArray[np.int8]  # −1 not reported, 0 off, 1 on
    prev_ts_ms: npt.NDArray[np.int64]  # the vehicle's previous fix (−1 for its first)
    minute: npt.NDArray[np.int16]  # local minute of day
    day: npt.NDArray[np.int32]  # local epoch day
    lifting: npt.NDArray[np.int8] | None = None  # bin lifter (refuse trucks): −1 not reported, 0, 1


PAIR_COLS = ("vkey", "veh", "ts", "seg", "occ", "s", "dist", "state", "prev_ts", "speed", "unverified")


def match(f: WorkFixes, cp: CompiledPlans, params: CoverageParams) -> tuple[np.ndarray, ...]:
    """(row, segment, measure s, distance) for fixes inside a corridor they may serve."""
    gr, pc = cp.grid, cp.piece
    n = f.ts_ms.shape[0]
    if n == 0 or cp.n_segments == 0:
        z = np.zeros(0)
        return z.astype(np.int64), z.astype(np.int32), z, z
    x, y = cp.to_xy(f.lon, f.lat)
    cap = 2 * n + 64
    while True:
        k, row, seg, s, d = K.match(x, y, f.veh, f.kind, gr["gx0"], gr["gy0"], gr["gm"], gr["nx"], gr["ny"],
                                    gr["ptr"], gr["piece"], gr["vkeys"], gr["vptr"], gr["vpiece"], pc["seg"],
                                    pc["x0"], pc["y0"], pc["dx"], pc["dy"], pc["len2"], pc["s0"], pc["len"], cp.seg_veh, cp.seg_kind, cp.seg_corr_m,
                                    params.any_vehicle, cap)
        if k >= 0:
            return row[:k], seg[:k], s[:k], d[:k]
        cap *= 4


def pairs(f: WorkFixes, cp: CompiledPlans, params: CoverageParams, windows_only: bool = True
          ) -> dict[str, np.ndarray]:
    """Corridor pairs with each fix's state and window occurrence (−1 outside every window of the segment's
    plan; such pairs are dropped unless `windows_only` is False — late work is judged from them). `fix` is
    the row in `f`."""
    row, seg, s, dist = match(f, cp, params)
    plan = cp.seg_plan[seg]
    day = f.day[row]
    occ = cp.plan_windows.occurrence(plan, f.minute[row].astype(np.int64), day)
    occ_day = np.where(occ >= 0, occ // 16, 0)
    days = cp.plan_days[plan]
    valid_day = (occ_day >= days[:, 0]) & (occ_day <= days[:, 1])
    occ = np.where(valid_day, occ, -1)
    keep = (occ >= 0) | (not windows_only)
    row, seg, s, occ, plan, dist = row[keep], seg[keep], s[keep], occ[keep], plan[keep], dist[keep]
    dev = f.device[row]
    speed = f.speed_kmh[row]
    tol = params.band_tolerance_kmh
    need = cp.plan_device[plan]
    off = need & (dev == 0)
    unknown_ignored = need & (dev < 0) & (params.device_missing == "ignore")
    fast = speed > cp.plan_vmax[plan] + tol
    slow = speed < cp.plan_vmin[plan] - tol
    state = np.where(off, K.ST_OFF, np.where(fast | unknown_ignored, K.ST_BREAK,
                                             np.where(slow, K.ST_PAUSED, K.ST_VALID))).astype(np.int8)
    return {"fix": row, "vkey": f.vkey[row], "veh": f.veh[row], "ts": f.ts_ms[row], "seg": seg.astype(np.int32),
            "occ": occ,
            "s": s, "dist": dist, "state": state, "prev_ts": f.prev_ts_ms[row], "speed": speed, "unverified": need & (dev < 0)}


def passes(p: dict[str, np.ndarray], cp: CompiledPlans, params: CoverageParams, presorted: bool = False
           ) -> dict[str, np.ndarray]:
    """Corridor pairs → passes: segment, occurrence, vkey, lo_m, hi_m, t0_ms, t1_ms, fixes."""
    if p["ts"].size == 0:
        z = np.zeros(0)
        return {"seg": z.astype(np.int32), "occ": z.astype(np.int64), "vkey": z.astype(np.int32), "lo": z,
                "hi": z.copy(), "t0": z.astype(np.int64), "t1": z.astype(np.int64), "fixes": z.astype(np.int32)}
    if not presorted:
        order = np.lexsort((p["dist"], p["seg"], p["ts"], p["vkey"]))
        p = {k: v[order] for k, v in p.items()}
    vmax_ms = (cp.plan_vmax[cp.seg_plan] + params.band_tolerance_kmh) / 3.6
    p = _smooth_spikes(_choose(p, cp, params), params.max_step_s * 1000.0)
    p = _drop_lone_outliers(p, vmax_ms, params)
    k, seg, occ, veh, lo, hi, t0, t1, nfix = K.passes(
        p["vkey"], p["ts"], p["seg"], p["occ"], p["s"], p["dist"], p["state"], p["prev_ts"], p["speed"] / 3600.0,
        cp.n_segments, vmax_ms / 1000.0,
        params.max_step_s * 1000.0, params.bridge_max_gap_s * 1000.0, params.step_slack_m, params.reverse_min_m)
    length = cp.seg_len_m[seg[:k]]
    lo = np.clip(lo[:k], 0.0, None)
    hi = np.minimum(hi[:k], length)
    lo = np.where(lo <= params.end_snap_m, 0.0, lo)
    hi = np.where(hi >= length - params.end_snap_m, length, hi)
    return {"seg": seg[:k], "occ": occ[:k], "vkey": veh[:k], "lo": lo, "hi": hi, "t0": t0[:k], "t1": t1[:k],
            "fixes": nfix[:k]}


def _choose(p: dict[str, np.ndarray], cp: CompiledPlans, params: CoverageParams) -> dict[str, np.ndarray]:
    """One candidate measure per fix on a segment that folds back on itself (see `kernels.choose`). Input
    sorted by (vkey, ts, seg); only the streams that have alternatives at all go through the path search."""
    vk, sg, oc, ts = p["vkey"], p["seg"], p["occ"], p["ts"]
    if ts.size < 2:
        return p
    dup = (vk[1:] == vk[:-1]) & (ts[1:] == ts[:-1]) & (sg[1:] == sg[:-1])
    if not dup.any():
        return p
    stream = vk.astype(np.int64) * (1 << 32) + sg
    folded = np.unique(stream[1:][dup])
    inv = np.isin(stream, folded)
    sub = np.flatnonzero(inv)
    order = sub[np.lexsort((p["dist"][sub], ts[sub], oc[sub], sg[sub], vk[sub]))]
    keep = K.choose(vk[order], sg[order], oc[order], ts[order], p["s"][order], p["dist"][order], p["state"][order],
                    p["speed"][order] / 3600.0, params.bridge_max_gap_s * 1000.0, 1.0, params.reverse_min_m,
                    2 * params.reverse_min_m, cp.seg_len_m, 2 * params.end_snap_m, 10 * params.reverse_min_m)
    drop = np.zeros(ts.size, bool)
    drop[order[~keep]] = True
    if not drop.any():
        return p
    return {k: v[~drop] for k, v in p.items()}


def _drop_lone_outliers(p: dict[str, np.ndarray], vmax_ms: np.ndarray, params: CoverageParams
                        ) -> dict[str, np.ndarray]:
    """A lone fix thrown `reverse_min_m` or more along the segment beyond both its neighbours (a spike back
    or ahead: multipath, or σ 10 m noise on a slow sweeper), while the neighbours agree with each other, is
    dropped: otherwise it reads as the sweeper turning round (a 30 m step back) or as a jump the next fix contradicts,
    the pass is cut there and the stretch between is lost. So is a working fix whose step to the next one is
    too long for the band (speed × time + slack) while the step over it is not, and the fix after the next
    one (if any) does not contradict it: the pass logic holds back the newer fix of an implausible step, and
    lost the good fix after a stray one — the pass's last fix, at the segment's end, where the device went
    off. Streams are (vehicle, segment, occurrence) in time order; input order is kept. A real turn is seen
    by the fixes after it, so it never has two agreeing neighbours on the far side."""
    n = p["ts"].size
    if n < 3:
        return p
    vk, sg, oc, ts, sm, st = p["vkey"], p["seg"], p["occ"], p["ts"], p["s"], p["state"]
    step = params.max_step_s * 1000.0
    same = _same_stream(vk, sg, oc) & (ts[1:] > ts[:-1])
    inner = np.zeros(n, bool)  # both neighbours in the same stream, close in time
    inner[1:-1] = same[:-1] & same[1:] & (ts[1:-1] - ts[:-2] <= step) & (ts[2:] - ts[1:-1] <= step)
    i = np.flatnonzero(inner)
    if i.size == 0:
        return p
    a, b = i - 1, i + 1
    v = vmax_ms[sg[i]] / 1000.0
    agree = np.abs(sm[b] - sm[a]) <= v * (ts[b] - ts[a]) + params.step_slack_m
    r = params.reverse_min_m
    spike = (sm[i] <= np.minimum(sm[a], sm[b]) - r) | (sm[i] >= np.maximum(sm[a], sm[b]) + r)
    # or the step out of it too long for the band, where the step over it is not, and no fix after contradicts
    # the next one: the pass logic holds back the *newer* fix of an implausible step — the wrong one when the
    # fix before it strayed — and drops it only when the fix after it comes back to the pass
    slack = params.step_slack_m
    c = np.minimum(i + 2, n - 1)
    has_c = (i + 2 < n) & np.r_[same, False][b] & (ts[c] - ts[b] <= step)
    b_stands = ~has_c | (np.abs(sm[c] - sm[b]) <= v * (ts[c] - ts[b]) + slack)
    jump = (np.abs(sm[b] - sm[i]) > v * (ts[b] - ts[i]) + slack) & b_stands
    lone = agree & (st[a] <= K.ST_PAUSED) & ((spike & (st[i] == st[a]))
                                             | (jump & (st[i] <= K.ST_PAUSED) & (st[b] <= K.ST_OFF)))
    if not lone.any():
        return p
    keep = np.ones(n, bool)
    keep[i[lone]] = False
    return {k: v_[keep] for k, v_ in p.items()}


def _same_stream(vk: np.ndarray, sg: np.ndarray, oc: np.ndarray) -> np.ndarray:
    """Per consecutive pair of rows: both of one (vehicle, segment, occurrence) stream."""
    return (vk[1:] == vk[:-1]) & (sg[1:] == sg[:-1]) & (oc[1:] == oc[:-1])


def _smooth_spikes(p: dict[str, np.ndarray], max_step_ms: float) -> dict[str, np.ndarray]:
    """A lone too-fast reading between two working fixes of the same stream is GPS speed noise (σ ≈ 1–2
    km/h around a band top of 8), not a transit: it gets the VALID state. Too fast for two fixes in a row is
    real. (The sweeping_too_fast rule reads raw speeds and debounces on its own.) Input order is kept."""
    brk = p["state"] == K.ST_BREAK
    if not brk.any():
        return p
    stream = p["vkey"].astype(np.int64) * (1 << 32) + p["seg"]
    sub = np.flatnonzero(np.isin(stream, np.unique(stream[brk])))
    order = sub[np.lexsort((p["ts"][sub], p["occ"][sub], p["seg"][sub], p["vkey"][sub]))]
    vk, sg, oc, ts, st = (p[c][order] for c in ("vkey", "seg", "occ", "ts", "state"))
    first = np.ones(ts.size, bool)  # one row per (stream, time): alternatives share the state
    first[1:] = ~_same_stream(vk, sg, oc) | (ts[1:] != ts[:-1])
    u = np.flatnonzero(first)
    same = _same_stream(vk[u], sg[u], oc[u])
    close = same & (ts[u][1:] - ts[u][:-1] <= max_step_ms)
    su = st[u]
    prev_ok = np.r_[False, close & (su[:-1] <= K.ST_PAUSED)]
    next_ok = np.r_[close & (su[1:] <= K.ST_OFF), False]
    lone = (su == K.ST_BREAK) & prev_ok & next_ok
    if not lone.any():
        return p
    group = np.cumsum(first) - 1
    fix_rows = lone[group]
    state = p["state"].copy()
    state[order[fix_rows]] = K.ST_VALID
    return {**p, "state": state}


def planned_rows(cp: CompiledPlans, days: list[int], segments: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every (segment, occurrence) the plans call for on the given local epoch days."""
    segs = np.arange(cp.n_segments, dtype=np.int32) if segments is None else np.asarray(segments, np.int32)
    out_seg, out_occ = [], []
    ws = cp.plan_windows
    for d in days:
        plan = cp.seg_plan[segs]
        ok = (cp.plan_days[plan, 0] <= d) & (d <= cp.plan_days[plan, 1])
        for j in range(ws.length_min.shape[1]):
            has = ok & (ws.length_min[plan, j] > 0)
            if has.any():
                out_seg.append(segs[has])
                out_occ.append(np.full(int(has.sum()), d * 16 + j, np.int64))
    if not out_seg:
        return {"seg": np.zeros(0, np.int32), "occ": np.zeros(0, np.int64)}
    return {"seg": np.concatenate(out_seg), "occ": np.concatenate(out_occ)}


def gaps(f: WorkFixes, params: CoverageParams, at_home: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Data gaps of vehicles with a plan: consecutive fixes at least `gap_min_s` apart — (veh, t0, t1), the
    positions before and after (lon0, lat0, lon1, lat1) and whether those fixes were at home (a depot)."""
    sel = np.flatnonzero((f.prev_ts_ms >= 0) & (f.ts_ms - f.prev_ts_ms >= params.gap_min_s * 1000) & (f.veh >= 0))
    before = np.maximum(sel - 1, 0)
    home = np.zeros(f.ts_ms.shape[0], bool) if at_home is None else at_home
    out = {"veh": f.veh[sel], "t0": f.prev_ts_ms[sel], "t1": f.ts_ms[sel], "lon0": f.lon[before],
           "lat0": f.lat[before], "lon1": f.lon[sel], "lat1": f.lat[sel], "home0": home[before], "home1": home[sel]}
    if f.ts_ms.size:  # a vehicle first heard from well after the data began: silent since (see `leading_gaps`)
        lead = leading_gaps(f.veh, f.ts_ms, f.prev_ts_ms < 0, f.lon, f.lat, home, int(f.ts_ms.min()), params)
        out = {k: np.concatenate([out[k], lead[k]]) for k in out}
    return out


def leading_gaps(veh: np.ndarray, ts: np.ndarray, first: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                 home: np.ndarray, since_ms: int, params: CoverageParams) -> dict[str, np.ndarray]:
    """A vehicle whose first fix (`first`) comes `gap_min_s` or more after the data began (`since_ms`) was
    silent until then: a data gap from `since_ms`, as if it had been where it appears (its first position
    on both sides; at home on both sides when it appears at home: a parked terminal waking up hides
    nothing). Without it, a vehicle whose GPS was out when the data began and came back mid-segment was
    judged on the tail of its work alone."""
    sel = np.flatnonzero(first & (veh >= 0) & (ts - since_ms >= params.gap_min_s * 1000))
    return {"veh": veh[sel], "t0": np.full(sel.size, since_ms, np.int64), "t1": ts[sel], "lon0": lon[sel],
            "lat0": lat[sel], "lon1": lon[sel], "lat1": lat[sel], "home0": home[sel], "home1": home[sel]}


def seg_distance_m(cp: CompiledPlans, seg: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Distance from points to segment centrelines (one segment per point), metres."""
    out = np.full(seg.shape[0], np.inf)
    if seg.size == 0:
        return out
    x, y = cp.to_xy(lon, lat)
    pc = cp.piece
    for g in np.unique(seg).tolist():
        i = np.flatnonzero(seg == g)
        p = np.flatnonzero(pc["seg"] == g)
        t = ((x[i, None] - pc["x0"][p]) * pc["dx"][p] + (y[i, None] - pc["y0"][p]) * pc["dy"][p]) / pc["len2"][p]
        t = np.clip(t, 0.0, 1.0)
        dx = x[i, None] - (pc["x0"][p] + t * pc["dx"][p])
        dy = y[i, None] - (pc["y0"][p] + t * pc["dy"][p])
        out[i] = np.sqrt(dx * dx + dy * dy).min(axis=1)
    return out


def gaps_in_windows(gp: dict[str, np.ndarray], veh: np.ndarray, ws: np.ndarray, we: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (row, gap) pair where a data gap of the row's vehicle (`veh`) overlaps the row's window
    [`ws`, `we`] — except gaps that began and ended at home, which hide nothing — as (row index, gap index,
    overlap seconds)."""
    order = np.argsort(gp["veh"], kind="stable")
    gv = gp["veh"][order]
    lo = np.searchsorted(gv, veh, "left")
    hi = np.searchsorted(gv, veh, "right")
    cnt = hi - lo
    r = np.repeat(np.arange(veh.shape[0]), cnt)
    k = order[np.arange(r.size) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)]
    ov = (np.minimum(gp["t1"][k], we[r]) - np.maximum(gp["t0"][k], ws[r])) / 1000.0
    inside = (ov > 0) & ~(gp["home0"][k] & gp["home1"][k])
    return r[inside], k[inside], ov[inside]


def gap_overlap_s(rows: dict[str, np.ndarray], gp: dict[str, np.ndarray], cp: CompiledPlans,
                  utc_offset_min: int, params: CoverageParams | None = None) -> np.ndarray:
    """Per (segment, occurrence) row: the most working time a data gap of the plan's vehicle inside the
    occurrence could have hidden — the gap's part inside the window, less the time to drive (at
    `gap_transit_kmh`) from where the vehicle was before the gap to the segment and on to where it was after.
    A gap that began and ended at home (a parked terminal dozing in the depot) hides nothing."""
    out = np.zeros(rows["seg"].shape[0])
    if gp["veh"].size == 0 or out.size == 0:
        return out
    plan = cp.seg_plan[rows["seg"]]
    ws, we = cp.plan_windows.bounds_ms(plan, rows["occ"], utc_offset_min)
    r, k, ov = gaps_in_windows(gp, cp.plan_veh[plan], ws, we)
    if params is not None and r.size:
        g = rows["seg"][r]
        d = seg_distance_m(cp, g, gp["lon0"][k], gp["lat0"][k]) + seg_distance_m(cp, g, gp["lon1"][k], gp["lat1"][k])
        ov = ov - d / (params.gap_transit_kmh / 3.6)
    np.maximum.at(out, r, np.clip(ov, 0.0, None))
    return out


def coverage(rows: dict[str, np.ndarray], ps: dict[str, np.ndarray], cp: CompiledPlans,
             params: CoverageParams, gap_s: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Coverage of the given (segment, occurrence) rows from passes.

    Returned per row: length_m, required passes, covered_pass_m (Σ over the length of min(passes, required)),
    covered_m (≥ 1 pass), complete_m (≥ required), passes_done, coverage_pct = covered_pass_m /
    (required × length) and the status: covered / partial / missed from `covered_min_pct` and
    `missed_below_pct` — or *unverified* when the vehicle's data gap in the window (`gap_s`, see
    `gap_overlap_s`) was long enough to hide the missing work: we cannot tell, and the signal-loss rule
    owns that story. `gap_may_hide` marks every row whose coverage_pct is only a lower bound for that reason,
    covered ones included (a covered row needs no excuse, but its percentage is not a measurement of all of
    the work)."""
    seg, occ = rows["seg"], rows["occ"]
    n = seg.shape[0]
    nbins = cp.seg_nbins[seg]
    bin0 = np.concatenate([[0], np.cumsum(nbins)[:-1]]).astype(np.int64) if n else np.zeros(0, np.int64)
    key_rows = seg.astype(np.int64) * (1 << 40) + occ
    order = np.argsort(key_rows, kind="stable")
    key_p = ps["seg"].astype(np.int64) * (1 << 40) + ps["occ"]
    pos = np.searchsorted(key_rows[order], key_p)
    pos = np.minimum(pos, max(n - 1, 0))
    hit = (key_rows[order][pos] == key_p) if n else np.zeros(key_p.shape, bool)
    prow = np.where(hit, order[pos] if n else 0, -1).astype(np.int64)
    counts = K.bin_counts(prow, ps["lo"], ps["hi"], bin0, nbins, cp.bin_m, int(nbins.sum()))
    length = cp.seg_len_m[seg]
    req = cp.seg_req[seg]
    weighted, touched, complete, done = K.summarise(counts, bin0, nbins, length, req, cp.bin_m,
                                                    params.complete_bin_share)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(length > 0, 100.0 * weighted / (req * length), 0.0)
    status = np.where(pct >= params.covered_min_pct, "covered",
                      np.where(pct < params.missed_below_pct, "missed", "partial")).astype(object)
    gap = np.zeros(n) if gap_s is None else gap_s
    missing_s = (req * length - weighted) / (cp.plan_vmax[cp.seg_plan[seg]] / 3.6) if n else np.zeros(0)
    may_hide = (pct < 100.0) & (gap > 0) & (gap >= params.gap_excuse_share * missing_s)
    status[may_hide & (pct < params.covered_min_pct)] = "unverified"
    return {"seg": seg, "occ": occ, "length_m": length, "required": req, "covered_pass_m": weighted, "gap_s": gap,
            "gap_may_hide": may_hide,
            "covered_m": touched, "complete_m": complete, "passes_done": done, "coverage_pct": pct,
            "status": status, "counts": counts, "bin0": bin0, "nbins": nbins}


def home_transitions(veh: np.ndarray, ts: np.ndarray, at_home: np.ndarray, n: np.ndarray | None = None,
                     min_fixes: int = 2) -> dict[str, np.ndarray]:
    """(veh, ts, home, n) rows where a vehicle's at-home flag changes — first fix of each vehicle included,
    `n` the fixes in that state — from (veh, ts)-sorted fixes (or from earlier transitions, with their `n`).
    A state seen on fewer than `min_fixes` consecutive fixes is GPS noise (a parked vehicle's fix thrown into
    the depot next door) and does not count — a real call at the depot, however short, is several fixes
    (driving in and out reports every 10 s). A round is judged from these few rows."""
    w = np.ones(veh.size, np.int64) if n is None else np.asarray(n, np.int64)
    if veh.size == 0:
        return {"veh": veh, "ts": ts, "home": at_home, "n": w}
    h = at_home.astype(bool).copy()
    for _ in range(2):  # flip short runs to their surroundings (twice: a flip can merge two short runs)
        start = np.flatnonzero(np.r_[True, (veh[1:] != veh[:-1]) | (h[1:] != h[:-1])])
        count = np.add.reduceat(w, start)
        first_of_vehicle = np.r_[True, veh[start[1:]] != veh[start[:-1]]]
        last_of_vehicle = np.r_[veh[start[1:]] != veh[start[:-1]], True]
        short = (count < min_fixes) & ~first_of_vehicle & ~last_of_vehicle
        if not short.any():
            break
        run = np.repeat(np.arange(start.size), np.diff(np.r_[start, veh.size]))
        h = np.where(short[run], ~h, h)
    start = np.flatnonzero(np.r_[True, (veh[1:] != veh[:-1]) | (h[1:] != h[:-1])])
    return {"veh": veh[start], "ts": ts[start], "home": h[start], "n": np.add.reduceat(w, start)}


def round_bounds(veh: np.ndarray, ws: np.ndarray, we: np.ndarray, work_ts: dict[str, np.ndarray],
                 home: dict[str, np.ndarray] | None, in_progress_s: float, grace_s: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Was each vehicle still out on its round when its window [ws, we) closed, and until when may it finish?

    In progress: it worked — or, where depot / parking fences exist (`home`: at-home transitions, see
    `home_transitions`), left home — within `in_progress_s` before `we` (a vehicle idle for longer had
    finished), and it was not back home at `we`. The round ends at its return home, at the latest
    `we + grace_s`.
    Returns (in_progress, round_end_ms) per row."""
    n = veh.shape[0]
    prog = np.zeros(n, bool)
    end = we + int(grace_s * 1000)
    wo = np.argsort(work_ts["veh"], kind="stable")
    wv, wt = work_ts["veh"][wo], work_ts["ts"][wo]
    if home is not None:
        ho = np.lexsort((home["ts"], home["veh"]))
        hv, ht, hh = home["veh"][ho], home["ts"][ho], home["home"][ho]
    for i in range(n):
        w = wt[np.searchsorted(wv, veh[i], "left"):np.searchsorted(wv, veh[i], "right")]
        w = w[(w >= ws[i]) & (w <= we[i])]
        recent = w.size > 0 and we[i] - int(w.max()) <= in_progress_s * 1000
        if home is None or home["veh"].size == 0:
            prog[i] = recent
            continue
        a, b = np.searchsorted(hv, veh[i], "left"), np.searchsorted(hv, veh[i], "right")
        t, h = ht[a:b], hh[a:b]
        before = t <= we[i]
        if not before.any() or h[before][-1]:
            continue  # no data yet, or at home when the window closed: the round was over
        left = t[before][-1]  # the transition away from home (or the first fix, away)
        if not (recent or we[i] - left <= in_progress_s * 1000):
            continue  # out, but idle for a while: the round was over
        prog[i] = True
        back = t[~before & h]
        if back.size:
            end[i] = min(int(end[i]), int(back.min()))
    return prog, end


def judge(rows: dict[str, np.ndarray], pr: dict[str, np.ndarray], gp: dict[str, np.ndarray], cp: CompiledPlans,
          params: CoverageParams, utc_offset_min: int, alert_below_pct: float, grace_s: float,
          in_progress_s: float, home: dict[str, np.ndarray] | None = None, sorted_pairs: bool = False
          ) -> dict[str, np.ndarray]:
    """Coverage of (segment, occurrence) rows and the verdict the missed_segment rule gives: `covered`
    (≥ alert_below_pct in the window), `unverified` (a data gap could hide the work), `late` (the vehicle was
    still on its round when the window closed and finished the segment before the round ended — see
    `round_bounds`), `pending` (still on its round: too early to say) or `missed`.

    `pr` are corridor pairs (any window, or none: late work lies outside the window; `sorted_pairs`: already
    in (vehicle, ts, segment) order, as `pairs` returns them), `gp` data gaps, `home` depot fixes of plan
    vehicles. Rows are judged as of the newest pair time (a report of a past day: all)."""
    strict = select(pr, pr["occ"] >= 0)
    cov = coverage(rows, passes(strict, cp, params, presorted=sorted_pairs), cp, params,
                   gap_overlap_s(rows, gp, cp, utc_offset_min, params))
    n = rows["seg"].shape[0]
    late = np.full(n, np.nan)
    verdict = np.where(cov["coverage_pct"] >= alert_below_pct, "covered", "missed").astype(object)
    verdict[(verdict == "missed") & (cov["status"] == "unverified")] = "unverified"
    todo = np.flatnonzero(verdict == "missed")
    round_end = np.full(n, -1, np.int64)
    if todo.size and grace_s > 0 and pr["ts"].size:
        plan = cp.seg_plan[rows["seg"][todo]]
        ws, we = cp.plan_windows.bounds_ms(plan, rows["occ"][todo], utc_offset_min)
        veh = cp.plan_veh[plan]
        own = (pr["veh"] == cp.plan_veh[cp.seg_plan[pr["seg"]]]) & (pr["state"] <= K.ST_PAUSED)
        work = {"veh": pr["veh"][own], "ts": pr["ts"][own]}
        prog, end = round_bounds(veh, ws, we, work, home, in_progress_s, grace_s)
        newest = int(pr["ts"].max())
        by_seg = np.argsort(pr["seg"], kind="stable")
        seg_sorted = pr["seg"][by_seg]
        parts, late_rows = [], []
        for k, r in enumerate(todo.tolist()):
            if not prog[k]:
                continue
            round_end[r] = end[k]
            a = np.searchsorted(seg_sorted, rows["seg"][r], "left")
            b = np.searchsorted(seg_sorted, rows["seg"][r], "right")
            idx = by_seg[a:b]
            parts.append((idx[(pr["ts"][idx] >= ws[k]) & (pr["ts"][idx] <= end[k])], rows["occ"][r]))
            late_rows.append(r)
        if late_rows:  # every round still out, judged in one go: its pairs up to the round's end, as its window
            idx = np.concatenate([p_[0] for p_ in parts])
            lp = {c: v[idx] for c, v in pr.items()}
            lp["occ"] = np.concatenate([np.full(p_[0].size, p_[1], np.int64) for p_ in parts])
            # one stream per judged row, even where two windows of a segment overlap in time
            lp["vkey"] = np.concatenate([np.full(p_[0].size, i, np.int32) for i, p_ in enumerate(parts)])
            lr = np.asarray(late_rows)
            got = coverage({"seg": rows["seg"][lr], "occ": rows["occ"][lr]}, passes(lp, cp, params), cp, params)
            late[lr] = got["coverage_pct"]
            for r, ok, e in zip(lr.tolist(), (got["coverage_pct"] >= alert_below_pct).tolist(),
                                round_end[lr].tolist(), strict=True):
                if ok:
                    verdict[r] = "late"
                elif newest < e:
                    verdict[r] = "pending"
    return {**cov, "late_pct": late, "verdict": verdict, "round_end_ms": round_end}


def select(d: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in d.items()}


def fixes_from_frame(df: pl.DataFrame, cp: CompiledPlans, utc_offset_min: int,
                     kinds: dict[str, str] | None = None) -> tuple[WorkFixes, list[str]]:
    """A fix frame (FIX_SCHEMA columns; any order, duplicates and invalid fixes allowed) → `WorkFixes`
    (valid, de-duplicated by (vehicle, ts) keeping the first delivered, sorted), plus the vehicle id of each
    `vkey`. `kinds` maps vehicle id → kind for vehicles without a plan (needed only with `any_vehicle`).
    Vehicle ids become enum codes first: sorting 8 million rows by an integer is what makes a day fast."""
    names = df.get_column("vehicle_id").drop_nulls().unique().sort().to_list()
    cols = [pl.col("vehicle_id").cast(pl.Enum(names)).alias("v"), "ts_ms", "lon", "lat",
            pl.col("speed_kmh").cast(pl.Float64).fill_null(0.0), pl.col("device_on").cast(pl.Int8).fill_null(-1)]
    if "lifting" in df.columns:
        cols.append(pl.col("lifting").cast(pl.Int8).fill_null(-1))
    ok = (pl.col("lon").is_not_null() & pl.col("lat").is_not_null() & (pl.col("lon") != 0.0) & (pl.col("lat") != 0.0)
          & pl.col("vehicle_id").is_not_null())
    if "valid" in df.columns:
        ok = ok & pl.col("valid").fill_null(True)
    # sort and de-duplicate in polars (parallel, no numpy gathers): (vehicle, ts), the first delivered wins
    f = (df.lazy().filter(ok).select(cols).with_row_index("_i").sort(["v", "ts_ms", "_i"])
         .filter((pl.col("v") != pl.col("v").shift(1)) | (pl.col("ts_ms") != pl.col("ts_ms").shift(1))
                 | pl.col("v").shift(1).is_null())
         .collect())
    code = f.get_column("v").to_physical().to_numpy().astype(np.int32)
    ts = f.get_column("ts_ms").to_numpy().astype(np.int64)
    veh_of_key = cp.vehicle_codes(names)
    kind_of_key = np.array([int(cp.veh_kind[c]) if c >= 0 else _kind_of(kinds, n) for c, n in
                            zip(veh_of_key.tolist(), names, strict=True)], np.int8).reshape(-1)
    prev = np.full(ts.size, -1, np.int64)
    if ts.size:
        prev[1:] = np.where(code[1:] == code[:-1], ts[:-1], -1)
    take = lambda c: f.get_column(c).to_numpy()  # noqa: E731
    q = (ts + utc_offset_min * 60_000) // 60_000  # local minutes since the epoch
    wf = WorkFixes(vkey=code, veh=veh_of_key[code] if ts.size else np.zeros(0, np.int32),
                   kind=kind_of_key[code] if ts.size else np.zeros(0, np.int8), ts_ms=ts,
                   lon=take("lon"), lat=take("lat"), speed_kmh=take("speed_kmh"), device=take("device_on"),
                   prev_ts_ms=prev, minute=(q % 1440).astype(np.int16), day=(q // 1440).astype(np.int32),
                   lifting=take("lifting") if "lifting" in f.columns else np.full(ts.size, -1, np.int8))
    return wf, names


def _kind_of(kinds: dict[str, str] | None, vehicle_id: str) -> int:
    from tracker.coverage.compiled import _kind_code

    return _kind_code((kinds or {}).get(vehicle_id, "unknown"))
