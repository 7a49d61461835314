"""A small synthetic city and random tracks for the tracker's tests (no simulator needed).

Layout (metres around ORIGIN, east x / north y): construction site A at (0, 0), disposal site D at (3000, 0),
an approved route corridor A→D along y = 0 (50 m each side), a depot at (0, 1500), a batching plant at
(0, -1500), a restricted zone always active at (1500, 600) and one active 07:00–09:00 at (1500, -600), and an
"expressway" stretch x ∈ [1000, 2000] tagged road_class=expressway.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import shapely

from geofences.local import to_lonlat
from geofences.model import Fence
from tracker.config import Settings
from tracker.reference import DeliveryOrder, Permit, Vehicle
from tracker.world import World

ORIGIN = (114.05, 22.54)
T0 = 1_715_635_800_000  # 2024-05-14 05:30 local (UTC+8)

PLACES: dict[str, tuple[float, float]] = {
    "A": (0.0, 0.0), "D": (3000.0, 0.0), "depot": (0.0, 1500.0), "plant": (0.0, -1500.0),
    "zone": (1500.0, 600.0), "zone_am": (1500.0, -600.0), "road": (1500.0, 0.0), "far": (2500.0, 1200.0),
}


def _square(cx: float, cy: float, half: float) -> shapely.Polygon:
    xs = np.array([cx - half, cx + half, cx + half, cx - half])
    ys = np.array([cy - half, cy - half, cy + half, cy + half])
    lon, lat = to_lonlat(xs, ys, ORIGIN)
    return shapely.Polygon(np.column_stack([lon, lat]))


def _point(x: float, y: float) -> shapely.Point:
    lon, lat = to_lonlat(x, y, ORIGIN)
    return shapely.Point(float(lon), float(lat))


def fences() -> list[Fence]:
    line_lon, line_lat = to_lonlat(np.array([0.0, 3000.0]), np.array([0.0, 0.0]), ORIGIN)
    road = _square(1500.0, 0.0, 1.0)
    rx, ry = to_lonlat(np.array([1000.0, 2000.0, 2000.0, 1000.0]), np.array([-40.0, -40.0, 40.0, 40.0]), ORIGIN)
    road = shapely.Polygon(np.column_stack([rx, ry]))
    return [
        Fence(id="A", name="site A", kind="construction_site", shape="polygon", geometry=_square(0, 0, 100)),
        Fence(id="D", name="disposal D", kind="disposal_site", shape="polygon", geometry=_square(3000, 0, 120)),
        Fence(id="depot", name="depot", kind="depot", shape="polygon", geometry=_square(0, 1500, 80)),
        Fence(id="plant", name="plant", kind="batching_plant", shape="polygon", geometry=_square(0, -1500, 80)),
        Fence(id="route", name="route A-D", kind="route", shape="corridor",
              geometry=shapely.LineString(np.column_stack([line_lon, line_lat])), half_width_m=50.0, version=3),
        Fence(id="zone", name="zone", kind="restricted_zone", shape="circle", geometry=_point(1500, 600),
              radius_m=200.0, version=2),
        Fence(id="zone_am", name="zone am", kind="restricted_zone", shape="circle", geometry=_point(1500, -600),
              radius_m=200.0, windows=((420, 540),)),
        Fence(id="expressway", name="expressway", kind="work_area", shape="polygon", geometry=road,
              tags={"road_class": "expressway"}),
    ]


VEHICLES = [
    Vehicle(id="M1", kind="muck_truck", company="c1", sensors=("cover_closed", "lifting", "load")),
    Vehicle(id="M2", kind="muck_truck", company="c1"),
    Vehicle(id="M3", kind="muck_truck", company="c2", sensors=("cover_closed", "lifting", "load")),
    Vehicle(id="X1", kind="concrete_mixer", company="c3", sensors=("drum",)),
    Vehicle(id="X2", kind="concrete_mixer", company="c3"),
    Vehicle(id="S1", kind="sweeper", company="c4", sensors=("device_on",)),
]


def world(settings: Settings | None = None) -> World:
    settings = settings or Settings()
    permits = [Permit(id="P1", vehicles=("M1", "M2"), company="c1", origin_fence="A", disposal_fence="D",
                      route_fence="route", valid_from=date(2024, 5, 1), valid_to=date(2024, 5, 31),
                      windows=("22:00-06:00",), version=2),
               Permit(id="P3", vehicles=("M3",), company="c2", origin_fence="A", disposal_fence="D",
                      route_fence="route", valid_from=date(2024, 1, 1), valid_to=date(2024, 3, 31))]
    orders = [DeliveryOrder(id="O1", vehicles=("X1", "X2"), company="c3", plant_fence="plant", site_fence="A",
                            valid_from=date(2024, 5, 1), valid_to=date(2024, 5, 31))]
    return World.build(fences=fences(), vehicles=VEHICLES, permits=permits, orders=orders, settings=settings)


# -- tracks ----------------------------------------------------------------------------------------------------
LEG_TARGETS = tuple(PLACES)


def track(vehicle: Vehicle, legs: list[dict[str, Any]], rng: np.random.Generator, t0_ms: int = T0,
          noise_m: float = 8.0, start: str = "A") -> pl.DataFrame:
    """Drive straight lines between places; each leg: target, speed_kmh, dwell_s, sensors while driving
    (load, cover) and during the dwell (load_after, lift, drum). Reports every 10 s moving, 30 s parked."""
    x, y = PLACES[start]
    t = 0.0
    rows: list[dict[str, Any]] = []
    sens = set(vehicle.sensors)

    def emit(px: float, py: float, speed: float, **s: Any) -> None:
        nx, ny = px + rng.normal(0, noise_m), py + rng.normal(0, noise_m)
        lon, lat = to_lonlat(nx, ny, ORIGIN)
        row = {"vehicle_id": vehicle.id, "ts_ms": t0_ms + int(round(t * 1000)), "lon": float(lon), "lat": float(lat),
               "speed_kmh": float(max(speed + (rng.normal(0, 1.0) if speed > 0 else 0.0), 0.0)), "heading_deg": 0.0}
        for k in ("load", "cover_closed", "lifting", "drum", "device_on"):
            row[k] = s.get(k) if k in sens else None
        rows.append(row)

    for leg in legs:
        tx, ty = PLACES[leg["target"]]
        tx, ty = tx + leg.get("dx", 0.0), ty + leg.get("dy", 0.0)
        dist = float(np.hypot(tx - x, ty - y))
        v = leg["speed_kmh"] / 3.6
        steps = max(int(dist / (v * 10.0)), 1)
        for k in range(steps):
            f = (k + 1) / steps
            t += 10.0
            emit(x + (tx - x) * f, y + (ty - y) * f, leg["speed_kmh"], load=leg.get("load"), cover_closed=leg.get("cover"),
                 lifting=False, drum=leg.get("drum", 1), device_on=leg.get("device"))
        x, y = tx, ty
        dwell = leg.get("dwell_s", 0.0)
        n = int(dwell // 30)
        for k in range(n):
            t += 30.0
            emit(x, y, 0.0, load=leg.get("load_after", leg.get("load")) if k >= n // 2 else leg.get("load"),
                 cover_closed=leg.get("cover"), lifting=bool(leg.get("lift")) and n // 3 <= k < 2 * n // 3,
                 drum=leg.get("drum_dwell", leg.get("drum", 1)), device_on=leg.get("device"))
        t += leg.get("gap_s", 0.0)
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame(rows, schema_overrides={"load": pl.Int8, "drum": pl.Int8, "cover_closed": pl.Boolean,
                                                "lifting": pl.Boolean, "device_on": pl.Boolean})


def add_faults(df: pl.DataFrame, rng: np.random.Generator, jump_p: float = 0.01, invalid_p: float = 0.01,
               dup_p: float = 0.02) -> pl.DataFrame:
    """Multipath jumps, invalid fixes and duplicates (identical re-deliveries)."""
    n = df.height
    if n == 0:
        return df
    jump = rng.random(n) < jump_p
    ang = rng.uniform(0, 2 * np.pi, n)
    d = rng.uniform(80, 400, n) / 111_000.0
    df = df.with_columns(
        pl.Series("lon", np.where(jump, df["lon"].to_numpy() + d * np.cos(ang), df["lon"].to_numpy())),
        pl.Series("lat", np.where(jump, df["lat"].to_numpy() + d * np.sin(ang), df["lat"].to_numpy())),
        pl.Series("valid", rng.random(n) >= invalid_p))
    dup = np.flatnonzero(rng.random(n) < dup_p)
    return pl.concat([df, df[dup]]) if dup.size else df


def delivery_order(df: pl.DataFrame, rng: np.random.Generator, late_p: float = 0.05, max_late_s: float = 90.0,
                   backfill_p: float = 0.3) -> pl.DataFrame:
    """Received time = fix time + latency; a few fixes arrive late, and sometimes a block is back-filled."""
    n = df.height
    lat_ms = rng.uniform(300, 3000, n)
    late = rng.random(n) < late_p
    lat_ms = np.where(late, rng.uniform(15_000, max_late_s * 1000, n), lat_ms)
    ts = df["ts_ms"].to_numpy()
    if n > 20 and rng.random() < backfill_p:  # an outage back-filled in bulk
        vid = df["vehicle_id"].to_numpy()
        v = vid[rng.integers(n)]
        sel = np.flatnonzero(vid == v)
        a = int(rng.integers(sel.size))
        blk = sel[a:a + int(rng.integers(3, 10))]
        if blk.size:
            arrive = ts[blk].max() + max_late_s * 1000
            lat_ms[blk] = arrive - ts[blk]
    return df.with_columns(pl.Series("received_ts_ms", (ts + lat_ms).astype(np.int64))).sort("received_ts_ms")


def batches(df: pl.DataFrame, cuts: list[int]) -> list[pl.DataFrame]:
    bounds = sorted({0, df.height, *[c for c in cuts if 0 < c < df.height]})
    return [df[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


# -- running ---------------------------------------------------------------------------------------------------
def run(df: pl.DataFrame, world_: World | None = None, settings: Settings | None = None, batch: int = 0,
        advance_ms: int | None = None):
    """Feed `df` (sorted by fix time) through a fresh engine — whole, or in batches of `batch` rows — then
    finish. Returns (final episodes by id, not retracted; the engine)."""
    from tracker.engine import Engine

    settings = settings or Settings()
    eng = Engine(world_ or world(settings), settings)
    latest = {}
    parts = [df] if batch <= 0 else [df[i:i + batch] for i in range(0, df.height, batch)]
    for part in parts:
        for e in eng.process(part):
            latest[e.id] = e
    if advance_ms is not None:
        for e in eng.advance(advance_ms):
            latest[e.id] = e
    for e in eng.finish():
        latest[e.id] = e
    return {k: e for k, e in latest.items() if not e.retracted}, eng


def of_kind(eps: dict, kind: str, vehicle: str | None = None) -> list:
    return sorted((e for e in eps.values() if e.kind == kind and (vehicle is None or e.vehicle_id == vehicle)),
                  key=lambda e: e.start_ts_ms)


def leg(target: str, speed_kmh: float = 30.0, dwell_s: float = 0.0, **kw: Any) -> dict[str, Any]:
    return {"target": target, "speed_kmh": speed_kmh, "dwell_s": dwell_s, **kw}


def vehicle(vid: str) -> Vehicle:
    return next(v for v in VEHICLES if v.id == vid)
