"""Plans and reports in PostgreSQL, and the coverage API with its scoping — on the real embedded server."""

from __future__ import annotations

import io

import msgspec
import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard.auth import User, current_user
from dashboard.routes_coverage import make_router
from geofences.store import save_fences
from tests.coverage import synth as S
from tests.coverage.test_rules import FENCES, day_plans, fix_stream
from tracker.coverage.plans import encode
from tracker.edges import coverage_store as store
from tracker.edges.history import write_fixes
from tracker.fix import conform


@pytest.fixture
def db(pg_conn, settings):
    save_fences(pg_conn, FENCES, actor="test")
    store.save_plans(pg_conn, day_plans(), actor="test")
    fx = conform(fix_stream().with_columns(pl.col("ts_ms").alias("received_ts_ms"), pl.lit("test").alias("source")))
    from geofences.h3util import cells_at

    with pg_conn.transaction():
        n = write_fixes(pg_conn, fx.with_columns(pl.Series("h3", cells_at(fx["lon"].to_numpy(), fx["lat"].to_numpy(),
                                                                          12))))
    assert n >= fx.height - 5  # a drive ending where the next begins repeats a (vehicle, time)
    return pg_conn


def test_plans_are_versioned_documents(db):
    assert store.save_plans(db, day_plans()) == {"work_plans": 0, "collection_schedules": 0}  # unchanged
    p = day_plans()
    changed = msgspec.structs.replace(p.work_plans[0], windows=["05:00-06:30"])
    p.work_plans[0] = changed
    assert store.save_plans(db, p)["work_plans"] == 1
    got = {w.id: w for w in store.load_plans(db).work_plans}
    assert got["WP-V1"].windows == ["05:00-06:30"] and got["WP-V1"].version == 2 and got["WP-V2"].version == 1


def test_a_day_is_computed_from_history_stored_and_read_back(db, settings):
    rep = store.report(db, S.DAY, settings)
    assert set(rep.segments.filter(pl.col("verdict") == "missed")["segment_id"].to_list()) == {"V1-s2"}
    assert rep.points.filter(pl.col("verdict") == "missed")["point_id"].to_list() == ["P2"]
    again = store.load_report(db, S.DAY)
    assert again is not None and again.segments.equals(rep.segments) and again.summary() == rep.summary()
    assert store.days(db)[0]["day"] == S.DAY.isoformat()


class _State:
    def __init__(self, settings, url):
        self.settings, self.url, self.cache = settings, url, {}

    def db(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    async def run_sync(self, fn, *args):
        return fn(*args)

    def cached(self, key, ttl_s, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


def _client(settings, pg_url, user: User) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: state))
    state = _State(settings, pg_url)
    app.dependency_overrides[current_user] = lambda: user
    return TestClient(app)


def _user(role: str, companies: frozenset[str] = frozenset()) -> User:
    from tracker.cases.vocab import Role

    return User(username=f"u-{role}", role=Role(role), companies=companies, display_name=role)


def test_api_report_files_map_and_page(db, settings, pg_url):
    c = _client(settings, pg_url, _user("supervisor"))
    r = c.get("/api/coverage/report", params={"date": S.DAY.isoformat()})
    assert r.status_code == 200 and r.json()["summary"]["missed"] == 1
    assert {x["company"] for x in r.json()["companies"]} == {"c1"}
    m = c.get("/api/coverage/map", params={"date": S.DAY.isoformat()}).json()
    status = {f["properties"]["segment_id"]: f["properties"]["status"] for f in m["segments"]["features"]}
    assert status["V1-s2"] == "missed" and status["V1-s1"] == "covered"
    assert any(p["missed"] and p["point_id"] == "P2" for p in m["points"]) and m["hexes"]
    for fmt, magic in (("csv", b"\xef\xbb\xbf"), ("xlsx", b"PK"), ("png", b"\x89PNG"), ("parquet", b"PAR1")):
        f = c.get(f"/api/coverage/report.{fmt}", params={"date": S.DAY.isoformat(), "table": "segments"})
        assert f.status_code == 200 and f.content.startswith(magic), fmt
        assert "attachment" in f.headers["content-disposition"]
    assert pl.read_parquet(io.BytesIO(c.get("/api/coverage/report.parquet", params={
        "date": S.DAY.isoformat(), "table": "companies"}).content))["company"].to_list() == ["c1"]
    assert c.get("/api/coverage/report.pdf", params={"date": S.DAY.isoformat()}).status_code == 404
    assert c.get("/coverage").status_code == 200


def test_api_scope_and_plan_writes(db, settings, pg_url):
    other = _client(settings, pg_url, _user("operator", frozenset({"another company"})))
    r = other.get("/api/coverage/report", params={"date": S.DAY.isoformat()}).json()
    assert r["companies"] == [] and r["rounds"] == [] and not r["summary"].get("segment_windows")
    assert msgspec.json.decode(other.get("/api/coverage/plans").content)["work_plans"] == []
    assert other.put("/api/coverage/plans", content=encode(day_plans())).status_code == 403
    admin = _client(settings, pg_url, _user("admin"))
    bad = encode(day_plans()).replace(b'"05:00-06:00"', b'"25:00-26:00"')
    r = admin.put("/api/coverage/plans", content=bad)
    assert r.status_code == 422 and r.json()["detail"]["problems"]
    ok = admin.put("/api/coverage/plans", content=encode(day_plans()))
    assert ok.status_code == 200 and ok.json()["work_plans"] == 3

