"""route_deviation (偏离路线): on a permitted loaded trip, outside the approved route corridor for ≥ 60 s
and ≥ 200 m; escalates at 10 and 15 minutes.

The corridor is the permit's `route_fence` (a corridor fence, typically 50 m each side of the approved
polyline); for a mixer, its delivery order's route when it has one. Condition per fix: loaded (trip scan),
the vehicle has a document valid today with a route, the fix is outside that corridor and outside the
document's own origin and destination fences (they sit at the ends of the route, sometimes beside it;
another site the detour passes through is no excuse). The
run must last `min_duration_s` and cover `min_distance_m` of real travel; a single multipath jump across
the corridor edge never does. While it lasts the episode's level rises at each `levels_s` (level 2 at 10
min, level 3 at 15 min), re-emitted as an update; `max_off_route_m` (measured on the evidence track) is the
furthest distance from the corridor edge.

Sensor missing: the route is judged on GPS alone. When the load sensor is missing, "loaded" is inferred
from dwelling at the origin site and the episode is `suspected` rather than `confirmed`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_DOC, Batch, Events, RuleParams
from tracker.rules._common import loaded
from tracker.rules._debounce import close_all, debounce, expire, is_open  # noqa: F401 (the book asks it)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KIND_CODE, World

NAME = "route_deviation"
PLACE = PLACE_DOC
PEAK = "max_off_route_m"


class Params(RuleParams):
    kinds: list[str] = Field(default_factory=lambda: ["muck_truck", "concrete_mixer"])
    min_duration_s: float = Field(60.0, ge=0)
    min_distance_m: float = Field(200.0, ge=0)
    tolerance_s: float = Field(300.0, ge=0, description="touching the corridor for less than this and "
                               "leaving again is the same deviation")
    max_gap_s: float = Field(180.0, gt=0)
    levels_s: list[float] = Field(default_factory=lambda: [600.0, 900.0], description="escalation durations")


def new_state(n: int = 0):
    return _new_state(NAME, n)


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    ld, sev = loaded(batch)
    doc = batch.extra["doc"]
    route = np.where(doc >= 0, world.docs.route[np.maximum(doc, 0)] if world.docs.route.size else -1, -1)
    cand = applies & batch.ok & ld & (route >= 0)
    if cand.any():
        rows, fences = batch.hits()
        d = np.maximum(doc[rows], 0)
        ends = (fences == world.docs.origin[d]) | (fences == world.docs.dest[d])
        at_end = np.zeros(batch.n, bool)
        at_end[rows[ends]] = True
        cand &= ~at_end
        sel = np.flatnonzero(cand)
        if sel.size:  # its own corridor only: one exact test per fix, not every corridor around it
            cand[sel[world.fence_index.exact.contains(batch.lon[sel], batch.lat[sel], route[sel])]] = False
    off_m = np.zeros(batch.n)  # the distance off the corridor is measured on the evidence (`summarize`)
    k = params.kind_table
    levels = np.array([sorted(params.for_kind(kn).levels_s) or [np.inf] for kn in _kinds()], dtype=object)
    width = max(len(x) for x in levels)
    lv = np.full((len(levels), width), np.inf)
    for i, x in enumerate(levels):
        lv[i, :len(x)] = x
    return debounce(batch, state, cand, sev, doc, off_m, k("min_duration_s"), k("min_distance_m"),
                    k("tolerance_s"), k("max_gap_s"), lv)


def summarize(fixes: dict[str, np.ndarray], start_ts: int, end_ts: int, place: int, world: World) -> dict:
    """Evidence figure: how far outside the corridor the vehicle went (fixes inside the episode)."""
    if place < 0 or world.fence_index is None:
        return {}
    route = int(world.docs.route[place])
    t = fixes["ts_ms"]
    sel = np.flatnonzero((t >= start_ts) & (t <= end_ts))
    if route < 0 or sel.size == 0:
        return {}
    d = world.fence_index.distance_m(fixes["lon"][sel], fixes["lat"][sel], np.full(sel.size, route))
    return {"max_off_route_m": round(float(d.max() - (world.fences[route].half_width_m or 0.0)), 1)}


def _kinds():
    from tracker.world import KINDS

    return KINDS


def advance(now_ms: int, last_ts, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
