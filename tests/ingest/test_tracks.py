"""Track replay API against real PostgreSQL: GeoJSON and Parquet tracks, vehicles through an area by H3
ranges (exact at the edges), validation."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from ingest.routes_tracks import make_router
from tracker.edges import history, users
from tracker.edges.worker import add_h3
from tracker.fix import conform

T0 = int(datetime(2026, 11, 20, 8, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def client(settings, pg_conn):
    # A drives west→east along lat 22.54 through the box; B stays north of it; C only touches it at one fix
    n = 60
    a = pl.DataFrame({"vehicle_id": ["A"] * n, "ts_ms": T0 + np.arange(n) * 10_000,
                      "lon": np.linspace(114.00, 114.10, n), "lat": np.full(n, 22.54),
                      "valid": [i != 5 for i in range(n)], "cover_closed": [None, True] * (n // 2)})
    b = pl.DataFrame({"vehicle_id": ["B"] * n, "ts_ms": T0 + np.arange(n) * 10_000,
                      "lon": np.linspace(114.00, 114.10, n), "lat": np.full(n, 22.60)})
    c = pl.DataFrame({"vehicle_id": ["C", "C"], "ts_ms": [T0, T0 + 10_000], "lon": [114.0500, 114.2],
                      "lat": [22.5700, 22.57]})
    df = add_h3(conform(pl.concat([a, b, c], how="diagonal")), settings.h3.fix_res)
    with pg_conn.transaction():
        history.write_fixes(pg_conn, df)
    app = create_app(settings, settings.redis_url, settings.database_url)
    if not any(getattr(r, "path", "") == "/api/tracks" for r in app.routes):  # the app may mount it itself
        app.include_router(make_router(lambda: app.state.fw))
    users.create_user(pg_conn, "test", "tracks-admin", "admin", password="pw-Tracks-1234")
    token, _ = users.issue_token(pg_conn, "test", "tracks-admin", "api", None)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


RANGE = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


def test_track_as_geojson(client):
    r = client.get("/api/vehicles/A/track", params=RANGE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    line, points = fc["features"][0], fc["features"][1:]
    assert line["geometry"]["type"] == "LineString" and len(line["geometry"]["coordinates"]) == 59  # invalid fix out
    assert len(points) == 60 and fc["properties"]["fixes"] == 60
    times = [p["properties"]["ts_ms"] for p in points]
    assert times == sorted(times) and times[0] == T0
    assert [p["properties"]["cover_closed"] for p in points[:2]] == [None, True]
    empty = client.get("/api/vehicles/nobody/track", params=RANGE).json()
    assert empty["features"] == []


def test_track_as_parquet(client):
    r = client.get("/api/vehicles/A/track", params={**RANGE, "format": "parquet"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    df = pl.read_parquet(io.BytesIO(r.content))
    assert df.height == 60 and df.get_column("ts").is_sorted()
    part = client.get("/api/vehicles/A/track", params={"from": "2026-11-20T08:00:00Z",
                                                       "to": "2026-11-20T08:01:00Z", "format": "parquet"})
    assert pl.read_parquet(io.BytesIO(part.content)).height == 6  # [from, to)


def test_vehicles_through_an_area(client):
    box = "114.04,22.53,114.06,22.58"
    got = client.get("/api/tracks", params={**RANGE, "area": box}).json()
    ids = {v["vehicle_id"]: v for v in got["vehicles"]}
    assert set(ids) == {"A", "C"}  # B passes 2 km north; C's one fix inside
    assert ids["C"]["fixes"] == 1
    assert ids["A"]["fixes"] == sum(114.04 <= x <= 114.06 for x in np.linspace(114.00, 114.10, 60))
    poly = {"type": "Polygon", "coordinates": [[[114.0, 22.59], [114.1, 22.59], [114.1, 22.61], [114.0, 22.61],
                                                [114.0, 22.59]]]}
    got = client.get("/api/tracks", params={**RANGE, "area": json.dumps({"type": "Feature", "geometry": poly})})
    assert [v["vehicle_id"] for v in got.json()["vehicles"]] == ["B"]
    later = client.get("/api/tracks", params={"from": "2026-11-21T00:00:00Z", "to": "2026-11-22T00:00:00Z",
                                              "area": box}).json()
    assert later["count"] == 0


def test_bad_requests_are_422(client):
    for params in ({"area": "1,2,3"}, {"area": "{not json"},
                   {"area": json.dumps({"type": "Point", "coordinates": [1, 2]})},
                   {"area": "114,22,115,23", "from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
                   {"area": "114,22,115,23", "from": "2026-01-01T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
                   {"area": "114,22,115,23", "from": "2026-11-20T00:00:00"}):
        assert client.get("/api/tracks", params=params).status_code == 422, params
