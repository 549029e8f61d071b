"""Routing graph, travel modes and isochrones, checked against independent oracles.

No database: a plain heapq Dijkstra written here (no scipy) on the same edge lists, hand-computed
networks, and polygons checked against points sampled along the edges.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
import shapely
from shapely.ops import substring

from app.network.graph import (
    EdgeNotUsableError,
    NetworkError,
    OffNetworkError,
    RoadNetwork,
    Snap,
    build_graph,
    build_graphs,
    minutes_to_nearest,
    multi_source_search,
    multi_source_seconds,
    point_sources,
    seconds_at_points,
    sources_from_points,
    utm_epsg,
)
from app.network.isochrone import (
    DEFAULT_BUFFER_M,
    isochrones,
    isochrones_from_seconds,
    piece_geometries,
    reached_pieces,
    substrings,
)
from app.network.travel import (
    DEFAULT_CAR_KMH,
    EBIKE_CLASSES,
    EBIKE_PUSH_CLASSES,
    WALK_CLASSES,
    Mode,
    TravelSettings,
    allowed_classes,
    max_speed_mps,
)

ALL_CLASSES = sorted(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
        "pedestrian",
        "footway",
        "path",
        "cycleway",
        "steps",
        "track",
        "bridleway",
        "corridor",
        "construction",  # in no mode's set
    }
)
WALK_MPS = 5 / 3.6
EBIKE_MPS = 15 / 3.6
LON0, LAT0 = 114.30, 30.55  # Wuhan
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


# ------------------------------------------------------------------------------------------
# the oracle: arcs from the rules as written in the brief, and a textbook Dijkstra
# ------------------------------------------------------------------------------------------


def oracle_arcs(edges, mode):
    """(u, v, seconds) for every way an edge may be travelled; edges = (u, v, m, hw, oneway)."""
    arcs = []
    for u, v, length, hw, ow in edges:
        if mode == "walk":
            if hw not in WALK_CLASSES:
                continue
            mps, obey = WALK_MPS, False
        elif mode == "ebike":
            if hw in EBIKE_CLASSES:
                mps, obey = EBIKE_MPS, True
            elif hw in EBIKE_PUSH_CLASSES:
                mps, obey = WALK_MPS, False
            else:
                continue
        else:
            if hw not in DEFAULT_CAR_KMH:
                continue
            mps, obey = DEFAULT_CAR_KMH[hw] / 3.6, True
        s = length / mps
        if not obey or ow in (0, 1):
            arcs.append((u, v, s))
        if not obey or ow in (0, -1):
            arcs.append((v, u, s))
    return arcs


def oracle_dijkstra(n, arcs, sources, cutoff=None, reverse=False):
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u, v, s in arcs:
        if reverse:
            u, v = v, u
        adj[u].append((v, s))
    dist = [math.inf] * n
    heap: list[tuple[float, int]] = []
    for node, init in sources:
        if init < dist[node]:
            dist[node] = init
            heapq.heappush(heap, (init, node))
    done = [False] * n
    while heap:
        d, u = heapq.heappop(heap)
        if done[u] or d > dist[u]:
            continue
        done[u] = True
        for v, s in adj[u]:
            if d + s < dist[v]:
                dist[v] = d + s
                heapq.heappush(heap, (d + s, v))
    out = np.array(dist)
    if cutoff is not None:
        out[out > cutoff] = math.inf
    return out


def assert_same_seconds(got, want):
    assert got.shape == want.shape
    assert np.array_equal(np.isinf(got), np.isinf(want)), np.flatnonzero(
        np.isinf(got) != np.isinf(want)
    )
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=1e-9, atol=1e-6)


def network_from(edges, n, *, node_ids=None, coords=None):
    """A RoadNetwork from (u, v, length, highway, oneway) tuples over node indices 0..n-1."""
    ids = np.arange(n, dtype=np.int64) * 10 + 7 if node_ids is None else node_ids
    if coords is None:
        coords = np.column_stack([LON0 + np.arange(n) * 1e-3, np.full(n, LAT0)])
    u = np.array([e[0] for e in edges], dtype=np.int64)
    v = np.array([e[1] for e in edges], dtype=np.int64)
    return RoadNetwork.from_arrays(
        edge_id=np.arange(len(edges), dtype=np.int64) + 1000,
        source=ids[u],
        target=ids[v],
        length_m=np.array([e[2] for e in edges], dtype=np.float64),
        highway=np.array([e[3] for e in edges], dtype=str),
        oneway=np.array([e[4] for e in edges], dtype=np.int8),
        node_id=ids,
        lon=coords[:, 0],
        lat=coords[:, 1],
    )


def random_edges(rng, n, m):
    edges = []
    for _ in range(m):
        u, v = int(rng.integers(n)), int(rng.integers(n))
        length = 0.0 if rng.random() < 0.05 else float(rng.uniform(1, 500))
        hw = str(rng.choice(ALL_CLASSES))
        ow = int(rng.choice([0, 0, 1, -1]))
        edges.append((u, v, length, hw, ow))
        if rng.random() < 0.15:  # a parallel edge, perhaps of another class or direction
            edges.append((v, u, float(rng.uniform(0, 500)), str(rng.choice(ALL_CLASSES)), ow))
    return edges


# ------------------------------------------------------------------------------------------
# shortest paths vs the oracle
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_multi_source_matches_plain_dijkstra(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    edges = random_edges(rng, n, int(rng.integers(0, 3 * n)))
    # node ids: arbitrary, unsorted, large
    ids = rng.choice(np.arange(-(2**40), 2**40, 2**20, dtype=np.int64), n, replace=False)
    net = network_from(edges, n, node_ids=ids)
    for mode in Mode:
        graph = build_graph(net, mode)
        arcs = oracle_arcs(edges, mode.value)
        k = int(rng.integers(1, 5))
        nodes = rng.integers(0, n, k).tolist()
        if seed % 3 == 0:
            inits = [0.0] * k  # csgraph's own multi-source path
        elif seed % 3 == 1:
            inits = [37.5] * k  # equal offsets
        else:
            inits = rng.uniform(0, 300, k).round(1).tolist()
            nodes.append(nodes[0])  # the same node twice, with another offset
            inits.append(float(rng.uniform(0, 300)))
        sources = list(zip(nodes, inits, strict=True))
        cutoff = None if seed % 2 else float(rng.uniform(50, 600))
        for reverse in (False, True):
            want = oracle_dijkstra(n, arcs, sources, cutoff, reverse=reverse)
            got = multi_source_seconds(graph, sources, cutoff, reverse=reverse)
            assert_same_seconds(got, want)
            # the nearest source explains each node's seconds
            res = multi_source_search(graph, sources, cutoff, reverse=reverse, with_nearest=True)
            assert res.nearest is not None
            assert np.array_equal(res.nearest >= 0, np.isfinite(want))
            for node in np.flatnonzero(res.nearest >= 0):
                src_node, init = sources[res.nearest[node]]
                alone = oracle_dijkstra(n, arcs, [(src_node, init)], reverse=reverse)
                assert alone[node] == pytest.approx(want[node], rel=1e-9, abs=1e-6)


def test_minutes_to_nearest_equals_min_of_single_searches():
    rng = np.random.default_rng(7)
    n = 400
    edges = random_edges(rng, n, 1200)
    net = network_from(edges, n)
    for mode in Mode:
        graph = build_graph(net, mode)
        stations = rng.choice(n, 25, replace=False)
        init = rng.uniform(0, 120, 25)
        one_by_one = np.full(n, np.inf)
        for s, i in zip(stations, init, strict=True):
            single = multi_source_seconds(graph, [(int(s), float(i))], reverse=True)
            one_by_one = np.minimum(one_by_one, single)
        got = minutes_to_nearest(graph, stations, init)
        assert_same_seconds(got, one_by_one / 60)
        want = oracle_dijkstra(
            n, oracle_arcs(edges, mode.value), list(zip(stations, init)), None, reverse=True
        )
        assert_same_seconds(got * 60, want)


def test_no_sources_or_all_beyond_cutoff():
    net = network_from([(0, 1, 100.0, "residential", 0)], 2)
    g = build_graph(net, "walk")
    assert np.all(np.isinf(multi_source_seconds(g, [])))
    assert np.all(np.isinf(multi_source_seconds(g, [(0, 100.0)], cutoff_s=50)))
    with pytest.raises(ValueError):
        multi_source_seconds(g, [(5, 0.0)])
    with pytest.raises(ValueError):
        multi_source_seconds(g, [(0, -1.0)])


# ------------------------------------------------------------------------------------------
# hand-computed networks and mode rules
# ------------------------------------------------------------------------------------------


def test_three_edge_line_exact_seconds_per_mode():
    # A -100 m residential- B -200 m primary- C -300 m residential- D
    edges = [
        (0, 1, 100.0, "residential", 0),
        (1, 2, 200.0, "primary", 0),
        (2, 3, 300.0, "residential", 0),
    ]
    graphs = build_graphs(network_from(edges, 4))
    expect = {
        Mode.WALK: [0, 72, 216, 432],  # 5 km/h: 72 s per 100 m
        Mode.EBIKE: [0, 24, 72, 144],  # 15 km/h: 24 s per 100 m
        Mode.CAR: [0, 18, 36, 90],  # residential 20 km/h, primary 40 km/h
    }
    for mode, want in expect.items():
        got = multi_source_seconds(graphs[mode], [(0, 0.0)])
        np.testing.assert_allclose(got, want, atol=1e-9)


def test_one_way_street_car_and_ebike_obey_walk_does_not():
    edges = [(0, 1, 100.0, "residential", 1), (1, 2, 100.0, "residential", -1)]
    graphs = build_graphs(network_from(edges, 3))
    # from B (node 1): A only against the one-way arrow, C only along its -1 arrow (C → B)
    np.testing.assert_allclose(multi_source_seconds(graphs[Mode.WALK], [(1, 0.0)]), [72, 0, 72])
    for mode in (Mode.CAR, Mode.EBIKE):
        got = multi_source_seconds(graphs[mode], [(1, 0.0)])
        assert np.isinf(got[0]) and np.isinf(got[2])
        back = multi_source_seconds(graphs[mode], [(1, 0.0)], reverse=True)  # who reaches B
        assert np.isfinite(back[0]) and np.isfinite(back[2])
    np.testing.assert_allclose(
        multi_source_seconds(graphs[Mode.CAR], [(1, 0.0)], reverse=True), [18, 0, 18]
    )


def test_walk_never_uses_a_motorway_or_trunk_shortcut():
    edges = [
        (0, 1, 100.0, "motorway", 0),
        (0, 3, 50.0, "trunk", 0),
        (3, 1, 50.0, "trunk_link", 0),
        (0, 2, 1000.0, "residential", 0),
        (2, 1, 1000.0, "residential", 0),
    ]
    graphs = build_graphs(network_from(edges, 4))
    assert multi_source_seconds(graphs[Mode.WALK], [(0, 0.0)])[1] == pytest.approx(2000 / WALK_MPS)
    assert multi_source_seconds(graphs[Mode.EBIKE], [(0, 0.0)])[1] == pytest.approx(
        2000 / EBIKE_MPS
    )
    car = multi_source_seconds(graphs[Mode.CAR], [(0, 0.0)])[1]
    assert car == pytest.approx(100 / (80 / 3.6))  # motorway at 80 km/h


def test_mode_class_rules():
    walk, ebike, car = (allowed_classes(m) for m in Mode)
    assert not {"motorway", "motorway_link", "trunk", "trunk_link"} & walk
    assert not {"motorway", "motorway_link", "trunk", "trunk_link", "steps", "corridor"} & ebike
    assert {"footway", "pedestrian", "cycleway"} <= ebike  # pushing on foot paths, riding cycleways
    car_banned = {"footway", "path", "cycleway", "steps", "pedestrian", "bridleway", "corridor"}
    assert not (car_banned | {"track"}) & car
    assert "construction" not in walk | ebike | car


def test_ebike_pushes_at_walking_speed_and_ignores_one_way_there():
    edges = [(0, 1, 100.0, "footway", 1), (1, 2, 100.0, "steps", 0), (0, 3, 100.0, "cycleway", 1)]
    g = build_graph(network_from(edges, 4), "ebike")
    got = multi_source_seconds(g, [(1, 0.0)])
    assert got[0] == pytest.approx(72.0)  # against the footway's one-way, pushed at 5 km/h
    assert np.isinf(got[2])  # no e-bike on steps
    assert multi_source_seconds(g, [(0, 0.0)])[3] == pytest.approx(24.0)
    assert np.isinf(multi_source_seconds(g, [(3, 0.0)])[0])  # the cycleway's one-way holds


def test_speeds_are_settings():
    edges = [(0, 1, 1000.0, "residential", 0)]
    net = network_from(edges, 2)
    s = TravelSettings(walk_kmh=4.0, ebike_kmh=20.0, car_kmh_by_class={"residential": 30.0})
    assert multi_source_seconds(build_graph(net, "walk", s), [(0, 0)])[1] == pytest.approx(900)
    assert multi_source_seconds(build_graph(net, "ebike", s), [(0, 0)])[1] == pytest.approx(180)
    assert multi_source_seconds(build_graph(net, "car", s), [(0, 0)])[1] == pytest.approx(120)
    with pytest.raises(ValueError, match="walk_kmh"):
        TravelSettings(walk_kmh=0)
    with pytest.raises(ValueError, match=r"car_kmh_by_class\.primary"):
        TravelSettings(car_kmh_by_class={"primary": -5})


def test_settings_are_hashable_and_bound_speeds():
    assert hash(TravelSettings()) == hash(TravelSettings())
    assert TravelSettings() == TravelSettings()
    assert max_speed_mps("walk") == pytest.approx(WALK_MPS)
    assert max_speed_mps("ebike") == pytest.approx(EBIKE_MPS)
    assert max_speed_mps("car") == pytest.approx(80 / 3.6)


def test_node_ids_are_mapped_and_checked():
    ids = np.array([9_000_000_000, -5, 42], dtype=np.int64)
    net = network_from([(0, 1, 10.0, "residential", 0)], 3, node_ids=ids)
    assert net.node_index([42, 9_000_000_000]).tolist() == [2, 0]
    assert net.src.tolist() == [0] and net.dst.tolist() == [1]
    with pytest.raises(ValueError, match="node id"):
        net.node_index([1])
    with pytest.raises(ValueError, match="target"):
        RoadNetwork.from_arrays(
            edge_id=[1],
            source=[-5],
            target=[77],
            length_m=[1.0],
            highway=["residential"],
            oneway=[0],
            node_id=ids,
            lon=[0, 0, 0],
            lat=[0, 0, 0],
        )


def test_utm_zone():
    assert utm_epsg(114.30, 30.55) == 32650  # Wuhan
    assert utm_epsg(121.47, 31.23) == 32651  # Shanghai
    assert utm_epsg(-58.4, -34.6) == 32721


# ------------------------------------------------------------------------------------------
# snapped points: partial first edges, one-way, reverse, errors
# ------------------------------------------------------------------------------------------


def test_partial_edge_reaches_near_end_in_72_seconds():
    net = network_from([(0, 1, 400.0, "residential", 0)], 2)
    g = build_graph(net, "walk")
    sources = dict(point_sources(g, Snap(0, 0.25, 0.0)))
    assert sources == {0: pytest.approx(72.0), 1: pytest.approx(216.0)}
    off = dict(point_sources(g, Snap(0, 0.25, 50.0)))  # 50 m off the road: +36 s walked
    assert off == {0: pytest.approx(108.0), 1: pytest.approx(252.0)}
    seconds = multi_source_seconds(g, list(off.items()))
    np.testing.assert_allclose(seconds, [108.0, 252.0])


def test_point_sources_respect_one_way_and_direction():
    net = network_from([(0, 1, 400.0, "residential", 1)], 2)
    car = build_graph(net, "car")  # 20 km/h: 72 s per 400 m
    assert point_sources(car, Snap(0, 0.25, 0.0)) == [(1, pytest.approx(54.0))]
    # worker → point: only from the source end, riding with the arrow
    assert point_sources(car, Snap(0, 0.25, 0.0), reverse=True) == [(0, pytest.approx(18.0))]
    walk = build_graph(net, "walk")
    assert len(point_sources(walk, Snap(0, 0.25, 0.0))) == 2


def test_snap_errors_are_clear():
    net = network_from([(0, 1, 400.0, "motorway", 1), (1, 2, 100.0, "residential", 0)], 3)
    walk = build_graph(net, "walk")
    with pytest.raises(EdgeNotUsableError, match="on foot") as exc:
        point_sources(walk, Snap(0, 0.5, 3.0))
    assert "allowed_classes('walk')" in str(exc.value)
    with pytest.raises(OffNetworkError, match="812 m") as off:
        point_sources(walk, Snap(1, 0.5, 812.0))
    assert isinstance(off.value, NetworkError) and isinstance(off.value, ValueError)
    assert off.value.field
    limited = build_graph(net, "walk", TravelSettings(max_off_network_m=1000))
    assert point_sources(limited, Snap(1, 0.5, 812.0))


def test_seconds_at_points_forward_reverse_and_same_edge():
    # A -400 m- B -400 m- C, residential, two-way; B→C one-way for the car
    edges = [(0, 1, 400.0, "residential", 0), (1, 2, 400.0, "residential", 1)]
    net = network_from(edges, 3)
    walk = build_graph(net, "walk")
    origin = Snap(0, 0.25, 10.0)  # 100 m from A, 10 m off
    d = multi_source_seconds(walk, point_sources(walk, origin))
    targets = [Snap(1, 0.5, 20.0), Snap(0, 0.75, 0.0), Snap(0, 0.0, 0.0)]
    got = seconds_at_points(walk, d, targets, origin=origin)
    w = 1 / WALK_MPS
    np.testing.assert_allclose(got, [(10 + 300 + 200 + 20) * w, (10 + 200) * w, (10 + 100) * w])
    car = build_graph(net, "car")  # 20 km/h
    station = Snap(1, 0.5, 0.0)  # on the one-way B→C
    back = multi_source_seconds(car, point_sources(car, station, reverse=True), reverse=True)
    workers = [Snap(0, 0.5, 0.0), Snap(1, 0.25, 0.0), Snap(1, 0.75, 0.0)]
    got = seconds_at_points(car, back, workers, reverse=True, origin=station)
    c = 3.6 / 20
    assert got[0] == pytest.approx((200 + 200) * c)
    assert got[1] == pytest.approx(100 * c)  # upstream on the same edge: along the arrow
    assert np.isinf(got[2])  # downstream: would have to ride against it


def test_sources_from_points_owner():
    net = network_from([(0, 1, 400.0, "residential", 1), (1, 2, 100.0, "residential", 0)], 3)
    car = build_graph(net, "car")
    sources, owner = sources_from_points(car, [Snap(0, 0.5, 0.0), Snap(1, 0.5, 0.0)])
    assert owner.tolist() == [0, 1, 1]
    res = multi_source_search(car, sources, reverse=True, with_nearest=True)
    assert res.nearest is not None
    assert owner[res.nearest].tolist() == [0, 1, 1]


# ------------------------------------------------------------------------------------------
# isochrones
# ------------------------------------------------------------------------------------------


def grid_network(k, spacing_m, rng, *, classes=("residential",), oneway_share=0.0):
    """A k×k street grid near Wuhan with straight edges (lengths from the coordinates)."""
    ii, jj = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    idx = (ii * k + jj).ravel()
    lon = LON0 + jj.ravel() * spacing_m / M_PER_DEG_LON
    lat = LAT0 + ii.ravel() * spacing_m / M_PER_DEG_LAT
    grid = ii * k + jj
    u = np.concatenate([grid[:, :-1].ravel(), grid[:-1, :].ravel()])
    v = np.concatenate([grid[:, 1:].ravel(), grid[1:, :].ravel()])
    m = len(u)
    hw = rng.choice(list(classes), m)
    ow = np.where(rng.random(m) < oneway_share, rng.choice([1, -1], m), 0)
    edges = [(int(a), int(b), spacing_m, str(h), int(o)) for a, b, h, o in zip(u, v, hw, ow)]
    return edges, network_from(edges, k * k, coords=np.column_stack([lon, lat])[idx])


def to_local_m(lon, lat):
    return np.column_stack([(lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT])


def sample_times(net, edges, node_seconds, mode, snap, reverse, samples=21):
    """Oracle time of points along every edge, from node times and the snapped point."""
    f = np.linspace(0, 1, samples)
    pts, times = [], []
    for e, (a, b, length, hw, ow) in enumerate(edges):
        arcs = oracle_arcs([(0, 1, length, hw, ow)], mode)
        fw = any((p, q) == (0, 1) for p, q, _ in arcs)
        bw = any((p, q) == (1, 0) for p, q, _ in arcs)
        s = arcs[0][2] if arcs else math.inf
        da, db = node_seconds[a], node_seconds[b]
        # forward: arrive along the edge; reverse: leave along it towards an end
        from_a = (fw if not reverse else bw) and np.isfinite(da)
        from_b = (bw if not reverse else fw) and np.isfinite(db)
        t = np.full(samples, np.inf)
        if from_a:
            t = np.minimum(t, da + f * s)
        if from_b:
            t = np.minimum(t, db + (1 - f) * s)
        if snap is not None and e == snap[0]:
            w = snap[2] / WALK_MPS
            ahead = f >= snap[1]
            ok_ahead = fw if not reverse else bw
            ok_behind = bw if not reverse else fw
            direct = np.full(samples, np.inf)
            direct[ahead & ok_ahead] = (w + (f - snap[1]) * s)[ahead & ok_ahead]
            direct[~ahead & ok_behind] = (w + (snap[1] - f) * s)[~ahead & ok_behind]
            t = np.minimum(t, direct)
        x = net.lon[a] + f * (net.lon[b] - net.lon[a])
        y = net.lat[a] + f * (net.lat[b] - net.lat[a])
        pts.append(to_local_m(x, y))
        times.append(t)
    return np.concatenate(pts), np.concatenate(times)


@pytest.mark.parametrize(
    ("mode", "reverse", "oneway_share"),
    [("walk", False, 0.0), ("ebike", False, 0.3), ("car", True, 0.3), ("car", False, 0.5)],
)
def test_isochrone_covers_reached_and_excludes_far_unreached(mode, reverse, oneway_share):
    rng = np.random.default_rng(11)
    edges, net = grid_network(
        25,
        120.0,
        rng,
        classes=("residential", "footway", "primary", "service"),
        oneway_share=oneway_share,
    )
    g = build_graph(net, mode)
    usable = np.flatnonzero(g.costs.forward | g.costs.backward)
    snap = Snap(int(usable[len(usable) // 2]), 0.37, 15.0)
    minutes = {"walk": [3, 6], "ebike": [2, 4], "car": [1, 2]}[mode]
    polys = isochrones(g, snap, minutes, reverse=reverse)
    d = multi_source_seconds(g, point_sources(g, snap, reverse=reverse), reverse=reverse)
    pts, times = sample_times(net, edges, d, mode, snap, reverse)
    width = DEFAULT_BUFFER_M[Mode(mode)]
    for minute, poly in zip(minutes, polys, strict=True):
        T = minute * 60
        assert poly.is_valid and not poly.is_empty
        inside = times <= T - 1e-6
        assert inside.any() and (~inside).any()
        lon = LON0 + pts[:, 0] / M_PER_DEG_LON
        lat = LAT0 + pts[:, 1] / M_PER_DEG_LAT
        hit = shapely.contains_xy(poly, lon, lat)
        assert hit[inside].all(), f"{(inside & ~hit).sum()} reached points outside"
        # unreached points further than the buffer (+ sampling gap + margin) from any reached
        reached = shapely.multipoints(pts[inside])
        dist = shapely.distance(shapely.points(pts[~inside]), reached)
        far = dist > width + 120.0 / 20 + 5.0
        assert far.any()
        assert not hit[~inside][far].any(), "an unreached point far from the reached streets"
    # the pieces themselves, shrunk a little, lie inside
    for minute, poly in zip(minutes, polys, strict=True):
        pieces = reached_pieces(g, d, minute * 60, reverse=reverse, snap=snap)
        geoms = net.project(piece_geometries(g, pieces), inverse=True)
        assert shapely.contains(poly.buffer(1e-7), geoms).all()


def test_nested_thresholds_contain_each_other():
    rng = np.random.default_rng(3)
    _, net = grid_network(30, 80.0, rng, classes=("residential", "primary"), oneway_share=0.3)
    g = build_graph(net, "car")
    polys = isochrones(g, Snap(400, 0.5, 5.0), [6, 2, 4], origin_lonlat=(LON0 + 0.01, LAT0 + 0.01))
    big, small, mid = polys  # returned in the order asked
    assert small.area < mid.area < big.area
    assert shapely.difference(small, mid).area < 1e-12
    assert shapely.difference(mid, big).area < 1e-12


def test_partial_last_edge_is_drawn():
    # one straight 1 km residential street going east; 5 min walk from its west end = 416.7 m
    coords = np.array([[LON0, LAT0], [LON0 + 1000 / M_PER_DEG_LON, LAT0]])
    net = network_from([(0, 1, 1000.0, "residential", 0)], 2, coords=coords)
    g = build_graph(net, "walk")
    (poly,) = isochrones(g, Snap(0, 0.0, 0.0), [5])
    reach = 300 * WALK_MPS
    east = lambda m: LON0 + m / M_PER_DEG_LON  # noqa: E731
    assert poly.contains(shapely.Point(east(reach - 1), LAT0))
    assert poly.contains(shapely.Point(east(reach + 25 - 2), LAT0))  # + the 25 m buffer
    assert not poly.contains(shapely.Point(east(reach + 25 + 2), LAT0))


def test_off_network_connector_and_unreachable_budget():
    coords = np.array([[LON0, LAT0], [LON0 + 1000 / M_PER_DEG_LON, LAT0]])
    net = network_from([(0, 1, 1000.0, "residential", 0)], 2, coords=coords)
    g = build_graph(net, "walk")
    origin = (LON0 + 500 / M_PER_DEG_LON, LAT0 + 200 / M_PER_DEG_LAT)  # 200 m north of the middle
    one, three = isochrones(g, Snap(0, 0.5, 200.0), [1, 3], origin_lonlat=origin)
    # 1 min walks 83 m of the 200 m connector and reaches no road
    assert one.contains(shapely.Point(origin))
    assert not one.contains(shapely.Point(LON0 + 500 / M_PER_DEG_LON, LAT0))
    assert three.contains(shapely.Point(LON0 + 500 / M_PER_DEG_LON, LAT0))
    pieces = reached_pieces(g, np.full(2, np.inf), 60, snap=Snap(0, 0.5, 200.0))
    assert len(pieces) == 0 and pieces.connector == pytest.approx(60 * WALK_MPS / 200)


def test_isochrone_from_seconds_empty_when_nothing_reached():
    net = network_from([(0, 1, 100.0, "residential", 0)], 2)
    g = build_graph(net, "walk")
    (poly,) = isochrones_from_seconds(g, np.full(2, np.inf), [300])
    assert poly.is_empty


def test_substrings_match_shapely_substring():
    rng = np.random.default_rng(5)
    lines = []
    for i in range(300):
        c = rng.uniform(0, 100, (int(rng.integers(2, 7)), 2))
        if i % 40 == 0:
            c[1] = c[0]  # a repeated vertex
        if i % 97 == 0:
            c[:] = c[0]  # zero length
        lines.append(shapely.LineString(c))
    arr = np.array(lines, dtype=object)
    a, b = rng.uniform(0, 1, 300), rng.uniform(0, 1, 300)
    start, end = np.minimum(a, b), np.maximum(a, b)
    start[::7] = end[::7]
    start[::11], end[::13] = 0.0, 1.0
    got = substrings(arr, start, end)
    for line, s, e, g in zip(arr, start, end, got, strict=True):
        ref = substring(line, s, e, normalized=True)
        if ref.is_empty or ref.length == 0:
            assert g.geom_type == "Point"
            if not ref.is_empty:
                assert g.distance(ref) < 1e-9
        else:
            assert g.geom_type == "LineString"
            assert ref.hausdorff_distance(g) < 1e-9 and g.length == pytest.approx(ref.length)


# ------------------------------------------------------------------------------------------
# scale: a synthetic grid of ~100k edges (runs; no timing asserts)
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_grid_of_100k_edges():
    rng = np.random.default_rng(1)
    edges, net = grid_network(
        224, 100.0, rng, classes=("residential", "primary", "footway", "service"), oneway_share=0.2
    )
    assert net.n_edges > 99_000
    graphs = build_graphs(net)
    stations = rng.choice(net.n_nodes, 300, replace=False)
    init = rng.uniform(0, 120, 300)
    for mode, g in graphs.items():
        minutes = minutes_to_nearest(g, stations, init)
        assert minutes.shape == (net.n_nodes,)
        assert np.isfinite(minutes).mean() > 0.9
        polys = isochrones(g, Snap(50_000, 0.5, 10.0), [5, 10, 15], reverse=True)
        assert all(p.is_valid and not p.is_empty for p in polys)
        if mode is Mode.WALK:
            want = oracle_dijkstra(
                net.n_nodes, oracle_arcs(edges, "walk"), list(zip(stations, init)), reverse=True
            )
            assert_same_seconds(minutes * 60, want)
