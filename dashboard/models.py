"""Response shapes of the REST API, for the OpenAPI document (`/docs`, `/openapi.json`).

Times are UTC epoch milliseconds (`*_ts_ms`), coordinates WGS-84 degrees. Sensors are `null` when the
terminal does not report them — a page must show "not reported", never a guessed value.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class VehicleOut(BaseModel):
    id: str
    kind: str
    company: str | None = None
    district: str | None = None
    plate: str | None = None
    vendor_profile: str | None = None
    sensors: list[str] = Field(default_factory=list, description="sensors this terminal reports")


class LiveVehicle(BaseModel):
    id: str
    kind: str | None
    lon: float
    lat: float
    speed_kmh: float
    heading_deg: float
    ts_ms: int
    motion: str = Field(description="moving | stopped | offline (fleet clock, see /ws/live)")
    alarm_kinds: list[str] = Field(default_factory=list, description="violation kinds of open episodes")
    cover_closed: bool | None = None
    lifting: bool | None = None
    load: int | None = Field(None, description="0 empty, 1 half, 3 full")
    device_on: bool | None = None
    drum: int | None = Field(None, description="0 stopped, 1 forward, 2 reverse (discharging)")
    trip_id: str | None = Field(None, description="current trip, when the engine reports one")


class LiveOut(BaseModel):
    t: float = Field(description="fleet clock, UTC epoch ms")
    kinds: list[str]
    vehicles: list[LiveVehicle]


class AlertVehicle(BaseModel):
    kind: str | None = None
    company: str | None = None
    district: str | None = None
    plate: str | None = None


class AlertOut(BaseModel):
    id: str
    kind: str
    vehicle_id: str
    severity: str
    status: str
    start_ts_ms: int
    end_ts_ms: int | None = None
    lon: float | None = None
    lat: float | None = None
    place_id: str | None = None
    backfilled: bool = False
    updated_ts_ms: int | None = None
    vehicle: AlertVehicle = Field(default_factory=AlertVehicle)


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    alerts: list[AlertOut]


class Track(BaseModel):
    """One vehicle's fixes as parallel arrays (same length), time-ordered."""

    vehicle_id: str
    ts_ms: list[int]
    lon: list[float]
    lat: list[float]
    speed_kmh: list[float]
    heading_deg: list[float]
    valid: list[bool]
    cover_closed: list[bool | None]
    lifting: list[bool | None]
    load: list[int | None]
    device_on: list[bool | None]
    drum: list[int | None]
    backfill: list[bool]


class AlertDetail(AlertOut):
    evidence: dict[str, Any] = Field(default_factory=dict, description="what the rule recorded")
    track: Track | None = Field(None, description="the vehicle's fixes around the episode")
    fences: dict[str, Any] = Field(default_factory=dict,
                                   description="GeoJSON of the fences/route the alert refers to")
    permit: dict[str, Any] | None = None


class VehicleDetail(BaseModel):
    vehicle: VehicleOut | None
    live: LiveVehicle | None
    permits: list[dict[str, Any]] = Field(default_factory=list, description="permits/orders naming it")
    current_trip: dict[str, Any] | None = None
    recent_alerts: list[AlertOut] = Field(default_factory=list)


class ReplayOut(BaseModel):
    since_ms: int
    until_ms: int
    tracks: list[Track]
    alerts: list[AlertOut]


class DensityCell(BaseModel):
    h3: str
    fixes: int
    vehicles: int


class DensityOut(BaseModel):
    res: int
    since_ms: int
    until_ms: int
    cells: list[DensityCell]


class DayCount(BaseModel):
    day: str
    kind: str
    count: int


class CompanyRank(BaseModel):
    company: str | None
    vehicles: int
    alerts: int
    confirmed: int
    vehicles_alerted: int
    alerts_per_vehicle: float


class TripCount(BaseModel):
    place_id: str
    name: str | None = None
    trips: int


class StatsOut(BaseModel):
    since_ms: int
    until_ms: int
    alerts_per_day: list[DayCount]
    companies: list[CompanyRank]
    trips_available: bool
    trips_by_origin: list[TripCount] = Field(default_factory=list)
    trips_by_disposal: list[TripCount] = Field(default_factory=list)
    note: str | None = None
