"""The `/ws/live` wire format (protocol `fw-live/1`): compact binary position records.

Why binary: a control room watching 20,000 vehicles that move every second would receive ~1.8 MB/s of
JSON per open page; 20-byte fixed records make that ~0.4 MB/s and decode in the browser with a `DataView`
and no parsing. Coordinates travel as absolute micro-degrees (i32), not deltas, so a lost or reordered
frame never leaves a vehicle drawn in the wrong place (the record is still under half the 40-byte budget).

Messages on one connection (server → client):

* text `{"type":"hello","protocol":"fw-live/1","record_bytes":20,"kinds":[…],"motion":[…],"user":…,"role":…}`
  — once, after the login (see `dashboard.ws`).
* text `{"type":"index","first":k,"ids":[…]}` — the per-connection vehicle index table: the i-th id gets
  index k+i. Always sent *before* the first binary frame that uses those indexes; each id is sent once.
* binary position frame, little-endian: a 16-byte header then `count` 20-byte records.

  header: u8 type (=1) · u8 version (=1) · u16 reserved · u32 count · f64 t (fleet clock, UTC epoch ms)

  record: u32 index · i32 lon×1e6 · i32 lat×1e6 · u8 speed km/h (clamped 255) · u8 heading/2 (0…179)
          · u8 flags · u8 open-episode count (clamped 255) · u16 sensors · u16 age s (t − fix time, clamped)

  flags: bits 0–2 vehicle kind (index into `kinds`; 7 = unregistered) · bits 3–4 motion (0 moving,
  1 stopped, 2 offline) · bit 5 in alarm (≥ 1 open episode) · bits 6–7 reserved (0).
  sensors, 2 bits each unless noted, 0 always meaning *not reported*: bits 0–1 cover (1 open, 2 closed) ·
  2–3 body lift (1 down, 2 up) · 4–5 device brush/pump (1 off, 2 on) · 6–7 load (1 empty, 2 half, 3 full)
  · 8–9 drum (1 stopped, 2 forward, 3 reverse) · 10–15 reserved.
* text `{"type":"summary","t":…,"total":n,"counts":{kind:{motion:n,…,"alarm":n}}}` — fleet totals of the
  user's scope (not viewport-limited), when they change.

Client → server (text): `{"type":"viewport","bbox":[west,south,east,north]}` limits records to vehicles
inside (the client pads it); `{"type":"viewport","bbox":null}` lifts the limit.

`?format=json` switches a connection to the naive JSON encoding (one text message per push:
`{"t":…,"kinds":[…],"v":[[id,kind,lon,lat,speed,heading,ts_ms,alarm_kinds],…]}`): for debugging, and the
baseline the benchmark compares against.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from tracker.vocab import VehicleKind

PROTOCOL = "fw-live/1"
FRAME_POSITIONS = 1
VERSION = 1

KINDS: tuple[str, ...] = tuple(k.value for k in VehicleKind)
KIND_UNKNOWN = 7
MOTION: tuple[str, ...] = ("moving", "stopped", "offline")
MOVING, STOPPED, OFFLINE = 0, 1, 2
FLAG_ALARM = 1 << 5

HEADER = struct.Struct("<BBHId")
RECORD = np.dtype([
    ("idx", "<u4"), ("lon", "<i4"), ("lat", "<i4"), ("speed", "u1"), ("heading", "u1"), ("flags", "u1"),
    ("alarms", "u1"), ("sensors", "<u2"), ("age", "<u2"),
])
assert HEADER.size == 16 and RECORD.itemsize == 20

# sensor field positions (bit offset, width)
SENSOR_FIELDS: dict[str, tuple[int, int]] = {
    "cover": (0, 2), "lift": (2, 2), "device": (4, 2), "load": (6, 2), "drum": (8, 2),
}


def kind_code(kind: str | None) -> int:
    try:
        return KINDS.index(kind)  # type: ignore[arg-type]
    except ValueError:
        return KIND_UNKNOWN


def _tri(value: Any) -> int:
    """Optional boolean sensor → 0 not reported, 1 false, 2 true."""
    return 0 if value is None else (2 if value else 1)


def sensors_word(state: dict[str, Any]) -> int:
    """Pack one live state's optional sensors (None = not reported) into the u16 sensors field."""
    load = state.get("load")
    load_code = {0: 1, 1: 2, 3: 3}.get(load, 0) if load is not None else 0
    drum = state.get("drum")
    drum_code = (int(drum) + 1) if drum in (0, 1, 2) else 0
    return (_tri(state.get("cover_closed")) | _tri(state.get("lifting")) << 2 | _tri(state.get("device_on")) << 4
            | load_code << 6 | drum_code << 8)


def unpack_sensors(word: int) -> dict[str, Any]:
    """The inverse of `sensors_word`, for clients and tests (None = not reported)."""
    def tri(bits: int) -> bool | None:
        return None if bits == 0 else bits == 2

    load = (word >> 6) & 3
    drum = (word >> 8) & 3
    return {"cover_closed": tri(word & 3), "lifting": tri((word >> 2) & 3), "device_on": tri((word >> 4) & 3),
            "load": {0: None, 1: 0, 2: 1, 3: 3}[load], "drum": None if drum == 0 else drum - 1}


def encode_positions(t_ms: float, records: npt.NDArray[Any]) -> bytes:
    """One binary position frame (`records` has dtype `RECORD`)."""
    return HEADER.pack(FRAME_POSITIONS, VERSION, 0, len(records), float(t_ms)) + records.astype(RECORD).tobytes()


def decode_positions(data: bytes) -> tuple[float, npt.NDArray[Any]]:
    kind, version, _, count, t_ms = HEADER.unpack_from(data, 0)
    if kind != FRAME_POSITIONS or version != VERSION:
        raise ValueError(f"not a {PROTOCOL} position frame (type {kind}, version {version})")
    body = np.frombuffer(data, dtype=RECORD, count=count, offset=HEADER.size)
    if len(data) != HEADER.size + count * RECORD.itemsize:
        raise ValueError("position frame length does not match its count")
    return t_ms, body


def hello(**extra: Any) -> bytes:
    """The first message; `extra` adds fields (the server says whom it is serving: `user`, `role`)."""
    return orjson.dumps({"type": "hello", "protocol": PROTOCOL, "record_bytes": RECORD.itemsize,
                         "kinds": list(KINDS), "motion": list(MOTION), **extra})


@dataclass
class LiveDecoder:
    """Follows one `/ws/live` connection: feed it every message, read `vehicles` (id → decoded state).

    Used by the tests and by anyone scripting against the dashboard; the page has the same logic in
    `static/wire.js`."""

    ids: list[str] = field(default_factory=list)
    vehicles: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    records: int = 0
    bytes_binary: int = 0
    bytes_text: int = 0

    def feed(self, message: bytes | str) -> list[str]:
        """Apply one message; returns the ids updated by it."""
        if isinstance(message, str):
            self.bytes_text += len(message.encode())
            msg = orjson.loads(message)
            if msg.get("type") == "index":
                if msg["first"] != len(self.ids):
                    raise ValueError(f"index table gap: expected first={len(self.ids)}, got {msg['first']}")
                self.ids.extend(msg["ids"])
            elif msg.get("type") == "summary":
                self.summary = msg
            return []
        self.bytes_binary += len(message)
        t_ms, recs = decode_positions(message)
        self.frames += 1
        self.records += len(recs)
        out = []
        for r in recs.tolist():
            idx, lon, lat, speed, heading, flags, alarms, sensors, age = r
            vid = self.ids[idx]
            kind = flags & 7
            self.vehicles[vid] = {
                "id": vid, "kind": KINDS[kind] if kind < len(KINDS) else None, "lon": lon / 1e6, "lat": lat / 1e6,
                "speed_kmh": speed, "heading_deg": heading * 2, "motion": MOTION[(flags >> 3) & 3],
                "alarm": bool(flags & FLAG_ALARM), "open_episodes": alarms, "ts_ms": t_ms - age * 1000,
                **unpack_sensors(sensors),
            }
            out.append(vid)
        return out
