"""`/ws/alerts`: alerts pushed as they open, update and close, following the alerts stream with XREAD.

The worker writes an alert to PostgreSQL and *then* appends the episode to `{prefix}:alerts` (field `e`,
Episode JSON), so anything pushed here is already queryable over REST. Every message carries the stream
entry id (`sid`); a page that reconnects passes `?since=<sid>` and receives what it missed from the stream
(XRANGE) before live messages — an enforcement screen never silently skips an alert.

Message (text): `{"type":"alert","sid":"…","event":"opened"|"updated"|"closed","alert":{…}}` where `alert`
has the REST shape of `/api/alerts` (times in UTC epoch ms, plus the vehicle's kind, company, district,
plate). "opened" means the first time this web process saw the episode while open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
import redis

from dashboard import queries, scoping
from dashboard.state import AppState
from tracker.cases.access import Scope
from tracker.episode import Episode

log = logging.getLogger(__name__)

_SEEN_MAX = 200_000


def _sid_tuple(sid: str) -> tuple[int, int]:
    a, _, b = sid.partition("-")
    return int(a), int(b or 0)


@dataclass(frozen=True)
class AlertSubscription:
    """What one connection wants (empty = everything)."""

    kinds: frozenset[str] = frozenset()
    vehicle_kinds: frozenset[str] = frozenset()
    companies: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()

    def wants(self, alert: dict[str, Any]) -> bool:
        v = alert.get("vehicle") or {}
        return ((not self.kinds or alert["kind"] in self.kinds)
                and (not self.vehicle_kinds or v.get("kind") in self.vehicle_kinds)
                and (not self.companies or v.get("company") in self.companies)
                and (not self.districts or v.get("district") in self.districts))

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> AlertSubscription:
        def s(key: str) -> frozenset[str]:
            value = raw.get(key) or []
            if isinstance(value, str):
                value = [x for x in value.split(",") if x]
            return frozenset(str(x) for x in value)

        return cls(kinds=s("kinds"), vehicle_kinds=s("vehicle_kinds"), companies=s("companies"),
                   districts=s("districts"))


@dataclass(eq=False)
class AlertConnection:
    sub: AlertSubscription = field(default_factory=AlertSubscription)
    scope: Scope | None = None  # the user's (None = everything); the client's filter only narrows it
    last_sid: tuple[int, int] = (0, 0)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=5000))

    def wants(self, alert: dict[str, Any]) -> bool:
        if self.scope is not None and not scoping.vehicle_allowed(self.scope, alert.get("vehicle")):
            return False
        return self.sub.wants(alert)

    def offer(self, msg: dict[str, Any]) -> None:
        if not self.wants(msg["alert"]):
            return
        if self.queue.full():  # a stalled client: drop the oldest; it can resync with ?since=
            self.queue.get_nowait()
        self.queue.put_nowait(msg)


class AlertHub:
    def __init__(self, state: AppState, block_ms: int = 1000):
        self.state = state
        self.block_ms = block_ms
        self.connections: set[AlertConnection] = set()
        self.seen: OrderedDict[str, str] = OrderedDict()  # episode id → last status seen
        self._vehicles: dict[str, dict[str, Any]] = {}
        self._vehicles_at = 0.0
        self._last_id: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._redis: redis.Redis | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._redis is not None:
            self._redis.close()

    def register(self, sub: AlertSubscription, scope: Scope | None = None) -> AlertConnection:
        conn = AlertConnection(sub=sub, scope=scope)
        self.connections.add(conn)
        self.start()
        return conn

    def unregister(self, conn: AlertConnection) -> None:
        self.connections.discard(conn)

    # -- reading ----------------------------------------------------------------------------------------
    def _client(self) -> redis.Redis:
        # A blocking XREAD holds its connection: give the follower its own client, not the app's.
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.state.redis_url)
        return self._redis

    def _vehicle(self, vid: str) -> dict[str, Any]:
        if vid not in self._vehicles or time.monotonic() - self._vehicles_at > 30:
            with self.state.db() as conn:
                self._vehicles = {v["id"]: v for v in queries.vehicles(conn)}
            self._vehicles_at = time.monotonic()
        v = self._vehicles.get(vid) or {}
        return {"kind": v.get("kind"), "company": v.get("company"), "district": v.get("district"),
                "plate": v.get("plate")}

    def to_message(self, sid: str, payload: bytes, seen: OrderedDict[str, str] | None = None
                   ) -> dict[str, Any] | None:
        try:
            e = Episode.from_json(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.error("alerts stream entry %s is not an Episode; skipped", sid)
            return None
        seen = self.seen if seen is None else seen
        before = seen.get(e.id)
        event = "closed" if e.status == "closed" else ("opened" if before is None else "updated")
        seen[e.id] = e.status
        seen.move_to_end(e.id)
        while len(seen) > _SEEN_MAX:
            seen.popitem(last=False)
        alert = {"id": e.id, "kind": e.kind, "vehicle_id": e.vehicle_id, "severity": e.severity,
                 "start_ts_ms": e.start_ts_ms, "end_ts_ms": e.end_ts_ms, "status": e.status, "lon": e.lon,
                 "lat": e.lat, "place_id": e.place_id, "backfilled": e.backfilled,
                 "vehicle": self._vehicle(e.vehicle_id)}
        return {"type": "alert", "sid": sid, "event": event, "alert": alert}

    def read_since(self, since: str, count: int = 5000) -> list[dict[str, Any]]:
        """Stream entries after `since` (exclusive), as messages — for a reconnecting page."""
        entries = self.state.redis.xrange(self.state.names.alerts, min=f"({since}", max="+", count=count)
        local: OrderedDict[str, str] = OrderedDict()
        out = []
        for entry_id, fields in entries:
            msg = self.to_message(entry_id.decode(), fields.get(b"e", b""), local)
            if msg:
                out.append(msg)
        return out

    def _read(self) -> list[dict[str, Any]]:
        r = self._client()
        stream = self.state.names.alerts
        if self._last_id is None:
            newest = r.xrevrange(stream, count=1)
            self._last_id = newest[0][0].decode() if newest else "0-0"
        resp = r.xread({stream: self._last_id}, count=1000, block=self.block_ms)
        out = []
        for _, entries in resp or []:
            for entry_id, fields in entries:
                self._last_id = entry_id.decode()
                msg = self.to_message(self._last_id, fields.get(b"e", b""))
                if msg:
                    out.append(msg)
        return out

    async def _run(self) -> None:
        while True:
            try:
                messages = await asyncio.to_thread(self._read)
            except (redis.RedisError, OSError) as exc:
                log.warning("alert hub: %s; retrying in 1 s", exc)
                await asyncio.sleep(1)
                continue
            except Exception:
                log.exception("alert hub read failed")
                await asyncio.sleep(1)
                continue
            for msg in messages:
                for conn in list(self.connections):
                    conn.offer(msg)


def encode(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


def sid_after(sid: str, last: tuple[int, int]) -> bool:
    return _sid_tuple(sid) > last


def sid_tuple(sid: str) -> tuple[int, int]:
    return _sid_tuple(sid)
