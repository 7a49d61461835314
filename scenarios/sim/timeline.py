"""One vehicle's true day: dense (t, x, y, speed, heading) samples plus piecewise-constant sensor states.

Behaviours append drives and dwells; `sample()` turns the timeline into report times with the terminal's
reporting policy (every `moving_interval_s` while moving, a slower parked interval after standing still for
`parked_after_s`). Everything is numpy: a timeline holds a handful of arrays per drive, never per-fix
objects, so a 500-vehicle hour is a few hundred array operations per vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scenarios.roads import Polyline
from scenarios.sim.kinematics import DriveParams, Profile, drive

SENSORS: tuple[str, ...] = ("cover_closed", "lifting", "load", "device_on", "drum")
#: (sensor, value) states during which a terminal keeps its moving interval even when standing still
WORK_STATES: tuple[tuple[str, int], ...] = (("lifting", 1), ("drum", 2), ("device_on", 1))
EVENT_DELAY_S = 0.5  # a status-change report follows the change by this much


@dataclass(eq=False)
class Leg:
    """A stretch of the timeline, kept for ground truth (which path, when, what the vehicle was doing)."""

    kind: str  # drive | dwell
    t0_s: float
    t1_s: float
    path: Polyline | None = None
    profile: Profile | None = None
    tag: str = ""


@dataclass(eq=False)
class Timeline:
    vehicle_id: str
    t_s: float  # "now" on this vehicle's clock, seconds from the scenario start (may start negative)
    x: float
    y: float
    heading_deg: float = 0.0
    _t: list[np.ndarray] = field(default_factory=list)
    _x: list[np.ndarray] = field(default_factory=list)
    _y: list[np.ndarray] = field(default_factory=list)
    _v: list[np.ndarray] = field(default_factory=list)
    _h: list[np.ndarray] = field(default_factory=list)
    changes: list[tuple[float, str, int]] = field(default_factory=list)  # (t_s, sensor, value)
    legs: list[Leg] = field(default_factory=list)

    def set(self, sensor: str, value: int | bool, at_s: float | None = None) -> None:
        self.changes.append((self.t_s if at_s is None else at_s, sensor, int(value)))

    def dwell(self, duration_s: float, tag: str = "") -> Leg:
        t0 = self.t_s
        self._t.append(np.array([t0, t0 + duration_s]))
        self._x.append(np.array([self.x, self.x]))
        self._y.append(np.array([self.y, self.y]))
        self._v.append(np.zeros(2))
        self._h.append(np.array([self.heading_deg, self.heading_deg]))
        self.t_s = t0 + duration_s
        leg = Leg("dwell", t0, self.t_s, tag=tag)
        self.legs.append(leg)
        return leg

    def drive(self, path: Polyline, params: DriveParams, *, stops: list[tuple[float, float]] | None = None,
              extra_caps: list[tuple[float, float, float]] | None = None, tag: str = "",
              profile: Profile | None = None) -> Leg:
        if np.hypot(path.x[0] - self.x, path.y[0] - self.y) > 1.0:
            raise ValueError(f"{self.vehicle_id}: a drive must start where the vehicle is ({tag or 'drive'} starts "
                             f"{np.hypot(path.x[0] - self.x, path.y[0] - self.y):.0f} m away)")
        prof = drive(path, params, stops=stops, extra_caps=extra_caps) if profile is None else profile
        x, y, hd = path.position_at(prof.s_m)
        t = self.t_s + prof.t_s
        self._t.append(t)
        self._x.append(x)
        self._y.append(y)
        self._v.append(prof.v_ms)
        self._h.append(hd)
        leg = Leg("drive", self.t_s, float(t[-1]), path=path, profile=prof, tag=tag)
        self.legs.append(leg)
        self.t_s, self.x, self.y, self.heading_deg = float(t[-1]), float(x[-1]), float(y[-1]), float(hd[-1])
        return leg

    # -- output -------------------------------------------------------------------------------------------------
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self._t:
            self.dwell(1.0)
        t = np.concatenate(self._t)
        return t, np.concatenate(self._x), np.concatenate(self._y), np.concatenate(self._v), np.concatenate(self._h)

    def state_at(self, sensor: str, t_s: np.ndarray, default: int) -> np.ndarray:
        ch = [(t, v) for t, s, v in self.changes if s == sensor]
        if not ch:
            return np.full(t_s.shape, default, dtype=np.int64)
        ct = np.array([c[0] for c in ch])
        cv = np.array([c[1] for c in ch], dtype=np.int64)
        order = np.argsort(ct, kind="stable")
        ct, cv = ct[order], cv[order]
        i = np.searchsorted(ct, t_s, side="right") - 1
        return np.where(i >= 0, cv[np.clip(i, 0, None)], default)

    def true_at(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """True (x, y, speed_ms, heading_deg) at arbitrary times (positions held before/after the timeline)."""
        t, x, y, v, h = self.arrays()
        xi = np.interp(t_s, t, x)
        yi = np.interp(t_s, t, y)
        vi = np.interp(t_s, t, v)
        k = np.clip(np.searchsorted(t, t_s, side="right") - 1, 0, t.size - 1)
        return xi, yi, vi, h[k]

    def report_times(self, t_from_s: float, t_to_s: float, moving_s: float, parked_s: float, parked_after_s: float,
                     phase_s: float, sensors: tuple[str, ...] = ()) -> np.ndarray:
        """Report times of the terminal in [t_from, t_to): a moving-interval grid, thinned while parked — except
        while a work sensor is active (lift up, drum reversing, brush on) — plus an immediate report at every
        change of a reported sensor (JT/T 808 terminals report on status change)."""
        grid = np.arange(t_from_s + phase_s, t_to_s, moving_s)
        if grid.size == 0:
            return grid
        events = np.array([t + EVENT_DELAY_S for t, s_, _ in self.changes
                           if s_ in sensors and t_from_s <= t + EVENT_DELAY_S < t_to_s])
        active = np.zeros(grid.size, bool)
        for s_, v in WORK_STATES:
            if s_ in sensors:
                active |= self.state_at(s_, grid, -1) == v
        _, _, v, _ = self.true_at(grid)
        moving = v > 0.3
        # start time of the current stationary run for every grid point
        run_start = np.where(moving, grid, -np.inf)
        starts = np.maximum.accumulate(np.where(moving | np.r_[True, moving[:-1]], grid, -np.inf))
        stationary_for = np.where(moving, 0.0, grid - starts)
        del run_start
        parked = stationary_for >= parked_after_s
        k = max(int(round(parked_s / moving_s)), 1)
        slot = np.floor((grid - t_from_s - phase_s) / moving_s).astype(np.int64)
        keep = ~parked | (slot % k == 0) | active
        out = grid[keep]
        if events.size:
            out = np.unique(np.concatenate([out, events]))
        return out
