"""JT/T 808 location → FleetWatch fix row (the columns of `tracker.fix.Fix`).

Kept here, next to the codec and free of any tracker import, so the codec stays a leaf package; the column
names must match `tracker.fix.FIX_FIELDS` exactly (a test checks it when the tracker is importable).
"""

from __future__ import annotations

from typing import Any

from ingest.jt808.messages import Location
from ingest.jt808.profiles import SensorProfile, compile_profile

__all__ = ["FIX_ROW_KEYS", "location_to_fix_row"]

FIX_ROW_KEYS: tuple[str, ...] = (
    "vehicle_id",
    "ts_ms",
    "lon",
    "lat",
    "speed_kmh",
    "heading_deg",
    "valid",
    "alarm",
    "status",
    "cover_closed",
    "lifting",
    "load",
    "device_on",
    "drum",
    "backfill",
    "source",
    "received_ts_ms",
)


def location_to_fix_row(
    phone: str, location: Location, profile: SensorProfile, received_ts_ms: int, backfill: bool
) -> dict[str, Any]:
    """One fix row for the bus.

    `vehicle_id` is the terminal phone for now (the gateway will map terminals to vehicles). `ts_ms` is the
    terminal's fix time in UTC epoch ms, or None when the terminal sent an impossible time: the row is then
    not a valid fix and the caller must reject it rather than substitute the receive time. `valid` is status
    bit 1 (GNSS fix valid). Sensors come from `profile`; None means not reported. `backfill` is True for
    0x0704 type 1 (positions stored while offline) — the caller knows the batch type.
    """
    cover, lifting, load, device_on, drum = compile_profile(profile)(location)
    return {
        "vehicle_id": phone,
        "ts_ms": location.ts_ms,
        "lon": location.lon,
        "lat": location.lat,
        "speed_kmh": location.speed_kmh,
        "heading_deg": float(location.course_deg),
        "valid": bool(location.status & 2),
        "alarm": location.alarm,
        "status": location.status,
        "cover_closed": cover,
        "lifting": lifting,
        "load": load,
        "device_on": device_on,
        "drum": drum,
        "backfill": backfill,
        "source": "jt808",
        "received_ts_ms": received_ts_ms,
    }
