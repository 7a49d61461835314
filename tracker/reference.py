"""Reference data the rules need besides fences: vehicles, permits, delivery orders.

File formats (what `fleetwatch` import commands and the simulator read/write) are JSON arrays of these
structs, encoded with msgspec (`load_*` / `dump_*`). Times of day are local "HH:MM" strings; windows may
cross midnight ("22:00-06:00"). Dates are ISO dates.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TypeVar

import msgspec

T = TypeVar("T")


class Vehicle(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    kind: str  # tracker.vocab.VehicleKind value
    company: str
    district: str | None = None
    plate: str | None = None
    phone: str | None = None  # JT/T 808 terminal phone (BCD) number
    vendor_profile: str = "default"
    sensors: tuple[str, ...] = ()  # which sensors the terminal reports: cover_closed, lifting, load, ...


class Permit(msgspec.Struct, kw_only=True, frozen=True):
    """A muck-truck transport permit (核准/准运证)."""

    id: str
    vehicles: tuple[str, ...]
    company: str
    origin_fence: str  # construction_site fence id
    disposal_fence: str  # disposal_site / landfill fence id
    route_fence: str  # corridor fence id (kind "route") around the approved route
    valid_from: date
    valid_to: date
    windows: tuple[str, ...] = ("22:00-06:00",)
    version: int = 1


class DeliveryOrder(msgspec.Struct, kw_only=True, frozen=True):
    """A concrete delivery order: batching plant → construction site."""

    id: str
    vehicles: tuple[str, ...]
    company: str
    plant_fence: str
    site_fence: str
    valid_from: date
    valid_to: date
    windows: tuple[str, ...] = ()
    route_fence: str | None = None


def parse_window(text: str) -> tuple[int, int]:
    """"HH:MM-HH:MM" → (start, end) in local minutes of day; end < start means it crosses midnight."""
    try:
        a, b = text.split("-")
        ha, ma = (int(x) for x in a.strip().split(":"))
        hb, mb = (int(x) for x in b.strip().split(":"))
    except ValueError as exc:
        raise ValueError(f"bad time window {text!r}: expected 'HH:MM-HH:MM'") from exc
    if not (0 <= ha <= 24 and 0 <= hb <= 24 and 0 <= ma < 60 and 0 <= mb < 60):
        raise ValueError(f"bad time window {text!r}")
    return ha * 60 + ma, hb * 60 + mb


def load_list(path: str | Path, typ: type[T]) -> list[T]:
    return msgspec.json.decode(Path(path).read_bytes(), type=list[typ])  # type: ignore[valid-type]


def dump_list(items: list[T], path: str | Path) -> None:
    Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(items), indent=1))
