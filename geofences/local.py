"""The one place where WGS-84 lon/lat degrees meet metres.

Everything in `geofences` stores WGS-84 degrees; anything measured in metres (a circle's radius, a
corridor's half-width, a distance to a route) goes through this module, so the whole system agrees on
one metric. Two tools:

* `to_xy_m` / `to_lonlat`: an equirectangular (local tangent-plane) projection around an origin. It is
  *affine* in lon/lat, which matters: a polygon with straight edges in degrees stays a polygon with
  straight edges in metres, so "inside" is the same question in both spaces and shapes may be built
  (buffered) in metres and mapped back without changing what they mean. Over a few kilometres from the
  origin its distances agree with the great circle to ~1e-6 relative; at 20 km to ~1e-4.
* `dist_m`: haversine great-circle distance, for two arbitrary points without an origin.

Both use the same sphere (`EARTH_RADIUS_M`, the IUGG mean radius), so a distance measured in a local
projection and one measured with `dist_m` agree for nearby points. Against the WGS-84 ellipsoid the
sphere is off by at most ~0.5 %, far below GPS noise for the tens-to-hundreds of metres rules measure.

All functions are vectorised over numpy arrays and accept scalars.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), metres."""

M_PER_DEG_LAT = EARTH_RADIUS_M * np.pi / 180.0
"""Metres per degree of latitude on the sphere (also per degree of longitude at the equator)."""

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


class Origin(NamedTuple):
    """Reference point of a local projection, WGS-84 degrees."""

    lon: float
    lat: float

    @property
    def m_per_deg_lon(self) -> float:
        return float(M_PER_DEG_LAT * np.cos(np.radians(self.lat)))


def _wrap_dlon(dlon: FloatArray) -> FloatArray:
    """Longitude difference folded into [-180, 180) so the antimeridian does not explode distances."""
    return (dlon + 180.0) % 360.0 - 180.0


def to_xy_m(lon: ArrayLike, lat: ArrayLike, origin: Origin | tuple[float, float]) -> tuple[FloatArray, FloatArray]:
    """Project lon/lat degrees to local x (east) / y (north) metres around `origin`."""
    o = Origin(*origin)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    x = _wrap_dlon(lon - o.lon) * o.m_per_deg_lon
    y = (lat - o.lat) * M_PER_DEG_LAT
    return x, y


def to_lonlat(x: ArrayLike, y: ArrayLike, origin: Origin | tuple[float, float]) -> tuple[FloatArray, FloatArray]:
    """Inverse of `to_xy_m`: local metres around `origin` back to lon/lat degrees."""
    o = Origin(*origin)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return o.lon + x / o.m_per_deg_lon, o.lat + y / M_PER_DEG_LAT


def xy_scale(lat0: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Metres per degree (lon, lat) at latitude(s) `lat0`: for projecting many points, each around its own
    origin, without a Python loop (e.g. point i around the origin of the fence it is paired with)."""
    lat0 = np.asarray(lat0, dtype=np.float64)
    return M_PER_DEG_LAT * np.cos(np.radians(lat0)), np.full_like(lat0, M_PER_DEG_LAT)


def project_pairs(
    lon: ArrayLike, lat: ArrayLike, lon0: ArrayLike, lat0: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Like `to_xy_m`, but every point has its own origin (`lon0[i]`, `lat0[i]`)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon0 = np.asarray(lon0, dtype=np.float64)
    lat0 = np.asarray(lat0, dtype=np.float64)
    kx, ky = xy_scale(lat0)
    return _wrap_dlon(lon - lon0) * kx, (lat - lat0) * ky


def transform_geometry_to_xy(geom, origin: Origin | tuple[float, float]):
    """A shapely geometry in lon/lat → the same geometry in local metres around `origin`."""
    import shapely

    o = Origin(*origin)

    def fwd(coords: FloatArray) -> FloatArray:
        x, y = to_xy_m(coords[:, 0], coords[:, 1], o)
        return np.column_stack([x, y])

    return shapely.transform(geom, fwd)


def transform_geometry_to_lonlat(geom, origin: Origin | tuple[float, float]):
    """A shapely geometry in local metres around `origin` → lon/lat degrees."""
    import shapely

    o = Origin(*origin)

    def inv(coords: FloatArray) -> FloatArray:
        lon, lat = to_lonlat(coords[:, 0], coords[:, 1], o)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, inv)


def dist_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> FloatArray:
    """Great-circle (haversine) distance in metres, broadcasting like numpy.

    Haversine rather than the spherical law of cosines because it stays accurate for the centimetre-to-
    metre distances between consecutive fixes.
    """
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2))
    s_dlat = np.sin((lat2 - lat1) * 0.5)
    s_dlon = np.sin((lon2 - lon1) * 0.5)
    h = s_dlat * s_dlat + np.cos(lat1) * np.cos(lat2) * s_dlon * s_dlon
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
