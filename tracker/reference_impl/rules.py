"""Each rule's per-fix condition, written directly from its docstring: (cond, severity, place, value)."""

from __future__ import annotations

import numpy as np

from tracker.rules._base import SEV_CONFIRMED, SEV_SUSPECTED
from tracker.world import FENCE_KINDS, KINDS, SENSOR_BITS

NO = (False, 0, -1, 0.0)


class Ctx:
    """What a rule may look at besides the fix: the world, its parameters, the fix's fences."""

    def __init__(self, world, params):
        self.world = world
        self.params = params

    def kinds_of(self, r) -> list[str]:
        return [FENCE_KINDS[self.world.fence_kind[f]] for f in r.fences]

    def inside(self, r, kinds) -> bool:
        return any(k in kinds for k in self.kinds_of(r))

    def p(self, rule: str, r):
        return self.params[rule].for_kind(KINDS[r.kind])


def _applies(p, r) -> bool:
    return p.enabled and KINDS[r.kind] in getattr(p, "kinds", KINDS)


def load_sev(r) -> int:
    return SEV_CONFIRMED if r.src == 1 else SEV_SUSPECTED


def speeding(r, c: Ctx):
    p = c.p("speeding", r)
    if not (p.enabled and r.ok):
        return NO
    w = c.world
    limit, zone = p.limit_kmh, -1
    best = None
    for f in r.fences:
        lim = w.fence_speed_limit_kmh[f]
        if np.isnan(lim):
            cls = (w.fences[f].tags or {}).get("road_class")
            lim = p.zone_class_limits_kmh.get(cls, np.nan) if cls else np.nan
        if not np.isnan(lim) and (best is None or (lim, f) < best):
            best = (lim, f)
    if best is not None:
        limit, zone = best
    limit += p.margin_kmh
    implied = r.step_m / r.dt_s * 3.6 if r.dt_s >= p.implied_min_dt_s else 0.0
    if r.speed > limit:
        return True, SEV_CONFIRMED, zone, r.speed
    if r.speed <= 0 and implied > limit:
        return True, SEV_SUSPECTED, zone, implied
    return False, SEV_SUSPECTED, zone, implied


def unsealed_transport(r, c: Ctx):
    p = c.p("unsealed_transport", r)
    if not (_applies(p, r) and r.ok and r.loaded == 1) or c.inside(r, p.site_kinds):
        return NO
    declared = bool(c.world.vehicle_sensors[r.v] & SENSOR_BITS["cover_closed"])
    if r.cover == 0:
        return True, load_sev(r), -1, r.speed
    if r.cover < 0 and declared and p.missing_cover_is_suspected:
        return True, SEV_SUSPECTED, -1, r.speed
    return NO


def illegal_dumping(r, c: Ctx):
    p = c.p("illegal_dumping", r)
    if not (_applies(p, r) and r.ok) or c.inside(r, p.allowed_kinds):
        return NO
    recent_drop = r.drop_ts >= 0 and r.ts - r.drop_ts <= p.drop_hold_s * 1000 and r.speed <= p.stop_kmh
    if r.lifting == 1 or recent_drop:
        return True, SEV_CONFIRMED, -1, r.speed
    return NO


def mixer_discharge(r, c: Ctx):
    p = c.p("mixer_discharge", r)
    if not (_applies(p, r) and r.ok) or c.inside(r, p.allowed_kinds):
        return NO
    return (True, SEV_CONFIRMED, -1, r.speed) if r.drum == 2 else NO


def route_deviation(r, c: Ctx):
    p = c.p("route_deviation", r)
    if not (_applies(p, r) and r.ok and r.loaded == 1 and r.doc >= 0):
        return NO
    return _off_route(r, c, load_sev(r))


def route_deviation_unknown(r, c: Ctx):
    """The same, for a truck whose load is unknown (first seen on the road): kept provisional."""
    p = c.p("route_deviation", r)
    if not (_applies(p, r) and r.ok and r.loaded == 2 and r.doc >= 0):
        return NO
    return _off_route(r, c, SEV_SUSPECTED)


def _off_route(r, c: Ctx, sev: int):
    d = c.world.docs
    route = int(d.route[r.doc])
    if route < 0 or any(f in (route, d.origin[r.doc], d.dest[r.doc]) for f in r.fences):
        return NO
    off = float(c.world.fence_index.distance_m(np.array([r.lon]), np.array([r.lat]), np.array([route]))[0])
    off -= c.world.fences[route].half_width_m or 0.0
    if off <= c.p("route_deviation", r).corridor_margin_m:
        return NO
    return True, sev, r.doc, off


def out_of_window(r, c: Ctx):
    p = c.p("out_of_window", r)
    if not (_applies(p, r) and r.ok and r.loaded == 1 and r.doc >= 0 and not r.in_window):
        return NO
    if c.inside(r, p.place_kinds):
        return NO
    return True, load_sev(r), r.doc, r.speed


def no_permit(r, c: Ctx):
    p = c.p("no_permit", r)
    if not (_applies(p, r) and r.ok and r.loaded == 1 and r.doc < 0) or c.inside(r, p.place_kinds):
        return NO
    return True, load_sev(r), -1, r.speed


def restricted_zone(r, c: Ctx):
    p = c.p("restricted_zone", r)
    if not (p.enabled and r.ok):
        return NO
    w = c.world
    zones = [f for f in r.fences if FENCE_KINDS[w.fence_kind[f]] == "restricted_zone"
             and w.fence_activity.mask(np.array([r.ts]), np.array([f]), w.settings.city.utc_offset_min)[0]]
    return (True, SEV_CONFIRMED, min(zones), r.speed) if zones else NO


#: debounced rules: name → condition
DEBOUNCED = {f.__name__: f for f in (speeding, unsealed_transport, illegal_dumping, mixer_discharge,
                                     route_deviation, out_of_window, no_permit, restricted_zone)}
