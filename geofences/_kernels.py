"""Compiled loops (numba) where numpy's one-pass-per-operation style costs too much: the table walk and
the exact tests of the locate hot path (per point a hash probe and a table load, per entry a test that
branches on its kind — in numpy ~15 passes over multi-million-element temporaries), and the cell × segment
scan of the cover.

The point–segment distance lives here once and `geofences.exact` uses it too; the property tests hold the
index and `geofences.exact` to brute-force shapely. Compiled on first use, cached on disk (cache=True).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

ACCEPT, TEST_POLYGON, TEST_CIRCLE, TEST_CAPSULE, TEST_PARITY = 0, 1, 2, 3, 4


@nb.njit(cache=True, inline="always")
def seg_dist2(x, y, ax, ay, bx, by):
    """Squared distance from point (x, y) to segment a–b (metres²)."""
    dx = bx - ax
    dy = by - ay
    px = x - ax
    py = y - ay
    len2 = dx * dx + dy * dy
    t = (px * dx + py * dy) / len2 if len2 > 0.0 else 0.0
    t = min(max(t, 0.0), 1.0)
    ex = px - t * dx
    ey = py - t * dy
    return ex * ex + ey * ey


@nb.njit(cache=True, inline="always")
def crosses(x, y, cx, cy, ax, ay, bx, by):
    """Does segment c→p cross edge a–b?

    For the local point-in-polygon test: p is inside iff its cell centre c is, XOR an odd number of polygon
    edges cross c→p. A polygon vertex lying exactly on the line c→p counts as on its positive side for
    every edge that shares it (the same float expression gives the same sign), so the parity stays right
    even then. c itself is never on an edge (the cover gives such cells the full test instead); p exactly
    on an edge is on the boundary, where either answer is within tolerance."""
    ux = x - cx
    uy = y - cy
    side_a = ux * (ay - cy) - uy * (ax - cx) >= 0.0
    side_b = ux * (by - cy) - uy * (bx - cx) >= 0.0
    ex = bx - ax
    ey = by - ay
    side_c = ex * (cy - ay) - ey * (cx - ax) > 0.0
    side_p = ex * (y - ay) - ey * (x - ax) > 0.0
    return (side_a != side_b) and (side_c != side_p)


@nb.njit(cache=True, inline="always")
def _pt_dist(px, py, ax, ay):
    dx = px - ax
    dy = py - ay
    return np.sqrt(dx * dx + dy * dy)


@nb.njit(cache=True, inline="always")
def geos_point_segment(px, py, ax, ay, bx, by):
    """Distance from p to segment a–b, the same float operations in the same order as GEOS
    (`algorithm::Distance::pointToSegment`), so results match `shapely.distance` bit for bit."""
    if ax == bx and ay == by:
        return _pt_dist(px, py, ax, ay)
    len2 = (bx - ax) * (bx - ax) + (by - ay) * (by - ay)
    r = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / len2
    if r <= 0.0:
        return _pt_dist(px, py, ax, ay)
    if r >= 1.0:
        return _pt_dist(px, py, bx, by)
    s = ((ay - py) * (bx - ax) - (ax - px) * (by - ay)) / len2
    return abs(s) * np.sqrt(len2)


@nb.njit(cache=True)
def line_dist_pairs(x, y, fidx, seg_ptr, seg):
    """out[i] = distance from (x[i], y[i]) to the nearest of the segments of line set fidx[i]
    (`seg[seg_ptr[f]:seg_ptr[f + 1]]`, rows ax, ay, bx, by) — shapely's point-to-(multi)line distance."""
    n = x.shape[0]
    out = np.empty(n)
    for i in range(n):
        f = fidx[i]
        best = np.inf
        for k in range(seg_ptr[f], seg_ptr[f + 1]):
            d = geos_point_segment(x[i], y[i], seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3])
            if d < best:
                best = d
                if best <= 0.0:
                    break
        out[i] = best
    return out


@nb.njit(cache=True)
def capsule_any_pairs(x, y, fidx, seg_ptr, seg, r2):
    """out[i]: is (x[i], y[i]) within sqrt(r2[i]) of any segment of corridor fidx[i]
    (`seg[seg_ptr[f]:seg_ptr[f + 1]]`) — the union of the corridor's capsules."""
    n = x.shape[0]
    out = np.zeros(n, np.bool_)
    for i in range(n):
        f = fidx[i]
        for k in range(seg_ptr[f], seg_ptr[f + 1]):
            if seg_dist2(x[i], y[i], seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]) <= r2[i]:
                out[i] = True
                break
    return out


@nb.njit(cache=True)
def seg_dist2_pairs(x, y, seg, seg_idx):
    """out[i] = squared distance from (x[i], y[i]) to segment seg[seg_idx[i]]."""
    out = np.empty(x.size)
    for i in range(x.size):
        s = seg[seg_idx[i]]
        out[i] = seg_dist2(x[i], y[i], s[0], s[1], s[2], s[3])
    return out


@nb.njit(cache=True)
def near_segments(x, y, seg, reach):
    """(point i, segment k) pairs with point i within `reach` of segment k, and each point's distance to
    its nearest segment. Two passes: count, then fill."""
    n, m = x.size, seg.shape[0]
    reach2 = reach * reach
    dmin = np.full(n, np.inf)
    count = 0
    for i in range(n):
        for k in range(m):
            d2 = seg_dist2(x[i], y[i], seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3])
            if d2 <= reach2:
                count += 1
            if d2 < dmin[i]:
                dmin[i] = d2
    pi = np.empty(count, np.int64)
    sk = np.empty(count, np.int64)
    j = 0
    for i in range(n):
        for k in range(m):
            if seg_dist2(x[i], y[i], seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]) <= reach2:
                pi[j] = i
                sk[j] = k
                j += 1
    return pi, sk, np.sqrt(dmin)


@nb.njit(cache=True, inline="always")
def _test(val, x_lon, y_lat, lon0, lat0, kx, m_per_deg_lat, size_m, seg, parity):
    """Exact test of one packed entry for one point: 1 inside, 0 outside, 2 needs the full polygon test.

    A TEST_PARITY entry points at a record in `parity`: centre x, centre y, centre inside (0/1), edge count
    n, then n edges (ax, ay, bx, by) — one contiguous read instead of four scattered ones."""
    t = np.int64((val >> np.uint64(32)) & np.uint64(7))
    if t == ACCEPT:
        return 1
    if t == TEST_POLYGON:
        return 2
    f = np.int64(val >> np.uint64(35))
    k = np.int64(val & np.uint64(0xFFFFFFFF))
    dlon = x_lon - lon0[f]
    if dlon > 180.0:
        dlon -= 360.0
    elif dlon < -180.0:
        dlon += 360.0
    x = dlon * kx[f]
    y = (y_lat - lat0[f]) * m_per_deg_lat
    r2 = size_m[f] * size_m[f]
    if t == TEST_CIRCLE:
        return 1 if x * x + y * y <= r2 else 0
    if t == TEST_CAPSULE:
        return 1 if seg_dist2(x, y, seg[k, 0], seg[k, 1], seg[k, 2], seg[k, 3]) <= r2 else 0
    cx = parity[k]
    cy = parity[k + 1]
    odd = parity[k + 2] != 0.0
    for j in range(np.int64(parity[k + 3])):
        e = k + 4 + 4 * j
        if crosses(x, y, cx, cy, parity[e], parity[e + 1], parity[e + 2], parity[e + 3]):
            odd = not odd
    return 1 if odd else 0


@nb.njit(cache=True)
def cell_values(cells, clear_res, set_res, set_bucket, slot_shift, slot_mask, keys, values, hash_shift, max_probe,
                blocks, block_size):
    """Per point: bit-parent at the index resolution, bucket by hash, slot in the bucket's block → the
    slot value: 0 nothing near, > 0 a group of entries, < 0 one entry stored inline (bit-inverted).
    Iterations are independent, so the CPU overlaps their cache misses."""
    n = cells.size
    out = np.zeros(n, np.int64)
    if keys.size == 0:
        return out
    tmask = np.uint64(keys.size - 1)
    for i in range(n):
        c = cells[i]
        if c == 0:
            continue
        q = (c & clear_res) | set_res
        b = (q & clear_res) | set_bucket
        h = (b * _GOLDEN) >> hash_shift
        v = np.int64(0)
        for p in range(max_probe + 1):
            slot = (h + np.uint64(p)) & tmask
            k = keys[slot]
            if k == b:
                v = np.int64(values[slot])
                break
            if k == 0:
                break
        if v < 0:
            v = blocks[(-v - 1) * block_size + np.int64((q >> slot_shift) & slot_mask)]
        out[i] = v
    return out


@nb.njit(cache=True)
def expand(v, group_ptr, entries, fence_ok):
    """(point index, packed entry) for every entry of every point's slot value (see `cell_values`), in
    point order. Two passes (count, fill) with short loop bodies, so cache misses overlap. With a non-empty
    `fence_ok` the group table is one already restricted to those fences (`FenceIndex._masked_groups`) and
    an entry stored inline in the slot is checked here; an empty `fence_ok` keeps every entry."""
    n = v.size
    masked = fence_ok.size > 0
    total = 0
    for i in range(n):
        g = v[i]
        if g < 0:
            if not masked or fence_ok[np.int64(np.uint64(~g) >> np.uint64(35))]:
                total += 1
        elif g > 0:
            total += group_ptr[g + 1] - group_ptr[g]
    point_idx = np.empty(total, np.int64)
    val = np.empty(total, np.uint64)
    j = 0
    for i in range(n):
        g = v[i]
        if g < 0:
            e = np.uint64(~g)
            if not masked or fence_ok[np.int64(e >> np.uint64(35))]:
                point_idx[j] = i
                val[j] = e
                j += 1
        elif g > 0:
            for e in range(group_ptr[g], group_ptr[g + 1]):
                point_idx[j] = i
                val[j] = entries[e]
                j += 1
    return point_idx, val


@nb.njit(cache=True)
def test_pairs(point_idx, val, lon, lat, fence_ok, lon0, lat0, kx, m_per_deg_lat, size_m, seg, parity):
    """Exact test of each (point, packed entry) pair → the (point, fence, pending) pairs that pass, in point
    order; `pending` marks TEST_POLYGON entries for the caller's shapely test. Entries of a cell are sorted
    by fence, so once a fence is accepted for a point its other entries (a corridor's other segments) are
    skipped."""
    n = point_idx.size
    out_p = np.empty(n, np.int64)
    out_f = np.empty(n, np.int32)
    pending = np.empty(n, np.bool_)
    last_p = -1
    last_f = -1
    j = 0
    for i in range(n):
        p = point_idx[i]
        f = np.int64(val[i] >> np.uint64(35))
        if (p == last_p and f == last_f) or not fence_ok[f]:
            continue
        r = _test(val[i], lon[p], lat[p], lon0, lat0, kx, m_per_deg_lat, size_m, seg, parity)
        if r == 0:
            continue
        out_p[j] = p
        out_f[j] = f
        pending[j] = r == 2
        j += 1
        if r == 1:
            last_p = p
            last_f = f
    return out_p[:j].copy(), out_f[:j].copy(), pending[:j].copy()
