"""Live state per vehicle in Redis, and the change feed dashboards follow.

The hash `fw:live` maps vehicle id → msgpack of its latest state (last valid fix, status, open episode
kinds). Every worker step also appends the changed vehicles as one entry to the `fw:live:changes` stream
(capped), so a dashboard process can push deltas without scanning the hash every second.
"""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl
import redis

from tracker.edges.bus import StreamNames

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()

LIVE_COLUMNS = ("vehicle_id", "ts_ms", "lon", "lat", "speed_kmh", "heading_deg")


def latest_per_vehicle(df: pl.DataFrame) -> pl.DataFrame:
    """The newest valid fix of each vehicle in a batch (late back-filled fixes never move a vehicle back)."""
    valid = df.filter(pl.col("valid") & (pl.col("lon") != 0) & (pl.col("lat") != 0))
    return valid.sort("ts_ms").group_by("vehicle_id", maintain_order=True).last()


def publish_live(r: redis.Redis, names: StreamNames, states: list[dict[str, Any]],
                 changes_maxlen: int = 2000) -> None:
    """Merge states into the live hash, keeping per vehicle whichever is newer, and append a change entry."""
    if not states:
        return
    ids = [s["vehicle_id"] for s in states]
    current = r.hmget(names.live, ids)
    fresh: dict[str, bytes] = {}
    for state, old in zip(states, current, strict=True):
        if old is not None:
            prev = _dec.decode(old)
            if prev.get("ts_ms", 0) > state.get("ts_ms", 0):
                continue
            state = {**prev, **state}
        fresh[state["vehicle_id"]] = _enc.encode(state)
    if not fresh:
        return
    pipe = r.pipeline(transaction=False)
    pipe.hset(names.live, mapping=fresh)
    pipe.xadd(names.live_changes, {b"s": _enc.encode(list(fresh.values()))}, maxlen=changes_maxlen,
              approximate=True)
    pipe.execute()


def read_live(r: redis.Redis, names: StreamNames) -> dict[str, dict[str, Any]]:
    return {k.decode(): _dec.decode(v) for k, v in r.hgetall(names.live).items()}


def decode_changes(payload: bytes) -> list[dict[str, Any]]:
    return [_dec.decode(b) for b in _dec.decode(payload)]
