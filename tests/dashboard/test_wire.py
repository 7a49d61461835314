"""The fw-live/1 wire format and the live table, without servers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboard import wire
from dashboard.live_table import LiveTable, Subscriber
from dashboard.options import DashboardOptions


def state(vid: str, ts: int, lon: float = 114.05, lat: float = 22.54, speed: float = 20.0, **kw) -> dict:  # noqa: ANN003
    return {"vehicle_id": vid, "ts_ms": ts, "lon": lon, "lat": lat, "speed_kmh": speed, "heading_deg": 91.0, **kw}


def test_record_layout_is_20_bytes_little_endian():
    rec = np.zeros(1, wire.RECORD)
    rec["idx"], rec["lon"], rec["lat"] = 7, 114_055_123, -22_540_456
    rec["speed"], rec["heading"], rec["flags"], rec["alarms"], rec["sensors"], rec["age"] = 55, 45, 0x2B, 2, 0x2AA, 9
    frame = wire.encode_positions(1_700_000_000_123.0, rec)
    assert len(frame) == 16 + 20
    assert frame[:8] == bytes([1, 1, 0, 0, 1, 0, 0, 0])
    assert frame[16:20] == (7).to_bytes(4, "little") and frame[20:24] == (114_055_123).to_bytes(4, "little")
    t, back = wire.decode_positions(frame)
    assert t == 1_700_000_000_123.0 and back.tolist() == rec.tolist()
    with pytest.raises(ValueError):
        wire.decode_positions(frame[:-1])


@pytest.mark.parametrize("cover,lift,device,load,drum", itertools.product(
    (None, True, False), (None, True, False), (None, True, False), (None, 0, 1, 3), (None, 0, 1, 2)))
def test_sensors_round_trip_keep_not_reported(cover, lift, device, load, drum):  # noqa: ANN001
    s = {"cover_closed": cover, "lifting": lift, "device_on": device, "load": load, "drum": drum}
    assert wire.unpack_sensors(wire.sensors_word(s)) == s


def test_only_changed_vehicles_are_due():
    table = LiveTable(DashboardOptions())
    table.apply([state("a", 1000), state("b", 1000, speed=0)], {"a": "muck_truck"})
    table.refresh_motion(2000)
    sub = Subscriber()
    due = sub.due(table)
    assert [table.ids[i] for i in due] == ["a", "b"]
    first, ids, index = sub.take(table, due)
    assert (first, ids, index.tolist()) == (0, ["a", "b"], [0, 1])
    # same values again (a parked truck reporting): nothing to send
    table.apply([state("a", 2000), state("b", 2000, speed=0)], {"a": "muck_truck"})
    table.refresh_motion(3000)
    assert len(sub.due(table)) == 0
    # b moves 1 m: b only, with its existing index
    table.apply([state("b", 3000, lon=114.05001, speed=0)], {})
    due = sub.due(table)
    assert [table.ids[i] for i in due] == ["b"]
    assert sub.take(table, due)[1:] == ([], pytest.approx(np.array([1])))
    # a goes offline by silence alone
    table.refresh_motion(2000 + 601_000)
    due = sub.due(table)
    assert [table.ids[i] for i in due] == ["a"]
    recs = table.records(due, sub.take(table, due)[2], 603_000)
    assert [int(r["flags"]) >> 3 & 3 for r in recs] == [wire.OFFLINE] and recs[0]["age"] == 601


def test_late_state_never_moves_a_vehicle_back():
    table = LiveTable(DashboardOptions())
    table.apply([state("a", 5000, lon=114.1)], {})
    table.apply([state("a", 4000, lon=114.0)], {})
    assert table.lon[0] == 114_100_000


def test_viewport_limits_records_and_catches_up_when_it_moves():
    table = LiveTable(DashboardOptions())
    table.apply([state("west", 1000, lon=113.9), state("east", 1000, lon=114.2)], {})
    sub = Subscriber(bbox=(113.8, 22.0, 114.0, 23.0))
    due = sub.due(table)
    assert [table.ids[i] for i in due] == ["west"]
    sub.take(table, due)
    sub.bbox = (114.1, 22.0, 114.3, 23.0)
    assert [table.ids[i] for i in sub.due(table)] == ["east"]


def test_flags_carry_kind_motion_alarm():
    table = LiveTable(DashboardOptions())
    table.apply([state("m", 1000, speed=0, alarm_kinds=["speeding"])], {"m": "concrete_mixer"})
    table.refresh_motion(1000)
    flags = int(table.flags(np.array([0]))[0])
    assert flags & 7 == wire.KINDS.index("concrete_mixer")
    assert (flags >> 3) & 3 == wire.STOPPED and flags & wire.FLAG_ALARM


def test_decoder_follows_index_and_frames():
    table = LiveTable(DashboardOptions())
    table.apply([state(f"v{i}", 1000 + i, lon=114 + i / 1000, cover_closed=True) for i in range(5)], {"v1": "sweeper"})
    now = table.refresh_motion(10_000)
    sub = Subscriber()
    slots = sub.due(table)
    first, ids, index = sub.take(table, slots)
    dec = wire.LiveDecoder()
    dec.feed(f'{{"type":"index","first":{first},"ids":{ids}}}'.replace("'", '"'))
    dec.feed(wire.encode_positions(now, table.records(slots, index, now)))
    assert set(dec.vehicles) == {f"v{i}" for i in range(5)}
    v1 = dec.vehicles["v1"]
    assert v1["kind"] == "sweeper" and v1["lon"] == pytest.approx(114.001) and v1["cover_closed"] is True
    assert v1["lifting"] is None and abs(v1["ts_ms"] - 1001) <= 500  # age travels in whole seconds
