"""Speed along a path: legal/vehicle limits, slowing in turns, stopping at red lights, finite acceleration.

The profile is computed on a fine distance grid with the classic forward/backward pass, written in closed
form so it vectorises: with acceleration a, the fastest feasible speed at s_i given caps c_j is

    v_fwd²(s_i) = min_{j ≤ i} (c_j² + 2a (s_i − s_j)) = 2a s_i + cummin_j (c_j² − 2a s_j)

and symmetrically backwards with the braking deceleration. Time follows from constant acceleration between
grid points (dt = 2 ds / (v_i + v_{i+1})); red-light waits are inserted as repeated samples. The result is a
monotone (t, s) table, so positions at any report time are one `np.interp` away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.roads import Polyline


@dataclass(frozen=True, slots=True)
class DriveParams:
    """How a vehicle drives. Speeds in km/h, accelerations in m/s²; all from the scenario TOML."""

    max_speed_kmh: float  # the vehicle's own cap (kind limit minus a margin for compliant drivers)
    accel_ms2: float = 0.8
    decel_ms2: float = 1.2
    lateral_ms2: float = 1.6  # comfortable lateral acceleration in turns
    turn_arc_m: float = 25.0  # arc length a turn is spread over (sets the turn radius from the angle)
    grid_m: float = 10.0  # distance resolution of the profile
    speed_factor: float = 1.0  # driver's share of the limit he actually drives at
    work_speed_kmh: float | None = None  # constant cap while working (sweeping), overrides road limits


@dataclass(eq=False, slots=True)
class Profile:
    """Time (s, from the start of the drive), distance (m) and speed (m/s) samples; t and s non-decreasing."""

    t_s: np.ndarray
    s_m: np.ndarray
    v_ms: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])


def speed_caps(path: Polyline, p: DriveParams, s: np.ndarray, extra_caps: list[tuple[float, float, float]]
               ) -> np.ndarray:
    """Speed cap (m/s) at each grid distance: min(road limit × factor, vehicle cap, turn cap, extra caps)."""
    seg_idx = np.clip(np.searchsorted(path.cum_m, s, side="right"), 1, path.x.size - 1)
    road = path.speed_limit_kmh[seg_idx] * p.speed_factor
    cap = np.minimum(road, p.max_speed_kmh)
    if p.work_speed_kmh is not None:
        cap = np.full_like(cap, p.work_speed_kmh)
    cap = cap / 3.6
    for a, b, kmh in extra_caps:  # (from_m, to_m, cap_kmh): e.g. a speeding stretch or a crawl
        m = (s >= a) & (s <= b)
        cap[m] = kmh / 3.6
    turn = path.turn_deg()
    at_vertex = np.searchsorted(s, path.cum_m).clip(0, s.size - 1)
    theta = np.deg2rad(np.maximum(turn, 1e-3))
    v_turn = np.sqrt(p.lateral_ms2 * p.turn_arc_m / theta)
    np.minimum.at(cap, at_vertex, v_turn)
    return cap


def drive(path: Polyline, p: DriveParams, *, stops: list[tuple[float, float]] | None = None,
          extra_caps: list[tuple[float, float, float]] | None = None, v0_ms: float = 0.0,
          v_end_ms: float = 0.0) -> Profile:
    """Profile for driving `path` from standstill to standstill.

    stops: (distance_m, wait_s) — the vehicle comes to a halt at distance_m and waits (red light, gate).
    extra_caps: (from_m, to_m, cap_kmh) overriding the cap on a stretch (violations, crawling queues)."""
    L = path.length_m
    merged: list[tuple[float, float]] = []
    for st, w in sorted(stops or []):  # signals a few metres apart (dual carriageways) are one stop
        if merged and st - merged[-1][0] < 20.0:
            merged[-1] = (merged[-1][0], max(merged[-1][1], w))
        else:
            merged.append((st, w))
    stops = merged
    grid = np.arange(0.0, L, p.grid_m)
    s = np.unique(np.concatenate([grid, path.cum_m, [L], [st for st, _ in stops]]))
    s = s[np.concatenate([[True], np.diff(s) > 0.3])]
    s[-1] = L
    cap = speed_caps(path, p, s, extra_caps or [])
    cap[0], cap[-1] = min(cap[0], v0_ms), min(cap[-1], v_end_ms)
    stop_idx = np.searchsorted(s, [st for st, _ in stops]).clip(0, s.size - 1) if stops else np.zeros(0, int)
    cap[stop_idx] = 0.0
    c2 = cap * cap
    fwd = 2 * p.accel_ms2 * s + np.minimum.accumulate(c2 - 2 * p.accel_ms2 * s)
    bwd = -2 * p.decel_ms2 * s + np.minimum.accumulate((c2 + 2 * p.decel_ms2 * s)[::-1])[::-1]
    v = np.sqrt(np.clip(np.minimum(np.minimum(c2, fwd), bwd), 0.0, None))
    ds = np.diff(s)
    vm = np.maximum(v[:-1] + v[1:], 1e-6)
    # between two standstills the vehicle creeps: accelerate then brake over ds → 2·sqrt(ds/a)
    dt = np.minimum(2 * ds / vm, 2 * np.sqrt(ds / min(p.accel_ms2, p.decel_ms2)))
    t = np.concatenate([[0.0], np.cumsum(dt)])
    if stops:
        waits = np.array([w for _, w in stops])
        # insert a repeated sample after each stop point carrying the wait, then shift later times
        add = np.zeros(s.size)
        np.add.at(add, stop_idx, waits)
        shift = np.cumsum(add)
        t_after = t + shift
        t_before = t + shift - add
        ins = np.flatnonzero(add > 0)
        order_t = np.concatenate([t_before, t_after[ins]])
        order_s = np.concatenate([s, s[ins]])
        order_v = np.concatenate([v, v[ins]])
        key = np.lexsort((order_t, order_s))
        t, s, v = order_t[key], order_s[key], order_v[key]
    return Profile(t_s=t, s_m=s, v_ms=v)


def creep(length_m: float, cap_kmh: float, accel_ms2: float, decel_ms2: float) -> Profile:
    """Standstill → standstill over a short straight stretch (a driveway) in closed form: accelerate, cruise at
    the cap if there is room, brake."""
    v = cap_kmh / 3.6
    d_acc, d_dec = v * v / (2 * accel_ms2), v * v / (2 * decel_ms2)
    if d_acc + d_dec > length_m:  # never reaches the cap: a triangle
        v = float(np.sqrt(2 * length_m * accel_ms2 * decel_ms2 / (accel_ms2 + decel_ms2)))
        d_acc, d_dec = v * v / (2 * accel_ms2), v * v / (2 * decel_ms2)
    t_acc, t_dec = v / accel_ms2, v / decel_ms2
    t_cruise = (length_m - d_acc - d_dec) / v if v > 0 else 0.0
    t = np.array([0.0, t_acc, t_acc + t_cruise, t_acc + t_cruise + t_dec])
    return Profile(t_s=t, s_m=np.array([0.0, d_acc, length_m - d_dec, length_m]), v_ms=np.array([0.0, v, v, 0.0]))
