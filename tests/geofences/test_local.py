"""The metric every distance in the system uses."""

from __future__ import annotations

import numpy as np
import pytest

from geofences.local import M_PER_DEG_LAT, Origin, dist_m, project_pairs, to_lonlat, to_xy_m


def test_round_trip_and_axes() -> None:
    o = Origin(114.05, 22.54)
    rng = np.random.default_rng(0)
    lon, lat = o.lon + rng.uniform(-0.1, 0.1, 1000), o.lat + rng.uniform(-0.1, 0.1, 1000)
    x, y = to_xy_m(lon, lat, o)
    back = to_lonlat(x, y, o)
    np.testing.assert_allclose(back, (lon, lat), atol=1e-12)
    x, y = to_xy_m([o.lon, o.lon + 0.01], [o.lat + 0.01, o.lat], o)
    assert x[0] == 0 and y[0] == pytest.approx(0.01 * M_PER_DEG_LAT)
    assert y[1] == 0 and x[1] == pytest.approx(0.01 * M_PER_DEG_LAT * np.cos(np.radians(o.lat)))


def test_local_distances_agree_with_haversine_nearby() -> None:
    o = (114.05, 22.54)
    rng = np.random.default_rng(1)
    lon, lat = 114.05 + rng.uniform(-0.02, 0.02, 500), 22.54 + rng.uniform(-0.02, 0.02, 500)
    x, y = to_xy_m(lon, lat, o)
    np.testing.assert_allclose(np.hypot(x, y), dist_m(o[0], o[1], lon, lat), rtol=1e-4)


def test_haversine_known_values() -> None:
    assert dist_m(0, 0, 0, 1) == pytest.approx(111_195, rel=1e-4)
    assert dist_m(114.05, 22.54, 114.05, 22.54) == 0
    assert dist_m([0, 179.9], [0, 0], [0, -179.9], [1e-6, 0])[1] == pytest.approx(2 * 0.1 * 111_195, rel=1e-3)


def test_project_pairs_matches_to_xy_per_origin() -> None:
    lon0, lat0 = np.array([114.0, 113.9]), np.array([22.5, 22.6])
    x, y = project_pairs([114.01, 113.95], [22.51, 22.55], lon0, lat0)
    for i in range(2):
        xi, yi = to_xy_m([114.01, 113.95][i], [22.51, 22.55][i], (lon0[i], lat0[i]))
        assert (x[i], y[i]) == pytest.approx((float(xi), float(yi)))
