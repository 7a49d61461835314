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
from scenarios.sim.kinematics import DriveParams
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


def go(ctx: Ctx, dst: int, *, router: Router | None = None, tag: str = "", via: list[int] | None = None,
       params: DriveParams | None = None, extra_caps: list[tuple[float, float, float]] | None = None,
       signals: bool = True) -> tuple[Polyline | None, np.ndarray]:
    """Drive from the current node to `dst` (optionally via nodes) along the fastest compliant path."""
    r = router or ctx.city.router
    edges = r.route_via([ctx.node, *(via or []), dst])
    if edges.size == 0:
        return None, edges
    path = ctx.city.net.path_geometry(edges)
    assert ctx.tl is not None
    stops = signal_stops(ctx, path, edges) if signals else []
    ctx.tl.drive(path, params or ctx.params or drive_params(ctx), stops=stops, extra_caps=extra_caps, tag=tag)
    ctx.node = dst
    return path, edges


def drive_edges(ctx: Ctx, edges: np.ndarray, *, tag: str = "", params: DriveParams | None = None,
                signals: bool = True, extra_caps: list[tuple[float, float, float]] | None = None) -> Polyline:
    path = ctx.city.net.path_geometry(edges)
    assert ctx.tl is not None
    stops = signal_stops(ctx, path, edges) if signals else []
    ctx.tl.drive(path, params or ctx.params or drive_params(ctx), stops=stops, extra_caps=extra_caps, tag=tag)
    ctx.node = int(ctx.city.net.edge_v[edges[-1]])
    return path


def start_at(ctx: Ctx, place: Place) -> Timeline:
    ctx.node = place.node
    ctx.tl = Timeline(ctx.vehicle.id, ctx.t_begin_s, float(ctx.city.net.node_x[place.node]),
                      float(ctx.city.net.node_y[place.node]))
    return ctx.tl


def park_until(ctx: Ctx, t_s: float, tag: str = "parked") -> None:
    assert ctx.tl is not None
    if t_s > ctx.tl.t_s:
        ctx.tl.dwell(t_s - ctx.tl.t_s, tag=tag)


# -- muck trucks ---------------------------------------------------------------------------------------------------


def muck_truck(ctx: Ctx, permit: Permit | None, hooks: Any = None) -> None:
    """Compliant cycle inside the permit's windows: load at the site (cover open), drive the approved route
    sealed, unload (lift) inside the disposal site, return empty; park at the depot outside the windows."""
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
    route_edges = city.route_edges[permit.id]
    trip_s = city.router.travel_time_s(site.node, disp.node) * 1.6 + pp.unload_dwell_s[1]
    # start somewhere in the cycle so that trucks are spread over it at the scenario start
    park_until(ctx, ctx.t_begin_s + ctx.u((0.0, 900.0)))
    while tl.t_s < ctx.t_end_s:
        t = tl.t_s
        if not ctx.in_windows(t, permit.windows):
            if ctx.node != depot.node:
                go(ctx, depot.node, tag="to_depot")
            park_until(ctx, min(ctx.window_start_s(tl.t_s, permit.windows), ctx.t_end_s) + ctx.u((0, 300)))
            continue
        if ctx.window_end_s(t, permit.windows) - t < trip_s + pp.load_dwell_s[1] + 600:
            # not enough window left for another full trip: go home and wait for the next window
            if ctx.node != depot.node:
                go(ctx, depot.node, tag="to_depot")
            park_until(ctx, min(ctx.window_end_s(tl.t_s, permit.windows) + 60, ctx.t_end_s))
            continue
        if ctx.node != site.node:
            go(ctx, site.node, tag="to_site")
        # loading inside the site: cover open, load rises, cover closes before the truck leaves
        dwell = ctx.u(pp.load_dwell_s)
        tl.set("cover_closed", False)
        tl.dwell(dwell * 0.5, tag="loading")
        tl.set("load", HALF)
        tl.dwell(dwell * 0.4, tag="loading")
        tl.set("load", FULL)
        tl.dwell(dwell * 0.1, tag="loading")
        tl.set("cover_closed", True)
        leg_start = tl.t_s
        drive_edges(ctx, route_edges, tag=f"trip:{permit.id}")
        ctx.events.append({"what": "trip", "permit": permit.id, "t0": leg_start, "t1": tl.t_s})
        unload(ctx, pp)
        go(ctx, site.node, tag="return_empty")


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


def concrete_mixer(ctx: Ctx, plant: Place, site: Place, hooks: Any = None) -> None:
    """Plant (load, drum forward) → site (wait, drum reverse discharges) → plant, all day."""
    city = ctx.city
    tl = start_at(ctx, plant)
    ctx.params = drive_params(ctx)
    tl.set("drum", DRUM_STOP)
    park_until(ctx, ctx.t_begin_s + ctx.u((0.0, 1200.0)))
    while tl.t_s < ctx.t_end_s:
        tl.set("drum", DRUM_FWD)
        tl.dwell(ctx.u((240.0, 480.0)), tag="loading")
        t0 = tl.t_s
        go(ctx, site.node, tag="delivery")
        ctx.events.append({"what": "delivery", "t0": t0, "t1": tl.t_s})
        tl.dwell(ctx.u((60.0, 300.0)), tag="waiting")
        tl.set("drum", DRUM_REV)
        tl.dwell(ctx.u((300.0, 600.0)), tag="discharging")
        tl.set("drum", DRUM_STOP)
        tl.dwell(ctx.u((60.0, 180.0)), tag="washing")
        go(ctx, plant.node, tag="return")
    del city


# -- refuse trucks -------------------------------------------------------------------------------------------------


def refuse_truck(ctx: Ctx, points: list[Place], facility: Place, windows: list[str], hooks: Any = None,
                 skip: set[str] | None = None) -> None:
    """Depot → collection points in order (stop, tip bins with the lifter) → facility (tip) → depot, inside
    the schedule's window; parked otherwise."""
    city, sp = ctx.city, ctx.cfg.sanitation
    depot = city.places[city.home[ctx.vehicle.id]]
    tl = start_at(ctx, depot)
    ctx.params = drive_params(ctx)
    tl.set("lifting", False)
    tl.set("load", EMPTY)
    if not windows or not points:
        park_until(ctx, ctx.t_end_s)
        return
    start = max(ctx.window_start_s(max(tl.t_s, 0.0), windows), 0.0) + ctx.u((0.0, 240.0))
    park_until(ctx, start)
    load = EMPTY
    for i, pt in enumerate(points):
        if skip and pt.id in skip:
            continue
        go(ctx, pt.node, tag=f"to_point:{pt.id}")
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
    go(ctx, facility.node, tag="to_facility")
    tl.dwell(ctx.u((60.0, 180.0)), tag="queue")
    tl.set("lifting", True)
    tl.dwell(ctx.u((60.0, 120.0)), tag="tipping")
    tl.set("load", EMPTY)
    tl.set("lifting", False)
    tl.dwell(ctx.u((60.0, 180.0)), tag="tipping")
    go(ctx, depot.node, tag="to_depot")
    park_until(ctx, ctx.t_end_s)


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


def sanitation(ctx: Ctx, plan: WorkPlan | None, hooks: Any = None, skip: set[str] | None = None,
               work_speed_kmh: float | None = None) -> None:
    """Depot → each planned segment: the required passes with the device on at working speed (alternating
    directions on two-way roads, looping back with the device off on one-way roads) → depot."""
    city = ctx.city
    kp = ctx.cfg.kinds[ctx.vehicle.kind]
    depot = city.places[city.home[ctx.vehicle.id]]
    tl = start_at(ctx, depot)
    ctx.params = drive_params(ctx)
    tl.set("device_on", False)
    if plan is None or not plan.windows or not plan.segments:
        park_until(ctx, ctx.t_end_s)
        return
    work = work_speed_kmh or ctx.u(kp.work_speed_kmh or (4.0, 6.0))
    wparams = drive_params(ctx, work_speed_kmh=work)
    start = max(ctx.window_start_s(max(tl.t_s, 0.0), plan.windows), 0.0) + ctx.u((0.0, 180.0))
    park_until(ctx, start)
    for seg in plan.segments:
        edges = city.segment_edges[seg.id]
        if skip and seg.id in skip:
            continue
        rev = reverse_edges(city, edges)
        start_node = int(city.net.edge_u[edges[0]])
        go(ctx, start_node, tag=f"to_segment:{seg.id}")
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
    go(ctx, depot.node, tag="to_depot")
    park_until(ctx, ctx.t_end_s)
