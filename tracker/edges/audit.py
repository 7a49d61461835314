"""The tamper-evident audit log: an append-only hash chain in PostgreSQL.

Every case action and every change to users is appended with
`append(conn, actor, action, object_type, object_id, details)`. Changes to fences, permits, orders and plans
need no call: triggers (migration 0502) queue them in `audit_pending` inside the writer's transaction, and
they are chained on the next `append`, web-app scan or `fleetwatch audit drain`, so no code path can change
them without a trace. Row n stores
`hash_n = sha256(hash_{n-1} ‖ "\n" ‖ canonical JSON of row n)` (row 1 chains to 64 zeros), and
`audit_head` holds the newest (seq, hash).

Why each piece:
* appenders lock the head row (`SELECT … FOR UPDATE`), so concurrent writers from many processes still
  form one chain, in commit order; the lock is held until the caller's transaction commits, so an action
  that rolls back leaves no audit row and the chain never forks;
* triggers refuse UPDATE/DELETE/TRUNCATE of the log and let the head only advance to the newest row —
  that stops the application and careless people; a superuser can disable triggers, which is what
  `verify` is for: it recomputes every hash and reports the exact row that was altered, removed or
  re-ordered, and compares the head with the last row, so removing the newest rows is caught too;
* `details` is stored as the exact canonical text that was hashed (jsonb would renormalise numbers such
  as 1e+20 and break verification of honest rows).

What it cannot catch alone: a superuser who rewrites a row *and* re-hashes every later row *and* the head.
Publish the head (`fleetwatch audit head`) somewhere outside the database (daily report, a second
system) and pass it to `verify(expect=...)` to close that gap.

Raw positions: `purge_fixes` is the only sanctioned way to delete fixes (retention); it sets
`fleetwatch.retention = on` for its own transaction (the `fixes` triggers refuse everything else) and
logs what it removed in this chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import psycopg

__all__ = ["GENESIS", "AuditEntry", "Problem", "VerifyReport", "canonical_json", "row_hash", "append", "head",
           "entries", "verify", "purge_fixes", "drain_pending", "pending_count"]

GENESIS = "0" * 64
_COLUMNS = "seq, at, actor, action, object_type, object_id, details, prev_hash, hash"


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.astimezone(UTC).isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return msgspec.to_builtins(obj)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text, no NaN: one spelling per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_default)


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str, object_type: str,
             object_id: str, details: str) -> str:
    """sha256(prev ‖ "\\n" ‖ canonical row); `details` is already canonical JSON text."""
    d = json.dumps
    row = (f'{{"action":{d(action, ensure_ascii=False)},"actor":{d(actor, ensure_ascii=False)},'
           f'"at":{d(_ts(at))},"details":{details},"object_id":{d(object_id, ensure_ascii=False)},'
           f'"object_type":{d(object_type, ensure_ascii=False)},"seq":{int(seq)}}}')
    return hashlib.sha256(prev_hash.encode() + b"\n" + row.encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str  # canonical JSON text
    prev_hash: str
    hash: str

    def computed_hash(self, prev_hash: str | None = None) -> str:
        return row_hash(self.prev_hash if prev_hash is None else prev_hash, self.seq, self.at, self.actor,
                        self.action, self.object_type, self.object_id, self.details)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": _ts(self.at), "actor": self.actor, "action": self.action,
                "object_type": self.object_type, "object_id": self.object_id,
                "details": json.loads(self.details), "prev_hash": self.prev_hash, "hash": self.hash}


def _append_locked(conn: psycopg.Connection, actor: str, action: str, object_type: str, object_id: str,
                   text: str) -> AuditEntry:
    seq0, prev, at = conn.execute(  # type: ignore[misc]
        "SELECT seq, hash, clock_timestamp() FROM audit_head FOR UPDATE").fetchone()
    seq = seq0 + 1
    h = row_hash(prev, seq, at, actor, action, object_type, object_id, text)
    conn.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                 (seq, at, actor, action, object_type, object_id, text, prev, h))
    conn.execute("UPDATE audit_head SET seq = %s, hash = %s", (seq, h))
    return AuditEntry(seq, at, actor, action, object_type, object_id, text, prev, h)


def _drain(conn: psycopg.Connection, limit: int) -> int:
    conn.execute("SELECT 1 FROM audit_head FOR UPDATE")  # one drainer at a time, before reading the queue
    rows = conn.execute(
        "SELECT id, at, actor, action, object_type, object_id, details FROM audit_pending "
        "WHERE appended_seq IS NULL ORDER BY id LIMIT %s", (limit,)).fetchall()
    for pid, at, actor, action, otype, oid, details in rows:
        e = _append_locked(conn, actor, action, otype, oid,
                           canonical_json({**details, "captured_at": at, "pending_id": pid}))
        conn.execute("UPDATE audit_pending SET appended_seq = %s WHERE id = %s", (e.seq, pid))
    return len(rows)


def append(conn: psycopg.Connection, actor: str, action: str, object_type: str, object_id: str | int,
           details: dict[str, Any] | None = None) -> AuditEntry:
    """Append one row to the chain, inside the caller's transaction (or its own when autocommit).

    Call it in the same transaction as the change it records, so both commit or neither does. Changes the
    database captured by itself (fences, permits, plans: `audit_pending`) are chained first."""
    text = canonical_json(details or {})
    with conn.transaction():
        _drain(conn, 1000)
        return _append_locked(conn, actor, action, object_type, str(object_id), text)


def drain_pending(conn: psycopg.Connection, limit: int = 10_000) -> int:
    """Chain the changes the capture triggers queued (fence, permit, order, plan saves); returns how many."""
    with conn.transaction():
        return _drain(conn, limit)


def pending_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM audit_pending WHERE appended_seq IS NULL").fetchone()[0])  # type: ignore[index]


def head(conn: psycopg.Connection) -> tuple[int, str]:
    seq, h = conn.execute("SELECT seq, hash FROM audit_head").fetchone()  # type: ignore[misc]
    return int(seq), str(h)


def entries(conn: psycopg.Connection, *, object_type: str | None = None, object_id: str | None = None,
            actor: str | None = None, before_seq: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first, filtered; page with `before_seq`."""
    where, params = [], []
    for col, val in (("object_type", object_type), ("object_id", object_id), ("actor", actor)):
        if val is not None:
            where.append(f"{col} = %s")
            params.append(val)
    if before_seq is not None:
        where.append("seq < %s")
        params.append(before_seq)
    sql = f"SELECT {_COLUMNS} FROM audit_log"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq DESC LIMIT %s"
    params.append(max(1, min(int(limit), 10_000)))
    return [AuditEntry(*r) for r in conn.execute(sql, params)]


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # altered | missing | broken_link | head_mismatch | anchor_mismatch
    message: str


@dataclass
class VerifyReport:
    rows: int = 0
    head: tuple[int, str] | None = None
    problems: list[Problem] = field(default_factory=list)
    pending: int = 0  # captured changes not chained yet (informational)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head": list(self.head) if self.head else None,
                "pending": self.pending, "problems": [p.__dict__ for p in self.problems]}


def _stream(conn: psycopg.Connection, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > %s ORDER BY seq LIMIT %s",
                            (last, batch)).fetchall()
        if not rows:
            return
        for r in rows:
            yield AuditEntry(*r)
        last = rows[-1][0]


def verify(conn: psycopg.Connection, expect: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute the chain and name every row that was altered, removed or re-linked.

    * altered: the row's stored hash is not the hash of its content (someone edited a column);
    * missing: sequence numbers skip (rows deleted); reported as the exact missing seq range;
    * broken_link: a row's prev_hash is not the previous row's hash (an edited hash, or a deleted row
      whose successor was re-linked by hand);
    * head_mismatch: the head records rows after the last one present (newest rows deleted), or a hash
      that differs from the last row's;
    * anchor_mismatch: `expect` = (seq, hash) published earlier does not match the row now stored.
    """
    report = VerifyReport(head=head(conn), pending=pending_count(conn))
    prev_seq, prev_hash = 0, GENESIS
    anchor_seen = expect is None or expect[0] == 0
    for e in _stream(conn):
        report.rows += 1
        gap = e.seq != prev_seq + 1
        if gap:
            lo, hi = prev_seq + 1, e.seq - 1
            what = f"row {lo}" if lo == hi else f"rows {lo}..{hi}"
            report.problems.append(Problem(lo, "missing", f"{what} deleted (row {e.seq} follows row {prev_seq})"))
        elif e.prev_hash != prev_hash:
            report.problems.append(Problem(e.seq, "broken_link",
                                           f"row {e.seq}: prev_hash does not match row {prev_seq}'s hash"))
        if e.computed_hash() != e.hash:
            report.problems.append(Problem(e.seq, "altered",
                                           f"row {e.seq} altered: its content no longer matches its hash "
                                           f"({e.action} {e.object_type} {e.object_id} by {e.actor})"))
        if expect is not None and e.seq == expect[0]:
            anchor_seen = True
            if e.hash != expect[1]:
                report.problems.append(Problem(e.seq, "anchor_mismatch",
                                               f"row {e.seq}: hash differs from the published anchor"))
        prev_seq, prev_hash = e.seq, e.hash
    hseq, hhash = report.head
    if hseq > prev_seq:
        lo = prev_seq + 1
        what = f"row {lo}" if lo == hseq else f"rows {lo}..{hseq}"
        report.problems.append(Problem(lo, "missing", f"{what} deleted (the head records row {hseq}, the "
                                                      f"last row present is {prev_seq})"))
    elif hseq != prev_seq or (hseq and hhash != prev_hash):
        report.problems.append(Problem(hseq, "head_mismatch",
                                       f"head (row {hseq}) does not match the last row ({prev_seq})"))
    if not anchor_seen:
        report.problems.append(Problem(expect[0], "anchor_mismatch",  # type: ignore[index]
                                       f"row {expect[0]} of the published anchor is not in the log"))  # type: ignore[index]
    return report


_PARTITION = re.compile(r"^fixes_(\d{8})$")


def purge_fixes(conn: psycopg.Connection, actor: str, before: datetime, reason: str = "retention") -> int:
    """Remove raw positions older than `before` (the retention policy) and log it; returns rows removed.

    Whole daily partitions below the cutoff are dropped (fast, no bloat); rows before the cutoff in other
    partitions are deleted. Only here is `fleetwatch.retention` switched on, and only for this transaction.
    """
    if before.tzinfo is None:
        raise ValueError("before must be timezone-aware")
    removed = 0
    dropped: list[str] = []
    with conn.transaction():
        conn.execute("SET LOCAL fleetwatch.retention = 'on'")
        parts = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'fixes'::regclass")]
        cutoff = before.astimezone(UTC)
        for name in sorted(parts):
            m = _PARTITION.match(name)
            if not m:
                continue
            day = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
            if day + timedelta(days=1) <= cutoff:
                removed += conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # type: ignore[index]
                conn.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
        removed += conn.execute("DELETE FROM fixes WHERE ts < %s", (cutoff,)).rowcount
        append(conn, actor, "retention.purge", "fixes", "*",
               {"before": cutoff, "rows": removed, "partitions_dropped": dropped, "reason": reason})
    return removed
