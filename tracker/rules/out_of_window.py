"""out_of_window (非核准时段): moving loaded outside every daily window of the vehicle's permit.

Condition per fix: loaded (trip scan), outside every place in `place_kinds`, and the vehicle holds a
document (muck truck: permit; mixer: delivery order) valid on this date — with the shift rule, so 02:00
belongs to the night that began at 22:00 — none of whose windows covers this minute. The run must last
`min_duration_s` and cover `min_distance_m` of real travel ("moving loaded"), so a loaded truck parked by
the road at 06:01 is not flagged for standing still; stops at lights inside the run are bridged by
`tolerance_s` only when the truck leaves the condition (it does not: standing still is still loaded and
outside the window, it just adds no distance).

Sensor missing: when the load sensor is missing, "loaded" is inferred from dwelling at the origin site and
the episode is `suspected`. Without any permit at all, see `no_permit`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_DOC, Batch, Events, RuleParams
from tracker.rules._common import inside_kinds_per_vehicle_kind, loaded
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KIND_CODE, World

NAME = "out_of_window"
PLACE = PLACE_DOC
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
    doc = batch.extra["doc"]
    cond = applies & batch.ok & ld & (doc >= 0) & ~batch.extra["doc_in_window"]
    if cond.any():
        cond &= ~inside_kinds_per_vehicle_kind(batch, params, "place_kinds")
    k = params.kind_table
    return debounce(batch, state, cond, sev, doc, batch.speed_kmh, k("min_duration_s"), k("min_distance_m"),
                    k("tolerance_s"), k("max_gap_s"))


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
