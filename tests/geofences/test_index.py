"""FenceIndex.locate / distance_m against brute-force shapely: zero mismatches (hypothesis).

Boundary tolerance: points within BOUNDARY_TOL_M (1e-4 m ≈ 1e-9°) of a fence's boundary are left out of
the comparison — there either answer is right. Sampled points crowd the boundaries (1e-7° … 1e-4° away)
to exercise exactly the cells where broad phase and narrow phase meet.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofences.h3util import cells_at
from geofences.index import FenceIndex
from geofences.kinds import FenceKind, ShapeKind
from geofences.model import Fence

from .strategies import brute_distance_m, brute_force, corridor_fences, fence_sets, sample_points

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compare(fences: list[Fence], index: FenceIndex, seed: int, fence_mask=None) -> None:
    lon, lat = sample_points(fences, seed)
    p, f = index.locate(lon, lat, cells_at(lon, lat, index.cell_res), fence_mask=fence_mask)
    got = set(zip(p.tolist(), f.tolist()))
    assert len(got) == p.size, "duplicate pairs"
    assert np.all(np.diff(p) >= 0), "pairs not ordered by point"
    want, ambiguous = brute_force(fences, lon, lat)
    if fence_mask is not None:
        want = {(i, j) for i, j in want if fence_mask[j]}
    judged = lambda pairs: {(i, j) for i, j in pairs if not ambiguous[i]}  # noqa: E731
    assert judged(got) == judged(want), (
        f"missing {sorted(judged(want) - judged(got))[:5]}, extra {sorted(judged(got) - judged(want))[:5]}"
    )


@SETTINGS
@given(fences=fence_sets(), seed=st.integers(0, 2**31))
def test_locate_equals_brute_force(fences: list[Fence], seed: int) -> None:
    _compare(fences, FenceIndex.build(fences), seed)


@SETTINGS
@given(fences=fence_sets(max_fences=4), seed=st.integers(0, 2**31), res=st.sampled_from([9, 10, 11]))
def test_locate_coarser_cover_with_fine_cells(fences: list[Fence], seed: int, res: int) -> None:
    """The tracker's configuration: cover at res 10, fixes' cells at res 12 (bit-parents are not
    geometric parents in H3: the cover must allow for that)."""
    _compare(fences, FenceIndex.build(fences, res=res, cell_res=12), seed)


@settings(max_examples=25, deadline=None)
@given(fences=fence_sets(max_fences=5), seed=st.integers(0, 2**31), data=st.data())
def test_locate_with_fence_mask(fences: list[Fence], seed: int, data) -> None:
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(fences), max_size=len(fences))))
    _compare(fences, FenceIndex.build(fences), seed, fence_mask=mask)


@SETTINGS
@given(fences=fence_sets(max_fences=4), seed=st.integers(0, 2**31))
def test_distance_equals_shapely(fences: list[Fence], seed: int) -> None:
    index = FenceIndex.build(fences)
    lon, lat = sample_points(fences, seed, n_uniform=100, n_edge=100)
    for j, fence in enumerate(fences):
        got = index.distance_m(lon, lat, np.full(lon.size, j))
        np.testing.assert_allclose(got, brute_distance_m(fence, lon, lat), rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(fence.distance_m(lon, lat), got, rtol=1e-12, atol=1e-9)


@SETTINGS
@given(fence=corridor_fences("r"), seed=st.integers(0, 2**31))
def test_corridor_offsets(fence: Fence, seed: int) -> None:
    lon, lat = sample_points([fence], seed, n_uniform=200, n_edge=100)
    signed, along = FenceIndex.build([fence]).corridor_offsets_m(lon, lat, 0)
    np.testing.assert_allclose(np.abs(signed), brute_distance_m(fence, lon, lat), rtol=1e-9, atol=1e-6)
    line = fence.local_geometry
    assert np.all((along >= -1e-9) & (along <= line.length + 1e-9))


def test_corridor_offset_sign_is_left_positive() -> None:
    # a route due east: north of it is left of travel
    line = shapely.LineString([(114.05, 22.54), (114.06, 22.54)])
    f = Fence(id="r", name="r", kind=FenceKind.ROUTE, shape=ShapeKind.CORRIDOR, geometry=line, half_width_m=50)
    signed, along = FenceIndex.build([f]).corridor_offsets_m([114.055, 114.055], [22.5401, 22.5399], 0)
    assert signed[0] > 10 and signed[1] < -10
    assert along[0] == pytest.approx(along[1]) and along[0] == pytest.approx(line.length / 2 * 102_700, rel=0.01)


def test_locate_without_cells_and_edge_inputs() -> None:
    f = Fence(id="c", name="c", kind=FenceKind.DEPOT, shape=ShapeKind.CIRCLE,
              geometry=shapely.Point(114.05, 22.54), radius_m=100)
    index = FenceIndex.build([f])
    p, fi = index.locate([114.05, 114.06, np.nan], [22.54, 22.54, 22.54])
    assert p.tolist() == [0] and fi.tolist() == [0]
    with pytest.raises(ValueError, match="resolution"):
        index.locate([114.05], [22.54], cells_at([114.05], [22.54], 10))
    empty = FenceIndex.build([])
    assert empty.locate([114.05], [22.54])[0].size == 0


def test_index_helpers() -> None:
    fences = [
        Fence(id="a", name="a", kind=FenceKind.DEPOT, shape=ShapeKind.CIRCLE, geometry=shapely.Point(114.05, 22.54), radius_m=50),
        Fence(id="b", name="b", kind=FenceKind.RESTRICTED_ZONE, shape=ShapeKind.CIRCLE,
              geometry=shapely.Point(114.05, 22.54), radius_m=500, windows=((1320, 360),)),
    ]
    index = FenceIndex.build(fences)
    assert index.ids.tolist() == ["a", "b"] and index.kinds.tolist() == ["depot", "restricted_zone"]
    assert index.mask(kinds=["restricted_zone"]).tolist() == [False, True]
    assert index.position("b") == 1
    p, f = index.locate([114.05], [22.54], fence_mask=index.mask(kinds=[FenceKind.RESTRICTED_ZONE]))
    assert f.tolist() == [1]
    # 2024-05-01 23:00 Beijing = 15:00 UTC: inside the zone's night window; 12:00 Beijing is not
    ts = np.array([1714575600000, 1714536000000])
    assert index.active(ts, np.array([1, 1])).tolist() == [True, False]
    with pytest.raises(ValueError, match="duplicate"):
        FenceIndex.build([fences[0], fences[0]])
