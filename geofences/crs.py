"""Chinese map coordinate systems: WGS-84 ⇄ GCJ-02 ⇄ BD-09, vectorised over numpy arrays.

Why this exists: clerks draw fences on AMap/Tencent (GCJ-02, "Mars coordinates") or Baidu (BD-09) while
terminals report WGS-84. The offset is hundreds of metres, so a fence imported unconverted flags every
compliant truck. Everything inside `geofences` is WGS-84; convert once, on import (and for display on a
Chinese basemap).

* WGS-84 → GCJ-02 is the published obfuscation formula (Krasovsky ellipsoid constants).
* GCJ-02 → WGS-84 has no closed form. We iterate the fixed point `w ← w + (g − F(w))`; F is the identity
  plus a smooth offset whose derivative is ~1e-5, so each step gains ~5 digits and the loop stops once the
  round-trip residual is below `ROUND_TRIP_TOL_DEG` (~1 mm, far inside the 0.01 m requirement).
* GCJ-02 ⇄ BD-09 is Baidu's polar offset; its usual inverse is approximate (decimetres), so we refine it
  with the same fixed point.

Points outside China are returned unchanged by every conversion (the standard `out_of_china` box used by
all public implementations), because the real services do not shift them either.

All functions take arrays or scalars (lon, lat in degrees) and return `(lon, lat)` float64 arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geofences.kinds import Crs

FloatArray = npt.NDArray[np.float64]

_GCJ_A = 6378245.0  # Krasovsky 1940 semi-major axis
_GCJ_EE = 0.00669342162296594323  # Krasovsky 1940 first eccentricity squared
_BD_X_PI = np.pi * 3000.0 / 180.0

ROUND_TRIP_TOL_DEG = 1e-8
"""Iterative inverses stop when F(inverse(p)) is within this of p (1e-8 deg ≈ 1 mm)."""
_MAX_ITER = 30


def out_of_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where the point is outside the rough China box every GCJ-02 implementation uses."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return ~((lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271))


def _arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return lon_a.astype(np.float64, copy=True), lat_a.astype(np.float64, copy=True)


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS-84 point (lon, lat), ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    sx6 = np.sin(6.0 * x * np.pi)
    sx2 = np.sin(2.0 * x * np.pi)
    dlat_m = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon_m = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * sx6 + 20.0 * sx2) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat_m * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon_m * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)
    dlon, dlat = _gcj_offset(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _fixed_point_inverse(forward, lon: FloatArray, lat: FloatArray, lon0: FloatArray, lat0: FloatArray):
    """Solve forward(w) = (lon, lat) starting at (lon0, lat0). forward must be identity + small offset."""
    wlon, wlat = lon0, lat0
    for _ in range(_MAX_ITER):
        flon, flat = forward(wlon, wlat)
        rlon, rlat = lon - flon, lat - flat
        wlon, wlat = wlon + rlon, wlat + rlat
        if not (np.any(np.abs(rlon) > ROUND_TRIP_TOL_DEG) or np.any(np.abs(rlat) > ROUND_TRIP_TOL_DEG)):
            break
    return wlon, wlat


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)

    def forward(wlon: FloatArray, wlat: FloatArray) -> tuple[FloatArray, FloatArray]:
        dlon, dlat = _gcj_offset(wlon, wlat)
        return wlon + dlon, wlat + dlat

    dlon, dlat = _gcj_offset(lon, lat)
    wlon, wlat = _fixed_point_inverse(forward, lon, lat, lon - dlon, lat - dlat)
    return np.where(inside, wlon, lon), np.where(inside, wlat, lat)


def _gcj_to_bd_raw(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)
    blon, blat = _gcj_to_bd_raw(lon, lat)
    return np.where(inside, blon, lon), np.where(inside, blat, lat)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)
    # Baidu's published approximate inverse as the starting point, then refine.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    glon, glat = _fixed_point_inverse(_gcj_to_bd_raw, lon, lat, z * np.cos(theta), z * np.sin(theta))
    return np.where(inside, glon, lon), np.where(inside, glat, lat)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)
    blon, blat = gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    return np.where(inside, blon, lon), np.where(inside, blat, lat)


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon, lat = _arrays(lon, lat)
    inside = ~out_of_china(lon, lat)
    wlon, wlat = gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    return np.where(inside, wlon, lon), np.where(inside, wlat, lat)


def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs | str) -> tuple[FloatArray, FloatArray]:
    """Convert from `crs` to WGS-84."""
    crs = Crs(crs)
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if crs is Crs.BD09:
        return bd09_to_wgs84(lon, lat)
    return _arrays(lon, lat)


def from_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs | str) -> tuple[FloatArray, FloatArray]:
    """Convert from WGS-84 to `crs` (e.g. for display on a Chinese basemap or export)."""
    crs = Crs(crs)
    if crs is Crs.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if crs is Crs.BD09:
        return wgs84_to_bd09(lon, lat)
    return _arrays(lon, lat)


def transform_geometry(geom, src: Crs | str, dst: Crs | str):
    """Convert every coordinate of a shapely geometry from `src` to `dst` (one vectorised pass)."""
    import shapely

    src, dst = Crs(src), Crs(dst)
    if src is dst:
        return geom

    def conv(coords: FloatArray) -> FloatArray:
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1], src)
        lon, lat = from_wgs84(lon, lat, dst)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, conv)
