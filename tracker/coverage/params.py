"""`[rules.coverage]`: how passes are measured and how coverage is judged (documented defaults).

The table sits under `[rules.*]` because that is where a city's `fleetwatch.toml` keeps every threshold
(`Settings.rules`), and the coverage rules and reports must agree on one definition of a valid pass. The
rules' own thresholds (durations, warning lead times) live in their `[rules.<rule>]` tables.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tracker.config import Settings


class CoverageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bin_m: float = Field(5.0, gt=0, le=50, description="measure resolution along a segment (bins)")
    corridor_pad_m: float = Field(0.0, ge=0, description="added to each segment's half_width_m")
    band_tolerance_kmh: float = Field(1.0, ge=0, description="GPS speed noise allowed at both ends of the band")
    device_missing: Literal["count", "ignore"] = Field(
        "count", description="terminal reports no device state: count its passes (marked unverified) or not")
    max_step_s: float = Field(60.0, gt=0, description="a pass continues across other fixes this long at most")
    bridge_max_gap_s: float = Field(600.0, gt=0,
                                    description="... and across a silent data gap this long when plausible")
    step_slack_m: float = Field(30.0, ge=0, description="GPS noise allowed in a step's plausibility test")
    end_snap_m: float = Field(25.0, ge=0, description="a pass reaching this close to a segment end reached it "
                                                     "(GPS noise: ±8 m makes a pass look short at both ends)")
    reverse_min_m: float = Field(30.0, ge=0, description="backing up this far starts a new pass (hysteresis)")
    covered_min_pct: float = Field(90.0, ge=0, le=100, description="status 'covered' at or above")
    missed_below_pct: float = Field(20.0, ge=0, le=100, description="status 'missed' below; 'partial' between")
    complete_bin_share: float = Field(0.8, gt=0, le=1,
                                      description="a segment has k passes when this share of it has ≥ k")
    gap_min_s: float = Field(120.0, gt=0, description="no fix for this long is a data gap (parked terminals "
                                                        "report every 30–60 s)")
    gap_excuse_share: float = Field(1.0, ge=0, description="a segment short of coverage is 'unverified', not "
                                    "missed, when its vehicle had a data gap in the window at least this share of "
                                    "the time the missing work takes at the top of the band")
    gap_transit_kmh: float = Field(30.0, gt=0, description="speed assumed to reach the segment during a gap")
    any_vehicle: bool = Field(False, description="count passes of any vehicle of the plan's kind, not only "
                                                 "the plan's own vehicle")
    grid_m: float = Field(100.0, gt=0, description="spatial hash cell size for corridor look-ups")
    display_h3_res: int = Field(10, ge=6, le=13, description="H3 resolution of the map's hexagons")
    judge_if_seen_from_s: float = Field(600.0, ge=0, description="a window is judged only if data started "
                                                                  "at most this long after it opened")
    # refuse collection
    visit_stop_kmh: float = Field(5.0, ge=0, description="a fix at or below this speed in a point is a stop")
    visit_run_gap_s: float = Field(90.0, gt=0, description="stops at a point further apart are separate visits")
    visit_min_dwell_s: float = Field(30.0, ge=0, description="with no lifter reported: a stop this long is a "
                                                              "visit (a red light is shorter)")
    arrival_within_s: float = Field(1800.0, ge=0,
                                    description="the facility must be reached by the window's end plus this")

    def corridor_m(self, half_width_m: float) -> float:
        return half_width_m + self.corridor_pad_m


def load_coverage_params(settings: Settings) -> CoverageParams:
    from tracker.rules import load_params

    return load_params("coverage", CoverageParams, settings)
