"""Coverage use cases: run (cached, in the background when slow), summaries, cells, gaps,
over-density, site suggestions and what-if scenarios.

A **run** is one analysis of the open stations against the demand cells for one mode and
target. Its key is a digest of everything the answer depends on: the stations (fingerprint of
every row's id and version), the live network version, the travel settings, the district
outlines, the demand layer and the parameters. Runs live in memory (`CoverageEngine`, LRU) and
their cells are stored in `coverage_runs` / `coverage_cells` for vector tiles and downloads.

The heavy part (grid, one multi-source search, one bounded search per station) runs in a worker
thread fed with data read beforehand, so it never holds a database connection. A request waits
up to `coverage_wait_s` for it (Wuhan: ~1-3 s) and otherwise gets 202 with a status URL.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy.engine import Connection

from app.coverage import derive, queries
from app.coverage.analysis import CoverageModel, Points, build_model, point_reach
from app.coverage.grid import (
    DEFAULT_RESOLUTION,
    RESOLUTIONS,
    CellSnaps,
    DemandGrid,
    build_grid,
    snap_points,
)
from app.errors import InvalidInputError, NotFoundError
from app.geo import coords
from app.geo.coords import CoordSys
from app.hours.state import station_state
from app.network import queries as network_queries
from app.network.graph import ModeGraph
from app.network.service import NetworkState
from app.network.travel import Mode

MAX_TARGET_MINUTES = 60
WEIGHT_UNITS = {
    "road": {"zh": "米道路", "en": "m of street"},
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


def make_params(
    *,
    mode: Mode | str = Mode.WALK,
    minutes: int = 15,
    bands: str | Sequence[int] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    weight: str = "road",
    open_at: datetime | None = None,
    dense_minutes: float = derive.DEFAULT_DENSE_MINUTES,
) -> Params:
    """Validated parameters (InvalidInputError naming the field)."""
    try:
        m = Mode(mode)
    except ValueError as exc:
        raise InvalidInputError("mode: one of walk, ebike, car", field="mode") from exc
    if not 1 <= int(minutes) <= MAX_TARGET_MINUTES:
        raise InvalidInputError(
            f"minutes: the target must be 1..{MAX_TARGET_MINUTES} minutes", field="minutes"
        )
    if bands is None:
        band_list = sorted({b for b in derive.DEFAULT_BANDS if b <= minutes} | {int(minutes)})
    else:
        raw = bands.split(",") if isinstance(bands, str) else [str(b) for b in bands]
        try:
            band_list = sorted({int(b.strip()) for b in raw if b.strip()})
        except ValueError as exc:
            raise InvalidInputError(
                f"bands: comma-separated whole minutes, e.g. 5,10,15; got {bands!r}",
                field="bands",
            ) from exc
        if not band_list or any(not 1 <= b <= MAX_TARGET_MINUTES for b in band_list):
            raise InvalidInputError(
                f"bands: 1 to 6 values, each 1..{MAX_TARGET_MINUTES}", field="bands"
            )
        if len(band_list) > 6:
            raise InvalidInputError("bands: at most 6 values", field="bands")
    if resolution not in RESOLUTIONS:
        raise InvalidInputError(
            f"resolution: H3 resolution {', '.join(map(str, RESOLUTIONS))} "
            "(8 ≈ 0.74 km², 9 ≈ 0.10 km², 10 ≈ 0.015 km² per cell)",
            field="resolution",
        )
    if not (0 < dense_minutes <= MAX_TARGET_MINUTES):
        raise InvalidInputError(
            f"dense_minutes: must be > 0 and ≤ {MAX_TARGET_MINUTES}", field="dense_minutes"
        )
    return Params(
        mode=m,
        minutes=int(minutes),
        bands=tuple(band_list),
        resolution=int(resolution),
        weight=weight,
        open_at=open_at,
        dense_minutes=float(dense_minutes),
    )


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

    @cached_property
    def key(self) -> str:
        raw = json.dumps(
            [
                "coverage-v1",
                self.stations.fingerprint,
                self.network_version,
                self.settings_key,
                self.districts.fingerprint,
                self.demand_fingerprint,
                self.params.as_dict(),
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

    def meta(self) -> dict[str, Any]:
        return {
            "run": self.key,
            "run_id": self.run_id,
            "params": self.params.as_dict(),
            "network_version": self.network_version,
            "demand_unit": self.unit,
            "stations_used": len(self.station_ids),
            "stations_excluded": self.excluded,
            "computed_seconds": round(self.seconds, 3),
        }

    # -- summaries -------------------------------------------------------------------------
    def summary(self, district: str | None = None) -> dict[str, Any]:
        self.district_mask(district)  # 404 for an unknown district
        memo_key = ("summary", district)
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
        outside = self.cell_district < 0
        out: dict[str, Any] = {
            "overall": overall,
            "districts": rows,
            "outside_districts": {
                "cells": int(outside.sum()),
                "demand": float(self.weights[outside].sum()),
            },
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
                        "minutes": round(m, 2) if np.isfinite(m) else None,
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

    # -- over-density ----------------------------------------------------------------------
    def station_pairs(self, pair_minutes: float) -> list[tuple[int, int, float, float]]:
        memo_key = ("pairs", pair_minutes)
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
    """'0-5', '5-10', '10-15' … up to the target; beyond it (or unreachable) 'gap'."""
    if not np.isfinite(minutes) or minutes > target + 1e-9:
        return "gap"
    lo = 0
    for b in sorted(bands):
        if b > target:
            break
        if minutes <= b + 1e-9:
            return f"{lo}-{b}"
        lo = b
    return f"{lo}-{target}"


def point_to(lon: float, lat: float, coord_sys: CoordSys) -> dict[str, Any]:
    x, y = coords.from_wgs84(lon, lat, coord_sys)
    return {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]}


# ------------------------------------------------------------------------------------------
# Computing a run
# ------------------------------------------------------------------------------------------

Progress = Callable[[str, int, int], None]


def _station_open_mask(inputs: Inputs) -> tuple[NDArray[np.bool_], list[dict[str, Any]]]:
    """Which stations serve in this run: status open, and at `open_at` (if given) open or of
    unknown hours (counted as open and listed)."""
    st = inputs.stations
    at = inputs.params.open_at
    ok = np.array([s == "open" for s in st.status], dtype=bool)
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


def compute_run(inputs: Inputs, grid: DemandGrid, progress: Progress | None = None) -> Run:
    """The analysis itself (pure: no database)."""
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
    ok, excluded = _station_open_mask(inputs)
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
    )


# ------------------------------------------------------------------------------------------
# The engine: cache, background jobs
# ------------------------------------------------------------------------------------------


@dataclass
class Pending:
    """A run still computing (202 to the client)."""

    key: str
    started: float
    progress: dict[str, Any]


class CoverageEngine:
    """Runs in memory (LRU), computed one at a time in a worker thread."""

    def __init__(self, network: NetworkState, *, keep: int = 6, wait_s: float = 20.0) -> None:
        self.network = network
        self.keep = keep
        self.wait_s = wait_s
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._jobs: dict[str, tuple[Future[Run], Pending]] = {}
        self._grids: OrderedDict[tuple[Any, ...], DemandGrid] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coverage")
        self.failures: dict[str, str] = {}

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

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
        )

    def grid_for(self, inputs: Inputs) -> DemandGrid:
        extra = inputs.demand_cells
        extra_key = hashlib.sha256(extra.tobytes()).hexdigest()[:16] if extra is not None else None
        key = (
            inputs.network_version,
            id(inputs.graph.network),
            inputs.params.resolution,
            extra_key,
        )
        with self._lock:
            grid = self._grids.get(key)
            if grid is not None:
                self._grids.move_to_end(key)
                return grid
        grid = build_grid(inputs.graph.network, inputs.params.resolution, extra_cells=extra)
        with self._lock:
            self._grids[key] = grid
            while len(self._grids) > 3:
                self._grids.popitem(last=False)
        return grid

    def cached(self, key: str) -> Run | None:
        with self._lock:
            run = self._runs.get(key)
            if run is not None:
                self._runs.move_to_end(key)
            return run

    def pending(self, key: str) -> Pending | None:
        with self._lock:
            job = self._jobs.get(key)
            return None if job is None else job[1]

    def _finish(self, key: str, fut: Future[Run]) -> None:
        with self._lock:
            self._jobs.pop(key, None)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is not None:
                self.failures[key] = f"{type(exc).__name__}: {exc}"
                return
            self._runs[key] = fut.result()
            while len(self._runs) > self.keep:
                self._runs.popitem(last=False)

    def start(self, inputs: Inputs) -> Future[Run]:
        """The run's future: already running, or started now."""
        key = inputs.key
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                return job[0]
            pending = Pending(key, time.time(), {"stage": "queued", "done": 0, "total": 0})

            def progress(stage: str, done: int, total: int) -> None:
                pending.progress.update(stage=stage, done=done, total=total)

            def work() -> Run:
                progress("grid", 0, 0)
                grid = self.grid_for(inputs)
                return compute_run(inputs, grid, progress)

            fut = self._pool.submit(work)
            self._jobs[key] = (fut, pending)
            self.failures.pop(key, None)
        fut.add_done_callback(lambda f: self._finish(key, f))
        return fut

    def get(self, inputs: Inputs, wait_s: float | None = None) -> Run | Pending:
        """The finished run, or its pending job after waiting up to `wait_s`."""
        run = self.cached(inputs.key)
        if run is not None:
            return run
        fut = self.start(inputs)
        try:
            run = fut.result(timeout=self.wait_s if wait_s is None else wait_s)
        except FutureTimeout:
            pending = self.pending(inputs.key)
            return pending or Pending(inputs.key, time.time(), {"stage": "finishing"})
        with self._lock:  # the done-callback may not have run yet
            self._runs[inputs.key] = run
        return run

    def run_now(self, inputs: Inputs, progress: Progress | None = None) -> Run:
        """Compute in the calling thread (CLI)."""
        run = self.cached(inputs.key)
        if run is None:
            run = compute_run(inputs, self.grid_for(inputs), progress)
            with self._lock:
                self._runs[inputs.key] = run
        return run


def persist(conn: Connection, run: Run) -> int:
    """Store the run's cells once (for vector tiles and GIS downloads); the run id."""
    if run.run_id is not None:
        return run.run_id
    with run._lock:
        if run.run_id is None:
            run.run_id = queries.store_run(
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
            )
    return run.run_id


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
    one per coarser H3 parent (the heaviest child) until at most MAX_CELL_CANDIDATES remain."""
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
    ok = snaps.reachable & mask
    near = np.zeros(len(ce), dtype=bool)
    near[ok] = np.isfinite(node_s[g.network.src[ce[ok]]]) | np.isfinite(
        node_s[g.network.dst[ce[ok]]]
    )
    near |= uncovered
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
    maximal covering with lazy gains; optionally checked against the exact optimum)."""
    from app.coverage import solver

    if not 1 <= k <= MAX_SUGGESTIONS:
        raise InvalidInputError(f"k: 1..{MAX_SUGGESTIONS} sites", field="k")
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
        cand_cells = cell_candidates(run, mask)
        s = run.cell_snaps
        cand = Points(s.edge[cand_cells], s.fraction[cand_cells], s.off_m[cand_cells])
        kind = "cell_centres"
    t0 = time.perf_counter()
    reach = point_reach(run.graph, cand, run.cell_snaps, run.params.minutes * 60.0)
    cover = reach.matrix()
    t_reach = time.perf_counter() - t0
    t0 = time.perf_counter()
    sel = solver.greedy_max_cover(cover, weights, covered, k=k)
    t_greedy = time.perf_counter() - t0
    total = float(weights.sum())
    before = float(weights[covered & mask].sum())
    lon, lat = _on_edge_lonlat(run, cand) if len(cand) else (np.empty(0), np.empty(0))
    picks = []
    cum = before
    for rank, (j, gain) in enumerate(zip(sel.chosen, sel.gains, strict=True), start=1):
        cum += gain
        picks.append(
            {
                "rank": rank,
                "candidate": int(j),
                "lon": float(lon[j]),
                "lat": float(lat[j]),
                "name": sites[j].name if sites else None,
                "h3": format(int(run.grid.cells[cand_cells[j]]), "x")
                if cand_cells is not None
                else None,
                "gain": gain,
                "gain_share": gain / total if total > 0 else None,
                "covered_share_after": cum / total if total > 0 else None,
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
        "timing_s": {"reach": round(t_reach, 3), "greedy": round(t_greedy, 4)},
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
        for i, c in enumerate(run.station_coverage()):
            loss = c.loss_pct
            if loss is None or loss >= redundant_pct or not in_district[i]:
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
                        "reason": _reason(
                            f"关闭后仅 {loss:.1f}% 的服务需求（{c.exclusive_demand:,.0f} "
                            f"{unit['zh']}）失去 {run.params.minutes} 分钟覆盖，低于 "
                            f"{redundant_pct:g}%",
                            f"closing it alone leaves only {loss:.1f}% of the demand it serves "
                            f"({c.exclusive_demand:,.0f} {unit['en']}) beyond "
                            f"{run.params.minutes} min, under {redundant_pct:g}%",
                        ),
                    },
                }
            )
    return feats
