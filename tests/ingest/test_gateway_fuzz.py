"""Done-when 3: ≥ 100,000 mutated frames over real TCP connections to a running gateway. It never crashes,
never hangs (pytest-timeout), and well-behaved terminals connected at the same time keep getting their
0x8001 for every position, stored in Redis.

Mutations (seeded, so a failure reproduces): bit flips anywhere in the escaped frame; truncation; inserted
bytes biased towards 0x7e/0x7d; escape damage; header/body bit flips with the checksum fixed (so the damage
reaches session logic and body decoders); lying length, version and subpackage bits with the checksum
fixed. Base frames are every message a terminal sends, in 2013 and 2019 layouts, with the fuzzing
terminal's own phone, and the fuzzing connections authenticate first so mutated positions reach the
publisher too.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import pytest

from ingest.gateway import run_in_thread
from ingest.jt808 import (
    VERSION_2013,
    VERSION_2019,
    Authenticate,
    Frame,
    FrameDecoder,
    Heartbeat,
    LocationBatch,
    Logout,
    Register,
    checksum,
    decode_location,
    encode_message,
    encode_subpackages,
    escape,
    unescape,
)
from scenarios.loadgen.terminal import SimTerminal, batch_body, location_body
from tests.ingest.test_gateway_support import add_vehicles, bus_frame
from tracker.edges.bus import StreamNames

T0 = 1_763_800_000_000
N_MUTATED = 110_000
FUZZERS = 6
GOOD = 4


def base_frames(phone: str, code: str) -> list[bytes]:
    loc = location_body(22.5, 114.0, T0, extras=bytes([0x01, 4, 0, 0, 1, 0, 0x2A, 2, 0, 5, 0xE3, 3, 1, 2, 3]))
    out = []
    for v in (VERSION_2013, VERSION_2019):
        kw = {"phone": phone, "serial": 7, "version": v}
        out += [
            encode_message(decode_location(loc), **kw),
            encode_message(LocationBatch(1, [decode_location(loc)] * 3), **kw),
            encode_message(Heartbeat(), **kw),
            encode_message(Authenticate(code, "123456789012345", "1.0"), **kw),
            encode_message(Register(44, 300, "M", "MODEL", "T1", 1, "粤B00001", v if v == VERSION_2019 else 2013),
                           **kw),
        ]
    out += encode_subpackages(batch_body([loc] * 20), phone=phone, first_serial=100, msg_id=0x0704, max_chunk=200)
    out.append(encode_message(Logout(), phone=phone, serial=9))
    return out


def _refit(wire: bytes, fn) -> bytes:  # mutate the unescaped payload, fix the checksum, escape again
    try:
        payload = bytearray(unescape(wire[1:-1])[:-1])
    except ValueError:
        return wire
    fn(payload)
    return b"\x7e" + escape(bytes(payload) + bytes((checksum(bytes(payload)),))) + b"\x7e"


def mutate(rng: random.Random, wire: bytes) -> bytes:
    kind = rng.randrange(6)
    b = bytearray(wire)
    if kind == 0:
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 1:
        return bytes(b[: rng.randrange(1, len(b))])
    if kind == 2:
        i = rng.randrange(len(b) + 1)
        junk = bytes(rng.choice((0x7E, 0x7D, 0x01, 0x02, rng.randrange(256))) for _ in range(rng.randint(1, 8)))
        return bytes(b[:i] + junk + b[i:])
    if kind == 3:
        i = rng.randrange(1, max(2, len(b) - 1))
        choice = rng.randrange(3)
        if choice == 0:
            b.insert(i, 0x7D)
        elif choice == 1:
            j = bytes(b).find(b"\x7d", 1)
            if j > 0 and j + 1 < len(b):
                b[j + 1] = rng.randrange(256)
            else:
                b.insert(i, 0x7D)
        else:
            j = bytes(b).find(b"\x7d", 1)
            if j > 0:
                del b[j]
        return bytes(b)
    if kind == 4:
        def flip(p: bytearray) -> None:
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(p))
                p[i] ^= 1 << rng.randrange(8)
        return _refit(wire, flip)

    def lie(p: bytearray) -> None:
        if len(p) > 3:
            p[2] ^= rng.choice((0x20, 0x40, 0x04, 0x1C, 0x80))  # subpackage / 2019 / length / encryption bits
            p[3] = rng.randrange(256)
    return _refit(wire, lie)


SENTINEL = 0xBEEF


class Sink(asyncio.Protocol):
    """A fuzzing connection: writes garbage, reads the replies and watches for the sentinel's answer."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.sentinel = asyncio.Event()
        self.dec = FrameDecoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for item in self.dec.feed(data):
            if isinstance(item, Frame) and item.header.msg_id == 0x8001 and item.body[:2] == b"\xbe\xef":
                self.sentinel.set()

    def connection_lost(self, exc) -> None:  # noqa: ANN001
        self.closed.set()


async def auth_code(port: int, phone: str) -> str:
    term = await SimTerminal(phone).connect("127.0.0.1", port)
    result, code = await term.register()
    term.close()
    assert result == 0 and code
    return code


async def fuzz_connection(port: int, phone: str, code: str, frames: list[bytes]) -> int:
    """Authenticate as `phone` and send `frames` in writes of 256 frames; reconnect when the gateway closes
    us (it does for terminals that send mostly garbage or fail authentication). Returns reconnects."""
    reconnects = 0
    i = 0
    loop = asyncio.get_running_loop()
    auth = encode_message(Authenticate(code), phone=phone, serial=1)
    sentinel = encode_message(Heartbeat(), phone=phone, serial=SENTINEL)
    while i < len(frames):
        _, sink = await loop.create_connection(Sink, "127.0.0.1", port)
        sink.transport.write(auth)
        while i < len(frames) and not sink.closed.is_set():
            sink.transport.write(b"".join(frames[i:i + 256]))
            i += 256
            await asyncio.sleep(0)  # let the gateway's replies drain
            while sink.transport.get_write_buffer_size() > 1 << 20 and not sink.closed.is_set():
                await asyncio.sleep(0.01)
        if sink.closed.is_set():
            reconnects += 1
            continue
        sink.transport.write(sentinel)  # answered only after everything before it was processed
        await asyncio.wait_for(asyncio.wait([asyncio.ensure_future(sink.sentinel.wait()),
                                             asyncio.ensure_future(sink.closed.wait())],
                                            return_when=asyncio.FIRST_COMPLETED), 120)
        assert sink.sentinel.is_set() or sink.closed.is_set()
        sink.transport.close()
    return reconnects


async def good_terminal(port: int, phone: str) -> SimTerminal:
    t = await SimTerminal(phone).connect("127.0.0.1", port)
    _, code = await t.register()
    assert await t.authenticate(code) == 0
    return t


async def keep_reporting(t: SimTerminal, stop: asyncio.Event, min_frames: int = 25) -> SimTerminal:
    """Report every 20 ms until the fuzzing is over (and at least `min_frames`, so a fast fuzz run still
    overlaps many reports), then wait for every acknowledgement."""
    k = 0
    while not stop.is_set() or k < min_frames:
        k += 1
        t.send_location(location_body(22.5, 114.0, T0 + k * 1000), T0 + k * 1000)
        await asyncio.sleep(0.02)
    await t.wait_acked(timeout=60)
    return t


@pytest.mark.timeout(240)
async def test_gateway_survives_100k_mutated_frames_and_serves_others(settings, redis_client):
    fuzz_phones = [f"1360000{i:04d}" for i in range(FUZZERS)]
    good_phones = [f"1350000{i:04d}" for i in range(GOOD)]
    add_vehicles(settings.database_url, [(f"F{i}", p, None, "default") for i, p in enumerate(fuzz_phones)]
                 + [(f"G{i}", p, None, "default") for i, p in enumerate(good_phones)])
    gw = run_in_thread(settings, SimpleNamespace(redis_url=settings.redis_url, database_url=settings.database_url),
                       port=0, flush_ms=2, rate_limit_per_s=1e6, rate_burst=1_000_000,
                       max_faults=10**9, max_auth_failures=10**9)  # keep fuzzing sockets open: every frame counts
    try:
        rng = random.Random(808)
        per = N_MUTATED // FUZZERS + 1
        codes = [await auth_code(gw.port, p) for p in fuzz_phones]
        work = []
        for phone, code in zip(fuzz_phones, codes, strict=True):
            bases = base_frames(phone, code)
            work.append([mutate(rng, rng.choice(bases)) for _ in range(per)])
        stop = asyncio.Event()
        # the well-behaved terminals are online and reporting before the fuzzing starts
        online = await asyncio.gather(*(good_terminal(gw.port, p) for p in good_phones))
        goods = [asyncio.ensure_future(keep_reporting(t, stop)) for t in online]
        reconnects = await asyncio.gather(*(fuzz_connection(gw.port, p, c, w) for p, c, w in zip(fuzz_phones, codes, work, strict=True)))
        stop.set()
        good = await asyncio.gather(*goods)

        st = gw.stats
        assert sum(len(w) for w in work) >= 100_000
        assert st.frames + st.faults >= 100_000, st.as_dict()
        for t in good:  # every position of every well-behaved terminal acknowledged OK
            assert t.stats.frames_sent > 10
            assert t.stats.frames_ok == t.stats.frames_sent, (t.phone, t.stats)
        names = StreamNames(settings.bus.prefix, settings.bus.shards)
        stored = bus_frame(redis_client, names)
        for i, t in enumerate(good):
            assert stored.filter(stored["vehicle_id"] == f"G{i}").height == t.stats.fixes_ok
        # and the gateway still takes new terminals
        late = await SimTerminal(good_phones[0]).connect("127.0.0.1", gw.port)
        _, code = await late.register()
        assert await late.authenticate(code) == 0
        assert await late.heartbeat() == 0
        late.close()
        print(f"fuzz: {st.frames} frames, {st.faults} faults, {st.acks_bad} answered 'bad', reconnects {reconnects}")
    finally:
        gw.stop()
