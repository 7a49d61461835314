"""signal_loss (离线/屏蔽): no trusted fix for ≥ 10 min while the vehicle was moving or on a loaded trip, or
it reappears far away; and impossible jumps.

Per vehicle, over ok fixes in time order: a step of `gap_s` or more opens and closes an episode from the
last fix before the gap to the first after it, when the vehicle was moving (speed > `moving_kmh`) or
loaded on a trip at a fix at most `recent_s` before the gap (terminals often send one last report as they
stop), or when it reappears more than `moved_m` away (it drove while dark). A
parked truck whose terminal sleeps with the ignition off is not an alert. Invalid fixes (terminal says
no fix, zero coordinates) are dropped by hygiene before this rule, so a jammed receiver still sending
invalid fixes is a gap here — that is the 屏蔽 case. A back-filled outage is no gap: its fixes are replayed
in time order, and an episode raised before the back-fill arrived is retracted.

Live: `advance(now)` opens the episode as soon as `gap_s` has passed without a fix (no need to wait for the
vehicle to come back); its id is the one the returning fix will close. At the end of the data a vehicle
still dark is closed at the end.

Impossible jumps: a relocation that hygiene accepted (several consistent fixes beyond 150 km/h from the last
trusted position — a swapped or spoofed terminal) is a `suspected` episode.

Sensor missing: GPS only; "on a loaded trip" uses the trip scan's load state (inferred when no sensor).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from pydantic import Field

from tracker.hygiene import JUMP_RELOCATED
from tracker.rules._base import EV_RETRACT, PLACE_NONE, SEV_CONFIRMED, SEV_SUSPECTED, Batch, Events, RuleParams
from tracker.state import StateTable, snap_after, snap_before
from tracker.world import World

NAME = "signal_loss"
PLACE = PLACE_NONE
PEAK = "gap_s"

TS_SLOTS = ("adv_open", "last_active")  # episode `advance` opened (−1: none); last fix moving or loaded
VAL_SLOTS = ()
# The last trusted fix itself (time, place) is hygiene's state: this rule reads `Batch.dt_s`/`step_m` and,
# for `advance`/`finish`, the engine's hygiene table — no second copy per vehicle.


class Params(RuleParams):
    gap_s: float = Field(600.0, gt=0, description="no trusted fix for this long")
    moving_kmh: float = Field(5.0, ge=0, description="moving at the last fixes before the gap ...")
    recent_s: float = Field(60.0, ge=0, description="... i.e. at a fix at most this long before the last one "
                            "(a terminal often reports once more as the vehicle stops)")
    moved_m: float = Field(500.0, ge=0, description="reappearing this far away also counts")
    jumps: bool = Field(True, description="report relocations (impossible jumps) as suspected")


def new_state(n: int = 0, params: Params | None = None) -> StateTable:
    return StateTable(NAME, TS_SLOTS, VAL_SLOTS, (), n)


def evaluate(batch: Batch, state: StateTable, world: World, params: Params) -> Events:
    k = params.kind_table
    loaded = batch.extra.get("loaded")
    if loaded is None:
        loaded = np.zeros(batch.n, np.int8)
    ctx = (batch.speed_kmh > k("moving_kmh")[batch.kind]) | (loaded == 1)
    out = _scan(state.rows(batch.sidx, batch.kind), batch.vidx, batch.ts_ms, batch.ok, batch.act, batch.dt_s,
                batch.step_m, batch.jump, ctx, params.applies_to()[batch.kind], *state.arrays,
                k("gap_s")[batch.kind] * 1000.0, k("moved_m")[batch.kind], k("recent_s")[batch.kind] * 1000.0,
                params.jumps)
    m = out[0]
    vidx, row, start, end, sev, gap_s, disp = (a[:m] for a in out[1:])
    retract = sev < 0  # an episode `advance` opened that the returning fix disproves (it came back in time)
    ev = Events.instant(vidx[~retract], row[~retract], start[~retract], end[~retract], sev[~retract],
                        np.full(int((~retract).sum()), -1), gap_s[~retract], disp[~retract])
    if not retract.any():
        return ev
    r = int(retract.sum())
    ret = Events(etype=np.full(r, EV_RETRACT, np.int8), vidx=vidx[retract], row=row[retract],
                 start_ts=start[retract], end_ts=start[retract], level=np.ones(r, np.int8),
                 sev=np.zeros(r, np.int8), place=np.full(r, -1, np.int32), peak=gap_s[retract],
                 dist_m=disp[retract], last_ts=start[retract])
    return Events.concat([ev, ret])


@nb.njit(cache=True)
def _scan(sidx, vidx, ts, ok, act, dt_s, step_m, jump, ctx, applies, ct, cf, mt, mf, bt, bf, gap_ms, moved_m,
          recent_ms, jumps):
    n = sidx.shape[0]
    ov = np.empty(2 * n, np.int32)
    orow = np.empty(2 * n, np.int64)
    ost = np.empty(2 * n, np.int64)
    oen = np.empty(2 * n, np.int64)
    osev = np.empty(2 * n, np.int8)
    ogap = np.empty(2 * n, np.float64)
    odis = np.empty(2 * n, np.float64)
    k = 0
    for i in range(n):
        v = sidx[i]
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_before(v, act[i], ct, cf, mt, mf, bt, bf)
        if ok[i] and applies[i]:
            t = ts[i]
            if dt_s[i] >= 0:  # hygiene measured the step from the last trusted fix
                gap = np.int64(np.round(dt_s[i] * 1000.0))
                prev = t - gap
                d = step_m[i]
                emit = -1
                active = ct[v, 1] >= 0 and prev - ct[v, 1] <= recent_ms[i]
                if gap >= gap_ms[i] and (active or d >= moved_m[i]):
                    emit = SEV_CONFIRMED
                elif jumps and jump[i] == JUMP_RELOCATED:
                    emit = SEV_SUSPECTED
                if ct[v, 0] >= 0 and not (emit == SEV_CONFIRMED and ct[v, 0] == prev):
                    ov[k] = vidx[i]  # retract what `advance` opened on the silence
                    orow[k] = i
                    ost[k] = ct[v, 0]
                    oen[k] = ct[v, 0]
                    osev[k] = -1
                    ogap[k] = gap / 1000.0
                    odis[k] = d
                    k += 1
                if emit >= 0:
                    ov[k] = vidx[i]
                    orow[k] = i
                    ost[k] = prev
                    oen[k] = t
                    osev[k] = emit
                    ogap[k] = gap / 1000.0
                    odis[k] = d
                    k += 1
            ct[v, 0] = -1
            if ctx[i]:
                ct[v, 1] = t
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_after(v, act[i], ct, cf, mt, mf)
    return k, ov, orow, ost, oen, osev, ogap, odis


def _dark(state: StateTable, hyg: StateTable, world: World, params: Params, now_ms: int) -> np.ndarray:
    """Vehicles silent for `gap_s` by `now_ms` since a trusted fix at which they were moving or loaded."""
    m = min(len(state), len(hyg), world.vehicle_kind.shape[0])
    last = hyg.ct[:m, 0]
    kind = world.vehicle_kind[:m]
    gap = params.kind_table("gap_s")[kind] * 1000.0
    on = params.applies_to()[kind]
    active = (state.ct[:m, 1] >= 0) & (last - state.ct[:m, 1] <= params.kind_table("recent_s")[kind] * 1000.0)
    return np.flatnonzero(on & (last >= 0) & (now_ms - last >= gap) & active)


def advance(now_ms: int, last_ts, state: StateTable, world: World, params: Params, engine) -> Events:
    """Open an episode for every vehicle dark for `gap_s` since it was last seen moving or loaded."""
    hyg = engine.hyg
    rows = _dark(state, hyg, world, params, now_ms)
    rows = rows[state.ct[rows, 0] < 0]
    if rows.size == 0:
        return Events.empty()
    start = hyg.ct[rows, 0]
    state.ct[rows, 0] = start
    ev = Events.instant(rows, np.full(rows.size, -1), start, np.full(rows.size, now_ms),
                        np.full(rows.size, SEV_CONFIRMED), np.full(rows.size, -1), (now_ms - start) / 1000.0,
                        np.zeros(rows.size), lon=hyg.ct[rows, 1] / 1e7, lat=hyg.ct[rows, 2] / 1e7)
    return ev.take(np.arange(0, len(ev), 2))  # the OPEN halves only


def finish(batch, state: StateTable, world: World, params: Params, sidx_to_vidx, trips_rec=None,
           end_ms: int | None = None, hygiene: StateTable | None = None, **_) -> Events:
    """End of data: a vehicle dark for `gap_s` before the end, last seen moving or loaded, lost its signal."""
    if end_ms is None or batch is not None or hygiene is None:  # detached blocks: not the end of the data
        return Events.empty()
    rows = _dark(state, hygiene, world, params, end_ms)
    if rows.size == 0:
        return Events.empty()
    start = hygiene.ct[rows, 0].copy()
    lon, lat = hygiene.ct[rows, 1] / 1e7, hygiene.ct[rows, 2] / 1e7
    state.ct[rows, 0] = -1
    return Events.instant(sidx_to_vidx[rows], np.full(rows.size, -1), start, np.full(rows.size, end_ms),
                          np.full(rows.size, SEV_CONFIRMED), np.full(rows.size, -1), (end_ms - start) / 1000.0,
                          np.zeros(rows.size), lon=lon, lat=lat)
