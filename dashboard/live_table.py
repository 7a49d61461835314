"""The fleet's live state as numpy columns, and what each `/ws/live` subscriber still needs to be sent.

One table per web process, fed from Redis (the `fw:live` hash once, then the `fw:live:changes` stream);
every connection keeps only two integer arrays against it (its own index of each vehicle and the table
version it last sent), so a push to a page is a vectorised comparison plus one `tobytes()` — never a loop
over 20,000 vehicles in Python per connection per second.

The values stored are already quantised to the wire format (`dashboard.wire`): a vehicle counts as
*changed* only when something a page would draw differently changed, so a parked truck reporting every
10 s costs nothing on the wire.

Tenancy: the table also keeps each vehicle's company and district (as interned codes), so a connection's
scope (`tracker.cases.access.Scope`) becomes one boolean mask, cached per scope until the registry changes;
a subscriber is sent only vehicles inside it, and fleet totals are counted over it. An unregistered vehicle
(no owner yet) is visible only to unrestricted scopes.

The fleet clock: "offline" means no fix for `offline_after_s` *of fleet time*. The clock is the newest fix
time seen, advanced by the wall clock since it was seen — so a simulated city running 10× faster, or a
replay of last night, shows the right vehicles offline, and a total ingest outage still turns the whole
fleet offline as real time passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from dashboard import wire
from dashboard.options import DashboardOptions
from tracker.cases.access import Scope

_GROW = 1024


@dataclass
class LiveTable:
    options: DashboardOptions
    ids: list[str] = field(default_factory=list)
    slots: dict[str, int] = field(default_factory=dict)
    alarm_kinds: dict[str, list[str]] = field(default_factory=dict)
    version: int = 0  # bumped on every refresh that changed something
    newest_fix_ms: float = 0.0
    _newest_seen_wall: float = 0.0
    owners_version: int = 0  # bumped when a kind, company or district changed (scope masks are recomputed)

    def __post_init__(self) -> None:
        self._cap = 0
        self._codes: dict[str, int] = {}
        self._owners: dict[str, tuple[str | None, str | None]] = {}
        self._masks: dict[Scope, tuple[tuple[int, int], npt.NDArray[np.bool_]]] = {}
        self._alloc(_GROW)

    # -- storage ----------------------------------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        def grow(name: str, dtype: Any, fill: Any = 0) -> None:
            new = np.full(cap, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old
            setattr(self, name, new)

        grow("lon", np.int32)
        grow("lat", np.int32)
        grow("speed", np.uint8)
        grow("heading", np.uint8)
        grow("kind", np.uint8, wire.KIND_UNKNOWN)
        grow("motion", np.uint8)
        grow("alarms", np.uint8)
        grow("sensors", np.uint16)
        grow("ts_ms", np.float64)
        grow("changed_at", np.int64, -1)  # table version at which the vehicle's record last changed
        grow("company", np.int32, -1)  # interned owner codes (-1 = not registered)
        grow("district", np.int32, -1)
        self._cap = cap

    def __len__(self) -> int:
        return len(self.ids)

    def _slot(self, vid: str) -> int:
        slot = self.slots.get(vid)
        if slot is None:
            slot = len(self.ids)
            if slot >= self._cap:
                self._alloc(max(self._cap * 2, slot + _GROW))
            self.slots[vid] = slot
            self.ids.append(vid)
            company, district = self._owners.get(vid, (None, None))
            self.company[slot], self.district[slot] = self._code(company), self._code(district)
        return slot

    def _code(self, value: str | None) -> int:
        if value is None:
            return -1
        return self._codes.setdefault(value, len(self._codes))

    # -- updates ----------------------------------------------------------------------------------------
    def apply(self, states: list[dict[str, Any]], kinds: dict[str, str]) -> None:
        """Merge live states (the msgpack dicts of `tracker.edges.live`); `kinds`: vehicle id → kind."""
        if not states:
            return
        n = len(states)
        slot = np.empty(n, np.int64)
        lon = np.empty(n, np.int32)
        lat = np.empty(n, np.int32)
        speed = np.empty(n, np.uint8)
        heading = np.empty(n, np.uint8)
        kind = np.empty(n, np.uint8)
        alarms = np.empty(n, np.uint8)
        sensors = np.empty(n, np.uint16)
        ts = np.empty(n, np.float64)
        for i, s in enumerate(states):
            vid = s["vehicle_id"]
            slot[i] = self._slot(vid)
            lon[i] = round(s["lon"] * 1e6)
            lat[i] = round(s["lat"] * 1e6)
            speed[i] = min(255, max(0, round(s.get("speed_kmh") or 0)))
            heading[i] = round((s.get("heading_deg") or 0) % 360 / 2) % 180
            kind[i] = wire.kind_code(kinds.get(vid))
            open_kinds = s.get("alarm_kinds") or []
            self.alarm_kinds[vid] = list(open_kinds)
            alarms[i] = min(255, len(open_kinds))
            sensors[i] = wire.sensors_word(s)
            ts[i] = s.get("ts_ms") or 0
        # a late state never moves a vehicle back (publish_live already guards; the stream may reorder)
        keep = ts >= self.ts_ms[slot]
        slot, ts = slot[keep], ts[keep]
        cols = {"lon": lon[keep], "lat": lat[keep], "speed": speed[keep], "heading": heading[keep],
                "kind": kind[keep], "alarms": alarms[keep], "sensors": sensors[keep]}
        changed = np.zeros(len(slot), bool)
        for name, values in cols.items():
            column = getattr(self, name)
            diff = column[slot] != values
            if name == "kind" and diff.any():
                self.owners_version += 1  # a re-registered kind changes who may see the vehicle
            changed |= diff
            column[slot] = values
        self.ts_ms[slot] = ts
        self._mark(slot[changed | (self.changed_at[slot] < 0)])
        if len(ts) and ts.max() > self.newest_fix_ms:
            self.newest_fix_ms = float(ts.max())
            self._newest_seen_wall = time.monotonic()

    def set_kinds(self, kinds: dict[str, str]) -> None:
        """Vehicles registered (or re-registered) after their first fix get their kind."""
        n = len(self.ids)
        if not n:
            return
        codes = np.array([wire.kind_code(kinds.get(v)) for v in self.ids], np.uint8)
        diff = np.flatnonzero(codes != self.kind[:n])
        self.kind[diff] = codes[diff]
        self._mark(diff)
        if len(diff):
            self.owners_version += 1

    def set_owners(self, owners: dict[str, tuple[str | None, str | None]]) -> None:
        """Each vehicle's (company, district) from the registry; vehicles seen later get theirs on arrival."""
        self._owners = owners
        n = len(self.ids)
        if not n:
            return
        pairs = [owners.get(v, (None, None)) for v in self.ids]
        company = np.array([self._code(c) for c, _ in pairs], np.int32)
        district = np.array([self._code(d) for _, d in pairs], np.int32)
        if (company != self.company[:n]).any() or (district != self.district[:n]).any():
            self.company[:n], self.district[:n] = company, district
            self.owners_version += 1

    def scope_mask(self, scope: Scope | None) -> npt.NDArray[np.bool_] | None:
        """Which slots the scope sees (None = all). Cached per scope until vehicles or owners change."""
        if scope is None or scope.unrestricted:
            return None
        n = len(self.ids)
        key = (n, self.owners_version)
        hit = self._masks.get(scope)
        if hit is not None and hit[0] == key:
            return hit[1]
        mask = np.ones(n, bool)
        for values, column in ((scope.companies, self.company), (scope.districts, self.district)):
            if values is not None:
                codes = [self._codes[v] for v in values if v in self._codes]
                mask &= np.isin(column[:n], np.array(codes, np.int32))
        if scope.vehicle_kinds is not None:
            kinds = [wire.kind_code(k) for k in scope.vehicle_kinds]
            mask &= np.isin(self.kind[:n], np.array([k for k in kinds if k != wire.KIND_UNKNOWN], np.uint8))
        if len(self._masks) > 256:
            self._masks.clear()
        self._masks[scope] = (key, mask)
        return mask

    def clock_ms(self) -> float:
        """Fleet clock (see module docstring)."""
        if not self.newest_fix_ms:
            return time.time() * 1000
        return self.newest_fix_ms + (time.monotonic() - self._newest_seen_wall) * 1000

    def refresh_motion(self, now_ms: float | None = None) -> float:
        """Recompute moving / stopped / offline against the fleet clock; returns the clock used."""
        now = self.clock_ms() if now_ms is None else now_ms
        n = len(self.ids)
        motion = np.where(self.speed[:n] >= self.options.moving_kmh, wire.MOVING, wire.STOPPED).astype(np.uint8)
        motion[(now - self.ts_ms[:n]) > self.options.offline_after_s * 1000] = wire.OFFLINE
        diff = np.flatnonzero(motion != self.motion[:n])
        self.motion[:n] = motion
        self._mark(diff)
        return now

    def _mark(self, slots: npt.NDArray[np.int64]) -> None:
        if len(slots):
            self.version += 1
            self.changed_at[slots] = self.version

    # -- reading ----------------------------------------------------------------------------------------
    def flags(self, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        alarm = np.where(self.alarms[slots] > 0, wire.FLAG_ALARM, 0)
        return (self.kind[slots] | (self.motion[slots] << 3) | alarm).astype(np.uint8)

    def records(self, slots: npt.NDArray[np.int64], index: npt.NDArray[np.int64], now_ms: float
                ) -> npt.NDArray[Any]:
        out = np.empty(len(slots), dtype=wire.RECORD)
        out["idx"] = index
        out["lon"] = self.lon[slots]
        out["lat"] = self.lat[slots]
        out["speed"] = self.speed[slots]
        out["heading"] = self.heading[slots]
        out["flags"] = self.flags(slots)
        out["alarms"] = self.alarms[slots]
        out["sensors"] = self.sensors[slots]
        out["age"] = np.clip(np.rint((now_ms - self.ts_ms[slots]) / 1000), 0, 65535).astype(np.uint16)
        return out

    def summary(self, now_ms: float, mask: npt.NDArray[np.bool_] | None = None) -> dict[str, Any]:
        """Fleet totals per kind: moving / stopped / offline, and how many are in alarm (over `mask`, the
        slots of one scope, when given)."""
        n = len(self.ids)
        counts: dict[str, dict[str, int]] = {}
        kinds = list(wire.KINDS) + ["unknown"]
        kind = np.minimum(self.kind[:n], len(wire.KINDS))
        for k, name in enumerate(kinds):
            sel = kind == k
            if mask is not None:
                sel &= mask
            if not sel.any():
                continue
            m = self.motion[:n][sel]
            counts[name] = {label: int((m == code).sum()) for code, label in enumerate(wire.MOTION)}
            counts[name]["alarm"] = int((self.alarms[:n][sel] > 0).sum())
        total = n if mask is None else int(mask.sum())
        return {"type": "summary", "t": now_ms, "total": total, "counts": counts}

    def in_bbox(self, bbox: tuple[float, float, float, float] | None) -> npt.NDArray[np.bool_]:
        n = len(self.ids)
        if bbox is None:
            return np.ones(n, bool)
        w, s, e, nn = (round(v * 1e6) for v in bbox)
        lon, lat = self.lon[:n], self.lat[:n]
        return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= nn)

    def as_json_rows(self, slots: npt.NDArray[np.int64]) -> list[list[Any]]:
        """The naive JSON rows (`?format=json`, and the benchmark's baseline)."""
        return [[self.ids[s], int(self.kind[s]) if self.kind[s] < len(wire.KINDS) else -1,
                 float(self.lon[s]) / 1e6, float(self.lat[s]) / 1e6, int(self.speed[s]), int(self.heading[s]) * 2,
                 int(self.ts_ms[s]), self.alarm_kinds.get(self.ids[s], [])] for s in slots.tolist()]


@dataclass
class Subscriber:
    """One connection's view of the table: its vehicle index, what it has been sent, its viewport."""

    bbox: tuple[float, float, float, float] | None = None
    scope: Scope | None = None  # the user's: vehicles outside it are never sent (None = everything)
    sent_at: npt.NDArray[np.int64] = field(default_factory=lambda: np.full(0, -1, np.int64))
    index: npt.NDArray[np.int64] = field(default_factory=lambda: np.full(0, -1, np.int64))
    next_index: int = 0
    last_summary: dict[str, Any] | None = None

    def _fit(self, n: int) -> None:
        if len(self.sent_at) < n:
            extra = max(n - len(self.sent_at), _GROW)
            self.sent_at = np.concatenate([self.sent_at, np.full(extra, -1, np.int64)])
            self.index = np.concatenate([self.index, np.full(extra, -1, np.int64)])

    def due(self, table: LiveTable) -> npt.NDArray[np.int64]:
        """Slots whose record changed since this connection last got it, inside its viewport and scope."""
        n = len(table)
        self._fit(n)
        stale = table.changed_at[:n] > self.sent_at[:n]
        mask = table.scope_mask(self.scope)
        if mask is not None:
            stale &= mask
        return np.flatnonzero(stale & table.in_bbox(self.bbox))

    def take(self, table: LiveTable, slots: npt.NDArray[np.int64]
             ) -> tuple[int, list[str], npt.NDArray[np.int64]]:
        """Mark slots as sent. Returns the first new index, the ids that get new indexes (in order) and the
        connection index of every slot."""
        fresh = slots[self.index[slots] < 0]
        first = self.next_index
        new_ids = [table.ids[s] for s in fresh.tolist()]
        self.index[fresh] = np.arange(first, first + len(fresh))
        self.next_index += len(fresh)
        self.sent_at[slots] = table.changed_at[slots]
        return first, new_ids, self.index[slots]


def motion_of(speed_kmh: float, ts_ms: float, now_ms: float, options: DashboardOptions) -> str:
    """The same rule as `LiveTable.refresh_motion`, for one vehicle (REST answers)."""
    if now_ms - ts_ms > options.offline_after_s * 1000:
        return wire.MOTION[wire.OFFLINE]
    return wire.MOTION[wire.MOVING if speed_kmh >= options.moving_kmh else wire.STOPPED]


def describe(s: dict[str, Any], kind: str | None, now_ms: float, options: DashboardOptions) -> dict[str, Any]:
    """One live state (msgpack dict from Redis) → the REST `LiveVehicle` shape."""
    speed = float(s.get("speed_kmh") or 0)
    ts = int(s.get("ts_ms") or 0)
    return {"id": s["vehicle_id"], "kind": kind, "lon": s["lon"], "lat": s["lat"], "speed_kmh": round(speed, 1),
            "heading_deg": round(float(s.get("heading_deg") or 0), 1), "ts_ms": ts,
            "motion": motion_of(speed, ts, now_ms, options), "alarm_kinds": list(s.get("alarm_kinds") or []),
            "cover_closed": s.get("cover_closed"), "lifting": s.get("lifting"), "load": s.get("load"),
            "device_on": s.get("device_on"), "drum": s.get("drum"),
            **({"trip_id": s["trip_id"]} if s.get("trip_id") else {})}
