"""The compiled loops of the coverage engine (numba, one core): corridor matching, passes, bin counts.

Everything here takes and returns flat numpy arrays; the meaning of the arrays is documented where they are
built (`tracker.coverage.compiled`, `tracker.coverage.work`). Python never loops per fix.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# stream states of a fix on a segment (see tracker.coverage.work)
ST_VALID = 0  # device on (or unknown and counted), speed in band: working
ST_PAUSED = 1  # device on, slower than the band (stopped at a light, starting off): covers what it moves
ST_OFF = 2  # device off: the pass ends here (the device state holds until the report that changes it)
ST_BREAK = 3  # too fast, or otherwise not working: the pass ended before this fix

MAX_SEGS_PER_FIX = 16


@nb.njit(cache=True)
def match(fx, fy, fveh, fkind, gx0, gy0, gm, nx, ny, cell_ptr, cell_piece, vkeys, vptr, vpiece, piece_seg, px0,
          py0, pdx, pdy, plen2, ps0, plen, seg_veh, seg_kind, seg_corr, any_vehicle, cap):
    """(fix row, segment, measure s, distance) for every fix inside the corridor of a segment it may serve:
    the segment's own vehicle (or, with `any_vehicle`, any vehicle of the segment's kind).

    A segment that folds back on itself (a loop, a dual carriageway with a U-turn, a cul-de-sac, a hook at
    its end) passes a fix more than once; then each stretch within the corridor is a candidate, nearest
    first, and the chooser / pass logic picks the one that continues the pass. A stretch is a local minimum
    of the distance from the fix along the segment: a proper projection inside a piece, a vertex both its
    pieces clamp to (seen from outside a bend), or a segment end the fix lies beyond; a projection clamped
    to a vertex the next piece comes nearer from is not one (it is that next stretch seen from the side).
    Minima within half a corridor width of each other are one (the nearest).
    Returns the number of pairs, or −1 when `cap` was too small."""
    out_row = np.empty(cap, np.int64)
    out_seg = np.empty(cap, np.int32)
    out_s = np.empty(cap, np.float64)
    out_d = np.empty(cap, np.float64)
    best_seg = np.empty(MAX_SEGS_PER_FIX, np.int32)
    best_d = np.empty(MAX_SEGS_PER_FIX, np.float64)
    best_s = np.empty(MAX_SEGS_PER_FIX, np.float64)
    n_pieces = piece_seg.shape[0]
    k = 0
    for i in range(fx.shape[0]):
        v = fveh[i]
        if v < 0 and not any_vehicle:
            continue
        ix = int(np.floor((fx[i] - gx0) / gm))
        iy = int(np.floor((fy[i] - gy0) / gm))
        if ix < 0 or iy < 0 or ix >= nx or iy >= ny:
            continue
        c = ix * ny + iy
        m = 0
        if any_vehicle:
            j0, j1 = cell_ptr[c], cell_ptr[c + 1]
        else:
            key = np.int64(v) * (nx * ny) + c
            q = np.searchsorted(vkeys, key)
            if q >= vkeys.shape[0] or vkeys[q] != key:
                continue
            j0, j1 = vptr[q], vptr[q + 1]
        for j in range(j0, j1):
            p = cell_piece[j] if any_vehicle else vpiece[j]
            g = piece_seg[p]
            if any_vehicle:
                if seg_kind[g] != fkind[i]:
                    continue
            elif seg_veh[g] != v:
                continue
            t = ((fx[i] - px0[p]) * pdx[p] + (fy[i] - py0[p]) * pdy[p]) / plen2[p]
            if t <= 0.0:
                # the piece's first vertex: a minimum only at the segment's start (the one between two pieces
                # is seen from the piece before, which reaches the fix's cell too)
                if p > 0 and piece_seg[p - 1] == g:
                    continue
                t = 0.0
            elif t >= 1.0:
                # its last vertex: a minimum at the segment's end, or where the next piece turns away too
                if p + 1 < n_pieces and piece_seg[p + 1] == g:
                    q1 = p + 1
                    if (fx[i] - px0[q1]) * pdx[q1] + (fy[i] - py0[q1]) * pdy[q1] > 0.0:
                        continue
                t = 1.0
            ddx = fx[i] - (px0[p] + t * pdx[p])
            ddy = fy[i] - (py0[p] + t * pdy[p])
            d = np.sqrt(ddx * ddx + ddy * ddy)
            if d > seg_corr[g]:
                continue
            s = ps0[p] + t * plen[p]
            found = False
            for q in range(m):
                if best_seg[q] == g and abs(best_s[q] - s) <= 0.5 * seg_corr[g]:
                    found = True
                    if d < best_d[q]:
                        best_d[q] = d
                        best_s[q] = s
                    break
            if not found and m < MAX_SEGS_PER_FIX:
                best_seg[m] = g
                best_d[m] = d
                best_s[m] = s
                m += 1
        if k + m > cap:
            return -1, out_row, out_seg, out_s, out_d
        # output grouped by segment, nearest candidate first
        for q in range(m):
            for r in range(q + 1, m):
                if best_seg[r] < best_seg[q] or (best_seg[r] == best_seg[q] and best_d[r] < best_d[q]):
                    tg, td, ts_ = best_seg[q], best_d[q], best_s[q]
                    best_seg[q], best_d[q], best_s[q] = best_seg[r], best_d[r], best_s[r]
                    best_seg[r], best_d[r], best_s[r] = tg, td, ts_
            out_row[k] = i
            out_seg[k] = best_seg[q]
            out_s[k] = best_s[q]
            out_d[k] = best_d[q]
            k += 1
    return k, out_row, out_seg, out_s, out_d


@nb.njit(cache=True, inline="always")
def _from(q, ra, rb, extra, ts, seg, s, speed_ms, cost, turn_cost_m, seg_len, end_zone_m, mid_turn_cost_m, c_best,
          a_best):
    """Best way into candidate q from the rows [ra, rb) of an earlier group (+ `extra`)."""
    for r in range(ra, rb):
        ds = s[q] - s[r]
        expect = 0.5 * (speed_ms[q] + speed_ms[r]) * (ts[q] - ts[r])
        for dr in range(2):
            for dq in range(2):
                # a move against the direction the state says costs its signed size |Δs − (±v̄·Δt)|: a run of
                # small steps backwards costs as much as one big one (a fold's mirror image walking down to
                # the fold and up again used to turn for free, step by step under a reversal threshold)
                base = abs(ds - (expect if dq == 1 else -expect))
                turn = 0.0
                if dq != dr:
                    edge = min(s[r], seg_len[seg[r]] - s[r])
                    turn = turn_cost_m if edge <= end_zone_m else mid_turn_cost_m
                c = cost[r, dr] + base + turn + extra
                if c < c_best[dq]:
                    c_best[dq] = c
                    a_best[dq] = r * 2 + dr


@nb.njit(cache=True)
def choose(vkey, seg, occ, ts, s, dist, state, speed_ms, break_ms, dist_weight, turn_cost_m, skip_cost_m, seg_len,
           end_zone_m, mid_turn_cost_m):
    """Where a segment folds back on itself (a loop, a dual carriageway with a U-turn, a roundabout) a fix
    has several candidate measures. Pick one per fix so that the stream's moves agree with the reported
    speeds and keep their direction: a shortest path (Viterbi) per (vehicle, segment, occurrence) stream
    over (candidate, direction) states, step cost |Δs − v̄·Δt| signed by the state's direction (standing
    still, v̄ ≈ 0, either way) + a turn cost when the direction flips + dist_weight · distance from the
    centreline. Vehicles turn round at a segment's ends (the next pass): `turn_cost_m` within `end_zone_m`
    of an end, `mid_turn_cost_m` elsewhere — a fold makes a mid-segment "turn" look as plausible as going
    on, and going on is what vehicles do. A fix may be left out for `skip_cost_m` (the path goes from the
    fix before it to the fix after it): GPS noise can throw one fix out of its own carriageway's corridor
    while it stays inside the folded-back one, and its only candidate is then the mirror image. Input sorted
    by (vkey, seg, occ, ts, dist); a gap longer than `break_ms`, or a fix that was not working (device off,
    too fast: a transit along the segment says nothing about which way the work goes), restarts the path;
    so does the first fix of a transit (too fast, and the fix after it not working either).
    Returns a keep mask."""
    n = ts.shape[0]
    keep = np.zeros(n, np.bool_)
    cost = np.zeros((n, 2), np.float64)
    back = np.full((n, 2), -1, np.int64)  # previous state as row * 2 + direction
    i = 0
    prev_a, prev_b = -1, -1  # previous group [a, b)
    prev2_a, prev2_b = -1, -1  # the group before it, when linked to it
    while i < n:
        j = i + 1
        while j < n and vkey[j] == vkey[i] and seg[j] == seg[i] and occ[j] == occ[i] and ts[j] == ts[i]:
            j += 1
        # a too-fast fix the next fix does not come back to work from is a transit (a lone speed spike between
        # working fixes is not): it must not pull the work's last fixes onto the arm the transit runs along
        transit = state[i] == ST_BREAK and not (
            j < n and vkey[j] == vkey[i] and seg[j] == seg[i] and occ[j] == occ[i] and ts[j] - ts[i] <= break_ms
            and state[j] <= ST_PAUSED)
        linked = (prev_a >= 0 and vkey[prev_a] == vkey[i] and seg[prev_a] == seg[i] and occ[prev_a] == occ[i]
                  and ts[i] - ts[prev_a] <= break_ms and state[prev_a] <= ST_PAUSED and not transit)
        skip = linked and prev2_a >= 0 and ts[i] - ts[prev2_a] <= break_ms
        if not linked and prev_a >= 0:
            _backtrack(prev_a, prev_b, cost, back, keep)
        c_best = np.full(2, np.inf)
        a_best = np.full(2, -1, np.int64)
        for q in range(i, j):
            if not linked:
                for d in range(2):
                    cost[q, d] = dist_weight * dist[q]
                    back[q, d] = -1
                continue
            c_best[:] = np.inf
            a_best[:] = -1
            _from(q, prev_a, prev_b, 0.0, ts, seg, s, speed_ms, cost, turn_cost_m, seg_len, end_zone_m,
                  mid_turn_cost_m, c_best, a_best)
            if skip:
                _from(q, prev2_a, prev2_b, skip_cost_m, ts, seg, s, speed_ms, cost, turn_cost_m, seg_len,
                      end_zone_m, mid_turn_cost_m, c_best, a_best)
            for d in range(2):
                cost[q, d] = c_best[d] + dist_weight * dist[q]
                back[q, d] = a_best[d]
        if linked:
            prev2_a, prev2_b = prev_a, prev_b
        else:
            prev2_a, prev2_b = -1, -1
        prev_a, prev_b = i, j
        i = j
    if prev_a >= 0:
        _backtrack(prev_a, prev_b, cost, back, keep)
    return keep


@nb.njit(cache=True)
def _backtrack(a, b, cost, back, keep):
    best, arg = np.inf, -1
    for r in range(a, b):
        for d in range(2):
            if cost[r, d] < best:
                best, arg = cost[r, d], r * 2 + d
    while arg >= 0:
        keep[arg // 2] = True
        arg = back[arg // 2, arg % 2]


DR_FIXES = 5  # fixes at each end of a pass that place the end by dead reckoning (see `_settle`)
DR_STEP_MS = 15_000  # ... over steps this short at most (the speeds at both ends tell what happened between)


@nb.njit(cache=True)
def _dr_median(z, dd, n, d):
    v = np.empty(n, np.float64)
    for q in range(n):
        v[q] = z[q] - d * dd[q]
    return np.median(v)


@nb.njit(cache=True)
def _settle(g, end_too, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n):
    """Reach the ends of segment g's open pass by dead reckoning too, before it is emitted: each of the first
    (last) `DR_FIXES` fixes, moved back (on) along the pass by the distance the reported speeds say was driven
    since the pass's first fix (to its last), votes for where the pass began (ended); the median is where the
    fixes put it together. A single fix is ±8 m of GPS noise, and 20–30 m where it strays: a pass's first or
    last fix thrown inwards, with a lone stray nowhere near the end of the segment, cut the pass short of it
    by that much; the speeds over a few fixes are good to a metre or two. The pass keeps the furthest of the
    two (a fix that strayed outwards is where it was before). Only a pass with a direction; a start at a
    turn, and an end where the vehicle turned (`end_too` False), stay where the measures put them."""
    d = st_dir[g]
    if d == 0:
        return
    if not st_turned[g] and f_n[g] > 0:
        a = _dr_median(f_z[g], f_d[g], f_n[g], d)
        if (st_start[g] - a) * d > 0 and (st_ext[g] - a) * d > 0:
            st_start[g] = a
    if end_too and l_n[g] > 0:
        b = _dr_median(l_z[g], l_d[g], l_n[g], d) + d * st_dist[g]
        if (b - st_ext[g]) * d > 0 and (b - st_start[g]) * d > 0:
            st_ext[g] = b


@nb.njit(cache=True, inline="always")
def _dr_start(g, x, st_dist, st_turned, f_open, f_z, f_d, f_n, l_z, l_d, l_n, l_h):
    """A new pass begins at measure x: reset its dead-reckoning record."""
    st_dist[g] = 0.0
    st_turned[g] = False
    f_open[g] = True
    f_z[g, 0] = x
    f_d[g, 0] = 0.0
    f_n[g] = 1
    l_z[g, 0] = x
    l_d[g, 0] = 0.0
    l_n[g] = 1
    l_h[g] = 1 % DR_FIXES


@nb.njit(cache=True, inline="always")
def _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start, st_ext, st_dir,
           st_lo, st_hi, st_t0, st_tl, st_n, st_moved):
    """Emit the open pass of segment g (if it moved at all)."""
    if st_moved[g]:
        if st_dir[g] == 0:
            lo, hi = st_lo[g], st_hi[g]
        else:
            lo, hi = min(st_start[g], st_ext[g]), max(st_start[g], st_ext[g])
        if hi > lo:
            o_seg[k] = g
            o_occ[k] = st_occ[g]
            o_veh[k] = st_veh[g]
            o_lo[k] = lo
            o_hi[k] = hi
            o_t0[k] = st_t0[g]
            o_t1[k] = st_tl[g]
            o_n[k] = st_n[g]
            k += 1
    return k


@nb.njit(cache=True)
def passes(veh, ts, seg, occ, s, dist, state, prev_ts, speed_ms, n_seg, seg_vmax_ms, max_step_ms, bridge_ms, slack_m,
           reverse_m):
    """Pairs sorted by (vehicle, ts) → passes (segment, occurrence, vehicle, lo_m, hi_m, t0, t1, fixes).

    Where a segment folds back on itself a fix has several candidate measures (same vehicle, time and
    segment, adjacent in the input): the one nearest to where the open pass should be by now (last measure
    + direction × speed × Δt, plus the distance from the centreline) is taken.

    Per (vehicle, segment, occurrence) stream: a step from fix a to fix b covers [s_a, s_b] when a was
    working (valid or paused) and b is not a break; a gap continues the pass when it is short (≤ max_step)
    or a silent data gap (b's previous fix is a) ≤ bridge, and the move is plausible for the band; an
    implausible fix is held back once (a multipath jump is dropped, a real relocation starts a new pass);
    backing up more than `reverse_m` from the furthest point closes the pass and starts the next one. A
    pass's ends reach as far as its fixes or their dead reckoning from the reported speeds put them
    (`_settle`)."""
    n = veh.shape[0]
    cap = 2 * n + 16
    o_seg = np.empty(cap, np.int32)
    o_occ = np.empty(cap, np.int64)
    o_veh = np.empty(cap, np.int32)
    o_lo = np.empty(cap, np.float64)
    o_hi = np.empty(cap, np.float64)
    o_t0 = np.empty(cap, np.int64)
    o_t1 = np.empty(cap, np.int64)
    o_n = np.empty(cap, np.int32)
    act = np.zeros(n_seg, np.bool_)
    st_occ = np.zeros(n_seg, np.int64)
    st_veh = np.zeros(n_seg, np.int32)
    st_last_ts = np.zeros(n_seg, np.int64)
    st_last_s = np.zeros(n_seg, np.float64)
    st_last_state = np.zeros(n_seg, np.int8)
    st_start = np.zeros(n_seg, np.float64)
    st_ext = np.zeros(n_seg, np.float64)
    st_dir = np.zeros(n_seg, np.int8)
    st_lo = np.zeros(n_seg, np.float64)
    st_hi = np.zeros(n_seg, np.float64)
    st_t0 = np.zeros(n_seg, np.int64)
    st_tl = np.zeros(n_seg, np.int64)
    st_n = np.zeros(n_seg, np.int32)
    st_moved = np.zeros(n_seg, np.bool_)
    pend = np.zeros(n_seg, np.bool_)
    pend_ts = np.zeros(n_seg, np.int64)
    pend_s = np.zeros(n_seg, np.float64)
    pend_state = np.zeros(n_seg, np.int8)
    pend_v = np.zeros(n_seg, np.float64)
    # dead reckoning along the open pass (see `_settle`): distance driven since its first fix by the reported
    # speeds, the last fix's speed, (measure, distance) of its first and (a ring of) its last DR_FIXES fixes
    st_dist = np.zeros(n_seg, np.float64)
    st_v = np.zeros(n_seg, np.float64)
    st_turned = np.zeros(n_seg, np.bool_)
    f_open = np.zeros(n_seg, np.bool_)
    f_z = np.zeros((n_seg, DR_FIXES), np.float64)
    f_d = np.zeros((n_seg, DR_FIXES), np.float64)
    f_n = np.zeros(n_seg, np.int32)
    l_z = np.zeros((n_seg, DR_FIXES), np.float64)
    l_d = np.zeros((n_seg, DR_FIXES), np.float64)
    l_n = np.zeros(n_seg, np.int32)
    l_h = np.zeros(n_seg, np.int32)
    touched = np.empty(n_seg, np.int32)
    in_touched = np.zeros(n_seg, np.bool_)
    n_touched = 0
    k = 0
    cur_v = -1
    s = s.copy()
    state = state.copy()
    nxt = 0
    while nxt < n:
        i = nxt
        # alternatives (same vehicle, time, segment): keep the one that continues the open pass
        j = i
        while j + 1 < n and veh[j + 1] == veh[i] and ts[j + 1] == ts[i] and seg[j + 1] == seg[i]:
            j += 1
        if j > i:
            g0 = seg[i]
            best = i
            if act[g0] and veh[i] == cur_v and st_occ[g0] == occ[i] and ts[i] - st_last_ts[g0] <= bridge_ms:
                ref = st_last_s[g0] + st_dir[g0] * speed_ms[i] * (ts[i] - st_last_ts[g0])
                for q in range(i + 1, j + 1):
                    if abs(s[q] - ref) + dist[q] < abs(s[best] - ref) + dist[best]:
                        best = q
            if best != i:  # swap the chosen alternative into position i; skip the rest
                s_i, st_i = s[i], state[i]
                s[i], state[i] = s[best], state[best]
                s[best], state[best] = s_i, st_i
        nxt = j + 1
        if veh[i] != cur_v:
            for q in range(n_touched):
                g = touched[q]
                if act[g]:
                    _settle(g, True, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
                    k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start,
                               st_ext, st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
                    act[g] = False
                pend[g] = False
                in_touched[g] = False
            n_touched = 0
            cur_v = veh[i]
        g = seg[i]
        t = ts[i]
        x = s[i]
        stt = state[i]
        if not in_touched[g]:
            in_touched[g] = True
            touched[n_touched] = g
            n_touched += 1
        # -- does fix i continue the open pass of g? -------------------------------------------------------
        cont = False
        if act[g] and st_occ[g] == occ[i]:
            dt = t - st_last_ts[g]
            ok_time = dt <= max_step_ms or (prev_ts[i] == st_last_ts[g] and dt <= bridge_ms)
            plaus = abs(x - st_last_s[g]) <= seg_vmax_ms[g] * dt + slack_m
            if ok_time and plaus:
                cont = True
                pend[g] = False
            elif ok_time and not pend[g] and dt <= max_step_ms:
                pend[g] = True  # hold back once: a jump is dropped if the next fix agrees with the pass
                pend_ts[g] = t
                pend_s[g] = x
                pend_state[g] = stt
                pend_v[g] = speed_ms[i]
                continue
            elif pend[g] and (t - pend_ts[g] <= max_step_ms) and \
                    abs(x - pend_s[g]) <= seg_vmax_ms[g] * (t - pend_ts[g]) + slack_m:
                # the held-back fix was real: the pass ended before it and a new one starts there
                _settle(g, True, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
                k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start,
                           st_ext, st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
                act[g] = True
                st_occ[g] = occ[i]
                st_veh[g] = veh[i]
                st_start[g] = pend_s[g]
                st_ext[g] = pend_s[g]
                st_lo[g] = pend_s[g]
                st_hi[g] = pend_s[g]
                st_dir[g] = 0
                st_t0[g] = pend_ts[g]
                st_tl[g] = pend_ts[g]
                st_n[g] = 1
                st_moved[g] = False
                st_last_ts[g] = pend_ts[g]
                st_last_s[g] = pend_s[g]
                st_last_state[g] = pend_state[g]
                _dr_start(g, pend_s[g], st_dist, st_turned, f_open, f_z, f_d, f_n, l_z, l_d, l_n, l_h)
                st_v[g] = pend_v[g]
                pend[g] = False
                cont = True
        if cont and st_last_state[g] <= ST_PAUSED and stt != ST_BREAK:
            # the step last → i was worked: extend the pass
            st_dist[g] += 0.5 * (st_v[g] + speed_ms[i]) * (t - st_last_ts[g])
            st_v[g] = speed_ms[i]
            turned = False
            st_moved[g] = True
            st_n[g] += 1
            st_tl[g] = t
            if st_dir[g] == 0:
                st_lo[g] = min(st_lo[g], x)
                st_hi[g] = max(st_hi[g], x)
                if abs(x - st_start[g]) >= reverse_m:
                    st_dir[g] = 1 if x > st_start[g] else -1
                    st_start[g] = st_lo[g] if st_dir[g] == 1 else st_hi[g]
                    st_ext[g] = x
            elif (x - st_ext[g]) * st_dir[g] >= 0:
                st_ext[g] = x
            elif (st_ext[g] - x) * st_dir[g] >= reverse_m:
                _settle(g, False, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
                k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start,
                           st_ext, st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
                st_start[g] = st_ext[g]
                st_dir[g] = -st_dir[g]
                st_ext[g] = x
                st_t0[g] = st_last_ts[g]
                st_n[g] = 1
                turned = True
            if turned:  # the pass after a turn starts at the turn: not reckoned
                st_turned[g] = True
            if turned or t - st_last_ts[g] > DR_STEP_MS:
                # the end is reckoned from the fixes after a turn or a long step, the start from those before
                f_open[g] = False
                l_n[g] = 0
                l_h[g] = 0
            if f_open[g] and f_n[g] < DR_FIXES:
                f_z[g, f_n[g]] = x
                f_d[g, f_n[g]] = st_dist[g]
                f_n[g] += 1
            l_z[g, l_h[g]] = x
            l_d[g, l_h[g]] = st_dist[g]
            l_h[g] = (l_h[g] + 1) % DR_FIXES
            l_n[g] = min(l_n[g] + 1, DR_FIXES)
            st_last_ts[g] = t
            st_last_s[g] = x
            st_last_state[g] = stt
            if stt == ST_OFF:  # the device went off here: the pass is complete
                _settle(g, True, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
                k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start,
                           st_ext, st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
                act[g] = False
            continue
        # -- not a continuation: close what is open, maybe start a new pass at i -----------------------------
        if act[g]:
            _settle(g, True, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
            k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start, st_ext,
                       st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
            act[g] = False
        pend[g] = False
        if stt <= ST_PAUSED:
            act[g] = True
            st_occ[g] = occ[i]
            st_veh[g] = veh[i]
            st_start[g] = x
            st_ext[g] = x
            st_lo[g] = x
            st_hi[g] = x
            st_dir[g] = 0
            st_t0[g] = t
            st_tl[g] = t
            st_n[g] = 1
            st_moved[g] = False
            st_last_ts[g] = t
            st_last_s[g] = x
            st_last_state[g] = stt
            _dr_start(g, x, st_dist, st_turned, f_open, f_z, f_d, f_n, l_z, l_d, l_n, l_h)
            st_v[g] = speed_ms[i]
    for q in range(n_touched):
        g = touched[q]
        if act[g]:
            _settle(g, True, st_dir, st_start, st_ext, st_turned, st_dist, f_z, f_d, f_n, l_z, l_d, l_n)
            k = _flush(g, k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n, st_occ, st_veh, st_start, st_ext,
                       st_dir, st_lo, st_hi, st_t0, st_tl, st_n, st_moved)
    return k, o_seg, o_occ, o_veh, o_lo, o_hi, o_t0, o_t1, o_n


@nb.njit(cache=True)
def bin_counts(row, lo, hi, row_bin0, row_nbins, bin_m, total_bins):
    """Passes per bin: +1 for every bin whose centre lies within a pass [lo, hi] of the row's segment."""
    counts = np.zeros(total_bins, np.int32)
    for i in range(row.shape[0]):
        r = row[i]
        if r < 0:
            continue
        nb_ = row_nbins[r]
        b0 = int(np.ceil(lo[i] / bin_m - 0.5))
        b1 = int(np.floor(hi[i] / bin_m - 0.5))
        b0 = max(b0, 0)
        b1 = min(b1, nb_ - 1)
        base = row_bin0[r]
        for b in range(b0, b1 + 1):
            counts[base + b] += 1
    return counts


@nb.njit(cache=True)
def summarise(counts, row_bin0, row_nbins, row_len_m, row_req, bin_m, share):
    """Per row: (pass-weighted covered metres, metres with ≥1 pass, metres with ≥ required, passes done).

    'Passes done' is the largest k such that at least `share` of the segment's length has ≥ k passes."""
    n = row_bin0.shape[0]
    weighted = np.zeros(n, np.float64)
    touched = np.zeros(n, np.float64)
    complete = np.zeros(n, np.float64)
    done = np.zeros(n, np.int32)
    for r in range(n):
        nb_ = row_nbins[r]
        base = row_bin0[r]
        req = row_req[r]
        L = row_len_m[r]
        maxc = 0
        for b in range(nb_):
            c = counts[base + b]
            w = min(bin_m, L - b * bin_m)
            if c > 0:
                touched[r] += w
            if c >= req:
                complete[r] += w
            weighted[r] += min(c, req) * w
            if c > maxc:
                maxc = c
        # passes done: scan k downward from the largest count
        for kk in range(maxc, 0, -1):
            got = 0.0
            for b in range(nb_):
                if counts[base + b] >= kk:
                    got += min(bin_m, L - b * bin_m)
            if L > 0 and got >= share * L:
                done[r] = kk
                break
    return weighted, touched, complete, done
