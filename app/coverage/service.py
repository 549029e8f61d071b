"""Coverage use cases: run (cached, in the background when slow), summaries, cells, gaps,
over-density, site suggestions and what-if scenarios.

A **run** is one analysis of the open stations against the demand cells for one mode and
target. Its key is a digest of everything the answer depends on (`run_key`): the stations
(fingerprint of every row's id and version), the live network version, the travel settings,
the district outlines, the demand layer and the computed parameters, each from a small finite
set (`make_params`). Runs live in memory (`CoverageEngine`: LRU within a count and a memory
budget) and their cells are stored in `coverage_runs` / `coverage_cells` for vector tiles and
downloads.

Public compute is bounded: one run computes at a time and a few wait (more: 503 with
Retry-After); identical requests join one run; a run nobody wants any more is dropped or
stopped. The heavy part (grid, one multi-source search, one bounded search per station) runs
in a separate process at idle CPU priority, fed with data read beforehand in one short read
unit, so it holds neither a database connection nor the server's GIL. A request waits up to
`coverage_wait_s` for it (Wuhan: ~1-3 s) without a connection or a thread, and otherwise gets
202 with a status URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import math
import multiprocessing
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import anyio.to_thread
import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from app.coverage import bands as bands_mod
from app.coverage import derive, extent, queries
from app.coverage.analysis import CoverageModel, Points, build_model, point_reach
from app.coverage.grid import (
    DEFAULT_RESOLUTION,
    RESOLUTIONS,
    CellSnaps,
    DemandGrid,
    build_grid,
    snap_points,
)
from app.coverage.naming import NamedStreets
from app.errors import InvalidInputError, NotFoundError, ServiceUnavailableError
from app.geo import coords
from app.geo.coords import CoordSys
from app.hours.state import station_state
from app.network import queries as network_queries
from app.network.graph import ModeGraph, RoadNetwork, build_graph
from app.network.service import NetworkState
from app.network.travel import Mode, TravelSettings

if TYPE_CHECKING:
    from app.config import Settings

MAX_TARGET_MINUTES = 60
#: What a run may be asked for: each value of these shapes a separate computation, so each is
#: a small finite set (a free float would make every request a new run).
TARGET_MINUTES = range(1, MAX_TARGET_MINUTES + 1)
BAND_MINUTES = range(1, MAX_TARGET_MINUTES + 1)
MAX_BANDS = 6
DENSE_MINUTES = range(1, 16)
#: Close-pair radius of the over-density view (one bounded search per station per value).
PAIR_MINUTES = range(1, 16)
#: Units of the built-in demand weights. Street length is counted in linear metres of street
#: (延米, the unit Chinese road statistics use: "需求（街道延米）", "每万街道延米驿站数").
WEIGHT_UNITS = {
    "road": {"zh": "街道延米", "en": "m of street"},
    "area": {"zh": "平方公里", "en": "km²"},
}


@dataclass(frozen=True)
class Params:
    """What a run is asked for (validated by `make_params`)."""

    mode: Mode = Mode.WALK
    minutes: int = 15
    bands: tuple[int, ...] = derive.DEFAULT_BANDS
    resolution: int = DEFAULT_RESOLUTION
    weight: str = "road"
    open_at: datetime | None = None
    dense_minutes: float = derive.DEFAULT_DENSE_MINUTES

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "minutes": self.minutes,
            "bands": list(self.bands),
            "resolution": self.resolution,
            "weight": self.weight,
            "open_at": self.open_at.isoformat() if self.open_at else None,
            "dense_minutes": self.dense_minutes,
        }

    def computed(self) -> dict[str, Any]:
        """The parameters the computation depends on: not the bands (they only shape the
        summaries, derived per request) and not `open_at` itself (the run key carries the
        set of stations it closes instead)."""
        out = self.as_dict()
        del out["bands"], out["open_at"]
        return out


def _whole(value: object) -> int | None:
    """`value` as a whole number (5, 5.0, "5"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _span(values: range) -> str:
    return f"{values.start}–{values.stop - 1}"


def make_params(
    *,
    mode: Mode | str = Mode.WALK,
    minutes: int = 15,
    bands: str | Sequence[int] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    weight: str = "road",
    open_at: datetime | None = None,
    dense_minutes: float | None = None,
) -> Params:
    """Validated parameters (InvalidInputError naming the field, in Chinese and English,
    listing what is allowed). `dense_minutes` None: the mode's default (about the same
    distance by every mode, `derive.DENSE_MINUTES_BY_MODE`)."""
    try:
        m = Mode(mode)
    except ValueError as exc:
        raise InvalidInputError(
            "mode: 出行方式须为 walk、ebike 或 car / one of walk, ebike, car", field="mode"
        ) from exc
    target = _whole(minutes)
    if target is None or target not in TARGET_MINUTES:
        raise InvalidInputError(
            f"minutes: 目标时间须为 {_span(TARGET_MINUTES)} 的整数分钟 / the target must be "
            f"whole minutes {_span(TARGET_MINUTES)}; got {minutes!r}",
            field="minutes",
        )
    if bands is None:
        band_list = sorted({b for b in derive.DEFAULT_BANDS if b <= target} | {target})
    else:
        raw = bands.split(",") if isinstance(bands, str) else list(bands)
        parsed = [_whole(b) for b in raw if str(b).strip()]
        if (
            not parsed
            or any(b is None or b not in BAND_MINUTES for b in parsed)
            or len(set(parsed)) > MAX_BANDS
        ):
            raise InvalidInputError(
                f"bands: 1 至 {MAX_BANDS} 个以逗号分隔的整数分钟，每个 {_span(BAND_MINUTES)} / "
                f"1 to {MAX_BANDS} comma-separated whole minutes, each {_span(BAND_MINUTES)}, "
                f"e.g. 5,10,15; got {bands!r}",
                field="bands",
            )
        band_list = sorted({int(b) for b in parsed if b is not None})
    res = _whole(resolution)
    if res is None or res not in RESOLUTIONS:
        allowed = ", ".join(map(str, RESOLUTIONS))
        raise InvalidInputError(
            f"resolution: H3 分辨率须为 {allowed} 之一 / H3 resolution {allowed} "
            "(8 ≈ 0.74 km², 9 ≈ 0.10 km², 10 ≈ 0.015 km² per cell)",
            field="resolution",
        )
    if dense_minutes is None:
        dense_minutes = derive.dense_minutes_for(m.value)
    dense = _whole(dense_minutes)
    if dense is None or dense not in DENSE_MINUTES:
        raise InvalidInputError(
            f"dense_minutes: 过密半径须为 {_span(DENSE_MINUTES)} 的整数分钟 / the over-density "
            f"radius must be whole minutes {_span(DENSE_MINUTES)}; got {dense_minutes!r}",
            field="dense_minutes",
        )
    return Params(
        mode=m,
        minutes=target,
        bands=tuple(band_list),
        resolution=res,
        weight=weight,
        open_at=open_at,
        dense_minutes=float(dense),
    )


def check_pair_minutes(value: float) -> float:
    """The close-pair radius, whole minutes from PAIR_MINUTES (InvalidInputError)."""
    whole = _whole(value)
    if whole is None or whole not in PAIR_MINUTES:
        raise InvalidInputError(
            f"pair_minutes: 须为 {_span(PAIR_MINUTES)} 的整数分钟 / whole minutes "
            f"{_span(PAIR_MINUTES)}; got {value!r}",
            field="pair_minutes",
        )
    return float(whole)


@dataclass(frozen=True, eq=False)
class Inputs:
    """Everything a run reads from the database, read before the worker thread starts."""

    params: Params
    network_version: int
    graph: ModeGraph
    stations: queries.StationRows
    districts: queries.DistrictShapes
    demand_cells: NDArray[np.int64] | None
    demand_weights: NDArray[np.float64] | None
    demand_unit: dict[str, str]
    demand_fingerprint: str
    settings_key: str
    time_zone: str
    calendar: Any
    #: Street name of each edge (by index) when the network has names (see site_labels).
    edge_names: list[str | None] | None = None

    @cached_property
    def open_mask(self) -> tuple[NDArray[np.bool_], list[dict[str, Any]]]:
        """Which stations serve in this run, and those left out with the reason."""
        return _station_open_mask(self)

    @cached_property
    def key(self) -> str:
        """The run's identity (see `run_key`)."""
        closed = []
        at = self.params.open_at
        if at is not None:
            closed = [e["id"] for e in self.open_mask[1] if e["reason"] == "closed_at_open_at"]
            # a temporary closure decided otherwise at open_at than now: still closed then
            # (the id), or already reopened then (minus the id)
            st = self.stations
            for i, until in enumerate(st.closed_until):
                if until is not None and (st.status[i] == "open") != (until <= at):
                    closed.append(int(st.ids[i]) if st.status[i] == "open" else -int(st.ids[i]))
        return run_key(
            stations=self.stations.fingerprint,
            network_version=self.network_version,
            settings=self.settings_key,
            districts=self.districts.fingerprint,
            demand=self.demand_fingerprint,
            params=self.params,
            closed_at=closed,
        )


def run_key(
    *,
    stations: str,
    network_version: int,
    settings: str,
    districts: str,
    demand: str,
    params: Params,
    closed_at: Sequence[int] = (),
) -> str:
    """A digest of everything a run's answer depends on: the stations, network, travel
    settings, districts and demand (their fingerprints) and the computed parameters.
    `open_at` enters as the stations closed at that instant (`closed_at`): any instant
    closing the same ones is the same run, and one closing none is the run without open_at.
    The bands do not enter at all (each request derives its own summary from the run)."""
    closed = None
    if closed_at:
        closed = hashlib.sha256(json.dumps(sorted(closed_at)).encode()).hexdigest()[:16]
    raw = json.dumps(
        [
            "coverage-v2",
            stations,
            network_version,
            settings,
            districts,
            demand,
            params.computed(),
            closed,
        ],
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(eq=False)
class Run:
    """A finished analysis and everything derived from it on demand."""

    key: str
    params: Params
    network_version: int
    graph: ModeGraph
    grid: DemandGrid
    cell_snaps: CellSnaps
    weights: NDArray[np.float64]
    unit: dict[str, str]
    district_codes: list[str]
    district_names: list[tuple[str, str | None]]
    district_geoms: list[Any]
    cell_district: NDArray[np.intp]  # index into district_codes, -1 outside all
    station_ids: NDArray[np.int64]  # stations in the model (index = model point index)
    station_names: list[str]
    station_lon: NDArray[np.float64]
    station_lat: NDArray[np.float64]
    station_district: NDArray[np.intp]
    excluded: list[dict[str, Any]]  # stations left out and why
    model: CoverageModel
    seconds: float
    created_at: float = field(default_factory=time.time)
    run_id: int | None = None
    #: The cells' COPY lines, made by the compute process; dropped once stored.
    cell_rows: str | None = field(default=None, repr=False)
    #: Street name of each edge (by index), None without names: names suggested sites.
    edge_names: list[str | None] | None = field(default=None, repr=False)
    _memo: dict[Any, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- helpers ---------------------------------------------------------------------------
    def district_mask(self, district: str | None) -> NDArray[np.bool_]:
        if district is None:
            return np.ones(self.grid.n_cells, dtype=bool)
        try:
            i = self.district_codes.index(district)
        except ValueError as exc:
            known = ", ".join(self.district_codes[:20]) or "none loaded"
            raise NotFoundError(
                f"district: no district {district!r} (known: {known})", field="district"
            ) from exc
        return np.asarray(self.cell_district == i)

    def cell_district_codes(self) -> list[str | None]:
        return [self.district_codes[i] if i >= 0 else None for i in self.cell_district.tolist()]

    def band(self, minutes: float) -> str:
        return band_label(minutes, self.params.bands, self.params.minutes)

    def shown_minutes(self, minutes: float | None) -> float | None:
        """The minutes as shown beside `band(minutes)`: rounded up to 0.1, so in that band."""
        return bands_mod.shown_minutes(minutes)

    def view(self, params: Params) -> Run:
        """This run as asked for with `params` (same computation: other bands or another
        `open_at` closing the same stations); shares the arrays, memo and stored cells."""
        if params == self.params:
            return self
        return replace(self, params=params)

    def meta(self) -> dict[str, Any]:
        return {
            "run": self.key,
            "run_id": self.run_id,
            "params": self.params.as_dict(),
            "network_version": self.network_version,
            # 0: one-way rules are modelled but cannot act on this network (docs/planner.md)
            "network_oneway_edges": int(np.count_nonzero(self.graph.network.oneway)),
            "demand_unit": self.unit,
            "stations_used": len(self.station_ids),
            "stations_excluded": self.excluded,
            "computed_seconds": round(self.seconds, 3),
        }

    # -- summaries -------------------------------------------------------------------------
    def extents(self) -> tuple[extent.NetworkOutline, list[extent.DistrictExtent]]:
        """The network's outline and each district's area inside it (`app.coverage.extent`),
        computed once per run (its views share the memo)."""
        found = self._memo.get("extents")
        if found is None:
            net = self.graph.network
            outline = extent.network_outline(net.lon, net.lat)
            found = (outline, extent.district_extents(self.district_geoms, outline))
            self._memo["extents"] = found
        return found

    def summary(self, district: str | None = None) -> dict[str, Any]:
        self.district_mask(district)  # 404 for an unknown district
        memo_key = ("summary", district, self.params.bands)
        if memo_key in self._memo:
            return {**self.meta(), **self._memo[memo_key]}
        overall = derive.area_summary(
            self.model,
            self.district_mask(None),
            self.grid.area_km2,
            self.params.bands,
            len(self.station_ids),
        )
        rows = []
        for i, code in enumerate(self.district_codes):
            mask = self.cell_district == i
            n_st = int((self.station_district == i).sum())
            row = derive.area_summary(self.model, mask, self.grid.area_km2, self.params.bands, n_st)
            name, name_en = self.district_names[i]
            rows.append({"code": code, "name": name, "name_en": name_en, **row})
        outline, ext = self.extents()
        for row, e in zip(rows, ext, strict=True):
            row["extent"] = extent.fields(row["cells"], e, outline)
        overall["extent"] = (
            extent.fields(overall["cells"], extent.total(ext), outline, whole=True) if ext else None
        )
        outside = self.cell_district < 0
        out: dict[str, Any] = {
            "overall": overall,
            "districts": rows,
            "outside_districts": {
                "cells": int(outside.sum()),
                "demand": float(self.weights[outside].sum()),
            },
            "network_outline": outline.as_dict(),
        }
        if district is not None:
            out["district"] = next(r for r in rows if r["code"] == district)
        self._memo[memo_key] = out
        return {**self.meta(), **out}

    # -- cells -----------------------------------------------------------------------------
    def cell_features(self, district: str | None, coord_sys: CoordSys) -> list[dict[str, Any]]:
        mask = self.district_mask(district)
        idx = np.flatnonzero(mask)
        polys = self.grid.polygons
        codes = self.cell_district_codes()
        feats = []
        for i in idx.tolist():
            m = float(self.model.minutes[i])
            feats.append(
                {
                    "type": "Feature",
                    "id": format(int(self.grid.cells[i]), "x"),
                    "geometry": coords.geometry_geojson(polys[i], coord_sys),
                    "properties": {
                        "h3": format(int(self.grid.cells[i]), "x"),
                        "minutes": self.shown_minutes(m),
                        "band": self.band(m),
                        "multiplicity": int(self.model.multiplicity[i]),
                        "dense_count": int(self.model.dense_count[i]),
                        "weight": round(float(self.weights[i]), 3),
                        "area_km2": round(float(self.grid.area_km2[i]), 5),
                        "district": codes[i],
                        "nearest_station": (
                            int(self.station_ids[self.model.nearest[i]])
                            if self.model.nearest[i] >= 0
                            else None
                        ),
                    },
                }
            )
        return feats

    # -- gaps ------------------------------------------------------------------------------
    def gaps(self, district: str | None, limit: int | None = None) -> list[derive.Gap]:
        memo_key = ("gaps", district)
        found = self._memo.get(memo_key)
        if found is None:
            found = derive.find_gaps(
                self.model,
                self.grid.cells,
                self.grid.area_km2,
                np.asarray(self.cell_district_codes(), dtype=object),
                mask=self.district_mask(district),
            )
            self._memo[memo_key] = found
        return found if limit is None else found[:limit]

    # -- gap pieces ------------------------------------------------------------------------
    def piece_cap_km2(self) -> float:
        """The size cap of a gap piece: the disc one station reaches in the target time
        (`derive.piece_cap_km2` at the mode's typical speed, `typical_kmh`)."""
        return derive.piece_cap_km2(
            typical_kmh(self.params.mode, self.graph.settings), self.params.minutes
        )

    def gap_pieces(self, district: str | None, limit: int | None = None) -> list[derive.GapPiece]:
        """The gaps cut into pieces a planner can act on (`derive.split_gaps`), computed once
        for the whole city; a district's are those inside it (a piece never spans two)."""
        self.district_mask(district)  # 404 for an unknown district
        found: list[derive.GapPiece] | None = self._memo.get("gap_pieces")
        if found is None:
            found = derive.split_gaps(
                self.model,
                self.grid.cells,
                self.grid.area_km2,
                np.asarray(self.cell_district_codes(), dtype=object),
                self.piece_cap_km2(),
            )
            self._memo["gap_pieces"] = found
        if district is not None:
            found = [p for p in found if p.district == district]
        return found if limit is None else found[:limit]

    def gap_sites(self, pieces: Sequence[derive.GapPiece]) -> list[dict[str, Any] | None]:
        """What one new station would cover in each piece: its best single site
        (`derive.piece_best_sites`), computed when first asked for, once per piece and run.
        Shares are of the whole city's demand and of the piece's uncovered demand."""
        todo = [p for p in pieces if ("gap_site", p.rank) not in self._memo]
        if todo:
            found = derive.piece_best_sites(
                self.graph,
                self.cell_snaps,
                self.grid.cells,
                self.weights,
                self.model.covered(),
                todo,
                self.params.minutes,
            )
            total = float(self.weights.sum())
            s = self.cell_snaps
            # every found site placed and named at once (site_labels prepares the outlines)
            c = np.asarray([site.cell for site in found if site is not None], dtype=np.intp)
            lon, lat = _on_edge_lonlat(self, Points(s.edge[c], s.fraction[c], s.off_m[c]))
            labels = site_labels(self, lon, lat, s.edge[c]) if len(c) else []
            k = 0
            for p, site in zip(todo, found, strict=True):
                if site is None:
                    self._memo[("gap_site", p.rank)] = None
                    continue
                label = labels[k]
                self._memo[("gap_site", p.rank)] = {
                    "name": label["name"],
                    "name_en": label["name_en"],
                    "street": label["street"],
                    "h3": format(int(self.grid.cells[site.cell]), "x"),
                    "lon": float(lon[k]),
                    "lat": float(lat[k]),
                    "gain": round(site.gain, 3),
                    "gain_in_piece": round(site.gain_in_piece, 3),
                    "share_of_piece": _share_or_none(site.gain_in_piece, p.demand),
                    "share_of_all_demand": _share_or_none(site.gain, total),
                    "candidates": site.candidates,
                }
                k += 1
        return [copy.deepcopy(self._memo[("gap_site", p.rank)]) for p in pieces]

    # -- over-density ----------------------------------------------------------------------
    def station_pairs(self, pair_minutes: float) -> list[tuple[int, int, float, float]]:
        memo_key = ("pairs", check_pair_minutes(pair_minutes))
        if memo_key not in self._memo:
            st = self.model.stations
            as_cells = CellSnaps(st.edge, st.fraction, st.off_m)
            reach = point_reach(self.graph, st, as_cells, pair_minutes * 60.0)
            self._memo[memo_key] = derive.close_pairs(reach, pair_minutes)
        return list(self._memo[memo_key])

    def station_coverage(self) -> list[derive.StationCoverage]:
        if "stcov" not in self._memo:
            self._memo["stcov"] = derive.station_coverage(self.model)
        return list(self._memo["stcov"])


def band_label(minutes: float, bands: Sequence[int], target: int) -> str:
    """'0-5', '5-10', '10-15' … up to the target; beyond it (or unreachable) 'gap'
    (`app.coverage.bands`, which also rounds the minutes shown to agree with it)."""
    return bands_mod.band_label(minutes, bands, target)


def typical_kmh(mode: Mode, settings: TravelSettings) -> float:
    """The speed a gap piece's size cap assumes: walking and e-bike speeds; by car the median
    of the road classes' speeds (30 km/h with the defaults: tertiary roads)."""
    if mode == Mode.WALK:
        return float(settings.walk_kmh)
    if mode == Mode.EBIKE:
        return float(settings.ebike_kmh)
    return float(np.median(list(settings.car_kmh_by_class.values())))


def gap_note(
    unreachable: int, max_minutes: float | None, mode: Mode, off_network_m: float
) -> dict[str, str] | None:
    """Why a gap (or piece) has no single longest time: the cells no station can reach
    (no road the mode may use within the off-network limit), told apart from the longest
    time over the others; None when every cell is reachable."""
    if unreachable <= 0:
        return None
    zh_mode = {Mode.WALK: "步行", Mode.EBIKE: "电动车", Mode.CAR: "汽车"}[mode]
    zh = (
        f"其中 {unreachable} 个网格不可达：{off_network_m:,.0f} 米内没有{zh_mode}可用的道路，"
        "任何驿站都到不了"
    )
    en = (
        f"{unreachable} of its cells are unreachable: no road usable by {mode.value} within "
        f"{off_network_m:,.0f} m, so no station can reach them"
    )
    if max_minutes is None:
        return {"zh": zh + "。", "en": en + "."}
    longest = bands_mod.shown_minutes(max_minutes) or max_minutes
    return {
        "zh": zh + f"；其余网格最远 {longest:.1f} 分钟。",
        "en": en + f"; the others take at most {longest:.1f} min.",
    }


#: Pieces whose best single site `/gaps` computes unless told otherwise (each costs one
#: bounded search per candidate cell: see docs/planner.md for the time).
GAP_SITES_DEFAULT = 10
GAP_SITES_MAX = 50


def _minutes(value: float | None) -> float | None:
    """Minutes as shown: rounded up to 0.1 like every cell's (`bands.shown_minutes`), so a
    gap's 15.04 minutes never read as the 15.0 of a covered cell."""
    return bands_mod.shown_minutes(value)


def gap_features(
    run: Run,
    *,
    district: str | None,
    limit: int,
    level: str = "piece",
    best_sites: int = GAP_SITES_DEFAULT,
    coord_sys: CoordSys = "wgs84",
) -> list[dict[str, Any]]:
    """The gaps as GeoJSON Features: `level='piece'` the pieces a planner can act on (one
    district each, at most `Run.piece_cap_km2`, with the best single site of the first
    `best_sites`), `level='gap'` the connected regions. `max_minutes` is the longest time
    over the cells a station can reach; `unreachable_cells` and `note` tell the others."""
    total = float(run.weights[run.district_mask(district)].sum())
    off_m = run.graph.settings.max_off_network_m
    mode = run.params.mode
    names = dict(zip(run.district_codes, run.district_names, strict=True))
    feats: list[dict[str, Any]] = []
    if level == "gap":
        for g in run.gaps(district, limit):
            feats.append(
                {
                    "type": "Feature",
                    "id": g.rank,
                    "geometry": geojson_to(g.geometry, coord_sys),
                    "properties": {
                        "rank": g.rank,
                        "uncovered_demand": round(g.demand, 3),
                        "demand_share": _share_or_none(g.demand, total),
                        "area_km2": round(g.area_km2, 4),
                        "cells": len(g.cells),
                        "max_minutes": _minutes(g.max_reachable_minutes),
                        "mean_minutes": _minutes(g.mean_minutes),
                        "unreachable_cells": g.unreachable_cells,
                        "note": gap_note(g.unreachable_cells, g.max_reachable_minutes, mode, off_m),
                        "districts": ",".join(g.districts),
                    },
                }
            )
        return feats
    pieces = run.gap_pieces(district, limit)
    sites = run.gap_sites(pieces[: max(0, best_sites)])
    for i, p in enumerate(pieces):
        site = sites[i] if i < len(sites) else None
        if site is not None:
            lon, lat = site.pop("lon"), site.pop("lat")
            site = {"point": point_to(lon, lat, coord_sys), **site}
        name, name_en = names.get(p.district, (None, None)) if p.district else (None, None)
        feats.append(
            {
                "type": "Feature",
                "id": p.rank,
                "geometry": geojson_to(p.geometry, coord_sys),
                "properties": {
                    "rank": p.rank,
                    "gap": p.gap,
                    "district": p.district,
                    "district_name": name,
                    "district_name_en": name_en,
                    "uncovered_demand": round(p.demand, 3),
                    "demand_share": _share_or_none(p.demand, total),
                    "area_km2": round(p.area_km2, 4),
                    "cells": len(p.cells),
                    "max_minutes": _minutes(p.max_minutes),
                    "mean_minutes": _minutes(p.mean_minutes),
                    "unreachable_cells": p.unreachable_cells,
                    "note": gap_note(p.unreachable_cells, p.max_minutes, mode, off_m),
                    "best_site": site,
                    "best_site_computed": i < len(sites),
                },
            }
        )
    return feats


def _share_or_none(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def geojson_to(geom: dict[str, Any], coord_sys: CoordSys) -> dict[str, Any]:
    """A WGS-84 GeoJSON geometry in `coord_sys`."""
    if coord_sys == "wgs84":
        return geom
    from shapely.geometry import shape

    return coords.geometry_geojson(shape(geom), coord_sys)


def point_to(lon: float, lat: float, coord_sys: CoordSys) -> dict[str, Any]:
    x, y = coords.from_wgs84(lon, lat, coord_sys)
    return {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]}


# ------------------------------------------------------------------------------------------
# Computing a run
# ------------------------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


def _station_open_mask(inputs: Inputs) -> tuple[NDArray[np.bool_], list[dict[str, Any]]]:
    """Which stations serve in this run: status open (a temporary closure that has ended —
    by now, or by `open_at` when given — counts as open), and at `open_at` (if given) open or
    of unknown hours (counted as open and listed)."""
    st = inputs.stations
    at = inputs.params.open_at
    ok = np.array([s == "open" for s in st.status], dtype=bool)
    if at is not None:
        for i, until in enumerate(st.closed_until):
            if until is not None:
                ok[i] = until <= at
    excluded: list[dict[str, Any]] = []
    for i in np.flatnonzero(~ok).tolist():
        excluded.append({"id": int(st.ids[i]), "reason": "temporarily_closed"})
    if at is not None:
        memo: dict[str | None, bool | None] = {}
        for i in np.flatnonzero(ok).tolist():
            hours = st.opening_hours[i]
            if hours not in memo:
                state = station_state(
                    hours, "open", at, ZoneInfo(inputs.time_zone), inputs.calendar
                )
                memo[hours] = state.open_now
            if memo[hours] is False:
                ok[i] = False
                excluded.append({"id": int(st.ids[i]), "reason": "closed_at_open_at"})
    return ok, excluded


def compute_run(
    inputs: Inputs,
    grid: DemandGrid,
    progress: Progress | None = None,
    *,
    open_mask: tuple[NDArray[np.bool_], list[dict[str, Any]]] | None = None,
) -> Run:
    """The analysis itself (pure: no database). `open_mask` is `inputs.open_mask` when
    already evaluated elsewhere (the compute process gets it with the inputs)."""
    t0 = time.perf_counter()
    p = inputs.params
    graph = inputs.graph
    if inputs.demand_cells is not None and inputs.demand_weights is not None:
        pos = grid.index_of(inputs.demand_cells)
        weights = np.zeros(grid.n_cells)
        np.add.at(weights, pos[pos >= 0], inputs.demand_weights[pos >= 0])
    else:
        weights = grid.weights(p.weight).astype(np.float64)
    cell_snaps = grid.snaps(graph)
    mask, left_out = inputs.open_mask if open_mask is None else open_mask
    ok, excluded = mask.copy(), list(left_out)
    st = inputs.stations
    snaps = snap_points(graph, st.lon[ok], st.lat[ok])
    ok_idx = np.flatnonzero(ok)
    far = snaps.edge < 0
    for i in ok_idx[far].tolist():
        excluded.append({"id": int(st.ids[i]), "reason": "off_network"})
    use = ok_idx[~far]
    pts = Points(snaps.edge[~far], snaps.fraction[~far], snaps.off_m[~far])
    # districts
    d = inputs.districts
    cell_district = np.full(grid.n_cells, -1, dtype=np.intp)
    station_district = np.full(len(use), -1, dtype=np.intp)
    if d.codes:
        cell_district = derive.district_of_points(grid.lon, grid.lat, d.geoms)
        station_district = derive.district_of_points(st.lon[use], st.lat[use], d.geoms)
    if progress:
        progress("stations", 0, len(pts))
    done = [0]

    def step(k: int) -> None:
        done[0] += k
        if progress:
            progress("stations", done[0], len(pts))

    model = build_model(
        graph,
        cell_snaps,
        weights,
        pts,
        minutes_target=p.minutes,
        dense_minutes=p.dense_minutes,
        progress=step,
    )
    return Run(
        key=inputs.key,
        params=p,
        network_version=inputs.network_version,
        graph=graph,
        grid=grid,
        cell_snaps=cell_snaps,
        weights=weights,
        unit=inputs.demand_unit,
        district_codes=list(d.codes),
        district_names=list(zip(d.names, d.names_en, strict=True)),
        district_geoms=list(d.geoms),
        cell_district=cell_district,
        station_ids=st.ids[use],
        station_names=[st.names[i] for i in use.tolist()],
        station_lon=st.lon[use],
        station_lat=st.lat[use],
        station_district=station_district,
        excluded=excluded,
        model=model,
        seconds=time.perf_counter() - t0,
        edge_names=inputs.edge_names,
    )


# ------------------------------------------------------------------------------------------
# The engine: a bounded queue, a cache within a memory budget, a compute process
# ------------------------------------------------------------------------------------------

#: CPU priority of the compute process: Linux's SCHED_IDLE where available (it runs only on
#: CPU time no other process wants, so requests do not queue behind a run), else this
#: niceness.
WORKER_NICE = 19
#: Bounds of the Retry-After (seconds) of a 503 when every run slot is taken.
RETRY_AFTER_S = (1, 60)
#: Grids kept besides those the cached runs hold (one per network × resolution × layer).
KEEP_GRIDS = 3
#: Site suggestions and scenarios (seconds of work each, on a finished run) computing at once.
DERIVED_SLOTS = 2
#: Failed or cancelled runs whose reason the status endpoint can still tell.
KEEP_FAILURES = 100
#: How often a request waiting for its run checks that its client is still there (s).
WAIT_SLICE_S = 1.0


class CoverageBusyError(ServiceUnavailableError):
    """Every run slot is taken (one run computing, `max_queued` waiting): 503 + Retry-After.

    503, not 429: the limit is the server's capacity, shared by every client, not a quota
    one client has used up; retrying after the given seconds is the right reaction."""


class RunCancelledError(RuntimeError):
    """A run that nobody waited for or asked about any more was stopped (or the server is
    shutting down)."""


@dataclass
class Pending:
    """A run still queued or computing (202 to the client)."""

    key: str
    started: float
    progress: dict[str, Any]


@dataclass(eq=False)
class Job:
    """A run queued or computing, and who still wants it: the requests waiting for it
    (`waiters`) and the last time anyone asked (a wait, a status poll)."""

    key: str
    inputs: Inputs
    future: Future[Run]
    pending: Pending
    waiters: int = 0
    last_interest: float = field(default_factory=time.monotonic)
    running: bool = False

    def touch(self) -> None:
        self.last_interest = time.monotonic()

    def abandoned(self, after_s: float) -> bool:
        return self.waiters <= 0 and time.monotonic() - self.last_interest > after_s


class UnitsOfWork(Protocol):
    """What the engine needs of `app.db.engine.Database`: short read and write units."""

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...


_SHARED_TYPES = (ModeGraph, RoadNetwork, DemandGrid, NamedStreets)
#: Fields holding what the network's runs share (the street names): not counted either.
_SHARED_FIELDS = frozenset({"edge_names"})


def approx_nbytes(obj: Any, _seen: set[int] | None = None) -> int:
    """Rough bytes held by `obj`: numpy arrays, shapely geometries and the containers and
    dataclasses around them. Graphs, networks, grids and street names are shared and not
    counted here."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or isinstance(obj, _SHARED_TYPES) or obj is None:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype != object:
            return int(obj.nbytes)
        flat = obj.ravel()
        geoms = shapely.is_geometry(flat)
        n = int(geoms.sum())
        out = int(obj.nbytes) + 100 * n + 16 * int(shapely.get_num_coordinates(flat[geoms]).sum())
        return out + sum(approx_nbytes(x, seen) for x in flat[~geoms].tolist())
    if isinstance(obj, shapely.Geometry):
        return 100 + 16 * int(shapely.get_num_coordinates(obj))
    if isinstance(obj, str | bytes):
        return 49 + len(obj)
    if isinstance(obj, dict):
        return 64 + sum(approx_nbytes(k, seen) + approx_nbytes(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return 56 + 8 * len(obj) + sum(approx_nbytes(x, seen) for x in obj)
    if hasattr(obj, "data") and hasattr(obj, "indptr"):  # scipy sparse
        return int(obj.data.nbytes + obj.indices.nbytes + obj.indptr.nbytes)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return 56 + sum(
            approx_nbytes(v, seen)
            for k, v in vars(obj).items()
            if not k.startswith("_lock") and k not in _SHARED_FIELDS
        )
    return 24


def grid_nbytes(grid: DemandGrid) -> int:
    """Bytes of a grid's own arrays (and hexagons, once built); not its network."""
    return sum(approx_nbytes(v) for k, v in vars(grid).items() if k != "network")


_TOKENS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_TOKENS_LOCK = threading.Lock()


def _token(obj: Any) -> str:
    """A name for a network or graph object of this process, stable while it lives."""
    with _TOKENS_LOCK:
        tok = _TOKENS.get(obj)
        if tok is None:
            tok = uuid.uuid4().hex
            _TOKENS[obj] = tok
        return tok


class CoverageEngine:
    """Coverage runs for one server process.

    * At most one run computes at a time; `max_queued` more wait. A request for a run
      already computing or queued joins it; beyond that, `CoverageBusyError` (503 with
      Retry-After). A queued run nobody waits for, or has asked about for `abandon_s`, is
      dropped before it starts; a computing one is stopped at its next progress step.
    * Finished runs stay in memory (LRU) while at most `keep` of them and, with the grids
      they use, at most `memory_bytes` (estimated by `approx_nbytes`).
    * `worker="process"`: runs compute in one separate process at idle CPU priority
      (`_ComputeProcess`) fed with the inputs read here, so a run never holds this
      process's GIL nor takes CPU time a request wants; `"thread"`: in a worker thread of
      this process (tests, debugging).
    * `obtain` is what routes call: inputs in a short read unit, the wait without any
      database connection or worker thread, the cells stored in a short write unit.
    """

    def __init__(
        self,
        network: NetworkState,
        *,
        keep: int = 6,
        wait_s: float = 20.0,
        max_queued: int = 2,
        abandon_s: float = 15.0,
        memory_bytes: int = 1024 * 2**20,
        worker: str = "thread",
    ) -> None:
        if worker not in ("thread", "process"):
            raise ValueError(f"worker: 'thread' or 'process', not {worker!r}")
        self.network = network
        self.keep = keep
        self.wait_s = wait_s
        self.max_queued = max_queued
        self.abandon_s = abandon_s
        self.memory_bytes = memory_bytes
        self.worker = worker
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._jobs: dict[str, Job] = {}
        self._grids: OrderedDict[tuple[Any, ...], DemandGrid] = OrderedDict()
        self._lock = threading.Lock()
        self._dispatch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverage")
        self._closed = False
        self._mean_s = 3.0  # running mean of run seconds, for Retry-After
        self._derived = threading.BoundedSemaphore(DERIVED_SLOTS)
        #: Why recent runs failed or were cancelled (the newest KEEP_FAILURES), for status.
        self.failures: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_settings(cls, network: NetworkState, settings: Settings) -> CoverageEngine:
        return cls(
            network,
            keep=settings.coverage_keep_runs,
            wait_s=settings.coverage_wait_s,
            max_queued=settings.coverage_max_queued,
            abandon_s=settings.coverage_abandon_s,
            memory_bytes=settings.coverage_memory_mb * 2**20,
            worker=settings.coverage_worker,
        )

    def shutdown(self) -> None:
        """Stop taking runs; queued ones are cancelled, a computing one stops at its next
        step. (The compute process itself lives until the interpreter exits.)"""
        with self._lock:
            self._closed = True
            jobs = [j for j in self._jobs.values() if not j.running]
        for job in jobs:
            job.future.cancel()
        self._dispatch.shutdown(wait=False, cancel_futures=True)

    # -- inputs ----------------------------------------------------------------------------
    def read_inputs(self, conn: Connection, params: Params, *, time_zone: str) -> Inputs:
        """Everything the run needs from the database (fast: a few queries)."""
        from app.hours import store as hours_store

        loaded, graph = self.network.get(conn, params.mode)
        stations = queries.stations(conn)
        districts = queries.districts(conn)
        demand_cells = demand_weights = None
        unit = WEIGHT_UNITS.get(params.weight)
        demand_fp = params.weight
        if params.weight not in WEIGHT_UNITS:
            from app.demand import queries as demand_queries

            layer = demand_queries.load_layer(conn, params.weight)
            if layer is None:
                raise InvalidInputError(
                    f"weight: 'road', 'area' or an imported demand layer; no layer "
                    f"{params.weight!r} (see GET /api/v1/demand)",
                    field="weight",
                )
            if layer.resolution != params.resolution:
                raise InvalidInputError(
                    f"resolution: layer {layer.name!r} was imported at resolution "
                    f"{layer.resolution}; ask for resolution={layer.resolution}",
                    field="resolution",
                )
            demand_cells, demand_weights = layer.cells, layer.weights
            unit = {"zh": layer.unit, "en": layer.unit}
            demand_fp = f"layer:{layer.name}:{layer.fingerprint}"
        _window, calendar = hours_store.snapshot(conn)
        return Inputs(
            params=params,
            network_version=loaded.version_id,
            graph=graph,
            stations=stations,
            districts=districts,
            demand_cells=demand_cells,
            demand_weights=demand_weights,
            demand_unit=unit or {"zh": "", "en": ""},
            demand_fingerprint=demand_fp,
            settings_key=self.network.settings_key(),
            time_zone=time_zone,
            calendar=calendar,
            edge_names=loaded.edge_names,
        )

    # -- grids and the cache ---------------------------------------------------------------
    @staticmethod
    def _grid_key(inputs: Inputs) -> tuple[Any, ...]:
        extra = inputs.demand_cells
        extra_key = hashlib.sha256(extra.tobytes()).hexdigest()[:16] if extra is not None else None
        return (_token(inputs.graph.network), inputs.params.resolution, extra_key)

    def _cached_grid(self, key: tuple[Any, ...]) -> DemandGrid | None:
        with self._lock:
            grid = self._grids.get(key)
            if grid is not None:
                self._grids.move_to_end(key)
            return grid

    def _add_grid(self, key: tuple[Any, ...], grid: DemandGrid) -> DemandGrid:
        with self._lock:
            found = self._grids.get(key)
            if found is not None:
                return found
            self._grids[key] = grid
            self._fit()
        return grid

    def grid_for(self, inputs: Inputs) -> DemandGrid:
        """The run's grid, built in this process (thread worker, CLI) unless cached."""
        key = self._grid_key(inputs)
        grid = self._cached_grid(key)
        if grid is None:
            grid = build_grid(
                inputs.graph.network, inputs.params.resolution, extra_cells=inputs.demand_cells
            )
            grid = self._add_grid(key, grid)
        return grid

    def _fit(self) -> None:
        """Evict (caller holds the lock): least recently used runs beyond `keep` or beyond
        the memory budget (the newest run always stays), then grids no run uses beyond
        KEEP_GRIDS or the budget."""
        while len(self._runs) > self.keep:
            self._runs.popitem(last=False)
        while len(self._runs) > 1 and self.memory_used() > self.memory_bytes:
            self._runs.popitem(last=False)
        in_use = {id(r.grid) for r in self._runs.values()}
        while True:
            spare = [k for k, g in self._grids.items() if id(g) not in in_use]
            if not spare or (len(spare) <= KEEP_GRIDS and self.memory_used() <= self.memory_bytes):
                break
            del self._grids[spare[0]]

    def memory_used(self) -> int:
        """Estimated bytes of the cached runs and every grid they or the cache hold."""
        grids = {id(g): g for g in self._grids.values()}
        grids.update({id(r.grid): r.grid for r in self._runs.values()})
        return sum(approx_nbytes(r) for r in self._runs.values()) + sum(
            grid_nbytes(g) for g in grids.values()
        )

    def stats(self) -> dict[str, Any]:
        """What the engine holds now (for tests and operators)."""
        with self._lock:
            return {
                "runs": len(self._runs),
                "grids": len(self._grids),
                "memory_bytes": self.memory_used(),
                "computing": sum(j.running for j in self._jobs.values()),
                "queued": sum(not j.running for j in self._jobs.values()),
            }

    def cached(self, key: str) -> Run | None:
        with self._lock:
            run = self._runs.get(key)
            if run is not None:
                self._runs.move_to_end(key)
            return run

    def pending(self, key: str) -> Pending | None:
        """The queued or computing run `key` (someone asked: it stays wanted)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                return None
            job.touch()
            return job.pending

    # -- jobs ------------------------------------------------------------------------------
    def retry_after(self) -> int:
        """Seconds after which a slot is likely free: the mean run time, bounded."""
        lo, hi = RETRY_AFTER_S
        return int(min(hi, max(lo, math.ceil(self._mean_s))))

    def probe_key(self, conn: Connection, params: Params) -> str | None:
        """The run key from fingerprints alone (three one-row queries, no stations or
        outlines read), or None when it needs the full inputs (`open_at`, a demand layer)."""
        if params.open_at is not None or params.weight not in WEIGHT_UNITS:
            return None
        return run_key(
            stations=queries.stations_fingerprint(conn),
            network_version=network_queries.require_live_version(conn).id,
            settings=self.network.settings_key(),
            districts=queries.districts_fingerprint(conn),
            demand=params.weight,
            params=params,
        )

    def submit(self, inputs: Inputs) -> Run | Job:
        """The finished run, or the job computing or queued for it, joined (the caller is
        one more waiter and must `release` it). CoverageBusyError when every slot is taken."""
        found = self._admit(inputs.key, inputs)
        assert found is not None
        return found

    def _admit(self, key: str, inputs: Inputs | None) -> Run | Job | None:
        """`submit` by key; without inputs, None where a new job would start (a slot is
        free: read the inputs and submit)."""
        with self._lock:
            if self._closed:
                raise ServiceUnavailableError(
                    "coverage: 服务正在停止 / the server is shutting down",
                    field="coverage",
                    retry_after=RETRY_AFTER_S[0],
                )
            run = self._runs.get(key)
            if run is not None:
                self._runs.move_to_end(key)
                return run
            job = self._jobs.get(key)
            if job is None:
                if len(self._jobs) >= 1 + self.max_queued:
                    raise self._busy()
                if inputs is None:
                    return None
                job = Job(
                    key,
                    inputs,
                    Future(),
                    Pending(key, time.time(), {"stage": "queued", "done": 0, "total": 0}),
                )
                self._jobs[key] = job
                self.failures.pop(key, None)
                self._dispatch.submit(self._work, job)
            job.waiters += 1
            job.touch()
            return job

    @contextlib.contextmanager
    def derived_slot(self) -> Iterator[None]:
        """One of DERIVED_SLOTS for a suggestion or scenario, or CoverageBusyError."""
        if not self._derived.acquire(blocking=False):
            wait = self.retry_after()
            raise CoverageBusyError(
                f"coverage: 选址建议与情景分析繁忙（{DERIVED_SLOTS} 个正在计算），请 {wait} 秒后"
                f"重试 / site suggestions and scenarios are busy ({DERIVED_SLOTS} computing); "
                f"retry in {wait} s",
                field="coverage",
                retry_after=wait,
            )
        try:
            yield
        finally:
            self._derived.release()

    def release(self, job: Job) -> None:
        """One waiter less (its request answered, timed out or went away)."""
        with self._lock:
            job.waiters -= 1
            job.touch()

    def _failed(self, key: str, why: str) -> None:
        """Note why run `key` ended without a result (caller holds the lock)."""
        self.failures[key] = why
        self.failures.move_to_end(key)
        while len(self.failures) > KEEP_FAILURES:
            self.failures.popitem(last=False)

    def _stop_requested(self, job: Job) -> bool:
        return self._closed or job.abandoned(self.abandon_s)

    def _work(self, job: Job) -> None:
        """The dispatcher thread: start, compute and file one job."""
        with self._lock:
            if self._stop_requested(job):
                self._jobs.pop(job.key, None)
                self._failed(job.key, "cancelled: nobody asked for it any more")
                job.future.cancel()
                return
            job.running = True
            job.pending.progress.update(stage="computing")
        if not job.future.set_running_or_notify_cancel():
            with self._lock:
                self._jobs.pop(job.key, None)
            return
        t0 = time.perf_counter()
        try:
            if self.worker == "process":
                run = self._compute_in_process(job)
            else:
                run = self._compute_here(job)
        except BaseException as exc:
            with self._lock:
                self._jobs.pop(job.key, None)
                reason = "cancelled" if isinstance(exc, RunCancelledError) else "failed"
                self._failed(job.key, f"{reason}: {type(exc).__name__}: {exc}")
            job.future.set_exception(exc)
            return
        with self._lock:
            self._mean_s = 0.7 * self._mean_s + 0.3 * (time.perf_counter() - t0)
            self._runs[job.key] = run
            self._jobs.pop(job.key, None)
            self._fit()
        job.future.set_result(run)

    def _progress(self, job: Job) -> Progress:
        def progress(stage: str, done: int, total: int) -> None:
            job.pending.progress.update(stage=stage, done=done, total=total)
            if self._stop_requested(job):
                raise RunCancelledError(f"run {job.key}: nobody waits for it any more")

        return progress

    def _compute_here(self, job: Job) -> Run:
        progress = self._progress(job)
        progress("grid", 0, 0)
        return compute_run(job.inputs, self.grid_for(job.inputs), progress)

    def _compute_in_process(self, job: Job) -> Run:
        inputs = job.inputs
        graph = inputs.graph
        gkey = self._grid_key(inputs)
        grid = self._cached_grid(gkey)
        spec = _Spec(
            inputs={
                f.name: getattr(inputs, f.name)
                for f in fields(Inputs)
                if f.name not in ("graph", "calendar", "edge_names")
            },
            open_mask=inputs.open_mask,
            network_token=gkey[0],
            graph_token=_token(graph),
            travel={  # (its car speeds are a read-only mapping, which does not pickle)
                f.name: getattr(graph.settings, f.name) for f in fields(TravelSettings)
            }
            | {"car_kmh_by_class": dict(graph.settings.car_kmh_by_class)},
            network=None,
            want_grid=grid is None,
        )
        progress = self._progress(job)

        def poll(done: int, total: int) -> bool:
            try:
                progress("stations" if total else "computing", done, total)
            except RunCancelledError:
                return True
            return False

        out = _COMPUTE.call(spec, poll)
        if isinstance(out, _NeedNetwork):
            out = _COMPUTE.call(replace(spec, network=_network_payload(graph.network)), poll)
        assert isinstance(out, _Result)
        if grid is None:
            assert out.grid is not None
            grid = self._add_grid(gkey, _grid_from_payload(out.grid, graph.network))
        return Run(graph=graph, grid=grid, edge_names=inputs.edge_names, **out.run)

    # -- what routes call ------------------------------------------------------------------
    async def obtain(
        self,
        db: UnitsOfWork,
        params: Params,
        *,
        time_zone: str,
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> Run | Pending:
        """The run for `params` as the request asked for it, or its Pending after waiting
        `wait_s`. The inputs are read in one short read unit and the cells stored in one
        short write unit (worker threads); while the run computes, the request holds no
        connection and no thread. CoverageBusyError when every slot is taken."""
        self._refuse_early(params)
        found = await anyio.to_thread.run_sync(self._lookup, db, params, time_zone)
        joined = self.submit(found) if isinstance(found, Inputs) else found
        if isinstance(joined, Run):
            run = joined
        else:
            got = await self._wait(joined, disconnected)
            if got is None:
                return joined.pending
            run = got
        if run.run_id is None:
            await anyio.to_thread.run_sync(self._store, db, run)
        return run.view(params)

    def _busy(self) -> CoverageBusyError:
        wait = self.retry_after()
        return CoverageBusyError(
            f"coverage: 覆盖分析繁忙（1 个正在计算，{self.max_queued} 个排队），请 {wait} 秒后"
            f"重试 / coverage analysis is busy (1 run computing, {self.max_queued} queued); "
            f"retry in {wait} s",
            field="coverage",
            retry_after=wait,
        )

    def _refuse_early(self, params: Params) -> None:
        """CoverageBusyError without touching the database when every slot is taken and no
        run queued, computing or cached was asked for with the same computed parameters
        (only such a run could be this request's: anything else would need a new slot)."""
        want = params.computed()
        with self._lock:
            if len(self._jobs) < 1 + self.max_queued:
                return
            known = [j.inputs.params for j in self._jobs.values()]
            known += [r.params for r in self._runs.values()]
        if not any(p.computed() == want for p in known):
            raise self._busy()

    def _lookup(self, db: UnitsOfWork, params: Params, time_zone: str) -> Run | Job | Inputs:
        """In one read unit: the cached run or the job to join, found by the probe key
        (a full queue refused) before anything big is read; else the run's inputs."""
        with db.read() as conn:
            key = self.probe_key(conn, params)
            if key is not None:
                found = self._admit(key, None)
                if found is not None:
                    return found
            inputs = self.read_inputs(conn, params, time_zone=time_zone)
        return self.cached(inputs.key) or inputs

    async def _wait(
        self, job: Job, disconnected: Callable[[], Awaitable[bool]] | None
    ) -> Run | None:
        """The job's run, or None after `wait_s` (or when the client went away)."""
        fut = asyncio.wrap_future(job.future)
        deadline = time.monotonic() + self.wait_s
        try:
            while True:
                left = deadline - time.monotonic()
                done, _ = await asyncio.wait({fut}, timeout=max(0.0, min(left, WAIT_SLICE_S)))
                if done:
                    try:
                        return fut.result()
                    except asyncio.CancelledError as exc:
                        raise ServiceUnavailableError(
                            "coverage: 计算已取消，请重试 / the run was cancelled; try again",
                            field="coverage",
                            retry_after=self.retry_after(),
                        ) from exc
                if left <= WAIT_SLICE_S or (disconnected is not None and await disconnected()):
                    return None
        finally:
            self.release(job)

    def _store(self, db: UnitsOfWork, run: Run) -> None:
        """Store the run's cells once, in its own short write unit."""
        with run._lock:
            if run.run_id is not None:
                return
            _ = run.grid.polygons, run.summary(), run.model.multiplicity  # CPU outside the unit
            with db.write() as conn:
                run.run_id = _store_run(conn, run)
            run.cell_rows = None

    def run_now(self, inputs: Inputs, progress: Progress | None = None) -> Run:
        """Compute in the calling thread (CLI)."""
        run = self.cached(inputs.key)
        if run is None:
            run = compute_run(inputs, self.grid_for(inputs), progress)
            with self._lock:
                self._runs[inputs.key] = run
                self._fit()
        return run


def _store_run(conn: Connection, run: Run) -> int:
    return queries.store_run(
        conn,
        key=run.key,
        params=run.params.as_dict(),
        network_version=run.network_version,
        summary={"overall": run.summary()["overall"]},
        seconds=run.seconds,
        cells=run.grid.cells,
        polygons=run.grid.polygons,
        minutes=run.model.minutes,
        multiplicity=run.model.multiplicity,
        weights=run.weights,
        district_codes=run.cell_district_codes(),
        rows=run.cell_rows,
    )


def persist(conn: Connection, run: Run) -> int:
    """Store the run's cells once (for vector tiles and GIS downloads); the run id."""
    if run.run_id is not None:
        return run.run_id
    with run._lock:
        if run.run_id is None:
            run.run_id = _store_run(conn, run)
    return run.run_id


# ------------------------------------------------------------------------------------------
# The compute process
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """One run for the compute process: the inputs read by the server (without the graph,
    named by token, and without the calendar: the open mask is evaluated already)."""

    inputs: dict[str, Any]
    open_mask: tuple[NDArray[np.bool_], list[dict[str, Any]]]
    network_token: str
    graph_token: str
    travel: dict[str, Any]  # TravelSettings fields
    network: dict[str, Any] | None  # sent only when the process does not have it
    want_grid: bool


@dataclass(frozen=True)
class _NeedNetwork:
    """The compute process does not hold the run's network: send it."""


@dataclass(frozen=True)
class _Result:
    run: dict[str, Any]  # Run fields but the graph, grid, memo, lock and run id
    grid: dict[str, Any] | None


_RUN_SENT = [f.name for f in fields(Run) if f.name not in ("graph", "grid", "_memo", "_lock")]
_RUN_SENT.remove("run_id")
_RUN_SENT.remove("edge_names")  # the server holds them (with its network): not sent


def _network_payload(net: RoadNetwork) -> dict[str, Any]:
    return {
        "edge_id": net.edge_id,
        "source": net.source_id,
        "target": net.target_id,
        "length_m": net.length_m,
        "highway": net.highway,
        "oneway": net.oneway,
        "node_id": net.node_id,
        "lon": net.lon,
        "lat": net.lat,
        "geometry_wkb": shapely.to_wkb(np.asarray(net.geometry, dtype=object)),
    }


def _grid_payload(grid: DemandGrid) -> dict[str, Any]:
    out = {f.name: getattr(grid, f.name) for f in fields(DemandGrid) if f.name != "network"}
    out["polygons_wkb"] = shapely.to_wkb(grid.polygons)
    return out


def _grid_from_payload(payload: dict[str, Any], network: RoadNetwork) -> DemandGrid:
    data = dict(payload)
    wkb = data.pop("polygons_wkb")
    grid = DemandGrid(network=network, **data)
    # the hexagons came built: fill the cached property as functools.cached_property would
    grid.__dict__["polygons"] = np.asarray(shapely.from_wkb(wkb), dtype=object)
    return grid


class _ComputeProcess:
    """The one process that computes this server process's runs: spawned on first use, at
    idle CPU priority (`_worker_init`), kept until the interpreter exits. It keeps the
    networks, graphs and grids it was sent or built (a few, by token), so a run ships only
    its inputs and gets back the arrays it computed. Progress and a stop flag go through
    shared memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._shared: Any = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._shared = ctx.RawArray("q", 3)  # stop flag, done, total
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(self._shared,),
            )
        return self._pool

    def call(self, spec: _Spec, poll: Callable[[int, int], bool]) -> _Result | _NeedNetwork:
        """Run `spec` there; `poll(done, total)` every 0.25 s returns True to stop it."""
        with self._lock:
            pool = self._ensure()
            shared = self._shared
            shared[0], shared[1], shared[2] = 0, 0, 0
            fut = pool.submit(_remote_run, spec)
            try:
                while True:
                    try:
                        out: _Result | _NeedNetwork = fut.result(timeout=0.25)
                        return out
                    except FutureTimeout:
                        if poll(int(shared[1]), int(shared[2])):
                            shared[0] = 1
            except BrokenProcessPool as exc:
                self._pool = None  # spawned afresh for the next run
                raise ServiceUnavailableError(
                    "coverage: 计算进程意外退出，请重试 / the compute process stopped "
                    "unexpectedly; try again",
                    field="coverage",
                    retry_after=RETRY_AFTER_S[0],
                ) from exc

    def shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


_COMPUTE = _ComputeProcess()

# State of the compute process itself (set by _worker_init, used by _remote_run).
_W_SHARED: Any = None
_W_NETWORKS: OrderedDict[str, RoadNetwork] = OrderedDict()
_W_GRAPHS: OrderedDict[str, ModeGraph] = OrderedDict()
_W_GRIDS: OrderedDict[tuple[Any, ...], DemandGrid] = OrderedDict()


def _worker_init(shared: Any) -> None:
    global _W_SHARED
    _W_SHARED = shared
    # End with the server process however it ends: uvicorn, for one, re-raises SIGTERM after
    # its shutdown, so no exit handler of the server would get to stop this process.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICE)


def _exit_with(parent: Any) -> None:
    parent.join()  # returns once the parent process has ended
    os._exit(0)


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, keep: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > keep:
        cache.popitem(last=False)


def _remote_run(spec: _Spec) -> _Result | _NeedNetwork:
    """In the compute process: the run of `spec`, as the fields it computed."""
    graph = _W_GRAPHS.get(spec.graph_token)
    if graph is None:
        net = _W_NETWORKS.get(spec.network_token)
        if net is None:
            if spec.network is None:
                return _NeedNetwork()
            arrays = dict(spec.network)
            wkb = arrays.pop("geometry_wkb")
            net = RoadNetwork.from_arrays(**arrays, geometry=shapely.from_wkb(wkb))
            _remember(_W_NETWORKS, spec.network_token, net, 2)
        graph = build_graph(net, spec.inputs["params"].mode, TravelSettings(**spec.travel))
        _remember(_W_GRAPHS, spec.graph_token, graph, 2 * len(Mode))
    inputs = Inputs(graph=graph, calendar=None, **spec.inputs)
    extra = inputs.demand_cells
    extra_key = hashlib.sha256(extra.tobytes()).hexdigest()[:16] if extra is not None else None
    gkey = (spec.network_token, inputs.params.resolution, extra_key)
    grid = _W_GRIDS.get(gkey)
    if grid is None:
        grid = build_grid(graph.network, inputs.params.resolution, extra_cells=extra)
        _remember(_W_GRIDS, gkey, grid, KEEP_GRIDS + 1)
    shared = _W_SHARED

    def progress(stage: str, done: int, total: int) -> None:
        if shared is not None:
            shared[1], shared[2] = done, total
            if shared[0]:
                raise RunCancelledError(f"run {inputs.key}: nobody waits for it any more")

    run = compute_run(inputs, grid, progress, open_mask=spec.open_mask)
    run.cell_rows = queries.cell_rows(
        grid.cells,
        grid.polygons,
        run.model.minutes,
        run.model.multiplicity,
        run.weights,
        run.cell_district_codes(),
    )
    return _Result(
        run={name: getattr(run, name) for name in _RUN_SENT},
        grid=_grid_payload(grid) if spec.want_grid else None,
    )


def live_network_version(conn: Connection) -> int:
    return network_queries.require_live_version(conn).id


# ------------------------------------------------------------------------------------------
# Site suggestions and what-if scenarios
# ------------------------------------------------------------------------------------------

#: Cell-centre candidates considered at most (thinned by coarser H3 parents beyond this).
MAX_CELL_CANDIDATES = 2000
MAX_PLANNER_CANDIDATES = 5000
MAX_SUGGESTIONS = 50


@dataclass(frozen=True)
class SitePoint:
    """A planner's point (WGS-84), e.g. a candidate host site or a station to add."""

    lon: float
    lat: float
    name: str | None = None


def _snap_or_422(run: Run, sites: Sequence[SitePoint], field_name: str) -> Points:
    sn = snap_points(
        run.graph, np.asarray([s.lon for s in sites]), np.asarray([s.lat for s in sites])
    )
    bad = np.flatnonzero(sn.edge < 0)
    if len(bad):
        i = int(bad[0])
        limit = run.graph.settings.max_off_network_m
        raise InvalidInputError(
            f"{field_name}[{i}]: no road usable by {run.params.mode.value} within "
            f"{limit:,.0f} m of ({sites[i].lon:.6f}, {sites[i].lat:.6f})",
            field=f"{field_name}[{i}]",
        )
    return Points(sn.edge, sn.fraction, sn.off_m)


def _on_edge_lonlat(run: Run, pts: Points) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS-84 positions of snapped points on their edges."""
    geoms = run.graph.network.geometry[pts.edge]
    on = shapely.line_interpolate_point(geoms, pts.fraction, normalized=True)
    return shapely.get_x(on), shapely.get_y(on)


def cell_candidates(run: Run, mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Cells whose street point may serve uncovered demand: reachable cells within the
    target (forward, cell → candidate) of some uncovered weighted cell in `mask`, thinned to
    one per coarser H3 parent (the heaviest child) until at most MAX_CELL_CANDIDATES remain.

    Only cells with a street of the mode of their own are candidates (`off_m == 0`): a cell
    without one (a demand-layer cell off the streets, a footway-only cell by car) sits on a
    road up to `max_off_network_m` away, outside it, and a site "there" would be placed in a
    cell with no street. Such cells still count as demand to cover."""
    import h3

    from app.network.graph import multi_source_seconds

    m = run.model
    snaps = run.cell_snaps
    uncovered = (~m.covered()) & mask & (run.weights > 0) & snaps.reachable
    if not uncovered.any():
        return np.empty(0, dtype=np.intp)
    g = run.graph
    e = snaps.edge[uncovered]
    f = snaps.fraction[uncovered]
    c = g.costs.seconds[e]
    w = snaps.off_m[uncovered] / g.settings.walk_mps
    fw, bw = g.costs.forward[e], g.costs.backward[e]
    nodes = np.concatenate([g.network.dst[e][fw], g.network.src[e][bw]])
    init = np.concatenate([(w + (1 - f) * c)[fw], (w + f * c)[bw]])
    node_s = multi_source_seconds(
        g, list(zip(nodes.tolist(), init.tolist(), strict=True)), run.params.minutes * 60.0
    )
    ce = snaps.edge
    own = snaps.reachable & (snaps.off_m == 0)
    ok = own & mask
    near = np.zeros(len(ce), dtype=bool)
    near[ok] = np.isfinite(node_s[g.network.src[ce[ok]]]) | np.isfinite(
        node_s[g.network.dst[ce[ok]]]
    )
    near |= uncovered & own
    idx = np.flatnonzero(near)
    res = run.params.resolution
    while len(idx) > MAX_CELL_CANDIDATES and res > 0:
        res -= 1
        parents = np.asarray(
            [
                h3.str_to_int(h3.cell_to_parent(h3.int_to_str(int(x)), res))
                for x in run.grid.cells[idx]
            ],
            dtype=np.int64,
        )
        order = np.lexsort((idx, -run.weights[idx], parents))
        first = np.ones(len(order), dtype=bool)
        first[1:] = parents[order[1:]] != parents[order[:-1]]
        idx = np.sort(idx[order[first]])
    return idx


#: A suggested site is named "near" a station up to this distance (m), else by its distance.
SITE_NEAR_M = 1000.0


#: Named-street indexes kept (network names × mode), shared by the runs of a network.
KEEP_NAMED_STREETS = 2 * len(Mode)
_NAMED_STREETS: OrderedDict[tuple[int, str], tuple[Any, NamedStreets]] = OrderedDict()
_NAMED_LOCK = threading.Lock()


def named_streets(run: Run) -> NamedStreets | None:
    """The named edges of the run's network usable by its mode, indexed once per network and
    mode (37 ms for 92,667 edges); None when the network carries no street names (the demo
    network) or they do not fit it."""
    names = run.edge_names
    net = run.graph.network
    if names is None or len(names) != len(net.edge_id):
        return None
    key = (id(names), run.graph.mode.value)
    with _NAMED_LOCK:
        hit = _NAMED_STREETS.get(key)
        if hit is not None and hit[0] is names:  # (the names held: their id is not reused)
            _NAMED_STREETS.move_to_end(key)
            return hit[1]
    costs = run.graph.costs
    found = NamedStreets.build(names, net.geometry, costs.forward | costs.backward)
    with _NAMED_LOCK:
        _remember(_NAMED_STREETS, key, (names, found), KEEP_NAMED_STREETS)
    return found


def site_labels(
    run: Run,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    edges: NDArray[np.int64] | None = None,
) -> list[dict[str, Any]]:
    """A name for each suggested site (WGS-84; `edges`: the edge index each sits on).

    With street names in the network: the street and the district ("中北路 · 武昌区" /
    "中北路 · Wuchang"), the street being the site's own edge's name or, on an unnamed edge,
    the nearest named edge's the mode may use within `naming.STREET_NEAR_M` (150 m).
    Otherwise — the demo network carries no names (neatnet's Wuhan GeoParquet has only u, v,
    key, highway and the geometry) — the district and the nearest open station of the run
    ("武昌区 · 近 中北路驿站" / "Wuchang · near 中北路驿站"): the nearest in a straight line
    (metres, local equirectangular); "near" up to SITE_NEAR_M, beyond it the distance
    ("距 XX驿站 2.5 公里"). The nearest station is given in either case."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    streets = named_streets(run)
    dist_idx = (
        derive.district_of_points(lon, lat, run.district_geoms)
        if run.district_geoms and len(lon)
        else np.full(len(lon), -1, dtype=np.intp)
    )
    out = []
    for k in range(len(lon)):
        d = int(dist_idx[k])
        zh_parts: list[str] = []
        en_parts: list[str] = []
        code = None
        if d >= 0:
            code = run.district_codes[d]
            name, name_en = run.district_names[d]
            zh_parts.append(name)
            en_parts.append(name_en or name)
        street = street_m = None
        if streets is not None:
            edge = int(edges[k]) if edges is not None and edges[k] >= 0 else None
            street, street_m = streets.street_at(float(lon[k]), float(lat[k]), edge)
        if street is not None:
            zh_parts.insert(0, street)
            en_parts.insert(0, street)
        st_id = st_name = st_m = None
        if len(run.station_lon):
            kx = 111_320.0 * math.cos(math.radians(float(lat[k])))
            dx = (run.station_lon - lon[k]) * kx
            dy = (run.station_lat - lat[k]) * 110_574.0
            i = int(np.argmin(dx * dx + dy * dy))
            st_id, st_name = int(run.station_ids[i]), run.station_names[i]
            st_m = round(float(math.hypot(dx[i], dy[i])), 1)
            if street is not None:
                pass  # named by its street
            elif st_m <= SITE_NEAR_M:
                zh_parts.append(f"近 {st_name}")
                en_parts.append(f"near {st_name}")
            else:
                zh_parts.append(f"距 {st_name} {st_m / 1000:.1f} 公里")
                en_parts.append(f"{st_m / 1000:.1f} km from {st_name}")
        out.append(
            {
                "name": " · ".join(zh_parts) or None,
                "name_en": " · ".join(en_parts) or None,
                "district": code,
                "street": street,
                "street_m": None if street_m is None else round(street_m, 1),
                "near_station_id": st_id,
                "near_station_name": st_name,
                "near_station_m": st_m,
            }
        )
    return out


#: Reach matrices (candidate points × cells within the target) kept with each run, per
#: candidate set, least recently used out first: suggestions for another K or district, the
#: planner page's and the API's, all start with this step (Wuhan walk-15: ~0.8 s of ~0.9 s).
KEEP_REACH = 4
_REACH_LOCK = threading.Lock()


def _points_key(pts: Points) -> str:
    digest = hashlib.sha256()
    for a in (pts.edge, pts.fraction, pts.off_m):
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def reach_cover(run: Run, cand: Points) -> tuple[Any, bool]:
    """Which cells each candidate point reaches within the run's target (`point_reach`, a
    0/1 candidates × cells matrix; read-only), computed once per run and candidate set; and
    whether this call reused it."""
    key = _points_key(cand)
    with _REACH_LOCK:
        cache = run._memo.setdefault("reach", OrderedDict())
        computing = run._memo.setdefault("reach_locks", {}).setdefault(key, threading.Lock())
    with computing:  # two callers of one candidate set: the second waits, then reuses
        with _REACH_LOCK:
            found = cache.get(key)
            if found is not None:
                cache.move_to_end(key)
                return found, True
        cover = point_reach(run.graph, cand, run.cell_snaps, run.params.minutes * 60.0).matrix()
        with _REACH_LOCK:
            _remember(cache, key, cover, KEEP_REACH)
    return cover, False


def suggest(
    run: Run,
    k: int,
    *,
    district: str | None = None,
    sites: Sequence[SitePoint] | None = None,
    compare_exact: bool = False,
    exact_time_limit_s: float = 30.0,
) -> dict[str, Any]:
    """The next `k` sites adding the most covered demand, existing stations kept (greedy
    maximal covering with lazy gains; optionally checked against the exact optimum). The
    answer for cell-centre candidates is kept with the run (the planner page asks often)."""
    if not 1 <= k <= MAX_SUGGESTIONS:
        raise InvalidInputError(f"k: 1..{MAX_SUGGESTIONS} sites", field="k")
    if sites or compare_exact:
        return _suggest(run, k, district, sites, compare_exact, exact_time_limit_s)
    memo_key = ("suggest", district, k)
    found = run._memo.get(memo_key)
    if found is None:
        found = _suggest(run, k, district, None, False, exact_time_limit_s)
        run._memo[memo_key] = found
    return copy.deepcopy(found)


def _suggest(
    run: Run,
    k: int,
    district: str | None,
    sites: Sequence[SitePoint] | None,
    compare_exact: bool,
    exact_time_limit_s: float,
) -> dict[str, Any]:
    from app.coverage import solver

    mask = run.district_mask(district)
    weights = np.where(mask, run.weights, 0.0)
    covered = run.model.covered() | ~mask
    if sites:
        if len(sites) > MAX_PLANNER_CANDIDATES:
            raise InvalidInputError(
                f"candidates: at most {MAX_PLANNER_CANDIDATES} sites", field="candidates"
            )
        cand = _snap_or_422(run, sites, "candidates")
        cand_cells = None
        kind = "planner_sites"
    else:
        cand_cells = run._memo.get(("cell_candidates", district))
        if cand_cells is None:
            cand_cells = run._memo[("cell_candidates", district)] = cell_candidates(run, mask)
        s = run.cell_snaps
        cand = Points(s.edge[cand_cells], s.fraction[cand_cells], s.off_m[cand_cells])
        kind = "cell_centres"
    t0 = time.perf_counter()
    cover, reach_reused = reach_cover(run, cand)
    t_reach = time.perf_counter() - t0
    t0 = time.perf_counter()
    sel = solver.greedy_max_cover(cover, weights, covered, k=k)
    t_greedy = time.perf_counter() - t0
    total = float(weights.sum())
    before = float(weights[covered & mask].sum())
    lon, lat = _on_edge_lonlat(run, cand) if len(cand) else (np.empty(0), np.empty(0))
    chosen = np.asarray(sel.chosen, dtype=np.intp)
    # what each pick would add on its own (existing stations only), besides its gain after
    # the earlier picks (the greedy's marginal gain)
    alone = cover[chosen] @ np.where(covered, 0.0, weights) if len(chosen) else np.empty(0)
    useful = derive.useful_sites(list(sel.gains), total)
    labels = site_labels(run, lon[chosen], lat[chosen], cand.edge[chosen])
    picks = []
    cum = before
    for rank, (j, gain) in enumerate(zip(sel.chosen, sel.gains, strict=True), start=1):
        cum += gain
        label = labels[rank - 1]
        given = sites[j].name if sites else None
        picks.append(
            {
                "rank": rank,
                "candidate": int(j),
                "lon": float(lon[j]),
                "lat": float(lat[j]),
                "name": given or label["name"],
                "name_en": given or label["name_en"],
                "district": label["district"],
                "street": label["street"],
                "near_station_id": label["near_station_id"],
                "near_station_name": label["near_station_name"],
                "near_station_m": label["near_station_m"],
                "h3": format(int(run.grid.cells[cand_cells[j]]), "x")
                if cand_cells is not None
                else None,
                "gain": gain,
                "gain_share": gain / total if total > 0 else None,
                "gain_alone": float(alone[rank - 1]),
                "gain_alone_share": float(alone[rank - 1]) / total if total > 0 else None,
                "covered_share_after": cum / total if total > 0 else None,
                "useful": useful[rank - 1],
            }
        )
    out: dict[str, Any] = {
        "method": "greedy maximal covering, lazy gain updates",
        "candidates": {"kind": kind, "count": len(cand)},
        "k": k,
        "picks": picks,
        "covered_demand_before": before,
        "covered_demand_after": sel.covered_weight_after if picks else before,
        "total_demand": total,
        "stopped_early": sel.stopped_early,
        "timing_s": {
            "reach": round(t_reach, 3),
            "reach_reused": reach_reused,
            "greedy": round(t_greedy, 4),
        },
    }
    if compare_exact:
        t0 = time.perf_counter()
        ex = solver.exact_max_cover(cover, weights, covered, k=k, time_limit_s=exact_time_limit_s)
        gain_g = sel.covered_weight_after - sel.covered_weight_before
        gain_x = ex.covered_weight_after - ex.covered_weight_before
        out["exact"] = {
            "solver": "HiGHS MILP (scipy.optimize.milp)",
            "optimal": ex.optimal,
            "gain": gain_x,
            "greedy_ratio": gain_g / gain_x if gain_x > 0 else 1.0,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    return out


def scenario(
    run: Run,
    *,
    add: Sequence[SitePoint] = (),
    close: Sequence[int] = (),
    district: str | None = None,
) -> dict[str, Any]:
    """Coverage before and after adding sites and closing stations (same run parameters)."""
    ids = run.station_ids
    known = set(ids.tolist())
    unknown = [sid for sid in close if sid not in known]
    if unknown:
        raise InvalidInputError(
            f"close: station {unknown[0]} is not among the {len(ids)} stations this run "
            "counts (unknown, closed, or off the network)",
            field="close",
        )
    keep = ~np.isin(ids, np.asarray(list(close), dtype=np.int64))
    pts = run.model.stations.take(np.flatnonzero(keep))
    if add:
        pts = Points.concat(pts, _snap_or_422(run, add, "add"))
    after = build_model(
        run.graph,
        run.cell_snaps,
        run.weights,
        pts,
        minutes_target=run.params.minutes,
        dense_minutes=run.params.dense_minutes,
    )
    mask = run.district_mask(district)
    if district is None:
        n_before, n_after = len(ids), len(pts)
    else:
        d = run.district_codes.index(district)
        n_before = int((run.station_district == d).sum())
        n_after = n_before - int((run.station_district[~keep] == d).sum())
        if add:
            geom = run.district_geoms[d]
            n_after += sum(bool(geom.contains(shapely.Point(s.lon, s.lat))) for s in add)
    s_before = derive.area_summary(run.model, mask, run.grid.area_km2, run.params.bands, n_before)
    s_after = derive.area_summary(after, mask, run.grid.area_km2, run.params.bands, n_after)
    was, now = run.model.covered() & mask, after.covered() & mask
    return {
        **run.meta(),
        "district": district,
        "added": len(add),
        "closed": list(close),
        "before": s_before,
        "after": s_after,
        "newly_covered": {
            "cells": int((now & ~was).sum()),
            "demand": float(run.weights[now & ~was].sum()),
        },
        "newly_uncovered": {
            "cells": int((was & ~now).sum()),
            "demand": float(run.weights[was & ~now].sum()),
        },
    }


def _reason(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


def overdense_features(
    run: Run,
    *,
    district: str | None,
    dense_n: int,
    pair_minutes: float,
    redundant_pct: float,
    kind: str,
    coord_sys: CoordSys,
    redundant_rel: float = derive.DEFAULT_REDUNDANT_REL,
) -> list[dict[str, Any]]:
    """Over-dense cells, close station pairs and redundant stations as GeoJSON Features, each
    with its reason (zh, en) and the numbers behind it."""
    mask = run.district_mask(district)
    feats: list[dict[str, Any]] = []
    dm = run.params.dense_minutes
    in_district = (
        np.ones(len(run.station_ids), dtype=bool)
        if district is None
        else run.station_district == run.district_codes.index(district)
    )
    if kind in ("all", "cells"):
        idx = np.flatnonzero(mask & (run.model.dense_count >= dense_n))
        polys = run.grid.polygons
        for i in idx.tolist():
            n = int(run.model.dense_count[i])
            feats.append(
                {
                    "type": "Feature",
                    "geometry": coords.geometry_geojson(polys[i], coord_sys),
                    "properties": {
                        "kind": "dense_cell",
                        "h3": format(int(run.grid.cells[i]), "x"),
                        "stations_within": n,
                        "minutes": dm,
                        "weight": round(float(run.weights[i]), 3),
                        "reason": _reason(
                            f"{dm:g} 分钟内可到达 {n} 个驿站（阈值 {dense_n}）",
                            f"{n} stations within {dm:g} min (threshold {dense_n})",
                        ),
                    },
                }
            )
    if kind in ("all", "pairs"):
        for a, b, ab, ba in run.station_pairs(pair_minutes):
            if not (in_district[a] or in_district[b]):
                continue
            line = shapely.LineString(
                [(run.station_lon[a], run.station_lat[a]), (run.station_lon[b], run.station_lat[b])]
            )
            feats.append(
                {
                    "type": "Feature",
                    "geometry": coords.geometry_geojson(line, coord_sys),
                    "properties": {
                        "kind": "close_pair",
                        "station_a": int(run.station_ids[a]),
                        "station_b": int(run.station_ids[b]),
                        "name_a": run.station_names[a],
                        "name_b": run.station_names[b],
                        "minutes_a_to_b": round(ab, 2),
                        "minutes_b_to_a": round(ba, 2),
                        "reason": _reason(
                            f"两站相互 {pair_minutes:g} 分钟内可达（{ab:.1f} / {ba:.1f} 分钟）",
                            f"each within {pair_minutes:g} min of the other "
                            f"({ab:.1f} / {ba:.1f} min)",
                        ),
                    },
                }
            )
    if kind in ("all", "stations"):
        unit = run.unit
        cover = run.station_coverage()
        flags = derive.redundant_flags(cover, redundant_pct, redundant_rel)
        med = derive.median_backup(cover) or 0.0
        for i, c in enumerate(cover):
            loss, backup = c.loss_pct, c.backup_minutes
            if not flags[i] or not in_district[i] or loss is None or backup is None:
                continue
            feats.append(
                {
                    "type": "Feature",
                    "geometry": point_to(
                        float(run.station_lon[i]), float(run.station_lat[i]), coord_sys
                    ),
                    "properties": {
                        "kind": "redundant_station",
                        "station_id": int(run.station_ids[i]),
                        "name": run.station_names[i],
                        "covered_demand": round(c.covered_demand, 3),
                        "exclusive_demand": round(c.exclusive_demand, 3),
                        "loss_pct": round(loss, 3),
                        "cells": c.cells,
                        "exclusive_cells": c.exclusive_cells,
                        "nearest_demand": round(c.nearest_demand, 3),
                        "backup_minutes": round(backup, 3),
                        "median_backup_minutes": round(med, 3),
                        "reason": _reason(
                            f"关闭后仅 {loss:.1f}% 的服务需求（{c.exclusive_demand:,.0f} "
                            f"{unit['zh']}）失去 {run.params.minutes} 分钟覆盖（阈值 "
                            f"{redundant_pct:g}%）；以本站为最近驿站的需求改去下一站平均多用 "
                            f"{backup:.2f} 分钟，中位驿站为 {med:.2f} 分钟（阈值：中位的 "
                            f"{redundant_rel:.0%}）",
                            f"closing it alone leaves only {loss:.1f}% of the demand it serves "
                            f"({c.exclusive_demand:,.0f} {unit['en']}) beyond "
                            f"{run.params.minutes} min (threshold {redundant_pct:g}%); the demand "
                            f"it is nearest to would need {backup:.2f} min more on average to "
                            f"the next station, against {med:.2f} min for the median station "
                            f"(threshold: {redundant_rel:.0%} of the median)",
                        ),
                    },
                }
            )
    return feats
