"""The debouncing state machine most rules share: a condition must hold for a time AND a distance.

Per vehicle, over its ok fixes in time order (one numba scan over the whole batch):

* a *run* starts at the first fix where the condition holds (its `start_ts` becomes the episode start, so
  the episode id does not depend on where batches were cut);
* the run survives condition-false stretches shorter than `tolerance_s` (one noisy fix must not split a
  speeding episode in two), but breaks on a false stretch of `tolerance_s` or more, and on a data gap longer
  than `max_gap_s` (we do not know what happened in between);
* the episode OPENS when the run has lasted ≥ `min_duration_s` and covered ≥ `min_distance_m` (distance =
  sum of steps between the run's fixes; 0 disables the distance test, e.g. for a truck dumping at a stop);
* while open, its level rises each time the run's duration passes an escalation threshold (`levels_s`),
  and its severity rises from suspected to confirmed as soon as one fix confirms it: both are UPDATE events;
* it CLOSES when the run breaks; `end_ts` is the first fix of the breaking false stretch (or the last fix
  before a data gap).

State per vehicle: 8 float64 slots (`SLOTS`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from tracker.rules._base import EV_CLOSE, EV_OPEN, EV_UPDATE, Batch, Events
from tracker.state import StateTable, snap_after, snap_before

SLOTS = ("start_ts", "dist_m", "false_since", "level", "peak", "place", "sev", "last_true")
INIT = (-1.0, 0.0, -1.0, 0.0, -np.inf, -1.0, 0.0, -1.0)
S_START, S_DIST, S_FALSE, S_LEVEL, S_PEAK, S_PLACE, S_SEV, S_LAST = range(8)


def new_state(name: str, n: int = 0) -> StateTable:
    return StateTable(name, SLOTS, INIT, n)


def debounce(batch: Batch, table: StateTable, cond: np.ndarray, sev: np.ndarray, place: np.ndarray,
             value: np.ndarray, min_duration_s: np.ndarray, min_distance_m: np.ndarray, tolerance_s: np.ndarray,
             max_gap_s: np.ndarray, levels_s: np.ndarray | None = None) -> Events:
    """Run the state machine. Threshold arrays are indexed by vehicle kind code; `levels_s` is
    (n_kinds, n_levels) of escalation durations (use +inf padding), or None for a single level."""
    if levels_s is None:
        levels_s = np.full((min_duration_s.shape[0], 1), np.inf)
    out = _scan(batch.sidx, batch.vidx, batch.kind, batch.ts_ms, batch.ok, batch.dt_s, batch.step_m, batch.act,
                np.ascontiguousarray(cond, np.bool_), np.ascontiguousarray(sev, np.int8),
                np.ascontiguousarray(place, np.int32), np.ascontiguousarray(value, np.float64),
                table.cur, table.mid, table.base,
                (np.asarray(min_duration_s, np.float64) * 1000.0), np.asarray(min_distance_m, np.float64),
                (np.asarray(tolerance_s, np.float64) * 1000.0), (np.asarray(max_gap_s, np.float64) * 1000.0),
                np.ascontiguousarray(np.asarray(levels_s, np.float64) * 1000.0))
    n = out[0]
    return Events(*(a[:n] for a in out[1:]))


@nb.njit(cache=True, inline="always")
def _emit(k, et, ev, ro, st, en, lv, sv, pl, pk, ds, lt, etype, v, gv, row, cur, end_ts):
    et[k] = etype
    ev[k] = gv
    ro[k] = row
    st[k] = np.int64(cur[v, 0])
    en[k] = end_ts
    lv[k] = np.int8(cur[v, 3])
    sv[k] = np.int8(cur[v, 6])
    pl[k] = np.int32(cur[v, 5])
    pk[k] = cur[v, 4]
    ds[k] = cur[v, 1]
    lt[k] = np.int64(cur[v, 7])
    return k + 1


@nb.njit(cache=True, inline="always")
def _reset(v, cur):
    cur[v, 0] = -1.0
    cur[v, 1] = 0.0
    cur[v, 2] = -1.0
    cur[v, 3] = 0.0
    cur[v, 4] = -np.inf
    cur[v, 5] = -1.0
    cur[v, 6] = 0.0
    cur[v, 7] = -1.0


@nb.njit(cache=True)
def _scan(sidx, vidx, kind, ts, ok, dt_s, step_m, act, cond, sev, place, value, cur, mid, base, min_dur_ms,
          min_dist_m, tol_ms, gap_ms, levels_ms):
    n = vidx.shape[0]
    cap = 3 * n + 4
    et = np.empty(cap, np.int8)
    ev = np.empty(cap, np.int32)
    ro = np.empty(cap, np.int64)
    st = np.empty(cap, np.int64)
    en = np.empty(cap, np.int64)
    lv = np.empty(cap, np.int8)
    sv = np.empty(cap, np.int8)
    pl = np.empty(cap, np.int32)
    pk = np.empty(cap, np.float64)
    ds = np.empty(cap, np.float64)
    lt = np.empty(cap, np.int64)
    k = 0
    n_levels = levels_ms.shape[1]
    for i in range(n):
        v = sidx[i]
        gv = vidx[i]
        snap_before(v, act[i], cur, mid, base)
        if not ok[i]:
            snap_after(v, act[i], cur, mid)
            continue
        kd = kind[i]
        t = ts[i]
        if cur[v, 0] >= 0:
            # a data gap, or a false stretch that lasted long enough by now, breaks the run
            brk = False
            end = -1
            if dt_s[i] * 1000.0 > gap_ms[kd]:
                brk = True
                end = np.int64(cur[v, 2]) if cur[v, 2] >= 0 else np.int64(cur[v, 7])
            elif cur[v, 2] >= 0 and t - cur[v, 2] >= tol_ms[kd]:
                brk = True
                end = np.int64(cur[v, 2])
            if brk:
                if cur[v, 3] > 0:
                    k = _emit(k, et, ev, ro, st, en, lv, sv, pl, pk, ds, lt, EV_CLOSE, v, gv, i, cur, end)
                _reset(v, cur)
        if cond[i]:
            if cur[v, 0] < 0:
                cur[v, 0] = t
                cur[v, 1] = 0.0
                cur[v, 4] = value[i]
                cur[v, 5] = place[i]
                cur[v, 6] = sev[i]
            else:
                cur[v, 1] += step_m[i]
                if value[i] > cur[v, 4]:
                    cur[v, 4] = value[i]
            cur[v, 2] = -1.0
            cur[v, 7] = t
            dur = t - cur[v, 0]
            if cur[v, 3] == 0:
                if sev[i] > cur[v, 6]:
                    cur[v, 6] = sev[i]
                if dur >= min_dur_ms[kd] and cur[v, 1] >= min_dist_m[kd]:
                    lvl = 1
                    for j in range(n_levels):
                        if dur >= levels_ms[kd, j]:
                            lvl += 1
                    cur[v, 3] = lvl
                    k = _emit(k, et, ev, ro, st, en, lv, sv, pl, pk, ds, lt, EV_OPEN, v, gv, i, cur, -1)
            else:
                lvl = 1
                for j in range(n_levels):
                    if dur >= levels_ms[kd, j]:
                        lvl += 1
                changed = False
                if lvl > cur[v, 3]:
                    cur[v, 3] = lvl
                    changed = True
                if sev[i] > cur[v, 6]:
                    cur[v, 6] = sev[i]
                    changed = True
                if changed:
                    k = _emit(k, et, ev, ro, st, en, lv, sv, pl, pk, ds, lt, EV_UPDATE, v, gv, i, cur, -1)
        elif cur[v, 0] >= 0:
            if cur[v, 2] < 0:
                cur[v, 2] = t
            if t - cur[v, 2] >= tol_ms[kd]:
                if cur[v, 3] > 0:
                    k = _emit(k, et, ev, ro, st, en, lv, sv, pl, pk, ds, lt, EV_CLOSE, v, gv, i, cur,
                              np.int64(cur[v, 2]))
                _reset(v, cur)
        snap_after(v, act[i], cur, mid)
    return k, et[:k].copy(), ev[:k].copy(), ro[:k].copy(), st[:k].copy(), en[:k].copy(), lv[:k].copy(), \
        sv[:k].copy(), pl[:k].copy(), pk[:k].copy(), ds[:k].copy(), lt[:k].copy()


def close_all(table: StateTable, sidx_to_vidx: np.ndarray) -> Events:
    """End of data: close every open episode in `table` at the last fix inside it, and reset the runs.
    State row i belongs to vehicle `sidx_to_vidx[i]`."""
    m = min(len(table), sidx_to_vidx.shape[0])
    cur = table.cur[:m]
    rows = np.flatnonzero((cur[:, S_START] >= 0) & (cur[:, S_LEVEL] > 0))
    c = cur[rows]
    ev = Events(etype=np.full(rows.size, EV_CLOSE, np.int8), vidx=sidx_to_vidx[rows].astype(np.int32),
                row=np.full(rows.size, -1, np.int64), start_ts=c[:, S_START].astype(np.int64),
                end_ts=c[:, S_LAST].astype(np.int64), level=c[:, S_LEVEL].astype(np.int8),
                sev=c[:, S_SEV].astype(np.int8), place=c[:, S_PLACE].astype(np.int32), peak=c[:, S_PEAK].copy(),
                dist_m=c[:, S_DIST].copy(), last_ts=c[:, S_LAST].astype(np.int64))
    table.cur[:m] = np.where((cur[:, S_START] >= 0)[:, None], table.init[None, :], cur)
    return ev


def expire(table: StateTable, now_ms: int, max_gap_s: np.ndarray, kind: np.ndarray) -> Events:
    """Time passed without fixes: a run whose last fix is older than its kind's `max_gap_s` would be broken
    by the next fix anyway (a data gap); close it now with the same end the next fix would give it."""
    m = min(len(table), kind.shape[0])
    cur = table.cur
    k = kind[:m]
    last = np.maximum(cur[:m, S_LAST], cur[:m, S_FALSE])
    rows = np.flatnonzero((cur[:m, S_START] >= 0) & (now_ms - last > max_gap_s[k] * 1000.0))
    if rows.size == 0:
        return Events.empty()
    c = cur[rows]
    end = np.where(c[:, S_FALSE] >= 0, c[:, S_FALSE], c[:, S_LAST]).astype(np.int64)
    opened = c[:, S_LEVEL] > 0
    ev = Events(etype=np.full(rows.size, EV_CLOSE, np.int8), vidx=rows.astype(np.int32),
                row=np.full(rows.size, -1, np.int64), start_ts=c[:, S_START].astype(np.int64),
                end_ts=end, level=c[:, S_LEVEL].astype(np.int8), sev=c[:, S_SEV].astype(np.int8),
                place=c[:, S_PLACE].astype(np.int32), peak=c[:, S_PEAK].copy(), dist_m=c[:, S_DIST].copy(),
                last_ts=c[:, S_LAST].astype(np.int64))
    cur[rows] = table.init[None, :]
    sel = np.flatnonzero(opened)
    return Events(*(getattr(ev, f)[sel] for f in Events.__dataclass_fields__))
