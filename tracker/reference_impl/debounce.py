"""The debouncing state machine, one fix at a time (see `tracker.rules._debounce` for the specification).

Distances and peak values are accumulated in float32, as the engine's state tables store them, so the two
agree to the last bit on the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPEN, UPDATE, CLOSE = 1, 2, 3


@dataclass
class Event:
    etype: int
    start: int
    end: int
    level: int
    sev: int
    place: int
    peak: float
    ts: int  # fix time at which it was decided
    lon: float | None = None
    lat: float | None = None


class Debounce:
    def __init__(self, min_dur_s: float, min_dist_m: float, tol_s: float, gap_s: float, levels_s=()):
        self.min_dur = min_dur_s * 1000.0
        self.min_dist = float(min_dist_m)
        self.tol = tol_s * 1000.0
        self.gap = gap_s * 1000.0
        self.levels = [x * 1000.0 for x in levels_s]
        self.reset()

    def reset(self) -> None:
        self.start = -1
        self.false_since = -1
        self.last = -1
        self.dist = np.float32(0.0)
        self.level = 0
        self.peak = np.float32(-np.inf)
        self.place = -1
        self.sev = 0

    def _event(self, etype: int, ts: int, end: int = -1) -> Event:
        return Event(etype, self.start, end, self.level, self.sev, self.place, float(self.peak), ts)

    def _level(self, dur: float) -> int:
        return 1 + sum(1 for x in self.levels if dur >= x)

    def step(self, ts: int, dt_s: float, move_m: float, cond: bool, sev: int, place: int, value: float
             ) -> list[Event]:
        out: list[Event] = []
        if self.start >= 0:
            end = -1
            if dt_s * 1000.0 > self.gap:
                end = self.false_since if self.false_since >= 0 else self.last
            elif self.false_since >= 0 and ts - self.false_since >= self.tol:
                end = self.false_since
            if end >= 0:
                if self.level > 0:
                    out.append(self._event(CLOSE, ts, end))
                self.reset()
        if cond:
            if self.start < 0:
                self.start = ts
                self.dist = np.float32(0.0)
                self.peak = np.float32(value)
                self.place = place
                self.sev = sev
            else:
                if self.false_since < 0:  # travel only between two consecutive fixes meeting the condition
                    self.dist = np.float32(float(self.dist) + move_m)  # float64 sum, stored as float32
                if value > self.peak:
                    self.peak = np.float32(value)
            self.false_since = -1
            self.last = ts
            dur = ts - self.start
            if self.level == 0:
                self.sev = max(self.sev, sev)
                if dur >= self.min_dur and float(self.dist) >= self.min_dist:
                    self.level = self._level(dur)
                    out.append(self._event(OPEN, ts))
            else:
                lvl = self._level(dur)
                changed = lvl > self.level or sev > self.sev
                self.level = max(self.level, lvl)
                self.sev = max(self.sev, sev)
                if changed:
                    out.append(self._event(UPDATE, ts))
        elif self.start >= 0:
            if self.false_since < 0:
                self.false_since = ts
            if ts - self.false_since >= self.tol:
                if self.level > 0:
                    out.append(self._event(CLOSE, ts, self.false_since))
                self.reset()
        return out

    def finish(self) -> list[Event]:
        out = []
        if self.start >= 0 and self.level > 0:
            out.append(self._event(CLOSE, self.last, self.last))
        self.reset()
        return out
