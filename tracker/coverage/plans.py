"""Sanitation work plans and refuse collection schedules: the records, their file format, validation.

File format (`fleetwatch plans import/export`, `GET/PUT /api/coverage/plans`, and the simulator's
`plans.json`) is one JSON object `{"work_plans": [WorkPlan], "collection_schedules": [CollectionSchedule]}`
encoded with msgspec. A plan carries its segments' geometry (WGS-84 [lon, lat] LineStrings taken from the
road network when the plan was drawn up), so the coverage engine never needs the road network itself: the
plan is the contract, and the contract says which stretch of road was meant even after the map changes.

Semantics (documented here because every consumer relies on them):

* `PlanSegment.passes` is the number of passes required *in each window* of the plan (the simulator's
  meaning; per day that is `passes × len(windows)`). A pass in either direction counts on a `two_way` road.
* `WorkPlan.windows` are local "HH:MM-HH:MM" windows, every day the plan is valid (`valid_from..valid_to`,
  inclusive, both optional). A window crossing midnight belongs to the day it starts (a shift).
* `speed_min_kmh..speed_max_kmh` is the working-speed band; `device_on` says whether the brush/pump must be
  on for a pass to count; `banned_windows` are the local windows in which working is forbidden.
* `CollectionSchedule.points` are collection-point fence ids in the intended order, `facility` the
  transfer station / landfill fence the round must end at.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from tracker.reference import parse_window

SANITATION_KINDS = ("sweeper", "sprinkler")


class PlanSegment(msgspec.Struct, kw_only=True, frozen=True):
    """A planned stretch of one road, served by passes along its corridor (centreline ± half_width_m)."""

    id: str
    coordinates: list[list[float]]  # WGS-84 [lon, lat] LineString, in the road's digitised direction
    road_name: str = ""
    grade: int = 4  # 1 (一级, arterial) … 4 (四级, branch)
    passes: int = 1  # required passes per window
    length_m: float = 0.0  # informative; the engine measures the geometry itself
    half_width_m: float = 25.0
    two_way: bool = True
    district: str | None = None  # defaults to the plan's district


class WorkPlan(msgspec.Struct, kw_only=True, frozen=True):
    """A sweeper / sprinkler work plan (作业计划)."""

    id: str
    vehicle_id: str
    vehicle_kind: str  # sweeper | sprinkler
    company: str
    segments: list[PlanSegment]
    windows: list[str]
    speed_min_kmh: float
    speed_max_kmh: float
    district: str = ""
    device_on: bool = True
    banned_windows: list[str] = msgspec.field(default_factory=list)
    valid_from: date | None = None
    valid_to: date | None = None
    version: int = 1


class CollectionSchedule(msgspec.Struct, kw_only=True, frozen=True):
    """A refuse truck's round (收运计划): points in order within the windows, then the end facility."""

    id: str
    vehicle_id: str
    company: str
    points: list[str]
    windows: list[str]
    facility: str
    district: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    version: int = 1


class Plans(msgspec.Struct, kw_only=True):
    work_plans: list[WorkPlan] = msgspec.field(default_factory=list)
    collection_schedules: list[CollectionSchedule] = msgspec.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.work_plans) + len(self.collection_schedules)


class PlanError(ValueError):
    """A plan file that cannot be imported; `problems` lists every one (nothing is stored)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "; ".join(problems[:8]) + (f"; … {len(problems) - 8} more" if len(problems) > 8 else "")
        super().__init__(f"{len(problems)} problem(s) in the plans: {shown}")


# -- conversion ---------------------------------------------------------------------------------------------------


def as_plans(obj: Any) -> Plans:
    """Any plans-shaped object (ours, the simulator's structs, a decoded JSON dict) → `Plans`."""
    if obj is None:
        return Plans()
    if isinstance(obj, Plans):
        return obj
    raw = obj if isinstance(obj, dict) else msgspec.to_builtins(obj)
    return msgspec.convert(raw, Plans, strict=False)


def decode(data: bytes | str) -> Plans:
    """JSON text → `Plans` (structure only; see `validate` for the meaning)."""
    try:
        return msgspec.json.decode(data, type=Plans, strict=False)
    except msgspec.ValidationError as exc:
        raise PlanError([f"format: {exc}"]) from exc
    except msgspec.DecodeError as exc:
        raise PlanError([f"not JSON: {exc}"]) from exc


def encode(plans: Plans) -> bytes:
    return msgspec.json.format(msgspec.json.encode(plans), indent=1)


def load(path: str | Path) -> Plans:
    return decode(Path(path).read_bytes())


def dump(plans: Plans, path: str | Path) -> None:
    Path(path).write_bytes(encode(plans))


def convert_crs(plans: Plans, crs: str) -> Plans:
    """Segment coordinates drawn in GCJ-02 / BD-09 (Chinese web maps) → WGS-84 (what terminals report)."""
    if crs.lower() in ("wgs84", "wgs-84"):
        return plans
    import numpy as np

    from geofences.crs import to_wgs84

    out = []
    for wp in plans.work_plans:
        segs = []
        for s in wp.segments:
            a = np.asarray(s.coordinates, float)
            lon, lat = to_wgs84(a[:, 0], a[:, 1], crs)
            segs.append(msgspec.structs.replace(s, coordinates=np.column_stack([lon, lat]).round(7).tolist()))
        out.append(msgspec.structs.replace(wp, segments=segs))
    return Plans(work_plans=out, collection_schedules=list(plans.collection_schedules))


# -- validation ---------------------------------------------------------------------------------------------------


def _windows_problems(where: str, windows: list[str]) -> list[str]:
    out = []
    for w in windows:
        try:
            a, b = parse_window(w)
        except ValueError as exc:
            out.append(f"{where}: {exc}")
            continue
        if a == b:
            out.append(f"{where}: empty window {w!r}")
    return out


def validate(plans: Plans, *, fence_ids: set[str] | None = None,
             bbox: tuple[float, float, float, float] | None = None) -> list[str]:
    """Every problem that would make a plan meaningless (empty list = importable). `fence_ids`, when given,
    must contain every collection point and facility; `bbox` (lon_min, lat_min, lon_max, lat_max) every
    segment vertex — a plan drawn in GCJ-02 but declared WGS-84 still lands inside, a swapped lon/lat not."""
    problems: list[str] = []
    seen_plans: set[str] = set()
    seen_segments: set[str] = set()
    for wp in plans.work_plans:
        where = f"work plan {wp.id!r}"
        if not wp.id or wp.id in seen_plans:
            problems.append(f"{where}: empty or duplicate id")
        seen_plans.add(wp.id)
        if wp.vehicle_kind not in SANITATION_KINDS:
            problems.append(f"{where}: vehicle_kind must be one of {SANITATION_KINDS}, got {wp.vehicle_kind!r}")
        if not (0 <= wp.speed_min_kmh < wp.speed_max_kmh):
            problems.append(f"{where}: speed band {wp.speed_min_kmh}..{wp.speed_max_kmh} km/h is empty")
        if not wp.windows:
            problems.append(f"{where}: no windows")
        problems += _windows_problems(where, wp.windows) + _windows_problems(where, wp.banned_windows)
        if wp.valid_from and wp.valid_to and wp.valid_from > wp.valid_to:
            problems.append(f"{where}: valid_from after valid_to")
        for s in wp.segments:
            sw = f"{where} segment {s.id!r}"
            if not s.id or s.id in seen_segments:
                problems.append(f"{sw}: empty or duplicate segment id")
            seen_segments.add(s.id)
            if len(s.coordinates) < 2 or any(len(c) != 2 for c in s.coordinates):
                problems.append(f"{sw}: needs a LineString of at least 2 [lon, lat] points")
                continue
            if bbox is not None and not all(bbox[0] <= c[0] <= bbox[2] and bbox[1] <= c[1] <= bbox[3]
                                            for c in s.coordinates):
                problems.append(f"{sw}: coordinates outside the city {bbox}")
            if s.passes < 1:
                problems.append(f"{sw}: passes must be ≥ 1")
            if not 1 <= s.grade <= 4:
                problems.append(f"{sw}: grade must be 1..4")
            if s.half_width_m <= 0:
                problems.append(f"{sw}: half_width_m must be > 0")
    seen_sched: set[str] = set()
    for cs in plans.collection_schedules:
        where = f"collection schedule {cs.id!r}"
        if not cs.id or cs.id in seen_sched:
            problems.append(f"{where}: empty or duplicate id")
        seen_sched.add(cs.id)
        if not cs.points:
            problems.append(f"{where}: no collection points")
        if not cs.windows:
            problems.append(f"{where}: no windows")
        problems += _windows_problems(where, cs.windows)
        if fence_ids is not None:
            missing = [p for p in [*cs.points, cs.facility] if p not in fence_ids]
            if missing:
                problems.append(f"{where}: unknown fences {missing[:5]}")
    return problems


def checked(plans: Plans, **kw: Any) -> Plans:
    problems = validate(plans, **kw)
    if problems:
        raise PlanError(problems)
    return plans


# -- views --------------------------------------------------------------------------------------------------------


def segments_geojson(plans: Plans) -> dict[str, Any]:
    """Every planned segment as a GeoJSON LineString feature (for maps and for clerks' GIS tools)."""
    feats = []
    for wp in plans.work_plans:
        for s in wp.segments:
            feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": s.coordinates},
                          "properties": {"segment_id": s.id, "plan_id": wp.id, "vehicle_id": wp.vehicle_id,
                                         "vehicle_kind": wp.vehicle_kind, "company": wp.company,
                                         "district": s.district or wp.district, "road_name": s.road_name,
                                         "grade": s.grade, "passes": s.passes, "half_width_m": s.half_width_m,
                                         "windows": wp.windows}})
    return {"type": "FeatureCollection", "features": feats}


def active_on(valid_from: date | None, valid_to: date | None, day: date) -> bool:
    return (valid_from is None or valid_from <= day) and (valid_to is None or day <= valid_to)
