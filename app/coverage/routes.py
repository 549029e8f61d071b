"""Planner API: coverage summary, cells, gaps, over-density, site suggestions, scenarios.

Every endpoint takes the run parameters (mode, minutes, bands, resolution, weight, open_at,
dense_minutes); the first request for a combination computes the run (Wuhan: seconds) and
later ones reuse it. A run still computing after `YIZHAN_COVERAGE_WAIT_S` answers 202 with a
`Location` to poll (`GET /api/v1/coverage/runs/{run}`). Runs are bounded: one computes, a few
wait, more get 503 + Retry-After (see `service.CoverageEngine`). The routes are `async`: the
inputs are read and the cells stored in short units of work on worker threads, the wait for a
run holds neither a connection nor a thread, and the answer is shaped on a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from app.api.deps import CoverageDep, DbDep, SettingsDep
from app.api.openapi import (
    GEOJSON,
    JSON_BODY,
    PENDING,
    CoverageCollection,
    CoverageCompare,
    CoverageRunStatus,
    CoverageSummary,
    Scenario,
    errors,
)
from app.api.openapi import body as response_body
from app.api.params import CoordSysQ, StrictDecimal, StrictInteger
from app.api.responses import GeoJSONResponse, JSONBytesResponse
from app.coverage import daynight, derive, service
from app.coverage.service import Params, Pending, Run, SitePoint
from app.errors import InvalidInputError, NotFoundError
from app.geo import coords
from app.geo.coords import CoordSys
from app.hours import moments
from app.hours import store as hours_store
from app.network.travel import Mode
from app.stations.schemas import JsonNumber, NoNulText

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])

#: What a run-backed endpoint can answer besides its body and 202: unknown district (404), no
#: road network (409), bad parameters (422), too many runs at once or the database (503).
_RUN_ERRORS = (404, 409, 422, 503)
_COLLECTION = response_body(CoverageCollection, media=GEOJSON)

DistrictQ = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$", description="district code, e.g. 420106"),
]


async def run_params(
    mode: Annotated[Mode, Query(description="walk (default), ebike or car")] = Mode.WALK,
    minutes: Annotated[
        int, StrictInteger, Query(ge=1, le=60, description="target: the service circle")
    ] = 15,
    bands: Annotated[
        str | None,
        Query(max_length=40, description="band edges, whole minutes 1-60, default 5,10,15"),
    ] = None,
    resolution: Annotated[
        int, StrictInteger, Query(description="H3 resolution 8, 9 (default) or 10")
    ] = 9,
    weight: Annotated[
        str,
        Query(
            max_length=40,
            pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$",
            description="road (street metres, default), area (km²) or an imported layer",
        ),
    ] = "road",
    open_at: Annotated[
        str | None,
        Query(max_length=40, description="count only stations open at this instant (ISO 8601)"),
    ] = None,
    dense_minutes: Annotated[
        float | None,
        StrictDecimal,
        Query(
            gt=0,
            le=60,
            description="over-density radius, whole minutes 1-15 (default per mode, about "
            "400 m: walk 5, ebike 2, car 1)",
        ),
    ] = None,
) -> Params:
    """The run parameters of a GET (async: checked on the event loop, no thread hop)."""
    return _params(mode, minutes, bands, resolution, weight, open_at, dense_minutes)


def _params(
    mode: Mode,
    minutes: int,
    bands: str | None,
    resolution: int,
    weight: str,
    open_at: str | None,
    dense_minutes: float | None,
) -> Params:
    when = hours_store.parse_instant(open_at) if open_at is not None else None
    return service.make_params(
        mode=mode,
        minutes=minutes,
        bands=bands,
        resolution=resolution,
        weight=weight,
        open_at=when,
        dense_minutes=dense_minutes,
    )


ParamsDep = Annotated[Params, Depends(run_params)]


RunFor = Callable[[Params], Awaitable[Run | Pending]]


async def run_for(
    request: Request, engine: CoverageDep, db: DbDep, settings: SettingsDep
) -> RunFor:
    """What a run-backed route awaits: the run for its parameters (cached, joined or
    computed; cells stored once), or Pending after `YIZHAN_COVERAGE_WAIT_S`."""

    async def get(params: Params) -> Run | Pending:
        return await engine.obtain(
            db, params, time_zone=settings.time_zone, disconnected=request.is_disconnected
        )

    return get


RunForDep = Annotated[RunFor, Depends(run_for)]


def pending_response(request: Request, pending: Pending) -> JSONBytesResponse:
    url = str(request.url_for("coverage_run_status", key=pending.key))
    return JSONBytesResponse(
        {"status": "running", "run": pending.key, "progress": pending.progress, "poll": url},
        status_code=202,
        headers={"Location": url, "Retry-After": "2"},
    )


@router.get(
    "/runs/{key}",
    name="coverage_run_status",
    summary="Status of a coverage run",
    responses=response_body(CoverageRunStatus) | errors(404, 422, 503),
)
async def run_status(
    engine: CoverageDep, key: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
) -> JSONBytesResponse:
    run = engine.cached(key)
    if run is not None:
        return JSONBytesResponse({"status": "done", **run.meta()})
    pending = engine.pending(key)
    if pending is not None:
        return JSONBytesResponse(
            {"status": "running", "run": key, "progress": pending.progress}, status_code=200
        )
    if key in engine.failures:
        error = engine.failures[key]
        status = "cancelled" if error.startswith("cancelled") else "failed"
        return JSONBytesResponse({"status": status, "run": key, "error": error})
    raise NotFoundError(f"key: no coverage run {key} in this process", field="key")


@router.get(
    "/summary",
    summary="Share of area and demand within 5/10/15 minutes, by district",
    responses=response_body(CoverageSummary) | PENDING | errors(*_RUN_ERRORS),
)
async def summary(
    request: Request, run_for: RunForDep, params: ParamsDep, district: DistrictQ = None
) -> Response:
    run = await run_for(params)
    if isinstance(run, Pending):
        return pending_response(request, run)
    base = str(request.base_url).rstrip("/")

    def answer() -> Response:
        body = run.summary(district)
        if run.run_id is not None:
            body["tiles"] = f"{base}/api/v1/tiles/coverage/{run.run_id}/{{z}}/{{x}}/{{y}}.pbf"
        return JSONBytesResponse(body)

    return await run_in_threadpool(answer)


@router.get(
    "/cells",
    summary="Demand cells with minutes to the nearest open station (GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_COLLECTION | PENDING | errors(*_RUN_ERRORS),
)
async def cells(
    request: Request,
    run_for: RunForDep,
    params: ParamsDep,
    district: DistrictQ = None,
    coord_sys: CoordSysQ = "wgs84",
) -> Response:
    run = await run_for(params)
    if isinstance(run, Pending):
        return pending_response(request, run)

    def answer() -> Response:
        feats = run.cell_features(district, coord_sys)
        return GeoJSONResponse(
            {"type": "FeatureCollection", "features": feats, **run.meta(), "coord_sys": coord_sys}
        )

    return await run_in_threadpool(answer)


@router.get(
    "/gaps",
    summary="Gaps beyond the target, cut into pieces a planner can act on (GeoJSON)",
    response_class=GeoJSONResponse,
    responses=_COLLECTION | PENDING | errors(*_RUN_ERRORS),
)
async def gaps(
    request: Request,
    run_for: RunForDep,
    engine: CoverageDep,
    params: ParamsDep,
    district: DistrictQ = None,
    limit: Annotated[int, StrictInteger, Query(ge=1, le=1000)] = 50,
    level: Annotated[
        Literal["piece", "gap"],
        Query(
            description="piece (default): each gap cut along district lines and to the area "
            "one station reaches, with its best single site; gap: the connected regions"
        ),
    ] = "piece",
    best_sites: Annotated[
        int,
        StrictInteger,
        Query(
            ge=0,
            le=service.GAP_SITES_MAX,
            description="pieces (the first ones) whose best single new site is computed",
        ),
    ] = service.GAP_SITES_DEFAULT,
    coord_sys: CoordSysQ = "wgs84",
) -> Response:
    run = await run_for(params)
    if isinstance(run, Pending):
        return pending_response(request, run)

    def answer() -> Response:
        feats = service.gap_features(
            run,
            district=district,
            limit=limit,
            level=level,
            best_sites=best_sites,
            coord_sys=coord_sys,
        )
        extra = {"piece_cap_km2": round(run.piece_cap_km2(), 3)} if level == "piece" else {}
        return GeoJSONResponse(
            {
                "type": "FeatureCollection",
                "features": feats,
                **run.meta(),
                "level": level,
                **extra,
                "coord_sys": coord_sys,
            }
        )

    if level == "piece" and best_sites > 0:  # seconds of work the first time
        with engine.derived_slot():
            return await run_in_threadpool(answer)
    return await run_in_threadpool(answer)


@router.get(
    "/overdense",
    summary="Over-dense cells, close station pairs and redundant stations, with reasons",
    response_class=GeoJSONResponse,
    responses=_COLLECTION | PENDING | errors(*_RUN_ERRORS),
)
async def overdense(
    request: Request,
    run_for: RunForDep,
    params: ParamsDep,
    district: DistrictQ = None,
    dense_n: Annotated[int, StrictInteger, Query(ge=2, le=100)] = derive.DEFAULT_DENSE_N,
    pair_minutes: Annotated[
        float, StrictDecimal, Query(gt=0, le=30, allow_inf_nan=False)
    ] = derive.DEFAULT_PAIR_MINUTES,
    redundant_pct: Annotated[
        float, StrictDecimal, Query(ge=0, le=100, allow_inf_nan=False)
    ] = derive.DEFAULT_REDUNDANT_PCT,
    redundant_rel: Annotated[
        float,
        StrictDecimal,
        Query(
            ge=0,
            le=100,
            allow_inf_nan=False,
            description="redundant only if its backup time is at most this multiple of the "
            "median station's (default 0.5; 100 lists every station under redundant_pct)",
        ),
    ] = derive.DEFAULT_REDUNDANT_REL,
    kind: Annotated[
        Literal["all", "cells", "pairs", "stations"], Query(description="which features")
    ] = "all",
    coord_sys: CoordSysQ = "wgs84",
) -> Response:
    pair_minutes = service.check_pair_minutes(pair_minutes)  # 422 before any run
    run = await run_for(params)
    if isinstance(run, Pending):
        return pending_response(request, run)

    def answer() -> Response:
        feats = service.overdense_features(
            run,
            district=district,
            dense_n=dense_n,
            pair_minutes=pair_minutes,
            redundant_pct=redundant_pct,
            kind=kind,
            coord_sys=coord_sys,
            redundant_rel=redundant_rel,
        )
        return GeoJSONResponse(
            {
                "type": "FeatureCollection",
                "features": feats,
                **run.meta(),
                "thresholds": {
                    "dense_n": dense_n,
                    "dense_minutes": run.params.dense_minutes,
                    "pair_minutes": pair_minutes,
                    "redundant_pct": redundant_pct,
                    "redundant_rel": redundant_rel,
                },
                "coord_sys": coord_sys,
            }
        )

    return await run_in_threadpool(answer)


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: Annotated[float, JsonNumber] = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: Annotated[float, JsonNumber] = Field(ge=-90, le=90, allow_inf_nan=False)
    name: Annotated[str, NoNulText] | None = Field(default=None, max_length=200)


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Mode = Mode.WALK
    minutes: Annotated[int, JsonNumber] = Field(default=15, ge=1, le=60)
    bands: str | None = Field(default=None, max_length=40)
    resolution: Annotated[int, JsonNumber] = 9
    weight: str = Field(default="road", max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    open_at: str | None = Field(default=None, max_length=40)
    dense_minutes: Annotated[float, JsonNumber] | None = Field(default=None, gt=0, le=60)
    district: str | None = Field(default=None, pattern=r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
    coord_sys: CoordSys = "wgs84"

    def params(self) -> Params:
        return _params(
            self.mode,
            self.minutes,
            self.bands,
            self.resolution,
            self.weight,
            self.open_at,
            self.dense_minutes,
        )

    def sites(self, items: list[Site] | None) -> list[SitePoint]:
        out = []
        for s in items or []:
            lon, lat = coords.to_wgs84(s.lon, s.lat, self.coord_sys)
            out.append(SitePoint(lon, lat, s.name))
        return out


class SuggestBody(RunBody):
    k: Annotated[int, JsonNumber] = Field(default=5, ge=1, le=service.MAX_SUGGESTIONS)
    candidates: list[Site] | None = Field(
        default=None,
        max_length=service.MAX_PLANNER_CANDIDATES,
        description="a planner's host sites; default: cell centres on the network",
    )
    compare_exact: StrictBool = False


class ScenarioBody(RunBody):
    add: list[Site] = Field(default_factory=list, max_length=500)
    close: list[Annotated[int, JsonNumber]] = Field(default_factory=list, max_length=5000)


@router.post(
    "/suggestions",
    summary="The next K sites adding the most covered demand (existing stations kept)",
    response_class=GeoJSONResponse,
    responses=_COLLECTION | PENDING | errors(*_RUN_ERRORS, *JSON_BODY),
)
async def suggestions(
    request: Request, run_for: RunForDep, engine: CoverageDep, body: SuggestBody
) -> Response:
    run = await run_for(body.params())
    if isinstance(run, Pending):
        return pending_response(request, run)
    with engine.derived_slot():
        return await run_in_threadpool(_suggestions_answer, run, body)


def _suggestions_answer(run: Run, body: SuggestBody) -> Response:
    result = service.suggest(
        run,
        body.k,
        district=body.district,
        sites=body.sites(body.candidates) or None,
        compare_exact=body.compare_exact,
    )
    feats = []
    for p in result.pop("picks"):
        lon, lat = p.pop("lon"), p.pop("lat")
        feats.append(
            {
                "type": "Feature",
                "id": p["rank"],
                "geometry": service.point_to(lon, lat, body.coord_sys),
                "properties": p,
            }
        )
    return GeoJSONResponse(
        {
            "type": "FeatureCollection",
            "features": feats,
            **run.meta(),
            **result,
            "coord_sys": body.coord_sys,
        }
    )


@router.post(
    "/scenario",
    summary="What if: add sites, close stations — coverage before/after",
    responses=response_body(Scenario) | PENDING | errors(*_RUN_ERRORS, *JSON_BODY),
)
async def scenario(
    request: Request, run_for: RunForDep, engine: CoverageDep, body: ScenarioBody
) -> Response:
    run = await run_for(body.params())
    if isinstance(run, Pending):
        return pending_response(request, run)

    def answer() -> Response:
        return JSONBytesResponse(
            service.scenario(
                run, add=body.sites(body.add), close=body.close, district=body.district
            )
        )

    with engine.derived_slot():
        return await run_in_threadpool(answer)


#: The day and night instants of a comparison when none are given (app.hours.moments).
COMPARE_DEFAULT = ("weekday-12", "weekday-22")


@router.get(
    "/compare",
    summary="Coverage at two instants (day vs night), per district",
    responses=response_body(CoverageCompare) | PENDING | errors(*_RUN_ERRORS),
)
async def compare(
    request: Request,
    run_for: RunForDep,
    db: DbDep,
    settings: SettingsDep,
    params: ParamsDep,
    at: Annotated[
        list[str] | None,
        Query(
            description="two instants, day then night: a preset (now, weekday-12, weekday-22, "
            "weekend-03, spring-1-10) or a date-time (local time of the deployment, or with a "
            "UTC offset); default weekday-12 and weekday-22"
        ),
    ] = None,
    district: DistrictQ = None,
    gaps: Annotated[int, StrictInteger, Query(ge=0, le=50, description="gaps listed")] = 5,
) -> Response:
    """Two runs of the same parameters through the same engine and cache, differing only in
    the instant stations must be open at; per district the share of demand within the
    target at each, the stations open at each, and the demand lost and gained at night."""
    if params.open_at is not None:
        raise InvalidInputError("open_at: use at=…&at=… (day, night) for a comparison", "open_at")
    raws = list(at) if at else list(COMPARE_DEFAULT)
    if len(raws) != 2 or any(len(r) > 40 for r in raws):
        raise InvalidInputError("at: give two instants, day then night (≤ 40 characters)", "at")
    when = await run_in_threadpool(_moments, db, raws, settings.time_zone)
    runs: list[Run] = []
    for moment in when:
        run = await run_for(replace(params, open_at=moment.at))
        if isinstance(run, Pending):
            return pending_response(request, run)
        runs.append(run)
    day, night = runs

    def answer() -> Response:
        if district is not None:
            day.district_mask(district)  # 404 for an unknown district
        table = daynight.compare(day, night, "zh")
        rows = table["districts"]
        if district is not None:
            rows = [r for r in rows if r["code"] == district]
        body = {
            "params": {**params.as_dict(), "open_at": None},
            "day": _instant(day, when[0], district, gaps),
            "night": _instant(night, when[1], district, gaps),
            "overall": _no_label(table["overall"]),
            "districts": [_no_label(r) for r in rows],
            "demand_unit": day.unit,
        }
        return JSONBytesResponse(body)

    return await run_in_threadpool(answer)


def _moments(db: Any, raws: list[str], tz: str) -> list[moments.Moment]:
    with db.read() as conn:
        return hours_store.moments_at(conn, raws, tz)


def _no_label(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "label"}


def _instant(run: Run, moment: moments.Moment, district: str | None, limit: int) -> dict[str, Any]:
    summary = run.summary(district)
    focus = summary["district"] if district else summary["overall"]
    return {
        "asked": moment.raw,
        "at": moment.at.isoformat(),
        "label": {"zh": moment.label("zh"), "en": moment.label("en")},
        "run": run.key,
        "stations_open": focus["stations"],
        "uncovered_demand": focus["uncovered_demand"],
        "gaps": [  # the pieces a planner acts on (one district each), as /gaps gives them
            {
                "rank": g.rank,
                "gap": g.gap,
                "uncovered_demand": round(float(g.demand), 3),
                "area_km2": round(float(g.area_km2), 4),
                "districts": [g.district] if g.district else [],
            }
            for g in run.gap_pieces(district, limit)
        ],
        "stations_excluded": run.excluded,
    }
