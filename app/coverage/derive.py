"""What a planner reads off a coverage model: summaries, gaps, over-density, redundancy.

Pure Python (numpy, shapely, h3). Definitions (the API and README repeat them):

* **Covered within T**: the cell's minutes to the nearest open station ≤ T.
* **Share of area / of demand within T**: Σ area (Σ weight) of covered cells over all cells of
  the area summarised; cells no station can reach count as not covered.
* **Stations per 10k demand**: open stations located in the area per 10,000 units of demand
  (with the default road weight: per 10,000 m = 10 km of street).
* **Gap**: a connected set (hexagons sharing an edge) of cells not covered within the target.
  Ranked by uncovered demand.
* **Over-dense cell**: reached by ≥ `dense_n` stations within `dense_minutes`.
* **Close pair**: two stations each within `pair_minutes` of the other (both directions).
* **Redundant station**: closing it alone would leave less than `redundant_pct` % of the demand
  it covers uncovered (every other cell it serves is within the target of another station).
  Judged one station at a time; closing two redundant neighbours together can open a gap, which
  `POST /coverage/scenario` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from app.coverage.analysis import CoverageModel, Reach
from app.coverage.grid import neighbours

#: Default thresholds (documented in README and the API): see the module docstring.
DEFAULT_BANDS = (5, 10, 15)
DEFAULT_DENSE_N = 3
DEFAULT_DENSE_MINUTES = 5.0
DEFAULT_PAIR_MINUTES = 3.0
DEFAULT_REDUNDANT_PCT = 10.0


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
        "demand_weighted_mean_minutes": (
            round(float(np.average(np.minimum(mins, 120.0), weights=w)), 2) if total_w > 0 else None
        ),
        "overdense_cells": int((model.dense_count[mask] >= DEFAULT_DENSE_N).sum()),
    }


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


@dataclass(frozen=True)
class StationCoverage:
    """What one station does for coverage within the target."""

    covered_demand: float  # demand of the cells it serves within the target
    exclusive_demand: float  # … of those, served by no other station
    cells: int
    exclusive_cells: int

    @property
    def loss_pct(self) -> float | None:
        if self.covered_demand <= 0:
            return None
        return 100.0 * self.exclusive_demand / self.covered_demand


def station_coverage(model: CoverageModel) -> list[StationCoverage]:
    """Covered and exclusively covered demand of every station (index order)."""
    r = model.reach.within(model.minutes_target * 60.0)
    n = r.n_points
    w = model.weights[r.cell]
    mult = np.bincount(r.cell, minlength=r.n_cells)
    only = mult[r.cell] == 1
    covered = np.bincount(r.point, weights=w, minlength=n)
    exclusive = np.bincount(r.point[only], weights=w[only], minlength=n)
    cells = np.bincount(r.point, minlength=n)
    ex_cells = np.bincount(r.point[only], minlength=n)
    return [
        StationCoverage(float(covered[i]), float(exclusive[i]), int(cells[i]), int(ex_cells[i]))
        for i in range(n)
    ]


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
