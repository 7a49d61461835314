"""Scenario configuration: one TOML file per scenario in `scenarios/catalog/`, overridable from the CLI.

Every number the simulator uses lives here (with the TOML as its source), so a scenario file documents the
world it describes: fleet mix, reporting policy, faults, city layout, permit windows, sanitation plans and
the thresholds ground-truth episodes are designed to exceed (copied from `shared/domain.md`'s typical values,
the same defaults the tracker uses).
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CATALOG = Path(__file__).resolve().parents[1] / "catalog"

Range = tuple[float, float]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reporting(_M):
    moving_interval_s: float = 10.0
    parked_interval_s: tuple[float, ...] = (30.0, 60.0)  # each terminal uses one of these when parked
    parked_after_s: float = 60.0  # stationary this long → parked reporting interval
    latency_s: Range = (0.3, 3.0)  # terminal → server delivery latency (uniform)
    speed_noise_kmh: float = 1.0  # σ of the reported (Doppler) speed


class Faults(_M):
    jump_prob: float = 0.002  # per fix: a multipath jump
    jump_m: Range = (50.0, 150.0)
    invalid_prob: float = 0.002  # per fix: flagged invalid (position stale or zero)
    duplicate_prob: float = 0.005  # per fix: delivered twice
    out_of_order_prob: float = 0.01  # per fix: held back and delivered after later fixes
    out_of_order_delay_s: Range = (15.0, 45.0)
    skew_vehicle_prob: float = 0.1  # share of terminals whose clock is off
    skew_s: Range = (-5.0, 5.0)
    dropout_s: Range = (60.0, 420.0)  # connectivity outages (back-filled later): duration
    backfill_delay_s: Range = (20.0, 180.0)  # after the outage ends, the batch arrives this much later
    short_gap_prob: float = 0.05  # per vehicle: a GPS gap (never back-filled) shorter than signal loss
    short_gap_s: Range = (120.0, 420.0)


class KindParams(_M):
    speed_limit_kmh: float  # the kind's legal limit (the speeding rule's threshold)
    max_speed_kmh: float  # what a compliant driver of this kind drives at most
    speed_factor: Range = (0.85, 1.0)  # share of the road limit a driver keeps to
    accel_ms2: float = 0.8
    decel_ms2: float = 1.2
    sensors: tuple[str, ...] = ()
    sensors_prob: float = 1.0  # share of terminals that report the sensors above
    work_speed_kmh: Range | None = None  # sanitation working speed (compliant)
    work_band_kmh: Range | None = None  # the plan's speed band (the too-fast rule's threshold is its top)


class CityParams(_M):
    depots: int = 6
    construction_sites: int = 24
    disposal_inner: int = 1
    batching_plants: int = 3
    transfer_stations: int = 3
    collection_points: int = 60  # at least; more when the refuse fleet needs them
    restricted_zones: int = 4
    zone_radius_m: Range = (180.0, 300.0)
    zone_clearance_m: float = 60.0  # compliant vehicles keep at least this far outside an active zone
    zone_windows: tuple[tuple[str, ...], ...] = (("07:00-09:00", "17:00-19:00"), ("00:00-24:00",))
    site_size_m: Range = (90.0, 140.0)
    gate_gap_m: float = 15.0  # a fenced place starts this far from the road at its gate (a driveway leads in)
    driveway_kmh: float = 10.0
    disposal_size_m: Range = (180.0, 260.0)
    collection_radius_m: float = 30.0
    collection_separation_m: float = 45.0
    place_separation_m: float = 250.0
    arterial_length_m: Range = (3000.0, 5000.0)
    arterial_bearings_deg: tuple[float, ...] = (340.0, 20.0, 300.0)
    arterial_hosts: tuple[str, ...] = ("disposal_site", "disposal_site", "landfill")
    arterial_speed_kmh: float = 60.0
    signal_share: float = 0.6  # share of major intersections with traffic lights
    red_prob: float = 0.45  # chance a vehicle meets red at a signal
    red_wait_s: Range = (15.0, 75.0)


class PermitParams(_M):
    corridor_half_width_m: float = 50.0
    trucks_per_permit: tuple[int, int] = (2, 6)
    windows: tuple[tuple[str, ...], ...] = (("22:00-06:00",), ("09:00-17:00",))
    window_weights: tuple[float, ...] = (0.7, 0.3)
    valid_days_before: int = 30
    valid_days_after: int = 60
    load_dwell_s: Range = (300.0, 600.0)
    unload_dwell_s: Range = (180.0, 360.0)
    lift_s: Range = (60.0, 120.0)


class SanitationParams(_M):
    windows: tuple[str, ...] = ("05:00-06:00", "06:00-07:00", "10:00-11:30", "14:00-15:30")
    banned_windows: tuple[str, ...] = ("07:00-10:00", "17:00-20:00")
    synth_window_max_h: float = 2.0  # when no catalog window fits the simulated period, synthesise one
    synth_window_min_min: float = 10.0  # ... at least this long (shorter periods get no sanitation work)
    synth_window_lead_min: float = 2.0  # ... starting this long after the start, ending this long before the end
    window_fill: float = 0.7  # planned work fills this share of a window (compliant vehicles finish early)
    grade_passes: tuple[int, ...] = (2, 1, 1, 1)  # passes per window for grade 1..4
    segment_m: Range = (250.0, 700.0)
    corridor_half_width_m: float = 25.0
    collection_stop_s: Range = (60.0, 180.0)
    collection_points_per_truck: tuple[int, int] = (4, 8)
    lift_s: Range = (20.0, 45.0)


class BehaviourParams(_M):
    """How vehicles go about their day, and the shape of the deliberate near misses."""

    plan_factor: float = 1.6  # drivers plan with free-flow travel time × this (signals, queues, turns)
    spread_start_s: float = 900.0  # trucks start their first cycle up to this long after the warm-up begins
    window_slack_s: float = 600.0  # a trip starts only if it ends this long before the permit window closes
    gate_wait_s: Range = (180.0, 480.0)  # near miss: an empty truck queueing ~150 m before a site gate
    congestion_stop_s: Range = (120.0, 240.0)  # near miss: a loaded truck stuck in traffic (below the dumping stop)
    brief_overspeed_kmh: Range = (3.0, 6.0)  # near miss: above the limit by this much ...
    brief_overspeed_s: Range = (8.0, 15.0)  # ... for this long (below the 30 s rule)
    brief_fast_work_s: Range = (20.0, 40.0)  # near miss: device left on this long into a transit
    speeder_lateral_ms2: float = 3.5  # a speeding driver corners harder
    straight_turn_deg: float = 20.0  # a "straight" stretch (for speeding) has no sharper turn than this
    roadside_clear_m: float = 250.0  # roadside violations happen at least this far from allowed places and zones
    detour_within_m: float = 1200.0  # a deviating truck heads for a waypoint within this distance of the split
    lone_point_m: float = 120.0  # a skipped collection point has no scheduled neighbour closer than this
    segment_overlap_max: float = 0.05  # a skipped segment shares at most this share of its corridor


class TruthParams(_M):
    """Thresholds the rules use (domain.md typical values) and the margins injected episodes exceed them by,
    so every labelled episode is visible in noisy data and every near miss stays clearly below."""

    moving_kmh: float = 5.0
    deviation_min_s: float = 60.0
    deviation_min_m: float = 200.0
    deviation_far_m: Range = (250.0, 600.0)  # how far off the corridor a deviating truck goes
    deviation_design_m: float = 900.0  # a detour drives at least this far outside the corridor (≈ 90 s)
    unsealed_min_s: float = 30.0
    unsealed_s: Range = (120.0, 300.0)
    dumping_stop_min_s: float = 300.0
    dumping_stop_s: Range = (420.0, 720.0)
    speeding_min_s: float = 30.0
    speeding_excess_kmh: Range = (12.0, 22.0)
    speeding_s: Range = (60.0, 150.0)
    signal_loss_min_s: float = 600.0
    signal_loss_s: Range = (780.0, 1200.0)
    sweeping_min_s: float = 60.0
    sweeping_fast_s: Range = (150.0, 300.0)
    sweeping_excess_kmh: Range = (6.0, 10.0)
    zone_dwell_s: Range = (90.0, 240.0)  # below the dumping-stop threshold: a stop, not a suspected discharge
    zone_min_s: float = 30.0  # an entry into an active zone shorter than this is not labelled
    zone_rejoin_s: float = 45.0  # out of a zone for less than this (along its edge) and back in: the same visit
    discharge_s: Range = (180.0, 420.0)
    banned_work_s: Range = (600.0, 1500.0)
    arrival_within_s: float = 1800.0  # a refuse round must reach its facility this long after its window closed
    margin_s: float = 120.0  # injected episodes start/end at least this far inside the simulated period


class ScenarioConfig(_M):
    """A complete scenario. `start_ts_ms` (UTC epoch ms) wins over `start_local` (city local time)."""

    name: str = "standard"
    description: str = ""
    seed: int = 1
    vehicles: int = 500
    hours: float = 1.0
    start_local: str = "2024-05-14T05:00"
    start_ts_ms: int | None = None
    utc_offset_min: int = 480
    noise_m: float = 8.0
    dropout: float = 0.02  # share of vehicles with a back-filled connectivity outage per hour
    violation_rate: float = 0.25  # violations injected per vehicle-hour, spread over eligible kinds
    warmup_s: float = 1800.0  # vehicles are mid-activity at the start: their day began this much earlier
    mix: dict[str, float] = Field(default_factory=lambda: {
        "muck_truck": 0.36, "concrete_mixer": 0.14, "refuse_truck": 0.16, "sweeper": 0.18, "sprinkler": 0.16})
    violation_weights: dict[str, float] = Field(default_factory=dict)  # kind → relative weight (default 1)
    near_miss_rate: float = 0.5  # near misses per vehicle-hour
    reporting: Reporting = Reporting()
    faults: Faults = Faults()
    city: CityParams = CityParams()
    permits: PermitParams = PermitParams()
    sanitation: SanitationParams = SanitationParams()
    truth: TruthParams = TruthParams()
    behaviour: BehaviourParams = BehaviourParams()
    kinds: dict[str, KindParams] = Field(default_factory=lambda: dict(DEFAULT_KINDS))
    road_speed_kmh: dict[str, float] = Field(default_factory=dict)  # overrides of roads.DEFAULT_SPEED_KMH

    @property
    def start_ms(self) -> int:
        if self.start_ts_ms is not None:
            return int(self.start_ts_ms)
        return _local_to_ms(self.start_local, self.utc_offset_min)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(round(self.hours * 3_600_000))

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(minutes=self.utc_offset_min))


@lru_cache(maxsize=64)
def _local_to_ms(start_local: str, utc_offset_min: int) -> int:
    local = datetime.fromisoformat(start_local).replace(tzinfo=timezone(timedelta(minutes=utc_offset_min)))
    return int(local.astimezone(UTC).timestamp() * 1000)


DEFAULT_KINDS: dict[str, KindParams] = {
    "muck_truck": KindParams(speed_limit_kmh=40.0, max_speed_kmh=36.0, sensors=("cover_closed", "lifting", "load"),
                             sensors_prob=0.75, accel_ms2=0.6),
    "concrete_mixer": KindParams(speed_limit_kmh=40.0, max_speed_kmh=36.0, sensors=("drum",), sensors_prob=0.9,
                                 accel_ms2=0.6),
    "refuse_truck": KindParams(speed_limit_kmh=50.0, max_speed_kmh=36.0, sensors=("lifting", "load"),
                               sensors_prob=0.8),
    "sweeper": KindParams(speed_limit_kmh=50.0, max_speed_kmh=30.0, sensors=("device_on",),
                          work_speed_kmh=(4.0, 6.5), work_band_kmh=(3.0, 8.0)),
    "sprinkler": KindParams(speed_limit_kmh=50.0, max_speed_kmh=34.0, sensors=("device_on",),
                            work_speed_kmh=(8.0, 12.0), work_band_kmh=(5.0, 15.0)),
}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def scenario_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.is_file():
        return p
    cand = CATALOG / f"{name_or_path}.toml"
    if cand.is_file():
        return cand
    known = ", ".join(sorted(q.stem for q in CATALOG.glob("*.toml")))
    raise FileNotFoundError(f"no scenario {name_or_path!r} (catalog: {known})")


def load_scenario(name_or_path: str | Path, **overrides: Any) -> ScenarioConfig:
    """Read a catalog scenario (by name) or a TOML file; keyword overrides (None = keep) win over the file."""
    raw = tomllib.loads(scenario_path(name_or_path).read_text(encoding="utf-8"))
    scen = raw.pop("scenario", {})
    kinds = raw.pop("kinds", {})
    data = {**scen, **raw}
    if kinds:
        merged = {k: v.model_dump() for k, v in DEFAULT_KINDS.items()}
        data["kinds"] = _deep_merge(merged, kinds)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return ScenarioConfig.model_validate(data)
