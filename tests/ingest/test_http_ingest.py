"""HTTP batch ingest through a real server socket, real Redis: auth, bad rows named, size limit, blocks."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from scenarios.runtime import Runtime
from tracker.edges import bus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(settings):
    settings.http.port = _free_port()
    settings.http.max_body_bytes = 200_000
    rt = Runtime(settings)
    rt.start_services()
    rt.start_server()
    yield rt
    rt.stop()


def _row(i: int, **kw):
    return {"vehicle_id": f"T{i % 3}", "ts": f"2026-11-22T08:{i // 60:02d}:{i % 60:02d}+08:00",
            "lon": 114.05, "lat": 22.54, "speed_kmh": 20.5, **kw}


def _post(rt, body, ctype="application/json", token="demo-token"):
    return httpx.post(f"{rt.base_url}/api/ingest/fixes", content=body,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": ctype}, timeout=30)


def test_json_array_lands_on_the_bus_in_blocks(server, redis_client):
    rows = [_row(i) for i in range(300)]
    resp = _post(server, json.dumps(rows))
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 300
    names = server.settings.bus
    streams = bus.StreamNames(names.prefix, names.shards).all_fixes()
    total = sum(redis_client.xlen(s) for s in streams)
    assert 1 <= total <= names.shards  # a few blocks, not 300 entries
    bus.ensure_groups(redis_client, bus.StreamNames(names.prefix, names.shards))
    frames = bus.read_new(redis_client, streams, "t", 100, 100)
    got = sum(d.frame.height for d in frames)
    assert got == 300
    one = frames[0].frame.row(0, named=True)
    assert one["source"] == "demo" and one["received_ts_ms"] > 0
    assert one["ts_ms"] % 1000 == 0 and one["ts_ms"] >= 1_795_000_000_000  # +08:00 converted to UTC


def test_ndjson_is_accepted(server):
    body = "\n".join(json.dumps(_row(i)) for i in range(10))
    resp = _post(server, body, "application/x-ndjson")
    assert resp.status_code == 200 and resp.json()["accepted"] == 10


def test_bad_rows_are_named_and_nothing_is_accepted(server, redis_client):
    rows = [_row(0), {"vehicle_id": "X", "lon": 114.0}, _row(2, lat=95.0), _row(3, ts="2026-11-22T08:00:00"),
            _row(4)]
    resp = _post(server, json.dumps(rows))
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert [e["row"] for e in errors] == [1, 2, 3]
    assert "lat" in errors[0]["error"] or "required" in errors[0]["error"]
    assert "out of range" in errors[1]["error"]
    assert "offset" in errors[2]["error"]
    names = bus.StreamNames(server.settings.bus.prefix, server.settings.bus.shards)
    assert sum(redis_client.xlen(s) for s in names.all_fixes()) == 0


def test_unknown_token_is_refused(server):
    assert _post(server, json.dumps([_row(0)]), token="nope").status_code == 401


def test_oversized_batch_gets_413(server):
    rows = [_row(i % 3000) for i in range(3000)]
    assert _post(server, json.dumps(rows)).status_code == 413


def test_duplicates_in_a_batch_collapse(server):
    resp = _post(server, json.dumps([_row(1), _row(1), _row(2)]))
    assert resp.json()["accepted"] == 2
