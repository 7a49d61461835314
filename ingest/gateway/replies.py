"""Platform → terminal messages, in the terminal's own header layout, with the connection's own serials.

0x8001 is sent for nearly every frame a terminal sends, so it has a fast path: the header up to the serial
is the same for every reply to one terminal (message id, properties with body length 5, [version byte],
BCD phone), so it is encoded once per connection and each reply is ``prefix | serial | body`` plus checksum
and escaping — no header struct per reply. Anything else goes through the codec's `encode_reply`.
"""

from __future__ import annotations

import struct

from ingest.jt808.errors import EncodeError
from ingest.jt808.framing import checksum, escape
from ingest.jt808.header import Header, encode_header, make_header
from ingest.jt808.messages import MSG_PLATFORM_REPLY, Body, encode_reply

__all__ = ["ReplyEncoder"]

_GENERAL = struct.Struct(">HHHB")  # own serial | reply serial | reply msg id | result


class ReplyEncoder:
    """Encodes replies to one terminal. `serial` counts the platform messages sent on this connection."""

    __slots__ = ("_key", "_prefix", "header", "serial")

    def __init__(self) -> None:
        self.serial = 0
        self.header: Header | None = None
        self._key: tuple[str, int, int | None] | None = None
        self._prefix = b""

    def _next(self) -> int:
        self.serial = s = (self.serial + 1) & 0xFFFF
        return s

    def _layout(self, to: Header) -> bytes | None:
        key = (to.phone, to.version, to.protocol_version)
        if key != self._key:
            try:
                tmpl = make_header(MSG_PLATFORM_REPLY, phone=to.phone, serial=0, version=to.version,
                                   protocol_version=to.protocol_version if to.protocol_version is not None else 1)
                self._prefix = encode_header(tmpl, 5)[:-2]
            except EncodeError:
                return None
            self._key = key
            self.header = to
        return self._prefix

    def general(self, to: Header, reply_serial: int, reply_msg_id: int, result: int) -> bytes | None:
        """0x8001 answering (reply_serial, reply_msg_id); None when the header cannot be answered."""
        prefix = self._layout(to)
        if prefix is None:
            return None
        payload = prefix + _GENERAL.pack(self._next(), reply_serial & 0xFFFF, reply_msg_id & 0xFFFF, result)
        return b"\x7e" + escape(payload + bytes((checksum(payload),))) + b"\x7e"

    def message(self, to: Header, body: Body) -> bytes | None:
        """Any platform message (0x8100, 0x8003, …) to the terminal that sent `to`."""
        try:
            return encode_reply(to, body, serial=self._next())
        except EncodeError:
            return None
