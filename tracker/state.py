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
def snap_before(v: int, act: int, ct, cf, mt, mf, bt, bf) -> None:
    """Kernels call this (and `snap_after`) as `if act[i] != 0: snap_before(v, act[i], ...)`: the same test
    as the one inside, but at the call site it lets the compiled scan loop stay tight (hygiene's scan runs
    ~1.5x, signal loss's ~4x faster than with an unguarded call, where most rows have no action)."""
    if act & SNAP_REBASE_BEFORE:
        for j in range(ct.shape[1]):
            bt[v, j] = mt[v, j]
            mt[v, j] = ct[v, j]
        for j in range(cf.shape[1]):
            bf[v, j] = mf[v, j]
            mf[v, j] = cf[v, j]


@nb.njit(cache=True, inline="always")
def snap_after(v: int, act: int, ct, cf, mt, mf) -> None:
    if act & SNAP_MID_AFTER:
        for j in range(ct.shape[1]):
            mt[v, j] = ct[v, j]
        for j in range(cf.shape[1]):
            mf[v, j] = cf[v, j]


@nb.njit(cache=True, inline="always")
def snap_only(v: int, act: int, ct, cf, mt, mf, bt, bf) -> None:
    """Apply the snapshot actions of a row whose state a kernel would not change (a rule skipping vehicles
    with nothing going on): cur is constant for it, so the actions alone give the right mid and base."""
    snap_before(v, act, ct, cf, mt, mf, bt, bf)
    snap_after(v, act, ct, cf, mt, mf)


@nb.njit(cache=True)
def _map_rows(sidx, kind, row_of, kinds):
    """`row_of[sidx]`, and whether a vehicle of a concerned kind has no row yet."""
    n = sidx.shape[0]
    out = np.empty(n, np.int32)
    any_new = False
    for i in range(n):
        r = row_of[sidx[i]]
        out[i] = r
        if r < 0 and kinds[kind[i]]:
            any_new = True
    return out, any_new


NONE_TS = -1  # "no time" in a timestamp slot (fix times are positive epoch milliseconds)


class StateTable:
    """One component's per-vehicle state, ×3 (cur, mid, base): an int64 matrix of timestamp slots (epoch ms,
    exact) and a float32 matrix of value slots (distances, levels, codes — float32 holds integers < 2^24
    exactly). Two dtypes rather than one float64 matrix halve the bytes of the value slots, which is most of
    the per-vehicle memory. A snapshot is a row copy of each. Timestamp slots start at `NONE_TS`, value
    slots at `val_init`.

    Rows: with `kinds=None` every vehicle has a row and row = the vehicle's state index (`sidx`). A rule that
    only concerns some vehicle kinds (a muck-truck rule has nothing to say about sweepers) passes `kinds`, a
    boolean per vehicle kind code: then only those vehicles get a row, allocated the first time one is seen
    (`rows`), and `owner[row]` gives the vehicle back."""

    def __init__(self, name: str, ts_slots: Sequence[str], val_slots: Sequence[str],
                 val_init: Sequence[float] | None = None, n: int = 0, kinds: np.ndarray | None = None):
        self.name = name
        self.ts_slots = tuple(ts_slots)
        self.val_slots = tuple(val_slots)
        self.val_init = np.asarray(val_init if val_init is not None else [0.0] * len(self.val_slots), np.float32)
        if self.val_init.shape != (len(self.val_slots),):
            raise ValueError(f"{name}: {len(self.val_slots)} value slots but {self.val_init.shape[0]} initial values")
        self.kinds = None if kinds is None else np.asarray(kinds, np.bool_)
        self.ct = np.zeros((0, len(self.ts_slots)), np.int64)
        self.cf = np.zeros((0, len(self.val_slots)), np.float32)
        self.mt, self.mf, self.bt, self.bf = self.ct.copy(), self.cf.copy(), self.ct.copy(), self.cf.copy()
        self.n_rows = 0
        self.row_of = np.zeros(0, np.int32)  # vehicle state index → row (−1: none), mapped tables only
        self.owner = np.zeros(0, np.int32)  # row → vehicle state index
        self.grow(n)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """(ct, cf, mt, mf, bt, bf): what a kernel takes to update and snapshot this table."""
        return self.ct, self.cf, self.mt, self.mf, self.bt, self.bf

    def __len__(self) -> int:
        return self.n_rows

    def _grow_matrices(self, n: int) -> None:
        have = self.ct.shape[0]
        if n <= have:
            return
        cap = max(n, int(have * 1.5) + 16)
        ft = np.full((cap - have, len(self.ts_slots)), NONE_TS, np.int64)
        ff = np.tile(self.val_init, (cap - have, 1))
        self.ct, self.mt, self.bt = (np.concatenate([a, ft]) for a in (self.ct, self.mt, self.bt))
        self.cf, self.mf, self.bf = (np.concatenate([a, ff]) for a in (self.cf, self.mf, self.bf))

    def grow(self, n: int) -> None:
        """Make room for vehicle state indices < n."""
        if self.kinds is None:
            self._grow_matrices(n)
            if n > self.n_rows:
                self.owner = np.arange(n, dtype=np.int32)
                self.n_rows = n
        elif n > self.row_of.shape[0]:
            self.row_of = np.concatenate([self.row_of, np.full(n - self.row_of.shape[0], -1, np.int32)])

    def rows(self, sidx: npt.NDArray[np.int32], kind: npt.NDArray[np.int8]) -> npt.NDArray[np.int32]:
        """Row of each batch row's vehicle (−1 when the table does not concern its kind), allocating rows for
        vehicles seen for the first time."""
        if self.kinds is None:
            if sidx.size and int(sidx.max()) >= self.n_rows:
                self.grow(int(sidx.max()) + 1)
            return sidx
        if sidx.size and int(sidx.max()) >= self.row_of.shape[0]:
            self.grow(int(sidx.max()) + 1)
        r, any_new = _map_rows(sidx, kind, self.row_of, self.kinds)
        if any_new:
            new = (r < 0) & self.kinds[kind]
            fresh = np.unique(sidx[new])
            k = fresh.size
            self._grow_matrices(self.n_rows + k)
            self.row_of[fresh] = np.arange(self.n_rows, self.n_rows + k, dtype=np.int32)
            self.owner = np.concatenate([self.owner, fresh.astype(np.int32)])
            self.n_rows += k
            r = self.row_of[sidx]
        return r

    def row(self, s: int) -> int:
        if self.kinds is None:
            return s if s < self.n_rows else -1
        return int(self.row_of[s]) if s < self.row_of.shape[0] else -1

    def reset(self, rows: np.ndarray) -> None:
        """Blank the current state of some rows (after their episodes were closed at end of data)."""
        self.ct[rows] = NONE_TS
        self.cf[rows] = self.val_init

    def restore(self, sidx: npt.NDArray[np.int32]) -> None:
        """Roll vehicles back to their base state (before the oldest retained fix), for a re-run."""
        if self.kinds is not None:
            sidx = sidx[sidx < self.row_of.shape[0]]
            sidx = self.row_of[sidx]
            sidx = sidx[sidx >= 0]
        else:
            sidx = sidx[sidx < self.n_rows]
        self.ct[sidx] = self.bt[sidx]
        self.cf[sidx] = self.bf[sidx]
        self.mt[sidx] = self.bt[sidx]
        self.mf[sidx] = self.bf[sidx]

    def fresh(self, n: int) -> StateTable:
        """A blank table of the same shape (for evaluating a detached block of very late fixes)."""
        return StateTable(self.name, self.ts_slots, self.val_slots, self.val_init, n, self.kinds)

    def nbytes(self) -> int:
        """Bytes allocated (capacity, not just rows in use: growth slack is memory too)."""
        return int(sum(a.nbytes for a in self.arrays) + self.row_of.nbytes + self.owner.nbytes)


class TableGroup:
    """Several tables one rule owns (e.g. route deviation's confirmed and provisional runs), managed as one."""

    def __init__(self, tables: dict[str, StateTable]):
        self.tables = tables

    def __getitem__(self, name: str) -> StateTable:
        return self.tables[name]

    def __len__(self) -> int:
        return max((len(t) for t in self.tables.values()), default=0)

    def grow(self, n: int) -> None:
        for t in self.tables.values():
            t.grow(n)

    def restore(self, sidx: npt.NDArray[np.int32]) -> None:
        for t in self.tables.values():
            t.restore(sidx)

    def fresh(self, n: int) -> TableGroup:
        return TableGroup({k: t.fresh(n) for k, t in self.tables.items()})

    def nbytes(self) -> int:
        return sum(t.nbytes() for t in self.tables.values())


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
    speed_dkmh: npt.NDArray[np.uint16]
    heading_cdeg: npt.NDArray[np.uint16]
    flags: npt.NDArray[np.uint8]
    load: npt.NDArray[np.int8]
    drum: npt.NDArray[np.int8]


class Ring:
    """The last K..2K raw fixes of every vehicle (fixed capacity 2K), 23 bytes per fix.

    The engine quantises every fix on entry — coordinates to int32 1e-7° (1 cm), speed to 0.1 km/h, heading
    to 0.01° — and stores exactly those numbers here, so a replay from the ring sees bit-identical inputs to
    the first pass."""

    def __init__(self, k: int, n: int = 0):
        if k < 1:
            raise ValueError("ring half-capacity k must be ≥ 1")
        self.k = k
        self.cap = 2 * k
        self.ts_ms = np.zeros((0, self.cap), np.int64)
        # fix columns, as in the engine's row dicts
        self.lon_e7 = np.zeros((0, self.cap), np.int32)
        self.lat_e7 = np.zeros((0, self.cap), np.int32)
        self.speed_dkmh = np.zeros((0, self.cap), np.uint16)
        self.heading_cdeg = np.zeros((0, self.cap), np.uint16)
        self.flags = np.zeros((0, self.cap), np.uint8)
        self.load = np.zeros((0, self.cap), np.int8)
        self.drum = np.zeros((0, self.cap), np.int8)
        self.start = np.zeros(0, np.int16)  # slot of the oldest fix
        self.count = np.zeros(0, np.int16)
        self.base_ts_ms = np.zeros(0, np.int64)  # fixes at or before this were dropped (exactness horizon)
        self.last_ts_ms = np.zeros(0, np.int64)  # newest fix time seen
        self.first_ts_ms = np.zeros(0, np.int64)  # oldest fix time seen
        self.gaps = np.zeros((0, GAP_SLOTS, 2), np.int64)  # the last silent intervals (a, b) of the stream
        self.gap_min_ms = 60_000
        self.grow(n)

    _COLS = ("ts_ms", "lon_e7", "lat_e7", "speed_dkmh", "heading_cdeg", "flags", "load", "drum")

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
        self.first_ts_ms = np.concatenate([self.first_ts_ms, np.full(extra, np.iinfo(np.int64).max, np.int64)])
        self.gaps = np.concatenate([self.gaps, np.full((extra, GAP_SLOTS, 2), none, np.int64)])

    def plan(self, vidx: npt.NDArray[np.int32]) -> npt.NDArray[np.int8]:
        """Snapshot action per row of a (vehicle, time)-sorted batch about to be pushed."""
        return _plan(vidx, self.count, self.k)

    def push(self, rows: dict[str, np.ndarray]) -> None:
        """Append rows (sorted by vehicle, time) and drop the oldest K whenever a ring is full."""
        _push(rows["vidx"], *(rows[c] for c in self._COLS), self.k, *(getattr(self, c) for c in self._COLS),
              self.start, self.count, self.base_ts_ms, self.last_ts_ms, self.first_ts_ms, self.gaps,
              self.gap_min_ms)

    def fills_gap(self, vidx: npt.NDArray[np.int32], ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Is a fix older than the retained window new data — before the first fix ever seen, or inside a
        recorded silent interval — rather than a re-delivery of something already evaluated?"""
        g = self.gaps[vidx]
        inside = ((g[:, :, 0] < ts_ms[:, None]) & (ts_ms[:, None] < g[:, :, 1])).any(axis=1)
        return inside | (ts_ms < self.first_ts_ms[vidx])

    def consume_gap(self, vidx: npt.NDArray[np.int32], ts_ms: npt.NDArray[np.int64]) -> None:
        """Detached fixes were evaluated: the part of their gap they cover is no longer new."""
        for v in np.unique(vidx).tolist():
            t = ts_ms[vidx == v]
            lo, hi = int(t.min()), int(t.max())
            self.first_ts_ms[v] = min(int(self.first_ts_ms[v]), lo)
            for j in range(GAP_SLOTS):
                a, b = (int(x) for x in self.gaps[v, j])
                if a < hi and lo < b:  # keep the larger uncovered side
                    self.gaps[v, j] = (a, lo) if lo - a >= b - hi else (hi, b)

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
            + self.base_ts_ms.nbytes + self.last_ts_ms.nbytes + self.first_ts_ms.nbytes + self.gaps.nbytes


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


GAP_SLOTS = 2


@nb.njit(cache=True)
def _push(vidx, ts, lon, lat, spd, hdg, flg, load, drum, k, r_ts, r_lon, r_lat, r_spd, r_hdg, r_flg, r_load,
          r_drum, start, count, base_ts, last_ts, first_ts, gaps, gap_min):
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
            if last_ts[v] > np.iinfo(np.int64).min and ts[i] - last_ts[v] >= gap_min:
                j = 0 if gaps[v, 0, 1] <= gaps[v, 1, 1] else 1  # replace the older record
                gaps[v, j, 0] = last_ts[v]
                gaps[v, j, 1] = ts[i]
            last_ts[v] = ts[i]
        else:  # a replayed late fix: the silence it falls in was not one; keep the larger remainder
            for j in range(gaps.shape[1]):
                a, b = gaps[v, j, 0], gaps[v, j, 1]
                if a < ts[i] < b:
                    if ts[i] - a >= b - ts[i]:
                        b = ts[i]
                    else:
                        a = ts[i]
                    if b - a < gap_min:
                        a = np.iinfo(np.int64).min
                        b = np.iinfo(np.int64).min
                    gaps[v, j, 0] = a
                    gaps[v, j, 1] = b
        if ts[i] < first_ts[v]:
            first_ts[v] = ts[i]


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
