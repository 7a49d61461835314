"""Done-when 2: a worker killed with SIGKILL during load, then restarted, loses nothing and duplicates
nothing. Every fix the gateway acknowledged (0x8001 OK to a simulated terminal over real TCP) must be in
PostgreSQL exactly once, and nothing else may be there.

The worker is the real `fleetwatch worker` process, pointed at the test's Redis, database and key prefix
through FLEETWATCH_* environment variables, restarted under the same consumer name so it re-reads what it
had read but not acknowledged; entries held by a consumer that never comes back are covered by XAUTOCLAIM
in test_worker_reclaim.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from ingest.gateway import run_in_thread
from scenarios.loadgen import LoadSpec, run_terminals
from tests.ingest.test_gateway_support import add_vehicles
from tracker.edges.bus import GROUP, StreamNames

ROOT = Path(__file__).resolve().parents[2]
N_TERMINALS = 24


def start_worker(settings, name: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ,
           "FLEETWATCH_REDIS_URL": settings.redis_url, "FLEETWATCH_DATABASE_URL": settings.database_url,
           "FLEETWATCH_BUS__PREFIX": settings.bus.prefix, "FLEETWATCH_BUS__SHARDS": str(settings.bus.shards),
           "FLEETWATCH_DATA_DIR": str(settings.data_dir), "FLEETWATCH_CONFIG": "/nonexistent.toml"}
    log = log_path.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "scenarios.cli", "worker", "--name", name], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def count_stored(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM fixes").fetchone()[0]


def stored(database_url: str) -> list[tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT vehicle_id, (extract(epoch FROM ts) * 1000)::bigint FROM fixes").fetchall()


@pytest.mark.timeout(300)
async def test_sigkilled_worker_loses_and_duplicates_nothing(settings, redis_client, tmp_path):
    phones = [f"1370000{i:04d}" for i in range(N_TERMINALS)]
    add_vehicles(settings.database_url, [(f"K{i:02d}", p, None, "default") for i, p in enumerate(phones)])
    vehicle_of = {p: f"K{i:02d}" for i, p in enumerate(phones)}
    names = StreamNames(settings.bus.prefix, settings.bus.shards)
    gw = run_in_thread(settings, SimpleNamespace(redis_url=settings.redis_url, database_url=settings.database_url),
                       port=0, flush_ms=2, rate_limit_per_s=10_000, rate_burst=10_000)
    log_path = tmp_path / "worker.log"
    worker = start_worker(settings, "w1", log_path)
    try:
        spec = LoadSpec(port=gw.port, report_interval_s=0.05, duration_s=8.0, backfill_items=10, flood=True,
                        window=2, record_acked=True, t0_ms=1_763_800_000_000)
        load = asyncio.ensure_future(run_terminals(spec, phones))

        # kill it once it is busy: it has stored some fixes and goes on reading (some entries pending at the kill)
        deadline = time.monotonic() + 120
        while count_stored(settings.database_url) < 500:
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "worker never consumed anything: " + log_path.read_text()
            await asyncio.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_with_pending = sum(r["pending"] for s in names.all_fixes() for r in [redis_client.xpending(s, GROUP)])
        await asyncio.sleep(1.0)  # load goes on while no worker runs
        worker = start_worker(settings, "w1", log_path)
        result = await load
        assert result.ready == N_TERMINALS and result.unanswered == 0
        assert result.frames_fail == 0 and result.frames_bad == 0
        acked = {(vehicle_of[p], ts) for p, ts in result.acked}
        assert len(acked) == len(result.acked) == result.fixes_ok > 1000

        deadline = time.monotonic() + 120
        while True:
            rows = stored(settings.database_url)
            if len(rows) >= len(acked) or time.monotonic() > deadline:
                break
            assert worker.poll() is None, log_path.read_text()
            await asyncio.sleep(0.5)
        assert len(rows) == len(set(rows)), "a fix is stored twice"
        missing = acked - set(rows)
        assert not missing, f"{len(missing)} acknowledged fixes lost, e.g. {sorted(missing)[:3]}"
        assert set(rows) == acked, "history holds fixes nobody acknowledged"
        print(f"acked {len(acked)}, pending at kill {killed_with_pending}")
    finally:
        gw.stop()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
