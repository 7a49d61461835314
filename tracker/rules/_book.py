"""The episode book: rule events → `Episode` objects with evidence, stable ids and honest retractions.

Python objects live here per *episode* (rare), never per fix. The book keeps an episode while it can still
change: while open, while its post-evidence window (2 min after the end) is still filling, and while a
late fix could still re-run the interval it was decided in (its decision time is after the vehicle's
retained-window base). Each `process`/`advance`/`finish` call returns every episode it changed, once, in
its latest version.

Ids are `hash(kind, vehicle, start_ts)` and `start_ts` is the first fix of the run that crossed the
thresholds, so they do not depend on batch boundaries. When a re-run (late fixes inside the retained
window) no longer produces an episode that an earlier pass emitted, that episode is re-emitted closed with
`retracted=True` — alerts are withdrawn visibly, never deleted silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tracker.episode import Episode, episode_id
from tracker.rules._base import EV_CLOSE, EV_CONFIRM, EV_DISCARD, EV_OPEN, EV_RETRACT, EV_UPDATE, PLACE_DOC, PLACE_FENCE, SEVERITY_NAMES, Batch, Events
from tracker.state import FLAG_BACKFILL, FLAG_COVER, FLAG_DEVICE, FLAG_LIFTING, Ring
from tracker.world import KINDS, World

if TYPE_CHECKING:
    from tracker.engine import Engine, EngineParams, RuleSlot

FIX_COLS = ("ts_ms", "lon", "lat", "speed_kmh", "heading_deg", "cover_closed", "lifting", "device_on", "load",
            "drum", "backfill")
_HARD_CAP = 20_000  # fixes kept per episode internally (thinning to evidence_max_fixes happens on output)


@dataclass
class Rec:
    ep: Episode
    rule: str
    vidx: int
    kind_code: int
    opened_ts: int = -1  # fix time at which the episode was decided open
    closed_ts: int = -1  # fix time at which it was decided closed
    last_ts: int = -1
    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)  # evidence fixes, appended per batch
    complete: bool = False
    detached: bool = False
    emitted: bool = False
    place: int = -1
    hidden: bool = False  # provisional: not shown until confirmed (see EV_CONFIRM)  # rendered once already (the first version carries the track so far)
    backfilled: bool = False
    stats: dict[str, Any] = field(default_factory=dict)

    def fixes(self) -> dict[str, np.ndarray] | None:
        if not self.chunks:
            return None
        if len(self.chunks) > 1:
            self.chunks = [_union(self.chunks)]
        return self.chunks[0]


def _empty_fixes() -> dict[str, np.ndarray]:
    return {c: np.zeros(0, np.float64 if c in ("lon", "lat", "speed_kmh", "heading_deg") else np.int64)
            for c in FIX_COLS}


class EpisodeBook:
    def __init__(self, world: World, params: EngineParams, rules: list[RuleSlot]):
        self.slots = {r.name: r for r in rules}
        self.world = world
        self.params = params
        self.recs: dict[str, Rec] = {}
        self.by_vehicle: dict[int, set[str]] = {}
        self.touched: set[str] = set()
        self.live: set[str] = set()  # not complete yet: evidence still filling
        self.confirmed: dict[tuple[str, int], list[tuple[int, int]]] = {}  # (rule, vehicle) → confirmed spans
        self.done: set[str] = set()  # complete: kept only while a replay could still change them
        self.pending: dict[str, tuple[Episode, int]] = {}  # re-run: id → (old version, base ts)
        self._thresholds: dict[tuple[str, int], dict[str, Any]] = {}
        self.kind_of: dict[str, str] = {r.name: getattr(r.module, "KIND", r.name) for r in rules}

    # -- a call's lifecycle ---------------------------------------------------------------------------------
    def begin(self) -> None:
        self.touched = set()
        self.pending = {}

    def begin_rerun(self, vehicles: np.ndarray, base_ts: np.ndarray) -> None:
        """Vehicles about to be replayed from their base: remember what their episodes looked like."""
        for v, b in zip(vehicles.tolist(), base_ts.tolist(), strict=True):
            for eid in self.by_vehicle.get(v, ()):
                rec = self.recs[eid]
                if rec.ep.status == "open" or rec.opened_ts > b or rec.closed_ts > b:
                    if not rec.detached:
                        self.pending[eid] = (_copy(rec.ep), b)

    def apply(self, slot: RuleSlot, ev: Events, batch: Batch | None) -> None:
        """Fold one rule's events into episodes."""
        if len(ev) == 0:
            return
        kind = self.kind_of[slot.name]
        w = self.world
        detached = bool(batch is not None and batch.detached)
        for j in range(len(ev)):
            v = int(ev.vidx[j])
            start = int(ev.start_ts[j])
            et = int(ev.etype[j])
            if et in (EV_CONFIRM, EV_DISCARD):
                self._settle(slot.name, v, start, int(ev.end_ts[j]), et == EV_CONFIRM)
                continue
            vid = w.vehicle_ids[v]
            eid = episode_id(kind, vid, start)
            row = int(ev.row[j])
            decided = int(batch.ts_ms[row]) if (batch is not None and row >= 0) else int(ev.last_ts[j])
            rec = self.recs.get(eid)
            if rec is None:
                kc = int(w.vehicle_kind[v])
                hidden = bool(ev.hidden is not None and ev.hidden[j]) and not any(
                    a <= start <= b for a, b in self.confirmed.get((slot.name, v), ()))
                rec = Rec(ep=Episode.new(kind, vid, start), rule=slot.name, vidx=v, kind_code=kc, hidden=hidden)
                self.recs[eid] = rec
                self.by_vehicle.setdefault(v, set()).add(eid)
                self.live.add(eid)
                rec.ep.evidence["thresholds"] = self.thresholds(slot, kc)
            ep = rec.ep
            if et == EV_RETRACT:
                ep.status = "closed"
                ep.retracted = True
                ep.end_ts_ms = ep.start_ts_ms if ep.end_ts_ms is None else ep.end_ts_ms
                rec.closed_ts = decided
                rec.complete = True
                rec.detached |= detached
                self.touched.add(eid)
                continue
            if et == EV_UPDATE and ep.status == "closed":  # re-opened: the run went on after all
                ep.status = "open"
                ep.end_ts_ms = None
                rec.closed_ts = -1
                rec.complete = False
                self.live.add(eid)
                self.done.discard(eid)
            if et == EV_OPEN:
                if rec.complete:
                    rec.complete = False
                    self.live.add(eid)
                    self.done.discard(eid)
                rec.opened_ts = decided
                rec.closed_ts = -1
                ep.status = "open"
                ep.end_ts_ms = None
                ep.retracted = False
                if ev.lon is not None and np.isfinite(ev.lon[j]):
                    ep.lon, ep.lat = float(ev.lon[j]), float(ev.lat[j])
                elif batch is not None and row >= 0:
                    ep.lon = float(batch.lon[row])
                    ep.lat = float(batch.lat[row])
            ep.severity = SEVERITY_NAMES[int(ev.sev[j])]
            place = int(ev.place[j])
            rec.place = place
            if slot.module.PLACE == PLACE_FENCE and place >= 0:
                ep.place_id = w.fence_ids[place]
                ep.evidence["fence"] = w.fence_ref(place)
            elif slot.module.PLACE == PLACE_DOC and place >= 0:
                ep.place_id = w.docs.ids[place]
                ep.evidence["doc"] = w.doc_ref(place)
            rec.last_ts = max(rec.last_ts, int(ev.last_ts[j]))
            rec.stats = {"level": int(ev.level[j]), getattr(slot.module, "PEAK", "peak"): _num(ev.peak[j]),
                         "distance_m": round(float(ev.dist_m[j]), 1)}
            describe = getattr(slot.module, "describe", None)
            if describe is not None:
                rec.stats.update(describe(ev, j, batch, w, slot.params))
            if et == EV_CLOSE:
                ep.status = "closed"
                ep.end_ts_ms = int(ev.end_ts[j])
                rec.closed_ts = decided
                rec.complete = False
                self.live.add(eid)
                self.done.discard(eid)
            rec.detached |= detached
            self.touched.add(eid)

    def merge_detached(self, batch: Batch) -> None:
        """A very late block (evaluated from a fresh state) can reveal the start of an episode that live data
        had already seen the tail of, e.g. the lift during an outage and the load found empty after it. The
        two are one violation: the back-filled episode takes the live one's end, and the live one is
        withdrawn (retracted, visibly)."""
        vs = set(np.unique(batch.vidx).tolist())
        for v in vs:
            ids = self.by_vehicle.get(v, set())
            late = [self.recs[e] for e in ids if self.recs[e].detached and e in self.touched]
            for d in late:
                if d.ep.retracted or d.ep.end_ts_ms is None:
                    continue
                tol = float(getattr(self.slots[d.rule].params, "tolerance_s", 0.0)) * 1000 + 120_000
                for eid in list(ids):
                    r = self.recs[eid]
                    if r is d or r.detached or r.rule != d.rule or r.ep.retracted or r.hidden:
                        continue
                    if d.ep.start_ts_ms <= r.ep.start_ts_ms <= d.ep.end_ts_ms + tol:
                        end = r.ep.end_ts_ms
                        d.ep.end_ts_ms = None if end is None else max(end, d.ep.end_ts_ms)
                        d.ep.status = r.ep.status
                        d.last_ts = max(d.last_ts, r.last_ts)
                        d.chunks.extend(r.chunks)
                        r.ep.retracted = True
                        r.ep.status = "closed"
                        r.ep.end_ts_ms = r.ep.end_ts_ms if r.ep.end_ts_ms is not None else r.ep.start_ts_ms
                        r.complete = True
                        r.ep.evidence["superseded_by"] = d.ep.id
                        self.touched.add(eid)

    def _settle(self, rule: str, v: int, t0: int, t1: int, confirm: bool) -> None:
        """Provisional episodes of a vehicle that started in [t0, t1]: show them (confirm) or drop them. A
        confirmed span is remembered: a run that started in it but opens later is shown as it opens."""
        if confirm:
            spans = self.confirmed.setdefault((rule, v), [])
            if (t0, t1) not in spans:
                spans.append((t0, t1))
                del spans[:-4]
        for eid in list(self.by_vehicle.get(v, ())):
            rec = self.recs[eid]
            if rec.rule != rule or not rec.hidden or not (t0 <= rec.ep.start_ts_ms <= t1):
                continue
            if confirm:
                rec.hidden = False
                self.touched.add(eid)
            else:
                self._drop(eid)

    def _drop(self, eid: str) -> None:
        rec = self.recs.pop(eid)
        self.live.discard(eid)
        self.done.discard(eid)
        self.touched.discard(eid)
        self.pending.pop(eid, None)
        s = self.by_vehicle.get(rec.vidx)
        if s is not None:
            s.discard(eid)
            if not s:
                del self.by_vehicle[rec.vidx]

    def thresholds(self, slot: RuleSlot, kind_code: int) -> dict[str, Any]:
        key = (slot.name, kind_code)
        got = self._thresholds.get(key)
        if got is None:
            got = self._thresholds[key] = slot.params.thresholds(kind_code)
        return got

    # -- evidence -------------------------------------------------------------------------------------------
    def collect_evidence(self, batch: Batch, ring: Ring | None) -> None:
        """Add the fixes around each live episode of the batch's vehicles (ring before push + batch). Chunks
        are appended and merged lazily: a long episode costs the same per batch as a short one."""
        if not self.live:
            return
        present = np.zeros(int(batch.vidx.max()) + 1 if batch.n else 0, np.bool_)
        present[batch.vidx] = True  # (the live episodes are far fewer than the batch's vehicles)
        top = present.shape[0]
        wanted = [rec for eid in self.live if (rec := self.recs[eid]).vidx < top and present[rec.vidx]]
        if not wanted:
            return
        before = int(self.params.evidence_before_s * 1000)
        after = int(self.params.evidence_after_s * 1000)
        vw = np.array([r.vidx for r in wanted], dtype=batch.vidx.dtype)
        los = np.searchsorted(batch.vidx, vw, "left").tolist()
        his = np.searchsorted(batch.vidx, vw, "right").tolist()
        big = np.iinfo(np.int64).max
        for rec, lo, hi in zip(wanted, los, his, strict=True):
            a = rec.ep.start_ts_ms - before
            b = rec.ep.end_ts_ms + after if rec.ep.end_ts_ms is not None else big
            if ring is not None and not batch.detached and not rec.chunks:
                rec.chunks.append(_ring_fixes(ring, rec.vidx, a, b))  # earlier batches' fixes: needed once
            ts = batch.ts_ms[lo:hi]
            i0 = lo + int(np.searchsorted(ts, a, "left"))
            i1 = lo + int(np.searchsorted(ts, b, "right"))
            if i1 > i0:
                chunk = _batch_fixes(batch, i0, i1)
                rec.chunks.append(chunk)
                t = chunk["ts_ms"]
                e = rec.ep.end_ts_ms if rec.ep.end_ts_ms is not None else big
                rec.backfilled |= bool(chunk["backfill"][(t >= rec.ep.start_ts_ms) & (t <= e)].any())
                if len(rec.chunks) > 16:
                    rec.fixes()

    # -- the end of a call ----------------------------------------------------------------------------------
    def end(self, ring: Ring, now_ms: int | None = None, final: bool = False) -> list[Episode]:
        out_ids = set(self.touched)
        for eid, (old, base_ts) in list(self.pending.items()):
            if eid in self.touched or eid not in self.recs:
                continue
            rec = self.recs[eid]
            if rec.hidden and rec.opened_ts > base_ts:  # a provisional run the replay no longer has
                self._drop(eid)
                continue
            slot = self.slots[rec.rule]
            probe = getattr(slot.module, "is_open", None)
            state = probe(slot.table, rec.vidx, rec.ep.start_ts_ms) if probe is not None else None
            if rec.opened_ts > base_ts:  # the replay no longer opens it
                rec.ep.status = "closed"
                rec.ep.retracted = True
                if rec.ep.end_ts_ms is None:
                    rec.ep.end_ts_ms = rec.ep.start_ts_ms
                rec.complete = True
            elif state is True:  # open at the base, and the replay did not close it
                rec.ep.status = "open"
                rec.ep.end_ts_ms = None
                rec.closed_ts = -1
                rec.complete = False
                self.live.add(eid)
                self.done.discard(eid)
            elif state is None:  # decided before the base after all: as it was
                rec.ep = old
            if _differs(old, rec.ep):
                out_ids.add(eid)
        after = int(self.params.evidence_after_s * 1000)
        last = ring.last_ts_ms
        for eid in list(self.live):
            rec = self.recs[eid]
            if rec.complete:
                self.live.discard(eid)
                continue
            if rec.ep.status != "closed":
                if final:
                    rec.complete = True
                    out_ids.add(eid)
                continue
            v = rec.vidx
            if final or rec.detached or (v < last.shape[0] and last[v] >= rec.ep.end_ts_ms + after):
                rec.complete = True
                out_ids.add(eid)
        if final:  # provisional episodes never confirmed: never shown, never kept
            for eid in [e for e, r in self.recs.items() if r.hidden]:
                self._drop(eid)
        out_ids = {eid for eid in out_ids if eid in self.recs and not self.recs[eid].hidden}
        out = [self._render(self.recs[eid]) for eid in out_ids]
        for eid in out_ids:
            rec = self.recs[eid]
            if rec.complete:
                self.live.discard(eid)
                self.done.add(eid)
            else:
                self.live.add(eid)
        out.sort(key=lambda e: (e.start_ts_ms, e.id))
        self._prune(ring)
        return out

    def _render(self, rec: Rec) -> Episode:
        ep = _copy(rec.ep)
        ev = dict(ep.evidence)
        ev["rule"] = rec.rule
        ev["vehicle_kind"] = KINDS[rec.kind_code]
        ev.update(rec.stats)
        ev["opened_ts_ms"] = rec.opened_ts
        ev["last_ts_ms"] = rec.last_ts
        ev["complete"] = rec.complete
        if rec.detached:
            ev["detached"] = True  # evaluated from a fresh state: older than the retained window
        backfilled = rec.detached or rec.backfilled
        if rec.complete or not rec.emitted:  # the first version and the final one carry the track
            fx = rec.fixes()
            if fx is not None and fx["ts_ms"].size:
                end = ep.end_ts_ms if ep.end_ts_ms is not None else rec.last_ts
                inside = (fx["ts_ms"] >= ep.start_ts_ms) & (fx["ts_ms"] <= max(end, rec.last_ts))
                backfilled |= bool(fx["backfill"][inside].any())
                ev["fixes"] = _thin(fx, self.params.evidence_max_fixes)
                summarize = getattr(self.slots[rec.rule].module, "summarize", None)
                if summarize is not None:
                    ev.update(summarize(fx, ep.start_ts_ms, max(end, rec.last_ts), rec.place, self.world))
        rec.emitted = True
        ep.backfilled = backfilled
        ep.evidence = ev
        return ep

    def _prune(self, ring: Ring) -> None:
        base = ring.base_ts_ms
        drop = [eid for eid in self.done if (rec := self.recs[eid]).complete and rec.ep.status == "closed"
                and not rec.hidden and (rec.detached or rec.ep.retracted or rec.closed_ts <= base[rec.vidx])]
        stale = 6 * 3_600_000  # a provisional episode nobody confirmed for 6 h will not be
        last = ring.last_ts_ms
        drop += [eid for eid in self.live if (rec := self.recs[eid]).hidden and rec.complete
                 and rec.ep.end_ts_ms is not None and last[rec.vidx] - rec.ep.end_ts_ms > stale]
        for eid in drop:
            self.done.discard(eid)
            self.live.discard(eid)
            rec = self.recs.pop(eid)
            s = self.by_vehicle.get(rec.vidx)
            if s is not None:
                s.discard(eid)
                if not s:
                    del self.by_vehicle[rec.vidx]

    # -- views ----------------------------------------------------------------------------------------------
    def open_kinds(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for rec in self.recs.values():
            if rec.ep.status == "open" and not rec.detached and not rec.hidden:
                out.setdefault(rec.ep.vehicle_id, set()).add(rec.ep.kind)
        return out

    def nbytes(self) -> int:
        total = 0
        for rec in self.recs.values():
            total += 600
            total += sum(a.nbytes for c in rec.chunks for a in c.values())
        return total


# -- helpers ------------------------------------------------------------------------------------------------
def _num(x: float) -> float | None:
    x = float(x)
    return round(x, 3) if np.isfinite(x) else None


def _copy(ep: Episode) -> Episode:
    return Episode(**{f: getattr(ep, f) for f in Episode.__struct_fields__})


def _differs(a: Episode, b: Episode) -> bool:
    return any(getattr(a, f) != getattr(b, f) for f in Episode.__struct_fields__ if f != "evidence")


def _ring_fixes(ring: Ring, v: int, a: int, b: int) -> dict[str, np.ndarray]:
    c = int(ring.count[v])
    if c == 0:
        return _empty_fixes()
    slots = (int(ring.start[v]) + np.arange(c)) % ring.cap
    ts = ring.ts_ms[v, slots]
    sel = slots[(ts >= a) & (ts <= b)]
    flags = ring.flags[v, sel]
    return {
        "ts_ms": ring.ts_ms[v, sel], "lon": ring.lon_e7[v, sel] / 1e7, "lat": ring.lat_e7[v, sel] / 1e7,
        "speed_kmh": ring.speed_dkmh[v, sel] / 10.0,
        "heading_deg": ring.heading_cdeg[v, sel] / 100.0,
        "cover_closed": ((flags >> FLAG_COVER) & 3).astype(np.int64) - 1,
        "lifting": ((flags >> FLAG_LIFTING) & 3).astype(np.int64) - 1,
        "device_on": ((flags >> FLAG_DEVICE) & 3).astype(np.int64) - 1,
        "load": ring.load[v, sel].astype(np.int64), "drum": ring.drum[v, sel].astype(np.int64),
        "backfill": ((flags >> FLAG_BACKFILL) & 1).astype(np.int64),
    }


def _batch_fixes(batch: Batch, i0: int, i1: int) -> dict[str, np.ndarray]:
    s = slice(i0, i1)
    return {
        "ts_ms": batch.ts_ms[s], "lon": batch.lon[s], "lat": batch.lat[s],
        "speed_kmh": batch.speed_kmh[s].astype(np.float64), "heading_deg": batch.heading_deg[s].astype(np.float64),
        "cover_closed": batch.cover_closed[s].astype(np.int64), "lifting": batch.lifting[s].astype(np.int64),
        "device_on": batch.device_on[s].astype(np.int64), "load": batch.load[s].astype(np.int64),
        "drum": batch.drum[s].astype(np.int64), "backfill": batch.backfill[s].astype(np.int64),
    }


def _union(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p["ts_ms"].size]
    if not parts:
        return _empty_fixes()
    if len(parts) == 1:
        return parts[0]
    cat = {c: np.concatenate([p[c] for p in parts]) for c in FIX_COLS}
    ts = cat["ts_ms"]
    if ts.size < 2 or bool((ts[1:] > ts[:-1]).all()):  # the usual case: chunks in time order, no overlap
        first = np.arange(ts.size)
    else:
        _, first = np.unique(ts, return_index=True)  # sorted by ts, first occurrence wins
    if first.size > _HARD_CAP:
        first = first[-_HARD_CAP:]
    return {c: a[first] for c, a in cat.items()}


def _thin(fx: dict[str, np.ndarray], cap: int) -> dict[str, list]:
    n = fx["ts_ms"].size
    idx = None if n <= cap else np.unique(np.linspace(0, n - 1, cap).round().astype(np.int64))
    out: dict[str, list] = {}
    for c in FIX_COLS:
        a = fx[c] if idx is None else fx[c][idx]
        if c in ("lon", "lat"):
            out[c] = np.round(a, 7).tolist()
        elif c in ("speed_kmh", "heading_deg"):
            out[c] = np.round(a, 1).tolist()
        elif c in ("cover_closed", "lifting", "device_on", "load", "drum"):
            neg = a < 0
            if neg.all():
                continue  # sensor not reported at all: omit rather than a column of nulls
            vals = a.astype(np.int64, copy=False).tolist()
            out[c] = [None if x < 0 else x for x in vals] if neg.any() else vals
        elif c == "backfill":
            out[c] = (a != 0).tolist()
        else:
            out[c] = a.tolist()
    return out


def live_state(engine: Engine, now_ms: int | None) -> pl.DataFrame:
    """Per vehicle seen: last fix, status, current trip, open episode kinds."""
    ring = engine.ring
    n = engine.world.n_vehicles
    seen = np.flatnonzero(ring.last_ts_ms[:n] > np.iinfo(np.int64).min)
    newest = (ring.start[seen].astype(np.int64) + ring.count[seen].astype(np.int64) - 1) % ring.cap
    has = ring.count[seen] > 0
    seen, newest = seen[has], newest[has]
    ts = ring.ts_ms[seen, newest]
    speed = ring.speed_dkmh[seen, newest] / 10.0
    now = now_ms if now_ms is not None else max(engine.last_now_ms, int(ts.max()) if ts.size else 0)
    kinds = engine.open_kinds()
    ids = [engine.world.vehicle_ids[v] for v in seen.tolist()]
    open_k = [sorted(kinds.get(vid, ())) for vid in ids]
    offline = (now - ts) > engine.params.offline_after_s * 1000
    moving = speed > engine.params.moving_kmh
    status = np.where(offline, "offline", np.where(moving, "moving", "stopped")).astype(object)
    alarm = np.array([bool(k) for k in open_k], bool)
    status[alarm & ~offline] = "alarm"
    trip = engine.trips.current_trip_ids(seen)
    return pl.DataFrame({
        "vehicle_id": ids, "ts_ms": ts, "lon": ring.lon_e7[seen, newest] / 1e7,
        "lat": ring.lat_e7[seen, newest] / 1e7, "speed_kmh": speed,
        "heading_deg": ring.heading_cdeg[seen, newest] / 100.0, "status": status.tolist(),
        "trip_id": trip, "open_kinds": open_k,
    }, schema_overrides={"trip_id": pl.String, "open_kinds": pl.List(pl.String)})
