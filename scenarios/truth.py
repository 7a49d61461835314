"""Ground truth, checked the slow and obvious way: is every labelled episode visible in the raw fixes?

`rederive(sim, row)` looks only at what a terminal delivered (the noisy, skewed, duplicated fixes of one
vehicle, as `tracker.fix.Fix` objects) plus the reference data, and applies the domain rule in its simplest
per-fix form with the thresholds from the scenario file. It shares no code with the generator's labelling, so
a labelling bug (an episode that only exists in the generator's head) shows up as a failed check. Per-fix
Python on purpose: it is the reference, run by tests on small scenarios, never on a hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tracker.fix import Fix, fixes_from_frame
from tracker.reference import parse_window

if TYPE_CHECKING:
    from scenarios.sim import SimResult

SKEW_TOL_MS = 10_000  # terminal clocks may be a few seconds off


@dataclass
class Check:
    ok: bool
    reason: str


def _in_windows(minute: int, windows: Iterable[str]) -> bool:
    for w in windows:
        a, b = parse_window(w)
        if a == b or (a == 0 and b >= 1440) or (a < b and a <= minute < b) or (a > b and (minute >= a or minute < b)):
            return True
    return False


class Checker:
    """Per-fix re-derivation of labelled episodes for one simulated scenario."""

    def __init__(self, sim: SimResult) -> None:
        self.sim, self.cfg, self.city = sim, sim.config, sim.city
        clean = sim.fixes.filter(pl.col("valid") & (pl.col("lon") != 0.0)).unique(
            ["vehicle_id", "ts_ms"], keep="first", maintain_order=True).sort(["vehicle_id", "ts_ms"])
        self._by_vehicle = {k[0]: g for k, g in clean.group_by(["vehicle_id"], maintain_order=True)}
        self.kind_of = {v.id: v.kind for v in sim.vehicles}
        self.permits_of: dict[str, list[Any]] = {}
        for p in sim.permits:
            for v in p.vehicles:
                self.permits_of.setdefault(v, []).append(p)
        self.all_permits = {p.id: p for p in self.city.permits}

    # -- helpers ----------------------------------------------------------------------------------------------
    def fixes(self, vehicle_id: str, a_ms: int, b_ms: int) -> list[Fix]:
        df = self._by_vehicle.get(vehicle_id)
        if df is None:
            return []
        return fixes_from_frame(df.filter((pl.col("ts_ms") >= a_ms) & (pl.col("ts_ms") <= b_ms)))

    def xy(self, f: Fix) -> tuple[float, float]:
        x, y = self.city.net.frame.to_xy(f.lon, f.lat)
        return float(x), float(y)

    def minute(self, ts_ms: int) -> int:
        return int((ts_ms // 60_000 + self.cfg.utc_offset_min) % 1440)

    def local_date(self, ts_ms: int) -> Any:
        return (datetime.fromtimestamp(ts_ms / 1000, tz=UTC) + timedelta(minutes=self.cfg.utc_offset_min)).date()

    def in_allowed(self, f: Fix) -> bool:
        x, y = self.xy(f)
        return any(bool(p.contains(np.array([x]), np.array([y]), pad_m=0.0)[0]) for p in self.city.allowed_places())

    @staticmethod
    def span_s(fs: list[Fix]) -> float:
        return (fs[-1].ts_ms - fs[0].ts_ms) / 1000 if len(fs) >= 2 else 0.0

    def longest_run_s(self, fs: list[Fix], pred: Any) -> float:
        """Longest time between the first and last fix of a run of consecutive fixes satisfying pred."""
        best, start = 0.0, None
        prev: Fix | None = None
        for f in fs:
            if pred(f):
                start = f if start is None else start
                best = max(best, (f.ts_ms - start.ts_ms) / 1000)
            else:
                start = None
            prev = f
        del prev
        return best

    # -- the checks ---------------------------------------------------------------------------------------------
    def check(self, row: dict[str, Any]) -> Check:
        fn = getattr(self, f"_{row['kind']}", None)
        if fn is None:
            return Check(False, f"no check for {row['kind']}")
        return fn(row)

    def _window(self, row: dict[str, Any]) -> list[Fix]:
        return self.fixes(row["vehicle_id"], row["start_ts_ms"] - SKEW_TOL_MS, row["end_ts_ms"] + SKEW_TOL_MS)

    def _route_deviation(self, row: dict[str, Any]) -> Check:
        tp, half = self.cfg.truth, self.cfg.permits.corridor_half_width_m
        pid = next(p.id for p in self.city.permits if p.route_fence == row["place_id"])
        route = self.city.routes[pid]
        fs = self._window(row)
        out = [f for f in fs if float(route.distance_to(*map(np.atleast_1d, self.xy(f)))[0]) > half]
        if len(fs) == 0 or len(out) < 0.7 * len(fs):
            return Check(False, f"{len(out)}/{len(fs)} fixes outside the corridor")
        dist = sum(float(np.hypot(*np.subtract(self.xy(a), self.xy(b)))) for a, b in zip(out[:-1], out[1:]))
        ok = self.span_s(out) >= tp.deviation_min_s and dist >= tp.deviation_min_m
        return Check(ok, f"outside {self.span_s(out):.0f} s, {dist:.0f} m")

    def _unsealed_transport(self, row: dict[str, Any]) -> Check:
        tp = self.cfg.truth
        fs = [f for f in self._window(row) if row["start_ts_ms"] <= f.ts_ms <= row["end_ts_ms"]]
        open_ = [f for f in fs if f.cover_closed is False and (f.load or 0) > 0 and not self.in_allowed(f)]
        moving = [f for f in open_ if f.speed_kmh > tp.moving_kmh]
        ok = len(fs) > 0 and len(open_) >= 0.9 * len(fs) and len(moving) * self.cfg.reporting.moving_interval_s >= tp.unsealed_min_s
        return Check(ok, f"{len(open_)}/{len(fs)} open+loaded, {len(moving)} moving")

    def _illegal_dumping(self, row: dict[str, Any]) -> Check:
        fs = self._window(row)
        lifts = [f for f in fs if f.lifting]
        before = self.fixes(row["vehicle_id"], row["start_ts_ms"] - 600_000, row["start_ts_ms"] - SKEW_TOL_MS)
        after = self.fixes(row["vehicle_id"], row["end_ts_ms"] + SKEW_TOL_MS, row["end_ts_ms"] + 600_000)
        loaded_before = any((f.load or 0) > 0 for f in before[-3:])
        empty_after = all((f.load or 0) == 0 for f in after[:3]) and bool(after)
        outside = bool(lifts) and not any(self.in_allowed(f) for f in lifts)
        return Check(bool(lifts) and outside and loaded_before and empty_after,
                     f"{len(lifts)} lift fixes, outside={outside}, loaded_before={loaded_before}, empty_after={empty_after}")

    def _suspected_dumping(self, row: dict[str, Any]) -> Check:
        tp = self.cfg.truth
        fs = [f for f in self._window(row) if row["start_ts_ms"] + SKEW_TOL_MS <= f.ts_ms <= row["end_ts_ms"] - SKEW_TOL_MS]
        still = [f for f in fs if f.speed_kmh < tp.moving_kmh]
        if not fs or len(still) < 0.9 * len(fs):
            return Check(False, f"{len(still)}/{len(fs)} fixes stopped")
        xy = np.array([self.xy(f) for f in still])
        spread = float(np.percentile(np.hypot(*(xy - np.median(xy, 0)).T), 90))  # robust to a multipath jump
        pm = self.all_permits.get(row["place_id"] or "")
        disp = self.city.places[pm.disposal_fence] if pm else None
        site = self.city.places[pm.origin_fence] if pm else None
        # loaded without a load sensor = on a trip: the last allowed place visited before the stop is the origin
        earlier = self.fixes(row["vehicle_id"], self.cfg.start_ms - 3_600_000, row["start_ts_ms"])
        last_place = None  # the last place the truck *stayed* at (≥ 60 s inside), not one it drove past
        run: list[Fix] = []
        run_place = None
        for f in reversed(earlier):
            p = tuple(map(np.atleast_1d, self.xy(f)))
            here = next((pl.id for pl in self.city.allowed_places() if bool(pl.contains(*p)[0])), None)
            if here is not None and here == run_place:
                run.append(f)
            else:
                run, run_place = ([f], here) if here is not None else ([], None)
            if run_place is not None and (run[0].ts_ms - run[-1].ts_ms) >= 60_000:
                last_place = run_place
                break
        on_trip = site is not None and last_place == site.id
        later = self.fixes(row["vehicle_id"], row["end_ts_ms"], self.cfg.end_ms)
        reached = False
        for f in later:  # this trip ends when the truck is back at its origin site (a new trip starts there)
            p = tuple(map(np.atleast_1d, self.xy(f)))
            if site is not None and bool(site.contains(*p)[0]):
                break
            if disp is not None and bool(disp.contains(*p)[0]):
                reached = True
                break
        ok = (self.span_s(still) >= tp.dumping_stop_min_s - 2 * SKEW_TOL_MS / 1000 and spread < 80
              and not any(self.in_allowed(f) for f in still) and not reached and on_trip)
        return Check(ok, f"stopped {self.span_s(still):.0f} s within {spread:.0f} m, reached disposal={reached}, "
                         f"came from {last_place}")

    def _loaded_moving(self, row: dict[str, Any], pred: Any) -> tuple[list[Fix], list[Fix]]:
        fs = [f for f in self._window(row) if row["start_ts_ms"] <= f.ts_ms <= row["end_ts_ms"]]
        hit = [f for f in fs if (f.load or 0) > 0 and f.speed_kmh > self.cfg.truth.moving_kmh and pred(f)]
        return fs, hit

    def _out_of_window(self, row: dict[str, Any]) -> Check:
        pm = self.all_permits[row["place_id"]]
        fs, hit = self._loaded_moving(row, lambda f: not _in_windows(self.minute(f.ts_ms), pm.windows))
        valid = any(p.id == pm.id for p in self.permits_of.get(row["vehicle_id"], []))
        return Check(valid and len(hit) * self.cfg.reporting.moving_interval_s >= 60,
                     f"{len(hit)}/{len(fs)} loaded moving fixes outside {pm.windows}, on permit={valid}")

    def _no_permit(self, row: dict[str, Any]) -> Check:
        fs, hit = self._loaded_moving(row, lambda f: True)
        d = self.local_date(row["start_ts_ms"])
        valid = [p for p in self.permits_of.get(row["vehicle_id"], []) if p.valid_from <= d <= p.valid_to]
        return Check(not valid and len(hit) * self.cfg.reporting.moving_interval_s >= 60,
                     f"{len(hit)}/{len(fs)} loaded moving fixes, valid permits={len(valid)}")

    def _restricted_zone(self, row: dict[str, Any]) -> Check:
        zone = next(z for z in self.city.zones if z.id == row["place_id"])
        fs = self._window(row)
        ins = [f for f in fs if np.hypot(*np.subtract(self.xy(f), (zone.x, zone.y))) < float(zone.radius_m or 0)
               and _in_windows(self.minute(f.ts_ms), zone.windows)]
        return Check(len(ins) >= 2 and self.span_s(ins) >= self.cfg.truth.zone_min_s - 2 * SKEW_TOL_MS / 1000,
                     f"{len(ins)} fixes inside over {self.span_s(ins):.0f} s")

    def _speeding(self, row: dict[str, Any]) -> Check:
        limit = self.cfg.kinds[self.kind_of[row["vehicle_id"]]].speed_limit_kmh
        run = self.longest_run_s(self._window(row), lambda f: f.speed_kmh > limit)
        return Check(run >= self.cfg.truth.speeding_min_s, f"above {limit} km/h for {run:.0f} s")

    def _signal_loss(self, row: dict[str, Any]) -> Check:
        fs = self.fixes(row["vehicle_id"], row["start_ts_ms"] + SKEW_TOL_MS, row["end_ts_ms"] - SKEW_TOL_MS)
        before = self.fixes(row["vehicle_id"], row["start_ts_ms"] - 120_000, row["start_ts_ms"] + SKEW_TOL_MS)
        moving = any(f.speed_kmh > self.cfg.truth.moving_kmh for f in before)
        gap = (row["end_ts_ms"] - row["start_ts_ms"]) / 1000
        return Check(not fs and moving and gap >= self.cfg.truth.signal_loss_min_s,
                     f"{len(fs)} fixes in a {gap:.0f} s gap, moving before={moving}")

    def _mixer_discharge(self, row: dict[str, Any]) -> Check:
        rev = [f for f in self._window(row) if f.drum == 2]
        outside = bool(rev) and not any(self.in_allowed(f) for f in rev)
        return Check(len(rev) >= 3 and outside, f"{len(rev)} reverse-drum fixes, outside={outside}")

    def _sweeping_too_fast(self, row: dict[str, Any]) -> Check:
        kp = self.cfg.kinds[self.kind_of[row["vehicle_id"]]]
        top = (kp.work_band_kmh or (0.0, 8.0))[1]
        run = self.longest_run_s(self._window(row), lambda f: bool(f.device_on) and f.speed_kmh > top)
        return Check(run >= self.cfg.truth.sweeping_min_s, f"device on above {top} km/h for {run:.0f} s")

    def _plan_window(self, row: dict[str, Any], windows: list[str]) -> tuple[int, int]:
        end = row["end_ts_ms"]
        m_end = self.minute(end)
        for w in windows:
            a, b = parse_window(w)
            if b % 1440 == m_end:
                return end - ((b - a) % 1440) * 60_000, end
        raise ValueError(f"{row['kind']} at {m_end} ends none of {windows}")

    def _missed_segment(self, row: dict[str, Any]) -> Check:
        plan = next(p for p in self.sim.plans.work_plans if p.vehicle_id == row["vehicle_id"])
        seg = next(s for s in plan.segments if s.id == row["place_id"])
        a, b = self._plan_window(row, plan.windows)
        fs = [f for f in self.fixes(row["vehicle_id"], a, b) if f.device_on]
        poly = self.city.net.path_geometry(self.city.segment_edges[seg.id])
        s_grid = np.arange(0.0, poly.length_m, 10.0)
        gx, gy, _ = poly.position_at(s_grid)
        covered = np.zeros(s_grid.size, bool)
        for f in fs:
            x, y = self.xy(f)
            covered |= np.hypot(gx - x, gy - y) < seg.half_width_m + 15.0
        return Check(covered.mean() < 0.2, f"{covered.mean():.0%} of the segment swept with the device on")

    def _missed_collection(self, row: dict[str, Any]) -> Check:
        sched = next(s for s in self.sim.plans.collection_schedules if s.vehicle_id == row["vehicle_id"])
        pt = self.city.places[row["place_id"]]
        a, b = self._plan_window(row, sched.windows)
        near = [f for f in self.fixes(row["vehicle_id"], a, b)
                if np.hypot(*np.subtract(self.xy(f), (pt.x, pt.y))) < float(pt.radius_m or 30.0) + 10.0
                and f.speed_kmh < self.cfg.truth.moving_kmh]
        return Check(not near, f"{len(near)} stopped fixes at the point")

    def _no_transfer_arrival(self, row: dict[str, Any]) -> Check:
        """Stopped at one of its points in the window, and no fix inside the facility until the deadline."""
        sched = next(s for s in self.sim.plans.collection_schedules if s.vehicle_id == row["vehicle_id"])
        fac = self.city.places[row["place_id"]]
        fs = self.fixes(row["vehicle_id"], row["start_ts_ms"], row["end_ts_ms"])
        xy = np.array([self.xy(f) for f in fs]).reshape(-1, 2)
        arrived = int(fac.contains(xy[:, 0], xy[:, 1]).sum()) if len(fs) else 0
        pts = [self.city.places[p] for p in sched.points]
        stopped = sum(1 for f, (x, y) in zip(fs, xy, strict=True) if f.speed_kmh < self.cfg.truth.moving_kmh
                      and any(np.hypot(x - p.x, y - p.y) < float(p.radius_m or 30.0) for p in pts))
        return Check(stopped > 0 and arrived == 0, f"{stopped} stopped fixes at its points, {arrived} at {fac.id}")

    def _banned_hours_work(self, row: dict[str, Any]) -> Check:
        banned = self.cfg.sanitation.banned_windows
        fs = [f for f in self._window(row) if f.device_on and _in_windows(self.minute(f.ts_ms), banned)]
        return Check(self.span_s(fs) >= 300, f"device on in banned hours for {self.span_s(fs):.0f} s")


def rederive(sim: SimResult) -> list[tuple[dict[str, Any], Check]]:
    """Check every labelled episode of a simulation; returns (row, result) pairs."""
    ch = Checker(sim)
    return [(row, ch.check(row)) for row in sim.truth.iter_rows(named=True)]
