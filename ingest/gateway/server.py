"""The JT/T 808 gateway: asyncio TCP server, shared position batching, registry and housekeeping.

Threads: the event loop (sockets, framing, session logic, and the vectorised batch publish with the asyncio
Redis client: `publisher`), and one database thread (registrations and authentications that miss the
in-memory registry, batched the same way). The loop never waits for Redis or PostgreSQL.

Batching rule (group commit): a batch is closed `flush_ms` after its first position, or at
`flush_max_fixes`, or — when the publisher is still busy with the previous batch — as soon as that one is
done. At low load a fix waits ~`flush_ms` plus one Redis round trip for its 0x8001; under load batches grow
on their own and the per-fix cost of a publish falls.

Backpressure: when more than `max_pending_fixes` are received but not yet in Redis (Redis slow or down),
every connection stops being read until half of them are through; TCP then slows the terminals down. No fix
is dropped by the gateway: what it has not acknowledged the terminal still holds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import redis

from ingest.gateway.connection import BAD, FAIL, OK, TerminalConnection
from ingest.gateway.options import GatewayOptions
from ingest.gateway.publisher import FlushResult, PositionBatch, Publisher
from ingest.jt808.header import Header
from ingest.jt808.messages import RegisterReply
from ingest.jt808.profiles import DEFAULT_PROFILE, SensorProfile, load_profiles
from ingest.registry import Terminal, TerminalRegistry
from tracker.config import Settings
from tracker.edges import bus
from tracker.edges.bus import StreamNames

log = logging.getLogger("ingest.gateway")

_MAX_INFLIGHT = 2  # publishes awaiting Redis at once; beyond that the open batch keeps growing (group commit)

__all__ = ["Gateway", "GatewayStats", "GatewayThread", "run_in_thread", "serve"]


@dataclass
class GatewayStats:
    """Cumulative counters (for logs, tests and the bench)."""

    connections: int = 0
    open_connections: int = 0
    frames: int = 0
    faults: int = 0
    fixes_published: int = 0
    fixes_rejected: int = 0
    flushes: int = 0
    entries: int = 0
    publish_failures: int = 0
    acks_ok: int = 0
    acks_bad: int = 0
    acks_other: int = 0
    registrations: int = 0
    registrations_refused: int = 0
    auth_failures: int = 0
    refused_unauthenticated: int = 0
    rate_limited: int = 0
    closed_idle: int = 0
    closed_faults: int = 0
    reassembled: int = 0
    retransmit_requests: int = 0
    reassembly_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Gateway:
    """One gateway process's server. Create, `await start()`, `await stop()`; or use `run_in_thread`."""

    def __init__(self, settings: Settings, redis_url: str, database_url: str,
                 options: GatewayOptions | None = None) -> None:
        self.settings = settings
        self.opts = options or GatewayOptions.from_jt808(settings.jt808)
        self.names = StreamNames(settings.bus.prefix, settings.bus.shards)
        self.redis_url = redis_url
        self.profiles: dict[str, SensorProfile] = load_profiles({"profiles": (settings.jt808 or {}).get("profiles", {})})
        self.registry = TerminalRegistry(database_url)
        self.publisher = Publisher(redis_url, self.names, settings.bus.block_size,
                                   int(self.opts.max_future_s * 1000))
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jt808-db")
        self.stats = GatewayStats()
        self.conns: set[TerminalConnection] = set()
        self.sessions: dict[str, TerminalConnection] = {}
        self.reassembling: set[TerminalConnection] = set()
        self.batch = PositionBatch()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_wanted = False
        self._inflight_fixes = 0
        self.paused = False
        self._reg_queue: list[tuple[TerminalConnection, Header, str | None]] = []
        self._auth_queue: list[tuple[TerminalConnection, Header, str]] = []
        self._db_busy = False
        self._db_scheduled = False
        self._unknown_profiles: set[str] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.port = self.opts.port

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = loop = asyncio.get_running_loop()
        n = await loop.run_in_executor(self._db, self.registry.refresh)
        await loop.run_in_executor(self._db, self._ensure_groups)
        self.server = await loop.create_server(lambda: TerminalConnection(self), self.opts.host, self.opts.port,
                                               backlog=4096, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep())
        log.info("jt808 gateway listening on %s:%d (%d terminals registered)", self.opts.host, self.port, n)

    def _ensure_groups(self) -> None:
        # groups from id 0 before the first XADD: a worker started later still reads everything
        r = redis.Redis.from_url(self.redis_url)
        try:
            bus.ensure_groups(r, self.names)
        finally:
            r.close()

    async def stop(self) -> None:
        """Stop accepting, publish and answer what is pending, then close every connection."""
        if self.server is not None:
            self.server.close()
        self._flush()
        deadline = time.monotonic() + 15
        while (self._inflight_fixes or self.batch.frames) and time.monotonic() < deadline:
            if self.batch.frames and not self.publisher.inflight_batches:
                self._flush()
            await asyncio.sleep(0.01)
        for c in list(self.conns):
            c.close("gateway stopping")
        if self._sweeper is not None:
            self._sweeper.cancel()
        loop = asyncio.get_running_loop()
        await self.publisher.aclose()
        await loop.run_in_executor(self._db, self.registry.close)
        self._db.shutdown(wait=False)

    # -- connections ----------------------------------------------------------------------------------------
    def attach(self, conn: TerminalConnection) -> None:
        self.conns.add(conn)
        self.stats.connections += 1
        self.stats.open_connections = len(self.conns)
        if self.paused:
            conn.pause("backpressure")

    def detach(self, conn: TerminalConnection) -> None:
        self.conns.discard(conn)
        self.reassembling.discard(conn)
        self.unbind(conn)
        self.stats.open_connections = len(self.conns)

    def bind(self, conn: TerminalConnection, t: Terminal, h: Header) -> None:
        profile = self.profiles.get(t.profile)
        if profile is None:
            if t.profile not in self._unknown_profiles:
                self._unknown_profiles.add(t.profile)
                log.warning("jt808: vehicle %s uses unknown sensor profile %r; using 'default'", t.vehicle_id,
                            t.profile)
            profile = DEFAULT_PROFILE
        self.unbind(conn)
        conn.terminal = t
        conn.phone_raw = h.phone
        conn.vehicle = t.vehicle_id
        conn.shard = zlib.crc32(t.vehicle_id.encode()) % self.names.shards  # = bus.shard_of
        conn.profile = profile
        old = self.sessions.get(t.phone)
        if old is not None and old is not conn:
            old.terminal = None  # its late frames are refused from now on
            old.close(f"terminal {t.phone} connected again from {conn.peer}")
        self.sessions[t.phone] = conn

    def unbind(self, conn: TerminalConnection) -> None:
        t = conn.terminal
        if t is not None and self.sessions.get(t.phone) is conn:
            del self.sessions[t.phone]

    # -- positions ------------------------------------------------------------------------------------------
    def submit_position(self, conn: TerminalConnection, h: Header, body: bytes, is_batch: bool,
                        received_ms: int, serials: int | tuple[int, ...]) -> None:
        b = self.batch
        waiter = (conn, h, serials)
        assert conn.profile is not None
        if is_batch:
            b.add_batch(body, conn.vehicle, conn.shard, conn.profile, received_ms, waiter)
        else:
            b.add_location(body, conn.vehicle, conn.shard, conn.profile, received_ms, waiter)
        if len(b) >= self.opts.flush_max_fixes:
            if self.publisher.inflight_batches < _MAX_INFLIGHT:
                self._flush()
            else:
                self._flush_wanted = True
        elif self._flush_handle is None:
            assert self.loop is not None
            self._flush_handle = self.loop.call_later(self.opts.flush_ms / 1000, self._flush_timer)
        if not self.paused and len(b) + self._inflight_fixes > self.opts.max_pending_fixes:
            self._set_paused(True)

    def _flush_timer(self) -> None:
        self._flush_handle = None
        if self.publisher.inflight_batches:
            self._flush_wanted = True  # group commit: flush as soon as the previous publish returns
        else:
            self._flush()

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._flush_wanted = False
        batch = self.batch
        if not batch.frames:
            return
        self.batch = PositionBatch()
        self._inflight_fixes += len(batch)
        assert self.loop is not None
        self.publisher.publish(batch, self.loop, self._published)

    def _published(self, res: FlushResult) -> None:
        s = self.stats
        n_items = int(res.items.sum())
        self._inflight_fixes -= n_items
        s.flushes += 1
        s.entries += res.entries
        s.fixes_published += res.published
        s.fixes_rejected += res.rejected
        if res.failed:
            s.publish_failures += 1
        dirty: set[TerminalConnection] = set()
        failed = res.failed is not None
        for (conn, h, serials), good, n, e in zip(res.waiters, res.good.tolist(), res.items.tolist(),
                                                  res.errors.tolist(), strict=True):
            if conn.closed:
                continue
            if failed:
                result = FAIL
            elif good > 0 or (n == 0 and e == 0):
                result = OK
            else:
                result = BAD
                if conn.logged_faults < 3:
                    conn.logged_faults += 1
                    log.warning("jt808 %s (%s): 0x%04X serial %d has no valid fix (impossible time or "
                                "coordinates); answered 'bad message'", conn.peer, conn.vehicle, h.msg_id, h.serial)
            conn._answer_serials(h, serials, result)
            if result == OK:
                s.acks_ok += 1
            elif result == BAD:
                s.acks_bad += 1
            else:
                s.acks_other += 1
            dirty.add(conn)
        for conn in dirty:
            if conn.out:
                conn.flush_out()
        if self._flush_wanted or len(self.batch) >= self.opts.flush_max_fixes:
            self._flush()
        elif self.batch.frames and self._flush_handle is None:
            self._flush()
        if self.paused and len(self.batch) + self._inflight_fixes <= self.opts.max_pending_fixes // 2:
            self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        log.warning("jt808: %s reading from terminals (%d fixes waiting for Redis)",
                    "pausing" if paused else "resuming", len(self.batch) + self._inflight_fixes)
        for c in list(self.conns):
            if paused:
                c.pause("backpressure")
            else:
                c.resume("backpressure")

    # -- registry (database thread) -------------------------------------------------------------------------
    def request_registration(self, conn: TerminalConnection, h: Header, plate: str | None) -> None:
        self._reg_queue.append((conn, h, plate))
        self._schedule_db()

    def request_authentication(self, conn: TerminalConnection, h: Header, code: str) -> None:
        self._auth_queue.append((conn, h, code))
        self._schedule_db()

    def _schedule_db(self) -> None:
        if not self._db_scheduled and not self._db_busy:
            self._db_scheduled = True
            assert self.loop is not None
            self.loop.call_later(0.002, self._run_db)

    def _run_db(self) -> None:
        self._db_scheduled = False
        regs, self._reg_queue = self._reg_queue, []
        auths, self._auth_queue = self._auth_queue, []
        if not regs and not auths:
            return
        self._db_busy = True
        opts = self.opts

        def job() -> tuple[list[Any], list[Any]]:
            r = self.registry.register([(h.phone, plate) for _, h, plate in regs], check_plate=opts.check_plate,
                                       reissue=opts.reissue_auth_code) if regs else []
            a = self.registry.authenticate([(h.phone, code) for _, h, code in auths]) if auths else []
            return r, a

        assert self.loop is not None
        fut = self.loop.run_in_executor(self._db, job)
        fut.add_done_callback(lambda f: self._db_done(f, regs, auths))

    def _db_done(self, fut: asyncio.Future[tuple[list[Any], list[Any]]], regs: list[Any], auths: list[Any]) -> None:
        self._db_busy = False
        exc = fut.exception()
        if exc is not None:
            log.error("jt808: terminal registry unavailable: %s", exc)
            for conn, h, _ in regs + auths:  # no 0x8100 code means "try later": a plain failure
                if not conn.closed:
                    conn.answer(h, FAIL)
                    conn.flush_out()
        else:
            reg_results, auth_results = fut.result()
            for (conn, h, _), reg in zip(regs, reg_results, strict=True):
                if conn.closed:
                    continue
                if reg.result != 0:
                    self.stats.registrations_refused += 1
                    log.info("jt808 %s: registration of %s refused (0x8100 result %d)", conn.peer, h.phone,
                             reg.result)
                conn.send(conn.replies.message(h, RegisterReply(h.serial, reg.result, reg.auth_code)))
                conn.flush_out()
            for (conn, h, _), t in zip(auths, auth_results, strict=True):
                conn.auth_result(h, t)
                if conn.out:
                    conn.flush_out()
        if self._reg_queue or self._auth_queue:
            self._schedule_db()

    # -- housekeeping ---------------------------------------------------------------------------------------
    async def _sweep(self) -> None:
        last_refresh = time.monotonic()
        last_log = last_refresh
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            try:
                now = time.monotonic()
                self._timeouts(now)
                self._reassembly(now)
                if now - last_refresh > self.opts.registry_refresh_s:
                    last_refresh = now
                    loop.run_in_executor(self._db, self._refresh_quietly)
                if now - last_log > 60:
                    last_log = now
                    log.info("jt808 gateway: %s", self.stats.as_dict())
            except Exception:  # housekeeping must go on
                log.exception("jt808 gateway: housekeeping failed")

    def _refresh_quietly(self) -> None:
        try:
            self.registry.refresh()
        except Exception as exc:  # noqa: BLE001 - the cached registry stays in use
            log.warning("jt808: registry refresh failed: %s", exc)

    def _timeouts(self, now: float) -> None:
        idle, auth = self.opts.idle_timeout_s, self.opts.auth_timeout_s
        for c in list(self.conns):
            if c.terminal is None and now - c.opened > auth:
                self.stats.closed_idle += 1
                c.close(f"not authenticated after {auth:g} s")
            elif now - c.last_rx > idle:
                self.stats.closed_idle += 1
                c.close(f"idle for {idle:g} s")

    def _reassembly(self, now: float) -> None:
        now_ms = int(now * 1000)
        for c in list(self.reassembling):
            r = c.reasm
            if r is None or c.closed:
                self.reassembling.discard(c)
                continue
            for inc in r.due_for_retransmit(now_ms):
                c.send_retransmit_request(inc.first_serial, inc.missing)
            for inc in r.expire(now_ms):
                self.stats.reassembly_dropped += 1
                log.warning("jt808 %s: dropped incomplete 0x%04X (%d of %d packages, %s)", c.peer, inc.msg_id,
                            inc.received, inc.total, inc.reason)
            if c.out:
                c.flush_out()
            if not len(r):
                self.reassembling.discard(c)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # shipped with uvicorn[standard]; ~2× less per-read overhead than the default loop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


class GatewayThread:
    """A gateway running on its own event loop in a background thread (demo, tests, bench)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.loop = _new_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="jt808-gateway", daemon=True)

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def stats(self) -> GatewayStats:
        return self.gateway.stats

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.gateway.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.close()

    def start(self, timeout_s: float = 30) -> GatewayThread:
        self.thread.start()
        if not self._started.wait(timeout_s):
            raise RuntimeError("jt808 gateway did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the gateway's loop and return its result (for tests and metrics)."""
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self, timeout_s: float = 30) -> None:
        if not self.thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.gateway.stop(), self.loop).result(timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)


def run_in_thread(settings: Settings, services: Any, **options: Any) -> GatewayThread:
    """Start a gateway in a background thread; `services` has `redis_url` and `database_url` (e.g.
    `tracker.edges.services.Services`). Keyword options override `settings.jt808` (e.g. ``port=0``).
    Returns once it listens; `.port` is the bound port, `.stop()` stops it."""
    opts = GatewayOptions.from_jt808(settings.jt808, **options)
    gw = Gateway(settings, services.redis_url, services.database_url, opts)
    return GatewayThread(gw).start()


def serve(settings: Settings, redis_url: str, database_url: str, **options: Any) -> GatewayStats:
    """Run a gateway in the foreground until SIGINT/SIGTERM (the `fleetwatch gateway` command)."""
    import signal

    opts = GatewayOptions.from_jt808(settings.jt808, **options)
    gw = Gateway(settings, redis_url, database_url, opts)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def main() -> None:
        await gw.start()
        await stop.wait()
        await gw.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return gw.stats
