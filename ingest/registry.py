"""The terminal registry: which JT/T 808 terminal (phone) belongs to which vehicle, its auth code, and its
vendor sensor profile — the `vehicles` table (`phone`, `auth_code`, `vendor_profile`).

The gateway keeps the whole registry in memory (a city has thousands to a province hundreds of thousands
of terminals: a few MB) so that an authentication costs a dict look-up, and re-reads it every
`registry_refresh_s`. Anything that changes state goes to the database first: a registration's auth code is
stored (one UPDATE for all registrations of a flush) before the 0x8100 reply carries it, so a gateway
restart or a second gateway process accepts it. A failed look-up or a wrong code is checked against the
database once more before refusing, because another process may have registered the terminal meanwhile.

Phones are compared without BCD left padding (`normalize_phone`): "013812345678" (2013 header) and
"00000000013812345678" (2019 header) are one terminal. All methods are synchronous (psycopg); the gateway
runs them on its database thread.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from ingest.jt808.header import normalize_phone
from ingest.jt808.messages import RegisterResult

log = logging.getLogger(__name__)

__all__ = ["Registration", "Terminal", "TerminalRegistry", "new_auth_code", "normalize_plate"]

_SELECT = ("SELECT vehicle_id, phone, plate, auth_code, vendor_profile FROM vehicles "
           "WHERE phone IS NOT NULL AND phone <> ''")


@dataclass(frozen=True, slots=True)
class Terminal:
    phone: str  # normalised (no left zeros)
    vehicle_id: str
    plate: str | None
    auth_code: str | None
    profile: str


@dataclass(frozen=True, slots=True)
class Registration:
    """Outcome of one 0x0100: `result` is a `RegisterResult`; `auth_code` is set only with OK."""

    result: int
    terminal: Terminal | None = None
    auth_code: str | None = None


def new_auth_code() -> str:
    """64 random bits as 16 hex digits: ASCII (so GBK), short enough for every terminal's buffer."""
    return secrets.token_hex(8)


def normalize_plate(plate: str | None) -> str:
    """Plates compare without spaces, separators or case ("粤B 12345" = "粤b12345" = "粤B·12345")."""
    if not plate:
        return ""
    return "".join(ch for ch in plate if ch.isalnum()).upper()


class TerminalRegistry:
    """phone → `Terminal`, cached from the vehicles table."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._by_phone: dict[str, Terminal] = {}
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()  # one connection, used from the gateway's database thread (and tests)

    def _db(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
        return self._conn

    @staticmethod
    def _row(row: Sequence[object]) -> Terminal:
        vid, phone, plate, code, profile = row
        return Terminal(normalize_phone(str(phone)), str(vid), None if plate is None else str(plate),
                        None if code is None else str(code), str(profile or "default"))

    def __len__(self) -> int:
        return len(self._by_phone)

    def get(self, phone: str) -> Terminal | None:
        """From memory (phone as in a header or normalised)."""
        return self._by_phone.get(normalize_phone(phone))

    def refresh(self) -> int:
        """Re-read the whole registry; returns the number of terminals."""
        with self._lock:
            try:
                rows = self._db().execute(_SELECT).fetchall()
            except psycopg.OperationalError:
                self._conn = None
                raise
        fresh = {}
        for row in rows:
            t = self._row(row)
            fresh[t.phone] = t
        self._by_phone = fresh
        return len(fresh)

    def _fetch(self, phones: list[str]) -> dict[str, Terminal]:
        with self._lock:
            rows = self._db().execute(_SELECT + " AND ltrim(phone, '0') = ANY(%s)", (phones,)).fetchall()
        out = {}
        for row in rows:
            t = self._row(row)
            out[t.phone] = t
            self._by_phone[t.phone] = t
        return out

    def register(self, requests: Sequence[tuple[str, str | None]], *, check_plate: bool = True,
                 reissue: bool = False) -> list[Registration]:
        """Answer many 0x0100 at once: `requests` are (phone, plate or None when the terminal sent a VIN).

        Unknown phone → NO_SUCH_TERMINAL; a plate that contradicts the registry → NO_SUCH_VEHICLE; else OK
        with the stored auth code, or a new one (stored before this returns) when none is stored or
        `reissue`."""
        phones = sorted({normalize_phone(p) for p, _ in requests})
        known = self._fetch(phones) if phones else {}
        out: list[Registration] = []
        to_store: dict[str, str] = {}
        for phone, plate in requests:
            t = known.get(normalize_phone(phone))
            if t is None:
                out.append(Registration(RegisterResult.NO_SUCH_TERMINAL))
                continue
            if check_plate and plate and t.plate and normalize_plate(plate) != normalize_plate(t.plate):
                out.append(Registration(RegisterResult.NO_SUCH_VEHICLE, t))
                continue
            code = to_store.get(t.phone)
            if code is None:
                code = t.auth_code if (t.auth_code and not reissue) else new_auth_code()
                if code != t.auth_code:
                    to_store[t.phone] = code
            out.append(Registration(RegisterResult.OK, t, code))
        if to_store:
            with self._lock:
                self._db().execute(
                    "UPDATE vehicles v SET auth_code = c.code FROM unnest(%s::text[], %s::text[]) AS c(phone, code) "
                    "WHERE ltrim(v.phone, '0') = c.phone",
                    (list(to_store), list(to_store.values())),
                )
            for phone, code in to_store.items():
                t = known[phone]
                self._by_phone[phone] = Terminal(t.phone, t.vehicle_id, t.plate, code, t.profile)
            out = [Registration(r.result, self._by_phone[r.terminal.phone], r.auth_code)
                   if r.result == RegisterResult.OK and r.terminal is not None else r for r in out]
        return out

    def check_cached(self, phone: str, code: str) -> Terminal | None:
        """The terminal when `code` matches the cached code (constant-time compare); None otherwise."""
        t = self._by_phone.get(normalize_phone(phone))
        if t is None or not t.auth_code:
            return None
        return t if hmac.compare_digest(t.auth_code.encode(), code.encode()) else None

    def authenticate(self, requests: Sequence[tuple[str, str]]) -> list[Terminal | None]:
        """Check many 0x0102 against the database (after a cache miss or mismatch)."""
        phones = sorted({normalize_phone(p) for p, _ in requests})
        if phones:
            self._fetch(phones)
        return [self.check_cached(p, c) for p, c in requests]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
