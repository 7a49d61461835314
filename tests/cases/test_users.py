"""Users, passwords and tokens in a real PostgreSQL, and the `fleetwatch users|cases` commands."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from tests.cases.conftest import IN_D1, T_ALERT, add_alert, add_track, seed_city
from tracker.edges import audit, users


def test_user_rules(pg_conn):
    with pytest.raises(users.UserError, match="company"):
        users.create_user(pg_conn, "t", "op", "operator", password="long enough")
    with pytest.raises(users.UserError, match="district"):
        users.create_user(pg_conn, "t", "enf", "enforcement")
    with pytest.raises(users.UserError, match="unknown role"):
        users.create_user(pg_conn, "t", "x", "king")
    with pytest.raises(users.UserError, match="at least 8"):
        users.create_user(pg_conn, "t", "x", "admin", password="short")
    with pytest.raises(users.UserError, match="bad user name"):
        users.create_user(pg_conn, "t", "a b", "admin")
    u = users.create_user(pg_conn, "t", "op", "operator", password="long enough", companies=["B", "A", "A"])
    assert u.companies == ("A", "B") and u.has_password
    with pytest.raises(users.UserError, match="exists"):
        users.create_user(pg_conn, "t", "op", "admin")
    with pytest.raises(users.UserError, match="company"):
        users.update_user(pg_conn, "t", "op", companies=[])
    with pytest.raises(psycopg.Error):
        pg_conn.execute("DELETE FROM users WHERE username = 'op'")
    stored = pg_conn.execute("SELECT password_hash FROM users WHERE username = 'op'").fetchone()[0]
    assert stored.startswith("$argon2id$") and "long enough" not in stored


def test_password_login_lockout_and_disable(pg_conn, cheap_argon2):
    users.create_user(pg_conn, "t", "sup", "supervisor", password="s3cret-pass")
    assert users.authenticate(pg_conn, "sup", "s3cret-pass").username == "sup"
    assert users.authenticate(pg_conn, "sup", "wrong") is None
    assert users.authenticate(pg_conn, "nobody", "whatever") is None
    for _ in range(3):
        assert users.authenticate(pg_conn, "sup", "wrong", max_failures=3) is None
    assert users.authenticate(pg_conn, "sup", "s3cret-pass", max_failures=3) is None  # locked, even right
    users.set_password(pg_conn, "admin", "sup", "n3w-password")  # an admin reset unlocks
    assert users.authenticate(pg_conn, "sup", "n3w-password") is not None
    tok, _ = users.issue_token(pg_conn, "admin", "sup", "api", None, "etl")
    assert users.resolve_token(pg_conn, tok)[0].username == "sup"
    users.update_user(pg_conn, "admin", "sup", disabled=True)
    assert users.authenticate(pg_conn, "sup", "n3w-password") is None
    assert users.resolve_token(pg_conn, tok) is None  # disabling revoked the tokens
    users.update_user(pg_conn, "admin", "sup", disabled=False)
    assert users.resolve_token(pg_conn, tok) is None  # ... for good


def test_tokens_expire_and_revoke_and_are_stored_hashed(pg_conn, cheap_argon2):
    users.create_user(pg_conn, "t", "bot", "auditor")  # machine account: no password
    assert users.authenticate(pg_conn, "bot", "") is None
    old, _ = users.issue_token(pg_conn, "admin", "bot", "api", timedelta(seconds=-1))
    live, expires = users.issue_token(pg_conn, "admin", "bot", "api", None, "forever")
    assert users.resolve_token(pg_conn, old) is None and expires is None
    user, kind = users.resolve_token(pg_conn, live)
    assert (user.username, user.role, kind) == ("bot", "auditor", "api")
    assert pg_conn.execute("SELECT count(*) FROM auth_tokens WHERE token_hash = %s", (live,)).fetchone()[0] == 0
    [listed] = [t for t in users.list_tokens(pg_conn, "bot") if t["name"] == "forever"]
    assert users.revoke_token(pg_conn, "admin", token_hash_prefix=listed["id"], username="bot") == 1
    assert users.resolve_token(pg_conn, live) is None
    details = " ".join(e.details for e in audit.entries(pg_conn, object_type="user"))
    assert live not in details and old not in details
    assert [e.action for e in reversed(audit.entries(pg_conn, object_type="user"))] == [
        "user.create", "token.create", "token.create", "token.revoke"]
    assert audit.verify(pg_conn).ok


@pytest.fixture
def cli(pg_url, redis_url, tmp_path, monkeypatch):
    from tracker.config import get_settings

    monkeypatch.setenv("FLEETWATCH_DATABASE_URL", pg_url)
    monkeypatch.setenv("FLEETWATCH_REDIS_URL", redis_url)
    monkeypatch.setenv("FLEETWATCH_DATA_DIR", str(tmp_path / "fw"))
    monkeypatch.setenv("FLEETWATCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("FLEETWATCH_ACTOR", "ops-alice")
    get_settings.cache_clear()
    from scenarios.cli import app

    runner = CliRunner()
    yield lambda *args, **kw: runner.invoke(app, list(args), catch_exceptions=False, **kw)
    get_settings.cache_clear()


def test_users_cli(cli, pg_conn, cheap_argon2):
    r = cli("users", "add", "enf9", "--role", "enforcement", "--district", "d9", "--team", "t9",
            "--password", "password-9")
    assert r.exit_code == 0 and "created enf9 (enforcement)" in r.stdout
    assert cli("users", "add", "op9", "--role", "operator", "--password", "password-9").exit_code == 2  # no company
    r = cli("users", "add", "etl", "--role", "auditor", "--machine")
    assert r.exit_code == 0
    r = cli("users", "set-role", "enf9", "supervisor")
    assert r.exit_code == 0
    listed = [json.loads(line) for line in cli("users", "list", "--json").stdout.splitlines()]
    assert {(u["username"], u["role"]) for u in listed} == {("enf9", "supervisor"), ("etl", "auditor")}
    r = cli("users", "token", "etl", "--name", "nightly export", "--days", "30")
    token = r.stdout.strip().splitlines()[0]
    assert r.exit_code == 0 and token.startswith("fw_")
    assert users.resolve_token(pg_conn, token)[0].username == "etl"
    tid = json.loads(cli("users", "token", "etl", "--list").stdout.splitlines()[0])["id"]
    assert "revoked 1" in cli("users", "token", "etl", "--revoke", tid).stdout
    assert users.resolve_token(pg_conn, token) is None
    assert {e.actor for e in audit.entries(pg_conn, object_type="user")} == {"ops-alice"}


def test_cases_cli(cli, pg_conn, tmp_path, cheap_argon2):
    seed_city(pg_conn)
    add_track(pg_conn, "VA1", *IN_D1, T_ALERT)
    alert_id = add_alert(pg_conn, "illegal_dumping", "VA1", *IN_D1)
    r = cli("cases", "scan")
    assert r.exit_code == 0 and "opened 1 case(s)" in r.stdout, r.stdout
    line = cli("cases", "list").stdout.splitlines()[0]
    assert line.split()[:4] == ["1", "collected", "urgent", "illegal_dumping"]
    shown = json.loads(cli("cases", "show", "1").stdout)
    assert shown["case"]["alert_id"] == alert_id and shown["history"][0]["action"] == "collect"
    assert cli("cases", "show", "99").exit_code == 2
    out = tmp_path / "ev.zip"
    r = cli("cases", "export-evidence", "1", "-o", str(out), "--minutes", "1")
    assert r.exit_code == 0
    body = json.loads(zipfile.ZipFile(io.BytesIO(out.read_bytes())).read("case.json"))
    assert body["window"]["fixes"] == 4 * 6 and body["exported_by"].startswith("cli:")
    stats = [json.loads(x) for x in cli("cases", "stats", "--by", "company").stdout.splitlines()]
    assert [(s["key"], s["collected"]) for s in stats] == [("A", 1)]
    assert cli("cases", "stats", "--by", "colour").exit_code == 2
    assert audit.entries(pg_conn, object_type="case", limit=1)[0].action == "case.export_evidence"
