"""A day of sanitation coverage and refuse collection, from fixes, plans and fences — the same verdicts as the
live rules (`work.judge`, `collection.judge`), as tables.

`compute_day` returns a `DayReport`: per (segment, window) rows, per (schedule, window, point) rows, per
vehicle work figures and H3 hexagons for the map; `DayReport.by(dim)` aggregates coverage per segment, road,
vehicle, company, district or shift (the plan window), and `companies()` is the daily table per company.
Coverage % = Σ min(passes, required) × length / Σ required × length (pass-weighted), so a grade-1 road
swept once of the two times required counts half.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

from tracker.coverage import collection as C
from tracker.coverage import work as W
from tracker.coverage.compiled import CompiledPlans, compile_plans
from tracker.coverage.params import CoverageParams
from tracker.coverage.plans import Plans, as_plans

DIMENSIONS = ("segment", "road", "vehicle", "company", "district", "shift")
DIM_COLUMN = {"segment": "segment_id", "road": "road_name", "vehicle": "vehicle_id", "company": "company",
              "district": "district", "shift": "window"}


@dataclass
class Verdicts:
    """The window rules' thresholds the report shares (their `[rules.*]` tables)."""

    alert_below_pct: float = 20.0
    grace_s: float = 3600.0
    in_progress_s: float = 1800.0
    visit_min_s: float = 60.0
    home_kinds: tuple[str, ...] = ("depot",)

    @classmethod
    def from_settings(cls, settings: Any) -> Verdicts:
        from tracker.rules import load_params
        from tracker.rules.missed_collection import Params as MCP
        from tracker.rules.missed_segment import Params as MSP

        ms = load_params("missed_segment", MSP, settings)
        mc = load_params("missed_collection", MCP, settings)
        return cls(ms.alert_below_pct, ms.grace_s, ms.in_progress_s, mc.visit_min_s, tuple(ms.home_kinds))


@dataclass
class DayReport:
    day: date
    segments: pl.DataFrame  # one row per (segment, window)
    points: pl.DataFrame  # one row per (schedule, window, point)
    vehicles: pl.DataFrame  # one row per plan vehicle
    hexes: pl.DataFrame  # H3 cell → planned / covered pass metres
    geometry: dict[str, list[list[float]]] = field(default_factory=dict)  # segment id → [lon, lat] line
    point_lonlat: dict[str, tuple[float, float]] = field(default_factory=dict)

    def filter_company(self, company: str | None) -> DayReport:
        if not company:
            return self
        f = pl.col("company") == company
        segs = self.segments.filter(f)
        keep = set(segs["segment_id"].to_list())
        return DayReport(self.day, segs, self.points.filter(f), self.vehicles.filter(f),
                         self.hexes.filter(pl.col("company") == company),
                         {k: v for k, v in self.geometry.items() if k in keep}, self.point_lonlat)

    def by(self, dim: str) -> pl.DataFrame:
        """Coverage aggregated per segment / road / vehicle / company / district / shift."""
        if dim not in DIM_COLUMN:
            raise ValueError(f"dimension must be one of {DIMENSIONS}")
        col = DIM_COLUMN[dim]
        return _aggregate(self.segments, [col]).sort(col)

    def companies(self) -> pl.DataFrame:
        """The daily table per company: work coverage and refuse collection side by side."""
        work = _aggregate(self.segments, ["company"])
        pts = self.points.group_by("company").agg(
            pl.len().alias("points_planned"), pl.col("visited").sum().alias("points_visited"),
            (pl.col("verdict") == "missed").sum().alias("points_missed"),
            (pl.col("verdict") == "late").sum().alias("points_late"),
            (pl.col("verdict") == "unverified").sum().alias("points_unverified"))
        rounds = self.rounds().group_by("company").agg(
            (pl.col("collected") & ~pl.col("reached_facility")).sum().alias("rounds_without_facility"))
        pts = pts.join(rounds, on="company", how="left")
        pts = pts.with_columns((100.0 * pl.col("points_visited") / pl.col("points_planned")).round(1)
                               .alias("visit_rate_pct"))
        veh = self.vehicles.group_by("company").agg(pl.len().alias("vehicles"),
                                                    pl.col("valid_work_km").sum().round(2),
                                                    pl.col("device_on_km").sum().round(2))
        out = work.join(pts, on="company", how="full", coalesce=True).join(veh, on="company", how="full",
                                                                           coalesce=True)
        return out.sort("company")

    def rounds(self) -> pl.DataFrame:
        """Per (schedule, window): points planned / visited, and whether the round reached its facility."""
        return self.points.group_by("schedule_id", "window", "vehicle_id", "company", "facility").agg(
            pl.len().alias("points_planned"), pl.col("visited").sum().alias("points_visited"),
            ((pl.col("first_visit_ms") >= 0) | (pl.col("late_visit_ms") >= 0)).any().alias("collected"),
            (pl.col("arrival_ms").max() >= 0).alias("reached_facility"),
            pl.col("arrival_ms").max().alias("arrival_ms")).sort("schedule_id", "window")

    def summary(self) -> dict[str, Any]:
        s = _aggregate(self.segments.with_columns(pl.lit("all").alias("_all")), ["_all"])
        row = s.row(0, named=True) if s.height else {}
        row.pop("_all", None)
        visited = int(self.points["visited"].sum()) if self.points.height else 0
        row.update({"day": self.day.isoformat(), "points_planned": self.points.height, "points_visited": visited,
                    "visit_rate_pct": round(100.0 * visited / self.points.height, 1) if self.points.height else None,
                    "points_missed": int((self.points["verdict"] == "missed").sum()) if self.points.height else 0,
                    "valid_work_km": round(float(self.vehicles["valid_work_km"].sum()), 2)
                    if self.vehicles.height else 0.0})
        return row


def _aggregate(segs: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    return segs.group_by(by).agg(
        pl.len().alias("segment_windows"),
        (pl.col("length_m") * pl.col("required")).sum().truediv(1000).round(3).alias("planned_km"),
        (pl.col("covered_pass_m").sum() / 1000).round(3).alias("covered_km"),
        (100.0 * pl.col("covered_pass_m").sum() / (pl.col("length_m") * pl.col("required")).sum()).round(2)
        .alias("coverage_pct"),
        (100.0 * pl.col("complete_m").sum() / pl.col("length_m").sum()).round(2).alias("complete_pct"),
        (pl.col("status") == "covered").sum().alias("covered"),
        (pl.col("status") == "partial").sum().alias("partial"),
        (pl.col("verdict") == "missed").sum().alias("missed"),
        (pl.col("verdict") == "late").sum().alias("late"),
        (pl.col("status") == "unverified").sum().alias("unverified"),
    )


def epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def day_bounds_ms(d: date, utc_offset_min: int, grace_s: float) -> tuple[int, int]:
    """UTC ms span of fixes a day's report needs: from the local day's start (less an hour, for windows of the
    evening before running past midnight) to its end plus the rounds' grace."""
    tz = timezone(timedelta(minutes=utc_offset_min))
    a = datetime(d.year, d.month, d.day, tzinfo=tz) - timedelta(hours=1)
    b = datetime(d.year, d.month, d.day, tzinfo=tz) + timedelta(days=1, seconds=grace_s + 3600)
    return int(a.timestamp() * 1000), int(b.timestamp() * 1000)


def compute_day(fixes: pl.DataFrame, plans: Plans | Any, fences: list[Any], day: date, utc_offset_min: int,
                params: CoverageParams | None = None, verdicts: Verdicts | None = None,
                as_of_ms: int | None = None) -> DayReport:
    """Coverage and collection for one local day. `fixes`: FIX_SCHEMA columns (any order; duplicates and
    invalid fixes are dropped here); `fences`: `geofences.model.Fence` list holding the collection points,
    facilities and depots the schedules name. `as_of_ms`: when the report is asked for (today's report, while
    windows are still open): a segment or point whose window has not closed by then is `pending`, not missed."""
    params = params or CoverageParams()
    verdicts = verdicts or Verdicts()
    p = as_plans(plans)
    cp = compile_plans(p, params)
    wf, names = W.fixes_from_frame(fixes, cp, utc_offset_min)
    d = epoch_day(day)
    lifting = wf.lifting if wf.lifting is not None else np.full(wf.ts_ms.size, -1, np.int8)
    hits, fence_list = _hits(wf, cp, fences)
    home_kinds = set(verdicts.home_kinds)
    is_home = np.array([str(getattr(f.kind, "value", f.kind)) in home_kinds for f in fence_list], bool)
    at_home = np.zeros(wf.ts_ms.size, bool)
    if hits[0].size:
        at_home[hits[0][is_home[hits[1]]]] = True
    sel = wf.veh >= 0
    home = W.home_transitions(wf.veh[sel], wf.ts_ms[sel], at_home[sel]) if is_home.any() else None
    gp = W.gaps(wf, params, at_home)
    # sweepers and sprinklers
    pr = W.pairs(wf, cp, params, windows_only=False)
    rows = W.planned_rows(cp, [d])
    j = W.judge(rows, pr, gp, cp, params, utc_offset_min, verdicts.alert_below_pct, verdicts.grace_s,
                verdicts.in_progress_s, home, sorted_pairs=True)
    if as_of_ms is not None and rows["seg"].size:
        _, we = cp.plan_windows.bounds_ms(cp.seg_plan[rows["seg"]], rows["occ"], utc_offset_min)
        j["verdict"][np.isin(j["verdict"], ("missed", "unverified")) & (we > as_of_ms)] = "pending"
    strict = W.passes(W.select(pr, pr["occ"] >= 0), cp, params, presorted=True)
    segments = _segment_table(cp, rows, j, strict, utc_offset_min)
    vehicles = _vehicle_table(cp, wf, names, strict, d)
    hexes = _hex_table(cp, rows, j, params)
    # refuse collection
    fpos = {f.id: i for i, f in enumerate(fence_list)}
    sp = C.SchedulePlaces.of(cp, fence_list, fpos)
    ev = C.events(wf.veh, wf.ts_ms, wf.speed_kmh, lifting, wf.minute, wf.day, hits[0], hits[1], cp, sp, params)
    prow = C.planned_points(cp, sp, [d])
    cj = C.judge(prow, ev, cp, sp, utc_offset_min, params, gp=gp, home=home, grace_s=verdicts.grace_s,
                 in_progress_s=verdicts.in_progress_s, visit_min_s=verdicts.visit_min_s)
    if as_of_ms is not None and cj["verdict"].size:
        open_ = np.isin(cj["verdict"], ("missed", "unverified")) & (cj["window_end_ms"] > as_of_ms)
        cj["verdict"][open_] = "pending"
    points = _point_table(cp, sp, cj)
    geometry = {s.id: s.coordinates for w in p.work_plans for s in w.segments}
    pll = {pid: (float(sp.point_lonlat[i, 0]), float(sp.point_lonlat[i, 1]))
           for i, pid in enumerate(pt for c in p.collection_schedules for pt in c.points)}
    return DayReport(day, segments, points, vehicles, hexes, geometry, pll)


def _hits(wf: W.WorkFixes, cp: CompiledPlans, fences: list[Any]) -> tuple[tuple[np.ndarray, np.ndarray], list[Any]]:
    """(fix row, fence position) for fixes of plan vehicles inside the fences reports need: the schedules'
    points and facilities, and depots (where a round ends)."""
    wanted = {pid for c in cp.plans.collection_schedules for pid in (*c.points, c.facility)}
    fl = [f for f in fences if f.id in wanted or str(getattr(f.kind, "value", f.kind)) in ("depot",)]
    rows = np.flatnonzero(wf.veh >= 0)
    if not fl or rows.size == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int32)), fl
    from geofences.index import FenceIndex

    idx = FenceIndex.build(fl, 12)
    pi, fi = idx.locate(wf.lon[rows], wf.lat[rows])
    return (rows[np.asarray(pi, np.int64)], np.asarray(fi, np.int32)), fl


def _STR(*names: str) -> dict[str, type[pl.String]]:
    """Text columns typed explicitly: a day with no rows must still join and concatenate like any other."""
    return dict.fromkeys(names, pl.String)


def _segment_table(cp: CompiledPlans, rows: dict[str, np.ndarray], j: dict[str, np.ndarray],
                   ps: dict[str, np.ndarray], off: int) -> pl.DataFrame:
    seg, occ = rows["seg"], rows["occ"]
    plan = cp.seg_plan[seg]
    wps = cp.plans.work_plans
    segs = {s.id: (s, w) for w in wps for s in w.segments}
    ws, we = cp.plan_windows.bounds_ms(plan, occ, off) if seg.size else (np.zeros(0, np.int64),) * 2
    # first and last pass of each row
    key_r = seg.astype(np.int64) * (1 << 40) + occ
    key_p = ps["seg"].astype(np.int64) * (1 << 40) + ps["occ"]
    first = pl.DataFrame({"k": key_p, "t0": ps["t0"], "t1": ps["t1"]}).group_by("k").agg(
        pl.col("t0").min(), pl.col("t1").max(), pl.len().alias("passes_seen"))
    base = pl.DataFrame({
        "segment_id": [cp.seg_ids[g] for g in seg.tolist()],
        "window": [cp.plan_windows.label(int(p), int(o)) for p, o in zip(plan.tolist(), occ.tolist(), strict=True)],
        "plan_id": [wps[p].id for p in plan.tolist()],
        "vehicle_id": [wps[p].vehicle_id for p in plan.tolist()],
        "vehicle_kind": [wps[p].vehicle_kind for p in plan.tolist()],
        "company": [wps[p].company for p in plan.tolist()],
        "district": [segs[cp.seg_ids[g]][0].district or wps[p].district for g, p in zip(seg.tolist(), plan.tolist(),
                                                                                       strict=True)],
        "road_name": [segs[cp.seg_ids[g]][0].road_name for g in seg.tolist()],
        "grade": cp.seg_grade[seg].astype(np.int32),
        "window_start_ms": ws, "window_end_ms": we,
        "length_m": np.round(j["length_m"], 1), "required": j["required"].astype(np.int32),
        "passes_done": j["passes_done"].astype(np.int32),
        "covered_m": np.round(j["covered_m"], 1), "covered_pass_m": np.round(j["covered_pass_m"], 1),
        "complete_m": np.round(j["complete_m"], 1), "coverage_pct": np.round(j["coverage_pct"], 2),
        "status": [str(x) for x in j["status"]], "verdict": [str(x) for x in j["verdict"]],
        "late_pct": np.round(j["late_pct"], 2), "gap_s": np.round(j["gap_s"], 1),
        "gap_may_hide": j["gap_may_hide"].astype(bool),
        "k": key_r,
    }, schema_overrides={"late_pct": pl.Float64, **_STR(
        "segment_id", "window", "plan_id", "vehicle_id", "vehicle_kind", "company", "district", "road_name",
        "status", "verdict")})
    out = base.join(first, on="k", how="left").drop("k").rename({"t0": "first_pass_ms", "t1": "last_pass_ms"})
    return out.with_columns(pl.col("passes_seen").fill_null(0))


def _vehicle_table(cp: CompiledPlans, wf: W.WorkFixes, names: list[str], ps: dict[str, np.ndarray], d: int
                   ) -> pl.DataFrame:
    """Per plan vehicle: valid working km (Σ of its passes on its segments in its windows) and km driven with
    the device on (any road, any speed) on the day."""
    wps = cp.plans.work_plans
    if not wps:
        return pl.DataFrame(schema={"vehicle_id": pl.String, "vehicle_kind": pl.String, "company": pl.String,
                                    "district": pl.String, "valid_work_km": pl.Float64, "device_on_km": pl.Float64})
    day_ok = (ps["occ"] // 16) == d
    work = pl.DataFrame({"vkey": ps["vkey"][day_ok], "m": (ps["hi"] - ps["lo"])[day_ok]}).group_by("vkey").agg(
        (pl.col("m").sum() / 1000).alias("valid_work_km"))
    same = np.r_[False, wf.vkey[1:] == wf.vkey[:-1]]
    on = np.flatnonzero(same & np.r_[False, wf.device[:-1] == 1] & (wf.speed_kmh > 3.0) & (wf.day == d))
    x, y = cp.to_xy(wf.lon[np.r_[on - 1, on]], wf.lat[np.r_[on - 1, on]])  # only the device-on steps
    step = np.hypot(x[on.size:] - x[:on.size], y[on.size:] - y[:on.size])
    dev = pl.DataFrame({"vkey": wf.vkey[on], "m": step}).group_by("vkey").agg(
        (pl.col("m").sum() / 1000).alias("device_on_km"))
    keys = pl.DataFrame({"vkey": np.arange(len(names), dtype=np.int32), "vehicle_id": names},
                        schema={"vkey": pl.Int32, "vehicle_id": pl.String})
    per = keys.join(work, on="vkey", how="left").join(dev, on="vkey", how="left").drop("vkey")
    meta = pl.DataFrame({"vehicle_id": [w.vehicle_id for w in wps], "vehicle_kind": [w.vehicle_kind for w in wps],
                         "company": [w.company for w in wps], "district": [w.district for w in wps]}).unique(
        "vehicle_id", keep="first", maintain_order=True)
    return meta.join(per, on="vehicle_id", how="left").with_columns(
        pl.col("valid_work_km").fill_null(0.0).round(3), pl.col("device_on_km").fill_null(0.0).round(3))


def _hex_table(cp: CompiledPlans, rows: dict[str, np.ndarray], j: dict[str, np.ndarray], params: CoverageParams
               ) -> pl.DataFrame:
    """Planned and covered pass-metres per H3 cell (`display_h3_res`), from the bins' positions."""
    from geofences.h3util import cells_at
    from geofences.local import to_lonlat

    n = rows["seg"].shape[0]
    if n == 0:
        return pl.DataFrame(schema={"h3": pl.UInt64, "company": pl.String, "planned_m": pl.Float64,
                                    "covered_m": pl.Float64})
    nb = j["nbins"]
    r = np.repeat(np.arange(n), nb)
    b = np.arange(r.size) - np.repeat(np.cumsum(nb) - nb, nb)
    seg = rows["seg"][r]
    L = cp.seg_len_m[seg]
    w = np.minimum(cp.bin_m, L - b * cp.bin_m)
    req = cp.seg_req[seg]
    cnt = j["counts"]
    # H3 cells of the display resolution are tens of metres wide: locate every 4th bin's centre and let the
    # bins in between share its cell (one cell lookup per 20 m instead of per 5 m)
    step = 4
    anchor = b - b % step
    s = np.minimum((anchor + 0.5) * cp.bin_m, L)
    # piece of each anchor bin: pieces are stored per segment in order of s0
    pc = cp.piece
    first_of = np.flatnonzero(b % step == 0)
    a_seg, a_s = seg[first_of], s[first_of]
    key_piece = pc["seg"].astype(np.float64) * 1e7 + pc["s0"]
    k = np.clip(np.searchsorted(key_piece, a_seg * 1e7 + a_s, "right") - 1, 0, pc["seg"].size - 1)
    t = np.clip((a_s - pc["s0"][k]) / pc["len"][k], 0.0, 1.0)
    x, y = pc["x0"][k] + t * pc["dx"][k], pc["y0"][k] + t * pc["dy"][k]
    lon, lat = to_lonlat(x, y, cp.origin)
    cells = cells_at(lon, lat, params.display_h3_res)[np.cumsum(b % step == 0) - 1]
    companies = sorted({w_.company for w_ in cp.plans.work_plans})
    code = {c: i for i, c in enumerate(companies)}
    comp = np.array([code[w_.company] for w_ in cp.plans.work_plans], np.int32)
    df = pl.DataFrame({"h3": cells, "c": comp[cp.seg_plan[seg]], "planned_m": w * req,
                       "covered_m": w * np.minimum(cnt, req)})
    agg = df.group_by("h3", "c").agg(pl.col("planned_m").sum(), pl.col("covered_m").sum())
    return agg.with_columns(pl.col("c").replace_strict(list(range(len(companies))), companies,
                                                       return_dtype=pl.String).alias("company")).select(
        "h3", "company", "planned_m", "covered_m").sort("h3", "company")


def _point_table(cp: CompiledPlans, sp: C.SchedulePlaces, cj: dict[str, np.ndarray]) -> pl.DataFrame:
    css = cp.plans.collection_schedules
    pts = [pid for c in css for pid in c.points]
    s = cj["sched"].tolist()
    return pl.DataFrame({
        "schedule_id": [css[i].id for i in s], "vehicle_id": [css[i].vehicle_id for i in s],
        "company": [css[i].company for i in s], "district": [css[i].district for i in s],
        "window": [cp.sched_windows.label(i, int(o)) for i, o in zip(s, cj["occ"].tolist(), strict=True)],
        "point_id": [pts[k] for k in cj["point"].tolist()],
        "point_order": (sp.point_order[cj["point"]] + 1).astype(np.int32),
        "facility": [css[i].facility for i in s],
        "window_start_ms": cj["window_start_ms"], "window_end_ms": cj["window_end_ms"],
        "visited": cj["visited"], "first_visit_ms": cj["first_visit_ms"], "dwell_s": np.round(cj["dwell_s"], 1),
        "lift": cj["lift"], "late_visit_ms": cj["late_visit_ms"], "verdict": [str(x) for x in cj["verdict"]],
        "arrival_ms": cj["arrival_ms"],
    }, schema_overrides={"window_start_ms": pl.Int64, "window_end_ms": pl.Int64, "first_visit_ms": pl.Int64,
                         "late_visit_ms": pl.Int64, "arrival_ms": pl.Int64, **_STR(
                             "schedule_id", "vehicle_id", "company", "district", "window", "point_id", "facility",
                             "verdict")})
