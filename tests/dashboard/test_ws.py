"""Websockets against a running app: /ws/live (binary deltas, only changed, viewport) and /ws/alerts."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from websockets.sync.client import connect

from dashboard import wire
from tests.dashboard import seed
from tracker.edges.bus import StreamNames
from tracker.episode import Episode

N = 60


@pytest.fixture(scope="module")
def world(runtime, db, rclient, token):  # noqa: ANN001, ANN201
    fleet = seed.vehicles(N)
    seed.save_fleet(db, fleet)
    names = StreamNames(runtime.settings.bus.prefix, runtime.settings.bus.shards)
    seed.publish(rclient, names, seed.live_states(fleet, int(time.time() * 1000)))
    return {"fleet": fleet, "names": names, "ws": runtime.base_url.replace("http", "ws"), "token": token}


@contextlib.contextmanager
def connect_as(world, path: str, first_message: bool = True):  # noqa: ANN001, ANN201
    """A logged-in websocket: the token as the first message (what the pages do), or in the query."""
    if first_message:
        with connect(f"{world['ws']}{path}", open_timeout=10) as ws:
            ws.send(json.dumps({"token": world["token"]}))
            yield ws
        return
    sep = "&" if "?" in path else "?"
    with connect(f"{world['ws']}{path}{sep}token={world['token']}", open_timeout=10) as ws:
        yield ws


def recv_until(ws, dec: wire.LiveDecoder, pred, timeout_s: float = 8.0) -> list[bytes | str]:  # noqa: ANN001
    got = []
    deadline = time.monotonic() + timeout_s
    while not pred():
        msg = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        dec.feed(msg)
        got.append(msg)
    return got


def test_live_binary_sends_everything_then_only_changes(world, rclient):  # noqa: ANN001
    fleet, names = world["fleet"], world["names"]
    with connect_as(world, "/ws/live") as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["protocol"] == wire.PROTOCOL and hello["record_bytes"] == 20
        assert hello["role"] == "admin"
        dec = wire.LiveDecoder()
        recv_until(ws, dec, lambda: len(dec.vehicles) == N)
        states = {s["vehicle_id"]: s for s in seed.live_states(fleet, 0)}
        for vid, v in dec.vehicles.items():
            assert v["lon"] == pytest.approx(states[vid]["lon"], abs=1e-6)
            assert v["kind"] == next(f.kind for f in fleet if f.id == vid)
        assert dec.vehicles["V00000"]["cover_closed"] is None and dec.vehicles["V00002"]["cover_closed"] is True
        # three vehicles move: the next frame carries exactly those three, 20 bytes each
        moved = seed.live_states(fleet[:3], int(time.time() * 1000) + 5000, t_s=100)
        seed.publish(rclient, names, moved)
        frames_before, ids_before = dec.frames, len(dec.ids)
        got = recv_until(ws, dec, lambda: dec.frames > frames_before)
        frame = [m for m in got if isinstance(m, bytes)][-1]
        assert len(frame) == 16 + 3 * 20
        _, recs = wire.decode_positions(frame)
        assert sorted(dec.ids[i] for i in recs["idx"]) == ["V00000", "V00001", "V00002"]
        assert len(dec.ids) == ids_before  # no new index entries for known vehicles
        assert dec.vehicles["V00001"]["lon"] == pytest.approx(moved[1]["lon"], abs=1e-6)


def test_live_viewport_limits_vehicles(world, rclient):  # noqa: ANN001
    fleet = world["fleet"]
    lons = sorted(seed.position(i, N)[0] for i in range(N))
    cut = (lons[N // 2 - 1] + lons[N // 2]) / 2
    with connect_as(world, f"/ws/live?bbox=100,10,{cut},40", first_message=False) as ws:
        ws.recv(timeout=5)  # hello
        dec = wire.LiveDecoder()
        west = {f.id for i, f in enumerate(fleet) if seed.position(i, N)[0] <= cut}
        recv_until(ws, dec, lambda: set(dec.vehicles) >= west)
        time.sleep(1.5)
        ws.send(json.dumps({"type": "viewport", "bbox": [cut, 10, 130, 40]}))
        assert set(dec.vehicles) == west
        # the other half is sent when the client looks there, without any vehicle changing
        recv_until(ws, dec, lambda: len(dec.vehicles) == N)
        ws.send(json.dumps({"type": "viewport", "bbox": [1, 2]}))
        err = json.loads(ws.recv(timeout=5))
        assert err["type"] == "error"


def test_live_json_format(world):  # noqa: ANN001
    with connect_as(world, "/ws/live?format=json") as ws:
        msg = json.loads(ws.recv(timeout=5))
        assert {v[0] for v in msg["v"]} == {f.id for f in world["fleet"]}


def test_alerts_push_open_update_close_and_resume(world, db, rclient):  # noqa: ANN001
    names = world["names"]
    t0 = int(time.time() * 1000)
    e = Episode.new("route_deviation", "V00002", t0, lon=114.02, lat=22.53, evidence={"corridor_m": 50})
    with connect_as(world, "/ws/alerts?vehicle_kinds=muck_truck") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
        seed.inject_alert(db, rclient, names, Episode.new("speeding", "V00000", t0))  # a sweeper: filtered out
        seed.inject_alert(db, rclient, names, e)
        msg = json.loads(ws.recv(timeout=5))
        assert (msg["event"], msg["alert"]["id"], msg["alert"]["kind"]) == ("opened", e.id, "route_deviation")
        assert msg["alert"]["vehicle"]["plate"] == "粤B10002" and msg["alert"]["vehicle"]["kind"] == "muck_truck"
        seed.inject_alert(db, rclient, names, Episode.new("route_deviation", "V00002", t0, lon=114.02, lat=22.53,
                                                          end_ts_ms=t0 + 90_000, status="closed"))
        closed = json.loads(ws.recv(timeout=5))
        assert (closed["event"], closed["alert"]["id"], closed["alert"]["end_ts_ms"]) == ("closed", e.id, t0 + 90_000)
        first_sid = msg["sid"]
    # a page that reconnects with ?since= gets what came after, in order
    with connect_as(world, f"/ws/alerts?since={first_sid}", first_message=False) as ws:
        replayed = json.loads(ws.recv(timeout=5))
        assert replayed["sid"] == closed["sid"] and replayed["event"] == "closed"
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"


@pytest.mark.parametrize("path", ["/ws/live", "/ws/alerts"])
def test_websockets_need_a_login(world, path):  # noqa: ANN001
    from websockets.exceptions import ConnectionClosed

    for token in (None, "fw_forged"):
        with connect(f"{world['ws']}{path}", open_timeout=10) as ws:
            ws.send(json.dumps({"token": token}))
            with pytest.raises(ConnectionClosed) as got:
                ws.recv(timeout=10)
        assert got.value.rcvd is not None and got.value.rcvd.code == 4401
