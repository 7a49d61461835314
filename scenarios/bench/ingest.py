"""Ingest benchmark: 10,000 simulated JT/T 808 terminals over loopback against one gateway process.

Setup: embedded Redis (AOF everysec) and PostgreSQL in a temporary directory (or the external servers in
FLEETWATCH_REDIS_URL / FLEETWATCH_DATABASE_URL), a fresh database, one registry row per terminal. The load
generator runs in 2 separate processes (`scenarios.loadgen.run_load`), so it does not share the gateway's
interpreter; its own CPU time is reported (`ingest.loadgen_fixes_per_cpu_s`: fixes it sends per CPU-second,
so one can see how much of the 2 cores it took). Every terminal registers (0x0100), authenticates (0x0102),
then:

1. steady — one 0x0200 every 10 s each, plus one back-fill burst (3 × 0x0704 of 30 fixes) per terminal, all
   at the same instant (a network outage ending): the gateway's ack latency at city load
   (`ingest.gateway_ack_p50_ms` / `_p99_ms`; baseline: the naive gateway below under the same load);
2. capacity — back-fill flood: each terminal keeps 4 0x0704 frames of 30 fixes unanswered: fixes
   acknowledged per second, from the start of the flood until its last frame is answered, =
   `ingest.gateway_fixes_per_s` (target 100,000). Baseline: a naive gateway
   (below) that decodes, builds a polars frame and XADDs per frame and acks after its own XADD, under the same
   flood in the same run. `ingest.gateway_fixes_per_cpu_s` divides by the gateway thread's CPU time: on a
   shared 2-core machine wall-clock figures move with everyone else's load, this one much less;
3. end to end — 2 `Worker` processes (2 shards each: engine, history COPY, live state, then XACK) behind the
   gateway. First city load as in 1 (fix times near the wall clock) — the gateway-receive → PostgreSQL-commit
   latency the workers measure after each commit is `ingest.e2e_latency_p50_ms` / `_p99_ms` (loopback adds
   well under a millisecond before receive). Then the flood of 2 for 60 s: rows committed per second from the
   start of the flood until its last frame was answered = `ingest.e2e_fixes_per_s` (target 100,000 sustained
   for 60 s), with the latency under that
   flood (`ingest.e2e_flood_latency_p50_ms` / `_p99_ms`: when the gateway accepts more than the workers
   store, this is the Redis backlog's age, growing through the window) and
   `ingest.e2e_fixes_per_cpu_s` = rows / CPU-seconds of the gateway thread, the workers, PostgreSQL and
   Redis during the window (the load generator excluded), and each one's share per fix stored
   (`ingest.e2e_{gateway,workers,postgres,redis}_cpu_us_per_fix`; embedded servers only). Flood fixes are 100 ms apart per terminal and start
   near the wall clock: a live fleet, not 10,000 vehicles back-filling six-hour-old data at once (that makes
   every vehicle a signal-loss episode re-rendered on every batch, which is the engine's cost, not ingest's).
   Baseline, measured the same way: the naive gateway plus naive workers that, per stream entry, decode the
   block, INSERT its rows one statement each (`executemany … ON CONFLICT DO NOTHING`), commit and XACK —
   without running the engine, which favours the baseline. (The city-load latency has no baseline: the naive
   workers would need ~10 minutes to store that phase's back-fill burst.)

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
    def __init__(self, env: _Env, prefix: str | None = None) -> None:
        from tracker.edges.bus import StreamNames

        self.env = env
        self.names = StreamNames(prefix or env.settings.bus.prefix + "n", env.settings.bus.shards)
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
    logging.getLogger("tracker.edges.history").setLevel(logging.INFO)  # a merge (redelivery) is worth seeing
    settings = Settings.model_validate_json(settings_json)
    w = Worker(settings, settings.redis_url, settings.database_url, shards, consumer=name, record_latency=True)
    samples: list[tuple[float, int]] = []
    last = 0.0
    ready.put(name)
    try:
        while not stop.is_set():
            w.step(block_ms=200, overlap=True)  # as `Worker.run`
            now = time.time()
            if now - last >= 0.5:
                samples.append((now, w.stats.stored))
                last = now
        w.flush()
        samples.append((time.time(), w.stats.stored))
    finally:
        out.put({"samples": samples, "latencies": w.latencies_ms or [], "latency_at": w.latency_at_s,
                 "stored": w.stats.stored})
        w.close()


def _naive_worker_main(settings_json: str, shards: list[int], stop: Any, out: Any, name: str, ready: Any) -> None:
    """The baseline consumer: one entry at a time, one INSERT per fix, commit, XACK (no engine, no live state)."""
    import redis

    from tracker.config import Settings
    from tracker.edges import bus
    from tracker.edges.history import HISTORY_COLUMNS, ensure_partitions
    from tracker.fix import decode_block

    logging.basicConfig(level=logging.WARNING)
    settings = Settings.model_validate_json(settings_json)
    names = bus.StreamNames(settings.bus.prefix, settings.bus.shards)
    streams = [names.fixes(s) for s in shards]
    r = redis.Redis.from_url(settings.redis_url)
    bus.ensure_groups(r, names, streams)
    conn = psycopg.connect(settings.database_url)
    from datetime import UTC, datetime

    from geofences.h3util import cells_at

    cols = ", ".join(HISTORY_COLUMNS)
    sql = f"INSERT INTO fixes ({cols}) VALUES ({', '.join(['%s'] * len(HISTORY_COLUMNS))}) ON CONFLICT DO NOTHING"
    samples: list[tuple[float, int]] = []
    lats: list[float] = []
    lat_at: list[float] = []
    stored, last = 0, 0.0
    ready.put(name)

    def dt(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    try:
        while not stop.is_set():
            resp = r.xreadgroup(bus.GROUP, name, {s: ">" for s in streams}, count=1, block=200)
            for stream, entries in resp or []:
                for entry_id, fields in entries:
                    df = decode_block(fields[bus.BLOCK_FIELD])
                    h3 = cells_at(df["lon"].to_numpy(), df["lat"].to_numpy(), settings.h3.fix_res)
                    ensure_partitions(conn, sorted({dt(t).date() for t in df["ts_ms"].to_list()}))
                    rows = [(f["vehicle_id"], dt(f["ts_ms"]), f["lon"], f["lat"], int(h), f["speed_kmh"],
                             f["heading_deg"], f["valid"], f["alarm"], f["status"], f["cover_closed"], f["lifting"],
                             f["load"], f["device_on"], f["drum"], f["backfill"], f["source"],
                             dt(f["received_ts_ms"])) for f, h in zip(df.iter_rows(named=True), h3.tolist(),
                                                                       strict=True)]
                    with conn.cursor() as cur:
                        cur.executemany(sql, rows)
                    conn.commit()
                    r.xack(stream, bus.GROUP, entry_id)
                    stored += len(rows)
                    now = time.time()
                    lats.append(now * 1000 - rows[0][-1].timestamp() * 1000)
                    lat_at.append(now)
            now = time.time()
            if now - last >= 0.5:
                samples.append((now, stored))
                last = now
        samples.append((time.time(), stored))
    finally:
        out.put({"samples": samples, "latencies": lats, "latency_at": lat_at, "stored": stored})
        conn.close()
        r.close()


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


def _latencies_between(results: list[dict[str, Any]], t0: float, t1: float) -> list[float]:
    return [lat for r in results for lat, at in zip(r["latencies"], r["latency_at"], strict=True) if t0 <= at <= t1]


def _pcts(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(values, [50, 99])
    return float(p50), float(p99)


class _CpuSampler:
    """CPU seconds of the servers, the worker processes and the gateway thread, sampled every 0.25 s from a
    thread of this process, so any window can be read off afterwards (interpolated)."""

    def __init__(self, pids: dict[str, list[int]], threads: dict[str, threading.Thread] | None = None) -> None:
        import psutil

        self.procs = {k: [psutil.Process(p) for p in v] for k, v in pids.items()}
        self.threads = threads or {}
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="cpu-sampler")

    def _read(self) -> dict[str, float]:
        import psutil

        out: dict[str, float] = {}
        for key, procs in self.procs.items():
            total = 0.0
            for p in procs:
                try:
                    family = [p, *p.children(recursive=True)] if key in ("postgres",) else [p]
                    for q in family:
                        c = q.cpu_times()
                        total += c.user + c.system
                except psutil.Error:
                    pass
            out[key] = total
        for key, t in self.threads.items():
            try:
                out[key] = _thread_cpu(t)
            except (OSError, AssertionError):
                out[key] = self.samples[-1][1].get(key, 0.0) if self.samples else 0.0
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._read()))
            self._stop.wait(0.25)

    def start(self) -> _CpuSampler:
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.samples.append((time.time(), self._read()))

    def between(self, t0: float, t1: float) -> dict[str, float]:
        ts = np.array([s[0] for s in self.samples])
        out = {}
        for key in self.samples[0][1]:
            v = np.array([s[1].get(key, 0.0) for s in self.samples])
            # a process's CPU only grows; a backend that exits takes its CPU with it, so use the positive steps
            steps = np.maximum(np.diff(v), 0.0)
            cum = np.concatenate(([0.0], np.cumsum(steps)))
            out[key] = float(np.interp(t1, ts, cum) - np.interp(t0, ts, cum))
        return out


def _server_pids(env: _Env) -> dict[str, list[int]]:
    """The embedded PostgreSQL postmaster and Redis server of this run (none for external servers)."""
    pids: dict[str, list[int]] = {}
    for key, pattern in (("postgres", "**/postmaster.pid"), ("redis", "**/redis.pid")):
        for f in env.data_dir.glob(pattern):
            try:
                pids.setdefault(key, []).append(int(f.read_text().splitlines()[0].strip()))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def _drop_streams(env: _Env, prefix: str) -> None:
    """Free Redis memory between phases (their streams are no longer read)."""
    import redis

    r = redis.Redis.from_url(env.redis_url)
    for key in r.scan_iter(f"{prefix}:*"):
        r.delete(key)
    r.close()


# -- the benchmark ----------------------------------------------------------------------------------------


def _flood(port: int, phones: list[str], duration_s: float, **kw: Any) -> Any:
    spec = LoadSpec(port=port, report_interval_s=float("inf"), duration_s=duration_s, backfill_items=30,
                    flood=True, window=4, latency_sample_every=20, drain_s=60, **kw)
    return run_load(spec, phones, processes=2)


def _rate(load: Any) -> float:
    """Fixes acknowledged per second from the start of the flood until its last frame was answered (the
    naive gateway answers its first frames only seconds after the start, so a fixed window would show 0)."""
    span = load.end_wall - load.go_wall
    return load.fixes_ok / span if span > 0 else 0.0


def _steady_spec(port: int, steady_s: float, **kw: Any) -> LoadSpec:
    return LoadSpec(port=port, report_interval_s=10.0, duration_s=steady_s, backfill_items=30, backfill_frames=3,
                    backfill_after_s=steady_s / 2, drain_s=60, **kw)


def bench_ingest(quick: bool = False) -> list[Figure]:
    n = 1_000 if quick else 10_000
    steady_s, flood_s, e2e_s, naive_e2e_s = (6.0, 5.0, 10.0, 5.0) if quick else (25.0, 15.0, 60.0, 15.0)
    phones = [_phone(i) for i in range(n)]
    env = _setup(n)
    figures: list[Figure] = []
    try:
        gw = _gateway(env)
        try:
            # 1. steady: 10 s reports and one back-fill burst per terminal
            steady = run_load(_steady_spec(gw.port, steady_s), phones, processes=2)
            lat = _pcts(steady.latencies_ms)
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
        _drop_streams(env, env.settings.bus.prefix)
        naive = _NaiveGateway(env).start()
        try:
            nsteady = run_load(_steady_spec(naive.port, steady_s), phones, processes=2)
            nlat = _pcts(nsteady.latencies_ms)
            nc0 = naive.cpu_s()
            base = _flood(naive.port, phones, flood_s)
            ncpu = naive.cpu_s() - nc0
        finally:
            naive.stop()
        _drop_streams(env, naive.names.prefix)
        gw_rate, base_rate = _rate(cap), _rate(base)
        log.info("capacity: gateway %.0f fixes/s (%.0f per CPU-s), naive %.0f; load generator %.1f CPU-s for "
                 "%d fixes", gw_rate, published / cpu if cpu else 0, base_rate, cap.cpu_s, cap.fixes_sent)
        figures += [
            figure("ingest.gateway_fixes_per_s", gw_rate, "fixes/s", TARGET_FIXES_PER_S, base_rate),
            figure("ingest.gateway_fixes_per_cpu_s", published / cpu if cpu else 0.0, "fixes/CPU-s", None,
                   (base.fixes_ok / ncpu) if ncpu else None),
            figure("ingest.gateway_ack_p50_ms", lat[0], "ms", None, nlat[0]),
            figure("ingest.gateway_ack_p99_ms", lat[1], "ms", None, nlat[1]),
            figure("ingest.loadgen_fixes_per_cpu_s", cap.fixes_sent / cap.cpu_s if cap.cpu_s else 0.0, "fixes/CPU-s"),
        ]
        # 3. end to end, then its naive baseline
        ours = _e2e(env, phones, e2e_s, steady_s, naive=False)
        theirs = _e2e(env, phones, naive_e2e_s, 0.0, naive=True)
        for key, unit, target in (("e2e_fixes_per_s", "fixes/s", TARGET_FIXES_PER_S),
                                  ("e2e_fixes_per_cpu_s", "fixes/CPU-s", None),
                                  ("e2e_latency_p50_ms", "ms", None), ("e2e_latency_p99_ms", "ms", None),
                                  ("e2e_flood_latency_p50_ms", "ms", None), ("e2e_flood_latency_p99_ms", "ms", None),
                                  *((f"e2e_{k}_cpu_us_per_fix", "µs/fix", None)
                                    for k in ("gateway", "workers", "postgres", "redis"))):
            if key in ours:
                figures.append(figure(f"ingest.{key}", ours[key], unit, target, theirs.get(key)))
    finally:
        _teardown(env)
    return figures


def _e2e(env: _Env, phones: list[str], duration_s: float, steady_s: float, naive: bool) -> dict[str, float]:
    """Workers behind a gateway: optional city load (latency), then the flood (throughput)."""
    env.settings.bus.prefix += "n" if naive else "e"  # fresh streams: earlier phases' backlog is not part of it
    ctx = mp.get_context("spawn")
    stop, out, ready = ctx.Event(), ctx.Queue(), ctx.Queue()
    shard_sets = [[0, 1], [2, 3]]
    settings_json = env.settings.model_dump_json()
    target = _naive_worker_main if naive else _worker_main
    procs = [ctx.Process(target=target, args=(settings_json, s, stop, out, f"bench-{i}", ready), daemon=True)
             for i, s in enumerate(shard_sets)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=600)
    if not naive:
        _warm_up(env)
    gw: Any = _NaiveGateway(env, env.settings.bus.prefix).start() if naive else _gateway(env)
    figures: dict[str, float] = {}
    sampler = _CpuSampler({**_server_pids(env), "workers": [p.pid for p in procs if p.pid]},
                          {"gateway": gw.thread}).start()
    try:
        city = None
        t0_ms = int(time.time() * 1000) + 5_000
        if steady_s > 0:
            city_t0_ms = int(time.time() * 1000) - 60_000
            city = run_load(_steady_spec(gw.port, steady_s, t0_ms=city_t0_ms), phones, processes=2)
            time.sleep(2.0)  # the last back-fills reach PostgreSQL
            # the flood's clocks start after the city load's last fix (a terminal's time never goes back):
            # at most one report per 10 s plus the 90 back-filled fixes, one second apart
            t0_ms = max(int(time.time() * 1000) + 5_000, city_t0_ms + (int(steady_s // 10) + 2 + 90) * 1000)
        # fixes one second apart (JT/T 808 times have whole seconds) from just ahead of the wall clock: a
        # terminal sending ~10 fixes/s runs ahead of it, by minutes at the end of the window
        load = _flood(gw.port, phones, duration_s, t0_ms=t0_ms)
    finally:
        gw.stop()
        sampler.stop()
    time.sleep(1.0)
    stop.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    _drop_streams(env, env.settings.bus.prefix)
    # from the start of the flood until its last frame was answered (as `_rate`: the naive gateway answers
    # nothing for the first ~10 s, so a fixed window would show 0; ours answers within ~1 s of the window)
    t0, t1 = load.go_wall, max(load.end_wall, load.go_wall + load.window_s)
    stored = sum(_stored_between(r["samples"], t0, t1) for r in results)
    cpu = sampler.between(t0, t1)
    cpu_total = sum(cpu.values())
    log.info("e2e%s: %.0f fixes stored in %.1f s (%d in all, %d acknowledged); CPU-s in that time %s; "
             "load generator %.1f CPU-s for %d fixes", " (naive)" if naive else "", stored, t1 - t0,
             sum(r["stored"] for r in results), load.fixes_ok, {k: round(v, 1) for k, v in cpu.items()}, load.cpu_s,
             load.fixes_sent)
    figures["e2e_fixes_per_s"] = stored / (t1 - t0) if t1 > t0 else 0.0
    figures["e2e_fixes_per_cpu_s"] = stored / cpu_total if cpu_total else 0.0
    for key, seconds in cpu.items():  # where the CPU went, per fix stored
        figures[f"e2e_{key}_cpu_us_per_fix"] = seconds / stored * 1e6 if stored else float("nan")
    figures["e2e_flood_latency_p50_ms"], figures["e2e_flood_latency_p99_ms"] = _pcts(
        _latencies_between(results, t0, t1))
    if city is not None:
        figures["e2e_latency_p50_ms"], figures["e2e_latency_p99_ms"] = _pcts(
            _latencies_between(results, city.go_wall, city.end_wall + 2.0))
    return figures
