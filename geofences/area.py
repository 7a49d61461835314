"""Area queries over history without PostGIS: a polygon becomes a few integer ranges of H3 cells.

"Which fixes fell inside this polygon between T1 and T2?" The history table stores, for every fix, its H3
cell at the fine resolution (`h3 bigint`, res 12) with a B-tree index on (h3, ts). The trick:

1. Cover the polygon with fine cells (`geofences.cover`: interior cells and boundary cells).
2. Compact the cover (`h3.compact_cells`): seven siblings become their parent, recursively, so a large
   polygon's inside is a few coarse cells plus a fringe of fine ones.
3. In an H3 index the digits of finer levels are the low bits, so all fine descendants of a cell are the
   integers between its *min descendant* (those digits 0) and its *max descendant* (digits 6) — one
   contiguous range, containing no other valid fine cell. Each compacted cell becomes `[lo, hi]`.
4. Ranges that touch (no valid fine cell between them) are merged.

A polygon thus turns into a short list of `h3 BETWEEN lo AND hi`, each an index range scan; H3 indexes are
< 2^63, so they fit PostgreSQL's signed bigint unchanged. Rows from *interior* ranges are inside for sure;
rows from *edge* ranges need the exact test (`Fence.contains` on their lon/lat).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import h3.api.basic_int as h3
import numpy as np
from shapely.geometry.base import BaseGeometry

from geofences.cover import ACCEPT, fence_cover
from geofences.h3util import DEFAULT_FIX_RES, U64, descendant_range, merge_ranges, ordinal
from geofences.kinds import FenceKind, ShapeKind
from geofences.model import Fence

Range = tuple[int, int]


@dataclass(frozen=True)
class AreaRanges:
    """Fine-cell ranges of an area: `interior` rows are inside, `edge` rows need the exact test."""

    interior: list[Range]
    edge: list[Range]
    res: int = DEFAULT_FIX_RES

    @property
    def all(self) -> list[Range]:
        """Both lists merged into one (touching interior and edge ranges join)."""
        lo, hi = merge_ranges(*_arrays(self.interior + self.edge), self.res)
        return [(int(a), int(b)) for a, b in zip(lo, hi)]


def _arrays(ranges: Sequence[Range]) -> tuple[U64, U64]:
    a = np.array(ranges, dtype=np.uint64).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def _as_fence(area: Fence | BaseGeometry) -> Fence:
    if isinstance(area, Fence):
        return area
    return Fence(id="area", name="area", kind=FenceKind.WORK_AREA, shape=ShapeKind.POLYGON, geometry=area)


def cells_to_ranges(cells: U64, res: int) -> list[Range]:
    """Compact `cells` (all at `res`), turn each compacted cell into its [min, max] descendant at `res`,
    merge touching ranges."""
    if len(cells) == 0:
        return []
    compact = np.asarray(h3.compact_cells([int(c) for c in cells]), dtype=np.uint64)
    lo, hi = merge_ranges(*descendant_range(compact, res), res)
    return [(int(a), int(b)) for a, b in zip(lo, hi)]


def area_ranges(area: Fence | BaseGeometry, res: int = DEFAULT_FIX_RES) -> AreaRanges:
    """Fine-resolution cell ranges covering a polygon (WGS-84) or any fence (circle, corridor)."""
    e = fence_cover(_as_fence(area), res)
    interior = np.unique(e.cells[e.test == ACCEPT])
    edge = np.setdiff1d(e.cells[e.test != ACCEPT], interior)
    return AreaRanges(cells_to_ranges(interior, res), cells_to_ranges(edge, res), res)


def h3_ranges(area: Fence | BaseGeometry, res: int = DEFAULT_FIX_RES, max_ranges: int | None = None) -> list[Range]:
    """All ranges (interior and edge together) as (lo, hi) ints, for `h3 BETWEEN lo AND hi`.

    `max_ranges` caps the count by closing the smallest gaps (the result stays a superset: rows in it
    still need the exact test unless they come from `area_ranges(...).interior`)."""
    ranges = area_ranges(area, res).all
    if max_ranges is not None and len(ranges) > max_ranges:
        ranges = coarsen(ranges, max_ranges, res)
    return ranges


def coarsen(ranges: Sequence[Range], max_ranges: int, res: int = DEFAULT_FIX_RES) -> list[Range]:
    """Merge across the smallest gaps (counted in fine cells) until at most `max_ranges` remain."""
    if len(ranges) <= max_ranges:
        return list(ranges)
    lo, hi = _arrays(sorted(ranges))
    gaps = ordinal(lo[1:], res) - ordinal(hi[:-1], res)
    keep_gap = np.zeros(gaps.size, bool)
    keep_gap[np.argsort(gaps, kind="stable")[gaps.size - (max(1, max_ranges) - 1):]] = True
    starts = np.concatenate([[0], np.flatnonzero(keep_gap) + 1])
    ends = np.concatenate([starts[1:] - 1, [lo.size - 1]])
    return [(int(lo[s]), int(hi[e])) for s, e in zip(starts, ends)]


def _check_identifier(name: str) -> None:
    """Column names are spliced into SQL: allow only plain (optionally qualified) identifiers."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise ValueError(f"bad column name {name!r}")


def ranges_sql(ranges: Sequence[Range], column: str = "h3") -> tuple[str, list[int]]:
    """`(h3 BETWEEN %s AND %s OR …)` and its parameters (psycopg placeholders). PostgreSQL answers it with
    a BitmapOr of B-tree range scans; keep the list to a few hundred (`max_ranges`)."""
    _check_identifier(column)
    if not ranges:
        return "FALSE", []
    sql = "(" + " OR ".join(f"{column} BETWEEN %s AND %s" for _ in ranges) + ")"
    return sql, [v for r in ranges for v in r]


def area_where_sql(
    area: Fence | BaseGeometry,
    t_from: datetime | None = None,
    t_to: datetime | None = None,
    res: int = DEFAULT_FIX_RES,
    column: str = "h3",
    ts_column: str = "ts",
    max_ranges: int = 256,
) -> tuple[str, list]:
    """WHERE fragment + params for "rows whose cell may lie in `area`, with t_from ≤ ts < t_to". Filter the
    rows with `Fence.contains` (or take `area_ranges(...).interior` rows as they are)."""
    _check_identifier(ts_column)
    sql, params = ranges_sql(h3_ranges(area, res, max_ranges), column)
    parts: list = [sql]
    if t_from is not None:
        parts.append(f"{ts_column} >= %s")
        params.append(t_from)
    if t_to is not None:
        parts.append(f"{ts_column} < %s")
        params.append(t_to)
    return " AND ".join(parts), params
