"""restricted_zone (进入禁行区): inside a restricted zone while the zone is in force, for ≥ 30 s.

Condition per fix: inside a `restricted_zone` fence whose validity dates and daily windows (fence
`windows`, local time, shift rule across midnight) cover the fix time. The run must last
`min_duration_s` (15 s: at least two fixes inside); no distance is required (a truck parked in the zone is
in the zone). A single multipath fix thrown into a zone never lasts. The episode's place is the zone; the evidence names its version.

Sensor missing: GPS only — nothing else is needed. Kinds can be exempted per kind (`by_kind.<kind>.enabled
= false`) where a city lets, say, sweepers work inside.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_FENCE, SEV_CONFIRMED, Batch, Events, RuleParams
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import World

NAME = "restricted_zone"
PLACE = PLACE_FENCE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    min_duration_s: float = Field(15.0, ge=0, description="two fixes inside, not one multipath jump")
    min_distance_m: float = Field(0.0, ge=0)
    tolerance_s: float = Field(45.0, ge=0, description="fixes thrown out by GPS noise along the edge (one while "
                               "parked, a few while moving) do not split a visit; 45 s or more outside does")
    max_gap_s: float = Field(180.0, gt=0)


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    zone = batch.first_of_kinds(("restricted_zone",), active_only=True)
    cond = params.applies_to()[batch.kind] & batch.ok & (zone >= 0)
    k = params.kind_table
    return debounce(batch, state, cond, np.full(batch.n, SEV_CONFIRMED, np.int8), zone, batch.speed_kmh,
                    k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"))


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
