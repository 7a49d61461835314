"""mixer_discharge (商砼车违规卸料): a concrete mixer's drum turning in reverse (discharging) outside every
place where discharging is allowed, for ≥ 30 s.

Condition per fix: drum sensor = reverse, outside every fence in `allowed_kinds` (construction sites, the
batching plant), for `min_duration_s` — a few seconds of reverse to clean the chute at a gate do not count.

Sensor missing: a mixer whose drum is not reported is judged like a muck truck without sensors — a loaded
trip (plant → site, inferred from dwelling at the plant) that never reaches a construction site, with a
stop ≥ 5 min outside every place, is reported as a `suspected` mixer discharge at that stop.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_NONE, SEV_CONFIRMED, Batch, Events, RuleParams
from tracker.rules._common import inside_kinds_per_vehicle_kind, stop_events
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.trips import OUT_FAILED, OUT_OPEN
from tracker.world import KIND_CODE, World

NAME = "mixer_discharge"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["concrete_mixer"])
    allowed_kinds: list[str] = Field(default_factory=lambda: ["construction_site", "batching_plant"])
    min_duration_s: float = Field(30.0, ge=0)
    min_distance_m: float = Field(0.0, ge=0)
    tolerance_s: float = Field(15.0, ge=0)
    max_gap_s: float = Field(120.0, gt=0)
    suspected_from_trips: bool = Field(True, description="no drum sensor: failed trips with a long stop")


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    outside = ~inside_kinds_per_vehicle_kind(batch, params, "allowed_kinds")
    cond = applies & batch.ok & outside & (batch.drum == 2)
    k = params.kind_table
    ev = debounce(batch, state, cond, np.full(batch.n, SEV_CONFIRMED, np.int8), np.full(batch.n, -1, np.int32),
                  batch.speed_kmh, k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"))
    if params.suspected_from_trips:
        ev = Events.concat([ev, stop_events(batch.extra.get("trips"), world, tuple(params.kinds), (OUT_FAILED,))])
    return ev


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    ev = close_all(state, sidx_to_vidx)
    if params.suspected_from_trips:
        ev = Events.concat([ev, stop_events(trips_rec, world, tuple(params.kinds), (OUT_OPEN,))])
    return ev
