"""H3 cells as numpy uint64 arrays, with the hierarchy done by bit arithmetic.

The system computes H3 once per fix, at the finest resolution it uses (`DEFAULT_FIX_RES`), and derives
every coarser cell from that integer by masking bits — never again from lat/lon. That is ~1000× cheaper
than calling H3, and it is what lets one fine-resolution column answer queries at any coarser level.

H3 index layout (64 bits, cell mode): bit 63 reserved (0) · bits 59–62 mode (1) · 56–58 reserved ·
52–55 resolution · 45–51 base cell · then 15 digits of 3 bits, digit k at bits 3·(15−k) … 3·(15−k)+2;
digits finer than the resolution are 7 (binary 111). Hence:

* parent at r: write r into the resolution field and set digits r+1 … 15 to 7;
* the descendants of a cell at a finer resolution f all lie in one *contiguous integer range*: digits
  r+1 … f run from 0 to 6 while the higher bits stay fixed (`descendant_range`). This is the trick behind
  `geofences.area` and the index in `geofences.index`.

Beware: H3 is *not* geometrically nested. The parent of a point's res-12 cell is not always the res-10
cell that contains the point (children stick out of their parent by up to about one child cell). Code
that mixes resolutions must allow for that (`nesting_margin_m`).
"""

from __future__ import annotations

from itertools import chain

import h3
import h3._cy as _h3cy
import numpy as np
import numpy.typing as npt

DEFAULT_FIX_RES = 12
"""Resolution at which the system computes each fix's cell (~9 m edge, ~300 m² per cell)."""

U64 = npt.NDArray[np.uint64]

_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF) << _RES_SHIFT
_BASE_SHIFT = np.uint64(45)
_DIGITS_MASK = np.uint64((1 << 45) - 1)


def _low_bits(n_digits: int) -> np.uint64:
    """Mask of the lowest `n_digits` 3-bit digits."""
    return np.uint64((1 << (3 * n_digits)) - 1)


def cells_at(lon: npt.ArrayLike, lat: npt.ArrayLike, res: int = DEFAULT_FIX_RES) -> U64:
    """H3 cell of each point at `res`, as uint64; 0 (H3_NULL) where the coordinate is not a valid lon/lat.

    h3-py has no vectorised latlng_to_cell; calling its Cython entry point through `map` costs ~1 µs per
    point (1 M fixes/s per core), ample for ingest at tens of thousands of fixes/s, and it is H3 itself,
    so cells are exactly the library's.
    """
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)
    out = np.zeros(lon.shape, dtype=np.uint64)
    if ok.all():
        lat_l, lon_l = lat.tolist(), lon.tolist()
    else:
        lat_l, lon_l = lat[ok].tolist(), lon[ok].tolist()
    vals = np.fromiter(map(_h3cy.latlng_to_cell, lat_l, lon_l, [res] * len(lat_l)), dtype=np.uint64, count=len(lat_l))
    if ok.all():
        return vals
    out[ok] = vals
    return out


def cell_centres(cells: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(lon, lat) of each cell's centre (~0.7 µs per cell through H3's Cython entry point)."""
    cells = np.asarray(cells, dtype=np.uint64).ravel()
    flat = np.fromiter(chain.from_iterable(map(_h3cy.cell_to_latlng, cells.tolist())), np.float64, 2 * cells.size)
    return flat[1::2].copy(), flat[0::2].copy()


def cell_resolution(cells: npt.ArrayLike) -> npt.NDArray[np.int64]:
    cells = np.asarray(cells, dtype=np.uint64)
    return ((cells & _RES_MASK) >> _RES_SHIFT).astype(np.int64)


CLEAR_RES = ~_RES_MASK
"""AND-mask clearing a cell's resolution field (see `parent_bits`)."""


def parent_bits(res: int) -> np.uint64:
    """OR-bits turning a cell with cleared resolution field into its ancestor at `res`: the resolution,
    and digits res+1 … 15 set to 7. Ancestor = (cell & CLEAR_RES) | parent_bits(res)."""
    return (np.uint64(res) << _RES_SHIFT) | _low_bits(15 - res)


def parent_cells(cells: npt.ArrayLike, res: int) -> U64:
    """Ancestor of each cell at `res` (cells must be at `res` or finer), by bit arithmetic. 0 stays 0."""
    cells = np.asarray(cells, dtype=np.uint64)
    out = (cells & CLEAR_RES) | parent_bits(res)
    return np.where(cells == 0, np.uint64(0), out)


def child_digits(cells: npt.ArrayLike, coarse_res: int, fine_res: int) -> npt.NDArray[np.int64]:
    """The digits coarse_res+1 … fine_res of each cell packed as a base-8 number (each digit 0…6).

    Used as a slot inside a dense table of one coarse cell's fine descendants (`geofences.index`)."""
    cells = np.asarray(cells, dtype=np.uint64)
    shift = np.uint64(3 * (15 - fine_res))
    return ((cells >> shift) & _low_bits(fine_res - coarse_res)).astype(np.int64)


def descendant_range(cells: npt.ArrayLike, fine_res: int) -> tuple[U64, U64]:
    """(lo, hi) such that every descendant at `fine_res` of cell c is an integer in [lo, hi], and every
    valid `fine_res` cell in [lo, hi] is a descendant of c. Cells may have mixed resolutions ≤ fine_res."""
    cells = np.asarray(cells, dtype=np.uint64)
    r = cell_resolution(cells).astype(np.uint64)
    fine = np.uint64(fine_res)
    # bits of digits r+1 … fine_res: width 3·(fine_res − r), starting at bit 3·(15 − fine_res)
    width = np.uint64(3) * (fine - r)
    start = np.uint64(3 * (15 - fine_res))
    span = ((np.uint64(1) << width) - np.uint64(1)) << start
    base = (cells & ~_RES_MASK) | (fine << _RES_SHIFT)
    lo = base & ~span  # digits → 0
    sixes = _repeat_digit(6, width) << start  # digits → 6
    hi = lo | sixes
    return lo, hi


def _repeat_digit(digit: int, width_bits: npt.NDArray[np.uint64]) -> U64:
    """The 3-bit `digit` repeated to fill `width_bits` (a multiple of 3), per element."""
    pattern = np.uint64(0)
    for k in range(15):
        pattern |= np.uint64(digit) << np.uint64(3 * k)
    return pattern & ((np.uint64(1) << width_bits) - np.uint64(1))


def ordinal(cells: npt.ArrayLike, res: int) -> npt.NDArray[np.int64]:
    """Dense rank of res-`res` cells: base_cell·7^res + digits read in base 7.

    Consecutive ordinals are consecutive valid cells in integer order, which integer order itself does not
    show (the unused digit value 7 leaves holes): used to merge ranges that touch."""
    cells = np.asarray(cells, dtype=np.uint64)
    out = ((cells >> _BASE_SHIFT) & np.uint64(0x7F)).astype(np.int64)
    for k in range(1, res + 1):
        digit = ((cells >> np.uint64(3 * (15 - k))) & np.uint64(7)).astype(np.int64)
        out = out * 7 + digit
    return out


def merge_ranges(lo: npt.ArrayLike, hi: npt.ArrayLike, res: int) -> tuple[U64, U64]:
    """Union of inclusive H3-integer ranges whose ends are res-`res` cells; touching ranges (no valid
    res-`res` cell between them) are joined. Returns sorted, disjoint (lo, hi)."""
    lo = np.asarray(lo, dtype=np.uint64)
    hi = np.asarray(hi, dtype=np.uint64)
    if lo.size == 0:
        return lo.copy(), hi.copy()
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    hi_run = np.maximum.accumulate(hi)  # ranges nest or are disjoint, but be general
    # a new run starts where this range begins after the previous run's end + 1 (in ordinal terms)
    gap = ordinal(lo[1:], res) > ordinal(hi_run[:-1], res) + 1
    starts = np.concatenate([[0], np.flatnonzero(gap) + 1])
    ends = np.concatenate([starts[1:] - 1, [lo.size - 1]])
    return lo[starts], hi_run[ends]


def nesting_margin_m(coarse_res: int, fine_res: int) -> float:
    """How far (metres) a point can lie outside the coarse cell that its fine cell's bit-parent names.

    A child's centre lies inside its parent, so a point is within one circumradius (≈ edge length) of its
    cell's centre, per level. We take 2× the sum over the levels in between as a safe bound."""
    return 2.0 * sum(h3.average_hexagon_edge_length(k, unit="m") for k in range(coarse_res + 1, fine_res + 1))
