"""`fleetwatch jt808 …`: tools for someone debugging a terminal.

``fleetwatch jt808 decode HEX [--json]`` decodes one frame pasted from a packet capture or a vendor's log:
hex with or without spaces, escaped between 0x7e delimiters or already unescaped (with or without the
delimiters). When both readings are possible, the one whose checksum and length verify wins; ``--raw``
forces the unescaped reading. A bad checksum is shown, not an error: the point is to see what the terminal
sent. With ``--json`` exactly one JSON object is printed::

    {"msg_id": "0x0200", "version": 2013, "phone": "013812345678", "serial": 7, "checksum_ok": true,
     "body": {"lat": 22.5, "lon": 114.0, "speed_kmh": 35.5, "course_deg": 180, "altitude_m": 20,
              "ts": "2023-11-14T22:13:20Z", "alarm": 0, "status": 786435, "extras": {"0x01": 1234.5, ...}}}

A 0x0704 body has ``type``, ``count``, ``items`` (location bodies) and ``errors``; other messages show their
fields; unknown ids show ``raw`` hex. Errors (not hex, too short, unparseable header) print one line and exit
with code 2.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import typer

from ingest.jt808 import (
    Body,
    Frame,
    JT808Error,
    Location,
    LocationBatch,
    LocationQueryReply,
    RawBody,
    decode_frame,
    ms_to_bcd_time,
    parse_frame,
    unescape,
)

app = typer.Typer(
    name="jt808",
    help="JT/T 808 tools: decode a frame captured from a terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """JT/T 808 tools (a group, so `decode` stays a subcommand even while it is the only one)."""


def _fail(message: str) -> None:
    print(f"jt808 decode: error: {message}", file=sys.stderr)
    raise typer.Exit(code=2)


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    if not cleaned:
        raise ValueError("no hex given")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("input is not hex (expected pairs of 0-9a-f, spaces allowed)") from None


def _candidates(data: bytes, raw: bool) -> list[bytes]:
    """Possible unescaped payloads (header | body | checksum), most likely first."""
    if len(data) >= 2 and data[0] == 0x7E and data[-1] == 0x7E:
        data = data[1:-1]
    if raw or 0x7E in data:  # a literal 0x7e cannot appear in an escaped frame: it is already unescaped
        return [data]
    out = []
    try:
        unesc = unescape(data)
        out.append(unesc)
    except JT808Error:
        pass
    if not out or out[0] != data:
        out.append(data)
    return out


def decode_hex(text: str, *, raw: bool = False) -> Frame:
    """Parse pasted hex into a `Frame`, choosing the reading that verifies. Raises ValueError/JT808Error."""
    data = _parse_hex(text)
    parsed: list[Frame] = []
    last_error: Exception | None = None
    for payload in _candidates(data, raw):
        try:
            parsed.append(parse_frame(payload))
        except JT808Error as exc:
            last_error = exc
    if not parsed:
        raise last_error or ValueError("nothing to decode")
    for test in (lambda f: f.checksum_ok and f.length_ok, lambda f: f.checksum_ok, lambda f: f.length_ok):
        for f in parsed:
            if test(f):
                return f
    return parsed[0]


def _iso(ts_ms: int | None) -> str | None:
    if ts_ms is None:
        return None
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def location_json(loc: Location) -> dict[str, Any]:
    """The JSON shape of a location body (shared by 0x0200, 0x0201 and 0x0704 items)."""
    return {
        "lat": loc.lat,
        "lon": loc.lon,
        "speed_kmh": loc.speed_kmh,
        "course_deg": loc.course_deg,
        "altitude_m": loc.altitude_m,
        "ts": _iso(loc.ts_ms),
        # the BCD as sent (GMT+8): shows what an impossible time (ts null) actually was
        "time_local": (ms_to_bcd_time(loc.ts_ms) if loc.ts_ms is not None else loc.time_bcd).hex(),
        "alarm": loc.alarm,
        "status": loc.status,
        "flags": {
            "acc": loc.acc,
            "fix_valid": loc.fix_valid,
            "south": loc.south,
            "west": loc.west,
            "load": loc.load,
            "oil_cut": loc.oil_cut,
            "gnss": list(loc.gnss),
        },
        "alarms": list(loc.alarms),
        "extras": loc.extras_decoded(),
    }


def body_json(body: Body) -> dict[str, Any]:
    """JSON-ready dict of any decoded body (bytes as hex)."""
    if isinstance(body, Location):
        return location_json(body)
    if isinstance(body, LocationBatch):
        return {
            "type": body.type,
            "count": body.count,
            "items": [location_json(x) for x in body.items],
            "errors": list(body.errors),
        }
    if isinstance(body, LocationQueryReply):
        return {"reply_serial": body.reply_serial, "location": location_json(body.location)}
    if isinstance(body, RawBody):
        return {"raw": body.data.hex()}
    return msgspec.to_builtins(body, enc_hook=lambda v: v.hex() if isinstance(v, bytes) else str(v))


def frame_json(frame: Frame) -> dict[str, Any]:
    """The `decode --json` object."""
    msg = decode_frame(frame)
    h = frame.header
    body = body_json(msg.body)
    if h.subpackage:
        body = {"subpackage": {"total": h.pkg_total, "index": h.pkg_index}, **body}
    return {
        "msg_id": f"0x{h.msg_id:04X}",
        "version": h.version,
        "phone": h.phone,
        "serial": h.serial,
        "checksum_ok": frame.checksum_ok,
        "body": body,
    }


def _print_table(frame: Frame) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    h = frame.header
    misflagged = h.version_flag and h.version == 2013
    head = Table(title="JT/T 808 frame", show_header=False)
    head.add_column("field", style="bold")
    head.add_column("value")
    rows: list[tuple[str, str]] = [
        ("msg_id", f"0x{h.msg_id:04X}"),
        ("version", f"{h.version}" + (" (bit 14 set, 2013 layout)" if misflagged else "")),
        ("protocol_version", str(h.protocol_version)),
        ("phone", h.phone),
        ("serial", str(h.serial)),
        ("body_len", f"{h.body_len}" + ("" if frame.length_ok else f" (actual {len(frame.body)})")),
        ("encryption", str(h.encryption)),
        ("subpackage", f"{h.pkg_index}/{h.pkg_total}" if h.subpackage else "no"),
        ("checksum", "ok" if frame.checksum_ok else "[red]BAD[/red]"),
    ]
    for k, v in rows:
        head.add_row(k, v)
    console.print(head)
    msg = decode_frame(frame)
    body = body_json(msg.body)
    locations: list[dict[str, Any]] = []
    if isinstance(msg.body, Location):
        locations = [body]
    elif isinstance(msg.body, LocationBatch):
        console.print(f"batch type {body['type']} ({'back-fill' if body['type'] == 1 else 'normal'}), "
                      f"declared {body['count']}, decoded {len(body['items'])}")
        for err in body["errors"]:
            console.print(f"[red]error[/red]: {err}")
        locations = body["items"]
    elif isinstance(msg.body, LocationQueryReply):
        console.print(f"reply to serial {body['reply_serial']}")
        locations = [body["location"]]
    if not locations:
        t = Table(title=type(msg.body).__name__, show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for k, v in body.items():
            t.add_row(k, str(v))
        console.print(t)
        return
    for n, loc in enumerate(locations):
        t = Table(title=f"location {n + 1}" if len(locations) > 1 else "location", show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for key in ("lat", "lon", "speed_kmh", "course_deg", "altitude_m", "ts", "time_local"):
            t.add_row(key, str(loc[key]))
        t.add_row("alarm", f"{loc['alarm']} (0x{loc['alarm']:08X}) {' '.join(loc['alarms'])}")
        t.add_row("status", f"{loc['status']} (0x{loc['status']:08X})")
        t.add_row("flags", ", ".join(f"{k}={v}" for k, v in loc["flags"].items()))
        for item, value in loc["extras"].items():
            t.add_row(f"extra {item}", str(value))
        console.print(t)


@app.command()
def decode(
    hex_text: str = typer.Argument(
        ..., metavar="HEX", help="the frame as hex (spaces allowed, 7e delimiters optional)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
    raw: bool = typer.Option(False, "--raw", help="the hex is already unescaped (do not resolve 7d escapes)"),
) -> None:
    """Decode one JT/T 808 frame: header, checksum, body (locations with extras and UTC time)."""
    try:
        frame = decode_hex(hex_text, raw=raw)
        obj = frame_json(frame) if as_json else None
    except (ValueError, JT808Error) as exc:  # JT808Error is a ValueError; listed for the reader
        _fail(str(exc))
        return
    if obj is not None:
        sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    else:
        _print_table(frame)
