"""One simulated JT/T 808 terminal over a real TCP connection.

Frames are built with the codec's framing (`build_frame`) and a fast location-body packer here (the
simulator must produce fixes faster than the gateway accepts them, so no `Location` struct per fix).
Every frame sent is remembered by serial until its 0x8001 arrives; what was acknowledged OK is recorded
(`acked_fixes`) so tests can check that every acknowledged fix reached PostgreSQL.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

from ingest.jt808.framing import Frame, FrameDecoder, build_frame
from ingest.jt808.header import VERSION_2013, make_header
from ingest.jt808.messages import (
    MSG_LOCATION,
    MSG_LOCATION_BATCH,
    MSG_PLATFORM_REPLY,
    MSG_REGISTER_REPLY,
    MSG_RETRANSMIT,
    Authenticate,
    Heartbeat,
    Register,
    decode_body,
    encode_body,
    ms_to_bcd_time,
)

__all__ = ["SimTerminal", "location_body"]

_LOC = struct.Struct(">IIIIHHH")
_GMT8_S = 8 * 3600
_BCD = [bytes(((v // 10) << 4 | v % 10,)) for v in range(100)]
_U16 = struct.Struct(">H")


def location_body(lat: float, lon: float, ts_ms: int, *, speed_kmh: float = 30.0, course: int = 90,
                  status: int = 0x0002, alarm: int = 0, extras: bytes = b"") -> bytes:
    """A 0x0200 body (WGS-84 degrees; hemisphere bits from the signs; time as BCD GMT+8)."""
    if lat < 0:
        status |= 4
    if lon < 0:
        status |= 8
    t = time.gmtime(ts_ms // 1000 + _GMT8_S)
    b = _BCD
    tb = b[t.tm_year - 2000] + b[t.tm_mon] + b[t.tm_mday] + b[t.tm_hour] + b[t.tm_min] + b[t.tm_sec]
    return _LOC.pack(alarm, status, round(abs(lat) * 1e6), round(abs(lon) * 1e6), 10, round(speed_kmh * 10),
                     course) + tb + extras


def batch_body(bodies: list[bytes], backfill: bool = True) -> bytes:
    """A 0x0704 body: count, type (1 = back-fill), length-prefixed location bodies."""
    parts = [_U16.pack(len(bodies)), b"\x01" if backfill else b"\x00"]
    for b in bodies:
        parts.append(_U16.pack(len(b)))
        parts.append(b)
    return b"".join(parts)


@dataclass
class Sent:
    msg_id: int
    at: float
    fixes: tuple[int, ...]  # ts_ms of the fixes the frame carries


@dataclass
class TerminalStats:
    frames_sent: int = 0
    fixes_sent: int = 0
    frames_ok: int = 0
    fixes_ok: int = 0
    frames_bad: int = 0
    frames_fail: int = 0
    other_results: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class SimTerminal(asyncio.Protocol):
    """A terminal. Use `connect`, `register`, `authenticate`, then `send_location` / `send_backfill`."""

    def __init__(self, phone: str, plate: str = "", *, version: int = VERSION_2013, record_acked: bool = False,
                 sample_latency_every: int = 1) -> None:
        self.phone = phone
        self.plate = plate
        self.version = version
        self.serial = 0
        self.dec = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.sent: dict[int, Sent] = {}
        self.replies: list[tuple[int, int, int]] = []  # (serial, msg_id, result) of every 0x8001
        self.register_replies: list[tuple[int, str | None]] = []
        self.retransmit_requests: list[tuple[int, list[int]]] = []
        self.frames_by_serial: dict[int, bytes] = {}  # subpackages kept to answer 0x8003
        self.stats = TerminalStats()
        self.record_acked = record_acked
        self.acked_fixes: list[int] = []
        self.sample_every = sample_latency_every
        self.closed = asyncio.Event()
        self._waiters: dict[int, asyncio.Future[int]] = {}
        self._reg_waiter: asyncio.Future[tuple[int, str | None]] | None = None
        self.auth_code: str | None = None

    # -- connection -----------------------------------------------------------------------------------------
    async def connect(self, host: str, port: int) -> SimTerminal:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, host, port)
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        for f in self._waiters.values():
            if not f.done():
                f.set_exception(ConnectionError("connection closed"))
        if self._reg_waiter is not None and not self._reg_waiter.done():
            self._reg_waiter.set_exception(ConnectionError("connection closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def pending(self) -> int:
        return len(self.sent)

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial

    def frame(self, msg_id: int, body: bytes, serial: int | None = None) -> tuple[int, bytes]:
        s = self.next_serial() if serial is None else serial
        h = make_header(msg_id, phone=self.phone, serial=s, version=self.version)
        return s, build_frame(h, body)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    # -- messages -------------------------------------------------------------------------------------------
    async def register(self, timeout: float = 30) -> tuple[int, str | None]:
        """0x0100 → (0x8100 result, auth code)."""
        body = encode_body(Register(44, 300, "FWSIM", "SIM-1", self.phone[-7:], 1 if self.plate else 0,
                                    self.plate or "VIN" + self.phone), self.version)
        self._reg_waiter = asyncio.get_running_loop().create_future()
        _, data = self.frame(0x0100, body)
        self.write(data)
        result, code = await asyncio.wait_for(self._reg_waiter, timeout)
        if result == 0:
            self.auth_code = code
        return result, code

    async def request(self, msg_id: int, body: bytes, timeout: float = 30) -> int:
        """Send one frame and wait for its 0x8001 result."""
        if self.closed.is_set():
            raise ConnectionError(f"{self.phone}: connection closed")
        s, data = self.frame(msg_id, body)
        fut = asyncio.get_running_loop().create_future()
        self._waiters[s] = fut
        self.write(data)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.pop(s, None)

    async def authenticate(self, code: str | None = None, timeout: float = 30) -> int:
        return await self.request(0x0102, encode_body(Authenticate(code if code is not None else
                                                                   self.auth_code or ""), self.version), timeout)

    async def heartbeat(self, timeout: float = 30) -> int:
        return await self.request(0x0002, encode_body(Heartbeat(), self.version), timeout)

    def send_location(self, body: bytes, ts_ms: int) -> int:
        """Send a 0x0200 without waiting; its ack is matched in `data_received`."""
        s, data = self.frame(MSG_LOCATION, body)
        self.sent[s] = Sent(MSG_LOCATION, time.monotonic(), (ts_ms,))
        self.stats.frames_sent += 1
        self.stats.fixes_sent += 1
        self.write(data)
        return s

    def send_batch(self, bodies: list[bytes], ts_list: list[int], backfill: bool = True) -> int:
        s, data = self.frame(MSG_LOCATION_BATCH, batch_body(bodies, backfill))
        self.sent[s] = Sent(MSG_LOCATION_BATCH, time.monotonic(), tuple(ts_list))
        self.stats.frames_sent += 1
        self.stats.fixes_sent += len(bodies)
        self.write(data)
        return s

    async def wait_acked(self, timeout: float = 30) -> None:
        """Until every frame sent has been answered."""
        deadline = time.monotonic() + timeout
        while self.sent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.sent)} frames of {self.phone} not answered")
            if self.closed.is_set():
                raise ConnectionError(f"{self.phone}: connection closed with {len(self.sent)} unanswered")
            await asyncio.sleep(0.01)

    # -- input ----------------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        for item in self.dec.feed(data):
            if not isinstance(item, Frame):
                continue
            h = item.header
            if h.msg_id == MSG_PLATFORM_REPLY:
                try:
                    r = decode_body(h, item.body)
                except ValueError:
                    continue
                self._on_reply(r.reply_serial, r.reply_msg_id, r.result)  # type: ignore[attr-defined]
            elif h.msg_id == MSG_REGISTER_REPLY:
                r = decode_body(h, item.body)
                self.register_replies.append((r.result, r.auth_code))  # type: ignore[attr-defined]
                if self._reg_waiter is not None and not self._reg_waiter.done():
                    self._reg_waiter.set_result((r.result, r.auth_code))  # type: ignore[attr-defined]
            elif h.msg_id == MSG_RETRANSMIT:
                r = decode_body(h, item.body)
                self.retransmit_requests.append((r.original_serial, list(r.indexes)))  # type: ignore[attr-defined]
                self._on_retransmit(r.original_serial, list(r.indexes))  # type: ignore[attr-defined]

    def _on_reply(self, serial: int, msg_id: int, result: int) -> None:
        self.replies.append((serial, msg_id, result))
        fut = self._waiters.get(serial)
        if fut is not None and not fut.done():
            fut.set_result(result)
        sent = self.sent.pop(serial, None)
        if sent is None:
            return
        st = self.stats
        if result == 0:
            st.frames_ok += 1
            st.fixes_ok += len(sent.fixes)
            if self.record_acked:
                self.acked_fixes.extend(sent.fixes)
            if st.frames_ok % self.sample_every == 0:
                st.latencies_ms.append((time.monotonic() - sent.at) * 1000)
        elif result == 2:
            st.frames_bad += 1
        elif result == 1:
            st.frames_fail += 1
        else:
            st.other_results += 1

    def _on_retransmit(self, first_serial: int, indexes: list[int]) -> None:
        for i in indexes:
            data = self.frames_by_serial.get((first_serial + i - 1) & 0xFFFF)
            if data is not None:
                self.write(data)

    def send_subpackaged(self, msg_id: int, body: bytes, max_chunk: int, skip: tuple[int, ...] = (),
                         ts_list: tuple[int, ...] = ()) -> list[int]:
        """Send a long body as subpackages (indexes in `skip` are "lost" until a 0x8003 asks for them).
        The whole message is tracked under the last package's serial."""
        chunks = [body[i:i + max_chunk] for i in range(0, len(body), max_chunk)]
        first = (self.serial + 1) & 0xFFFF
        serials = []
        for k, chunk in enumerate(chunks):
            s = self.next_serial()
            h = make_header(msg_id, phone=self.phone, serial=s, version=self.version, pkg_total=len(chunks),
                            pkg_index=k + 1)
            data = build_frame(h, chunk)
            self.frames_by_serial[s] = data
            serials.append(s)
            if k + 1 not in skip:
                self.write(data)
        for s in serials:
            self.sent[s] = Sent(msg_id, time.monotonic(), ts_list if s == serials[-1] else ())
        self.stats.frames_sent += len(serials)
        self.stats.fixes_sent += len(ts_list)
        assert first == serials[0]
        return serials


def bcd(ts_ms: int) -> bytes:
    """Re-exported for tests: BCD time as the codec writes it."""
    return ms_to_bcd_time(ts_ms)
