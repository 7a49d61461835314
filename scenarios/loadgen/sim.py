"""Many simulated terminals, from separate processes.

A run has two phases. Setup: every terminal connects, registers (0x0100) and authenticates (0x0102). Load,
started for all processes at once by the parent: each terminal reports one 0x0200 every `report_interval_s`
(first report at a random offset, so reports are spread evenly), and — when `backfill_items` > 0 — sends
0x0704 back-fill batches after `backfill_after_s`, either `backfill_frames` of them (a burst after an
outage) or continuously with `window` frames unanswered at most (`flood`: the capacity measurement).

Fix times: each terminal has its own clock, one second per fix (the resolution of JT/T 808's BCD time)
from `t0_ms` (default six hours ago), so (vehicle, ts) never repeats and every fix is a distinct row in
history. A terminal that sends faster than one fix a second runs ahead of the wall clock.

Each process reports the CPU time it spent from the start of the load until the last answer (`cpu_s`,
summed over processes), so a bench can show how much of the machine the load generator itself took.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from scenarios.loadgen.terminal import SimTerminal, location_body

__all__ = ["LoadResult", "LoadSpec", "run_load", "run_terminals"]


@dataclass
class LoadSpec:
    host: str = "127.0.0.1"
    port: int = 8808
    report_interval_s: float = 10.0
    duration_s: float = 10.0
    backfill_items: int = 0
    backfill_frames: int = 0
    backfill_after_s: float = 0.0
    flood: bool = False
    window: int = 4
    t0_ms: int = 0
    connect_concurrency: int = 256
    record_acked: bool = False
    latency_sample_every: int = 1
    drain_s: float = 20.0
    seed: int = 808


@dataclass
class LoadResult:
    terminals: int = 0
    ready: int = 0
    refused: int = 0
    setup_s: float = 0.0
    frames_sent: int = 0
    fixes_sent: int = 0
    fixes_ok: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    frames_fail: int = 0
    unanswered: int = 0
    window_fixes_ok: int = 0  # acknowledged between go and go + duration
    cpu_s: float = 0.0  # CPU seconds of the load processes from go until every answer was in (summed)
    window_s: float = 0.0
    go_wall: float = 0.0  # time.time() when the load phase started
    end_wall: float = 0.0  # time.time() when every frame was answered (or the drain timed out)
    latencies_ms: list[float] = field(default_factory=list)
    acked: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, o: LoadResult) -> LoadResult:
        for k in ("terminals", "ready", "refused", "frames_sent", "fixes_sent", "fixes_ok", "frames_ok", "frames_bad",
                  "frames_fail", "unanswered", "window_fixes_ok", "cpu_s"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.setup_s = max(self.setup_s, o.setup_s)
        self.window_s = max(self.window_s, o.window_s)
        self.go_wall = max(self.go_wall, o.go_wall)
        self.end_wall = max(self.end_wall, o.end_wall)
        self.latencies_ms += o.latencies_ms
        self.acked += o.acked
        self.errors += o.errors[:20]
        return self


class _Sim:
    """One terminal's scenario state (its clock and position)."""

    __slots__ = ("k", "lat", "lon", "term")

    def __init__(self, term: SimTerminal, rng: random.Random) -> None:
        self.term = term
        self.k = 0
        self.lat = 22.54 + rng.uniform(-0.05, 0.05)
        self.lon = 114.05 + rng.uniform(-0.05, 0.05)

    def next_fix(self, t0_ms: int) -> tuple[bytes, int]:
        self.k += 1
        self.lat += 0.00005
        ts = t0_ms + self.k * 1000
        return location_body(self.lat, self.lon, ts, speed_kmh=30.0 + self.k % 20), ts

    def backfill(self, t0_ms: int, items: int) -> None:
        bodies, ts = [], []
        for _ in range(items):
            b, t = self.next_fix(t0_ms)
            bodies.append(b)
            ts.append(t)
        self.term.send_batch(bodies, ts, backfill=True)


async def _setup(spec: LoadSpec, phone: str, sem: asyncio.Semaphore, rng: random.Random) -> _Sim | str:
    async with sem:
        term = SimTerminal(phone, record_acked=spec.record_acked, sample_latency_every=spec.latency_sample_every)
        try:
            await term.connect(spec.host, spec.port)
            result, code = await term.register(timeout=60)
            if result != 0:
                term.close()
                return f"refused:{result}"
            res = await term.authenticate(code, timeout=60)
            if res != 0:
                term.close()
                return f"auth:{res}"
        except (OSError, TimeoutError, ConnectionError) as exc:
            term.close()
            return f"error:{type(exc).__name__}: {exc}"
        return _Sim(term, rng)


async def run_terminals(spec: LoadSpec, phones: list[str], go: Any = None, ready: Any = None) -> LoadResult:
    """One process's share: set up `phones`, wait for `go` (a multiprocessing Event, or start at once),
    run the load for `duration_s`, wait up to `drain_s` for outstanding answers, and report."""
    rng = random.Random(spec.seed + (zlib.crc32(phones[0].encode()) if phones else 0))
    t_setup = time.monotonic()
    sem = asyncio.Semaphore(spec.connect_concurrency)
    outcomes = await asyncio.gather(*(_setup(spec, p, sem, rng) for p in phones))
    sims = [o for o in outcomes if isinstance(o, _Sim)]
    res = LoadResult(terminals=len(phones), ready=len(sims), setup_s=time.monotonic() - t_setup)
    res.refused = sum(1 for o in outcomes if isinstance(o, str) and o.startswith("refused"))
    res.errors = [o for o in outcomes if isinstance(o, str)][:20]
    if ready is not None:
        ready.put(len(sims))
    if go is not None:
        while not go.is_set():
            await asyncio.sleep(0.01)
    t0_ms = spec.t0_ms or int(time.time() * 1000) - 6 * 3600 * 1000
    cpu0 = time.process_time()
    start = time.monotonic()
    res.go_wall = time.time()
    end = start + spec.duration_s
    stop = False

    def ok_total() -> int:
        return sum(s.term.stats.fixes_ok for s in sims)

    ok_at_start = ok_total()

    if spec.flood and spec.backfill_items:
        def refill(sim: _Sim) -> None:
            while not stop and sim.term.pending < spec.window and not sim.term.closed.is_set():
                sim.backfill(t0_ms, spec.backfill_items)

        for sim in sims:
            orig = sim.term._on_reply

            def hooked(serial: int, msg_id: int, result: int, sim: _Sim = sim, orig: Any = orig) -> None:
                orig(serial, msg_id, result)
                refill(sim)

            sim.term._on_reply = hooked  # type: ignore[method-assign]

    async def reporter(sim: _Sim) -> None:
        interval = spec.report_interval_s
        await asyncio.sleep(rng.uniform(0, interval) if math.isfinite(interval) else 0)
        next_at = time.monotonic()
        backfill_due = start + spec.backfill_after_s
        sent_backfill = False
        while not stop and not sim.term.closed.is_set():
            now = time.monotonic()
            if spec.backfill_items and not sent_backfill and now >= backfill_due:
                sent_backfill = True
                if spec.flood:
                    refill(sim)
                else:
                    for _ in range(spec.backfill_frames):
                        sim.backfill(t0_ms, spec.backfill_items)
            if math.isfinite(interval) and now >= next_at:
                body, ts = sim.next_fix(t0_ms)
                sim.term.send_location(body, ts)
                next_at += interval
            wake = min(next_at if math.isfinite(interval) else end, backfill_due if not sent_backfill and
                       spec.backfill_items else end, end)
            await asyncio.sleep(max(0.0, min(wake - time.monotonic(), 1.0)))
            if time.monotonic() >= end:
                break

    tasks = [asyncio.ensure_future(reporter(s)) for s in sims]
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    res.window_fixes_ok = ok_total() - ok_at_start
    res.window_s = time.monotonic() - start
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    deadline = time.monotonic() + spec.drain_s
    while any(s.term.pending for s in sims) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    res.end_wall = time.time()
    res.cpu_s = time.process_time() - cpu0
    for s in sims:
        st = s.term.stats
        res.frames_sent += st.frames_sent
        res.fixes_sent += st.fixes_sent
        res.fixes_ok += st.fixes_ok
        res.frames_ok += st.frames_ok
        res.frames_bad += st.frames_bad
        res.frames_fail += st.frames_fail
        res.unanswered += s.term.pending
        res.latencies_ms += st.latencies_ms
        if spec.record_acked:
            res.acked += [(s.term.phone, t) for t in s.term.acked_fixes]
        s.term.close()
    await asyncio.sleep(0.05)
    return res


def _child(spec: LoadSpec, phones: list[str], go: Any, ready: Any, out: Any) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    try:
        res = runner(run_terminals(spec, phones, go, ready))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        res = LoadResult(terminals=len(phones), errors=[f"process failed: {exc!r}"])
        ready.put(0)
    out.put(res)


def run_load(spec: LoadSpec, phones: list[str], processes: int = 2, setup_timeout_s: float = 300) -> LoadResult:
    """Run the phones' terminals from `processes` separate processes (spawned: nothing of the parent's
    threads or sockets is inherited); the load phase starts for all at once when all are set up."""
    ctx = mp.get_context("spawn")
    go, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    chunks = [phones[i::processes] for i in range(processes)]
    procs = [ctx.Process(target=_child, args=(spec, c, go, ready, out), daemon=True) for c in chunks if c]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=setup_timeout_s)
        go.set()
        total = LoadResult()
        for _ in procs:
            total.merge(out.get(timeout=spec.duration_s + spec.drain_s + setup_timeout_s))
        return total
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
