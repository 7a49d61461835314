"""The case store against PostgreSQL: the SQL scope clause agrees with the Python predicate on random
cases, concurrent actions on one case serialise (exactly one wins), and history/audit stay in step."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from tests.cases.conftest import cases_config
from tracker.cases.access import Scope, scope_of
from tracker.cases.dispatch import Dispatcher
from tracker.cases.machine import InvalidTransition
from tracker.cases.model import Actor, Command
from tracker.edges import audit, cases_store
from tracker.edges.refstore import save_vehicles
from tracker.reference import Vehicle

KINDS = ["muck_truck", "sweeper", "refuse_truck", "concrete_mixer", None]


def _random_cases(conn, n=60, seed=7):
    rnd = random.Random(seed)
    vehicles = [Vehicle(id=f"V{i}", kind=rnd.choice(KINDS[:-1]), company=rnd.choice("ABC"),
                        district=rnd.choice(["d1", "d2", "d3"])) for i in range(12)]
    save_vehicles(conn, vehicles)
    cfg = cases_config()
    disp = Dispatcher(cfg.routing)
    sup = Actor.system()
    for i in range(n):
        v = rnd.choice(vehicles + [None])
        kind = rnd.choice(["illegal_dumping", "missed_segment", "speeding", "other"])
        lon, lat = (rnd.uniform(114.0, 114.1), 22.52) if rnd.random() < 0.7 else (None, None)
        cases_store.create_manual(conn, sup, disp, cfg.sla, kind=kind, description=f"r{i}", lon=lon, lat=lat,
                                  vehicle_id=v.id if v else None, district=rnd.choice([None, "d3"]))


def test_sql_scope_matches_python_predicate(pg_conn):
    _random_cases(pg_conn)
    everything = cases_store.list_cases(pg_conn, Scope(), limit=None)
    assert len(everything) == 60
    scopes = [scope_of("operator", ["A"]), scope_of("operator", ["B", "C"]), scope_of("operator", []),
              scope_of("enforcement", districts=["d1"]), scope_of("enforcement", districts=["d2", "d3"]),
              scope_of("sanitation"), scope_of("sanitation", districts=["d1"]), scope_of("auditor"),
              scope_of("supervisor", companies=["A"], districts=["d2"])]
    seen_nonempty = 0
    for scope in scopes:
        sql_ids = {c.id for c in cases_store.list_cases(pg_conn, scope, limit=None)}
        py_ids = {c.id for c in everything if cases_store.visible(c, scope)}
        assert sql_ids == py_ids, scope
        seen_nonempty += bool(py_ids) and py_ids != {c.id for c in everything}
    assert seen_nonempty >= 6  # the scopes really cut


def test_concurrent_actions_serialise(pg_url):
    cfg = cases_config()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        case = cases_store.create_manual(conn, Actor.system(), Dispatcher(cfg.routing), cfg.sla, kind="speeding",
                                         description="x", lon=114.02, lat=22.52)
    results: list[str] = []

    def accept(i):
        with psycopg.connect(pg_url, autocommit=True) as c:
            try:
                cases_store.act(c, case.id, Command(action="accept"),
                                Actor(username=f"sup{i}", role="supervisor"), cfg.sla)
                results.append("ok")
            except InvalidTransition:
                results.append("409")

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["409"] * 5 + ["ok"]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        hist = cases_store.events(conn, case.id)
        assert [e.action for e in hist] == ["collect", "accept"]
        assert cases_store.load(conn, case.id).version == 1
        assert [e.action for e in reversed(audit.entries(conn, object_type="case"))] == ["case.collect", "case.accept"]
        try:
            cases_store.act(conn, case.id, Command(action="dispatch", team="t"), Actor(username="s", role="supervisor"),
                            cfg.sla, expected_version=0)
            raise AssertionError("stale version accepted")
        except cases_store.VersionConflict:
            pass
        try:
            conn.execute("DELETE FROM cases")
            raise AssertionError("a case was deleted")
        except psycopg.Error:
            pass


def test_escalation_skips_a_case_acted_on_meanwhile(pg_conn):
    cfg = cases_config()
    disp = Dispatcher(cfg.routing)
    case = cases_store.create_manual(pg_conn, Actor.system(), disp, cfg.sla, kind="illegal_dumping",
                                     description="x", lon=114.02, lat=22.52)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert [e.level for _, e in cases_store.escalate(pg_conn, cfg.sla, now=later)] == [2]  # 5-min accept clock
    cases_store.act(pg_conn, case.id, Command(action="accept"), Actor(username="s", role="supervisor"), cfg.sla)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    assert cases_store.escalate(pg_conn, cfg.sla, now=soon) == []  # a new clock (dispatch, 10 min): not due
    [(c, e)] = cases_store.escalate(pg_conn, cfg.sla, now=later)
    assert (e.clock, e.level, c.escalation) == ("dispatch", 2, 2)
