"""Small hand-made worlds for the coverage tests: straight and folded segments in metres around a point in
Futian, tracks driven along them at a given speed with a device state, GPS noise optional."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from geofences.local import to_lonlat
from tracker.coverage.plans import CollectionSchedule, PlanSegment, Plans, WorkPlan

ORIGIN = (114.05, 22.54)
DAY = date(2024, 5, 14)
OFFSET = 480
DAY_MS = (DAY - date(1970, 1, 1)).days * 86_400_000 - OFFSET * 60_000  # local midnight, UTC ms


def at(hhmm: str, seconds: float = 0.0) -> int:
    h, m = (int(x) for x in hhmm.split(":"))
    return DAY_MS + (h * 3600 + m * 60) * 1000 + int(seconds * 1000)


def lonlat(xy: np.ndarray) -> list[list[float]]:
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], ORIGIN)
    return np.column_stack([lon, lat]).round(7).tolist()


def straight(length_m: float = 400.0, y: float = 0.0) -> np.ndarray:
    return np.array([[0.0, y], [length_m / 2, y], [length_m, y]])


def folded(out_m: float = 200.0, gap_m: float = 7.0) -> np.ndarray:
    """Out along one carriageway, a U-turn, back along the other `gap_m` away (an out-and-back segment)."""
    return np.array([[0.0, 0.0], [out_m, 0.0], [out_m + 3, gap_m / 2], [out_m, gap_m], [0.0, gap_m]])


def work_plan(vehicle: str, lines: list[np.ndarray], passes: list[int] | None = None, kind: str = "sweeper",
              windows: tuple[str, ...] = ("05:00-06:00",), vmax: float = 8.0, company: str = "c1",
              district: str = "d1") -> WorkPlan:
    segs = [PlanSegment(id=f"{vehicle}-s{i + 1}", road_name=f"road {i + 1}", grade=2,
                        passes=(passes or [1] * len(lines))[i], half_width_m=25.0, coordinates=lonlat(ln))
            for i, ln in enumerate(lines)]
    return WorkPlan(id=f"WP-{vehicle}", vehicle_id=vehicle, vehicle_kind=kind, company=company, district=district,
                    segments=segs, windows=list(windows), speed_min_kmh=3.0, speed_max_kmh=vmax,
                    banned_windows=["07:00-10:00"])


def drive(path: np.ndarray, t0_ms: int, speed_kmh: float, interval_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (x, y) and times along a polyline at constant speed, one fix per interval (first and last)."""
    seg = np.hypot(*np.diff(path, axis=0).T)
    cum = np.r_[0.0, np.cumsum(seg)]
    dur = cum[-1] / (speed_kmh / 3.6)
    t = np.r_[np.arange(0.0, dur, interval_s), dur]
    s = t * speed_kmh / 3.6
    x, y = np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])
    return np.column_stack([x, y]), t0_ms + (t * 1000).astype(np.int64)


def fixes(vehicle: str, xy: np.ndarray, ts: np.ndarray, speed_kmh: float | np.ndarray, device: bool | None = True,
          noise_m: float = 0.0, seed: int = 0, lifting: bool | None = None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    xy = xy + rng.normal(0.0, noise_m, xy.shape) if noise_m else xy
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], ORIGIN)
    n = ts.size
    return pl.DataFrame({"vehicle_id": [vehicle] * n, "ts_ms": ts, "lon": lon, "lat": lat,
                         "speed_kmh": np.broadcast_to(np.asarray(speed_kmh, float), (n,)).copy(),
                         "valid": np.ones(n, bool), "device_on": [device] * n, "lifting": [lifting] * n},
                        schema_overrides={"device_on": pl.Boolean, "lifting": pl.Boolean})


def parked(vehicle: str, x: float, y: float, t0_ms: int, t1_ms: int, interval_s: float = 30.0,
           device: bool | None = False, lifting: bool | None = None) -> pl.DataFrame:
    ts = np.arange(t0_ms, t1_ms, int(interval_s * 1000), dtype=np.int64)
    return fixes(vehicle, np.tile([[x, y]], (ts.size, 1)), ts, 0.0, device, lifting=lifting)


def plans(*work: WorkPlan, schedules: list[CollectionSchedule] | None = None) -> Plans:
    return Plans(work_plans=list(work), collection_schedules=list(schedules or []))
