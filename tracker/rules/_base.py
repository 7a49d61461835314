"""What every rule shares: the batch it reads, the events it writes, its parameter base class.

A rule never builds `Episode` objects on the hot path: its numba scan writes *events* (open / update /
close, one row each) into arrays, and the engine turns the few events into episodes with evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from tracker.world import FENCE_KIND_CODE, KIND_CODE, KINDS, World

EV_OPEN = 1
EV_UPDATE = 2  # escalation level or severity changed while open
EV_CLOSE = 3
EV_RETRACT = 4  # an episode opened on a guess (time passing) that the fix which then arrived disproves
EV_CONFIRM = 5  # provisional (hidden) episodes of the vehicle starting in [start_ts, end_ts] become alerts
EV_DISCARD = 6  # ... or are dropped, never having been shown

SEV_SUSPECTED = 0
SEV_CONFIRMED = 1
SEVERITY_NAMES = ("suspected", "confirmed")

PLACE_NONE = 0
PLACE_FENCE = 1  # place codes are fence positions in World
PLACE_DOC = 2  # place codes are permit/order rows in World.docs


@dataclass
class Batch:
    """One batch of fixes as arrays, sorted by (vehicle, fix time), with hygiene already applied.

    Tri-state sensors are int8: −1 not reported, 0 false, 1 true; `load` is −1 or 0/1/3, `drum` −1 or 0/1/2.
    Rows with `ok == False` (impossible jumps) are present so snapshots line up, but every rule skips them.
    """

    world: World
    vidx: npt.NDArray[np.int32]  # vehicle position in World (reference data look-ups)
    sidx: npt.NDArray[np.int32]  # row of the vehicle in the state tables (== vidx except in detached runs)
    kind: npt.NDArray[np.int8]
    ts_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    heading_deg: npt.NDArray[np.float64]
    cover_closed: npt.NDArray[np.int8]
    lifting: npt.NDArray[np.int8]
    device_on: npt.NDArray[np.int8]
    load: npt.NDArray[np.int8]
    drum: npt.NDArray[np.int8]
    backfill: npt.NDArray[np.bool_]
    act: npt.NDArray[np.int8]  # snapshot actions (tracker.state)
    ok: npt.NDArray[np.bool_]
    dt_s: npt.NDArray[np.float64]  # seconds since the vehicle's previous ok fix (−1 for its first)
    step_m: npt.NDArray[np.float64]  # metres from the previous ok fix
    move_m: npt.NDArray[np.float64]  # step_m when the vehicle was really moving, else 0 (GPS noise is not travel)
    jump: npt.NDArray[np.int8]
    minute: npt.NDArray[np.int16]  # local minute of day
    day: npt.NDArray[np.int32]  # local epoch day
    cells: npt.NDArray[np.uint64] | None = None  # res-fix_res H3 cells when the producer supplied them
    detached: bool = False  # evaluated from a fresh state (fixes older than the retained window)
    extra: dict[str, Any] = field(default_factory=dict)  # per-batch derived arrays (trips, fence hits)

    @property
    def n(self) -> int:
        return int(self.vidx.shape[0])

    # -- fences, computed once per batch and shared by every rule --------------------------------------
    def hits(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """All (row, fence position) pairs with the fix inside the fence (ok rows only; route corridors only
        when they carry a speed tag — see `World.hit_mask`)."""
        got = self.extra.get("hits")
        if got is None:
            fi = self.world.fence_index
            rows = np.flatnonzero(self.ok)
            if fi is None or rows.size == 0:
                got = (np.zeros(0, np.int64), np.zeros(0, np.int32))
            else:
                cells = None if self.cells is None else self.cells[rows]
                p, f = fi.locate(self.lon[rows], self.lat[rows], cells=cells, fence_mask=self.world.hit_mask)
                got = (rows[np.asarray(p, np.int64)], np.asarray(f, np.int32))
            self.extra["hits"] = got
        return got

    def kind_bits(self) -> npt.NDArray[np.uint32]:
        """Per row: bit set of the fence kinds (`tracker.world.FENCE_KINDS` codes) of the fences containing
        the fix, from `hits` — one pass, then every "inside a fence of these kinds" question is a mask test."""
        got = self.extra.get("kind_bits")
        if got is None:
            rows, fences = self.hits()
            got = self.extra["kind_bits"] = _kind_bits(self.n, rows, fences, self.world.fence_kind)
        return got

    def in_kinds(self, kinds: tuple[str, ...]) -> npt.NDArray[np.bool_]:
        """Per row: inside any fence of these kinds (ignoring time windows)."""
        key = ("in", kinds)
        got = self.extra.get(key)
        if got is None:
            got = self.extra[key] = (self.kind_bits() & np.uint32(kinds_bitmask(kinds))) != 0
        return got

    def first_of_kinds(self, kinds: tuple[str, ...], active_only: bool = False) -> npt.NDArray[np.int32]:
        """Per row: position of a fence of these kinds containing the fix (lowest position), else −1."""
        key = ("first", kinds, active_only)
        got = self.extra.get(key)
        if got is None:
            rows, fences = self.hits()
            sel = self.world.kind_set_mask(kinds)[fences]
            if active_only and sel.any():
                act = self.world.fence_activity
                sel[sel] = act.mask(self.ts_ms[rows[sel]], fences[sel], self.world.settings.city.utc_offset_min)
            got = self.extra[key] = _first_fence(self.n, rows, fences, sel)
        return got


@dataclass
class Events:
    """Episode transitions found by one rule in one batch (parallel arrays, in scan order)."""

    etype: npt.NDArray[np.int8]
    vidx: npt.NDArray[np.int32]
    row: npt.NDArray[np.int64]  # batch row at which the transition was decided
    start_ts: npt.NDArray[np.int64]
    end_ts: npt.NDArray[np.int64]  # −1 unless closing
    level: npt.NDArray[np.int8]  # escalation level, 1 = base
    sev: npt.NDArray[np.int8]
    place: npt.NDArray[np.int32]
    peak: npt.NDArray[np.float64]  # the rule's headline value (max speed, max distance off route, ...)
    dist_m: npt.NDArray[np.float64]  # distance travelled while in violation
    last_ts: npt.NDArray[np.int64]  # last fix time inside the episode so far
    lon: npt.NDArray[np.float64] | None = None  # where, when not the decision row's fix (NaN = that fix)
    lat: npt.NDArray[np.float64] | None = None
    hidden: npt.NDArray[np.bool_] | None = None  # provisional: kept by the book, shown only once confirmed

    def __len__(self) -> int:
        return int(self.etype.shape[0])

    @classmethod
    def empty(cls) -> Events:
        z = np.zeros(0)
        return cls(z.astype(np.int8), z.astype(np.int32), z.astype(np.int64), z.astype(np.int64),
                   z.astype(np.int64), z.astype(np.int8), z.astype(np.int8), z.astype(np.int32), z, z.copy(),
                   z.astype(np.int64))

    @classmethod
    def concat(cls, parts: list[Events]) -> Events:
        parts = [p.with_places() for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(*[np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__])

    def with_places(self) -> Events:
        if self.lon is None:
            self.lon = np.full(len(self), np.nan)
            self.lat = np.full(len(self), np.nan)
        if self.hidden is None:
            self.hidden = np.zeros(len(self), np.bool_)
        return self

    def take(self, sel: np.ndarray) -> Events:
        self.with_places()
        return Events(*(getattr(self, f)[sel] for f in self.__dataclass_fields__))

    @classmethod
    def instant(cls, vidx, row, start_ts, end_ts, sev, place, peak, dist_m, lon=None, lat=None) -> Events:
        """Episodes decided in one go (a failed trip's stop, a signal gap): an OPEN then a CLOSE each."""
        m = np.asarray(vidx).shape[0]
        two = lambda a, dt: np.repeat(np.asarray(a, dtype=dt), 2)  # noqa: E731
        et = np.tile(np.array([EV_OPEN, EV_CLOSE], np.int8), m)
        end = np.repeat(np.asarray(end_ts, np.int64), 2)
        end[0::2] = -1
        return cls(etype=et, vidx=two(vidx, np.int32), row=two(row, np.int64), start_ts=two(start_ts, np.int64),
                   end_ts=end, level=np.ones(2 * m, np.int8), sev=two(sev, np.int8), place=two(place, np.int32),
                   peak=two(peak, np.float64), dist_m=two(dist_m, np.float64), last_ts=two(end_ts, np.int64),
                   lon=None if lon is None else two(lon, np.float64), lat=None if lat is None else two(lat, np.float64))


class RuleParams(BaseModel):
    """Base of every rule's parameters. `by_kind` overrides any field for one vehicle kind, e.g.

        [rules.speeding.by_kind.muck_truck]
        limit_kmh = 40
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="switch the rule off without removing its configuration")
    by_kind: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per vehicle kind overrides")

    @property
    def _cache(self) -> dict[Any, Any]:
        # a plain instance attribute (not a pydantic private attr): rules read it on every batch
        try:
            return self.__dict__["_memo"]
        except KeyError:
            memo: dict[Any, Any] = {}
            self.__dict__["_memo"] = memo
            return memo

    def for_kind(self, kind: str) -> RuleParams:
        over = self.by_kind.get(kind)
        if not over:
            return self
        got = self._cache.get(("kind", kind))
        if got is None:
            data = self.model_dump()
            data.update(over)
            data["by_kind"] = {}
            got = self._cache[("kind", kind)] = type(self).model_validate(data)
        return got

    def kind_table(self, name: str, dtype=np.float64) -> np.ndarray:
        """Field `name` resolved for every vehicle kind code (`tracker.world.KINDS`); computed once."""
        key = ("table", name, np.dtype(dtype).str)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = np.array([getattr(self.for_kind(k), name) for k in KINDS], dtype=dtype)
        return got

    def applies_to(self) -> np.ndarray:
        """Boolean per kind code: is the rule enabled for that kind?"""
        return self.kind_table("enabled", np.bool_)

    def thresholds(self, kind_code: int) -> dict[str, Any]:
        """The thresholds in force for a vehicle kind, for the evidence of an episode."""
        data = self.for_kind(KINDS[kind_code]).model_dump()
        data.pop("by_kind", None)
        return data


def kind_codes(names: tuple[str, ...]) -> np.ndarray:
    return np.array([KIND_CODE[n] for n in names], np.int8)


assert len(FENCE_KIND_CODE) <= 32, "Batch.kind_bits holds one bit per fence kind in a uint32"


def kinds_bitmask(kinds) -> int:
    """Bit set of fence kind codes (as in `Batch.kind_bits`)."""
    bits = 0
    for k in kinds:
        bits |= 1 << FENCE_KIND_CODE[str(k)]
    return bits


@nb.njit(cache=True)
def _kind_bits(n, rows, fences, fence_kind):
    out = np.zeros(n, np.uint32)
    for j in range(rows.shape[0]):
        out[rows[j]] |= np.uint32(1) << np.uint32(fence_kind[fences[j]])
    return out


@nb.njit(cache=True)
def _first_fence(n, rows, fences, sel):
    """Per row: the lowest fence position among its selected hits, else −1."""
    out = np.full(n, -1, np.int32)
    for j in range(rows.shape[0]):
        if sel[j]:
            r = rows[j]
            f = fences[j]
            if out[r] < 0 or f < out[r]:
                out[r] = f
    return out
