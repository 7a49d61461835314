"""Ground-truth labels measured on the true trajectory (1 s resolution), not assumed from the plan.

Each injected violation is re-measured after the fact: e.g. a deviation is the longest run of true positions
outside the corridor, kept only if it exceeds the rule's duration and distance thresholds by the scenario's
margins. An injection that turned out too weak (a detour that rejoined too soon) is recorded as a near miss
instead, so the truth never contains an episode the data cannot show. Intervals are clipped to the simulated
period: the engine never sees what happened before the first fix.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scenarios.city import City, in_windows
from scenarios.sim.behaviour import Plan
from scenarios.sim.timeline import Timeline
from tracker.reference import Permit, Vehicle


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end_exclusive) index runs of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _bridge(mask: np.ndarray, t: np.ndarray, gap_s: float, inclusive: bool = True) -> np.ndarray:
    """`mask` with its inner False dips no longer than `gap_s` (shorter, when not `inclusive`) set True."""
    m = mask.copy()
    for a, b in _runs(~mask):
        span = t[b - 1] - t[a]
        if a > 0 and b < m.size and (span <= gap_s if inclusive else span < gap_s):
            m[a:b] = True
    return m


def _longest(mask: np.ndarray, t: np.ndarray, close_gap_s: float = 0.0) -> tuple[float, float] | None:
    # bridge short dips (a brief slow-down does not end an episode)
    m = _bridge(mask, t, close_gap_s) if close_gap_s > 0 else mask
    runs = _runs(m)
    if not runs:
        return None
    a, b = max(runs, key=lambda r: t[r[1] - 1] - t[r[0]])
    return float(t[a]), float(t[b - 1])


#: a violation still under way when the simulated period ends is labelled (clipped) when at least this much of it
#: lies inside the period
CLIPPED_MIN_S = 60.0
#: how far under a duration threshold a true measure is still within the engine's measuring error (fix cadence
#: 10–30 s, a 25 s fence-exit debounce): such acts are unscored, not truth and not near misses
BORDER_S = 45.0
#: the same for a restricted-zone visit against its 30 s: one 10 s fix interval
ZONE_BORDER_S = 10.0


def label_events(city: City, v: Vehicle, tl: Timeline, events: list[dict[str, Any]], plan: Plan | None,
                 permit: Permit | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """→ (truth, near misses, unscored). Unscored: a real act whose true measure lies just under the rule's
    threshold, closer to it than the engine can measure from 10–30 s fixes with 10 m noise (a loaded trip of
    1:45 outside the window against a 2:00 threshold). Whether the engine flags it or not, it is neither a
    hit, a miss nor a false alert — `scenarios.evaluate` leaves matching detections out of the score."""
    cfg, tp = city.cfg, city.cfg.truth
    T = cfg.hours * 3600.0
    lo, hi = 0.0, T
    rows: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    unscored: list[dict[str, Any]] = []
    frame = city.net.frame
    kp = cfg.kinds[v.kind]

    def row(kind: str, a: float, b: float, place: str | None = None, xy: tuple[float, float] | None = None,
            notes: dict[str, Any] | None = None, into: list[dict[str, Any]] | None = None,
            evidence: tuple[float, float] | None = None) -> None:
        if xy is None:
            x, y, _, _ = tl.true_at(np.array([a]))
            xy = (float(x[0]), float(y[0]))
        lon, lat = frame.to_lonlat(xy[0], xy[1])
        ea, eb = evidence if evidence is not None else (a, b)
        (rows if into is None else into).append({
            "kind": kind, "vehicle_id": v.id, "start_ts_ms": cfg.start_ms + int(round(a * 1000)),
            "end_ts_ms": cfg.start_ms + int(round(b * 1000)), "place_id": place,
            "lon": round(float(lon), 7), "lat": round(float(lat), 7),
            "notes": json.dumps(notes or {}, ensure_ascii=False, sort_keys=True),
            # the span whose fixes show the episode (faults must not erase them): for missed work the whole
            # window, not the instant the verdict is stamped at
            "evidence_start_ts_ms": cfg.start_ms + int(round(min(ea, a) * 1000)),
            "evidence_end_ts_ms": cfg.start_ms + int(round(max(eb, b) * 1000))})

    def round_end(after_s: float, places: tuple[str, ...]) -> float:
        """When the vehicle's round ends after `after_s`: it reaches one of `places` (its facility, its depot)
        — the first moment the data can show that no more work of this round will follow."""
        tags = tuple(f"enter:{p}" for p in places)
        return min((leg.t0_s for leg in tl.legs if leg.t0_s >= after_s - 1e-6 and leg.tag in tags),
                   default=float("inf"))  # at its gate (on the fence's edge)

    def inside(a: float, b: float) -> bool:
        return a >= lo and b <= hi

    def sample(a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        t = np.arange(max(a, lo), min(b, hi) + 1e-9, 1.0)
        x, y, vms, _ = tl.true_at(t)
        return t, x, y, vms * 3.6

    def minutes(t: np.ndarray) -> np.ndarray:
        return city.local_minute(cfg.start_ms + (t * 1000).astype(np.int64))

    for e in events:
        what = e["what"]
        if not what.startswith(("v:", "n:")):
            continue
        kind = what[2:]
        a, b = float(e.get("t0", 0.0)), float(e.get("t1", 0.0))
        if what.startswith("n:"):
            if inside(a, b):
                row(kind, a, b, into=near, notes={k: val for k, val in e.items() if k in ("s", "v")})
            continue
        if kind == "route_deviation":
            assert permit is not None
            t, x, y, _ = sample(a, b)
            if t.size < 2:
                continue
            d = city.routes[permit.id].distance_to(x, y)
            out = d > cfg.permits.corridor_half_width_m
            span = _longest(out, t)
            if span is None:
                continue
            m = (t >= span[0]) & (t <= span[1])
            length = float(np.hypot(np.diff(x[m]), np.diff(y[m])).sum())
            # over the rule's thresholds = a violation (detours are designed well beyond them, so labels are
            # not borderline); under them = a near miss the engine must not flag
            ok = (span[1] - span[0] >= tp.deviation_min_s and length >= tp.deviation_min_m
                  and d[m].max() >= cfg.permits.corridor_half_width_m + 50)
            row(kind, span[0], span[1], place=permit.route_fence, into=None if ok else near,
                notes={"outside_m": round(length), "max_off_m": round(float(d[m].max()))})
        elif kind in ("unsealed_transport", "illegal_dumping", "mixer_discharge") and lo <= a < hi < b:
            # still going when the data ends: the data shows its start — labelled, clipped, once the visible
            # part is well past the rules' 15–30 s (a shorter tail could go either way: not scored)
            place = permit.id if permit is not None else None
            xy = (float(e["x"]), float(e["y"])) if "x" in e else None
            row(kind, a, hi, place=place, xy=xy, notes={"clipped_at_end": True},
                into=None if hi - a >= CLIPPED_MIN_S else unscored)
        elif kind in ("unsealed_transport", "illegal_dumping", "mixer_discharge", "signal_loss"):
            if inside(a, b):
                place = permit.id if permit is not None and kind != "signal_loss" else None
                xy = (float(e["x"]), float(e["y"])) if "x" in e else None
                row(kind, a, b, place=place, xy=xy)
        elif kind == "suspected_dumping":
            if inside(a, b):
                row(kind, a, b, place=permit.id if permit else None, xy=(float(e["x"]), float(e["y"])))
        elif kind in ("out_of_window", "no_permit") or (plan is not None and plan.kind == "no_permit"):
            pass  # handled from trips below
        elif kind == "speeding":
            t, _, _, kmh = sample(a, b)
            if t.size < 2:
                continue
            span = _longest(kmh > kp.speed_limit_kmh, t)
            if span is not None and span[1] - span[0] >= tp.speeding_min_s:
                row(kind, span[0], span[1], notes={"limit_kmh": kp.speed_limit_kmh, "max_kmh": round(float(kmh.max()), 1)})
            elif span is not None:
                row(kind, span[0], span[1], into=near)
        elif kind == "restricted_zone":
            # every entry into any active zone on the violating run counts (the way in and out may cross one)
            t, x, y, _ = sample(a, float(e.get("t_exit_max", b)))
            for zone in city.zones:
                ins = (np.hypot(x - zone.x, y - zone.y) < float(zone.radius_m or 0)) & in_windows(minutes(t), zone.windows)
                # a few seconds out along the edge and back in: one visit, not two
                ins = _bridge(ins, t, tp.zone_rejoin_s, inclusive=False)
                for i, j in _runs(ins):
                    if t[j - 1] - t[i] >= tp.zone_min_s:
                        row(kind, float(t[i]), float(t[j - 1]), place=zone.id)
                    elif t[j - 1] - t[i] >= tp.zone_min_s - ZONE_BORDER_S:  # one fix interval short: either call
                        row(kind, float(t[i]), float(t[j - 1]), place=zone.id, into=unscored)
                    elif j - i > 1:
                        row(kind, float(t[i]), float(t[j - 1]), place=zone.id, into=near)
        elif kind == "sweeping_too_fast":
            t, _, _, kmh = sample(a, b)
            if t.size < 2:
                continue
            dev = tl.state_at("device_on", t, 0).astype(bool)
            span = _longest(dev & (kmh > float(e["band_max"])), t)
            if span is not None and span[1] - span[0] >= tp.sweeping_min_s:
                row(kind, span[0], span[1], notes={"band_max_kmh": e["band_max"]})
            elif span is not None:
                row(kind, span[0], span[1], into=near)
        elif kind in ("missed_segment", "missed_collection"):
            ws = float(e.get("window_start", a))
            # the miss is certain once the window has closed *and* the round is over (a round still out at the
            # window's end may yet do the work late): when that is after the data ends, nothing shows it yet
            done = "collected" if kind == "missed_collection" else "pass"
            work = [float(x["t1"]) for x in events if x["what"] == done and ws <= float(x["t0"]) < a]
            ends = (str(e["facility"]), str(e["home"])) if kind == "missed_collection" else (str(e["home"]),)
            over = round_end(max(work, default=ws), ends) if "home" in e else a
            seen = over <= hi
            if lo < a <= hi + 1e-6 and seen:
                row(kind, a, a, place=str(e["place"]), evidence=(ws, max(a, over)))
        elif kind == "no_transfer_arrival":
            # collected in the window, then nowhere near the facility's fence until the deadline (measured on the
            # true track: a route brushing the fence may show as an arrival — a near miss, not labelled)
            ws, we = float(e["window_start"]), float(e["window_end"])
            collected = [x for x in events if x["what"] == "collected" and ws <= float(x["t0"]) < we]
            if not collected or not (lo <= ws and b <= hi):
                continue
            t, x, y, _ = sample(ws, b)
            fac = city.places[str(e["facility"])]
            brush = fac.contains(x, y, pad_m=4.0 * cfg.noise_m).any()  # a noisy fix could land inside
            row(kind, ws, b, place=fac.id, xy=(float(fac.x), float(fac.y)), into=near if brush else None,
                notes={"points_collected": len(collected)})
        elif kind == "banned_hours_work":
            t, _, _, _ = sample(a, b)
            dev = tl.state_at("device_on", t, 0).astype(bool)
            span = _longest(dev & in_windows(minutes(t), cfg.sanitation.banned_windows), t)
            if span is not None and span[1] - span[0] >= 300:
                row(kind, span[0], span[1])
    # loaded trips that break the permit: out_of_window (the marked trip) and no_permit (every trip)
    if plan is not None and plan.kind in ("out_of_window", "no_permit") and permit is not None:
        site, disp = city.places[permit.origin_fence], city.places[permit.disposal_fence]
        marked = [e for e in events if e["what"] == "v:out_of_window"] if plan.kind == "out_of_window" else \
            [e for e in events if e["what"] == "trip"]
        for e in marked:
            t, x, y, kmh = sample(float(e["t0"]), float(e["t1"]))
            if t.size < 2:
                continue
            out = ~site.contains(x, y) & ~disp.contains(x, y)
            if plan.kind == "out_of_window":
                out &= ~in_windows(minutes(t), permit.windows)
            idx = np.flatnonzero(out)
            if idx.size == 0:
                continue
            a, b = float(t[idx[0]]), float(t[idx[-1]])
            moving_s = int((kmh[idx] > tp.moving_kmh).sum())
            if b - a >= 120.0 and moving_s >= 60:
                row(plan.kind, a, b, place=permit.id)
            elif b - a >= 120.0 - BORDER_S and moving_s >= 60 - BORDER_S:  # a short trip: either call is right
                row(plan.kind, a, b, place=permit.id, into=unscored)
    return rows, near, unscored
