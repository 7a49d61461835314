"""Users, passwords and bearer tokens in PostgreSQL; every change is written to the audit log.

Passwords are hashed with argon2id (argon2-cffi's maintained defaults) and re-hashed on login when those
defaults change. Tokens are 256-bit random strings (`fw_…`) of two kinds: `session` (UI login, hours) and
`api` (machines, months); only their SHA-256 is stored. After `max_failures` failed logins an account is
locked for a while, so a password cannot be guessed online. Users are disabled, never deleted (their name
stays meaningful in the audit log and case history).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tracker.cases.vocab import Role
from tracker.edges import audit

__all__ = ["UserRecord", "UserError", "MIN_PASSWORD", "create_user", "get_user", "list_users", "update_user",
           "set_password", "authenticate", "issue_token", "resolve_token", "revoke_token", "list_tokens",
           "token_hash"]

MIN_PASSWORD = 8
_hasher = PasswordHasher()
_COLS = "username, display_name, role, companies, districts, team, disabled, password_hash IS NOT NULL, " \
        "created_at, updated_at"
_UCOLS = ", ".join("u." + c.strip() for c in _COLS.split(","))
# A real argon2 hash of a random password: unknown users cost as much time as known ones.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A request about users that cannot be honoured; the message is meant for a person."""


@dataclass(frozen=True)
class UserRecord:
    username: str
    display_name: str
    role: str
    companies: tuple[str, ...]
    districts: tuple[str, ...]
    team: str | None
    disabled: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> UserRecord:
        r = list(row)
        r[3], r[4] = tuple(r[3] or ()), tuple(r[4] or ())
        return cls(*r)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["companies"], d["districts"] = list(self.companies), list(self.districts)
        return d


def _role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise UserError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from None


def _check_scope(role: str, companies: Iterable[str], districts: Iterable[str]) -> None:
    if role == Role.OPERATOR and not list(companies):
        raise UserError("an operator needs at least one company")
    if role == Role.ENFORCEMENT and not list(districts):
        raise UserError("an enforcement user needs at least one district")


def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def get_user(conn: psycopg.Connection, username: str) -> UserRecord | None:
    row = conn.execute(f"SELECT {_COLS} FROM users WHERE username = %s", (username,)).fetchone()
    return UserRecord.of(row) if row else None


def list_users(conn: psycopg.Connection) -> list[UserRecord]:
    return [UserRecord.of(r) for r in conn.execute(f"SELECT {_COLS} FROM users ORDER BY username")]


def create_user(conn: psycopg.Connection, actor: str, username: str, role: str, *, password: str | None = None,
                companies: Iterable[str] = (), districts: Iterable[str] = (), team: str | None = None,
                display_name: str = "") -> UserRecord:
    role = _role(role)
    companies, districts = sorted(set(companies)), sorted(set(districts))
    _check_scope(role, companies, districts)
    pw = _hash_password(password) if password is not None else None
    with conn.transaction():
        try:
            conn.execute(
                "INSERT INTO users (username, display_name, role, companies, districts, team, password_hash) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s)",
                (username, display_name, role, companies, districts, team, pw))
        except psycopg.errors.UniqueViolation:
            raise UserError(f"user {username!r} already exists") from None
        except psycopg.errors.CheckViolation:
            raise UserError(f"bad user name {username!r}: letters, digits, _ . @ - (at most 64)") from None
        audit.append(conn, actor, "user.create", "user", username,
                     {"role": role, "companies": companies, "districts": districts, "team": team,
                      "display_name": display_name, "password": pw is not None})
    user = get_user(conn, username)
    assert user is not None
    return user


def update_user(conn: psycopg.Connection, actor: str, username: str, *, role: str | None = None,
                companies: Iterable[str] | None = None, districts: Iterable[str] | None = None,
                team: str | None = None, clear_team: bool = False, disabled: bool | None = None,
                display_name: str | None = None) -> UserRecord:
    """Change role/scope/status. Disabling also revokes every token of the user."""
    with conn.transaction():
        row = conn.execute(f"SELECT {_COLS} FROM users WHERE username = %s FOR UPDATE", (username,)).fetchone()
        if row is None:
            raise UserError(f"no user {username!r}")
        old = UserRecord.of(row)
        new_role = _role(role) if role is not None else old.role
        new_companies = sorted(set(companies)) if companies is not None else list(old.companies)
        new_districts = sorted(set(districts)) if districts is not None else list(old.districts)
        new_team = None if clear_team else (team if team is not None else old.team)
        _check_scope(new_role, new_companies, new_districts)
        changes = {k: v for k, v, o in (
            ("role", new_role, old.role), ("companies", new_companies, list(old.companies)),
            ("districts", new_districts, list(old.districts)), ("team", new_team, old.team),
            ("disabled", disabled if disabled is not None else old.disabled, old.disabled),
            ("display_name", display_name if display_name is not None else old.display_name, old.display_name),
        ) if v != o}
        if not changes:
            return old
        conn.execute(
            "UPDATE users SET role=%s, companies=%s, districts=%s, team=%s, disabled=%s, display_name=%s, "
            "updated_at=now() WHERE username=%s",
            (new_role, new_companies, new_districts, new_team, changes.get("disabled", old.disabled),
             changes.get("display_name", old.display_name), username))
        if changes.get("disabled"):
            conn.execute("UPDATE auth_tokens SET revoked_at = now() WHERE username = %s AND revoked_at IS NULL",
                         (username,))
        audit.append(conn, actor, "user.update", "user", username,
                     {"changes": changes, "before": {k: getattr(old, k) for k in changes}})
    user = get_user(conn, username)
    assert user is not None
    return user


def set_password(conn: psycopg.Connection, actor: str, username: str, password: str) -> None:
    pw = _hash_password(password)
    with conn.transaction():
        cur = conn.execute("UPDATE users SET password_hash=%s, failed_logins=0, locked_until=NULL, "
                           "updated_at=now() WHERE username=%s", (pw, username))
        if cur.rowcount != 1:
            raise UserError(f"no user {username!r}")
        audit.append(conn, actor, "user.set_password", "user", username, {})


def authenticate(conn: psycopg.Connection, username: str, password: str, *, max_failures: int = 10,
                 lock_minutes: float = 15.0) -> UserRecord | None:
    """The user when the password is right and the account usable; None otherwise (never says why)."""
    with conn.transaction():
        row = conn.execute(
            "SELECT password_hash, disabled, failed_logins, locked_until > now() FROM users "
            "WHERE username = %s FOR UPDATE", (username,)).fetchone()
        if row is None or row[0] is None:
            try:
                _hasher.verify(_DUMMY_HASH, password)
            except VerificationError:
                pass
            return None
        pw_hash, disabled, failures, locked = row
        try:
            _hasher.verify(pw_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            failures += 1
            lock = failures >= max_failures
            conn.execute(
                "UPDATE users SET failed_logins = %s, locked_until = CASE WHEN %s THEN now() + %s "
                "ELSE locked_until END WHERE username = %s",
                (0 if lock else failures, lock, timedelta(minutes=lock_minutes), username))
            return None
        if disabled or locked:
            return None
        conn.execute("UPDATE users SET failed_logins = 0 WHERE username = %s", (username,))
        if _hasher.check_needs_rehash(pw_hash):
            conn.execute("UPDATE users SET password_hash = %s WHERE username = %s",
                         (_hasher.hash(password), username))
    return get_user(conn, username)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: psycopg.Connection, actor: str, username: str, kind: str, ttl: timedelta | None,
                name: str = "") -> tuple[str, datetime | None]:
    """A new bearer token (shown once) and its expiry. Session logins and API tokens are both audited."""
    if kind not in ("session", "api"):
        raise UserError(f"unknown token kind {kind!r}")
    token = "fw_" + secrets.token_urlsafe(32)
    with conn.transaction():
        if get_user(conn, username) is None:
            raise UserError(f"no user {username!r}")
        expires = conn.execute(
            "INSERT INTO auth_tokens (token_hash, username, kind, name, expires_at) "
            "VALUES (%s,%s,%s,%s, CASE WHEN %s::interval IS NULL THEN NULL ELSE now() + %s::interval END) "
            "RETURNING expires_at", (token_hash(token), username, kind, name, ttl, ttl)).fetchone()[0]  # type: ignore[index]
        audit.append(conn, actor, "auth.login" if kind == "session" else "token.create", "user", username,
                     {"kind": kind, "name": name, "token": token_hash(token)[:16], "expires_at": expires})
    return token, expires


def resolve_token(conn: psycopg.Connection, token: str) -> tuple[UserRecord, str] | None:
    """(user, token kind) for a valid, unexpired, unrevoked token of an enabled user; else None."""
    th = token_hash(token)
    row = conn.execute(
        f"SELECT {_UCOLS}, "
        "t.kind, t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds' "
        "FROM auth_tokens t JOIN users u USING (username) "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
        "AND NOT u.disabled", (th,)).fetchone()
    if row is None:
        return None
    if row[-1]:
        conn.execute("UPDATE auth_tokens SET last_used_at = now() WHERE token_hash = %s", (th,))
    return UserRecord.of(row[:-2]), row[-2]


def revoke_token(conn: psycopg.Connection, actor: str, *, token: str | None = None,
                 token_hash_prefix: str | None = None, username: str | None = None) -> int:
    """Revoke one token (by value, or by the hash prefix `list_tokens` shows) or all of a user's."""
    where, params = ["revoked_at IS NULL"], []
    if token is not None:
        where.append("token_hash = %s")
        params.append(token_hash(token))
    elif token_hash_prefix:
        if len(token_hash_prefix) < 8:
            raise UserError("give at least 8 characters of the token id")
        where.append("token_hash LIKE %s")
        params.append(token_hash_prefix + "%")
    elif username is None:
        raise UserError("revoke needs a token, a token id or a user")
    if username is not None:
        where.append("username = %s")
        params.append(username)
    with conn.transaction():
        rows = conn.execute(f"UPDATE auth_tokens SET revoked_at = now() WHERE {' AND '.join(where)} "
                            "RETURNING username, kind, token_hash", params).fetchall()
        for user, kind, th in rows:
            if kind == "api":
                audit.append(conn, actor, "token.revoke", "user", user, {"token": th[:16]})
    return len(rows)


def list_tokens(conn: psycopg.Connection, username: str | None = None, include_sessions: bool = False
                ) -> list[dict[str, Any]]:
    sql = ("SELECT left(token_hash, 16), username, kind, name, created_at, expires_at, revoked_at, last_used_at "
           "FROM auth_tokens WHERE (%s::text IS NULL OR username = %s)")
    if not include_sessions:
        sql += " AND kind = 'api'"
    keys = ("id", "username", "kind", "name", "created_at", "expires_at", "revoked_at", "last_used_at")
    return [dict(zip(keys, r)) for r in conn.execute(sql + " ORDER BY created_at", (username, username))]
