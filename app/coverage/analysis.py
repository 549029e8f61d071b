"""Coverage of demand cells by stations on the road network, and what follows from it.

Pure Python (numpy, scipy): the inputs are a mode graph (app.network.graph), the demand grid
(app.coverage.grid) and snapped points; nothing here touches SQL.

* `point_reach(graph, points, cells, cutoff_s)`: for each point (station or candidate site)
  the cells whose workers reach it within `cutoff_s`, with the seconds (sparse triplets). One
  bounded Dijkstra per distinct source node on the reversed graph (worker → station), in
  batches so memory stays bounded (`BATCH` rows of n_nodes floats at a time).
* `nearest_minutes(graph, points, cells)`: minutes from every cell to its nearest point and
  which point that is, in **one** unbounded multi-source run (app.network.graph).
* `CoverageModel`: both, for the open stations, plus the per-cell multiplicity within the
  target and within the over-density radius; everything else (summaries, gaps, over-density,
  redundancy, scenarios, candidate covers for site suggestion) is derived from it.

Times are exact on the network model: a cell's time to a station is the best of leaving its
street piece towards either end (one-way rules apply to riding and driving), the shortest path
to the station's edge, and the partial edge to the station's snap point — or, when both are on
the same edge, the direct stretch between them if the direction is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from app.coverage.grid import CellSnaps
from app.network.graph import ModeGraph, multi_source_search

#: Points per batch of bounded searches (each point has one or two source rows of n_nodes
#: float64), lowered on big networks so the rows held at once stay within ROW_BUDGET_BYTES.
BATCH = 48
ROW_BUDGET_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Points:
    """Snapped points (stations or candidate sites): edge index, fraction, metres off-network."""

    edge: NDArray[np.intp]
    fraction: NDArray[np.float64]
    off_m: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    @classmethod
    def empty(cls) -> Points:
        return cls(np.empty(0, np.intp), np.empty(0), np.empty(0))

    def take(self, idx: NDArray[np.intp]) -> Points:
        return Points(self.edge[idx], self.fraction[idx], self.off_m[idx])

    @staticmethod
    def concat(a: Points, b: Points) -> Points:
        return Points(
            np.concatenate([a.edge, b.edge]),
            np.concatenate([a.fraction, b.fraction]),
            np.concatenate([a.off_m, b.off_m]),
        )


@dataclass(frozen=True, eq=False)
class Reach:
    """Sparse (point, cell, seconds) triplets: cell reaches point within the cutoff."""

    point: NDArray[np.intp]
    cell: NDArray[np.intp]
    seconds: NDArray[np.float64]
    n_points: int
    n_cells: int
    cutoff_s: float

    def _keep(self, keep: NDArray[np.bool_], cutoff_s: float) -> Reach:
        return Reach(
            self.point[keep],
            self.cell[keep],
            self.seconds[keep],
            self.n_points,
            self.n_cells,
            cutoff_s,
        )

    def within(self, seconds: float) -> Reach:
        return self._keep(self.seconds <= seconds + 1e-9, min(seconds, self.cutoff_s))

    def matrix(self, seconds: float | None = None) -> csr_matrix:
        """Boolean (points × cells) matrix of reach within `seconds` (default: the cutoff)."""
        r = self if seconds is None else self.within(seconds)
        data = np.ones(len(r.point), dtype=bool)
        return csr_matrix((data, (r.point, r.cell)), shape=(self.n_points, self.n_cells))

    def count_per_cell(self, seconds: float | None = None) -> NDArray[np.int64]:
        r = self if seconds is None else self.within(seconds)
        return np.bincount(r.cell, minlength=self.n_cells)


def _point_sources(
    graph: ModeGraph, pts: Points
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """Reverse-search sources of each point: (owner point, node, initial seconds).

    Towards the point along its edge: from the source end if the edge may be travelled forward,
    from the target end if backward; off-network walk plus the partial edge. A point exactly on
    an end (fraction 0 or 1) stands at that crossing: reached there whatever the edge's one-way
    rule or the mode's right to use it (as `app.network.graph.point_sources`).
    """
    e = pts.edge
    c = graph.costs.seconds[e]
    w = pts.off_m / graph.settings.walk_mps
    f = pts.fraction
    at_src, at_dst = f == 0.0, f == 1.0
    from_src = graph.costs.forward[e] | at_src
    from_dst = graph.costs.backward[e] | at_dst
    src, dst = graph.network.src[e], graph.network.dst[e]
    with np.errstate(invalid="ignore"):
        part_src = np.where(at_src, 0.0, f * c)
        part_dst = np.where(at_dst, 0.0, (1 - f) * c)
    idx = np.arange(len(pts), dtype=np.intp)
    owner = np.concatenate([idx[from_src], idx[from_dst]])
    node = np.concatenate([src[from_src], dst[from_dst]]).astype(np.intp)
    init = np.concatenate([(w + part_src)[from_src], (w + part_dst)[from_dst]])
    return owner, node, init


def _cell_seconds_from_nodes(
    graph: ModeGraph,
    node_seconds: NDArray[np.float64],
    cells: CellSnaps,
    subset: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Seconds from cells (positions `subset`) to the search's target, leaving along the
    cell's edge towards either end (reverse search values at the nodes); a cell's place exactly
    on an end of its edge is at that crossing, whatever the edge's one-way rule."""
    e = cells.edge[subset]
    g = cells.fraction[subset]
    c = graph.costs.seconds[e]
    at_src, at_dst = g == 0.0, g == 1.0
    fw, bw = graph.costs.forward[e], graph.costs.backward[e]
    d_src = node_seconds[graph.network.src[e]]
    d_dst = node_seconds[graph.network.dst[e]]
    with np.errstate(invalid="ignore"):
        via_src = np.where(bw | at_src, d_src + np.where(at_src, 0.0, g * c), np.inf)
        via_dst = np.where(fw | at_dst, d_dst + np.where(at_dst, 0.0, (1.0 - g) * c), np.inf)
    walk = cells.off_m[subset] / graph.settings.walk_mps
    return np.asarray(np.minimum(via_src, via_dst) + walk, dtype=np.float64)


def _same_edge_seconds(
    graph: ModeGraph, cells: CellSnaps, subset: NDArray[np.intp], pts: Points, p: int
) -> NDArray[np.float64]:
    """Direct travel along a shared edge from each cell in `subset` to point p (inf if none)."""
    e = cells.edge[subset]
    pe = int(pts.edge[p])
    same = e == pe
    out = np.full(len(subset), np.inf)
    if not np.any(same):
        return out
    c = float(graph.costs.seconds[pe])
    fw, bw = bool(graph.costs.forward[pe]), bool(graph.costs.backward[pe])
    a = cells.fraction[subset][same]  # from the cell's place
    b = float(pts.fraction[p])  # to the point
    # at the very same spot (b == a) no travel is needed, whatever the one-way rule
    ok = np.where(b >= a, fw, bw) | (b == a)
    t = np.abs(b - a) * c + cells.off_m[subset][same] / graph.settings.walk_mps
    t += float(pts.off_m[p]) / graph.settings.walk_mps
    out[same] = np.where(ok, t, np.inf)
    return out


def point_reach(
    graph: ModeGraph,
    pts: Points,
    cells: CellSnaps,
    cutoff_s: float,
    *,
    progress: object | None = None,
) -> Reach:
    """For each point, the cells that reach it within `cutoff_s` (reverse searches)."""
    n_cells = int(cells.edge.shape[0])
    owner, node, init = _point_sources(graph, pts)
    reachable_cells = np.flatnonzero(cells.reachable)
    out_p: list[NDArray[np.intp]] = []
    out_c: list[NDArray[np.intp]] = []
    out_s: list[NDArray[np.float64]] = []
    mat = graph.csgraph(reverse=True)
    n_pts = len(pts)
    # the edges' end nodes of the reachable cells, for the prefilter
    ce = cells.edge[reachable_cells]
    c_src = graph.network.src[ce]
    c_dst = graph.network.dst[ce]
    order = np.argsort(owner, kind="stable")
    owner, node, init = owner[order], node[order], init[order]
    starts = np.searchsorted(owner, np.arange(n_pts + 1))
    batch = max(1, min(BATCH, ROW_BUDGET_BYTES // (2 * 8 * max(graph.n_nodes, 1))))
    for b0 in range(0, n_pts, batch):
        b1 = min(b0 + batch, n_pts)
        lo, hi = starts[b0], starts[b1]
        batch_nodes, inv = np.unique(node[lo:hi], return_inverse=True)
        if len(batch_nodes):
            rows = dijkstra(mat, directed=True, indices=batch_nodes, limit=cutoff_s)
            rows = np.atleast_2d(rows)
        for p in range(b0, b1):
            s0, s1 = starts[p] - lo, starts[p + 1] - lo
            best = np.full(graph.n_nodes, np.inf)
            for k in range(s0, s1):
                np.minimum(best, rows[inv[k]] + init[lo + k], out=best)
            near = np.isfinite(best[c_src]) | np.isfinite(best[c_dst])
            sub = reachable_cells[near]
            secs = _cell_seconds_from_nodes(graph, best, cells, sub)
            # cells on the point's own edge may go straight along it
            if pts.edge[p] >= 0:
                on_edge = reachable_cells[ce == pts.edge[p]]
                if len(on_edge):
                    direct = _same_edge_seconds(graph, cells, on_edge, pts, p)
                    sub = np.concatenate([sub, on_edge])
                    secs = np.concatenate([secs, direct])
            keep = secs <= cutoff_s
            sub, secs = sub[keep], secs[keep]
            if len(sub):
                # a cell may appear twice (via nodes and direct): keep its minimum
                o = np.lexsort((secs, sub))
                sub, secs = sub[o], secs[o]
                first = np.ones(len(sub), dtype=bool)
                first[1:] = sub[1:] != sub[:-1]
                sub, secs = sub[first], secs[first]
                out_p.append(np.full(len(sub), p, dtype=np.intp))
                out_c.append(sub)
                out_s.append(secs)
        if progress is not None and callable(progress):
            progress(b1 - b0)
    if out_p:
        return Reach(
            np.concatenate(out_p),
            np.concatenate(out_c),
            np.concatenate(out_s),
            n_pts,
            n_cells,
            float(cutoff_s),
        )
    empty_i = np.empty(0, dtype=np.intp)
    return Reach(empty_i, empty_i, np.empty(0), n_pts, n_cells, float(cutoff_s))


def nearest_minutes(
    graph: ModeGraph, pts: Points, cells: CellSnaps
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Minutes from each cell to its nearest point (inf: none) and that point (-1), in one
    multi-source run. Same-edge shortcuts are not seen here; `CoverageModel` adds them from
    the bounded searches, which is where they matter."""
    n_cells = int(cells.edge.shape[0])
    minutes = np.full(n_cells, np.inf)
    nearest = np.full(n_cells, -1, dtype=np.intp)
    if len(pts) == 0:
        return minutes, nearest
    owner, node, init = _point_sources(graph, pts)
    if len(owner) == 0:
        return minutes, nearest
    res = multi_source_search(
        graph,
        list(zip(node.tolist(), init.tolist(), strict=True)),
        reverse=True,
        with_nearest=True,
    )
    assert res.nearest is not None
    sub = np.flatnonzero(cells.reachable)
    e = cells.edge[sub]
    g = cells.fraction[sub]
    c = graph.costs.seconds[e]
    fw, bw = graph.costs.forward[e], graph.costs.backward[e]
    s_src, s_dst = graph.network.src[e], graph.network.dst[e]
    with np.errstate(invalid="ignore"):
        via_src = np.where(bw, res.seconds[s_src] + g * c, np.inf)
        via_dst = np.where(fw, res.seconds[s_dst] + (1.0 - g) * c, np.inf)
    use_src = via_src <= via_dst
    best = np.where(use_src, via_src, via_dst) + cells.off_m[sub] / graph.settings.walk_mps
    src_pos = np.where(use_src, res.nearest[s_src], res.nearest[s_dst])
    minutes[sub] = best / 60.0
    nearest[sub] = np.where((src_pos >= 0) & np.isfinite(best), owner[np.maximum(src_pos, 0)], -1)
    return minutes, nearest


@dataclass(frozen=True, eq=False)
class CoverageModel:
    """Open stations against demand cells for one mode, target and over-density radius."""

    minutes_target: float
    dense_minutes: float
    weights: NDArray[np.float64]
    cells: CellSnaps
    stations: Points
    #: cell → station reach within max(target, dense) minutes
    reach: Reach
    #: minutes to the nearest station per cell (inf: unreachable) and which one (-1)
    minutes: NDArray[np.float64]
    nearest: NDArray[np.intp]
    extra: dict[str, object] = field(default_factory=dict)

    @cached_property
    def multiplicity(self) -> NDArray[np.int64]:
        """Stations reachable within the target, per cell."""
        return self.reach.count_per_cell(self.minutes_target * 60.0)

    @cached_property
    def dense_count(self) -> NDArray[np.int64]:
        """Stations reachable within the over-density radius, per cell."""
        return self.reach.count_per_cell(self.dense_minutes * 60.0)

    def covered(self, minutes: float | None = None) -> NDArray[np.bool_]:
        m = self.minutes_target if minutes is None else minutes
        return np.asarray(self.minutes <= m + 1e-9)


def build_model(
    graph: ModeGraph,
    cells: CellSnaps,
    weights: NDArray[np.float64],
    stations: Points,
    *,
    minutes_target: float,
    dense_minutes: float,
    progress: object | None = None,
) -> CoverageModel:
    """Minutes to the nearest station and multiplicities for every cell."""
    cutoff = max(minutes_target, dense_minutes) * 60.0
    reach = point_reach(graph, stations, cells, cutoff, progress=progress)
    minutes, nearest = nearest_minutes(graph, stations, cells)
    if len(reach.cell):
        # the bounded searches also see same-edge shortcuts: take them where they are faster
        best = np.full(reach.n_cells, np.inf)
        np.minimum.at(best, reach.cell, reach.seconds)
        order = np.lexsort((reach.seconds, reach.cell))
        first = np.ones(len(order), dtype=bool)
        first[1:] = reach.cell[order[1:]] != reach.cell[order[:-1]]
        who = np.full(reach.n_cells, -1, dtype=np.intp)
        who[reach.cell[order[first]]] = reach.point[order[first]]
        faster = best / 60.0 < minutes - 1e-12
        minutes = np.where(faster, best / 60.0, minutes)
        nearest = np.where(faster, who, nearest)
    return CoverageModel(
        minutes_target=float(minutes_target),
        dense_minutes=float(dense_minutes),
        weights=np.asarray(weights, dtype=np.float64),
        cells=cells,
        stations=stations,
        reach=reach,
        minutes=minutes,
        nearest=nearest,
    )
