"""One terminal's TCP connection: framing, the session state machine, and what each message gets back.

Session: a connection starts unauthenticated. 0x0100 register → 0x8100 (refused for an unknown terminal,
else with the stored auth code); 0x0102 with the right code → authenticated and bound to the terminal's
vehicle and sensor profile. Only then are positions (0x0200, 0x0704, also when subpackaged) accepted; before,
they are answered 0x8001 result 1 "fail" and dropped. A frame whose header names another phone than the
authenticated one is refused the same way (one socket cannot report for another vehicle).

Replies: positions are handed to the gateway's open batch and answered after the batch is in Redis
(`publisher`); everything else is answered at once. A frame with a bad checksum is answered result 2
"bad message" (its header parsed, so the terminal can match the reply); other faults (bad escape, too
short, oversize) have no header to answer and are counted and logged. A connection that sends more faults
than good frames beyond `max_faults` is closed — it only costs the gateway CPU.

Nothing here raises into asyncio: every codec error is a `JT808Error`, answered or counted; any other
exception (a bug) is logged and closes only this connection, never the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ingest.jt808.errors import JT808Error, ReassemblyError
from ingest.jt808.framing import Frame, FrameDecoder, FrameFault
from ingest.jt808.header import Header, normalize_phone
from ingest.jt808.messages import (
    MSG_AUTHENTICATE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_LOCATION_BATCH,
    MSG_LOCATION_QUERY_REPLY,
    MSG_LOGOUT,
    MSG_REGISTER,
    MSG_TERMINAL_REPLY,
    Authenticate,
    GeneralResult,
    Register,
    RetransmitRequest,
    decode_body,
)
from ingest.jt808.profiles import SensorProfile
from ingest.jt808.reassembly import Reassembler
from ingest.registry import Terminal
from ingest.gateway.replies import ReplyEncoder

if TYPE_CHECKING:
    from ingest.gateway.server import Gateway

log = logging.getLogger("ingest.gateway")

__all__ = ["TerminalConnection"]

OK = int(GeneralResult.OK)
FAIL = int(GeneralResult.FAIL)
BAD = int(GeneralResult.BAD_MESSAGE)
UNSUPPORTED = int(GeneralResult.UNSUPPORTED)
_MAX_UNREAD_REPLIES = 1 << 20  # bytes of replies buffered for a terminal that does not read them
_LOG_FAULTS = 3  # per connection at WARNING; the rest at DEBUG (a garbage stream must not flood the log)


class TerminalConnection(asyncio.Protocol):
    """asyncio protocol for one terminal. State is plain attributes; the gateway owns the shared parts."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.dec = FrameDecoder(gw.opts.max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.terminal: Terminal | None = None
        self.phone_raw = ""  # the phone exactly as the authenticated header spelled it (fast compare)
        self.vehicle = ""
        self.shard = 0
        self.profile: SensorProfile | None = None
        self.replies = ReplyEncoder()
        self.reasm: Reassembler | None = None
        self.sub_header: Header | None = None  # last subpackage header: the layout for 0x8003 requests
        self.opened = self.last_rx = time.monotonic()
        self.tokens = float(gw.opts.rate_burst)
        self.tokens_at = self.opened
        self.paused: set[str] = set()
        self.auth_failures = 0
        self.logged_faults = 0
        self.out: list[bytes] = []
        self.closed = False

    # -- asyncio callbacks ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.gw.attach(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gw.detach(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_rx = now
        f0 = self.dec.frames
        try:
            items = self.dec.feed(data)
            received_ms = int(time.time() * 1000)
            for item in items:
                if item.__class__ is Frame:
                    self.on_frame(item, received_ms)  # type: ignore[arg-type]
                else:
                    self.on_fault(item)  # type: ignore[arg-type]
        except Exception:  # a bug, not a terminal's fault: this connection only
            log.exception("jt808 %s: internal error; closing this connection", self.peer)
            self.close("internal error")
            return
        gw = self.gw
        gw.stats.frames += self.dec.frames - f0
        if self.out:
            self.flush_out()
        opts = gw.opts
        if self.dec.faults > opts.max_faults and self.dec.faults > self.dec.frames:
            gw.stats.closed_faults += 1
            self.close(f"{self.dec.faults} bad frames vs {self.dec.frames} good")
            return
        # token bucket on frames: refill, spend, and if in debt stop reading until it is paid off
        tokens = min(float(opts.rate_burst), self.tokens + (now - self.tokens_at) * opts.rate_limit_per_s)
        self.tokens_at = now
        self.tokens = tokens - len(items)
        if self.tokens < 0:
            gw.stats.rate_limited += 1
            self.pause("rate")
            asyncio.get_running_loop().call_later(-self.tokens / opts.rate_limit_per_s, self.resume, "rate")

    # -- reading control ------------------------------------------------------------------------------------
    def pause(self, reason: str) -> None:
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self.paused.add(reason)

    def resume(self, reason: str) -> None:
        self.paused.discard(reason)
        if not self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self, why: str) -> None:
        if self.closed:
            return
        log.info("jt808 %s (%s): closing: %s", self.peer, self.vehicle or "unauthenticated", why)
        self.closed = True
        if self.transport is not None:
            if self.out:
                self.flush_out()
            self.transport.close()

    # -- output ---------------------------------------------------------------------------------------------
    def send(self, frame: bytes | None) -> None:
        if frame is not None:
            self.out.append(frame)

    def flush_out(self) -> None:
        out, self.out = self.out, []
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(b"".join(out) if len(out) > 1 else out[0])
            if t.get_write_buffer_size() > _MAX_UNREAD_REPLIES:  # it sends but never reads: bounded memory
                self.gw.stats.closed_faults += 1
                self.close("does not read its replies")

    def answer(self, h: Header, result: int) -> None:
        self.send(self.replies.general(h, h.serial, h.msg_id, result))
        s = self.gw.stats
        if result == OK:
            s.acks_ok += 1
        elif result == BAD:
            s.acks_bad += 1
        else:
            s.acks_other += 1

    # -- frames ---------------------------------------------------------------------------------------------
    def on_fault(self, fault: FrameFault) -> None:
        self.gw.stats.faults += 1
        if self.logged_faults < _LOG_FAULTS:
            self.logged_faults += 1
            log.warning("jt808 %s: bad frame (%s): %s%s", self.peer, fault.kind, fault.detail,
                        "" if self.logged_faults < _LOG_FAULTS else " (further faults logged at DEBUG)")
        else:
            log.debug("jt808 %s: bad frame (%s): %s", self.peer, fault.kind, fault.detail)
        if fault.frame is not None:  # bad checksum, header readable: tell the terminal which frame
            self.answer(fault.frame.header, BAD)

    def _authorised(self, h: Header) -> bool:
        if self.terminal is None:
            return False
        return h.phone == self.phone_raw or normalize_phone(h.phone) == self.terminal.phone

    def on_frame(self, fr: Frame, received_ms: int) -> None:
        h = fr.header
        if h.subpackage:
            self.on_subpackage(fr, received_ms)
            return
        mid = h.msg_id
        if mid == MSG_LOCATION or mid == MSG_LOCATION_BATCH:
            self.on_position(h, fr.body, received_ms, h.serial)
            return
        self.on_control(h, fr.body)

    def on_position(self, h: Header, body: bytes, received_ms: int, serials: int | tuple[int, ...]) -> None:
        if h.phone != self.phone_raw and not self._authorised(h):
            self.gw.stats.refused_unauthenticated += 1
            self._answer_serials(h, serials, FAIL)
            return
        if h.encryption:
            self._answer_serials(h, serials, UNSUPPORTED)
            return
        assert self.profile is not None
        self.gw.submit_position(self, h, body, h.msg_id == MSG_LOCATION_BATCH, received_ms, serials)

    def _answer_serials(self, h: Header, serials: int | tuple[int, ...], result: int) -> None:
        for s in (serials,) if isinstance(serials, int) else serials:
            self.send(self.replies.general(h, s, h.msg_id, result))

    def on_subpackage(self, fr: Frame, received_ms: int) -> None:
        h = fr.header
        self.sub_header = h
        if self.reasm is None:
            o = self.gw.opts
            self.reasm = Reassembler(int(o.reassembly_timeout_s * 1000),
                                     retransmit_after_ms=int(o.retransmit_after_s * 1000),
                                     max_retransmit_requests=2, max_sets=64, max_bytes=4 << 20)
        try:
            done = self.reasm.add(h, fr.body, int(time.monotonic() * 1000))
        except ReassemblyError as exc:
            log.debug("jt808 %s: %s", self.peer, exc)
            self.answer(h, BAD)
            return
        if done is None:
            self.gw.reassembling.add(self)
            return
        self.gw.stats.reassembled += 1
        hh = done.header
        if hh.msg_id == MSG_LOCATION or hh.msg_id == MSG_LOCATION_BATCH:
            # every package is answered once the whole message is in Redis (none earlier: not yet durable)
            self.on_position(hh, done.body, received_ms, done.serials)
        else:
            self.on_control(hh, done.body)

    def on_control(self, h: Header, raw: bytes) -> None:
        mid = h.msg_id
        if mid == MSG_HEARTBEAT:
            self.answer(h, OK)
            return
        if mid == MSG_TERMINAL_REPLY or mid == MSG_LOCATION_QUERY_REPLY:
            return  # answers to our messages; nothing to answer
        try:
            body = decode_body(h, raw)
        except JT808Error as exc:
            log.debug("jt808 %s: bad 0x%04X body: %s", self.peer, mid, exc)
            self.answer(h, BAD)
            return
        if mid == MSG_REGISTER and isinstance(body, Register):
            self.gw.stats.registrations += 1
            self.gw.request_registration(self, h, body.plate if body.plate_color != 0 else None)
        elif mid == MSG_AUTHENTICATE and isinstance(body, Authenticate):
            self.on_authenticate(h, body.auth_code)
        elif mid == MSG_LOGOUT:
            self.answer(h, OK)
            self.unbind()
        else:
            self.answer(h, UNSUPPORTED)

    # -- session --------------------------------------------------------------------------------------------
    def on_authenticate(self, h: Header, code: str) -> None:
        t = self.gw.registry.check_cached(h.phone, code)
        if t is not None:
            self.auth_result(h, t)
        else:  # maybe registered through another gateway process since our last refresh: ask the database
            self.gw.request_authentication(self, h, code)

    def auth_result(self, h: Header, t: Terminal | None) -> None:
        if self.closed:
            return
        if t is None:
            self.gw.stats.auth_failures += 1
            self.auth_failures += 1
            self.answer(h, FAIL)
            if self.auth_failures >= self.gw.opts.max_auth_failures:
                self.close(f"{self.auth_failures} failed authentications")
            return
        self.gw.bind(self, t, h)
        self.answer(h, OK)

    def unbind(self) -> None:
        self.gw.unbind(self)
        self.terminal = None
        self.phone_raw = ""
        self.vehicle = ""
        self.profile = None

    def send_retransmit_request(self, first_serial: int, missing: tuple[int, ...]) -> None:
        h = self.sub_header
        if h is None or not missing:
            return
        self.send(self.replies.message(h, RetransmitRequest(first_serial, list(missing))))
        self.gw.stats.retransmit_requests += 1
