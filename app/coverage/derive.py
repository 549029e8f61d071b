"""What a planner reads off a coverage model: summaries, gaps, over-density, redundancy.

Pure Python (numpy, shapely, h3). Definitions (the API and README repeat them):

* **Covered within T**: the cell's minutes to the nearest open station ≤ T.
* **Share of area / of demand within T**: Σ area (Σ weight) of covered cells over all cells of
  the area summarised; cells no station can reach count as not covered.
* **Stations per 10k demand**: open stations located in the area per 10,000 units of demand
  (with the default road weight: per 10,000 m = 10 km of street).
* **Gap**: a connected set (hexagons sharing an edge) of cells not covered within the target.
  Ranked by uncovered demand.
* **Gap piece**: a part of a gap a planner can act on (`split_gaps`): inside one district (or
  outside every district), connected, at most the area one station reaches
  (`piece_cap_km2`) unless a single cell; with its best single new site (`piece_best_sites`).
* **Over-dense cell**: reached by ≥ `dense_n` stations within `dense_minutes` (default per
  mode, about 400 m: `DENSE_MINUTES_BY_MODE`).
* **Close pair**: two stations each within `pair_minutes` of the other (both directions).
* **Redundant station**: closing it alone would leave less than `redundant_pct` % of the demand
  it covers uncovered (every other cell it serves is within the target of another station)
  **and** its backup time (the mean extra minutes of the demand it is nearest to, to the next
  station) is at most `redundant_rel` × the median station's (`redundant_flags`).
  Judged one station at a time; closing two redundant neighbours together can open a gap, which
  `POST /coverage/scenario` shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from app.coverage.analysis import CoverageModel, Points, Reach, point_reach
from app.coverage.grid import CellSnaps, neighbours
from app.network.graph import ModeGraph

#: Default thresholds (documented in README and the API): see the module docstring.
DEFAULT_BANDS = (5, 10, 15)
DEFAULT_DENSE_N = 3
DEFAULT_DENSE_MINUTES = 5.0
DEFAULT_PAIR_MINUTES = 3.0
DEFAULT_REDUNDANT_PCT = 10.0
#: Over-density radius per mode: about the same distance (≈ 400 m of street) whatever the
#: mode — 5 min on foot at 5 km/h (417 m), 2 min by e-bike at 15 km/h (1.7 min rounded to
#: whole minutes, as a run's radius is), 1 min by car at 20-40 km/h on city streets.
#: Station crowding is a matter of distance; a fixed 5 min would mean 1.25 km by e-bike.
DENSE_MINUTES_BY_MODE = {"walk": 5.0, "ebike": 2.0, "car": 1.0}
#: A redundant station's backup time is at most this share of the median station's.
DEFAULT_REDUNDANT_REL = 0.5


def dense_minutes_for(mode: str) -> float:
    """The default over-density radius of `mode` (DENSE_MINUTES_BY_MODE)."""
    return DENSE_MINUTES_BY_MODE.get(mode, DEFAULT_DENSE_MINUTES)


def area_summary(
    model: CoverageModel,
    mask: NDArray[np.bool_],
    area_km2: NDArray[np.float64],
    bands: Sequence[float],
    n_stations: int,
) -> dict[str, Any]:
    """Coverage numbers of the cells selected by `mask`."""
    w = model.weights[mask]
    a = area_km2[mask]
    mins = model.minutes[mask]
    total_w = float(w.sum())
    total_a = float(a.sum())
    within = []
    for b in bands:
        ok = mins <= b + 1e-9
        within.append(
            {
                "minutes": b,
                "area_km2": round(float(a[ok].sum()), 3),
                "area_share": _share(float(a[ok].sum()), total_a),
                "demand": float(w[ok].sum()),
                "demand_share": _share(float(w[ok].sum()), total_w),
            }
        )
    target_ok = mins <= model.minutes_target + 1e-9
    finite = mins[np.isfinite(mins)]
    return {
        "cells": int(mask.sum()),
        "area_km2": round(total_a, 3),
        "demand": total_w,
        "stations": int(n_stations),
        "stations_per_10k_demand": (
            round(n_stations / total_w * 10_000, 4) if total_w > 0 else None
        ),
        "within": within,
        "uncovered_demand": float(w[~target_ok].sum()),
        "unreachable_cells": int(np.isinf(mins).sum()),
        "median_minutes": round(float(np.median(finite)), 2) if len(finite) else None,
        "demand_median_minutes": round_up(demand_median(mins, w), 2),
        "demand_weighted_mean_minutes": (
            round(float(np.average(np.minimum(mins, 120.0), weights=w)), 2) if total_w > 0 else None
        ),
        "overdense_cells": int((model.dense_count[mask] >= DEFAULT_DENSE_N).sum()),
    }


def demand_median(minutes: NDArray[np.float64], weights: NDArray[np.float64]) -> float | None:
    """The demand-weighted (lower) median of `minutes`: the least m with at least half of the
    demand within m (unreachable cells are +inf; zero-demand cells play no part). It agrees
    with the demand shares by construction: share within T ≥ 50 % ⟺ median ≤ T. None without
    demand; +inf when more than half of the demand is unreachable."""
    keep = weights > 0
    m, w = minutes[keep], weights[keep]
    total = float(w.sum())
    if total <= 0:
        return None
    order = np.argsort(m, kind="stable")
    cum = np.cumsum(w[order])
    # float sums: "at least half" with a relative tolerance, so 0.1 + 0.2 counts as 0.3
    i = int(np.searchsorted(cum, total / 2 * (1 - 1e-12), side="left"))
    return float(m[order][min(i, len(order) - 1)])


def round_up(x: float | None, decimals: int) -> float | None:
    """`x` rounded up to `decimals` (None and +inf, which JSON lacks, as None). Up, so that a
    median shown as "15.0" is never one a band of 15 minutes leaves out; within the bands'
    1e-9 tolerance it stays put."""
    if x is None or not math.isfinite(x):
        return None
    scale = 10**decimals
    return math.ceil(x * scale - 1e-6) / scale


def district_of_points(
    lon: NDArray[np.float64], lat: NDArray[np.float64], outlines: Sequence[Any]
) -> NDArray[np.intp]:
    """Index of the outline containing each point (-1: none); with nested outlines the
    smallest containing one wins. Prepared geometries, vectorised point tests."""
    out = np.full(len(lon), -1, dtype=np.intp)
    for i in sorted(range(len(outlines)), key=lambda k: -outlines[k].area):
        g = outlines[i]
        shapely.prepare(g)
        # only points inside the outline's box are tested exactly
        x0, y0, x1, y1 = g.bounds
        box = np.flatnonzero((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1))
        inside = box[shapely.contains_xy(g, lon[box], lat[box])]
        out[inside] = i
    return out


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


@dataclass(frozen=True)
class Gap:
    """A connected uncovered area."""

    rank: int
    cells: NDArray[np.intp]
    demand: float
    area_km2: float
    max_minutes: float  # inf when part of it is unreachable
    mean_minutes: float | None
    geometry: dict[str, Any]  # GeoJSON (Multi)Polygon, WGS-84
    districts: list[str]
    #: cells no station can reach (no road the mode may use within the off-network limit)
    unreachable_cells: int = 0
    #: the longest time over the cells a station can reach (None: none can)
    max_reachable_minutes: float | None = None


def find_gaps(
    model: CoverageModel,
    h3_cells: NDArray[np.int64],
    area_km2: NDArray[np.float64],
    district_of_cell: NDArray[np.object_],
    *,
    mask: NDArray[np.bool_] | None = None,
    limit: int | None = None,
    min_demand: float = 0.0,
) -> list[Gap]:
    """Connected uncovered areas (cells beyond the target), largest uncovered demand first."""
    gap = ~model.covered()
    if mask is not None:
        gap &= mask
    idx = np.flatnonzero(gap)
    if len(idx) == 0:
        return []
    sub = h3_cells[idx]
    rows, cols = neighbours(sub)
    m = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(idx), len(idx))).tocsr()
    k, labels = connected_components(m, directed=False)
    demand = np.bincount(labels, weights=model.weights[idx], minlength=k)
    order = np.lexsort((np.arange(k), -demand))
    out: list[Gap] = []
    for comp in order:
        if demand[comp] < min_demand or (limit is not None and len(out) >= limit):
            break
        members = idx[labels == comp]
        mins = model.minutes[members]
        finite = mins[np.isfinite(mins)]
        shape = h3.cells_to_h3shape([h3.int_to_str(int(c)) for c in h3_cells[members]])
        geom = shape.__geo_interface__
        districts = sorted({str(d) for d in district_of_cell[members] if d})
        out.append(
            Gap(
                rank=len(out) + 1,
                cells=members,
                demand=float(demand[comp]),
                area_km2=float(area_km2[members].sum()),
                max_minutes=float(mins.max()),
                mean_minutes=float(finite.mean()) if len(finite) else None,
                geometry=_lnglat_geojson(geom),
                districts=districts,
                unreachable_cells=int(len(mins) - len(finite)),
                max_reachable_minutes=float(finite.max()) if len(finite) else None,
            )
        )
    return out


def _lnglat_geojson(geo: dict[str, Any]) -> dict[str, Any]:
    """h3's __geo_interface__ is already (lng, lat); normalise tuples to lists."""

    def fix(c: Any) -> Any:
        if isinstance(c, tuple | list) and c and isinstance(c[0], float | int):
            return [float(c[0]), float(c[1])]
        return [fix(x) for x in c]

    return {"type": geo["type"], "coordinates": fix(geo["coordinates"])}


# ------------------------------------------------------------------------------------------
# Gap pieces: what a planner can act on
# ------------------------------------------------------------------------------------------

#: Road distance over straight-line distance on city streets (a usual circuity figure): the
#: radius one station reaches is the distance travelled in the target time over this.
DETOUR_FACTOR = 1.3
#: Candidate sites tried per piece at most (thinned to the heaviest cell per coarser H3
#: parent beyond this, as the site suggestions do).
MAX_PIECE_CANDIDATES = 100


def piece_cap_km2(speed_kmh: float, minutes: float) -> float:
    """The size cap of a gap piece: the disc one station reaches in `minutes` at `speed_kmh`
    (radius = road distance / DETOUR_FACTOR), in km². Walking 15 min: 2.9 km²; e-bike: 26 km²."""
    if not (speed_kmh > 0 and minutes > 0):
        raise ValueError("speed_kmh and minutes must be positive")
    r = speed_kmh * minutes / 60.0 / DETOUR_FACTOR
    return math.pi * r * r


@dataclass(frozen=True)
class GapPiece:
    """A part of a gap a planner can act on: connected, inside one district (or outside
    every district), at most `cap_km2` unless it is a single cell."""

    rank: int  # by uncovered demand, whole city
    gap: int  # rank of the connected gap it is part of (`find_gaps` without a mask)
    district: str | None
    cells: NDArray[np.intp]
    demand: float
    area_km2: float
    unreachable_cells: int
    max_minutes: float | None  # over the cells a station can reach (None: none can)
    mean_minutes: float | None
    geometry: dict[str, Any]  # GeoJSON (Multi)Polygon, WGS-84


def _components(
    n: int, rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> tuple[int, NDArray[np.int32]]:
    if n == 0:
        return 0, np.empty(0, dtype=np.int32)
    m = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    k, labels = connected_components(m, directed=False)
    return int(k), labels


def _connected_parts(
    pos: NDArray[np.intp], rows: NDArray[np.intp], cols: NDArray[np.intp]
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]]:
    """The connected components of the set `pos` (edges `rows`–`cols` in local positions),
    each with its own edges in its own local positions."""
    k, lab = _components(len(pos), rows, cols)
    node_order = np.argsort(lab, kind="stable")
    node_starts = np.searchsorted(lab[node_order], np.arange(k + 1))
    local = np.empty(len(pos), dtype=np.intp)
    local[node_order] = np.arange(len(pos)) - node_starts[lab[node_order]]
    edge_lab = lab[rows]
    edge_order = np.argsort(edge_lab, kind="stable")
    edge_starts = np.searchsorted(edge_lab[edge_order], np.arange(k + 1))
    for comp in range(k):
        nodes = node_order[node_starts[comp] : node_starts[comp + 1]]
        es = edge_order[edge_starts[comp] : edge_starts[comp + 1]]
        yield pos[nodes], local[rows[es]], local[cols[es]]


def _split_capped(
    pos: NDArray[np.intp],
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    area: NDArray[np.float64],
    cap: float,
) -> list[NDArray[np.intp]]:
    """A connected set cut until every part is ≤ `cap` (or one cell): recursive bisection
    along the longer axis of the cell centres, at the area quantile that leaves
    ⌊n/2⌋ of the n = ⌈area/cap⌉ pieces it needs on one side; each side is split into its
    connected components before going on, so every part stays connected."""
    out: list[NDArray[np.intp]] = []
    stack = [(pos, rows, cols)]
    while stack:
        p, r, c = stack.pop()
        a = area[p]
        total = float(a.sum())
        if total <= cap * (1 + 1e-9) or len(p) == 1:
            out.append(p)
            continue
        n = math.ceil(total / cap - 1e-9)
        share = (n // 2) / n
        xs, ys = x[p], y[p]
        coord = xs if np.ptp(xs) >= np.ptp(ys) else ys
        order = np.lexsort((p, coord))
        cum = np.cumsum(a[order])
        k = int(np.searchsorted(cum, share * total - 1e-12, side="left")) + 1
        k = min(max(k, 1), len(p) - 1)
        left = np.zeros(len(p), dtype=bool)
        left[order[:k]] = True
        for side in (left, ~left):
            loc = np.flatnonzero(side)
            remap = np.full(len(p), -1, dtype=np.intp)
            remap[loc] = np.arange(len(loc))
            keep = side[r] & side[c]
            for sub, r2, c2 in _connected_parts(loc, remap[r[keep]], remap[c[keep]]):
                stack.append((p[sub], r2, c2))
    return out


def split_gaps(
    model: CoverageModel,
    h3_cells: NDArray[np.int64],
    area_km2: NDArray[np.float64],
    district_of_cell: NDArray[np.object_],
    cap_km2: float,
) -> list[GapPiece]:
    """Every uncovered cell in exactly one piece: the gaps cut along district lines (cells
    outside every district form their own pieces), each part then cut to at most `cap_km2`
    (`_split_capped`); every piece connected. Largest uncovered demand first (ties: the
    piece holding the lowest cell position)."""
    if not cap_km2 > 0:
        raise ValueError("cap_km2 must be positive")
    idx = np.flatnonzero(~model.covered())
    if len(idx) == 0:
        return []
    rows, cols = neighbours(h3_cells[idx])
    k, labels = _components(len(idx), rows, cols)
    w = model.weights[idx]
    demand = np.bincount(labels, weights=w, minlength=k)
    region_rank = np.empty(k, dtype=np.intp)
    region_rank[np.lexsort((np.arange(k), -demand))] = np.arange(1, k + 1)
    dist = np.asarray(district_of_cell, dtype=object)[idx]
    same = np.asarray(dist[rows] == dist[cols], dtype=bool)
    latlng = np.asarray([h3.cell_to_latlng(h3.int_to_str(int(c))) for c in h3_cells[idx]])
    y = latlng[:, 0]
    x = latlng[:, 1] * math.cos(math.radians(float(y.mean())))
    area = np.asarray(area_km2, dtype=np.float64)[idx]
    parts: list[NDArray[np.intp]] = []
    for pos, r, c in _connected_parts(np.arange(len(idx)), rows[same], cols[same]):
        parts.extend(_split_capped(pos, r, c, x, y, area, cap_km2))
    parts = [np.sort(p) for p in parts]
    pdemand = [float(w[p].sum()) for p in parts]
    order = sorted(range(len(parts)), key=lambda i: (-pdemand[i], int(parts[i][0])))
    out: list[GapPiece] = []
    for i in order:
        p = parts[i]
        members = idx[p]
        mins = model.minutes[members]
        finite = mins[np.isfinite(mins)]
        d = dist[p[0]]
        shape = h3.cells_to_h3shape([h3.int_to_str(int(c)) for c in h3_cells[members]])
        out.append(
            GapPiece(
                rank=len(out) + 1,
                gap=int(region_rank[labels[p[0]]]),
                district=str(d) if d else None,
                cells=members,
                demand=pdemand[i],
                area_km2=float(area[p].sum()),
                unreachable_cells=int(len(mins) - len(finite)),
                max_minutes=float(finite.max()) if len(finite) else None,
                mean_minutes=float(finite.mean()) if len(finite) else None,
                geometry=_lnglat_geojson(shape.__geo_interface__),
            )
        )
    return out


@dataclass(frozen=True)
class PieceSite:
    """The best single new site inside a gap piece."""

    cell: int  # position of the candidate cell (its street point is the site)
    gain: float  # uncovered demand it brings within the target, anywhere
    gain_in_piece: float  # … of which inside the piece
    candidates: int  # cells tried


def best_single_site(
    cover: Any,
    weights: NDArray[np.float64],
    covered: NDArray[np.bool_],
    in_piece: NDArray[np.bool_],
) -> tuple[int, float, float] | None:
    """The row of the boolean (candidates × cells) `cover` adding the most uncovered demand
    (ties: more of it inside the piece, then the first row): (row, gain, gain in the piece)."""
    n = cover.shape[0]
    if n == 0:
        return None
    open_w = np.where(covered, 0.0, weights)
    g_all = np.asarray(cover @ open_w, dtype=np.float64).ravel()
    g_in = np.asarray(cover @ np.where(in_piece, open_w, 0.0), dtype=np.float64).ravel()
    j = int(np.lexsort((np.arange(n), -g_in, -g_all))[0])
    return j, float(g_all[j]), float(g_in[j])


def piece_candidates(
    piece: GapPiece, h3_cells: NDArray[np.int64], weights: NDArray[np.float64], snaps: CellSnaps
) -> NDArray[np.intp]:
    """The piece's cells with a street of the mode of their own (`off_m == 0`: their street
    point is the site, inside the cell — as for suggestions, a cell reached only by a walk
    to a road elsewhere is never a site), thinned to the heaviest cell per coarser H3 parent
    until at most MAX_PIECE_CANDIDATES remain."""
    own = snaps.reachable[piece.cells] & (snaps.off_m[piece.cells] == 0)
    idx = piece.cells[own]
    if len(idx) == 0:
        return idx
    res = h3.get_resolution(h3.int_to_str(int(h3_cells[idx[0]])))
    while len(idx) > MAX_PIECE_CANDIDATES and res > 0:
        res -= 1
        parents = np.asarray(
            [h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(x)), res)) for x in h3_cells[idx]],
            dtype=np.int64,
        )
        order = np.lexsort((idx, -weights[idx], parents))
        first = np.ones(len(order), dtype=bool)
        first[1:] = parents[order[1:]] != parents[order[:-1]]
        idx = np.sort(idx[order[first]])
    return np.sort(idx)


def piece_best_sites(
    graph: ModeGraph,
    snaps: CellSnaps,
    h3_cells: NDArray[np.int64],
    weights: NDArray[np.float64],
    covered: NDArray[np.bool_],
    pieces: Sequence[GapPiece],
    minutes: float,
) -> list[PieceSite | None]:
    """For each piece, the candidate cell (`piece_candidates`) whose street point, as one new
    station, brings the most uncovered demand within `minutes` (existing stations kept): one
    batch of bounded searches for the candidates of all pieces. None: no cell of the piece is
    on the network."""
    cands = [piece_candidates(p, h3_cells, weights, snaps) for p in pieces]
    allc = np.concatenate(cands) if cands else np.empty(0, dtype=np.intp)
    if len(allc) == 0:
        return [None] * len(pieces)
    pts = Points(snaps.edge[allc], snaps.fraction[allc], snaps.off_m[allc])
    cover = point_reach(graph, pts, snaps, minutes * 60.0).matrix()
    out: list[PieceSite | None] = []
    start = 0
    for p, c in zip(pieces, cands, strict=True):
        rows = cover[start : start + len(c)]
        start += len(c)
        in_piece = np.zeros(len(weights), dtype=bool)
        in_piece[p.cells] = True
        best = best_single_site(rows, weights, covered, in_piece)
        if best is None:
            out.append(None)
            continue
        j, gain, gain_in = best
        out.append(PieceSite(int(c[j]), gain, gain_in, len(c)))
    return out


@dataclass(frozen=True)
class StationCoverage:
    """What one station does for coverage within the target."""

    covered_demand: float  # demand of the cells it serves within the target
    exclusive_demand: float  # … of those, served by no other station
    cells: int
    exclusive_cells: int
    #: demand of the cells whose nearest station it is (within the target; ties: lower index)
    nearest_demand: float = 0.0
    #: backup time: demand-weighted mean extra minutes those cells would need to reach their
    #: next station if this one closed (capped at the target: a cell losing coverage counts
    #: target − its minutes); 0 when it is nobody's nearest, None when it serves nothing
    backup_minutes: float | None = None

    @property
    def loss_pct(self) -> float | None:
        if self.covered_demand <= 0:
            return None
        return 100.0 * self.exclusive_demand / self.covered_demand


def station_coverage(model: CoverageModel) -> list[StationCoverage]:
    """Covered and exclusively covered demand and the backup time of every station (index
    order)."""
    target_s = model.minutes_target * 60.0
    r = model.reach.within(target_s)
    n = r.n_points
    w = model.weights[r.cell]
    mult = np.bincount(r.cell, minlength=r.n_cells)
    only = mult[r.cell] == 1
    covered = np.bincount(r.point, weights=w, minlength=n)
    exclusive = np.bincount(r.point[only], weights=w[only], minlength=n)
    cells = np.bincount(r.point, minlength=n)
    ex_cells = np.bincount(r.point[only], minlength=n)
    # per cell: its nearest station (first in (cell, seconds, point) order) and the next one
    o = np.lexsort((r.point, r.seconds, r.cell))
    c, p, s = r.cell[o], r.point[o], r.seconds[o]
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    second = np.zeros(len(c), dtype=bool)
    second[1:] = first[:-1] & ~first[1:]
    nxt = np.full(r.n_cells, target_s)
    nxt[c[second]] = s[second]
    c1, p1 = c[first], p[first]
    w1 = model.weights[c1]
    near = np.bincount(p1, weights=w1, minlength=n)
    extra = np.bincount(p1, weights=w1 * (nxt[c1] - s[first]) / 60.0, minlength=n)
    out = []
    for i in range(n):
        backup = None
        if covered[i] > 0:
            backup = float(extra[i] / near[i]) if near[i] > 0 else 0.0
        out.append(
            StationCoverage(
                float(covered[i]),
                float(exclusive[i]),
                int(cells[i]),
                int(ex_cells[i]),
                float(near[i]),
                backup,
            )
        )
    return out


def median_backup(cover: Sequence[StationCoverage]) -> float | None:
    """The median backup time of the stations that serve some demand (None: none do)."""
    values = [c.backup_minutes for c in cover if c.backup_minutes is not None]
    return float(np.median(values)) if values else None


def redundant_flags(
    cover: Sequence[StationCoverage],
    redundant_pct: float = DEFAULT_REDUNDANT_PCT,
    redundant_rel: float = DEFAULT_REDUNDANT_REL,
) -> list[bool]:
    """Which stations are redundant: closing one alone leaves less than `redundant_pct` % of
    the demand it serves beyond the target **and** its backup time is at most
    `redundant_rel` × the median station's. The first test alone flags nearly every station
    of a fast mode (by e-bike most cells reach several stations within 15 min); the second
    keeps those whose workers would hardly notice the closure compared with a typical
    station's, whatever the mode's speed."""
    med = median_backup(cover)
    out = []
    for c in cover:
        loss, backup = c.loss_pct, c.backup_minutes
        out.append(
            loss is not None
            and backup is not None
            and med is not None
            and loss < redundant_pct
            and backup <= redundant_rel * med + 1e-12
        )
    return out


#: A suggested site is useful when it adds at least this share of the first site's gain …
USEFUL_SHARE_OF_FIRST = 0.10
#: … and at least this share of all demand (0.1 %).
USEFUL_MIN_DEMAND_SHARE = 0.001


def useful_sites(gains: Sequence[float], total: float) -> list[bool]:
    """Which of the greedy's picks (gains in pick order, each marginal to the earlier ones)
    are worth a station: a gain of at least USEFUL_SHARE_OF_FIRST of the first pick's and
    USEFUL_MIN_DEMAND_SHARE of all demand `total`. Below, a station adds less than a tenth
    of what the best site adds (the budget does more elsewhere: another district, another
    mode), or next to nothing of the whole."""
    if not gains or total <= 0:
        return [False] * len(gains)
    floor = max(USEFUL_SHARE_OF_FIRST * float(gains[0]), USEFUL_MIN_DEMAND_SHARE * total)
    return [bool(g > 0 and g >= floor - 1e-9 * total) for g in gains]


def close_pairs(station_reach: Reach, pair_minutes: float) -> list[tuple[int, int, float, float]]:
    """Station pairs (a < b) each within `pair_minutes` of the other: (a, b, a→b min, b→a min).

    `station_reach` is `point_reach` with the stations as both points and "cells": an entry
    (point=a, cell=b, seconds) is the time from station b to station a.
    """
    r = station_reach.within(pair_minutes * 60.0)
    t = {
        (int(a), int(b)): float(s)
        for a, b, s in zip(r.point.tolist(), r.cell.tolist(), r.seconds.tolist(), strict=True)
        if a != b
    }
    out = []
    for (a, b), s_ba in t.items():
        if a < b and (b, a) in t:
            out.append((a, b, t[(b, a)] / 60.0, s_ba / 60.0))
    out.sort(key=lambda x: (max(x[2], x[3]), x[0], x[1]))
    return out
