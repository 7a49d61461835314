"""Trips on the dashboard: `/api/trips` and the statistics page read the `trips` table the worker fills.

The trips are not seeded: a simulated city's fixes go onto the bus and a real `Worker` decides them and
writes them through `TripSink` into the app's PostgreSQL, exactly as in a deployment. Every answer is compared
with the engine's own trip records (`engine.trips.frame()`), filter by filter, and per user scope."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import httpx
import polars as pl
import pytest

from scenarios.demo import load_reference
from scenarios.sim import generate
from scenarios.sim.config import load_scenario
from tracker.edges import bus, users
from tracker.edges.worker import Worker

ALL_TIME = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def trips(runtime, db, rclient) -> pl.DataFrame:  # noqa: ANN001
    """The engine's trip records after a simulated hour went through the real worker path."""
    sim = generate(load_scenario("standard", seed=3, vehicles=20, hours=1.0))
    load_reference(runtime.settings.database_url, sim)
    names = bus.StreamNames(runtime.settings.bus.prefix, runtime.settings.bus.shards)
    bus.publish_fixes(rclient, names, sim.fixes, block_size=500)
    w = Worker(runtime.settings, runtime.services.redis_url, runtime.settings.database_url, consumer="trips-test")
    try:
        while w.step(block_ms=200, count=16):
            pass
        frame = w.engine.trips.frame()
    finally:
        w.close()
    assert frame.height >= 5, "the scenario should give the engine trips to decide"
    assert frame.filter(pl.col("outcome") == "completed").height >= 3
    return frame


def _get_all(client: httpx.Client, **params) -> dict:  # noqa: ANN003
    resp = client.get("/api/trips", params={**ALL_TIME, "limit": 5000, **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


def _ids(client: httpx.Client, **params) -> set[str]:  # noqa: ANN003
    body = _get_all(client, **params)
    assert body["total"] == len(body["trips"])
    return {t["id"] for t in body["trips"]}


def _want(frame: pl.DataFrame, expr: pl.Expr | None = None) -> set[str]:
    return set((frame if expr is None else frame.filter(expr))["id"].to_list())


def test_every_trip_the_worker_decided_is_served(api, trips):  # noqa: ANN001
    body = _get_all(api)
    assert body["total"] == trips.height
    by_id = {t["id"]: t for t in body["trips"]}
    assert set(by_id) == _want(trips)
    for r in trips.iter_rows(named=True):
        t = by_id[r["id"]]
        assert (t["vehicle_id"], t["outcome"], t["start_ts_ms"], t["end_ts_ms"]) == \
            (r["vehicle_id"], r["outcome"], r["start_ts_ms"], r["end_ts_ms"])
        assert (t["origin"] or {}).get("id") == r["origin_fence"]
        assert (t["destination"] or {}).get("id") == r["dest_fence"]
        assert t["day"] == (date(1970, 1, 1) + timedelta(days=r["local_day"])).isoformat()
    named = [t for t in body["trips"] if t["origin"]]
    assert named and all(t["origin"]["name"] for t in named)  # fence names from the fence store
    starts = [t["start_ts_ms"] for t in body["trips"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    page = api.get("/api/trips", params={**ALL_TIME, "limit": 2, "offset": 1}).json()
    assert page["total"] == trips.height and [t["id"] for t in page["trips"]] == [t["id"] for t in body["trips"][1:3]]


def test_filters(api, trips):  # noqa: ANN001
    vid = Counter(trips["vehicle_id"].to_list()).most_common(1)[0][0]
    assert _ids(api, vehicle_id=vid) == _want(trips, pl.col("vehicle_id") == vid)
    company = trips["company"].drop_nulls()[0]
    assert _ids(api, company=company) == _want(trips, pl.col("company") == company)
    site = trips["origin_fence"].drop_nulls().mode()[0]
    assert _ids(api, site=site) == _want(trips, pl.col("origin_fence") == site)
    disposal = trips["dest_fence"].drop_nulls().mode()[0]
    assert _ids(api, disposal_site=disposal) == _want(trips, pl.col("dest_fence") == disposal)
    both = _ids(api, site=site, disposal_site=disposal)
    assert both == _want(trips, (pl.col("origin_fence") == site) & (pl.col("dest_fence") == disposal))
    day = trips["local_day"][0]
    iso = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
    assert _ids(api, day=iso) == _want(trips, pl.col("local_day") == day)
    assert _ids(api, day="1999-01-01") == set()
    assert _ids(api, outcome="completed") == _want(trips, pl.col("outcome") == "completed")
    assert api.get("/api/trips", params={"outcome": "bogus"}).status_code == 422
    # the time range selects trips by their start
    mid = sorted(trips["start_ts_ms"].to_list())[trips.height // 2]
    at = datetime.fromtimestamp(mid / 1000, tz=UTC).isoformat()
    assert _ids(api, since=at) == _want(trips, pl.col("start_ts_ms") >= mid)
    assert _ids(api, until=at) == _want(trips, pl.col("start_ts_ms") < mid)
    assert _ids(api, vehicle_id="NOPE") == set()  # the city-wide admin: no trips, nothing to hide


def test_scope_of_an_operator(runtime, db, trips):  # noqa: ANN001
    own = trips["company"].drop_nulls().mode()[0]
    other = next(c for c in trips["company"].drop_nulls().unique().to_list() if c != own)
    users.create_user(db, "test", "trips-op", "operator", password="operator password", companies=[own])
    with httpx.Client(base_url=runtime.base_url, timeout=60) as anon:
        assert anon.get("/api/trips").status_code == 401
        tok = anon.post("/api/auth/login", json={"username": "trips-op", "password": "operator password"}).json()
    with httpx.Client(base_url=runtime.base_url, timeout=60, headers={"Authorization": f"Bearer {tok['token']}"}) as op:
        assert _ids(op) == _want(trips, pl.col("company") == own)
        assert op.get("/api/trips", params={"company": other}).status_code == 403
        foreign_vehicle = trips.filter(pl.col("company") == other)["vehicle_id"][0]
        assert op.get("/api/trips", params={"vehicle_id": foreign_vehicle}).status_code == 404
        st = op.get("/api/stats", params=ALL_TIME).json()
        mine = trips.filter((pl.col("company") == own) & (pl.col("outcome") == "completed"))
        assert sum(x["trips"] for x in st["trips_by_origin"]) == mine["origin_fence"].drop_nulls().len()


def test_stats_count_completed_trips_per_site_and_disposal_site(api, trips):  # noqa: ANN001
    st = api.get("/api/stats", params=ALL_TIME).json()
    assert st["trips_available"] is True
    done = trips.filter(pl.col("outcome") == "completed")
    want_origin = Counter(done["origin_fence"].drop_nulls().to_list())
    want_dest = Counter(done["dest_fence"].drop_nulls().to_list())
    assert {x["place_id"]: x["trips"] for x in st["trips_by_origin"]} == want_origin
    assert {x["place_id"]: x["trips"] for x in st["trips_by_disposal"]} == want_dest
    assert [x["trips"] for x in st["trips_by_origin"]] == sorted(want_origin.values(), reverse=True)
    assert all(x["name"] for x in st["trips_by_origin"] + st["trips_by_disposal"])
    # a window before the simulated day has none
    empty = api.get("/api/stats", params={"since": "2001-01-01T00:00:00Z", "until": "2001-01-02T00:00:00Z"}).json()
    assert empty["trips_by_origin"] == [] and empty["trips_by_disposal"] == []


def test_statistics_page_draws_trips_per_site(runtime, browser, trips, artifacts_dir):  # noqa: ANN001
    done = trips.filter(pl.col("outcome") == "completed")
    want = done["origin_fence"].drop_nulls().len() + done["dest_fence"].drop_nulls().len()
    page = browser.page()
    try:
        page.goto(f"{runtime.base_url}/stats")
        page.select_option("#days", "90")
        page.wait_for_function(f"window.fleetwatch && window.fleetwatch.tripsShown === {want}", timeout=120_000)
        bars = page.locator("#trips g[data-side='origin']").count() + page.locator("#trips g[data-side='disposal']").count()
        assert bars == len(set(done["origin_fence"].drop_nulls())) + len(set(done["dest_fence"].drop_nulls()))
        page.screenshot(path=str(artifacts_dir / "stats-trips.png"), full_page=True)
    finally:
        page.close()
    assert not browser.errors
