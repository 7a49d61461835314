"""Codec fuzz: ≥ 100,000 mutated frames through FrameDecoder and every message decoder.

The contract under test: whatever a terminal sends, the codec raises nothing but `JT808Error` (or reports a
`FrameFault`), never hangs, and a good frame that follows garbage is still decoded. Mutation parameters are
drawn in bulk with numpy (seeded, so a failure reproduces); applying them is a cheap loop over bytearrays.
Mutations:

0. bit flips (1-3) anywhere in the escaped wire frame, delimiters included;
1. truncation at a random point;
2. insertion of 1-8 bytes biased towards 0x7e / 0x7d;
3. escape damage: a 0x7d dropped in, an escape's second byte changed, or an escape prefix removed;
4. body/header bit flips *with the checksum fixed and re-escaped*, so the damage reaches the body decoders
   instead of dying at the checksum;
5. a lying length field / flipped version or subpackage bits, checksum fixed.

Every mutated frame is followed in the stream by a sentinel frame (a unique serial): all sentinels must come
out intact. The stream is fed in random chunk sizes. Each mutated payload is also parsed directly (bypassing
the checksum) so the body decoders see every mutation.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from ingest.jt808 import (
    DEFAULT_PROFILE,
    VERSION_2013,
    VERSION_2019,
    Authenticate,
    Frame,
    FrameDecoder,
    FrameFault,
    GeneralResult,
    Heartbeat,
    JT808Error,
    Location,
    LocationBatch,
    LocationQueryReply,
    Logout,
    PlatformGeneralReply,
    Reassembler,
    Register,
    RegisterReply,
    RetransmitRequest,
    SUPPORTED_MSG_IDS,
    TerminalGeneralReply,
    apply_profile,
    checksum,
    decode_body,
    decode_frame,
    encode_message,
    encode_subpackages,
    escape,
    location_to_fix_row,
    make_header,
    parse_frame,
    parse_profiles_toml,
    unescape,
)

N_MUTATIONS = 100_000
SENTINEL_PHONE = "099999999999"
PROFILE = parse_profiles_toml(
    """
[jt808.profiles.fuzz]
cover_closed = {item = 0x2A, bit = 0}
lifting = {item = 0x25, bit = 3}
device_on = {item = 0x2B, channel = 0, threshold = 100}
load = {item = 0xE5, byte = 0, values = {0 = "empty", 1 = "half", 2 = "full"}}
drum = {forward = {item = 0xE6, byte = 1, bit = 0}, reverse = {item = 0xE6, byte = 1, bit = 1}}
"""
)["fuzz"]


def corpus() -> list[bytes]:
    loc = Location(
        alarm=1 << 23,
        status=0x000C0303,
        lat=22.543096,
        lon=114.057865,
        altitude_m=12,
        speed_kmh=36.5,
        course_deg=270,
        ts_ms=1_700_000_000_000,
        extras={0x01: b"\x00\x01\xe2\x40", 0x2A: b"\x00\x7e", 0x25: b"\x7d\x00\x00\x08", 0x2B: b"\x00\x00\x7e\x7d",
                0x30: b"\x1c", 0x31: b"\x0b", 0xE5: b"\x01", 0xE6: b"\x00\x01", 0xEB: bytes(range(0x70, 0x90))},
    )
    bodies = [
        loc,
        LocationBatch(1, [loc, loc, loc]),
        LocationBatch(0, [loc]),
        LocationQueryReply(7, loc),
        Register(44, 303, "70111", "BSJ-A6", "0567872", 1, "粤B88888"),
        Register(44, 303, "70111", "BSJ", "0567872", 1, "粤B88888", 2011),
        RegisterReply(5, 0, "auth-7e7d"),
        Authenticate("J10030000681"),
        TerminalGeneralReply(1, 0x8103, GeneralResult.OK),
        PlatformGeneralReply(2, 0x0200, GeneralResult.OK),
        RetransmitRequest(100, [2, 5, 9]),
        Heartbeat(),
        Logout(),
    ]
    out = []
    for k, body in enumerate(bodies):
        out.append(encode_message(body, phone="013800138000", serial=0x7E00 + k))
        v19 = Authenticate("abc", "123456789012345", "v1.0") if isinstance(body, Authenticate) else body
        if not isinstance(body, Register) or body.layout != 2011:
            out.append(encode_message(v19, phone="12345678901234567890", serial=0x7D00 + k, version=VERSION_2019))
    out += encode_subpackages(LocationBatch(1, [loc] * 12), phone="013800138000", first_serial=65533, max_chunk=200)
    return out


def _fix(payload: bytearray) -> bytes:
    """Re-seal a mutated unescaped payload: recompute the checksum byte, escape, add delimiters."""
    body = bytes(payload[:-1])
    return b"\x7e" + escape(body + bytes((checksum(body),))) + b"\x7e"


def mutate_all(base: list[bytes], n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(base), n)
    kind = rng.integers(0, 6, n)
    pos = rng.random((n, 3))  # relative positions
    bits = rng.integers(0, 8, (n, 3))
    nflip = rng.integers(1, 4, n)
    ins = rng.integers(0, 256, (n, 8))
    ins_len = rng.integers(1, 9, n)
    bias = rng.random((n, 8))
    ins = np.where(bias < 0.15, 0x7E, np.where(bias < 0.3, 0x7D, ins))
    unesc = [unescape(b[1:-1]) for b in base]
    out: list[bytes] = []
    for i in range(n):
        k = int(kind[i])
        src = base[which[i]]
        if k <= 3:
            buf = bytearray(src)
            L = len(buf)
            if k == 0:
                for j in range(int(nflip[i])):
                    buf[int(pos[i, j] * L)] ^= 1 << int(bits[i, j])
            elif k == 1:
                del buf[int(pos[i, 0] * L) :]
            elif k == 2:
                p = int(pos[i, 0] * (L + 1))
                buf[p:p] = bytes(ins[i, : int(ins_len[i])].astype(np.uint8))
            else:
                p = 1 + int(pos[i, 0] * (L - 2))
                sub = int(bits[i, 0]) % 3
                esc = buf.find(0x7D)
                if sub == 0 or esc < 0:
                    buf[p] = 0x7D
                elif sub == 1:
                    buf[esc + 1] = int(ins[i, 0]) if ins[i, 0] not in (1, 2) else 3
                else:
                    del buf[esc]
            out.append(bytes(buf))
        else:
            payload = bytearray(unesc[which[i]])
            L = len(payload)
            if k == 4:
                for j in range(int(nflip[i])):
                    payload[int(pos[i, j] * (L - 1))] ^= 1 << int(bits[i, j])
            else:
                field = int(bits[i, 0]) % 4
                if field == 0:  # lie about the body length
                    props = (payload[2] << 8 | payload[3]) & ~0x3FF | int(ins[i, 0]) << 2 | int(ins[i, 1]) & 3
                    payload[2], payload[3] = props >> 8 & 0xFF, props & 0xFF
                elif field == 1:
                    payload[2] ^= 0x40  # version flag
                elif field == 2:
                    payload[2] ^= 0x20  # subpackage flag
                else:
                    payload[2] ^= 0x04  # encryption
            out.append(_fix(payload))
    return out


def consume(msg_frame: Frame, reasm: Reassembler, now: int) -> int:
    """Decode one frame the way a gateway would; return how many fix rows came out."""
    rows = 0
    h = msg_frame.header
    if h.subpackage:
        try:
            done = reasm.add(h, msg_frame.body, now)
        except JT808Error:
            return 0
        if done is None:
            return 0
        body = decode_body(done.header, done.body)
    else:
        body = decode_frame(msg_frame).body
    locs = body.items if isinstance(body, LocationBatch) else [body] if isinstance(body, Location) else []
    for loc in locs:
        row = location_to_fix_row(h.phone, loc, PROFILE, now, False)
        apply_profile(loc, DEFAULT_PROFILE)
        rows += row["ts_ms"] is not None
    return rows


@pytest.mark.timeout(120)
def test_fuzz_stream_of_mutated_frames() -> None:
    base = corpus()
    t0 = time.perf_counter()
    mutated = mutate_all(base, N_MUTATIONS, seed=808)
    assert len(mutated) >= 100_000
    assert sum(m not in base for m in mutated[:2000]) > 1900  # they really are mutated

    sentinels = [encode_message(Heartbeat(), phone=SENTINEL_PHONE, serial=i & 0xFFFF) for i in range(len(mutated))]
    stream = b"".join(m + s for m, s in zip(mutated, sentinels, strict=True))
    rng = np.random.default_rng(809)
    cuts = np.cumsum(rng.integers(1, 4096, len(stream) // 1000 + 10))
    cuts = cuts[cuts < len(stream)]

    dec = FrameDecoder(max_frame_size=2048)
    reasm = Reassembler(timeout_ms=10_000, max_sets=1000)
    seen_sentinels = 0
    decoded = faults = rows = 0
    prev = 0
    for n_chunk, cut in enumerate([*cuts.tolist(), len(stream)]):
        for item in dec.feed(stream[prev:cut]):
            if isinstance(item, FrameFault):
                faults += 1
                if item.frame is not None:  # what a gateway does with a bad checksum: look, then reply
                    try:
                        decode_frame(item.frame)
                    except JT808Error:
                        pass
                continue
            if item.header.phone == SENTINEL_PHONE and item.header.msg_id == 0x0002:
                assert item.header.serial == seen_sentinels & 0xFFFF, "a sentinel was lost or reordered"
                seen_sentinels += 1
                continue
            try:
                rows += consume(item, reasm, n_chunk)
                decoded += 1
            except JT808Error:
                pass
        prev = cut
        if n_chunk % 500 == 0:
            reasm.expire(n_chunk)
    assert seen_sentinels == len(sentinels), "every good frame after garbage must decode"
    assert dec.pending == 0
    assert decoded > 10_000 and faults > 40_000 and rows > 1_000  # the mix reached every layer

    # every mutated payload straight into the message decoders, checksum ignored
    direct = 0
    for wire in mutated:
        inner = wire[1:-1].replace(b"\x7e", b"")
        try:
            payload = unescape(inner)
        except JT808Error:
            payload = inner  # what `jt808 decode --raw` would do with it
        try:
            frame = parse_frame(payload)
            if not frame.header.subpackage:
                decode_frame(frame)
                direct += 1
        except JT808Error:
            pass
    assert direct > 60_000, direct
    print(f"\njt808 fuzz: {len(mutated)} mutated frames + {len(sentinels)} sentinels in {len(cuts) + 1} reads: "
          f"{decoded} frames decoded, {faults} faults, {rows} fix rows, {direct} payloads decoded directly, "
          f"{time.perf_counter() - t0:.1f} s")


@pytest.mark.timeout(60)
def test_fuzz_random_bodies_every_decoder() -> None:
    """Random bodies (0-80 bytes, some long) for every supported message id, both versions."""
    rng = np.random.default_rng(810)
    n = 30_000
    lengths = np.where(rng.random(n) < 0.9, rng.integers(0, 80, n), rng.integers(80, 1100, n))
    blob = rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8).tobytes()
    ids = sorted(SUPPORTED_MSG_IDS)
    headers = [make_header(m, phone="1", serial=1, version=v) for m in ids for v in (VERSION_2013, VERSION_2019)]
    ok = 0
    off = 0
    for i, ln in enumerate(lengths.tolist()):
        body = blob[off : off + ln]
        off += ln
        try:
            decoded = decode_body(headers[i % len(headers)], body)
            ok += 1
            if isinstance(decoded, Location):
                location_to_fix_row("1", decoded, PROFILE, 0, True)
        except JT808Error:
            pass
    assert ok > n // 4


def test_fuzz_pure_garbage_never_yields_and_never_grows() -> None:
    rng = np.random.default_rng(811)
    dec = FrameDecoder(max_frame_size=512)
    for _ in range(2000):
        chunk = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
        for item in dec.feed(chunk):
            assert isinstance(item, FrameFault | Frame)
        assert dec.pending <= 512
    good = encode_message(Heartbeat(), phone=SENTINEL_PHONE, serial=1)
    assert any(isinstance(x, Frame) and x.header.phone == SENTINEL_PHONE for x in dec.feed(b"\x7e" + good))
