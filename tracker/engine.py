"""`Engine`: batches of fixes in, episodes out, per-vehicle state carried between batches.

One call to `process` does, for the whole batch at once (no per-fix Python):

1. conform the frame, map vehicle ids to small ints, drop invalid fixes (counted), quantise coordinates to
   1e-7° so a replay sees identical numbers, sort by (vehicle, fix time), drop duplicates;
2. split out *late* fixes (older than the vehicle's newest): a duplicate of a retained fix is dropped; a late
   fix inside the retained window makes its vehicle *re-run* — state rolled back to the window's base, the
   window's fixes and the new ones replayed in fix-time order (exact: identical to in-order arrival); a late
   fix older than the window is evaluated as a *detached* block from a fresh state (`tracker.state`);
3. hygiene (impossible jumps; time and distance steps), trips, then every rule's vectorised scan;
4. the events become episodes (`tracker.rules._book`) with evidence, and the batch joins the ring.

Everything that can be carried as arrays indexed by vehicle is (`tracker.state`); Python objects exist only
per *episode*, which are rare.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from tracker import hygiene
from tracker.config import Settings
from tracker.episode import Episode
from tracker.fix import FIX_SCHEMA, conform
from tracker.rules import discover, load_params
from tracker.rules._base import Batch
from tracker.rules._book import EpisodeBook
from tracker.state import FLAG_BACKFILL, FLAG_COVER, FLAG_DEVICE, FLAG_LIFTING, Ring, RingView, StateTable
from tracker.windows import local_day, local_minute_of_day
from tracker.world import World

NONE_TS = np.iinfo(np.int64).min


class EngineParams(BaseModel):
    """`[rules.engine]`: how much the engine retains and reports (see `tracker/defaults.toml`)."""

    model_config = ConfigDict(extra="forbid")
    ring_k: int = Field(16, ge=1, le=4096)
    evidence_before_s: float = Field(120.0, ge=0)
    evidence_after_s: float = Field(120.0, ge=0)
    evidence_max_fixes: int = Field(400, ge=10)
    offline_after_s: float = Field(600.0, gt=0)
    moving_kmh: float = Field(3.0, ge=0, description="live status 'moving' above this speed")
    move_kmh: float = Field(3.0, ge=0, description="a step counts as distance travelled above this GPS speed")
    move_implied_kmh: float = Field(15.0, ge=0, description="... or, with no speed reported, above this implied speed")


@dataclass
class RuleSlot:
    module: ModuleType
    params: Any
    table: StateTable

    @property
    def name(self) -> str:
        return self.module.NAME


def _num(df: pl.DataFrame, name: str, null, dtype) -> np.ndarray:
    """A column as a numpy array with nulls replaced (booleans become 0/1 for tri-state sensors)."""
    s = df.get_column(name)
    if s.null_count() == 0:
        return s.to_numpy().astype(dtype, copy=False)
    if s.null_count() == s.len():
        return np.full(s.len(), null, dtype)
    return s.cast(pl.Int8 if s.dtype == pl.Boolean and dtype == np.int8 else s.dtype).fill_null(null) \
        .to_numpy().astype(dtype, copy=False)


def _sort_order(vidx: np.ndarray, ts: np.ndarray, received: np.ndarray) -> np.ndarray:
    """`np.lexsort((received, ts, vidx))`, faster: one stable sort of a packed (vehicle, fix time) key — a
    batch arrives mostly in order, which a stable sort of one int64 key exploits and lexsort does not. Ties
    (duplicate fixes) are ordered by receipt time by sorting on it first; a time span too wide to pack
    takes the lexsort."""
    n = vidx.shape[0]
    if n > 1:
        t0, t1 = int(ts.min()), int(ts.max())
        vmax = int(vidx.max())
        shift = max(int(t1 - t0).bit_length(), 1)
        if int(vidx.min()) >= 0 and vmax.bit_length() + shift <= 62:
            key = (vidx.astype(np.int64) << shift) | (ts.astype(np.int64) - t0)
            order = np.argsort(key, kind="stable")
            k = key[order]
            if not (k[1:] == k[:-1]).any():
                return order
            first = np.argsort(received, kind="stable")  # duplicates: the first received first, as lexsort
            return first[np.argsort(key[first], kind="stable")]
    return np.lexsort((received, ts, vidx))


class Engine:
    """The compliance engine for one shard of vehicles (a vehicle must always reach the same engine)."""

    def __init__(self, world: World, settings: Settings, rules: list[str] | None = None):
        self.world = world
        self.settings = settings
        self.params = load_params("engine", EngineParams, settings)
        self.hyg_params = load_params("hygiene", hygiene.HygieneParams, settings)
        n = world.n_vehicles
        self.ring = Ring(self.params.ring_k, n)
        self.hyg = hygiene.new_state(n)
        from tracker.trips import Trips

        self.trips = Trips(world, settings, n)
        self.rules: list[RuleSlot] = []
        for mod in discover():
            if rules is not None and mod.NAME not in rules:
                continue
            params = load_params(mod.NAME, mod.Params, settings)
            if not params.enabled:
                continue
            self.rules.append(RuleSlot(mod, params, mod.new_state(n, params)))
        self.book = EpisodeBook(world, self.params, self.rules)
        self.invalid_count = np.zeros(n, np.int32)
        self.last_now_ms = NONE_TS
        self._held: dict[str, np.ndarray] | None = None  # very late fixes waiting one call (see _hold_detached)
        self.stats = {"fixes": 0, "invalid": 0, "duplicates": 0, "late_replayed": 0, "detached": 0,
                      "redelivered_dropped": 0, "jumps": 0}

    # -- state sizing ---------------------------------------------------------------------------------------
    def _tables(self) -> list[StateTable]:
        return [self.hyg, *self.trips.tables(), *(r.table for r in self.rules)]

    def _grow(self) -> None:
        n = self.world.n_vehicles
        if len(self.hyg) >= n:
            return
        self.ring.grow(n)
        for t in self._tables():
            t.grow(n)
        if self.invalid_count.shape[0] < len(self.hyg):
            self.invalid_count = np.concatenate(
                [self.invalid_count, np.zeros(len(self.hyg) - self.invalid_count.shape[0], np.int32)])

    # -- the batch path -------------------------------------------------------------------------------------
    def process(self, fixes: pl.DataFrame) -> list[Episode]:
        """Evaluate a batch (any vehicles, any order). Returns the episodes this batch opened, updated or
        closed, each once, in its latest version."""
        if fixes.height == 0:
            return []
        rows = self._prepare(fixes)
        if rows is None:
            return []
        vidx, ts = rows["vidx"], rows["ts_ms"]
        late = ts <= self.ring.last_ts_ms[vidx]
        if late.any():
            dup = np.zeros(vidx.shape[0], bool)
            dup[late] = self.ring.contains_ts(vidx[late], ts[late])
            beyond = late & ~dup & (ts <= self.ring.base_ts_ms[vidx])
            if beyond.any():  # older than the retained window: new data only if it fills a known gap
                sel = np.flatnonzero(beyond)
                again = ~self.ring.fills_gap(vidx[sel], ts[sel])
                dup[sel[again]] = True
                beyond[sel[again]] = False
                self.stats["redelivered_dropped"] += int(again.sum())
            rows["flags"][late] |= np.uint8(1 << FLAG_BACKFILL)  # arrived after newer data: back-filled
            rerun = np.unique(vidx[late & ~dup & ~beyond])
            self.stats["duplicates"] += int(dup.sum())
            self.stats["late_replayed"] += int((late & ~dup & ~beyond).sum())
            self.stats["detached"] += int(beyond.sum())
            keep = ~dup & ~beyond
            detached = {k: a[beyond] for k, a in rows.items()} if beyond.any() else None
            rows = {k: a[keep] for k, a in rows.items()}
        else:
            rerun = np.zeros(0, np.int32)
            detached = None
        self.book.begin()
        if rerun.size:
            rows = self._merge_rerun(rows, rerun)
        if rows["vidx"].size:
            self._run(rows, rerun)
        self._hold_detached(detached)
        return self.book.end(self.ring)

    def _hold_detached(self, rows: dict[str, np.ndarray] | None) -> None:
        """Very late fixes wait one call: a back-fill split over consecutive batches is evaluated as one
        block, from one fresh state, so one dumping is one episode."""
        fresh_v = np.unique(rows["vidx"]) if rows is not None else np.zeros(0, np.int32)
        held = self._held
        if held is not None:
            due = ~np.isin(held["vidx"], fresh_v)
            if due.any():
                self._run_detached({k: a[due] for k, a in held.items()})
                held = {k: a[~due] for k, a in held.items()} if not due.all() else None
        if rows is not None:
            held = rows if held is None else {k: np.concatenate([held[k], rows[k]]) for k in rows}
        self._held = held

    def _flush_detached(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._run_detached(held)

    def _prepare(self, df: pl.DataFrame) -> dict[str, np.ndarray] | None:
        cells = df.get_column("h3") if "h3" in df.columns else None
        schema = df.schema
        if tuple(df.columns) != tuple(FIX_SCHEMA) or any(schema[c] != t for c, t in FIX_SCHEMA.items()):
            df = conform(df)
        vidx = self.world.vidx(df.get_column("vehicle_id"))
        self._grow()
        a = {
            "ts_ms": _num(df, "ts_ms", 0, np.int64), "lon": _num(df, "lon", np.nan, np.float64),
            "lat": _num(df, "lat", np.nan, np.float64), "speed_kmh": _num(df, "speed_kmh", 0.0, np.float64),
            "heading_deg": _num(df, "heading_deg", 0.0, np.float64), "valid": _num(df, "valid", True, np.bool_),
            "cover": _num(df, "cover_closed", -1, np.int8), "lifting": _num(df, "lifting", -1, np.int8),
            "device_on": _num(df, "device_on", -1, np.int8), "load": _num(df, "load", -1, np.int8),
            "drum": _num(df, "drum", -1, np.int8), "backfill": _num(df, "backfill", False, np.bool_),
            "received_ts_ms": _num(df, "received_ts_ms", 0, np.int64),
        }
        ok = hygiene.valid_mask(a["lon"], a["lat"], a["valid"])
        self.stats["fixes"] += int(ok.shape[0])
        self.stats["invalid"] += int((~ok).sum())
        if not ok.all():
            np.add.at(self.invalid_count, vidx[~ok], 1)
            sel = np.flatnonzero(ok)
            if sel.size == 0:
                return None
        else:
            sel = None
        order = _sort_order(vidx, a["ts_ms"], a["received_ts_ms"])
        if sel is not None:
            order = order[ok[order]]
        v = vidx[order]
        ts = a["ts_ms"][order].astype(np.int64)
        first = np.ones(order.size, bool)
        first[1:] = (v[1:] != v[:-1]) | (ts[1:] != ts[:-1])
        self.stats["duplicates"] += int((~first).sum())
        order, v, ts = order[first], v[first], ts[first]
        flags = ((a["cover"][order] + 1).astype(np.uint8) << FLAG_COVER) \
            | ((a["lifting"][order] + 1).astype(np.uint8) << FLAG_LIFTING) \
            | ((a["device_on"][order] + 1).astype(np.uint8) << FLAG_DEVICE) \
            | (a["backfill"][order].astype(np.uint8) << FLAG_BACKFILL)
        rows = {
            "vidx": v.astype(np.int32), "ts_ms": ts,
            "lon_e7": np.round(a["lon"][order] * 1e7).astype(np.int32),
            "lat_e7": np.round(a["lat"][order] * 1e7).astype(np.int32),
            "speed_dkmh": np.clip(np.round(np.nan_to_num(a["speed_kmh"][order]) * 10), 0, 65535).astype(np.uint16),
            "heading_cdeg": np.round(np.nan_to_num(a["heading_deg"][order]) % 360.0 * 100).astype(np.uint16),
            "flags": flags, "load": a["load"][order].astype(np.int8), "drum": a["drum"][order].astype(np.int8),
        }
        if cells is not None:
            rows["cells"] = cells.to_numpy()[order].astype(np.uint64)
        return rows

    def _merge_rerun(self, rows: dict[str, np.ndarray], rerun: npt.NDArray[np.int32]) -> dict[str, np.ndarray]:
        """Roll re-run vehicles back to their base state and put their retained fixes in with the new ones."""
        self.book.begin_rerun(rerun, self.ring.base_ts_ms[rerun])
        self.trips.forget_after(rerun, self.ring.base_ts_ms[rerun])
        view: RingView = self.ring.take(rerun)
        for t in self._tables():
            t.restore(rerun)
        old = {k: getattr(view, k) for k in ("vidx", *Ring._COLS)}
        if "cells" in rows:
            from geofences.h3util import cells_at

            old["cells"] = cells_at(old["lon_e7"] / 1e7, old["lat_e7"] / 1e7, self.settings.h3.fix_res)
        merged = {k: np.concatenate([old[k], rows[k]]) for k in rows}
        order = np.lexsort((merged["ts_ms"], merged["vidx"]))
        return {k: a[order] for k, a in merged.items()}

    def make_batch(self, rows: dict[str, np.ndarray], sidx: np.ndarray, tables: dict[str, StateTable],
                   act: np.ndarray, detached: bool = False) -> Batch:
        """Unpack rows into a `Batch` and run hygiene (the part every rule depends on)."""
        flags = rows["flags"]
        lon = rows["lon_e7"] / 1e7
        lat = rows["lat_e7"] / 1e7
        ts = rows["ts_ms"]
        ok, dt_s, step_m, jump = hygiene.scan(sidx, ts, rows["lon_e7"], rows["lat_e7"], act, tables["hygiene"],
                                              self.hyg_params)
        off = self.settings.city.utc_offset_min
        speed = rows["speed_dkmh"] / 10.0
        with np.errstate(divide="ignore", invalid="ignore"):
            implied_kmh = np.where(dt_s > 0, step_m / dt_s * 3.6, 0.0)
        moving = (speed > self.params.move_kmh) | ((speed == 0) & (implied_kmh > self.params.move_implied_kmh))
        return Batch(
            world=self.world, vidx=rows["vidx"], sidx=sidx, kind=self.world.vehicle_kind[rows["vidx"]], ts_ms=ts,
            lon=lon, lat=lat, speed_kmh=speed, heading_deg=rows["heading_cdeg"] / 100.0,
            cover_closed=((flags >> FLAG_COVER) & 3).astype(np.int8) - 1,
            lifting=((flags >> FLAG_LIFTING) & 3).astype(np.int8) - 1,
            device_on=((flags >> FLAG_DEVICE) & 3).astype(np.int8) - 1,
            load=rows["load"], drum=rows["drum"], backfill=((flags >> FLAG_BACKFILL) & 1).astype(bool),
            act=act, ok=ok, dt_s=dt_s, step_m=step_m, move_m=np.where(moving, step_m, 0.0), jump=jump,
            minute=local_minute_of_day(ts, off), day=local_day(ts, off),
            cells=rows.get("cells"), detached=detached)

    def _run(self, rows: dict[str, np.ndarray], rerun: np.ndarray) -> None:
        vidx = rows["vidx"]
        act = self.ring.plan(vidx)
        tables = {"hygiene": self.hyg}
        batch = self.make_batch(rows, vidx, tables, act)
        self.stats["jumps"] += int((batch.jump == hygiene.JUMP_REJECTED).sum())
        self.trips.step(batch)
        for slot in self.rules:
            ev = slot.module.evaluate(batch, slot.table, self.world, slot.params)
            self.book.apply(slot, ev, batch)
        self.book.collect_evidence(batch, self.ring)
        self.ring.push(rows)

    def _run_detached(self, rows: dict[str, np.ndarray]) -> None:
        """Fixes older than the retained window: evaluate them as a closed past interval from a fresh state,
        so dumping during a long 'signal loss' is still found (and marked back-filled), never skipped."""
        order = np.lexsort((rows["ts_ms"], rows["vidx"]))
        rows = {k: a[order] for k, a in rows.items()}
        first = np.ones(order.size, bool)  # the same late fix delivered twice while held
        first[1:] = (rows["vidx"][1:] != rows["vidx"][:-1]) | (rows["ts_ms"][1:] != rows["ts_ms"][:-1])
        rows = {k: a[first] for k, a in rows.items()}
        uniq, sidx = np.unique(rows["vidx"], return_inverse=True)
        m = uniq.size
        act = np.zeros(rows["vidx"].size, np.int8)
        hyg = self.hyg.fresh(m)
        batch = self.make_batch(rows, sidx.astype(np.int32), {"hygiene": hyg}, act, detached=True)
        trips = self.trips.fresh(m)
        trips.step(batch)
        fresh = [slot.table.fresh(m) for slot in self.rules]
        for slot, table in zip(self.rules, fresh, strict=True):
            self.book.apply(slot, slot.module.evaluate(batch, table, self.world, slot.params), batch)
        rec = trips.finish(uniq)
        for slot, table in zip(self.rules, fresh, strict=True):
            self.book.apply(slot, slot.module.finish(batch, table, self.world, slot.params, uniq, rec), batch)
        self.book.collect_evidence(batch, None)
        self.book.merge_detached(batch)
        self.ring.consume_gap(rows["vidx"], rows["ts_ms"])

    # -- time passing ---------------------------------------------------------------------------------------
    def advance(self, now_ms: int) -> list[Episode]:
        """Time passes without fixes: open signal-loss episodes, close episodes whose vehicle went quiet."""
        self.last_now_ms = max(self.last_now_ms, int(now_ms))
        self.book.begin()
        last = self.ring.last_ts_ms
        for slot in self.rules:
            fn = getattr(slot.module, "advance", None)
            if fn is not None:
                ev = fn(int(now_ms), last, slot.table, self.world, slot.params, self)
                self.book.apply(slot, ev, None)
        return self.book.end(self.ring, now_ms=int(now_ms))

    def finish(self) -> list[Episode]:
        """End of data: close every open episode at its last fix, judge trips left open, complete evidence."""
        self.book.begin()
        self._flush_detached()
        every = np.arange(self.world.n_vehicles, dtype=np.int32)
        rec = self.trips.finish(every)
        for slot in self.rules:
            ev = slot.module.finish(None, slot.table, self.world, slot.params, every, rec, end_ms=self._end_ms(),
                                    hygiene=self.hyg)
            self.book.apply(slot, ev, None)
        return self.book.end(self.ring, final=True)

    def _end_ms(self) -> int:
        """The end of the data: the newest fix time seen, or the latest `advance` time if later."""
        n = self.world.n_vehicles
        last = int(self.ring.last_ts_ms[:n].max()) if n else NONE_TS
        return max(last, self.last_now_ms)

    # -- views ----------------------------------------------------------------------------------------------
    def open_kinds(self) -> dict[str, set[str]]:
        return self.book.open_kinds()

    def live_state(self, now_ms: int | None = None) -> pl.DataFrame:
        """Per vehicle seen: last fix, status (moving/stopped/offline/alarm), current trip, open episode kinds."""
        from tracker.rules._book import live_state

        return live_state(self, now_ms)

    def state_bytes(self) -> int:
        """Bytes of per-vehicle state held (arrays plus open-episode bookkeeping), for the memory benchmark."""
        total = self.ring.nbytes() + self.invalid_count.nbytes + self.trips.nbytes()
        total += sum(t.nbytes() for t in (self.hyg, *(r.table for r in self.rules)))
        total += self.book.nbytes()
        return int(total)
