"""HTML pages. Thin: they call the same station service as the API and render templates."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.api.deps import ConnDep, CoverageDep, DbDep, SettingsDep
from app.api.headers import csp_nonce
from app.api.responses import GeoJSONResponse
from app.coverage import bands, daynight, derive, extent
from app.coverage import service as coverage_service
from app.coverage.service import (
    MAX_TARGET_MINUTES,
    CoverageBusyError,
    Params,
    Pending,
    Run,
    make_params,
)
from app.demand import queries as demand_queries
from app.errors import DomainError, InvalidInputError, status_for
from app.exchange import csvsafe
from app.geo import coords
from app.hours import moments
from app.hours import store as hours_store
from app.network.errors import NoNetworkError
from app.stations import queries, service
from app.stations.vocab import AMENITIES, AMENITY_CODES, DEFAULT_VISIBLE_STATUSES, HOST_TYPES
from app.web import maps
from app.web.assets import leaflet_ready
from app.web.basemaps import TILES
from app.web.i18n import distance_label, term_label, texts


def _page_context(request: Request) -> dict[str, Any]:
    """What every template gets: the response's CSP nonce for its inline scripts/styles."""
    return {"csp_nonce": csp_nonce(request)}


TEMPLATES = Jinja2Templates(
    directory=str(Path(__file__).resolve().parents[2] / "templates"),
    context_processors=[_page_context],
)
#: A district's share inside the road network, as the planner table shows it.
TEMPLATES.env.filters["network_pct"] = extent.pct_text
router = APIRouter(include_in_schema=False)

#: Jianghan Road, Wuhan: where the demo opens.
DEFAULT_POINT = (30.5825, 114.2875)


def _point(lat: str | None, lon: str | None) -> tuple[float, float] | None:
    try:
        la = float(lat) if lat else DEFAULT_POINT[0]
        lo = float(lon) if lon else DEFAULT_POINT[1]
    except ValueError:
        return None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return la, lo


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask every site for one: an empty answer they cache, not a 404 in the console."""
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    conn: ConnDep,
    lat: Annotated[str | None, Query(max_length=40)] = None,
    lon: Annotated[str | None, Query(max_length=40)] = None,
    amenities: Annotated[list[str] | None, Query(max_length=20)] = None,
    open_now: Annotated[str | None, Query(max_length=10)] = None,
    lang: Annotated[str, Query(max_length=5)] = "zh",
) -> HTMLResponse:
    """Courier page: the nearest stations with the chosen amenities, open now by default."""
    lang = "en" if lang == "en" else "zh"
    t = texts(lang)
    first_visit = lat is None and lon is None and amenities is None and open_now is None
    want_open = first_visit or open_now == "true"
    selected = [a for a in (amenities or []) if a in AMENITY_CODES]
    point = _point(lat, lon)
    stations: list[dict[str, Any]] | None = None
    error = None
    if point is None:
        error = t["bad_point"]
        point = DEFAULT_POINT
    else:
        try:
            when = hours_store.requested_instant(conn, want_open, None)
            flt = queries.NearestFilter(
                lat=point[0],
                lon=point[1],
                k=10,
                amenities=tuple(selected),
                statuses=DEFAULT_VISIBLE_STATUSES,
                open_at=when if want_open else None,
            )
            ctx = service.FeatureContext.build(request.app.state.settings, conn, when, "wgs84")
            stations = [
                _card(service.to_feature(r, ctx), r, lang) for r in queries.nearest(conn, flt)
            ]
        except InvalidInputError:
            error = t["no_window"]
    other = "zh" if lang == "en" else "en"
    return TEMPLATES.TemplateResponse(
        request,
        "index.html",
        {
            "t": t,
            "lang": lang,
            "other_lang_url": str(request.url.include_query_params(lang=other)),
            "lat": point[0],
            "lon": point[1],
            "amenities": [{"code": a.code, "label": term_label(a, lang)} for a in AMENITIES],
            "selected": selected,
            "open_now": want_open,
            "stations": stations,
            "error": error,
        },
    )


_AMENITY = {a.code: a for a in AMENITIES}
_HOST = {h.code: h for h in HOST_TYPES}


def _card(feature: dict[str, Any], row: Any, lang: str) -> dict[str, Any]:
    p = feature["properties"]
    label = p.get("next_change_label") or {}
    return {
        "name": p["name"],
        "address": p["address"],
        "host": term_label(_HOST[p["host_type"]], lang),
        "distance": distance_label(float(row["distance_m"]), lang),
        "open_now": p["open_now"],
        "next_label": label.get(lang),
        "reports": p["open_reports"],
        "freshness": freshness_label(p["freshness"], lang),
        "amenities": [term_label(_AMENITY[a], lang) for a in p["amenities"]],
        "links": p["links"],
    }


def freshness_label(freshness: dict[str, Any], lang: str) -> str:
    """The courier card's freshness line: 3 天前已确认 / confirmed 3 days ago, or
    信息可能已过期 / may be out of date when the station is stale (never confirmed, or not for
    the stale days)."""
    t = texts(lang)
    days = freshness["confirmed_days_ago"]
    if freshness["stale"] or days is None:
        return t["stale"]
    if days == 0:
        return t["confirmed_today"]
    if days == 1:
        return t["confirmed_ago_1"]
    return t["confirmed_ago"].format(n=days)


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    lang: Annotated[str, Query(max_length=5)] = "zh",
) -> HTMLResponse:
    """Planner/courier map: stations, click for isochrones and station service areas."""
    lang = "en" if lang == "en" else "zh"
    t = texts(lang)
    tiles = TILES[request.app.state.settings.tiles]
    center = list(DEFAULT_POINT)
    if tiles["coord_sys"] != "wgs84":
        lon, lat = coords.from_wgs84(DEFAULT_POINT[1], DEFAULT_POINT[0], tiles["coord_sys"])
        center = [lat, lon]
    other = "zh" if lang == "en" else "en"
    return TEMPLATES.TemplateResponse(
        request,
        "map.html",
        {
            "t": t,
            "t_json": json.dumps(t, ensure_ascii=False).replace("</", "<\\/"),
            "lang": lang,
            "other_lang_url": str(request.url.include_query_params(lang=other)),
            "tiles": tiles,
            "coord_sys": tiles["coord_sys"],
            "center": center,
            "leaflet_ready": leaflet_ready(),
        },
    )


# -- planner page ----------------------------------------------------------------------------

PLANNER_MODES = ("walk", "ebike", "car")
PLANNER_RESOLUTIONS = (8, 9, 10)
PLANNER_SUGGEST = (0, 3, 5, 10)
_LAYER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_DISTRICT_CODE = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
#: The day vs night comparison's default instants (app.hours.moments presets).
DAY_NIGHT = ("weekday-12", "weekday-22")


@dataclass(frozen=True)
class PlannerQuery:
    """The planner page's GET parameters, checked; `error` names the first bad one (the
    others keep their defaults)."""

    mode: str = "walk"
    minutes: int = 15
    district: str | None = None
    weight: str = "road"
    resolution: int = 9
    suggest: int = 0
    lang: str = "zh"
    tiles: str = "osm"
    error: str | None = None
    #: count only stations open then (app.hours.moments: a preset or a date-time); "" any
    at: str = ""
    #: the day vs night comparison (two more runs) and its two instants
    compare: bool = False
    day: str = DAY_NIGHT[0]
    night: str = DAY_NIGHT[1]

    def params(self, open_at: datetime | None = None) -> Params:
        return make_params(
            mode=self.mode,
            minutes=self.minutes,
            resolution=self.resolution,
            weight=self.weight,
            open_at=open_at,
        )

    def query(self) -> dict[str, str]:
        """As URL parameters (for download links and the other language)."""
        out = {
            "mode": self.mode,
            "minutes": str(self.minutes),
            "district": self.district or "",
            "weight": self.weight,
            "resolution": str(self.resolution),
            "lang": self.lang,
            "tiles": self.tiles,
        }
        if self.suggest:
            out["suggest"] = str(self.suggest)
        if self.at:
            out["at"] = self.at
        if self.compare:
            out.update(compare="1", day=self.day, night=self.night)
        return out


async def planner_query(
    settings: SettingsDep,
    mode: Annotated[str, Query(max_length=10)] = "walk",
    minutes: Annotated[str, Query(max_length=10)] = "15",
    district: Annotated[str, Query(max_length=20)] = "",
    weight: Annotated[str, Query(max_length=40)] = "road",
    resolution: Annotated[str, Query(max_length=10)] = "9",
    suggest: Annotated[str, Query(max_length=10)] = "0",
    lang: Annotated[str, Query(max_length=5)] = "zh",
    tiles: Annotated[str | None, Query(max_length=10)] = None,
    at: Annotated[str, Query(max_length=40)] = "",
    at_custom: Annotated[str, Query(max_length=40)] = "",
    compare: Annotated[str, Query(max_length=5)] = "",
    day: Annotated[str, Query(max_length=40)] = DAY_NIGHT[0],
    night: Annotated[str, Query(max_length=40)] = DAY_NIGHT[1],
) -> PlannerQuery:
    """Parse leniently: a bad value becomes the default and an error message (never a 422
    page). `at_custom` (the form's date-time input), when filled, is the `at` asked for."""
    lang = "en" if lang == "en" else "zh"
    errors: list[str] = []
    if mode not in PLANNER_MODES:
        errors.append(f"mode: one of {', '.join(PLANNER_MODES)}")
        mode = "walk"
    try:
        target = _digits(minutes)
        if not 1 <= target <= MAX_TARGET_MINUTES:
            raise ValueError
    except ValueError:
        errors.append(f"minutes: whole minutes 1..{MAX_TARGET_MINUTES}")
        target = 15
    code = district.strip() or None
    if code is not None and not _DISTRICT_CODE.match(code):
        errors.append("district: a 6-, 9- or 12-digit code")
        code = None
    if not _LAYER_NAME.match(weight):
        errors.append("weight: road, area or an imported demand layer")
        weight = "road"
    try:
        res = _digits(resolution)
        if res not in PLANNER_RESOLUTIONS:
            raise ValueError
    except ValueError:
        errors.append(f"resolution: one of {', '.join(map(str, PLANNER_RESOLUTIONS))}")
        res = 9
    try:
        k = _digits(suggest)
        if k not in PLANNER_SUGGEST:  # each value is seconds of work: a fixed few
            raise ValueError
    except ValueError:
        errors.append(f"suggest: one of {', '.join(map(str, PLANNER_SUGGEST))}")
        k = 0
    tiles = tiles if tiles in TILES else settings.tiles
    moment = at_custom.strip() or at.strip()
    try:
        moment = moments.check(moment, settings.time_zone) if moment else ""
    except moments.MomentError as exc:
        errors.append(str(exc))
        moment = ""
    pair = []
    for name, raw, default in (("day", day, DAY_NIGHT[0]), ("night", night, DAY_NIGHT[1])):
        try:
            pair.append(moments.check(raw, settings.time_zone))
        except moments.MomentError as exc:
            errors.append(f"{name}: {str(exc).removeprefix('at: ')}")
            pair.append(default)
    return PlannerQuery(
        mode=mode,
        minutes=target,
        district=code,
        weight=weight,
        resolution=res,
        suggest=k,
        lang=lang,
        tiles=str(tiles),
        error="; ".join(errors) or None,
        at=moment,
        compare=compare in ("1", "on", "true"),
        day=pair[0],
        night=pair[1],
    )


PlannerQueryDep = Annotated[PlannerQuery, Depends(planner_query)]


def _digits(raw: str) -> int:
    """Plain decimal digits as an int (ValueError otherwise: no sign, '_', spaces inside)."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(raw)
    return int(raw)


PlannerRun = Callable[["PlannerQuery"], Awaitable[Run | Pending]]


async def planner_run(
    request: Request, engine: CoverageDep, db: DbDep, settings: SettingsDep
) -> PlannerRun:
    """What the planner routes await: the coverage run for the page's parameters (the same
    engine and cache as the API, the same bounds: the wait holds no connection, a full queue
    is CoverageBusyError); a district the run does not know is a NotFoundError."""

    async def get(q: PlannerQuery) -> Run | Pending:
        open_at = None
        if q.at:
            found = await run_in_threadpool(_moments, db, [q.at], settings.time_zone)
            open_at = found[0].at
        result = await engine.obtain(
            db,
            q.params(open_at),
            time_zone=settings.time_zone,
            disconnected=request.is_disconnected,
        )
        if isinstance(result, Run):
            result.district_mask(q.district)  # validates the code
        return result

    return get


PlannerRunDep = Annotated[PlannerRun, Depends(planner_run)]


def _moments(db: Any, raws: list[str], tz: str) -> list[moments.Moment]:
    """The instants `raws` name, by the planners' calendar (InvalidInputError naming `at`)."""
    with db.read() as conn:
        return hours_store.moments_at(conn, raws, tz)


def district_rows(run: Run, lang: str) -> list[dict[str, Any]]:
    """One row per district: the numbers of `run.summary()` the table, CSV and GeoJSON
    show."""
    summary = run.summary()
    return [_table_row(run, r, lang) for r in summary["districts"]]


def _table_row(run: Run, r: dict[str, Any], lang: str) -> dict[str, Any]:
    target = run.params.minutes
    within = {w["minutes"]: w for w in r["within"]}
    name = (r.get("name_en") if lang == "en" else None) or r.get("name") or ""
    ext = r.get("extent") or {}
    return {
        "code": r.get("code"),
        "name": r.get("name"),
        "name_en": r.get("name_en"),
        "label": name,
        "status": ext.get("status"),
        "status_reason": (ext.get("reason") or {}).get("en" if lang == "en" else "zh"),
        "district_area_km2": ext.get("district_area_km2"),
        "network_share": ext.get("network_share"),
        "street_area_km2": r["area_km2"],
        "demand": r["demand"],
        "demand_unit": run.unit["en" if lang == "en" else "zh"],
        **{f"demand_share_within_{b}min": within[b]["demand_share"] for b in run.params.bands},
        f"area_share_within_{target}min": within[target]["area_share"],
        "stations": r["stations"],
        "stations_per_10k_demand": r["stations_per_10k_demand"],
        "overdense_cells": r["overdense_cells"],
        "uncovered_demand": r["uncovered_demand"],
        "median_minutes": r["median_minutes"],
    }


def _csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    """A CSV download by the one safe writer (BOM for Excel/WPS, formula cells neutralised)."""
    return Response(
        csvsafe.write_dicts(rows, columns),
        media_type=csvsafe.MEDIA_TYPE,
        headers=csvsafe.attachment(filename),
    )


def _filename(q: PlannerQuery, kind: str, ext: str) -> str:
    """A download's name says what it holds: mode, target, grid, district and the time the
    stations were counted at (a file of 22:00 must not pass for the day's)."""
    where = f"-{q.district}" if q.district else ""
    if kind == "daynight":
        where += f"-{_slug(q.day)}-vs-{_slug(q.night)}"
    elif q.at:
        where += f"-at-{_slug(q.at)}"
    return f"yizhan-{kind}-{q.mode}-{q.minutes}min-r{q.resolution}{where}.{ext}"


def _slug(raw: str) -> str:
    """ASCII letters, digits and '-' of a time as asked ('weekday-22', '2026-12-02T2200')."""
    return re.sub(r"[^0-9A-Za-z-]", "", raw)[:40]


async def _download(
    request: Request,
    runs: PlannerRun,
    q: PlannerQuery,
    build: Callable[[Request, Run, PlannerQuery], Response],
) -> Response:
    """A download: the run, then `build` on a worker thread (or what to send instead)."""
    run = await _download_run(runs, q)
    if not isinstance(run, Run):
        return run
    return await run_in_threadpool(build, request, run, q)


async def _download_run(runs: PlannerRun, q: PlannerQuery) -> Run | Response:
    """The run for a download, or the response to send instead (bad input, computing,
    busy)."""
    if q.error:
        raise InvalidInputError(q.error, field=q.error.split(":", 1)[0])
    try:
        result = await runs(q)
    except CoverageBusyError as exc:
        return PlainTextResponse(
            exc.detail, status_code=503, headers={"Retry-After": str(exc.retry_after or 5)}
        )
    if isinstance(result, Pending):
        t = texts(q.lang)
        p = result.progress
        return PlainTextResponse(
            t["pl_computing"].format(
                stage=p.get("stage", ""), done=p.get("done", 0), total=p.get("total", 0)
            ),
            status_code=202,
            headers={"Retry-After": "3"},
        )
    return result


def _gap_list(run: Run, q: PlannerQuery) -> dict[str, Any]:
    """The page's gap list: the first pieces (`Run.gap_pieces`) with what one new station in
    each would cover (`Run.gap_sites`, the same ones the map's popups show)."""
    t = texts(q.lang)
    ul = "en" if q.lang == "en" else "zh"
    pieces = run.gap_pieces(q.district)
    shown = pieces[: maps.MAP_GAP_SITES]
    sites = run.gap_sites(shown)
    total = float(run.weights[run.district_mask(q.district)].sum())
    names = {
        code: (run.district_names[i][1] if ul == "en" else None) or run.district_names[i][0]
        for i, code in enumerate(run.district_codes)
    }
    off_m = run.graph.settings.max_off_network_m
    rows = []
    for p, site in zip(shown, sites, strict=True):
        note = coverage_service.gap_note(p.unreachable_cells, p.max_minutes, run.params.mode, off_m)
        rows.append(
            {
                "rank": p.rank,
                "gap": p.gap,
                "district": p.district,
                "label": names.get(p.district, p.district)
                if p.district
                else t["pl_outside_districts"],
                "demand": p.demand,
                "share": p.demand / total if total > 0 else None,
                "area_km2": p.area_km2,
                "max_minutes": run.shown_minutes(p.max_minutes),
                "unreachable": p.unreachable_cells,
                "note": note[ul] if note else None,
                "site": site,
            }
        )
    m = run.params.minutes
    return {
        "rows": rows,
        "title": t["pl_gaps_title"].format(n=len(rows)),
        "intro": t["pl_gaps_intro"].format(
            m=m,
            g=len(run.gaps(q.district)),
            mode=t[q.mode],
            cap=f"{run.piece_cap_km2():.1f}",
            p=len(pieces),
        ),
        "none": t["pl_gaps_none"].format(m=m),
        "unreachable": t["pl_gaps_unreachable"].format(
            u=sum(p.unreachable_cells for p in pieces),
            k=sum(p.unreachable_cells > 0 for p in pieces),
            off=f"{off_m:,.0f}",
            mode=t[q.mode],
        )
        if any(p.unreachable_cells for p in pieces)
        else None,
    }


def _suggestions(run: Run, q: PlannerQuery) -> list[dict[str, Any]] | None:
    if not q.suggest:
        return None
    picks: list[dict[str, Any]] = coverage_service.suggest(run, q.suggest, district=q.district)[
        "picks"
    ]
    return picks


@router.get("/planner", response_class=HTMLResponse, name="planner")
async def planner_page(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep, db: DbDep
) -> HTMLResponse:
    """Planner page: the coverage map of a mode and target, the district table, downloads."""
    t = texts(q.lang)
    other = "zh" if q.lang == "en" else "en"
    try:
        layers = await run_in_threadpool(_demand_layer_choices, db, q.lang)
    except DomainError:  # the run below says what is wrong with the database
        layers = []
    ctx: dict[str, Any] = {
        "demand_layers": layers,
        "t": t,
        "lang": q.lang,
        "q": q,
        "modes": PLANNER_MODES,
        "resolutions": PLANNER_RESOLUTIONS,
        "suggest_options": PLANNER_SUGGEST,
        "other_lang_url": str(request.url.include_query_params(lang=other)),
        "districts": [],
        "error": q.error,
        "pending": None,
        "run": None,
    }
    status = 422 if q.error else 200
    headers: dict[str, str] = {}
    if q.error is None:
        try:
            result = await runs(q)
        except NoNetworkError:
            ctx["error"] = t["pl_no_network"]
            status = 409
        except DomainError as exc:
            ctx["error"] = exc.detail
            status = status_for(exc)
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
        else:
            if isinstance(result, Pending):
                p = result.progress
                ctx["pending"] = t["pl_computing"].format(
                    stage=p.get("stage", ""), done=p.get("done", 0), total=p.get("total", 0)
                )
            else:
                ctx.update(await run_in_threadpool(_planner_context, request, result, q))
                if q.compare:
                    ctx.update(await _daynight_section(request, runs, q))
    ctx.update(_moment_choices(q))
    return await run_in_threadpool(
        lambda: TEMPLATES.TemplateResponse(
            request, "planner.html", ctx, status_code=status, headers=headers or None
        )
    )


# -- coverage at night -----------------------------------------------------------------------


def _moment_choices(q: PlannerQuery) -> dict[str, Any]:
    """The time picker: the presets (with "any time") and the date-time input's value."""
    ul = "en" if q.lang == "en" else "zh"
    t = texts(q.lang)
    presets = [(code, moments.LABELS[code][ul]) for code in moments.PRESETS]
    custom = q.at if q.at and q.at not in moments.PRESETS else ""
    # what a datetime-local input can hold (local, to the minute); anything else (an offset,
    # seconds) stays an option of the drop-down
    local = custom if _LOCAL_MINUTE.fullmatch(custom) else ""
    return {
        "at_choices": [("", t["dn_any_time"]), *presets],
        "at_presets": presets,
        "at_custom": local,
        "at_custom_other": "" if local else custom,
    }


_LOCAL_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


def _at_label(run: Run, raw: str, lang: str) -> str | None:
    """The instant a run counted stations at, for people ("工作日 22:00 · 2026-12-02（周三）…")."""
    at = run.params.open_at
    return None if at is None else moments.Moment(raw, at).label(lang)


async def _daynight_section(request: Request, runs: PlannerRun, q: PlannerQuery) -> dict[str, Any]:
    """The day vs night comparison: two more runs (same engine and cache), or a pending or
    error line of its own (the page above it stands)."""
    t = texts(q.lang)
    pair: list[Run] = []
    try:
        for raw in (q.day, q.night):
            result = await runs(replace(q, at=raw))
            if isinstance(result, Pending):
                p = result.progress
                return {
                    "dn_pending": t["pl_computing"].format(
                        stage=p.get("stage", ""), done=p.get("done", 0), total=p.get("total", 0)
                    )
                }
            pair.append(result)
    except DomainError as exc:
        return {"dn_error": exc.detail}
    return await run_in_threadpool(_daynight_context, request, pair[0], pair[1], q)


def _daynight_context(request: Request, day: Run, night: Run, q: PlannerQuery) -> dict[str, Any]:
    t = texts(q.lang)
    ul = "en" if q.lang == "en" else "zh"
    table = daynight.compare(day, night, q.lang)
    rows = table["districts"]
    overall = {**table["overall"], "label": t["pl_row_all"]}
    focus = next((r for r in rows if r["code"] == q.district), overall)
    lost_share = focus["lost_at_night"] / focus["demand"] if focus["demand"] else None
    csv_url = request.url_for("planner_daynight_csv").include_query_params(**q.query())
    # a preset by its name ("工作日 22:00"), a date-time as the local date and time
    day_name = moments.LABELS.get(q.day, {}).get(ul) or _at_label(day, "", q.lang)
    night_name = moments.LABELS.get(q.night, {}).get(ul) or _at_label(night, "", q.lang)
    return {
        "dn": {
            "rows": rows,
            "overall": overall,
            "title": t["dn_title"].format(day=day_name, night=night_name),
            "day_label": _at_label(day, q.day, q.lang),
            "night_label": _at_label(night, q.night, q.lang),
            "summary": t["dn_summary"].format(
                where=focus["label"],
                day=day_name,
                night=night_name,
                ds=focus["day_stations"],
                ns=focus["night_stations"],
                m=day.params.minutes,
                dshare=_share(focus["day_share"]),
                nshare=_share(focus["night_share"]),
                lost=f"{focus['lost_at_night']:,.0f}",
                u=day.unit[ul],
                lshare=_share(lost_share),
            ),
            "day_gaps": daynight.gap_rows(day, night, q.district, 5, q.lang),
            "night_gaps": daynight.gap_rows(night, day, q.district, 5, q.lang),
            "day_gap_total": len(day.gap_pieces(q.district)),
            "night_gap_total": len(night.gap_pieces(q.district)),
            "csv": str(csv_url),
            "unit": day.unit[ul],
            "target": day.params.minutes,
        }
    }


@router.get("/planner/daynight.csv", name="planner_daynight_csv")
async def planner_daynight_csv(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep
) -> Response:
    """The day vs night comparison as CSV: one row per district (only the chosen one when a
    district is chosen), then the whole city."""
    pair: list[Run] = []
    for raw in (q.day, q.night):
        run = await _download_run(runs, replace(q, at=raw))
        if not isinstance(run, Run):
            return run
        pair.append(run)
    return await run_in_threadpool(_daynight_csv, pair[0], pair[1], q)


def _daynight_csv(day: Run, night: Run, q: PlannerQuery) -> Response:
    t = texts(q.lang)
    table = daynight.compare(day, night, q.lang)
    rows = [r for r in table["districts"] if q.district in (None, r["code"])]
    rows.append({**table["overall"], "code": "", "name": t["pl_row_all"]})
    instants = {
        "day_at": day.params.open_at.isoformat() if day.params.open_at else "",
        "night_at": night.params.open_at.isoformat() if night.params.open_at else "",
    }
    columns = [*daynight.COLUMNS, "day_at", "night_at"]
    return _csv_response(
        [{**r, **instants} for r in rows], columns, _filename(q, "daynight", "csv")
    )


def _demand_layer_choices(db: Any, lang: str) -> list[tuple[str, str]]:
    """The "demand by" drop-down's imported layers: (name, "name: description (unit)")."""
    t = texts(lang)
    with db.read() as conn:
        layers = demand_queries.list_layers(conn)
    return [
        (
            layer.name,
            t["pl_demand_layer" if layer.description else "pl_demand_layer_bare"].format(
                name=layer.name, description=layer.description, unit=layer.unit
            ),
        )
        for layer in layers
    ]


def _planner_context(request: Request, run: Run, q: PlannerQuery) -> dict[str, Any]:
    t = texts(q.lang)
    ul = "en" if q.lang == "en" else "zh"
    summary = run.summary(q.district)
    focus = summary["district"] if q.district else summary["overall"]
    within = {w["minutes"]: w for w in focus["within"]}
    rows = district_rows(run, q.lang)
    overall = _table_row(run, summary["overall"], q.lang)
    overall["label"] = t["pl_row_all"]
    ready = maps.assets_ready()
    parts = None
    if ready:
        m = maps.planner_map(
            run,
            district=q.district,
            tiles=q.tiles,
            lang=q.lang,
            suggestions=_suggestions(run, q),
            leaflet_base="/static/leaflet",
        )
        parts = maps.map_parts(m, nonce=csp_nonce(request))
    query = q.query()

    def link(name: str) -> str:
        return str(request.url_for(name).include_query_params(**query))

    names = {
        code: (run.district_names[i][1] if ul == "en" else None) or run.district_names[i][0]
        for i, code in enumerate(run.district_codes)
    }
    return {
        "run": run,
        "districts": list(names.items()),
        "map_ready": ready,
        "map": parts,
        "rows": rows,
        "overall": overall,
        "bands": run.params.bands,
        "target": run.params.minutes,
        "unit": run.unit[ul],
        "outside": summary["outside_districts"],
        "extent_note": _extent_note(run, summary, q.lang),
        "gap_list": _gap_list(run, q),
        "headline": t["pl_headline"].format(
            mode=t[q.mode],
            m=run.params.minutes,
            share=_share(within[run.params.minutes]["demand_share"]),
            stations=focus["stations"],
            # over demand, like the share (derive.demand_median), rounded up like the bands
            median=_minutes_up(focus["demand_median_minutes"]),
        ),
        "at_line": (
            t["dn_at_line"].format(
                when=_at_label(run, q.at, q.lang),
                n=sum(e["reason"] in _NOT_OPEN for e in run.excluded),
            )
            if q.at
            else None
        ),
        "intro": t["pl_intro"].format(weight=t.get(f"pl_weight_{q.weight}", q.weight)),
        # one-way rules exist in the model but act only where the network has one-way edges
        "no_oneway": not np.any(run.graph.network.oneway),
        "notes": t["pl_notes"].format(
            n=derive.DEFAULT_DENSE_N,
            dm=f"{run.params.dense_minutes:g}",
            p=f"{derive.DEFAULT_REDUNDANT_PCT:g}",
            r=f"{derive.DEFAULT_REDUNDANT_REL:.0%}",
            m=run.params.minutes,
            pm=f"{derive.DEFAULT_PAIR_MINUTES:g}",
        ),
        "downloads": [
            (t["pl_dl_districts_csv"], link("planner_districts_csv")),
            (t["pl_dl_districts_geojson"], link("planner_districts_geojson")),
            (t["pl_dl_cells_csv"], link("planner_cells_csv")),
            (t["pl_dl_cells_geojson"], link("planner_cells_geojson")),
            (t["pl_dl_gaps_csv"], link("planner_gaps_csv")),
            (t["pl_dl_gaps_geojson"], link("planner_gaps_geojson")),
            (t["pl_dl_map"], link("planner_map_html")),
        ],
    }


def _extent_note(run: Run, summary: dict[str, Any], lang: str) -> str:
    """What the district areas, the street-cell areas and the network share are."""
    outline = summary["network_outline"]
    whole = summary["overall"].get("extent") or {}
    share = whole.get("network_share")
    bbox = outline["bbox"]
    return texts(lang)["pl_extent_note"].format(
        box=extent.box_text(None if bbox is None else tuple(bbox), lang),
        area=f"{outline['area_km2']:,.{1 if outline['area_km2'] < 100 else 0}f}",
        share="–" if share is None else extent.pct_text(share),
        partial=f"{extent.PARTIAL_BELOW:.0%}",
    )


def _minutes_up(x: float | None) -> str:
    """Minutes as the page shows them: the one rule of app/coverage/bands.py."""
    rounded = bands.shown_minutes(x)
    return "–" if rounded is None else f"{rounded:.1f}"


#: Why a station does not serve at the chosen time (`Run.excluded` also lists off-network ones).
_NOT_OPEN = ("closed_at_open_at", "temporarily_closed")


def _share(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


@router.get("/planner/districts.csv", name="planner_districts_csv")
async def planner_districts_csv(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep
) -> Response:
    """The district table as CSV (UTF-8 with BOM), one row per district."""
    return await _download(request, runs, q, _districts_csv)


def _districts_csv(request: Request, run: Run, q: PlannerQuery) -> Response:
    """The same file as `yizhan coverage run --csv` (one writer, one header), or only the
    district's row when one is chosen."""
    return Response(
        csvsafe.coverage_summary(run.summary(), district=q.district),
        media_type=csvsafe.MEDIA_TYPE,
        headers=csvsafe.attachment(_filename(q, "districts", "csv")),
    )


@router.get("/planner/districts.geojson", name="planner_districts_geojson")
async def planner_districts_geojson(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep
) -> Response:
    """The district table as GeoJSON: each district's outline (WGS-84) with its numbers."""
    return await _download(request, runs, q, _districts_geojson)


def _districts_geojson(request: Request, run: Run, q: PlannerQuery) -> Response:
    feats = []
    for i, row in enumerate(district_rows(run, q.lang)):
        if q.district and row["code"] != q.district:
            continue
        props = {k: v for k, v in row.items() if k != "label"}
        feats.append(
            {
                "type": "Feature",
                "id": row["code"],
                "geometry": coords.geometry_geojson(run.district_geoms[i]),
                "properties": props,
            }
        )
    body = {"type": "FeatureCollection", "features": feats, **run.meta(), "coord_sys": "wgs84"}
    return GeoJSONResponse(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(q, "districts", "geojson")}"'
        },
    )


_CELL_COLUMNS = [
    "h3",
    "lon",
    "lat",
    "district",
    "minutes",
    "band",
    "weight",
    "area_km2",
    "multiplicity",
    "dense_count",
    "nearest_station",
]


@router.get("/planner/cells.csv", name="planner_cells_csv")
async def planner_cells_csv(request: Request, runs: PlannerRunDep, q: PlannerQueryDep) -> Response:
    """The cells (of the district, or all) as CSV: centre WGS-84, minutes, band, demand."""
    return await _download(request, runs, q, _cells_csv)


def _cells_csv(request: Request, run: Run, q: PlannerQuery) -> Response:
    idx = np.flatnonzero(run.district_mask(q.district))  # the order of cell_features
    feats = run.cell_features(q.district, "wgs84")
    rows = [
        {
            **f["properties"],
            "lon": round(float(run.grid.lon[i]), 7),
            "lat": round(float(run.grid.lat[i]), 7),
        }
        for i, f in zip(idx.tolist(), feats, strict=True)
    ]
    return _csv_response(rows, _CELL_COLUMNS, _filename(q, "cells", "csv"))


@router.get("/planner/cells.geojson", name="planner_cells_geojson")
async def planner_cells_geojson(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep
) -> Response:
    """The cells (of the district, or all) as GeoJSON hexagons (WGS-84)."""
    return await _download(request, runs, q, _cells_geojson)


def _cells_geojson(request: Request, run: Run, q: PlannerQuery) -> Response:
    body = {
        "type": "FeatureCollection",
        "features": run.cell_features(q.district, "wgs84"),
        **run.meta(),
        "coord_sys": "wgs84",
    }
    return GeoJSONResponse(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(q, "cells", "geojson")}"'
        },
    )


_GAP_COLUMNS = [
    "rank",
    "gap",
    "district",
    "district_name",
    "district_name_en",
    "uncovered_demand",
    "demand_share",
    "area_km2",
    "cells",
    "max_minutes",
    "mean_minutes",
    "unreachable_cells",
    "note",
    "site_name",
    "site_lon",
    "site_lat",
    "site_h3",
    "site_gain",
    "site_gain_in_piece",
    "site_share_of_piece",
    "site_share_of_all_demand",
]


def _gap_features(run: Run, q: PlannerQuery) -> list[dict[str, Any]]:
    """Every gap piece of the page (city or district), with the best sites the page shows."""
    return coverage_service.gap_features(
        run, district=q.district, limit=run.grid.n_cells, best_sites=maps.MAP_GAP_SITES
    )


@router.get("/planner/gaps.csv", name="planner_gaps_csv")
async def planner_gaps_csv(request: Request, runs: PlannerRunDep, q: PlannerQueryDep) -> Response:
    """The gap pieces as CSV: one row each, the best single site (WGS-84) of the first ones."""
    return await _download(request, runs, q, _gaps_csv)


def _gaps_csv(request: Request, run: Run, q: PlannerQuery) -> Response:
    ul = "en" if q.lang == "en" else "zh"
    rows = []
    for f in _gap_features(run, q):
        p = dict(f["properties"])
        site = p.pop("best_site") or {}
        note = p.pop("note")
        row = {**p, "note": note[ul] if note else None}
        if site:
            lon, lat = site["point"]["coordinates"]
            row.update(
                site_name=site["name_en" if ul == "en" else "name"],
                site_lon=lon,
                site_lat=lat,
                site_h3=site["h3"],
                site_gain=site["gain"],
                site_gain_in_piece=site["gain_in_piece"],
                site_share_of_piece=site["share_of_piece"],
                site_share_of_all_demand=site["share_of_all_demand"],
            )
        rows.append(row)
    return _csv_response(rows, _GAP_COLUMNS, _filename(q, "gaps", "csv"))


@router.get("/planner/gaps.geojson", name="planner_gaps_geojson")
async def planner_gaps_geojson(
    request: Request, runs: PlannerRunDep, q: PlannerQueryDep
) -> Response:
    """The gap pieces as GeoJSON (WGS-84), as `/api/v1/coverage/gaps` gives them."""
    return await _download(request, runs, q, _gaps_geojson)


def _gaps_geojson(request: Request, run: Run, q: PlannerQuery) -> Response:
    body = {
        "type": "FeatureCollection",
        "features": _gap_features(run, q),
        **run.meta(),
        "level": "piece",
        "piece_cap_km2": round(run.piece_cap_km2(), 3),
        "coord_sys": "wgs84",
    }
    return GeoJSONResponse(
        body,
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(q, "gaps", "geojson")}"'
        },
    )


@router.get("/planner/map.html", name="planner_map_html")
async def planner_map_html(request: Request, runs: PlannerRunDep, q: PlannerQueryDep) -> Response:
    """The coverage map as one standalone HTML file (Leaflet and markercluster inlined)."""
    return await _download(request, runs, q, _map_html)


def _map_html(request: Request, run: Run, q: PlannerQuery) -> Response:
    t = texts(q.lang)
    if not maps.assets_ready():
        return PlainTextResponse(t["no_leaflet"], status_code=503)
    doc = maps.standalone_html(
        run,
        district=q.district,
        tiles=q.tiles,
        lang=q.lang,
        suggestions=_suggestions(run, q),
        nonce=csp_nonce(request),
    )
    return HTMLResponse(
        doc,
        headers={"Content-Disposition": f'attachment; filename="{_filename(q, "map", "html")}"'},
    )
