"""The debouncing state machine most rules share: a condition must hold for a time AND a distance.

Per vehicle, over its ok fixes in time order (one numba scan over the whole batch):

* a *run* starts at the first fix where the condition holds (its `start_ts` becomes the episode start, so
  the episode id does not depend on where batches were cut);
* the run survives condition-false stretches shorter than `tolerance_s` (one noisy fix must not split a
  speeding episode in two), but breaks on a false stretch of `tolerance_s` or more, and on a data gap longer
  than `max_gap_s` (we do not know what happened in between);
* the episode OPENS when the run has lasted ≥ `min_duration_s` and covered ≥ `min_distance_m` (distance =
  sum of steps between the run's fixes while really moving — `Batch.move_m`, so GPS noise around a parked
  truck never adds up to distance; only steps between two consecutive fixes that both meet the condition
  count, so the step *into* a lone multipath outlier — often hundreds of metres — never makes a run of two
  outliers minutes apart look like travel; 0 disables the distance test, e.g. for a truck dumping at a stop);
* while open, its level rises each time the run's duration passes an escalation threshold (`levels_s`),
  and its severity rises from suspected to confirmed as soon as one fix confirms it: both are UPDATE events;
* it CLOSES when the run breaks; `end_ts` is the first fix of the breaking false stretch (or the last fix
  before a data gap).

State per vehicle: 3 timestamp slots and 5 float32 value slots (`TS_SLOTS`, `VAL_SLOTS`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from tracker.rules._base import EV_CLOSE, EV_OPEN, EV_UPDATE, Batch, Events
from tracker.state import StateTable, snap_after, snap_before, snap_only

TS_SLOTS = ("start_ts", "false_since", "last_true")
VAL_SLOTS = ("dist_m", "level", "peak", "place", "sev")
VAL_INIT = (0.0, 0.0, -np.inf, -1.0, 0.0)
T_START, T_FALSE, T_LAST = range(3)
F_DIST, F_LEVEL, F_PEAK, F_PLACE, F_SEV = range(5)


def new_state(name: str, n: int = 0, kinds: np.ndarray | None = None) -> StateTable:
    """A debounce table; `kinds` (bool per vehicle kind code) limits rows to the kinds the rule concerns."""
    if kinds is not None and bool(np.all(kinds)):
        kinds = None  # every kind: a row per vehicle, no mapping
    return StateTable(name, TS_SLOTS, VAL_SLOTS, VAL_INIT, n, kinds)


def debounce(batch: Batch, table: StateTable, cond: np.ndarray, sev: np.ndarray, place: np.ndarray,
             value: np.ndarray, min_duration_s: np.ndarray, min_distance_m: np.ndarray, tolerance_s: np.ndarray,
             max_gap_s: np.ndarray, levels_s: np.ndarray | None = None) -> Events:
    """Run the state machine. Threshold arrays are indexed by vehicle kind code; `levels_s` is
    (n_kinds, n_levels) of escalation durations (use +inf padding), or None for a single level."""
    if levels_s is None:
        levels_s = np.full((min_duration_s.shape[0], 1), np.inf)
    # Most vehicles have nothing going on for a given rule: no row meets the condition and no run is open.
    # Their state cannot change, so only their snapshot actions are applied, and the scan sees the rest.
    srow = table.rows(batch.sidx, batch.kind)
    cond, rows = _busy(srow, np.asarray(cond, np.bool_), batch.act, len(table), *table.arrays)
    if rows.size == 0:
        return Events.empty()
    if rows.size == srow.shape[0]:
        rows = None
    pick = (lambda a: a) if rows is None else (lambda a: a[rows])  # noqa: E731
    out = _scan(pick(srow), pick(batch.vidx), pick(batch.kind), pick(batch.ts_ms), pick(batch.ok),
                pick(batch.dt_s), pick(batch.move_m), pick(batch.act), pick(cond),
                pick(np.asarray(sev, np.int8)), pick(np.asarray(place, np.int32)),
                pick(np.asarray(value, np.float64)), *table.arrays,
                (np.asarray(min_duration_s, np.float64) * 1000.0), np.asarray(min_distance_m, np.float64),
                (np.asarray(tolerance_s, np.float64) * 1000.0), (np.asarray(max_gap_s, np.float64) * 1000.0),
                np.ascontiguousarray(np.asarray(levels_s, np.float64) * 1000.0))
    n, arrays = out
    ev = Events(*(a[:n] for a in arrays))
    if rows is not None:
        ev.row = rows[ev.row]
    return ev


@nb.njit(cache=True)
def _busy(srow, cond, act, n_rows, ct, cf, mt, mf, bt, bf):
    """(cond restricted to this table's vehicles, the batch rows of busy vehicles — a row meets the
    condition or a run is open — in order), applying the snapshot actions of the other vehicles' rows
    (their state cannot change: see `snap_only`)."""
    n = srow.shape[0]
    mine_cond = np.zeros(n, np.bool_)
    busy = np.zeros(n_rows, np.bool_)
    for r in range(n_rows):
        busy[r] = ct[r, T_START] >= 0
    for i in range(n):
        r = srow[i]
        if r >= 0 and cond[i]:
            mine_cond[i] = True
            busy[r] = True
    rows = np.empty(n, np.int64)
    j = 0
    for i in range(n):
        r = srow[i]
        if r >= 0:
            if busy[r]:
                rows[j] = i
                j += 1
            elif act[i] != 0:
                snap_only(r, act[i], ct, cf, mt, mf, bt, bf)
    return mine_cond, rows[:j]


@nb.njit(cache=True, inline="always")
def _emit(k, o, etype, v, gv, row, ct, cf, end_ts):
    et, ev, ro, st, en, lv, sv, pl, pk, ds, lt = o
    et[k] = etype
    ev[k] = gv
    ro[k] = row
    st[k] = ct[v, T_START]
    en[k] = end_ts
    lv[k] = np.int8(abs(cf[v, F_LEVEL]))
    sv[k] = np.int8(cf[v, F_SEV])
    pl[k] = np.int32(cf[v, F_PLACE])
    pk[k] = cf[v, F_PEAK]
    ds[k] = cf[v, F_DIST]
    lt[k] = ct[v, T_LAST]
    return k + 1


@nb.njit(cache=True, inline="always")
def _reset(v, ct, cf):
    ct[v, T_START] = -1
    ct[v, T_FALSE] = -1
    ct[v, T_LAST] = -1
    cf[v, F_DIST] = 0.0
    cf[v, F_LEVEL] = 0.0
    cf[v, F_PEAK] = -np.inf
    cf[v, F_PLACE] = -1.0
    cf[v, F_SEV] = 0.0


@nb.njit(cache=True, inline="always")
def _level(dur, levels_ms, kd):
    lvl = 1
    for j in range(levels_ms.shape[1]):
        if dur >= levels_ms[kd, j]:
            lvl += 1
    return lvl


@nb.njit(cache=True)
def _scan(sidx, vidx, kind, ts, ok, dt_s, step_m, act, cond, sev, place, value, ct, cf, mt, mf, bt, bf,
          min_dur_ms, min_dist_m, tol_ms, gap_ms, levels_ms):
    n = vidx.shape[0]
    cap = 3 * n + 4
    o = (np.empty(cap, np.int8), np.empty(cap, np.int32), np.empty(cap, np.int64), np.empty(cap, np.int64),
         np.empty(cap, np.int64), np.empty(cap, np.int8), np.empty(cap, np.int8), np.empty(cap, np.int32),
         np.empty(cap, np.float64), np.empty(cap, np.float64), np.empty(cap, np.int64))
    k = 0
    for i in range(n):
        v = sidx[i]
        gv = vidx[i]
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_before(v, act[i], ct, cf, mt, mf, bt, bf)
        if not ok[i]:
            if act[i] != 0:  # guard at the call: see tracker.state.snap_before
                snap_after(v, act[i], ct, cf, mt, mf)
            continue
        kd = kind[i]
        t = ts[i]
        if ct[v, T_START] >= 0:
            # a data gap, or a false stretch that has lasted long enough by now, breaks the run
            end = np.int64(-1)
            if dt_s[i] * 1000.0 > gap_ms[kd]:
                end = ct[v, T_FALSE] if ct[v, T_FALSE] >= 0 else ct[v, T_LAST]
            elif ct[v, T_FALSE] >= 0 and t - ct[v, T_FALSE] >= tol_ms[kd]:
                end = ct[v, T_FALSE]
            if end >= 0:
                if cf[v, F_LEVEL] != 0:  # (< 0: `expire` closed it already; the same end, said again)
                    k = _emit(k, o, EV_CLOSE, v, gv, i, ct, cf, end)
                _reset(v, ct, cf)
            elif cf[v, F_LEVEL] < 0:  # closed early by `expire`, but the run goes on: open again
                cf[v, F_LEVEL] = -cf[v, F_LEVEL]
                k = _emit(k, o, EV_UPDATE, v, gv, i, ct, cf, -1)
        if cond[i]:
            if ct[v, T_START] < 0:
                ct[v, T_START] = t
                cf[v, F_DIST] = 0.0
                cf[v, F_PEAK] = value[i]
                cf[v, F_PLACE] = place[i]
                cf[v, F_SEV] = sev[i]
            else:
                if ct[v, T_FALSE] < 0:  # only travel between fixes that both meet the condition counts
                    cf[v, F_DIST] += step_m[i]
                if value[i] > cf[v, F_PEAK]:
                    cf[v, F_PEAK] = value[i]
            ct[v, T_FALSE] = -1
            ct[v, T_LAST] = t
            dur = t - ct[v, T_START]
            if cf[v, F_LEVEL] == 0:
                if sev[i] > cf[v, F_SEV]:
                    cf[v, F_SEV] = sev[i]
                if dur >= min_dur_ms[kd] and cf[v, F_DIST] >= min_dist_m[kd]:
                    cf[v, F_LEVEL] = _level(dur, levels_ms, kd)
                    k = _emit(k, o, EV_OPEN, v, gv, i, ct, cf, -1)
            else:
                changed = False
                lvl = _level(dur, levels_ms, kd)
                if lvl > cf[v, F_LEVEL]:
                    cf[v, F_LEVEL] = lvl
                    changed = True
                if sev[i] > cf[v, F_SEV]:
                    cf[v, F_SEV] = sev[i]
                    changed = True
                if changed:
                    k = _emit(k, o, EV_UPDATE, v, gv, i, ct, cf, -1)
        elif ct[v, T_START] >= 0:
            if ct[v, T_FALSE] < 0:
                ct[v, T_FALSE] = t
            if t - ct[v, T_FALSE] >= tol_ms[kd]:
                if cf[v, F_LEVEL] > 0:
                    k = _emit(k, o, EV_CLOSE, v, gv, i, ct, cf, ct[v, T_FALSE])
                _reset(v, ct, cf)
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_after(v, act[i], ct, cf, mt, mf)
    return k, o


def _events_from_rows(table: StateTable, rows: np.ndarray, vidx: np.ndarray, end: np.ndarray) -> Events:
    ct, cf = table.ct[rows], table.cf[rows]
    return Events(etype=np.full(rows.size, EV_CLOSE, np.int8), vidx=vidx.astype(np.int32),
                  row=np.full(rows.size, -1, np.int64), start_ts=ct[:, T_START].copy(), end_ts=end.astype(np.int64),
                  level=np.abs(cf[:, F_LEVEL]).astype(np.int8), sev=cf[:, F_SEV].astype(np.int8),
                  place=cf[:, F_PLACE].astype(np.int32), peak=cf[:, F_PEAK].astype(np.float64),
                  dist_m=cf[:, F_DIST].astype(np.float64), last_ts=ct[:, T_LAST].copy())


def close_all(table: StateTable, sidx_to_vidx: np.ndarray) -> Events:
    """End of data: close every open episode in `table` at the last fix inside it, and reset the runs.
    A row's vehicle is `sidx_to_vidx[table.owner[row]]`."""
    m = len(table)
    running = np.flatnonzero(table.ct[:m, T_START] >= 0)
    opened = running[table.cf[running, F_LEVEL] != 0]
    ev = _events_from_rows(table, opened, sidx_to_vidx[table.owner[opened]], table.ct[opened, T_LAST])
    table.reset(running)
    return ev


def expire(table: StateTable, now_ms: int, max_gap_s: np.ndarray, kind: np.ndarray) -> Events:
    """Time passed without fixes: an open episode whose last fix is older than its kind's `max_gap_s` is
    closed now, with the end a data gap would give it. The run itself is kept (level made negative): if a
    fix that continues it still arrives — delivery latency can exceed the gap — the episode opens again, and
    the final result is the one in-order processing gives. `kind`: vehicle kind code per vehicle."""
    m = len(table)
    ct, cf = table.ct, table.cf
    owner = table.owner[:m]
    last = np.maximum(ct[:m, T_LAST], ct[:m, T_FALSE])
    rows = np.flatnonzero((ct[:m, T_START] >= 0) & (cf[:m, F_LEVEL] > 0)
                          & (now_ms - last > max_gap_s[kind[owner]] * 1000.0))
    if rows.size == 0:
        return Events.empty()
    end = np.where(ct[rows, T_FALSE] >= 0, ct[rows, T_FALSE], ct[rows, T_LAST])
    ev = _events_from_rows(table, rows, owner[rows], end)
    cf[rows, F_LEVEL] = -cf[rows, F_LEVEL]
    return ev


def is_open(table: StateTable, v: int, start_ts: int) -> bool | None:
    """Is the episode of vehicle `v` that started at `start_ts` open in the current state (True), closed
    early by `expire` (False), or not this table's current run at all (None)?"""
    r = table.row(v)
    if r < 0 or table.ct[r, T_START] != start_ts or table.cf[r, F_LEVEL] == 0:
        return None
    return bool(table.cf[r, F_LEVEL] > 0)


def kinds_mask(params) -> np.ndarray:
    """Vehicle kind codes a rule concerns: its `kinds` list (all when it has none) and `enabled` per kind."""
    from tracker.world import KINDS

    wanted = getattr(params, "kinds", None)
    on = params.applies_to()
    return np.array([(wanted is None or k in wanted) and bool(on[i]) for i, k in enumerate(KINDS)], bool)
