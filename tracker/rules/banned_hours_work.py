"""banned_hours_work (高峰时段作业): sweeping or sprinkling during the banned windows (typ. 07–10, 17–20).

Per fix: device on inside a banned window — the vehicle's work plan's `banned_windows`, else this rule's
`banned_windows` — for `min_duration_s` (5 min) and `min_distance_m` (working, not parked with the brush
on), debounced as in `tracker.rules._debounce`.

Finishing a late round is not going out to work in the rush hour: work on the vehicle's *own planned
segments*, within `late_round_s` after one of its plan windows closed, by a vehicle that has not been back
to a depot since (its round was still in progress), is left to the coverage report (late completion), not
alerted — `excuse_late_round`. Work anywhere else, or after a return to the depot, is an episode.

Sensor missing: with no device state reported, moving at working speed (inside the plan's band) along the
vehicle's own planned segments inside a banned window, as long, is a *suspected* episode.

Active only where the world carries sanitation plans (`World.plans`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tracker.coverage import live
from tracker.coverage.compiled import CompiledPlans, world_vehicle_map
from tracker.rules._base import PLACE_NONE, SEV_CONFIRMED, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book)
from tracker.rules._debounce import new_state as _new_state
from tracker.windows import window_table
from tracker.world import World

NAME = "banned_hours_work"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["sweeper", "sprinkler"], description="vehicle kinds judged")
    banned_windows: list[str] = Field(default_factory=lambda: ["07:00-10:00", "17:00-20:00"],
                                      description="local windows, for vehicles whose plan names none")
    min_duration_s: float = Field(300.0, ge=0)
    min_distance_m: float = Field(100.0, ge=0)
    tolerance_s: float = Field(60.0, ge=0, description="a shorter pause does not end it")
    max_gap_s: float = Field(300.0, gt=0, description="a longer data gap ends the episode")
    excuse_late_round: bool = Field(True, description="a round still out when its window closed may finish")
    late_round_s: float = Field(3600.0, ge=0, description="... within this long after the window")
    home_kinds: list[str] = Field(default_factory=lambda: ["depot"], description="fence kinds where a round ends")


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def _tables(cp: CompiledPlans | None, params: Params) -> dict[str, np.ndarray]:
    """Banned minute table per plan (+ a last row: the rule's own windows) and minutes since a plan window
    closed (−1: not within `late_round_s`)."""
    key = ("banned_hours_work", tuple(params.banned_windows), params.late_round_s)
    cache = cp.cache if cp is not None else {}
    got = cache.get(key)
    if got is None:
        default = window_table(params.banned_windows)
        n = 0 if cp is None else len(cp.plans.work_plans)
        banned = np.vstack([np.where(cp.plan_has_banned[:, None], cp.plan_banned, default) if n else
                            np.zeros((0, 1440), bool), default[None, :]])
        since = np.full((n + 1, 1440), -1, np.int32)
        late_min = int(params.late_round_s // 60)
        if n:
            ws = cp.plan_windows
            m = np.arange(1440)
            for j in range(ws.length_min.shape[1]):
                has = ws.length_min[:n, j] > 0
                end = (ws.start_min[:n, j] + ws.length_min[:n, j]) % 1440
                d = (m[None, :] - end[:, None]) % 1440
                ok = has[:, None] & (d < late_min) & (ws.table[:n] < 0)
                cur = since[:n]
                since[:n] = np.where(ok & ((cur < 0) | (d < cur)), d, cur)
        got = cache[key] = {"banned": banned, "since": since}
    return got


def _home_ts(state: Any, batch: Batch, params: Params) -> np.ndarray:
    """Per row: the vehicle's last fix at home (a depot) at or before the row (−1 never)."""
    n = len(batch.world.vehicle_ids)
    last = state.__dict__.setdefault("home_ts", np.full(n, -1, np.int64))
    if last.shape[0] < n:
        last = state.__dict__["home_ts"] = np.concatenate([last, np.full(n - last.shape[0], -1, np.int64)])
    at = batch.in_kinds(tuple(params.home_kinds)) & batch.ok if params.home_kinds else np.zeros(batch.n, bool)
    v = batch.vidx
    first = np.r_[True, v[1:] != v[:-1]]
    h = np.where(at, batch.ts_ms, -1)
    h = np.where(first, np.maximum(h, last[v]), h)
    gid = np.cumsum(first)
    big = np.int64(1) << np.int64(42)
    acc = np.maximum.accumulate(gid * big + np.maximum(h, 0)) - gid * big
    acc = np.where(acc == 0, -1, acc)
    end = np.r_[v[1:] != v[:-1], True]
    if not batch.detached:
        last[v[end]] = acc[end]
    return acc


def evaluate(batch: Batch, state: Any, world: World, params: Params) -> Events:
    cp, cpar = live.compiled(world)
    if cp is None or batch.n == 0:
        return Events.empty()
    applies = kinds_mask(params)[batch.kind] & batch.ok
    if not applies.any():
        return Events.empty()
    t = _tables(cp, params)
    vmap = world_vehicle_map(world, cp)
    veh = np.where(batch.vidx < vmap.shape[0], vmap[np.minimum(batch.vidx, vmap.shape[0] - 1)], -1)
    plan = np.where(veh >= 0, cp.veh_plan[np.maximum(veh, 0)], -1)
    doc = np.where(plan >= 0, plan, t["banned"].shape[0] - 1)
    minute = batch.minute.astype(np.int64)
    banned = applies & t["banned"][doc, minute]
    if not banned.any():
        _home_ts(state, batch, params)
        return Events.empty()
    own = np.zeros(batch.n, bool)
    pr = live.batch_pairs(batch, cp, cpar)
    mine = pr["veh"] == cp.seg_veh[pr["seg"]]
    own[pr["row"][mine]] = True
    confirmed = banned & (batch.device_on == 1)
    unknown = banned & (batch.device_on < 0)
    suspected = np.zeros(batch.n, bool)
    if unknown.any():
        p = np.maximum(plan, 0)
        band = (batch.speed_kmh >= cp.plan_vmin[p] - cpar.band_tolerance_kmh) & \
               (batch.speed_kmh <= cp.plan_vmax[p] + cpar.band_tolerance_kmh) & (plan >= 0)
        suspected = unknown & own & band
    home = _home_ts(state, batch, params)
    if params.excuse_late_round:
        since = t["since"][doc, minute]
        window_end = batch.ts_ms - (since.astype(np.int64) * 60 + batch.ts_ms // 1000 % 60) * 1000
        late = (plan >= 0) & own & (since >= 0) & (home < window_end)
        confirmed &= ~late
        suspected &= ~late
    cond = confirmed | suspected
    sev = np.where(confirmed, SEV_CONFIRMED, SEV_SUSPECTED).astype(np.int8)
    return debounce(batch, state, cond, sev, np.full(batch.n, -1, np.int32), batch.speed_kmh,
                    params.kind_table("min_duration_s"), params.kind_table("min_distance_m"),
                    params.kind_table("tolerance_s"), params.kind_table("max_gap_s"))


def advance(now_ms: int, last_ts: Any, state: Any, world: World, params: Params, engine: Any) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch: Any, state: Any, world: World, params: Params, sidx_to_vidx: Any, trips_rec: Any = None,
           **_: Any) -> Events:
    return close_all(state, sidx_to_vidx)
