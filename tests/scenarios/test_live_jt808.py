"""`fleetwatch simulate --live jt808://…`: a simulated city streamed through the real JT/T 808 gateway.

A real Runtime (Redis, PostgreSQL, a worker, the gateway on a TCP port), the scenario's vehicles in the
terminal registry the way the demo path puts them there, each vehicle a terminal that registers,
authenticates, reports, heartbeats, drops its connection during injected outages and back-fills them with
0x0704 — then every fix the simulator produced must be in PostgreSQL history as the simulator made it
(positions to the codec's 1e-6°, speed, validity, the five sensors through the vendor profile, the back-fill
flag), and an injected violation must have become an alert.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg
import pytest
import redis

from ingest.jt808.profiles import parse_profiles_toml
from scenarios.runtime import Runtime
from scenarios.sim import generate, load_scenario
from scenarios.sim.live_jt808 import (
    SENSOR_COLUMNS,
    SIM_PROFILE_NAME,
    SIM_PROFILE_TOML,
    SensorEncoder,
    expected_rows,
    parse_jt808_url,
    plan_sends,
    register_scenario,
    resolve_profile,
    stream_jt808,
)
from tracker.edges import bus

VEHICLES = 10
SPEED = 60.0


#: the scenarios below start at the next 05:00 local — up to a day ahead — and run past it: their gateway must
#: accept fix times that far ahead (its default refuses more than a day: a broken clock)
AHEAD = {"max_future_s": 2 * 86400.0}


def _next_local_5am_ms(utc_offset_min: int = 480) -> int:
    """The scenario's shift change (05:00 local) next to come: violations then depend on the seed only, not
    on the hour the test runs, and the fixes are never older than the wall clock (no signal-loss noise)."""
    now = datetime.now(UTC)
    local = now + timedelta(minutes=utc_offset_min)
    start_local = local.replace(hour=5, minute=0, second=0, microsecond=0)
    if start_local <= local:
        start_local += timedelta(days=1)
    return int((start_local - timedelta(minutes=utc_offset_min)).timestamp() * 1000)


@pytest.fixture(scope="module")
def sim():
    r = generate(load_scenario("standard", seed=2, vehicles=VEHICLES, hours=0.3, violation_rate=4.0, dropout=1.0,
                               start_ts_ms=_next_local_5am_ms()))
    # the scenario must exercise what the test claims to check
    assert r.fixes.get_column("backfill").sum() > 0
    assert r.truth.height > 0
    return r


def test_url_parsing():
    assert parse_jt808_url("jt808://127.0.0.1:8808") == ("127.0.0.1", 8808)
    assert parse_jt808_url("JT808://gw.example:7000/") == ("gw.example", 7000)
    assert parse_jt808_url("http://127.0.0.1:8000") is None
    with pytest.raises(ValueError):
        parse_jt808_url("jt808://127.0.0.1")


def test_profile_from_configuration_or_the_simulators_own():
    table = tomllib.loads(SIM_PROFILE_TOML)["jt808"]
    p, configured = resolve_profile(table, SIM_PROFILE_NAME)
    assert configured and p.cover_closed is not None and p.drum is not None
    p2, configured2 = resolve_profile({}, SIM_PROFILE_NAME)  # built into the gateway: known unconfigured
    assert configured2 and p2 == p
    acme = {"profiles": {"acme": {"cover_closed": {"item": 0x2A, "bit": 0}, "load": "status"}}}
    assert resolve_profile(acme, "acme")[0].load == "status"
    with pytest.raises(KeyError):
        resolve_profile(acme, "nobody")


def test_sensor_encoder_round_trips_through_the_codec():
    """Every state of every sensor, present or not, reads back as sent with the simulator's profile; a
    vendor profile that shares an item between sensors cannot say "not reported" for one of them, and the
    encoder says so instead of sending a lie silently."""
    enc = SensorEncoder(resolve_profile({}, SIM_PROFILE_NAME)[0])
    for vals in itertools.product((None, False, True), (None, False, True), (None, 0, 1, 3), (None, False, True),
                                  (None, 0, 1, 2)):
        assert enc.encode(vals)[2] == vals  # type: ignore[arg-type]
    acme = parse_profiles_toml("""
        [jt808.profiles.acme]
        cover_closed = {item = 0x2A, bit = 0, invert = true}
        load = "status"
        drum = {forward = {item = 0x2A, bit = 4}, reverse = {item = 0x2A, bit = 5}}
    """)["acme"]
    enc2 = SensorEncoder(acme)
    for vals in itertools.product((False, True), (0, 1, 3), (0, 1, 2)):
        full = (vals[0], None, vals[1], None, vals[2])
        assert enc2.encode(full)[2] == full  # type: ignore[arg-type]
    # a mixer without a cover sensor: the 0x2A word it sends for its drum reads as "cover closed" (bit 0
    # clear, inverted), and a status-word load reads "empty" — what the encoder reports as lossy
    _, _, got = enc2.encode((None, None, None, None, 1))
    assert got == (True, None, 0, None, 1)


def test_plan_back_fills_outages_in_frames_that_fit(sim):
    enc = SensorEncoder(resolve_profile({}, SIM_PROFILE_NAME)[0])
    sends, lossy = plan_sends(sim.fixes, [v.id for v in sim.vehicles], enc,
                              [(0, sim.start_ts_ms + 60_000, sim.start_ts_ms + 120_000)], max_body_bytes=400)
    assert lossy == dict.fromkeys(SENSOR_COLUMNS, 0)
    assert [s.due_ms for s in sends] == sorted(s.due_ms for s in sends)
    batches = [s for s in sends if s.kind == "batch"]
    assert sum(len(s.bodies) for s in batches) == sim.fixes.get_column("backfill").sum()
    assert all(3 + sum(2 + len(b) for b in s.bodies) <= 400 for s in batches)
    assert any(len(s.bodies) > 1 for s in batches)
    assert sum(len(s.bodies) for s in sends if s.kind == "loc") + sum(len(s.bodies) for s in batches) \
        == sim.fixes.height
    assert [s.kind for s in sends].count("drop") == 1


def _history(database_url: str) -> pl.DataFrame:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, (extract(epoch from ts) * 1000)::bigint, lon, lat, speed_kmh, heading_deg, valid, "
            "cover_closed, lifting, load, device_on, drum, backfill, source FROM fixes").fetchall()
    return pl.DataFrame(rows, orient="row", schema={
        "vehicle_id": pl.String, "ts_ms": pl.Int64, "lon": pl.Float64, "lat": pl.Float64, "speed_kmh": pl.Float64,
        "heading_deg": pl.Float64, "valid": pl.Boolean, "cover_closed": pl.Boolean, "lifting": pl.Boolean,
        "load": pl.Int8, "device_on": pl.Boolean, "drum": pl.Int8, "backfill": pl.Boolean, "source": pl.String})


def test_live_jt808_stream_lands_in_history_with_sensors_and_alerts(sim, settings):
    settings.jt808 = {"profiles": tomllib.loads(SIM_PROFILE_TOML)["jt808"]["profiles"], **AHEAD}
    rt = Runtime(settings)
    try:
        services = rt.start_services()
        n = register_scenario(services.database_url, sim, SIM_PROFILE_NAME)
        assert n == VEHICLES
        rt.start_workers(1)
        port = rt.start_gateway(0)
        profile, configured = resolve_profile(settings.jt808, SIM_PROFILE_NAME)
        assert configured

        st = stream_jt808(sim, "127.0.0.1", port, profile, speed=SPEED, heartbeat_s=20.0)

        outages = [e for e in sim.fault_log if e["what"] == "outage_backfilled"]
        assert st.ready == VEHICLES and not st.refused, st.errors
        assert st.complete and not st.errors, st.errors[:5]
        assert st.frames_not_ok == 0 and st.unanswered == 0
        assert st.fixes_ok == st.fixes_sent == sim.fixes.height
        assert st.lossy == dict.fromkeys(SENSOR_COLUMNS, 0)
        assert st.backfill_fixes == sim.fixes.get_column("backfill").sum() and st.backfill_frames > 0
        assert st.heartbeats > 0
        assert st.outages == len(outages) > 0 and st.reconnects >= 1

        want = expected_rows(sim.fixes)
        deadline = time.monotonic() + 120
        got = _history(services.database_url)
        while got.height < want.height and time.monotonic() < deadline:
            time.sleep(0.5)
            got = _history(services.database_url)
        assert got.height == want.height

        j = want.join(got, on=["vehicle_id", "ts_ms"], how="left", suffix="_db")
        missing = j.filter(pl.col("lon_db").is_null())
        assert missing.height == 0, missing.select("vehicle_id", "ts_ms", "backfill").head(10)
        assert (j["lon"] - j["lon_db"]).abs().max() <= 1e-6 + 1e-9
        assert (j["lat"] - j["lat_db"]).abs().max() <= 1e-6 + 1e-9
        assert (j["speed_kmh"].cast(pl.Float64) - j["speed_kmh_db"]).abs().max() <= 0.051
        assert (j["valid"] == j["valid_db"]).all()
        assert (j["backfill"] == j["backfill_db"]).all()  # back-filled fixes arrived as 0x0704 type 1
        assert j.filter(pl.col("backfill")).height > 0
        assert (j["source_db"] == "jt808").all()
        for c in SENSOR_COLUMNS:
            same = j.select(pl.col(c).cast(pl.Int8).eq_missing(pl.col(f"{c}_db").cast(pl.Int8))).to_series()
            assert same.all(), (c, j.filter(~same).select("vehicle_id", "ts_ms", c, f"{c}_db").head(5))
        for c in SENSOR_COLUMNS:  # the sensors really travelled (not all null on both sides)
            assert j.get_column(f"{c}_db").null_count() < j.height, c

        # an injected violation became an alert (same vehicle and kind, overlapping time)
        truth = sim.truth.select("kind", "vehicle_id", "start_ts_ms", "end_ts_ms").rows()
        deadline = time.monotonic() + 60
        hit = []
        while not hit and time.monotonic() < deadline:
            with psycopg.connect(services.database_url) as conn:
                alerts = conn.execute(
                    "SELECT kind, vehicle_id, (extract(epoch from start_ts) * 1000)::bigint, "
                    "(extract(epoch from coalesce(end_ts, now() + interval '10 days')) * 1000)::bigint "
                    "FROM alerts").fetchall()
            hit = [(k, v) for k, v, a, b in alerts for tk, tv, ta, tb in truth
                   if k == tk and v == tv and a <= tb + 60_000 and b >= ta - 60_000]
            if not hit:
                time.sleep(0.5)
        assert hit, (truth, alerts)
    finally:
        rt.stop()


def test_cli_streams_to_a_running_gateway(settings, tmp_path):
    """`fleetwatch simulate … --live jt808://HOST:PORT` as a user runs it, in its own process, against a running
    gateway sharing the configuration (the profile) and the database (the terminal registry)."""
    settings.jt808 = {"profiles": tomllib.loads(SIM_PROFILE_TOML)["jt808"]["profiles"]}
    (tmp_path / "fleetwatch.toml").write_text(SIM_PROFILE_TOML, encoding="utf-8")
    rt = Runtime(settings)
    try:
        services = rt.start_services()
        port = rt.start_gateway(0)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
        env.update(FLEETWATCH_DATABASE_URL=services.database_url, FLEETWATCH_REDIS_URL=services.redis_url,
                   FLEETWATCH_BUS__PREFIX=settings.bus.prefix, FLEETWATCH_CONFIG=str(tmp_path / "fleetwatch.toml"),
                   FLEETWATCH_DATA_DIR=str(tmp_path / "fw"))
        cmd = [sys.executable, "-m", "scenarios.cli", "simulate", "sanitation", "--out", str(tmp_path / "out"),
               "--vehicles", "6", "--hours", "0.05", "--seed", "4", "--speed", "200", "--live",
               f"jt808://127.0.0.1:{port}"]
        done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "registered 6 terminals (profile fleetwatch_sim)" in done.stdout
        assert "6/6 terminals online" in done.stdout and "0 frames refused, 0 unanswered" in done.stdout
        assert "not in the configuration" not in done.stderr  # the profile came from the TOML
        sent = pl.read_parquet(tmp_path / "out" / "fixes.parquet")
        with psycopg.connect(services.database_url) as conn:
            (n_registered,) = conn.execute("SELECT count(*) FROM vehicles WHERE vendor_profile = %s",
                                    (SIM_PROFILE_NAME,)).fetchone()
        assert n_registered == 6
        # the gateway acknowledged only what was in Redis: every fix is on the bus, with its sensors
        r = redis.Redis.from_url(services.redis_url)
        names = bus.StreamNames(settings.bus.prefix, settings.bus.shards)
        bus.ensure_groups(r, names)
        frames = bus.read_new(r, names.all_fixes(), "t", 1000, 100)
        got = pl.concat([d.frame for d in frames])
        assert got.height == sent.height
        assert got.get_column("device_on").null_count() < got.height  # sweepers' brushes travelled
        r.close()
        # a profile nobody configured is refused before anything is sent
        bad = subprocess.run([*cmd[:-2], "--profile", "nobody", "--live", f"jt808://127.0.0.1:{port}"], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and "nobody" in bad.stderr
    finally:
        rt.stop()


def test_terminals_reconnect_when_the_gateway_drops_them(settings):
    """Without heartbeats and with a gateway that closes connections idle for 1 s, parked vehicles lose
    their connection between reports: each must reconnect, authenticate with its stored code (no new
    registration) and lose nothing — frames the gateway never answered are sent again."""
    settings.jt808 = {"profiles": tomllib.loads(SIM_PROFILE_TOML)["jt808"]["profiles"], "idle_timeout_s": 1.0, **AHEAD}
    r = generate(load_scenario("sanitation", seed=4, vehicles=6, hours=0.05, start_ts_ms=_next_local_5am_ms()))
    rt = Runtime(settings)
    try:
        services = rt.start_services()
        register_scenario(services.database_url, r, SIM_PROFILE_NAME)
        rt.start_workers(1)
        port = rt.start_gateway(0)
        st = stream_jt808(r, "127.0.0.1", port, resolve_profile(settings.jt808, SIM_PROFILE_NAME)[0], speed=20.0,
                          heartbeat_s=1e9)
        assert st.ready == 6 and not st.errors, st.errors[:5]
        assert st.heartbeats == 0 and st.reconnects > 0
        assert st.frames_not_ok == 0 and st.unanswered == 0
        gw = rt.gateway.stats  # type: ignore[attr-defined]
        assert gw.closed_idle >= st.reconnects > 0
        assert gw.registrations == 6  # reconnections authenticate with the stored code
        want = expected_rows(r.fixes)
        deadline = time.monotonic() + 60
        got = _history(services.database_url)
        while got.height < want.height and time.monotonic() < deadline:
            time.sleep(0.5)
            got = _history(services.database_url)
        j = want.join(got, on=["vehicle_id", "ts_ms"], how="left", suffix="_db")
        assert j.get_column("lon_db").null_count() == 0 and got.height == want.height
        assert (j["lon"] - j["lon_db"]).abs().max() <= 1e-6 + 1e-9
    finally:
        rt.stop()


def test_the_demo_reference_import_is_enough_for_the_gateway(settings):
    """The demo path (`scenarios.demo.load_reference`, vehicles with the registry's `default` profile) puts the
    terminals in the registry: all register and report. With `default` only load travels, and what the
    profile cannot carry is counted as lossy, not hidden."""
    from ingest.jt808.profiles import DEFAULT_PROFILE
    from scenarios.demo import load_reference

    r = generate(load_scenario("standard", seed=5, vehicles=8, hours=0.05, start_ts_ms=_next_local_5am_ms()))
    settings.jt808 = dict(AHEAD)
    rt = Runtime(settings)
    try:
        services = rt.start_services()
        load_reference(services.database_url, r)
        port = rt.start_gateway(0)
        st = stream_jt808(r, "127.0.0.1", port, DEFAULT_PROFILE, speed=200.0)
        assert st.ready == 8 and not st.refused and not st.errors, st.errors[:5]
        assert st.fixes_ok == r.fixes.height and st.unanswered == 0
        f = r.fixes
        # cover/lift/device/drum values are not carried by `default`; load is, except "not reported"
        for c in ("cover_closed", "lifting", "device_on", "drum"):
            assert st.lossy[c] == f.height - f.get_column(c).null_count()
        assert st.lossy["load"] == f.get_column("load").null_count()
        assert st.lossy["cover_closed"] > 0 and st.lossy["load"] > 0  # the city has both kinds of terminal
    finally:
        rt.stop()
