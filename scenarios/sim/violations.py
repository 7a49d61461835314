"""Which vehicle does what wrong, when — and the ground truth that records it.

The injector decides up front (from the seed) which vehicles violate and how, runs each vehicle's behaviour
with the matching hook, and turns what actually happened on the true timeline into labelled episodes.
Labels are measured on the *true* trajectory, not assumed from the plan: an episode is kept only if it clears
the rule's thresholds by the configured margins, so it is visible in noisy data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from datetime import timedelta

import msgspec

from scenarios.city import City, in_windows
from scenarios.sim import behaviour as B
from scenarios.sim.timeline import Timeline
from tracker.reference import Permit, Vehicle

TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(), "vehicle_id": pl.String(), "start_ts_ms": pl.Int64(), "end_ts_ms": pl.Int64(),
    "place_id": pl.String(), "lon": pl.Float64(), "lat": pl.Float64(), "notes": pl.String(),
}


MUCK_FULL = ("cover_closed", "lifting", "load")
#: violation kind → vehicle kinds that can commit it (and what they need)
ELIGIBLE: dict[str, tuple[str, ...]] = {
    "route_deviation": ("muck_truck",), "unsealed_transport": ("muck_truck",), "illegal_dumping": ("muck_truck",),
    "suspected_dumping": ("muck_truck",), "out_of_window": ("muck_truck",), "no_permit": ("muck_truck",),
    "speeding": ("muck_truck", "concrete_mixer"), "restricted_zone": ("concrete_mixer",),
    "mixer_discharge": ("concrete_mixer",), "signal_loss": ("muck_truck", "concrete_mixer", "refuse_truck",
                                                             "sweeper", "sprinkler"),
    "sweeping_too_fast": ("sweeper", "sprinkler"), "missed_segment": ("sweeper", "sprinkler"),
    "missed_collection": ("refuse_truck",), "banned_hours_work": ("sweeper", "sprinkler"),
    "no_transfer_arrival": ("refuse_truck",),
}
NEAR_MISSES: dict[str, tuple[str, ...]] = {
    "gate_wait": ("muck_truck",), "congestion_stop": ("muck_truck",), "brief_overspeed": ("muck_truck",),
    "brief_fast_work": ("sweeper", "sprinkler"),
}
MUCK_TRIP_KINDS = frozenset({"route_deviation", "unsealed_transport", "illegal_dumping", "suspected_dumping",
                             "speeding", "congestion_stop", "gate_wait", "brief_overspeed"})


class Injector:
    """Plans violations and near misses, runs behaviours, labels the truth."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.cfg = city.cfg
        self.rng = np.random.default_rng([city.seed, 0x1A1])
        self.plans: dict[str, B.Plan] = {}
        self.truth: list[dict[str, Any]] = []
        self.near: list[dict[str, Any]] = []
        self.unscored: list[dict[str, Any]] = []
        self.gaps: dict[str, list[tuple[float, float]]] = {}
        self.expired: set[str] = set()
        self._permit_of: dict[str, Permit] = {}
        for p in city.permits:
            for v in p.vehicles:
                self._permit_of[v] = p
        self._order_of = {v: o for o in city.orders for v in o.vehicles}
        self._plan_of = {p.vehicle_id: p for p in city.plans.work_plans}
        self._sched_of = {s.vehicle_id: s for s in city.plans.collection_schedules}
        self._ctx: dict[str, B.Ctx] = {}

    # -- planning -----------------------------------------------------------------------------------------------
    def _period_s(self) -> float:
        return self.cfg.hours * 3600.0

    def _minutes(self, t_s: np.ndarray) -> np.ndarray:
        return self.city.local_minute(self.cfg.start_ms + (np.asarray(t_s) * 1000).astype(np.int64))

    def _window_frac(self, windows: tuple[str, ...]) -> float:
        t = np.arange(0.0, self._period_s(), 60.0)
        return float(in_windows(self._minutes(t), windows).mean()) if t.size else 0.0

    def eligible(self, kind: str, v: Vehicle) -> bool:
        if v.kind not in (ELIGIBLE.get(kind) or NEAR_MISSES.get(kind, ())):
            return False
        s = set(v.sensors)
        if v.kind == "muck_truck":
            p = self._permit_of.get(v.id)
            if p is None:
                return False
            frac = self._window_frac(p.windows)
            if kind == "out_of_window":
                return frac < 0.5 and "load" in s
            if kind == "no_permit":
                return "load" in s
            if kind == "suspected_dumping":
                return not s and frac > 0.8
            if kind == "signal_loss":
                return frac > 0.8
            if frac < 0.8:
                return False
            if kind == "unsealed_transport":
                return "cover_closed" in s and "load" in s
            if kind == "illegal_dumping":
                return "lifting" in s and "load" in s
            return True
        if kind == "mixer_discharge":
            return "drum" in s
        if kind == "restricted_zone":
            return bool(self.city.active_zones)
        if v.kind in ("sweeper", "sprinkler"):
            plan = self._plan_of.get(v.id)
            has_work = plan is not None and bool(plan.segments) and bool(plan.windows)
            if kind == "banned_hours_work":
                t = np.arange(0.0, self._period_s(), 60.0)
                banned = in_windows(self._minutes(t), self.cfg.sanitation.banned_windows)
                return "device_on" in s and banned.sum() * 60.0 >= self.cfg.truth.banned_work_s[1] + 900
            if kind in ("missed_segment",):
                return has_work and len(plan.segments) >= 2  # type: ignore[union-attr]
            return has_work and "device_on" in s
        if kind == "missed_collection":
            sc = self._sched_of.get(v.id)
            return sc is not None and len(sc.points) >= 3 and bool(sc.windows)
        if kind == "no_transfer_arrival":  # a window whose arrival deadline the period sees
            sc = self._sched_of.get(v.id)
            if sc is None or not sc.points or not sc.windows:
                return False
            t = np.arange(-60.0, self._period_s() + 60.0, 60.0)
            d = np.diff(np.concatenate([[0], in_windows(self._minutes(t), sc.windows).astype(np.int8), [0]]))
            late = self._period_s() - self.cfg.truth.arrival_within_s - self.cfg.truth.margin_s
            return any(a > 0 and t[b - 1] + 60.0 <= late
                       for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))
        return True

    def assign(self) -> None:
        """Choose violators: `violation_rate` per vehicle-hour, spread over the kinds that can occur here."""
        cfg, rng = self.cfg, self.rng
        vehicles = self.city.vehicles
        order = [vehicles[int(i)] for i in rng.permutation(len(vehicles))]
        used: set[str] = set()

        def spread(total: float, kinds: list[str], weights: dict[str, float]) -> dict[str, int]:
            w = np.array([weights.get(k, 1.0) for k in kinds], float)
            if not kinds or w.sum() <= 0:
                return {}
            raw = total * w / w.sum()
            base = np.floor(raw).astype(int)
            extra = rng.random(len(kinds)) < (raw - base)
            return {k: int(b + e) for k, b, e in zip(kinds, base, extra, strict=True)}

        vh = cfg.vehicles * cfg.hours
        pools = {k: [v for v in order if self.eligible(k, v)] for k in ELIGIBLE}
        kinds = [k for k in ELIGIBLE if pools[k]]
        want = spread(cfg.violation_rate * vh, kinds, cfg.violation_weights)
        for k in kinds:
            n = want.get(k, 0)
            for v in pools[k]:
                if n <= 0:
                    break
                if v.id in used:
                    continue
                used.add(v.id)
                n -= 1
                self.plans[v.id] = B.Plan(kind=k, at_s=self._at(k, rng))
        npools = {k: [v for v in order if v.id not in used and self.eligible(k, v)] for k in NEAR_MISSES}
        nkinds = [k for k in NEAR_MISSES if npools[k]]
        for k, n in spread(cfg.near_miss_rate * vh, nkinds, {}).items():
            for v in npools[k]:
                if n <= 0:
                    break
                if v.id in used:
                    continue
                used.add(v.id)
                n -= 1
                self.plans[v.id] = B.Plan(kind=k, at_s=self._at(k, rng))

    def _at(self, kind: str, rng: np.random.Generator) -> float:
        """Earliest time to act: trip-bound kinds act on the first trip after it (trips are long, so it may
        fall a little before the start); the rest act inside the period."""
        T = self._period_s()
        if kind in MUCK_TRIP_KINDS:
            return -self.cfg.warmup_s  # every loaded trip is a chance; the act itself is timed into the period
        return float(rng.uniform(0.0, max(60.0, T - 2700.0)))

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, ctx: B.Ctx) -> None:
        v = ctx.vehicle
        city = self.city
        plan = self.plans.get(v.id)
        if v.kind == "muck_truck":
            B.muck_truck(ctx, self._permit_of.get(v.id), plan)
        elif v.kind == "concrete_mixer":
            o = self._order_of[v.id]
            B.concrete_mixer(ctx, city.places[o.plant_fence], city.places[o.site_fence], plan)
        elif v.kind == "refuse_truck":
            s = self._sched_of.get(v.id)
            pts = [city.places[p] for p in s.points] if s else []
            fac = city.places[s.facility] if s else city.of_kind("transfer_station")[0]
            B.refuse_truck(ctx, pts, fac, s.windows if s else [], plan)
        else:
            B.sanitation(ctx, self._plan_of.get(v.id), plan)
        if plan is not None and plan.kind == "signal_loss":
            self._plan_gap(ctx, plan)
        self._ctx[v.id] = ctx

    def _plan_gap(self, ctx: B.Ctx, plan: B.Plan) -> None:
        """A GPS blackout starting while the vehicle moves, longer than the signal-loss threshold."""
        tl, tp = ctx.tl, self.cfg.truth
        assert tl is not None
        d = ctx.u(tp.signal_loss_s)
        t = np.arange(tp.margin_s, self._period_s() - tp.margin_s - d, 10.0)
        if t.size == 0:
            return
        _, _, v, _ = tl.true_at(t)
        _, _, v_before, _ = tl.true_at(t - 30.0)
        ok = t[(v > 3.0) & (v_before > 3.0)]
        if ok.size == 0:
            return
        a = float(ok[int(ctx.rng.integers(ok.size))])
        self.gaps.setdefault(ctx.vehicle.id, []).append((a, a + d))
        plan.done = True
        ctx.events.append({"what": "v:signal_loss", "t0": a, "t1": a + d})

    def remove_gaps(self, vehicle_id: str, t_s: np.ndarray) -> np.ndarray:
        gaps = self.gaps.get(vehicle_id)
        if not gaps:
            return t_s
        keep = np.ones(t_s.size, bool)
        for a, b in gaps:
            keep &= ~((t_s >= a) & (t_s < b))
        return t_s[keep]

    # -- labelling ----------------------------------------------------------------------------------------------
    def collect(self, v: Vehicle, tl: Timeline, events: list[dict[str, Any]]) -> None:
        """Turn what happened to a vehicle into truth rows (labelled after the fact, on the true track)."""
        from scenarios.sim.labels import label_events

        plan = self.plans.get(v.id)
        rows, near, unscored = label_events(self.city, v, tl, events, plan, self._permit_of.get(v.id))
        self.truth.extend(rows)
        self.near.extend(near)
        self.unscored.extend(unscored)

    # -- outputs ------------------------------------------------------------------------------------------------
    def truth_frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """(truth, near misses, unscored borderline acts) — see `scenarios.sim.labels.label_events`."""
        def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
            if not rows:
                return pl.DataFrame(schema=TRUTH_SCHEMA)
            df = pl.DataFrame([{k: r[k] for k in TRUTH_SCHEMA} for r in rows], schema=TRUTH_SCHEMA)
            return df.sort(["start_ts_ms", "vehicle_id", "kind"])
        return frame(self.truth), frame(self.near), frame(self.unscored)

    def protected_intervals(self) -> list[tuple[int, int, int]]:
        idx = {v.id: i for i, v in enumerate(self.city.vehicles)}
        pad = int(self.cfg.truth.margin_s * 1000)
        return [(idx[r["vehicle_id"]], int(r.get("evidence_start_ts_ms", r["start_ts_ms"])) - pad,
                 int(r.get("evidence_end_ts_ms", r["end_ts_ms"])) + pad) for r in self.truth]

    def final_permits(self) -> list[Permit]:
        """The permits as issued: a no-permit violator is on none (or, every other one, on an expired one)."""
        out: list[Permit] = []
        expired: list[Permit] = []
        nop = sorted(vid for vid, p in self.plans.items() if p.kind == "no_permit")
        for k, vid in enumerate(nop):
            if k % 2 == 1:
                p = self._permit_of[vid]
                ago = timedelta(days=3)
                expired.append(msgspec.structs.replace(
                    p, id=f"{p.id}-X{k}", vehicles=(vid,), valid_from=p.valid_from - timedelta(days=90),
                    valid_to=p.valid_from - ago))
        drop = set(nop)
        for p in self.city.permits:
            vs = tuple(v for v in p.vehicles if v not in drop)
            if vs:
                out.append(msgspec.structs.replace(p, vehicles=vs) if vs != p.vehicles else p)
        return out + expired
