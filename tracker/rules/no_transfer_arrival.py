"""no_transfer_arrival (未到中转站): a collection round that never reached its transfer station / landfill.

A truck that collected at least one scheduled point in a window must arrive at the schedule's facility (a
fix inside its fence) by the later of the window's end and its last visit, plus `[rules.coverage]
arrival_within_s` (30 min): refuse collected and not delivered went somewhere else. Decided once that
deadline has passed (+ `decide_after_s`); a truck still out on its round waits for the round (as in
missed_collection). A data gap of the truck between its first visit and the deadline (not spent at the
depot) could hide the arrival: no alert. Place = the facility's fence; confirmed.

Sensor missing: needs positions only; the load sensor, when present, is reported in the evidence (a truck
that reads empty before the deadline unloaded somewhere).
Active only where the world carries collection schedules.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tracker.coverage import live
from tracker.rules import missed_collection as MC
from tracker.rules._base import EV_CLOSE, EV_OPEN, PLACE_FENCE, SEV_CONFIRMED, Batch, Events, RuleParams
from tracker.world import World

NAME = "no_transfer_arrival"
PLACE = PLACE_FENCE
PEAK = "points_visited"


class Params(RuleParams):
    decide_after_s: float = Field(120.0, ge=0, description="wait this long after the deadline for late fixes")
    grace_s: float = Field(3600.0, ge=0, description="a round still out at the window's end may finish this late")
    in_progress_s: float = Field(1800.0, ge=0)
    home_kinds: list[str] = Field(default_factory=lambda: ["depot"], description="fence kinds where a round ends")
    check_every_s: float = Field(60.0, gt=0)
    keep_s: float = Field(2 * 86400.0, gt=0, description="log retention")


def new_state(n: int = 0, params: Params | None = None) -> live.CoverageTable:
    return live.CoverageTable(NAME, n, logs=MC.LOGS)


def evaluate(batch: Batch, state: live.CoverageTable, world: World, params: Params) -> Events:
    MC.log_batch(batch, state, world, params.home_kinds)
    return Events.empty()


def advance(now_ms: int, last_ts: Any, state: live.CoverageTable, world: World, params: Params, engine: Any
            ) -> Events:
    return _decide(int(now_ms), state, world, params, final=False)


def finish(batch: Any, state: live.CoverageTable, world: World, params: Params, sidx_to_vidx: Any,
           trips_rec: Any = None, end_ms: int | None = None, **_: Any) -> Events:
    if batch is not None or end_ms is None:
        return Events.empty()
    return _decide(int(end_ms), state, world, params, final=True)


def _decide(now_ms: int, state: live.CoverageTable, world: World, params: Params, final: bool) -> Events:
    cp, cpar = live.compiled(world)
    cov = state.cov
    if cp is None or not cp.plans.collection_schedules or cov.first_ts == live.NONE_TS:
        return Events.empty()
    if not final and now_ms < cov.next_check_ms:
        return Events.empty()
    cov.next_check_ms = now_ms + int(params.check_every_s * 1000)
    off = world.settings.city.utc_offset_min
    out = live.Emitter()
    due = live.due(cp.sched_windows, cp.sched_days, cov, now_ms, 0.0, off, cpar, len(cp.plans.collection_schedules))
    if due:
        j = MC.judged(state, world, [(d[0], d[1]) for d in due], params.grace_s, params.in_progress_s, 60.0,
                      params.home_kinds)
        gp = cov.logs["gaps"].rows() or live.empty_gaps()
        key = j["sched"].astype(np.int64) * (1 << 40) + j["occ"]
        for k in np.unique(key).tolist():
            i = np.flatnonzero(key == k)
            s, occ = int(j["sched"][i[0]]), int(j["occ"][i[0]])
            if any(j["verdict"][r] == "pending" for r in i) and not final:
                continue
            seen = np.concatenate([j["first_visit_ms"][i], j["late_visit_ms"][i]])
            seen = seen[seen >= 0]
            we = int(j["window_end_ms"][i[0]])
            if seen.size == 0:
                cov.decided.add((s, occ))  # nothing collected: missed_collection's story
                continue
            deadline = max(we, int(seen.max())) + int(cpar.arrival_within_s * 1000)
            if now_ms < deadline + (0 if final else params.decide_after_s * 1000):
                continue  # too early (at the end of data: no verdict)
            cov.decided.add((s, occ))
            if (j["arrival_ms"][i] >= 0).any():
                continue
            veh = int(cp.sched_veh[s])
            g = (gp["veh"] == veh) & (gp["t1"] > int(seen.min())) & (gp["t0"] < deadline) & ~(gp["home0"] & gp["home1"])
            if g.any():
                continue  # a data gap could hide the arrival
            _emit(out, world, cp, s, int(j["window_start_ms"][i[0]]), deadline, int(seen.size))
    live.prune(cov, now_ms, params.keep_s)
    return out.events()


def _emit(out: live.Emitter, world: World, cp: Any, s: int, start: int, end: int, visited: int) -> None:
    cs = cp.plans.collection_schedules[s]
    v = live.vidx_of(world, cs.vehicle_id)
    fence = world.fence_pos.get(cs.facility, -1)
    lon, lat = (np.nan, np.nan)
    if fence >= 0:
        o = world.fences[fence].origin
        lon, lat = o.lon, o.lat
    out.add(EV_OPEN, v, start, -1, 1, SEV_CONFIRMED, fence, float(visited), 0.0, start, float(lon), float(lat))
    out.add(EV_CLOSE, v, start, end, 1, SEV_CONFIRMED, fence, float(visited), 0.0, start, float(lon), float(lat))


def describe(ev: Events, j: int, batch: Any, world: World, params: Params) -> dict[str, Any]:
    cp, _ = live.compiled(world)
    v = int(ev.vidx[j])
    vid = world.vehicle_ids[v] if 0 <= v < len(world.vehicle_ids) else None
    if cp is None:
        return {}
    for cs in cp.plans.collection_schedules:
        if cs.vehicle_id == vid:
            return {"schedule": {"id": cs.id, "company": cs.company, "district": cs.district,
                                 "facility": cs.facility}, "deadline_ts_ms": int(ev.end_ts[j]) if ev.end_ts[j] >= 0
                    else None}
    return {}
