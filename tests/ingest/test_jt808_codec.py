"""JT/T 808 codec: round trips (hypothesis), framing under hostile streams, location details, reassembly,
sensor profiles and fix rows."""

from __future__ import annotations

import functools
import operator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.jt808 import (
    DEFAULT_PROFILE,
    FIX_ROW_KEYS,
    NONE_PROFILE,
    VERSION_2013,
    VERSION_2019,
    Authenticate,
    BodyError,
    EncodeError,
    Frame,
    FrameDecoder,
    FrameError,
    FrameFault,
    GeneralResult,
    Heartbeat,
    JT808Error,
    Location,
    LocationBatch,
    LocationQueryReply,
    Logout,
    PlatformGeneralReply,
    RawBody,
    Reassembler,
    ReassemblyError,
    Register,
    RegisterReply,
    RegisterResult,
    RetransmitRequest,
    Sensors,
    TerminalGeneralReply,
    apply_profile,
    bcd_time_to_ms,
    build_frame,
    checksum,
    decode_body,
    decode_frame,
    decode_location,
    decode_wire,
    encode_body,
    encode_header,
    encode_message,
    encode_reply,
    encode_subpackages,
    escape,
    load_profiles,
    location_to_fix_row,
    make_header,
    ms_to_bcd_time,
    parse_frame,
    parse_header,
    parse_profiles_toml,
    unescape,
)

GMT8 = timezone(timedelta(hours=8))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frames_of(items: list[Frame | FrameFault]) -> list[Frame]:
    return [x for x in items if isinstance(x, Frame)]


def sample_location(**kw: object) -> Location:
    base = dict(
        alarm=0,
        status=0x000C0003,
        lat=22.543096,
        lon=114.057865,
        altitude_m=12,
        speed_kmh=36.5,
        course_deg=270,
        ts_ms=1_700_000_000_000,
        extras={0x01: (123456).to_bytes(4, "big"), 0x30: b"\x1c", 0x31: b"\x0b", 0x2A: b"\x00\x05"},
    )
    base.update(kw)
    return Location(**base)  # type: ignore[arg-type]


# -- escapes and checksum ------------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=300))
def test_escape_roundtrip_and_no_flag_inside(data: bytes) -> None:
    esc = escape(data)
    assert 0x7E not in esc
    assert unescape(esc) == data


def test_unescape_order_and_errors() -> None:
    assert unescape(b"\x7d\x01\x02") == b"\x7d\x02"  # escaped 0x7d then a literal 0x02, not 0x7e
    assert unescape(b"\x30\x7d\x02\x08\x7d\x01\x55") == b"\x30\x7e\x08\x7d\x55"
    for bad in (b"\x7d", b"\x7d\x03", b"\x7d\x7d\x01", b"ab\x7d"):
        with pytest.raises(FrameError):
            unescape(bad)


@FAST
@given(st.binary(max_size=2000))
def test_checksum_is_xor_of_all_bytes(data: bytes) -> None:
    assert checksum(data) == functools.reduce(operator.xor, data, 0)


# -- headers -------------------------------------------------------------------------------------------------


@FAST
@given(
    msg_id=st.integers(0, 0xFFFF),
    serial=st.integers(0, 0xFFFF),
    version=st.sampled_from([VERSION_2013, VERSION_2019]),
    phone=st.text("0123456789", min_size=1, max_size=12),
    pkg=st.one_of(st.none(), st.tuples(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF))),
    body=st.binary(max_size=1023),
    encryption=st.integers(0, 7),
)
def test_header_roundtrip(
    msg_id: int, serial: int, version: int, phone: str, pkg: tuple[int, int] | None, body: bytes, encryption: int
) -> None:
    h = make_header(msg_id, phone=phone, serial=serial, version=version, encryption=encryption,
                    pkg_total=pkg[0] if pkg else None, pkg_index=pkg[1] if pkg else None)
    wire = build_frame(h, body)
    f = decode_wire(wire)
    assert f.checksum_ok and f.length_ok and f.body == body
    g = f.header
    assert (g.msg_id, g.serial, g.version, g.encryption, g.body_len) == (msg_id, serial, version, encryption, len(body))
    assert g.phone.lstrip("0") == phone.lstrip("0")
    assert (g.pkg_total, g.pkg_index) == (pkg if pkg else (None, None))
    assert g.protocol_version == (1 if version == VERSION_2019 else None)


def test_misflagged_2013_header_is_detected_by_length() -> None:
    """Bit 14 set on a 2013 layout: the 2013 reading is the one where header + body = frame."""
    body = encode_body(Authenticate("J10030000681"))
    h = make_header(0x0102, phone="010030000681", serial=2306)
    raw = bytearray(encode_header(h, len(body)) + body)
    raw[2] |= 0x40  # set the 2019 flag without the 2019 layout
    payload = bytes(raw) + bytes((checksum(bytes(raw)),))
    f = parse_frame(payload)
    assert f.header.version_flag and f.header.version == VERSION_2013 and f.length_ok
    assert f.header.phone == "010030000681"
    assert decode_frame(f).body == Authenticate("J10030000681")
    # a genuine 2019 frame of the same message still reads as 2019
    g = decode_wire(encode_message(Authenticate("abc", "123456789012345", "v1"), phone="1", serial=1,
                                   version=VERSION_2019))
    assert g.header.version == VERSION_2019 and g.length_ok
    # replies follow the terminal's layout: 2013 for the mis-flagged one, 2019 (with its version) otherwise
    assert decode_wire(encode_reply(f.header, Heartbeat(), serial=1)).header.version == VERSION_2013
    assert decode_wire(encode_reply(g.header, Heartbeat(), serial=1)).header.version == VERSION_2019


def test_length_mismatch_is_reported_not_dropped() -> None:
    h = make_header(0x0200, phone="13800000000", serial=5)
    body = encode_body(sample_location())
    payload = encode_header(h, len(body) - 3) + body  # length field lies
    f = parse_frame(payload + bytes((checksum(payload),)))
    assert f.checksum_ok and not f.length_ok and f.body == body


def test_header_too_short() -> None:
    with pytest.raises(FrameError):
        parse_frame(b"\x02\x00\x00")
    h = make_header(0x0200, phone="1", serial=1, version=VERSION_2019, pkg_total=2, pkg_index=1)
    with pytest.raises(FrameError):
        parse_header(encode_header(h, 0)[:15])


# -- message round trips -------------------------------------------------------------------------------------

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
gbk_text = st.text(st.sampled_from(list("abcXYZ0129-_ 粤京沪测试车辆")), max_size=6)


@st.composite
def locations(draw: st.DrawFn) -> Location:
    """Locations whose floats are exactly what the decoder produces (so equality is exact)."""
    lat_raw, lon_raw = draw(st.integers(0, 90_000_000)), draw(st.integers(0, 180_000_000))
    south, west = draw(st.booleans()), draw(st.booleans())
    status = draw(u32) & ~0xC | (4 if south else 0) | (8 if west else 0)
    if draw(st.booleans()):
        # BCD time: any second of 2000-2099 (UTC range shifted by the GMT+8 offset)
        ts: int | None = draw(st.integers(946_656_000, 4_102_415_999)) * 1000
        tbcd = ms_to_bcd_time(ts)
    else:  # an impossible time (terminal without a clock fix): kept raw, ts None
        ts, tbcd = None, draw(st.sampled_from([b"\x00" * 6, b"\x99\x13\x45\x25\x61\x61", b"\xff" * 6]))
    if ts is not None:
        tbcd = b""  # a valid time lives in ts_ms only
    items = draw(st.lists(st.tuples(u8, st.binary(max_size=12)), max_size=8))
    extras: dict[int, bytes] = {}
    for item, value in items:
        extras.setdefault(item, value)
    seq = tuple(items) if len(extras) != len(items) else None
    tail = draw(st.sampled_from([b"", b"\xf6", b"\xf6\x04\x14\x50"]))  # a truncated last item
    return Location(
        alarm=draw(u32),
        status=status,
        lat=-(lat_raw / 1e6) if south else lat_raw / 1e6,
        lon=-(lon_raw / 1e6) if west else lon_raw / 1e6,
        altitude_m=draw(u16),
        speed_kmh=draw(u16) / 10,
        course_deg=draw(u16),
        ts_ms=ts,
        time_bcd=tbcd,
        extras=extras,
        extras_seq=seq,
        extras_tail=tail,
    )


@st.composite
def bodies(draw: st.DrawFn) -> tuple[object, int]:
    version = draw(st.sampled_from([VERSION_2013, VERSION_2019]))
    kind = draw(st.sampled_from(["loc", "batch", "reg", "regreply", "auth", "t_reply", "p_reply", "hb", "logout",
                                 "retx", "query"]))
    if kind == "loc":
        return draw(locations()), version
    if kind == "batch":
        return LocationBatch(draw(st.sampled_from([0, 1])), draw(st.lists(locations(), max_size=4)),
                             None), version
    if kind == "reg":
        layout = VERSION_2019 if version == VERSION_2019 else draw(st.sampled_from([2011, VERSION_2013]))
        # field widths: maker 5 (2019: 11), model 8 (2011) / 20 / 30, terminal id 7 (2019: 30) bytes of GBK
        maker, model, term = (draw(gbk_text.map(lambda s, n=n: s[:n])) for n in (2, 4, 3))
        return Register(draw(u16), draw(u16), maker, model, term, draw(u8), draw(gbk_text), layout), version
    if kind == "regreply":
        result = draw(st.sampled_from(list(RegisterResult)))
        return RegisterReply(draw(u16), int(result), draw(gbk_text) if result == 0 else None), version
    if kind == "auth":
        if version == VERSION_2019:
            return Authenticate(draw(gbk_text), draw(st.text("0123456789", max_size=15)),
                                draw(st.text("v0123456789.", max_size=20))), version
        return Authenticate(draw(gbk_text)), version
    if kind in ("t_reply", "p_reply"):
        cls = TerminalGeneralReply if kind == "t_reply" else PlatformGeneralReply
        return cls(draw(u16), draw(u16), draw(st.sampled_from(list(GeneralResult)))), version
    if kind == "hb":
        return Heartbeat(), version
    if kind == "logout":
        return Logout(), version
    if kind == "retx":
        n = draw(st.integers(0, 20))
        return RetransmitRequest(draw(u16), draw(st.lists(st.integers(1, 0xFFFF), min_size=n, max_size=n))), version
    return LocationQueryReply(draw(u16), draw(locations())), version


def _norm(body: object) -> object:
    if isinstance(body, LocationBatch):  # the decoder fills in the declared count
        return LocationBatch(body.type, body.items, len(body.items), ())
    return body


@FAST
@given(bodies(), u16, st.text("0123456789", min_size=11, max_size=12))
def test_message_roundtrip(case: tuple[object, int], serial: int, phone: str) -> None:
    body, version = case
    wire = encode_message(body, phone=phone, serial=serial, version=version)  # type: ignore[arg-type]
    (frame,) = FrameDecoder().feed(wire)
    assert isinstance(frame, Frame) and frame.checksum_ok and frame.length_ok
    msg = decode_frame(frame)
    assert msg.header.serial == serial and msg.header.version == version
    assert msg.body == _norm(body)


def test_register_layouts_by_version_and_length() -> None:
    reg = Register(44, 303, "70111", "BSJ-A6", "0567872", 1, "粤B88888")
    for version, layout, size in ((VERSION_2013, VERSION_2013, 37), (VERSION_2019, VERSION_2019, 76)):
        raw = encode_body(reg, version)
        assert len(raw) == size + len("粤B88888".encode("gbk"))
        h = make_header(0x0100, phone="1", serial=1, version=version)
        assert decode_body(h, raw) == Register(44, 303, "70111", "BSJ-A6", "0567872", 1, "粤B88888", layout)
    old = Register(40, 50, "1234", "tk12345", "CHI123", 1, "粤A12345", 2011)
    raw = encode_body(old)
    assert len(raw) == 33  # 2011: model BYTE[8]
    assert decode_body(make_header(0x0100, phone="1", serial=1), raw) == old
    with pytest.raises(EncodeError):
        encode_body(Register(1, 1, "toolongmaker", "m", "t", 1, "p"))
    with pytest.raises(EncodeError):
        encode_body(Register(1, 1, "m", "m", "t", 1, "☃"))  # not GBK


def test_body_errors_are_body_errors() -> None:
    h13 = make_header(0x0200, phone="1", serial=1)
    for msg_id, body in ((0x0200, b"\x00" * 27), (0x0001, b"\x00\x01"), (0x8100, b"\x00"), (0x0704, b"\x00"),
                         (0x0100, b"\x00" * 24), (0x8003, b"\x00\x01\x05\x00\x01")):
        with pytest.raises(BodyError):
            decode_body(make_header(msg_id, phone="1", serial=1), body)
    h19 = make_header(0x0102, phone="1", serial=1, version=VERSION_2019)
    with pytest.raises(BodyError):
        decode_body(h19, b"\x05abc")
    assert isinstance(decode_body(make_header(0x0900, phone="1", serial=1), b"xyz"), RawBody)
    enc = make_header(0x0200, phone="1", serial=1, encryption=1)
    assert isinstance(decode_body(enc, encode_body(sample_location())), RawBody)  # RSA body: not readable
    assert isinstance(decode_body(h13, encode_body(sample_location())), Location)


def test_replies_and_results() -> None:
    wire = encode_message(PlatformGeneralReply(77, 0x0200, GeneralResult.OK), phone="13800000000", serial=9)
    assert wire.hex().startswith("7e8001" "0005" "013800000000" "0009" "004d" "0200" "00")  # layout spot check
    m = decode_frame(decode_wire(wire))
    assert m.body == PlatformGeneralReply(77, 0x0200, 0)
    refuse = encode_message(RegisterReply(3, RegisterResult.NO_SUCH_TERMINAL, "ignored"), phone="1", serial=1)
    body = decode_wire(refuse).body
    assert body == b"\x00\x03\x04"  # the auth code is only sent with result 0
    retx13 = encode_body(RetransmitRequest(100, [2, 5]), VERSION_2013)
    retx19 = encode_body(RetransmitRequest(100, [2, 5]), VERSION_2019)
    assert retx13 == bytes.fromhex("0064 02 0002 0005") and retx19 == bytes.fromhex("0064 0002 0002 0005")


# -- location details ----------------------------------------------------------------------------------------


def _loc_body(lat_raw: int, lon_raw: int, status: int, tbcd: str = "180715101010", extras: bytes = b"") -> bytes:
    return (
        (1).to_bytes(4, "big") + status.to_bytes(4, "big") + lat_raw.to_bytes(4, "big") + lon_raw.to_bytes(4, "big")
        + (40).to_bytes(2, "big") + (60).to_bytes(2, "big") + (90).to_bytes(2, "big") + bytes.fromhex(tbcd) + extras
    )


def test_hemispheres_and_vendor_twos_complement() -> None:
    loc = decode_location(_loc_body(12_222_222, 132_444_444, 0x4 | 0x8))
    assert (loc.lat, loc.lon, loc.south, loc.west) == (-12.222222, -132.444444, True, True)
    # non-standard: negative written as two's complement, hemisphere bits clear (or also set): still negative
    for status in (0, 0xC):
        loc = decode_location(_loc_body(0x100000000 - 12_222_222, 0x100000000 - 132_444_444, status))
        assert (loc.lat, loc.lon) == (-12.222222, -132.444444)
    zero = decode_location(_loc_body(0, 0, 0xC))
    assert str(zero.lat) == "-0.0" and encode_body(zero) == _loc_body(0, 0, 0xC)


def test_time_gmt8_to_utc() -> None:
    loc = decode_location(_loc_body(1, 1, 0, "180715101010"))
    assert loc.ts == datetime(2018, 7, 15, 2, 10, 10, tzinfo=UTC)
    early = decode_location(_loc_body(1, 1, 0, "240101053000"))  # before 08:00 Beijing = previous UTC day
    assert early.ts == datetime(2023, 12, 31, 21, 30, tzinfo=UTC)
    assert bcd_time_to_ms(bytes.fromhex("240229000000")) is not None  # leap day
    for bad in ("230229000000", "000000000000", "241301000000", "240132000000", "240101240000", "2401010060ff",
                "2a0101000000"):
        assert bcd_time_to_ms(bytes.fromhex(bad)) is None, bad
        assert decode_location(_loc_body(1, 1, 0, bad)).ts_ms is None


@FAST
@given(st.datetimes(min_value=datetime(2000, 1, 1, 8), max_value=datetime(2099, 12, 31, 23, 59, 59)))
def test_bcd_time_matches_datetime(local: datetime) -> None:
    local = local.replace(microsecond=0)
    raw = bytes.fromhex(local.strftime("%y%m%d%H%M%S"))
    want = int(local.replace(tzinfo=GMT8).timestamp() * 1000)
    assert bcd_time_to_ms(raw) == want
    assert decode_location(_loc_body(1, 1, 0, raw.hex())).ts_ms == want
    assert ms_to_bcd_time(want) == raw


def test_status_bits() -> None:
    def loc(status: int) -> Location:
        return sample_location(status=status)

    assert loc(0).load == 0 and loc(1 << 8).load == 1 and loc(3 << 8).load == 3 and loc(2 << 8).load is None
    s = loc(1 | 2 | (1 << 10) | (1 << 18) | (1 << 19))
    assert s.acc and s.fix_valid and s.oil_cut and s.gnss == ("gps", "beidou")
    assert sample_location(alarm=(1 << 23) | 1).alarms == ("emergency", "route_deviation")


def test_extras_decoding_truncation_and_duplicates() -> None:
    tlv = bytes.fromhex("01040000006402020037" "2b04000200f2" "0501ff" "300117" "0000" "0000" "f60414")
    loc = decode_location(_loc_body(1, 1, 2, extras=tlv))
    d = loc.extras_decoded()
    assert d["0x01"] == 10.0 and d["0x02"] == 5.5 and d["0x2B"] == {"ad0": 242, "ad1": 2} and d["0x30"] == 23
    assert d["0x05"] == "ff"  # 2013-era 1-byte 0x05: not the 2019 tyre pressure, kept raw
    assert d["0x00"] == "" and d["0x00#2"] == "" and d["tail"] == "f60414"
    assert loc.extras_truncated and loc.extras_seq is not None and loc.mileage_km == 10.0
    assert loc.analog == (242, 2) and loc.io_status is None
    assert encode_body(loc) == _loc_body(1, 1, 2, extras=tlv)  # byte-exact, duplicates and tail included


def test_batch_keeps_good_items_when_damaged() -> None:
    good = encode_body(sample_location())
    n = len(good)
    body = (3).to_bytes(2, "big") + b"\x01" + n.to_bytes(2, "big") + good + (5).to_bytes(2, "big") + b"short"
    body += n.to_bytes(2, "big") + good[:10]  # third item truncated
    batch = decode_body(make_header(0x0704, phone="1", serial=1), body)
    assert isinstance(batch, LocationBatch) and batch.backfill
    assert batch.items == [sample_location()] and batch.count == 3 and len(batch.errors) == 2
    trailing = (1).to_bytes(2, "big") + b"\x00" + n.to_bytes(2, "big") + good + b"xx"
    assert decode_body(make_header(0x0704, phone="1", serial=1), trailing).errors == ("2 trailing bytes after 1 items",)


# -- framing under hostile streams ---------------------------------------------------------------------------


def _stream_frames() -> list[bytes]:
    nasty = sample_location(extras={0x7E: b"\x7e\x7d\x7e", 0xE0: b"\x7d\x01\x7d\x02", 0x7D: b"\x7d"})
    return [
        encode_message(sample_location(), phone="13800000001", serial=1),
        encode_message(nasty, phone="13800000002", serial=0x7E7D),
        encode_message(Heartbeat(), phone="13800000003", serial=3, version=VERSION_2019),
        encode_message(LocationBatch(1, [sample_location(), nasty]), phone="13800000004", serial=4),
    ]


@FAST
@given(st.lists(st.integers(0, 10_000), max_size=12), st.integers(0, 3))
def test_framing_random_split_points(cuts: list[int], repeat: int) -> None:
    frames = _stream_frames() * (repeat + 1)
    stream = b"".join(frames)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    dec = FrameDecoder()
    out: list[Frame | FrameFault] = []
    prev = 0
    for p in [*points, len(stream)]:
        out += dec.feed(stream[prev:p])
        prev = p
    assert all(isinstance(x, Frame) for x in out)
    assert [build_frame(f.header, f.body) for f in out] == frames
    assert dec.pending == 0 and dec.faults == 0


def test_escape_split_across_reads_byte_by_byte() -> None:
    wire = encode_message(Heartbeat(), phone="040021679287", serial=43)
    assert wire.endswith(b"\x7d\x02\x7e")  # its checksum is 0x7e (vector SmallChi Test3)
    dec = FrameDecoder()
    out = [x for i in range(len(wire)) for x in dec.feed(wire[i : i + 1])]
    assert len(out) == 1 and isinstance(out[0], Frame) and out[0].header.serial == 43


def test_garbage_before_between_and_inside_resyncs() -> None:
    a, b, c, d = _stream_frames()
    stream = b"GET / HTTP/1.1\r\n" + a + b"\x00\x7d\xff" + b + b"\x7e\x7e\x7e" + b"\x7ejunk-with-flag\x7e" + c + d
    dec = FrameDecoder()
    items = dec.feed(stream)
    frames = frames_of(items)
    assert [build_frame(f.header, f.body) for f in frames] == [a, b, c, d]
    kinds = [x.kind for x in items if isinstance(x, FrameFault)]
    # "\x00\x7d\xff" between frames; then "junk-with-flag" (14 bytes: long enough to be tried as a header)
    assert kinds[0] == "bad_escape" and kinds[1] in ("too_short", "bad_header", "bad_checksum") and len(kinds) == 2
    assert dec.discarded_bytes == len(b"GET / HTTP/1.1\r\n")


def test_bad_escape_reported_and_next_frame_survives() -> None:
    a, b = _stream_frames()[:2]
    broken = a[:20] + b"\x7d\x05" + a[22:]
    items = FrameDecoder().feed(broken + b)
    assert isinstance(items[0], FrameFault) and items[0].kind == "bad_escape"
    assert isinstance(items[1], Frame) and build_frame(items[1].header, items[1].body) == b


def test_bad_checksum_carries_the_header_to_answer() -> None:
    wire = bytearray(encode_message(sample_location(), phone="13800000009", serial=321))
    wire[-2] ^= 0x55  # corrupt the checksum byte (not an escape byte here)
    good = encode_message(Heartbeat(), phone="13800000009", serial=322)
    dec = FrameDecoder()
    fault, frame = dec.feed(bytes(wire) + good)
    assert isinstance(fault, FrameFault) and fault.kind == "bad_checksum"
    assert fault.frame is not None and not fault.frame.checksum_ok
    h = fault.frame.header
    assert (h.msg_id, h.serial, h.phone) == (0x0200, 321, "013800000009")
    reply = decode_wire(encode_reply(h, PlatformGeneralReply(h.serial, h.msg_id, GeneralResult.BAD_MESSAGE), serial=1))
    assert reply.header.phone == h.phone and reply.header.msg_id == 0x8001
    assert decode_frame(reply).body == PlatformGeneralReply(321, 0x0200, 2)
    assert isinstance(frame, Frame) and frame.header.serial == 322
    assert (dec.frames, dec.faults) == (1, 1)


def test_oversize_open_and_closed() -> None:
    good = encode_message(Heartbeat(), phone="1", serial=7)
    dec = FrameDecoder(max_frame_size=100)
    # an open frame that never ends: reported once, dropped, the next frame is found again
    items = dec.feed(b"\x7e" + b"A" * 150)
    assert [x.kind for x in items] == ["oversize"]  # type: ignore[union-attr]
    items = dec.feed(b"B" * 500 + good)
    assert len(items) == 1 and isinstance(items[0], Frame) and items[0].header.serial == 7
    assert dec.pending == 0
    # a complete candidate over the limit
    items = FrameDecoder(max_frame_size=100).feed(b"\x7e" + b"C" * 101 + good)
    assert isinstance(items[0], FrameFault) and items[0].kind == "oversize" and isinstance(items[1], Frame)
    assert len(FrameDecoder(max_frame_size=100).feed(b"\x7e" + b"C" * 100 + b"\x7e")) == 1


def test_oversize_by_increments_is_bounded() -> None:
    dec = FrameDecoder(max_frame_size=64)
    faults = [x for _ in range(100) for x in dec.feed(b"\x7e" if _ == 0 else b"x" * 10)]
    assert [f.kind for f in faults] == ["oversize"]  # type: ignore[union-attr]
    assert dec.pending == 0


# -- reassembly ----------------------------------------------------------------------------------------------


def _parts(body: bytes, first: int = 100, chunk: int = 10, phone: str = "13800000000") -> list[Frame]:
    wires = encode_subpackages(body, msg_id=0x0704, phone=phone, first_serial=first, max_chunk=chunk)
    return [decode_wire(w) for w in wires]


def test_reassembly_in_any_order_and_decodes() -> None:
    batch = LocationBatch(1, [sample_location(ts_ms=1_700_000_000_000 + k * 1000) for k in range(40)])
    body = encode_body(batch)
    assert len(body) > 1023
    with pytest.raises(EncodeError):
        encode_message(batch, phone="1", serial=1)
    wires = encode_subpackages(batch, phone="13800000000", first_serial=65530)  # serials wrap at 65536
    frames = [f for w in wires for f in FrameDecoder().feed(w)]
    assert all(isinstance(f, Frame) and f.header.subpackage for f in frames)
    r = Reassembler(timeout_ms=1000)
    done = None
    for k, f in enumerate(reversed(frames)):  # reverse order
        assert done is None
        done = r.add(f.header, f.body, now_ms=k)  # type: ignore[union-attr]
    assert done is not None and len(r) == 0
    assert done.first_serial == 65530 and done.body == body and not done.header.subpackage
    assert done.serials == tuple((65530 + k) & 0xFFFF for k in range(len(frames)))
    assert decode_body(done.header, done.body) == LocationBatch(1, batch.items, 40, ())


def test_reassembly_timeout_reports_missing_and_retransmit_completes() -> None:
    body = bytes(range(256)) * 2
    parts = _parts(body, chunk=100)  # 6 packages
    r = Reassembler(timeout_ms=30_000, retransmit_after_ms=5_000)
    for f in parts:
        if f.header.pkg_index not in (2, 5):
            assert r.add(f.header, f.body, now_ms=0) is None
    assert r.missing(parts[0].header) == (2, 5)
    assert r.due_for_retransmit(4_999) == [] and r.expire(29_999) == []
    (ask,) = r.due_for_retransmit(5_000)
    assert (ask.first_serial, ask.missing, ask.reason) == (100, (2, 5), "retransmit")
    req = encode_message(RetransmitRequest(ask.first_serial, list(ask.missing)), phone="13800000000", serial=1)
    assert decode_frame(decode_wire(req)).body == RetransmitRequest(100, [2, 5])
    assert r.due_for_retransmit(20_000) == []  # asked once already
    assert r.expire(34_999) == []  # the request restarted the idle clock
    assert r.add(parts[4].header, parts[4].body, now_ms=35_000) is None
    done = r.add(parts[1].header, parts[1].body, now_ms=35_001)
    assert done is not None and done.body == body


def test_reassembly_expiry_and_limits() -> None:
    r = Reassembler(timeout_ms=1000, max_sets=2)
    a = _parts(b"a" * 30, first=10, phone="1")
    b = _parts(b"b" * 30, first=20, phone="2")
    c = _parts(b"c" * 30, first=30, phone="3")
    r.add(a[0].header, a[0].body, now_ms=0)
    r.add(b[0].header, b[0].body, now_ms=500)
    r.add(c[0].header, c[0].body, now_ms=600)  # third set: the oldest (a) is evicted
    assert len(r) == 2
    out = r.expire(1_499)
    assert [(x.phone, x.reason, x.missing) for x in out] == [("000000000001", "evicted", (2, 3))]
    out = r.expire(1_500)
    assert [(x.phone, x.reason, x.first_serial, x.received) for x in out] == [("000000000002", "timeout", 20, 1)]
    assert [x.phone for x in r.pending()] == ["000000000003"]


def test_reassembly_duplicates_and_bad_indexes() -> None:
    parts = _parts(b"x" * 25)
    r = Reassembler()
    r.add(parts[0].header, parts[0].body, 0)
    r.add(parts[0].header, parts[0].body, 1)  # retransmitted copy replaces
    r.add(parts[1].header, parts[1].body, 2)
    assert r.add(parts[2].header, parts[2].body, 3).body == b"x" * 25  # type: ignore[union-attr]
    for total, index in ((0, 0), (2, 3), (2, 0)):
        h = make_header(0x0704, phone="1", serial=1, pkg_total=total, pkg_index=index)
        with pytest.raises(ReassemblyError):
            r.add(h, b"", 0)
    with pytest.raises(ReassemblyError):
        r.add(make_header(0x0704, phone="1", serial=1), b"", 0)


# -- sensor profiles and fix rows ----------------------------------------------------------------------------

PROFILES_TOML = """
[jt808.profiles.acme]
cover_closed = {item = 0x2A, bit = 0, invert = false}
lifting      = {item = 0x25, bit = 3}
device_on    = {item = 0xE3, byte = 1, bit = 2}
load = {item = 0xE5, byte = 0, values = {0 = "empty", 1 = "half", 2 = "full"}}
drum = {forward = {item = 0x2A, bit = 4}, reverse = {item = 0x2A, bit = 5}}

[jt808.profiles.analog]
cover_closed = {item = 0x2B, channel = 1, threshold = 1000, invert = true}
device_on    = {channel = 0, threshold = 1200}
load = {channel = 1, half = 800, full = 2000}
drum = {item = 0xE6, byte = 0, bit = 0, width = 2, values = {0 = "stopped", 1 = "forward", 2 = "reverse"}}

[jt808.profiles.quiet]
load = "none"
"""


def test_profiles_from_toml_and_apply() -> None:
    profiles = parse_profiles_toml(PROFILES_TOML)
    assert set(profiles) == {"default", "none", "fleetwatch_sim", "acme", "analog", "quiet"}  # built-ins + the file
    acme, analog = profiles["acme"], profiles["analog"]
    loc = sample_location(
        status=0x0000_0302,
        extras={0x2A: (0b010001).to_bytes(2, "big"), 0x25: (8).to_bytes(4, "big"), 0xE3: b"\x00\x04",
                0xE5: b"\x02", 0x2B: ((1500 << 16) | 1300).to_bytes(4, "big"), 0xE6: b"\x02"},
    )
    assert apply_profile(loc, acme) == Sensors(cover_closed=True, lifting=True, load=3, device_on=True, drum=1)
    assert apply_profile(loc, analog) == Sensors(cover_closed=False, lifting=None, load=1, device_on=True, drum=2)
    assert apply_profile(loc, DEFAULT_PROFILE) == Sensors(load=3)  # status bits 8-9 = 11
    assert apply_profile(loc, profiles["quiet"]) == Sensors() == apply_profile(loc, NONE_PROFILE)


def test_profile_missing_items_and_contradictions_are_none() -> None:
    acme = parse_profiles_toml(PROFILES_TOML)["acme"]
    bare = sample_location(extras={})
    assert apply_profile(bare, acme) == Sensors()
    both = sample_location(extras={0x2A: (0b110000).to_bytes(2, "big"), 0xE5: b"\x07", 0xE3: b"\x00"})
    s = apply_profile(both, acme)
    assert s.drum is None and s.load is None and s.device_on is None  # both bits / unmapped value / short item
    assert apply_profile(sample_location(status=2 << 8), DEFAULT_PROFILE).load is None  # reserved 10


def test_profile_validation_errors() -> None:
    for bad in ('cover_closed = {item = 0x2A}', 'load = {item = 0xE5, values = {0 = "heavy"}}',
                'drum = {item = 0xE6, values = {0 = "spinning"}}', 'cover_closed = {item = 300, bit = 0}',
                'lifting = {item = 0x2A, bit = 0, colour = "red"}', 'load = {channel = 0, half = 9, full = 1}'):
        with pytest.raises(ValidationError):
            parse_profiles_toml("[jt808.profiles.x]\n" + bad)
    assert load_profiles({"profiles": {"p": {"lifting": {"item": 0x2A, "bit": 1}}}})["p"].lifting is not None


def test_fix_row() -> None:
    profile = parse_profiles_toml(PROFILES_TOML)["acme"]
    loc = sample_location(status=0x0000_0102, extras={0x2A: b"\x00\x01"})
    row = location_to_fix_row("013800000000", loc, profile, received_ts_ms=1_700_000_000_500, backfill=True)
    assert tuple(row) == FIX_ROW_KEYS
    assert row == {
        "vehicle_id": "013800000000", "ts_ms": 1_700_000_000_000, "lon": 114.057865, "lat": 22.543096,
        "speed_kmh": 36.5, "heading_deg": 270.0, "valid": True, "alarm": 0, "status": 0x102,
        "cover_closed": True, "lifting": None, "load": None, "device_on": None, "drum": 0, "backfill": True,
        "source": "jt808", "received_ts_ms": 1_700_000_000_500,
    }
    invalid = location_to_fix_row("1", sample_location(status=0, ts_ms=None), DEFAULT_PROFILE, 0, False)
    assert invalid["valid"] is False and invalid["ts_ms"] is None and invalid["load"] == 0


def test_fix_row_columns_match_tracker_schema() -> None:
    fix = pytest.importorskip("tracker.fix")
    assert tuple(fix.FIX_FIELDS) == FIX_ROW_KEYS


def test_declared_errors_only() -> None:
    assert issubclass(FrameError, JT808Error) and issubclass(BodyError, JT808Error)
    assert issubclass(EncodeError, JT808Error) and issubclass(ReassemblyError, JT808Error)
    with pytest.raises(EncodeError):
        encode_message(RawBody(b""), phone="1", serial=1)  # RawBody needs an explicit msg_id
    with pytest.raises(EncodeError):
        encode_message(sample_location(ts_ms=0), phone="1", serial=1)  # 1970: no two-digit BCD year
    with pytest.raises(EncodeError):
        encode_message(Heartbeat(), phone="x" * 13, serial=1)
