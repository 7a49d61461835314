"""WGS-84 ⇄ GCJ-02 ⇄ BD-09: round trips over all of China, agreement with the independent `prcoords`
(its precise "bored" inverses; its quick `gcj_wgs` is only metre-accurate by its own docstring)."""

from __future__ import annotations

import warnings

import numpy as np
import prcoords
import pytest

from geofences import crs
from geofences.kinds import Crs
from geofences.local import dist_m

# every 0.1° over the China box (~250,000 points), plus points right at its edges
_LON, _LAT = np.meshgrid(np.arange(72.1, 137.8, 0.1), np.arange(0.9, 55.8, 0.1))
LON, LAT = _LON.ravel(), _LAT.ravel()


def test_gcj02_round_trip_under_1cm_over_china() -> None:
    glon, glat = crs.wgs84_to_gcj02(LON, LAT)
    assert dist_m(LON, LAT, glon, glat).max() > 100  # it does shift
    wlon, wlat = crs.gcj02_to_wgs84(glon, glat)
    assert dist_m(LON, LAT, wlon, wlat).max() < 0.01
    # and the other way round: a GCJ-02 point converted to WGS-84 maps back onto itself
    back = crs.wgs84_to_gcj02(*crs.gcj02_to_wgs84(LON, LAT))
    assert dist_m(LON, LAT, *back).max() < 0.01


def test_bd09_round_trips_under_1cm() -> None:
    for fwd, inv in ((crs.wgs84_to_bd09, crs.bd09_to_wgs84), (crs.gcj02_to_bd09, crs.bd09_to_gcj02)):
        assert dist_m(LON, LAT, *inv(*fwd(LON, LAT))).max() < 0.01
        assert dist_m(LON, LAT, *fwd(*inv(LON, LAT))).max() < 0.01


def _prcoords(fn, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.array([fn((la, lo)) for lo, la in zip(lon.tolist(), lat.tolist())])
    return out[:, 1], out[:, 0]


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (crs.wgs84_to_gcj02, prcoords.wgs_gcj),
        (crs.gcj02_to_wgs84, prcoords.gcj_wgs_bored),
        (crs.gcj02_to_bd09, prcoords.gcj_bd),
        (crs.bd09_to_gcj02, prcoords.bd_gcj_bored),
        (crs.wgs84_to_bd09, prcoords.wgs_bd),
        (crs.bd09_to_wgs84, prcoords.bd_wgs_bored),
    ],
)
def test_agrees_with_prcoords(ours, theirs) -> None:
    lon, lat = LON[::37], LAT[::37]  # ~7,000 points spread over China
    got = ours(lon, lat)
    want = _prcoords(theirs, lon, lat)
    assert dist_m(*got, *want).max() < 0.5


def test_outside_china_unchanged_and_scalars() -> None:
    lon = np.array([2.35, -74.0, 139.7, 114.05])
    lat = np.array([48.85, 40.7, 35.7, 22.54])
    for fn in (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, crs.wgs84_to_bd09, crs.bd09_to_wgs84,
               crs.gcj02_to_bd09, crs.bd09_to_gcj02):
        olon, olat = fn(lon, lat)
        assert np.array_equal(olon[:3], lon[:3]) and np.array_equal(olat[:3], lat[:3])
        assert not (olon[3] == lon[3] and olat[3] == lat[3])
    slon, slat = crs.wgs84_to_gcj02(114.05, 22.54)  # scalars in, 0-d arrays out
    want = prcoords.wgs_gcj((22.54, 114.05))
    assert float(dist_m(slon, slat, want.lon, want.lat)) < 0.01


def test_to_from_wgs84_dispatch() -> None:
    lon, lat = np.array([114.05]), np.array([22.54])
    for c in Crs:
        back = crs.to_wgs84(*crs.from_wgs84(lon, lat, c), c)
        assert dist_m(lon, lat, *back)[0] < 0.01
    assert crs.to_wgs84(lon, lat, "wgs84")[0][0] == 114.05
