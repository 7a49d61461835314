"""route_deviation (偏离路线): on a permitted loaded trip, outside the approved route corridor for ≥ 60 s
and ≥ 200 m; escalates at 10 and 15 minutes.

The corridor is the permit's `route_fence` (a corridor fence, typically 50 m each side of the approved
polyline); for a mixer, its delivery order's route when it has one. Condition per fix: loaded (trip scan),
the vehicle has a document valid today with a route, the fix is outside that corridor by more than
`corridor_margin_m` (GPS noise at the edge is not a detour) and outside the
document's own origin and destination fences (they sit at the ends of the route, sometimes beside it;
another site the detour passes through is no excuse). The
run must last `min_duration_s` and cover `min_distance_m` of real travel; a single multipath jump across
the corridor edge never does. While it lasts the episode's level rises at each `levels_s` (level 2 at 10
min, level 3 at 15 min), re-emitted as an update; `max_off_route_m` (measured on the evidence track) is the
furthest distance from the corridor edge.

Sensor missing: the route is judged on GPS alone. When the load sensor is missing, "loaded" is inferred
from dwelling at the origin site and the episode is `suspected` rather than `confirmed`. A truck first
seen on the road (its load unknown — the data began mid-trip) is judged provisionally: its deviations are
kept hidden (a second debounce table, `shadow`) and shown only if the truck then drives into a destination
(disposal site, landfill: empty trucks have no business there), which shows it was loaded; any other
ending drops them. An empty truck driving home off the
corridor is not a deviation.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import EV_CONFIRM, EV_DISCARD, PLACE_DOC, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.rules._common import loaded
from tracker.rules._debounce import close_all, debounce, expire, kinds_mask
from tracker.rules._debounce import is_open as _is_open
from tracker.rules._debounce import new_state as _new_state
from tracker.state import TableGroup
from tracker.trips import OUT_ARRIVED, OUT_COMPLETED
from tracker.world import KIND_CODE, KINDS, World

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
    corridor_margin_m: float = Field(40.0, ge=0, description="a fix less than this beyond the corridor edge is "
                                     "GPS noise (σ 5–15 m), not off the route")


def new_state(n: int = 0, params: Params | None = None) -> TableGroup:
    kinds = None if params is None else kinds_mask(params)
    return TableGroup({"main": _new_state(NAME, n, kinds), "shadow": _new_state(NAME + ".shadow", n, kinds)})


def evaluate(batch: Batch, state: TableGroup, world: World, params: Params) -> Events:
    applies = np.isin(batch.kind, [KIND_CODE[k] for k in params.kinds]) & params.applies_to()[batch.kind]
    ld, sev = loaded(batch)
    unknown = batch.extra["loaded"] == 2  # first seen on the road, no sensor has said: provisional
    doc = batch.extra["doc"]
    route = np.where(doc >= 0, world.docs.route[np.maximum(doc, 0)] if world.docs.route.size else -1, -1)
    cand = applies & batch.ok & (ld | unknown) & (route >= 0)
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
        sel = np.flatnonzero(cand)
        if sel.size:  # just outside the edge is GPS noise, not a detour
            off = world.fence_index.distance_m(batch.lon[sel], batch.lat[sel], route[sel])
            off -= _half_widths(world)[route[sel]]
            cand[sel[off <= params.kind_table("corridor_margin_m")[batch.kind[sel]]]] = False
    off_m = np.zeros(batch.n)  # the distance off the corridor is measured on the evidence (`summarize`)
    k = params.kind_table
    lv = _levels(params)
    thr = (k("min_duration_s"), k("min_distance_m"), k("tolerance_s"), k("max_gap_s"), lv)
    main = debounce(batch, state["main"], cand & ld, sev, doc, off_m, *thr)
    shadow = debounce(batch, state["shadow"], cand & unknown, np.full(batch.n, SEV_SUSPECTED, np.int8), doc,
                      off_m, *thr)
    shadow.hidden = np.ones(len(shadow), np.bool_)
    return Events.concat([main, shadow, _settle(batch.extra.get("trips"), world, params)])


def _settle(rec, world: World, params: Params) -> Events:
    """Trips whose load was unknown (first seen on the road) and just ended: reaching the destination and
    unloading there proves the truck was loaded all along — its provisional deviations become alerts;
    any other ending drops them."""
    if rec is None or rec["vidx"].size == 0:
        return Events.empty()
    sel = (rec["src"] == 2) & np.isin(world.vehicle_kind[rec["vidx"]], [KIND_CODE[k] for k in params.kinds])
    if not sel.any():
        return Events.empty()
    r = {key: a[sel] for key, a in rec.items()}
    m = int(sel.sum())
    et = np.where(np.isin(r["outcome"], (OUT_COMPLETED, OUT_ARRIVED)), EV_CONFIRM, EV_DISCARD).astype(np.int8)
    return Events(etype=et, vidx=r["vidx"].astype(np.int32), row=r["row"].astype(np.int64),
                  start_ts=r["start"].astype(np.int64), end_ts=r["end"].astype(np.int64),
                  level=np.ones(m, np.int8), sev=np.zeros(m, np.int8), place=np.full(m, -1, np.int32),
                  peak=np.zeros(m), dist_m=np.zeros(m), last_ts=r["end"].astype(np.int64))


def _half_widths(world: World) -> np.ndarray:
    got = world.__dict__.get("_half_width_m")
    if got is None:
        got = world.__dict__["_half_width_m"] = np.array([f.half_width_m or 0.0 for f in world.fences])
    return got


def _levels(params: Params) -> np.ndarray:
    levels = [sorted(params.for_kind(kn).levels_s) or [np.inf] for kn in KINDS]
    lv = np.full((len(levels), max(len(x) for x in levels)), np.inf)
    for i, x in enumerate(levels):
        lv[i, :len(x)] = x
    return lv


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


def advance(now_ms: int, last_ts, state: TableGroup, world: World, params: Params, engine) -> Events:
    gap = params.kind_table("max_gap_s")
    shadow = expire(state["shadow"], now_ms, gap, world.vehicle_kind)
    shadow.hidden = np.ones(len(shadow), np.bool_)
    return Events.concat([expire(state["main"], now_ms, gap, world.vehicle_kind), shadow])


def finish(batch, state: TableGroup, world: World, params: Params, sidx_to_vidx, trips_rec=None, **_) -> Events:
    shadow = close_all(state["shadow"], sidx_to_vidx)
    shadow.hidden = np.ones(len(shadow), np.bool_)
    return Events.concat([close_all(state["main"], sidx_to_vidx), shadow, _settle(trips_rec, world, params)])


def is_open(state: TableGroup, v: int, start_ts: int) -> bool | None:
    got = _is_open(state["main"], v, start_ts)
    return got if got is not None else _is_open(state["shadow"], v, start_ts)
