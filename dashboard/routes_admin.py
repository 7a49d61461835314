"""Administration over HTTP: users and their API tokens (admin), the audit log and its verification
(admin and auditor, read-only for the auditor). Every change is written to the audit log by the store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dashboard.auth import User, auth_config, require
from tracker.cases.vocab import Role
from tracker.edges import audit
from tracker.edges import users as users_store

__all__ = ["router"]

router = APIRouter(prefix="/api/admin", tags=["admin"],
                   dependencies=[Depends(require(Role.ADMIN, Role.AUDITOR))])
ADMIN_ONLY = Depends(require(Role.ADMIN))


async def _db(request: Request, fn: Any, *args: Any, **kw: Any) -> Any:
    state = request.app.state.fw

    def run() -> Any:
        with state.db() as conn:
            return fn(conn, *args, **kw)
    try:
        return await state.run_sync(run)
    except users_store.UserError as exc:
        raise HTTPException(404 if str(exc).startswith("no user") else 422, str(exc)) from None


@router.get("/users", summary="Every user with role and scope")
async def list_users(request: Request) -> list[dict[str, Any]]:
    return [u.to_dict() for u in await _db(request, users_store.list_users)]


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    role: str
    password: str | None = Field(None, max_length=1024, description="omit for a machine account")
    companies: list[str] = Field(default_factory=list)
    districts: list[str] = Field(default_factory=list)
    team: str | None = None
    display_name: str = ""


@router.post("/users", status_code=201)
async def create_user(body: UserIn, request: Request, user: User = ADMIN_ONLY) -> dict[str, Any]:
    rec = await _db(request, users_store.create_user, user.username, body.username, body.role,
                    password=body.password, companies=body.companies, districts=body.districts, team=body.team,
                    display_name=body.display_name)
    return rec.to_dict()


class UserPatch(BaseModel):
    role: str | None = None
    companies: list[str] | None = None
    districts: list[str] | None = None
    team: str | None = None
    clear_team: bool = False
    disabled: bool | None = None
    display_name: str | None = None
    password: str | None = Field(None, max_length=1024)


@router.patch("/users/{username}")
async def update_user(username: str, body: UserPatch, request: Request, user: User = ADMIN_ONLY) -> dict[str, Any]:
    rec = await _db(request, users_store.update_user, user.username, username, role=body.role,
                    companies=body.companies, districts=body.districts, team=body.team,
                    clear_team=body.clear_team, disabled=body.disabled, display_name=body.display_name)
    if body.password is not None:
        await _db(request, users_store.set_password, user.username, username, body.password)
    auth_config(request.app).forget()  # role/scope/disable take effect at once in this process
    return rec.to_dict()


@router.get("/users/{username}/tokens", summary="A user's API tokens (ids are hash prefixes, never tokens)")
async def list_tokens(username: str, request: Request) -> list[dict[str, Any]]:
    if await _db(request, users_store.get_user, username) is None:
        raise HTTPException(404, f"no user {username!r}")
    return await _db(request, users_store.list_tokens, username)


class TokenIn(BaseModel):
    name: str = Field("", max_length=200)
    days: float | None = Field(None, ge=0, description="0 = never expires; default [cases] api_token_days")


@router.post("/users/{username}/tokens", status_code=201, summary="New API token (shown once)")
async def create_token(username: str, body: TokenIn, request: Request, user: User = ADMIN_ONLY) -> dict[str, Any]:
    days = auth_config(request.app).settings.api_token_days if body.days is None else body.days
    token, expires = await _db(request, users_store.issue_token, user.username, username, "api",
                               timedelta(days=days) if days else None, body.name)
    return {"token": token, "id": users_store.token_hash(token)[:16],
            "expires_at": expires.isoformat() if expires else None}


@router.delete("/users/{username}/tokens/{token_id}", status_code=204)
async def revoke_token(username: str, token_id: str, request: Request, user: User = ADMIN_ONLY) -> Response:
    n = await _db(request, users_store.revoke_token, user.username, token_hash_prefix=token_id, username=username)
    if not n:
        raise HTTPException(404, "no such active token")
    auth_config(request.app).forget()
    return Response(status_code=204)


@router.get("/audit", summary="The audit log, newest first")
async def audit_log(request: Request, object_type: str | None = None, object_id: str | None = None,
                    actor: str | None = None, before_seq: int | None = None,
                    limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    rows = await _db(request, audit.entries, object_type=object_type, object_id=object_id, actor=actor,
                     before_seq=before_seq, limit=limit)
    return [e.to_dict() for e in rows]


@router.get("/audit/verify", summary="Recompute the hash chain; name altered or deleted rows")
async def audit_verify(request: Request) -> dict[str, Any]:
    return (await _db(request, audit.verify)).to_dict()
