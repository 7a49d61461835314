"""Dashboard options: what a city changes about the pages, never hard-coded.

Read from `settings.dashboard` (a `[dashboard]` table in `fleetwatch.toml`, or `FLEETWATCH_DASHBOARD__*`) when
the settings model has that field; defaults otherwise. Thresholds that decide how a vehicle is *shown*
(moving / stopped / offline) live here; thresholds that decide *violations* belong to the rules.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tracker.config import Settings


class DashboardOptions(BaseModel):
    tile_url: str | None = Field(
        None, description="raster tile URL template ({z}/{x}/{y}) of the city's own tile server; "
                          "none = the road network drawn from GeoJSON only (works air-gapped)")
    tile_attribution: str = ""
    offline_after_s: float = Field(600, gt=0, description="no fix for this long → shown offline (typ. 10 min)")
    moving_kmh: float = Field(3.0, ge=0, description="at or above this speed a vehicle is shown moving")
    push_interval_s: float = Field(1.0, ge=0.2, description="/ws/live pushes at most this often")
    density_res: int = Field(9, ge=5, le=12, description="H3 resolution of the density layer")
    density_minutes: int = Field(60, ge=1, description="density layer covers the last N minutes of fixes")
    recent_alerts: int = Field(20, ge=1, description="alerts listed in the vehicle panel")


def options_from(settings: Settings) -> DashboardOptions:
    raw: Any = getattr(settings, "dashboard", None)
    if isinstance(raw, DashboardOptions):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    return DashboardOptions.model_validate(raw or {})
