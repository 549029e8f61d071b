"""The routing core (`app.network.graph`) at the edges that mutation testing found unpinned
(issue 15): tiny and empty networks, who is nearest when a crossing is reached by nobody,
stations read off a finished search, a point standing exactly on a crossing of a one-way street,
the seconds matrix, and the network arrays checked before use.

Expected values are worked out by hand in the comments (walking 5 km/h = 0.72 s per metre,
cars on residential streets 20 km/h = 0.18 s per metre); nothing is read back from the code
under test. DB-free, so `scripts/mutation.sh network` runs these.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.network.graph import (
    Snap,
    build_graph,
    minutes_to_nearest,
    multi_source_search,
    multi_source_seconds,
    point_sources,
    seconds_at_points,
    sources_from_points,
)
from app.network.isochrone import reached_pieces
from tests.test_network_graph import network_from

WALK_S_PER_M = 3.6 / 5.0  # 0.72 s per metre on foot
CAR_S_PER_M = 3.6 / 20.0  # 0.18 s per metre on a residential street


# ------------------------------------------------------------------------------------------
# node ids of tiny networks
# ------------------------------------------------------------------------------------------


def test_node_ids_of_a_one_crossing_network_are_found():
    """A network of one crossing and no streets (a freshly started import, a clipped extract)."""
    net = network_from([], 1)  # the crossing's id is 7
    assert net.node_index([7]).tolist() == [0]
    assert net.node_index(7).tolist() == [0]
    with pytest.raises(ValueError, match=r"^node id not in the network$"):
        net.node_index([8])


def test_node_ids_of_an_empty_network_are_refused_by_name():
    net = network_from([], 0)
    assert net.node_index([]).tolist() == []
    with pytest.raises(ValueError, match=r"^node id not in the network$"):
        net.node_index([7])


# ------------------------------------------------------------------------------------------
# who is nearest
# ------------------------------------------------------------------------------------------


def test_a_crossing_nobody_reaches_has_no_nearest_station():
    """Two stations with different walks from their doors (5 s and 0 s) on a 100 m street,
    and a crossing on no street at all: it has no nearest station (-1), with or without a
    cutoff."""
    g = build_graph(network_from([(0, 1, 100.0, "residential", 0)], 3), "walk")
    for cutoff in (None, 1000.0):
        res = multi_source_search(g, [(0, 5.0), (1, 0.0)], cutoff, with_nearest=True)
        # crossing 0: 5 s from the first station, 72 s from the second
        assert res.seconds.tolist() == pytest.approx([5.0, 0.0, np.inf])
        assert res.nearest is not None
        assert res.nearest.tolist() == [0, 1, -1]


def test_no_stations_give_no_sources_and_an_empty_owner_list_usable_as_an_index():
    g = build_graph(network_from([(0, 1, 100.0, "residential", 0)], 2), "walk")
    sources, owner = sources_from_points(g, [])
    assert sources == []
    names = np.array(["A", "B"])
    assert names[owner].tolist() == []  # integer positions, even when there are none


# ------------------------------------------------------------------------------------------
# stations read off a finished search
# ------------------------------------------------------------------------------------------


def _one_way_street():
    """A -400 m- B, residential, one-way A → B (cars 72 s, walkers 288 s)."""
    return network_from([(0, 1, 400.0, "residential", 1)], 2)


def test_stations_are_read_from_the_worker_by_default():
    """A car at 100 m along A → B; a station at 300 m: 200 m ahead, 36 s; the station is
    reached through B only by going against the arrow, so nothing else counts."""
    g = build_graph(_one_way_street(), "car")
    worker, station = Snap(0, 0.25, 0.0), Snap(0, 0.75, 0.0)
    seconds = multi_source_seconds(g, point_sources(g, worker))
    (got,) = seconds_at_points(g, seconds, [station], origin=worker)
    assert got == pytest.approx(200 * CAR_S_PER_M)


def test_a_station_fraction_just_outside_the_street_is_read_as_its_end():
    """Snapping in SQL can round a fraction a little past 0 or 1; it means the street's end.
    Walker at A (0 m), street A -400 m- B two-way: a station at "-0.2" is at A (0 s), at "1.5"
    at B (288 s), never before A or past B."""
    g = build_graph(network_from([(0, 1, 400.0, "residential", 0)], 2), "walk")
    seconds = multi_source_seconds(g, [(0, 0.0)])
    got = seconds_at_points(g, seconds, [Snap(0, -0.2, 0.0), Snap(0, 1.5, 0.0)])
    assert got.tolist() == pytest.approx([0.0, 400 * WALK_S_PER_M])


def test_minutes_to_the_nearest_station_take_stations_as_a_column_too():
    """Stations at crossings 0 and 2 of A -100 m- B -100 m- C, 30 s and 0 s from their doors,
    given as column vectors (as read from a table): B is 72 s from C, 102 s from A."""
    g = build_graph(
        network_from([(0, 1, 100.0, "residential", 0), (1, 2, 100.0, "residential", 0)], 3), "walk"
    )
    got = minutes_to_nearest(g, np.array([[0], [2]]), np.array([[30.0], [0.0]]))
    assert got.tolist() == pytest.approx([30 / 60, 72 / 60, 0.0])


# ------------------------------------------------------------------------------------------
# a point exactly on a crossing of a one-way street (snapping returns fraction 0 or 1 for a
# point nearest the crossing): it stands at the crossing, whatever the street's arrow
# ------------------------------------------------------------------------------------------


def _block():
    """A 400 m × 100 m block of residential streets, the south side one-way eastwards.

    A(0) → B(1) 400 m one-way; B–C(2) 100 m, C–D(3) 400 m, D–A 100 m two-way; E(4) 100 m east
    of B on a two-way street B–E. By car (0.18 s/m), round the block from B back to A is
    B→C→D→A = 600 m = 108 s.
    """
    edges = [
        (0, 1, 400.0, "residential", 1),
        (1, 2, 100.0, "residential", 0),
        (2, 3, 400.0, "residential", 0),
        (3, 0, 100.0, "residential", 0),
        (1, 4, 100.0, "residential", 0),
    ]
    return network_from(edges, 5)


def test_a_station_on_the_downstream_corner_is_reached_from_that_corner():
    """A station snapped to A → B at its very end (B), 10 m off the road: a driver at B is
    7.2 s (the walk) from it, one at E 18 s + 7.2 s; before, both had to go round the block
    to A and along A → B."""
    g = build_graph(_block(), "car")
    station = Snap(0, 1.0, 10.0)
    walk = 10 * WALK_S_PER_M
    sources = point_sources(g, station, reverse=True)
    assert sorted(sources) == [(0, pytest.approx(walk + 72.0)), (1, pytest.approx(walk))]
    to_station = multi_source_seconds(g, sources, reverse=True)
    assert to_station[1] == pytest.approx(walk)
    assert to_station[4] == pytest.approx(walk + 100 * CAR_S_PER_M)
    # from C: 100 m to B
    assert to_station[2] == pytest.approx(walk + 100 * CAR_S_PER_M)


def test_a_worker_on_the_upstream_corner_leaves_from_that_corner():
    """A driver snapped to A → B at its very start (A): from A she may drive west-about
    (A→D, 100 m, 18 s) as well as along A → B; before, only along A → B."""
    g = build_graph(_block(), "car")
    worker = Snap(0, 0.0, 0.0)
    assert sorted(point_sources(g, worker)) == [(0, 0.0), (1, pytest.approx(72.0))]
    seconds = multi_source_seconds(g, point_sources(g, worker))
    assert seconds[3] == pytest.approx(18.0)  # D
    assert seconds[2] == pytest.approx(500 * CAR_S_PER_M)  # C: via D (100 + 400 m) or via B
    # the worker on the corner, a station on the corner of the other street: 0 s apart
    got = seconds_at_points(g, seconds, [Snap(3, 1.0, 0.0), Snap(0, 0.0, 0.0)], origin=worker)
    assert got.tolist() == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize("reverse", [False, True])
def test_stations_on_the_ends_of_one_way_streets_are_read_at_the_crossing(reverse):
    """Stations exactly at A or B of the one-way A → B, read off a search from a driver at
    E (forward) or towards a point at E (reverse): the crossing's own time, plus the walk."""
    g = build_graph(_block(), "car")
    at_e = Snap(4, 1.0, 0.0)
    seconds = multi_source_seconds(g, point_sources(g, at_e, reverse=reverse), reverse=reverse)
    stations = [Snap(0, 0.0, 0.0), Snap(0, 1.0, 5.0)]
    got = seconds_at_points(g, seconds, stations, reverse=reverse, origin=at_e)
    # E–B 100 m; B to A forward: round the block B→C→D→A 600 m; A to B: 400 m along the arrow
    e_to_a, a_to_e = (100 + 600) * CAR_S_PER_M, (400 + 100) * CAR_S_PER_M
    want_a = a_to_e if reverse else e_to_a
    assert got.tolist() == pytest.approx([want_a, 100 * CAR_S_PER_M + 5 * WALK_S_PER_M])


def _random_streets(rng):
    n, classes = 7, ["residential", "footway", "primary", "service"]
    edges = [
        (
            *(int(x) for x in rng.choice(n, size=2, replace=False)),
            float(rng.integers(5, 40) * 10),
            str(rng.choice(classes)),
            int(rng.choice([0, 0, 1, -1])),
        )
        for _ in range(11)
    ]
    return edges, network_from(edges, n)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("reverse", [False, True])
def test_points_on_crossings_match_a_finer_dijkstra(seed, reverse):
    """Workers and stations snapped exactly onto an end of their street (fraction 0 or 1), on
    random networks with one-way streets: the finer Dijkstra of tests.test_mutation_network
    starts (ends) at that crossing itself. Minutes to each station and the reached stretches
    must agree with it."""
    from tests.test_mutation_network import K, _covered, _fine_distances, _oracle_reached

    rng = np.random.default_rng(300 + seed)
    edges, net = _random_streets(rng)
    for mode in ("walk", "ebike", "car"):
        g = build_graph(net, mode)
        usable = [e for e in range(len(edges)) if g.costs.forward[e] or g.costs.backward[e]]
        if not usable:
            continue
        origin = Snap(int(rng.choice(usable)), float(rng.integers(0, 2)), 12.0)
        stations = [
            Snap(int(rng.choice(usable)), float(rng.integers(0, 2)), float(rng.integers(0, 60)))
            for _ in range(6)
        ] + [Snap(origin[0], 1.0 - origin[1], 5.0)]  # the other end of the worker's street
        seconds = multi_source_seconds(
            g, point_sources(g, origin, reverse=reverse), None, reverse=reverse
        )
        got = seconds_at_points(g, seconds, stations, reverse=reverse, origin=origin)
        dist, node, _ = _fine_distances(g, origin, reverse)
        want = [
            dist.get(node(s[0], round(s[1] * K)), np.inf) + s[2] / g.settings.walk_mps
            for s in stations
        ]
        assert got == pytest.approx(want, abs=1e-6), (mode, origin, stations)

        T = float(rng.uniform(20, 300))
        pieces = reached_pieces(g, seconds, T, reverse=reverse, snap=origin)
        reached, _ = _oracle_reached(g, origin, T, reverse)
        assert _covered(pieces, len(edges)) == pytest.approx(reached, abs=1e-9), (mode, T)


def test_a_station_on_the_end_of_a_footway_is_reached_at_that_crossing_by_car():
    """A -100 m residential- B -50 m footway- C. A driver at A; stations snapped onto the
    footway: at its B end (18 s, B is on the car's street), in its middle or at its C end
    (no car gets there)."""
    net = network_from([(0, 1, 100.0, "residential", 0), (1, 2, 50.0, "footway", 0)], 3)
    g = build_graph(net, "car")
    seconds = multi_source_seconds(g, [(0, 0.0)])
    got = seconds_at_points(g, seconds, [Snap(1, 0.0, 0.0), Snap(1, 0.5, 0.0), Snap(1, 1.0, 0.0)])
    assert got.tolist() == [pytest.approx(100 * CAR_S_PER_M), np.inf, np.inf]


def test_no_station_within_reach_leaves_every_crossing_without_a_nearest_one():
    """No stations, or only stations whose own walk (100 s) is past the 60 s cutoff: every
    crossing unreached; who is nearest is -1 when asked for and not computed otherwise."""
    g = build_graph(network_from([(0, 1, 100.0, "residential", 0)], 2), "walk")
    for sources, cutoff in (([], None), ([(0, 100.0)], 60.0)):
        plain = multi_source_search(g, sources, cutoff)
        assert plain.seconds.tolist() == [np.inf, np.inf] and plain.nearest is None
        asked = multi_source_search(g, sources, cutoff, with_nearest=True)
        assert asked.nearest is not None and asked.nearest.tolist() == [-1, -1]


def test_a_fraction_rounded_a_hair_past_the_end_is_the_crossing():
    """Snapping can return 1.0000000001 for a point at B, the downstream end of the one-way
    A → B: it is at B, so a driver at B reaches it by walking only (10 m, 7.2 s)."""
    g = build_graph(_block(), "car")
    sources = point_sources(g, Snap(0, 1.0 + 1e-10, 10.0), reverse=True)
    assert sorted(sources) == [(0, pytest.approx(7.2 + 72.0)), (1, pytest.approx(7.2))]


# ------------------------------------------------------------------------------------------
# the travel-seconds matrices
# ------------------------------------------------------------------------------------------


def test_the_seconds_matrix_keeps_the_fastest_of_parallel_streets():
    """A -100 m- B, then two streets from B to C: 300 m and 100 m (walking 216 s and 72 s),
    and C -50 m- D one-way C → D (car). The matrix says 72 s for B → C, both ways, in the
    forward matrix (the default) and its transpose; D → C has no arc for the car."""
    edges = [
        (0, 1, 100.0, "residential", 0),
        (1, 2, 300.0, "residential", 0),
        (2, 1, 100.0, "residential", 0),
        (2, 3, 50.0, "residential", 1),
    ]
    walk = build_graph(network_from(edges, 4), "walk")
    fwd, back = walk.csgraph(), walk.csgraph(reverse=True)
    assert fwd[1, 2] == pytest.approx(72.0) and fwd[2, 1] == pytest.approx(72.0)
    assert back[2, 1] == pytest.approx(72.0) and back[1, 2] == pytest.approx(72.0)
    assert fwd[0, 1] == pytest.approx(72.0) and fwd.nnz == 6  # A-B, B-C, C-D, each both ways
    car = build_graph(network_from(edges, 4), "car")
    assert car.csgraph()[2, 3] == pytest.approx(9.0) and car.csgraph()[3, 2] == 0.0  # no arc
    assert car.csgraph(reverse=True)[3, 2] == pytest.approx(9.0)


# ------------------------------------------------------------------------------------------
# a network read from the database is checked before use
# ------------------------------------------------------------------------------------------


def _arrays(**change):
    """Two streets A(7) -100 m- B(17) -200 m- C(27), as the database hands them over."""
    base = {
        "edge_id": [1001, 1002],
        "source": [7, 17],
        "target": [17, 27],
        "length_m": [100.0, 200.0],
        "highway": ["residential", "footway"],
        "oneway": [0, 1],
        "node_id": [7, 17, 27],
        "lon": [114.30, 114.301, 114.302],
        "lat": [30.55, 30.55, 30.55],
    }
    base.update(change)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": [7]}, "source: expected 2 values, one per edge"),
        ({"target": [17, 27, 7]}, "target: expected 2 values, one per edge"),
        ({"length_m": [100.0]}, "length_m: expected 2 values, one per edge"),
        ({"highway": ["residential"]}, "highway: expected 2 values, one per edge"),
        ({"oneway": [0, 1, 0]}, "oneway: expected 2 values, one per edge"),
        ({"lon": [114.30, 114.301]}, "node_id, lon and lat must be 1-D arrays of the same length"),
        ({"lat": [30.55]}, "node_id, lon and lat must be 1-D arrays of the same length"),
        (
            {"node_id": [[7, 17, 27]], "lon": [[114.3, 114.301, 114.302]], "lat": [[30.55] * 3]},
            "node_id, lon and lat must be 1-D arrays of the same length",
        ),
        ({"node_id": [7, 17, 7]}, "node_id: node ids must be unique"),
        ({"length_m": [100.0, -1.0]}, "length_m: every length must be finite and ≥ 0"),
        ({"length_m": [float("inf"), 1.0]}, "length_m: every length must be finite and ≥ 0"),
        ({"length_m": [float("nan"), 1.0]}, "length_m: every length must be finite and ≥ 0"),
        ({"oneway": [0, 2]}, "oneway: values must be 0, 1 or -1"),
        ({"oneway": [-2, 0]}, "oneway: values must be 0, 1 or -1"),
        ({"source": [7, 18]}, "source: node ids not in the node table, e.g. [18]"),
        ({"target": [5, 99]}, "target: node ids not in the node table, e.g. [5, 99]"),
        ({"target": [17, 28]}, "target: node ids not in the node table, e.g. [28]"),
    ],
)
def test_a_malformed_network_is_refused_naming_what_is_wrong(change, message):
    from app.network.graph import RoadNetwork

    with pytest.raises(ValueError) as err:
        RoadNetwork.from_arrays(**_arrays(**change))
    assert str(err.value) == message


def test_a_well_formed_network_is_taken_as_given():
    """Zero-length streets and every one-way value are fine; node order is the table's."""
    from app.network.graph import RoadNetwork

    net = RoadNetwork.from_arrays(**_arrays(length_m=[0.0, 200.0], oneway=[-1, 1]))
    assert (net.n_nodes, net.n_edges) == (3, 2)
    assert net.src.tolist() == [0, 1] and net.dst.tolist() == [1, 2]
    shuffled = RoadNetwork.from_arrays(
        **_arrays(node_id=[27, 7, 17], lon=[114.302, 114.30, 114.301], lat=[30.55] * 3)
    )
    assert shuffled.src.tolist() == [1, 2] and shuffled.dst.tolist() == [2, 0]
    with pytest.raises(ValueError) as err:
        RoadNetwork.from_arrays(**_arrays(), geometry=[None])
    assert str(err.value) == "geometry: expected 2 LineStrings, one per edge"


def test_networks_of_one_crossing_or_none_are_checked_too():
    from app.network.graph import RoadNetwork

    one = {"node_id": [7], "lon": [114.3], "lat": [30.55]}
    street = {"edge_id": [1], "length_m": [0.0], "highway": ["residential"], "oneway": [0]}
    loop = RoadNetwork.from_arrays(**street, source=[7], target=[7], **one)
    assert loop.src.tolist() == [0] and loop.dst.tolist() == [0]
    with pytest.raises(ValueError) as err:
        RoadNetwork.from_arrays(**street, source=[7], target=[8], **one)
    assert str(err.value) == "target: node ids not in the node table, e.g. [8]"
    with pytest.raises(ValueError) as err:
        RoadNetwork.from_arrays(**street, source=[7], target=[7], node_id=[], lon=[], lat=[])
    assert str(err.value) == "source: node ids not in the node table, e.g. [7]"


def test_at_most_five_missing_node_ids_are_named():
    from app.network.graph import RoadNetwork

    street = {"length_m": [1.0] * 6, "highway": ["residential"] * 6, "oneway": [0] * 6}
    with pytest.raises(ValueError) as err:
        RoadNetwork.from_arrays(
            edge_id=range(6),
            source=[7] * 6,
            target=[1, 2, 3, 4, 5, 6],
            **street,
            node_id=[7],
            lon=[114.3],
            lat=[30.55],
        )
    assert str(err.value) == "target: node ids not in the node table, e.g. [1, 2, 3, 4, 5]"


def test_the_streets_drawn_shape_is_kept():
    """A street with a bend (east 100 m, then north 100 m) is 200 m long as drawn, not the
    141 m of the straight line between its ends; without a shape, the straight line."""
    from shapely.geometry import LineString

    from app.network.graph import RoadNetwork
    from tests.test_network_api import east, north

    bend = LineString([(east(0), north(0)), (east(100), north(0)), (east(100), north(100))])
    arrays = _arrays(
        edge_id=[1],
        source=[7],
        target=[17],
        length_m=[200.0],
        highway=["residential"],
        oneway=[0],
        node_id=[7, 17],
        lon=[east(0), east(100)],
        lat=[north(0), north(100)],
    )
    drawn = RoadNetwork.from_arrays(**arrays, geometry=[bend])
    assert drawn.geometry[0].equals(bend)
    assert drawn.metric_geometry[0].length == pytest.approx(200.0, abs=0.5)
    straight = RoadNetwork.from_arrays(**arrays)
    assert straight.metric_geometry[0].length == pytest.approx(100 * 2**0.5, abs=0.5)


def test_a_network_passed_on_as_its_arrays_is_the_same_network():
    """The coverage engine hands the network to its compute process as the stored arrays
    (edge and node ids, not indices): rebuilt from them, every street joins the same
    crossings and takes the same time."""
    from app.network.graph import RoadNetwork

    net = RoadNetwork.from_arrays(
        **_arrays(node_id=[27, 7, 17], lon=[114.302, 114.30, 114.301], lat=[30.55] * 3)
    )
    again = RoadNetwork.from_arrays(
        edge_id=net.edge_id,
        source=net.source_id,
        target=net.target_id,
        length_m=net.length_m,
        highway=net.highway,
        oneway=net.oneway,
        node_id=net.node_id,
        lon=net.lon,
        lat=net.lat,
    )
    assert again.source_id.tolist() == [7, 17] and again.target_id.tolist() == [17, 27]
    assert again.src.tolist() == net.src.tolist() == [1, 2]
    assert again.dst.tolist() == net.dst.tolist() == [2, 0]
