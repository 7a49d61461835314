"""Per-vehicle state carried between batches, and the retained window that makes late fixes exact.

Layout: struct-of-arrays indexed by `vidx`, never a Python object per vehicle, so 100,000 vehicles cost a few
hundred kilobytes of numpy arrays and numba kernels can update them in place while scanning a batch.

Why three copies of every state table (`cur`, `mid`, `base`) and a ring of recent fixes: a back-filled or
out-of-order fix must be evaluated *in fix-time order*, as if it had arrived on time. The ring keeps each
vehicle's last K..2K fixes (raw, so the whole pipeline can be replayed) and `base` is the state just before
the oldest of them. A late fix newer than the ring's start is handled exactly by restoring `cur := base` and
re-running ring ∪ late fixes; the output is then identical to in-order processing. `mid` is the state after
the K-th ring fix: when the ring is full it drops its oldest K fixes and `base := mid`, without replaying
anything. Kernels apply these snapshots while they scan, driven by per-row action codes (`SNAP_*`) that
`Ring.plan` computes before the scan.

Late fixes older than the ring's start (a terminal back-filling hours later) are still evaluated — see
`tracker.engine` — but from a fresh state, not from history the engine no longer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

#: Row action codes (bit set), applied by every stateful kernel to its own table.
SNAP_REBASE_BEFORE = 1  # before the row: base := mid; mid := cur
SNAP_MID_AFTER = 2  # after the row: mid := cur


@nb.njit(cache=True, inline="always")
def snap_before(v: int, act: int, cur: np.ndarray, mid: np.ndarray, base: np.ndarray) -> None:
    if act & SNAP_REBASE_BEFORE:
        for j in range(cur.shape[1]):
            base[v, j] = mid[v, j]
            mid[v, j] = cur[v, j]


@nb.njit(cache=True, inline="always")
def snap_after(v: int, act: int, cur: np.ndarray, mid: np.ndarray) -> None:
    if act & SNAP_MID_AFTER:
        for j in range(cur.shape[1]):
            mid[v, j] = cur[v, j]


class StateTable:
    """One component's per-vehicle state: a float64 matrix (n_vehicles, n_slots) ×3 (cur, mid, base).

    float64 holds epoch milliseconds exactly (< 2^53), counts and codes, so one dtype serves every slot and
    a snapshot is one row copy. `init` gives each slot's value for a vehicle never seen (−1 = "none")."""

    def __init__(self, name: str, slots: Sequence[str], init: Sequence[float] | None = None, n: int = 0):
        self.name = name
        self.slots = tuple(slots)
        self.init = np.asarray(init if init is not None else [0.0] * len(self.slots), dtype=np.float64)
        if self.init.shape != (len(self.slots),):
            raise ValueError(f"{name}: {len(self.slots)} slots but {self.init.shape[0]} initial values")
        self.cur = np.empty((0, len(self.slots)))
        self.mid = self.cur.copy()
        self.base = self.cur.copy()
        self.grow(n)

    def slot(self, name: str) -> int:
        return self.slots.index(name)

    def __len__(self) -> int:
        return self.cur.shape[0]

    def grow(self, n: int) -> None:
        have = self.cur.shape[0]
        if n <= have:
            return
        cap = max(n, int(have * 1.5) + 16)
        fresh = np.tile(self.init, (cap - have, 1))
        self.cur = np.concatenate([self.cur, fresh])
        self.mid = np.concatenate([self.mid, fresh])
        self.base = np.concatenate([self.base, fresh])

    def restore(self, vidx: npt.NDArray[np.int32]) -> None:
        """Roll vehicles back to their base state (before the oldest retained fix), for a re-run."""
        self.cur[vidx] = self.base[vidx]
        self.mid[vidx] = self.base[vidx]

    def fresh(self, n: int) -> StateTable:
        """A blank table of the same shape (for evaluating a detached block of very late fixes)."""
        return StateTable(self.name, self.slots, self.init, n)

    def nbytes(self) -> int:
        return self.cur.nbytes + self.mid.nbytes + self.base.nbytes


# -- packed sensor flags, as stored in the ring and passed to kernels ---------------------------------------
#: tri-state booleans use 2 bits: 0 = not reported, 1 = false, 2 = true
FLAG_COVER = 0
FLAG_LIFTING = 2
FLAG_DEVICE = 4
FLAG_BACKFILL = 6  # 1 bit


@dataclass
class RingView:
    """Rows taken out of the ring for a re-run (already in time order per vehicle)."""

    vidx: npt.NDArray[np.int32]
    ts_ms: npt.NDArray[np.int64]
    lon_e7: npt.NDArray[np.int32]
    lat_e7: npt.NDArray[np.int32]
    speed_kmh: npt.NDArray[np.float32]
    heading_deg: npt.NDArray[np.float32]
    flags: npt.NDArray[np.uint8]
    load: npt.NDArray[np.int8]
    drum: npt.NDArray[np.int8]


class Ring:
    """The last K..2K raw fixes of every vehicle (fixed capacity 2K), 25 bytes per fix.

    Coordinates are stored as int32 1e-7 degrees (1 cm): the engine quantises every fix to this grid on
    entry, so a replay from the ring sees bit-identical coordinates to the first pass."""

    def __init__(self, k: int, n: int = 0):
        if k < 1:
            raise ValueError("ring half-capacity k must be ≥ 1")
        self.k = k
        self.cap = 2 * k
        self.ts_ms = np.zeros((0, self.cap), np.int64)
        self.lon_e7 = np.zeros((0, self.cap), np.int32)
        self.lat_e7 = np.zeros((0, self.cap), np.int32)
        self.speed_kmh = np.zeros((0, self.cap), np.float32)
        self.heading_deg = np.zeros((0, self.cap), np.float32)
        self.flags = np.zeros((0, self.cap), np.uint8)
        self.load = np.zeros((0, self.cap), np.int8)
        self.drum = np.zeros((0, self.cap), np.int8)
        self.start = np.zeros(0, np.int16)  # slot of the oldest fix
        self.count = np.zeros(0, np.int16)
        self.base_ts_ms = np.zeros(0, np.int64)  # fixes at or before this were dropped (exactness horizon)
        self.last_ts_ms = np.zeros(0, np.int64)  # newest fix time seen
        self.grow(n)

    _COLS = ("ts_ms", "lon_e7", "lat_e7", "speed_kmh", "heading_deg", "flags", "load", "drum")

    def grow(self, n: int) -> None:
        have = self.start.shape[0]
        if n <= have:
            return
        cap = max(n, int(have * 1.5) + 16)
        extra = cap - have
        for name in self._COLS:
            arr = getattr(self, name)
            setattr(self, name, np.concatenate([arr, np.zeros((extra, self.cap), arr.dtype)]))
        self.start = np.concatenate([self.start, np.zeros(extra, np.int16)])
        self.count = np.concatenate([self.count, np.zeros(extra, np.int16)])
        none = np.iinfo(np.int64).min
        self.base_ts_ms = np.concatenate([self.base_ts_ms, np.full(extra, none, np.int64)])
        self.last_ts_ms = np.concatenate([self.last_ts_ms, np.full(extra, none, np.int64)])

    def plan(self, vidx: npt.NDArray[np.int32]) -> npt.NDArray[np.int8]:
        """Snapshot action per row of a (vehicle, time)-sorted batch about to be pushed."""
        return _plan(vidx, self.count, self.k)

    def push(self, vidx, ts_ms, lon_e7, lat_e7, speed_kmh, heading_deg, flags, load, drum) -> None:
        """Append rows (sorted by vehicle, time) and drop the oldest K whenever a ring is full."""
        _push(vidx, ts_ms, lon_e7, lat_e7, speed_kmh, heading_deg, flags, load, drum, self.k,
              self.ts_ms, self.lon_e7, self.lat_e7, self.speed_kmh, self.heading_deg, self.flags, self.load,
              self.drum, self.start, self.count, self.base_ts_ms, self.last_ts_ms)

    def take(self, vehicles: npt.NDArray[np.int32]) -> RingView:
        """The retained rows of `vehicles` (in order), and empty their rings (they are about to be re-run)."""
        counts = self.count[vehicles].astype(np.int64)
        rows_v = np.repeat(vehicles, counts)
        offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = (self.start[rows_v].astype(np.int64) + offs) % self.cap
        view = RingView(vidx=rows_v.astype(np.int32), **{c: getattr(self, c)[rows_v, slots] for c in self._COLS})
        self.count[vehicles] = 0
        self.start[vehicles] = 0
        return view

    def contains_ts(self, vidx: npt.NDArray[np.int32], ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Is there already a retained fix of vehicle vidx[i] at exactly ts_ms[i] (a duplicate)?"""
        return _contains(vidx, ts_ms, self.ts_ms, self.start, self.count)

    def nbytes(self) -> int:
        return sum(getattr(self, c).nbytes for c in self._COLS) + self.start.nbytes + self.count.nbytes \
            + self.base_ts_ms.nbytes + self.last_ts_ms.nbytes


@nb.njit(cache=True)
def _plan(vidx, count, k):
    n = vidx.shape[0]
    out = np.zeros(n, np.int8)
    cap = 2 * k
    i = 0
    while i < n:
        v = vidx[i]
        c = count[v]
        while i < n and vidx[i] == v:
            act = 0
            if c == cap:
                act |= SNAP_REBASE_BEFORE
                c = k
            c += 1
            if c == k:
                act |= SNAP_MID_AFTER
            out[i] = act
            i += 1
    return out


@nb.njit(cache=True)
def _push(vidx, ts, lon, lat, spd, hdg, flg, load, drum, k, r_ts, r_lon, r_lat, r_spd, r_hdg, r_flg, r_load,
          r_drum, start, count, base_ts, last_ts):
    cap = 2 * k
    for i in range(vidx.shape[0]):
        v = vidx[i]
        if count[v] == cap:
            base_ts[v] = r_ts[v, (start[v] + k - 1) % cap]
            start[v] = (start[v] + k) % cap
            count[v] = k
        s = (start[v] + count[v]) % cap
        r_ts[v, s] = ts[i]
        r_lon[v, s] = lon[i]
        r_lat[v, s] = lat[i]
        r_spd[v, s] = spd[i]
        r_hdg[v, s] = hdg[i]
        r_flg[v, s] = flg[i]
        r_load[v, s] = load[i]
        r_drum[v, s] = drum[i]
        count[v] += 1
        if ts[i] > last_ts[v]:
            last_ts[v] = ts[i]


@nb.njit(cache=True)
def _contains(vidx, ts, r_ts, start, count):
    n = vidx.shape[0]
    out = np.zeros(n, np.bool_)
    cap = r_ts.shape[1]
    for i in range(n):
        v = vidx[i]
        for j in range(count[v]):
            if r_ts[v, (start[v] + j) % cap] == ts[i]:
                out[i] = True
                break
    return out
