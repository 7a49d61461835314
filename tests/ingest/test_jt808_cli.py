"""`fleetwatch jt808 decode HEX [--json]` through typer's CliRunner (the main CLI is not needed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ingest.jt808 import Heartbeat, Location, LocationBatch, encode_message
from scenarios.cli.jt808 import app

runner = CliRunner()

# SmallChi Test5: 0x0200, alarm 1, status 2, 12.222222 N 132.444444 E, 2018-07-15 10:10:10 GMT+8, 0x01/0x02 extras
LOC_0200 = "7e0200002611223344556622b8000000010000000200ba7f0e07e4f11c0028003c000018071510101001040000006402020037577e"
# SmallChi Test2: 0x0704 with two items, type 0
BATCH_0704 = (
    "7e0704005311223344556622b80002000026000000010000000200ba7f0e07e4f11c0028003c000018071510101001040000006402"
    "0200370026000000020000000100cb735507e6a32300290036007818071510103001040000006002020042d47e"
)
# Traccar: already unescaped (literal 0x7d/0x7e inside), with 7e delimiters
UNESCAPED_0200 = (
    "7e0200008201215233475100030000000000000003015a7f6106cf8cec003d0000000021071311481901040000005630011931011a"
    "e10200755d3d0601cc0024990a7da0032301cc002499099b2941fc01cc002499099b29430b01cc0024990a7da0290601cc0024990a"
    "7da015fd01cc0026220994506bfffe157c010400000001f10c000000000000000000000000997e"
)


def decode_json(*args: str) -> dict:
    result = runner.invoke(app, ["decode", *args, "--json"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # exactly one object
    return json.loads(lines[0])


def test_location_json() -> None:
    obj = decode_json(LOC_0200)
    assert list(obj) == ["msg_id", "version", "phone", "serial", "checksum_ok", "body"]
    assert obj["msg_id"] == "0x0200" and obj["version"] == 2013 and obj["phone"] == "112233445566"
    assert obj["serial"] == 8888 and obj["checksum_ok"] is True
    body = obj["body"]
    assert (body["lat"], body["lon"], body["speed_kmh"], body["course_deg"], body["altitude_m"]) == (
        12.222222, 132.444444, 6.0, 0, 40)
    assert body["ts"] == "2018-07-15T02:10:10Z" and body["alarm"] == 1 and body["status"] == 2
    assert body["extras"] == {"0x01": 10.0, "0x02": 5.5}


def test_hex_with_spaces_without_delimiters_or_escaped() -> None:
    spaced = " ".join(LOC_0200[i : i + 2] for i in range(0, len(LOC_0200), 2))
    assert decode_json(spaced) == decode_json(LOC_0200)
    assert decode_json(LOC_0200[2:-2]) == decode_json(LOC_0200)  # no delimiters
    # a frame that needs unescaping (a 0x7e in the extras): escaped and already-unescaped inputs agree
    loc = Location(0, 2, -33.5, 151.25, 5, 12.3, 90, 1_700_000_000_000, extras={0xE0: b"\x7e\x7d"})
    wire = encode_message(loc, phone="013800000000", serial=0x7E)
    unescaped = wire[1:-1].replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    a, b = decode_json(wire.hex()), decode_json(unescaped.hex())
    assert a == b and a["checksum_ok"] and a["body"]["lat"] == -33.5 and a["body"]["extras"]["0xE0"] == "7e7d"


def test_already_unescaped_frame_with_literal_flags() -> None:
    obj = decode_json(UNESCAPED_0200)
    assert obj["checksum_ok"] is True and obj["phone"] == "012152334751"
    assert obj["body"]["lat"] == 22.708065 and obj["body"]["extras"]["0x31"] == 26


def test_batch_json() -> None:
    obj = decode_json(BATCH_0704)
    assert obj["msg_id"] == "0x0704" and obj["body"]["type"] == 0
    items = obj["body"]["items"]
    assert len(items) == 2 and items[1]["lat"] == 13.333333 and items[1]["ts"] == "2018-07-15T02:10:30Z"


def test_backfill_batch_2019() -> None:
    loc = Location(0, 2, 22.5, 114.0, 5, 0.0, 0, 1_700_000_000_000)
    wire = encode_message(LocationBatch(1, [loc, loc]), phone="12345678901234567890", serial=1, version=2019)
    obj = decode_json(wire.hex())
    assert obj["version"] == 2019 and obj["phone"] == "12345678901234567890"
    assert obj["body"]["type"] == 1 and len(obj["body"]["items"]) == 2


def test_bad_checksum_is_shown_not_an_error() -> None:
    wire = bytearray(bytes.fromhex(LOC_0200))
    wire[-2] ^= 0x01
    obj = decode_json(wire.hex())
    assert obj["checksum_ok"] is False and obj["body"]["lat"] == 12.222222


def test_other_messages() -> None:
    obj = decode_json(encode_message(Heartbeat(), phone="1", serial=2).hex())
    assert obj["msg_id"] == "0x0002" and obj["body"] == {}
    reg = decode_json("7e0100002d000123456789000a002800323132333400736d616c6c6368693132330000000000000000004348493132"
                      "330001d4c14131323334358a7e")
    assert reg["body"]["plate"] == "粤A12345" and reg["body"]["model"] == "smallchi123"
    raw = decode_json("7e830000140b3a73ce2ff2000001546573742c20436f6d6d616e642c2031323323a57e")
    assert raw["msg_id"] == "0x8300" and raw["body"] == {"raw": "01546573742c20436f6d6d616e642c2031323323"}


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [("zz", "not hex"), ("7e0200", "shorter than"), ("", "no hex"), ("02006000" + "11" * 10, "header needs 21 bytes")],
)
def test_errors_exit_2_with_one_line(arg: str, fragment: str) -> None:
    result = runner.invoke(app, ["decode", arg, "--json"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("jt808 decode: error:") and fragment in lines[0], lines


def test_table_output() -> None:
    result = runner.invoke(app, ["decode", BATCH_0704])
    assert result.exit_code == 0
    for text in ("0x0704", "112233445566", "location 2", "13.333333", "2018-07-15T02:10:30Z", "extra 0x01"):
        assert text in result.stdout
