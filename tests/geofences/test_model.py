"""Fence invariants, metric shapes, and when a fence is in force."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofences.kinds import FenceKind, ShapeKind
from geofences.local import to_xy_m
from geofences.model import ActivityTable, Fence

SQUARE = shapely.box(114.05, 22.54, 114.06, 22.55)
CST = timezone(timedelta(hours=8))


def fence(**kw) -> Fence:
    base = dict(id="f", name="f", kind=FenceKind.CONSTRUCTION_SITE, shape=ShapeKind.POLYGON, geometry=SQUARE)
    return Fence(**(base | kw))


@pytest.mark.parametrize(
    "kw, reason",
    [
        (dict(geometry=shapely.Polygon()), "empty geometry"),
        (dict(geometry=shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])), "invalid polygon"),
        (dict(shape=ShapeKind.CIRCLE, geometry=shapely.Point(114, 22)), "radius_m must be > 0"),
        (dict(shape=ShapeKind.CIRCLE, geometry=shapely.Point(114, 22), radius_m=-3), "radius_m must be > 0"),
        (dict(shape=ShapeKind.CORRIDOR, geometry=shapely.LineString([(114, 22), (114.1, 22)]), half_width_m=0),
         "half_width_m must be > 0"),
        (dict(shape=ShapeKind.CIRCLE, geometry=SQUARE, radius_m=3), "needs Point"),
        (dict(windows=((600, 600),)), "bad time window"),
        (dict(valid_from=date(2024, 2, 1), valid_to=date(2024, 1, 1)), "after valid_to"),
        (dict(kind="spaceport"), "spaceport"),
    ],
)
def test_invariants(kw: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fence(**kw)


def test_value_semantics() -> None:
    a, b = fence(tags={"x": "1"}), fence(tags={"x": "1"})
    assert a == b and hash(a) == hash(b) and fence(version=2) != a
    assert a.kind is FenceKind.CONSTRUCTION_SITE and fence(kind="depot").kind is FenceKind.DEPOT


def test_circle_and_corridor_are_built_in_metres() -> None:
    c = fence(shape=ShapeKind.CIRCLE, geometry=shapely.Point(114.05, 22.54), radius_m=100)
    ring = shapely.get_coordinates(c.area_geometry().exterior)
    x, y = to_xy_m(ring[:, 0], ring[:, 1], c.origin)
    np.testing.assert_allclose(np.hypot(x, y), 100, rtol=1e-9)  # round in metres, not in degrees
    line = shapely.LineString([(114.05, 22.54), (114.06, 22.55)])
    r = fence(shape=ShapeKind.CORRIDOR, geometry=line, half_width_m=30)
    poly_xy = r.area_geometry_xy()
    assert poly_xy.area == pytest.approx(r.local_geometry.length * 60 + np.pi * 900, rel=2e-3)
    assert c.contains([114.05, 114.052], [22.54, 22.54]).tolist() == [True, False]
    assert r.distance_m([114.05], [22.54])[0] == pytest.approx(0, abs=1e-6)


def test_night_window_belongs_to_the_shift_that_started_the_evening_before() -> None:
    f = fence(windows=((22 * 60, 6 * 60),), valid_from=date(2024, 6, 1), valid_to=date(2024, 6, 30))
    at = lambda d, h, m=0: datetime(2024, 6 if d <= 30 else 7, d if d <= 30 else d - 30, h, m, tzinfo=CST)  # noqa: E731
    assert f.active_at(at(15, 23)) and f.active_at(at(16, 5, 59)) and not f.active_at(at(16, 6))
    assert not f.active_at(at(15, 12))
    assert not f.active_at(at(1, 2))   # 1 June 02:00 belongs to the night of 31 May: not yet valid
    assert f.active_at(at(1, 22))      # first night
    assert f.active_at(at(31, 2))      # 1 July 02:00: last night (began 30 June)
    assert not f.active_at(at(31, 22))
    assert f.active_at(datetime(2024, 6, 15, 15, 0))  # naive = UTC: 23:00 local
    always = fence()
    assert always.active_at(at(15, 12)) and always.active_at(datetime(1990, 1, 1, tzinfo=timezone.utc))


@settings(max_examples=40, deadline=None)
@given(
    windows=st.lists(st.tuples(st.integers(0, 1439), st.integers(1, 1440)).filter(lambda w: w[0] != w[1]), max_size=3),
    vf=st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2024, 12, 31))),
    span=st.integers(0, 60),
    seed=st.integers(0, 2**31),
)
def test_active_mask_matches_active_at(windows, vf, span, seed) -> None:
    vt = None if vf is None else vf + timedelta(days=span)
    f = fence(windows=tuple(windows), valid_from=vf, valid_to=vt)
    rng = np.random.default_rng(seed)
    start = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    ts = start + rng.integers(0, 400 * 86_400_000, 300)
    want = [f.active_at(datetime.fromtimestamp(t / 1000, tz=timezone.utc)) for t in ts.tolist()]
    assert f.active_mask(ts).tolist() == want
    table = ActivityTable.of([fence(), f])
    assert table.mask(ts, np.ones(ts.size, np.int32)).tolist() == want
    assert table.mask(ts, np.zeros(ts.size, np.int32)).all()
