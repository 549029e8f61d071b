"""Coverage engine without a database: hand-computed small networks, and a brute-force oracle
that splits edges at every cell and station point and runs a plain Dijkstra."""

from __future__ import annotations

import heapq
import itertools
import math

import h3
import numpy as np
import pytest

from app.coverage import derive
from app.coverage.analysis import CoverageModel, Points, Reach, build_model, point_reach
from app.coverage.grid import CellSnaps, build_grid, snap_points
from app.network.graph import RoadNetwork, build_graph
from app.network.travel import Mode, TravelSettings

WALK_MPS = 5 / 3.6


def path_network(lengths: list[float], oneway: list[int] | None = None) -> RoadNetwork:
    """Nodes 0..n on a line (east of 114.3, 30.58), edge i joins node i and i+1."""
    n = len(lengths)
    xs = np.concatenate([[0.0], np.cumsum(lengths)])
    return RoadNetwork.from_arrays(
        edge_id=np.arange(n),
        source=np.arange(n),
        target=np.arange(1, n + 1),
        length_m=lengths,
        highway=["residential"] * n,
        oneway=oneway or [0] * n,
        node_id=np.arange(n + 1),
        lon=114.3 + xs / 96_000.0,
        lat=np.full(n + 1, 30.58),
    )


def test_hand_computed_minutes_and_multiplicity_on_a_path():
    # A—B—C—D, 300 m each, walking 5 km/h: 216 s per edge.
    net = path_network([300, 300, 300])
    g = build_graph(net, Mode.WALK)
    station_b = Points(np.array([0]), np.array([1.0]), np.array([0.0]))  # at B
    cells = CellSnaps(
        edge=np.array([2, 0, 1, 2]),
        fraction=np.array([0.5, 0.0, 0.5, 1.0]),
        off_m=np.array([0.0, 0.0, 0.0, 50.0]),
    )
    model = build_model(g, cells, np.ones(4), station_b, minutes_target=5, dense_minutes=5)
    # cell 0: mid C–D → C 108 s, C → B 216 s = 324 s; cell 1: at A, 216 s; cell 2: mid B–C,
    # 108 s; cell 3: at D plus 50 m walked = 432 + 36 s = 468 s
    np.testing.assert_allclose(model.minutes * 60, [324, 216, 108, 468], atol=1e-6)
    assert model.multiplicity.tolist() == [0, 1, 1, 0]  # within 5 min = 300 s
    assert model.nearest.tolist() == [0, 0, 0, 0]
    # a second station at C: cell 0 now 108 s, cell 3 216 + 36 s; two stations reach cell 2
    two = Points(np.array([0, 1]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    m2 = build_model(g, cells, np.ones(4), two, minutes_target=5, dense_minutes=5)
    np.testing.assert_allclose(m2.minutes * 60, [108, 216, 108, 252], atol=1e-6)
    assert m2.multiplicity.tolist() == [1, 1, 2, 1]
    assert m2.nearest.tolist() == [1, 0, 0, 1]


def test_one_way_street_is_respected_when_riding():
    # B→C one-way (edge 1 forward only). E-bike 15 km/h: 300 m = 72 s.
    net = path_network([300, 300, 300], oneway=[0, 1, 0])
    g = build_graph(net, Mode.EBIKE)
    station_b = Points(np.array([0]), np.array([1.0]), np.array([0.0]))
    cells = CellSnaps(np.array([2]), np.array([0.5]), np.array([0.0]))  # mid C–D
    m = build_model(g, cells, np.ones(1), station_b, minutes_target=15, dense_minutes=5)
    # from mid C–D a rider cannot go C→B against the one-way: no other road, unreachable
    assert math.isinf(m.minutes[0])
    station_d = Points(np.array([2]), np.array([1.0]), np.array([0.0]))
    cells_a = CellSnaps(np.array([0]), np.array([0.0]), np.array([0.0]))  # at A
    m2 = build_model(g, cells_a, np.ones(1), station_d, minutes_target=15, dense_minutes=5)
    assert m2.minutes[0] * 60 == pytest.approx(3 * 72)  # A→B→C→D with the one-way


def test_same_edge_direct_travel_is_used():
    net = path_network([1000])
    g = build_graph(net, Mode.WALK)
    st = Points(np.array([0]), np.array([0.6]), np.array([0.0]))
    cells = CellSnaps(np.array([0]), np.array([0.5]), np.array([0.0]))
    m = build_model(g, cells, np.ones(1), st, minutes_target=15, dense_minutes=5)
    assert m.minutes[0] * 60 == pytest.approx(100 / WALK_MPS)


# -------------------------------------------------------------------------------------------
# brute force: split edges at the points, plain Dijkstra per station
# -------------------------------------------------------------------------------------------


def _split_graph(g, pts_edge, pts_frac):
    """Arcs of the graph with every point inserted as its own node; returns (adj, point_nodes)."""
    net = g.network
    n0 = net.n_nodes
    by_edge: dict[int, list[tuple[float, int]]] = {}
    point_nodes = []
    for k, (e, f) in enumerate(zip(pts_edge, pts_frac, strict=True)):
        node = n0 + k
        point_nodes.append(node)
        by_edge.setdefault(int(e), []).append((float(f), node))
    adj: dict[int, list[tuple[int, float]]] = {}
    for e in range(net.n_edges):
        c = float(g.costs.seconds[e])
        fw, bw = bool(g.costs.forward[e]), bool(g.costs.backward[e])
        stops = [(0.0, int(net.src[e])), *sorted(by_edge.get(e, [])), (1.0, int(net.dst[e]))]
        for (fa, a), (fb, b) in itertools.pairwise(stops):
            w = (fb - fa) * c
            if fw:
                adj.setdefault(a, []).append((b, w))
            if bw:
                adj.setdefault(b, []).append((a, w))
    return adj, point_nodes


def _dijkstra(adj, src):
    dist = {src: 0.0}
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist.get(u, math.inf):
            continue
        for v, w in adj.get(u, []):
            nd = d + w
            if nd < dist.get(v, math.inf):
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return dist


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", [Mode.WALK, Mode.EBIKE])
def test_model_equals_brute_force_on_random_grids(seed, mode):
    rng = np.random.default_rng(seed)
    side = 6
    ids = np.arange(side * side)
    lon = 114.3 + (ids % side) * 0.002 + rng.uniform(-3e-4, 3e-4, len(ids))
    lat = 30.58 + (ids // side) * 0.002 + rng.uniform(-3e-4, 3e-4, len(ids))
    src, dst = [], []
    for i in ids:
        if i % side < side - 1 and rng.random() < 0.9:
            src.append(i)
            dst.append(i + 1)
        if i // side < side - 1 and rng.random() < 0.9:
            src.append(i)
            dst.append(i + side)
    m = len(src)
    length = rng.uniform(150, 400, m)
    oneway = rng.choice([0, 0, 0, 1, -1], m)
    hw = rng.choice(["residential", "footway", "primary"], m)
    net = RoadNetwork.from_arrays(
        edge_id=np.arange(m),
        source=src,
        target=dst,
        length_m=length,
        highway=hw,
        oneway=oneway,
        node_id=ids,
        lon=lon,
        lat=lat,
    )
    g = build_graph(net, mode, TravelSettings())
    usable = np.flatnonzero(g.costs.forward | g.costs.backward)
    n_st, n_cells = 5, 40
    st = Points(rng.choice(usable, n_st), rng.uniform(0, 1, n_st), rng.uniform(0, 80, n_st))
    cells = CellSnaps(
        rng.choice(usable, n_cells), rng.uniform(0, 1, n_cells), rng.uniform(0, 80, n_cells)
    )
    target, dense = 8.0, 4.0
    model = build_model(g, cells, np.ones(n_cells), st, minutes_target=target, dense_minutes=dense)
    adj, nodes = _split_graph(
        g, np.concatenate([st.edge, cells.edge]), np.concatenate([st.fraction, cells.fraction])
    )
    st_nodes, cell_nodes = nodes[:n_st], nodes[n_st:]
    # reverse adjacency: distances from each cell to a station = Dijkstra on reversed arcs
    radj: dict[int, list[tuple[int, float]]] = {}
    for u, arcs in adj.items():
        for v, w in arcs:
            radj.setdefault(v, []).append((u, w))
    times = np.full((n_st, n_cells), np.inf)
    for s, sn in enumerate(st_nodes):
        d = _dijkstra(radj, sn)
        for c, cn in enumerate(cell_nodes):
            if cn in d:
                times[s, c] = d[cn] + (st.off_m[s] + cells.off_m[c]) / WALK_MPS
    best = times.min(axis=0) / 60
    np.testing.assert_allclose(model.minutes, best, rtol=1e-9, atol=1e-9)
    want_mult = (times <= target * 60 + 1e-9).sum(axis=0)
    want_dense = (times <= dense * 60 + 1e-9).sum(axis=0)
    assert model.multiplicity.tolist() == want_mult.tolist()
    assert model.dense_count.tolist() == want_dense.tolist()
    finite = np.isfinite(best)
    chosen = model.nearest[finite]
    np.testing.assert_allclose(times[chosen, np.flatnonzero(finite)] / 60, best[finite])


# -------------------------------------------------------------------------------------------
# derived: gaps, station coverage, pairs, summaries
# -------------------------------------------------------------------------------------------


def _model(minutes, weights, reach=None, n_points=0) -> CoverageModel:
    n = len(minutes)
    empty = np.empty(0, dtype=np.intp)
    r = reach or Reach(empty, empty, np.empty(0), n_points, n, 900.0)
    return CoverageModel(
        minutes_target=15.0,
        dense_minutes=5.0,
        weights=np.asarray(weights, dtype=float),
        cells=CellSnaps(np.zeros(n, np.intp), np.zeros(n), np.zeros(n)),
        stations=Points.empty(),
        reach=r,
        minutes=np.asarray(minutes, dtype=float),
        nearest=np.full(n, -1, dtype=np.intp),
    )


def test_gaps_are_connected_components_ranked_by_uncovered_demand():
    centre = h3.latlng_to_cell(30.58, 114.3, 9)
    ring1 = sorted(h3.grid_ring(centre, 1))
    far = h3.latlng_to_cell(30.70, 114.5, 9)
    far_nb = sorted(h3.grid_ring(far, 1))[0]
    cells_s = [centre, ring1[0], ring1[1], far, far_nb]
    cells = np.asarray(sorted(h3.str_to_int(c) for c in cells_s), dtype=np.int64)
    pos = {h3.int_to_str(int(c)): i for i, c in enumerate(cells)}
    minutes = np.zeros(5)
    weights = np.zeros(5)
    # the centre group: centre covered, two neighbours uncovered (weights 1 + 2 = 3)
    minutes[pos[ring1[0]]], weights[pos[ring1[0]]] = 20, 1
    minutes[pos[ring1[1]]], weights[pos[ring1[1]]] = np.inf, 2
    # the far pair: both uncovered, weights 4 + 1 = 5
    minutes[pos[far]], weights[pos[far]] = 16, 4
    minutes[pos[far_nb]], weights[pos[far_nb]] = 30, 1
    weights[pos[centre]] = 100
    gaps = derive.find_gaps(
        _model(minutes, weights), cells, np.full(5, 0.1), np.asarray([None] * 5, dtype=object)
    )
    # ring1[0] and ring1[1] are not necessarily adjacent to each other
    adjacent = h3.are_neighbor_cells(ring1[0], ring1[1])
    assert gaps[0].demand == 5 and sorted(gaps[0].cells.tolist()) == sorted([pos[far], pos[far_nb]])
    assert gaps[0].max_minutes == 30 and gaps[0].mean_minutes == 23
    if adjacent:
        assert len(gaps) == 2 and gaps[1].demand == 3 and math.isinf(gaps[1].max_minutes)
    else:
        assert [g.demand for g in gaps] == [5, 2, 1]
    assert gaps[0].geometry["type"] == "Polygon"


def test_station_coverage_pairs_and_redundancy_by_hand():
    # stations 0, 1, 2; cells 0..3 with weights 1, 2, 3, 4; seconds within the 15 min target
    reach = Reach(
        point=np.array([0, 0, 1, 1, 1, 2]),
        cell=np.array([0, 1, 1, 2, 3, 3]),
        seconds=np.array([60, 120, 60, 600, 899, 300.0]),
        n_points=3,
        n_cells=4,
        cutoff_s=900,
    )
    m = _model([1, 1, 1, 5], [1, 2, 3, 4], reach, n_points=3)
    cov = derive.station_coverage(m)
    # station 0: cells 0,1 (3); exclusive cell 0 (1) → 33.3 %
    # station 1: cells 1,2,3 (9); exclusive cell 2 (3) → 33.3 %; station 2: cell 3 (4), none
    assert [(c.covered_demand, c.exclusive_demand) for c in cov] == [(3, 1), (9, 3), (4, 0)]
    assert cov[2].loss_pct == 0
    # pairs: (point=a, cell=b) is b → a; stations as cells
    sr = Reach(
        point=np.array([0, 1, 1, 2]),
        cell=np.array([1, 0, 2, 1]),
        seconds=np.array([100, 170, 500, 90.0]),
        n_points=3,
        n_cells=3,
        cutoff_s=600,
    )
    assert derive.close_pairs(sr, 3) == [(0, 1, 170 / 60, 100 / 60)]
    # 1↔2: 1→2 is 90 s but 2→1 is 500 s > 180 s: not a pair at 3 min, a pair at 9 min
    assert (1, 2, 90 / 60, 500 / 60) in derive.close_pairs(sr, 9)


def test_area_summary_shares_by_hand():
    m = _model([2, 7, 12, np.inf], [10, 20, 30, 40])
    s = derive.area_summary(m, np.ones(4, bool), np.array([1, 1, 2, 4.0]), (5, 10, 15), 2)
    assert [w["demand_share"] for w in s["within"]] == [0.1, 0.3, 0.6]
    assert [w["area_share"] for w in s["within"]] == [0.125, 0.25, 0.5]
    assert s["uncovered_demand"] == 40 and s["unreachable_cells"] == 1
    assert s["stations_per_10k_demand"] == 200.0


# -------------------------------------------------------------------------------------------
# grid
# -------------------------------------------------------------------------------------------


def test_grid_road_length_adds_up_and_cells_sit_on_their_own_streets():
    net = path_network([500, 700, 300])
    grid = build_grid(net, 10)
    # every metre of street is in exactly one cell (metric length from the UTM projection)
    total = sum(ls.length for ls in net.metric_geometry)
    assert grid.road_m.sum() == pytest.approx(total, rel=1e-9)
    # cells are the H3 cells of points sampled along the street; a cell the grid misses holds
    # less street than one 40 m piece (no piece midpoint fell in it)
    xs = np.linspace(0, 1, 4001)
    metres: dict[int, float] = {}
    for e in range(net.n_edges):
        line = net.geometry[e]
        step = net.metric_geometry[e].length / 4000
        for f in xs:
            p = line.interpolate(f, normalized=True)
            c = h3.str_to_int(h3.latlng_to_cell(p.y, p.x, 10))
            metres[c] = metres.get(c, 0.0) + step
    assert set(grid.cells.tolist()) <= set(metres)
    missed = set(metres) - set(grid.cells.tolist())
    assert all(metres[c] < 40 for c in missed)
    # and the street metres per cell agree with the sampling to within a piece at each end
    for i, c in enumerate(grid.cells.tolist()):
        assert abs(grid.road_m[i] - metres[c]) < 2 * 40
    g = build_graph(net, Mode.WALK)
    snaps = grid.snaps(g)
    assert snaps.reachable.all() and (snaps.off_m == 0).all()
    # each cell's representative point lies inside its hexagon
    for i in range(grid.n_cells):
        line = net.geometry[snaps.edge[i]]
        p = line.interpolate(snaps.fraction[i], normalized=True)
        assert h3.str_to_int(h3.latlng_to_cell(p.y, p.x, 10)) == grid.cells[i]


def test_snap_points_metres_and_limit():
    net = path_network([1000])
    g = build_graph(net, Mode.WALK)
    # 0.001° of latitude ≈ 110.9 m north of the street, at 25 % of it
    s = snap_points(g, np.array([114.3 + 250 / 96_000, 114.3]), np.array([30.581, 30.60]))
    assert s.edge.tolist() == [0, -1]  # the second point is ~2.2 km away: beyond 500 m
    assert s.off_m[0] == pytest.approx(110.9, abs=1.0)
    assert s.fraction[0] == pytest.approx(0.25, abs=0.01)


def test_point_reach_batches_agree_with_one_batch(monkeypatch):
    from app.coverage import analysis

    net = path_network([200] * 30)
    g = build_graph(net, Mode.WALK)
    rng = np.random.default_rng(3)
    pts = Points(rng.integers(0, 30, 70), rng.uniform(0, 1, 70), np.zeros(70))
    cells = CellSnaps(rng.integers(0, 30, 90), rng.uniform(0, 1, 90), np.zeros(90))
    a = point_reach(g, pts, cells, 600)
    monkeypatch.setattr(analysis, "BATCH", 7)
    b = point_reach(g, pts, cells, 600)
    monkeypatch.setattr(analysis, "ROW_BUDGET_BYTES", 1)  # one point per batch
    c = point_reach(g, pts, cells, 600)
    ka = sorted(zip(a.point.tolist(), a.cell.tolist(), a.seconds.round(9).tolist()))
    kb = sorted(zip(b.point.tolist(), b.cell.tolist(), b.seconds.round(9).tolist()))
    kc = sorted(zip(c.point.tolist(), c.cell.tolist(), c.seconds.round(9).tolist()))
    assert ka == kb == kc and len(ka) > 100


def test_district_of_points_prefers_the_smallest_containing_outline():
    import shapely

    city = shapely.box(0, 0, 10, 10)
    inner = shapely.box(2, 2, 4, 4)
    other = shapely.box(20, 0, 30, 10)
    lon = np.array([1.0, 3.0, 25.0, 50.0, 4.0])
    lat = np.array([1.0, 3.0, 5.0, 5.0, 9.0])
    got = derive.district_of_points(lon, lat, [inner, city, other])
    assert got.tolist() == [1, 0, 2, -1, 1]
