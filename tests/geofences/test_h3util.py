"""H3 arithmetic against the h3 library itself."""

from __future__ import annotations

import h3.api.basic_int as h3
import numpy as np
import pytest

from geofences import h3util
from geofences.cellhash import CellMap


@pytest.fixture(scope="module")
def cells() -> np.ndarray:
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-180, 180, 3000), np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    c = h3util.cells_at(lon, lat, 12)
    assert c.tolist() == [h3.latlng_to_cell(a, b, 12) for a, b in zip(lat, lon)]
    return c


def test_cells_at_invalid_coordinates_are_zero() -> None:
    c = h3util.cells_at([114.05, np.nan, 200.0, 114.05], [22.54, 22.54, 22.54, 95.0], 12)
    assert c[0] != 0 and c[1:].tolist() == [0, 0, 0]
    assert h3util.parent_cells(c, 9)[1:].tolist() == [0, 0, 0]


@pytest.mark.parametrize("res", [0, 3, 8, 10, 11, 12])
def test_parent_cells_by_bits(cells: np.ndarray, res: int) -> None:
    assert h3util.parent_cells(cells, res).tolist() == [h3.cell_to_parent(int(c), res) for c in cells]


@pytest.mark.parametrize("res", [8, 10, 12])
def test_descendant_ranges(cells: np.ndarray, res: int) -> None:
    parents = h3util.parent_cells(cells[:200], res)
    lo, hi = h3util.descendant_range(parents, 12)
    for p, a, b in zip(parents.tolist(), lo.tolist(), hi.tolist()):
        kids = h3.cell_to_children(p, 12) if res < 12 else [p]
        assert min(kids) == a and max(kids) == b


def test_merge_ranges_joins_siblings() -> None:
    parent = h3.latlng_to_cell(22.54, 114.05, 9)
    kids = np.array(sorted(h3.cell_to_children(parent, 12)), np.uint64)
    lo, hi = h3util.merge_ranges(kids, kids, 12)
    plo, phi = h3util.descendant_range([parent], 12)
    assert lo.tolist() == plo.tolist() and hi.tolist() == phi.tolist()
    # drop one child: two ranges
    keep = np.delete(kids, 100)
    lo, hi = h3util.merge_ranges(keep, keep, 12)
    assert lo.size == 2


def test_cell_centres(cells: np.ndarray) -> None:
    lon, lat = h3util.cell_centres(cells[:100])
    assert [(a, b) for a, b in zip(lat, lon)] == [h3.cell_to_latlng(int(c)) for c in cells[:100]]


def test_cellmap_layout() -> None:
    keys = np.array(sorted({h3.latlng_to_cell(22.5 + i * 1e-3, 114.0, 9) for i in range(500)}), np.uint64)
    m = CellMap.build(keys, np.arange(1, keys.size + 1))
    assert np.count_nonzero(m.keys) == keys.size and m.keys.size >= 4 * keys.size
    table = dict(zip(m.keys.tolist(), m.values.tolist()))
    assert [table[int(k)] for k in keys] == list(range(1, keys.size + 1))
