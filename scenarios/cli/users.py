"""`fleetwatch users …`: accounts, roles and scopes, passwords, API tokens (every change audited)."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import typer

from scenarios.cli._common import actor as _actor
from scenarios.cli._common import fail as _fail

app = typer.Typer(name="users", help="User accounts, roles and API tokens.", no_args_is_help=True)

ROLES = "admin | supervisor | enforcement | operator | sanitation | auditor"


def _password(given: str | None, prompt: bool) -> str | None:
    if given is not None:
        return given
    env = os.environ.get("FLEETWATCH_PASSWORD")
    if env:
        return env
    if prompt:
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


@app.command()
def add(
    username: str,
    role: str = typer.Option(..., help=ROLES),
    company: list[str] = typer.Option(None, "--company", help="operator: its company (repeatable)"),
    district: list[str] = typer.Option(None, "--district", help="enforcement: its district (repeatable)"),
    team: str = typer.Option(None, help="enforcement: the team cases are dispatched to"),
    name: str = typer.Option("", help="display name"),
    password: str = typer.Option(None, help="(or FLEETWATCH_PASSWORD, or asked for)"),
    machine: bool = typer.Option(False, "--machine", help="no password: API tokens only"),
) -> None:
    """Create a user."""
    from tracker.edges import users
    from tracker.edges.db import connect_from_settings

    pw = None if machine else _password(password, prompt=True)
    with connect_from_settings() as conn:
        try:
            u = users.create_user(conn, _actor(), username, role, password=pw, companies=company or (),
                                  districts=district or (), team=team, display_name=name)
        except users.UserError as exc:
            _fail(exc)
    typer.echo(f"created {u.username} ({u.role})")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """List users with role and scope."""
    from tracker.edges import users
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        rows = users.list_users(conn)
    for u in rows:
        if as_json:
            typer.echo(json.dumps(u.to_dict(), default=str, ensure_ascii=False))
        else:
            scope = ",".join(u.companies or u.districts) or "-"
            typer.echo(f"{u.username:20} {u.role:12} {scope:24} {u.team or '-':16} "
                       f"{'disabled' if u.disabled else 'active'}")


@app.command("set-role")
def set_role(
    username: str,
    role: str = typer.Argument(..., help=ROLES),
    company: list[str] = typer.Option(None, "--company"),
    district: list[str] = typer.Option(None, "--district"),
    team: str = typer.Option(None),
) -> None:
    """Change a user's role (and scope)."""
    from tracker.edges import users
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        try:
            u = users.update_user(conn, _actor(), username, role=role, companies=company or None,
                                  districts=district or None, team=team)
        except users.UserError as exc:
            _fail(exc)
    typer.echo(f"{u.username}: {u.role} {list(u.companies) or list(u.districts) or ''}")


@app.command("set-password")
def set_password(username: str, password: str = typer.Option(None)) -> None:
    """Set a user's password."""
    from tracker.edges import users
    from tracker.edges.db import connect_from_settings

    pw = _password(password, prompt=True)
    with connect_from_settings() as conn:
        try:
            users.set_password(conn, _actor(), username, pw or "")
        except users.UserError as exc:
            _fail(exc)
    typer.echo(f"password of {username} changed")


@app.command()
def disable(username: str, enable: bool = typer.Option(False, "--enable", help="re-enable instead")) -> None:
    """Disable (or re-enable) a user; disabling revokes every token."""
    from tracker.edges import users
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        try:
            users.update_user(conn, _actor(), username, disabled=not enable)
        except users.UserError as exc:
            _fail(exc)
    typer.echo(f"{username} {'enabled' if enable else 'disabled'}")


@app.command()
def token(
    username: str,
    name: str = typer.Option("", help="what the token is for"),
    days: float = typer.Option(None, help="lifetime in days (0 = never expires; default from [cases])"),
    revoke: str = typer.Option(None, help="revoke the token with this id instead (see --list)"),
    list_: bool = typer.Option(False, "--list", help="list the user's API tokens"),
) -> None:
    """Create an API token for a machine (printed once), list or revoke them."""
    from tracker.config import get_settings
    from tracker.edges import users
    from tracker.edges.cases_store import cases_settings
    from tracker.edges.db import connect_from_settings

    with connect_from_settings() as conn:
        try:
            if list_:
                for t in users.list_tokens(conn, username):
                    typer.echo(json.dumps(t, default=str))
                return
            if revoke:
                n = users.revoke_token(conn, _actor(), token_hash_prefix=revoke, username=username)
                typer.echo(f"revoked {n} token(s)")
                return
            d = cases_settings(get_settings()).api_token_days if days is None else days
            tok, expires = users.issue_token(conn, _actor(), username, "api", timedelta(days=d) if d else None, name)
        except users.UserError as exc:
            _fail(exc)
    typer.echo(tok)
    typer.echo(f"(expires {expires or 'never'}; shown once — store it now)", err=True)
