"""speeding (超速): above the limit for the vehicle kind / zone for ≥ 30 s.

Limit per fix: the vehicle kind's `limit_kmh` (muck trucks and mixers 40 km/h on city roads), replaced
inside a zone that sets one — a fence tagged `speed_limit_kmh` (any kind), or a fence tagged
`road_class=<class>` with a per-kind limit in `zone_class_limits_kmh` (expressway 60). Inside several such
zones the lowest limit applies. The fix must exceed the limit by more than `margin_kmh` (GPS speed noise),
for `min_duration_s` and `min_distance_m`, debounced as in `tracker.rules._debounce`.

Sensor missing: speed is the terminal's GPS speed. A terminal that reports 0 km/h while its positions
move faster than the limit (no speed field, or a broken one) is judged on the speed implied by its
positions instead, as `suspected` (positions are noisier than Doppler speed). Never silent, never a crash.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from tracker.rules._base import PLACE_FENCE, SEV_CONFIRMED, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.rules._debounce import close_all, debounce, expire, is_open, kinds_mask  # noqa: F401 (is_open: the book asks)
from tracker.rules._debounce import new_state as _new_state
from tracker.world import KINDS, World

NAME = "speeding"
PLACE = PLACE_FENCE
PEAK = "max_speed_kmh"


class Params(RuleParams):
    limit_kmh: float = Field(60.0, gt=0, description="limit on city roads for this kind (override by_kind)")
    zone_class_limits_kmh: dict[str, float] = Field(
        default_factory=lambda: {"expressway": 60.0},
        description="limit inside fences tagged road_class=<class> (override by_kind)")
    margin_kmh: float = Field(0.0, ge=0, description="tolerance above the limit before a fix counts")
    min_duration_s: float = Field(30.0, ge=0)
    min_distance_m: float = Field(0.0, ge=0)
    tolerance_s: float = Field(10.0, ge=0, description="a shorter dip below the limit does not end it")
    max_gap_s: float = Field(120.0, gt=0, description="a longer data gap ends the episode")
    implied_min_dt_s: float = Field(5.0, gt=0, description="shortest step used for implied speed")


def new_state(n: int = 0, params: Params | None = None):
    return _new_state(NAME, n, None if params is None else kinds_mask(params))


def limits_per_row(batch: Batch, world: World, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """(limit km/h, zone fence position or −1) per row."""
    limit = params.kind_table("limit_kmh")[batch.kind]
    zone = np.full(batch.n, -1, np.int32)
    rows, fences = batch.hits()
    if rows.size:
        tag_limit = world.fence_speed_limit_kmh[fences]
        cls_limit = np.full(rows.size, np.nan)
        classes = _fence_classes(world)
        if classes is not None:
            fc = classes[fences]
            for name in {c for c in params.zone_class_limits_kmh} | {
                    c for o in params.by_kind.values() for c in o.get("zone_class_limits_kmh", {})}:
                code = _class_code(world, name)
                if code < 0:
                    continue
                sel = fc == code
                if sel.any():
                    table = np.array([params.for_kind(k).zone_class_limits_kmh.get(name, np.nan) for k in KINDS])
                    cls_limit[sel] = table[batch.kind[rows[sel]]]
        pair = np.where(np.isnan(tag_limit), cls_limit, tag_limit)
        has = ~np.isnan(pair)
        if has.any():
            r, f, lim = rows[has], fences[has], pair[has]
            order = np.lexsort((f, lim, r))  # per row: lowest limit first, then lowest fence
            r, f, lim = r[order], f[order], lim[order]
            first = np.ones(r.size, bool)
            first[1:] = r[1:] != r[:-1]
            limit = limit.copy()
            limit[r[first]] = lim[first]
            zone[r[first]] = f[first]
    return limit, zone


def _fence_classes(world: World) -> np.ndarray | None:
    cached = getattr(world, "_road_class_codes", None)
    if cached is None:
        names: dict[str, int] = {}
        codes = np.full(len(world.fences), -1, np.int32)
        for i, f in enumerate(world.fences):
            c = (f.tags or {}).get("road_class")
            if c:
                codes[i] = names.setdefault(c, len(names))
        world._road_class_codes = cached = codes  # type: ignore[attr-defined]
        world._road_class_names = names  # type: ignore[attr-defined]
    return cached


def _class_code(world: World, name: str) -> int:
    return getattr(world, "_road_class_names", {}).get(name, -1)


def evaluate(batch: Batch, state, world: World, params: Params) -> Events:
    limit, zone = limits_per_row(batch, world, params)
    limit = limit + params.kind_table("margin_kmh")[batch.kind]
    applies = params.applies_to()[batch.kind]
    speed = batch.speed_kmh
    with np.errstate(divide="ignore", invalid="ignore"):
        implied = np.where(batch.dt_s >= params.kind_table("implied_min_dt_s")[batch.kind],
                           batch.step_m / batch.dt_s * 3.6, 0.0)
    reported = speed > limit
    fallback = (speed <= 0.0) & (implied > limit)
    cond = applies & batch.ok & (reported | fallback)
    sev = np.where(reported, SEV_CONFIRMED, SEV_SUSPECTED).astype(np.int8)
    value = np.where(reported, speed, implied)
    return debounce(batch, state, cond, sev, zone, value,
                    params.kind_table("min_duration_s"), params.kind_table("min_distance_m"),
                    params.kind_table("tolerance_s"), params.kind_table("max_gap_s"))


def advance(now_ms: int, last_ts: np.ndarray, state, world: World, params: Params, engine) -> Events:
    return expire(state, now_ms, params.kind_table("max_gap_s"), world.vehicle_kind)


def finish(batch, state, world: World, params: Params, sidx_to_vidx: np.ndarray, trips_rec=None, **_) -> Events:
    return close_all(state, sidx_to_vidx)
