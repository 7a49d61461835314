"""Fences from and to GeoJSON (and KML), declaring the coordinate system they were drawn in.

Import is all-or-nothing: every feature is checked, and if any is wrong `FenceImportError` lists each
bad feature (index, id, reason) and nothing is returned — a half-imported set of sites would make the
rules silently wrong for the missing ones.

Feature properties (what the simulator and clerks' tools write):

=============== ====================================================================================
`id`            string, unique; falls back to the GeoJSON feature `id`
`name`          display name (Chinese), defaults to the id
`kind`          a `FenceKind` value: construction_site, disposal_site, batching_plant, transfer_station,
                landfill, depot, restricted_zone, collection_point, work_area, route
                (or `default_kind` for files of one kind)
`shape`         "polygon" | "circle" | "corridor"; inferred when absent: Polygon/MultiPolygon → polygon,
                Point (+ radius_m) → circle, LineString (+ half_width_m) → corridor
`radius_m`      circle radius, metres, > 0
`half_width_m`  corridor half-width (each side of the line), metres, > 0
`company`       owning/operating company
`district`      administrative district
`valid_from`    ISO date, inclusive, local; `valid_to` likewise
`windows`       list of "HH:MM-HH:MM" local times the fence is in force; may cross midnight
                ("22:00-06:00"); "24:00" allowed as an end; absent or empty = all day
`tags`          object of string → string (e.g. {"speed_limit_kmh": "30"})
`version`       integer ≥ 1 (the store assigns versions; import keeps what the file says)
=============== ====================================================================================

Coordinates are lon/lat in the CRS passed as `crs` (GCJ-02 for AMap/Tencent drawings, BD-09 for Baidu);
they are converted to WGS-84 on import. `dump_fences` writes the same schema, in any CRS, and records it
in a top-level "coordinate_system" member; loading such a file with a different `crs` is refused.

Checks, each reported with the feature: unreadable or empty geometry, invalid/self-intersecting polygon
(rejected, or repaired with `repair=True` via `shapely.make_valid`), coordinates out of range or outside
`city_bbox` (with "lat/lon swapped?" when swapping them would fit), unknown kind, duplicate id,
radius ≤ 0, corridor half-width ≤ 0, bad dates or windows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from geofences.crs import out_of_china, transform_geometry
from geofences.kinds import Crs, FenceKind, ShapeKind
from geofences.model import Fence

Problem = tuple[int, str | None, str]

_INFER_SHAPE = {"Polygon": ShapeKind.POLYGON, "MultiPolygon": ShapeKind.POLYGON, "Point": ShapeKind.CIRCLE,
                "LineString": ShapeKind.CORRIDOR}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class FenceImportError(ValueError):
    """Import refused; `.problems` is a list of (feature_index, feature_id, reason)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        lines = [f"  feature #{i} ({fid if fid else 'no id'}): {reason}" if i >= 0 else f"  {reason}"
                 for i, fid, reason in self.problems]
        super().__init__(f"fence import refused, nothing imported — {len(self.problems)} problem(s):\n"
                         + "\n".join(lines))


class _Bad(Exception):
    """One reason a feature is rejected (internal)."""


# --- import ------------------------------------------------------------------------------------------


def load_fences(
    source: str | Path | dict | Sequence[dict],
    crs: Crs | str = Crs.WGS84,
    default_kind: FenceKind | str | None = None,
    repair: bool = False,
    city_bbox: tuple[float, float, float, float] | None = None,
) -> list[Fence]:
    """Read fences from a GeoJSON (or KML) file, text, parsed dict, or a list of Feature dicts; see the
    module docstring.

    `city_bbox` = (min_lon, min_lat, max_lon, max_lat) in WGS-84: every fence must lie inside it."""
    crs = Crs(crs)
    default_kind = FenceKind(default_kind) if default_kind is not None else None
    doc = _read(source)
    declared = doc.get("coordinate_system") if isinstance(doc, dict) else None
    if declared is not None and declared != crs.value:
        raise FenceImportError([(-1, None, f"file declares coordinate_system {declared!r} but crs={crs.value!r}")])
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection" and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        raise FenceImportError([(-1, None, "not a GeoJSON Feature or FeatureCollection")])

    problems: list[Problem] = []
    fences: list[Fence] = []
    first_seen: dict[str, int] = {}
    for i, feat in enumerate(features):
        fid = _feature_id(feat)
        if fid is not None and fid in first_seen:
            problems.append((i, fid, f"duplicate id {fid!r} (also feature #{first_seen[fid]})"))
            continue
        if fid is not None:
            first_seen[fid] = i
        try:
            fences.append(_fence(feat, fid, crs, default_kind, repair, city_bbox))
        except _Bad as bad:
            problems.append((i, fid, str(bad)))
    if problems:
        raise FenceImportError(problems)
    return fences


def _read(source: str | Path | dict | Sequence[dict]) -> Any:
    if isinstance(source, dict):
        return source
    if isinstance(source, (list, tuple)):
        return {"type": "FeatureCollection", "features": list(source)}
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        text, kml = source, False
    elif isinstance(source, str) and source.lstrip().startswith("<"):
        return _kml(source)
    else:
        path = Path(source)
        text, kml = path.read_text(encoding="utf-8-sig"), path.suffix.lower() == ".kml"
    if kml:
        return _kml(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FenceImportError([(-1, None, f"not valid JSON: {e}")]) from None


def _kml(text: str) -> dict[str, Any]:
    from geofences.kml import KmlError, kml_to_geojson

    try:
        return kml_to_geojson(text)
    except KmlError as e:
        raise FenceImportError([(-1, None, str(e))]) from None


def _feature_id(feat: Any) -> str | None:
    if not isinstance(feat, dict):
        return None
    props = feat.get("properties") or {}
    fid = props.get("id") if isinstance(props, dict) else None
    fid = fid if fid not in (None, "") else feat.get("id")
    return None if fid in (None, "") else str(fid)


def _fence(feat: Any, fid: str | None, crs: Crs, default_kind: FenceKind | None, repair: bool,
           city_bbox: tuple[float, float, float, float] | None) -> Fence:
    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        raise _Bad("not a GeoJSON Feature")
    props = feat.get("properties") or {}
    if not isinstance(props, dict):
        raise _Bad("properties is not an object")
    if fid is None:
        raise _Bad("missing id")
    kind = _kind(props.get("kind"), default_kind)
    geom = _geometry(feat.get("geometry"))
    shape = _shape(props.get("shape"), geom)
    _check_lonlat_range(geom)
    geom = transform_geometry(geom, crs, Crs.WGS84)
    _check_place(geom, city_bbox, crs)
    if shape is ShapeKind.POLYGON and not geom.is_valid:
        geom = _repaired(geom) if repair else _invalid(geom)
    radius_m = _positive(props, "radius_m", "circle") if shape is ShapeKind.CIRCLE else None
    half_width_m = _positive(props, "half_width_m", "corridor") if shape is ShapeKind.CORRIDOR else None
    try:
        return Fence(
            id=fid,
            name=str(props.get("name") or fid),
            kind=kind,
            shape=shape,
            geometry=geom,
            radius_m=radius_m,
            half_width_m=half_width_m,
            company=_opt_str(props.get("company")),
            district=_opt_str(props.get("district")),
            valid_from=_date(props, "valid_from"),
            valid_to=_date(props, "valid_to"),
            windows=_windows(props.get("windows")),
            tags=_tags(props.get("tags")),
            version=_version(props.get("version")),
        )
    except ValueError as e:
        raise _Bad(str(e)) from None


def _kind(raw: Any, default: FenceKind | None) -> FenceKind:
    if raw in (None, ""):
        if default is None:
            raise _Bad("no kind (give the property, or a default kind for the file)")
        return default
    try:
        return FenceKind(str(raw))
    except ValueError:
        raise _Bad(f"unknown kind {raw!r} (expected one of {', '.join(k.value for k in FenceKind)})") from None


def _geometry(raw: Any) -> BaseGeometry:
    if not raw:
        raise _Bad("empty geometry")
    try:
        geom = shapely.geometry.shape(raw)
    except Exception as e:  # shapely raises several types for malformed input
        raise _Bad(f"unreadable geometry: {e}") from None
    if geom.is_empty:
        raise _Bad("empty geometry")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise _Bad("non-finite coordinate")
    return shapely.force_2d(geom)


def _shape(raw: Any, geom: BaseGeometry) -> ShapeKind:
    inferred = _INFER_SHAPE.get(geom.geom_type)
    if inferred is None:
        raise _Bad(f"unsupported geometry type {geom.geom_type} (Polygon, MultiPolygon, Point, LineString)")
    if raw in (None, ""):
        return inferred
    try:
        shape = ShapeKind(str(raw))
    except ValueError:
        raise _Bad(f"unknown shape {raw!r} (polygon, circle, corridor)") from None
    if shape is not inferred:
        raise _Bad(f"shape {shape.value!r} does not match geometry type {geom.geom_type}")
    return shape


def _swapped(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda c: c[:, ::-1])


def _check_lonlat_range(geom: BaseGeometry) -> None:
    c = shapely.get_coordinates(geom)
    bad = (np.abs(c[:, 0]) > 180) | (np.abs(c[:, 1]) > 90)
    if bad.any():
        lon, lat = c[np.argmax(bad)]
        hint = " — lat/lon swapped?" if abs(lon) <= 90 and abs(lat) <= 180 else ""
        raise _Bad(f"coordinate ({lon}, {lat}) is not a valid lon/lat{hint}")


def _check_place(geom: BaseGeometry, city_bbox: tuple[float, float, float, float] | None, crs: Crs) -> None:
    """In WGS-84, after conversion: inside the city's box if one is configured, else at least plausible
    (a shape outside China whose swapped coordinates fall inside China is a swapped file)."""
    if city_bbox is not None:
        box = shapely.box(*city_bbox)
        if box.covers(geom):
            return
        try:
            swapped_inside = box.covers(transform_geometry(_swapped(geom), crs, Crs.WGS84))
        except Exception:
            swapped_inside = False
        where = ", ".join(f"{v:.5f}" for v in geom.bounds)
        hint = " — lat/lon swapped?" if swapped_inside else ""
        raise _Bad(f"outside the city area {tuple(city_bbox)} (bounds {where}){hint}")
    c = shapely.get_coordinates(geom)
    if out_of_china(c[:, 0], c[:, 1]).all() and not out_of_china(c[:, 1], c[:, 0]).any():
        raise _Bad("coordinates are outside China but inside it when swapped — lat/lon swapped?")


def _invalid(geom: BaseGeometry) -> BaseGeometry:
    raise _Bad(f"invalid polygon: {shapely.is_valid_reason(geom)} (import with repair to fix it)")


def _repaired(geom: BaseGeometry) -> BaseGeometry:
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    polys = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise _Bad(f"invalid polygon that cannot be repaired: {shapely.is_valid_reason(geom)}")
    out = shapely.union_all(polys)
    if out.geom_type not in ("Polygon", "MultiPolygon") or out.is_empty or not out.is_valid:
        raise _Bad(f"invalid polygon that cannot be repaired: {shapely.is_valid_reason(geom)}")
    return out


def _positive(props: dict, key: str, shape: str) -> float:
    raw = props.get(key)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _Bad(f"{shape} needs a numeric {key} > 0 (got {raw!r})") from None
    if not np.isfinite(value) or value <= 0:
        raise _Bad(f"{shape} {key} must be > 0 (got {raw!r})")
    return value


def _opt_str(raw: Any) -> str | None:
    return None if raw in (None, "") else str(raw)


def _date(props: dict, key: str) -> date | None:
    raw = props.get(key)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        raise _Bad(f"{key} is not an ISO date: {raw!r}") from None


def _windows(raw: Any) -> tuple[tuple[int, int], ...]:
    if raw in (None, ""):
        return ()
    if isinstance(raw, str):
        raw = [w for w in raw.split(",") if w.strip()]
    out = []
    for w in raw:
        m = _WINDOW.match(str(w))
        if not m:
            raise _Bad(f"bad time window {w!r} (expected 'HH:MM-HH:MM')")
        h1, m1, h2, m2 = map(int, m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        end = end or 1440  # "…-00:00" ends at midnight
        if m1 > 59 or m2 > 59 or start >= 1440 or end > 1440 or start == end:
            raise _Bad(f"bad time window {w!r}")
        out.append((start, end))
    return tuple(out)


def _tags(raw: Any) -> dict[str, str]:
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise _Bad("tags must be an object of strings")
    return {str(k): str(v) for k, v in raw.items()}


def _version(raw: Any) -> int:
    if raw in (None, ""):
        return 1
    try:
        v = int(raw)
    except (TypeError, ValueError):
        raise _Bad(f"version is not an integer: {raw!r}") from None
    if v < 1:
        raise _Bad(f"version must be ≥ 1 (got {v})")
    return v


# --- export ------------------------------------------------------------------------------------------


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def fence_properties(f: Fence) -> dict[str, Any]:
    """A fence's properties in the schema of the module docstring (absent values left out)."""
    props: dict[str, Any] = {"id": f.id, "name": f.name, "kind": f.kind.value, "shape": f.shape.value}
    if f.radius_m is not None:
        props["radius_m"] = f.radius_m
    if f.half_width_m is not None:
        props["half_width_m"] = f.half_width_m
    for key in ("company", "district"):
        if getattr(f, key):
            props[key] = getattr(f, key)
    for key in ("valid_from", "valid_to"):
        if getattr(f, key):
            props[key] = getattr(f, key).isoformat()
    if f.windows:
        props["windows"] = [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in f.windows]
    if f.tags:
        props["tags"] = dict(f.tags)
    props["version"] = f.version
    return props


def dump_fences(fences: Sequence[Fence], crs: Crs | str = Crs.WGS84) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of `fences`, coordinates in `crs`."""
    crs = Crs(crs)
    features = [
        {
            "type": "Feature",
            "id": f.id,
            "geometry": shapely.geometry.mapping(transform_geometry(f.geometry, Crs.WGS84, crs)),
            "properties": fence_properties(f),
        }
        for f in fences
    ]
    return {"type": "FeatureCollection", "coordinate_system": crs.value, "features": features}
