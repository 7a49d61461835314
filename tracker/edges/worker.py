"""The worker: bus → engine → PostgreSQL history + alerts → live state, then acknowledge.

Order matters for "nothing acknowledged is lost": fixes and alerts are committed to PostgreSQL in one
transaction *before* the stream entries are acknowledged. A worker killed in between leaves the entries
pending; its successor (same consumer name after restart, or any consumer via XAUTOCLAIM after
`claim_idle_ms`) re-reads them, and the primary key on (vehicle, ts) and the alerts' stable ids make the
second write a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import numpy as np
import polars as pl
import psycopg
import redis

from tracker.config import Settings
from tracker.edges import bus, history, live
from tracker.edges.bus import StreamNames
from tracker.episode import Episode

log = logging.getLogger(__name__)


def add_h3(df: pl.DataFrame, res: int) -> pl.DataFrame:
    """H3 once per fix at the finest resolution; everything coarser is derived from it by bit arithmetic."""
    from geofences.h3util import cells_at

    cells = cells_at(df.get_column("lon").to_numpy(), df.get_column("lat").to_numpy(), res)
    return df.with_columns(pl.Series("h3", cells, dtype=pl.UInt64))


def load_world(conn: psycopg.Connection, settings: Settings):  # -> tracker.world.World
    """Reference data in force now: fences, vehicles, permits, orders, sanitation plans."""
    from geofences.store import fences_in_force
    from tracker.edges.coverage_store import load_plans
    from tracker.edges.refstore import load_docs, load_vehicles
    from tracker.reference import DeliveryOrder, Permit
    from tracker.world import World

    return World.build(
        fences=fences_in_force(conn, datetime.now(tz=UTC)),
        vehicles=load_vehicles(conn),
        permits=load_docs(conn, "permit", Permit),
        orders=load_docs(conn, "order", DeliveryOrder),
        settings=settings,
        plans=load_plans(conn) or None,  # the sanitation rules run only where plans exist
    )


@dataclass
class _Pending:
    """A processed batch on its way: what to commit, then publish and acknowledge."""

    deliveries: list[bus.Delivery]
    frame: pl.DataFrame | None
    states: list[dict] | None
    episodes: list[Episode]
    episodes_t: list[Episode]
    trips: pl.DataFrame | None
    n: int


@dataclass
class WorkerStats:
    batches: int = 0
    fixes: int = 0
    stored: int = 0
    episodes: int = 0
    bad_entries: int = 0
    started: float = field(default_factory=time.monotonic)


class Worker:
    """Consumes a set of shards. One worker process per shard set; vehicles never move between shards."""

    def __init__(self, settings: Settings, redis_url: str, database_url: str, shards: list[int] | None = None,
                 consumer: str | None = None, claim_idle_ms: int = 30_000, record_latency: bool = False):
        self.settings = settings
        self.names = StreamNames(settings.bus.prefix, settings.bus.shards)
        self.shards = shards if shards is not None else list(range(settings.bus.shards))
        self.streams = [self.names.fixes(s) for s in self.shards]
        self.consumer = consumer or f"{socket.gethostname()}-{'-'.join(map(str, self.shards))}"
        self.claim_idle_ms = claim_idle_ms
        self.r = redis.Redis.from_url(redis_url)
        self.conn = psycopg.connect(database_url, autocommit=True)
        bus.ensure_groups(self.r, self.names, self.streams)
        from tracker.engine import Engine

        self.engine = Engine(load_world(self.conn, settings), settings)
        from tracker.edges.trips_store import TripSink

        self.trip_sink = TripSink()
        self.stats = WorkerStats()
        self._last_reclaim = 0.0
        self._last_trim = 0.0
        self._recovered = False
        # receive → committed latency samples (ms), kept only when asked (the ingest bench): ≤ 64 per batch
        self.latencies_ms: list[float] | None = [] if record_latency else None
        self.latency_at_s: list[float] = []  # wall time (time.time()) of each latency sample's commit
        # the database thread of `step(overlap=True)`: only it uses `conn` while a transaction is in flight
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"worker-db-{self.consumer}")
        self._inflight: tuple[Future[tuple[int, float]], _Pending] | None = None

    # -- one step -------------------------------------------------------------------------------------------
    def _collect(self, block_ms: int, count: int) -> list[bus.Delivery]:
        if not self._recovered:  # our own pending entries from before a restart come first
            self._recovered = True
            own = [bus.read_own_pending(self.r, s, self.consumer) for s in self.streams]
            own = [d for d in own if d.ids or d.bad_ids]
            if own:
                return own
        now = time.monotonic()
        if now - self._last_reclaim > self.claim_idle_ms / 2000:
            self._last_reclaim = now
            claimed = [bus.reclaim(self.r, s, self.consumer, self.claim_idle_ms) for s in self.streams]
            claimed = [d for d in claimed if d.ids or d.bad_ids]
            if claimed:
                return claimed
        return bus.read_new(self.r, self.streams, self.consumer, count, block_ms)

    def step(self, block_ms: int = 1000, count: int = 256, overlap: bool = False) -> int:
        """Read up to `count` entries per stream (whatever is there: at city load a step is a few ms of
        traffic; with a backlog, big batches amortise the engine's and the commit's per-step costs), process,
        commit, publish, acknowledge. Returns the number of fixes read.

        With `overlap`, this batch's PostgreSQL transaction runs on the worker's database thread while the
        next step reads and processes the next batch (PostgreSQL's CPU and ours overlap instead of taking
        turns); its live state, alerts and acknowledgements follow in the next step (or `flush`) once it has
        committed. Without it (the default) everything is done when `step` returns."""
        # with a transaction in flight, do not wait long for new entries: its acknowledgement waits on us
        deliveries = self._collect(1 if self._inflight is not None else block_ms, count)
        frames = [d.frame for d in deliveries if d.frame.height]
        for d in deliveries:
            if d.bad_ids:
                self.stats.bad_entries += len(d.bad_ids)
                log.error("dropping %d undecodable entries from %s to the dead-letter stream", len(d.bad_ids),
                          d.stream)
                self.r.xadd(self.names.deadletter, {b"stream": d.stream, b"ids": b",".join(d.bad_ids)})
        episodes: list[Episode] = []
        frame: pl.DataFrame | None = None
        states: list[dict] | None = None
        trips: pl.DataFrame | None = None
        n = 0
        if frames:
            frame = add_h3(pl.concat(frames, how="vertical"), self.settings.h3.fix_res)
            n = frame.height
            episodes = self.engine.process(frame)
            trips = self.engine.trips.frame()
            states = self._live_states(frame)  # now: the engine moves on with the next batch
        episodes_t = self.engine.advance(int(time.time() * 1000))
        batch = _Pending(deliveries, frame, states, episodes, episodes_t, trips, n)
        self.flush()  # the previous batch: committed, published, acknowledged
        if overlap and (frame is not None or episodes_t):
            self._inflight = (self._db.submit(self._commit, batch), batch)
        else:
            self._finish(batch, self._commit(batch))
        self._maybe_trim()
        return n

    def flush(self) -> None:
        """Wait for the batch whose transaction is in flight (`step(overlap=True)`), then publish its live
        state and alerts and acknowledge its entries. Raises what its transaction raised (then nothing of
        it is acknowledged: its entries stay pending and are reclaimed)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            future, batch = inflight
            self._finish(batch, future.result())

    def _commit(self, b: _Pending) -> tuple[int, float]:
        """The batch's one transaction (fixes, alerts, trips), then time-driven alerts; (stored, commit time)."""
        stored = 0
        if b.frame is not None:
            with self.conn.transaction():
                stored = history.write_fixes(self.conn, b.frame)
                history.upsert_alerts(self.conn, b.episodes)
                if b.trips is not None:
                    self.trip_sink.write(self.conn, b.trips)
        committed = time.time()
        if b.episodes_t:
            with self.conn.transaction():
                history.upsert_alerts(self.conn, b.episodes_t)
        return stored, committed

    def _finish(self, b: _Pending, result: tuple[int, float]) -> None:
        stored, committed = result
        self.stats.stored += stored
        if b.frame is not None:
            if self.latencies_ms is not None:
                rec = b.frame.get_column("received_ts_ms").to_numpy()[:: max(1, b.n // 64)]
                self.latencies_ms.extend((committed * 1000 - rec).tolist())
                self.latency_at_s.extend([committed] * len(rec))
            self._publish(b.states, b.episodes)
        if b.episodes_t:
            self._publish(None, b.episodes_t)
        for d in b.deliveries:
            bus.ack(self.r, d)
        if b.frame is not None:
            self.stats.batches += 1
            self.stats.fixes += b.n
            self.stats.episodes += len(b.episodes) + len(b.episodes_t)

    def _live_states(self, frame: pl.DataFrame) -> list[dict]:
        latest = live.latest_per_vehicle(frame).select(live.LIVE_COLUMNS + ("cover_closed", "lifting",
                                                                              "load", "device_on", "drum"))
        open_kinds = self.engine.open_kinds() if hasattr(self.engine, "open_kinds") else {}
        states = latest.to_dicts()
        eng = self.engine
        trip_ids = eng.trips.current_trip_ids(eng.world.vidx(latest.get_column("vehicle_id")))
        for s, trip_id in zip(states, trip_ids, strict=True):
            s["alarm_kinds"] = sorted(open_kinds.get(s["vehicle_id"], ()))
            s["trip_id"] = trip_id  # the loaded trip under way (None clears an ended one)
        return states

    def _publish(self, states: list[dict] | None, episodes: list[Episode]) -> None:
        if states:
            live.publish_live(self.r, self.names, states)
        if episodes:
            pipe = self.r.pipeline(transaction=False)
            for e in episodes:
                pipe.xadd(self.names.alerts, {b"e": msgspec.json.encode(e)}, maxlen=100_000, approximate=True)
            pipe.execute()

    def _maybe_trim(self) -> None:
        now = time.monotonic()
        if now - self._last_trim > 10:
            self._last_trim = now
            for s in self.streams:
                bus.safe_trim(self.r, s)

    def run(self, stop: threading.Event, block_ms: int = 500) -> None:
        log.info("worker %s consuming %s", self.consumer, self.streams)
        while not stop.is_set():
            try:
                self.step(block_ms=block_ms, overlap=True)
            except (redis.ConnectionError, psycopg.OperationalError) as exc:
                if stop.is_set():
                    break
                log.warning("worker %s: %s; retrying in 1 s", self.consumer, exc)
                time.sleep(1)
        try:
            self.flush()
        except (redis.ConnectionError, psycopg.OperationalError) as exc:  # its entries stay pending
            log.warning("worker %s: last batch not stored: %s", self.consumer, exc)

    def close(self) -> None:
        self._db.shutdown(wait=True)
        self.conn.close()
        self.r.close()


def default_consumer_name(shards: list[int]) -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{'-'.join(map(str, shards))}"


def np_now_ms() -> np.int64:
    return np.int64(time.time() * 1000)
