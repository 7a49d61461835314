"""missed_segment (漏扫/漏洒): a planned segment not served in its window — and a warning while time remains.

Coverage is the definition of `tracker.coverage.work` (valid passes: the plan's vehicle, device on, speed
in the band, inside the window and the corridor; `[rules.coverage]`). At the window's end (+ `decide_after_s`
for fixes still in flight) each planned segment gets a verdict:

* covered — coverage ≥ `alert_below_pct` (default 20 %: "not served"; partial work shows in reports);
* unverified — the vehicle had a data gap in the window long enough to drive to the segment and do the
  missing work: we cannot tell, and the signal_loss rule owns that story (no alert);
* late — the vehicle was still out on its round when the window closed (away from its depot) and finished
  the segment before returning, within `grace_s`: reported, not alerted; decided when the round ends;
* missed — a *confirmed* episode, start = the window's start, end = its end, at the segment's midpoint.

Early warning: while a window is open, a segment still below `alert_below_pct` when the time left is less
than the missing work takes at the top of the band plus `warn_slack_s` opens a *suspected* episode (level 1)
— a manager can still send a vehicle. It becomes the confirmed episode (level 2) if the segment ends missed,
and is withdrawn (retracted, kept visible) if the segment gets done.

Episode ids: (kind, vehicle, window start + the segment's slot in the vehicle's plans, in ms) — one per
segment and window, stable across replays. Active only where the world carries work plans.

Sensor missing: with no device state reported, passes count when `[rules.coverage] device_missing =
"count"` (the default) — the work is unverified, but a vehicle driving its segments at working speed is
not called a miss; with "ignore", such a vehicle's segments are missed. Never silent, never a crash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tracker.coverage import live
from tracker.coverage import work as W
from tracker.rules._base import (EV_CLOSE, EV_OPEN, EV_RETRACT, EV_UPDATE, PLACE_NONE, SEV_CONFIRMED,
                                 SEV_SUSPECTED, Batch, Events, RuleParams)
from tracker.world import World

NAME = "missed_segment"
PLACE = PLACE_NONE  # the segment is in evidence["segment"] (segments are not fences)
PEAK = "coverage_pct"
LOGS = {"pairs": ("vkey", "ts", "seg", "s"), "gaps": ("veh", "t1"), "home": ("veh", "ts")}
PAIR_COLS = ("vkey", "veh", "ts", "seg", "occ", "s", "dist", "state", "prev_ts", "speed")


class Params(RuleParams):
    alert_below_pct: float = Field(20.0, ge=0, le=100, description="a segment below this coverage is missed")
    decide_after_s: float = Field(120.0, ge=0, description="wait this long after the window for late fixes")
    grace_s: float = Field(3600.0, ge=0, description="a round still out at the window's end may finish this late")
    in_progress_s: float = Field(1800.0, ge=0, description="worked this recently before the window's end (and "
                                                            "not back at a depot) = still on its round")
    home_kinds: list[str] = Field(default_factory=lambda: ["depot"], description="fence kinds where a round ends")
    warn: bool = Field(True, description="open a suspected episode while time remains")
    warn_slack_s: float = Field(600.0, ge=0, description="warn this long before the last moment to start")
    check_every_s: float = Field(60.0, gt=0, description="how often open windows are re-assessed")
    keep_s: float = Field(2 * 86400.0, gt=0, description="log retention")


def new_state(n: int = 0, params: Params | None = None) -> live.CoverageTable:
    return live.CoverageTable(NAME, n, logs=LOGS)


def evaluate(batch: Batch, state: live.CoverageTable, world: World, params: Params) -> Events:
    """Log the batch's corridor pairs, gaps and depot visits of plan vehicles; decisions come in `advance`."""
    cp, cpar = live.compiled(world)
    if cp is None or cp.n_segments == 0 or batch.n == 0:
        return Events.empty()
    cov = state.cov
    live.note_first(cov, batch)
    pr = live.batch_pairs(batch, cp, cpar)
    if pr["ts"].size:
        cov.logs["pairs"].add({k: pr[k] for k in PAIR_COLS})
    wf, rows = live.batch_fixes(batch, cp, cpar)
    own = wf.veh >= 0
    live.note_vehicle_facts(cov, batch, cp, cpar, wf.veh[own], rows[own], tuple(params.home_kinds))
    return Events.empty()


def advance(now_ms: int, last_ts: Any, state: live.CoverageTable, world: World, params: Params, engine: Any
            ) -> Events:
    return _decide(int(now_ms), state, world, params, final=False)


def finish(batch: Any, state: live.CoverageTable, world: World, params: Params, sidx_to_vidx: Any,
           trips_rec: Any = None, end_ms: int | None = None, **_: Any) -> Events:
    if batch is not None or end_ms is None:  # a detached block is not the end of the data
        return Events.empty()
    return _decide(int(end_ms), state, world, params, final=True)


def _decide(now_ms: int, state: live.CoverageTable, world: World, params: Params, final: bool) -> Events:
    cp, cpar = live.compiled(world)
    cov = state.cov
    if cp is None or cp.n_segments == 0 or cov.first_ts == live.NONE_TS:
        return Events.empty()
    if not final and now_ms < cov.next_check_ms:
        return Events.empty()
    cov.next_check_ms = now_ms + int(params.check_every_s * 1000)
    off = world.settings.city.utc_offset_min
    out = live.Emitter()
    n_plans = len(cp.plans.work_plans)
    after = 0.0 if final else params.decide_after_s * 1000
    due = live.due(cp.plan_windows, cp.plan_days, cov, now_ms, after, off, cpar, n_plans)
    pr = cov.logs["pairs"].rows() or _no_pairs()
    if due:
        _settle(due, pr, cp, cpar, cov, world, params, off, now_ms, final, out)
    if params.warn and not final:
        _warn(now_ms, pr, cp, cpar, cov, world, params, off, out)
    if final:  # the data ended before these windows (or rounds) did: no verdict, the forecast is withdrawn
        for (plan, _occ, seg), start in list(cov.warned.items()):
            _retract(out, world, cp, plan, seg, start, float("nan"))
        cov.warned.clear()
    live.prune(cov, now_ms, params.keep_s)
    return out.events()


def _no_pairs() -> dict[str, np.ndarray]:
    z = np.zeros(0)
    return {"vkey": z.astype(np.int32), "veh": z.astype(np.int32), "ts": z.astype(np.int64),
            "seg": z.astype(np.int32), "occ": z.astype(np.int64), "s": z, "dist": z, "state": z.astype(np.int8),
            "prev_ts": z.astype(np.int64), "speed": z}


def _rows_for(items: list[tuple[int, int]], cp: Any) -> dict[str, np.ndarray]:
    segs, occs = [], []
    for plan, occ in items:
        s = np.flatnonzero(cp.seg_plan == plan)
        segs.append(s)
        occs.append(np.full(s.size, occ, np.int64))
    return {"seg": np.concatenate(segs).astype(np.int32), "occ": np.concatenate(occs)}


def _settle(due: list, pr: dict, cp: Any, cpar: Any, cov: live.CoverageState, world: World, params: Params,
            off: int, now_ms: int, final: bool, out: live.Emitter) -> None:
    rows = _rows_for([(d[0], d[1]) for d in due], cp)
    segs = np.unique(rows["seg"])
    sel = np.isin(pr["seg"], segs)
    sub = {k: v[sel] for k, v in pr.items()}
    gaps = cov.logs["gaps"].rows() or None
    gp = gaps if gaps is not None else {k: np.zeros(0) for k in ("veh", "t0", "t1")}
    if gaps is None:
        gp.update({k: np.zeros(0) for k in ("lon0", "lat0", "lon1", "lat1")})
        gp.update({"home0": np.zeros(0, bool), "home1": np.zeros(0, bool)})
    home = live.home_rows(cov) if params.home_kinds else None
    j = W.judge(rows, sub, gp, cp, cpar, off, params.alert_below_pct, params.grace_s, params.in_progress_s, home)
    done_plans: dict[tuple[int, int], bool] = {}
    for r in range(rows["seg"].shape[0]):
        seg, occ = int(rows["seg"][r]), int(rows["occ"][r])
        plan = int(cp.seg_plan[seg])
        key = (plan, occ, seg)
        verdict = j["verdict"][r]
        if verdict == "pending" and now_ms >= j["round_end_ms"][r]:
            verdict = "missed"  # the round ended (or the grace ran out) without it
        pending = verdict == "pending"
        done_plans[(plan, occ)] = done_plans.get((plan, occ), True) and not pending
        if pending or key in cov.items_done:
            continue
        cov.items_done.add(key)
        ws, we = cp.plan_windows.bounds_ms(np.array([plan]), np.array([occ]), off)
        start = int(ws[0]) + int(cp.seg_slot[seg])
        if verdict == "missed":
            _emit_close(out, world, cp, plan, seg, start, int(we[0]), key, cov, confirmed=True,
                        pct=float(j["coverage_pct"][r]), covered=float(j["covered_pass_m"][r]))
        elif key in cov.warned:
            _retract(out, world, cp, plan, seg, cov.warned.pop(key), float(j["coverage_pct"][r]))
    for key, ok in done_plans.items():
        if ok:
            cov.decided.add(key)


def _warn(now_ms: int, pr: dict, cp: Any, cpar: Any, cov: live.CoverageState, world: World, params: Params,
          off: int, out: live.Emitter) -> None:
    run = live.running(cp.plan_windows, cp.plan_days, now_ms, off, len(cp.plans.work_plans))
    run = [r for r in run if cov.first_ts <= r[2] + cpar.judge_if_seen_from_s * 1000]
    if not run:
        return
    rows = _rows_for([(r[0], r[1]) for r in run], cp)
    # only segments whose whole work could no longer fit before the window closes need a look
    plan = cp.seg_plan[rows["seg"]]
    _, we = cp.plan_windows.bounds_ms(plan, rows["occ"], off)
    most_s = cp.seg_req[rows["seg"]] * cp.seg_len_m[rows["seg"]] / (cp.plan_vmax[plan] / 3.6)
    near = (we - now_ms) / 1000.0 <= most_s + params.warn_slack_s
    warned = np.array([(int(p_), int(o), int(g)) in cov.warned for p_, o, g in zip(plan, rows["occ"], rows["seg"])],
                      bool)
    keep = near | warned
    if not keep.any():
        return
    rows = {k: v[keep] for k, v in rows.items()}
    sel = np.isin(pr["seg"], np.unique(rows["seg"])) & (pr["occ"] >= 0)
    sub = {k: v[sel] for k, v in pr.items()}
    c = W.coverage(rows, W.passes(sub, cp, cpar), cp, cpar)
    plan = cp.seg_plan[rows["seg"]]
    _, we = cp.plan_windows.bounds_ms(plan, rows["occ"], off)
    ws, _ = cp.plan_windows.bounds_ms(plan, rows["occ"], off)
    need_s = (c["required"] * c["length_m"] - c["covered_pass_m"]) / (cp.plan_vmax[plan] / 3.6)
    left_s = (we - now_ms) / 1000.0
    for r in range(rows["seg"].shape[0]):
        seg, occ = int(rows["seg"][r]), int(rows["occ"][r])
        key = (int(plan[r]), occ, seg)
        pct = float(c["coverage_pct"][r])
        if key in cov.warned:
            if pct >= params.alert_below_pct:  # done after all: withdraw the warning
                _retract(out, world, cp, key[0], seg, cov.warned.pop(key), pct)
            continue
        if key in cov.items_done:
            continue
        if pct < params.alert_below_pct and left_s[r] <= need_s[r] + params.warn_slack_s:
            start = int(ws[r]) + int(cp.seg_slot[seg])
            v = live.vidx_of(world, cp.plans.work_plans[key[0]].vehicle_id)
            lon, lat = cp.seg_mid_lonlat[seg]
            out.add(EV_OPEN, v, start, -1, 1, SEV_SUSPECTED, seg, pct, float(c["covered_pass_m"][r]), int(ws[r]),
                    float(lon), float(lat))
            cov.warned[key] = start


def _emit_close(out: live.Emitter, world: World, cp: Any, plan: int, seg: int, start: int, end: int,
                key: tuple, cov: live.CoverageState, confirmed: bool, pct: float = float("nan"),
                covered: float = 0.0) -> None:
    v = live.vidx_of(world, cp.plans.work_plans[plan].vehicle_id)
    lon, lat = cp.seg_mid_lonlat[seg]
    ws = start - int(cp.seg_slot[seg])
    sev = SEV_CONFIRMED if confirmed else SEV_SUSPECTED
    level = 2 if confirmed else 1
    if key in cov.warned:
        cov.warned.pop(key)
        out.add(EV_UPDATE, v, start, -1, level, sev, seg, pct, covered, ws, float(lon), float(lat))
    else:
        out.add(EV_OPEN, v, start, -1, level, sev, seg, pct, covered, ws, float(lon), float(lat))
    out.add(EV_CLOSE, v, start, end, level, sev, seg, pct, covered, ws, float(lon), float(lat))


def _retract(out: live.Emitter, world: World, cp: Any, plan: int, seg: int, start: int, pct: float) -> None:
    v = live.vidx_of(world, cp.plans.work_plans[plan].vehicle_id)
    lon, lat = cp.seg_mid_lonlat[seg]
    ws = start - int(cp.seg_slot[seg])
    out.add(EV_RETRACT, v, start, start, 1, SEV_SUSPECTED, seg, pct, 0.0, ws, float(lon), float(lat))


def describe(ev: Events, j: int, batch: Any, world: World, params: Params) -> dict[str, Any]:
    """Evidence: which segment, in which window, how far it got, and whether this is the early warning."""
    cp, _ = live.compiled(world)
    seg = int(ev.place[j])
    if cp is None or not 0 <= seg < cp.n_segments:
        return {}
    plan = int(cp.seg_plan[seg])
    wp = cp.plans.work_plans[plan]
    s = next(x for x in wp.segments if x.id == cp.seg_ids[seg])
    ws = int(ev.start_ts[j]) - int(cp.seg_slot[seg])
    off = world.settings.city.utc_offset_min
    minute = ((ws // 60_000 + off) % 1440)
    jdx = int(cp.plan_windows.table[plan, minute])
    pct = float(ev.peak[j])
    return {"segment": {"id": s.id, "road_name": s.road_name, "grade": s.grade, "passes_required": s.passes,
                        "length_m": round(float(cp.seg_len_m[seg]), 1), "plan_id": wp.id, "company": wp.company,
                        "district": s.district or wp.district},
            "window": wp.windows[jdx] if 0 <= jdx < len(wp.windows) else None,
            "coverage_pct": None if np.isnan(pct) else round(pct, 1),
            "warning": int(ev.level[j]) == 1}
