"""Trips one fix at a time: the same state machine as `tracker.trips`, written as a plain object per vehicle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geofences.local import dist_m
from tracker.trips import (OUT_ARRIVED, OUT_COMPLETED, OUT_DUMPED, OUT_FAILED, OUT_OPEN, PHASE_LOADED,
                           PHASE_UNKNOWN, ROLE_DEST, ROLE_ORIGIN)


@dataclass
class TripRec:
    start: int
    end: int
    origin: int
    dest: int
    outcome: int
    src: int
    sensor: int
    best0: int
    best1: int
    blon_e7: int
    blat_e7: int
    decided: int


class VehicleTrips:
    def __init__(self, p):
        self.p = p
        self.phase, self.src, self.place, self.origin = PHASE_UNKNOWN, 2, -1, -1
        self.place_load, self.last_load, self.sens, self.own = -1, -1, 0, False
        self.enter = self.out_since = self.trip = -1
        self.stop = self.stop_last = self.best0 = self.best1 = -1
        self.slon = self.slat = self.blon = self.blat = -1
        self.drop_ts = -1
        self.pending = False  # the last stop is over, judged `gate_s` after it (a queue at a gate is dropped)
        self.pend_delay_ms = 0.0  # from the stop's last fix to the first fix seen moving
        self.records: list[TripRec] = []

    # -- pieces ---------------------------------------------------------------------------------------------
    def _close_stop(self) -> None:
        if self.stop >= 0:
            dur = self.stop_last - self.stop
            if dur >= self.p.stop_min_s * 1000 and dur > self.best1 - self.best0:
                self.best0, self.best1, self.blon, self.blat = self.stop, self.stop_last, self.slon, self.slat
        self.stop = self.stop_last = -1
        self.pending = False

    def _begin(self, t: int, origin: int, src: int) -> None:
        self.phase, self.src, self.origin, self.sens, self.trip = PHASE_LOADED, src, origin, 0, t
        self.stop = self.stop_last = self.best0 = self.best1 = -1
        self.pending = False

    def _end(self, t: int, dest: int, outcome: int, decided: int) -> None:
        self.records.append(TripRec(self.trip, t, self.origin, dest, outcome, self.src, self.sens, self.best0,
                                    self.best1, self.blon, self.blat, decided))
        self.phase, self.origin, self.trip = 0, -1, -1
        self.stop = self.best0 = self.best1 = -1
        self.pending = False

    def _leave(self, t_exit: int, role: int) -> None:
        if self.phase != PHASE_LOADED and role == ROLE_ORIGIN:
            if self.place_load > 0:
                self._begin(t_exit, self.place, 1)
            elif self.place_load < 0 and self.own and t_exit - self.enter >= self.p.load_dwell_s * 1000:
                self._begin(t_exit, self.place, 0)

    # -- one fix --------------------------------------------------------------------------------------------
    def step(self, r, here: int, role_of, own: bool, near: bool, gap_dest: int = -1) -> None:
        """`here`: the allowed place the fix is in (−1); `role_of(fence)`: its role for this vehicle kind;
        `gap_dest`: the destination it reappears next to after a gap long enough to unload (−1)."""
        p, t, ld = self.p, r.ts, r.load
        if self.phase == PHASE_UNKNOWN and self.trip < 0:
            self.trip = t
        cur = self.place
        if self.pending and here >= 0 and here != cur \
                and ((own and here != self.origin) or role_of(here) == ROLE_DEST) and float(
                dist_m(self.slon / 1e7, self.slat / 1e7, r.lon, r.lat)) <= p.gate_queue_m:
            self.stop, self.stop_last, self.pending = -1, -1, False  # it queued at this place's gate
        elif self.pending and t - self.stop_last >= p.gate_s * 1000 + self.pend_delay_ms:
            self._close_stop()  # no place reached soon after: a roadside stop
        if here >= 0 and here != cur:
            if cur >= 0:
                self._leave(t, role_of(cur))
            self.place, self.own, self.enter, self.out_since, self.place_load = here, own, t, -1, -1
            cur = here
            if self.phase == PHASE_UNKNOWN and role_of(cur) == ROLE_DEST:
                self.records.append(TripRec(self.trip, t, -1, cur, OUT_ARRIVED, 2, self.sens, -1, -1, -1, -1, t))
        elif here < 0 and cur >= 0:
            if self.out_since < 0:
                self.out_since = t
            if t - self.out_since >= p.exit_debounce_s * 1000:
                self._leave(self.out_since, role_of(cur))
                self.place, self.enter, self.out_since = -1, -1, -1
                cur = -1
        elif here >= 0:
            self.out_since = -1
        lift = r.lifting == 1 or r.drum == 2
        drop = ld == 0 and self.last_load > 0
        if self.phase != 0 and (ld >= 0 or r.lifting >= 0 or r.drum >= 0):
            self.sens = 1
        if ld >= 0:
            if cur >= 0 and ld > self.place_load:
                self.place_load = ld
            if self.phase == PHASE_UNKNOWN:
                if ld > 0:
                    self.phase, self.src = PHASE_LOADED, 1
                else:
                    self.phase, self.trip = 0, -1
        inferred = self.src != 1
        if cur >= 0 and self.phase != 0:
            role = role_of(cur)
            stay = t - self.enter
            back_home = (cur == self.origin and self.enter - self.trip >= p.return_min_s * 1000) \
                or (self.phase == PHASE_UNKNOWN and self.own and self.enter > self.trip)
            if role != ROLE_DEST and ((inferred and (stay >= p.fail_dwell_s * 1000 or back_home)) or drop or lift):
                self._close_stop()
                self._end(self.enter, cur, OUT_FAILED, t)
            elif role == ROLE_DEST and (drop or lift or (ld < 0 and inferred and (stay >= p.unload_dwell_s * 1000
                                                                                  or gap_dest == cur))
                                        or (ld == 0 and inferred)):
                self._end(t, cur, OUT_COMPLETED, t)
        elif cur < 0:
            if self.phase != 0:
                if self.phase == PHASE_LOADED and inferred and gap_dest >= 0:
                    self._close_stop()
                    self._end(t, gap_dest, OUT_COMPLETED, t)
                elif drop or lift:
                    self.drop_ts = t
                    self._close_stop()
                    self._end(t, -1, OUT_DUMPED, t)
                elif r.speed <= p.stop_kmh and not (near and self.pending):
                    if self.pending:
                        self._close_stop()
                    if self.stop >= 0 and r.speed > 0 and float(dist_m(self.slon / 1e7, self.slat / 1e7, r.lon,
                                                                       r.lat)) > p.stop_radius_m:
                        self._close_stop()
                    if self.stop < 0:
                        self.stop, self.slon, self.slat = t, r.lon_e7, r.lat_e7
                    self.stop_last = t
                else:
                    if self.stop >= 0 and not self.pending:
                        self.pending = True
                        # as the batch scan stores it: float32(1 + seconds from the stop's last fix)
                        self.pend_delay_ms = (float(np.float32(1.0 + (t - self.stop_last) / 1000.0)) - 1.0) * 1000.0
            elif ld > 0:
                self._begin(t, -1, 1)
            if drop or lift:
                self.drop_ts = t
        if ld >= 0:
            self.last_load = ld
        doubtful = self.src != 1 and (self.best0 >= 0 or (
            self.stop >= 0 and self.stop_last - self.stop >= p.stop_min_s * 1000))
        r.loaded = 0 if doubtful else (1 if self.phase == PHASE_LOADED else 2 if self.phase == PHASE_UNKNOWN else 0)
        r.src = self.src if self.phase == PHASE_LOADED else -1
        if self.phase != PHASE_LOADED and cur >= 0 and self.out_since >= 0 and role_of(cur) == ROLE_ORIGIN:
            if self.place_load > 0:  # leaving the site loaded, the exit not yet confirmed
                r.loaded, r.src = 1, 1
            elif self.place_load < 0 and self.own and self.out_since - self.enter >= p.load_dwell_s * 1000:
                r.loaded, r.src = 1, 0
        r.drop_ts = self.drop_ts

    def finish(self) -> None:
        """End of data: a loaded trip (or an unknown one with a long stop behind it) becomes an `open` record;
        a stop still in progress is not judged."""
        if self.pending:
            self._close_stop()
        if self.phase == PHASE_LOADED or (self.phase == PHASE_UNKNOWN and self.best0 >= 0):
            end = max(self.stop_last, self.trip)
            self.records.append(TripRec(self.trip, end, self.origin, -1, OUT_OPEN, self.src, self.sens, self.best0,
                                        self.best1, self.blon, self.blat, end))


__all__ = ["VehicleTrips", "TripRec", "OUT_COMPLETED", "OUT_DUMPED", "OUT_FAILED", "OUT_OPEN"]
