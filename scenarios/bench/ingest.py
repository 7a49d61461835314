"""Ingest benchmark: 10,000 simulated JT/T 808 terminals over loopback against one gateway process.

Setup: embedded Redis (AOF everysec) and PostgreSQL in a temporary directory (or the external servers in
FLEETWATCH_REDIS_URL / FLEETWATCH_DATABASE_URL), a fresh database, one registry row per terminal. The load
generator runs in 2 separate processes (`scenarios.loadgen.run_load`), so it does not share the gateway's
interpreter; every terminal registers (0x0100), authenticates (0x0102), then:

1. steady — one 0x0200 every 10 s each, plus one back-fill burst (3 × 0x0704 of 30 fixes) per terminal:
   the gateway's ack latency at city load (`ingest.gateway_ack_p50_ms` / `_p99_ms`);
2. capacity — back-fill flood: each terminal keeps 4 0x0704 frames of 30 fixes unanswered: fixes
   acknowledged per second, from the start of the flood until its last frame is answered, =
   `ingest.gateway_fixes_per_s` (target 100,000). Baseline: a naive gateway
   (below) that decodes, builds a polars frame and XADDs per frame and acks after its own XADD, under the same
   flood in the same run. `ingest.gateway_fixes_per_cpu_s` divides by the gateway thread's CPU time: on a
   shared 2-core machine wall-clock figures move with everyone else's load, this one much less;
3. end to end — the flood again with 2 `Worker` processes (2 shards each) writing PostgreSQL: rows
   committed per second during the window = `ingest.e2e_fixes_per_s` (target 100,000 sustained for 60 s),
   and the gateway-receive → PostgreSQL-commit latency measured by the workers after each commit
   (`ingest.e2e_latency_p50_ms` / `_p99_ms`; loopback adds well under a millisecond before receive).

Quick mode: 1,000 terminals and short windows (a smoke run, not a measurement).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from scenarios.bench import Figure, figure
from scenarios.loadgen import LoadSpec, run_load

log = logging.getLogger(__name__)

TARGET_FIXES_PER_S = 100_000.0


@dataclass
class _Env:
    settings: Any
    redis_url: str
    database_url: str
    services: Any
    data_dir: Path


def _setup(n_terminals: int) -> _Env:
    from tracker.config import Settings
    from tracker.edges.db import migrate
    from tracker.edges.services import ensure_services

    data_dir = Path(tempfile.mkdtemp(prefix="fw-bench-ingest-"))
    base = Settings(data_dir=data_dir, redis_url=os.environ.get("FLEETWATCH_REDIS_URL"),
                    database_url=os.environ.get("FLEETWATCH_DATABASE_URL"))
    services = ensure_services(base)
    dbname = f"fwbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(services.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(services.database_url)
    params["dbname"] = dbname
    db_url = make_conninfo(**params)
    with psycopg.connect(db_url, autocommit=True) as conn:
        migrate(conn)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO vehicles (vehicle_id, kind, company, phone) VALUES (%s, %s, 'BENCH', %s)",
                            [(f"B{i:05d}", "muck_truck", _phone(i)) for i in range(n_terminals)])
    settings = Settings(data_dir=data_dir, redis_url=services.redis_url, database_url=db_url)
    settings.bus.prefix = f"bi{uuid.uuid4().hex[:6]}"
    settings.bus.shards = 4
    return _Env(settings, services.redis_url, db_url, services, data_dir)


def _teardown(env: _Env) -> None:
    import redis

    r = redis.Redis.from_url(env.redis_url)
    for key in r.scan_iter(f"{env.settings.bus.prefix}:*"):
        r.delete(key)
    r.close()
    dbname = psycopg.conninfo.conninfo_to_dict(env.database_url)["dbname"]
    with psycopg.connect(env.services.database_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    env.services.stop()
    shutil.rmtree(env.data_dir, ignore_errors=True)


def _phone(i: int) -> str:
    return f"139{i:08d}"


def _gateway(env: _Env):  # -> GatewayThread
    from ingest.gateway import run_in_thread

    return run_in_thread(env.settings, env, port=0, rate_limit_per_s=1e6, rate_burst=1_000_000,
                         auth_timeout_s=3600, idle_timeout_s=3600)


# -- the naive baseline ------------------------------------------------------------------------------------


class _NaiveConnection(asyncio.Protocol):
    """What most open-source gateways do: per frame decode, build rows, XADD, and ack after that XADD."""

    def __init__(self, r: Any, names: Any) -> None:
        from ingest.jt808 import FrameDecoder

        self.r, self.names = r, names
        self.dec = FrameDecoder()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        from ingest.jt808 import Frame

        for fr in self.dec.feed(data):
            if isinstance(fr, Frame):
                asyncio.ensure_future(self._handle(fr))

    async def _handle(self, fr: Any) -> None:
        from ingest.jt808 import (
            DEFAULT_PROFILE,
            LocationBatch,
            PlatformGeneralReply,
            RegisterReply,
            decode_frame,
            encode_reply,
            location_to_fix_row,
        )
        from tracker.edges.bus import BLOCK_FIELD, shard_of
        from tracker.fix import encode_block, frame_from_rows

        h = fr.header
        if h.msg_id == 0x0100:
            self.transport.write(encode_reply(h, RegisterReply(h.serial, 0, "naive"), serial=1))
            return
        if h.msg_id in (0x0200, 0x0704):
            msg = decode_frame(fr)
            now = int(time.time() * 1000)
            locs = msg.body.items if isinstance(msg.body, LocationBatch) else [msg.body]
            backfill = isinstance(msg.body, LocationBatch) and msg.body.backfill
            rows = [location_to_fix_row(h.phone, loc, DEFAULT_PROFILE, now, backfill) for loc in locs]
            block = encode_block(frame_from_rows(rows))
            shard = int(shard_of([h.phone], self.names.shards)[0])
            await self.r.xadd(self.names.fixes(shard), {BLOCK_FIELD: block})
        self.transport.write(encode_reply(h, PlatformGeneralReply(h.serial, h.msg_id, 0), serial=1))


class _NaiveGateway:
    def __init__(self, env: _Env) -> None:
        from tracker.edges.bus import StreamNames

        self.env = env
        self.names = StreamNames(env.settings.bus.prefix + "n", env.settings.bus.shards)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="naive-gateway")

    def _run(self) -> None:
        import redis.asyncio as aredis

        asyncio.set_event_loop(self.loop)
        # a bounded pool: one XADD per frame from many tasks would otherwise open thousands of connections
        r = aredis.Redis(connection_pool=aredis.BlockingConnectionPool.from_url(self.env.redis_url,
                                                                                 max_connections=32, timeout=None,
                                                                                 socket_connect_timeout=120))

        async def start() -> Any:
            return await self.loop.create_server(lambda: _NaiveConnection(r, self.names), "127.0.0.1", 0,
                                                 backlog=4096)

        server = self.loop.run_until_complete(start())
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()

    def start(self) -> _NaiveGateway:
        self.thread.start()
        self._ready.wait(30)
        return self

    def cpu_s(self) -> float:
        return _thread_cpu(self.thread)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds of another thread, read from outside (an overloaded loop cannot be asked in time)."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


# -- workers for the end-to-end phase ---------------------------------------------------------------------


def _worker_main(settings_json: str, shards: list[int], stop: Any, out: Any, name: str, ready: Any) -> None:
    from tracker.config import Settings
    from tracker.edges.worker import Worker

    logging.basicConfig(level=logging.WARNING)
    settings = Settings.model_validate_json(settings_json)
    w = Worker(settings, settings.redis_url, settings.database_url, shards, consumer=name, record_latency=True)
    samples: list[tuple[float, int]] = []
    last = 0.0
    ready.put(name)
    try:
        while not stop.is_set():
            w.step(block_ms=200, count=64)
            now = time.time()
            if now - last >= 0.5:
                samples.append((now, w.stats.stored))
                last = now
        samples.append((time.time(), w.stats.stored))
    finally:
        out.put({"samples": samples, "latencies": w.latencies_ms or [], "stored": w.stats.stored})
        w.close()


def _warm_up(env: _Env, n: int = 400) -> None:
    """A few fixes through the workers before the clock starts (first-call compilation, connections)."""
    import polars as pl
    import redis

    from tracker.edges.bus import StreamNames, publish_fixes
    from tracker.fix import conform

    r = redis.Redis.from_url(env.redis_url)
    df = conform(pl.DataFrame({"vehicle_id": [f"W{i % 8}" for i in range(n)],
                               "ts_ms": [1_700_000_000_000 + i * 1000 for i in range(n)],
                               "lon": [114.05] * n, "lat": [22.54] * n,
                               "received_ts_ms": [int(time.time() * 1000)] * n}))
    publish_fixes(r, StreamNames(env.settings.bus.prefix, env.settings.bus.shards), df)
    r.close()
    deadline = time.monotonic() + 300
    with psycopg.connect(env.database_url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM fixes").fetchone()[0] < n and time.monotonic() < deadline:
            time.sleep(0.2)


def _stored_between(samples: list[tuple[float, int]], t0: float, t1: float) -> float:
    ts = np.array([s[0] for s in samples])
    v = np.array([s[1] for s in samples], dtype=np.float64)
    if len(ts) < 2:
        return 0.0
    return float(np.interp(t1, ts, v) - np.interp(t0, ts, v))


# -- the benchmark ----------------------------------------------------------------------------------------


def _flood(port: int, phones: list[str], duration_s: float) -> Any:
    spec = LoadSpec(port=port, report_interval_s=float("inf"), duration_s=duration_s, backfill_items=30,
                    flood=True, window=4, latency_sample_every=20, drain_s=60)
    return run_load(spec, phones, processes=2)


def _rate(load: Any) -> float:
    """Fixes acknowledged per second from the start of the flood until its last frame was answered (the
    naive gateway answers its first frames only seconds after the start, so a fixed window would show 0)."""
    span = load.end_wall - load.go_wall
    return load.fixes_ok / span if span > 0 else 0.0


def bench_ingest(quick: bool = False) -> list[Figure]:
    n = 1_000 if quick else 10_000
    steady_s, flood_s, e2e_s = (6.0, 5.0, 10.0) if quick else (25.0, 15.0, 60.0)
    phones = [_phone(i) for i in range(n)]
    env = _setup(n)
    figures: list[Figure] = []
    try:
        gw = _gateway(env)
        try:
            # 1. steady: 10 s reports and one back-fill burst per terminal
            steady = run_load(LoadSpec(port=gw.port, report_interval_s=10.0, duration_s=steady_s, backfill_items=30,
                                       backfill_frames=3, backfill_after_s=steady_s / 2, drain_s=60), phones,
                              processes=2)
            lat = np.percentile(steady.latencies_ms, [50, 99]) if steady.latencies_ms else [np.nan, np.nan]
            log.info("steady: %d terminals ready in %.1f s, %d fixes acknowledged", steady.ready, steady.setup_s,
                     steady.fixes_ok)
            # 2. capacity
            c0 = _thread_cpu(gw.thread)
            p0 = gw.stats.fixes_published
            cap = _flood(gw.port, phones, flood_s)
            cpu = _thread_cpu(gw.thread) - c0
            published = gw.stats.fixes_published - p0
        finally:
            gw.stop()
        naive = _NaiveGateway(env).start()
        try:
            nc0 = naive.cpu_s()
            base = _flood(naive.port, phones, flood_s)
            ncpu = naive.cpu_s() - nc0
        finally:
            naive.stop()
        gw_rate, base_rate = _rate(cap), _rate(base)
        figures += [
            figure("ingest.gateway_fixes_per_s", gw_rate, "fixes/s", TARGET_FIXES_PER_S, base_rate),
            figure("ingest.gateway_fixes_per_cpu_s", published / cpu if cpu else 0.0, "fixes/CPU-s", None,
                   (base.fixes_ok / ncpu) if ncpu else None),
            figure("ingest.gateway_ack_p50_ms", float(lat[0]), "ms"),
            figure("ingest.gateway_ack_p99_ms", float(lat[1]), "ms"),
        ]
        # 3. end to end
        figures += _e2e(env, phones, e2e_s)
    finally:
        _teardown(env)
    return figures


def _e2e(env: _Env, phones: list[str], duration_s: float) -> list[Figure]:
    env.settings.bus.prefix += "e"  # fresh streams: the backlog of the earlier phases is not part of it
    ctx = mp.get_context("spawn")
    stop, out, ready = ctx.Event(), ctx.Queue(), ctx.Queue()
    shard_sets = [[0, 1], [2, 3]]
    settings_json = env.settings.model_dump_json()
    procs = [ctx.Process(target=_worker_main, args=(settings_json, s, stop, out, f"bench-{i}", ready), daemon=True)
             for i, s in enumerate(shard_sets)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    _warm_up(env)
    gw = _gateway(env)
    try:
        load = _flood(gw.port, phones, duration_s)
    finally:
        gw.stop()
    time.sleep(1.0)
    stop.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    t0, t1 = load.go_wall, load.go_wall + load.window_s
    stored = sum(_stored_between(r["samples"], t0, t1) for r in results)
    lats = [x for r in results for x in r["latencies"]]
    p50, p99 = np.percentile(lats, [50, 99]) if lats else (np.nan, np.nan)
    return [
        figure("ingest.e2e_fixes_per_s", stored / load.window_s if load.window_s else 0.0, "fixes/s",
               TARGET_FIXES_PER_S),
        figure("ingest.e2e_latency_p50_ms", float(p50), "ms"),
        figure("ingest.e2e_latency_p99_ms", float(p99), "ms"),
    ]
