"""`ExactShapes.distance_m` for polygons and corridors is a compiled loop over the line segments that repeats
GEOS's point-to-segment arithmetic: it must equal `shapely.distance` on the same local-frame lines bit for
bit (rules compare these distances with thresholds; the engine's results must not depend on which of the
two computed them)."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geofences.exact import ExactShapes
from geofences.kinds import ShapeKind
from geofences.model import Fence

from .strategies import fence_sets, sample_points


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fences=fence_sets(max_fences=4), seed=st.integers(0, 2**31))
def test_line_distance_is_shapely_bit_for_bit(fences: list[Fence], seed: int) -> None:
    ex = ExactShapes.of(fences)
    lon, lat = sample_points(fences, seed, n_uniform=200, n_edge=200)
    for j, fence in enumerate(fences):
        fidx = np.full(lon.size, j)
        got = ex.distance_m(lon, lat, fidx)
        if fence.shape is ShapeKind.CIRCLE:
            continue
        x, y = ex.local_xy(lon, lat, fidx)
        want = shapely.distance(ex.lines_xy[fidx], shapely.points(x, y))
        assert np.array_equal(got, want)


def test_line_distance_on_vertices_and_repeated_points() -> None:
    """Points exactly on vertices and on the line, and a corridor with a repeated vertex (zero-length
    segment) — the degenerate cases of the segment formula."""
    from geofences.local import to_lonlat

    line = shapely.LineString([(0, 0), (100, 0), (100, 0), (100, 80), (30, 120)])
    origin = (114.05, 22.55)
    lon, lat = to_lonlat(shapely.get_coordinates(line)[:, 0], shapely.get_coordinates(line)[:, 1], origin)
    fence = Fence(id="r", name="r", kind="route", shape="corridor", geometry=shapely.LineString(np.column_stack([lon, lat])),
                  half_width_m=20.0)
    ex = ExactShapes.of([fence])
    c = shapely.get_coordinates(ex.lines_xy[0])
    px = np.concatenate([c[:, 0], [50.0, 100.0, 65.0, -10.0, 500.0]])
    py = np.concatenate([c[:, 1], [0.0, 40.0, 100.0, -10.0, 500.0]])
    plon, plat = to_lonlat(px, py, (fence.origin.lon, fence.origin.lat))
    fidx = np.zeros(px.size, np.int64)
    got = ex.distance_m(plon, plat, fidx)
    x, y = ex.local_xy(plon, plat, fidx)
    assert np.array_equal(got, shapely.distance(ex.lines_xy[fidx], shapely.points(x, y)))
