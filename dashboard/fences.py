"""Fences for display: the geometry library's `Fence` values → GeoJSON a map can draw.

The fence store (`geofences.store`) is the only place fences live; this module only reads it and shapes
features for deck.gl: circles and corridors become the polygons they actually cover (built in metres by
`Fence.area_geometry`, never buffered in degrees), and a corridor also keeps its centre line, which is the
permitted route an auditor wants to see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import shapely.geometry


class FencesUnavailable(RuntimeError):
    """The fence store is not installed in this build (the REST API answers 503 with this message)."""


def _store() -> Any:
    try:
        from geofences import store
    except ImportError as exc:  # pragma: no cover - depends on what is installed
        raise FencesUnavailable(f"the fence store (geofences.store) is not available: {exc}") from None
    return store


def _iso(d: Any) -> str | None:
    return None if d is None else d.isoformat()


def fence_properties(f: Any) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "kind": str(f.kind.value if hasattr(f.kind, "value") else f.kind),
            "shape": str(f.shape.value if hasattr(f.shape, "value") else f.shape), "company": f.company,
            "district": f.district, "valid_from": _iso(f.valid_from), "valid_to": _iso(f.valid_to),
            "windows": [list(w) for w in f.windows], "version": f.version, "radius_m": f.radius_m,
            "half_width_m": f.half_width_m, "tags": dict(f.tags)}


def fence_features(f: Any) -> list[dict[str, Any]]:
    props = fence_properties(f)
    area = shapely.geometry.mapping(f.area_geometry())
    out = [{"type": "Feature", "id": f"{f.id}@{f.version}", "properties": {**props, "role": "area"},
            "geometry": area}]
    if props["shape"] == "corridor":
        out.append({"type": "Feature", "id": f"{f.id}@{f.version}/line", "properties": {**props, "role": "line"},
                    "geometry": shapely.geometry.mapping(f.geometry)})
    return out


def feature_collection(fences: list[Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [x for f in fences for x in fence_features(f)]}


def versions_collection(found: list[Any]) -> dict[str, Any]:
    """`geofences.store.FenceVersion`s → GeoJSON, oldest first, each feature stamped with when it was the
    current version (`recorded_from_ms`, `recorded_to_ms`; null = still current)."""
    features = []
    for fv in sorted(found, key=lambda v: v.fence.version):
        stamp = {"recorded_from_ms": int(fv.recorded_from.timestamp() * 1000),
                 "recorded_to_ms": None if fv.recorded_to is None else int(fv.recorded_to.timestamp() * 1000)}
        for feat in fence_features(fv.fence):
            feat["properties"].update(stamp)
            features.append(feat)
    return {"type": "FeatureCollection", "features": features}


def in_force(conn: psycopg.Connection, at: datetime) -> list[Any]:
    return list(_store().fences_in_force(conn, at))


def versions(conn: psycopg.Connection, fence_id: str) -> list[Any]:
    store = _store()
    if not hasattr(store, "fence_versions"):
        raise FencesUnavailable("geofences.store has no fence_versions() in this build")
    return list(store.fence_versions(conn, fence_id))


def by_ids(conn: psycopg.Connection, ids: set[str], at: datetime) -> list[Any]:
    """The versions of these fences in force at `at` (what an alert was judged against)."""
    if not ids:
        return []
    return [f for f in in_force(conn, at) if f.id in ids]
