"""JT/T 808 message header: parse and build, for the 2011, 2013 and 2019 layouts.

Layout (all integers big-endian)::

    2011/2013: msg_id u16 | props u16 | phone BCD[6]  | serial u16 | [pkg_total u16 | pkg_index u16]
    2019:      msg_id u16 | props u16 | version u8 | phone BCD[10] | serial u16 | [pkg_total | pkg_index]

    props: bits 0-9 body length, 10-12 encryption (bit 10 = RSA), 13 subpackage, 14 2019-version flag,
           15 reserved

2011 and 2013 share the header layout (they differ only in some bodies, e.g. the 0x0100 register), so
`Header.version` is 2013 for both; body decoders that care look at the body length.

Why the length sanity check: some terminals set the 2019 flag (bit 14) but send a 2013 header (6-byte phone,
no version byte). Trusting bit 14 would shift every field by five bytes and turn the phone number into
garbage. So when bit 14 is set we pick the layout under which ``header + body length == frame length``;
only when neither layout fits do we trust the flag (and report ``length_ok = False`` on the frame).

The phone is kept as the BCD digits exactly as sent (12 digits for 2013, 20 for 2019, leading zeros kept,
non-decimal nibbles shown as hex letters: some vendors pack an IMEI there). `normalize_phone` strips the
padding so a terminal that switches protocol versions keeps one identity.
"""

from __future__ import annotations

import struct

import msgspec

from ingest.jt808.errors import EncodeError, HeaderError

__all__ = [
    "HEADER_LEN_2013",
    "HEADER_LEN_2019",
    "MAX_BODY_LEN",
    "VERSION_2013",
    "VERSION_2019",
    "Header",
    "encode_header",
    "encode_phone",
    "make_header",
    "normalize_phone",
    "parse_header",
]

VERSION_2013 = 2013
VERSION_2019 = 2019
HEADER_LEN_2013 = 12
HEADER_LEN_2019 = 17
SUBPACKAGE_LEN = 4
MAX_BODY_LEN = 0x3FF  # 10 bits of the properties word

_BIT_SUB = 1 << 13
_BIT_VER = 1 << 14

_H2013 = struct.Struct(">HH6sH")
_H2019 = struct.Struct(">HHB10sH")
_PKG = struct.Struct(">HH")


class Header(msgspec.Struct, frozen=True, gc=False):
    """A parsed message header.

    `version` is the layout actually used (2013 for 2011/2013 frames, 2019); `version_flag` is bit 14 as the
    terminal sent it, which differs from ``version == 2019`` for mis-flagged terminals. Replies should use
    the same `version` (and `protocol_version`) so the terminal can parse them.
    """

    msg_id: int
    body_len: int
    encryption: int
    subpackage: bool
    version_flag: bool
    version: int
    protocol_version: int | None
    phone: str
    serial: int
    pkg_total: int | None = None
    pkg_index: int | None = None
    reserved: int = 0  # props bit 15; kept so a header re-encodes byte for byte

    @property
    def props(self) -> int:
        """The properties word as it would be written."""
        return (
            (self.body_len & MAX_BODY_LEN)
            | (self.encryption & 7) << 10
            | (_BIT_SUB if self.subpackage else 0)
            | (_BIT_VER if self.version_flag else 0)
            | (self.reserved & 1) << 15
        )

    @property
    def header_len(self) -> int:
        """Bytes this header occupies on the wire (unescaped)."""
        base = HEADER_LEN_2019 if self.version == VERSION_2019 else HEADER_LEN_2013
        return base + (SUBPACKAGE_LEN if self.subpackage else 0)


def parse_header(data: bytes, frame_len: int | None = None) -> tuple[Header, int]:
    """Parse the header at the start of `data` (unescaped). Returns ``(header, header_len)``.

    `frame_len` is the length of header + body (without the checksum). When given, it decides the layout of
    a frame with bit 14 set (see the module docstring); when None (a bare header) bit 14 is trusted.
    Raises `HeaderError` when `data` is too short for the layout.
    """
    n = len(data)
    if n < HEADER_LEN_2013:
        raise HeaderError(f"header needs at least {HEADER_LEN_2013} bytes, got {n}")
    msg_id, props, phone, serial = _H2013.unpack_from(data, 0)
    if not props & 0x6000:  # plain 2011/2013 header, no subpackage: the common case, one unpack
        return (
            Header(
                msg_id, props & 0x3FF, (props >> 10) & 7, False, False, VERSION_2013, None, phone.hex(),
                serial, None, None, props >> 15,
            ),
            HEADER_LEN_2013,
        )
    body_len = props & MAX_BODY_LEN
    sub = bool(props & _BIT_SUB)
    extra = SUBPACKAGE_LEN if sub else 0
    use_2019 = False
    if props & _BIT_VER:
        use_2019 = True
        if frame_len is not None and frame_len != HEADER_LEN_2019 + extra + body_len:
            # mis-flagged 2013 terminal? Only if the 2013 layout makes the lengths add up.
            if frame_len == HEADER_LEN_2013 + extra + body_len:
                use_2019 = False
    if use_2019:
        hlen = HEADER_LEN_2019 + extra
        if n < hlen:
            raise HeaderError(f"2019 header needs {hlen} bytes, got {n}")
        _, _, pver, phone, serial = _H2019.unpack_from(data, 0)
        version = VERSION_2019
        off = HEADER_LEN_2019
    else:
        hlen = HEADER_LEN_2013 + extra
        if n < hlen:
            raise HeaderError(f"2013 header needs {hlen} bytes, got {n}")
        _, _, phone, serial = _H2013.unpack_from(data, 0)
        pver = None
        version = VERSION_2013
        off = HEADER_LEN_2013
    if sub:
        total, index = _PKG.unpack_from(data, off)
    else:
        total = index = None
    header = Header(
        msg_id,
        body_len,
        (props >> 10) & 7,
        sub,
        bool(props & _BIT_VER),
        version,
        pver,
        phone.hex(),
        serial,
        total,
        index,
        props >> 15,
    )
    return header, hlen


def encode_phone(phone: str, version: int = VERSION_2013) -> bytes:
    """Phone digits → BCD[6] (2013) or BCD[10] (2019), left-padded with zeros.

    Hex letters are accepted so a phone decoded from a vendor that packs an IMEI there round-trips.
    """
    width = 20 if version == VERSION_2019 else 12
    if len(phone) > width:
        raise EncodeError(f"phone {phone!r} longer than {width} digits")
    try:
        return bytes.fromhex(phone.rjust(width, "0"))
    except ValueError as exc:
        raise EncodeError(f"phone {phone!r} is not BCD digits") from exc


def normalize_phone(phone: str) -> str:
    """The phone without BCD left padding ("013812345678" and "00000000013812345678" → "13812345678")."""
    return phone.lstrip("0") or "0"


def make_header(
    msg_id: int,
    *,
    phone: str,
    serial: int,
    body_len: int = 0,
    version: int = VERSION_2013,
    protocol_version: int = 1,
    encryption: int = 0,
    pkg_total: int | None = None,
    pkg_index: int | None = None,
) -> Header:
    """Build a header for encoding (2019 gets bit 14 and a version byte, 2013 neither)."""
    is_2019 = version == VERSION_2019
    return Header(
        msg_id,
        body_len,
        encryption,
        pkg_total is not None,
        is_2019,
        VERSION_2019 if is_2019 else VERSION_2013,
        protocol_version if is_2019 else None,
        phone,
        serial,
        pkg_total,
        pkg_index,
    )


def encode_header(header: Header, body_len: int | None = None) -> bytes:
    """Serialize `header` (unescaped). `body_len` overrides ``header.body_len`` (the usual case when
    encoding: the body decides its own length). The layout follows ``header.version``; the flag bit follows
    ``header.version_flag`` so a mis-flagged terminal's header re-encodes byte for byte."""
    blen = header.body_len if body_len is None else body_len
    if not 0 <= blen <= MAX_BODY_LEN:
        raise EncodeError(f"body length {blen} does not fit in 10 bits (use subpackages)")
    if not 0 <= header.msg_id <= 0xFFFF or not 0 <= header.serial <= 0xFFFF:
        raise EncodeError("msg_id and serial must be u16")
    props = (
        blen
        | (header.encryption & 7) << 10
        | (_BIT_SUB if header.subpackage else 0)
        | (_BIT_VER if header.version_flag else 0)
        | (header.reserved & 1) << 15
    )
    if header.version == VERSION_2019:
        pver = header.protocol_version if header.protocol_version is not None else 1
        if not 0 <= pver <= 0xFF:
            raise EncodeError("protocol_version must be u8")
        out = _H2019.pack(header.msg_id, props, pver, encode_phone(header.phone, VERSION_2019), header.serial)
    else:
        out = _H2013.pack(header.msg_id, props, encode_phone(header.phone, VERSION_2013), header.serial)
    if header.subpackage:
        total, index = header.pkg_total or 0, header.pkg_index or 0
        if not (0 <= total <= 0xFFFF and 0 <= index <= 0xFFFF):
            raise EncodeError("pkg_total/pkg_index must be u16")
        out += _PKG.pack(total, index)
    return out
