"""Live mode over JT/T 808: every simulated vehicle is a terminal on a real TCP connection to the gateway.

What each terminal does, as a real one would:

* connect, register (0x0100, with its phone and plate from the vehicle registry) and authenticate (0x0102)
  with the code the 0x8100 reply issued — before the simulated clock starts;
* send each fix as a 0x0200 when its simulated delivery time (`received_ts_ms`) comes, at `speed`× real
  time — so the simulator's latency, out-of-order delivery and duplicates reach the gateway as they were
  generated;
* during a connectivity outage the simulator injected (`SimResult.fault_log`, "outage_backfilled") it falls
  silent and drops its connection; its next report reconnects and re-authenticates with the stored code, and
  the fixes recorded during the outage go out as 0x0704 back-fill batches (type 1) at the delivery time the
  simulator chose, split so no frame exceeds the gateway's frame size;
* heartbeat (0x0002) when it has sent nothing for `heartbeat_s` of simulated time (and is not in an outage);
* a connection lost unexpectedly is re-opened, and frames it had not seen acknowledged are sent again as a
  back-fill batch (what terminals keep in their blind-spot store).

Sensors (cover, lift, load, device on, drum) are encoded through a vendor sensor profile — the
`[jt808.profiles.NAME]` tables of the configuration, read by `ingest.jt808.profiles.load_profiles` — by
`SensorEncoder`, the inverse of the gateway's `apply_profile`. Every distinct sensor state is checked by
decoding it back through the codec; what the profile cannot carry (a state it has no value for, a sensor the
vehicle lacks that shares an item with one it has, so it would read "off" instead of "not reported") is
counted in `Jt808Stats.lossy` rather than hidden.

`SIM_PROFILE_NAME` is the simulator's own layout (`SIM_PROFILE_TOML`): each sensor in an item of its own, so
"not reported" survives the trip for every sensor combination the simulator's fleet has. The gateway reads
it only when its configuration has the same table — put `SIM_PROFILE_TOML` in `fleetwatch.toml`.

The gateway refuses terminals it does not know: `register_scenario` writes the scenario's reference data
(vehicles with their phones, fences, permits, orders — `scenarios.demo.load_reference`, as the demo does)
and records the profile name as each vehicle's `vendor_profile`, which is what the gateway decodes with.
The terminals themselves are `scenarios.loadgen.terminal.SimTerminal` (wrapped, not modified).
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec
import polars as pl

from ingest.jt808.header import VERSION_2013
from ingest.jt808.messages import decode_location
from ingest.jt808.profiles import (
    DRUM_STATES,
    LOAD_STATES,
    AnalogLevels,
    AnalogThreshold,
    BitSource,
    DrumBits,
    FieldSource,
    SensorProfile,
    compile_profile,
    load_profiles,
)
from scenarios.loadgen.terminal import SimTerminal, location_body
from tracker.reference import Vehicle

__all__ = ["SENSOR_COLUMNS", "SIM_PROFILE_NAME", "SIM_PROFILE_TOML", "Jt808Stats", "SensorEncoder", "Send",
           "expected_rows", "outages_of", "parse_jt808_url", "plan_sends", "register_scenario",
           "resolve_profile", "stream_jt808"]

#: fix columns in the order of `ingest.jt808.profiles.SensorTuple`
SENSOR_COLUMNS: tuple[str, ...] = ("cover_closed", "lifting", "load", "device_on", "drum")

SIM_PROFILE_NAME = "fleetwatch_sim"
SIM_PROFILE_TOML = """\
[jt808.profiles.fleetwatch_sim]
cover_closed = {item = 0x2A, bit = 0}                         # IO status word: cover switch (1 = closed)
lifting      = {item = 0x25, bit = 3}                         # extended signals: body lifted
device_on    = {item = 0x2B, channel = 0, threshold = 1200}   # AD0: brush / pump motor current
load         = {item = 0xE5, byte = 0, values = {0 = "empty", 1 = "half", 3 = "full"}}
drum         = {item = 0xE6, byte = 0, width = 2, values = {0 = "stopped", 1 = "forward", 2 = "reverse"}}
"""

_STATUS = -1  # pseudo item: the location status word (load bits 8-9)
_STD_SIZES = {0x2A: 2, 0x25: 4, 0x2B: 4}  # standard lengths of the items profiles commonly use


def sim_profile() -> SensorProfile:
    return load_profiles(tomllib.loads(SIM_PROFILE_TOML))[SIM_PROFILE_NAME]


def resolve_profile(jt808_settings: Mapping[str, Any] | None, name: str) -> tuple[SensorProfile, bool]:
    """The profile `name` from the configuration's `[jt808.profiles]` → (profile, configured). The simulator's
    own `SIM_PROFILE_NAME` is available even when not configured (configured = False: the gateway will not
    know it unless its configuration has `SIM_PROFILE_TOML`). Raises KeyError for other unknown names."""
    profiles = load_profiles({"profiles": dict(jt808_settings or {}).get("profiles", {})})
    if name in profiles:
        return profiles[name], True
    if name == SIM_PROFILE_NAME:
        return sim_profile(), False
    raise KeyError(f"sensor profile {name!r} is not configured (known: {', '.join(sorted(profiles))}); "
                   f"add a [jt808.profiles.{name}] table, or use {SIM_PROFILE_NAME!r}")


# -- sensors → TLV extras ------------------------------------------------------------------------------------

SensorValues = tuple[bool | None, bool | None, int | None, bool | None, int | None]
#: (item, bit offset in the item's integer, value); a value of 0 still makes the item present
_Write = list[tuple[int, int, int]]


class SensorEncoder:
    """Sensor values → (status load bits, TLV extras) through one vendor profile: the inverse of
    `apply_profile`. Results are cached per distinct sensor tuple (a fleet has a few dozen) and each is
    verified by decoding it back; `lossless(values)` says whether the gateway will read exactly `values`."""

    def __init__(self, profile: SensorProfile) -> None:
        self.profile = profile
        self.sizes: dict[int, int] = {}
        p = profile
        for src in (p.cover_closed, p.lifting, p.device_on):
            self._size_bool(src)
        if isinstance(p.load, FieldSource):
            self._size_field(p.load)
        elif isinstance(p.load, AnalogLevels):
            self._need(p.load.item, 4)
        if isinstance(p.drum, FieldSource):
            self._size_field(p.drum)
        elif isinstance(p.drum, DrumBits):
            self._size_bool(p.drum.forward)
            self._size_bool(p.drum.reverse)
        self._decode = compile_profile(profile)
        self._cache: dict[SensorValues, tuple[int, bytes, SensorValues]] = {}

    # sizes first (a byte-indexed source's position depends on the item's length)
    def _need(self, item: int, n: int) -> None:
        self.sizes[item] = max(self.sizes.get(item, _STD_SIZES.get(item, 1)), n)

    def _size_bool(self, src: BitSource | AnalogThreshold | None) -> None:
        if isinstance(src, BitSource):
            self._need(src.item, src.byte + 1 if src.byte is not None else src.bit // 8 + 1)
        elif isinstance(src, AnalogThreshold):
            self._need(src.item, 4)

    def _size_field(self, src: FieldSource) -> None:
        self._need(src.item, src.byte + 1 if src.byte is not None else (src.bit + src.width + 7) // 8)

    def _offset(self, item: int, byte: int | None, bit: int) -> int:
        return bit if byte is None else (self.sizes[item] - 1 - byte) * 8 + bit

    # one sensor → writes (None: this value cannot be expressed)
    def _bit(self, src: BitSource, on: bool) -> _Write:
        raw = int(on) ^ int(src.invert)
        if src.byte is not None and src.bit >= 8:
            return [(src.item, 0, 0)] if not raw else []
        return [(src.item, self._offset(src.item, src.byte, src.bit), raw)]

    def _bool(self, src: BitSource | AnalogThreshold | None, on: bool | None) -> _Write:
        if src is None or on is None:
            return []
        if isinstance(src, BitSource):
            return self._bit(src, on)
        want = bool(on) is not src.invert  # channel value >= threshold?
        value = src.threshold if want else 0 if src.threshold > 0 else None
        return [] if value is None else [(src.item, 16 * src.channel, value)]

    def _field(self, src: FieldSource, state: int, names: dict[str, int]) -> _Write:
        for raw, st in sorted(src.values.items()):
            code = names.get(st) if isinstance(st, str) else st
            if code == state:
                shifted = raw << src.bit
                if raw >> src.width or (src.byte is not None and shifted > 0xFF):
                    return []
                return [(src.item, self._offset(src.item, src.byte, 0), shifted)]
        return []

    def _writes(self, values: SensorValues) -> tuple[int, _Write]:
        p = self.profile
        cover, lifting, load, device_on, drum = values
        status = 0
        w: _Write = [*self._bool(p.cover_closed, cover), *self._bool(p.lifting, lifting),
                     *self._bool(p.device_on, device_on)]
        if load is not None:
            if p.load == "status":
                status = (load & 3) << 8
            elif isinstance(p.load, FieldSource):
                w += self._field(p.load, load, LOAD_STATES)
            elif isinstance(p.load, AnalogLevels):
                level = {0: 0, 1: p.load.half, 3: p.load.full}.get(load)
                if level is not None:
                    w.append((p.load.item, 16 * p.load.channel, level))
        if drum is not None:
            if isinstance(p.drum, FieldSource):
                w += self._field(p.drum, drum, DRUM_STATES)
            elif isinstance(p.drum, DrumBits) and drum in (0, 1, 2):
                w += self._bit(p.drum.forward, drum == 1) + self._bit(p.drum.reverse, drum == 2)
        return status, w

    def encode(self, values: SensorValues) -> tuple[int, bytes, SensorValues]:
        """→ (status bits 8-9 to set, TLV extras bytes, what the gateway will read back — `values` when the
        profile can carry them)."""
        hit = self._cache.get(values)
        if hit is not None:
            return hit
        status, writes = self._writes(values)
        ints: dict[int, int] = {}
        for item, offset, value in writes:
            ints[item] = ints.get(item, 0) | (value << offset)
        extras = b"".join(bytes((item, self.sizes[item])) + (v & ((1 << 8 * self.sizes[item]) - 1)).to_bytes(
            self.sizes[item], "big") for item, v in sorted(ints.items()))
        # the codec is the reference: decode what would be sent and compare
        body = location_body(22.5, 114.0, 1_700_000_000_000, status=0x0002 | status, extras=extras)
        loc = decode_location(body)
        out = (status, extras, tuple(self._decode(loc)))
        self._cache[values] = out
        return out


# -- the schedule --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """One thing a terminal does at simulated time `due_ms`: "loc" (one 0x0200), "batch" (one 0x0704 back-fill
    frame) or "drop" (an outage begins: fall silent, close the connection)."""

    due_ms: int
    vehicle: int  # index into the vehicle list
    kind: str
    bodies: tuple[bytes, ...] = ()
    ts_ms: tuple[int, ...] = ()  # fix times as the gateway will store them (whole seconds)


def outages_of(fault_log: Iterable[Mapping[str, Any]]) -> list[tuple[int, int, int]]:
    """(vehicle index, start ms, end ms) of the back-filled connectivity outages the simulator injected."""
    return [(int(e["vehicle"]), int(e["a_ms"]), int(e["b_ms"])) for e in fault_log
            if e.get("what") == "outage_backfilled"]


def _chunks(bodies: list[bytes], ts: list[int], max_body_bytes: int
            ) -> Iterable[tuple[list[bytes], list[int]]]:
    cur_b: list[bytes] = []
    cur_t: list[int] = []
    size = 3
    for b, t in zip(bodies, ts, strict=True):
        if cur_b and size + 2 + len(b) > max_body_bytes:
            yield cur_b, cur_t
            cur_b, cur_t, size = [], [], 3
        cur_b.append(b)
        cur_t.append(t)
        size += 2 + len(b)
    if cur_b:
        yield cur_b, cur_t


def plan_sends(fixes: pl.DataFrame, vehicle_ids: list[str], encoder: SensorEncoder,
               outages: Iterable[tuple[int, int, int]] = (), *, max_body_bytes: int = 1000
               ) -> tuple[list[Send], dict[str, int]]:
    """Every frame the fleet will send, in delivery order → (sends, lossy count per sensor column).

    Fixes flagged `backfill` that one vehicle receives at the same time form its back-fill upload (0x0704
    frames of at most `max_body_bytes`: a third of the gateway's default 4096-byte frame limit, so even a
    body that escapes badly fits); every other fix is a 0x0200. An outage adds a "drop" at its start."""
    index = {vid: i for i, vid in enumerate(vehicle_ids)}
    unknown = sorted(set(fixes.get_column("vehicle_id").unique().to_list()) - set(index))
    if unknown:
        raise ValueError(f"fixes of vehicles not in the registry list: {', '.join(unknown[:5])}")
    f = fixes.sort("received_ts_ms", maintain_order=True)
    names = ("vehicle_id", "ts_ms", "lon", "lat", "speed_kmh", "heading_deg", "status", "alarm", "backfill",
             "received_ts_ms", *SENSOR_COLUMNS)
    cols = {c: f.get_column(c).to_list() for c in names}
    lossy = dict.fromkeys(SENSOR_COLUMNS, 0)
    sends: list[Send] = []
    pending: dict[tuple[int, int], tuple[list[bytes], list[int]]] = {}  # (vehicle, received) → back-fill
    for k in range(f.height):
        values = tuple(cols[c][k] for c in SENSOR_COLUMNS)
        load_bits, extras, got = encoder.encode(values)  # type: ignore[arg-type]
        if got != values:
            for c, want, have in zip(SENSOR_COLUMNS, values, got, strict=True):
                lossy[c] += want != have
        status = int(cols["status"][k])
        if encoder.profile.load == "status":
            status = (status & ~0x300) | load_bits
        ts = int(cols["ts_ms"][k]) // 1000 * 1000
        body = location_body(cols["lat"][k], cols["lon"][k], ts, speed_kmh=float(cols["speed_kmh"][k]),
                             course=int(round(float(cols["heading_deg"][k]))) % 360, status=status,
                             alarm=int(cols["alarm"][k]), extras=extras)
        v = index[cols["vehicle_id"][k]]
        due = int(cols["received_ts_ms"][k])
        if cols["backfill"][k]:
            bodies, ts_list = pending.setdefault((v, due), ([], []))
            bodies.append(body)
            ts_list.append(ts)
        else:
            sends.append(Send(due, v, "loc", (body,), (ts,)))
    for (v, due), (bodies, ts_list) in pending.items():
        for cb, ct in _chunks(bodies, ts_list, max_body_bytes):
            sends.append(Send(due, v, "batch", tuple(cb), tuple(ct)))
    for v, a_ms, _ in outages:
        sends.append(Send(int(a_ms), int(v), "drop"))
    order = {"drop": 0, "batch": 1, "loc": 2}  # at the same instant: fall silent first, back-fill before live
    sends.sort(key=lambda s: (s.due_ms, order[s.kind]))
    return sends, lossy


# -- terminals -----------------------------------------------------------------------------------------------


@dataclass
class Jt808Stats:
    terminals: int = 0
    ready: int = 0
    refused: list[str] = field(default_factory=list)  # vehicles the gateway would not register/authenticate
    frames_sent: int = 0
    fixes_sent: int = 0
    frames_ok: int = 0
    fixes_ok: int = 0
    frames_not_ok: int = 0
    unanswered: int = 0
    locations: int = 0
    backfill_frames: int = 0
    backfill_fixes: int = 0
    heartbeats: int = 0
    outages: int = 0
    reconnects: int = 0
    resent_fixes: int = 0
    lossy: dict[str, int] = field(default_factory=dict)
    acked: list[tuple[str, int]] = field(default_factory=list)  # (vehicle_id, ts_ms) acknowledged OK
    errors: list[str] = field(default_factory=list)
    sim_end_ms: int = 0  # simulated time reached (everything due before it was sent)
    complete: bool = False  # every planned frame was sent (not stopped early)
    elapsed_s: float = 0.0


class _Terminal:
    """One vehicle's terminal across reconnections (each connection is a fresh `SimTerminal`)."""

    def __init__(self, vehicle: Vehicle, host: str, port: int, stats: Jt808Stats, timeout_s: float) -> None:
        if not vehicle.phone:
            raise ValueError(f"vehicle {vehicle.id} has no terminal phone in the registry")
        self.vehicle = vehicle
        self.host, self.port = host, port
        self.stats = stats
        self.timeout_s = timeout_s
        self.conn: SimTerminal | None = None
        self.done: list[SimTerminal] = []  # previous connections (their counters)
        self.bodies: dict[int, tuple[bytes, ...]] = {}  # serial → location bodies of an unanswered frame
        self.auth_code: str | None = None
        self.queue: asyncio.Queue[Send | str | None] = asyncio.Queue()
        self.ready = False
        self._carry: list[bytes] = []  # unanswered bodies of a connection closed by an outage

    async def _open(self) -> SimTerminal:
        t = SimTerminal(self.vehicle.phone or "", self.vehicle.plate or "", version=VERSION_2013,
                        record_acked=True)
        await asyncio.wait_for(t.connect(self.host, self.port), self.timeout_s)
        if self.auth_code is None:
            result, code = await t.register(self.timeout_s)
            if result != 0 or not code:
                t.close()
                raise PermissionError(f"{self.vehicle.id}: registration refused (0x8100 result {result})")
            self.auth_code = code
        t.auth_code = self.auth_code
        result = await t.authenticate(self.auth_code, self.timeout_s)
        if result != 0:
            t.close()
            raise PermissionError(f"{self.vehicle.id}: authentication refused (0x8001 result {result})")
        return t

    async def start(self) -> None:
        try:
            self.conn = await self._open()
            self.ready = True
        except PermissionError as exc:
            self.stats.refused.append(self.vehicle.id)
            self.stats.errors.append(str(exc))
        except (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError) as exc:
            self.stats.refused.append(self.vehicle.id)
            self.stats.errors.append(f"{self.vehicle.id}: {type(exc).__name__}: {exc}")

    def _retire(self) -> list[bytes]:
        """Close the current connection; the bodies of frames it never saw answered (to send again)."""
        t = self.conn
        self.conn = None
        if t is None:
            return []
        t.close()
        self.done.append(t)
        lost = [b for s in sorted(t.sent) for b in self.bodies.get(s, ())]
        self.bodies.clear()
        return lost

    async def _ensure(self) -> SimTerminal:
        if self.conn is not None and not self.conn.closed.is_set():
            return self.conn
        lost = self._retire()
        self.conn = await self._open()
        self.stats.reconnects += 1
        if lost:  # kept in the terminal's blind-spot store, uploaded as back-fill
            self.stats.resent_fixes += len(lost)
            s = self.conn.send_batch(lost, [0] * len(lost), backfill=True)
            self.bodies[s] = tuple(lost)
        return self.conn

    async def run(self) -> None:
        while True:
            item = await self.queue.get()
            if item is None:
                break
            try:
                await self._handle(item)
            except (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError, PermissionError) as exc:
                self.stats.errors.append(f"{self.vehicle.id}: {type(exc).__name__}: {exc}")
        await self._finish()

    async def _handle(self, item: Send | str) -> None:
        if item == "hb":
            if self.conn is not None and not self.conn.closed.is_set():
                await self.conn.heartbeat(self.timeout_s)
                self.stats.heartbeats += 1
            return
        assert isinstance(item, Send)
        if item.kind == "drop":
            if self.conn is not None and not self.conn.closed.is_set():
                try:
                    await self.conn.wait_acked(self.timeout_s)
                except (TimeoutError, ConnectionError):
                    pass  # what was not answered is sent again after the reconnection
            self.stats.outages += 1
            self._carry += self._retire()  # sent again once connected
            return
        t = await self._ensure()
        carry, self._carry = self._carry, []
        if carry:
            self.stats.resent_fixes += len(carry)
            s = t.send_batch(carry, [0] * len(carry), backfill=True)
            self.bodies[s] = tuple(carry)
        if item.kind == "loc":
            s = t.send_location(item.bodies[0], item.ts_ms[0])
            self.stats.locations += 1
        else:
            s = t.send_batch(list(item.bodies), list(item.ts_ms), backfill=True)
            self.stats.backfill_frames += 1
            self.stats.backfill_fixes += len(item.bodies)
        self.bodies[s] = item.bodies
        for k in [k for k in self.bodies if k not in t.sent and k != s]:
            del self.bodies[k]  # answered

    async def _finish(self) -> None:
        try:
            if self._carry or (self.conn is not None and self.conn.closed.is_set() and self.conn.sent):
                t = await self._ensure()  # what an outage or a lost connection left unsent goes out now
                carry, self._carry = self._carry, []
                if carry:
                    self.stats.resent_fixes += len(carry)
                    t.send_batch(carry, [0] * len(carry), backfill=True)
            if self.conn is not None and not self.conn.closed.is_set():
                await self.conn.wait_acked(self.timeout_s * 2)
        except (OSError, TimeoutError, asyncio.TimeoutError, ConnectionError, PermissionError) as exc:
            self.stats.errors.append(f"{self.vehicle.id}: {type(exc).__name__}: {exc}")
        if self.conn is not None:
            self.conn.close()
            self.done.append(self.conn)
            self.conn = None
        st = self.stats
        for k, t in enumerate(self.done):
            s = t.stats
            st.frames_sent += s.frames_sent
            st.fixes_sent += s.fixes_sent
            st.frames_ok += s.frames_ok
            st.fixes_ok += s.fixes_ok
            st.frames_not_ok += s.frames_bad + s.frames_fail + s.other_results
            # frames a connection closed before answering were sent again on the next one
            st.unanswered += len(t.sent) if k == len(self.done) - 1 else 0
            # re-sent bodies carry ts 0 here (their times are inside the bodies): `acked` lists the fixes
            # acknowledged in their original frames; re-sent ones count in fixes_ok and resent_fixes
            st.acked.extend((self.vehicle.id, ts) for ts in t.acked_fixes if ts)
        st.unanswered += len(self._carry)


async def _stream(sim_fixes: pl.DataFrame, vehicles: list[Vehicle], host: str, port: int,
                  encoder: SensorEncoder, outages: list[tuple[int, int, int]], *, speed: float,
                  t0_ms: int | None, heartbeat_s: float, stop: Callable[[], bool] | None, timeout_s: float,
                  connect_concurrency: int, max_body_bytes: int, poll_s: float) -> Jt808Stats:
    t_start = time.perf_counter()
    st = Jt808Stats(terminals=len(vehicles))
    sends, st.lossy = plan_sends(sim_fixes, [v.id for v in vehicles], encoder, outages,
                                 max_body_bytes=max_body_bytes)
    terms = [_Terminal(v, host, port, st, timeout_s) for v in vehicles]
    sem = asyncio.Semaphore(connect_concurrency)

    async def start(t: _Terminal) -> None:
        async with sem:
            await t.start()

    await asyncio.gather(*(start(t) for t in terms))
    st.ready = sum(t.ready for t in terms)
    tasks = [asyncio.create_task(t.run()) for t in terms if t.ready]
    loop = asyncio.get_running_loop()
    t0 = (sends[0].due_ms if sends else 0) if t0_ms is None else int(t0_ms)
    wall0 = loop.time()
    hb_ms = heartbeat_s * 1000.0
    last = [float(t0)] * len(terms)
    silent = [False] * len(terms)
    i = 0
    sim_now = float(t0)
    while i < len(sends) and not (stop and stop()):
        sim_now = t0 + (loop.time() - wall0) * 1000.0 * speed
        while i < len(sends) and sends[i].due_ms <= sim_now:
            s = sends[i]
            i += 1
            if not terms[s.vehicle].ready:
                continue
            silent[s.vehicle] = s.kind == "drop"
            last[s.vehicle] = sim_now
            terms[s.vehicle].queue.put_nowait(s)
        for k, t in enumerate(terms):
            if t.ready and not silent[k] and sim_now - last[k] >= hb_ms:
                last[k] = sim_now
                t.queue.put_nowait("hb")
        if i < len(sends):
            wait_s = (sends[i].due_ms - sim_now) / 1000.0 / speed
            await asyncio.sleep(min(max(wait_s, 0.0), poll_s))
    st.complete = i >= len(sends)
    st.sim_end_ms = int(sim_now) if not st.complete else max(int(sim_now), sends[-1].due_ms if sends else 0)
    for t in terms:
        if t.ready:
            t.queue.put_nowait(None)
    await asyncio.gather(*tasks)
    st.elapsed_s = time.perf_counter() - t_start
    return st


def stream_jt808(sim: Any, host: str, port: int, profile: SensorProfile, *, speed: float = 1.0,
                 t0_ms: int | None = None, heartbeat_s: float = 60.0, stop: Callable[[], bool] | None = None,
                 timeout_s: float = 30.0, connect_concurrency: int = 64, max_body_bytes: int = 1000,
                 poll_s: float = 0.05) -> Jt808Stats:
    """Stream a `SimResult` to a JT/T 808 gateway at `speed`× real time (simulated time starts at `t0_ms`,
    default the first delivery); blocks until everything is sent and answered, or `stop()` returns True.
    The vehicles must be in the gateway's terminal registry (`register_scenario`)."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    vehicles = list(sim.vehicles)
    return asyncio.run(_stream(sim.fixes, vehicles, host, port, SensorEncoder(profile),
                               outages_of(sim.fault_log), speed=speed, t0_ms=t0_ms, heartbeat_s=heartbeat_s,
                               stop=stop, timeout_s=timeout_s, connect_concurrency=connect_concurrency,
                               max_body_bytes=max_body_bytes, poll_s=poll_s))


def parse_jt808_url(url: str) -> tuple[str, int] | None:
    """`jt808://HOST:PORT` → (host, port); None for any other scheme. Raises ValueError without a port."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "jt808":
        return None
    if not parts.hostname or parts.port is None:
        raise ValueError(f"{url!r}: expected jt808://HOST:PORT")
    return parts.hostname, parts.port


def register_scenario(database_url: str, sim: Any, profile_name: str) -> int:
    """Put the scenario's vehicles in the terminal registry (phone, plate, `vendor_profile = profile_name`)
    with the rest of its reference data, as the demo does; returns the number of terminals."""
    import psycopg

    from scenarios.demo import load_reference
    from tracker.edges.refstore import save_vehicles

    load_reference(database_url, sim)
    vehicles = [msgspec.structs.replace(v, vendor_profile=profile_name) for v in sim.vehicles]
    with psycopg.connect(database_url, autocommit=True) as conn:
        save_vehicles(conn, vehicles)
    return sum(1 for v in vehicles if v.phone)


def expected_rows(fixes: pl.DataFrame) -> pl.DataFrame:
    """What history should hold after a JT/T 808 stream: one row per (vehicle, whole second) — the BCD time
    has second resolution — the first delivered copy of it."""
    return (fixes.sort("received_ts_ms", maintain_order=True)
            .with_columns((pl.col("ts_ms") // 1000 * 1000).alias("ts_ms"))
            .unique(["vehicle_id", "ts_ms"], keep="first", maintain_order=True))


