"""Episodes: what every rule outputs, and what enforcement teams act on.

An episode has a start, an end (None while open), a vehicle, a place and evidence. Its id is *stable*: a hash
of (rule kind, vehicle, start ts), so processing the same fixes twice (at-least-once delivery) updates the
same alert instead of making a second one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec

EpisodeStatus = Literal["open", "closed"]


def episode_id(kind: str, vehicle_id: str, start_ts_ms: int) -> str:
    raw = f"{kind}|{vehicle_id}|{start_ts_ms}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class Episode(msgspec.Struct, kw_only=True):
    id: str
    kind: str  # tracker.vocab.ViolationKind value
    vehicle_id: str
    start_ts_ms: int
    end_ts_ms: int | None = None  # None while open
    status: EpisodeStatus = "open"
    severity: str = "confirmed"  # tracker.vocab.Severity value
    lon: float | None = None  # where it happened (first fix that crossed the thresholds)
    lat: float | None = None
    place_id: str | None = None  # fence / permit / segment id when the rule has one
    backfilled: bool = False  # derived (partly) from back-filled fixes
    retracted: bool = False  # withdrawn: late fixes re-evaluated in fix-time order no longer support it
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def new(cls, kind: str, vehicle_id: str, start_ts_ms: int, **kw: Any) -> Episode:
        return cls(id=episode_id(kind, vehicle_id, start_ts_ms), kind=kind, vehicle_id=vehicle_id,
                   start_ts_ms=start_ts_ms, **kw)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Episode:
        return msgspec.json.decode(data, type=cls)
