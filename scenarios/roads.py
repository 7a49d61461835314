"""The road network the simulated city drives on: a directed graph with geometry, speed limits and names.

Loaded from the shipped OpenStreetMap extract of central Futian (`data/futian_roads.geojson`, ODbL, see
`data/ATTRIBUTION.md`). Every feature is one *directed* edge u→v (OSMnx export: a two-way street is two
edges), so the file maps one-to-one onto a `scipy.sparse.csgraph` graph; footways, steps and paths are
dropped and only the largest strongly connected component is kept, so that every route asked for exists.

Geometry is held twice: WGS-84 degrees (what fixes and fences carry) and metres in a local tangent plane
centred on the network (what kinematics and distances need). The projection is an equirectangular one
around the network centre: over a few tens of kilometres its error is centimetres, far below GPS noise.

Why arrays and not networkx: the simulator walks thousands of paths per scenario; numpy arrays with a
concatenated geometry buffer (`geom_offsets`) keep path assembly and interpolation vectorised.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from geofences.local import to_lonlat, to_xy_m

ROADS_PATH = Path(__file__).with_name("data") / "futian_roads.geojson"

#: Speed limits (km/h) for roads without a `maxspeed` tag: Chinese urban design speeds per road class
#: (CJJ 37: expressway 60–100, arterial 40–60, collector 30–50, branch 20–40). Overridable per scenario.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 80.0, "motorway_link": 40.0, "trunk": 60.0, "trunk_link": 40.0, "primary": 60.0,
    "primary_link": 40.0, "secondary": 50.0, "secondary_link": 40.0, "tertiary": 40.0, "tertiary_link": 30.0,
    "unclassified": 30.0, "residential": 30.0, "living_street": 20.0, "service": 20.0,
}
#: Road classes a truck may use; anything else in the file (footway, steps, path, pedestrian…) is dropped.
DRIVABLE: tuple[str, ...] = tuple(DEFAULT_SPEED_KMH)
#: Rank of road classes, most important first (a multi-class edge takes its most important class).
_RANK = {h: i for i, h in enumerate(DRIVABLE)}
MAJOR_ROADS: frozenset[str] = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary"})


class NoRoute(ValueError):
    """No path between two nodes (in the graph, or with the blocked edges removed)."""


# -- local metric frame ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """lon/lat ⇄ metres in a tangent plane at (lon0, lat0): `geofences.local`'s projection, so the simulator
    and the fences agree on every metre."""

    lon0: float
    lat0: float

    def to_xy(self, lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
        return to_xy_m(lon, lat, (self.lon0, self.lat0))

    def to_lonlat(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return to_lonlat(x, y, (self.lon0, self.lat0))


# -- the network ----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RoadNetwork:
    """Nodes and directed edges as parallel arrays. Build with `load_roads()`; immutable by convention."""

    frame: LocalFrame
    node_osm: np.ndarray  # int64 OSM node id (synthetic nodes get negative ids)
    node_x: np.ndarray  # metres
    node_y: np.ndarray
    edge_u: np.ndarray  # int32 node index
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_speed_kmh: np.ndarray  # legal limit
    edge_highway: list[str]
    edge_name: list[str]
    geom_offsets: np.ndarray  # edge e's vertices are geom_x[geom_offsets[e]:geom_offsets[e+1]]
    geom_x: np.ndarray
    geom_y: np.ndarray
    _pair_edge: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)
    edge_major: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)

    def __post_init__(self) -> None:
        # the fastest edge per (u, v) pair: csgraph would *sum* parallel edges, so keep one explicitly
        sel = _fastest_per_pair(self, np.ones(self.n_edges, bool))
        self._pair_edge = dict(zip(zip(self.edge_u[sel].tolist(), self.edge_v[sel].tolist(), strict=True),
                                   sel.tolist(), strict=True))
        self.edge_major = np.array([h in MAJOR_ROADS for h in self.edge_highway], dtype=bool)

    # sizes and derived arrays
    @property
    def n_nodes(self) -> int:
        return int(self.node_x.size)

    @property
    def n_edges(self) -> int:
        return int(self.edge_u.size)

    @property
    def edge_time_s(self) -> np.ndarray:
        return self.edge_length_m / (self.edge_speed_kmh / 3.6)

    @property
    def node_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        return self.frame.to_lonlat(self.node_x, self.node_y)

    def node_degree(self) -> np.ndarray:
        """Number of distinct neighbouring nodes (either direction): ≥ 3 means an intersection."""
        a = np.concatenate([self.edge_u, self.edge_v])
        b = np.concatenate([self.edge_v, self.edge_u])
        pairs = np.unique(np.stack([a, b], 1), axis=0)
        return np.bincount(pairs[:, 0], minlength=self.n_nodes)

    def edge_xy(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.geom_offsets[e], self.geom_offsets[e + 1]
        return self.geom_x[a:b], self.geom_y[a:b]

    def edge_midpoints(self) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.geom_offsets[:-1], self.geom_offsets[1:] - 1
        return (self.geom_x[a] + self.geom_x[b]) / 2, (self.geom_y[a] + self.geom_y[b]) / 2

    def edge_between(self, u: int, v: int) -> int:
        return self._pair_edge[(u, v)]

    def nearest_node(self, x: float, y: float, candidates: np.ndarray | None = None) -> int:
        idx = np.arange(self.n_nodes) if candidates is None else np.asarray(candidates)
        d2 = (self.node_x[idx] - x) ** 2 + (self.node_y[idx] - y) ** 2
        return int(idx[int(np.argmin(d2))])

    def path_geometry(self, edges: Sequence[int] | np.ndarray) -> Polyline:
        """The polyline of consecutive edges (shared joint vertices kept once) with per-vertex edge index."""
        edges = np.asarray(edges, dtype=np.int64)
        if edges.size == 0:
            raise NoRoute("empty path")
        a, b = self.geom_offsets[edges], self.geom_offsets[edges + 1]
        a = a + (np.arange(edges.size) > 0)  # joint vertices shared with the previous edge are kept once
        n = b - a
        idx = np.repeat(a - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))
        x, y, ev = self.geom_x[idx], self.geom_y[idx], np.repeat(edges, n)
        return Polyline.build(x, y, ev, self)

    def with_arterial(self, anchor: int, bearing_deg: float, length_m: float, *, name: str,
                      highway: str = "trunk", speed_kmh: float = 60.0, wiggle_m: float = 150.0,
                      n_vertices: int = 12, rng: np.random.Generator | None = None) -> tuple[RoadNetwork, int]:
        """A copy with a synthetic two-way outer arterial from `anchor` out to a new end node.

        Disposal sites and landfills sit outside a city's core, beyond the shipped extract; the arterial
        gives trips there a realistic length (kilometres of fast road) without inventing a whole suburb.
        Returns (network, end node index)."""
        rng = rng or np.random.default_rng(0)
        t = np.linspace(0.0, 1.0, n_vertices)
        b = np.deg2rad(bearing_deg)
        lateral = wiggle_m * np.sin(np.pi * t * rng.uniform(1.0, 2.5)) * rng.choice([-1.0, 1.0])
        x = self.node_x[anchor] + t * length_m * np.sin(b) + lateral * np.cos(b)
        y = self.node_y[anchor] + t * length_m * np.cos(b) - lateral * np.sin(b)
        # one node per vertex (so trucks can stop, turn and be routed along it), two-way edges between them
        first = self.n_nodes
        ids = np.concatenate([[anchor], first + np.arange(n_vertices - 1)])
        seg_len = np.hypot(np.diff(x), np.diff(y))
        k = n_vertices - 1
        eu = np.concatenate([ids[:-1], ids[1:]]).astype(np.int32)
        ev = np.concatenate([ids[1:], ids[:-1]]).astype(np.int32)
        gx = np.concatenate([np.column_stack([x[:-1], x[1:]]).ravel(), np.column_stack([x[1:], x[:-1]]).ravel()])
        gy = np.concatenate([np.column_stack([y[:-1], y[1:]]).ravel(), np.column_stack([y[1:], y[:-1]]).ravel()])
        new = dict(
            node_osm=np.append(self.node_osm, -1 - (first + np.arange(k))), node_x=np.append(self.node_x, x[1:]),
            node_y=np.append(self.node_y, y[1:]),
            edge_u=np.append(self.edge_u, eu).astype(np.int32), edge_v=np.append(self.edge_v, ev).astype(np.int32),
            edge_length_m=np.append(self.edge_length_m, np.concatenate([seg_len, seg_len])),
            edge_speed_kmh=np.append(self.edge_speed_kmh, np.full(2 * k, speed_kmh)),
            edge_highway=[*self.edge_highway, *[highway] * (2 * k)], edge_name=[*self.edge_name, *[name] * (2 * k)],
            geom_offsets=np.append(self.geom_offsets, self.geom_offsets[-1] + 2 * np.arange(1, 2 * k + 1)),
            geom_x=np.concatenate([self.geom_x, gx]), geom_y=np.concatenate([self.geom_y, gy]),
        )
        end = int(ids[-1])
        return RoadNetwork(frame=self.frame, **new), end


@dataclass(eq=False)
class Polyline:
    """A path's geometry in metres with cumulative distance; what vehicles are walked along."""

    x: np.ndarray
    y: np.ndarray
    edge: np.ndarray  # edge index of the segment *ending* at each vertex (vertex 0: first edge)
    cum_m: np.ndarray
    speed_limit_kmh: np.ndarray  # per vertex: limit of the edge the segment ending there belongs to
    major: np.ndarray  # bool per vertex: on a major road class

    @classmethod
    def build(cls, x: np.ndarray, y: np.ndarray, edge: np.ndarray, net: RoadNetwork) -> Polyline:
        seg = np.hypot(np.diff(x), np.diff(y))
        keep = np.concatenate([[True], seg > 0.05])  # drop repeated vertices (zero-length segments)
        x, y, edge = x[keep], y[keep], edge[keep]
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        return cls(x=x, y=y, edge=edge, cum_m=cum, speed_limit_kmh=net.edge_speed_kmh[edge], major=net.edge_major[edge])

    @property
    def length_m(self) -> float:
        return float(self.cum_m[-1])

    def turn_deg(self) -> np.ndarray:
        """Absolute heading change at each vertex (0 at both ends)."""
        h = np.arctan2(np.diff(self.x), np.diff(self.y))
        d = np.abs((np.diff(h) + np.pi) % (2 * np.pi) - np.pi)
        return np.concatenate([[0.0], np.rad2deg(d), [0.0]])

    def position_at(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, heading_deg) at distances along the path: vectorised linear interpolation."""
        s = np.clip(np.asarray(s_m, float), 0.0, self.length_m)
        x = np.interp(s, self.cum_m, self.x)
        y = np.interp(s, self.cum_m, self.y)
        i = np.clip(np.searchsorted(self.cum_m, s, side="right") - 1, 0, max(self.x.size - 2, 0))
        if self.x.size > 1:
            hd = np.rad2deg(np.arctan2(self.x[i + 1] - self.x[i], self.y[i + 1] - self.y[i])) % 360.0
        else:
            hd = np.zeros_like(s)
        return x, y, hd

    def distance_to(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Shortest distance (m) from each point to the polyline — vectorised over points × segments."""
        px, py = np.asarray(px, float)[:, None], np.asarray(py, float)[:, None]
        ax, ay, bx, by = self.x[:-1], self.y[:-1], self.x[1:], self.y[1:]
        dx, dy = bx - ax, by - ay
        L2 = np.maximum(dx * dx + dy * dy, 1e-9)
        out = np.empty(px.shape[0])
        for a in range(0, px.shape[0], 4096):  # chunk to bound memory (points × segments)
            qx, qy = px[a:a + 4096], py[a:a + 4096]
            t = np.clip(((qx - ax) * dx + (qy - ay) * dy) / L2, 0.0, 1.0)
            out[a:a + 4096] = np.sqrt(((ax + t * dx - qx) ** 2 + (ay + t * dy - qy) ** 2).min(axis=1))
        return out

    def lonlat(self, frame: LocalFrame) -> list[list[float]]:
        lon, lat = frame.to_lonlat(self.x, self.y)
        return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


# -- routing --------------------------------------------------------------------------------------------------


def _fastest_per_pair(net: RoadNetwork, ok: np.ndarray) -> np.ndarray:
    """Edge index of the fastest allowed edge for every (u, v) pair that has one (vectorised)."""
    idx = np.flatnonzero(ok)
    order = idx[np.argsort(net.edge_time_s[idx], kind="stable")]
    keys = net.edge_u[order].astype(np.int64) * net.n_nodes + net.edge_v[order]
    _, first = np.unique(keys, return_index=True)
    return np.sort(order[first])


class Router:
    """Fastest paths (by free-flow time at the legal limit) on the network, optionally with edges blocked.

    Dijkstra runs once per source node and its predecessor row is cached: a scenario asks for hundreds of
    routes from a few dozen places."""

    def __init__(self, net: RoadNetwork, blocked: np.ndarray | None = None) -> None:
        self.net = net
        ok = np.ones(net.n_edges, bool) if blocked is None else ~np.asarray(blocked, bool)
        self.blocked = ~ok
        sel = _fastest_per_pair(net, ok)  # fastest *unblocked* edge per (u, v)
        rows, cols = net.edge_u[sel], net.edge_v[sel]
        self._pair = dict(zip(zip(rows.tolist(), cols.tolist(), strict=True), sel.tolist(), strict=True))
        self._graph = sp.csr_matrix((net.edge_time_s[sel], (rows, cols)), shape=(net.n_nodes, net.n_nodes))
        self._pred: dict[int, np.ndarray] = {}
        self._dist: dict[int, np.ndarray] = {}

    def _row(self, src: int) -> tuple[np.ndarray, np.ndarray]:
        if src not in self._pred:
            d, p = csgraph.dijkstra(self._graph, directed=True, indices=src, return_predecessors=True)
            self._dist[src], self._pred[src] = d, p
        return self._dist[src], self._pred[src]

    def travel_time_s(self, src: int, dst: int) -> float:
        return float(self._row(src)[0][dst])

    def route(self, src: int, dst: int) -> np.ndarray:
        """Edge indices of the fastest path src → dst (empty when src == dst). Raises `NoRoute`."""
        if src == dst:
            return np.zeros(0, dtype=np.int64)
        dist, pred = self._row(src)
        if not np.isfinite(dist[dst]):
            raise NoRoute(f"no route from node {src} to node {dst}")
        nodes = [dst]
        while nodes[-1] != src:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()
        return np.array([self._pair[(a, b)] for a, b in zip(nodes[:-1], nodes[1:], strict=True)], np.int64)

    def route_via(self, nodes: Sequence[int]) -> np.ndarray:
        parts = [self.route(a, b) for a, b in zip(nodes[:-1], nodes[1:], strict=True)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def largest_component(self) -> np.ndarray:
        """Nodes of the largest strongly connected component under this router's blocking."""
        _, labels = csgraph.connected_components(self._graph, directed=True, connection="strong")
        return np.flatnonzero(labels == np.bincount(labels).argmax())

    def reachable_both_ways(self, node: int) -> np.ndarray:
        """Nodes in the same strongly connected component as `node` under this router's blocking."""
        _, labels = csgraph.connected_components(self._graph, directed=True, connection="strong")
        return np.flatnonzero(labels == labels[node])


# -- loading ----------------------------------------------------------------------------------------------------


def _parse_speed(v: Any) -> float | None:
    vals = v if isinstance(v, list) else [v]
    out = []
    for s in vals:
        try:
            out.append(float(str(s).split()[0]))
        except (TypeError, ValueError, IndexError):
            continue
    return min(out) if out else None


def _class_of(h: Any) -> str | None:
    vals = [x for x in (h if isinstance(h, list) else [h]) if x in _RANK]
    return min(vals, key=_RANK.__getitem__) if vals else None


def _name_of(n: Any) -> str:
    if isinstance(n, list):
        return "/".join(str(x) for x in n if x)
    return str(n) if n else ""


def load_roads(path: str | Path = ROADS_PATH, *, speed_defaults_kmh: Mapping[str, float] | None = None,
               largest_component: bool = True) -> RoadNetwork:
    """Read a GeoJSON of directed edges (properties `u`, `v`, `highway`, `maxspeed`, `name`) into a network.

    Keeps drivable road classes and (by default) the largest strongly connected component. Cached per
    (path, speed defaults): networks are never mutated (`with_arterial` returns a copy)."""
    return _load_roads(str(path), tuple(sorted((speed_defaults_kmh or {}).items())), largest_component)


@lru_cache(maxsize=4)
def _load_roads(path: str, speed_defaults: tuple[tuple[str, float], ...], largest_component: bool) -> RoadNetwork:
    defaults = {**DEFAULT_SPEED_KMH, **dict(speed_defaults)}
    feats = json.loads(Path(path).read_text(encoding="utf-8"))["features"]
    rows = []
    for f in feats:
        p = f["properties"]
        hw = _class_of(p.get("highway"))
        coords = f["geometry"]["coordinates"]
        if hw is None or len(coords) < 2:
            continue
        rows.append((int(p["u"]), int(p["v"]), hw, _name_of(p.get("name")),
                     _parse_speed(p.get("maxspeed")) or defaults[hw], coords))
    osm_ids = np.unique(np.array([r[0] for r in rows] + [r[1] for r in rows], dtype=np.int64))
    index = {int(o): i for i, o in enumerate(osm_ids)}
    u = np.array([index[r[0]] for r in rows], dtype=np.int32)
    v = np.array([index[r[1]] for r in rows], dtype=np.int32)
    if largest_component:
        g = sp.csr_matrix((np.ones(u.size), (u, v)), shape=(osm_ids.size, osm_ids.size))
        _, labels = csgraph.connected_components(g, directed=True, connection="strong")
        big = np.bincount(labels).argmax()
        keep_node = labels == big
        keep = keep_node[u] & keep_node[v]
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
        osm_ids = osm_ids[keep_node]
        index = {int(o): i for i, o in enumerate(osm_ids)}
        u = np.array([index[r[0]] for r in rows], dtype=np.int32)
        v = np.array([index[r[1]] for r in rows], dtype=np.int32)
    all_coords = np.array([c for r in rows for c in r[5]], dtype=float)
    frame = LocalFrame(lon0=round(float(all_coords[:, 0].mean()), 4), lat0=round(float(all_coords[:, 1].mean()), 4))
    gx, gy = frame.to_xy(all_coords[:, 0], all_coords[:, 1])
    offsets = np.concatenate([[0], np.cumsum([len(r[5]) for r in rows])]).astype(np.int64)
    # node positions: first vertex of any outgoing edge (or last vertex of an incoming one)
    nx = np.full(osm_ids.size, np.nan)
    ny = np.full(osm_ids.size, np.nan)
    nx[v], ny[v] = gx[offsets[1:] - 1], gy[offsets[1:] - 1]
    nx[u], ny[u] = gx[offsets[:-1]], gy[offsets[:-1]]
    seg = np.hypot(np.diff(gx), np.diff(gy))
    seg[offsets[1:-1] - 1] = 0.0  # no segment between the last vertex of one edge and the next edge
    length = np.add.reduceat(np.append(seg, 0.0), offsets[:-1])
    return RoadNetwork(
        frame=frame, node_osm=osm_ids, node_x=nx, node_y=ny, edge_u=u, edge_v=v,
        edge_length_m=np.maximum(length, 0.5), edge_speed_kmh=np.array([r[4] for r in rows], dtype=float),
        edge_highway=[r[2] for r in rows], edge_name=[r[3] for r in rows], geom_offsets=offsets,
        geom_x=gx, geom_y=gy,
    )
