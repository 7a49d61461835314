"""The per-fix record the reference works on, and the input clean-up (validity, duplicates, quantisation)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tracker.fix import conform


@dataclass
class R:
    """One fix with everything derived about it, filled in step by step."""

    vid: str
    v: int
    kind: int
    ts: int
    lon_e7: int
    lat_e7: int
    speed: float  # km/h, quantised to 0.1
    heading: float
    cover: int  # −1 not reported, 0 open, 1 closed
    lifting: int
    device: int
    load: int
    drum: int
    backfill: bool
    # derived
    ok: bool = True
    dt_s: float = -1.0
    step_m: float = 0.0
    move_m: float = 0.0
    jump: int = 0
    minute: int = 0
    day: int = 0
    fences: list[int] = field(default_factory=list)
    loaded: int = 0
    src: int = -1
    drop_ts: int = -1
    doc: int = -1
    in_window: bool = False

    @property
    def lon(self) -> float:
        return self.lon_e7 / 1e7

    @property
    def lat(self) -> float:
        return self.lat_e7 / 1e7


def _tri(x) -> int:
    return -1 if x is None else int(bool(x))


def clean(df: pl.DataFrame, world, utc_offset_min: int) -> dict[int, list[R]]:
    """Valid fixes per vehicle, in time order, one per timestamp (the first received wins)."""
    df = conform(df)
    per: dict[int, dict[int, tuple[int, int, dict]]] = {}
    for order, row in enumerate(df.iter_rows(named=True)):
        lon, lat = row["lon"], row["lat"]
        if not row["valid"] or lon is None or lat is None or not np.isfinite(lon) or not np.isfinite(lat) \
                or lon == 0 or lat == 0 or abs(lon) > 180 or abs(lat) > 90:
            continue
        world.register_unknown([row["vehicle_id"]])
        v = world.vidx_of[row["vehicle_id"]]
        key = (row["received_ts_ms"] or 0, order)
        slot = per.setdefault(v, {})
        if row["ts_ms"] not in slot or key < slot[row["ts_ms"]][:2]:
            slot[row["ts_ms"]] = (*key, row)
    out: dict[int, list[R]] = {}
    for v, slot in per.items():
        rs = []
        for ts in sorted(slot):
            row = slot[ts][2]
            speed = float(row["speed_kmh"] or 0.0)
            speed_d = min(max(round(speed * 10), 0), 65535)
            heading = round((float(row["heading_deg"] or 0.0) % 360.0) * 100)
            local = ts + utc_offset_min * 60_000
            rs.append(R(vid=row["vehicle_id"], v=v, kind=int(world.vehicle_kind[v]), ts=int(ts),
                        lon_e7=int(np.round(row["lon"] * 1e7)), lat_e7=int(np.round(row["lat"] * 1e7)),
                        speed=speed_d / 10.0, heading=heading / 100.0, cover=_tri(row["cover_closed"]),
                        lifting=_tri(row["lifting"]), device=_tri(row["device_on"]),
                        load=-1 if row["load"] is None else int(row["load"]),
                        drum=-1 if row["drum"] is None else int(row["drum"]), backfill=bool(row["backfill"]),
                        minute=(local // 60_000) % 1440, day=local // 86_400_000))
        out[v] = rs
    return out
