"""The evidence package of a case: what an auditor or a court needs to see what happened, in one file.

Contents of the zip (`EvidencePackage.to_zip`):

* `case.json` — the case, its full history, the alert with the rule, thresholds and the fence/route/permit
  versions the rule recorded, the vehicle, the time window, and the sensor timeline;
* `track.geojson` — the track ±N minutes (LineString + one Point per fix with speed and sensors), the alert
  position and every reference geometry available (fences, route corridor);
* `map.png` — the track drawn over those geometries;
* `manifest.json` — SHA-256 of every file and the audit-log head at export time, so a copy handed out can
  later be checked against the log.

Pure: the store gathers the rows (fixes, alert, history) and this module shapes them; nothing here reads a
database. The map uses matplotlib's Agg backend (no display) and only ASCII text, so it renders the same
on a server with no CJK fonts.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from tracker.cases.model import Case, CaseEvent

__all__ = ["SENSORS", "ReferenceGeometry", "EvidencePackage", "sensor_timeline", "find_geometries",
           "reference_versions", "track_geojson", "render_map", "build_package"]

SENSORS = ("valid", "cover_closed", "lifting", "load", "device_on", "drum")
_GEOJSON_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
_REFERENCE_HINTS = ("fence", "permit", "route", "order", "plan", "version", "place", "site", "doc")


@dataclass(frozen=True)
class ReferenceGeometry:
    """A fence, corridor or other place drawn on the map and exported in the GeoJSON."""

    name: str
    role: str  # "fence", "route", "district", "evidence" …
    geometry: dict[str, Any]  # GeoJSON geometry, WGS-84
    properties: dict[str, Any] = field(default_factory=dict)


def _iso(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def sensor_timeline(track: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per sensor, runs of equal values: [{sensor, value, from, to, fixes}] (None = not reported)."""
    out: list[dict[str, Any]] = []
    for sensor in SENSORS:
        run: dict[str, Any] | None = None
        for row in track:
            if sensor not in row:
                break
            value = row[sensor]
            if run is not None and run["value"] == value:
                run["to"] = _iso(row["ts"])
                run["fixes"] += 1
                continue
            run = {"sensor": sensor, "value": value, "from": _iso(row["ts"]), "to": _iso(row["ts"]), "fixes": 1}
            out.append(run)
    return out


def find_geometries(obj: Any, path: str = "evidence") -> list[ReferenceGeometry]:
    """Every GeoJSON geometry nested anywhere in a rule's evidence (rules may attach fence shapes)."""
    found: list[ReferenceGeometry] = []
    if isinstance(obj, dict):
        if obj.get("type") in _GEOJSON_TYPES and "coordinates" in obj:
            return [ReferenceGeometry(name=path, role="evidence", geometry=obj)]
        if obj.get("type") == "Feature" and isinstance(obj.get("geometry"), dict):
            props = obj.get("properties") or {}
            return [ReferenceGeometry(name=str(props.get("id", path)), role=str(props.get("kind", "evidence")),
                                      geometry=obj["geometry"], properties=props)]
        for k, v in obj.items():
            found += find_geometries(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += find_geometries(v, f"{path}[{i}]")
    return found


def reference_versions(evidence: dict[str, Any]) -> dict[str, Any]:
    """The fence/route/permit ids and versions a rule recorded (keys naming a reference), geometry left out."""
    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in ("coordinates", "geometry")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return {k: strip(v) for k, v in evidence.items() if any(h in k.lower() for h in _REFERENCE_HINTS)}


def track_geojson(track: Sequence[dict[str, Any]], case: Case, geometries: Iterable[ReferenceGeometry]
                  ) -> dict[str, Any]:
    feats: list[dict[str, Any]] = []
    if len(track) >= 2:
        feats.append({"type": "Feature", "properties": {"role": "track", "vehicle_id": case.vehicle_id,
                                                        "fixes": len(track)},
                      "geometry": {"type": "LineString", "coordinates": [[r["lon"], r["lat"]] for r in track]}})
    for r in track:
        props = {"role": "fix", "ts": _iso(r["ts"]), "speed_kmh": r.get("speed_kmh")}
        props.update({s: r.get(s) for s in SENSORS if s in r})
        feats.append({"type": "Feature", "properties": props,
                      "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}})
    if case.lon is not None and case.lat is not None:
        feats.append({"type": "Feature", "properties": {"role": "case", "case_id": case.id, "kind": case.kind},
                      "geometry": {"type": "Point", "coordinates": [case.lon, case.lat]}})
    for g in geometries:
        feats.append({"type": "Feature", "properties": {"role": g.role, "name": g.name, **g.properties},
                      "geometry": g.geometry})
    return {"type": "FeatureCollection", "features": feats}


def _draw_geometry(ax: Any, geom: dict[str, Any], color: str, label: str | None = None) -> None:
    import shapely
    from shapely.geometry import shape

    g = shape(geom)
    for i, part in enumerate(getattr(g, "geoms", [g])):
        if isinstance(part, shapely.Polygon):
            x, y = part.exterior.xy
            ax.fill(x, y, color=color, alpha=0.18, zorder=1, label=label if i == 0 else None)
            ax.plot(x, y, color=color, linewidth=1.2, zorder=2)
        elif isinstance(part, shapely.LineString):
            x, y = part.xy
            ax.plot(x, y, color=color, linewidth=6, alpha=0.25, solid_capstyle="round", zorder=1,
                    label=label if i == 0 else None)
            ax.plot(x, y, color=color, linewidth=1, linestyle="--", zorder=2)
        elif isinstance(part, shapely.Point):
            ax.plot(part.x, part.y, marker="o", color=color, markersize=6, zorder=2)


def _extent(points: list[tuple[float, float]], geometries: Sequence[ReferenceGeometry], min_half_m: float = 150.0
            ) -> tuple[float, float, float, float]:
    """A square (in metres) window around the track and the case, padded; the geometries only when there
    is nothing else to frame. Geometries larger than the window are clipped by the axes, not shrunk."""
    if not points:
        from shapely.geometry import shape

        for g in geometries:
            x0, y0, x1, y1 = shape(g.geometry).bounds
            points += [(x0, y0), (x1, y1)]
    if not points:
        return 113.9, 22.4, 114.1, 22.6
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    m_per_deg_y = 111_320.0
    m_per_deg_x = m_per_deg_y * max(math.cos(math.radians(cy)), 0.1)
    half_m = max((max(xs) - min(xs)) * m_per_deg_x, (max(ys) - min(ys)) * m_per_deg_y) / 2 * 1.2
    half_m = max(half_m, min_half_m)
    return (cx - half_m / m_per_deg_x, cy - half_m / m_per_deg_y, cx + half_m / m_per_deg_x,
            cy + half_m / m_per_deg_y)


def render_map(track: Sequence[dict[str, Any]], case: Case, geometries: Sequence[ReferenceGeometry],
               dpi: int = 100) -> bytes:
    """PNG of the track over the reference geometries: fixes coloured by speed, fixes with the cover open
    or the body lifting ringed in red, the case position starred."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    fig = Figure(figsize=(7, 6.5), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]
    for i, g in enumerate(geometries):
        _draw_geometry(ax, g.geometry, palette[i % len(palette)], f"{g.role}: {g.name}"[:40])
    points = [(float(r["lon"]), float(r["lat"])) for r in track]
    if track:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, color="#444444", linewidth=1.2, zorder=3)
        sc = ax.scatter(xs, ys, c=[float(r.get("speed_kmh") or 0) for r in track], cmap="viridis", s=14, zorder=4)
        fig.colorbar(sc, ax=ax, shrink=0.6, label="speed km/h")
        flagged = [p for p, r in zip(points, track) if r.get("cover_closed") is False or r.get("lifting") is True]
        if flagged:
            ax.scatter([p[0] for p in flagged], [p[1] for p in flagged], s=60, facecolors="none",
                       edgecolors="red", linewidths=1.2, zorder=5, label="cover open / lifting")
        ax.plot(xs[0], ys[0], marker="^", color="green", markersize=9, zorder=6, linestyle="none",
                label="track start")
        ax.plot(xs[-1], ys[-1], marker="s", color="black", markersize=7, zorder=6, linestyle="none",
                label="track end")
    if case.lon is not None and case.lat is not None:
        ax.plot(case.lon, case.lat, marker="*", color="red", markersize=16, zorder=7, linestyle="none",
                label="case position")
        points.append((case.lon, case.lat))
    x0, y0, x1, y1 = _extent(points, geometries)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(1.0 / max(math.cos(math.radians((y0 + y1) / 2)), 0.1))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(FormatStrFormatter("%.4f"))
    ax.set_xlabel("longitude (WGS-84)")
    ax.set_ylabel("latitude (WGS-84)")
    ax.set_title(f"case {case.id} | {case.kind} | vehicle {case.vehicle_id or '-'}", fontsize=10)
    if track or case.lon is not None:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


@dataclass
class EvidencePackage:
    case_json: dict[str, Any]
    geojson: dict[str, Any]
    png: bytes
    audit_head: dict[str, Any] | None = None

    def files(self) -> dict[str, bytes]:
        enc = msgspec.json.Encoder()
        return {
            "case.json": msgspec.json.format(enc.encode(self.case_json), indent=2),
            "track.geojson": enc.encode(self.geojson),
            "map.png": self.png,
        }

    def to_zip(self) -> bytes:
        files = self.files()
        manifest = {"files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()},
                    "audit_head": self.audit_head, "case_id": self.case_json["case"]["id"]}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            zf.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        return buf.getvalue()


def build_package(*, case: Case, events: Sequence[CaseEvent], alert: dict[str, Any] | None,
                  vehicle: dict[str, Any] | None, track: Sequence[dict[str, Any]], window: tuple[datetime, datetime],
                  geometries: Sequence[ReferenceGeometry] = (), audit_head: dict[str, Any] | None = None,
                  exported_by: str | None = None, exported_at: datetime | None = None,
                  with_map: bool = True) -> EvidencePackage:
    """Shape the gathered rows into the package; `with_map=False` skips the PNG (JSON views)."""
    evidence = dict((alert or {}).get("evidence") or {})
    geoms = list(geometries) + find_geometries(evidence)
    rule = {"kind": (alert or {}).get("kind", case.kind), "severity": (alert or {}).get("severity"),
            "name": evidence.get("rule", (alert or {}).get("kind", case.kind)),
            "thresholds": evidence.get("thresholds", evidence.get("params"))}
    case_json = {
        "case": msgspec.to_builtins(case),
        "history": msgspec.to_builtins(list(events)),
        "alert": msgspec.to_builtins({k: v for k, v in (alert or {}).items()}) if alert else None,
        "rule": msgspec.to_builtins(rule),
        "references": msgspec.to_builtins(reference_versions(evidence)),
        "vehicle": msgspec.to_builtins(vehicle) if vehicle else None,
        "window": {"from": window[0].isoformat(), "to": window[1].isoformat(), "fixes": len(track)},
        "sensor_timeline": msgspec.to_builtins(sensor_timeline(track)),
        "exported_by": exported_by,
        "exported_at": exported_at.isoformat() if exported_at else None,
    }
    return EvidencePackage(case_json=case_json, geojson=msgspec.to_builtins(track_geojson(track, case, geoms)),
                           png=render_map(track, case, geoms) if with_map else b"", audit_head=audit_head)
