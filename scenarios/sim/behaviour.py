"""What each vehicle kind does all day, compliant by default, with hooks where violations are injected.

A behaviour writes one vehicle's `Timeline` from `t_begin_s` (before the scenario start: vehicles are
mid-activity when it begins) to `t_end_s`, using the city's compliant router (around active restricted
zones), real speed limits, turn slowdowns and red lights. Sensors change at the moments a real vehicle would
change them: a muck truck's cover opens for loading inside the site and closes before leaving, the body lifts
inside the disposal site, a mixer's drum reverses inside the construction site, a sweeper's brush turns on at
the start of a planned segment and off before transit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.city import City, Place, WorkPlan, in_windows
from scenarios.roads import Polyline, Router
from scenarios.sim.config import ScenarioConfig
from scenarios.sim.kinematics import DriveParams, creep, drive
from scenarios.sim.timeline import Timeline
from tracker.reference import Permit, Vehicle

FULL, HALF, EMPTY = 3, 1, 0
DRUM_STOP, DRUM_FWD, DRUM_REV = 0, 1, 2


@dataclass(eq=False)
class Ctx:
    """Per-vehicle context: the city, the vehicle, its own random generator and the time span to fill."""

    city: City
    vehicle: Vehicle
    rng: np.random.Generator
    t_begin_s: float
    t_end_s: float
    node: int = -1
    inside: Place | None = None  # the fenced place the vehicle is in (left by its driveway before driving on)
    tl: Timeline | None = None
    params: DriveParams | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # what happened, for truth and near misses

    @property
    def cfg(self) -> ScenarioConfig:
        return self.city.cfg

    def u(self, r: tuple[float, float]) -> float:
        return float(self.rng.uniform(r[0], r[1]))

    def local_minute(self, t_s: float) -> int:
        return int(self.city.local_minute(self.cfg.start_ms + int(t_s * 1000)))

    def in_windows(self, t_s: float, windows: tuple[str, ...] | list[str]) -> bool:
        return bool(in_windows(np.array([self.local_minute(t_s)]), windows)[0])

    def window_end_s(self, t_s: float, windows: tuple[str, ...] | list[str], step_s: float = 60.0) -> float:
        """First time ≥ t_s outside the windows (scanning minute by minute, at most a day)."""
        ts = t_s + np.arange(0, 86_400, step_s)
        m = self.city.local_minute(self.cfg.start_ms + (ts * 1000).astype(np.int64))
        out = np.flatnonzero(~in_windows(m, windows))
        return float(ts[out[0]]) if out.size else t_s + 86_400

    def occurrences(self, windows: tuple[str, ...] | list[str]) -> list[tuple[float, float]]:
        """(start_s, end_s) of each window occurrence wholly inside [0, t_end_s]."""
        ts = np.arange(-60.0, self.t_end_s + 60.0, 60.0)
        m = self.city.local_minute(self.cfg.start_ms + (ts * 1000).astype(np.int64))
        out: list[tuple[float, float]] = []
        for w in windows:
            ins = in_windows(m, [w]).astype(np.int8)
            d = np.diff(np.concatenate([[0], ins, [0]]))
            for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
                if a > 0 and b < ins.size:  # wholly inside: starts after -60 s and ends before the last sample
                    out.append((float(ts[a]), float(ts[b - 1]) + 60.0))
        return sorted(o for o in out if o[1] <= self.t_end_s + 1e-6)

    def window_start_s(self, t_s: float, windows: tuple[str, ...] | list[str], step_s: float = 60.0) -> float:
        ts = t_s + np.arange(0, 86_400, step_s)
        m = self.city.local_minute(self.cfg.start_ms + (ts * 1000).astype(np.int64))
        ins = np.flatnonzero(in_windows(m, windows))
        return float(ts[ins[0]]) if ins.size else t_s + 86_400


def drive_params(ctx: Ctx, work_speed_kmh: float | None = None, max_speed_kmh: float | None = None) -> DriveParams:
    kp = ctx.cfg.kinds[ctx.vehicle.kind]
    return DriveParams(max_speed_kmh=kp.max_speed_kmh if max_speed_kmh is None else max_speed_kmh,
                       accel_ms2=kp.accel_ms2, decel_ms2=kp.decel_ms2, speed_factor=ctx.u(kp.speed_factor),
                       work_speed_kmh=work_speed_kmh)


def signal_stops(ctx: Ctx, path: Polyline, edges: np.ndarray) -> list[tuple[float, float]]:
    """Red lights met along a path: at signalised nodes between consecutive edges."""
    if edges.size < 2:
        return []
    net = ctx.city.net
    joints = net.edge_u[edges[1:]]
    sig = ctx.city.signal_nodes[joints]
    if not sig.any():
        return []
    # distance of each joint along the path = cumulative length of preceding edges (clipped to path length)
    cum = np.cumsum(net.edge_length_m[edges])[:-1] * (path.length_m / max(float(net.edge_length_m[edges].sum()), 1))
    p = ctx.city.cfg.city
    red = ctx.rng.random(joints.size) < p.red_prob
    waits = ctx.rng.uniform(p.red_wait_s[0], p.red_wait_s[1], joints.size)
    keep = sig & red & (cum > 30) & (cum < path.length_m - 30)
    return [(float(c), float(w)) for c, w in zip(cum[keep], waits[keep], strict=True)]


def _driveway(ctx: Ctx, place: Place, inward: bool) -> None:
    """Drive between the gate node and the middle of a fenced place, slowly."""
    net, tl = ctx.city.net, ctx.tl
    assert tl is not None
    gx, gy = float(net.node_x[place.node]), float(net.node_y[place.node])
    xs = np.array([gx, place.x]) if inward else np.array([place.x, gx])
    ys = np.array([gy, place.y]) if inward else np.array([place.y, gy])
    length = float(np.hypot(xs[1] - xs[0], ys[1] - ys[0]))
    if length < 1.0:
        return
    kmh = ctx.cfg.city.driveway_kmh
    path = Polyline(x=xs, y=ys, edge=np.array([-1, -1]), cum_m=np.array([0.0, length]),
                    speed_limit_kmh=np.array([kmh, kmh]), major=np.zeros(2, bool))
    kp = ctx.cfg.kinds[ctx.vehicle.kind]
    tl.drive(path, drive_params(ctx, max_speed_kmh=kmh), tag=("enter:" if inward else "leave:") + place.id,
             profile=creep(length, kmh, kp.accel_ms2, kp.decel_ms2))


def enter(ctx: Ctx, place: Place) -> None:
    if ctx.inside is place:
        return
    leave(ctx)
    _driveway(ctx, place, True)
    ctx.inside = place


def leave(ctx: Ctx) -> None:
    if ctx.inside is not None:
        _driveway(ctx, ctx.inside, False)
        ctx.inside = None


def go(ctx: Ctx, dst: int, *, router: Router | None = None, tag: str = "", via: list[int] | None = None,
       params: DriveParams | None = None, extra_caps: list[tuple[float, float, float]] | None = None,
       signals: bool = True, stop_before_end: float | None = None, plan: Any = None, into: Place | None = None
       ) -> tuple[Polyline | None, np.ndarray]:
    """Drive from the current node to `dst` (optionally via nodes) along the fastest compliant path.

    stop_before_end: wait this long ~150 m before arriving (a truck queueing at a site gate)."""
    r = router or ctx.city.router
    edges = r.route_via([ctx.node, *(via or []), dst])
    if edges.size == 0:
        if into is not None:
            enter(ctx, into)
        return None, edges
    leave(ctx)
    path = ctx.city.net.path_geometry(edges)
    assert ctx.tl is not None
    stops = signal_stops(ctx, path, edges) if signals else []
    s_gate = None
    if stop_before_end is not None and path.length_m > 400:
        s_gate = path.length_m - 150.0
        stops = [st for st in stops if st[0] < s_gate - 100] + [(s_gate, stop_before_end)]
        if plan is not None:
            plan.done = True
    leg = ctx.tl.drive(path, params or ctx.params or drive_params(ctx), stops=stops, extra_caps=extra_caps, tag=tag)
    if s_gate is not None and leg.profile is not None:  # record the queue at the gate (a deliberate near miss)
        at = np.flatnonzero(np.isclose(leg.profile.s_m, leg.profile.s_m[np.argmin(abs(leg.profile.s_m - s_gate))]))
        ctx.events.append({"what": "n:gate_wait", "t0": leg.t0_s + float(leg.profile.t_s[at[0]]),
                           "t1": leg.t0_s + float(leg.profile.t_s[at[-1]])})
    ctx.node = dst
    if into is not None:
        enter(ctx, into)
    return path, edges


def drive_edges(ctx: Ctx, edges: np.ndarray, *, tag: str = "", params: DriveParams | None = None,
                signals: bool = True, extra_caps: list[tuple[float, float, float]] | None = None) -> Polyline:
    leave(ctx)
    path = ctx.city.net.path_geometry(edges)
    assert ctx.tl is not None
    stops = signal_stops(ctx, path, edges) if signals else []
    ctx.tl.drive(path, params or ctx.params or drive_params(ctx), stops=stops, extra_caps=extra_caps, tag=tag)
    ctx.node = int(ctx.city.net.edge_v[edges[-1]])
    return path


def start_at(ctx: Ctx, place: Place) -> Timeline:
    """Start the day parked inside a fenced place (or at a point place's node)."""
    ctx.node = place.node
    inside = place.shape == "polygon"
    x, y = (place.x, place.y) if inside else (float(ctx.city.net.node_x[place.node]), float(ctx.city.net.node_y[place.node]))
    ctx.tl = Timeline(ctx.vehicle.id, ctx.t_begin_s, x, y)
    ctx.inside = place if inside else None
    return ctx.tl


def park_until(ctx: Ctx, t_s: float, tag: str = "parked") -> None:
    assert ctx.tl is not None
    if t_s > ctx.tl.t_s:
        ctx.tl.dwell(t_s - ctx.tl.t_s, tag=tag)


# -- muck trucks ---------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """A violation (or near miss) a behaviour should perform at its first opportunity after `at_s`."""

    kind: str
    at_s: float
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    def due(self, t_s: float) -> bool:
        return not self.done and t_s >= self.at_s


def muck_truck(ctx: Ctx, permit: Permit | None, plan: Plan | None = None) -> None:
    """Compliant cycle inside the permit's windows: load at the site (cover open), drive the approved route
    sealed, unload (lift) inside the disposal site, return empty; park at the depot outside the windows.

    Violations (plan.kind): route_deviation, unsealed_transport, illegal_dumping, suspected_dumping,
    out_of_window (one loaded trip outside the windows), no_permit (trips with no permit at all),
    speeding; near misses: congestion_stop, gate_wait, brief_overspeed."""
    city, cfg, pp = ctx.city, ctx.cfg, ctx.cfg.permits
    depot = city.places[city.home[ctx.vehicle.id]]
    tl = start_at(ctx, depot)
    ctx.params = drive_params(ctx)
    tl.set("cover_closed", True)
    tl.set("lifting", False)
    tl.set("load", EMPTY)
    if permit is None:
        park_until(ctx, ctx.t_end_s)
        return
    site, disp = city.places[permit.origin_fence], city.places[permit.disposal_fence]
    bp = cfg.behaviour
    trip_s = city.router.travel_time_s(site.node, disp.node) * bp.plan_factor + pp.unload_dwell_s[1]
    no_windows = plan is not None and plan.kind == "no_permit"
    windows = ("00:00-24:00",) if no_windows else permit.windows
    # start somewhere in the cycle so that trucks are spread over it at the scenario start
    park_until(ctx, ctx.t_begin_s + ctx.u((0.0, bp.spread_start_s)))
    while tl.t_s < ctx.t_end_s:
        t = tl.t_s
        forced = plan is not None and plan.kind == "out_of_window" and plan.due(t) and t < ctx.t_end_s - trip_s
        if not forced and not ctx.in_windows(t, windows):
            if ctx.node != depot.node:
                go(ctx, depot.node, tag="to_depot", into=depot)
            nxt = ctx.window_start_s(tl.t_s, windows)
            if plan is not None and plan.kind == "out_of_window" and not plan.done:
                nxt = min(nxt, max(plan.at_s, tl.t_s + 1.0))
            park_until(ctx, min(nxt, ctx.t_end_s) + (0 if forced else ctx.u((0, 300))))
            continue
        if not forced and ctx.window_end_s(t, windows) - t < trip_s + pp.load_dwell_s[1] + bp.window_slack_s:
            # not enough window left for another full trip: go home and wait for the next window
            if ctx.node != depot.node:
                go(ctx, depot.node, tag="to_depot", into=depot)
            park_until(ctx, min(ctx.window_end_s(tl.t_s, windows) + 60, ctx.t_end_s))
            continue
        if ctx.node != site.node:
            gate = plan is not None and plan.kind == "gate_wait" and plan.due(tl.t_s)
            go(ctx, site.node, tag="to_site", stop_before_end=(ctx.u(bp.gate_wait_s) if gate else None), plan=plan,
               into=site)
        # loading inside the site: cover open, load rises, cover closes before the truck leaves
        dwell = ctx.u(pp.load_dwell_s)
        tl.set("cover_closed", False)
        tl.dwell(dwell * 0.5, tag="loading")
        tl.set("load", HALF)
        tl.dwell(dwell * 0.4, tag="loading")
        tl.set("load", FULL)
        tl.dwell(dwell * 0.1, tag="loading")
        tl.set("cover_closed", True)
        if forced and plan is not None:
            plan.done = True
            plan.info["trip_t0"] = tl.t_s
        loaded_trip(ctx, permit, site, disp, plan)
        if forced:
            trip = [e for e in ctx.events if e["what"] == "trip"][-1]
            ctx.events.append({**trip, "what": "v:out_of_window"})
        # another trip only if it fits in the window (a truck with no more work goes straight home empty)
        t_next = tl.t_s + city.router.travel_time_s(ctx.node, site.node) * bp.plan_factor
        if ctx.in_windows(t_next, windows) and \
                ctx.window_end_s(t_next, windows) - t_next >= trip_s + pp.load_dwell_s[1] + bp.window_slack_s:
            gate = plan is not None and plan.kind == "gate_wait" and plan.due(tl.t_s)
            go(ctx, site.node, tag="return_empty", stop_before_end=(ctx.u(bp.gate_wait_s) if gate else None),
               plan=plan, into=site)
        elif ctx.node != depot.node:
            go(ctx, depot.node, tag="return_home", into=depot)


def _roadside_ok(ctx: Ctx, x: float, y: float) -> bool:
    """A place to stop that is far from every allowed place and zone (so it is unambiguous)."""
    clear = ctx.cfg.behaviour.roadside_clear_m
    for p in ctx.city.allowed_places():
        if np.hypot(p.x - x, p.y - y) < clear:
            return False
    return all(np.hypot(z.x - x, z.y - y) > float(z.radius_m or 0) + clear for z in ctx.city.zones)


def _arrival_s(ctx: Ctx, edges: np.ndarray) -> np.ndarray:
    """Estimated arrival time at the end of each edge if the vehicle set off now (free-flow profile)."""
    tl = ctx.tl
    assert tl is not None
    path = ctx.city.net.path_geometry(edges)
    prof = drive(path, ctx.params or drive_params(ctx))
    cum = np.cumsum(ctx.city.net.edge_length_m[edges]) * (path.length_m / float(ctx.city.net.edge_length_m[edges].sum()))
    return tl.t_s + np.interp(cum, prof.s_m, prof.t_s)


def _in_period(ctx: Ctx, edges: np.ndarray, need_after_s: float) -> np.ndarray:
    """Per edge boundary k (1..n-1): does arriving there leave the act inside the simulated period?"""
    arr = _arrival_s(ctx, edges)
    m = ctx.cfg.truth.margin_s
    ok = (arr >= m) & (arr + need_after_s <= ctx.cfg.hours * 3600.0 - m)
    return np.concatenate([[False], ok[:-1]])  # index k ↔ arrival at the end of edge k-1


def _split_index(ctx: Ctx, edges: np.ndarray, lo: float = 0.3, hi: float = 0.7,
                 allowed: np.ndarray | None = None) -> int | None:
    """An edge boundary roughly mid-route whose node is a fine roadside stop (far from every allowed place
    and zone), or None. Tries the middle of the route first, then anywhere but the ends."""
    net = ctx.city.net
    n = edges.size
    if n < 4:
        return None
    mid = ctx.rng.permutation(np.arange(max(1, int(n * lo)), max(2, int(n * hi))))
    rest = ctx.rng.permutation(np.arange(1, n - 1))
    for k in np.concatenate([mid, rest]):
        if allowed is not None and not allowed[k]:
            continue
        node = int(net.edge_v[edges[k - 1]])
        if ctx.city.core is not None and ctx.city.core[node] \
                and _roadside_ok(ctx, float(net.node_x[node]), float(net.node_y[node])):
            return int(k)
    return None


def straight_stretch(path: Polyline, length_m: float, rng: np.random.Generator, s_min: float = 150.0,
                     s_max: float | None = None, max_turn_deg: float = 20.0) -> tuple[float, float] | None:
    """A stretch of `length_m` inside [s_min, s_max] with no turn sharper than 20° (to speed along)."""
    hi = path.length_m - 150 if s_max is None else min(s_max, path.length_m - 150)
    lo = max(s_min, 150.0)
    if hi - lo < length_m:
        return None
    turn = path.turn_deg()
    sharp = path.cum_m[turn > max_turn_deg]
    bounds = np.concatenate([[lo], sharp[(sharp > lo) & (sharp < hi)], [hi]])
    gaps = np.diff(bounds)
    ok = np.flatnonzero(gaps >= length_m + 60)
    if ok.size == 0:
        return None
    i = int(ok[int(rng.integers(ok.size))])
    a = bounds[i] + float(rng.uniform(30, gaps[i] - length_m - 30))
    return float(a), float(a + length_m)


def timed_stretch(ctx: Ctx, path: Polyline, v_kmh: float, length_m: float, fallback: bool
                  ) -> tuple[float, float] | None:
    """A straight stretch to speed along that the vehicle, setting off now, reaches inside the period."""
    tl, tp = ctx.tl, ctx.cfg.truth
    assert tl is not None
    prof = drive(path, ctx.params or drive_params(ctx))
    T = ctx.cfg.hours * 3600.0
    s_lo = float(np.interp(tp.margin_s - tl.t_s, prof.t_s, prof.s_m))
    s_hi = float(np.interp(T - tp.margin_s - 200.0 - tl.t_s, prof.t_s, prof.s_m))
    turn = ctx.cfg.behaviour.straight_turn_deg
    st = straight_stretch(path, length_m, ctx.rng, s_lo, s_hi, turn)
    if st is None and fallback:
        st = straight_stretch(path, v_kmh / 3.6 * (tp.speeding_min_s + 30.0), ctx.rng, s_lo, s_hi, turn)
    return st


def loaded_trip(ctx: Ctx, permit: Permit, site: Place, disp: Place, plan: Plan | None) -> None:
    city, tl, pp, tp, cfg = ctx.city, ctx.tl, ctx.cfg.permits, ctx.cfg.truth, ctx.cfg
    assert tl is not None
    route = city.route_edges[permit.id]
    kind = plan.kind if plan is not None and plan.due(tl.t_s) else None
    net = city.net
    if kind == "route_deviation":
        poly = city.routes[permit.id]
        d = poly.distance_to(net.node_x, net.node_y)
        core = city.core if city.core is not None else np.ones(net.n_nodes, bool)
        pool = (d > tp.deviation_far_m[0]) & (d < tp.deviation_far_m[1]) & core & (net.node_osm >= 0)
        allowed = _in_period(ctx, route, tp.deviation_min_s + 240.0)
        for k in ctx.rng.permutation(np.arange(max(1, route.size // 5), max(2, route.size * 4 // 5))):
            if not allowed[k]:
                continue
            split = int(net.edge_v[route[k - 1]])
            far = np.hypot(net.node_x - net.node_x[split], net.node_y - net.node_y[split])
            cand = np.flatnonzero(pool & (far < cfg.behaviour.detour_within_m))
            w = -1
            for c in ctx.rng.permutation(cand)[:8]:  # a detour long enough to be unmistakable
                detour = net.path_geometry(city.router.route_via([split, int(c), disp.node]))
                seg = np.hypot(np.diff(detour.x), np.diff(detour.y))
                off = poly.distance_to(detour.x[1:], detour.y[1:]) > cfg.permits.corridor_half_width_m
                if float(seg[off].sum()) >= tp.deviation_design_m:
                    w = int(c)
                    break
            if w >= 0:
                drive_edges(ctx, route[:k], tag=f"trip:{permit.id}")
                t0 = tl.t_s
                go(ctx, disp.node, via=[w], tag=f"trip:{permit.id}:deviation", into=disp)
                plan.done = True  # type: ignore[union-attr]
                ctx.events.append({"what": "v:route_deviation", "t0": t0, "t1": tl.t_s, "permit": permit.id})
                unload(ctx, pp)
                return
    if kind == "suspected_dumping" and tl.t_s < tp.margin_s:
        kind = None  # without sensors only a trip seen leaving its site is known to be loaded: wait for one
    if kind in ("illegal_dumping", "suspected_dumping"):
        k = _split_index(ctx, route, allowed=_in_period(ctx, route, tp.dumping_stop_s[1] + 120.0))
        if k is not None:
            drive_edges(ctx, route[:k], tag=f"trip:{permit.id}")
            t_stop = tl.t_s
            if kind == "illegal_dumping":
                tl.dwell(ctx.u((30.0, 90.0)), tag="roadside")
                t0 = tl.t_s
                tl.set("lifting", True)
                lift = ctx.u(pp.lift_s)
                tl.dwell(lift * 0.6, tag="dumping")
                tl.set("load", EMPTY)
                tl.dwell(lift * 0.4, tag="dumping")
                tl.set("lifting", False)
                t1 = tl.t_s
                tl.dwell(ctx.u((20.0, 60.0)), tag="roadside")
            else:
                t0 = t_stop
                tl.dwell(ctx.u(tp.dumping_stop_s), tag="dumping")
                tl.set("load", EMPTY)
                t1 = tl.t_s
            plan.done = True  # type: ignore[union-attr]
            ctx.events.append({"what": f"v:{kind}", "t0": t0, "t1": t1, "permit": permit.id,
                               "x": tl.x, "y": tl.y, "stop_t0": t_stop, "stop_t1": tl.t_s})
            # back the way it came (inside the corridor: the trip simply never reaches the disposal site)
            back = reverse_edges(city, route[:k])
            if back is not None:
                drive_edges(ctx, back, tag="return_after_dumping")
            else:
                go(ctx, site.node, tag="return_after_dumping")
            return
    caps: list[tuple[float, float, float]] = []
    path = net.path_geometry(route)
    info: dict[str, Any] = {}
    if kind == "speeding" or kind == "brief_overspeed":
        limit = ctx.cfg.kinds[ctx.vehicle.kind].speed_limit_kmh
        if kind == "speeding":
            v = limit + ctx.u(tp.speeding_excess_kmh)
            length = v / 3.6 * ctx.u(tp.speeding_s)
        else:
            v = limit + ctx.u(cfg.behaviour.brief_overspeed_kmh)
            length = v / 3.6 * ctx.u(cfg.behaviour.brief_overspeed_s)
        st = timed_stretch(ctx, path, v, length, kind == "speeding")
        if st is not None:
            caps.append((st[0], st[1], v))
            info = {"stretch": st, "v": v}
    stops = signal_stops(ctx, path, route)
    if caps:
        stops = [(s_, w) for s_, w in stops if not (caps[0][0] - 200 <= s_ <= caps[0][1] + 50)]
    if kind == "congestion_stop":
        s_stop = path.length_m * ctx.u((0.3, 0.7))
        stops.append((s_stop, ctx.u(cfg.behaviour.congestion_stop_s)))
        info = {"s": s_stop}
    leave(ctx)
    t0 = tl.t_s
    p = ctx.params or drive_params(ctx)
    if caps:
        p = DriveParams(**{**{f: getattr(p, f) for f in p.__dataclass_fields__}, "max_speed_kmh": caps[0][2],
                           "lateral_ms2": cfg.behaviour.speeder_lateral_ms2})
    leg = tl.drive(path, p, stops=stops, extra_caps=_cap_rest(path, ctx, caps), tag=f"trip:{permit.id}")
    if kind == "congestion_stop" and leg.profile is not None:
        pr = leg.profile
        at = np.flatnonzero(np.isclose(pr.s_m, pr.s_m[np.argmin(abs(pr.s_m - info["s"]))]))
        info = {"a": leg.t0_s + float(pr.t_s[at[0]]), "b": leg.t0_s + float(pr.t_s[at[-1]])}
    ctx.node = disp.node
    enter(ctx, disp)
    if kind == "unsealed_transport":
        # the cover stays open for a planned *moving* time (red lights on the way do not count towards it)
        a = max(t0 + 90.0, tp.margin_s)
        t_grid = np.arange(a, max(a, min(tl.t_s - 120.0, ctx.cfg.hours * 3600.0 - tp.margin_s)), 1.0)
        _, _, v_ms, _ = tl.true_at(t_grid)
        moving_s = np.cumsum(v_ms * 3.6 > tp.moving_kmh)
        want = ctx.u(tp.unsealed_s)
        b = float(t_grid[int(np.searchsorted(moving_s, want))]) if t_grid.size and moving_s[-1] >= want else -1.0
        if b - a >= tp.unsealed_min_s + 60.0:
            tl.set("cover_closed", False, at_s=a)
            tl.set("cover_closed", True, at_s=b)
            info = {"a": a, "b": b}
        else:
            kind = None
    handled = {"unsealed_transport", "congestion_stop"} | ({"speeding", "brief_overspeed"} if caps else set())
    if kind in handled and plan is not None:
        plan.done = plan.done or kind not in ("out_of_window",)
        span = (info["a"], info["b"]) if kind in ("unsealed_transport", "congestion_stop") else (t0, tl.t_s)
        ctx.events.append({"what": ("v:" if kind in VIOLATIONS else "n:") + kind, "t0": span[0], "t1": span[1],
                           "permit": permit.id, **info})
    ctx.events.append({"what": "trip", "permit": permit.id, "t0": t0, "t1": tl.t_s})
    unload(ctx, pp)


VIOLATIONS = frozenset({"route_deviation", "unsealed_transport", "illegal_dumping", "suspected_dumping",
                        "out_of_window", "no_permit", "restricted_zone", "speeding", "signal_loss",
                        "mixer_discharge", "sweeping_too_fast", "missed_segment", "missed_collection",
                        "banned_hours_work", "no_transfer_arrival"})


def _cap_rest(path: Polyline, ctx: Ctx, caps: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """With a speeding stretch the driver's own cap is raised; keep the compliant cap everywhere else."""
    if not caps:
        return []
    normal = ctx.cfg.kinds[ctx.vehicle.kind].max_speed_kmh
    a, b, v = caps[0]
    return [(0.0, a, normal), (b, path.length_m, normal), (a, b, v)]


def unload(ctx: Ctx, pp: Any) -> None:
    """Inside the disposal site: stop, lift the body, load → empty, lower, wait a little."""
    tl = ctx.tl
    assert tl is not None
    tl.dwell(ctx.u((30.0, 90.0)), tag="queue")
    tl.set("lifting", True)
    lift = ctx.u(pp.lift_s)
    tl.dwell(lift * 0.6, tag="unloading")
    tl.set("load", EMPTY)
    tl.dwell(lift * 0.4, tag="unloading")
    tl.set("lifting", False)
    tl.dwell(max(ctx.u(pp.unload_dwell_s) - lift, 30.0), tag="unloading")


# -- concrete mixers -----------------------------------------------------------------------------------------------


def concrete_mixer(ctx: Ctx, plant: Place, site: Place, plan: Plan | None = None) -> None:
    """Plant (load, drum forward) → site (wait, drum reverse discharges) → plant, all day.

    Violations: mixer_discharge (drum reverse at the roadside), restricted_zone (a delivery through an active
    zone, stopping inside), speeding."""
    city, tp = ctx.city, ctx.cfg.truth
    tl = start_at(ctx, plant)
    ctx.params = drive_params(ctx)
    tl.set("drum", DRUM_STOP)
    park_until(ctx, ctx.t_begin_s + ctx.u((0.0, 1200.0)))
    while tl.t_s < ctx.t_end_s:
        tl.set("drum", DRUM_FWD)
        tl.dwell(ctx.u((240.0, 480.0)), tag="loading")
        t0 = tl.t_s
        kind = plan.kind if plan is not None and plan.due(tl.t_s) else None
        if kind == "mixer_discharge":
            edges = city.router.route(ctx.node, site.node)
            k = _split_index(ctx, edges, allowed=_in_period(ctx, edges, tp.discharge_s[1] + 120.0))
            if k is not None:
                drive_edges(ctx, edges[:k], tag="delivery")
                tl.dwell(ctx.u((20.0, 60.0)), tag="roadside")
                a = tl.t_s
                tl.set("drum", DRUM_REV)
                tl.dwell(ctx.u(tp.discharge_s), tag="discharging")
                tl.set("drum", DRUM_STOP)
                b = tl.t_s
                tl.dwell(ctx.u((20.0, 60.0)), tag="roadside")
                plan.done = True  # type: ignore[union-attr]
                ctx.events.append({"what": "v:mixer_discharge", "t0": a, "t1": b, "x": tl.x, "y": tl.y})
                go(ctx, plant.node, tag="return", into=plant)
                continue
        if kind == "restricted_zone":
            zone = _zone_for(ctx)
            if zone is not None and tl.t_s + city.free_router.travel_time_s(ctx.node, zone.node) * 1.5 \
                    + tp.zone_dwell_s[1] + tp.margin_s > ctx.cfg.hours * 3600.0:
                zone = None  # too late to be seen whole: deliver normally and try on a later round
            if zone is not None:
                go(ctx, zone.node, router=city.free_router, tag="delivery:zone")
                tl.dwell(ctx.u(tp.zone_dwell_s), tag="in_zone")
                plan.done = True  # type: ignore[union-attr]
                ctx.events.append({"what": "v:restricted_zone", "t0": t0, "t1": tl.t_s, "zone": zone.id,
                                   "t_exit_max": tl.t_s + 900.0})
                go(ctx, site.node, router=city.free_router, tag="delivery", into=site)
        elif kind == "speeding":
            edges = city.router.route(ctx.node, site.node)
            path = city.net.path_geometry(edges)
            limit = ctx.cfg.kinds[ctx.vehicle.kind].speed_limit_kmh
            v = limit + ctx.u(tp.speeding_excess_kmh)
            st = timed_stretch(ctx, path, v, v / 3.6 * ctx.u(tp.speeding_s), True)
            if st is not None:
                caps = [(st[0], st[1], v)]
                stops = [(s_, w) for s_, w in signal_stops(ctx, path, edges) if not (st[0] - 200 <= s_ <= st[1] + 50)]
                p = ctx.params
                assert p is not None
                p = DriveParams(**{**{f: getattr(p, f) for f in p.__dataclass_fields__}, "max_speed_kmh": v,
                                   "lateral_ms2": ctx.cfg.behaviour.speeder_lateral_ms2})
                leave(ctx)
                tl.drive(path, p, stops=stops, extra_caps=_cap_rest(path, ctx, caps), tag="delivery")
                ctx.node = site.node
                enter(ctx, site)
                plan.done = True  # type: ignore[union-attr]
                ctx.events.append({"what": "v:speeding", "t0": t0, "t1": tl.t_s})
            else:
                go(ctx, site.node, tag="delivery", into=site)
        else:
            go(ctx, site.node, tag="delivery", into=site)
        ctx.events.append({"what": "delivery", "t0": t0, "t1": tl.t_s})
        tl.dwell(ctx.u((60.0, 300.0)), tag="waiting")
        tl.set("drum", DRUM_REV)
        tl.dwell(ctx.u((300.0, 600.0)), tag="discharging")
        tl.set("drum", DRUM_STOP)
        tl.dwell(ctx.u((60.0, 180.0)), tag="washing")
        go(ctx, plant.node, tag="return", into=plant)


def _zone_for(ctx: Ctx) -> Place | None:
    """The nearest restricted zone active now and for the next 20 minutes."""
    tl = ctx.tl
    assert tl is not None
    zs = [z for z in ctx.city.zones if all(ctx.in_windows(tl.t_s + d, z.windows) for d in (0.0, 600.0, 1200.0))]
    if not zs:
        return None
    return min(zs, key=lambda z: (z.x - tl.x) ** 2 + (z.y - tl.y) ** 2)


# -- refuse trucks -------------------------------------------------------------------------------------------------


def refuse_truck(ctx: Ctx, points: list[Place], facility: Place, windows: list[str], plan: Plan | None = None
                 ) -> None:
    """Depot → collection points in order (stop, tip bins with the lifter) → facility (tip) → depot, inside
    the schedule's window; parked otherwise.

    Violation missed_collection: one point is skipped, on a route that keeps away from it (a truck driving
    through a point without stopping is a different question the rule may answer either way).
    Violation no_transfer_arrival: from the first window whose arrival deadline (window end +
    `truth.arrival_within_s`) falls inside the period, the truck collects its round and drives home loaded,
    on roads that keep away from the facility's fence."""
    city = ctx.city
    skip: set[str] = set()
    router = None
    undelivered_from = None
    if plan is not None and plan.kind == "no_transfer_arrival" and points:
        tp = ctx.cfg.truth
        occ = ctx.occurrences(windows)
        ok = [k for k, (ws, we) in enumerate(occ) if we + tp.arrival_within_s + tp.margin_s <= ctx.t_end_s - 60.0]
        far = float(np.hypot(facility.ring[:, 0] - facility.x, facility.ring[:, 1] - facility.y).max()) \
            if facility.ring is not None else float(facility.radius_m or 50.0)
        for clear_m in (60.0, 40.0) if ok else ():  # roads this far beyond the fence's farthest corner
            router = _avoiding(city, facility, far + clear_m, city.places[city.home[ctx.vehicle.id]].node,
                               [p.node for p in points])
            if router is not None:
                undelivered_from = ok[0]
                plan.done = True
                break
    if plan is not None and plan.kind == "missed_collection" and len(points) >= 2:
        for j in ctx.rng.permutation(len(points)):
            pt = points[int(j)]
            if any(np.hypot(p.x - pt.x, p.y - pt.y) < ctx.cfg.behaviour.lone_point_m for p in points if p.id != pt.id):
                continue  # a neighbour's stop would look like a visit through GPS noise: skip a lone point
            others = [p.node for p in points if p.id != pt.id] + [facility.node]
            router = _avoiding(city, pt, ctx.cfg.city.collection_radius_m + 25.0,
                               city.places[city.home[ctx.vehicle.id]].node, others)
            if router is not None:
                break
        if router is not None:
            skip = {pt.id}
            plan.done = True
            plan.info["point"] = pt.id
    depot = city.places[city.home[ctx.vehicle.id]]
    tl = start_at(ctx, depot)
    ctx.params = drive_params(ctx)
    tl.set("lifting", False)
    tl.set("load", EMPTY)
    if not windows or not points:
        park_until(ctx, ctx.t_end_s)
        return
    for n_occ, (ws, we) in enumerate(ctx.occurrences(windows)):
        park_until(ctx, ws + ctx.u((0.0, 240.0)))
        if undelivered_from is not None:
            if n_occ < undelivered_from:
                _collection_round(ctx, points, facility, set(), None, we, None, window_start_s=ws)
            else:
                _collection_round(ctx, points, facility, set(), router, we, None, window_start_s=ws, deliver=False)
            continue
        _collection_round(ctx, points, facility, skip if n_occ == 0 else set(), router if n_occ == 0 else None,
                          we, plan if n_occ == 0 else None, window_start_s=ws)
    park_until(ctx, ctx.t_end_s)


def _collection_round(ctx: Ctx, points: list[Place], facility: Place, skip: set[str], router: Router | None,
                      window_end_s: float, plan: Plan | None, window_start_s: float = 0.0, deliver: bool = True
                      ) -> None:
    city, sp, tl = ctx.city, ctx.cfg.sanitation, ctx.tl
    assert tl is not None
    depot = city.places[city.home[ctx.vehicle.id]]
    load = EMPTY
    for i, pt in enumerate(points):
        if pt.id in skip:
            continue
        go(ctx, pt.node, tag=f"to_point:{pt.id}", router=router)
        leave(ctx)  # a point at the depot's (or facility's) gate: out of the yard first — bins are on the street
        stop = ctx.u(sp.collection_stop_s)
        t0 = tl.t_s
        tl.dwell(stop * 0.3, tag=f"collect:{pt.id}")
        tl.set("lifting", True)
        tl.dwell(min(ctx.u(sp.lift_s), stop * 0.5), tag=f"collect:{pt.id}")
        tl.set("lifting", False)
        load = FULL if i >= len(points) * 2 // 3 else (HALF if i >= len(points) // 3 else load)
        tl.set("load", load)
        tl.dwell(max(stop - (tl.t_s - t0), 5.0), tag=f"collect:{pt.id}")
        ctx.events.append({"what": "collected", "place": pt.id, "t0": t0, "t1": tl.t_s})
    if not deliver:  # home with the refuse: the facility never sees this round
        last = max((float(e["t0"]) for e in ctx.events if e["what"] == "collected" and e["t0"] >= window_start_s),
                   default=None)
        go(ctx, depot.node, tag="to_depot", router=router, into=depot)
        if last is not None:
            ctx.events.append({"what": "v:no_transfer_arrival", "t0": window_start_s,
                               "t1": max(window_end_s, last) + ctx.cfg.truth.arrival_within_s,
                               "window_start": window_start_s, "window_end": window_end_s,
                               "facility": facility.id, "home": depot.id})
        return
    go(ctx, facility.node, tag="to_facility", router=router, into=facility)
    tl.dwell(ctx.u((60.0, 180.0)), tag="queue")
    tl.set("lifting", True)
    tl.dwell(ctx.u((60.0, 120.0)), tag="tipping")
    tl.set("load", EMPTY)
    tl.set("lifting", False)
    tl.dwell(ctx.u((60.0, 180.0)), tag="tipping")
    go(ctx, depot.node, tag="to_depot", router=router, into=depot)
    for pid in sorted(skip):
        ctx.events.append({"what": "v:missed_collection", "t0": window_end_s, "t1": window_end_s, "place": pid,
                           "window_start": window_start_s, "facility": facility.id, "home": depot.id})


def _avoiding(city: City, pt: Place, radius_m: float, home: int, needed: list[int]) -> Router | None:
    """A compliant router that also keeps `radius_m` away from one place; None if that cuts off a needed node."""
    net = city.net
    seg_edge = np.repeat(np.arange(net.n_edges), np.diff(net.geom_offsets))
    # distance to every piece of road, not only to its vertices (a long straight edge passes a place between
    # two far-away vertices)
    x0, y0, x1, y1 = net.geom_x[:-1], net.geom_y[:-1], net.geom_x[1:], net.geom_y[1:]
    same = seg_edge[:-1] == seg_edge[1:]
    dx, dy = x1 - x0, y1 - y0
    u = np.clip(((pt.x - x0) * dx + (pt.y - y0) * dy) / np.maximum(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    piece = np.hypot(x0 + u * dx - pt.x, y0 + u * dy - pt.y) < radius_m
    near = np.hypot(net.geom_x - pt.x, net.geom_y - pt.y) < radius_m
    blocked = city.router.blocked.copy()
    blocked[np.unique(seg_edge[near])] = True
    blocked[np.unique(seg_edge[:-1][piece & same])] = True
    r = Router(net, blocked)
    for n in needed:
        if not (np.isfinite(r.travel_time_s(home, n)) and np.isfinite(r.travel_time_s(n, home))):
            return None
    for a, b in zip(needed[:-1], needed[1:], strict=True):
        if not np.isfinite(r.travel_time_s(a, b)):
            return None
    return r


# -- sweepers and sprinklers ---------------------------------------------------------------------------------------


def reverse_edges(city: City, edges: np.ndarray) -> np.ndarray | None:
    net = city.net
    out = []
    for e in edges[::-1]:
        r = net._pair_edge.get((int(net.edge_v[e]), int(net.edge_u[e])))
        if r is None:
            return None
        out.append(r)
    return np.asarray(out, np.int64)


def sanitation(ctx: Ctx, plan: WorkPlan | None, inject: Plan | None = None) -> None:
    """Depot → each planned segment: the required passes with the device on at working speed (alternating
    directions on two-way roads, looping back with the device off on one-way roads) → depot.

    Violations: missed_segment (one segment skipped), sweeping_too_fast (device left on during a transit at
    speed), banned_hours_work (a work run in a banned window); near miss brief_fast_work."""
    city = ctx.city
    kp = ctx.cfg.kinds[ctx.vehicle.kind]
    band = kp.work_band_kmh or (3.0, 8.0)
    depot = city.places[city.home[ctx.vehicle.id]]
    tl = start_at(ctx, depot)
    ctx.params = drive_params(ctx)
    tl.set("device_on", False)
    kind = inject.kind if inject is not None else None
    work = ctx.u(kp.work_speed_kmh or (4.0, 6.0))
    wparams = drive_params(ctx, work_speed_kmh=work)
    if plan is None or not plan.windows or not plan.segments:
        if kind == "banned_hours_work" and inject is not None:
            _banned_work(ctx, inject, wparams)
        park_until(ctx, ctx.t_end_s)
        return
    occ = ctx.occurrences(plan.windows)
    banned_first = kind == "banned_hours_work" and inject is not None and not inject.done
    for n_occ, (ws, we) in enumerate(occ):
        if banned_first and inject is not None and not inject.done:
            t_b = ctx.window_start_s(max(inject.at_s, 0.0), ctx.cfg.sanitation.banned_windows)
            if t_b < ws:
                _banned_work(ctx, inject, wparams)
        park_until(ctx, ws + ctx.u((0.0, 180.0)))
        _work_round(ctx, plan, inject if n_occ == 0 else None, wparams, band, we, window_start_s=ws)
    if kind == "banned_hours_work" and inject is not None and not inject.done:
        _banned_work(ctx, inject, wparams)
    park_until(ctx, ctx.t_end_s)


def _work_round(ctx: Ctx, plan: WorkPlan, inject: Plan | None, wparams: DriveParams, band: tuple[float, float],
                window_end_s: float, window_start_s: float = 0.0) -> None:
    city, tl = ctx.city, ctx.tl
    assert tl is not None
    depot = city.places[city.home[ctx.vehicle.id]]
    kind = inject.kind if inject is not None else None
    skip: set[str] = set()
    seg_skip, overlap = _least_overlapping(ctx, plan) if kind == "missed_segment" else (None, 1.0)
    if seg_skip is not None and overlap < ctx.cfg.behaviour.segment_overlap_max and len(plan.segments) >= 2 \
            and inject is not None:
        seg = seg_skip
        skip.add(seg.id)
        inject.done = True
        inject.info["segment"] = seg.id
    fast_at = -1
    if kind in ("sweeping_too_fast", "brief_fast_work"):
        fast_at = int(ctx.rng.integers(len([g for g in plan.segments if g.id not in skip])))
    i = 0
    for seg in plan.segments:
        edges = city.segment_edges[seg.id]
        if seg.id in skip:
            continue
        rev = reverse_edges(city, edges)
        start_node = int(city.net.edge_u[edges[0]])
        if i == fast_at and inject is not None:
            _fast_transit(ctx, start_node, inject, band)
        else:
            go(ctx, start_node, tag=f"to_segment:{seg.id}")
        i += 1
        for k in range(seg.passes):
            fwd = k % 2 == 0 or rev is None
            if not fwd:
                ed = rev
            else:
                if ctx.node != start_node:
                    go(ctx, start_node, tag="loop_back")
                ed = edges
            assert ed is not None
            t0 = tl.t_s
            tl.set("device_on", True)
            drive_edges(ctx, ed, tag=f"work:{seg.id}", params=wparams, signals=False)
            tl.set("device_on", False)
            ctx.events.append({"what": "pass", "place": seg.id, "t0": t0, "t1": tl.t_s})
    go(ctx, depot.node, tag="to_depot", into=depot)  # into the yard even when the last segment ends at its gate
    for sid in sorted(skip):
        ctx.events.append({"what": "v:missed_segment", "t0": window_end_s, "t1": window_end_s, "place": sid,
                           "window_start": window_start_s, "home": depot.id})


def _least_overlapping(ctx: Ctx, plan: WorkPlan) -> tuple[Any, float]:
    """The segment whose corridor the plan's other segments touch least (they meet at intersections), so that
    skipping it leaves it clearly unswept."""
    net = ctx.city.net
    pts = {}
    for g in plan.segments:
        poly = net.path_geometry(ctx.city.segment_edges[g.id])
        x, y, _ = poly.position_at(np.arange(0.0, poly.length_m, 10.0))
        pts[g.id] = np.column_stack([x, y])
    best, best_f = plan.segments[0], 2.0
    for g in ctx.rng.permutation(len(plan.segments)):
        seg = plan.segments[int(g)]
        others = np.concatenate([p for k, p in pts.items() if k != seg.id])
        d = np.sqrt(((pts[seg.id][:, None, :] - others[None, :, :]) ** 2).sum(-1)).min(1)
        f = float((d < 2 * seg.half_width_m + 20.0).mean())
        if f < best_f:
            best, best_f = seg, f
    return best, best_f


def _fast_transit(ctx: Ctx, dst: int, inject: Plan, band: tuple[float, float]) -> None:
    """Transit to the next segment with the device still on, faster than the working band, for a stretch
    (`sweeping_fast_s`; the near miss: `brief_fast_work_s`) — then the device goes off and the vehicle drives
    on at its usual speed (a whole transit at 15 km/h would make the rest of its round late: missed work
    the truth does not label)."""
    tl, tp = ctx.tl, ctx.cfg.truth
    assert tl is not None
    edges = ctx.city.router.route(ctx.node, dst)
    if edges.size == 0:
        return
    path = ctx.city.net.path_geometry(edges)
    if inject.kind == "sweeping_too_fast":
        v = band[1] + ctx.u(tp.sweeping_excess_kmh)
        need = v / 3.6 * (tp.sweeping_min_s + 60.0)
        on_s = ctx.u(tp.sweeping_fast_s)
    else:
        v = band[1] + ctx.u((3.0, 5.0))
        need = 0.0
        on_s = ctx.u(ctx.cfg.behaviour.brief_fast_work_s)
    if path.length_m < need + 100:
        go(ctx, dst, tag="transit")
        return
    stretch_m = min(v / 3.6 * (on_s + 30.0), path.length_m - 50.0)
    leave(ctx)
    t0 = tl.t_s
    tl.set("device_on", True)
    leg = tl.drive(path, ctx.params or drive_params(ctx), extra_caps=[(0.0, stretch_m, v)],
                   tag="transit:device_on")
    assert leg.profile is not None
    at_end = t0 + float(np.interp(stretch_m, leg.profile.s_m, leg.profile.t_s))
    off = min(t0 + on_s, at_end) if inject.kind == "brief_fast_work" else at_end
    tl.set("device_on", False, at_s=off)
    ctx.node = dst
    inject.done = True
    ctx.events.append({"what": ("v:" if inject.kind in VIOLATIONS else "n:") + inject.kind, "t0": t0,
                       "t1": off, "band_max": band[1]})


def _banned_work(ctx: Ctx, inject: Plan, wparams: DriveParams) -> None:
    """Work with the device on inside a banned window: out from the depot and back at working speed."""
    city, tl, tp = ctx.city, ctx.tl, ctx.cfg.truth
    assert tl is not None
    banned = ctx.cfg.sanitation.banned_windows
    t_b = ctx.window_start_s(max(inject.at_s, 0.0), banned)
    dur = ctx.u(tp.banned_work_s)
    if t_b + dur + tp.margin_s > ctx.t_end_s - 60 or ctx.window_end_s(t_b, banned) < t_b + dur + 60:
        return
    park_until(ctx, t_b + ctx.u((60.0, 300.0)))
    dist = wparams.work_speed_kmh / 3.6 * dur / 2 if wparams.work_speed_kmh else 500.0
    net = city.net
    d = np.hypot(net.node_x - tl.x, net.node_y - tl.y)
    core = city.core if city.core is not None else np.ones(net.n_nodes, bool)
    cand = np.flatnonzero(core & (d > dist * 0.5) & (d < dist * 0.9) & (net.node_osm >= 0))
    if cand.size == 0:
        return
    target = int(cand[int(ctx.rng.integers(cand.size))])
    home = ctx.node
    t0 = tl.t_s
    tl.set("device_on", True)
    go(ctx, target, params=wparams, signals=False, tag="banned_work")
    go(ctx, home, params=wparams, signals=False, tag="banned_work")
    tl.set("device_on", False)
    inject.done = True
    ctx.events.append({"what": "v:banned_hours_work", "t0": t0, "t1": tl.t_s})
