"""The map views an auditor can take away: live snapshot, one alert's evidence, a replay.

Each builds the same layers the pages draw (roads, fences, vehicles / tracks) as pydeck layers with the data
inlined, then `dashboard.export.render` makes the offline page. Colours and labels come from
`dashboard.labels` so the report matches what was on screen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pydeck as pdk

from dashboard.assets import roads_path
from dashboard.labels import FENCE_COLORS, KIND_COLORS, LABELS_EN, STATUS_COLORS
from dashboard.roads import styled_roads
from dashboard.state import AppState
from tracker.vocab import LABELS_ZH


def label(value: str | None) -> str:
    if not value:
        return "—"
    zh, en = LABELS_ZH.get(value), LABELS_EN.get(value)
    return f"{zh} {en}" if zh and en else (zh or en or value)


def local_time(state: AppState, ts_ms: float | None) -> str:
    if ts_ms is None:
        return "—"
    tz = ZoneInfo(state.settings.city.timezone)
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _layer(type_: str, data: Any, **props: Any) -> pdk.Layer:
    """A pydeck layer whose string props reach deck.gl exactly as written here: `"@@=…"` expressions and
    literal strings (`"meters"`). pydeck 0.9 turns every string argument into an expression (`"meters"` →
    `"@@=meters"`, `"@@=x"` → `"@@=@@=x"`), which deck.gl's JSON converter cannot parse: the exported page
    stays blank. Strings are therefore set after pydeck has looked at the arguments."""
    strings = {k: v for k, v in props.items() if isinstance(v, str)}
    layer = pdk.Layer(type_, data, **{k: v for k, v in props.items() if k not in strings})
    layer.__dict__.update(strings)
    return layer


def roads_layer(state: AppState) -> pdk.Layer:
    return _layer("GeoJsonLayer", orjson.loads(styled_roads(roads_path(state.settings))), id="roads",
                     stroked=True, filled=False, get_line_color="@@=properties.c", get_line_width="@@=properties.w",
                     line_width_units="meters", line_width_min_pixels=1, pickable=False)


def fences_layer(geo: dict[str, Any], layer_id: str = "fences") -> pdk.Layer:
    features = []
    for f in geo.get("features", []):
        p = f["properties"]
        c = FENCE_COLORS.get(p.get("kind"), [200, 200, 200])
        line = p.get("role") == "line"
        features.append({**f, "properties": {
            **p, "fc": c + [0 if line else (45 if p.get("kind") != "route" else 30)], "lc": c + [230],
            "lw": 3 if line else 1.5, "tip": f"{p.get('name') or p.get('id')} · {label(p.get('kind'))} · v{p.get('version')}"}})
    return _layer("GeoJsonLayer", {"type": "FeatureCollection", "features": features}, id=layer_id,
                     stroked=True, filled=True, get_fill_color="@@=properties.fc", get_line_color="@@=properties.lc",
                     get_line_width="@@=properties.lw", line_width_units="pixels", pickable=True)


def vehicle_color(row: dict[str, Any]) -> list[int]:
    if row.get("alarm_kinds"):
        return STATUS_COLORS["alarm"] + [255]
    if row.get("motion") == "offline":
        return STATUS_COLORS["offline"] + [220]
    base = KIND_COLORS.get(row.get("kind") or "unknown", KIND_COLORS["unknown"])
    return base + ([255] if row.get("motion") == "moving" else [150])


def legend_kinds() -> list[tuple[str, tuple[int, ...]]]:
    out: list[tuple[str, tuple[int, ...]]] = [(label(str(k)), tuple(c)) for k, c in KIND_COLORS.items()
                                              if k != "unknown"]
    out.append((label("alarm"), tuple(STATUS_COLORS["alarm"])))
    out.append((label("offline"), tuple(STATUS_COLORS["offline"])))
    return out


def live_export(state: AppState, rows: list[dict[str, Any]], registry: dict[str, dict[str, Any]],
                fence_geo: dict[str, Any], view: dict[str, float]) -> str:
    data = []
    for r in rows:
        v = registry.get(r["id"], {})
        alarms = ", ".join(label(k) for k in r.get("alarm_kinds") or [])
        data.append({"position": [r["lon"], r["lat"]], "color": vehicle_color(r),
                     "tip": f"{v.get('plate') or r['id']} · {label(r.get('kind'))} · {v.get('company') or ''} · "
                            f"{r['speed_kmh']:.0f} km/h · {label(r['motion'])} · {local_time(state, r['ts_ms'])}"
                            + (f" · {alarms}" if alarms else "")})
    layers = [roads_layer(state), fences_layer(fence_geo),
              _layer("ScatterplotLayer", data, id="vehicles", get_position="@@=position", get_fill_color="@@=color",
                        get_line_color=[10, 14, 20], stroked=True, line_width_min_pixels=1, radius_min_pixels=4,
                        radius_max_pixels=12, get_radius=25, pickable=True)]
    now = max((r["ts_ms"] for r in rows), default=None)
    title = f"{state.settings.city.name} · 实时车辆 Live vehicles"
    sub = f"{len(rows)} vehicles · fleet time {local_time(state, now)} ({state.settings.city.timezone})"
    return _render(layers, view, title, sub, legend_kinds())


def alert_export(state: AppState, alert: dict[str, Any], view: dict[str, float]) -> str:
    track = alert.get("track") or {"lon": [], "lat": [], "ts_ms": [], "speed_kmh": []}
    path = [[x, y] for x, y in zip(track["lon"], track["lat"], strict=True)]
    points = [{"position": [x, y], "tip": f"{local_time(state, ts)} · {sp:.0f} km/h"}
              for x, y, ts, sp in zip(track["lon"], track["lat"], track["ts_ms"], track["speed_kmh"], strict=True)]
    in_episode = [p for p, ts in zip(points, track["ts_ms"], strict=True)
                  if ts >= alert["start_ts_ms"] and (alert["end_ts_ms"] is None or ts <= alert["end_ts_ms"])]
    v = alert.get("vehicle") or {}
    layers = [roads_layer(state), fences_layer(alert.get("fences") or {}),
              _layer("PathLayer", [{"path": path, "tip": alert["vehicle_id"]}], id="track", get_path="@@=path",
                        get_color=[120, 200, 255, 230], width_min_pixels=3, get_width=4, pickable=True),
              _layer("ScatterplotLayer", points, id="fixes", get_position="@@=position",
                        get_fill_color=[170, 215, 255, 255], radius_min_pixels=2.5, get_radius=3, pickable=True),
              _layer("ScatterplotLayer", in_episode, id="episode-fixes", get_position="@@=position",
                        get_fill_color=[255, 59, 59, 255], radius_min_pixels=3.5, get_radius=4, pickable=True)]
    if alert.get("lon") is not None:
        layers.append(_layer("ScatterplotLayer", [{"position": [alert["lon"], alert["lat"]],
                                                      "tip": label(alert["kind"])}], id="alert",
                                get_position="@@=position", get_fill_color=[255, 59, 59, 60],
                                get_line_color=[255, 59, 59, 255], stroked=True, line_width_min_pixels=2,
                                radius_min_pixels=14, get_radius=40, pickable=True))
    title = f"{label(alert['kind'])} · {v.get('plate') or alert['vehicle_id']}"
    sub = (f"{v.get('company') or ''} · {local_time(state, alert['start_ts_ms'])} → "
           f"{local_time(state, alert['end_ts_ms']) if alert['end_ts_ms'] else '进行中 ongoing'} · "
           f"{alert['severity']} · alert {alert['id']}")
    legend = [("轨迹 Track", (120, 200, 255)), ("违规时段 Episode fixes", (255, 59, 59))]
    legend += [(label(k), tuple(FENCE_COLORS[k])) for k in {f["properties"]["kind"]
                                                            for f in (alert.get("fences") or {}).get("features", [])}
               if k in FENCE_COLORS]
    return _render(layers, view, title, sub, legend)


def replay_export(state: AppState, data: dict[str, Any], registry: dict[str, dict[str, Any]],
                  fence_geo: dict[str, Any], view: dict[str, float]) -> str:
    t0 = data["since_ms"]
    trips = []
    for t in data["tracks"]:
        v = registry.get(t["vehicle_id"], {})
        color = KIND_COLORS.get(v.get("kind") or "unknown", KIND_COLORS["unknown"])
        trips.append({"path": [[x, y] for x, y in zip(t["lon"], t["lat"], strict=True)],
                      "timestamps": [(ts - t0) / 1000 for ts in t["ts_ms"]], "color": color,
                      "tip": f"{v.get('plate') or t['vehicle_id']} · {label(v.get('kind'))}"})
    end_s = (data["until_ms"] - t0) / 1000
    alerts = [{"position": [a["lon"], a["lat"]], "tip": f"{label(a['kind'])} · {local_time(state, a['start_ts_ms'])}"}
              for a in data["alerts"] if a.get("lon") is not None]
    layers = [roads_layer(state), fences_layer(fence_geo),
              _layer("PathLayer", trips, id="paths", get_path="@@=path", get_color=[90, 110, 140, 120],
                        width_min_pixels=1.5, get_width=2, pickable=False),
              _layer("TripsLayer", trips, id="trips", get_path="@@=path", get_timestamps="@@=timestamps",
                        get_color="@@=color", width_min_pixels=3.5, get_width=5, trail_length=600,
                        current_time=end_s, cap_rounded=True, joint_rounded=True, pickable=True),
              _layer("ScatterplotLayer", alerts, id="alerts", get_position="@@=position",
                        get_fill_color=[255, 59, 59, 200], get_line_color=[255, 255, 255], stroked=True,
                        line_width_min_pixels=1, radius_min_pixels=6, get_radius=20, pickable=True)]
    title = f"{state.settings.city.name} · 轨迹回放 Replay"
    sub = (f"{len(data['tracks'])} vehicles · {local_time(state, data['since_ms'])} → "
           f"{local_time(state, data['until_ms'])} ({state.settings.city.timezone})")
    legend = legend_kinds()[:-2] + [(label("alarm"), tuple(STATUS_COLORS["alarm"]))]
    return _render(layers, view, title, sub, legend, timeline=(0, end_s, t0))


def _render(layers: list[pdk.Layer], view: dict[str, float], title: str, subtitle: str,
            legend: list[tuple[str, tuple[int, ...]]], timeline: tuple[float, float, int] | None = None) -> str:
    from dashboard.export import deck, render

    return render(deck(layers, view), title, subtitle, legend, timeline=timeline, tooltip_html="{tip}")
