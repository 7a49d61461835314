"""The naive per-fix coverage computation: the definition written out, one fix at a time, in Python.

It exists for two reasons: the benchmark's baseline (what the vectorised engine is measured against), and
an oracle for tests on simple geometry (straight and gently bent segments, no fold-backs, no multipath):
on such tracks it must agree with `tracker.coverage.work` to within a bin or two. It places a pass's ends
as the engine does (the furthest of the fixes and of their dead reckoning, `kernels._settle`), but knows none
of the engine's refinements (fold-back candidates, jump hold-back, gap bridging, speed-spike smoothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from tracker.coverage.kernels import DR_FIXES, DR_STEP_MS  # where a pass's ends are reckoned, as the engine
from tracker.coverage.params import CoverageParams
from tracker.coverage.plans import Plans, as_plans
from tracker.reference import parse_window


def _in_window(minute: int, windows: list[str]) -> int:
    for j, w in enumerate(windows):
        a, b = parse_window(w)
        b = b if b <= 1440 else 1440
        if (a < b and a <= minute < b) or (a > b and (minute >= a or minute < b)):
            return j
    return -1


def coverage_pct(fixes: list[dict[str, Any]], plans: Plans | Any, day: int, utc_offset_min: int,
                 params: CoverageParams | None = None) -> dict[tuple[str, int], float]:
    """Coverage % per (segment id, window index) on local epoch day `day`, from fixes given as dicts with
    vehicle_id, ts_ms, lon, lat, speed_kmh, device_on (None = not reported)."""
    from geofences.local import to_xy_m

    params = params or CoverageParams()
    p = as_plans(plans)
    allc = np.concatenate([np.asarray(s.coordinates) for w in p.work_plans for s in w.segments])
    origin = (float(allc[:, 0].mean()), float(allc[:, 1].mean()))
    lines = {}
    for w in p.work_plans:
        for s in w.segments:
            c = np.asarray(s.coordinates)
            x, y = to_xy_m(c[:, 0], c[:, 1], origin)
            lines[s.id] = (shapely.LineString(np.column_stack([x, y])), s, w)
    by_vehicle: dict[str, list[tuple[str, Any, Any]]] = {}
    for sid, (line, s, w) in lines.items():
        by_vehicle.setdefault(w.vehicle_id, []).append((sid, line, s, w))
    counts = {(sid, j): np.zeros(int(np.ceil(line.length / params.bin_m)) or 1, np.int32)
              for sid, (line, s, w) in lines.items() for j in range(len(w.windows))}
    last: dict[tuple[str, str], tuple[int, float, int, float, float, int]] = {}  # per (vehicle, segment)
    for f in sorted(fixes, key=lambda r: (r["vehicle_id"], r["ts_ms"])):
        segs = by_vehicle.get(f["vehicle_id"], [])
        if not segs:
            continue
        local_ms = f["ts_ms"] + utc_offset_min * 60_000
        if local_ms // 86_400_000 != day:
            continue
        minute = int(local_ms // 60_000 % 1440)
        x, y = to_xy_m(np.array([f["lon"]]), np.array([f["lat"]]), origin)
        pt = shapely.Point(float(x[0]), float(y[0]))
        for sid, line, s, w in segs:
            j = _in_window(minute, w.windows)
            key = (f["vehicle_id"], sid)
            working = (j >= 0 and line.distance(pt) <= params.corridor_m(s.half_width_m)
                       and (f.get("device_on") is not False or not w.device_on)
                       and f["speed_kmh"] <= w.speed_max_kmh + params.band_tolerance_kmh)
            if not working:
                if key in last:
                    _close(last.pop(key), counts, sid, line.length, params)
                continue
            sm = float(line.project(pt))
            prev = last.get(key)
            if prev is not None and (prev[5] != j or f["ts_ms"] - prev[0] > params.max_step_s * 1000):
                _close(last.pop(key), counts, sid, line.length, params)
                prev = None
            v = f["speed_kmh"] / 3.6
            if prev is None:
                # last t, measure, direction, pass start, extreme, window; dead reckoning (see `_close`): last
                # speed, distance driven, (measure, distance) of the first and the last fixes, turned
                last[key] = (f["ts_ms"], sm, 0, sm, sm, j, v, 0.0, [(sm, 0.0)], [(sm, 0.0)], False)
                continue
            t_prev, _, d, start, ext, _, v_prev, dist, first, lastq, turned = prev
            dist += 0.5 * (v_prev + v) * (f["ts_ms"] - t_prev) / 1000.0
            long_step = f["ts_ms"] - t_prev > DR_STEP_S * 1000
            if long_step:
                first = first + [None] if first[-1] is not None else first  # closed: reckoned from those before
                lastq = []
            if d == 0:
                lo, hi = min(start, ext, sm), max(start, ext, sm)
                if abs(sm - start) >= params.reverse_min_m:
                    d = 1 if sm > start else -1
                    start, ext = (lo, sm) if d == 1 else (hi, sm)
                else:
                    start, ext = lo, hi  # no direction yet: the span seen so far
            elif (sm - ext) * d >= 0:
                ext = sm
            elif (ext - sm) * d >= params.reverse_min_m:  # turned round: this pass ends at its extreme
                _close((0, 0.0, d, start, ext, j, 0.0, dist, first, [], turned), counts, sid, line.length, params)
                start, ext, d = ext, sm, -d
                turned, first, lastq = True, [None], []
            if first[-1] is not None and len(first) < DR_FIXES:
                first = first + [(sm, dist)]
            lastq = (lastq + [(sm, dist)])[-DR_FIXES:]
            last[key] = (f["ts_ms"], sm, d, start, ext, j, v, dist, first, lastq, turned)
    for (vid, sid), st in list(last.items()):
        _close(st, counts, sid, lines[sid][0].length, params)
    out = {}
    for (sid, j), c in counts.items():
        s = lines[sid][1]
        L = lines[sid][0].length
        w = np.minimum(params.bin_m, L - np.arange(c.size) * params.bin_m)
        out[(sid, j)] = 100.0 * float((np.minimum(c, s.passes) * w).sum()) / (s.passes * L)
    return out


DR_STEP_S = DR_STEP_MS / 1000.0


def _close(st: tuple, counts: dict, sid: str, length: float, params: CoverageParams) -> None:
    _, _, d, start, ext, j, _, dist, first, lastq, turned = st
    if d != 0:  # the ends reached by dead reckoning too (the engine's `kernels._settle`)
        fs = [e for e in first if e is not None]
        if not turned and fs:
            a = float(np.median([z - d * x for z, x in fs]))
            if (start - a) * d > 0 and (ext - a) * d > 0:
                start = a
        if lastq:
            b = float(np.median([z - d * x for z, x in lastq])) + d * dist
            if (b - ext) * d > 0 and (b - start) * d > 0:
                ext = b
    lo, hi = max(min(start, ext), 0.0), min(max(start, ext), length)
    if lo <= params.end_snap_m:
        lo = 0.0
    if hi >= length - params.end_snap_m:
        hi = length
    if hi <= lo:
        return
    c = counts[(sid, j)]
    b0 = max(int(np.ceil(lo / params.bin_m - 0.5)), 0)
    b1 = min(int(np.floor(hi / params.bin_m - 0.5)), c.size - 1)
    c[b0:b1 + 1] += 1
