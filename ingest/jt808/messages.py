"""JT/T 808 message bodies: typed structs, decoders and encoders.

Supported (decode and encode): 0x0001 terminal general reply, 0x0002 heartbeat, 0x0003 logout, 0x0100
register, 0x0102 authenticate, 0x0200 location, 0x0201 location query reply, 0x0704 location batch,
0x8001 platform general reply, 0x8003 retransmission request, 0x8100 register reply. Any other message id
decodes to `RawBody` (the gateway answers it with 0x8001 result 3 "unsupported").

Design choices, and why:

* Bodies are `msgspec.Struct`s: cheap to build on the hot path (0x0200 / 0x0704) and trivially turned into
  JSON for tools.
* Decoders never raise anything but `BodyError` on bad input (tolerance is part of the contract; the fuzz test
  enforces it). Vendor quirks seen in real captures are tolerated where the meaning stays unambiguous:
  - latitude/longitude written as two's-complement negatives (non-standard) are read as signed: a valid
    magnitude never has bit 31 set, so this cannot misread a conforming terminal;
  - a truncated last TLV item is kept raw in `Location.extras_tail` instead of failing the whole fix;
  - a 0x0704 batch keeps every item before a truncated or malformed one and lists the problems in `errors`.
* Location time is BCD ``YYMMDDhhmmss`` in GMT+8 (Beijing time) and converted to UTC epoch ms here, at the
  edge, so nothing downstream ever sees local time. An impossible time (month 13, all zeros) gives
  ``ts_ms = None`` rather than a guess; only then is the raw BCD kept, in `time_bcd` (a valid time is fully
  described by `ts_ms`, so two equal reports compare equal however they were built).
* TLV extras are kept raw (`Location.extras`: id → bytes, first occurrence of an id) and decoded on demand
  (`decode_extra`, `Location.extras_decoded()`): the fix path needs only a few items, and vendors reuse ids
  with other lengths (a 2013-era 0x05 of 1 byte vs the 2019 30-byte tyre pressure), so a standard meaning is
  applied only when the length matches the standard. A repeated id keeps the full ordered list in
  `extras_seq` so re-encoding is byte-exact.
* Strings are GBK, fixed-width fields right-padded with 0x00 (stripped on decode). Some terminals left-pad
  with ASCII "0": kept as sent, because "0123" may be a real terminal id.
* 0x0100 layouts differ by version: 2011 (model 8 bytes, terminal id 7), 2013 (model 20, id 7), 2019
  (maker 11, model 30, id 30). 2011 and 2013 share the header, so the body length decides: a 2013 body is at
  least 37 bytes (empty plate), a 2011 body at least 25.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from math import copysign
from typing import Any, ClassVar, Final

import msgspec

from ingest.jt808.errors import BodyError, EncodeError, JT808Error
from ingest.jt808.framing import Frame, build_frame
from ingest.jt808.header import MAX_BODY_LEN, VERSION_2013, VERSION_2019, Header, make_header

__all__ = [
    "ALARM_BITS",
    "Authenticate",
    "Body",
    "GeneralResult",
    "Heartbeat",
    "Location",
    "LocationBatch",
    "LocationQueryReply",
    "Logout",
    "Message",
    "PlatformGeneralReply",
    "RawBody",
    "Register",
    "RegisterReply",
    "RegisterResult",
    "RetransmitRequest",
    "TerminalGeneralReply",
    "bcd_time_to_ms",
    "decode_body",
    "decode_extra",
    "decode_frame",
    "decode_location",
    "encode_body",
    "encode_message",
    "encode_reply",
    "encode_subpackages",
    "ms_to_bcd_time",
]

# -- message ids and result codes ----------------------------------------------------------------------------

MSG_TERMINAL_REPLY: Final = 0x0001
MSG_HEARTBEAT: Final = 0x0002
MSG_LOGOUT: Final = 0x0003
MSG_REGISTER: Final = 0x0100
MSG_AUTHENTICATE: Final = 0x0102
MSG_LOCATION: Final = 0x0200
MSG_LOCATION_QUERY_REPLY: Final = 0x0201
MSG_LOCATION_BATCH: Final = 0x0704
MSG_PLATFORM_REPLY: Final = 0x8001
MSG_RETRANSMIT: Final = 0x8003
MSG_REGISTER_REPLY: Final = 0x8100


class GeneralResult(IntEnum):
    """Result of 0x0001 / 0x8001 general replies."""

    OK = 0
    FAIL = 1
    BAD_MESSAGE = 2
    UNSUPPORTED = 3
    ALARM_ACK = 4  # 0x8001 only: alarm handling confirmed


class RegisterResult(IntEnum):
    """Result of 0x8100 register reply. The auth code is only sent with OK."""

    OK = 0
    VEHICLE_ALREADY_REGISTERED = 1
    NO_SUCH_VEHICLE = 2
    TERMINAL_ALREADY_REGISTERED = 3
    NO_SUCH_TERMINAL = 4


#: Alarm word bits worth naming (JT/T 808-2013 table 24); rules read the integer, tools print the names.
ALARM_BITS: Final[dict[int, str]] = {
    0: "emergency",
    1: "overspeed",
    2: "fatigue",
    3: "danger_warning",
    4: "gnss_fault",
    5: "gnss_antenna_cut",
    6: "gnss_antenna_short",
    7: "power_low",
    8: "power_cut",
    9: "display_fault",
    10: "tts_fault",
    11: "camera_fault",
    12: "ic_card_fault",
    13: "overspeed_warning",
    14: "fatigue_warning",
    18: "driving_overtime_today",
    19: "overtime_parking",
    20: "area_in_out",
    21: "route_in_out",
    22: "route_time",
    23: "route_deviation",
    24: "vss_fault",
    25: "fuel_abnormal",
    26: "vehicle_stolen",
    27: "illegal_ignition",
    28: "illegal_displacement",
    29: "collision_warning",
    30: "rollover_warning",
    31: "illegal_door_open",
}

_GNSS_BITS: Final = ((18, "gps"), (19, "beidou"), (20, "glonass"), (21, "galileo"))

# -- structs -------------------------------------------------------------------------------------------------


class Body(msgspec.Struct, frozen=True, gc=False):
    """Base of all message bodies. `MSG_ID` is the message id the body is sent with."""

    MSG_ID: ClassVar[int] = -1


class RawBody(Body, frozen=True, gc=False):
    """A message this codec does not interpret: the body bytes as received."""

    data: bytes


class TerminalGeneralReply(Body, frozen=True, gc=False):
    """0x0001: the terminal acknowledges a platform message."""

    MSG_ID: ClassVar[int] = MSG_TERMINAL_REPLY
    reply_serial: int
    reply_msg_id: int
    result: int  # GeneralResult 0..3


class PlatformGeneralReply(Body, frozen=True, gc=False):
    """0x8001: the platform acknowledges a terminal message (send only once the data is durable)."""

    MSG_ID: ClassVar[int] = MSG_PLATFORM_REPLY
    reply_serial: int
    reply_msg_id: int
    result: int  # GeneralResult


class Heartbeat(Body, frozen=True, gc=False):
    """0x0002: empty body."""

    MSG_ID: ClassVar[int] = MSG_HEARTBEAT


class Logout(Body, frozen=True, gc=False):
    """0x0003: empty body."""

    MSG_ID: ClassVar[int] = MSG_LOGOUT


class Register(Body, frozen=True, gc=False):
    """0x0100 terminal registration. `layout` (2011, 2013 or 2019) is the body layout it was decoded with and
    will be encoded with; it must agree with the header version for 2019."""

    MSG_ID: ClassVar[int] = MSG_REGISTER
    province: int
    city: int
    maker_id: str
    model: str
    terminal_id: str
    plate_color: int  # 0 = no plate (then `plate` is the VIN), 1 blue, 2 yellow, 3 black, 4 white, 9 other
    plate: str
    layout: int = VERSION_2013


class RegisterReply(Body, frozen=True, gc=False):
    """0x8100. `auth_code` only with result 0 (OK)."""

    MSG_ID: ClassVar[int] = MSG_REGISTER_REPLY
    reply_serial: int
    result: int  # RegisterResult
    auth_code: str | None = None


class Authenticate(Body, frozen=True, gc=False):
    """0x0102. 2013: the whole body is the auth code. 2019: length-prefixed code, IMEI[15], software[20]."""

    MSG_ID: ClassVar[int] = MSG_AUTHENTICATE
    auth_code: str
    imei: str | None = None
    software_version: str | None = None


class Location(Body, frozen=True, gc=False):
    """0x0200 location report (also the item of 0x0704 and the payload of 0x0201).

    `lat`/`lon` are signed WGS-84 degrees (hemisphere from status bits 2/3). `ts_ms` is UTC epoch ms or None
    when the terminal time is impossible. `extras` maps TLV id → raw value bytes.
    """

    MSG_ID: ClassVar[int] = MSG_LOCATION
    alarm: int
    status: int
    lat: float
    lon: float
    altitude_m: int
    speed_kmh: float
    course_deg: int
    ts_ms: int | None
    time_bcd: bytes = b""  # raw BCD time, kept only when impossible (ts_ms None), to show and re-send it
    extras: dict[int, bytes] = {}
    extras_seq: tuple[tuple[int, bytes], ...] | None = None  # full ordered TLV list, only when an id repeats
    extras_tail: bytes = b""  # bytes after the last complete TLV (a truncated item)

    # -- status word -----------------------------------------------------------------------------------------
    @property
    def acc(self) -> bool:
        return bool(self.status & 1)

    @property
    def fix_valid(self) -> bool:
        return bool(self.status & 2)

    @property
    def south(self) -> bool:
        return bool(self.status & 4)

    @property
    def west(self) -> bool:
        return bool(self.status & 8)

    @property
    def load(self) -> int | None:
        """Status bits 8-9: 0 empty, 1 half, 3 full; None for the reserved value 0b10."""
        v = (self.status >> 8) & 3
        return None if v == 2 else v

    @property
    def oil_cut(self) -> bool:
        return bool(self.status & (1 << 10))

    @property
    def circuit_cut(self) -> bool:
        return bool(self.status & (1 << 11))

    @property
    def door_locked(self) -> bool:
        return bool(self.status & (1 << 12))

    @property
    def gnss(self) -> tuple[str, ...]:
        """Satellite systems in use (status bits 18-21)."""
        return tuple(name for bit, name in _GNSS_BITS if self.status >> bit & 1)

    @property
    def alarms(self) -> tuple[str, ...]:
        """Names of the alarm bits set."""
        return tuple(name for bit, name in ALARM_BITS.items() if self.alarm >> bit & 1)

    @property
    def extras_truncated(self) -> bool:
        return bool(self.extras_tail)

    @property
    def ts(self) -> datetime | None:
        return None if self.ts_ms is None else datetime.fromtimestamp(self.ts_ms / 1000, tz=UTC)

    # -- common extras ---------------------------------------------------------------------------------------
    def _u(self, item: int, size: int) -> int | None:
        v = self.extras.get(item)
        return int.from_bytes(v, "big") if v is not None and len(v) == size else None

    @property
    def mileage_km(self) -> float | None:
        v = self._u(0x01, 4)
        return None if v is None else v / 10

    @property
    def io_status(self) -> int | None:
        """0x2A IO status word."""
        return self._u(0x2A, 2)

    @property
    def ext_signals(self) -> int | None:
        """0x25 extended vehicle signal word."""
        return self._u(0x25, 4)

    @property
    def analog(self) -> tuple[int, int] | None:
        """0x2B analog: (AD0 = bits 0-15, AD1 = bits 16-31)."""
        v = self._u(0x2B, 4)
        return None if v is None else (v & 0xFFFF, v >> 16)

    def extras_decoded(self) -> dict[str, Any]:
        """Every extra item decoded (`decode_extra`), keyed "0x01"... (JSON-friendly). A repeated id gets
        suffixes "#2", "#3"; a truncated tail is under "tail" as hex."""
        out: dict[str, Any] = {}
        seq = self.extras_seq if self.extras_seq is not None else self.extras.items()
        for item, value in seq:
            key = f"0x{item:02X}"
            if key in out:
                k = 2
                while f"{key}#{k}" in out:
                    k += 1
                key = f"{key}#{k}"
            out[key] = decode_extra(item, value)
        if self.extras_tail:
            out["tail"] = self.extras_tail.hex()
        return out


class LocationBatch(Body, frozen=True, gc=False):
    """0x0704. `type` 0 = normal batch, 1 = back-fill of positions stored while offline (盲区补报).

    `count` is the count the terminal declared; `items` holds what decoded. `errors` lists items that could
    not be decoded and trailing bytes, so a partly damaged batch still yields its good fixes."""

    MSG_ID: ClassVar[int] = MSG_LOCATION_BATCH
    type: int
    items: list[Location]
    count: int | None = None
    errors: tuple[str, ...] = ()

    @property
    def backfill(self) -> bool:
        return self.type == 1


class LocationQueryReply(Body, frozen=True, gc=False):
    """0x0201: answer to a 0x8201 position query."""

    MSG_ID: ClassVar[int] = MSG_LOCATION_QUERY_REPLY
    reply_serial: int
    location: Location


class RetransmitRequest(Body, frozen=True, gc=False):
    """0x8003: ask the terminal to resend some subpackages of a message. `original_serial` is the serial of
    the first subpackage; `indexes` are 1-based package indexes. The count is a BYTE in 2013 and a WORD in
    2019."""

    MSG_ID: ClassVar[int] = MSG_RETRANSMIT
    original_serial: int
    indexes: list[int]


class Message(msgspec.Struct, frozen=True, gc=False):
    """A decoded frame: header, typed body, and the frame's integrity flags."""

    header: Header
    body: Body
    checksum_ok: bool = True
    length_ok: bool = True


# -- primitives ----------------------------------------------------------------------------------------------

_BCD: Final = tuple(((v >> 4) * 10 + (v & 15)) if (v >> 4) < 10 and (v & 15) < 10 else -1 for v in range(256))
_TO_BCD: Final = tuple(bytes(((v // 10) << 4 | (v % 10),)) for v in range(100))
_CUM_DAYS: Final = (0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_GMT8_S: Final = 8 * 3600


def bcd_time_to_ms(raw: bytes) -> int | None:
    """BCD[6] ``YYMMDDhhmmss`` Beijing time (GMT+8) → UTC epoch ms; None when not a real time.

    Hand-rolled calendar arithmetic (years 2000-2099, where every 4th year is leap) because building a
    `datetime` per fix costs more than the rest of the location decode."""
    bcd = _BCD
    y, mo, d, h, mi, s = bcd[raw[0]], bcd[raw[1]], bcd[raw[2]], bcd[raw[3]], bcd[raw[4]], bcd[raw[5]]
    if y < 0 or not (1 <= mo <= 12) or not (1 <= d <= _MONTH_DAYS[mo]) or not (0 <= h < 24) or not (
        0 <= mi < 60
    ) or not (0 <= s < 60):
        return None
    leap = y % 4 == 0
    if mo == 2 and d == 29 and not leap:
        return None
    year = 2000 + y
    days = (year - 1970) * 365 + (year - 1969) // 4 + _CUM_DAYS[mo] + (1 if leap and mo > 2 else 0) + d - 1
    return ((days * 24 + h) * 60 + mi) * 60000 + s * 1000 - _GMT8_S * 1000


# Hot-path pieces of `bcd_time_to_ms`: Beijing date (3 BCD bytes) → UTC ms of its midnight, cached (a fleet
# reports a handful of distinct dates per day); hour byte → ms; minute+second bytes → ms. -1 / None = invalid.
_DAY_MS: dict[bytes, int] = {}
_HOUR_MS: Final = tuple(_BCD[v] * 3_600_000 if 0 <= _BCD[v] < 24 else -1 for v in range(256))
_MINSEC_MS: Final = {
    ((m // 10) << 4 | m % 10) << 8 | ((s // 10) << 4 | s % 10): (m * 60 + s) * 1000
    for m in range(60)
    for s in range(60)
}


def _day_ms(tbcd: bytes) -> int:
    ms = bcd_time_to_ms(tbcd[:3] + b"\x00\x00\x00")
    day = -1 if ms is None else ms
    if len(_DAY_MS) >= 4096:
        _DAY_MS.clear()
    _DAY_MS[tbcd[:3]] = day
    return day


def ms_to_bcd_time(ts_ms: int) -> bytes:
    """UTC epoch ms → BCD[6] Beijing time (sub-second part dropped). Years 2000-2099 only."""
    t = time.gmtime(ts_ms // 1000 + _GMT8_S)
    if not 2000 <= t.tm_year <= 2099:
        raise EncodeError(f"time {ts_ms} outside 2000-2099 (BCD year has two digits)")
    b = _TO_BCD
    return b[t.tm_year - 2000] + b[t.tm_mon] + b[t.tm_mday] + b[t.tm_hour] + b[t.tm_min] + b[t.tm_sec]


def _gbk(raw: bytes) -> str:
    # trailing 0x00 is padding; 'replace' because a broken byte in a model name must not fail a registration
    return raw.rstrip(b"\x00").decode("gbk", "replace")


def _enc_gbk(value: str, field: str) -> bytes:
    try:
        return value.encode("gbk")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{field}: {value!r} is not GBK-encodable") from exc


def _fixed(value: str, width: int, field: str) -> bytes:
    raw = _enc_gbk(value, field)
    if len(raw) > width:
        raise EncodeError(f"{field}: {value!r} is {len(raw)} bytes, field holds {width}")
    return raw.ljust(width, b"\x00")


def _check_u(value: int, bits: int, field: str) -> int:
    if not 0 <= value < 1 << bits:
        raise EncodeError(f"{field}={value} does not fit in u{bits}")
    return value


# -- location ------------------------------------------------------------------------------------------------

_LOC: Final = struct.Struct(">IIIIHHH6s")
LOCATION_BASE_LEN: Final = _LOC.size  # 28


def _decode_location(buf: bytes, start: int, end: int) -> Location:
    if end - start < 28:
        raise BodyError(f"location body needs 28 bytes, got {end - start}")
    alarm, status, lat_raw, lon_raw, alt, spd, course, tbcd = _LOC.unpack_from(buf, start)
    # spec: unsigned magnitude + hemisphere bit. A value with bit 31 set cannot be a magnitude (≤ 180e6), so
    # it is a vendor's two's-complement negative: read it signed and do not negate it again.
    if lat_raw & 0x80000000:
        lat = (lat_raw - 0x100000000) / 1e6
    elif status & 4:
        lat = -(lat_raw / 1e6)
    else:
        lat = lat_raw / 1e6
    if lon_raw & 0x80000000:
        lon = (lon_raw - 0x100000000) / 1e6
    elif status & 8:
        lon = -(lon_raw / 1e6)
    else:
        lon = lon_raw / 1e6
    # time: the date part repeats for a whole day, so it is cached; hh and mmss come from tables
    day = _DAY_MS.get(tbcd[:3])
    if day is None:
        day = _day_ms(tbcd)
    hour = _HOUR_MS[tbcd[3]]
    minsec = _MINSEC_MS.get(tbcd[4] << 8 | tbcd[5])
    ts = day + hour + minsec if day >= 0 and hour >= 0 and minsec is not None else None
    i = start + 28
    extras: dict[int, bytes] = {}
    seq: list[tuple[int, bytes]] | None = None
    while i + 1 < end:
        j = i + 2 + buf[i + 1]
        if j > end:
            break
        item = buf[i]
        if item in extras or seq is not None:
            if seq is None:
                seq = list(extras.items())
            seq.append((item, buf[i + 2 : j]))
            extras.setdefault(item, buf[i + 2 : j])
        else:
            extras[item] = buf[i + 2 : j]
        i = j
    return Location(
        alarm,
        status,
        lat,
        lon,
        alt,
        spd / 10,
        course,
        ts,
        b"" if ts is not None else tbcd,
        extras,
        None if seq is None else tuple(seq),
        buf[i:end] if i < end else b"",
    )


def decode_location(body: bytes) -> Location:
    """Decode a 0x0200 body (28 fixed bytes, then TLV extras)."""
    return _decode_location(body, 0, len(body))


def _encode_location(loc: Location) -> bytes:
    lat, lon = loc.lat, loc.lon
    lat_raw = round(abs(lat) * 1e6)
    lon_raw = round(abs(lon) * 1e6)
    if lat_raw > 0x7FFFFFFF or lon_raw > 0x7FFFFFFF:
        raise EncodeError("latitude/longitude magnitude does not fit the wire format")
    # the sign decides the hemisphere bit (copysign so that -0.0, "south, 0°", round-trips)
    status = loc.status & ~0xC
    if copysign(1.0, lat) < 0:
        status |= 4
    if copysign(1.0, lon) < 0:
        status |= 8
    if loc.ts_ms is not None:
        tbcd = ms_to_bcd_time(loc.ts_ms)
    else:  # no valid time: re-send the raw BCD as received, or zeros
        tbcd = loc.time_bcd or b"\x00" * 6
        if len(tbcd) != 6:
            raise EncodeError("time_bcd must be 6 bytes")
    try:
        head = _LOC.pack(
            loc.alarm,
            status,
            lat_raw,
            lon_raw,
            loc.altitude_m,
            round(loc.speed_kmh * 10),
            loc.course_deg,
            tbcd,
        )
    except struct.error as exc:
        raise EncodeError(f"location field out of range: {exc}") from exc
    parts = [head]
    items = loc.extras_seq if loc.extras_seq is not None else loc.extras.items()
    for item, value in items:
        if not 0 <= item <= 0xFF or len(value) > 0xFF:
            raise EncodeError(f"extra item 0x{item:02X}: id must be u8 and value ≤ 255 bytes")
        parts.append(bytes((item, len(value))))
        parts.append(value)
    parts.append(loc.extras_tail)
    return b"".join(parts)


# -- extras --------------------------------------------------------------------------------------------------


def _u_be(v: bytes) -> int:
    return int.from_bytes(v, "big")


def _extra_11(v: bytes) -> Any:
    if len(v) == 1:
        return {"position_type": v[0]}
    if len(v) == 5:
        return {"position_type": v[0], "area_id": _u_be(v[1:5])}
    return v.hex()


def _extra_2b(v: bytes) -> Any:
    x = _u_be(v)
    return {"ad0": x & 0xFFFF, "ad1": x >> 16}


#: standard items: id → (expected length, decoder). A different length means a vendor reuse: kept raw.
_EXTRAS: Final[dict[int, tuple[int | None, Callable[[bytes], Any]]]] = {
    0x01: (4, lambda v: _u_be(v) / 10),  # mileage, km
    0x02: (2, lambda v: _u_be(v) / 10),  # fuel, L
    0x03: (2, lambda v: _u_be(v) / 10),  # recorder (tachograph) speed, km/h
    0x04: (2, _u_be),  # id of an alarm event needing manual confirmation
    0x11: (None, _extra_11),  # overspeed: position type [+ area/route id]
    0x12: (6, lambda v: {"position_type": v[0], "area_id": _u_be(v[1:5]), "direction": v[5]}),
    0x13: (7, lambda v: {"route_id": _u_be(v[0:4]), "time_s": _u_be(v[4:6]), "result": v[6]}),
    0x14: (4, _u_be),  # JT/T 1078 video alarm word
    0x15: (4, _u_be),  # video signal loss channels
    0x16: (4, _u_be),  # video blocked channels
    0x17: (2, _u_be),  # storage fault
    0x18: (2, _u_be),  # abnormal driving behaviour
    0x25: (4, _u_be),  # extended vehicle signal status
    0x2A: (2, _u_be),  # IO status
    0x2B: (4, _extra_2b),  # analog AD0 (low 16) / AD1 (high 16)
    0x30: (1, _u_be),  # wireless signal strength
    0x31: (1, _u_be),  # GNSS satellites
}


def decode_extra(item: int, value: bytes) -> Any:
    """Decode one TLV item: standard items with their standard length get their meaning (mileage and fuel as
    floats in km / L, speeds in km/h, 0x2B as ``{"ad0", "ad1"}``, words as ints); anything else is hex."""
    spec = _EXTRAS.get(item)
    if spec is not None:
        size, fn = spec
        if size is None or len(value) == size:
            return fn(value)
    return value.hex()


# -- other bodies --------------------------------------------------------------------------------------------

_REPLY: Final = struct.Struct(">HHB")
_REG_HEAD: Final = struct.Struct(">HH")
_REG_LAYOUTS: Final = {VERSION_2019: (11, 30, 30), VERSION_2013: (5, 20, 7), 2011: (5, 8, 7)}
_U16: Final = struct.Struct(">H")


def _decode_general(body: bytes, cls: type[TerminalGeneralReply] | type[PlatformGeneralReply]) -> Any:
    if len(body) < 5:
        raise BodyError(f"general reply needs 5 bytes, got {len(body)}")
    serial, msg_id, result = _REPLY.unpack_from(body, 0)
    return cls(serial, msg_id, result)


def _decode_register(body: bytes, version: int) -> Register:
    n = len(body)
    if version == VERSION_2019:
        layout = VERSION_2019
    elif n >= 37:
        layout = VERSION_2013
    else:
        layout = 2011
    m, mo, t = _REG_LAYOUTS[layout]
    fixed = 4 + m + mo + t + 1
    if n < fixed:
        raise BodyError(f"{layout} register body needs {fixed} bytes, got {n}")
    province, city = _REG_HEAD.unpack_from(body, 0)
    i = 4
    maker = _gbk(body[i : i + m])
    i += m
    model = _gbk(body[i : i + mo])
    i += mo
    term = _gbk(body[i : i + t])
    i += t
    color = body[i]
    plate = _gbk(body[i + 1 :])
    return Register(province, city, maker, model, term, color, plate, layout)


def _encode_register(r: Register, version: int) -> bytes:
    # a 2019 header always carries the 2019 body; a 2013 header carries a 2011 or 2013 body
    layout = VERSION_2019 if version == VERSION_2019 else (2011 if r.layout == 2011 else VERSION_2013)
    m, mo, t = _REG_LAYOUTS[layout]
    return (
        _REG_HEAD.pack(_check_u(r.province, 16, "province"), _check_u(r.city, 16, "city"))
        + _fixed(r.maker_id, m, "maker_id")
        + _fixed(r.model, mo, "model")
        + _fixed(r.terminal_id, t, "terminal_id")
        + bytes((_check_u(r.plate_color, 8, "plate_color"),))
        + _enc_gbk(r.plate, "plate")
    )


def _decode_register_reply(body: bytes) -> RegisterReply:
    if len(body) < 3:
        raise BodyError(f"register reply needs 3 bytes, got {len(body)}")
    serial = _U16.unpack_from(body, 0)[0]
    result = body[2]
    return RegisterReply(serial, result, _gbk(body[3:]) if result == 0 else None)


def _decode_authenticate(body: bytes, version: int) -> Authenticate:
    if version != VERSION_2019:
        return Authenticate(_gbk(body))
    if not body:
        raise BodyError("2019 authenticate body is empty")
    n = body[0]
    if len(body) < 1 + n + 35:
        raise BodyError(f"2019 authenticate needs {1 + n + 35} bytes (code {n} + IMEI 15 + version 20)")
    code = _gbk(body[1 : 1 + n])
    imei = _gbk(body[1 + n : 16 + n])
    sw = _gbk(body[16 + n : 36 + n])
    return Authenticate(code, imei, sw)


def _encode_authenticate(a: Authenticate, version: int) -> bytes:
    code = _enc_gbk(a.auth_code, "auth_code")
    if version != VERSION_2019:
        return code
    if len(code) > 255:
        raise EncodeError("auth code longer than 255 bytes")
    imei = _fixed(a.imei or "", 15, "imei")
    software = _fixed(a.software_version or "", 20, "software_version")
    return bytes((len(code),)) + code + imei + software


def _decode_batch(body: bytes) -> LocationBatch:
    n = len(body)
    if n < 3:
        raise BodyError(f"location batch needs 3 bytes, got {n}")
    count = _U16.unpack_from(body, 0)[0]
    btype = body[2]
    items: list[Location] = []
    errors: list[str] = []
    i = 3
    for k in range(count):
        if i + 2 > n:
            errors.append(f"item {k}: missing (body ends)")
            break
        ln = (body[i] << 8) | body[i + 1]
        j = i + 2 + ln
        if j > n:
            errors.append(f"item {k}: declares {ln} bytes, {n - i - 2} left")
            break
        try:
            items.append(_decode_location(body, i + 2, j))
        except BodyError as exc:
            errors.append(f"item {k}: {exc}")
        i = j
    if i < n and not errors:
        errors.append(f"{n - i} trailing bytes after {count} items")
    return LocationBatch(btype, items, count, tuple(errors))


def _encode_batch(b: LocationBatch) -> bytes:
    parts = [_U16.pack(_check_u(len(b.items), 16, "item count")), bytes((_check_u(b.type, 8, "type"),))]
    for loc in b.items:
        raw = _encode_location(loc)
        parts.append(_U16.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _decode_retransmit(body: bytes, version: int) -> RetransmitRequest:
    wide = version == VERSION_2019
    need = 4 if wide else 3
    if len(body) < need:
        raise BodyError(f"retransmit request needs {need} bytes, got {len(body)}")
    serial = _U16.unpack_from(body, 0)[0]
    count = _U16.unpack_from(body, 2)[0] if wide else body[2]
    if len(body) < need + 2 * count:
        raise BodyError(f"retransmit request declares {count} ids, body has {(len(body) - need) // 2}")
    ids = list(struct.unpack_from(f">{count}H", body, need))
    return RetransmitRequest(serial, ids)


def _encode_retransmit(r: RetransmitRequest, version: int) -> bytes:
    wide = version == VERSION_2019
    count = len(r.indexes)
    _check_u(count, 16 if wide else 8, "retransmit count")
    head = _U16.pack(_check_u(r.original_serial, 16, "original_serial"))
    head += _U16.pack(count) if wide else bytes((count,))
    try:
        return head + struct.pack(f">{count}H", *r.indexes)
    except struct.error as exc:
        raise EncodeError(f"retransmit index out of range: {exc}") from exc


def _decode_query_reply(body: bytes) -> LocationQueryReply:
    if len(body) < 2:
        raise BodyError("location query reply needs 2 bytes")
    return LocationQueryReply(_U16.unpack_from(body, 0)[0], _decode_location(body, 2, len(body)))


# -- dispatch ------------------------------------------------------------------------------------------------

_DECODERS: Final[dict[int, Callable[[bytes, int], Body]]] = {
    MSG_TERMINAL_REPLY: lambda b, v: _decode_general(b, TerminalGeneralReply),
    MSG_PLATFORM_REPLY: lambda b, v: _decode_general(b, PlatformGeneralReply),
    MSG_HEARTBEAT: lambda b, v: Heartbeat(),
    MSG_LOGOUT: lambda b, v: Logout(),
    MSG_REGISTER: _decode_register,
    MSG_REGISTER_REPLY: lambda b, v: _decode_register_reply(b),
    MSG_AUTHENTICATE: _decode_authenticate,
    MSG_LOCATION: lambda b, v: _decode_location(b, 0, len(b)),
    MSG_LOCATION_QUERY_REPLY: lambda b, v: _decode_query_reply(b),
    MSG_LOCATION_BATCH: lambda b, v: _decode_batch(b),
    MSG_RETRANSMIT: _decode_retransmit,
}

SUPPORTED_MSG_IDS: Final = frozenset(_DECODERS)


def decode_body(header: Header, body: bytes) -> Body:
    """Decode `body` by ``header.msg_id`` and ``header.version``; unknown ids give `RawBody`.

    Raises only `BodyError`. An encrypted body (RSA, props bits 10-12) cannot be read here: `RawBody`."""
    fn = _DECODERS.get(header.msg_id)
    if fn is None or header.encryption:
        return RawBody(body)
    try:
        return fn(body, header.version)
    except JT808Error:
        raise
    except (IndexError, struct.error, ValueError) as exc:  # defence in depth: never leak other types
        raise BodyError(f"0x{header.msg_id:04X}: {exc}") from exc


def decode_frame(frame: Frame) -> Message:
    """`Frame` → `Message` (typed body). A subpackaged frame must go through `Reassembler` first: its body
    is only a slice of the message, so it decodes to `RawBody` here."""
    h = frame.header
    if h.subpackage:
        body: Body = RawBody(frame.body)
    elif h.msg_id == MSG_LOCATION and not h.encryption:  # the hot path, without the dispatch
        b = frame.body
        body = _decode_location(b, 0, len(b))
    else:
        body = decode_body(h, frame.body)
    return Message(h, body, frame.checksum_ok, frame.length_ok)


def encode_body(body: Body, version: int = VERSION_2013) -> bytes:
    """Serialize a body struct (unescaped)."""
    try:
        if isinstance(body, Location):
            return _encode_location(body)
        if isinstance(body, LocationBatch):
            return _encode_batch(body)
        if isinstance(body, TerminalGeneralReply | PlatformGeneralReply):
            return _REPLY.pack(body.reply_serial, body.reply_msg_id, body.result)
        if isinstance(body, Heartbeat | Logout):
            return b""
        if isinstance(body, Register):
            return _encode_register(body, version)
        if isinstance(body, RegisterReply):
            out = _U16.pack(body.reply_serial) + bytes((_check_u(body.result, 8, "result"),))
            if body.result == 0:
                out += _enc_gbk(body.auth_code or "", "auth_code")
            return out
        if isinstance(body, Authenticate):
            return _encode_authenticate(body, version)
        if isinstance(body, LocationQueryReply):
            return _U16.pack(body.reply_serial) + _encode_location(body.location)
        if isinstance(body, RetransmitRequest):
            return _encode_retransmit(body, version)
        if isinstance(body, RawBody):
            return body.data
    except struct.error as exc:
        raise EncodeError(f"{type(body).__name__}: field out of range: {exc}") from exc
    raise EncodeError(f"cannot encode {type(body).__name__}")


def _msg_id_of(body: Body, msg_id: int | None) -> int:
    mid = body.MSG_ID if msg_id is None else msg_id
    if mid < 0:
        raise EncodeError(f"{type(body).__name__} needs an explicit msg_id")
    return mid


def encode_message(
    body: Body,
    *,
    phone: str,
    serial: int,
    version: int = VERSION_2013,
    protocol_version: int = 1,
    msg_id: int | None = None,
) -> bytes:
    """Build a complete wire frame (delimited, escaped, with checksum) for `body`.

    `msg_id` is needed only for `RawBody`. A body longer than 1023 bytes raises `EncodeError`: use
    `encode_subpackages`."""
    mid = _msg_id_of(body, msg_id)
    raw = encode_body(body, version)
    header = make_header(mid, phone=phone, serial=serial, version=version, protocol_version=protocol_version)
    return build_frame(header, raw)


def encode_reply(to: Header, body: Body, *, serial: int) -> bytes:
    """A platform message to the terminal that sent `to`: same phone, same header layout (2013/2019 and
    protocol version), own `serial`. E.g. ``encode_reply(h, PlatformGeneralReply(h.serial, h.msg_id, 0),
    serial=next_serial)``."""
    return encode_message(
        body,
        phone=to.phone,
        serial=serial,
        version=to.version,
        protocol_version=to.protocol_version if to.protocol_version is not None else 1,
    )


def encode_subpackages(
    body: Body | bytes,
    *,
    phone: str,
    first_serial: int,
    version: int = VERSION_2013,
    protocol_version: int = 1,
    msg_id: int | None = None,
    max_chunk: int = MAX_BODY_LEN,
) -> list[bytes]:
    """Split a (long) message body into subpackage frames with consecutive serials starting at
    `first_serial` (wrapping at 65536) and 1-based package indexes, as terminals do for large uploads."""
    if isinstance(body, bytes):
        if msg_id is None:
            raise EncodeError("raw bytes need msg_id")
        raw, mid = body, msg_id
    else:
        mid = _msg_id_of(body, msg_id)
        raw = encode_body(body, version)
    if not 1 <= max_chunk <= MAX_BODY_LEN:
        raise EncodeError("max_chunk must be 1..1023")
    chunks = [raw[i : i + max_chunk] for i in range(0, len(raw), max_chunk)] or [b""]
    total = len(chunks)
    if total > 0xFFFF:
        raise EncodeError("too many subpackages")
    frames = []
    for k, chunk in enumerate(chunks):
        header = make_header(
            mid,
            phone=phone,
            serial=(first_serial + k) & 0xFFFF,
            version=version,
            protocol_version=protocol_version,
            pkg_total=total,
            pkg_index=k + 1,
        )
        frames.append(build_frame(header, chunk))
    return frames
