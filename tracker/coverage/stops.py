"""Where did a truck stop, and for how long? Dwell clusters from a plain GPS track (no sensors, any rate).

Used to *infer* collection points where no schedule exists (the Jersey City feed), and to check a
schedule's points against where trucks actually stop.

A cluster starts at a fix and takes the following fixes of the same vehicle while they stay within
`radius_m` of the cluster's running centroid (so slow GPS drift does not split a stop, and a truck creeping
along a street of bins does not merge into one endless stop). Its dwell runs from its first fix to the
vehicle's *departure*: feeds that drop repeated positions (a parked truck is re-reported only once it
moves) show a stop as one fix followed, much later, by a fix elsewhere — so the departure is taken as the
next fix outside the cluster less one `sample_s` (it left at most one report interval before that fix),
never before the cluster's last fix. Stops last `min_dwell_s`..`max_dwell_s`; longer ones are parking (a yard,
a break, a terminal switched off), kept apart. A step longer than `max_gap_s` also ends a cluster (the
terminal was off: we do not know it stayed).

Sites: stops of any truck within `site_radius_m` of each other (single linkage on a grid) are one site — a
collection point the fleet serves.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt


@nb.njit(cache=True)
def _clusters(vkey, ts, x, y, radius_m, max_gap_ms):
    n = ts.shape[0]
    cid = np.empty(n, np.int64)
    c = -1
    cx = 0.0
    cy = 0.0
    m = 0
    for i in range(n):
        new = i == 0 or vkey[i] != vkey[i - 1] or ts[i] - ts[i - 1] > max_gap_ms
        if not new:
            d = np.sqrt((x[i] - cx) ** 2 + (y[i] - cy) ** 2)
            new = d > radius_m
        if new:
            c += 1
            cx, cy, m = x[i], y[i], 1
        else:
            m += 1
            cx += (x[i] - cx) / m
            cy += (y[i] - cy) / m
        cid[i] = c
    return cid


def dwell_clusters(vkey: npt.NDArray[np.int64], ts_ms: npt.NDArray[np.int64], lon: npt.NDArray[np.float64],
                   lat: npt.NDArray[np.float64], radius_m: float = 40.0, sample_s: float = 60.0,
                   max_gap_s: float = 1800.0) -> dict[str, np.ndarray]:
    """Every cluster of a (vehicle, time)-sorted track: vehicle key, first fix time, departure time, dwell
    seconds, centroid lon/lat, fixes."""
    from geofences.local import to_lonlat, to_xy_m

    if ts_ms.size == 0:
        z = np.zeros(0)
        return {"vkey": z.astype(np.int64), "start_ms": z.astype(np.int64), "end_ms": z.astype(np.int64),
                "dwell_s": z, "lon": z, "lat": z, "fixes": z.astype(np.int64)}
    origin = (float(np.median(lon)), float(np.median(lat)))
    x, y = to_xy_m(lon, lat, origin)
    cid = _clusters(np.asarray(vkey, np.int64), np.asarray(ts_ms, np.int64), x, y, float(radius_m),
                    float(max_gap_s) * 1000.0)
    first = np.r_[True, cid[1:] != cid[:-1]]
    start = np.flatnonzero(first)
    count = np.diff(np.r_[start, cid.size])
    last = start + count - 1
    t0, t1 = ts_ms[start], ts_ms[last]
    nxt = last + 1
    has_next = nxt < ts_ms.size
    same_v = np.zeros(start.size, bool)
    same_v[has_next] = vkey[nxt[has_next]] == vkey[last[has_next]]
    t_next = np.where(has_next, ts_ms[np.minimum(nxt, ts_ms.size - 1)], t1)
    gap_ok = same_v & (t_next - t1 <= max_gap_s * 1000)
    depart = np.where(gap_ok, np.maximum(t1, t_next - int(sample_s * 1000)), t1)
    mx = np.add.reduceat(x, start) / count
    my = np.add.reduceat(y, start) / count
    clon, clat = to_lonlat(mx, my, origin)
    return {"vkey": vkey[start], "start_ms": t0, "end_ms": depart, "dwell_s": (depart - t0) / 1000.0,
            "lon": clon, "lat": clat, "fixes": count}


def sites(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], radius_m: float = 60.0
          ) -> npt.NDArray[np.int64]:
    """Site id per stop: stops within `radius_m` of each other (transitively) share a site."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    from geofences.local import to_xy_m

    if lon.size == 0:
        return np.zeros(0, np.int64)
    x, y = to_xy_m(lon, lat, (float(np.median(lon)), float(np.median(lat))))
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(radius_m, output_type="ndarray")
    g = coo_matrix((np.ones(pairs.shape[0]), (pairs[:, 0], pairs[:, 1])), shape=(lon.size, lon.size))
    _, labels = connected_components(g, directed=False)
    return labels.astype(np.int64)
