"""Demand cells: an H3 hexagon grid over the streets of the road network.

Pure Python: numpy, shapely, pyproj, h3. Nothing here touches SQL.

**Resolution.** H3 resolution 9 by default: hexagons of ~0.105 km² (edge ~174 m; at Wuhan's
latitude a cell measures ~0.10 km²), about a one-minute walk across, fine enough that "within 5
minutes on foot" is not blurred by the cell, and coarse enough that a whole city stays in the
tens of thousands of cells (Wuhan's demo network: 9,139 at resolution 9, 34,586 at 10).
Resolution 8 (~0.74 km²) suits a province-wide overview, 10 (~0.015 km²) a single district.
`RESOLUTIONS` lists what is allowed.

**Study area.** The cells that contain some street a worker can be on: every class of
`DEMAND_CLASSES` (the walkable classes: no motorways, no urban expressways). A cell of lake,
river, rail yard or farmland without streets has no outdoor work to serve and is left out, so it
can neither be a "gap" nor dilute a share. Imported demand may add cells (demand off the streets
is real and shows up as unreachable).

**Where a cell is on the network.** Edges are cut into pieces of at most `PIECE_M` metres; each
piece belongs to the cell containing its midpoint. For a given mode a cell is represented by
the midpoint of its usable piece nearest the cell centre: the demand is on that street, so the
off-network walk is 0. A cell whose own streets the mode cannot use (a footway-only cell for a
car) is represented by the nearest usable edge point to its centre within the off-network limit,
walked; beyond the limit it is unreachable.

**Weights.** `road` (default): metres of demand-class street in the cell, a proxy for where
couriers, sanitation workers and drivers spend their day. `area`: the cell's area in km²
(every cell equal). Imported layers give their own unit.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import h3
import numpy as np
import shapely
from numpy.typing import NDArray

from app.network.graph import ModeGraph, RoadNetwork
from app.network.travel import WALK_CLASSES

DEFAULT_RESOLUTION = 9
RESOLUTIONS = (8, 9, 10)
#: Longest piece an edge is cut into before pieces are assigned to cells.
PIECE_M = 40.0
#: Street classes that carry demand (and define the study area): the walkable ones.
DEMAND_CLASSES: frozenset[str] = WALK_CLASSES


@dataclass(frozen=True, eq=False)
class CellSnaps:
    """Where each cell sits on the network for one mode: edge index (-1 = unreachable),
    fraction from the edge's source end, and metres walked to get there."""

    edge: NDArray[np.intp]
    fraction: NDArray[np.float64]
    off_m: NDArray[np.float64]

    @property
    def reachable(self) -> NDArray[np.bool_]:
        return self.edge >= 0


@dataclass(frozen=True, eq=False)
class DemandGrid:
    """The study cells of one network at one resolution, with the street pieces in each."""

    resolution: int
    cells: NDArray[np.int64]  # H3 indices, sorted
    lon: NDArray[np.float64]  # cell centres
    lat: NDArray[np.float64]
    road_m: NDArray[np.float64]  # demand-class street metres per cell
    area_km2: NDArray[np.float64]
    # pieces of every network edge (any class), each in one cell (-1: not a study cell)
    piece_cell: NDArray[np.intp]
    piece_edge: NDArray[np.intp]
    piece_fraction: NDArray[np.float64]  # of the piece midpoint along its edge
    piece_to_centre_m: NDArray[np.float64]
    network: RoadNetwork

    @property
    def n_cells(self) -> int:
        return int(self.cells.shape[0])

    def index_of(self, cells: NDArray[np.int64]) -> NDArray[np.intp]:
        """Positions of H3 cells in this grid (-1 when not a study cell)."""
        pos = np.searchsorted(self.cells, cells)
        pos = np.minimum(pos, max(self.n_cells - 1, 0))
        if self.n_cells == 0:
            return np.full(len(cells), -1, dtype=np.intp)
        found = self.cells[pos] == cells
        return np.where(found, pos, -1).astype(np.intp)

    def weights(self, kind: str) -> NDArray[np.float64]:
        if kind == "road":
            return self.road_m
        if kind == "area":
            return self.area_km2
        raise ValueError(f"weight: unknown kind {kind!r} (road, area or an imported layer)")

    @cached_property
    def polygons(self) -> NDArray[np.object_]:
        """Each cell's hexagon (WGS-84 shapely Polygon)."""
        out = np.empty(self.n_cells, dtype=object)
        for i, c in enumerate(self.cells.tolist()):
            ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(c))]
            out[i] = shapely.Polygon(ring)
        return out

    def snaps(self, graph: ModeGraph, max_off_m: float | None = None) -> CellSnaps:
        """Where each cell sits on the network for the graph's mode (see module docstring)."""
        n = self.n_cells
        edge = np.full(n, -1, dtype=np.intp)
        frac = np.zeros(n)
        off = np.zeros(n)
        usable_edge = graph.costs.forward | graph.costs.backward
        ok = (self.piece_cell >= 0) & usable_edge[self.piece_edge]
        idx = np.flatnonzero(ok)
        if len(idx):
            order = idx[np.lexsort((self.piece_to_centre_m[idx], self.piece_cell[idx]))]
            first = np.ones(len(order), dtype=bool)
            first[1:] = self.piece_cell[order[1:]] != self.piece_cell[order[:-1]]
            best = order[first]
            c = self.piece_cell[best]
            edge[c] = self.piece_edge[best]
            frac[c] = self.piece_fraction[best]
        missing = np.flatnonzero(edge < 0)
        limit = graph.settings.max_off_network_m if max_off_m is None else max_off_m
        if len(missing) and usable_edge.any():
            far = snap_points(graph, self.lon[missing], self.lat[missing], limit)
            edge[missing] = far.edge
            frac[missing] = far.fraction
            off[missing] = far.off_m
        return CellSnaps(edge, frac, off)


def _cut_pieces(network: RoadNetwork) -> tuple[NDArray[Any], ...]:
    """Every edge cut into pieces of ≤ PIECE_M metres: (edge, midpoint fraction, length m,
    midpoint x, midpoint y) in the metric CRS."""
    geoms = shapely.segmentize(np.asarray(network.metric_geometry, dtype=object), PIECE_M)
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    same = owner[1:] == owner[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    e = owner[:-1][same].astype(np.intp)
    seg = np.hypot(b[:, 0] - a[:, 0], b[:, 1] - a[:, 1])
    # cumulative distance of each piece start along its edge
    total = np.bincount(e, weights=seg, minlength=network.n_edges)
    csum = np.cumsum(seg)
    edge_start = np.zeros(network.n_edges)
    first_piece = np.ones(len(e), dtype=bool)
    first_piece[1:] = e[1:] != e[:-1]
    edge_start[e[first_piece]] = (csum - seg)[first_piece]
    start_along = csum - seg - edge_start[e]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(total[e] > 0, (start_along + seg / 2) / total[e], 0.5)
    mid = (a + b) / 2
    return e, np.clip(fraction, 0.0, 1.0), seg, mid[:, 0], mid[:, 1]


def build_grid(
    network: RoadNetwork,
    resolution: int = DEFAULT_RESOLUTION,
    *,
    demand_classes: frozenset[str] = DEMAND_CLASSES,
    extra_cells: NDArray[np.int64] | None = None,
) -> DemandGrid:
    """The study cells of `network` (cells with demand-class streets, plus `extra_cells`)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution: one of {', '.join(map(str, RESOLUTIONS))}")
    e, fraction, seg, mx, my = _cut_pieces(network)
    lon, lat = network.to_wgs84.transform(mx, my)
    lon, lat = np.asarray(lon), np.asarray(lat)
    piece_h3 = np.fromiter(
        (
            h3.str_to_int(h3.latlng_to_cell(y, x, resolution))
            for x, y in zip(lon.tolist(), lat.tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(lon),
    )
    demand = np.isin(network.highway[e], list(demand_classes))
    cells = np.unique(piece_h3[demand])
    if extra_cells is not None and len(extra_cells):
        cells = np.union1d(cells, np.asarray(extra_cells, dtype=np.int64))
    n = len(cells)
    pos = np.searchsorted(cells, piece_h3)
    pos = np.minimum(pos, max(n - 1, 0))
    # no study cell at all (e.g. only motorways): every piece is outside (cells[0] would fail)
    found = cells[pos] == piece_h3 if n > 0 else np.zeros(len(piece_h3), dtype=bool)
    piece_cell = np.where(found, pos, -1).astype(np.intp)
    counted = demand & (piece_cell >= 0)
    road = np.asarray(
        np.bincount(piece_cell[counted], weights=seg[counted], minlength=n), dtype=np.float64
    )
    clon = np.empty(n)
    clat = np.empty(n)
    area = np.empty(n)
    for i, c in enumerate(cells.tolist()):
        s = h3.int_to_str(c)
        clat[i], clon[i] = h3.cell_to_latlng(s)
        area[i] = h3.cell_area(s, unit="km^2")
    cx, cy = network.to_metric.transform(clon, clat)
    cx, cy = np.asarray(cx), np.asarray(cy)
    if n > 0:
        safe = np.maximum(piece_cell, 0)
        to_centre = np.where(piece_cell >= 0, np.hypot(mx - cx[safe], my - cy[safe]), np.inf)
    else:
        to_centre = np.full(len(piece_cell), np.inf)
    return DemandGrid(
        resolution=resolution,
        cells=cells,
        lon=clon,
        lat=clat,
        road_m=road,
        area_km2=area,
        piece_cell=piece_cell,
        piece_edge=e,
        piece_fraction=fraction,
        piece_to_centre_m=to_centre,
        network=network,
    )


def cells_of_points(
    lon: NDArray[np.float64], lat: NDArray[np.float64], resolution: int
) -> NDArray[np.int64]:
    """H3 cell (as int) of each WGS-84 point."""
    return np.fromiter(
        (
            h3.str_to_int(h3.latlng_to_cell(y, x, resolution))
            for x, y in zip(np.asarray(lon).tolist(), np.asarray(lat).tolist(), strict=True)
        ),
        dtype=np.int64,
        count=len(lon),
    )


def neighbours(cells: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Pairs (i, j) of positions in the sorted array `cells` whose hexagons share an edge."""
    rows: list[int] = []
    ring: list[int] = []
    n = len(cells)
    for i, c in enumerate(cells.tolist()):
        for nb in h3.grid_ring(h3.int_to_str(c), 1):
            rows.append(i)
            ring.append(h3.str_to_int(nb))
    v = np.asarray(ring, dtype=np.int64)
    j = np.searchsorted(cells, v).astype(np.intp)  # one vectorised lookup
    ok = j < n
    ok[ok] = cells[j[ok]] == v[ok]
    return np.asarray(rows, dtype=np.intp)[ok], j[ok]


def snap_points(
    graph: ModeGraph,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    max_off_m: float | None = None,
) -> CellSnaps:
    """Each WGS-84 point on its nearest edge usable by the graph's mode (metric distance in
    the network's UTM zone): edge -1 when none is within the off-network limit."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    n = len(lon)
    edge = np.full(n, -1, dtype=np.intp)
    frac = np.zeros(n)
    off = np.zeros(n)
    usable_edge = graph.costs.forward | graph.costs.backward
    if n == 0 or not usable_edge.any():
        return CellSnaps(edge, frac, off)
    limit = graph.settings.max_off_network_m if max_off_m is None else max_off_m
    usable = np.flatnonzero(usable_edge)
    net = graph.network
    tree = _usable_tree(graph)
    x, y = net.to_metric.transform(lon, lat)
    pts = shapely.points(np.asarray(x), np.asarray(y))
    (pi, ti), dist = tree.query_nearest(
        pts, max_distance=limit, return_distance=True, all_matches=False
    )
    e = usable[ti]
    along = shapely.line_locate_point(net.metric_geometry[e], pts[pi], normalized=True)
    edge[pi] = e
    frac[pi] = along
    off[pi] = dist
    return CellSnaps(edge, frac, off)


_TREES: weakref.WeakKeyDictionary[ModeGraph, shapely.STRtree] = weakref.WeakKeyDictionary()


def _usable_tree(graph: ModeGraph) -> shapely.STRtree:
    """An STRtree of the edges the graph's mode may use (built once per graph)."""
    tree = _TREES.get(graph)
    if tree is None:
        usable = np.flatnonzero(graph.costs.forward | graph.costs.backward)
        tree = shapely.STRtree(graph.network.metric_geometry[usable])
        _TREES[graph] = tree
    return tree
