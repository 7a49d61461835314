"""Who is calling, and what they may see: bearer tokens, roles and scopes for every router.

Log in with `POST /api/auth/login {"username", "password"}` → `{"token", "expires_at", "user"}`; send
`Authorization: Bearer <token>` afterwards. Machines use API tokens (`fleetwatch users token NAME`, or
`POST /api/admin/users/{name}/tokens`), sent the same way. Tokens are stored hashed with an expiry;
passwords are argon2id (tracker.edges.users).

Wiring a router is one line, with the roles that may use it (none listed = every logged-in user):

    app.include_router(router, dependencies=[Depends(require())])                    # any user, scoped
    app.include_router(router, dependencies=[Depends(require(Role.ADMIN, Role.SUPERVISOR))])

`require` also makes the auditor read-only everywhere (GET/HEAD/OPTIONS only). Inside an endpoint, take the
user and apply the scope to the SQL:

    def vehicles(user: User = Depends(current_user)):
        companies, districts = scope_filter(user)      # None = unrestricted; a set = only these
        # … WHERE (%(c)s::text[] IS NULL OR company = ANY(%(c)s)) AND (… district …)

`scope_filter(user).allows(company=…, district=…, vehicle_kind=…)` filters objects in Python (live
positions, pushes). Websockets call `user = await ws_user(ws)` first: it accepts the socket, reads the token
from `?token=` or from a first message `{"token": "…"}`, and closes with 4401 (no/invalid token) or 4403
(role not allowed) when it returns None.

One-time sign-in links (`issue_login_link`, used by `fleetwatch demo`): a random code, stored hashed in Redis
for a few minutes, that `POST /api/auth/link {"code"}` exchanges — once — for an ordinary session token. The
page reads it from the URL fragment (`/#login=…`, never sent to the server or its logs) and removes it from
the address bar; a second use, or a use after expiry, is 401 and the page shows the login form.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from tracker.cases.access import ALL_ROLES, READ_ONLY_ROLES, Scope, scope_of
from tracker.cases.model import Actor
from tracker.cases.settings import CasesSettings
from tracker.cases.vocab import Role
from tracker.edges import users as users_store
from tracker.edges.cases_store import cases_settings

__all__ = ["User", "current_user", "current_scope", "require", "scope_filter", "ws_user", "install_auth",
           "auth_config", "AuthConfig", "issue_login_link"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CACHE_TTL_S = 5.0
WS_UNAUTHORIZED = 4401
WS_FORBIDDEN = 4403


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    companies: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()
    team: str | None = None
    display_name: str = ""
    token_kind: str = "session"

    @classmethod
    def of(cls, rec: users_store.UserRecord, token_kind: str) -> User:
        return cls(username=rec.username, role=Role(rec.role), companies=frozenset(rec.companies),
                   districts=frozenset(rec.districts), team=rec.team, display_name=rec.display_name,
                   token_kind=token_kind)

    @property
    def scope(self) -> Scope:
        return scope_of(self.role, self.companies, self.districts)

    @property
    def actor(self) -> Actor:
        return Actor(username=self.username, role=self.role, districts=self.districts, companies=self.companies,
                     team=self.team)

    def to_dict(self) -> dict[str, Any]:
        s = self.scope
        return {"username": self.username, "role": self.role.value, "display_name": self.display_name,
                "companies": sorted(self.companies), "districts": sorted(self.districts), "team": self.team,
                "token_kind": self.token_kind,
                "scope": {"companies": None if s.companies is None else sorted(s.companies),
                          "districts": None if s.districts is None else sorted(s.districts),
                          "vehicle_kinds": None if s.vehicle_kinds is None else sorted(s.vehicle_kinds)}}


@dataclass
class AuthConfig:
    """Per-app auth state: the `[cases]` settings (token lifetimes, lockout) and a short token cache."""

    settings: CasesSettings
    cache: dict[str, tuple[float, User]] = field(default_factory=dict)
    login_routes: bool = False

    def forget(self, token_hash: str | None = None) -> None:
        """Drop cached tokens (one, or all after a user change) so revocation is immediate here."""
        if token_hash is None:
            self.cache.clear()
        else:
            self.cache.pop(token_hash, None)


def auth_config(app: Any) -> AuthConfig:
    cfg = getattr(app.state, "fw_auth", None)
    if cfg is None:
        cfg = AuthConfig(settings=cases_settings(app.state.fw.settings))
        app.state.fw_auth = cfg
    return cfg


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _resolve_sync(state: Any, token: str) -> User | None:
    with state.db() as conn:
        got = users_store.resolve_token(conn, token)
    return None if got is None else User.of(*got)


async def resolve(app: Any, token: str) -> User | None:
    """The user of a token (cached for a few seconds), or None."""
    cfg = auth_config(app)
    key = users_store.token_hash(token)
    hit = cfg.cache.get(key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    user = await app.state.fw.run_sync(_resolve_sync, app.state.fw, token)
    if user is None:
        cfg.cache.pop(key, None)
    else:
        if len(cfg.cache) > 10_000:
            cfg.cache.clear()
        cfg.cache[key] = (now + CACHE_TTL_S, user)
    return user


_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def current_user(conn: HTTPConnection) -> User:
    """FastAPI dependency: the logged-in user, or 401."""
    token = _bearer(conn.headers.get("authorization"))
    if token is None:
        raise HTTPException(401, "login required", headers=_UNAUTHORIZED)
    user = await resolve(conn.app, token)
    if user is None:
        raise HTTPException(401, "invalid or expired token", headers=_UNAUTHORIZED)
    conn.state.user = user
    return user


def require(*roles: Role | str) -> Callable[..., Awaitable[User]]:
    """Dependency factory: a logged-in user with one of `roles` (any role when none given); the auditor may
    only read. Use as `dependencies=[Depends(require(...))]` on a router or `user = Depends(require(...))`."""
    allowed = frozenset(Role(r) for r in roles) or ALL_ROLES

    async def dependency(request: Request, user: User = Depends(current_user)) -> User:
        if user.role not in allowed:
            raise HTTPException(403, f"role {user.role.value} may not use this endpoint")
        if user.role in READ_ONLY_ROLES and request.method not in SAFE_METHODS:
            raise HTTPException(403, f"role {user.role.value} is read-only")
        return user

    dependency.__name__ = f"require_{'_'.join(sorted(r.value for r in allowed))}"
    return dependency


def scope_filter(user: User) -> Scope:
    """(companies, districts) constraints for SQL — `None` = unrestricted — plus vehicle kinds and a
    Python predicate (`.allows(...)`); unpacks as `companies, districts = scope_filter(user)`."""
    return user.scope


async def current_scope(user: User = Depends(current_user)) -> Scope:
    return user.scope


async def ws_user(ws: WebSocket, *roles: Role | str, first_message_timeout_s: float = 5.0,
                  hello: bool = True) -> User | None:
    """Accept a websocket and authenticate it; on failure close it (4401/4403) and return None. On success
    it sends `{"type": "hello", …}` unless `hello=False` (the endpoint sends it once its feed is positioned,
    so a client that waits for hello misses nothing)."""
    allowed = frozenset(Role(r) for r in roles) or ALL_ROLES
    await ws.accept()
    token = ws.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(ws.receive_json(), timeout=first_message_timeout_s)
            token = first.get("token") if isinstance(first, dict) else None
        except Exception:  # noqa: BLE001 - timeout, bad JSON, disconnect: all mean "no token"
            token = None
    user = await resolve(ws.app, token) if token else None
    if user is None:
        await ws.close(code=WS_UNAUTHORIZED, reason="login required")
        return None
    if user.role not in allowed:
        await ws.close(code=WS_FORBIDDEN, reason=f"role {user.role.value} not allowed")
        return None
    if hello:
        await send_hello(ws, user)
    return user


async def send_hello(ws: WebSocket, user: User) -> None:
    await ws.send_json({"type": "hello", "user": user.username, "role": user.role.value})


# --- login routes --------------------------------------------------------------------------------------

class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _login_sync(state: Any, cfg: CasesSettings, username: str, password: str) -> dict[str, Any] | None:
    with state.db() as conn:
        rec = users_store.authenticate(conn, username, password, max_failures=cfg.login_max_failures,
                                       lock_minutes=cfg.login_lock_minutes)
        if rec is None:
            return None
        token, expires = users_store.issue_token(conn, username, username, "session",
                                                 timedelta(hours=cfg.session_hours), "login")
    return {"token": token, "token_type": "bearer", "expires_at": expires.isoformat() if expires else None,
            "user": User.of(rec, "session").to_dict()}


def _link_key(prefix: str, code: str) -> str:
    return f"{prefix}:login-link:{hashlib.sha256(code.encode()).hexdigest()}"


def issue_login_link(redis: Any, prefix: str, username: str, ttl_s: float = 600) -> str:
    """A one-time sign-in code for `username`, valid `ttl_s` seconds (only its hash is stored)."""
    code = secrets.token_urlsafe(24)
    redis.set(_link_key(prefix, code), username, ex=max(1, int(ttl_s)))
    return code


def _link_sync(state: Any, cfg: CasesSettings, code: str) -> dict[str, Any] | None:
    raw = state.redis.getdel(_link_key(state.settings.bus.prefix, code))  # atomically: a code works once
    if raw is None:
        return None
    username = raw.decode() if isinstance(raw, bytes) else str(raw)
    with state.db() as conn:
        rec = users_store.get_user(conn, username)
        if rec is None or rec.disabled:
            return None
        token, expires = users_store.issue_token(conn, username, username, "session",
                                                 timedelta(hours=cfg.session_hours), "login link")
    return {"token": token, "token_type": "bearer", "expires_at": expires.isoformat() if expires else None,
            "user": User.of(rec, "session").to_dict()}


class LinkIn(BaseModel):
    code: str = Field(min_length=8, max_length=200)


def _logout_sync(state: Any, username: str, token: str) -> None:
    with state.db() as conn:
        users_store.revoke_token(conn, username, token=token)


def install_auth(app: FastAPI) -> FastAPI:
    """Add `/api/auth/login`, `/api/auth/link`, `/api/auth/logout`, `/api/auth/me` (idempotent)."""
    cfg = auth_config(app)
    if cfg.login_routes:
        return app
    router = APIRouter(prefix="/api/auth", tags=["auth"])

    @router.post("/login", summary="Password login → bearer token (UI session)")
    async def login(body: LoginIn, request: Request) -> dict[str, Any]:
        state = request.app.state.fw
        got = await state.run_sync(_login_sync, state, cfg.settings, body.username, body.password)
        if got is None:
            raise HTTPException(401, "wrong user name or password, or account locked", headers=_UNAUTHORIZED)
        return got

    @router.post("/link", summary="Exchange a one-time sign-in link's code for a session token")
    async def link(body: LinkIn, request: Request) -> dict[str, Any]:
        state = request.app.state.fw
        got = await state.run_sync(_link_sync, state, cfg.settings, body.code)
        if got is None:
            raise HTTPException(401, "this sign-in link was already used or has expired", headers=_UNAUTHORIZED)
        return got

    @router.post("/logout", status_code=204, summary="Revoke the token this request carries")
    async def logout(request: Request, user: User = Depends(current_user)) -> Response:
        token = _bearer(request.headers.get("authorization"))
        assert token is not None
        await request.app.state.fw.run_sync(_logout_sync, request.app.state.fw, user.username, token)
        cfg.forget(users_store.token_hash(token))
        return Response(status_code=204)

    @router.get("/me", summary="The caller, role and scope")
    async def me(user: User = Depends(current_user)) -> dict[str, Any]:
        return user.to_dict()

    app.include_router(router)
    cfg.login_routes = True
    return app
