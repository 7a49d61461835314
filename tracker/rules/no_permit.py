"""no_permit (无证运输): moving loaded with no valid permit (muck truck) or delivery order (mixer).

Condition per fix: loaded (trip scan), outside every place in `place_kinds`, and no document of the
vehicle's kind is valid on this date (shift rule as in `out_of_window`); unregistered terminals of these
kinds have none by definition. Debounced like `out_of_window`: `min_duration_s` and `min_distance_m` of real
travel, so one loaded trip is one episode.

Sensor missing: when the load sensor is missing, "loaded" is inferred from dwelling at a construction site
(or batching plant) and the episode is `suspected`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_NONE, Batch, Events, RuleParams
from tracker.rules._common import inside_kinds_per_vehicle_kind, loaded
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KIND_CODE, World

NAME = "no_permit"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["muck_truck", "concrete_mixer"])
    place_kinds: list[str] = Field(default_factory=lambda: [
        "construction_site", "disposal_site", "landfill", "batching_plant", "transfer_station", "depot"])
    min_duration_s: float = Field(120.0, ge=0)
    min_distance_m: float = Field(200.0, ge=0)
    tolerance_s: float = Field(180.0, ge=0)
    max_gap_s: float = Field(300.0, gt=0)


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    ld, sev = loaded(batch)
    cond = applies & batch.ok & ld & (batch.extra["doc"] < 0)
    if cond.any():
        cond &= ~inside_kinds_per_vehicle_kind(batch, params, "place_kinds")
    k = params.kind_table
    return debounce(batch, state, cond, sev, np.full(batch.n, -1, np.int32), batch.speed_kmh,
                    k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"))


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
