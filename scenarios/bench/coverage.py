"""Benchmark of the coverage computation: one day of 1,000 sanitation vehicles reporting every 10 s.

Input (built before timing, seeded): 1,000 work plans (sweepers and sprinklers, 6 segments of 250–700 m each
chained along named roads of the real Futian network, 1–2 passes, four daily windows: 05–06, 06–07,
10:00–11:30, 14:00–15:30) and 8,640 fixes per vehicle (8.64 million): parked at a depot outside the windows
(device off), in the windows driving depot → each segment (transit at 30 km/h, device off) → its passes at
working speed with the device on (alternating direction) → depot; GPS noise σ 8 m, speed noise σ 1 km/h.

Timed (`coverage.day_1000_vehicles_s`, median of 3 runs after a warm-up): `report.compute_day` — the whole
daily report: cleaning and sorting the fixes, corridor matching, passes, coverage and verdicts per
segment×window, per-vehicle working km, the H3 hexagons. One process; numba's loops are single-threaded.
`value` is the process's CPU time (all threads summed: what the computation costs on one core) because this
machine is shared — with other sessions at a load of 8–10 on 2 cores, wall time measures the neighbours;
`wall_s` reports it alongside.

Baseline: the naive per-fix implementation (`tracker.coverage.reference`: shapely distance and projection per
fix and segment, Python state per pass) on a subsample of vehicles, CPU time scaled to 1,000 vehicles.
`ratio` is baseline / value: how many times faster the vectorised engine is.
"""

from __future__ import annotations

import statistics
import time
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from scenarios.bench import Figure

DAY = date(2024, 5, 14)
UTC_OFFSET_MIN = 480
WINDOWS = ("05:00-06:00", "06:00-07:00", "10:00-11:30", "14:00-15:30")
TARGET_S = 30.0


def synthetic_day(n_vehicles: int = 1000, seed: int = 7, interval_s: float = 10.0) -> tuple[Any, pl.DataFrame]:
    """(plans, fixes) for one day of `n_vehicles` sanitation vehicles (see the module docstring)."""
    from scenarios.roads import load_roads
    from tracker.coverage.plans import PlanSegment, Plans, WorkPlan

    rng = np.random.default_rng(seed)
    net = load_roads()
    out_edges: dict[int, list[int]] = {}
    for e in range(net.n_edges):
        out_edges.setdefault(int(net.edge_u[e]), []).append(e)
    named = np.flatnonzero(np.array([bool(n) for n in net.edge_name]))
    day0 = (DAY - date(1970, 1, 1)).days * 86_400_000 - UTC_OFFSET_MIN * 60_000
    t_grid = np.arange(0.0, 86_400.0, interval_s)
    plans, cols = [], {k: [] for k in ("vid", "ts", "x", "y", "v", "dev")}
    for i in range(n_vehicles):
        kind = "sweeper" if i % 5 < 3 else "sprinkler"
        work_ms = (5.0 if kind == "sweeper" else 10.0) / 3.6
        segs, polys = [], []
        while len(segs) < 6:
            e = int(named[rng.integers(named.size)])
            chain, length = [e], float(net.edge_length_m[e])
            target = rng.uniform(250, 700)
            while length < target:
                nxt = [f for f in out_edges.get(int(net.edge_v[chain[-1]]), []) if net.edge_name[f] == net.edge_name[e]
                       and f not in chain and int(net.edge_v[f]) != int(net.edge_u[chain[-1]])]
                if not nxt:
                    break
                chain.append(nxt[0])
                length += float(net.edge_length_m[nxt[0]])
            if length < 150:
                continue
            poly = net.path_geometry(np.asarray(chain))
            polys.append(poly)
            segs.append(PlanSegment(id=f"bseg-{i:04d}-{len(segs) + 1}", road_name=net.edge_name[e], grade=3,
                                    passes=int(rng.integers(1, 3)), length_m=round(poly.length_m, 1),
                                    half_width_m=25.0, coordinates=poly.lonlat(net.frame)))
        vid = f"B{kind[:2].upper()}{i:04d}"
        plans.append(WorkPlan(id=f"WP-{vid}", vehicle_id=vid, vehicle_kind=kind, company=f"company-{i % 7}",
                              district=f"district-{i % 10}", segments=segs, windows=list(WINDOWS),
                              speed_min_kmh=3.0 if kind == "sweeper" else 5.0,
                              speed_max_kmh=8.0 if kind == "sweeper" else 15.0))
        depot = (float(polys[0].x[0] + rng.uniform(-800, 800)), float(polys[0].y[0] + rng.uniform(-800, 800)))
        wt, wx, wy, wv, wd = [0.0], [depot[0]], [depot[1]], [0.0], [0]
        for w in WINDOWS:
            a, b = (int(p[:2]) * 3600 + int(p[3:]) * 60 for p in w.split("-"))
            t = float(a + rng.uniform(0, 120))
            _leg(wt, wx, wy, wv, wd, t, depot, 0)
            for seg, poly in zip(segs, polys, strict=True):
                for k in range(seg.passes):
                    px, py = (poly.x, poly.y) if k % 2 == 0 else (poly.x[::-1], poly.y[::-1])
                    t = _drive(wt, wx, wy, wv, wd, t, [(wx[-1], wy[-1]), (px[0], py[0])], 30 / 3.6, 0)
                    t = _drive(wt, wx, wy, wv, wd, t, list(zip(px, py, strict=True)), work_ms, 1)
            t = _drive(wt, wx, wy, wv, wd, t, [(wx[-1], wy[-1]), depot], 30 / 3.6, 0)
            del b
        _leg(wt, wx, wy, wv, wd, 86_400.0, depot, 0)
        tt = np.asarray(wt)
        x, y = np.interp(t_grid, tt, wx), np.interp(t_grid, tt, wy)
        k = np.clip(np.searchsorted(tt, t_grid, side="right") - 1, 0, tt.size - 1)
        cols["vid"].append(np.full(t_grid.size, i, np.int32))
        cols["ts"].append(day0 + (t_grid * 1000).astype(np.int64) + int(rng.integers(0, 10_000)))
        cols["x"].append(x + rng.normal(0, 8.0, x.size))
        cols["y"].append(y + rng.normal(0, 8.0, y.size))
        cols["v"].append(np.clip(np.asarray(wv)[k] * 3.6 + rng.normal(0, 1.0, x.size) * (np.asarray(wv)[k] > 0), 0,
                                 None))
        cols["dev"].append(np.asarray(wd, bool)[k])
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    lon, lat = net.frame.to_lonlat(cat["x"], cat["y"])
    ids = pl.Series("vehicle_id", [p.vehicle_id for p in plans], dtype=pl.String)
    fixes = pl.DataFrame({"vehicle_id": ids.gather(cat["vid"]), "ts_ms": cat["ts"], "lon": lon, "lat": lat,
                          "speed_kmh": cat["v"], "valid": np.ones(lon.size, bool), "device_on": cat["dev"]})
    return Plans(work_plans=plans), fixes


def _leg(wt: list, wx: list, wy: list, wv: list, wd: list, t: float, at: tuple[float, float], dev: int) -> None:
    if t > wt[-1]:
        wt.append(t)
        wx.append(at[0])
        wy.append(at[1])
        wv.append(0.0)
        wd.append(dev)


def _drive(wt: list, wx: list, wy: list, wv: list, wd: list, t: float, pts: list, speed_ms: float, dev: int
           ) -> float:
    """Append a drive along `pts` at `speed_ms` from time t (device state `dev` during it); returns the end."""
    wd[-1] = dev  # the state holds from the last waypoint on
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
        d = float(np.hypot(x1 - x0, y1 - y0))
        if d < 0.5:
            continue
        t += d / speed_ms
        wt.append(t)
        wx.append(float(x1))
        wy.append(float(y1))
        wv.append(speed_ms)
        wd.append(dev)
    wd[-1] = 0
    return t


def bench_coverage(quick: bool = False) -> list[Figure]:
    from tracker.coverage import reference
    from tracker.coverage.params import CoverageParams
    from tracker.coverage.report import Verdicts, compute_day

    n = 100 if quick else 1000
    plans, fixes = synthetic_day(n)
    params, verdicts = CoverageParams(), Verdicts()
    run = lambda: compute_day(fixes, plans, [], DAY, UTC_OFFSET_MIN, params, verdicts)  # noqa: E731
    run()  # warm-up: numba caches, polars thread pools
    cpu, wall = [], []
    for _ in range(1 if quick else 3):
        c0, t0 = time.process_time(), time.perf_counter()
        run()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    scale = 1000 / n  # quick mode: scaled to 1,000 vehicles, flagged in the name
    value = statistics.median(cpu) * scale
    # naive per-fix baseline on a subsample, scaled
    sub_n = 1 if quick else 2
    sub_ids = [p.vehicle_id for p in plans.work_plans[:sub_n]]
    sub = fixes.filter(pl.col("vehicle_id").is_in(sub_ids)).to_dicts()
    c0 = time.process_time()
    reference.coverage_pct(sub, type(plans)(work_plans=plans.work_plans[:sub_n]), (DAY - date(1970, 1, 1)).days,
                           UTC_OFFSET_MIN, params)
    baseline = (time.process_time() - c0) * (1000 / sub_n)
    name = "coverage.day_1000_vehicles_s" if not quick else "coverage.day_1000_vehicles_s_quick_scaled"
    fig = Figure(name=name, value=float(value), unit="s", target=TARGET_S, baseline=float(baseline),
                 ratio=float(baseline / value) if value > 0 else None)
    fig["wall_s"] = round(statistics.median(wall) * scale, 2)  # type: ignore[typeddict-unknown-key]
    fig["fixes"] = int(fixes.height * scale)  # type: ignore[typeddict-unknown-key]
    return [fig]
