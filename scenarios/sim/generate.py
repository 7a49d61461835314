"""`generate(scenario) -> SimResult`: the simulated city, every vehicle's day, faults and the ground truth.

Determinism: the city comes from `default_rng([seed, …])`, each vehicle from its own generator seeded by
(seed, vehicle index), and the faults from one more; nothing iterates over a set or reads the clock, so the
same scenario gives byte-identical outputs and vehicles do not change when another vehicle's behaviour does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from scenarios.city import City, Plans, fence_features
from scenarios.sim import behaviour as B
from scenarios.sim.config import ScenarioConfig
from scenarios.sim.faults import Reports, apply_faults
from scenarios.sim.timeline import SENSORS, Timeline
from scenarios.sim.violations import Injector
from tracker.fix import FIX_SCHEMA
from tracker.reference import DeliveryOrder, Permit, Vehicle


@dataclass(eq=False)
class SimResult:
    """Everything a scenario produces. `fixes` are in delivery order (as a server receives them)."""

    config: ScenarioConfig
    city: City
    fixes: pl.DataFrame  # FIX_SCHEMA, sorted by received_ts_ms
    vehicles: list[Vehicle]
    fences: list[dict[str, Any]]  # GeoJSON features (geofences format)
    permits: list[Permit]
    orders: list[DeliveryOrder]
    plans: Plans
    truth: pl.DataFrame  # TRUTH_SCHEMA: kind, vehicle_id, start_ts_ms, end_ts_ms, place_id, lon, lat, notes
    near_misses: pl.DataFrame  # same schema: deliberate compliant look-alikes (never to be alerted)
    unscored: pl.DataFrame  # same schema: acts just under a threshold, within measuring error (not scored)
    timelines: dict[str, Timeline] = field(repr=False, default_factory=dict)
    fault_log: list[dict[str, float]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def start_ts_ms(self) -> int:
        return self.config.start_ms

    @property
    def end_ts_ms(self) -> int:
        return self.config.end_ms

    @property
    def fence_collection(self) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": self.fences}


def _vehicle_rng(seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0x5EED, i])


def simulate_vehicle(city: City, i: int, v: Vehicle, inj: Injector) -> tuple[Timeline, list[dict[str, Any]]]:
    cfg = city.cfg
    ctx = B.Ctx(city=city, vehicle=v, rng=_vehicle_rng(city.seed, i), t_begin_s=-cfg.warmup_s,
                t_end_s=cfg.hours * 3600.0 + 60.0)
    inj.run(ctx)
    assert ctx.tl is not None
    return ctx.tl, ctx.events


def _sensor_array(values: np.ndarray, present: np.ndarray, dtype: pa.DataType) -> pa.Array:
    if dtype == pa.bool_():
        return pa.array(values.astype(bool), type=dtype, mask=~present)
    return pa.array(values.astype(np.int8), type=dtype, mask=~present)


def generate(scenario: ScenarioConfig) -> SimResult:
    """Simulate the scenario: city, vehicles, violations with ground truth, faults. Pure and deterministic."""
    t_start = time.perf_counter()
    cfg = scenario
    city = City.build(cfg)
    inj = Injector(city)
    inj.assign()
    rep = cfg.reporting
    t0_ms = cfg.start_ms
    end_s = cfg.hours * 3600.0
    timelines: dict[str, Timeline] = {}
    parts: list[dict[str, np.ndarray]] = []
    for i, v in enumerate(city.vehicles):
        tl, events = simulate_vehicle(city, i, v, inj)
        timelines[v.id] = tl
        vrng = _vehicle_rng(cfg.seed, 10_000 + i)
        parked_s = float(vrng.choice(np.asarray(rep.parked_interval_s)))
        phase = float(vrng.uniform(0, rep.moving_interval_s))
        t = tl.report_times(0.0, end_s, rep.moving_interval_s, parked_s, rep.parked_after_s, phase, v.sensors)
        t = inj.remove_gaps(v.id, t)
        x, y, vms, hd = tl.true_at(t)
        part: dict[str, np.ndarray] = {"vehicle": np.full(t.size, i, np.int32),
                                       "t_true_ms": t0_ms + np.round(t * 1000).astype(np.int64),
                                       "x": x, "y": y, "speed_kmh": vms * 3.6, "heading_deg": hd}
        for s in SENSORS:
            part[s] = tl.state_at(s, t, -1) if s in v.sensors else np.full(t.size, -1, np.int64)
        part["acc"] = tl.state_at("acc", t, 1).astype(bool) & (vms >= 0)
        parts.append(part)
        inj.collect(v, tl, events)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    reports = Reports(vehicle=cat["vehicle"], t_true_ms=cat["t_true_ms"], x=cat["x"], y=cat["y"],
                      speed_kmh=cat["speed_kmh"], heading_deg=cat["heading_deg"], acc=cat["acc"],
                      sensors={s: cat[s] for s in SENSORS})
    truth, near, unscored = inj.truth_frames()
    protected = inj.protected_intervals()
    faulty, log = apply_faults(reports, cfg, np.random.default_rng([cfg.seed, 0xFA17]), len(city.vehicles),
                               protected)
    fixes = _to_frame(faulty, city)
    permits = inj.final_permits()
    fences = fence_features(city)
    return SimResult(config=cfg, city=city, fixes=fixes, vehicles=list(city.vehicles), fences=fences,
                     permits=permits, orders=list(city.orders), plans=city.plans, truth=truth, near_misses=near, unscored=unscored,
                     timelines=timelines, fault_log=log, elapsed_s=time.perf_counter() - t_start)


def _to_frame(r: Reports, city: City) -> pl.DataFrame:
    assert r.ts_ms is not None and r.received_ts_ms is not None and r.valid is not None
    assert r.backfill is not None and r.zero is not None
    lon, lat = city.net.frame.to_lonlat(r.x, r.y)
    lon = np.where(r.zero, 0.0, np.round(lon, 7))
    lat = np.where(r.zero, 0.0, np.round(lat, 7))
    ids = np.array([v.id for v in city.vehicles], dtype=object)
    load = r.sensors["load"]
    status = (r.acc.astype(np.uint32) | (r.valid.astype(np.uint32) << 1)
              | (np.where(load > 0, load, 0).astype(np.uint32) << 8))
    cols: dict[str, pa.Array] = {
        "vehicle_id": pa.array(ids[r.vehicle].tolist(), pa.string()),
        "ts_ms": pa.array(r.ts_ms, pa.int64()),
        "lon": pa.array(lon, pa.float64()),
        "lat": pa.array(lat, pa.float64()),
        "speed_kmh": pa.array(np.round(r.speed_kmh, 1).astype(np.float32), pa.float32()),
        "heading_deg": pa.array(np.round(r.heading_deg, 1).astype(np.float32), pa.float32()),
        "valid": pa.array(r.valid, pa.bool_()),
        "alarm": pa.array(np.zeros(r.ts_ms.size, np.uint32), pa.uint32()),
        "status": pa.array(status, pa.uint32()),
    }
    for s in SENSORS:
        vals = r.sensors[s]
        present = vals >= 0
        dtype = pa.int8() if s in ("load", "drum") else pa.bool_()
        cols[s] = _sensor_array(np.where(present, vals, 0), present, dtype)
    cols["backfill"] = pa.array(r.backfill, pa.bool_())
    cols["source"] = pa.array(np.where(r.backfill, "sim-backfill", "sim").tolist(), pa.string())
    cols["received_ts_ms"] = pa.array(r.received_ts_ms, pa.int64())
    df = pl.from_arrow(pa.table(cols))
    assert isinstance(df, pl.DataFrame)
    return df.cast(FIX_SCHEMA)  # type: ignore[arg-type]
