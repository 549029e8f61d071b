"""Gap pieces (issue 14): gaps cut into parts a planner can act on, each with the best single
new site — checked without a database against independent oracles: a breadth-first search
over `h3.are_neighbor_cells` for connectivity, and a brute force that re-runs the whole
coverage model with every candidate added as a station."""

from __future__ import annotations

import itertools
import math
from collections import deque

import h3
import numpy as np
import pytest

from app.coverage import derive
from app.coverage.analysis import CoverageModel, Points, Reach, build_model
from app.coverage.grid import CellSnaps, build_grid
from app.network.graph import RoadNetwork, build_graph
from app.network.travel import Mode, TravelSettings


def _model(minutes, weights) -> CoverageModel:
    n = len(minutes)
    empty = np.empty(0, dtype=np.intp)
    return CoverageModel(
        minutes_target=15.0,
        dense_minutes=5.0,
        weights=np.asarray(weights, dtype=float),
        cells=CellSnaps(np.zeros(n, np.intp), np.zeros(n), np.zeros(n)),
        stations=Points.empty(),
        reach=Reach(empty, empty, np.empty(0), 0, n, 900.0),
        minutes=np.asarray(minutes, dtype=float),
        nearest=np.full(n, -1, dtype=np.intp),
    )


def _connected(cells: list[str]) -> bool:
    """Breadth-first search over hexagons sharing an edge (h3's own neighbour test)."""
    todo, seen = deque([cells[0]]), {cells[0]}
    rest = set(cells)
    while todo:
        c = todo.popleft()
        for d in rest - seen:
            if h3.are_neighbor_cells(c, d):
                seen.add(d)
                todo.append(d)
    return seen == rest


def _components(cells: list[str], same) -> list[set[str]]:
    """Connected components where two neighbours join only if `same(a, b)`."""
    left, out = set(cells), []
    while left:
        start = min(left)
        comp, todo = {start}, deque([start])
        while todo:
            c = todo.popleft()
            for d in list(left - comp):
                if h3.are_neighbor_cells(c, d) and same(c, d):
                    comp.add(d)
                    todo.append(d)
        left -= comp
        out.append(comp)
    return out


def _town(seed: int):
    """A disc of 127 resolution-9 hexagons, two districts split by longitude (cells in the
    north-east corner in neither), random times (some unreachable) and demand."""
    rng = np.random.default_rng(seed)
    centre = h3.latlng_to_cell(30.58, 114.30, 9)
    names = sorted(h3.grid_disk(centre, 6))
    cells = np.asarray(sorted(h3.str_to_int(c) for c in names), dtype=np.int64)
    strs = [h3.int_to_str(int(c)) for c in cells]
    ll = np.asarray([h3.cell_to_latlng(c) for c in strs])
    district = np.asarray(
        [
            None if (lat > 30.593 and lon > 114.31) else ("420101" if lon < 114.30 else "420102")
            for lat, lon in ll
        ],
        dtype=object,
    )
    minutes = rng.choice(
        [3.0, 9.0, 16.0, 22.0, 40.0, np.inf], len(cells), p=[0.25, 0.1, 0.2, 0.2, 0.2, 0.05]
    )
    weights = rng.uniform(0, 10, len(cells))
    area = np.asarray([h3.cell_area(c, "km^2") for c in strs])
    return cells, strs, district, _model(minutes, weights), area


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cap", [0.35, 1.0, 3.0])
def test_pieces_partition_the_uncovered_cells_within_one_district_and_the_cap(seed, cap):
    cells, strs, district, model, area = _town(seed)
    pieces = derive.split_gaps(model, cells, area, district, cap)
    uncovered = set(np.flatnonzero(model.minutes > 15).tolist())
    got = [p.cells.tolist() for p in pieces]
    flat = [c for p in got for c in p]
    # every uncovered cell in exactly one piece, nothing else
    assert sorted(flat) == sorted(uncovered) and len(flat) == len(set(flat))
    regions = derive.find_gaps(model, cells, area, district)
    for p in pieces:
        members = p.cells.tolist()
        # one district (or none) for every cell, the piece's own
        assert {district[i] for i in members} == {p.district}
        # within the cap unless it is one cell; connected
        assert p.area_km2 <= cap + 1e-9 or len(members) == 1
        assert p.area_km2 == pytest.approx(area[members].sum())
        assert _connected([strs[i] for i in members])
        # inside the connected gap it names
        assert set(members) <= set(regions[p.gap - 1].cells.tolist())
        # numbers from its cells
        mins = model.minutes[members]
        finite = mins[np.isfinite(mins)]
        assert p.demand == pytest.approx(model.weights[members].sum())
        assert p.unreachable_cells == int(np.isinf(mins).sum())
        assert p.max_minutes == (float(finite.max()) if len(finite) else None)
    assert [p.rank for p in pieces] == list(range(1, len(pieces) + 1))
    assert all(a.demand >= b.demand for a, b in itertools.pairwise(pieces))


@pytest.mark.parametrize("seed", range(4))
def test_without_a_binding_cap_pieces_are_the_gaps_cut_at_district_lines(seed):
    cells, strs, district, model, area = _town(seed)
    pieces = derive.split_gaps(model, cells, area, district, 1e9)
    uncovered = [strs[i] for i in np.flatnonzero(model.minutes > 15)]
    d = {strs[i]: district[i] for i in range(len(strs))}
    want = _components(uncovered, lambda a, b: d[a] == d[b])
    assert sorted(sorted(strs[i] for i in p.cells) for p in pieces) == sorted(
        sorted(c) for c in want
    )


def test_a_gap_across_a_district_line_is_two_pieces_and_a_long_one_is_cut():
    # a row of 12 hexagons, all uncovered, the first 5 in one district, the rest in another
    start = h3.latlng_to_cell(30.58, 114.30, 9)
    row = [start]
    while len(row) < 12:  # walk east along neighbours
        nxt = max(h3.grid_ring(row[-1], 1), key=lambda c: h3.cell_to_latlng(c)[1])
        row.append(nxt)
    order = sorted(range(12), key=lambda i: h3.str_to_int(row[i]))
    cells = np.asarray([h3.str_to_int(row[i]) for i in order], dtype=np.int64)
    district = np.asarray(["420101" if i < 5 else "420102" for i in order], dtype=object)
    model = _model(np.full(12, 20.0), np.ones(12))
    area = np.full(12, 0.1)
    (gap,) = derive.find_gaps(model, cells, area, district)
    assert gap.districts == ["420101", "420102"]
    pieces = derive.split_gaps(model, cells, area, district, 10.0)
    assert sorted((p.district, len(p.cells)) for p in pieces) == [("420101", 5), ("420102", 7)]
    assert {p.gap for p in pieces} == {1}
    # a cap of 0.3 km² (3 cells): 5 → 3 + 2 (⌊2/2⌋ of 2 pieces), 7 → 3 + 4 → 3 + 2 + 2 …
    small = derive.split_gaps(model, cells, area, district, 0.3)
    assert all(len(p.cells) <= 3 for p in small)
    assert sum(len(p.cells) for p in small) == 12
    assert len(small) == 5  # ⌈5/3⌉ + ⌈7/3⌉: no more pieces than the cap needs here


def test_unreachable_cells_are_counted_apart_from_the_longest_time():
    centre = h3.latlng_to_cell(30.58, 114.30, 9)
    strs = sorted([centre, *h3.grid_ring(centre, 1)])
    cells = np.asarray([h3.str_to_int(c) for c in strs], dtype=np.int64)
    minutes = np.array([20.0, np.inf, 30.0, np.inf, 18.0, 25.0, np.inf])
    model = _model(minutes, np.ones(7))
    (gap,) = derive.find_gaps(model, cells, np.full(7, 0.1), np.asarray([None] * 7, dtype=object))
    assert math.isinf(gap.max_minutes)
    assert gap.unreachable_cells == 3 and gap.max_reachable_minutes == 30.0
    (piece,) = derive.split_gaps(
        model, cells, np.full(7, 0.1), np.asarray([None] * 7, dtype=object), 5.0
    )
    assert piece.unreachable_cells == 3 and piece.max_minutes == 30.0
    assert piece.district is None


def test_piece_cap_is_the_disc_one_station_reaches():
    # walking 15 min: 1.25 km of road, 1.25 / 1.3 km as the crow flies
    assert derive.piece_cap_km2(5, 15) == pytest.approx(math.pi * (1.25 / 1.3) ** 2)
    assert derive.piece_cap_km2(15, 15) == pytest.approx(9 * derive.piece_cap_km2(5, 15))
    with pytest.raises(ValueError):
        derive.piece_cap_km2(0, 15)


def _grid_network(seed: int, side: int = 7) -> RoadNetwork:
    rng = np.random.default_rng(seed)
    ids = np.arange(side * side)
    lon = 114.3 + (ids % side) * 0.002 + rng.uniform(-2e-4, 2e-4, len(ids))
    lat = 30.58 + (ids // side) * 0.002 + rng.uniform(-2e-4, 2e-4, len(ids))
    src, dst = [], []
    for i in ids:
        if i % side < side - 1 and rng.random() < 0.85:
            src.append(i)
            dst.append(i + 1)
        if i // side < side - 1 and rng.random() < 0.85:
            src.append(i)
            dst.append(i + side)
    m = len(src)
    return RoadNetwork.from_arrays(
        edge_id=np.arange(m),
        source=src,
        target=dst,
        length_m=rng.uniform(200, 320, m),
        highway=rng.choice(["residential", "footway", "primary"], m),
        oneway=rng.choice([0, 0, 0, 1, -1], m),
        node_id=ids,
        lon=lon,
        lat=lat,
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", [Mode.WALK, Mode.EBIKE])
def test_best_site_equals_a_brute_force_over_every_candidate(seed, mode):
    net = _grid_network(seed)
    g = build_graph(net, mode, TravelSettings())
    grid = build_grid(net, 10)
    snaps = grid.snaps(g)
    weights = grid.weights("road").astype(np.float64)
    usable = np.flatnonzero(g.costs.forward | g.costs.backward)
    st = Points(usable[:1], np.array([0.5]), np.array([0.0]))
    target = 4.0 if mode == Mode.WALK else 2.0
    model = build_model(g, snaps, weights, st, minutes_target=target, dense_minutes=2)
    covered = model.covered()
    district = np.asarray(
        ["420101" if lon < 114.306 else "420102" for lon in grid.lon], dtype=object
    )
    cap = derive.piece_cap_km2(5.0 if mode == Mode.WALK else 15.0, target)
    pieces = derive.split_gaps(model, grid.cells, grid.area_km2, district, cap)
    assert pieces
    sites = derive.piece_best_sites(g, snaps, grid.cells, weights, covered, pieces[:4], target)
    tried = 0
    for p, site in zip(pieces[:4], sites, strict=True):
        # only cells with a street of the mode of their own can be sites
        cands = p.cells[snaps.reachable[p.cells] & (snaps.off_m[p.cells] == 0)]
        assert len(cands) <= derive.MAX_PIECE_CANDIDATES  # no thinning in this test
        if not len(cands):
            assert site is None
            continue
        # brute force: the whole model again with each candidate's street point as a station
        brute = {}
        for c in cands.tolist():
            one = Points(snaps.edge[[c]], snaps.fraction[[c]], snaps.off_m[[c]])
            after = build_model(
                g, snaps, weights, Points.concat(st, one), minutes_target=target, dense_minutes=2
            )
            new = after.covered() & ~covered
            in_piece = np.zeros(len(weights), dtype=bool)
            in_piece[p.cells] = True
            brute[c] = (float(weights[new].sum()), float(weights[new & in_piece].sum()))
        assert site is not None and site.candidates == len(cands)
        assert site.gain == pytest.approx(max(v[0] for v in brute.values()), abs=1e-6)
        assert brute[site.cell][0] == pytest.approx(site.gain, abs=1e-6)
        assert brute[site.cell][1] == pytest.approx(site.gain_in_piece, abs=1e-6)
        assert site.cell in p.cells and snaps.off_m[site.cell] == 0
        tried += len(cands) > 1 and site.gain > 0
    assert tried  # some piece had a real choice to make


def test_best_single_site_tie_breaks():
    from scipy.sparse import csr_matrix

    # three candidates over four cells; cell 0 covered already
    cover = csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 1, 1, 0]], dtype=bool))
    weights = np.array([100.0, 2.0, 3.0, 2.0])
    covered = np.array([True, False, False, False])
    in_piece = np.array([False, False, True, True])
    # gains: 2, 5, 5 — rows 1 and 2 tie overall; row 1 has 5 in the piece, row 2 has 3
    assert derive.best_single_site(cover, weights, covered, in_piece) == (1, 5.0, 5.0)
    assert derive.best_single_site(cover[:0], weights, covered, in_piece) is None


def test_the_note_tells_unreachable_cells_apart_from_the_longest_time():
    from app.coverage.service import gap_note
    from app.network.modes import Mode as M

    assert gap_note(0, 20.0, M.WALK, 500) is None
    note = gap_note(12, 175.94, M.WALK, 500)
    assert note is not None
    assert "12 个网格不可达" in note["zh"] and "500 米" in note["zh"] and "176.0 分钟" in note["zh"]
    assert note["en"].startswith("12 of its cells are unreachable")
    assert "at most 176.0 min" in note["en"]  # rounded up, like every minute shown
    alone = gap_note(3, None, M.EBIKE, 500)
    assert alone is not None and "at most" not in alone["en"] and "ebike" in alone["en"]


def test_a_cell_without_a_street_of_its_own_is_never_a_piece_site():
    """A cell the mode reaches only by walking 120 m to a road in another cell (a footway-only
    cell by car, a demand cell with no street) would put the site outside the piece: only the
    cells with their own street are candidates, unreachable ones never."""
    centre = h3.latlng_to_cell(30.58, 114.3, 9)
    ring = [centre, *sorted(set(h3.grid_disk(centre, 1)) - {centre})][:4]
    cells = np.asarray([h3.str_to_int(c) for c in ring], dtype=np.int64)
    piece = derive.GapPiece(
        rank=1,
        gap=1,
        district=None,
        cells=np.arange(4, dtype=np.intp),
        demand=10.0,
        area_km2=0.4,
        unreachable_cells=1,
        max_minutes=20.0,
        mean_minutes=18.0,
        geometry={},
    )
    snaps = CellSnaps(
        np.asarray([3, 5, -1, 7], dtype=np.intp),
        np.full(4, 0.5),
        np.asarray([0.0, 120.0, 0.0, 0.0]),
    )
    weights = np.asarray([1.0, 50.0, 9.0, 2.0])  # the street-less cell is the heaviest
    got = derive.piece_candidates(piece, cells, weights, snaps)
    assert got.tolist() == [0, 3]
