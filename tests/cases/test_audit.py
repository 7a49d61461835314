"""The audit chain against a real PostgreSQL: append-only triggers, exact detection of an UPDATE or DELETE
made by a superuser who disabled the triggers (through the real `fleetwatch audit verify` command), one
chain under concurrent appenders, and raw positions that only the logged retention may remove."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import psycopg
import pytest

from tracker.edges import audit, history
from tracker.fix import conform

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fill(conn, n=6):
    for i in range(1, n + 1):
        audit.append(conn, f"user{i % 2}", "fence.update", "fence", f"F{i}",
                     {"version": i, "area_m2": 1e20 if i == 3 else 12.5 * i, "名称": "工地", "at": datetime(2026, 1, i, tzinfo=UTC)})


def _cli_verify(pg_url, redis_url, tmp_path, *extra):
    env = {**os.environ, "FLEETWATCH_DATABASE_URL": pg_url, "FLEETWATCH_REDIS_URL": redis_url,
           "FLEETWATCH_DATA_DIR": str(tmp_path / "fw"), "FLEETWATCH_CONFIG": str(tmp_path / "none.toml")}
    return subprocess.run([sys.executable, "-m", "scenarios.cli", "audit", "verify", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_chain_verifies_and_rows_link(pg_conn):
    _fill(pg_conn)
    report = audit.verify(pg_conn)
    assert report.ok and report.rows == 6 and report.head[0] == 6, report.problems
    rows = audit.entries(pg_conn, limit=10)
    assert [e.seq for e in rows] == [6, 5, 4, 3, 2, 1]
    assert rows[-1].prev_hash == audit.GENESIS and rows[0].prev_hash == rows[1].hash
    assert rows[3].to_dict()["details"]["area_m2"] == 1e20  # numbers kept exactly as hashed
    assert audit.entries(pg_conn, object_type="fence", object_id="F2")[0].seq == 2


def test_triggers_refuse_update_delete_truncate(pg_conn):
    _fill(pg_conn, 2)
    for sql in ("UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 2",
                "TRUNCATE audit_log", "UPDATE audit_head SET seq = 1", "DELETE FROM audit_head",
                "INSERT INTO audit_log VALUES (9, now(), 'a', 'b', 'c', 'd', '{}', 'x', 'y')"):
        with pytest.raises(psycopg.Error):
            pg_conn.execute(sql)
    assert audit.verify(pg_conn).ok


def test_cli_names_the_row_a_superuser_updated(pg_conn, pg_url, redis_url, tmp_path):
    _fill(pg_conn)
    ok = _cli_verify(pg_url, redis_url, tmp_path)
    assert ok.returncode == 0 and "audit log OK: 6 rows" in ok.stdout, ok.stdout + ok.stderr
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL session_replication_role = replica")  # triggers off (superuser only)
        pg_conn.execute("""UPDATE audit_log SET details = replace(details, '"version":4', '"version":5')
                           WHERE seq = 4""")
    bad = _cli_verify(pg_url, redis_url, tmp_path)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = [ln for ln in bad.stdout.splitlines() if ln.startswith("TAMPERED")]
    assert lines == [lines[0]] and lines[0].startswith("TAMPERED row 4 [altered]"), bad.stdout
    assert "fence.update fence F4" in lines[0]


def test_cli_names_the_rows_a_superuser_deleted(pg_conn, pg_url, redis_url, tmp_path):
    _fill(pg_conn, 8)
    pg_conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    pg_conn.execute("DELETE FROM audit_log WHERE seq = 3")
    pg_conn.execute("DELETE FROM audit_log WHERE seq IN (7, 8)")  # the newest rows: only the head knows
    pg_conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    bad = _cli_verify(pg_url, redis_url, tmp_path)
    assert bad.returncode == 1
    lines = [ln for ln in bad.stdout.splitlines() if ln.startswith("TAMPERED")]
    assert len(lines) == 2, bad.stdout
    assert lines[0].startswith("TAMPERED row 3 [missing]: row 3 deleted")
    assert lines[1].startswith("TAMPERED row 7 [missing]: rows 7..8 deleted")


def test_rehashed_edit_breaks_the_next_link_and_the_anchor(pg_conn):
    _fill(pg_conn, 5)
    anchor = audit.head(pg_conn)
    e = audit.entries(pg_conn, object_id="F2")[0]
    forged = audit.row_hash(e.prev_hash, e.seq, e.at, "someone-else", e.action, e.object_type, e.object_id, e.details)
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL session_replication_role = replica")
        pg_conn.execute("UPDATE audit_log SET actor = 'someone-else', hash = %s WHERE seq = 2", (forged,))
    problems = audit.verify(pg_conn).problems
    assert [(p.seq, p.kind) for p in problems] == [(3, "broken_link")]
    # an attacker who re-hashes everything after it is caught only by a published anchor
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL session_replication_role = replica")
        prev = forged
        for seq in range(3, 6):
            r = pg_conn.execute("SELECT seq, at, actor, action, object_type, object_id, details FROM audit_log "
                                "WHERE seq = %s", (seq,)).fetchone()
            h = audit.row_hash(prev, *r)
            pg_conn.execute("UPDATE audit_log SET prev_hash = %s, hash = %s WHERE seq = %s", (prev, h, seq))
            prev = h
        pg_conn.execute("UPDATE audit_head SET hash = %s", (prev,))
    assert audit.verify(pg_conn).ok
    assert [p.kind for p in audit.verify(pg_conn, expect=anchor).problems] == ["anchor_mismatch"]


def test_concurrent_appenders_keep_one_chain(pg_url):
    def worker(k):
        with psycopg.connect(pg_url, autocommit=True) as c:
            for i in range(15):
                audit.append(c, f"w{k}", "plan.update", "plan", f"P{k}-{i}", {"i": i})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(pg_url, autocommit=True) as c:
        report = audit.verify(c)
    assert report.ok and report.rows == 90, report.problems


def test_rolled_back_action_leaves_no_audit_row(pg_conn):
    _fill(pg_conn, 1)
    with pytest.raises(RuntimeError):
        with pg_conn.transaction():
            audit.append(pg_conn, "u", "permit.update", "permit", "P1", {})
            raise RuntimeError("the change failed")
    assert audit.head(pg_conn)[0] == 1 and audit.verify(pg_conn).ok


def _fixes(conn, day0: datetime, days: int):
    n = days * 24
    df = conform(pl.DataFrame({"vehicle_id": ["V1"] * n,
                               "ts_ms": int(day0.timestamp() * 1000) + np.arange(n) * 3_600_000,
                               "lon": np.full(n, 114.05), "lat": np.full(n, 22.54)})
                 ).with_columns(pl.lit(0x8C4BA0A415A0FFF, dtype=pl.UInt64).alias("h3"))
    with conn.transaction():
        history.write_fixes(conn, df)


def test_fixes_are_append_only_except_for_logged_retention(pg_conn):
    day0 = datetime(2026, 1, 1, tzinfo=UTC)
    _fixes(pg_conn, day0, 3)
    for sql in ("UPDATE fixes SET lon = 0", "DELETE FROM fixes", "TRUNCATE fixes",
                "DELETE FROM fixes_20260101", "DROP TABLE fixes_20260102"):
        with pytest.raises(psycopg.Error, match="retention"):
            pg_conn.execute(sql)
    assert pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] == 72
    removed = audit.purge_fixes(pg_conn, "ops", day0 + timedelta(days=1, hours=6))
    assert removed == 30  # day 1 dropped whole (24) + 6 rows of day 2
    assert pg_conn.execute("SELECT count(*) FROM fixes").fetchone()[0] == 42
    assert pg_conn.execute("SELECT to_regclass('fixes_20260101')").fetchone()[0] is None
    [e] = audit.entries(pg_conn, object_type="fixes")
    assert e.actor == "ops" and e.to_dict()["details"]["rows"] == 30
    assert e.to_dict()["details"]["partitions_dropped"] == ["fixes_20260101"]
    with pytest.raises(psycopg.Error):  # the switch was local to the retention transaction
        pg_conn.execute("DELETE FROM fixes")


def test_fence_and_permit_changes_are_captured_without_any_call(pg_conn):
    """The capture triggers chain every fence/permit change, whoever wrote it."""
    from datetime import date

    import shapely

    from geofences.model import Fence
    from geofences.store import save_fences
    from tracker.edges.refstore import save_docs
    from tracker.reference import Permit

    site = Fence(id="S1", name="site", kind="construction_site", shape="circle", radius_m=100,
                 geometry=shapely.Point(114.02, 22.52))
    save_fences(pg_conn, [site], actor="clerk")
    save_fences(pg_conn, [Fence(id="S1", name="site", kind="construction_site", shape="circle", radius_m=150,
                                geometry=site.geometry)], actor="clerk")
    permit = Permit(id="P1", vehicles=("V1",), company="A", origin_fence="S1", disposal_fence="D1", route_fence="R1",
                    valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31))
    with pg_conn.transaction():
        pg_conn.execute("SET LOCAL fleetwatch.actor = 'approver-li'")
        save_docs(pg_conn, "permit", [permit], actor="clerk")
    assert audit.pending_count(pg_conn) == 4
    with pytest.raises(psycopg.Error):
        pg_conn.execute("DELETE FROM audit_pending")
    with pytest.raises(psycopg.Error):
        pg_conn.execute("UPDATE audit_pending SET actor = 'x'")
    assert audit.verify(pg_conn).pending == 4
    audit.append(pg_conn, "ops", "user.create", "user", "u1", {})  # any append chains the queue first
    rows = list(reversed(audit.entries(pg_conn)))
    assert [(e.action, e.object_id, e.actor) for e in rows] == [
        ("fence.save", "S1", "clerk"), ("fence.close", "S1", "clerk"), ("fence.save", "S1", "clerk"),
        ("permit.save", "P1", "approver-li"), ("user.create", "u1", "ops")]
    d = [e.to_dict()["details"] for e in rows]
    assert d[0]["row"]["version"] == 1 and "geometry" not in d[0]["row"] and len(d[0]["row"]["geometry_md5"]) == 32
    assert d[1]["row"]["version"] == 1 and d[1]["row"]["recorded_to"] and d[2]["row"]["radius_m"] == 150
    assert d[3]["row"]["body_md5"] and d[3]["table"] == "reference_docs"
    assert audit.pending_count(pg_conn) == 0 and audit.verify(pg_conn).ok
    assert audit.drain_pending(pg_conn) == 0
