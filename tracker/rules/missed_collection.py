"""missed_collection (漏收): a scheduled collection point not visited in its window — with an early warning.

A visit is the schedule's truck stopped inside the point's fence with its bin lifter going up (or, for a
truck that reports no lifter, stopped there `[rules.coverage] visit_min_dwell_s`) — see
`tracker.coverage.collection`. At the window's end (+ `decide_after_s`) each scheduled point gets a verdict:

* collected — visited inside the window;
* unverified — the truck had a data gap where the point belongs on its ordered round, long enough to drive
  there, stop `visit_min_s` and come back — or it was stopped inside the point where a gap begins or ends
  (the lift that makes the stop a visit may be in the hole): no alert (signal_loss owns that story);
* late — the truck was still out on its round when the window closed and collected it before returning to
  a depot, within `grace_s`: reported, not alerted;
* missed — a *confirmed* episode at the point (place = the point's fence), from the window's start to its end.

Early warning: `warn_before_s` before the window closes, points not visited yet open a *suspected* episode
(level 1); withdrawn (retracted) when the truck gets there, confirmed (level 2) if it does not.

Sensor missing: without a lifter sensor a long enough stop counts as the visit (weaker evidence: the
episode's evidence says so); without positions there is nothing to judge and the point is reported missed.
Active only where the world carries collection schedules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tracker.coverage import collection as C
from tracker.coverage import live
from tracker.rules._base import (EV_CLOSE, EV_OPEN, EV_RETRACT, EV_UPDATE, PLACE_FENCE, SEV_CONFIRMED,
                                 SEV_SUSPECTED, Batch, Events, RuleParams)
from tracker.world import World

NAME = "missed_collection"
PLACE = PLACE_FENCE
PEAK = "points_visited"
LOGS = {"stops": ("sched", "point", "ts"), "arrivals": ("sched", "ts"), "gaps": ("veh", "t1"), "home": ("veh", "ts")}


class Params(RuleParams):
    decide_after_s: float = Field(120.0, ge=0, description="wait this long after the window for late fixes")
    grace_s: float = Field(3600.0, ge=0, description="a round still out at the window's end may finish this late")
    in_progress_s: float = Field(1800.0, ge=0, description="collected this recently before the window's end "
                                                            "(and not back at a depot) = still on its round")
    visit_min_s: float = Field(60.0, ge=0, description="a data gap shorter than a drive there, this stop and back "
                                                        "cannot hide a visit")
    home_kinds: list[str] = Field(default_factory=lambda: ["depot"], description="fence kinds where a round ends")
    warn: bool = Field(True, description="open a suspected episode while time remains")
    warn_before_s: float = Field(900.0, ge=0, description="warn for points not visited this long before the end")
    check_every_s: float = Field(60.0, gt=0)
    keep_s: float = Field(2 * 86400.0, gt=0, description="log retention")


def new_state(n: int = 0, params: Params | None = None) -> live.CoverageTable:
    return live.CoverageTable(NAME, n, logs=LOGS)


def log_batch(batch: Batch, state: live.CoverageTable, world: World, home_kinds: list[str]) -> None:
    """What both collection rules keep from a batch (shared by no_transfer_arrival)."""
    cp, cpar = live.compiled(world)
    if cp is None or not cp.plans.collection_schedules or batch.n == 0:
        return
    cov = state.cov
    live.note_first(cov, batch)
    ev, veh, rows = live.batch_collection(batch, cp, cpar)
    cov.logs["stops"].add(ev["stops"])
    cov.logs["arrivals"].add(ev["arrivals"])
    live.note_vehicle_facts(cov, batch, cp, cpar, veh[rows], rows, tuple(home_kinds))


def evaluate(batch: Batch, state: live.CoverageTable, world: World, params: Params) -> Events:
    log_batch(batch, state, world, params.home_kinds)
    return Events.empty()


def advance(now_ms: int, last_ts: Any, state: live.CoverageTable, world: World, params: Params, engine: Any
            ) -> Events:
    return _decide(int(now_ms), state, world, params, final=False)


def finish(batch: Any, state: live.CoverageTable, world: World, params: Params, sidx_to_vidx: Any,
           trips_rec: Any = None, end_ms: int | None = None, **_: Any) -> Events:
    if batch is not None or end_ms is None:
        return Events.empty()
    return _decide(int(end_ms), state, world, params, final=True)


def judged(state: live.CoverageTable, world: World, items: list[tuple[int, int]], grace_s: float,
           in_progress_s: float, visit_min_s: float, home_kinds: list[str], excuses: bool = True
           ) -> dict[str, np.ndarray]:
    """`collection.judge` over the logs, for the planned points of (schedule, occurrence) items
    (`excuses=False`: only whether points were visited — no gap or late-round reasoning)."""
    cp, cpar = live.compiled(world)
    sp = live.schedule_places(world, cp)
    off = world.settings.city.utc_offset_min
    rows = C.planned_points(cp, sp, [])
    parts = [C.planned_points(cp, sp, [d]) for d in sorted({o // 16 for _, o in items})]
    if parts:
        allr = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        want = set(items)
        sel = np.array([(int(s), int(o)) in want for s, o in zip(allr["sched"], allr["occ"])], bool)
        rows = {k: v[sel] for k, v in allr.items()}
    cov = state.cov
    ev = {"stops": cov.logs["stops"].rows() or _empty_stops(), "arrivals": cov.logs["arrivals"].rows() or
          {"sched": np.zeros(0, np.int32), "ts": np.zeros(0, np.int64)}}
    gp = (cov.logs["gaps"].rows() or live.empty_gaps()) if excuses else None
    home = live.home_rows(cov) if home_kinds and excuses else None
    return C.judge(rows, ev, cp, sp, off, cpar, gp=gp, home=home, grace_s=grace_s, in_progress_s=in_progress_s,
                   visit_min_s=visit_min_s)


def _empty_stops() -> dict[str, np.ndarray]:
    z = np.zeros(0, np.int64)
    return {"sched": z.astype(np.int32), "point": z, "ts": z, "lift": z.astype(bool), "lift_reported": z.astype(bool)}


def _decide(now_ms: int, state: live.CoverageTable, world: World, params: Params, final: bool) -> Events:
    cp, cpar = live.compiled(world)
    cov = state.cov
    if cp is None or not cp.plans.collection_schedules or cov.first_ts == live.NONE_TS:
        return Events.empty()
    if not final and now_ms < cov.next_check_ms:
        return Events.empty()
    cov.next_check_ms = now_ms + int(params.check_every_s * 1000)
    off = world.settings.city.utc_offset_min
    sp = live.schedule_places(world, cp)
    out = live.Emitter()
    n = len(cp.plans.collection_schedules)
    after = 0.0 if final else params.decide_after_s * 1000
    due = live.due(cp.sched_windows, cp.sched_days, cov, now_ms, after, off, cpar, n)
    if due:
        j = judged(state, world, [(d[0], d[1]) for d in due], params.grace_s, params.in_progress_s,
                   params.visit_min_s, params.home_kinds)
        done: dict[tuple[int, int], bool] = {}
        for r in range(j["sched"].shape[0]):
            s, occ, pt = int(j["sched"][r]), int(j["occ"][r]), int(j["point"][r])
            key = (s, occ, pt)
            verdict = j["verdict"][r]
            if verdict == "pending" and (final or now_ms >= j["round_end_ms"][r]):
                verdict = "missed" if not final else "pending"
            pending = verdict == "pending"
            done[(s, occ)] = done.get((s, occ), True) and not pending
            if pending or key in cov.items_done:
                continue
            cov.items_done.add(key)
            start = int(j["window_start_ms"][r]) + int(sp.point_order[pt])
            if verdict == "missed":
                _close(out, world, cp, sp, s, pt, start, int(j["window_end_ms"][r]), key, cov)
            elif key in cov.warned:
                _retract(out, world, cp, sp, s, pt, cov.warned.pop(key))
        for k, ok in done.items():
            if ok:
                cov.decided.add(k)
    if params.warn and not final:
        _warn(now_ms, state, world, params, off, out)
    if final:
        for (s, _o, pt), start in list(cov.warned.items()):
            _retract(out, world, cp, sp, s, pt, start)
        cov.warned.clear()
    live.prune(cov, now_ms, params.keep_s)
    return out.events()


def _warn(now_ms: int, state: live.CoverageTable, world: World, params: Params, off: int, out: live.Emitter
          ) -> None:
    cp, cpar = live.compiled(world)
    cov = state.cov
    run = live.running(cp.sched_windows, cp.sched_days, now_ms, off, len(cp.plans.collection_schedules))
    run = [r for r in run if cov.first_ts <= r[2] + cpar.judge_if_seen_from_s * 1000
           and (r[3] - now_ms <= params.warn_before_s * 1000 or any(k[:2] == (r[0], r[1]) for k in cov.warned))]
    if not run:
        return
    sp = live.schedule_places(world, cp)
    j = judged(state, world, [(r[0], r[1]) for r in run], 0.0, params.in_progress_s, params.visit_min_s,
               params.home_kinds, excuses=False)
    for r in range(j["sched"].shape[0]):
        s, occ, pt = int(j["sched"][r]), int(j["occ"][r]), int(j["point"][r])
        key = (s, occ, pt)
        if key in cov.items_done:
            continue
        if key in cov.warned:
            if j["visited"][r]:
                _retract(out, world, cp, sp, s, pt, cov.warned.pop(key))
            continue
        if not j["visited"][r] and j["window_end_ms"][r] - now_ms <= params.warn_before_s * 1000:
            start = int(j["window_start_ms"][r]) + int(sp.point_order[pt])
            v = live.vidx_of(world, cp.plans.collection_schedules[s].vehicle_id)
            lon, lat = sp.point_lonlat[pt]
            out.add(EV_OPEN, v, start, -1, 1, SEV_SUSPECTED, int(sp.point_fence[pt]), 0.0, 0.0,
                    int(j["window_start_ms"][r]), float(lon), float(lat))
            cov.warned[key] = start


def _close(out: live.Emitter, world: World, cp: Any, sp: Any, s: int, pt: int, start: int, end: int, key: tuple,
           cov: live.CoverageState) -> None:
    v = live.vidx_of(world, cp.plans.collection_schedules[s].vehicle_id)
    lon, lat = sp.point_lonlat[pt]
    ws = start - int(sp.point_order[pt])
    fence = int(sp.point_fence[pt])
    if key in cov.warned:
        cov.warned.pop(key)
        out.add(EV_UPDATE, v, start, -1, 2, SEV_CONFIRMED, fence, 0.0, 0.0, ws, float(lon), float(lat))
    else:
        out.add(EV_OPEN, v, start, -1, 2, SEV_CONFIRMED, fence, 0.0, 0.0, ws, float(lon), float(lat))
    out.add(EV_CLOSE, v, start, end, 2, SEV_CONFIRMED, fence, 0.0, 0.0, ws, float(lon), float(lat))


def _retract(out: live.Emitter, world: World, cp: Any, sp: Any, s: int, pt: int, start: int) -> None:
    v = live.vidx_of(world, cp.plans.collection_schedules[s].vehicle_id)
    lon, lat = sp.point_lonlat[pt]
    ws = start - int(sp.point_order[pt])
    out.add(EV_RETRACT, v, start, start, 1, SEV_SUSPECTED, int(sp.point_fence[pt]), 0.0, 0.0, ws, float(lon),
            float(lat))


def describe(ev: Events, j: int, batch: Any, world: World, params: Params) -> dict[str, Any]:
    """Evidence: the schedule, the point's place in the round, the window, and whether this is the warning."""
    cp, _ = live.compiled(world)
    if cp is None:
        return {}
    off = world.settings.city.utc_offset_min
    fence = int(ev.place[j])
    v = int(ev.vidx[j])
    vid = world.vehicle_ids[v] if 0 <= v < len(world.vehicle_ids) else None
    for s, cs in enumerate(cp.plans.collection_schedules):
        if cs.vehicle_id != vid or fence < 0 or world.fence_ids[fence] not in cs.points:
            continue
        k = cs.points.index(world.fence_ids[fence])
        ws = int(ev.start_ts[j]) - k
        minute = (ws // 60_000 + off) % 1440
        jw = int(cp.sched_windows.table[s, minute])
        return {"schedule": {"id": cs.id, "company": cs.company, "district": cs.district, "points": len(cs.points),
                             "facility": cs.facility},
                "point_order": k + 1, "window": cs.windows[jw] if 0 <= jw < len(cs.windows) else None,
                "warning": int(ev.level[j]) == 1}
    return {}
