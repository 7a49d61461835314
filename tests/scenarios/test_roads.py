from __future__ import annotations

import numpy as np
import pytest

from scenarios.roads import NoRoute, Router, load_roads
from scenarios.sim.kinematics import DriveParams, drive


@pytest.fixture(scope="module")
def net():
    return load_roads()


def test_network_is_the_drivable_futian_graph(net):
    assert 1000 < net.n_nodes < 2000 and 2000 < net.n_edges < 4009  # footways etc. dropped
    assert "footway" not in set(net.edge_highway)
    # geometry lengths agree with the OSM `length` attribute (metres, local projection)
    assert 250_000 < net.edge_length_m.sum() < 300_000
    assert np.all(net.edge_speed_kmh >= 20) and np.all(net.edge_speed_kmh <= 80)
    assert any("深南" in n for n in net.edge_name)


def test_every_pair_is_routable_and_paths_are_connected(net):
    r = Router(net)
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, net.n_nodes, (20, 2)):
        edges = r.route(int(a), int(b))
        if a == b:
            continue
        assert net.edge_u[edges[0]] == a and net.edge_v[edges[-1]] == b
        assert np.all(net.edge_v[edges[:-1]] == net.edge_u[edges[1:]])
        poly = net.path_geometry(edges)
        assert poly.length_m == pytest.approx(net.edge_length_m[edges].sum(), rel=1e-6)


def test_blocking_edges_changes_or_breaks_routes(net):
    r = Router(net)
    edges = r.route(0, net.n_nodes // 2)
    blocked = np.zeros(net.n_edges, bool)
    blocked[edges[len(edges) // 2]] = True
    r2 = Router(net, blocked)
    try:
        e2 = r2.route(0, net.n_nodes // 2)
    except NoRoute:
        return
    assert edges[len(edges) // 2] not in set(e2.tolist())
    assert r2.travel_time_s(0, net.n_nodes // 2) >= r.travel_time_s(0, net.n_nodes // 2)


def test_outer_arterial_extends_the_network(net):
    net2, end = net.with_arterial(0, 0.0, 4000.0, name="test")
    r = Router(net2)
    assert np.isfinite(r.travel_time_s(0, end)) and np.isfinite(r.travel_time_s(end, 0))
    assert np.hypot(net2.node_x[end] - net.node_x[0], net2.node_y[end] - net.node_y[0]) == pytest.approx(4000, rel=0.05)


def test_speed_profile_respects_limits_turns_and_red_lights(net):
    r = Router(net)
    edges = r.route(0, net.n_nodes // 3)
    path = net.path_geometry(edges)
    p = DriveParams(max_speed_kmh=36.0)
    prof = drive(path, p, stops=[(path.length_m / 2, 40.0)])
    assert np.all(np.diff(prof.t_s) >= 0) and np.all(np.diff(prof.s_m) >= 0)
    assert prof.v_ms.max() * 3.6 <= 36.0 + 1e-6
    assert prof.v_ms[0] == 0 and prof.v_ms[-1] == 0
    # acceleration bounded
    dv = np.diff(prof.v_ms ** 2) / (2 * np.maximum(np.diff(prof.s_m), 1e-9))
    assert dv.max() <= p.accel_ms2 + 1e-6 and dv.min() >= -p.decel_ms2 - 1e-6
    # the red light: standing still for 40 s at mid-path
    mid = np.flatnonzero(np.isclose(prof.s_m, prof.s_m[np.argmin(abs(prof.s_m - path.length_m / 2))]))
    assert np.ptp(prof.t_s[mid]) == pytest.approx(40.0, abs=1e-6)
    # sharp turns slow the vehicle down
    turns = path.turn_deg()
    sharp = path.cum_m[turns > 60]
    if sharp.size:
        v_at = np.interp(sharp, prof.s_m, prof.v_ms) * 3.6
        assert np.all(v_at < 25.0)
