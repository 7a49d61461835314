"""unsealed_transport (未密闭运输): loaded, cover open, moving outside every site for ≥ 30 s.

Condition per fix: the trip scan says the truck is loaded, the cover sensor reports *open*, and the fix is
outside every place in `site_kinds` (loading and unloading happen with the cover open inside sites). The
run must last `min_duration_s` and cover `min_distance_m` of real movement (speed above the engine's
`move_kmh`), so a truck standing at a light with the cover open does not count.

Sensor missing:
* load sensor missing — "loaded" is inferred from dwelling at the origin site: the episode is `suspected`;
* cover sensor declared for the vehicle (`Vehicle.sensors`) but not reported — a dead or tampered cover
  sensor on a loaded moving truck is itself reported, as `suspected`;
* no cover sensor fitted (not declared, not reported) — nothing can be observed about the cover, so the
  rule cannot apply; this is stated, not guessed (`World.vehicle_sensors` tells which trucks are blind).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_NONE, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.rules._common import inside_kinds_per_vehicle_kind, loaded
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KIND_CODE, SENSOR_BITS, World

NAME = "unsealed_transport"
PLACE = PLACE_NONE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["muck_truck"])
    site_kinds: list[str] = Field(default_factory=lambda: [
        "construction_site", "disposal_site", "landfill", "batching_plant", "transfer_station", "depot"])
    min_duration_s: float = Field(30.0, ge=0)
    min_distance_m: float = Field(50.0, ge=0)
    tolerance_s: float = Field(60.0, ge=0, description="driving through another site does not end it")
    max_gap_s: float = Field(120.0, gt=0)
    missing_cover_is_suspected: bool = Field(True, description="declared cover sensor not reporting → suspected")


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    ld, sev = loaded(batch)
    outside = ~inside_kinds_per_vehicle_kind(batch, params, "site_kinds")
    declared = (world.vehicle_sensors[batch.vidx] & SENSOR_BITS["cover_closed"]) != 0
    cover_open = batch.cover_closed == 0
    missing = (batch.cover_closed < 0) & declared & params.missing_cover_is_suspected
    cond = applies & batch.ok & ld & outside & (cover_open | missing)
    sev = np.where(missing, SEV_SUSPECTED, sev).astype(np.int8)
    k = params.kind_table
    return debounce(batch, state, cond, sev, np.full(batch.n, -1, np.int32), batch.speed_kmh,
                    k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"))


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
