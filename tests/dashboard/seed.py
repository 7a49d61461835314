"""Test data for the dashboard, written through the same edges the worker uses (no simulator, no engine):
vehicles via `refstore.save_vehicles`, live state via `live.publish_live`, fixes via `history.write_fixes`,
alerts via `history.upsert_alerts` + the alerts stream."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import polars as pl
import psycopg
import redis

from geofences.h3util import cells_at
from tracker.edges import history
from tracker.edges.bus import StreamNames
from tracker.edges.live import publish_live
from tracker.edges.refstore import save_docs, save_vehicles
from tracker.episode import Episode
from tracker.fix import frame_from_rows
from tracker.reference import Permit, Vehicle
from tracker.vocab import VehicleKind

#: Futian, Shenzhen: inside the shipped road network.
CENTRE = (114.018, 22.534)
KINDS = [k.value for k in VehicleKind]
COMPANIES = ["深圳市鹏城渣土运输有限公司", "福田环卫服务有限公司", "华强建材物流有限公司"]
DISTRICTS = ["福田区", "南山区"]


def vehicles(n: int) -> list[Vehicle]:
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        sensors = {"muck_truck": ("cover_closed", "lifting", "load"), "concrete_mixer": ("drum",),
                   "refuse_truck": ("lifting", "load"), "sweeper": ("device_on",),
                   "sprinkler": ("device_on",)}[kind]
        out.append(Vehicle(id=f"V{i:05d}", kind=kind, company=COMPANIES[i % len(COMPANIES)],
                           district=DISTRICTS[i % len(DISTRICTS)], plate=f"粤B{10000 + i}", sensors=sensors))
    return out


def position(i: int, n: int, t_s: float = 0.0) -> tuple[float, float]:
    """Vehicle i of n spread over ~3 × 2 km around the centre, drifting east with time."""
    cols = max(1, int(math.sqrt(n)))
    x, y = i % cols, i // cols
    lon = CENTRE[0] - 0.015 + 0.03 * x / cols + 0.00002 * t_s
    lat = CENTRE[1] - 0.01 + 0.02 * y / max(1, math.ceil(n / cols))
    return round(lon, 6), round(lat, 6)


def live_states(fleet: list[Vehicle], t_ms: int, t_s: float = 0.0, alarm: dict[str, list[str]] | None = None
                ) -> list[dict[str, Any]]:
    states = []
    for i, v in enumerate(fleet):
        lon, lat = position(i, len(fleet), t_s)
        s: dict[str, Any] = {"vehicle_id": v.id, "ts_ms": t_ms, "lon": lon, "lat": lat,
                             "speed_kmh": 0.0 if i % 4 == 3 else 18.0 + i % 30, "heading_deg": (i * 37) % 360,
                             "cover_closed": (i % 2 == 0) if v.kind == "muck_truck" else None,
                             "lifting": False if v.kind in ("muck_truck", "refuse_truck") else None,
                             "load": 3 if v.kind == "muck_truck" else None,
                             "device_on": True if v.kind in ("sweeper", "sprinkler") else None,
                             "drum": 1 if v.kind == "concrete_mixer" else None,
                             "alarm_kinds": (alarm or {}).get(v.id, [])}
        states.append(s)
    return states


def save_fleet(conn: psycopg.Connection, fleet: list[Vehicle]) -> None:
    save_vehicles(conn, fleet)


def publish(r: redis.Redis, names: StreamNames, states: list[dict[str, Any]]) -> None:
    for k in range(0, len(states), 2000):
        publish_live(r, names, states[k:k + 2000], changes_maxlen=100_000)


def track_rows(vehicle_id: str, t0_ms: int, minutes: float, start: tuple[float, float], step_s: int = 10,
               heading: float = 45.0, speed_kmh: float = 30.0, muck: bool = True, radius_m: float = 700.0
               ) -> list[dict[str, Any]]:
    """A drive round a loop starting at `start` with sensors: the cover opens half-way, the body lifts and
    the load drops near the end (an evidence track that stays inside the city)."""
    rows = []
    n = int(minutes * 60 / step_s)
    cx = start[0] - radius_m * math.sin(math.radians(heading)) / (111_320 * math.cos(math.radians(start[1])))
    cy = start[1] - radius_m * math.cos(math.radians(heading)) / 110_540
    travelled = 0.0
    for k in range(n):
        stopping = k > n * 0.8
        speed = 0.0 if stopping else speed_kmh + (k % 5)
        ang = math.radians(heading) + travelled / radius_m
        lon = cx + radius_m * math.sin(ang) / (111_320 * math.cos(math.radians(cy)))
        lat = cy + radius_m * math.cos(ang) / 110_540
        travelled += speed / 3.6 * step_s
        rows.append({"vehicle_id": vehicle_id, "ts_ms": t0_ms + k * step_s * 1000, "lon": lon, "lat": lat,
                     "speed_kmh": speed, "heading_deg": (math.degrees(ang) + 90) % 360,
                     "cover_closed": (k < n * 0.5) if muck else None, "lifting": stopping if muck else None,
                     "load": (0 if k > n * 0.9 else 3) if muck else None, "device_on": None if muck else True,
                     "drum": None, "source": "test", "received_ts_ms": t0_ms + k * step_s * 1000})
    return rows


def write_fixes(conn: psycopg.Connection, rows: list[dict[str, Any]], fix_res: int = 12) -> int:
    df = frame_from_rows(rows)
    df = df.with_columns(pl.Series("h3", cells_at(df["lon"].to_numpy(), df["lat"].to_numpy(), fix_res),
                                   dtype=pl.UInt64))
    with conn.transaction():
        return history.write_fixes(conn, df)


def inject_alert(conn: psycopg.Connection, r: redis.Redis, names: StreamNames, e: Episode) -> None:
    """What the worker does: commit the alert to PostgreSQL, then append it to the alerts stream."""
    with conn.transaction():
        history.upsert_alerts(conn, [e])
    r.xadd(names.alerts, {b"e": msgspec.json.encode(e)})


def permit(vehicle_ids: list[str]) -> Permit:
    from datetime import date

    return Permit(id="P-2024-001", vehicles=tuple(vehicle_ids), company=COMPANIES[0], origin_fence="site-1",
                  disposal_fence="disp-1", route_fence="route-1", valid_from=date(2020, 1, 1),
                  valid_to=date(2099, 1, 1))


def save_permit(conn: psycopg.Connection, p: Permit) -> None:
    save_docs(conn, "permit", [p], actor="test")
