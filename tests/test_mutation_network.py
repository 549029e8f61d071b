"""Network behaviours a worker or planner would notice, pinned against hand-computed answers
(issue 15): a station's service area on a one-way street, the reach of an isochrone that starts
off the road, and custom travel settings.

Expected values are worked out by hand in the comments; nothing is read back from the code under
test. Metres per degree come from geopy's geodesic (tests.test_network_api), not from our code.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, shape

from app.network.graph import Snap, build_graph
from app.network.isochrone import DEFAULT_BUFFER_M, isochrones, reached_pieces
from app.network.service import lower_bound_minutes
from app.network.travel import (
    DEFAULT_CAR_KMH,
    DEFAULT_SETTINGS,
    EBIKE_CLASSES,
    EBIKE_PUSH_CLASSES,
    Mode,
    TravelSettings,
    allowed_classes,
    max_speed_mps,
    obeys_oneway_classes,
)
from tests.test_network_api import LAT, M_PER_DEG_LON, URL, create, east, line, load, north
from tests.test_network_graph import network_from

KMH = {"walk": 5.0, "ebike": 15.0, "car": 20.0}  # car: residential in DEFAULT_CAR_KMH


def mps(mode: str) -> float:
    return KMH[mode] / 3.6


# ------------------------------------------------------------------------------------------
# 1. a station on a one-way street: its service area lies upstream, not downstream
# ------------------------------------------------------------------------------------------


@pytest.fixture
def one_way_block(conn, tmp_path):
    """A 1000 m × 300 m block of residential streets; the south side A→B is one-way eastward.

    A=(0,0) → B=(1000,0) one-way; B–C=(1000,300), C–D=(0,300), D–A two-way. A vehicle just
    east of a point on A→B must go round the block (B, C, D, A) to get back to it.
    """
    a, b = (east(0), LAT), (east(1000), LAT)
    c, d = (east(1000), north(300)), (east(0), north(300))
    load(
        conn,
        tmp_path,
        [
            line([a, b], oneway="yes"),
            line([b, c]),
            line([c, d]),
            line([d, a]),
        ],
    )


def hand_seconds_to_station(mode: str, x: float) -> float:
    """A worker at x on A→B reaching the station at x=500 on the same street (by hand)."""
    if mode == "walk" or x <= 500:
        return abs(500 - x) / mps(mode)
    # downstream: on to B, round the block B→C→D→A (300 + 1000 + 300 m), then A→station
    return ((1000 - x) + 1600 + 500) / mps(mode)


@pytest.mark.parametrize("mode", ["ebike", "car", "walk"])
def test_hf_service_area_on_a_one_way_street_lies_upstream(client, one_way_block, mode):
    sid = create(client, "HF1W", east(500), LAT)
    r = client.get(f"{URL}/stations/{sid}/service-area", params={"mode": mode, "minutes": "1"})
    assert r.status_code == 200, r.text
    area = shape(r.json()["features"][0]["geometry"])
    buffer_m = DEFAULT_BUFFER_M[Mode(mode)]
    reach = 60 * mps(mode)  # ebike 250 m, car 333.3 m, walk 83.3 m along the street

    def drawn(x: float) -> bool:
        return bool(area.contains(Point(east(x), LAT)))

    # upstream (west): workers up to `reach` metres away get there in 1 minute
    assert hand_seconds_to_station(mode, 500 - reach + 5) < 60
    assert drawn(500 - reach + 5)
    assert drawn(500 - reach / 2)
    # beyond the reach plus the drawn frontage, not
    assert hand_seconds_to_station(mode, 500 - reach - buffer_m - 5) > 60
    assert not drawn(500 - reach - buffer_m - 5)
    just_downstream = 500 + buffer_m + 5  # past the station's own frontage
    if mode == "walk":  # walkers ignore the arrow: symmetric
        assert drawn(500 + reach - 5) and not drawn(500 + reach + buffer_m + 5)
    else:  # riding or driving: from just downstream one must go round the block (over 7 min)
        assert hand_seconds_to_station(mode, just_downstream) > 7 * 60
        assert not drawn(just_downstream)
        assert not drawn(500 + reach - 5)

    # the same question asked from the worker's side: network minutes to the nearest station
    for x in (400.0, 600.0):
        got = client.get(
            URL + "/stations/nearest",
            params={"lat": LAT, "lon": east(x), "k": 1, "mode": mode},
        )
        assert got.status_code == 200, got.text
        feat = got.json()["features"][0]
        assert feat["id"] == sid
        want = hand_seconds_to_station(mode, x) / 60
        assert feat["properties"]["minutes"] == pytest.approx(want, abs=0.02)


def test_hf_one_way_station_pieces_core():
    """The same block without the database: reverse isochrone of a station on a one-way edge."""
    lon = np.array([east(0), east(1000), east(1000), east(0)])
    lat = np.array([LAT, LAT, north(300), north(300)])
    edges = [
        (0, 1, 1000.0, "residential", 1),
        (1, 2, 300.0, "residential", 0),
        (2, 3, 1000.0, "residential", 0),
        (3, 0, 300.0, "residential", 0),
    ]
    net = network_from(edges, 4, coords=np.column_stack([lon, lat]))
    for mode in ("ebike", "car"):
        g = build_graph(net, mode)
        (area,) = isochrones(g, Snap(0, 0.5, 0.0), [1], reverse=True)
        reach, width = 60 * mps(mode), DEFAULT_BUFFER_M[Mode(mode)]
        on_street = shapely.intersection(area, LineString([(east(0), LAT), (east(1000), LAT)]))
        west, _, east_end, _ = on_street.bounds
        # drawn from reach + buffer upstream to the buffer downstream of the station
        assert (west - east(0)) * M_PER_DEG_LON == pytest.approx(500 - reach - width, abs=0.5)
        assert (east_end - east(0)) * M_PER_DEG_LON == pytest.approx(500 + width, abs=0.5)


# ------------------------------------------------------------------------------------------
# 2. an isochrone from a point off the road: the off-road walk comes out of the budget
# ------------------------------------------------------------------------------------------


def street_2km():
    """A straight two-way residential street from x=0 to x=2000 m along LAT."""
    coords = np.array([[east(0), LAT], [east(2000), LAT]])
    return network_from([(0, 1, 2000.0, "residential", 0)], 2, coords=coords)


def extent_along_street(poly) -> tuple[float, float]:
    """West and east ends (metres from x=0) of the polygon on the street's axis."""
    cut = shapely.intersection(poly, LineString([(east(-500), LAT), (east(2500), LAT)]))
    west, _, east_end, _ = cut.bounds
    return (west - east(0)) * M_PER_DEG_LON, (east_end - east(0)) * M_PER_DEG_LON


@pytest.mark.parametrize(
    ("mode", "minutes", "off_m"),
    [("walk", 5, 15.0), ("car", 1, 15.0), ("walk", 3, 60.0), ("car", 2, 40.0)],
)
def test_hf_off_road_walk_comes_out_of_the_reach_along_the_street(mode, minutes, off_m):
    """Start `off_m` north of x=1000: reach along the street = (T − off/walk) × speed.

    E.g. 15 m off, car, 1 min: the walk takes 15 / (5/3.6) = 10.8 s, leaving 49.2 s at 20 km/h
    = 273.3 m each way (not 333.3 m: the walk is worth 60 m of driving). Tolerance 0.5 m: the
    buffer's round cap has a vertex exactly on the street's axis, and the UTM scale error at
    114.3° E (~4e-4) moves a ~500 m extent by 0.2 m; the effect tested is 15-60 m (walk) and
    60-160 m (car).
    """
    net = street_2km()
    g = build_graph(net, mode)
    T = minutes * 60.0
    walk_s = off_m / mps("walk")
    reach = (T - walk_s) * mps(mode)
    width = DEFAULT_BUFFER_M[Mode(mode)]
    origin = (east(1000), north(off_m))
    (poly,) = isochrones(g, Snap(0, 0.5, off_m), [minutes], origin_lonlat=origin)
    west, east_end = extent_along_street(poly)
    assert east_end == pytest.approx(1000 + reach + width, abs=0.5)
    assert west == pytest.approx(1000 - reach - width, abs=0.5)
    # and the start point itself is in its own isochrone
    assert poly.contains(Point(*origin))


def test_hf_off_road_isochrone_through_the_api(client, conn, tmp_path):
    """The same through the service, which snaps the point itself (15 m north of x=1000)."""
    load(conn, tmp_path, [line([(east(0), LAT), (east(2000), LAT)])])
    for mode, minutes in (("walk", 5), ("car", 1)):
        r = client.get(
            URL + "/isochrones",
            params={"lat": north(15), "lon": east(1000), "mode": mode, "minutes": minutes},
        )
        assert r.status_code == 200, r.text
        poly = shape(r.json()["features"][0]["geometry"])
        reach = (minutes * 60 - 15 / mps("walk")) * mps(mode)  # walk 401.7 m, car 273.3 m
        width = DEFAULT_BUFFER_M[Mode(mode)]
        west, east_end = extent_along_street(poly)
        assert east_end == pytest.approx(1000 + reach + width, abs=0.5)
        assert west == pytest.approx(1000 - reach - width, abs=0.5)


# ------------------------------------------------------------------------------------------
# 3. custom travel settings are honoured
# ------------------------------------------------------------------------------------------


def test_hf_custom_classes_decide_who_obeys_one_way():
    custom = TravelSettings(
        ebike_classes=frozenset({"residential", "trunk"}),  # a deployment allowing trunk roads
        car_kmh_by_class={"residential": 10.0, "track": 15.0},
    )
    assert obeys_oneway_classes("ebike", custom) == {"residential", "trunk"}
    assert obeys_oneway_classes("car", custom) == {"residential", "track"}
    assert obeys_oneway_classes("walk", custom) == frozenset()
    # defaults, for contrast: trunk is no e-bike road, track no car road
    assert "trunk" not in obeys_oneway_classes("ebike")
    assert "track" not in obeys_oneway_classes("car")

    # what a rider sees: on a one-way trunk road allowed by the deployment, no riding against it
    net = network_from([(0, 1, 300.0, "trunk", 1), (1, 2, 300.0, "track", 1)], 3)
    ebike = build_graph(net, "ebike", custom)
    assert ebike.costs.forward[0] and not ebike.costs.backward[0]
    car = build_graph(net, "car", custom)
    assert car.costs.forward[1] and not car.costs.backward[1]
    assert car.costs.seconds[1] == pytest.approx(300 / (15 / 3.6))


@pytest.mark.parametrize(
    ("mode", "settings", "kmh"),
    [
        ("walk", TravelSettings(walk_kmh=7.0), 7.0),
        ("ebike", TravelSettings(ebike_kmh=30.0), 30.0),
        ("car", TravelSettings(car_kmh_by_class={"residential": 100.0}), 100.0),
        ("car", TravelSettings(car_kmh_by_class={"residential": 3.0}), 5.0),  # walking is faster
        ("car", TravelSettings(walk_kmh=4.0, car_kmh_by_class={"residential": 3.0}), 4.0),
        ("ebike", TravelSettings(ebike_kmh=4.0, walk_kmh=6.0), 6.0),  # pushing is faster
    ],
)
def test_hf_max_speed_follows_the_settings(mode, settings, kmh):
    assert max_speed_mps(mode, settings) == pytest.approx(kmh / 3.6)
    # the straight-line lower bound used by "nearest by network time": 1 km at that speed
    assert lower_bound_minutes(1000.0, Mode(mode), settings) == pytest.approx(60 / kmh)


def test_hf_default_max_speeds():
    assert max_speed_mps("walk") == pytest.approx(5 / 3.6)
    assert max_speed_mps("ebike") == pytest.approx(15 / 3.6)
    assert max_speed_mps("car") == pytest.approx(max(DEFAULT_CAR_KMH.values()) / 3.6)


def test_hf_a_riding_class_listed_as_push_is_ridden():
    s = TravelSettings(ebike_push_classes=EBIKE_PUSH_CLASSES | {"residential", "cycleway"})
    assert s.ebike_push_classes == EBIKE_PUSH_CLASSES
    assert s == DEFAULT_SETTINGS and hash(s) == hash(DEFAULT_SETTINGS)  # same cache key
    only = TravelSettings(
        ebike_classes=frozenset({"residential"}),
        ebike_push_classes=frozenset({"residential", "footway"}),
    )
    assert only.ebike_push_classes == {"footway"}
    assert allowed_classes("ebike", only) == {"residential", "footway"}
    # on the ridden class the rider keeps to the one-way rule at riding speed
    net = network_from([(0, 1, 600.0, "residential", 1), (1, 2, 600.0, "footway", 1)], 3)
    g = build_graph(net, "ebike", only)
    assert g.costs.forward[0] and not g.costs.backward[0]
    assert g.costs.seconds[0] == pytest.approx(600 / (15 / 3.6))
    assert g.costs.backward[1] and g.costs.seconds[1] == pytest.approx(600 / (5 / 3.6))
    assert not EBIKE_CLASSES & s.ebike_push_classes


# ------------------------------------------------------------------------------------------
# travel settings a deployment writes (found by mutation testing)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["walk_kmh", "ebike_kmh", "max_off_network_m"])
@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_a_bad_setting_is_refused_by_name(field, bad):
    with pytest.raises(ValueError) as err:
        TravelSettings(**{field: bad})
    assert str(err.value) == f"{field}: must be a positive number, got {bad!r}"


def test_a_bad_car_speed_is_refused_by_class():
    with pytest.raises(ValueError, match=r"^car_kmh_by_class\.service: must be a positive"):
        TravelSettings(car_kmh_by_class={"primary": 40.0, "service": 0.0})


def test_small_positive_settings_are_accepted():
    """Walking at 0.5 km/h (a worker pushing a cart uphill) or a 0.5 m off-road limit is odd
    but valid: only zero, negative and non-finite values are refused."""
    s = TravelSettings(walk_kmh=0.5, ebike_kmh=0.8, max_off_network_m=0.5)
    assert s.walk_mps == pytest.approx(0.5 / 3.6)
    assert max_speed_mps("walk", s) == pytest.approx(0.5 / 3.6)


def test_settings_do_not_follow_later_edits_of_what_they_were_built_from():
    speeds = {"residential": 20.0}
    walk = {"residential", "footway"}
    ebike = {"residential"}
    s = TravelSettings(car_kmh_by_class=speeds, walk_classes=walk, ebike_classes=ebike)
    speeds["residential"] = 200.0
    walk.add("motorway")
    ebike.add("motorway")
    assert max_speed_mps("car", s) == pytest.approx(20.0 / 3.6)
    assert allowed_classes("walk", s) == {"residential", "footway"}
    assert "motorway" not in allowed_classes("ebike", s)
    with pytest.raises(TypeError):
        s.car_kmh_by_class["residential"] = 1.0  # read-only
    # built from plain sets and dicts, they are the same cache key as from frozensets
    same = TravelSettings(
        car_kmh_by_class={"residential": 20.0},
        walk_classes=frozenset({"residential", "footway"}),
        ebike_classes=frozenset({"residential"}),
    )
    assert s == same and hash(s) == hash(same)


@pytest.mark.parametrize(
    "change",
    [
        {"walk_kmh": 6.0},
        {"ebike_kmh": 16.0},
        {"car_kmh_by_class": {"residential": 21.0}},
        {"walk_classes": frozenset({"residential"})},
        {"ebike_classes": frozenset({"residential"})},
        {"ebike_push_classes": frozenset({"footway"})},
        {"max_off_network_m": 501.0},
    ],
)
def test_each_setting_is_part_of_the_cache_key(change):
    """Graphs are cached per settings: two deployments differing in any one setting must not
    share a graph."""
    changed = TravelSettings(**change)
    assert changed != DEFAULT_SETTINGS
    assert hash(changed) != hash(DEFAULT_SETTINGS)


# ------------------------------------------------------------------------------------------
# reached stretches against a second algorithm (found by mutation testing)
# ------------------------------------------------------------------------------------------
# Cut every edge into K equal sub-edges, run a plain Dijkstra (heapq, written here) from the
# snapped point on that finer graph, and read off how much of each sub-edge is reached within
# T: a point inside a sub-edge is reached only through its two ends, so this is exact. The
# sum over an edge's sub-edges is what `reached_pieces` must cover of that edge.
K = 8


def _fine_distances(graph, snap, reverse, start_node=None):
    """Seconds from the snapped point (reverse: to it) to every node of the finer graph; from
    (to) the node `start_node` instead when given."""
    import heapq

    net, costs = graph.network, graph.costs
    e0, f0, m0 = int(snap[0]), float(snap[1]), float(snap[2])
    adj: dict[object, list[tuple[object, float]]] = {}

    def node(e, i):
        if i == 0:
            return ("n", int(net.src[e]))
        if i == K:
            return ("n", int(net.dst[e]))
        return ("s", e, i)

    for e in range(len(net.src)):
        cs = float(costs.seconds[e]) / K
        for i in range(K):
            a, b = node(e, i), node(e, i + 1)
            # forward search walks arcs as travelled; reverse search walks them backwards
            if costs.forward[e]:
                x, y = (b, a) if reverse else (a, b)
                adj.setdefault(x, []).append((y, cs))
            if costs.backward[e]:
                x, y = (a, b) if reverse else (b, a)
                adj.setdefault(x, []).append((y, cs))
    if start_node is None:
        start = node(e0, round(f0 * K))
        dist = {start: m0 / graph.settings.walk_mps}
    else:
        start = ("n", int(start_node))
        dist = {start: 0.0}
    heap = [(dist[start], 0, start)]
    tie = 1
    while heap:
        d, _, u = heapq.heappop(heap)
        if d > dist.get(u, np.inf):
            continue
        for v, w in adj.get(u, []):
            if d + w < dist.get(v, np.inf):
                dist[v] = d + w
                heapq.heappush(heap, (d + w, tie, v))
                tie += 1
    return dist, node, start


def _oracle_reached(graph, snap, T, reverse):
    net, costs = graph.network, graph.costs
    dist, node, start = _fine_distances(graph, snap, reverse)
    reached = np.zeros(len(net.src))
    for e in range(len(net.src)):
        cs = float(costs.seconds[e]) / K
        if not np.isfinite(cs):
            continue
        # from the left end of a sub-edge the search moves towards the target (forward arc in a
        # forward search, backward arc in a reverse one); from the right end the other way
        left_ok = bool(costs.backward[e] if reverse else costs.forward[e])
        right_ok = bool(costs.forward[e] if reverse else costs.backward[e])
        for i in range(K):
            da = dist.get(node(e, i), np.inf)
            db = dist.get(node(e, i + 1), np.inf)
            a = min(1.0, max(0.0, (T - da) / cs)) if left_ok and da <= T else 0.0
            b = min(1.0, max(0.0, (T - db) / cs)) if right_ok and db <= T else 0.0
            reached[e] += min(1.0, a + b) / K
    return reached, dist[start]


def _covered(pieces, n_edges):
    out = np.zeros(n_edges)
    for e in range(n_edges):
        spans = sorted(
            (float(s), float(t))
            for i, s, t in zip(pieces.edge_index, pieces.start, pieces.end, strict=True)
            if i == e
        )
        lo = hi = None
        for s, t in spans:
            if hi is None or s > hi:
                if hi is not None:
                    out[e] += hi - lo
                lo, hi = s, t
            else:
                hi = max(hi, t)
        if hi is not None:
            out[e] += hi - lo
    return out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("reverse", [False, True])
def test_reached_stretches_match_a_finer_dijkstra(seed, reverse):
    from app.network.graph import multi_source_seconds, point_sources

    rng = np.random.default_rng(seed)
    n = 7
    classes = ["residential", "footway", "primary", "service"]
    edges = []
    for _ in range(11):
        u, v = (int(x) for x in rng.choice(n, size=2, replace=False))
        edges.append(
            (
                u,
                v,
                float(rng.integers(5, 40) * 10),
                str(rng.choice(classes)),
                int(rng.choice([0, 0, 1, -1])),
            )
        )
    net = network_from(edges, n)
    for mode in ("walk", "ebike", "car"):
        g = build_graph(net, mode)
        usable = [e for e in range(len(edges)) if g.costs.forward[e] or g.costs.backward[e]]
        if not usable:
            continue
        e0 = int(rng.choice(usable))
        # strictly inside the edge; points exactly on a crossing (fraction 0 or 1):
        # test_points_on_crossings_match_a_finer_dijkstra in test_mutation_network_graph.py
        snap = Snap(e0, int(rng.integers(1, K)) / K, float(rng.choice([0.0, 15.0, 40.0])))
        T = float(rng.uniform(20, 300))
        seconds = multi_source_seconds(
            g, point_sources(g, snap, reverse=reverse), T, reverse=reverse
        )
        pieces = reached_pieces(g, seconds, T, reverse=reverse, snap=snap)
        want, walk_s = _oracle_reached(g, snap, T, reverse)
        got = _covered(pieces, len(edges))
        assert got == pytest.approx(want, abs=1e-9), (mode, snap, T)
        assert pieces.connector == pytest.approx(min(1.0, T / walk_s) if walk_s > 0 else 1.0)
        assert ((pieces.start >= 0) & (pieces.start <= pieces.end) & (pieces.end <= 1)).all()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("reverse", [False, True])
def test_seconds_at_stations_match_a_finer_dijkstra(seed, reverse):
    """Minutes from a worker to each station (reverse: from each station to a point), the
    stations' own off-road walks included, stations on the worker's own street too."""
    from app.network.graph import multi_source_seconds, point_sources, seconds_at_points

    rng = np.random.default_rng(100 + seed)
    n = 7
    classes = ["residential", "footway", "primary", "service"]
    edges = [
        (
            *(int(x) for x in rng.choice(n, size=2, replace=False)),
            float(rng.integers(5, 40) * 10),
            str(rng.choice(classes)),
            int(rng.choice([0, 0, 1, -1])),
        )
        for _ in range(11)
    ]
    net = network_from(edges, n)
    for mode in ("walk", "ebike", "car"):
        g = build_graph(net, mode)
        usable = [e for e in range(len(edges)) if g.costs.forward[e] or g.costs.backward[e]]
        if not usable:
            continue
        origin = Snap(int(rng.choice(usable)), int(rng.integers(1, K)) / K, 12.0)
        stations = [
            Snap(int(rng.choice(usable)), int(rng.integers(1, K)) / K, float(rng.integers(0, 60)))
            for _ in range(6)
        ] + [Snap(origin[0], int(rng.integers(1, K)) / K, 5.0)]  # on the worker's own street
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
    assert seconds_at_points(g, seconds, [], reverse=reverse).shape == (0,)
    with pytest.raises(ValueError, match=r"^snaps: edge index not in the network$"):
        seconds_at_points(g, seconds, [Snap(len(edges), 0.5, 0.0)], reverse=reverse)


@pytest.mark.parametrize("reverse", [False, True])
def test_minutes_to_the_nearest_station_match_a_finer_dijkstra(reverse):
    """Minutes from every crossing to its nearest station (two stations, each a few seconds
    from its node), with and without a cutoff, against the finer Dijkstra run per station."""
    from app.network.graph import minutes_to_nearest

    rng = np.random.default_rng(7)
    n = 7
    edges = [
        (
            *(int(x) for x in rng.choice(n, size=2, replace=False)),
            float(rng.integers(5, 40) * 10),
            str(rng.choice(["residential", "primary", "footway"])),
            int(rng.choice([0, 0, 1, -1])),
        )
        for _ in range(12)
    ]
    g = build_graph(network_from(edges, n), "ebike")
    stations, init = [2, 5], [30.0, 0.0]

    def fine_minutes(node, station, extra):
        dist, _, _ = _fine_distances(g, Snap(0, 0.0, 0.0), not reverse, start_node=station)
        return (dist.get(("n", node), np.inf) + extra) / 60.0

    want = np.array(
        [min(fine_minutes(v, s, x) for s, x in zip(stations, init, strict=True)) for v in range(n)]
    )
    got = minutes_to_nearest(g, stations, init, reverse=not reverse)
    assert got == pytest.approx(want, abs=1e-9)
    cut = minutes_to_nearest(g, stations, init, cutoff_s=90.0, reverse=not reverse)
    assert cut == pytest.approx(np.where(want * 60 <= 90.0, want, np.inf), abs=1e-9)
    # no initial seconds: the stations are at their nodes
    plain = minutes_to_nearest(g, np.array([[2], [5]]), reverse=not reverse)
    assert plain[2] == 0.0 and plain[5] == 0.0
    with pytest.raises(ValueError, match=r"^initial_seconds: one value per station node$"):
        minutes_to_nearest(g, stations, [1.0])


def test_node_ids_are_looked_up_exactly():
    net = network_from([(0, 1, 100.0, "residential", 0), (1, 2, 100.0, "residential", 0)], 3)
    ids = np.arange(3, dtype=np.int64) * 10 + 7  # network_from's node ids: 7, 17, 27
    assert net.node_index([27, 7, 17]).tolist() == [2, 0, 1]
    assert net.node_index(17).tolist() == [1]
    assert net.node_index(np.array([], dtype=np.int64)).tolist() == []
    for missing in (8, 30, 0, 2**40):
        with pytest.raises(ValueError, match="node id not in the network"):
            net.node_index([ids[0], missing])


def test_network_errors_carry_what_the_client_is_told():
    from app.network.graph import NetworkError, OffNetworkError

    err = OffNetworkError("too far")
    assert (err.detail, err.field, str(err)) == ("too far", "lat,lon", "too far")
    assert NetworkError("x", "origin").field == "origin"


def test_graphs_for_every_mode_use_the_given_settings():
    from app.network.graph import build_graphs

    net = network_from([(0, 1, 300.0, "residential", 0)], 2)
    slow = TravelSettings(walk_kmh=3.0, ebike_kmh=9.0, car_kmh_by_class={"residential": 12.0})
    graphs = build_graphs(net, slow)
    assert set(graphs) == set(Mode)
    for mode, kmh in (("walk", 3.0), ("ebike", 9.0), ("car", 12.0)):
        assert graphs[Mode(mode)].costs.seconds[0] == pytest.approx(300 / (kmh / 3.6))
        assert graphs[Mode(mode)].walk_seconds([3.0]) == pytest.approx([3.0 / (3.0 / 3.6)])


# ------------------------------------------------------------------------------------------
# isochrones as drawn on the map (found by mutation testing)
# ------------------------------------------------------------------------------------------
# A straight street along LAT, crossings every 200 m (lengths as drawn); points are placed
# with geopy's metres per degree (tests.test_network_api), never with our projection.


def _street(highway="residential", oneway=0):
    coords = np.array([[east(x), LAT] for x in (0.0, 200.0, 400.0)])
    edges = [(0, 1, 200.0, highway, oneway), (1, 2, 200.0, highway, oneway)]
    return network_from(edges, 3, coords=coords)


def _at(x, y):
    return Point(east(x), north(y) - north(0) + LAT)


def test_off_road_walk_partly_done_is_drawn_from_the_worker():
    """Standing 100 m off the street, 36 s of walking (50 m at 5 km/h) covers half of the way
    to the road: the area is the worker's half of that walk, 25 m wide on each side."""
    g = build_graph(_street(), "walk")
    snap, origin = Snap(0, 0.5, 100.0), (east(100), north(100))
    (poly,) = isochrones(g, snap, [0.6], origin_lonlat=origin)
    assert poly.covers(_at(100, 100))
    assert poly.covers(_at(100, 35))  # 15 m past the end of the walked 50 m
    assert not poly.covers(_at(100, 20))  # 30 m past it
    assert not poly.covers(_at(100, 0))  # the road is not reached


def test_off_road_walk_fully_done_draws_the_whole_way_to_the_road():
    """2 minutes: 72 s to reach the road, then 48 s (66.7 m) each way along it."""
    g = build_graph(_street(), "walk")
    snap, origin = Snap(0, 0.5, 100.0), (east(100), north(100))
    (poly,) = isochrones(g, snap, [2.0], origin_lonlat=origin)
    assert poly.covers(_at(100, 50))  # the middle of the way to the road
    assert poly.covers(_at(40, 0)) and poly.covers(_at(160, 0))
    assert not poly.covers(_at(0, -30)) and not poly.covers(_at(200, -30))


def test_one_way_street_forward_by_default_and_reverse_on_request():
    """A car at x = 100 m on a street one-way eastwards: in 30 s (166.7 m at 20 km/h) it gets
    to x = 266.7 m, and only cars from x >= 0 m (the street's start) get to it."""
    g = build_graph(_street(oneway=1), "car")
    snap = Snap(0, 0.5, 0.0)
    (ahead,) = isochrones(g, snap, [0.5])
    assert ahead.covers(_at(250, 0)) and not ahead.covers(_at(20, 0))
    (behind,) = isochrones(g, snap, [0.5], reverse=True)
    assert behind.covers(_at(20, 0)) and not behind.covers(_at(250, 0))
    # 30 m beside the street: inside the 60 m car frontage, outside a 10 m one
    assert ahead.covers(_at(150, 30))
    (narrow,) = isochrones(g, snap, [0.5], buffer_m=10.0)
    assert not narrow.covers(_at(150, 30)) and narrow.covers(_at(150, 5))


def test_isochrones_come_back_in_the_order_asked_and_nested():
    g = build_graph(_street(), "walk")
    big, small = isochrones(g, Snap(0, 0.5, 0.0), [2.0, 0.5])
    assert big.area > small.area
    assert big.buffer(1e-9).covers(small)
    (tiny,) = isochrones(g, Snap(0, 0.5, 0.0), [0.01])  # 0.6 s: a dot, but valid
    assert not tiny.is_empty


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        ([], "minutes: give at least one value"),
        ([0.0], "minutes: every value must be a positive number"),
        ([5.0, -1.0], "minutes: every value must be a positive number"),
        ([float("nan")], "minutes: every value must be a positive number"),
        ([float("inf")], "minutes: every value must be a positive number"),
    ],
)
def test_bad_minutes_are_refused(minutes, message):
    g = build_graph(_street(), "walk")
    with pytest.raises(ValueError) as err:
        isochrones(g, Snap(0, 0.5, 0.0), minutes)
    assert str(err.value) == message


def test_small_holes_are_filled_and_large_ones_kept():
    from shapely.geometry import MultiPolygon, Polygon

    from app.network.isochrone import _fill_holes

    small = [(10, 10), (10.5, 10), (10.5, 11), (10, 11)]  # 0.5 m²
    large = [(50, 50), (52, 50), (52, 52), (50, 52)]  # 4 m²
    poly = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)], [small, large])
    filled = _fill_holes(poly, 1.0)
    assert len(filled.interiors) == 1 and filled.area == pytest.approx(10_000 - 4)
    assert len(_fill_holes(poly, 4.0).interiors) == 1  # exactly 4 m² is kept
    moved = shapely.affinity.translate(poly, 500, 0)
    multi = _fill_holes(MultiPolygon([poly, moved]), 1.0)
    assert [len(p.interiors) for p in multi.geoms] == [1, 1]
    assert _fill_holes(Point(0, 0), 1.0).equals(Point(0, 0))


# ------------------------------------------------------------------------------------------
# inputs refused or accepted at the edges (found by mutation testing)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        # UTM zone z spans 6 degrees from -180 + 6 (z - 1): zone 50 is 114-120 E (Wuhan)
        (114.3, 30.6, 32650),
        (114.0, 30.6, 32650),
        (119.99, 30.6, 32650),
        (120.0, 30.6, 32651),
        (-180.0, 10.0, 32601),
        (180.0, 10.0, 32601),  # the antimeridian wraps to zone 1
        (179.99, 10.0, 32660),
        (114.3, 0.0, 32650),  # the equator belongs to the north
        (114.3, 0.5, 32650),
        (151.2, -33.9, 32756),  # Sydney: south, zone 56
    ],
)
def test_utm_zone_of_a_network(lon, lat, epsg):
    from app.network.graph import utm_epsg

    assert utm_epsg(lon, lat) == epsg


def test_a_snapped_point_is_checked():
    from app.network.graph import EdgeNotUsableError, OffNetworkError, point_sources

    g = build_graph(_street(), "walk")
    for bad, message in [
        (Snap(2, 0.5, 0.0), "snap: edge index 2 is not in the network"),
        (Snap(-1, 0.5, 0.0), "snap: edge index -1 is not in the network"),
        (Snap(0, -0.5, 0.0), "snap: fraction -0.5 must lie in 0..1"),
        (Snap(0, 1.5, 0.0), "snap: fraction 1.5 must lie in 0..1"),
        (Snap(0, 0.5, -1.0), "snap: off-network metres -1.0 must be ≥ 0"),
        (Snap(0, 0.5, float("inf")), "snap: off-network metres inf must be ≥ 0"),
        (Snap(0, 0.5, float("nan")), "snap: off-network metres nan must be ≥ 0"),
    ]:
        with pytest.raises(ValueError) as err:
            point_sources(g, bad)
        assert str(err.value) == message
    # the ends of the edge, and exactly the configured 500 m off the road, are fine
    assert len(point_sources(g, Snap(0, 1.0, 500.0))) == 2
    assert len(point_sources(g, Snap(0, 0.0, 0.0))) == 2
    with pytest.raises(OffNetworkError) as err:
        point_sources(g, Snap(0, 0.5, 500.5))
    assert err.value.detail == (
        "the point is 500 m from the nearest road usable on foot; at most 500 m is allowed"
    )
    car = build_graph(_street("footway"), "car")
    with pytest.raises(EdgeNotUsableError) as err:
        point_sources(car, Snap(1, 0.5, 0.0))
    assert "(edge 1001, footway)" in err.value.detail
    assert "allowed_classes('car')" in err.value.detail


def test_search_defaults_and_cutoffs():
    from app.network.graph import multi_source_search

    g = build_graph(_street(oneway=1), "car")  # one-way eastwards, 36 s per block
    fwd = multi_source_search(g, [(1, 0.0)])
    assert fwd.nearest is None  # not asked for
    assert fwd.seconds[2] == pytest.approx(36.0) and fwd.seconds[0] == np.inf  # forward
    assert multi_source_search(g, [(1, 0.0)], 0.0).seconds.tolist() == [np.inf, 0.0, np.inf]
    half = multi_source_search(g, [(1, 0.5)], 0.5)  # a cutoff below one second is fine
    assert half.seconds.tolist() == [np.inf, 0.5, np.inf]
    with pytest.raises(ValueError, match="cutoff_s: must be ≥ 0"):
        multi_source_search(g, [(1, 0.0)], -1.0)


def test_isochrones_from_seconds_defaults_and_limits():
    from app.network.graph import multi_source_seconds, point_sources
    from app.network.isochrone import isochrones_from_seconds, polygon_from_pieces

    g = build_graph(_street(oneway=1), "car")
    snap = Snap(0, 0.5, 0.0)
    secs = multi_source_seconds(g, point_sources(g, snap), 30.0)
    (ahead,) = isochrones_from_seconds(g, secs, [30.0], snap=snap)  # forward by default
    assert ahead.covers(_at(250, 0)) and not ahead.covers(_at(20, 0))
    # a zero budget and one below a second are allowed
    zero, small = isochrones_from_seconds(g, secs, [0.0, 0.5], snap=snap)
    assert small.covers(_at(100, 0)) and zero.covers(_at(100, 0))
    # nothing reached with a zero budget from 50 m off the road: no area at all
    off = Snap(0, 0.5, 50.0)
    secs_off = multi_source_seconds(g, point_sources(g, off), 30.0)
    (none,) = isochrones_from_seconds(
        g, secs_off, [0.0], snap=off, origin_lonlat=(east(100), north(50))
    )
    assert none.is_empty
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError) as err:
            isochrones_from_seconds(g, secs, [10.0, bad])
        assert str(err.value) == "thresholds: must be finite and ≥ 0"
    (narrow,) = isochrones_from_seconds(g, secs, [30.0], snap=snap, buffer_m=0.5)
    assert narrow.covers(_at(150, 0)) and not narrow.covers(_at(150, 5))
    pieces = reached_pieces(g, secs, 30.0, snap=snap)
    for bad in (0.0, -5.0, float("nan")):
        with pytest.raises(ValueError) as err:
            polygon_from_pieces(g, pieces, buffer_m=bad)
        assert str(err.value) == "buffer_m: must be > 0"


def test_search_inputs_and_who_is_nearest():
    from app.network.graph import multi_source_search

    g = build_graph(_street(), "walk")  # 0 -144 s- 1 -144 s- 2, two-way
    for bad, message in [
        ([(3, 0.0)], "sources: node indices must lie in 0..2"),
        ([(-1, 0.0)], "sources: node indices must lie in 0..2"),
        ([(0, -1.0)], "sources: initial seconds must be ≥ 0"),
        ([(0, float("nan"))], "sources: initial seconds must be ≥ 0"),
    ]:
        with pytest.raises(ValueError) as err:
            multi_source_search(g, bad)
        assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        multi_source_search(g, [(0, 0.0)], -0.5)
    assert str(err.value) == "cutoff_s: must be ≥ 0"
    # two stations: at node 0 (30 s from its door) and at node 2 (no extra); node 1 is
    # 144 + 30 = 174 s from the first and 144 s from the second
    res = multi_source_search(g, [(0, 30.0), (2, 0.0)], with_nearest=True)
    assert res.seconds.tolist() == pytest.approx([30.0, 144.0, 0.0])
    assert res.nearest.tolist() == [0, 1, 1]
    # a cutoff of exactly 144 s keeps node 1, one of 143 s drops it
    assert multi_source_search(g, [(2, 0.0)], 144.0).seconds[1] == pytest.approx(144.0)
    cut = multi_source_search(g, [(0, 30.0), (2, 0.0)], 143.0, with_nearest=True)
    assert cut.seconds[1] == np.inf and cut.nearest.tolist() == [0, -1, 1]
    # a source whose own seconds equal the cutoff still counts
    assert multi_source_search(g, [(0, 10.0)], 10.0).seconds[0] == 10.0
    # equal initial seconds; an unreachable node is -1
    lone = network_from([(0, 1, 100.0, "residential", 0)], 3)
    res = multi_source_search(build_graph(lone, "walk"), [(0, 5.0), (1, 5.0)], with_nearest=True)
    assert res.nearest.tolist() == [0, 1, -1] and res.seconds[2] == np.inf


def test_edge_costs_refuse_what_they_cannot_use():
    from app.network.travel import edge_costs

    for args, message in [
        (
            ([1.0, 2.0], ["residential"], [0, 0]),
            "length_m, highway and oneway must have the same length",
        ),
        (([-1.0], ["residential"], [0]), "length_m: every length must be finite and ≥ 0"),
        (([float("inf")], ["residential"], [0]), "length_m: every length must be finite and ≥ 0"),
        (([1.0], ["residential"], [2]), "oneway: values must be 0, 1 or -1"),
    ]:
        with pytest.raises(ValueError) as err:
            edge_costs("car", *args)
        assert str(err.value) == message
    none = edge_costs("car", [], [], [])
    assert none.seconds.shape == none.forward.shape == none.backward.shape == (0,)
    # one-way values given as floats are read as the integers they are
    c = edge_costs("car", [200.0, 200.0], ["residential", "footway"], [-1.0, 0.0])
    assert c.forward.tolist() == [False, False] and c.backward.tolist() == [True, False]
    assert c.seconds.tolist() == pytest.approx([200 / (20 / 3.6), np.inf])
