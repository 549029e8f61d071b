"""Issue 15 (mutation testing): the numbers a planner reads off a coverage run, DB-free.

Every expected value is worked out by hand from the definitions in app/coverage/derive.py's
docstring (shares of area and demand, stations per 10k demand, median and demand-weighted mean
minutes capped at 120, over-dense cells, gaps ranked by uncovered demand).
"""

from __future__ import annotations

import h3
import numpy as np
import pytest
import shapely

from app.coverage import derive
from app.coverage.analysis import Reach
from tests.test_mutation_edges import _model

INF = float("inf")
# five cells: minutes to the nearest station, demand, area (km²)
MINUTES = [2.0, 7.1234, 12.0, INF, 20.0]
WEIGHTS = [1.0, 2.0, 3.0, 4.0, 0.5]
AREA = np.array([0.1, 0.2, 0.3, 0.4, 0.1234])


def _dense_reach():
    # cell 0 is reached by stations 0, 1, 2 within 4 minutes (over-dense: >= 3 within 5);
    # cell 1 by two stations only
    return Reach(
        point=np.array([0, 1, 2, 0, 1]),
        cell=np.array([0, 0, 0, 1, 1]),
        seconds=np.array([60.0, 120.0, 240.0, 60.0, 120.0]),
        n_points=3,
        n_cells=5,
        cutoff_s=900.0,
    )


def test_area_summary_of_five_cells_by_hand():
    m = _model(MINUTES, WEIGHTS, _dense_reach(), n_points=3)
    s = derive.area_summary(m, np.ones(5, bool), AREA, (5, 10, 15), 3)
    total_a, total_w = 1.1234, 10.5
    assert s == {
        "cells": 5,
        "area_km2": 1.123,
        "demand": total_w,
        "stations": 3,
        "stations_per_10k_demand": 2857.1429,  # 3 / 10.5 * 10 000
        "within": [
            {
                "minutes": 5,
                "area_km2": 0.1,
                "area_share": round(0.1 / total_a, 6),
                "demand": 1.0,
                "demand_share": round(1 / total_w, 6),
            },
            {
                "minutes": 10,
                "area_km2": 0.3,
                "area_share": round(0.3 / total_a, 6),
                "demand": 3.0,
                "demand_share": round(3 / total_w, 6),
            },
            {
                "minutes": 15,
                "area_km2": 0.6,
                "area_share": round(0.6 / total_a, 6),
                "demand": 6.0,
                "demand_share": round(6 / total_w, 6),
            },
        ],
        "uncovered_demand": 4.5,  # the unreachable cell (4) and the one at 20 min (0.5)
        "unreachable_cells": 1,
        "median_minutes": 9.56,  # of 2, 7.1234, 12, 20
        # over demand: half of 10.5 is reached at 12 (1 + 2 + 3; zero-demand and inf last)
        "demand_median_minutes": 12.0,
        # (2*1 + 7.1234*2 + 12*3 + 120*4 + 20*0.5) / 10.5, unreachable counted as 120
        "demand_weighted_mean_minutes": 51.64,
        "overdense_cells": 1,
    }
    assert round(0.1 / total_a, 6) == 0.089015  # six decimals, not seven


def test_area_summary_of_one_cell_and_of_no_demand():
    m = _model(MINUTES, WEIGHTS, _dense_reach(), n_points=3)
    one = derive.area_summary(m, np.array([True, False, False, False, False]), AREA, (5,), 3)
    assert one["stations_per_10k_demand"] == 30000.0  # a total demand of exactly 1
    assert one["demand_weighted_mean_minutes"] == 2.0
    assert one["within"][0]["area_share"] == 1.0  # a total area below 1 km²
    assert one["median_minutes"] == 2.0
    empty_w = _model([INF, INF], [0.0, 0.0])
    none = derive.area_summary(empty_w, np.ones(2, bool), np.array([0.5, 0.5]), (15,), 0)
    assert none["stations_per_10k_demand"] is None
    assert none["demand_weighted_mean_minutes"] is None
    assert none["median_minutes"] is None  # nothing reachable
    assert none["within"][0]["demand_share"] is None
    assert none["within"][0]["area_share"] == 0.0


def _row():
    """Four cells in a row of neighbours and one far away."""
    a = h3.latlng_to_cell(30.58, 114.3, 9)
    b = sorted(h3.grid_ring(a, 1))[0]
    c = next(x for x in sorted(h3.grid_ring(b, 1)) if x != a and not h3.are_neighbor_cells(x, a))
    far = h3.latlng_to_cell(30.70, 114.5, 9)
    return [a, b, c, far]


def test_gaps_ranked_limited_and_filtered():
    a, b, c, far = _row()
    # the grid's cells are sorted by id; a-b-c connected and all uncovered (demand 1 + 2 +
    # 0.5), far alone (demand 0.25)
    spec = {
        a: (20.0, 1.0, "江汉区"),
        b: (INF, 2.0, "江汉区"),
        c: (16.0, 0.5, "硚口区"),
        far: (30.0, 0.25, None),
    }
    order = sorted(spec, key=h3.str_to_int)
    cells = np.array([h3.str_to_int(x) for x in order], dtype=np.int64)
    minutes = [spec[x][0] for x in order]
    weights = [spec[x][1] for x in order]
    districts = np.array([spec[x][2] for x in order], dtype=object)
    area = np.array([0.1, 0.1, 0.1, 0.1])
    pos = {x: i for i, x in enumerate(order)}
    gaps = derive.find_gaps(_model(minutes, weights), cells, area, districts)
    assert [g.rank for g in gaps] == [1, 2]
    big, small = gaps
    assert sorted(big.cells.tolist()) == sorted([pos[a], pos[b], pos[c]])
    assert big.demand == 3.5 and big.area_km2 == pytest.approx(0.3)
    assert big.max_minutes == INF and big.mean_minutes == 18.0  # of 20 and 16
    assert big.districts == ["江汉区", "硚口区"]
    assert small.demand == 0.25 and small.districts == [] and small.mean_minutes == 30.0
    # a gap of unreachable cells only has no mean
    (alone,) = derive.find_gaps(
        _model([INF], [1.0]), cells[:1], area[:1], np.array([None], dtype=object)
    )
    assert alone.mean_minutes is None and alone.max_minutes == INF
    # the largest only; below a minimum demand left out; outside a mask not a gap
    assert [
        g.rank for g in derive.find_gaps(_model(minutes, weights), cells, area, districts, limit=1)
    ] == [1]
    assert (
        len(derive.find_gaps(_model(minutes, weights), cells, area, districts, min_demand=0.3)) == 1
    )
    keep = np.zeros(4, bool)
    keep[[pos[a], pos[b]]] = True
    masked = derive.find_gaps(_model(minutes, weights), cells, area, districts, mask=keep)
    assert [sorted(g.cells.tolist()) for g in masked] == [sorted([pos[a], pos[b]])]
    # the outline is GeoJSON in lng, lat order around the cells
    ring = big.geometry["coordinates"][0]
    lats = [p[1] for p in ring]
    lngs = [p[0] for p in ring]
    assert min(lngs) > 114.2 and max(lngs) < 114.4 and min(lats) > 30.5 and max(lats) < 30.7
    assert set(big.geometry) == {"type", "coordinates"}


# -------------------------------------------------------------------------------------------
# where a worker is put on the network (grid.snaps, snap_points), stations as Points, Reach
# -------------------------------------------------------------------------------------------

LON0, LAT0 = 114.3, 30.58


def _network(segments):
    """Straight streets east of (114.3, 30.58): [(length m, highway, oneway)], end to end."""
    from app.network.graph import RoadNetwork

    n = len(segments)
    xs = np.concatenate([[0.0], np.cumsum([s[0] for s in segments])])
    return RoadNetwork.from_arrays(
        edge_id=np.arange(n),
        source=np.arange(n),
        target=np.arange(1, n + 1),
        length_m=[s[0] for s in segments],
        highway=[s[1] for s in segments],
        oneway=[s[2] for s in segments],
        node_id=np.arange(n + 1),
        lon=LON0 + xs / 96_000.0,
        lat=np.full(n + 1, LAT0),
    )


def test_a_rider_beside_a_one_way_street_is_put_on_it():
    from app.coverage.grid import build_grid, snap_points
    from app.network.graph import build_graph
    from app.network.travel import Mode

    net = _network([(1000, "residential", 1)])
    g = build_graph(net, Mode.EBIKE)
    # one courier ~111 m north of the street, a quarter of the way along
    s = snap_points(g, np.array([LON0 + 250 / 96_000]), np.array([LAT0 + 0.001]))
    assert s.edge.tolist() == [0]
    assert s.fraction[0] == pytest.approx(0.25, abs=0.01)
    assert s.off_m[0] == pytest.approx(110.9, abs=1.0)
    # every cell along the one-way street is on it, nobody walks
    snaps = build_grid(net, 10).snaps(g)
    assert snaps.edge.tolist() == [0] * len(snaps.edge) and (snaps.off_m == 0).all()


def test_a_car_is_never_put_on_a_footway():
    from app.coverage.grid import build_grid
    from app.network.graph import build_graph
    from app.network.travel import Mode

    # 300 m of road, then 1.7 km of footway: cells along the footway near the road are walked
    # to the road's end; those more than 500 m from it are unreachable by car
    net = _network([(300, "residential", 0), (1700, "footway", 0)])
    grid = build_grid(net, 10)
    car = build_graph(net, Mode.CAR)
    snaps = grid.snaps(car)
    assert set(snaps.edge.tolist()) == {0, -1}
    on_road = snaps.edge == 0
    # the cell centres' distance east of the road's end (x of the end: 300 m)
    east_m = (grid.lon - LON0) * 96_000.0 - 300
    assert (snaps.off_m[on_road & (east_m > 100)] > 50).all()
    assert (east_m[snaps.edge == -1] > 400).all() and (snaps.edge == -1).sum() >= 2
    assert (snaps.fraction[snaps.edge == -1] == 0).all()
    # with (almost) no walking allowed, only the cells with road in them are reachable
    tight = grid.snaps(car, max_off_m=1.0)
    assert (tight.off_m == 0).all() and (tight.edge[tight.edge >= 0] == 0).all()
    assert (tight.edge == -1).sum() > (snaps.edge == -1).sum()
    # on foot every cell is on its own street
    assert (grid.snaps(build_graph(net, Mode.WALK)).off_m == 0).all()


def test_snapping_where_the_mode_has_no_street_and_within_a_shorter_limit():
    from app.coverage.grid import snap_points
    from app.network.graph import build_graph
    from app.network.travel import Mode

    footway = _network([(1000, "footway", 0)])
    s = snap_points(build_graph(footway, Mode.CAR), np.array([LON0, LON0]), np.array([LAT0] * 2))
    assert s.edge.tolist() == [-1, -1]
    assert s.fraction.tolist() == [0.0, 0.0] and s.off_m.tolist() == [0.0, 0.0]
    road = build_graph(_network([(1000, "residential", 0)]), Mode.WALK)
    lon, lat = np.array([LON0 + 250 / 96_000]), np.array([LAT0 + 0.001])  # ~111 m off
    assert snap_points(road, lon, lat, 50.0).edge.tolist() == [-1]
    assert snap_points(road, lon, lat, 150.0).edge.tolist() == [0]


def test_a_model_without_stations_leaves_every_cell_unreachable():
    from app.coverage.analysis import Points, build_model
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    g = build_graph(_network([(300, "residential", 0)] * 3), Mode.WALK)
    none = Points.empty()
    assert len(none) == 0 and none.edge.dtype == np.intp
    assert none.fraction.shape == (0,) and none.off_m.shape == (0,)
    cells = CellSnaps(np.array([0, 2]), np.array([0.5, 0.5]), np.array([0.0, 0.0]))
    m = build_model(g, cells, np.ones(2), none, minutes_target=15, dense_minutes=5)
    assert m.minutes.tolist() == [INF, INF] and m.nearest.tolist() == [-1, -1]
    assert m.multiplicity.tolist() == [0, 0] and not m.covered().any()


def test_stations_joined_and_picked_keep_their_places():
    from app.coverage.analysis import Points

    a = Points(np.array([4]), np.array([0.2]), np.array([5.0]))
    b = Points(np.array([1, 2]), np.array([0.5, 0.9]), np.array([0.0, 10.0]))
    both = Points.concat(a, b)
    assert both.edge.tolist() == [4, 1, 2]
    assert both.fraction.tolist() == [0.2, 0.5, 0.9]
    assert both.off_m.tolist() == [5.0, 0.0, 10.0]
    picked = both.take(np.array([2, 0]))
    assert picked.edge.tolist() == [2, 4]
    assert picked.fraction.tolist() == [0.9, 0.2]
    assert picked.off_m.tolist() == [10.0, 5.0]


def test_reach_matrix_and_covered_cells_at_a_given_time():
    r = _dense_reach()  # (station, cell, s): (0,0,60) (1,0,120) (2,0,240) (0,1,60) (1,1,120)
    full = r.matrix()
    assert full.shape == (3, 5) and full.dtype == bool
    assert full.toarray().tolist() == [
        [True, True, False, False, False],
        [True, True, False, False, False],
        [True, False, False, False, False],
    ]
    two_min = r.matrix(120)
    assert two_min.toarray().tolist() == [
        [True, True, False, False, False],
        [True, True, False, False, False],
        [False, False, False, False, False],
    ]
    assert r.within(60).cutoff_s == 60 and r.within(5000).cutoff_s == 900
    assert r.count_per_cell(60).tolist() == [1, 1, 0, 0, 0]
    # a cell exactly at the target is covered; a target given explicitly is used
    m = _model([15.0, 15.001, 4.0], [1.0, 1.0, 1.0])
    assert m.covered().tolist() == [True, False, True]
    assert m.covered(5).tolist() == [False, False, True]
    assert m.covered(15.001).tolist() == [True, True, True]


def test_a_network_of_motorways_only_has_no_study_cells():
    from app.coverage.grid import build_grid
    from app.network.graph import build_graph
    from app.network.travel import Mode

    net = _network([(500, "motorway", 0), (800, "motorway", 0)])
    grid = build_grid(net, 9)  # used to fail with an IndexError
    assert grid.n_cells == 0 and grid.road_m.tolist() == []
    assert (grid.piece_cell == -1).all() and np.isinf(grid.piece_to_centre_m).all()
    assert grid.index_of(np.array([h3.str_to_int(h3.latlng_to_cell(LAT0, LON0, 9))])) == [-1]
    assert len(grid.snaps(build_graph(net, Mode.CAR)).edge) == 0


def _far_cells() -> tuple[int, int]:
    """Two cells 20-30 km away with no street, ids below and above those near (114.3, 30.58)."""
    south_west = h3.grid_disk(h3.latlng_to_cell(30.4, 114.1, 9), 4)
    north_east = h3.grid_disk(h3.latlng_to_cell(30.75, 114.5, 9), 4)
    return min(map(h3.str_to_int, south_west)), max(map(h3.str_to_int, north_east))


def test_a_street_beside_a_motorway_and_imported_cells():
    from app.coverage.grid import build_grid, cells_of_points

    # 600 m of residential street, then 1.5 km of motorway straight on
    net = _network([(600, "residential", 0), (1500, "motorway", 0)])
    low, high = _far_cells()
    known = h3.str_to_int(h3.latlng_to_cell(LAT0, LON0 + 100 / 96_000, 9))  # on the street
    grid = build_grid(net, 9, extra_cells=np.array([high, known, low]))
    street = build_grid(net, 9)
    assert grid.resolution == 9 and grid.network is net
    # study cells: those with residential street, plus the imported ones (each once)
    assert grid.n_cells == street.n_cells + 2
    assert grid.cells.tolist() == sorted([*street.cells.tolist(), low, high])
    assert low < grid.cells[1] and high > grid.cells[-2]  # imported cells at both ends
    # street metres: the residential street only, every metre once; imported cells have none
    res_m = net.metric_geometry[0].length
    assert grid.road_m.sum() == pytest.approx(res_m, rel=1e-9)
    assert street.road_m.sum() == pytest.approx(res_m, rel=1e-9)
    assert grid.road_m[grid.index_of(np.array([low, high]))].tolist() == [0.0, 0.0]
    assert len(grid.road_m) == grid.n_cells
    # each piece of street is in the cell of its midpoint, or in none if that is no study cell
    line = net.metric_geometry[grid.piece_edge]
    mid = shapely.line_interpolate_point(line, grid.piece_fraction, normalized=True)
    mlon, mlat = net.to_wgs84.transform(shapely.get_x(mid), shapely.get_y(mid))
    mid_cell = cells_of_points(np.asarray(mlon), np.asarray(mlat), 9)
    inside = np.isin(mid_cell, grid.cells)
    assert (~inside).sum() >= 10  # the motorway far from the street is in no study cell
    assert (grid.piece_cell >= 0).tolist() == inside.tolist()
    assert (grid.piece_cell[~inside] == -1).all()
    assert (grid.cells[grid.piece_cell[inside]] == mid_cell[inside]).all()
    assert np.isinf(grid.piece_to_centre_m[~inside]).all()
    # positions of cells, -1 for one that is not a study cell
    far_away = h3.str_to_int(h3.latlng_to_cell(31.5, 115.0, 9))
    pos = grid.index_of(np.array([known, high, far_away, low]))
    assert pos.tolist() == [grid.cells.tolist().index(known), grid.n_cells - 1, -1, 0]
    # centres and areas agree with each hexagon's outline measured in metres
    for i in range(grid.n_cells):
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(int(grid.cells[i])))]
        hexagon = shapely.Polygon(ring)
        assert grid.lon[i] == pytest.approx(hexagon.centroid.x, abs=2e-5)
        assert grid.lat[i] == pytest.approx(hexagon.centroid.y, abs=2e-5)
        xs, ys = net.to_metric.transform(*hexagon.exterior.xy)
        assert grid.area_km2[i] == pytest.approx(shapely.Polygon(zip(xs, ys)).area / 1e6, rel=2e-3)
    assert grid.area_km2.min() > 0.09 and grid.area_km2.max() < 0.12  # ~0.105 km² at res 9


def test_grid_resolution_and_weight_kinds_are_checked():
    from app.coverage.grid import build_grid

    net = _network([(300, "residential", 0)])
    with pytest.raises(ValueError, match=r"^resolution: one of 8, 9, 10$"):
        build_grid(net, 7)
    grid = build_grid(net, 10)
    assert grid.weights("road") is grid.road_m and grid.weights("area") is grid.area_km2
    with pytest.raises(ValueError, match=r"^weight: unknown kind 'people' \(road, area or an "):
        grid.weights("people")


def test_each_cell_is_placed_on_its_street_nearest_its_centre():
    from app.coverage.grid import build_grid
    from app.network.graph import RoadNetwork, build_graph
    from app.network.travel import Mode

    # a 4 × 4 block grid of streets 350 m apart, slightly skewed
    side, step = 4, 350.0
    ids = np.arange(side * side)
    x = (ids % side) * step + (ids // side) * 40.0
    y = (ids // side) * step
    src, dst = [], []
    for i in ids:
        if i % side < side - 1:
            src.append(i)
            dst.append(i + 1)
        if i // side < side - 1:
            src.append(i)
            dst.append(i + side)
    lon, lat = LON0 + x / 96_000.0, LAT0 + y / 111_000.0
    length = np.hypot(x[dst] - x[src], y[dst] - y[src])
    net = RoadNetwork.from_arrays(
        edge_id=np.arange(len(src)),
        source=src,
        target=dst,
        length_m=length,
        highway=["residential"] * len(src),
        oneway=[0] * len(src),
        node_id=ids,
        lon=lon,
        lat=lat,
    )
    grid = build_grid(net, 9)
    snaps = grid.snaps(build_graph(net, Mode.WALK))
    cx, cy = net.to_metric.transform(grid.lon, grid.lat)
    streets = shapely.union_all(net.metric_geometry)
    worst = 0.0
    for i in range(grid.n_cells):
        p = shapely.line_interpolate_point(
            net.metric_geometry[snaps.edge[i]], snaps.fraction[i], normalized=True
        )
        centre = shapely.Point(cx[i], cy[i])
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(int(grid.cells[i])))]
        hx, hy = net.to_metric.transform(*shapely.Polygon(ring).exterior.xy)
        own = shapely.intersection(streets, shapely.Polygon(zip(hx, hy)))
        # a piece is at most 40 m long: its midpoint is within 20 m of any point of it
        worst = max(worst, p.distance(centre) - own.distance(centre))
    assert worst <= 40.0
    assert snaps.reachable.all() and (snaps.off_m == 0).all()


def test_nearest_station_along_one_way_streets_and_for_a_cell_off_the_map():
    from app.coverage.analysis import Points, nearest_minutes
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    # A→B→C→D, three one-way streets of 300 m; e-bike 15 km/h: 72 s each. The station at D
    # can only be reached from its street's start (C): one source for the search.
    g = build_graph(_network([(300, "residential", 1)] * 3), Mode.EBIKE)
    at_d = Points(np.array([2]), np.array([1.0]), np.array([0.0]))
    cells = CellSnaps(
        edge=np.array([0, 1, -1, 0]),
        fraction=np.array([0.0, 0.5, 0.0, 0.5]),
        off_m=np.array([0.0, 0.0, 0.0, 0.0]),
    )
    minutes, nearest = nearest_minutes(g, at_d, cells)
    # from A: 216 s; mid B–C: 36 + 72 s; mid A–B: 36 + 144 s; the third cell is on no street
    np.testing.assert_allclose(minutes[[0, 1, 3]] * 60, [216.0, 108.0, 180.0], atol=1e-9)
    assert minutes[2] == INF
    assert nearest.tolist() == [0, 0, -1, 0]


def test_a_worker_at_the_station_on_a_one_way_street_against_its_drawing_is_0_minutes_away():
    from app.coverage.analysis import Points, build_model
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    # one street drawn A→B but one-way B→A (oneway -1); the station and the worker stand at
    # the very same spot on it, the worker 30 m off the street: 30 m on foot is all it takes
    g = build_graph(_network([(400, "residential", -1)]), Mode.EBIKE)
    st = Points(np.array([0]), np.array([0.5]), np.array([0.0]))
    cells = CellSnaps(np.array([0, 0]), np.array([0.5, 0.25]), np.array([30.0, 0.0]))
    m = build_model(g, cells, np.ones(2), st, minutes_target=5, dense_minutes=5)
    walk_s = 30 / (5 / 3.6)
    # the second worker would have to ride from 0.25 to 0.5, against the one-way: unreachable
    assert m.minutes[0] * 60 == pytest.approx(walk_s)
    assert m.minutes[1] == INF
    assert m.nearest.tolist() == [0, -1] and m.multiplicity.tolist() == [1, 0]


def test_progress_is_reported_per_batch_of_stations(monkeypatch):
    from app.coverage import analysis
    from app.coverage.analysis import Points, build_model, point_reach
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    g = build_graph(_network([(200, "residential", 0)] * 10), Mode.WALK)  # 11 nodes
    rng = np.random.default_rng(5)
    pts = Points(rng.integers(0, 10, 12), rng.uniform(0.1, 0.9, 12), np.zeros(12))
    cells = CellSnaps(rng.integers(0, 10, 20), rng.uniform(0.1, 0.9, 20), np.zeros(20))
    seen: list[int] = []
    whole = point_reach(g, pts, cells, 600, progress=seen.append)
    assert seen == [12]  # one batch of at most 48
    # memory for 5 points' rows (two rows of 11 float64 each) and a little more: batches of 5
    monkeypatch.setattr(analysis, "ROW_BUDGET_BYTES", 5 * 2 * 8 * 11 + 100)
    seen.clear()
    fives = point_reach(g, pts, cells, 600, progress=seen.append)
    assert seen == [5, 5, 2]
    key = sorted(zip(whole.point.tolist(), whole.cell.tolist(), whole.seconds.round(9).tolist()))
    assert key == sorted(
        zip(fives.point.tolist(), fives.cell.tolist(), fives.seconds.round(9).tolist())
    )
    seen.clear()
    m = build_model(
        g, cells, np.ones(20), pts, minutes_target=8, dense_minutes=5, progress=seen.append
    )
    assert seen == [5, 5, 2]
    assert m.cells is cells and m.stations is pts
    assert m.reach.cutoff_s == 480.0 and m.reach.seconds.max() <= 480.0


def test_stations_that_reach_no_cell_and_a_cell_just_past_the_target():
    from app.coverage.analysis import Points, build_model, point_reach
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    # 300 m of street, 1.5 km of footway, and again, in a line; walking 5 km/h: 1 m = 0.72 s
    g = build_graph(_network([(300, "residential", 0), (1500, "footway", 0)] * 2), Mode.WALK)
    st = Points(np.array([0, 0]), np.array([0.0, 0.0]), np.array([0.0, 0.0]))  # both at A
    cells = CellSnaps(np.array([2]), np.array([1.0]), np.array([0.0]))  # 2.1 km: 25.2 min
    r = point_reach(g, st, cells, 600)
    assert (len(r.point), len(r.cell), len(r.seconds)) == (0, 0, 0)
    assert (r.n_points, r.n_cells, r.cutoff_s) == (2, 1, 600.0)
    assert r.count_per_cell().tolist() == [0] and r.matrix().shape == (2, 1)
    # a cell 1260 m away (907.2 s): beyond 15 minutes, not in the reach, but its minutes known
    near = CellSnaps(np.array([1]), np.array([0.64]), np.array([0.0]))
    m = build_model(g, near, np.array([2]), st, minutes_target=15, dense_minutes=5)
    assert m.minutes[0] * 60 == pytest.approx(1260 * 0.72)
    assert len(m.reach.cell) == 0 and m.multiplicity.tolist() == [0]
    assert m.weights.dtype == np.float64 and m.weights.tolist() == [2.0]


def test_a_cell_on_a_one_way_dead_end_has_no_nearest_station():
    from app.coverage.analysis import Points, build_model, nearest_minutes
    from app.coverage.grid import CellSnaps
    from app.network.graph import RoadNetwork, build_graph
    from app.network.travel import Mode

    # A→B→C one-way towards the station at C, and a one-way B→E leading away from it: from E's
    # street a rider can never get back to C
    net = RoadNetwork.from_arrays(
        edge_id=[0, 1, 2],
        source=[0, 1, 1],
        target=[1, 2, 3],
        length_m=[300, 300, 300],
        highway=["residential"] * 3,
        oneway=[1, 1, 1],
        node_id=[0, 1, 2, 3],
        lon=[LON0, LON0 + 300 / 96_000, LON0 + 600 / 96_000, LON0 + 300 / 96_000],
        lat=[LAT0, LAT0, LAT0, LAT0 + 300 / 111_000],
    )
    g = build_graph(net, Mode.EBIKE)
    at_c = Points(np.array([1]), np.array([1.0]), np.array([0.0]))
    cells = CellSnaps(np.array([0, 2]), np.array([0.5, 0.5]), np.array([0.0, 0.0]))
    minutes, nearest = nearest_minutes(g, at_c, cells)
    assert minutes[0] * 60 == pytest.approx(36 + 72) and minutes[1] == INF
    assert nearest.tolist() == [0, -1]
    m = build_model(g, cells, np.ones(2), at_c, minutes_target=15, dense_minutes=5)
    assert m.nearest.tolist() == [0, -1] and m.minutes[1] == INF


# -------------------------------------------------------------------------------------------
# site suggestion: the greedy's certificate and bookkeeping, worked out by hand
# -------------------------------------------------------------------------------------------


def _sites(rows: list[list[int]], n_cells: int):
    from scipy import sparse

    data = [(j, c) for j, row in enumerate(rows) for c in row]
    r, c = zip(*data, strict=True)
    return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_cells))


# A = {0, 1, 2, 3}, B = {0, 1, 4}, C = {2, 3, 5}, D = {6}; seven cells of weight 1
ABCD = [[0, 1, 2, 3], [0, 1, 4], [2, 3, 5], [6]]


def test_greedy_bound_is_the_best_of_the_rounds_not_the_final_gains():
    from app.coverage.solver import greedy_max_cover

    g = greedy_max_cover(_sites(ABCD, 7), np.ones(7), k=2)
    # greedy: A (4), then B, C, D all add 1 → B; 5 of 7. The optimum is B + C = 6.
    assert g.chosen == [0, 1] and g.covered_weight_after == 5.0
    # bound before round 2: 4 + the two largest (stale) gains 1 + 1 = 6 — the optimum; the
    # final 5 + the two largest remaining gains (C 1, D 1) = 7 is looser
    assert g.upper_bound == 6.0 and g.optimal is None
    assert g.message == "greedy (lazy gain updates)"


def test_forced_sites_count_in_the_bound_and_in_the_evaluations():
    from app.coverage.solver import greedy_max_cover

    g = greedy_max_cover(_sites(ABCD, 7), np.ones(7), k=3, forced=[3])
    # D forced (1), then A (4) and B (1): 6. B + C + D would give 7.
    assert g.chosen == [3, 0, 1] and g.gains == [1.0, 4.0, 1.0]
    # bound: D's 1 + (A's 4 + the two largest stale gains then, 1 + 1) = 7 = the optimum;
    # not proven optimal
    assert g.upper_bound == 7.0 and g.optimal is None
    # two forced (C, then A) of k = 3: one evaluation each, then B's single one (cell 4)
    two = greedy_max_cover(_sites(ABCD[:3], 6), np.ones(6), k=3, forced=[2, 0])
    assert two.chosen == [2, 0, 1] and two.gains == [3.0, 2.0, 1.0]
    assert two.evaluations == 3 and two.optimal is True


def test_a_grid_of_one_cell_beside_a_motorway():
    from app.coverage.grid import build_grid
    from app.network.graph import build_graph
    from app.network.travel import Mode

    # 150 m of street at resolution 8 (cells ~0.74 km²): one study cell; 2 km of motorway on
    net = _network([(150, "residential", 0), (2000, "motorway", 0)])
    grid = build_grid(net, 8)
    assert grid.n_cells == 1
    assert grid.road_m[0] == pytest.approx(net.metric_geometry[0].length, rel=1e-9)
    own = grid.piece_cell == 0
    assert own.sum() >= 4 and (grid.piece_cell[~own] == -1).all()
    # each of its pieces knows how far its midpoint is from the cell centre
    cx, cy = net.to_metric.transform(grid.lon, grid.lat)
    line = net.metric_geometry[grid.piece_edge[own]]
    mid = shapely.line_interpolate_point(line, grid.piece_fraction[own], normalized=True)
    want = np.hypot(shapely.get_x(mid) - cx[0], shapely.get_y(mid) - cy[0])
    np.testing.assert_allclose(grid.piece_to_centre_m[own], want, atol=0.01)
    lower = h3.str_to_int(h3.latlng_to_cell(LAT0, LON0 + 20 / 96_000, 8))
    higher = max(map(h3.str_to_int, h3.grid_disk(h3.latlng_to_cell(30.75, 114.5, 8), 3)))
    assert grid.cells.tolist() == [lower] and higher > lower
    assert grid.index_of(np.array([higher, lower])).tolist() == [-1, 0]
    snaps = grid.snaps(build_graph(net, Mode.WALK))
    assert snaps.edge.tolist() == [0] and snaps.off_m.tolist() == [0.0]


def test_cells_of_points_are_the_exact_h3_cells_holding_them():
    from app.coverage.grid import cells_of_points

    lon = [114.3, 114.31, 113.9]
    lat = [30.58, 30.6, 22.5]
    got = cells_of_points(np.array(lon), np.array(lat), 9)
    assert got.dtype == np.int64
    for c, x, y in zip(got.tolist(), lon, lat, strict=True):
        assert isinstance(c, int) and h3.is_valid_cell(h3.int_to_str(c))
        ring = [(lng, la) for la, lng in h3.cell_to_boundary(h3.int_to_str(c))]
        assert shapely.Polygon(ring).contains(shapely.Point(x, y))
    assert got.tolist() == [h3.str_to_int(h3.latlng_to_cell(y, x, 9)) for x, y in zip(lon, lat)]


def test_a_car_on_a_network_of_footways_is_nowhere():
    from app.coverage.grid import build_grid
    from app.network.graph import build_graph
    from app.network.travel import Mode

    net = _network([(400, "footway", 0)])
    snaps = build_grid(net, 10).snaps(build_graph(net, Mode.CAR))
    assert len(snaps.edge) >= 2 and snaps.edge.tolist() == [-1] * len(snaps.edge)
    assert not snaps.reachable.any()


def test_a_cell_off_the_map_has_no_time_even_next_to_a_station():
    from app.coverage.analysis import Points, nearest_minutes
    from app.coverage.grid import CellSnaps
    from app.network.graph import build_graph
    from app.network.travel import Mode

    g = build_graph(_network([(300, "residential", 0)] * 3), Mode.WALK)
    at_b = Points(np.array([1]), np.array([0.0]), np.array([0.0]))
    cells = CellSnaps(np.array([-1, 2]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    minutes, nearest = nearest_minutes(g, at_b, cells)
    assert minutes[0] == INF and nearest[0] == -1
    assert minutes[1] * 60 == pytest.approx(600 * 0.72) and nearest[1] == 0


def test_greedy_that_covers_every_cell_is_proven_optimal_even_at_the_budget():
    from app.coverage.solver import greedy_max_cover

    # {0, 2}, {1}, {0, 1} and two sites covering nothing, k = 2: greedy takes {0, 2}, then {1}
    # (ties to the lower index): all three cells, nothing more is possible
    g = greedy_max_cover(_sites([[0, 2], [1], [0, 1], [], []], 3), np.ones(3), k=2)
    assert g.chosen == [0, 1] and g.covered_weight_after == 3.0 == g.total_weight
    assert g.optimal is True and g.upper_bound == 3.0


def test_the_exact_solver_reports_the_model_it_solved():
    from app.coverage.solver import exact_max_cover, reduce_instance

    classic = _sites(ABCD[:3], 6)
    # A = {0, 1, 2, 3}, B = {0, 1, 4}, C = {2, 3, 5}: cells 0 and 1 are reached by A and B
    # alike, 2 and 3 by A and C: four groups of cells ({0, 1}, {2, 3}, {4}, {5})
    red = reduce_instance(classic, np.ones(6))
    assert (red.n_candidates, red.n_cells, red.n_groups) == (3, 6, 4)
    assert red.cover.shape == (3, 4) and sorted(red.weights.tolist()) == [1.0, 1.0, 2.0, 2.0]
    e = exact_max_cover(classic, np.ones(6), k=2)
    assert e.chosen == [1, 2] and e.optimal is True
    assert e.message.startswith("HiGHS: ") and "Optimal" in e.message
    assert e.message.endswith("(3 candidates × 4 cell groups)")
    # everything already covered: nothing left to choose from
    done = reduce_instance(classic, np.ones(6), np.ones(6, dtype=bool))
    assert done.cover.shape == (0, 0) and len(done.candidates) == 0
    assert (done.n_candidates, done.n_cells) == (3, 6)
    assert done.group_of_cell.tolist() == [-1] * 6
    t = exact_max_cover(classic, np.ones(6), np.ones(6, dtype=bool), k=2)
    assert t.chosen == [] and t.message == "trivial (0 candidates × 0 cell groups)"


def test_exact_solver_stopped_by_its_time_limit(monkeypatch):
    """HiGHS stopping at the time limit, played by a stand-in (a real stop depends on the
    machine's speed): with a solution, that one is returned with HiGHS's bound; without one,
    the greedy selection is."""
    from app.coverage import solver

    classic = _sites(ABCD[:3], 6)

    def stopped(picks):
        def fake(red, k, time_limit_s, mip_rel_gap):
            assert k == 1 + (picks is None) and time_limit_s == 5.0 and mip_rel_gap == 0.0
            return picks, solver._LIMIT, "Time limit reached", 4.0

        return fake

    # no incumbent: greedy's A (4) then B (1); bound: nothing before + HiGHS's 4 < 5 → 5
    monkeypatch.setattr(solver, "_solve_milp", stopped(None))
    s = solver.exact_max_cover(classic, np.ones(6), k=2, time_limit_s=5.0)
    assert s.chosen == [0, 1] and s.gains == [4.0, 1.0] and s.evaluations == 5
    assert (s.covered_weight_before, s.covered_weight_after, s.total_weight) == (0, 5, 6)
    assert s.optimal is False and not s.stopped_early and s.upper_bound == 5.0
    assert s.message == (
        "HiGHS: Time limit reached, no incumbent: greedy selection returned"
        " (3 candidates × 4 cell groups)"
    )
    # C forced (3): left are cells 0, 1 (A or B) and 4 (B), two candidates and two groups;
    # HiGHS found B for the one free pick (3 more) and bounds that part by 4: at most 3 + 4
    monkeypatch.setattr(solver, "_solve_milp", stopped(np.array([1])))
    f = solver.exact_max_cover(classic, np.ones(6), k=2, forced=[2], time_limit_s=5.0)
    assert f.chosen == [2, 1] and f.gains == [3.0, 3.0] and f.evaluations == 2
    assert f.optimal is False and f.upper_bound == 7.0
    assert f.message == "HiGHS: Time limit reached (2 candidates × 2 cell groups)"


def test_exact_solver_without_a_choice_to_make():
    from app.coverage.solver import exact_max_cover

    # two sites, three cells: 0 (site 0), 1 (site 1), 2 (both): k = 2 takes both, no solver
    e = exact_max_cover(_sites([[0, 2], [1, 2]], 3), np.ones(3), k=2)
    assert e.chosen == [0, 1] and e.gains == [2.0, 1.0] and e.evaluations == 3
    assert e.message == "every useful candidate fits in k (2 candidates × 3 cell groups)"
    # one site forced of k = 2, one useful site left for the one free pick
    f = exact_max_cover(_sites([[0], [1]], 2), np.ones(2), k=2, forced=[0])
    assert f.chosen == [0, 1] and f.gains == [1.0, 1.0] and f.optimal is True
    assert f.message == "every useful candidate fits in k (1 candidates × 1 cell groups)"
    # every pick forced: nothing to solve
    t = exact_max_cover(_sites(ABCD[:3], 6), np.ones(6), k=1, forced=[0])
    assert t.chosen == [0] and t.gains == [4.0] and t.evaluations == 1
    assert t.message == "trivial (2 candidates × 2 cell groups)"


def test_greedy_details_a_planner_reads():
    from app.coverage.solver import coverage_gain, greedy_max_cover

    # as in the bound test above, with cells of a quarter each: bound 6 × 0.25
    q = greedy_max_cover(_sites(ABCD, 7), np.full(7, 0.25), k=2)
    assert q.chosen == [0, 1] and q.upper_bound == 1.5 and q.optimal is None
    # every pick forced: one evaluation, nothing else looked at
    f = greedy_max_cover(_sites(ABCD, 7), np.ones(7), k=1, forced=[2])
    assert f.chosen == [2] and f.evaluations == 1 and f.upper_bound >= 3.0
    classic = _sites(ABCD[:3], 6)
    with pytest.raises(
        ValueError, match=r"^chosen: candidate indices must be integers, got a bool$"
    ):
        coverage_gain(classic, np.ones(6), None, [True])
    with pytest.raises(ValueError, match=r"^chosen: candidate 3 out of range 0\.\.2$"):
        coverage_gain(classic, np.ones(6), None, [3])


def test_bad_site_suggestion_input_is_named_precisely():
    from app.coverage.solver import greedy_max_cover

    with pytest.raises(ValueError, match=r"^cover: must be 2-D \(candidates × cells\), got 3-D$"):
        greedy_max_cover(np.zeros((2, 2, 2)), np.ones(2), k=1)
    with pytest.raises(ValueError, match=r"^cover: not a 0/1 matrix \(.*dtype <U1"):
        greedy_max_cover(np.array([["a", "b"]]), np.ones(2), k=1)
    with pytest.raises(ValueError, match=r"^weights: must be finite, cell 1 is .*nan"):
        greedy_max_cover(np.ones((1, 3)), [1, np.nan, 2], k=1)
    with pytest.raises(ValueError, match=r"^weights: must be ≥ 0, cell 2 is .*-2\.0"):
        greedy_max_cover(np.ones((1, 3)), [0, 1, -2], k=1)
    with pytest.raises(ValueError, match=r"^covered: must be a boolean \(or 0/1\) mask$"):
        greedy_max_cover(np.ones((1, 3)), np.ones(3), np.array([1, 0, 1], dtype=object), k=1)


@pytest.mark.parametrize("seed", range(8))
def test_the_planner_reads_crossings_as_the_courier_api_does(seed):
    """Cells and stations exactly on an end of their street (fraction 0 or 1: what snapping
    gives for a point nearest a crossing) on random networks with one-way streets. The
    coverage engine's minutes to the nearest station, and the cells each station reaches,
    must equal the courier side's (`app.network.graph`: a forward search from the worker read
    at each station — itself checked against a finer Dijkstra in
    tests/test_mutation_network_graph.py). Before, the planner put a station at a one-way
    street's downstream corner on the street, reachable only round the block."""
    from app.coverage.analysis import Points, build_model
    from app.coverage.grid import CellSnaps
    from app.network.graph import (
        build_graph,
        multi_source_seconds,
        point_sources,
        seconds_at_points,
    )
    from tests.test_mutation_network_graph import _random_streets

    rng = np.random.default_rng(900 + seed)
    edges, net = _random_streets(rng)
    checked = 0
    for mode in ("walk", "ebike", "car"):
        g = build_graph(net, mode)
        usable = [e for e in range(len(edges)) if g.costs.forward[e] or g.costs.backward[e]]
        if not usable:
            continue

        def snaps(n, ends_only):
            e = rng.choice(usable, size=n)
            f = rng.integers(0, 2, size=n).astype(float)
            if not ends_only:  # a few inside their street too
                f[::3] = rng.uniform(0.1, 0.9, size=len(f[::3]))
            return e.astype(np.intp), f, rng.integers(0, 40, size=n).astype(float)

        ce, cf, co = snaps(12, False)
        se, sf, so = snaps(4, True)
        cells = CellSnaps(ce, cf, co)
        st = Points(se, sf, so)
        target = 3.0
        m = build_model(g, cells, np.ones(12), st, minutes_target=target, dense_minutes=2.0)
        stations = [(int(se[k]), float(sf[k]), float(so[k])) for k in range(4)]
        for i in range(12):
            origin = (int(ce[i]), float(cf[i]), float(co[i]))
            secs = multi_source_seconds(g, point_sources(g, origin), None)
            per_station = seconds_at_points(g, secs, stations, origin=origin) / 60.0
            want = float(np.min(per_station))
            got = float(m.minutes[i])
            assert (np.isinf(got) and np.isinf(want)) or got == pytest.approx(want, abs=1e-6), (
                mode,
                i,
                origin,
                stations,
            )
            within = int(np.sum(per_station <= target + 1e-9))
            assert int(m.multiplicity[i]) == within, (mode, i)
            checked += np.isfinite(want)
    assert checked
