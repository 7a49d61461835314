"""The simulated city: places, vehicles, permits, delivery orders, sanitation plans — built from a seed.

A `City` is pure data derived deterministically from (seed, scenario config): the same seed gives the same
depots, sites, zones, permits and plans; another seed gives another city *of the same character* (same
counts and kinds of places, same share of night permits, same plan sizes) on the same real road network.

Layout decisions, and why:
* Restricted zones are placed first and compliant traffic is routed around every zone active during the
  simulated period (keeping `zone_clearance_m` away, well above GPS noise), so a zone alert is never
  "compliant" by accident; zones inactive during the period may be crossed (a deliberate near miss).
* Disposal sites and the landfill sit at the end of synthetic outer arterials: real ones lie outside the
  city core, and the kilometres of fast road make permitted trips long enough for route rules to matter.
* Places keep `place_separation_m` apart so that "inside which fence" is never ambiguous.
* Sanitation windows are the catalog's daily windows that lie *wholly* inside the simulated period (or one
  synthesised window when none does): a window cut by the start of the simulation would make its earlier
  work invisible and turn compliant vehicles into missed segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import shapely
from scipy.spatial import cKDTree

from scenarios.roads import MAJOR_ROADS, NoRoute, Polyline, RoadNetwork, Router, load_roads
from scenarios.sim.config import ScenarioConfig
from tracker.reference import DeliveryOrder, Permit, Vehicle, parse_window

DISTRICTS = ("园岭街道", "南园街道", "福田街道", "沙头街道", "香蜜湖街道", "梅林街道", "莲花街道", "华富街道", "福保街道",
             "华强北街道")
COMPANIES: dict[str, tuple[str, ...]] = {
    "muck_truck": ("鹏城渣土运输有限公司", "深福土方工程有限公司", "福华运输有限公司", "莲花山建筑废弃物运输有限公司"),
    "concrete_mixer": ("深圳建材混凝土有限公司", "华强商品混凝土有限公司"),
    "refuse_truck": ("福田环境卫生管理有限公司", "绿城环卫服务有限公司"),
    "sweeper": ("福田环境卫生管理有限公司", "绿城环卫服务有限公司", "洁美环卫有限公司"),
    "sprinkler": ("福田环境卫生管理有限公司", "洁美环卫有限公司"),
}
KIND_PREFIX = {"muck_truck": "MT", "concrete_mixer": "CM", "refuse_truck": "RT", "sweeper": "SW", "sprinkler": "SP"}
PLACE_LABEL = {"depot": "停车场", "construction_site": "工地", "disposal_site": "消纳场", "batching_plant": "搅拌站",
               "transfer_station": "垃圾中转站", "landfill": "垃圾处理场", "collection_point": "收集点",
               "restricted_zone": "禁行区"}
GRADE_OF = {"motorway": 1, "trunk": 1, "primary": 1, "secondary": 2, "tertiary": 3}


# -- plan records (written to plans.json) -----------------------------------------------------------------------


class PlanSegment(msgspec.Struct, kw_only=True, frozen=True):
    """A planned road segment: a directed stretch of one road, served by passes along (either direction of)
    its corridor."""

    id: str
    road_name: str
    grade: int  # 1 (arterial) … 4 (branch)
    passes: int  # required passes per window
    length_m: float
    half_width_m: float
    coordinates: list[list[float]]  # WGS-84 [lon, lat] LineString
    two_way: bool = True


class WorkPlan(msgspec.Struct, kw_only=True, frozen=True):
    """A sweeper / sprinkler work plan: segments, passes, daily windows, working speed band, device on."""

    id: str
    vehicle_id: str
    vehicle_kind: str
    company: str
    district: str
    segments: list[PlanSegment]
    windows: list[str]  # local "HH:MM-HH:MM"; every segment needs its passes within each window
    speed_min_kmh: float
    speed_max_kmh: float
    device_on: bool = True
    banned_windows: list[str] = msgspec.field(default_factory=list)


class CollectionSchedule(msgspec.Struct, kw_only=True, frozen=True):
    """A refuse truck's round: collection points (fence ids) in order within the windows, then the facility."""

    id: str
    vehicle_id: str
    company: str
    district: str
    points: list[str]
    windows: list[str]
    facility: str  # transfer station / landfill fence id


class Plans(msgspec.Struct, kw_only=True):
    work_plans: list[WorkPlan] = msgspec.field(default_factory=list)
    collection_schedules: list[CollectionSchedule] = msgspec.field(default_factory=list)


# -- places -----------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Place:
    """A reference place in metres (the city's local frame) plus what its fence says."""

    id: str
    kind: str
    name: str
    node: int  # road node vehicles stop at
    x: float
    y: float
    shape: str  # polygon | circle
    radius_m: float | None = None
    ring: np.ndarray | None = None  # (n, 2) closed polygon ring in metres
    company: str | None = None
    district: str | None = None
    windows: tuple[str, ...] = ()

    @property
    def geometry_xy(self) -> shapely.Geometry:
        if self.shape == "circle":
            return shapely.Point(self.x, self.y).buffer(float(self.radius_m or 0.0), quad_segs=16)
        return shapely.Polygon(self.ring)

    def contains(self, x: np.ndarray, y: np.ndarray, pad_m: float = 0.0) -> np.ndarray:
        """Vectorised: which points lie inside the place (grown by pad_m; negative shrinks)."""
        g = self.geometry_xy
        if pad_m:
            g = g.buffer(pad_m)
        return shapely.contains_xy(g, np.asarray(x, float), np.asarray(y, float))


@dataclass(eq=False)
class City:
    """Everything the simulator and the engine share about the world. Build with `City.build`."""

    seed: int
    cfg: ScenarioConfig
    net: RoadNetwork
    router: Router  # compliant traffic: avoids zones active during the period
    free_router: Router  # violators: the whole network
    places: dict[str, Place]
    zones: list[Place]
    active_zones: list[str]
    signal_nodes: np.ndarray  # bool per node: a signalised intersection
    vehicles: list[Vehicle]
    home: dict[str, str]  # vehicle id → depot id
    permits: list[Permit]
    routes: dict[str, Polyline]  # permit id → approved route
    route_edges: dict[str, np.ndarray]  # permit id → edge indices of the approved route
    orders: list[DeliveryOrder]
    plans: Plans
    plan_windows: list[str]
    segment_edges: dict[str, np.ndarray] = field(default_factory=dict)  # segment id → edges
    core: np.ndarray | None = None  # bool per node: reachable both ways with every zone blocked
    districts: tuple[str, ...] = DISTRICTS

    # -- queries ----------------------------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Place]:
        return [p for p in self.places.values() if p.kind == kind]

    def district_of(self, x: float, y: float) -> str:
        """A deterministic 5×2 grid of sub-districts over the network's extent."""
        x0, x1 = float(self.net.node_x.min()), float(self.net.node_x.max())
        y0, y1 = float(self.net.node_y.min()), float(self.net.node_y.max())
        i = int(np.clip((x - x0) / max(x1 - x0, 1.0) * 5, 0, 4))
        j = int(np.clip((y - y0) / max(y1 - y0, 1.0) * 2, 0, 1))
        return self.districts[j * 5 + i]

    def local_minute(self, ts_ms: np.ndarray | int) -> np.ndarray:
        return ((np.asarray(ts_ms, np.int64) // 60_000 + self.cfg.utc_offset_min) % 1440).astype(np.int64)

    def allowed_places(self) -> list[Place]:
        """Places where stopping, unloading or discharging is legitimate."""
        ok = {"construction_site", "disposal_site", "landfill", "batching_plant", "transfer_station", "depot"}
        return [p for p in self.places.values() if p.kind in ok]

    # -- construction -----------------------------------------------------------------------------------------
    @classmethod
    def build(cls, cfg: ScenarioConfig, seed: int | None = None) -> City:
        return _CityBuilder(cfg, cfg.seed if seed is None else seed).build()


def in_windows(minute: np.ndarray, windows: tuple[str, ...] | list[str]) -> np.ndarray:
    """Which local minutes-of-day fall inside any "HH:MM-HH:MM" window (end exclusive, midnight-crossing ok)."""
    m = np.asarray(minute) % 1440
    out = np.zeros(m.shape, bool)
    for w in windows:
        a, b = parse_window(w)
        if a == b or (a == 0 and b >= 1440):
            out |= True
        elif a < b:
            out |= (m >= a) & (m < b)
        else:
            out |= (m >= a) | (m < b)
    return out


def _fmt_minutes(m: int) -> str:
    m = int(m)
    return f"{m // 60:02d}:{m % 60:02d}"


def period_windows(cfg: ScenarioConfig) -> list[str]:
    """Catalog sanitation windows wholly inside the simulated period (and outside banned hours), or one
    synthesised window when none is. Returned as local "HH:MM-HH:MM"."""
    start, end = cfg.start_ms, cfg.end_ms
    out: list[str] = []
    day0 = (start + cfg.utc_offset_min * 60_000) // 86_400_000 * 86_400_000 - cfg.utc_offset_min * 60_000
    for w in cfg.sanitation.windows:
        a, b = parse_window(w)
        if b <= a:
            continue
        for d in range(0, int(cfg.hours // 24) + 2):
            ws, we = day0 + (d * 1440 + a) * 60_000, day0 + (d * 1440 + b) * 60_000
            if ws >= start and we <= end and w not in out:
                out.append(w)
    if out:
        return out
    sp = cfg.sanitation
    step = 60_000
    ws = -(-(start + int(sp.synth_window_lead_min * step)) // step) * step
    we = min((end - int(sp.synth_window_lead_min * step)) // step * step, ws + int(sp.synth_window_max_h * 3_600_000))
    minutes = np.arange(ws, we, 60_000)
    ok = ~in_windows(((minutes // 60_000) + cfg.utc_offset_min) % 1440, cfg.sanitation.banned_windows)
    if not ok.any():
        return []
    # longest run of non-banned minutes
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    runs = edges.reshape(-1, 2)
    a, b = max(runs.tolist(), key=lambda r: r[1] - r[0])
    if (b - a) < sp.synth_window_min_min:
        return []
    lm = lambda t: int(((t // 60_000) + cfg.utc_offset_min) % 1440)  # noqa: E731
    return [f"{_fmt_minutes(lm(minutes[a]))}-{_fmt_minutes(lm(minutes[a] + (b - a) * 60_000))}"]


class _CityBuilder:
    def __init__(self, cfg: ScenarioConfig, seed: int) -> None:
        self.cfg, self.seed = cfg, seed
        self.rng = np.random.default_rng([seed, 0xC17])
        self.p = cfg.city

    # helpers
    def _u(self, r: tuple[float, float]) -> float:
        return float(self.rng.uniform(r[0], r[1]))

    def _rect(self, x: float, y: float, size: tuple[float, float]) -> np.ndarray:
        w, h = self._u(size), self._u(size) * 0.75
        a = self.rng.uniform(0, np.pi)
        c, s = np.cos(a), np.sin(a)
        pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2], [-w / 2, -h / 2]])
        return np.column_stack([x + pts[:, 0] * c - pts[:, 1] * s, y + pts[:, 0] * s + pts[:, 1] * c])

    def _beside(self, net: RoadNetwork, node: int, size: tuple[float, float], roads: shapely.STRtree,
                lines: np.ndarray) -> tuple[float, float, np.ndarray] | None:
        """A rectangle beside the road at `node` (its gate), clear of every road: sites are entered through a
        driveway, and through traffic passes by the fence instead of through it."""
        out = np.flatnonzero((net.edge_u == node) | (net.edge_v == node))
        if out.size == 0:
            return None
        e = int(out[0])
        ex, ey = net.edge_xy(e)
        if int(net.edge_u[e]) == node:
            dx, dy = ex[1] - ex[0], ey[1] - ey[0]
        else:
            dx, dy = ex[-2] - ex[-1], ey[-2] - ey[-1]
        norm = float(np.hypot(dx, dy)) or 1.0
        ux, uy = dx / norm, dy / norm
        nx_, ny_ = -uy, ux
        w, h = self._u(size), self._u(size) * 0.75
        gap = self.p.gate_gap_m
        for side in self.rng.permutation([1.0, -1.0]):
            cx = float(net.node_x[node] + side * nx_ * (h / 2 + gap))
            cy = float(net.node_y[node] + side * ny_ * (h / 2 + gap))
            pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2], [-w / 2, -h / 2]])
            ring = np.column_stack([cx + pts[:, 0] * ux + pts[:, 1] * nx_, cy + pts[:, 0] * uy + pts[:, 1] * ny_])
            poly = shapely.Polygon(ring).buffer(5.0)
            if roads.query(poly, predicate="intersects").size == 0:
                return cx, cy, ring
        return None

    def build(self) -> City:
        cfg, p, rng = self.cfg, self.p, self.rng
        net = load_roads(speed_defaults_kmh=cfg.road_speed_kmh)
        # outer arterials hosting disposal sites / landfill
        proj_used: list[int] = []
        ends: list[tuple[int, str]] = []
        major_nodes = np.unique(net.edge_u[[i for i, h in enumerate(net.edge_highway) if h in MAJOR_ROADS]])
        for k, (bearing, host) in enumerate(zip(p.arterial_bearings_deg, p.arterial_hosts, strict=True)):
            b = np.deg2rad(bearing)
            score = net.node_x[major_nodes] * np.sin(b) + net.node_y[major_nodes] * np.cos(b)
            for cand in major_nodes[np.argsort(-score, kind="stable")]:
                if all(np.hypot(net.node_x[cand] - net.node_x[o], net.node_y[cand] - net.node_y[o]) > 800
                       for o in proj_used):
                    break
            proj_used.append(int(cand))
            net, end = net.with_arterial(int(cand), bearing + rng.uniform(-10, 10), self._u(p.arterial_length_m),
                                         name=f"外环大道{k + 1}号线(模拟)", speed_kmh=p.arterial_speed_kmh, rng=rng)
            ends.append((end, host))
        free = Router(net)
        # restricted zones, well inside the network and apart from each other
        cx, cy = float(np.median(net.node_x[major_nodes])), float(np.median(net.node_y[major_nodes]))
        ext = float(np.percentile(np.hypot(net.node_x - cx, net.node_y - cy), 70))
        zones: list[Place] = []
        interior = major_nodes[np.hypot(net.node_x[major_nodes] - cx, net.node_y[major_nodes] - cy) < ext * 0.8]
        gx, gy = net.geom_x, net.geom_y
        seg_edge = np.repeat(np.arange(net.n_edges), np.diff(net.geom_offsets))

        def blocked_by(zs: list[Place], pad: float) -> np.ndarray:
            m = np.zeros(net.n_edges, bool)
            for z in zs:
                near = np.hypot(gx - z.x, gy - z.y) < float(z.radius_m or 0) + pad
                m[np.unique(seg_edge[near])] = True
            return m

        base = free.largest_component().size
        for n in rng.permutation(interior):
            if len(zones) >= p.restricted_zones:
                break
            x, y = float(net.node_x[n]), float(net.node_y[n])
            if any(np.hypot(x - z.x, y - z.y) < 900 for z in zones) or any(
                    np.hypot(x - net.node_x[a], y - net.node_y[a]) < 600 for a in proj_used):
                continue
            wi = int(rng.integers(len(p.zone_windows)))
            zid = f"zone-{len(zones) + 1:02d}"
            zone = Place(id=zid, kind="restricted_zone", name=f"禁行区{len(zones) + 1}", node=int(n), x=x, y=y,
                         shape="circle", radius_m=round(self._u(p.zone_radius_m), 1), windows=tuple(p.zone_windows[wi]))
            # a zone must not cut the city in two: routing around it has to stay possible
            inside = int((np.hypot(net.node_x - x, net.node_y - y) < float(zone.radius_m or 0) + p.zone_clearance_m).sum())
            kept = Router(net, blocked_by([*zones, zone], p.zone_clearance_m)).largest_component().size
            if kept < (base - inside) * 0.97 - sum(int((np.hypot(net.node_x - z.x, net.node_y - z.y)
                                                        < float(z.radius_m or 0) + p.zone_clearance_m).sum())
                                                  for z in zones):
                continue
            zones.append(zone)
        mx, my = net.edge_midpoints()

        all_blocked = Router(net, blocked_by(zones, p.zone_clearance_m))
        active = [z for z in zones if self._zone_active(z)]
        router = Router(net, blocked_by(active, p.zone_clearance_m))
        core = set(all_blocked.largest_component().tolist())
        clear = np.ones(net.n_nodes, bool)
        for z in zones:
            clear &= np.hypot(net.node_x - z.x, net.node_y - z.y) > float(z.radius_m or 0) + p.zone_clearance_m + 120
        ok_nodes = np.array(sorted(n for n in core if clear[n]), dtype=np.int64)
        # avoid the arterials' own far nodes as ordinary places
        ok_nodes = ok_nodes[net.node_osm[ok_nodes] >= 0]
        places: dict[str, Place] = {}
        taken: list[tuple[float, float]] = []
        lines = np.array([shapely.LineString(np.column_stack(net.edge_xy(e))) for e in range(net.n_edges)])
        roads = shapely.STRtree(lines)

        def pick(kind: str, count: int, prefix: str, sep: float, shape: str = "polygon",
                 size: tuple[float, float] | None = None, radius: float | None = None) -> None:
            n_made = 0
            for n in rng.permutation(ok_nodes):
                if n_made >= count:
                    break
                x, y = float(net.node_x[n]), float(net.node_y[n])
                if taken and (((np.asarray(taken) - (x, y)) ** 2).sum(1) < sep * sep).any():
                    continue
                ring = None
                if shape == "polygon":
                    got = self._beside(net, int(n), size or p.site_size_m, roads, lines)
                    if got is None:
                        continue
                    x, y, ring = got
                taken.append((x, y))
                n_made += 1
                pid = f"{prefix}-{n_made:03d}"
                places[pid] = Place(id=pid, kind=kind, name=f"{PLACE_LABEL[kind]}{n_made:03d}", node=int(n), x=x,
                                    y=y, shape=shape, ring=ring, radius_m=radius)

        pick("depot", p.depots, "depot", p.place_separation_m)
        pick("construction_site", p.construction_sites, "site", p.place_separation_m)
        pick("disposal_site", p.disposal_inner, "disp", p.place_separation_m, size=p.disposal_size_m)
        pick("batching_plant", p.batching_plants, "plant", p.place_separation_m)
        pick("transfer_station", p.transfer_stations, "transfer", p.place_separation_m)
        n_disp = p.disposal_inner
        n_land = 0
        for end, host in ends:
            x, y = float(net.node_x[end]), float(net.node_y[end])
            if host == "landfill":
                n_land += 1
                pid = f"landfill-{n_land:02d}"
            else:
                n_disp += 1
                pid = f"disp-{n_disp:03d}"
            got = self._beside(net, end, p.disposal_size_m, roads, lines)
            ring = self._rect(x, y, p.disposal_size_m) if got is None else got[2]
            if got is not None:
                x, y = got[0], got[1]
            places[pid] = Place(id=pid, kind=host, name=f"{PLACE_LABEL[host]}{pid[-2:]}", node=end, x=x, y=y,
                                shape="polygon", ring=ring)
        n_refuse = round(cfg.vehicles * cfg.mix.get("refuse_truck", 0.0) / max(sum(cfg.mix.values()), 1e-9))
        n_points = max(p.collection_points, int(n_refuse * np.mean(cfg.sanitation.collection_points_per_truck)))
        pick("collection_point", n_points, "cp", p.collection_separation_m, shape="circle",
             radius=p.collection_radius_m)
        # signals: a share of the intersections on major roads
        deg = net.node_degree()
        major_node_mask = np.zeros(net.n_nodes, bool)
        major_node_mask[major_nodes] = True
        signal_nodes = major_node_mask & (deg >= 3) & (rng.random(net.n_nodes) < p.signal_share)
        for pl in places.values():
            pl.district = None
        city = City(seed=self.seed, cfg=cfg, net=net, router=router, free_router=free, places=places, zones=zones,
                    active_zones=[z.id for z in active], signal_nodes=signal_nodes, vehicles=[], home={}, permits=[],
                    routes={}, route_edges={}, orders=[], plans=Plans(), plan_windows=period_windows(cfg))
        city.core = np.zeros(net.n_nodes, bool)
        city.core[sorted(core)] = True
        for pl in [*places.values(), *zones]:
            pl.district = city.district_of(pl.x, pl.y)
        _Fleet(city, rng).build()
        return city

    def _zone_active(self, z: Place) -> bool:
        cfg = self.cfg
        t = np.arange(cfg.start_ms - int(cfg.warmup_s * 1000), cfg.end_ms + 1_800_000, 60_000)
        minute = ((t // 60_000) + cfg.utc_offset_min) % 1440
        return bool(in_windows(minute, z.windows).any())


class _Fleet:
    """Vehicles, permits, delivery orders and sanitation plans for a city."""

    def __init__(self, city: City, rng: np.random.Generator) -> None:
        self.city, self.rng, self.cfg = city, rng, city.cfg
        self._out = _out_edges(city.net)

    def _u(self, r: tuple[float, float]) -> float:
        return float(self.rng.uniform(r[0], r[1]))

    def build(self) -> None:
        counts = self._counts()
        depots = self.city.of_kind("depot")
        vehicles: list[Vehicle] = []
        for kind, n in counts.items():
            kp = self.cfg.kinds[kind]
            comps = COMPANIES[kind]
            for i in range(n):
                vid = f"{KIND_PREFIX[kind]}{i + 1:04d}"
                depot = depots[int(self.rng.integers(len(depots)))]
                company = comps[int(self.rng.integers(len(comps)))]
                sensors = kp.sensors if self.rng.random() < kp.sensors_prob else ()
                plate = f"粤B{'DFGHJ'[len(vehicles) % 5]}{int(self.rng.integers(10000, 99999))}"
                vehicles.append(Vehicle(id=vid, kind=kind, company=company, district=depot.district, plate=plate,
                                        phone=f"0{13800000000 + len(vehicles):011d}", sensors=tuple(sensors)))
                self.city.home[vid] = depot.id
        self.city.vehicles = vehicles
        self._permits([v for v in vehicles if v.kind == "muck_truck"])
        self._orders([v for v in vehicles if v.kind == "concrete_mixer"])
        self._work_plans([v for v in vehicles if v.kind in ("sweeper", "sprinkler")])
        self._schedules([v for v in vehicles if v.kind == "refuse_truck"])

    def _counts(self) -> dict[str, int]:
        mix = self.cfg.mix
        total = sum(mix.values())
        raw = {k: self.cfg.vehicles * v / total for k, v in mix.items()}
        counts = {k: int(np.floor(v)) for k, v in raw.items()}
        rest = self.cfg.vehicles - sum(counts.values())
        for k in sorted(raw, key=lambda k: (counts[k] - raw[k], k))[:rest]:
            counts[k] += 1
        return counts

    def _replace_company(self, vids: list[str], company: str) -> None:
        idx = {v.id: i for i, v in enumerate(self.city.vehicles)}
        for vid in vids:
            i = idx[vid]
            self.city.vehicles[i] = msgspec.structs.replace(self.city.vehicles[i], company=company)

    def _permits(self, trucks: list[Vehicle]) -> None:
        city, pp, rng = self.city, self.cfg.permits, self.rng
        sites = city.of_kind("construction_site")
        disposals = city.of_kind("disposal_site")
        today = datetime.fromtimestamp(self.cfg.start_ms / 1000, tz=self.cfg.tz).date()
        order = [trucks[int(i)] for i in rng.permutation(len(trucks))]
        k = 0
        weights = np.asarray(pp.window_weights, float)
        while order:
            size = int(rng.integers(pp.trucks_per_permit[0], pp.trucks_per_permit[1] + 1))
            group, order = order[:size], order[size:]
            k += 1
            pid = f"P{k:04d}"
            site = sites[int(rng.integers(len(sites)))]
            disp = disposals[int(rng.integers(len(disposals)))]
            try:
                edges = city.router.route(site.node, disp.node)
            except NoRoute:
                continue
            company = COMPANIES["muck_truck"][int(rng.integers(len(COMPANIES["muck_truck"])))]
            self._replace_company([v.id for v in group], company)
            wi = int(rng.choice(len(pp.windows), p=weights / weights.sum()))
            route_id = f"route-{pid}"
            city.routes[pid] = city.net.path_geometry(edges)
            city.route_edges[pid] = edges
            city.permits.append(Permit(
                id=pid, vehicles=tuple(v.id for v in group), company=company, origin_fence=site.id,
                disposal_fence=disp.id, route_fence=route_id,
                valid_from=today - timedelta(days=pp.valid_days_before),
                valid_to=today + timedelta(days=pp.valid_days_after), windows=tuple(pp.windows[wi])))

    def _orders(self, mixers: list[Vehicle]) -> None:
        city, rng = self.city, self.rng
        plants, sites = city.of_kind("batching_plant"), city.of_kind("construction_site")
        today = datetime.fromtimestamp(self.cfg.start_ms / 1000, tz=self.cfg.tz).date()
        order = [mixers[int(i)] for i in rng.permutation(len(mixers))]
        k = 0
        while order:
            size = int(rng.integers(2, 6))
            group, order = order[:size], order[size:]
            k += 1
            company = COMPANIES["concrete_mixer"][int(rng.integers(len(COMPANIES["concrete_mixer"])))]
            self._replace_company([v.id for v in group], company)
            city.orders.append(DeliveryOrder(
                id=f"DO{k:04d}", vehicles=tuple(v.id for v in group), company=company,
                plant_fence=plants[int(rng.integers(len(plants)))].id, site_fence=sites[int(rng.integers(len(sites)))].id,
                valid_from=today, valid_to=today + timedelta(days=1)))

    # -- sanitation -------------------------------------------------------------------------------------------
    def _window_s(self) -> float:
        ws = self.city.plan_windows
        if not ws:
            return 0.0
        return float(min((parse_window(w)[1] - parse_window(w)[0]) % 1440 for w in ws) * 60)

    def _segment_from(self, e0: int, target_m: float, used: set[int]) -> list[int] | None:
        net = self.city.net
        name = net.edge_name[e0]
        core = self.city.core
        assert core is not None

        def ok(e: int) -> bool:
            return bool(core[net.edge_u[e]] and core[net.edge_v[e]]) and not self.city.router.blocked[e]

        if not name or e0 in used or not ok(e0):
            return None
        out, length = [e0], float(net.edge_length_m[e0])
        out_edges = self._out
        while length < target_m:
            last = out[-1]
            cands = [e for e in out_edges.get(int(net.edge_v[last]), [])
                     if net.edge_name[e] == name and e not in used and e not in out
                     and int(net.edge_v[e]) != int(net.edge_u[last]) and ok(e)]
            if not cands:
                break
            out.append(cands[0])
            length += float(net.edge_length_m[cands[0]])
        return out if length >= target_m * 0.6 else None

    def _work_plans(self, vehicles: list[Vehicle]) -> None:
        city, rng, sp = self.city, self.rng, self.cfg.sanitation
        net = city.net
        window_s = self._window_s()
        used_by_kind: dict[str, set[int]] = {}
        taken_pts: dict[str, list[np.ndarray]] = {}
        mx, my = net.edge_midpoints()
        named = np.array([bool(n) and net.node_osm[net.edge_u[i]] >= 0 and net.node_osm[net.edge_v[i]] >= 0
                          for i, n in enumerate(net.edge_name)])
        for v in vehicles:
            kp = self.cfg.kinds[v.kind]
            work = kp.work_speed_kmh or (4.0, 6.0)
            band = kp.work_band_kmh or (3.0, 8.0)
            depot = city.places[city.home[v.id]]
            at = depot.node  # where the round has got to: the drive there and home count in the budget
            used = used_by_kind.setdefault(v.kind, set())
            budget = window_s * sp.window_fill
            segs: list[PlanSegment] = []
            d = np.hypot(mx - depot.x, my - depot.y)
            cand = np.flatnonzero(named)
            cand = cand[np.argsort(d[cand] + rng.uniform(0, 600, cand.size), kind="stable")]
            cand = cand[[int(e) not in used for e in cand]]
            spent = 0.0
            speed = float(np.mean(work)) / 3.6
            target = self._u(sp.segment_m)
            for e0 in cand[:120]:
                if spent >= budget or len(segs) >= 6:
                    break
                edges = self._segment_from(int(e0), target, used)
                if not edges:
                    continue
                grade = GRADE_OF.get(net.edge_highway[edges[0]], 4)
                passes = sp.grade_passes[min(grade, len(sp.grade_passes)) - 1]
                length = float(net.edge_length_m[edges].sum())
                two_way = all((int(net.edge_v[e]), int(net.edge_u[e])) in net._pair_edge for e in edges)
                a, b = int(net.edge_u[edges[0]]), int(net.edge_v[edges[-1]])
                end = a if two_way and passes % 2 == 0 else b
                loops = 0.0 if two_way else (passes - 1) * self._drive_s(b, a, kp.max_speed_kmh)
                cost = (self._drive_s(at, a, kp.max_speed_kmh) + passes * length / speed + 60.0 * passes + loops)
                if spent + cost + self._drive_s(end, depot.node, kp.max_speed_kmh) > budget:
                    continue
                poly = net.path_geometry(edges)
                gx, gy, _ = poly.position_at(np.arange(0.0, poly.length_m, 10.0))
                pts = np.column_stack([gx, gy])
                near_m = 2 * sp.corridor_half_width_m
                taken = taken_pts.setdefault(v.id, [])  # within one plan: no two segments share a corridor
                if taken and (cKDTree(np.concatenate(taken)).query(pts, distance_upper_bound=near_m)[0]
                              < near_m).mean() > 0.1:
                    continue
                taken.append(pts)
                target = self._u(sp.segment_m)
                spent += cost
                at = end
                for e in edges:
                    used.add(e)
                    rev = net._pair_edge.get((int(net.edge_v[e]), int(net.edge_u[e])))
                    if rev is not None:
                        used.add(rev)
                sid = f"seg-{v.id}-{len(segs) + 1}"
                city.segment_edges[sid] = np.asarray(edges, np.int64)
                segs.append(PlanSegment(id=sid, road_name=net.edge_name[edges[0]], grade=grade, passes=passes,
                                        length_m=round(poly.length_m, 1), half_width_m=sp.corridor_half_width_m,
                                        coordinates=poly.lonlat(net.frame), two_way=two_way))
            city.plans.work_plans.append(WorkPlan(
                id=f"WP-{v.id}", vehicle_id=v.id, vehicle_kind=v.kind, company=v.company,
                district=v.district or "", segments=segs if city.plan_windows else [],
                windows=list(city.plan_windows), speed_min_kmh=band[0], speed_max_kmh=band[1],
                banned_windows=list(sp.banned_windows)))

    def _drive_s(self, a: int, b: int, vmax_kmh: float) -> float:
        """Planned drive time a → b: the fastest route at the road limits, capped at the vehicle's own top
        speed (a sweeper keeps to 30 km/h where the road allows 60), × `behaviour.plan_factor` (signals,
        turns, queues). Plans sized on the road limits alone sent vehicles homed far from their work out on
        rounds they could not finish in the window — compliant vehicles missing work the truth never labels."""
        if a == b:
            return 0.0
        net = self.city.net
        try:
            e = self.city.router.route(a, b)
        except NoRoute:
            return float("inf")
        v = np.minimum(net.edge_speed_kmh[e], vmax_kmh) / 3.6
        return float((net.edge_length_m[e] / v).sum()) * self.cfg.behaviour.plan_factor

    def _schedules(self, trucks: list[Vehicle]) -> None:
        city, rng, sp = self.city, self.rng, self.cfg.sanitation
        points = city.of_kind("collection_point")
        facilities = city.of_kind("transfer_station")
        free_points = {p.id for p in points}
        pos = {p.id: (p.x, p.y) for p in points}
        window_s = self._window_s()
        for v in trucks:
            depot = city.places[city.home[v.id]]
            want = int(rng.integers(sp.collection_points_per_truck[0], sp.collection_points_per_truck[1] + 1))
            facility = min(facilities, key=lambda f: (f.x - depot.x) ** 2 + (f.y - depot.y) ** 2)
            chosen: list[Place] = []
            cur = depot
            spent = 0.0
            while len(chosen) < want and free_points and city.plan_windows:
                pool = [p for p in points if p.id in free_points]
                xy = np.array([pos[p.id] for p in pool])
                dist = np.hypot(xy[:, 0] - cur.x, xy[:, 1] - cur.y)
                nxt = pool[int(np.argmin(dist + rng.uniform(0, 300, dist.size)))]
                vmax = self.cfg.kinds[v.kind].max_speed_kmh
                cost = self._drive_s(cur.node, nxt.node, vmax) + sp.collection_stop_s[1]
                # ... and the way on to the facility, tipping there, and home before the next window
                back = (self._drive_s(nxt.node, facility.node, vmax) + 420.0
                        + self._drive_s(facility.node, depot.node, vmax))
                if spent + cost + back > window_s * sp.window_fill:
                    break
                spent += cost
                chosen.append(nxt)
                free_points.discard(nxt.id)
                cur = nxt
            if not chosen and city.plan_windows:
                continue  # nothing it could collect and still be home in time: no round today
            city.plans.collection_schedules.append(CollectionSchedule(
                id=f"CS-{v.id}", vehicle_id=v.id, company=v.company, district=v.district or "",
                points=[p.id for p in chosen], windows=list(city.plan_windows), facility=facility.id))


def _out_edges(net: RoadNetwork) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for e in range(net.n_edges):
        out.setdefault(int(net.edge_u[e]), []).append(e)
    return out


# -- GeoJSON fences ---------------------------------------------------------------------------------------------


def place_feature(city: City, pl: Place) -> dict[str, Any]:
    """A place as a fence feature in the geofences GeoJSON format (WGS-84)."""
    f = city.net.frame
    if pl.shape == "circle":
        lon, lat = f.to_lonlat(pl.x, pl.y)
        geom: dict[str, Any] = {"type": "Point", "coordinates": [round(float(lon), 7), round(float(lat), 7)]}
    else:
        assert pl.ring is not None
        lon, lat = f.to_lonlat(pl.ring[:, 0], pl.ring[:, 1])
        geom = {"type": "Polygon", "coordinates": [[[round(float(a), 7), round(float(b), 7)]
                                                    for a, b in zip(lon, lat, strict=True)]]}
    props: dict[str, Any] = {"id": pl.id, "name": pl.name, "kind": pl.kind, "shape": pl.shape,
                             "company": pl.company, "district": pl.district, "windows": list(pl.windows),
                             "tags": {}, "version": 1}
    if pl.shape == "circle":
        props["radius_m"] = pl.radius_m
    return {"type": "Feature", "properties": props, "geometry": geom}


def route_feature(city: City, permit: Permit) -> dict[str, Any]:
    poly = city.routes[permit.id]
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": poly.lonlat(city.net.frame)},
            "properties": {"id": permit.route_fence, "name": f"核准路线 {permit.id}", "kind": "route",
                           "shape": "corridor", "half_width_m": city.cfg.permits.corridor_half_width_m,
                           "company": permit.company, "district": None,
                           "valid_from": permit.valid_from.isoformat(), "valid_to": permit.valid_to.isoformat(),
                           "windows": list(permit.windows), "tags": {"permit": permit.id}, "version": 1}}


def fence_features(city: City, permits: list[Permit] | None = None) -> list[dict[str, Any]]:
    """Every fence of the city (places, zones, permitted routes) as GeoJSON features, in a stable order."""
    feats = [place_feature(city, p) for p in city.places.values()]
    feats += [place_feature(city, z) for z in city.zones]
    feats += [route_feature(city, pm) for pm in (city.permits if permits is None else permits)]
    return feats


def _today(cfg: ScenarioConfig) -> date:
    return datetime.fromtimestamp(cfg.start_ms / 1000, tz=cfg.tz).date()
