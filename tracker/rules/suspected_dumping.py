"""suspected_dumping (疑似偷倒): no sensor to confirm it, but a loaded truck stopped ≥ 5 min outside every
allowed place AND its trip never reached a destination.

Decided by the trip scan (`tracker.trips`) when a loaded trip *fails* — the truck enters a place that is
not a destination (back at a site, at the depot) — or is still open when the data ends: the trip's longest
loaded stop outside every place (speed ≤ `stop_kmh`, within `stop_radius_m`, ≥ `stop_min_s`, see
`[rules.trips]`) becomes the episode, placed at the stop. Because the failure is only known later, the
alert comes late by design; a stop on a trip that then reaches its disposal site never alerts (traffic,
queues at the gate).

Sensor missing is this rule's premise. When the truck *does* report load, lift or drum during the trip,
those readings decide instead: a lift or load drop outside is `illegal_dumping` (confirmed), and a load
still reported after the stop contradicts dumping, so no suspicion is raised.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_NONE, Batch, Events, RuleParams
from tracker.rules._common import stop_events
from tracker.trips import OUT_FAILED, OUT_OPEN
from tracker.state import StateTable
from tracker.world import KINDS, World

NAME = "suspected_dumping"
PLACE = PLACE_NONE
PEAK = "stop_s"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["muck_truck"])
    open_trips_at_end: bool = Field(True, description="judge trips still loaded when the data ends")


def new_state(n: int = 0, params: Params | None = None) -> StateTable:
    return StateTable(NAME, (), (), (), 0, np.zeros(len(KINDS), bool))  # stateless: the trips keep it


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    return stop_events(batch.extra.get("trips"), world, tuple(params.kinds), (OUT_FAILED,))


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    if not params.open_trips_at_end:
        return Events.empty()
    return stop_events(trips_rec, world, tuple(params.kinds), (OUT_OPEN,))
