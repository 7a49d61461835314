"""Trips (趟次) and electronic manifests (电子联单): origin fence → destination fence, with load states.

Muck trucks go construction site → disposal site / landfill; concrete mixers batching plant → construction
site. One numba scan per batch follows each vehicle through places (with a short exit debounce, so GPS noise
at a fence edge does not make a truck leave and re-enter):

* **loading** — leaving an origin place loaded: the load sensor saw a load inside, or (no load sensor) the
  truck dwelt there ≥ `load_dwell_s`. A load reported while outside every place also starts a trip (origin
  unknown). The trip starts when the truck leaves.
* **unloading** — inside a destination place: load reported empty, lift up, or (no sensor) dwell ≥
  `unload_dwell_s`. The trip is *completed* there. With no load sensor, a truck that reappears inside or
  within `gap_reach_m` of a destination after a data gap of ≥ `unload_dwell_s` completed its trip there
  unseen (outages near disposal sites are common: the fixes were lost, not the unloading).
* **dumped** — load reported falling to empty, or lift up, outside every place: the trip ends `dumped`
  (the `illegal_dumping` rule raises the alert; the trip records it).
* **failed** — a loaded truck unloads at, or (load inferred) stays ≥ `fail_dwell_s` at, a place that is not
  a destination (back at a site, at the depot; driving through another site's fence on the way, or
  waiting at a light inside it, is not a failure), re-enters its own origin ≥ `return_min_s` after leaving
  it loaded (load inferred), or
  the data ends (`finish`) with it still loaded: it never reached an allowed destination. Its longest
  loaded stop outside every place (speed ≤ `stop_kmh`, within `stop_radius_m`, ≥ `stop_min_s`) is kept,
  and `suspected_dumping` (or, for mixers, a suspected `mixer_discharge`) reports it when the truck has no
  load sensor to say otherwise.

Per row, the scan also tells rules the load state after the row (`loaded`: −1 not a trip vehicle, 0 empty
(or no longer sure), 1 loaded, 2 unknown — first seen on the road, no sensor has said),
whether a sensor said so (`loaded_src`), and the time of the last load drop outside (`drop_ts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import polars as pl
from pydantic import Field

from tracker.config import Settings
from tracker.episode import episode_id
from tracker.hygiene import dist_m_nb
from tracker.rules import load_params
from tracker.rules._base import Batch, RuleParams
from tracker.state import StateTable, snap_after, snap_before
from tracker.windows import local_day
from tracker.world import DOC_ORDER, DOC_PERMIT, FENCE_KIND_CODE, KINDS, World

ROLE_NONE, ROLE_ORIGIN, ROLE_DEST, ROLE_OTHER = 0, 1, 2, 3
OUT_COMPLETED, OUT_FAILED, OUT_DUMPED, OUT_OPEN, OUT_ARRIVED = 1, 2, 3, 4, 5
OUTCOMES = {OUT_COMPLETED: "completed", OUT_FAILED: "failed", OUT_DUMPED: "dumped", OUT_OPEN: "open",
            OUT_ARRIVED: "arrived"}  # arrived: a truck of unknown load drove into a destination (not a trip end)

ALLOWED_KINDS = ("construction_site", "disposal_site", "landfill", "batching_plant", "transfer_station", "depot")

TS_SLOTS = ("place_enter", "out_since", "trip_start", "stop_start", "stop_last", "best_start", "best_end",
            "stop_lon", "stop_lat", "best_lon", "best_lat", "drop_ts")
VAL_SLOTS = ("phase", "src", "place", "origin", "place_load", "last_load", "sensor_in_trip", "place_own", "stop_pending")
VAL_INIT = (2.0, 2.0, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 0.0)  # first seen: load unknown
(T_ENTER, T_OUT, T_TRIP, T_STOP, T_STOPLAST, T_BEST0, T_BEST1, T_SLON, T_SLAT, T_BLON, T_BLAT,
 T_DROP) = range(12)
F_PHASE, F_SRC, F_PLACE, F_ORIGIN, F_PLOAD, F_LAST, F_SENS, F_OWN, F_PEND = range(9)
PHASE_EMPTY, PHASE_LOADED, PHASE_UNKNOWN = 0, 1, 2


class TripParams(RuleParams):
    """`[rules.trips]`."""

    kinds: list[str] = Field(default_factory=lambda: ["muck_truck", "concrete_mixer"])
    origin_kinds: dict[str, list[str]] = Field(default_factory=lambda: {
        "muck_truck": ["construction_site"], "concrete_mixer": ["batching_plant"]})
    dest_kinds: dict[str, list[str]] = Field(default_factory=lambda: {
        "muck_truck": ["disposal_site", "landfill"], "concrete_mixer": ["construction_site"]})
    load_dwell_s: float = Field(120.0, ge=0, description="no load sensor: dwell at an origin that means loaded")
    unload_dwell_s: float = Field(90.0, ge=0, description="no load sensor: dwell at a destination that means unloaded")
    fail_dwell_s: float = Field(240.0, ge=0, description="loaded, staying this long at a place that is not a "
                                "destination: the trip failed (passing through a site on the way does not)")
    return_min_s: float = Field(300.0, ge=0, description="load inferred: back at its own origin this long after "
                                "leaving it loaded, without a destination: the trip failed")
    gap_reach_m: float = Field(200.0, ge=0, description="no load sensor: reappearing within this distance of a "
                               "destination after a data gap long enough to unload there (≥ unload_dwell_s) ends "
                               "the trip there, completed unseen (the fixes were lost, not the unloading)")
    exit_debounce_s: float = Field(25.0, ge=0, description="outside a place this long before it counts as left")
    stop_kmh: float = Field(3.0, ge=0, description="at or below this speed a loaded truck is stopped")
    stop_radius_m: float = Field(60.0, gt=0, description="a stop wandering further than this is a new stop")
    stop_min_s: float = Field(300.0, ge=0, description="loaded stop outside every place that suggests dumping")
    stop_clear_m: float = Field(150.0, ge=0, description="slowing this close to a place right after a stop is "
                                "the approach to its gate, not a new stop")
    gate_s: float = Field(90.0, ge=0, description="a stop the truck leaves to enter its own site (not the one "
                          "its loaded trip left) or a destination within this long was a queue at its gate "
                          "(driving through another site's fence does not count)")
    gate_queue_m: float = Field(300.0, ge=0, description="... when it stood within this distance of where it "
                                "entered (a stop far away it just drove back from was no queue)")


@dataclass
class TripRecord:
    id: str
    vehicle_id: str
    vehicle_kind: str
    company: str | None
    start_ts_ms: int  # left the origin loaded
    end_ts_ms: int | None  # unloaded / dumped / failed
    origin_fence: str | None
    dest_fence: str | None
    doc_id: str | None  # permit or delivery order
    outcome: str
    load_source: str  # "sensor" | "inferred"
    local_day: int
    stop: dict[str, Any] | None  # longest loaded stop outside every place (failed / open trips)
    decided_ts_ms: int
    backfilled: bool = False


class Trips:
    """Trip state per vehicle, the trip records, and counts per vehicle / company / site / day."""

    def __init__(self, world: World, settings: Settings, n: int = 0, params: TripParams | None = None):
        self.world = world
        self.settings = settings
        self.params = params or load_params("trips", TripParams, settings)
        self._applies = np.array([k in self.params.kinds for k in KINDS], bool)
        self.table = StateTable("trips", TS_SLOTS, VAL_SLOTS, VAL_INIT, n, self._applies)
        self.records: dict[str, TripRecord] = {}
        self._dirty: set[str] = set()  # decided or changed since the last `take_changed`
        self._role = _role_table(world, self.params)
        self._doc_type = np.array([DOC_PERMIT if k == "muck_truck" else DOC_ORDER if k == "concrete_mixer" else -1
                                   for k in KINDS], np.int8)

    def tables(self) -> list[StateTable]:
        return [self.table]

    def fresh(self, m: int) -> Trips:
        t = Trips.__new__(Trips)
        t.__dict__.update(self.__dict__)
        t.table = self.table.fresh(m)
        t.records = self.records  # a detached block's trips are real trips too
        return t

    def nbytes(self) -> int:
        return self.table.nbytes()

    # -- the scan -------------------------------------------------------------------------------------------
    def step(self, batch: Batch) -> None:
        """Scan the batch; leave per-row arrays and the trips decided in `batch.extra`."""
        p = self.params
        place = batch.first_of_kinds(ALLOWED_KINDS)
        srow = self.table.rows(batch.sidx, batch.kind)
        applies = srow >= 0
        # own origin: one of the vehicle's documents starts there (any origin-kind place if it has none)
        own = self.world.is_doc_fence(batch.vidx, place, "origin")
        nodoc = (self.world.doc_count(batch.vidx) == 0) & (place >= 0)
        own |= nodoc & (self._role[batch.kind, np.maximum(place, 0)] == ROLE_ORIGIN)
        # close to a place: slowing there right after a stop is the approach to its gate (see `_scan`)
        near = np.zeros(batch.n, bool)
        # only vehicles that are (or may become, in this batch) loaded track stops: empty at the start and
        # neither at an origin nor reporting a load in the batch means no stop can matter
        if not applies.any():  # no trip vehicle in this batch
            batch.extra.update(place=place, loaded=np.full(batch.n, -1, np.int8),
                               loaded_src=np.full(batch.n, -1, np.int8), drop_ts=np.full(batch.n, -1, np.int64),
                               trip_start=np.full(batch.n, -1, np.int64), trips=None)
            doc, inwin = self.world.doc_match(batch.vidx, batch.minute, batch.day, self._doc_type[batch.kind])
            batch.extra["doc"], batch.extra["doc_in_window"] = doc, inwin
            return
        r0 = np.maximum(srow, 0)
        may = applies & ((self.table.cf[r0, F_PHASE] != PHASE_EMPTY) | (self.table.cf[r0, F_PLACE] >= 0))
        hint = applies & ((self._role[batch.kind, np.maximum(place, 0)] == ROLE_ORIGIN) & (place >= 0)
                          | (batch.load > 0))
        if hint.any():
            per_v = np.zeros(len(self.table), bool)
            per_v[srow[hint]] = True
            may |= per_v[r0] & applies
        cand = np.flatnonzero(applies & batch.ok & may & (place < 0) & (batch.speed_kmh <= p.stop_kmh))
        if cand.size:
            near[cand] = self.world.near_kinds(batch.lon[cand], batch.lat[cand], ALLOWED_KINDS, p.stop_clear_m)
        gap_dest = self._gap_dest(batch, applies, place)
        out = _scan(srow, batch.vidx, batch.kind, batch.ts_ms, batch.ok, batch.act, batch.speed_kmh,
                    batch.load, batch.lifting, batch.drum, batch.lon, batch.lat, place, own, near, gap_dest,
                    self._role,
                    self._applies, *self.table.arrays,
                    p.load_dwell_s * 1000.0, p.unload_dwell_s * 1000.0, p.fail_dwell_s * 1000.0,
                    p.return_min_s * 1000.0,
                    p.exit_debounce_s * 1000.0, p.stop_kmh,
                    p.stop_radius_m, p.stop_min_s * 1000.0, p.gate_s * 1000.0, p.gate_queue_m)
        loaded, src, drop_ts, trip_start, n_rec, arrays = out
        rec = {k: a[:n_rec] for k, a in zip(REC_FIELDS, arrays, strict=True)}
        batch.extra["place"] = place
        batch.extra["loaded"] = loaded
        batch.extra["loaded_src"] = src
        batch.extra["drop_ts"] = drop_ts
        batch.extra["trip_start"] = trip_start
        batch.extra["trips"] = rec
        doc, inwin = self.world.doc_match(batch.vidx, batch.minute, batch.day, self._doc_type[batch.kind])
        batch.extra["doc"] = doc
        batch.extra["doc_in_window"] = inwin
        self._record(rec, batch.backfill, batch)

    def _gap_dest(self, batch: Batch, applies: np.ndarray, place: np.ndarray) -> np.ndarray:
        """Per row: the destination (fence position) a truck with no load reading reappears in or next to
        after a data gap long enough to have unloaded there, else −1. Without it a sensorless truck whose
        visit to the disposal site fell into an outage would drive home "loaded" and every turn off the
        corridor on the way would be a route deviation."""
        out = np.full(batch.n, -1, np.int32)
        p = self.params
        cand = np.flatnonzero(applies & batch.ok & (batch.load < 0) & (batch.dt_s >= p.unload_dwell_s))
        inside = cand[place[cand] >= 0]  # back in view inside a destination: it may have been there all along
        dest = self._role[batch.kind[inside], place[inside]] == ROLE_DEST
        out[inside[dest]] = place[inside[dest]]
        cand = cand[place[cand] < 0]
        for kd in np.unique(batch.kind[cand]).tolist():
            kinds = p.dest_kinds.get(KINDS[kd], [])
            rows = cand[batch.kind[cand] == kd]
            if kinds and rows.size:
                out[rows] = self.world.nearest_of_kinds(batch.lon[rows], batch.lat[rows], kinds, p.gap_reach_m)
        return out

    def finish(self, sidx_to_vidx: np.ndarray) -> dict[str, np.ndarray]:
        """End of data: loaded trips still open become `open` records (they feed suspected dumping)."""
        ct, cf = self.table.ct, self.table.cf
        m = len(self.table)
        pend = np.flatnonzero(cf[:m, F_PEND] > 0)  # a finished stop no place followed: a roadside stop
        if pend.size:
            _promote_pending(pend, ct, cf, self.params.stop_min_s * 1000.0)
        rows = np.flatnonzero((cf[:m, F_PHASE] == PHASE_LOADED)
                              | ((cf[:m, F_PHASE] == PHASE_UNKNOWN) & (ct[:m, T_BEST0] >= 0)))
        rec = {
            "vidx": sidx_to_vidx[self.table.owner[rows]].astype(np.int32), "row": np.full(rows.size, -1, np.int64),
            "start": ct[rows, T_TRIP].copy(), "end": np.maximum(ct[rows, T_STOPLAST], ct[rows, T_TRIP]),
            "origin": cf[rows, F_ORIGIN].astype(np.int32), "dest": np.full(rows.size, -1, np.int32),
            "outcome": np.full(rows.size, OUT_OPEN, np.int8), "src": cf[rows, F_SRC].astype(np.int8),
            "sensor": cf[rows, F_SENS].astype(np.int8), "best0": ct[rows, T_BEST0].copy(),
            "best1": ct[rows, T_BEST1].copy(), "blon": ct[rows, T_BLON].copy(), "blat": ct[rows, T_BLAT].copy(),
        }
        # a stop still in progress at the end is not judged: the truck may yet drive on to its destination
        self.table.reset(rows)
        self._record(rec, None, None)
        return rec

    # -- records --------------------------------------------------------------------------------------------
    def _record(self, rec: dict[str, np.ndarray], backfill: np.ndarray | None, batch: Batch | None) -> None:
        w = self.world
        off = self.settings.city.utc_offset_min
        if rec["vidx"].size == 0:
            return
        r = {k: a.tolist() for k, a in rec.items()}  # Python scalars: the loop below runs per record
        days = local_day(rec["start"].astype(np.int64), off).tolist()
        for j in range(len(r["vidx"])):
            if r["outcome"][j] == OUT_ARRIVED or (
                    r["src"][j] == 2 and r["best0"][j] < 0 and r["outcome"][j] != OUT_COMPLETED):
                continue  # load never known and nothing suspicious: not a trip we can speak about
            v = int(r["vidx"][j])
            vid = w.vehicle_ids[v]
            start = int(r["start"][j])
            tid = episode_id("trip", vid, start)
            kind = KINDS[int(w.vehicle_kind[v])]
            origin, dest = int(r["origin"][j]), int(r["dest"][j])
            stop = None
            if r["best0"][j] >= 0:
                stop = {"start_ts_ms": int(r["best0"][j]), "end_ts_ms": int(r["best1"][j]),
                        "lon": int(r["blon"][j]) / 1e7, "lat": int(r["blat"][j]) / 1e7}
            row = int(r["row"][j])
            decided = int(batch.ts_ms[row]) if (batch is not None and row >= 0) else int(r["end"][j])
            company_code = int(w.vehicle_company[v]) if v < w.vehicle_company.shape[0] else -1
            self._dirty.add(tid)
            self.records[tid] = TripRecord(
                id=tid, vehicle_id=vid, vehicle_kind=kind,
                company=w.companies[company_code] if company_code >= 0 else None,
                start_ts_ms=start, end_ts_ms=int(r["end"][j]) if r["end"][j] >= 0 else None,
                origin_fence=w.fence_ids[origin] if origin >= 0 else None,
                dest_fence=w.fence_ids[dest] if dest >= 0 else None,
                doc_id=self._doc_for(v, origin, dest), outcome=OUTCOMES[int(r["outcome"][j])],
                load_source=("inferred", "sensor", "unknown")[int(r["src"][j])],
                local_day=int(days[j]), stop=stop, decided_ts_ms=decided,
                backfilled=bool(batch is not None and batch.detached))

    def _doc_for(self, v: int, origin: int, dest: int) -> str | None:
        w = self.world
        if v + 1 >= w.veh_doc_ptr.shape[0]:
            return None
        docs = w.veh_doc_idx[w.veh_doc_ptr[v]:w.veh_doc_ptr[v + 1]]
        best = None
        for d in docs.tolist():
            score = int(w.docs.origin[d] == origin and origin >= 0) + int(w.docs.dest[d] == dest and dest >= 0)
            if best is None or score > best[0]:
                best = (score, d)
        return w.docs.ids[best[1]] if best is not None else None

    def forget_after(self, vehicles: np.ndarray, base_ts: np.ndarray) -> None:
        """A re-run replays these vehicles from their base: drop trips decided after it (they come back)."""
        limit = {self.world.vehicle_ids[int(v)]: int(b) for v, b in zip(vehicles, base_ts, strict=True)}
        for tid in [t for t, r in self.records.items() if r.vehicle_id in limit and r.decided_ts_ms > limit[r.vehicle_id]]:
            del self.records[tid]
            self._dirty.discard(tid)

    # -- views ----------------------------------------------------------------------------------------------
    def take_changed(self, keep_s: float = 36 * 3600.0) -> pl.DataFrame:
        """Trips decided or changed since the last call (what a sink upserts), then forget reported trips
        decided more than `keep_s` before the newest one: memory stays bounded, the database keeps them."""
        out = self.frame([self.records[t] for t in self._dirty if t in self.records])
        self._dirty.clear()
        if self.records:
            newest = max(r.decided_ts_ms for r in self.records.values())
            old = [t for t, r in self.records.items() if r.decided_ts_ms < newest - keep_s * 1000]
            for t in old:
                del self.records[t]
        return out

    def frame(self, records: list[TripRecord] | None = None) -> pl.DataFrame:
        """The trips held (the electronic manifests), one row per trip: every trip of a run, or the last
        `keep_s` of them once `take_changed` is used."""
        recs = self.records.values() if records is None else records
        rows = [{k: getattr(r, k) for k in TripRecord.__dataclass_fields__ if k != "stop"} for r in recs]
        schema = {"id": pl.String, "vehicle_id": pl.String, "vehicle_kind": pl.String, "company": pl.String,
                  "start_ts_ms": pl.Int64, "end_ts_ms": pl.Int64, "origin_fence": pl.String,
                  "dest_fence": pl.String, "doc_id": pl.String, "outcome": pl.String, "load_source": pl.String,
                  "local_day": pl.Int32, "decided_ts_ms": pl.Int64, "backfilled": pl.Boolean}
        if not rows:
            return pl.DataFrame(schema=schema)
        return pl.DataFrame(rows, schema=schema).sort(["start_ts_ms", "vehicle_id"])

    def counts(self, by: str = "vehicle_id", outcome: str | None = "completed") -> pl.DataFrame:
        """Trip counts (趟次) per `by` — vehicle_id, company, origin_fence, dest_fence or local_day — and day."""
        df = self.frame()
        if outcome is not None:
            df = df.filter(pl.col("outcome") == outcome)
        keys = [by] if by == "local_day" else [by, "local_day"]
        return df.group_by(keys).agg(pl.len().alias("trips")).sort(keys)

    def current_trip_ids(self, vidx: np.ndarray) -> list[str | None]:
        """The id of each vehicle's loaded trip under way (None: none) — rows looked up at once; only the
        loaded trucks' ids are hashed."""
        t = self.table
        v = np.asarray(vidx, np.int64)
        known = t.n_rows if t.kinds is None else t.row_of.shape[0]
        inside = v < known
        r = np.full(v.shape[0], -1, np.int64)
        r[inside] = v[inside] if t.kinds is None else t.row_of[v[inside]]
        has = np.flatnonzero(r >= 0)  # (a vehicle of a kind without trips has no row: none)
        rh = r[has]
        loaded = has[(t.cf[rh, F_PHASE] == PHASE_LOADED) & (t.ct[rh, T_TRIP] >= 0)]
        out: list[str | None] = [None] * v.shape[0]
        ids = self.world.vehicle_ids
        for i in loaded.tolist():
            out[i] = episode_id("trip", ids[int(v[i])], int(t.ct[r[i], T_TRIP]))
        return out


REC_FIELDS = ("vidx", "row", "start", "end", "origin", "dest", "outcome", "src", "sensor", "best0", "best1", "blon",
              "blat")


def _role_table(world: World, p: TripParams) -> np.ndarray:
    """(n_vehicle_kinds, n_fences) role of each fence for each vehicle kind."""
    n = len(world.fence_ids)
    role = np.zeros((len(KINDS), max(n, 1)), np.int8)
    allowed = np.isin(world.fence_kind, [FENCE_KIND_CODE[k] for k in ALLOWED_KINDS]) if n else np.zeros(0, bool)
    for k, kname in enumerate(KINDS):
        if n == 0:
            continue
        role[k, :n][allowed] = ROLE_OTHER
        for fk in p.dest_kinds.get(kname, []):
            role[k, :n][world.fence_kind == FENCE_KIND_CODE[fk]] = ROLE_DEST
        for fk in p.origin_kinds.get(kname, []):
            role[k, :n][world.fence_kind == FENCE_KIND_CODE[fk]] = ROLE_ORIGIN
    return role


@nb.njit(cache=True, inline="always")
def _close_stop(v, ct, cf, stop_min):
    """End the current (or pending) loaded stop; keep it if it is the longest qualifying one of the trip."""
    if ct[v, T_STOP] >= 0:
        dur = ct[v, T_STOPLAST] - ct[v, T_STOP]
        if dur >= stop_min and dur > ct[v, T_BEST1] - ct[v, T_BEST0]:
            ct[v, T_BEST0] = ct[v, T_STOP]
            ct[v, T_BEST1] = ct[v, T_STOPLAST]
            ct[v, T_BLON] = ct[v, T_SLON]
            ct[v, T_BLAT] = ct[v, T_SLAT]
    ct[v, T_STOP] = -1
    ct[v, T_STOPLAST] = -1
    cf[v, F_PEND] = 0.0


@nb.njit(cache=True)
def _promote_pending(rows, ct, cf, stop_min):
    for v in rows:
        _close_stop(v, ct, cf, stop_min)


@nb.njit(cache=True, inline="always")
def _pause_stop(v, t, ct, cf):
    """The truck moves on: the stop is over but judged only `gate_s` after the truck was first seen moving —
    entering a place by then makes it a queue at that place's gate (dropped), not a roadside stop. F_PEND
    holds 1 + the seconds from the stop's last fix to that first moving fix (a parked terminal reports every
    30–60 s: the gate time must not be spent before the truck even moved)."""
    if ct[v, T_STOP] >= 0 and cf[v, F_PEND] <= 0:
        cf[v, F_PEND] = 1.0 + (t - ct[v, T_STOPLAST]) / 1000.0


@nb.njit(cache=True, inline="always")
def _begin_trip(v, t, origin, src, ct, cf):
    cf[v, F_PHASE] = 1.0
    cf[v, F_SRC] = src
    cf[v, F_ORIGIN] = origin
    cf[v, F_SENS] = 0.0
    cf[v, F_PEND] = 0.0
    ct[v, T_TRIP] = t
    ct[v, T_STOP] = -1
    ct[v, T_STOPLAST] = -1
    ct[v, T_BEST0] = -1
    ct[v, T_BEST1] = -1


@nb.njit(cache=True, inline="always")
def _end_trip(k, rec, v, gv, i, t, dest, outcome, ct, cf):
    rv, rr, rs, re, ro, rd, rout, rsrc, rsens, rb0, rb1, rblon, rblat = rec
    rv[k] = gv
    rr[k] = i
    rs[k] = ct[v, T_TRIP]
    re[k] = t
    ro[k] = np.int32(cf[v, F_ORIGIN])
    rd[k] = dest
    rout[k] = outcome
    rsrc[k] = np.int8(cf[v, F_SRC])
    rsens[k] = np.int8(cf[v, F_SENS])
    rb0[k] = ct[v, T_BEST0]
    rb1[k] = ct[v, T_BEST1]
    rblon[k] = ct[v, T_BLON]
    rblat[k] = ct[v, T_BLAT]
    cf[v, F_PHASE] = 0.0
    cf[v, F_ORIGIN] = -1.0
    cf[v, F_PEND] = 0.0
    ct[v, T_TRIP] = -1
    ct[v, T_STOP] = -1
    ct[v, T_BEST0] = -1
    ct[v, T_BEST1] = -1
    return k + 1


@nb.njit(cache=True, inline="always")
def _arrived(k, rec, v, gv, i, t, dest, ct, cf):
    """A record, not an ending: a truck of unknown load drove into a destination (see route deviation)."""
    rv, rr, rs, re, ro, rd, rout, rsrc, rsens, rb0, rb1, rblon, rblat = rec
    rv[k] = gv
    rr[k] = i
    rs[k] = ct[v, T_TRIP]
    re[k] = t
    ro[k] = -1
    rd[k] = dest
    rout[k] = OUT_ARRIVED
    rsrc[k] = 2
    rsens[k] = np.int8(cf[v, F_SENS])
    rb0[k] = -1
    rb1[k] = -1
    rblon[k] = -1
    rblat[k] = -1
    return k + 1


@nb.njit(cache=True)
def _leave(k, rec, v, gv, i, t_exit, place, r, ct, cf, load_dwell):
    """The vehicle left `place` at `t_exit`: leaving an origin loaded starts a trip. Without a load sensor,
    only a long dwell at one of the vehicle's own origins (its permit's site) counts as loading."""
    if cf[v, F_PHASE] != 1 and r == ROLE_ORIGIN:
        pl = cf[v, F_PLOAD]
        if pl > 0:
            _begin_trip(v, t_exit, place, 1.0, ct, cf)
        elif pl < 0 and cf[v, F_OWN] > 0 and t_exit - ct[v, T_ENTER] >= load_dwell:
            _begin_trip(v, t_exit, place, 0.0, ct, cf)
    return k


@nb.njit(cache=True)
def _scan(sidx, vidx, kind, ts, ok, act, speed, load, lifting, drum, lon, lat, place, own, near, gap_dest, role,
          applies,
          ct, cf, mt, mf, bt, bf, load_dwell, unload_dwell, fail_dwell, return_min, exit_deb, stop_kmh,
          stop_radius, stop_min, gate_ms, gate_queue_m):
    n = sidx.shape[0]
    loaded = np.full(n, -1, np.int8)
    src_out = np.full(n, -1, np.int8)
    drop_out = np.full(n, -1, np.int64)
    trip_out = np.full(n, -1, np.int64)
    cap = n + 4
    rec = (np.empty(cap, np.int32), np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
           np.empty(cap, np.int32), np.empty(cap, np.int32), np.empty(cap, np.int8), np.empty(cap, np.int8),
           np.empty(cap, np.int8), np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
           np.empty(cap, np.int64))
    k = 0
    for i in range(n):
        v = sidx[i]
        if v < 0:  # not a trip vehicle: no row in the table
            continue
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_before(v, act[i], ct, cf, mt, mf, bt, bf)
        kd = kind[i]
        if not ok[i]:
            loaded[i] = 1 if cf[v, F_PHASE] == 1 else (2 if cf[v, F_PHASE] == 2 else 0)
            drop_out[i] = ct[v, T_DROP]
            trip_out[i] = ct[v, T_TRIP]
            if act[i] != 0:  # guard at the call: see tracker.state.snap_before
                snap_after(v, act[i], ct, cf, mt, mf)
            continue
        t = ts[i]
        ld = load[i]
        if cf[v, F_PHASE] == PHASE_UNKNOWN and ct[v, T_TRIP] < 0:
            ct[v, T_TRIP] = t  # first seen: maybe loaded, we cannot tell yet
        # -- where is it: sticky membership (leaving needs exit_deb outside) --------------------------------
        cur = np.int32(cf[v, F_PLACE])
        here = place[i]
        if cf[v, F_PEND] > 0 and here >= 0 and here != cur \
                and ((own[i] and here != np.int32(cf[v, F_ORIGIN])) or role[kd, here] == ROLE_DEST) \
                and dist_m_nb(ct[v, T_SLON] / 1e7, ct[v, T_SLAT] / 1e7, lon[i], lat[i]) <= gate_queue_m:
            # the stop just before entering its site or a destination: a queue at the gate (not the site the
            # loaded trip set out from — a loaded truck does not queue to get back in; it went back to reload)
            ct[v, T_STOP] = -1
            ct[v, T_STOPLAST] = -1
            cf[v, F_PEND] = 0.0
        elif cf[v, F_PEND] > 0 and t - ct[v, T_STOPLAST] >= gate_ms + (cf[v, F_PEND] - 1.0) * 1000.0:
            _close_stop(v, ct, cf, stop_min)  # no place reached soon after: a roadside stop
        if here >= 0 and here != cur:
            if cur >= 0:  # moved straight from one place into another
                k = _leave(k, rec, v, vidx[i], i, t, cur, role[kd, cur], ct, cf, load_dwell)
            cf[v, F_PLACE] = here
            cf[v, F_OWN] = 1.0 if own[i] else 0.0
            ct[v, T_ENTER] = t
            ct[v, T_OUT] = -1
            cf[v, F_PLOAD] = -1.0
            cur = here
            if cf[v, F_PHASE] == PHASE_UNKNOWN and role[kd, cur] == ROLE_DEST:
                k = _arrived(k, rec, v, vidx[i], i, t, cur, ct, cf)  # empty trucks do not visit disposal sites
        elif here < 0 and cur >= 0:
            if ct[v, T_OUT] < 0:
                ct[v, T_OUT] = t
            if t - ct[v, T_OUT] >= exit_deb:
                k = _leave(k, rec, v, vidx[i], i, ct[v, T_OUT], cur, role[kd, cur], ct, cf, load_dwell)
                cf[v, F_PLACE] = -1.0
                ct[v, T_ENTER] = -1
                ct[v, T_OUT] = -1
                cur = -1
        elif here >= 0:
            ct[v, T_OUT] = -1
        # -- sensors ----------------------------------------------------------------------------------------
        lift = lifting[i] == 1 or drum[i] == 2
        drop = ld == 0 and cf[v, F_LAST] > 0
        if cf[v, F_PHASE] != 0 and (ld >= 0 or lifting[i] >= 0 or drum[i] >= 0):
            cf[v, F_SENS] = 1.0
        if ld >= 0:
            if cur >= 0 and ld > cf[v, F_PLOAD]:
                cf[v, F_PLOAD] = ld
            if cf[v, F_PHASE] == PHASE_UNKNOWN:  # the sensor settles it
                if ld > 0:
                    cf[v, F_PHASE] = 1.0
                    cf[v, F_SRC] = 1.0
                else:
                    cf[v, F_PHASE] = 0.0
                    ct[v, T_TRIP] = -1
        phase = cf[v, F_PHASE]
        inferred = cf[v, F_SRC] != 1
        if cur >= 0 and phase != 0:
            r = role[kd, cur]
            stay = t - ct[v, T_ENTER]
            back_home = (cur == np.int32(cf[v, F_ORIGIN]) and ct[v, T_ENTER] - ct[v, T_TRIP] >= return_min) \
                or (phase == PHASE_UNKNOWN and cf[v, F_OWN] > 0 and ct[v, T_ENTER] > ct[v, T_TRIP])
            # (first seen inside its own site, a truck may as well be leaving it loaded: not "back home")
            if r != ROLE_DEST and ((inferred and (stay >= fail_dwell or back_home)) or drop or lift):
                # loaded, staying at (or unloading at) a place that is not a destination: the trip failed there
                _close_stop(v, ct, cf, stop_min)
                k = _end_trip(k, rec, v, vidx[i], i, ct[v, T_ENTER], cur, OUT_FAILED, ct, cf)
            elif r == ROLE_DEST and (drop or lift or (ld < 0 and inferred and (stay >= unload_dwell
                                                                                or gap_dest[i] == cur))
                                     or (ld == 0 and inferred)):
                k = _end_trip(k, rec, v, vidx[i], i, t, cur, OUT_COMPLETED, ct, cf)
        elif cur < 0:
            if phase != 0:
                if phase == PHASE_LOADED and inferred and gap_dest[i] >= 0:
                    # back in view right by a destination after a gap it could have unloaded in: done there
                    _close_stop(v, ct, cf, stop_min)
                    k = _end_trip(k, rec, v, vidx[i], i, t, gap_dest[i], OUT_COMPLETED, ct, cf)
                elif drop or lift:
                    ct[v, T_DROP] = t
                    _close_stop(v, ct, cf, stop_min)
                    k = _end_trip(k, rec, v, vidx[i], i, t, -1, OUT_DUMPED, ct, cf)
                elif speed[i] <= stop_kmh and not (near[i] and cf[v, F_PEND] > 0):
                    # (slowing again close to a place right after a stop: the approach to its gate — the stop
                    # stays pending for the gate test; a stop *starting* near a place is a stop like any other)
                    if cf[v, F_PEND] > 0:
                        _close_stop(v, ct, cf, stop_min)  # stopping again by the road: the last stop counts
                    if ct[v, T_STOP] >= 0 and speed[i] > 0 and dist_m_nb(
                            ct[v, T_SLON] / 1e7, ct[v, T_SLAT] / 1e7, lon[i], lat[i]) > stop_radius:
                        # creeping away; a multipath jump of a standing truck (speed 0) does not split the stop
                        _close_stop(v, ct, cf, stop_min)
                    if ct[v, T_STOP] < 0:
                        ct[v, T_STOP] = t
                        ct[v, T_SLON] = np.int64(np.round(lon[i] * 1e7))
                        ct[v, T_SLAT] = np.int64(np.round(lat[i] * 1e7))
                    ct[v, T_STOPLAST] = t
                else:
                    _pause_stop(v, t, ct, cf)
            elif ld > 0:
                _begin_trip(v, t, -1, 1.0, ct, cf)  # loaded somewhere we do not know
            if drop or lift:
                ct[v, T_DROP] = t
        if ld >= 0:
            cf[v, F_LAST] = ld
        # a truck without a load sensor that stood ≥ stop_min by the road may have dumped: no longer "loaded"
        doubtful = cf[v, F_SRC] != 1 and (ct[v, T_BEST0] >= 0 or (
            ct[v, T_STOP] >= 0 and ct[v, T_STOPLAST] - ct[v, T_STOP] >= stop_min))
        loaded[i] = 0 if doubtful else (1 if cf[v, F_PHASE] == 1 else (2 if cf[v, F_PHASE] == 2 else 0))
        src_out[i] = np.int8(cf[v, F_SRC]) if cf[v, F_PHASE] == 1 else np.int8(-1)
        if cf[v, F_PHASE] != 1 and cur >= 0 and ct[v, T_OUT] >= 0 and role[kd, cur] == ROLE_ORIGIN:
            # left an origin loaded, the exit not yet confirmed: already loaded on the road
            if cf[v, F_PLOAD] > 0:
                loaded[i] = 1
                src_out[i] = 1
            elif cf[v, F_PLOAD] < 0 and cf[v, F_OWN] > 0 and ct[v, T_OUT] - ct[v, T_ENTER] >= load_dwell:
                loaded[i] = 1
                src_out[i] = 0
        drop_out[i] = ct[v, T_DROP]
        trip_out[i] = ct[v, T_TRIP]
        if act[i] != 0:  # guard at the call: see tracker.state.snap_before
            snap_after(v, act[i], ct, cf, mt, mf)
    return loaded, src_out, drop_out, trip_out, k, rec
