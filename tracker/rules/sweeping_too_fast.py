"""sweeping_too_fast (超速作业): working with the device on faster than the plan's working-speed band.

A sweeper's brush or a sprinkler's pump does its job only at working speed: above the band the road is
driven over, not cleaned. Per fix: device on and GPS speed above the band's top (the vehicle's work plan
`speed_max_kmh`; without a plan the kind's `band_max_kmh`, typ. 8 km/h sweeper, 15 sprinkler) plus
`margin_kmh` (GPS speed noise), for `min_duration_s` (60 s) and `min_distance_m`, debounced as in
`tracker.rules._debounce` — a device left on for 20–40 s while pulling away is not an episode.

Sensor missing: with no device state reported, driving along one of the vehicle's own planned segments
inside a plan window at a speed a little above the band (up to `suspect_max_factor` × its top — faster is
plainly transit, not work) for as long is a *suspected* episode. Never silent, never a crash.

Active only where the world carries sanitation plans (`World.plans`): a city without the sanitation
module has no bands to judge by.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tracker.coverage import live
from tracker.rules._base import PLACE_NONE, SEV_CONFIRMED, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import World

NAME = "sweeping_too_fast"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["sweeper", "sprinkler"], description="vehicle kinds judged")
    band_max_kmh: float = Field(8.0, gt=0, description="top of the working band without a plan (by_kind)")
    margin_kmh: float = Field(1.0, ge=0, description="GPS speed noise tolerated above the band")
    min_duration_s: float = Field(60.0, ge=0)
    min_distance_m: float = Field(50.0, ge=0)
    tolerance_s: float = Field(20.0, ge=0, description="a shorter dip into the band does not end it")
    max_gap_s: float = Field(120.0, gt=0, description="a longer data gap ends the episode")
    suspect_max_factor: float = Field(2.0, gt=1, description="no device sensor: above this × band top is transit")


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def band_top(batch: Batch, world: World, params: Params) -> np.ndarray:
    """Per row: the top of the vehicle's working band (its plan's, else its kind's), km/h."""
    top = params.kind_table("band_max_kmh")[batch.kind]
    cp, _ = live.compiled(world)
    if cp is not None and cp.plan_vmax.size:
        from tracker.coverage.compiled import world_vehicle_map

        vmap = world_vehicle_map(world, cp)
        veh = np.where(batch.vidx < vmap.shape[0], vmap[np.minimum(batch.vidx, vmap.shape[0] - 1)], -1)
        plan = np.where(veh >= 0, cp.veh_plan[np.maximum(veh, 0)], -1)
        top = np.where(plan >= 0, cp.plan_vmax[np.maximum(plan, 0)], top)
    return top


def evaluate(batch: Batch, state: Any, world: World, params: Params) -> Events:
    cp, cpar = live.compiled(world)
    if cp is None or batch.n == 0:
        return Events.empty()
    applies = kinds_mask(params)[batch.kind]
    if not applies.any():
        return Events.empty()
    top = band_top(batch, world, params) + params.kind_table("margin_kmh")[batch.kind]
    speed = batch.speed_kmh
    fast = applies & batch.ok & (speed > top)
    confirmed = fast & (batch.device_on == 1)
    suspected = np.zeros(batch.n, bool)
    unknown = fast & (batch.device_on < 0)
    if unknown.any():
        pr = live.batch_pairs(batch, cp, cpar)
        own_in_window = np.zeros(batch.n, bool)
        own_in_window[pr["row"][(pr["occ"] >= 0) & (pr["veh"] == cp.seg_veh[pr["seg"]])]] = True
        limit = (top - params.kind_table("margin_kmh")[batch.kind]) * params.kind_table("suspect_max_factor")[batch.kind]
        suspected = unknown & own_in_window & (speed <= limit)
    cond = confirmed | suspected
    sev = np.where(confirmed, SEV_CONFIRMED, SEV_SUSPECTED).astype(np.int8)
    return debounce(batch, state, cond, sev, np.full(batch.n, -1, np.int32), speed,
                    params.kind_table("min_duration_s"), params.kind_table("min_distance_m"),
                    params.kind_table("tolerance_s"), params.kind_table("max_gap_s"))


def advance(now_ms: int, last_ts: Any, state: Any, world: World, params: Params, engine: Any) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch: Any, state: Any, world: World, params: Params, sidx_to_vidx: Any, trips_rec: Any = None,
           **_: Any) -> Events:
    return close_all(state, sidx_to_vidx)
