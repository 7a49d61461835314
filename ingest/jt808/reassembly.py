"""Subpackage reassembly: long messages (batches, media, 1078 file lists) arrive split over several frames.

A subpackaged frame has props bit 13 set and carries ``pkg_total`` and a 1-based ``pkg_index``; the
packages of one message have consecutive serials, so the serial of package 1 (``serial - (index - 1)``,
modulo 2**16) identifies the message together with the phone, message id and total. `Reassembler` collects
packages under that key and returns the concatenated body once every index has arrived, in index order
whatever the arrival order.

Incomplete sets expire after `timeout_ms` of silence (no new package for that set); `expire` returns them
with the indexes still missing. To recover instead of dropping, set `retransmit_after_ms`:
`due_for_retransmit` then reports sets idle that long (keeping them), the gateway sends 0x8003
(`RetransmitRequest`, original serial = `first_serial`, ids = `missing`), and the resent packages complete
the same set. A typical loop::

    for inc in reassembler.due_for_retransmit(now_ms):
        send(RetransmitRequest(inc.first_serial, list(inc.missing)))
    for inc in reassembler.expire(now_ms):
        log_dropped(inc)
 The clock is passed in (`now_ms`) so the logic is
deterministic and testable; nothing here reads the wall clock. Memory is bounded: at most `max_sets`
incomplete sets and `max_bytes` buffered; beyond that the oldest sets are evicted and reported by the next
`expire` call like expired ones.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from ingest.jt808.errors import ReassemblyError
from ingest.jt808.header import Header

__all__ = ["Incomplete", "Reassembled", "Reassembler", "SetKey"]

#: (phone, msg_id, first serial, total)
SetKey = tuple[str, int, int, int]


class Reassembled(msgspec.Struct, frozen=True, gc=False):
    """A complete message. `header` is package 1's header turned into an ordinary one (no subpackage fields;
    `body_len` is the full length capped at the 10-bit 1023, so use ``len(body)``) so it can go straight to
    `decode_body`."""

    header: Header
    body: bytes
    first_serial: int
    serials: tuple[int, ...]  # serial of each package in index order (to acknowledge each one if wanted)


class Incomplete(msgspec.Struct, frozen=True, gc=False):
    """A set dropped before completion: what arrived and which 1-based indexes are missing."""

    phone: str
    msg_id: int
    first_serial: int
    total: int
    missing: tuple[int, ...]
    received: int
    reason: str  # "timeout" or "evicted"


class _Set:
    __slots__ = ("asked", "header", "last_ms", "parts", "serials", "size")

    def __init__(self, header: Header, now_ms: int) -> None:
        self.header = header
        self.parts: dict[int, bytes] = {}
        self.serials: dict[int, int] = {}
        self.last_ms = now_ms
        self.size = 0
        self.asked = 0


class Reassembler:
    """Collect subpackages per (phone, msg id, first serial, total). One instance can serve one connection
    or a whole gateway (keys include the phone)."""

    def __init__(
        self,
        timeout_ms: int = 60_000,
        *,
        retransmit_after_ms: int | None = None,
        max_retransmit_requests: int = 1,
        max_sets: int = 10_000,
        max_bytes: int = 64 << 20,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.retransmit_after_ms = retransmit_after_ms
        self.max_retransmit_requests = max_retransmit_requests
        self.max_sets = max_sets
        self.max_bytes = max_bytes
        self._sets: OrderedDict[SetKey, _Set] = OrderedDict()  # least recently touched first
        self._bytes = 0
        self._evicted: list[Incomplete] = []

    def __len__(self) -> int:
        return len(self._sets)

    @staticmethod
    def key_of(header: Header) -> SetKey:
        """The set a subpackaged header belongs to."""
        total, index = header.pkg_total or 0, header.pkg_index or 0
        return (header.phone, header.msg_id, (header.serial - (index - 1)) & 0xFFFF, total)

    def add(self, header: Header, body: bytes, now_ms: int) -> Reassembled | None:
        """Add one package; return the whole message when this completes it, else None.

        A repeated index (retransmission) replaces the earlier copy. Raises `ReassemblyError` for a header
        without subpackage fields, total 0 or an index outside 1..total."""
        if not header.subpackage or header.pkg_total is None or header.pkg_index is None:
            raise ReassemblyError("not a subpackage")
        total, index = header.pkg_total, header.pkg_index
        if total < 1 or not 1 <= index <= total:
            raise ReassemblyError(f"package index {index} outside 1..{total}")
        if total == 1:
            return self._complete(header, {1: body}, {1: header.serial}, header.serial)
        key = self.key_of(header)
        s = self._sets.get(key)
        if s is None:
            s = self._sets[key] = _Set(header, now_ms)
        else:
            self._sets.move_to_end(key)
            s.last_ms = now_ms
        old = s.parts.get(index)
        if old is not None:
            s.size -= len(old)
            self._bytes -= len(old)
        s.parts[index] = body
        s.serials[index] = header.serial
        s.size += len(body)
        self._bytes += len(body)
        if index == 1:
            s.header = header  # complete implies package 1 arrived, so the result carries its header
        if len(s.parts) == total:
            del self._sets[key]
            self._bytes -= s.size
            return self._complete(s.header, s.parts, s.serials, key[2])
        self._enforce_limits()
        return None

    @staticmethod
    def _complete(
        first: Header, parts: dict[int, bytes], serials: dict[int, int], first_serial: int
    ) -> Reassembled:
        total = len(parts)
        body = b"".join([parts[i] for i in range(1, total + 1)])
        header = msgspec.structs.replace(
            first, subpackage=False, pkg_total=None, pkg_index=None, body_len=min(len(body), 0x3FF)
        )
        return Reassembled(header, body, first_serial, tuple([serials[i] for i in range(1, total + 1)]))

    def _enforce_limits(self) -> None:
        while self._sets and (len(self._sets) > self.max_sets or self._bytes > self.max_bytes):
            key, s = self._sets.popitem(last=False)
            self._bytes -= s.size
            self._evicted.append(self._incomplete(key, s, "evicted"))

    @staticmethod
    def _incomplete(key: SetKey, s: _Set, reason: str) -> Incomplete:
        phone, msg_id, first, total = key
        missing = tuple(i for i in range(1, total + 1) if i not in s.parts)
        return Incomplete(phone, msg_id, first, total, missing, len(s.parts), reason)

    def missing(self, header: Header) -> tuple[int, ...] | None:
        """Indexes still missing for the set `header` belongs to (None when no such set is pending)."""
        s = self._sets.get(self.key_of(header))
        if s is None:
            return None
        total = header.pkg_total or 0
        return tuple(i for i in range(1, total + 1) if i not in s.parts)

    def pending(self) -> list[Incomplete]:
        """Snapshot of every incomplete set (reason "pending"), e.g. to ask for retransmission early."""
        return [self._incomplete(k, s, "pending") for k, s in self._sets.items()]

    def due_for_retransmit(self, now_ms: int) -> list[Incomplete]:
        """Sets idle for `retransmit_after_ms` that may still be asked for (reason "retransmit").

        Each returned set counts one request and its idle clock restarts, so the terminal gets a full
        `timeout_ms` to answer the 0x8003 before `expire` drops the set. Empty when `retransmit_after_ms` is
        None."""
        if self.retransmit_after_ms is None:
            return []
        limit = now_ms - self.retransmit_after_ms
        due = [
            (k, s)
            for k, s in self._sets.items()
            if s.last_ms <= limit and s.asked < self.max_retransmit_requests
        ]
        out = []
        for k, s in due:
            s.asked += 1
            s.last_ms = now_ms
            self._sets.move_to_end(k)
            out.append(self._incomplete(k, s, "retransmit"))
        return out

    def expire(self, now_ms: int) -> list[Incomplete]:
        """Drop and return sets with no new package for `timeout_ms` (plus any evicted since last call)."""
        out, self._evicted = self._evicted, []
        limit = now_ms - self.timeout_ms
        while self._sets:
            key, s = next(iter(self._sets.items()))
            if s.last_ms > limit:
                break  # ordered by last touch: the rest are younger
            del self._sets[key]
            self._bytes -= s.size
            out.append(self._incomplete(key, s, "timeout"))
        return out
