"""Fix hygiene: which fixes the rules may trust, and the step (time, distance) between trusted fixes.

Run on every batch before any rule, in fix-time order per vehicle:

* **invalid** — the terminal says the fix is not valid, or the coordinates are zero, non-finite or outside
  the earth: dropped before anything else (counted per vehicle; a burst of them is tampering evidence).
* **duplicates** — same vehicle and fix time: the first received wins (at-least-once delivery makes these
  normal, not an error).
* **impossible jumps** — implied speed from the last trusted fix above `max_speed_kmh` (150) *and* further
  than `jump_min_m` (so GPS noise between fixes one second apart is not a jump): the fix is set aside. If
  `reanchor_fixes` consecutive set-aside fixes agree with each other, the vehicle really is over there (the
  terminal was moved, or the earlier fixes were the bad ones): the track re-anchors and the row is flagged
  `jump = JUMP_RELOCATED`, which `signal_loss` reports as an impossible jump.
* out-of-order and back-filled fixes are put back in time order by the engine (see `tracker.state`), so this
  scan always sees each vehicle's fixes in time order.

Distances use `dist_m_nb`, a numba twin of `geofences.local.dist_m` (same sphere and formula; a test checks
they agree), because the scan needs the distance to the last *trusted* fix, which is not always the
previous row.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from pydantic import BaseModel, Field

from geofences.local import EARTH_RADIUS_M
from tracker.state import StateTable, snap_after, snap_before

JUMP_NONE = 0
JUMP_REJECTED = 1
JUMP_RELOCATED = 2

TS_SLOTS = ("last_ts", "last_lon_e7", "last_lat_e7", "alt_ts", "alt_lon_e7", "alt_lat_e7")
VAL_SLOTS = ("alt_n",)


class HygieneParams(BaseModel):
    """`[rules.hygiene]`."""

    max_speed_kmh: float = Field(150.0, gt=0, description="implied speed above which a step is impossible")
    jump_min_m: float = Field(150.0, ge=0, description="steps shorter than this are never jumps (GPS noise)")
    reanchor_fixes: int = Field(3, ge=1, description="consistent set-aside fixes that prove a relocation")


def new_state(n: int = 0) -> StateTable:
    return StateTable("hygiene", TS_SLOTS, VAL_SLOTS, (0.0,), n)


@nb.njit(cache=True, inline="always")
def dist_m_nb(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine metres: the scalar twin of `geofences.local.dist_m` (same formula, same radius)."""
    r = math.pi / 180.0
    s_dlat = math.sin((lat2 * r - lat1 * r) * 0.5)
    s_dlon = math.sin((lon2 * r - lon1 * r) * 0.5)
    h = s_dlat * s_dlat + math.cos(lat1 * r) * math.cos(lat2 * r) * s_dlon * s_dlon
    h = min(max(h, 0.0), 1.0)
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def valid_mask(lon: np.ndarray, lat: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Stateless part: terminal-valid, finite, non-zero, on the earth."""
    return (valid & np.isfinite(lon) & np.isfinite(lat) & (lon != 0.0) & (lat != 0.0)
            & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0))


def scan(sidx, ts_ms, lon_e7, lat_e7, act, table: StateTable, params: HygieneParams):
    """Sequential part over a (vehicle, time)-sorted batch → (ok, dt_s, step_m, jump) per row."""
    return _scan(sidx, ts_ms, lon_e7, lat_e7, act, *table.arrays, params.max_speed_kmh, params.jump_min_m,
                 params.reanchor_fixes)


@nb.njit(cache=True)
def _scan(sidx, ts, lon_e7, lat_e7, act, ct, cf, mt, mf, bt, bf, vmax_kmh, jump_min_m, reanchor_n):
    n = sidx.shape[0]
    ok = np.zeros(n, np.bool_)
    dt_s = np.full(n, -1.0)
    step_m = np.zeros(n)
    jump = np.zeros(n, np.int8)
    vmax = vmax_kmh / 3.6
    for i in range(n):
        v = sidx[i]
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_before(v, act[i], ct, cf, mt, mf, bt, bf)
        lon = lon_e7[i] / 1e7
        lat = lat_e7[i] / 1e7
        if ct[v, 0] < 0:
            ok[i] = True
        else:
            dt = (ts[i] - ct[v, 0]) / 1000.0
            d = dist_m_nb(ct[v, 1] / 1e7, ct[v, 2] / 1e7, lon, lat)
            if d <= jump_min_m or d <= vmax * dt:
                ok[i] = True
                dt_s[i] = dt
                step_m[i] = d
            else:
                jump[i] = JUMP_REJECTED
                if ct[v, 3] >= 0:
                    da = dist_m_nb(ct[v, 4] / 1e7, ct[v, 5] / 1e7, lon, lat)
                    dta = (ts[i] - ct[v, 3]) / 1000.0
                    if da <= jump_min_m or da <= vmax * dta:
                        cf[v, 0] += 1.0
                    else:
                        cf[v, 0] = 1.0
                else:
                    cf[v, 0] = 1.0
                ct[v, 3] = ts[i]
                ct[v, 4] = lon_e7[i]
                ct[v, 5] = lat_e7[i]
                if cf[v, 0] >= reanchor_n:
                    ok[i] = True
                    jump[i] = JUMP_RELOCATED
                    dt_s[i] = dt
                    step_m[i] = 0.0  # a relocation is not distance travelled
        if ok[i]:
            ct[v, 0] = ts[i]
            ct[v, 1] = lon_e7[i]
            ct[v, 2] = lat_e7[i]
            ct[v, 3] = -1
            cf[v, 0] = 0.0
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_after(v, act[i], ct, cf, mt, mf)
    return ok, dt_s, step_m, jump
