"""KML Placemarks → GeoJSON features in the fence property schema of `geofences.geojson`.

Clerks' tools (Google Earth, some Chinese map exports) write KML. `<name>` becomes `name`, ExtendedData
`Data`/`SimpleData` become properties (JSON text for `tags`/`windows` is parsed), the Placemark's `id`
attribute the feature id. Geometry: Point, LineString, Polygon (with inner rings), MultiGeometry of
polygons. Coordinates are taken as they are; the CRS is declared to `load_fences` as for GeoJSON.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any


class KmlError(ValueError):
    """The text is not KML."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _coords(text: str | None) -> list[list[float]]:
    out = []
    for tup in (text or "").split():
        parts = tup.split(",")
        try:
            out.append([float(parts[0]), float(parts[1])])
        except (ValueError, IndexError):
            raise KmlError(f"bad KML coordinate {tup!r} (expected lon,lat[,alt])") from None
    return out


def _kml_geometry(el: ET.Element) -> dict | None:
    name = _local(el.tag)
    if name == "Point":
        c = _coords(_find_text(el, "coordinates"))
        return {"type": "Point", "coordinates": c[0]} if c else None
    if name == "LineString":
        return {"type": "LineString", "coordinates": _coords(_find_text(el, "coordinates"))}
    if name == "Polygon":
        rings = []
        for boundary in ("outerBoundaryIs", "innerBoundaryIs"):
            for b in el.iter():
                if _local(b.tag) == boundary:
                    rings.append(_coords(_find_text(b, "coordinates")))
        return {"type": "Polygon", "coordinates": rings}
    if name == "MultiGeometry":
        parts = [g for child in el if (g := _kml_geometry(child))]
        if parts and all(p["type"] == "Polygon" for p in parts):
            return {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in parts]}
        return parts[0] if len(parts) == 1 else {"type": "GeometryCollection", "geometries": parts}
    return None


def _find_text(el: ET.Element, local_name: str) -> str | None:
    for child in el.iter():
        if _local(child.tag) == local_name:
            return child.text
    return None


def kml_to_geojson(text: str) -> dict[str, Any]:
    """KML Placemarks → a GeoJSON FeatureCollection with the same property schema: `<name>` becomes
    `name`, `<ExtendedData>` Data/SimpleData become properties, the Placemark id attribute the id."""
    try:
        root = ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ET.ParseError as e:
        raise KmlError(f"not valid KML: {e}") from None
    features = []
    for pm in root.iter():
        if _local(pm.tag) != "Placemark":
            continue
        props: dict[str, Any] = {}
        geometry = None
        for child in pm:
            tag = _local(child.tag)
            if tag == "name":
                props["name"] = (child.text or "").strip()
            elif tag == "ExtendedData":
                for d in child.iter():
                    if _local(d.tag) == "Data":
                        props[d.get("name")] = _find_text(d, "value")
                    elif _local(d.tag) == "SimpleData":
                        props[d.get("name")] = d.text
            elif geometry is None:
                geometry = _kml_geometry(child)
        for key in ("tags", "windows"):
            if isinstance(props.get(key), str) and props[key].lstrip().startswith(("{", "[")):
                props[key] = json.loads(props[key])
        feat = {"type": "Feature", "properties": props, "geometry": geometry}
        if pm.get("id"):
            feat["id"] = pm.get("id")
        features.append(feat)
    return {"type": "FeatureCollection", "features": features}
