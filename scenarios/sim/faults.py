"""Terminal and network faults applied to the true reports, vectorised over the whole fleet.

Order matters and mirrors reality: the terminal's clock stamps the fix (skew), the receiver measures it
(Gaussian noise, multipath jumps, invalid fixes), the link loses it (GPS gaps that are never recovered) or
delays it (connectivity outages later back-filled in bulk, out-of-order delivery, duplicates). The output
is sorted by `received_ts_ms`: the order in which a server would see the fixes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scenarios.sim.config import ScenarioConfig


@dataclass(eq=False)
class Reports:
    """Parallel arrays of reports (one row per fix). `t_true_ms` is the true UTC time of the fix."""

    vehicle: np.ndarray  # int32 vehicle index
    t_true_ms: np.ndarray
    x: np.ndarray
    y: np.ndarray
    speed_kmh: np.ndarray
    heading_deg: np.ndarray
    acc: np.ndarray  # bool: ignition on
    sensors: dict[str, np.ndarray]  # int64 values; -1 = not reported
    ts_ms: np.ndarray | None = None
    received_ts_ms: np.ndarray | None = None
    valid: np.ndarray | None = None
    backfill: np.ndarray | None = None
    zero: np.ndarray | None = None  # invalid fix reported at (0, 0)

    def take(self, idx: np.ndarray) -> Reports:
        def t(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]
        return Reports(vehicle=self.vehicle[idx], t_true_ms=self.t_true_ms[idx], x=self.x[idx], y=self.y[idx],
                       speed_kmh=self.speed_kmh[idx], heading_deg=self.heading_deg[idx], acc=self.acc[idx],
                       sensors={k: v[idx] for k, v in self.sensors.items()}, ts_ms=t(self.ts_ms),
                       received_ts_ms=t(self.received_ts_ms), valid=t(self.valid), backfill=t(self.backfill),
                       zero=t(self.zero))


def _intervals_hit(vehicle: np.ndarray, t_ms: np.ndarray, iv_vehicle: np.ndarray, iv_a: np.ndarray,
                   iv_b: np.ndarray) -> np.ndarray:
    """Index of the interval (same vehicle, a ≤ t < b) each report falls in, or -1. Intervals of one vehicle
    must not overlap."""
    out = np.full(t_ms.size, -1, np.int64)
    if iv_a.size == 0:
        return out
    order = np.lexsort((iv_a, iv_vehicle))
    iv_vehicle, iv_a, iv_b = iv_vehicle[order], iv_a[order], iv_b[order]
    key_iv = iv_vehicle.astype(np.int64) * (1 << 42) + iv_a
    key = vehicle.astype(np.int64) * (1 << 42) + t_ms
    i = np.searchsorted(key_iv, key, side="right") - 1
    ok = i >= 0
    ic = np.clip(i, 0, None)
    ok &= (iv_vehicle[ic] == vehicle) & (t_ms < iv_b[ic])
    out[ok] = order[ic[ok]]
    return out


def apply_faults(r: Reports, cfg: ScenarioConfig, rng: np.random.Generator, n_vehicles: int,
                 protected: list[tuple[int, int, int]]) -> tuple[Reports, list[dict[str, float]]]:
    """Apply every fault; `protected` (vehicle, a_ms, b_ms) intervals get no unrecovered GPS gap (a gap there
    would erase the evidence of a labelled episode). Returns the faulty reports and a log of outages/gaps."""
    f, rep = cfg.faults, cfg.reporting
    n = r.t_true_ms.size
    log: list[dict[str, float]] = []
    # clock skew per terminal
    skew = np.where(rng.random(n_vehicles) < f.skew_vehicle_prob,
                    rng.uniform(f.skew_s[0], f.skew_s[1], n_vehicles), 0.0)
    ts = r.t_true_ms + np.round(skew[r.vehicle] * 1000).astype(np.int64)
    # receiver: noise, multipath jumps, invalid fixes
    x = r.x + rng.normal(0.0, cfg.noise_m, n)
    y = r.y + rng.normal(0.0, cfg.noise_m, n)
    jump = rng.random(n) < f.jump_prob
    ang = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(f.jump_m[0], f.jump_m[1], n)
    x = np.where(jump, x + dist * np.cos(ang), x)
    y = np.where(jump, y + dist * np.sin(ang), y)
    invalid = rng.random(n) < f.invalid_prob
    zero = invalid & (rng.random(n) < 0.5)
    speed = np.clip(r.speed_kmh + rng.normal(0.0, rep.speed_noise_kmh, n) * (r.speed_kmh > 0.5), 0.0, None)
    out = Reports(vehicle=r.vehicle, t_true_ms=r.t_true_ms, x=x, y=y, speed_kmh=speed, heading_deg=r.heading_deg,
                  acc=r.acc, sensors=r.sensors, ts_ms=ts, valid=~invalid, zero=zero,
                  backfill=np.zeros(n, bool))
    # unrecovered GPS gaps shorter than the signal-loss threshold (near misses), away from protected spans
    t0, t1 = cfg.start_ms, cfg.end_ms
    gap_v = np.flatnonzero(rng.random(n_vehicles) < f.short_gap_prob * max(cfg.hours, 1.0))
    prot = {}
    for v, a, b in protected:
        prot.setdefault(v, []).append((a, b))
    gv, ga, gb = [], [], []
    for v in gap_v:
        d = int(rng.uniform(*f.short_gap_s) * 1000)
        a = int(rng.integers(t0, max(t0 + 1, t1 - d)))
        if any(a < pb + 120_000 and a + d > pa - 120_000 for pa, pb in prot.get(int(v), [])):
            continue
        gv.append(v)
        ga.append(a)
        gb.append(a + d)
        log.append({"what": "gps_gap", "vehicle": int(v), "a_ms": a, "b_ms": a + d})
    hit = _intervals_hit(out.vehicle, out.t_true_ms, np.array(gv, np.int32), np.array(ga, np.int64),
                         np.array(gb, np.int64))
    out = out.take(np.flatnonzero(hit < 0))
    n = out.t_true_ms.size
    # delivery: connectivity outages back-filled in bulk (drawn per vehicle first, so that which fixes a
    # protected span kept does not move every other vehicle's outage), latency, out-of-order, duplicates
    drop_v = np.flatnonzero(rng.random(n_vehicles) < cfg.dropout * cfg.hours)
    dv, da, db, dd = [], [], [], []
    for v in drop_v:
        d = int(rng.uniform(*f.dropout_s) * 1000)
        a = int(rng.integers(t0, max(t0 + 1, t1 - d)))
        dv.append(v)
        da.append(a)
        db.append(a + d)
        dd.append(int(rng.uniform(*f.backfill_delay_s) * 1000))
        log.append({"what": "outage_backfilled", "vehicle": int(v), "a_ms": a, "b_ms": a + d})
    recv = out.t_true_ms + np.round(rng.uniform(rep.latency_s[0], rep.latency_s[1], n) * 1000).astype(np.int64)
    hit = _intervals_hit(out.vehicle, out.t_true_ms, np.array(dv, np.int32), np.array(da, np.int64),
                         np.array(db, np.int64))
    inb = hit >= 0
    if inb.any():
        hb = hit[inb]
        recv[inb] = np.array(db, np.int64)[hb] + np.array(dd, np.int64)[hb]
        out.backfill = inb
    ooo = (~inb) & (rng.random(n) < f.out_of_order_prob)
    recv[ooo] += np.round(rng.uniform(*f.out_of_order_delay_s, int(ooo.sum())) * 1000).astype(np.int64)
    out.received_ts_ms = recv
    dup = np.flatnonzero(rng.random(n) < f.duplicate_prob)
    if dup.size:
        idx = np.concatenate([np.arange(n), dup])
        extra = np.concatenate([np.zeros(n, np.int64),
                                np.round(rng.uniform(1.0, 30.0, dup.size) * 1000).astype(np.int64)])
        out = out.take(idx)
        assert out.received_ts_ms is not None
        out.received_ts_ms = out.received_ts_ms + extra
    assert out.received_ts_ms is not None and out.ts_ms is not None
    order = np.lexsort((out.ts_ms, out.vehicle, out.received_ts_ms))
    return out.take(order), log
