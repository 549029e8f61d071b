"""Routable graphs per travel mode and multi-source shortest paths on them.

Pure Python: numpy, scipy.sparse.csgraph, shapely, pyproj. The edge arrays come from PostGIS
(another module); nothing here touches SQL.

* `RoadNetwork.from_arrays(...)` holds the edges and nodes, maps arbitrary int64 node ids to
  indices 0..n-1 (in the order of the node table) and projects edge geometry to the local UTM
  zone on demand.
* `build_graph(network, mode, settings)` → `ModeGraph`: a directed `csr_matrix` of travel
  seconds for the mode (parallel edges keep the fastest; one-way and class rules from
  `app.network.travel`) and its transpose for reverse searches.
* `multi_source_seconds(graph, [(node, initial_s), …], cutoff_s)` → seconds to every node from
  the best source, in **one** Dijkstra run. Sources that all start at the same offset use
  csgraph's own multi-source mode (`indices=…, min_only=True`); different offsets use a
  virtual super-source with one arc of weight `initial_s` to each source node (csgraph keeps
  explicit zero weights in CSR input, so offset 0 is exact).
  `multi_source_search` also says which source each node is nearest to.
* `point_sources(graph, snap)` turns a snapped point (edge index, fraction from the edge's
  source end, metres off the network) into sources: the snapped edge's ends, each with
  seconds = off-network walk + the partial edge, and only the ends the mode may travel to
  (a point exactly on an end, fraction 0 or 1, stands at that node whatever the one-way rule).
* `seconds_at_points` reads a finished search at other snapped points (stations), including
  the case of origin and target on the same edge; a target exactly on an end of its edge is
  read at that node, whatever the edge's one-way rule.

Direction. A forward search (`reverse=False`) gives the time *from* the sources to each node:
worker → everything, for isochrones of a worker's position. A reverse search (`reverse=True`)
runs on the transposed matrix and gives the time from each node *to* the nearest source:
worker → station, which is what a station's service area and "minutes to the nearest
station" mean. The two differ only where one-way rules apply (car, e-bike riding).

Snapping is done in SQL and must only consider edges the mode may use: filter by
`allowed_classes(mode)`. A snap onto an edge the mode cannot use raises `EdgeNotUsableError`;
one further than `TravelSettings.max_off_network_m` raises `OffNetworkError`. Both are
`NetworkError` (a ValueError) with a message meant for the client and a `field`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from app.network.travel import (
    DEFAULT_SETTINGS,
    EdgeCosts,
    Mode,
    TravelSettings,
    edge_costs,
)

_MODE_WORDS = {Mode.WALK: "on foot", Mode.EBIKE: "by e-bike", Mode.CAR: "by car"}


class NetworkError(ValueError):
    """A query point the network cannot serve; `detail` is meant for the client."""

    def __init__(self, detail: str, field: str = "lat,lon") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class OffNetworkError(NetworkError):
    """The point is further from every usable road than the configured limit."""


class EdgeNotUsableError(NetworkError):
    """The point was snapped to an edge the mode may not use (snap with allowed_classes)."""


class Snap(NamedTuple):
    """A point placed on the network: edge index, fraction from its source end, metres off."""

    edge_index: int
    fraction: float
    off_network_m: float


Source = tuple[int, float]


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS-84 UTM zone containing (lon, lat) (Wuhan: 32650)."""
    zone = int(np.floor((lon + 180.0) / 6.0)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """Edges and nodes of a road network, with node ids mapped to indices 0..n-1."""

    edge_id: NDArray[np.int64]
    source_id: NDArray[np.int64]
    target_id: NDArray[np.int64]
    length_m: NDArray[np.float64]
    highway: NDArray[np.str_]
    oneway: NDArray[np.int8]
    node_id: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    #: Index of each edge's source / target node in the node arrays.
    src: NDArray[np.intp]
    dst: NDArray[np.intp]
    _geometry: NDArray[np.object_] | None = None

    @classmethod
    def from_arrays(
        cls,
        *,
        edge_id: ArrayLike,
        source: ArrayLike,
        target: ArrayLike,
        length_m: ArrayLike,
        highway: ArrayLike,
        oneway: ArrayLike,
        node_id: ArrayLike,
        lon: ArrayLike,
        lat: ArrayLike,
        geometry: Sequence[Any] | NDArray[np.object_] | None = None,
    ) -> RoadNetwork:
        """Validate the arrays and map node ids; `geometry` are WGS-84 LineStrings, source first.

        Without geometry, each edge is the straight line between its nodes.
        """
        eid = np.asarray(edge_id, dtype=np.int64)
        sid = np.asarray(source, dtype=np.int64)
        tid = np.asarray(target, dtype=np.int64)
        length = np.asarray(length_m, dtype=np.float64)
        hw = np.asarray(highway, dtype=str)
        ow = np.asarray(oneway, dtype=np.int8)
        nid = np.asarray(node_id, dtype=np.int64)
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
        m = eid.shape[0]
        shapes = {"source": sid.shape, "target": tid.shape, "length_m": length.shape}
        shapes.update(highway=hw.shape, oneway=ow.shape)
        for name, shape in shapes.items():
            if shape != (m,):
                raise ValueError(f"{name}: expected {m} values, one per edge")
        if not (nid.ndim == 1 and x.shape == nid.shape and y.shape == nid.shape):
            raise ValueError("node_id, lon and lat must be 1-D arrays of the same length")
        if len(np.unique(nid)) != len(nid):
            raise ValueError("node_id: node ids must be unique")
        if np.any(~np.isfinite(length) | (length < 0)):
            raise ValueError("length_m: every length must be finite and ≥ 0")
        if np.any((ow != 0) & (ow != 1) & (ow != -1)):
            raise ValueError("oneway: values must be 0, 1 or -1")

        order = np.argsort(nid, kind="stable")
        sorted_ids = nid[order]

        def index_of(ids: NDArray[np.int64], name: str) -> NDArray[np.intp]:
            pos = np.searchsorted(sorted_ids, ids)
            pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
            # an empty node table has nothing to index: every id is missing
            bad = sorted_ids[pos] != ids if len(sorted_ids) else np.ones(len(ids), dtype=bool)
            if np.any(bad):
                missing = ids[bad][:5]
                raise ValueError(f"{name}: node ids not in the node table, e.g. {missing.tolist()}")
            return order[pos].astype(np.intp)

        geom: NDArray[np.object_] | None = None
        if geometry is not None:
            geom = np.asarray(geometry, dtype=object)
            if geom.shape != (m,):
                raise ValueError(f"geometry: expected {m} LineStrings, one per edge")
        return cls(
            edge_id=eid,
            source_id=sid,
            target_id=tid,
            length_m=length,
            highway=hw,
            oneway=ow,
            node_id=nid,
            lon=x,
            lat=y,
            src=index_of(sid, "source"),
            dst=index_of(tid, "target"),
            _geometry=geom,
        )

    @property
    def n_nodes(self) -> int:
        return int(self.node_id.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_id.shape[0])

    def node_index(self, ids: ArrayLike) -> NDArray[np.intp]:
        """Indices of the given node ids (ValueError for an unknown id)."""
        wanted = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        pos = self._node_lookup_sorted
        i = np.searchsorted(pos[0], wanted)
        i = np.minimum(i, max(len(pos[0]) - 1, 0))
        if len(wanted) and (len(pos[0]) == 0 or np.any(pos[0][i] != wanted)):
            raise ValueError("node id not in the network")
        return pos[1][i]

    @cached_property
    def _node_lookup_sorted(self) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
        order = np.argsort(self.node_id, kind="stable").astype(np.intp)
        return self.node_id[order], order

    @cached_property
    def geometry(self) -> NDArray[np.object_]:
        """WGS-84 LineString of each edge, source end first."""
        if self._geometry is not None:
            return self._geometry
        coords = np.empty((self.n_edges, 2, 2))
        coords[:, 0, 0], coords[:, 0, 1] = self.lon[self.src], self.lat[self.src]
        coords[:, 1, 0], coords[:, 1, 1] = self.lon[self.dst], self.lat[self.dst]
        return np.asarray(shapely.linestrings(coords), dtype=object)

    @cached_property
    def metric_epsg(self) -> int:
        """The UTM zone of the network's median node (metres for buffers and substrings)."""
        if self.n_nodes == 0:
            return 32650
        return utm_epsg(float(np.median(self.lon)), float(np.median(self.lat)))

    @cached_property
    def to_metric(self) -> Transformer:
        return Transformer.from_crs(
            CRS.from_epsg(4326), CRS.from_epsg(self.metric_epsg), always_xy=True
        )

    @cached_property
    def to_wgs84(self) -> Transformer:
        return Transformer.from_crs(
            CRS.from_epsg(self.metric_epsg), CRS.from_epsg(4326), always_xy=True
        )

    def project(self, geoms: Any, *, inverse: bool = False) -> Any:
        """Geometries from WGS-84 to the metric CRS (or back with `inverse`)."""
        tr = self.to_wgs84 if inverse else self.to_metric

        def fn(xy: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = tr.transform(xy[:, 0], xy[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geoms, fn)

    @cached_property
    def metric_geometry(self) -> NDArray[np.object_]:
        """Each edge's geometry in the metric CRS (computed once, vectorised)."""
        return np.asarray(self.project(np.asarray(self.geometry, dtype=object)), dtype=object)


def _csr(
    n: int, rows: NDArray[np.intp], cols: NDArray[np.intp], w: NDArray[np.float64]
) -> csr_matrix:
    """n×n CSR matrix of arcs; parallel arcs keep the minimum; explicit zeros stay (0 s arcs)."""
    keep = rows != cols  # a loop never shortens a path
    rows, cols, w = rows[keep], cols[keep], w[keep]
    order = np.lexsort((w, cols, rows))
    rows, cols, w = rows[order], cols[order], w[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, w = rows[first], cols[first], w[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    idx_type = np.int32 if n < 2**31 - 1 else np.int64
    return csr_matrix(
        (w.astype(np.float64), cols.astype(idx_type), indptr.astype(idx_type)), shape=(n, n)
    )


@dataclass(frozen=True, eq=False)
class ModeGraph:
    """The network as seen by one mode: per-edge costs and directed seconds matrices."""

    network: RoadNetwork
    mode: Mode
    settings: TravelSettings
    costs: EdgeCosts
    matrix: csr_matrix  # [u, v] = seconds u → v
    reverse_matrix: csr_matrix  # the transpose: [v, u] = seconds u → v

    @property
    def n_nodes(self) -> int:
        return self.network.n_nodes

    def csgraph(self, reverse: bool = False) -> csr_matrix:
        return self.reverse_matrix if reverse else self.matrix

    def walk_seconds(self, metres: ArrayLike) -> NDArray[np.float64]:
        """Seconds to walk the given off-network metres."""
        return np.asarray(metres, dtype=np.float64) / self.settings.walk_mps


def build_graph(
    network: RoadNetwork, mode: Mode | str, settings: TravelSettings = DEFAULT_SETTINGS
) -> ModeGraph:
    """The directed travel-seconds graph of `network` for `mode`."""
    mode = Mode(mode)
    costs = edge_costs(mode, network.length_m, network.highway, network.oneway, settings)
    fw, bw = costs.forward, costs.backward
    rows = np.concatenate([network.src[fw], network.dst[bw]])
    cols = np.concatenate([network.dst[fw], network.src[bw]])
    w = np.concatenate([costs.seconds[fw], costs.seconds[bw]])
    n = network.n_nodes
    return ModeGraph(
        network=network,
        mode=mode,
        settings=settings,
        costs=costs,
        matrix=_csr(n, rows, cols, w),
        reverse_matrix=_csr(n, cols, rows, w),
    )


def build_graphs(
    network: RoadNetwork, settings: TravelSettings = DEFAULT_SETTINGS
) -> dict[Mode, ModeGraph]:
    """One graph per mode."""
    return {mode: build_graph(network, mode, settings) for mode in Mode}


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Seconds to every node (inf when unreached or beyond the cutoff) and the nearest source.

    `nearest[i]` is the position in the given source list of the source that reaches node i
    first (-1 when unreached); with several entries for one node, the one with the smallest
    initial seconds.
    """

    seconds: NDArray[np.float64]
    nearest: NDArray[np.intp] | None


def multi_source_search(
    graph: ModeGraph,
    sources: Sequence[Source],
    cutoff_s: float | None = None,
    *,
    reverse: bool = False,
    with_nearest: bool = False,
) -> SearchResult:
    """One Dijkstra run from many sources, each starting with its own initial seconds."""
    n = graph.n_nodes
    inf = np.full(n, np.inf)
    none = np.full(n, -1, dtype=np.intp) if with_nearest else None
    if cutoff_s is not None and not (cutoff_s >= 0):
        raise ValueError("cutoff_s: must be ≥ 0")
    nodes = np.fromiter((int(s[0]) for s in sources), dtype=np.intp, count=len(sources))
    init = np.fromiter((float(s[1]) for s in sources), dtype=np.float64, count=len(sources))
    if np.any((nodes < 0) | (nodes >= n)):
        raise ValueError(f"sources: node indices must lie in 0..{n - 1}")
    if np.any(np.isnan(init) | (init < 0)):
        raise ValueError("sources: initial seconds must be ≥ 0")
    limit = np.inf if cutoff_s is None else float(cutoff_s)
    usable = np.flatnonzero(init <= limit)
    if len(usable) == 0:
        return SearchResult(inf, none)

    # the best entry per node: sort by (node, initial seconds, position), keep the first
    order = usable[np.lexsort((usable, init[usable], nodes[usable]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = nodes[order[1:]] != nodes[order[:-1]]
    best = order[first]
    u, b = nodes[best], init[best]
    mat = graph.csgraph(reverse)

    if np.all(b == b[0]):
        res = dijkstra(
            mat,
            directed=True,
            indices=u,
            min_only=True,
            limit=limit - b[0],
            return_predecessors=with_nearest,
        )
        if with_nearest:
            dist, _pred, src = res
            pos_of_node = np.full(n, -1, dtype=np.intp)
            pos_of_node[u] = best
            nearest: NDArray[np.intp] | None = np.where(
                src >= 0, pos_of_node[np.maximum(src, 0)], -1
            )
        else:
            dist, nearest = res, None
        seconds = np.asarray(dist, dtype=np.float64) + b[0]
    else:
        # a virtual node n with an arc of weight b[k] to each source node u[k]
        k = len(u)
        indptr = np.concatenate([mat.indptr, [mat.indptr[-1] + k]]).astype(mat.indptr.dtype)
        indices = np.concatenate([mat.indices, u.astype(mat.indices.dtype)])
        data = np.concatenate([mat.data, b])
        ext = csr_matrix((data, indices, indptr), shape=(n + 1, n + 1))
        res = dijkstra(ext, directed=True, indices=n, limit=limit, return_predecessors=with_nearest)
        if with_nearest:
            dist, pred = res
            nearest = _first_hop(pred, n, u, best)
        else:
            dist, nearest = res, None
        seconds = np.asarray(dist, dtype=np.float64)[:n]
    if cutoff_s is not None:
        seconds[seconds > limit] = np.inf
        if nearest is not None:
            nearest[~np.isfinite(seconds)] = -1
    return SearchResult(seconds, nearest)


def _first_hop(
    pred: NDArray[np.int32], virtual: int, u: NDArray[np.intp], best: NDArray[np.intp]
) -> NDArray[np.intp]:
    """For each node, the source whose arc from the virtual node starts its shortest path."""
    n = virtual
    p = np.asarray(pred[:n], dtype=np.intp)
    idx = np.arange(n, dtype=np.intp)
    reached = p >= 0
    up = np.where(reached & (p != virtual), p, idx)  # first-hop nodes (and unreached) are roots
    while True:  # pointer jumping: log2(path length) rounds
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    pos_of_node = np.full(n, -1, dtype=np.intp)
    pos_of_node[u] = best
    return np.where(reached, pos_of_node[up], -1)


def multi_source_seconds(
    graph: ModeGraph,
    sources: Sequence[Source],
    cutoff_s: float | None = None,
    *,
    reverse: bool = False,
) -> NDArray[np.float64]:
    """Seconds from the best of `sources` (node index, initial seconds) to every node.

    With `reverse=True`, seconds from every node to the best source instead. Nodes not
    reached within `cutoff_s` are inf.
    """
    return multi_source_search(graph, sources, cutoff_s, reverse=reverse).seconds


def minutes_to_nearest(
    graph: ModeGraph,
    station_node_indices: ArrayLike,
    initial_seconds: ArrayLike | None = None,
    *,
    cutoff_s: float | None = None,
    reverse: bool = True,
) -> NDArray[np.float64]:
    """Minutes from every node to its nearest station (one multi-source run; inf = none).

    `initial_seconds` per station node is the time between the node and the station itself
    (see `point_sources`). Reverse by default: the worker travels to the station.
    """
    nodes = np.asarray(station_node_indices, dtype=np.intp).reshape(-1)
    init = (
        np.zeros(len(nodes))
        if initial_seconds is None
        else np.asarray(initial_seconds, dtype=np.float64).reshape(-1)
    )
    if init.shape != nodes.shape:
        raise ValueError("initial_seconds: one value per station node")
    sources = list(zip(nodes.tolist(), init.tolist(), strict=True))
    return multi_source_seconds(graph, sources, cutoff_s, reverse=reverse) / 60.0


def _check_snap(graph: ModeGraph, snap: Snap) -> tuple[int, float, float]:
    e, f, m = int(snap[0]), float(snap[1]), float(snap[2])
    if not 0 <= e < graph.network.n_edges:
        raise ValueError(f"snap: edge index {e} is not in the network")
    if not (-1e-9 <= f <= 1 + 1e-9):
        raise ValueError(f"snap: fraction {f} must lie in 0..1")
    if not (m >= 0 and np.isfinite(m)):
        raise ValueError(f"snap: off-network metres {m} must be ≥ 0")
    return e, min(max(f, 0.0), 1.0), m


def point_sources(graph: ModeGraph, snap: Snap, *, reverse: bool = False) -> list[Source]:
    """The search sources of a snapped point: the ends of its edge the mode can travel between.

    Forward (from the point): an end reachable from the point along the edge, with the
    off-network walk plus the partial edge. Reverse (to the point): an end from which the
    point can be reached along the edge, with the same seconds. A point exactly on an end
    (fraction 0 or 1) has that end as a source in both directions: it stands at the crossing.
    """
    e, f, m = _check_snap(graph, snap)
    limit = graph.settings.max_off_network_m
    word = _MODE_WORDS[graph.mode]
    if m > limit:
        raise OffNetworkError(
            f"the point is {m:.0f} m from the nearest road usable {word}; "
            f"at most {limit:.0f} m is allowed"
        )
    fw, bw = bool(graph.costs.forward[e]), bool(graph.costs.backward[e])
    if not (fw or bw):
        hw = graph.network.highway[e]
        raise EdgeNotUsableError(
            f"the nearest road (edge {graph.network.edge_id[e]}, {hw}) cannot be used {word}; "
            f"snap to a road of allowed_classes({graph.mode.value!r})"
        )
    c = float(graph.costs.seconds[e])
    w = m / graph.settings.walk_mps
    src, dst = int(graph.network.src[e]), int(graph.network.dst[e])
    to_src, to_dst = w + f * c, w + (1.0 - f) * c
    # may the point and each end be joined along the edge in the search's direction? A point
    # exactly on an end stands at that crossing: no travel along the edge, whatever its arrow
    with_src = (fw if reverse else bw) or f == 0.0
    with_dst = (bw if reverse else fw) or f == 1.0
    out: list[Source] = []
    if not reverse:
        if with_dst:
            out.append((dst, to_dst))
        if with_src:
            out.append((src, to_src))
    else:
        if with_src:
            out.append((src, to_src))
        if with_dst:
            out.append((dst, to_dst))
    return out


def sources_from_points(
    graph: ModeGraph, snaps: Sequence[Snap], *, reverse: bool = True
) -> tuple[list[Source], NDArray[np.intp]]:
    """Sources of many snapped points (stations) and, per source, the position of its point."""
    out: list[Source] = []
    owner: list[int] = []
    for i, snap in enumerate(snaps):
        s = point_sources(graph, snap, reverse=reverse)
        out.extend(s)
        owner.extend([i] * len(s))
    return out, np.asarray(owner, dtype=np.intp)


def seconds_at_points(
    graph: ModeGraph,
    node_seconds: NDArray[np.float64],
    snaps: Sequence[Snap],
    *,
    reverse: bool = False,
    origin: Snap | None = None,
) -> NDArray[np.float64]:
    """Read a finished search at snapped points (inf where unreachable).

    Forward search from `origin`: seconds from the origin to each point. Reverse search from
    `origin`: seconds from each point to the origin. Each point's own off-network walk is
    included; a point on the origin's edge may also be reached along that edge directly.
    Target points are not rejected for being far off the network (the caller decides).
    """
    if len(snaps) == 0:
        return np.empty(0)
    arr = np.asarray([tuple(s) for s in snaps], dtype=np.float64)
    e = arr[:, 0].astype(np.intp)
    g = np.clip(arr[:, 1], 0.0, 1.0)
    w = graph.walk_seconds(arr[:, 2])
    if np.any((e < 0) | (e >= graph.network.n_edges)):
        raise ValueError("snaps: edge index not in the network")
    c = graph.costs.seconds[e]
    fw, bw = graph.costs.forward[e], graph.costs.backward[e]
    d_src = node_seconds[graph.network.src[e]]
    d_dst = node_seconds[graph.network.dst[e]]
    with np.errstate(invalid="ignore"):
        # a point exactly on an end stands at that crossing: reached there, whatever the arrow
        at_src, at_dst = g == 0.0, g == 1.0
        part_src = np.where(at_src, 0.0, g * c)
        part_dst = np.where(at_dst, 0.0, (1.0 - g) * c)
        if not reverse:  # arrive at the point from one of its edge's ends
            via_src = np.where(fw | at_src, d_src + part_src, np.inf)
            via_dst = np.where(bw | at_dst, d_dst + part_dst, np.inf)
        else:  # leave the point towards one of its edge's ends
            via_src = np.where(bw | at_src, d_src + part_src, np.inf)
            via_dst = np.where(fw | at_dst, d_dst + part_dst, np.inf)
        best = np.minimum(via_src, via_dst)
        if origin is not None:
            oe, of, om = _check_snap(graph, origin)
            same = e == oe
            if np.any(same):  # travel along the shared edge from fraction a to b
                a = np.where(same, of if not reverse else g, 0.0)
                b = np.where(same, g if not reverse else of, 0.0)
                # at the very same spot (b == a) no travel is needed, whatever the one-way rule
                ok = same & (np.where(b >= a, fw, bw) | (b == a))
                direct = np.where(ok, om / graph.settings.walk_mps + np.abs(b - a) * c, np.inf)
                best = np.minimum(best, direct)
    return np.asarray(best + w, dtype=np.float64)
