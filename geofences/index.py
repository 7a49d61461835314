"""`FenceIndex`: which fences is each of a million fixes in, in a fraction of a second.

Broad phase, no geometry: every fence is covered by H3 cells at `res` (`geofences.cover`); each covered
cell carries entries (fence, test): ACCEPT for cells wholly inside, otherwise the exact test a point there
needs. Cells with the same entry set share a *group*. A point's cell (bit-parent at `res` of its fix cell)
reaches its entries through a two-level table:

* bucket: the cell's ancestor `BLOCK_DIGITS` levels up, looked up in a small hash table (`CellMap`, a few
  thousand buckets for a city: it stays in cache);
* the bucket is uniform (one group for every descendant: the inside of a big zone) or owns a dense block
  of 8^BLOCK_DIGITS slots addressed by the cell's last digits (bit arithmetic). A slot holds a group id, or
  — for the common single-entry cell — the entry itself.

Binary search in one big sorted array of cells would cost a cache miss per level; this costs one cached
probe and one load. The walk, the expansion to (point, entry) pairs and the exact tests are compiled loops
(`geofences._kernels`); the tests are those of `geofences.cover`: circle (distance to centre), corridor
capsule (distance to the one segment passing near the cell), polygon parity (the two or three edges near
the cell) and, for cells whose centre sits on an edge, shapely's full test.

Use `res` = the fix resolution (default 12, ~9 m cells): the boundary band, and with it the share of points
that need a test, is thinnest. A coarser `res` (e.g. 10 with res-12 fixes) stays exact — the cover widens
its margins by how far H3 children stick out of their bit-parents — but is several times slower.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geofences import _kernels as _k
from geofences.cellhash import CellMap
from geofences.cover import TEST_CAPSULE, TEST_PARITY, CoverEntries, fence_cover
from geofences.exact import ExactShapes, corridor_offsets_m, polygon_edges
from geofences.h3util import (
    CLEAR_RES, DEFAULT_FIX_RES, U64, cell_resolution, cells_at, child_digits, parent_bits, parent_cells,
)
from geofences.kinds import FenceKind
from geofences.local import M_PER_DEG_LAT
from geofences.model import ActivityTable, Fence

BLOCK_DIGITS = 3
"""Levels between a bucket and the indexed cells: blocks of 8^3 = 512 slots (7^3 = 343 used)."""

# an entry packed in 64 bits for sorting and hashing: fence · test · segment
_FENCE_SHIFT = np.uint64(35)
_TEST_SHIFT = np.uint64(32)
_NO_MASK = np.zeros(0, np.bool_)  # `_k.expand` keeps every entry


def _mix(v: npt.NDArray[np.uint64], salt: int) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a well-spread 64-bit hash of each value (wrapping uint64 arithmetic)."""
    z = v + np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True, eq=False)
class FenceIndex:
    """Immutable index over a list of fences; fence i of `fences` is `fence_idx` i in every result."""

    fences: list[Fence]
    res: int  # resolution of the cover
    cell_res: int  # resolution of the points' cells `locate` expects
    ids: npt.NDArray[np.str_]
    kinds: npt.NDArray[np.str_]
    exact: ExactShapes
    activity: ActivityTable
    _bucket_res: int
    _buckets: CellMap  # bucket cell → ≥ 0: uniform group (0: none); < 0: −(block + 1)
    _blocks: npt.NDArray[np.int64]  # (n_blocks · 8^BLOCK_DIGITS,) per child slot: group id, or ~entry
    _group_ptr: npt.NDArray[np.int64]  # CSR over entries; group 0 is empty
    _entries: npt.NDArray[np.uint64]  # fence << 35 | test << 32 | corridor segment or parity edge list
    _parity: npt.NDArray[np.float64]  # parity test records (see _kernels._test)
    _all_fences: npt.NDArray[np.bool_]

    # --- build ----------------------------------------------------------------------------------------

    @classmethod
    def build(cls, fences: Sequence[Fence], res: int = DEFAULT_FIX_RES, cell_res: int = DEFAULT_FIX_RES) -> FenceIndex:
        """Index `fences`, covering them at H3 `res` for points whose cells are at `cell_res` (the fix
        resolution). `res` = `cell_res` is fastest: the thinnest boundary band and no nesting margin."""
        if not 0 <= res <= cell_res <= 15:
            raise ValueError(f"need 0 ≤ res ({res}) ≤ cell_res ({cell_res}) ≤ 15")
        fences = list(fences)
        ids = [f.id for f in fences]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate fence ids in index")
        exact = ExactShapes.of(fences)
        cells, vals, records = [], [], []
        n_record = 0
        for i, f in enumerate(fences):
            e = fence_cover(f, res, cell_res)
            # per-fence numbers made global: corridor segment → ExactShapes.seg row, parity list → record offset
            seg = np.zeros(e.cells.size, np.int64)
            capsule, parity = e.test == TEST_CAPSULE, e.test == TEST_PARITY
            seg[capsule] = e.seg[capsule] + exact.seg_ptr[i]
            if parity.any():
                rec, offsets = _parity_records(e, polygon_edges(f))
                seg[parity] = offsets[e.seg[parity]] + n_record
                records.append(rec)
                n_record += rec.size
            cells.append(e.cells)
            vals.append((np.uint64(i) << _FENCE_SHIFT) | (e.test.astype(np.uint64) << _TEST_SHIFT) | seg.astype(np.uint64))
        if n_record >= 1 << 32:
            raise ValueError("too many polygon boundary cells for one index")
        cell = np.concatenate(cells) if cells else np.zeros(0, np.uint64)
        val = np.concatenate(vals) if vals else np.zeros(0, np.uint64)
        tables = _build_tables(cell, val, res, max(0, res - BLOCK_DIGITS))
        return cls(
            fences=fences,
            res=res,
            cell_res=cell_res,
            ids=np.array(ids, dtype=str),
            kinds=np.array([f.kind.value for f in fences], dtype=str),
            exact=exact,
            activity=ActivityTable.of(fences),
            _parity=np.concatenate(records) if records else np.zeros(0),
            _all_fences=np.ones(len(fences), bool),
            _bucket_res=max(0, res - BLOCK_DIGITS),
            **tables,
        )

    # --- queries --------------------------------------------------------------------------------------

    def locate(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        cells: npt.ArrayLike | None = None,
        fence_mask: npt.ArrayLike | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Sparse (point_idx, fence_idx) pairs of points inside fences, ordered by point.

        `cells`: the points' H3 cells at `cell_res` if already known (the tracker computes them once per
        fix); otherwise they are computed here. `fence_mask`: bool per fence; False fences are skipped
        before any exact test (e.g. only restricted zones active now).
        """
        lon = np.asarray(lon, np.float64).ravel()
        lat = np.asarray(lat, np.float64).ravel()
        if cells is None:
            cells = cells_at(lon, lat, self.cell_res)
        else:
            cells = np.asarray(cells, np.uint64).ravel()
            bad = (cell_resolution(cells) != self.cell_res) & (cells != 0)
            if bad.any():
                raise ValueError(f"cells must be at resolution {self.cell_res} (see FenceIndex.cell_res)")
        if cells.shape != lon.shape or lon.shape != lat.shape:
            raise ValueError("lon, lat and cells must have the same length")
        fence_ok = self._all_fences if fence_mask is None else np.asarray(fence_mask, bool)
        if fence_ok.shape != (len(self.fences),):
            raise ValueError("fence_mask needs one bool per fence")
        point_idx, val = self._candidates(cells, None if fence_mask is None else fence_ok)
        ex = self.exact
        point_idx, fence_idx, pending = _k.test_pairs(
            point_idx, val, lon, lat, fence_ok, ex.lon0, ex.lat0, ex.kx, M_PER_DEG_LAT, ex.size_m, ex.seg,
            self._parity,
        )
        if pending.any():  # cells whose centre sits on a polygon edge: full shapely test
            sel = np.flatnonzero(pending)
            ok = ex.contains_polygon(lon[point_idx[sel]], lat[point_idx[sel]], fence_idx[sel])
            keep = np.ones(point_idx.size, bool)
            keep[sel[~ok]] = False
            point_idx, fence_idx = point_idx[keep], fence_idx[keep]
            dup = np.zeros(point_idx.size, bool)  # the full test may repeat a pair another entry accepted
            dup[1:] = (point_idx[1:] == point_idx[:-1]) & (fence_idx[1:] == fence_idx[:-1])
            point_idx, fence_idx = point_idx[~dup], fence_idx[~dup]
        return point_idx, fence_idx

    def _candidates(self, cells: U64, fence_ok: npt.NDArray[np.bool_] | None = None
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """Broad phase: (point index, packed entry) for every entry of every point's cell, in point order —
        only entries of `fence_ok` fences when given (the exact tests would skip the others anyway)."""
        b = self._buckets
        res, bres = self.res, self._bucket_res
        v = _k.cell_values(  # slot = digits bres+1 … res (see h3util.child_digits)
            cells, CLEAR_RES, parent_bits(res), parent_bits(bres), np.uint64(3 * (15 - res)),
            np.uint64(8 ** (res - bres) - 1), b.keys, b.values, b.shift, b.max_probe, self._blocks, 8**BLOCK_DIGITS,
        )
        if fence_ok is None or fence_ok.all():
            return _k.expand(v, self._group_ptr, self._entries, _NO_MASK)
        ptr, entries = self._masked_groups(fence_ok)
        return _k.expand(v, ptr, entries, fence_ok)

    def _masked_groups(self, fence_ok: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """The group table with the entries of masked-out fences removed (cached per mask: callers pass the
        same few masks on every batch). Group ids are unchanged, so the bucket blocks are shared."""
        cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = self.__dict__.setdefault("_mask_groups", {})
        key = np.packbits(fence_ok).tobytes()
        got = cache.get(key)
        if got is None:
            keep = fence_ok[(self._entries >> _FENCE_SHIFT).astype(np.int64)]
            kept = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)  # kept entries before each entry
            got = (kept[self._group_ptr], self._entries[keep])
            if len(cache) > 8:
                cache.clear()
            cache[key] = got
        return got

    def distance_m(self, lon: npt.ArrayLike, lat: npt.ArrayLike, fence_idx: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Metres from each point to its paired fence's boundary (polygon, circle) or centre line (corridor)."""
        return self.exact.distance_m(lon, lat, fence_idx)

    def corridor_offsets_m(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike, fence_idx: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(signed offset from the centre line, position along the route), metres, for one corridor fence."""
        return corridor_offsets_m(self.fences[fence_idx], lon, lat)

    def active(self, ts_ms: npt.ArrayLike, fence_idx: npt.ArrayLike, tz_offset_min: int = 480) -> npt.NDArray[np.bool_]:
        """For (time, fence) pairs: is the fence in effect (dates, daily windows)? ts in UTC epoch ms."""
        return self.activity.mask(ts_ms, fence_idx, tz_offset_min)

    def mask(self, kinds: Iterable[FenceKind | str] | None = None, ids: Iterable[str] | None = None) -> npt.NDArray[np.bool_]:
        """A `fence_mask` selecting fences by kind and/or id."""
        m = np.ones(len(self.fences), bool)
        if kinds is not None:
            m &= np.isin(self.kinds, [FenceKind(k).value for k in kinds])
        if ids is not None:
            m &= np.isin(self.ids, list(ids))
        return m

    def position(self, fence_id: str) -> int:
        """Index of a fence id in `fences`."""
        hit = np.flatnonzero(self.ids == fence_id)
        if hit.size == 0:
            raise KeyError(fence_id)
        return int(hit[0])


def _parity_records(e: CoverEntries, edges: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """One fence's parity lists as flat records [cx, cy, inside, n, n × (ax, ay, bx, by)] and each list's
    offset, so the hot path reads one contiguous stretch per test."""
    n = np.diff(e.list_ptr)
    size = 4 + 4 * n
    offsets = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    rec = np.empty(int(size.sum()), np.float64)
    rec[offsets] = e.list_centre[:, 0]
    rec[offsets + 1] = e.list_centre[:, 1]
    rec[offsets + 2] = e.list_inside
    rec[offsets + 3] = n
    first = np.repeat(offsets + 4, n) + 4 * (np.arange(n.sum()) - np.repeat(e.list_ptr[:-1], n))
    for c in range(4):
        rec[first + c] = edges[e.list_edge, c]
    return rec, offsets


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values, start, length) of the runs of a sorted array (np.unique without re-sorting)."""
    if sorted_values.size == 0:
        return sorted_values, np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = np.concatenate([[0], np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1])
    return sorted_values[start], start, np.diff(np.concatenate([start, [sorted_values.size]]))


def _build_tables(cell: U64, val: npt.NDArray[np.uint64], res: int, bucket_res: int) -> dict:
    """Group identical entry sets, then lay groups out in bucket blocks (see module docstring)."""
    # stable: entries of one fence stay in the order the cover made them (one fence's capsule entries
    # for a cell stay adjacent, which `locate` relies on to drop duplicate pairs)
    order = np.argsort(cell, kind="stable")
    cell, val = cell[order], val[order]
    ucell, cstart, ccount = _runs(cell)
    if ucell.size == 0:
        return dict(
            _buckets=CellMap.build([], []), _blocks=np.zeros(0, np.int64),
            _group_ptr=np.zeros(2, np.int64), _entries=np.zeros(0, np.uint64),
        )
    # An entry set is identified by an order-free 64-bit hash (sum of mixed entries, mixed with the count);
    # a second independent hash checks that no two different sets collided.
    h1 = np.add.reduceat(_mix(val, 0x9E3779B97F4A7C15), cstart)
    h2 = np.add.reduceat(_mix(val, 0xD1B54A32D192ED03), cstart)
    _, rep, inv = np.unique(_mix(h1 ^ ccount.astype(np.uint64), 0x94D049BB133111EB), return_index=True, return_inverse=True)
    if not (np.array_equal(h2[rep][inv], h2) and np.array_equal(ccount[rep][inv], ccount)):
        raise RuntimeError("entry-set hash collision while building the fence index")
    group_of_cell = inv.ravel().astype(np.int64) + 1  # group 0 = empty
    gcount = ccount[rep]
    group_ptr = np.concatenate([[0, 0], np.cumsum(gcount)]).astype(np.int64)
    src = np.repeat(cstart[rep], gcount) + (np.arange(gcount.sum()) - np.repeat(group_ptr[1:-1], gcount))
    entries = val[src]

    # buckets: cells are sorted, and a parent is a bit prefix, so each bucket's cells are contiguous
    ubucket, bstart, bcount = _runs(parent_cells(ucell, bucket_res))
    gmin = np.minimum.reduceat(group_of_cell, bstart)
    gmax = np.maximum.reduceat(group_of_cell, bstart)
    # uniform: every descendant present with one group (a pentagon bucket has fewer than 7^k, so never)
    uniform = (bcount == 7 ** (res - bucket_res)) & (gmin == gmax)
    bucket_val = np.where(uniform, gmin, 0).astype(np.int64)
    nonuni = np.flatnonzero(~uniform)
    bucket_val[nonuni] = -(np.arange(nonuni.size) + 1)
    slots = 8**BLOCK_DIGITS  # (near res 0 fewer digits are used; the block keeps its fixed size)
    blocks = np.zeros(nonuni.size * slots, np.int64)
    bidx = np.repeat(np.arange(ubucket.size), bcount)
    in_block = ~uniform[bidx]
    block_no = -bucket_val[bidx[in_block]] - 1
    # a cell with a single entry (most of them) holds the entry itself, bit-inverted (negative), so the
    # hot path skips two dependent random loads (group pointer, entry)
    g = group_of_cell[in_block]
    single = gcount[g - 1] == 1
    slot_val = np.where(single, ~entries[group_ptr[g]].astype(np.int64), g)
    blocks[block_no * slots + child_digits(ucell[in_block], bucket_res, res)] = slot_val
    return dict(
        _buckets=CellMap.build(ubucket, bucket_val),
        _blocks=blocks,
        _group_ptr=group_ptr,
        _entries=entries,
    )
