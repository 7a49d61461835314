"""The reference engine: for each vehicle, each fix in time order, every step written out."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from geofences.local import dist_m
from tracker.config import Settings
from tracker.engine import EngineParams
from tracker.episode import Episode, episode_id
from tracker.hygiene import JUMP_REJECTED, JUMP_RELOCATED, HygieneParams
from tracker.reference_impl import rules as R
from tracker.reference_impl.debounce import CLOSE, OPEN, Debounce, Event
from tracker.reference_impl.fixes import clean
from tracker.reference_impl.trips import OUT_COMPLETED, OUT_FAILED, OUT_OPEN, VehicleTrips
from tracker.trips import OUT_ARRIVED
from tracker.rules import discover, load_params
from tracker.rules._base import PLACE_DOC, PLACE_FENCE, SEV_CONFIRMED, SEV_SUSPECTED, SEVERITY_NAMES
from tracker.trips import ALLOWED_KINDS, ROLE_DEST, ROLE_ORIGIN, ROLE_OTHER, TripParams
from tracker.world import DOC_ORDER, DOC_PERMIT, FENCE_KINDS, KINDS, World


class ReferenceEngine:
    def __init__(self, world: World, settings: Settings):
        self.world = world
        self.settings = settings
        self.mods = {m.NAME: m for m in discover()}
        self.params = {n: load_params(n, m.Params, settings) for n, m in self.mods.items()}
        self.hyg = load_params("hygiene", HygieneParams, settings)
        self.eng = load_params("engine", EngineParams, settings)
        self.tp = load_params("trips", TripParams, settings)
        self.ctx = R.Ctx(world, self.params)

    # -- the whole run --------------------------------------------------------------------------------------
    def run(self, fixes: pl.DataFrame) -> list[Episode]:
        per = clean(fixes, self.world, self.settings.city.utc_offset_min)
        end_ms = max((rs[-1].ts for rs in per.values() if rs), default=0)
        self.out: dict[str, Episode] = {}
        for v in sorted(per):
            self._vehicle(v, per[v], end_ms)
        return sorted(self.out.values(), key=lambda e: (e.start_ts_ms, e.id))

    def _vehicle(self, v: int, rs: list, end_ms: int) -> None:
        w = self.world
        self._hygiene(rs)
        kind = KINDS[w.vehicle_kind[v]]
        trips = VehicleTrips(self.tp) if kind in self.tp.kinds else None
        deb = {n: self._debouncer(n, kind) for n in R.DEBOUNCED if self.params[n].enabled}
        shadow = self._debouncer("route_deviation", kind) if self.params["route_deviation"].enabled else None
        self._held: list[Event] = []  # provisional deviations of a truck first seen with its load unknown
        self._shown: set[int] = set()
        self._spans: list[tuple[int, int]] = []  # trip spans shown to have been loaded
        sl = {"prev": None, "active": -1}
        for r in rs:
            if r.ok:
                r.fences = self._fences(r)
            if trips is not None and r.ok:
                n_before = len(trips.records)
                here = min((f for f in r.fences if FENCE_KINDS[w.fence_kind[f]] in ALLOWED_KINDS), default=-1)
                trips.step(r, here, lambda f: self._role(kind, f), self._own(v, kind, here),
                           self._near(r, here), self._gap_dest(r, here, kind))
                for rec in trips.records[n_before:]:
                    self._trip_record(v, kind, rec, OUT_FAILED, r)
            self._docs(v, kind, r)
            for name, d in deb.items():
                if not r.ok:
                    continue
                cond, sev, place, value = R.DEBOUNCED[name](r, self.ctx)
                for e in d.step(r.ts, r.dt_s, r.move_m, cond, sev, place, value):
                    self._emit(name, v, e, r)
            if shadow is not None and r.ok:
                cond, sev, place, value = R.route_deviation_unknown(r, self.ctx)
                for e in shadow.step(r.ts, r.dt_s, r.move_m, cond, sev, place, value):
                    self._hold(v, e, r)
            if r.ok and self.params["signal_loss"].enabled:
                self._signal_loss(v, r, sl)
        for name, d in deb.items():
            for e in d.finish():
                self._emit(name, v, e, None)
        if shadow is not None:
            for e in shadow.finish():
                self._hold(v, e, None)
        if trips is not None:
            n_before = len(trips.records)
            trips.finish()
            for rec in trips.records[n_before:]:
                self._trip_record(v, kind, rec, OUT_OPEN, None)
        self._signal_end(v, sl, end_ms)

    # -- hygiene --------------------------------------------------------------------------------------------
    def _hygiene(self, rs: list) -> None:
        h, e = self.hyg, self.eng
        last = alt = None
        alt_n = 0
        for r in rs:
            r.ok = False
            if last is None:
                r.ok = True
            else:
                dt = (r.ts - last.ts) / 1000.0
                d = float(dist_m(last.lon, last.lat, r.lon, r.lat))
                if d <= h.jump_min_m or d <= h.max_speed_kmh / 3.6 * dt:
                    r.ok, r.dt_s, r.step_m = True, dt, d
                else:
                    r.jump = JUMP_REJECTED
                    if alt is not None:
                        da = float(dist_m(alt.lon, alt.lat, r.lon, r.lat))
                        dta = (r.ts - alt.ts) / 1000.0
                        alt_n = alt_n + 1 if (da <= h.jump_min_m or da <= h.max_speed_kmh / 3.6 * dta) else 1
                    else:
                        alt_n = 1
                    alt = r
                    if alt_n >= h.reanchor_fixes:
                        r.ok, r.jump, r.dt_s, r.step_m = True, JUMP_RELOCATED, dt, 0.0
            if r.ok:
                last, alt, alt_n = r, None, 0
                implied = r.step_m / r.dt_s * 3.6 if r.dt_s > 0 else 0.0
                moving = r.speed > e.move_kmh or (r.speed == 0 and implied > e.move_implied_kmh)
                r.move_m = r.step_m if moving else 0.0

    # -- look-ups -------------------------------------------------------------------------------------------
    def _fences(self, r) -> list[int]:
        if self.world.fence_index is None:
            return []
        _, f = self.world.fence_index.locate(np.array([r.lon]), np.array([r.lat]))
        return sorted(int(x) for x in f)

    def _role(self, kind: str, f: int) -> int:
        fk = FENCE_KINDS[self.world.fence_kind[f]]
        if fk in self.tp.origin_kinds.get(kind, []):
            return ROLE_ORIGIN
        if fk in self.tp.dest_kinds.get(kind, []):
            return ROLE_DEST
        return ROLE_OTHER if fk in ALLOWED_KINDS else 0

    def _own(self, v: int, kind: str, here: int) -> bool:
        if here < 0:
            return False
        docs = self._vehicle_docs(v)
        if docs:
            return any(self.world.docs.origin[d] == here for d in docs)
        return self._role(kind, here) == ROLE_ORIGIN

    def _near(self, r, here: int) -> bool:
        if here >= 0 or r.speed > self.tp.stop_kmh:
            return False
        return bool(self.world.near_kinds(np.array([r.lon]), np.array([r.lat]), ALLOWED_KINDS,
                                          self.tp.stop_clear_m)[0])

    def _gap_dest(self, r, here: int, kind: str) -> int:
        kinds = self.tp.dest_kinds.get(kind, [])
        if r.load >= 0 or r.dt_s < self.tp.unload_dwell_s or not kinds:
            return -1
        if here >= 0:
            return here if self._role(kind, here) == ROLE_DEST else -1
        return int(self.world.nearest_of_kinds(np.array([r.lon]), np.array([r.lat]), kinds, self.tp.gap_reach_m)[0])

    def _vehicle_docs(self, v: int) -> list[int]:
        w = self.world
        if v + 1 >= w.veh_doc_ptr.shape[0]:
            return []
        return [int(d) for d in w.veh_doc_idx[w.veh_doc_ptr[v]:w.veh_doc_ptr[v + 1]]]

    def _docs(self, v: int, kind: str, r) -> None:
        want = DOC_PERMIT if kind == "muck_truck" else DOC_ORDER if kind == "concrete_mixer" else -1
        D = self.world.docs
        best = (0, -1, False)
        for d in self._vehicle_docs(v) if want >= 0 else []:
            shift_day = r.day - (1 if r.minute < D.morning_end[d] else 0)
            ok = D.doc_type[d] == want and D.valid_from_day[d] <= shift_day <= D.valid_to_day[d]
            inside = bool(ok and D.windows[d, r.minute])
            score = int(ok) + int(inside)
            if score > best[0]:
                best = (score, d, inside)
        r.doc, r.in_window = best[1], best[2]

    # -- rules that are not debounced ----------------------------------------------------------------------
    def _debouncer(self, name: str, kind: str) -> Debounce:
        p = self.params[name].for_kind(kind)
        return Debounce(p.min_duration_s, p.min_distance_m, p.tolerance_s, p.max_gap_s,
                        sorted(getattr(p, "levels_s", ())))

    def _hold(self, v: int, e: Event, r) -> None:
        if e.start in self._shown or any(a <= e.start <= b for a, b in self._spans):
            self._emit("route_deviation", v, e, r)
        else:
            self._held.append((e, r))

    def _trip_record(self, v: int, kind: str, rec, outcome: int, r) -> None:
        p = self.params["route_deviation"]
        if rec.src == 2 and p.enabled and kind in p.kinds:  # a trip whose load was unknown ended
            if rec.outcome in (OUT_COMPLETED, OUT_ARRIVED):
                self._spans.append((rec.start, rec.end))
            keep = []
            for e, er in self._held:
                if rec.start <= e.start <= rec.end:
                    if rec.outcome in (OUT_COMPLETED, OUT_ARRIVED):  # it went to a destination: it was loaded
                        self._shown.add(e.start)
                        self._emit("route_deviation", v, e, er)
                else:
                    keep.append((e, er))
            self._held = keep
        if rec.outcome != outcome or rec.best0 < 0 or rec.sensor != 0:
            return
        for name in ("suspected_dumping", "mixer_discharge"):
            p = self.params[name]
            if not p.enabled or kind not in p.kinds:
                continue
            if name == "mixer_discharge" and not p.suspected_from_trips:
                continue
            if name == "suspected_dumping" and outcome == OUT_OPEN and not p.open_trips_at_end:
                continue
            lon, lat = rec.blon_e7 / 1e7, rec.blat_e7 / 1e7
            for et, end in ((OPEN, -1), (CLOSE, rec.best1)):
                self._emit(name, v, Event(et, rec.best0, end, 1, SEV_SUSPECTED, -1, 0.0, rec.decided, lon, lat), r)

    def _signal_loss(self, v: int, r, sl: dict[str, Any]) -> None:
        p = self.params["signal_loss"].for_kind(KINDS[r.kind])
        prev = sl["prev"]
        if prev is not None:
            gap = r.ts - prev.ts
            d = float(dist_m(prev.lon, prev.lat, r.lon, r.lat))
            sev = -1
            active = sl["active"] >= 0 and prev.ts - sl["active"] <= p.recent_s * 1000
            if gap >= p.gap_s * 1000 and (active or d >= p.moved_m):
                sev = SEV_CONFIRMED
            elif p.jumps and r.jump == JUMP_RELOCATED:
                sev = SEV_SUSPECTED
            if sev >= 0:
                for et, end in ((OPEN, -1), (CLOSE, r.ts)):
                    self._emit("signal_loss", v, Event(et, prev.ts, end, 1, sev, -1, gap / 1000, r.ts), r)
        sl["prev"] = r
        if r.speed > p.moving_kmh or r.loaded == 1:
            sl["active"] = r.ts

    def _signal_end(self, v: int, sl: dict[str, Any], end_ms: int) -> None:
        prev = sl["prev"]
        if prev is None or not self.params["signal_loss"].enabled:
            return
        p = self.params["signal_loss"].for_kind(KINDS[prev.kind])
        active = sl["active"] >= 0 and prev.ts - sl["active"] <= p.recent_s * 1000
        if active and end_ms - prev.ts >= p.gap_s * 1000:
            for et, end in ((OPEN, -1), (CLOSE, end_ms)):
                self._emit("signal_loss", v, Event(et, prev.ts, end, 1, SEV_CONFIRMED, -1, 0.0, end_ms,
                                                   prev.lon, prev.lat), None)

    # -- events → episodes ----------------------------------------------------------------------------------
    def _emit(self, name: str, v: int, e: Event, r) -> None:
        w = self.world
        mod = self.mods[name]
        kind = getattr(mod, "KIND", name)
        vid = w.vehicle_ids[v]
        eid = episode_id(kind, vid, e.start)
        ep = self.out.get(eid)
        if ep is None:
            ep = self.out[eid] = Episode.new(kind, vid, e.start)
        if e.etype == OPEN:
            ep.status, ep.end_ts_ms = "open", None
            if e.lon is not None:
                ep.lon, ep.lat = e.lon, e.lat
            elif r is not None:
                ep.lon, ep.lat = r.lon, r.lat
        ep.severity = SEVERITY_NAMES[e.sev]
        if e.place >= 0 and mod.PLACE == PLACE_FENCE:
            ep.place_id = w.fence_ids[e.place]
        elif e.place >= 0 and mod.PLACE == PLACE_DOC:
            ep.place_id = w.docs.ids[e.place]
        ep.evidence["level"] = e.level
        if e.etype == CLOSE:
            ep.status, ep.end_ts_ms = "closed", int(e.end)
