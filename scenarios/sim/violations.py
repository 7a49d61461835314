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

from scenarios.city import City
from scenarios.sim import behaviour as B
from scenarios.sim.timeline import Timeline
from tracker.reference import Permit, Vehicle

TRUTH_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(), "vehicle_id": pl.String(), "start_ts_ms": pl.Int64(), "end_ts_ms": pl.Int64(),
    "place_id": pl.String(), "lon": pl.Float64(), "lat": pl.Float64(), "notes": pl.String(),
}


class Injector:
    def __init__(self, city: City) -> None:
        self.city = city
        self.cfg = city.cfg
        self.plan: dict[str, list[str]] = {}
        self.truth: list[dict[str, Any]] = []
        self.near: list[dict[str, Any]] = []
        self.gaps: dict[str, list[tuple[float, float]]] = {}
        self._permit_of: dict[str, Permit] = {}
        for p in city.permits:
            for v in p.vehicles:
                self._permit_of[v] = p
        self._order_of = {v: o for o in city.orders for v in o.vehicles}
        self._plan_of = {p.vehicle_id: p for p in city.plans.work_plans}
        self._sched_of = {s.vehicle_id: s for s in city.plans.collection_schedules}

    # -- planning -----------------------------------------------------------------------------------------------
    def assign(self) -> None:
        """Choose violators (none yet: compliant city)."""

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, ctx: B.Ctx) -> None:
        v = ctx.vehicle
        city = self.city
        if v.kind == "muck_truck":
            B.muck_truck(ctx, self._permit_of.get(v.id))
        elif v.kind == "concrete_mixer":
            o = self._order_of[v.id]
            B.concrete_mixer(ctx, city.places[o.plant_fence], city.places[o.site_fence])
        elif v.kind == "refuse_truck":
            s = self._sched_of.get(v.id)
            pts = [city.places[p] for p in s.points] if s else []
            fac = city.places[s.facility] if s else city.of_kind("transfer_station")[0]
            B.refuse_truck(ctx, pts, fac, s.windows if s else [])
        else:
            B.sanitation(ctx, self._plan_of.get(v.id))

    def remove_gaps(self, vehicle_id: str, t_s: np.ndarray) -> np.ndarray:
        gaps = self.gaps.get(vehicle_id)
        if not gaps:
            return t_s
        keep = np.ones(t_s.size, bool)
        for a, b in gaps:
            keep &= ~((t_s >= a) & (t_s < b))
        return t_s[keep]

    def collect(self, v: Vehicle, tl: Timeline, events: list[dict[str, Any]]) -> None:
        """Turn what happened to a vehicle into truth rows (labelled after the fact, on the true track)."""

    # -- outputs ------------------------------------------------------------------------------------------------
    def truth_frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
            if not rows:
                return pl.DataFrame(schema=TRUTH_SCHEMA)
            df = pl.DataFrame(rows, schema=TRUTH_SCHEMA)
            return df.sort(["start_ts_ms", "vehicle_id", "kind"])
        return frame(self.truth), frame(self.near)

    def protected_intervals(self) -> list[tuple[int, int, int]]:
        idx = {v.id: i for i, v in enumerate(self.city.vehicles)}
        return [(idx[r["vehicle_id"]], int(r["start_ts_ms"]), int(r["end_ts_ms"])) for r in self.truth]

    def final_permits(self) -> list[Permit]:
        return list(self.city.permits)
