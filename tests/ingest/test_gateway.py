"""The JT/T 808 gateway over real TCP, against real Redis and PostgreSQL: registration and auth codes,
refusals, acknowledgement only after the fixes are in Redis, back-fill, bad frames, resync, subpackages with
0x8003, idle timeout, rate limit, vendor profiles, one terminal one connection."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import polars as pl
import psycopg
import pytest

from ingest.gateway import run_in_thread
from ingest.jt808 import (
    DEFAULT_PROFILE,
    decode_location,
    location_to_fix_row,
)
from scenarios.loadgen.terminal import SimTerminal, batch_body, location_body
from tests.ingest.test_gateway_support import add_vehicles, bus_frame
from tracker.edges.bus import StreamNames

T0 = 1_763_800_000_000  # 2025-11-22 08:26:40 UTC


@pytest.fixture
def fleet(settings):
    add_vehicles(settings.database_url, [
        ("V1", "13800000001", "粤B00001", "default"),
        ("V2", "013800000002", None, "default"),
        ("V3", "13800000003", None, "acme"),
    ])
    return settings


def start(settings, services, **opts):
    """A gateway on a free port, on the test's own database (`settings`), not the session's default one."""
    opts.setdefault("port", 0)
    opts.setdefault("flush_ms", 2)
    return run_in_thread(settings, SimpleNamespace(redis_url=settings.redis_url,
                                                   database_url=settings.database_url), **opts)


@pytest.fixture
def gateway(fleet, services):
    gw = start(fleet, services)
    yield gw
    gw.stop()


async def authed(gw, phone: str) -> SimTerminal:
    t = await SimTerminal(phone).connect("127.0.0.1", gw.port)
    result, code = await t.register()
    assert result == 0 and code
    assert await t.authenticate(code) == 0
    return t


def names(settings) -> StreamNames:
    return StreamNames(settings.bus.prefix, settings.bus.shards)


async def test_registration_issues_a_stored_code_and_refuses_unknown_terminals(gateway, fleet):
    t = await SimTerminal("13800000001", plate="粤B 00001").connect("127.0.0.1", gateway.port)
    result, code = await t.register()
    assert result == 0 and code
    with psycopg.connect(fleet.database_url) as conn:
        stored = conn.execute("SELECT auth_code FROM vehicles WHERE vehicle_id = 'V1'").fetchone()[0]
    assert stored == code
    again = await t.register()
    assert again == (0, code)  # re-registration re-sends the stored code

    unknown = await SimTerminal("13999999999").connect("127.0.0.1", gateway.port)
    assert (await unknown.register())[0] == 4  # RegisterResult.NO_SUCH_TERMINAL
    wrong_plate = await SimTerminal("13800000001", plate="粤B99999").connect("127.0.0.1", gateway.port)
    assert (await wrong_plate.register())[0] == 2  # NO_SUCH_VEHICLE: the plate contradicts the registry
    for x in (t, unknown, wrong_plate):
        x.close()


async def test_positions_need_the_right_auth_code(gateway, fleet, redis_client):
    t = await SimTerminal("13800000002").connect("127.0.0.1", gateway.port)
    t.send_location(location_body(22.5, 114.0, T0), T0)
    await t.wait_acked()
    assert t.replies[-1][2] == 1  # not authenticated: fail
    _, code = await t.register()
    assert await t.authenticate("not-the-code") == 1
    assert await t.authenticate(code) == 0
    t.send_location(location_body(22.5, 114.0, T0 + 1000), T0 + 1000)
    await t.wait_acked()
    assert t.replies[-1][2] == 0
    got = bus_frame(redis_client, names(fleet))
    assert got.get_column("ts_ms").to_list() == [T0 + 1000]  # the refused fix never reached the bus
    assert got.get_column("vehicle_id").to_list() == ["V2"]  # phone mapped to the vehicle
    t.close()


async def test_too_many_wrong_codes_close_the_connection(fleet, services):
    gw = start(fleet, services, max_auth_failures=2)
    try:
        t = await SimTerminal("13800000001").connect("127.0.0.1", gw.port)
        await t.register()
        assert await t.authenticate("x") == 1
        assert await t.authenticate("y") == 1
        await asyncio.wait_for(t.closed.wait(), 5)
    finally:
        gw.stop()


async def test_ack_only_after_fixes_are_in_redis_and_rows_match_the_codec(gateway, fleet, redis_client):
    t = await authed(gateway, "13800000001")
    extras = bytes([0x01, 4, 0, 0, 0x30, 0x39, 0x30, 1, 0x1F])
    bodies = [location_body(22.5 + i / 1000, 114.05, T0 + i * 1000, speed_kmh=i, status=0x0302 if i % 2 else 2,
                            extras=extras) for i in range(20)]
    seen_at_ack: list[int] = []
    orig = t._on_reply

    def on_reply(serial, msg_id, result):  # runs when the 0x8001 arrives: the fix must already be in Redis
        seen_at_ack.append(bus_frame(redis_client, names(fleet)).height)
        orig(serial, msg_id, result)

    t._on_reply = on_reply
    for i, b in enumerate(bodies):
        t.send_location(b, T0 + i * 1000)
        await t.wait_acked()
    assert seen_at_ack == list(range(1, 21))
    got = bus_frame(redis_client, names(fleet)).sort("ts_ms")
    want = pl.DataFrame([location_to_fix_row("V1", decode_location(b), DEFAULT_PROFILE, 0, False)
                         for b in bodies])
    cols = ["vehicle_id", "ts_ms", "lon", "lat", "speed_kmh", "heading_deg", "valid", "alarm", "status", "load",
            "cover_closed", "backfill", "source"]
    assert got.select(cols).to_dicts() == pl.DataFrame(want).select(cols).cast(
        {c: got.schema[c] for c in cols}).to_dicts()
    assert got.get_column("received_ts_ms").min() > time.time() * 1000 - 60_000
    t.close()


async def test_backfill_batch_is_flagged_and_bad_items_are_refused(gateway, fleet, redis_client):
    t = await authed(gateway, "13800000001")
    good = [location_body(22.5, 114.0 + i / 1000, T0 + i * 1000) for i in range(30)]
    t.send_batch(good, [T0 + i * 1000 for i in range(30)], backfill=True)
    await t.wait_acked()
    assert t.replies[-1][2] == 0
    impossible = bytearray(location_body(22.5, 114.0, T0))
    impossible[23] = 0x13  # month 13 (time BCD starts at byte 22)
    far_north = location_body(91.0, 114.0, T0 + 99_000)
    t.send_location(bytes(impossible), 0)
    t.send_location(far_north, 0)
    await t.wait_acked()
    assert [r[2] for r in t.replies[-2:]] == [2, 2]  # bad message: no valid fix in it
    t.send_batch([good[0][:20], location_body(22.5, 114.2, T0 + 100_000)], [T0 + 100_000], backfill=False)
    await t.wait_acked()
    assert t.replies[-1][2] == 0  # the valid item is stored, the truncated one refused
    got = bus_frame(redis_client, names(fleet))
    assert got.height == 31
    assert got.filter(pl.col("backfill")).height == 30
    t.close()


async def test_bad_frames_are_answered_and_do_not_disturb_others(gateway, fleet, redis_client):
    t = await authed(gateway, "13800000001")
    other = await authed(gateway, "13800000002")
    s, frame = t.frame(0x0200, location_body(22.5, 114.0, T0))
    broken = bytearray(frame)
    broken[-2] ^= 0xFF  # checksum
    if broken[-2] in (0x7D, 0x7E):
        broken[-2] ^= 0x01
    t.write(bytes(broken))
    t.write(b"\x00garbage\x7d\x7e\x7e\x7e" + b"\x01" * 50)  # resync: the next frame brings its own 0x7e
    t.send_location(location_body(22.5, 114.0, T0 + 1000), T0 + 1000)
    other.send_location(location_body(22.5, 114.0, T0 + 2000), T0 + 2000)
    await t.wait_acked()
    await other.wait_acked()
    results = {serial: result for serial, _, result in t.replies}
    assert results[s] == 2
    assert t.replies[-1][2] == 0 and other.replies[-1][2] == 0
    assert gateway.stats.faults >= 2
    assert bus_frame(redis_client, names(fleet)).height == 2
    t.close()
    other.close()


async def test_oversize_frame_is_dropped_and_the_connection_goes_on(fleet, services):
    gw = start(fleet, services, max_frame_size=256)
    try:
        t = await authed(gw, "13800000001")
        t.write(b"\x7e" + b"\x11" * 5000)  # never closed, passes the limit
        t.send_location(location_body(22.5, 114.0, T0), T0)
        await t.wait_acked()
        assert t.replies[-1][2] == 0
        t.close()
    finally:
        gw.stop()


async def test_subpackages_missing_one_is_requested_with_0x8003(fleet, services, redis_client):
    gw = start(fleet, services, retransmit_after_s=0.3)
    try:
        t = await authed(gw, "13800000001")
        items = [location_body(22.5, 114.0 + i / 1e4, T0 + i * 1000) for i in range(60)]
        body = batch_body(items, backfill=True)  # ~1.9 kB: three packages of 700 bytes
        serials = t.send_subpackaged(0x0704, body, 700, skip=(2,), ts_list=tuple(T0 + i * 1000 for i in range(60)))
        await t.wait_acked(timeout=15)
        assert t.retransmit_requests == [(serials[0], [2])]
        assert {s: r for s, _, r in t.replies if s in serials} == {s: 0 for s in serials}
        got = bus_frame(redis_client, names(fleet))
        assert got.height == 60 and got.get_column("backfill").all()
        t.close()
    finally:
        gw.stop()


async def test_idle_and_unauthenticated_connections_are_closed(fleet, services):
    gw = start(fleet, services, idle_timeout_s=1.0, auth_timeout_s=1.5)
    try:
        silent = await SimTerminal("13800000001").connect("127.0.0.1", gw.port)
        chatty_unauth = await SimTerminal("13800000002").connect("127.0.0.1", gw.port)
        live = await authed(gw, "13800000003")
        for _ in range(8):  # heartbeats keep `live` open, not the unauthenticated one
            if not chatty_unauth.closed.is_set():
                chatty_unauth.write(chatty_unauth.frame(0x0002, b"")[1])
            assert await live.heartbeat() == 0
            await asyncio.sleep(0.5)
        assert silent.closed.is_set() and chatty_unauth.closed.is_set()
        assert not live.closed.is_set()
        live.close()
    finally:
        gw.stop()


async def test_rate_limit_slows_a_terminal_down_without_losing_fixes(fleet, services, redis_client):
    gw = start(fleet, services, rate_limit_per_s=40, rate_burst=10)
    try:
        t = await authed(gw, "13800000001")
        for i in range(60):
            t.send_location(location_body(22.5, 114.0, T0 + i * 1000), T0 + i * 1000)
        await t.wait_acked(timeout=20)
        assert t.stats.frames_ok == 60
        assert gw.stats.rate_limited > 0
        assert bus_frame(redis_client, names(fleet)).height == 60
        t.close()
    finally:
        gw.stop()


async def test_vendor_profile_maps_sensors(fleet, services, redis_client):
    fleet.jt808 = {"profiles": {"acme": {"cover_closed": {"item": 0x2A, "bit": 0}, "load": "status"}}}
    gw = start(fleet, services)
    try:
        t = await authed(gw, "13800000003")
        t.send_location(location_body(22.5, 114.0, T0, status=0x0302, extras=bytes([0x2A, 2, 0, 1])), T0)
        t.send_location(location_body(22.5, 114.0, T0 + 1000, status=0x0002, extras=bytes([0x2A, 2, 0, 0])), 0)
        t.send_location(location_body(22.5, 114.0, T0 + 2000), 0)  # no 0x2A item: cover not reported
        await t.wait_acked()
        got = bus_frame(redis_client, names(fleet)).sort("ts_ms")
        assert got.get_column("cover_closed").to_list() == [True, False, None]
        assert got.get_column("load").to_list() == [3, 0, 0]
        t.close()
    finally:
        gw.stop()


async def test_a_terminal_reconnecting_replaces_its_old_connection(gateway):
    first = await authed(gateway, "13800000001")
    second = await authed(gateway, "13800000001")
    await asyncio.wait_for(first.closed.wait(), 5)
    second.send_location(location_body(22.5, 114.0, T0), T0)
    await second.wait_acked()
    assert second.replies[-1][2] == 0
    second.close()


async def test_unsupported_and_malformed_messages_get_their_result_codes(gateway):
    t = await authed(gateway, "13800000001")
    assert await t.request(0x0900, b"\x01\x02") == 3  # unsupported
    assert await t.request(0x0102, b"") == 1  # empty auth code: wrong code
    assert await t.request(0x0100, b"\x00\x01") == 2  # register body too short: bad message
    t.close()


async def test_escaped_bytes_split_across_reads(gateway, fleet, redis_client):
    t = await authed(gateway, "13800000001")
    # a latitude whose raw bytes contain 0x7e and 0x7d, sent one byte per write
    body = location_body(22.5, 114.0, T0)
    body = body[:8] + bytes([0x01, 0x7E, 0x7D, 0x10]) + body[12:]
    s, frame = t.frame(0x0200, body)
    assert b"\x7d\x02" in frame and b"\x7d\x01" in frame
    for byte in frame:
        t.write(bytes([byte]))
        await asyncio.sleep(0)
    for _ in range(200):
        if any(r[0] == s for r in t.replies):
            break
        await asyncio.sleep(0.01)
    assert [r[2] for r in t.replies if r[0] == s] == [0]
    assert bus_frame(redis_client, names(fleet)).get_column("lat").to_list() == [decode_location(body).lat]
    t.close()


async def test_a_terminal_sending_mostly_garbage_is_closed(fleet, services):
    gw = start(fleet, services, max_faults=10)
    try:
        junk = await authed(gw, "13800000001")
        ok = await authed(gw, "13800000002")
        junk.write(b"\x7e\x01\x02\x7e" * 50)  # 50 frames too short to be anything
        await asyncio.wait_for(junk.closed.wait(), 5)
        assert await ok.heartbeat() == 0
        assert gw.stats.closed_faults == 1
        ok.close()
    finally:
        gw.stop()
