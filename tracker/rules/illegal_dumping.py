"""illegal_dumping (偷倒乱倒), sensor-confirmed: body lifted, or load falling to empty, outside every place
where unloading is allowed.

Condition per fix: outside every fence in `allowed_kinds` (disposal sites, landfills, construction sites,
batching plants, transfer stations) and either the lift sensor reports *up*, or the load sensor fell to
empty within the last `drop_hold_s` while the truck is stopped. It must hold `min_duration_s` (a single
multipath fix thrown outside a disposal site while unloading there is not a dump). Mixer drums are judged by
`mixer_discharge`; refuse trucks lift bins at collection points all day and are off by default.

Sensor missing: with neither lift nor load reported this rule sees nothing by construction, and the
trip-based `suspected_dumping` rule takes over (loaded stop ≥ 5 min outside every allowed place on a trip
that never reaches its destination) — a weaker, suspected alert instead of silence.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_NONE, SEV_CONFIRMED, Batch, Events, RuleParams
from tracker.rules._common import inside_kinds_per_vehicle_kind
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KIND_CODE, World

NAME = "illegal_dumping"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["muck_truck"])
    allowed_kinds: list[str] = Field(default_factory=lambda: [
        "disposal_site", "landfill", "construction_site", "batching_plant", "transfer_station"])
    drop_hold_s: float = Field(60.0, ge=0, description="a load drop counts this long after it, while stopped")
    stop_kmh: float = Field(5.0, ge=0)
    min_duration_s: float = Field(15.0, ge=0)
    min_distance_m: float = Field(0.0, ge=0)
    tolerance_s: float = Field(15.0, ge=0)
    max_gap_s: float = Field(120.0, gt=0)


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    outside = ~inside_kinds_per_vehicle_kind(batch, params, "allowed_kinds")
    drop_ts = batch.extra["drop_ts"]
    k = params.kind_table
    recent_drop = (drop_ts >= 0) & (batch.ts_ms - drop_ts <= k("drop_hold_s")[batch.kind] * 1000) \
        & (batch.speed_kmh <= k("stop_kmh")[batch.kind])
    cond = applies & batch.ok & outside & ((batch.lifting == 1) | recent_drop)
    return debounce(batch, state, cond, np.full(batch.n, SEV_CONFIRMED, np.int8), np.full(batch.n, -1, np.int32),
                    batch.speed_kmh, k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"))


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
