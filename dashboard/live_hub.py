"""One follower of the live state per web process, fanning out to every `/ws/live` connection.

Why one follower: Redis is read once per tick however many control-room screens are open. The follower
loads the `fw:live` hash once, then reads only the `fw:live:changes` stream (XREAD from the last id it saw),
and reloads the whole hash every `resync_s` as a safety net in case the capped stream was trimmed past it.

All blocking work of a tick — Redis, msgpack decoding, numpy, building each connection's frame — runs in
one worker thread, so the event loop only moves bytes. A connection still busy sending the previous tick's
frame is skipped: what it missed stays "due" in its `Subscriber` and goes out, merged, in its next frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from dashboard import queries, wire
from dashboard.live_table import LiveTable, Subscriber
from dashboard.options import DashboardOptions
from dashboard.state import AppState
from tracker.cases.access import Scope
from tracker.edges.live import decode_changes, read_live

log = logging.getLogger(__name__)

Message = bytes | str  # bytes → binary frame, str → text frame


@dataclass(eq=False)
class LiveConnection:
    fmt: str = "bin"  # bin | json
    sub: Subscriber = field(default_factory=Subscriber)
    ready: bool = True
    outbox: asyncio.Queue[list[Message]] = field(default_factory=lambda: asyncio.Queue(maxsize=1))

    def build(self, table: LiveTable, now_ms: float, summary: dict[str, Any]) -> list[Message]:
        out: list[Message] = []
        slots = self.sub.due(table)
        if self.fmt == "json":
            self.sub.take(table, slots)
            if len(slots) or self.sub.last_summary is None:
                out.append(orjson.dumps({"t": float(now_ms), "kinds": list(wire.KINDS),
                                         "v": table.as_json_rows(slots)}).decode())
                self.sub.last_summary = summary
            return out
        if len(slots):
            first, new_ids, index = self.sub.take(table, slots)
            if new_ids:
                out.append(orjson.dumps({"type": "index", "first": first, "ids": new_ids}).decode())
            out.append(wire.encode_positions(now_ms, table.records(slots, index, now_ms)))
        counts = {k: v for k, v in summary.items() if k != "t"}
        if self.sub.last_summary != counts:
            self.sub.last_summary = counts
            out.append(orjson.dumps(summary).decode())
        return out


class LiveHub:
    def __init__(self, state: AppState, options: DashboardOptions, resync_s: float = 60.0,
                 kinds_every_s: float = 10.0):
        self.state = state
        self.options = options
        self.table = LiveTable(options)
        self.connections: set[LiveConnection] = set()
        self.resync_s = resync_s
        self.kinds_every_s = kinds_every_s
        self._last_id: bytes | None = None
        self._last_resync = 0.0
        self._last_kinds = 0.0
        self._kinds: dict[str, str] = {}
        self._owners: dict[str, tuple[str | None, str | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def register(self, fmt: str, scope: Scope | None = None) -> LiveConnection:
        """A new connection; it is sent only the vehicles `scope` allows (None = all)."""
        conn = LiveConnection(fmt=fmt)
        conn.sub.scope = scope
        self.connections.add(conn)
        self.start()
        return conn

    def unregister(self, conn: LiveConnection) -> None:
        self.connections.discard(conn)

    # -- the tick ---------------------------------------------------------------------------------------
    async def _run(self) -> None:
        interval = self.options.push_interval_s
        while True:
            started = time.monotonic()
            try:
                frames = await asyncio.to_thread(self.tick)
                for conn, messages in frames.items():
                    if messages:
                        conn.ready = False
                        conn.outbox.put_nowait(messages)
            except (redis.RedisError, OSError) as exc:
                log.warning("live hub: %s; retrying", exc)
            except Exception:  # never let one bad tick end live updates for every screen
                log.exception("live hub tick failed")
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    def tick(self) -> dict[LiveConnection, list[Message]]:
        """Read what changed, update the table, build a frame for every idle connection."""
        self._refresh_kinds()
        self._follow()
        self._refresh_kinds(unknown_only=True)
        now = self.table.refresh_motion()
        self.ticks += 1
        summaries: dict[Scope | None, dict[str, Any]] = {}  # one count per distinct scope, not per screen
        out = {}
        for c in list(self.connections):
            if not c.ready:
                continue
            scope = c.sub.scope if c.sub.scope is not None and not c.sub.scope.unrestricted else None
            if scope not in summaries:
                summaries[scope] = self.table.summary(now, self.table.scope_mask(scope))
            out[c] = c.build(self.table, now, summaries[scope])
        return out

    def _refresh_kinds(self, unknown_only: bool = False) -> None:
        """Re-read vehicle kinds every `kinds_every_s`, or within a second when unregistered ids show up."""
        since = time.monotonic() - self._last_kinds
        if unknown_only:
            n = len(self.table)
            if since < 1.0 or not n or not (self.table.kind[:n] == wire.KIND_UNKNOWN).any():
                return
        elif since < self.kinds_every_s:
            return
        self._last_kinds = time.monotonic()
        with self.state.db() as conn:
            registry = queries.owners_by_vehicle(conn)
        kinds = {vid: kind for vid, (kind, _) in registry.items()}
        owners = {vid: owner for vid, (_, owner) in registry.items()}
        if owners != self._owners:
            self._owners = owners
            self.table.set_owners(owners)
        if kinds != self._kinds:
            self._kinds = kinds
            self.table.set_kinds(kinds)

    def _follow(self) -> None:
        r, names = self.state.redis, self.state.names
        if self._last_id is None or time.monotonic() - self._last_resync > self.resync_s:
            newest = r.xrevrange(names.live_changes, count=1)
            last_id = newest[0][0] if newest else b"0-0"
            self.table.apply(list(read_live(r, names).values()), self._kinds)
            self._last_id, self._last_resync = last_id, time.monotonic()
        while True:
            resp = r.xread({names.live_changes: self._last_id}, count=500)
            if not resp:
                return
            entries = resp[0][1]
            states: list[dict[str, Any]] = []
            for entry_id, fields in entries:
                self._last_id = entry_id
                payload = fields.get(b"s")
                if payload:
                    states.extend(decode_changes(payload))
            self.table.apply(states, self._kinds)
            if len(entries) < 500:
                return
