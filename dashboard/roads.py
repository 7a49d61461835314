"""The road network base layer: the city's GeoJSON, trimmed and styled once per process.

With no hosted basemap the roads *are* the map, so they carry the hierarchy a dispatcher reads at a glance:
expressways and trunk roads wide and bright, branch roads thin and dim. Style is precomputed into each
feature (`c` RGBA, `w` metres) so the live page, the exports and any other view draw identical roads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

#: (RGBA, width m, rank) per OSM highway class; unknown classes get the last entry.
ROAD_STYLE: dict[str, tuple[tuple[int, int, int, int], float, int]] = {
    "motorway": ((122, 150, 190, 255), 18, 0), "trunk": ((112, 140, 180, 255), 16, 1),
    "primary": ((96, 122, 158, 255), 13, 2), "secondary": ((82, 104, 136, 240), 10, 3),
    "tertiary": ((70, 90, 118, 230), 8, 4), "motorway_link": ((100, 126, 162, 230), 8, 4),
    "trunk_link": ((96, 120, 154, 230), 7, 4), "primary_link": ((88, 110, 142, 220), 7, 5),
    "secondary_link": ((78, 98, 128, 220), 6, 5), "tertiary_link": ((66, 84, 110, 210), 5, 5),
    "residential": ((56, 70, 92, 200), 4, 6), "unclassified": ((56, 70, 92, 200), 4, 6),
    "living_street": ((50, 62, 82, 190), 3, 7), "service": ((46, 58, 76, 170), 2.5, 7),
}
_DEFAULT = ((44, 54, 70, 150), 2.0, 8)


def _style(highway: Any) -> tuple[tuple[int, int, int, int], float, int]:
    classes = highway if isinstance(highway, list) else [highway]
    return min((ROAD_STYLE.get(str(h), _DEFAULT) for h in classes), key=lambda s: s[2])


@lru_cache(maxsize=4)
def styled_roads(path: Path) -> bytes:
    """GeoJSON bytes: geometry plus `name`, `highway`, `c` (RGBA), `w` (width in metres), `r` (rank, 0 =
    most important), major roads last so they draw on top."""
    data = orjson.loads(path.read_bytes())
    features = []
    for f in data.get("features", []):
        p = f.get("properties") or {}
        color, width, rank = _style(p.get("highway"))
        highway = p.get("highway")
        features.append({"type": "Feature", "geometry": f["geometry"],
                         "properties": {"name": p.get("name") or "", "highway": highway if isinstance(highway, str)
                                        else (highway or [""])[0], "c": color, "w": width, "r": rank}})
    features.sort(key=lambda f: -f["properties"]["r"])
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def bounds(path: Path) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the network: the initial map view."""
    data = orjson.loads(styled_roads(path))
    xs: list[float] = []
    ys: list[float] = []
    for f in data["features"]:
        coords = f["geometry"]["coordinates"]
        if f["geometry"]["type"] == "MultiLineString":
            coords = [c for part in coords for c in part]
        xs.extend(c[0] for c in coords)
        ys.extend(c[1] for c in coords)
    if not xs:
        return (113.7, 22.3, 114.7, 22.9)
    return (min(xs), min(ys), max(xs), max(ys))
