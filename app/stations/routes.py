"""Station HTTP routes: parse, call the service, shape the response. No SQL here."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection, RowMapping
from starlette.concurrency import run_in_threadpool

from app.accounts.policy import station_scope
from app.api.deps import CheckinLimiterDep, ConnDep, DbDep, NetworkDep, SettingsDep
from app.api.openapi import (
    GEOJSON,
    JSON_BODY,
    WRITE,
    AmenityList,
    CheckinResult,
    History,
    ImportPreview,
    Proposal,
    ProposalList,
    StaleList,
    Station,
    StationCollection,
    StationExport,
    Vocabulary,
    body,
    empty,
    errors,
)
from app.api.params import (
    CoordSysQ,
    DistrictQ,
    LatQ,
    LonQ,
    OpenAtQ,
    StationId,
    StrictDecimal,
    StrictInteger,
)
from app.api.responses import GeoJSONResponse, JSONBytesResponse, dumps
from app.api.security import ActorDep, BriefActorDep
from app.errors import InvalidInputError, PreconditionRequiredError
from app.exchange import csvsafe
from app.geo import coords
from app.geo.coords import CoordSys
from app.hours import store as hours_store
from app.network import service as network_service
from app.network.service import NetworkState
from app.network.travel import Mode
from app.reports.service import client_key
from app.reports.vocab import KINDS as REPORT_KINDS_TERMS
from app.stations import exchange_service, queries, service
from app.stations.schemas import (
    AmenityChange,
    NoNulText,
    PointGeometry,
    StationFeatureIn,
    StationFeaturePatch,
    parse_bbox,
    parse_csv_codes,
)
from app.stations.vocab import (
    ACCESS,
    ACCESS_CODES,
    AMENITIES,
    AMENITY_CODES,
    DEFAULT_VISIBLE_STATUSES,
    HOST_TYPES,
    STATUS_CODES,
    STATUSES,
    Term,
)

MAX_K = 50
MAX_PAGE = 500
MAX_RADIUS_M = 200_000.0
MAX_Q = 50

router = APIRouter(prefix="/api/v1", tags=["stations"])

#: A station response's version header (documented for GET, PATCH and the amenity change).
_ETAG: dict[str, Any] = {
    "headers": {"ETag": "The station's version"},
    "required_headers": ("ETag",),
}


def _etag(version: int) -> str:
    return f'"{version}"'


#: `If-Match: *`: "whatever the current version is" (RFC 9110 §13.1.1) — the explicit,
#: deliberate last-write-wins override.
ANY_VERSION = "*"


def _parse_if_match(value: str | None, *, required: bool) -> int | None:
    """The version an `If-Match` header names; None for `*`. Without the header: 428 when
    `required`, else None (no precondition)."""
    if value is None or not value.strip():
        if required:
            raise PreconditionRequiredError(
                'If-Match: required — send the ETag you read, e.g. If-Match: "3" (or '
                "If-Match: * to overwrite whatever is there); to add or remove amenities "
                "without reading first, POST /api/v1/stations/{id}/amenities "
                "(修改站点需要 If-Match 版本号)",
                field="If-Match",
            )
        return None
    raw = value.strip()
    if raw == ANY_VERSION:
        return None
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInputError(
            'If-Match: expected the station version as an ETag, e.g. "3", or *', field="If-Match"
        )
    return int(raw)


def _codes(raw: str | None, vocabulary: tuple[str, ...], field: str) -> list[str]:
    try:
        return parse_csv_codes(raw, vocabulary, field)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field=field) from exc


def _terms(terms: tuple[Term, ...]) -> list[dict[str, str]]:
    return [{"code": t.code, "zh": t.zh, "en": t.en} for t in terms]


@router.get(
    "/amenities",
    summary="Amenity vocabulary (zh-CN and English labels)",
    responses=body(AmenityList),
)
def list_amenities() -> JSONBytesResponse:
    return JSONBytesResponse({"amenities": _terms(AMENITIES)})


@router.get(
    "/vocabulary",
    summary="All fixed vocabularies of a station",
    responses=body(Vocabulary),
)
def vocabulary() -> JSONBytesResponse:
    return JSONBytesResponse(
        {
            "amenities": _terms(AMENITIES),
            "host_types": _terms(HOST_TYPES),
            "access": _terms(ACCESS),
            "statuses": _terms(STATUSES),
            "report_kinds": _terms(REPORT_KINDS_TERMS),
        }
    )


OpenNowQ = Annotated[bool, Query(description="Only stations open right now")]
AmenitiesQ = Annotated[
    str | None, Query(max_length=1000, description="comma list; all must be present")
]
AccessQ = Annotated[
    str | None, Query(max_length=200, description="comma list: outdoor_workers,drivers_only,public")
]
StatusQ = Annotated[
    str | None,
    Query(
        max_length=200,
        description="comma list: planned,open,temporarily_closed,closed,duplicate",
    ),
]
SearchQ = Annotated[
    str | None,
    Query(description="substring of the name or address, Chinese or Latin (1-50 characters)"),
]
LevelMinQ = Annotated[
    int | None,
    StrictInteger,
    Query(ge=1, le=5, description="Only stations rated at least this many stars (1-5)"),
]


def _filter_args(
    amenities: str | None,
    access: str | None,
    status: str | None,
    q: str | None,
    district: str | None,
    default_status: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "amenities": tuple(_codes(amenities, AMENITY_CODES, "amenities")),
        "access": tuple(_codes(access, ACCESS_CODES, "access")),
        "statuses": tuple(_codes(status, STATUS_CODES, "status")) or default_status,
        "q": _search_text(q),
        "district_code": district,
    }


def _search_text(q: str | None) -> str | None:
    if q is None:
        return None
    q = " ".join(q.split())
    if not q:
        raise InvalidInputError("q: must not be empty", field="q")
    if len(q) > MAX_Q:
        raise InvalidInputError(f"q: at most {MAX_Q} characters", field="q")
    return q


@router.get(
    "/stations/nearest",
    summary="The k nearest stations by geodesic distance",
    response_class=GeoJSONResponse,
    responses=body(StationCollection, media=GEOJSON) | errors(409, 422, 503),
)
async def nearest(
    settings: SettingsDep,
    db: DbDep,
    network: NetworkDep,
    lat: LatQ,
    lon: LonQ,
    k: Annotated[int, StrictInteger, Query(ge=1, le=MAX_K)] = 5,
    radius_m: Annotated[
        float | None,
        StrictDecimal,
        Query(gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="metres"),
    ] = None,
    amenities: AmenitiesQ = None,
    access: AccessQ = None,
    status: StatusQ = None,
    q: SearchQ = None,
    district: DistrictQ = None,
    level_min: LevelMinQ = None,
    open_now: OpenNowQ = False,
    open_at: OpenAtQ = None,
    coord_sys: CoordSysQ = "wgs84",
    mode: Annotated[
        Mode | None,
        Query(description="walk, ebike or car: order by minutes on the road network"),
    ] = None,
) -> Response:
    # The hot path: parameters are checked here, then the query, the hours evaluation and the
    # serialisation run as one unit of work in one worker-thread hop (a connection dependency
    # costs two more hops, measured at ~2 ms per request on 2 cores).
    wlon, wlat = _to_wgs84(lon, lat, coord_sys)
    filters = _filter_args(amenities, access, status, q, district, DEFAULT_VISIBLE_STATUSES)

    def work() -> bytes:
        with db.read() as conn:
            when = hours_store.requested_instant(conn, open_now, open_at)
            flt = queries.NearestFilter(
                lon=wlon,
                lat=wlat,
                k=k,
                radius_m=radius_m,
                open_at=when if (open_now or open_at) else None,
                level_min=level_min,
                **filters,
            )
            minutes: dict[int, float] = {}
            if mode is None:
                rows = queries.nearest(conn, flt)
            else:
                rows, minutes = _nearest_by_time(conn, network, flt, mode)
            ctx = service.FeatureContext.build(settings, conn, when, coord_sys)
        features = []
        for r in rows:
            extra: dict[str, Any] = {"distance_m": round(float(r["distance_m"]), 1)}
            if mode is not None:
                extra["minutes"] = round(minutes[int(r["id"])], 1)
                extra["mode"] = mode.value
            features.append(service.to_feature(r, ctx, extra))
        return dumps(
            service.feature_collection(
                features, numberReturned=len(features), **ctx.collection_members()
            )
        )

    return Response(await run_in_threadpool(work), media_type=GeoJSONResponse.media_type)


@router.get(
    "/stations",
    summary="Stations: search, filter, paged",
    response_class=GeoJSONResponse,
    responses=body(StationCollection, media=GEOJSON) | errors(422, 503),
)
def list_stations(
    request: Request,
    settings: SettingsDep,
    conn: ConnDep,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat")
    ] = None,
    q: SearchQ = None,
    district: DistrictQ = None,
    amenities: AmenitiesQ = None,
    access: AccessQ = None,
    status: StatusQ = None,
    level_min: LevelMinQ = None,
    open_now: OpenNowQ = False,
    open_at: OpenAtQ = None,
    coord_sys: CoordSysQ = "wgs84",
    limit: Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, StrictInteger, Query(ge=0, le=10_000_000)] = 0,
) -> GeoJSONResponse:
    box = None
    if bbox is not None:
        try:
            box = parse_bbox(bbox)
        except ValueError as exc:
            raise InvalidInputError(f"bbox: {exc}", field="bbox") from exc
        box = _bbox_to_wgs84(box, coord_sys)
    when = hours_store.requested_instant(conn, open_now, open_at)
    flt = queries.StationFilter(
        bbox=box,
        open_at=when if (open_now or open_at) else None,
        level_min=level_min,
        **_filter_args(amenities, access, status, q, district, ()),
    )
    rows, total = queries.page(conn, flt, limit, offset)
    links = []
    if offset + len(rows) < total:
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": str(request.url.include_query_params(offset=offset + limit)),
            }
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "type": "application/geo+json",
                "href": str(request.url.include_query_params(offset=max(0, offset - limit))),
            }
        )
    ctx = service.FeatureContext.build(settings, conn, when, coord_sys)
    return GeoJSONResponse(
        service.feature_collection(
            [service.to_feature(r, ctx) for r in rows],
            numberMatched=total,
            numberReturned=len(rows),
            links=links,
            **ctx.collection_members(),
        )
    )


MAX_TIME_CANDIDATES = 800


def _nearest_by_time(
    conn: Connection, network: NetworkState, flt: queries.NearestFilter, mode: Mode
) -> tuple[list[RowMapping], dict[int, float]]:
    """The k stations fewest minutes away on the network. Candidates come in straight-line
    order, in growing batches, until the k-th best time is no more than the straight-line
    lower bound (distance at the mode's top speed) of every station not yet fetched: so a
    station near in metres but far by road never pushes out one that is closer by road."""
    fetch = min(max(4 * flt.k, 20), MAX_TIME_CANDIDATES)
    while True:
        rows = queries.nearest(conn, replace(flt, k=fetch))
        minutes = network_service.network_minutes(
            conn,
            network,
            mode,
            flt.lon,
            flt.lat,
            [(int(r["id"]), r["lon"], r["lat"], float(r["distance_m"])) for r in rows],
        )
        ranked = sorted(
            (r for r in rows if math.isfinite(minutes.get(int(r["id"]), math.inf))),
            key=lambda r: (minutes[int(r["id"])], float(r["distance_m"]), int(r["id"])),
        )
        exhausted = len(rows) < fetch or fetch >= MAX_TIME_CANDIDATES
        if exhausted:
            return ranked[: flt.k], minutes
        bound = network_service.lower_bound_minutes(
            float(rows[-1]["distance_m"]), mode, network.settings
        )
        if len(ranked) >= flt.k and minutes[int(ranked[flt.k - 1]["id"])] <= bound:
            return ranked[: flt.k], minutes
        fetch = min(fetch * 4, MAX_TIME_CANDIDATES)


def _to_wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    try:
        return coords.to_wgs84(lon, lat, coord_sys)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="lat/lon") from exc


def _bbox_to_wgs84(
    box: tuple[float, float, float, float], coord_sys: CoordSys
) -> tuple[float, float, float, float]:
    """Convert a bbox corner by corner (GCJ/BD offsets vary by metres per km: a city-scale box
    moves as a whole and stays a box to well under 10 m)."""
    if coord_sys == "wgs84":
        return box
    minlon, minlat = _to_wgs84(box[0], box[1], coord_sys)
    maxlon, maxlat = _to_wgs84(box[2], box[3], coord_sys)
    return minlon, minlat, maxlon, maxlat


@router.post(
    "/stations",
    status_code=201,
    summary="Create a station from a GeoJSON Feature (admins; district admins in scope)",
    response_class=GeoJSONResponse,
    responses=body(
        Station,
        status=201,
        media=GEOJSON,
        description="Created",
        headers={"Location": "The new station's URL", "ETag": "Its version"},
        required_headers=("Location", "ETag"),
    )
    | errors(*WRITE, *JSON_BODY),
)
def create_station(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    feature: StationFeatureIn,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    row = service.create_station(conn, feature, ctx, actor)
    return GeoJSONResponse(
        service.to_feature(row, ctx),
        status_code=201,
        headers={"Location": f"/api/v1/stations/{row['id']}", "ETag": _etag(row["version"])},
    )


@router.get(
    "/stations/{station_id:int}",
    summary="One station",
    response_class=GeoJSONResponse,
    responses=body(Station, media=GEOJSON, **_ETAG) | errors(404, 422, 503),
)
def get_station(
    settings: SettingsDep,
    conn: ConnDep,
    station_id: StationId,
    open_at: OpenAtQ = None,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    when = hours_store.requested_instant(conn, False, open_at, filtering=False)
    ctx = service.FeatureContext.build(settings, conn, when, coord_sys)
    row = service.get_station(conn, station_id)
    return GeoJSONResponse(service.to_feature(row, ctx), headers={"ETag": _etag(row["version"])})


@router.patch(
    "/stations/{station_id:int}",
    summary="Change some properties and/or the position (If-Match: the version you read, or *)",
    description=(
        "Admins: any field. District admins: stations in their districts, moved only within "
        "them. Managers: their stations' amenities, opening_hours, status (with closed_until "
        "and status_reason), phone, capacity and notes; any other field (level, duplicate_of, "
        "or the geometry: propose it instead) is 403 naming it. closed_until only with status "
        "temporarily_closed, duplicate_of (required) only with duplicate; another status clears "
        "them and the old status_reason. An edit by an account also confirms the station."
    ),
    response_class=GeoJSONResponse,
    responses=body(Station, media=GEOJSON, **_ETAG) | errors(*WRITE, *JSON_BODY, 404, 412, 428),
)
def patch_station(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    patch: StationFeaturePatch,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    expected = _parse_if_match(if_match, required=True)
    row = service.patch_station(conn, station_id, patch, expected, ctx, actor)
    return GeoJSONResponse(service.to_feature(row, ctx), headers={"ETag": _etag(row["version"])})


@router.post(
    "/stations/{station_id:int}/amenities",
    summary="Add and/or remove amenities atomically (no If-Match needed)",
    response_class=GeoJSONResponse,
    responses=body(Station, media=GEOJSON, **_ETAG) | errors(*WRITE, *JSON_BODY, 404, 412),
)
def change_amenities(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    change: AmenityChange,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    expected = _parse_if_match(if_match, required=False)
    row = service.change_amenities(conn, station_id, change, expected, actor)
    return GeoJSONResponse(service.to_feature(row, ctx), headers={"ETag": _etag(row["version"])})


@router.delete(
    "/stations/{station_id:int}",
    status_code=204,
    summary="Delete a station (admins; district admins in scope); its history stays",
    responses=empty(204, "Deleted") | errors(*WRITE, 404, 412),
)
def delete_station(
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> Response:
    service.delete_station(conn, station_id, actor, _parse_if_match(if_match, required=False))
    return Response(status_code=204)


# --- the stations you keep, their history, reverts and location proposals ---------------------


@router.get(
    "/me/stations",
    summary="The stations you may edit (managers: yours; district admins: in your districts)",
    response_class=GeoJSONResponse,
    responses=body(StationCollection, media=GEOJSON) | errors(401, 422, 503),
)
def my_stations(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    q: SearchQ = None,
    status: StatusQ = None,
    coord_sys: CoordSysQ = "wgs84",
    limit: Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, StrictInteger, Query(ge=0, le=10_000_000)] = 0,
) -> GeoJSONResponse:
    flt = queries.StationFilter(
        scope=station_scope(actor),
        **_filter_args(None, None, status, q, None, STATUS_CODES),
    )
    rows, total = queries.page(conn, flt, limit, offset)
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    return GeoJSONResponse(
        service.feature_collection(
            [service.to_feature(r, ctx) for r in rows],
            numberMatched=total,
            numberReturned=len(rows),
            **ctx.collection_members(),
        )
    )


@router.get(
    "/stations/{station_id:int}/history",
    summary="A station's changes, newest first: who, when, through what, each field's "
    "before and after",
    responses=body(History) | errors(401, 403, 404, 422, 503),
)
def station_history(
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    limit: Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[
        int | None, StrictInteger, Query(ge=1, le=2**62, description="Older than this revision")
    ] = None,
) -> JSONBytesResponse:
    return JSONBytesResponse(service.history(conn, actor, station_id, limit, before))


@router.post(
    "/stations/{station_id:int}/revert",
    summary="Restore the station as it was right after revision `to` (a deleted one comes back)",
    response_class=GeoJSONResponse,
    responses=body(Station, media=GEOJSON, **_ETAG) | errors(*WRITE, 404, 412),
)
def revert_station(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    to: Annotated[int, StrictInteger, Query(ge=1, le=2**62, description="A revision id")],
    if_match: Annotated[str | None, Header(max_length=100)] = None,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    expected = _parse_if_match(if_match, required=False)
    row = service.revert_station(conn, actor, station_id, to, expected, ctx)
    return GeoJSONResponse(service.to_feature(row, ctx), headers={"ETag": _etag(row["version"])})


class ProposalIn(BaseModel):
    """A proposed position (in `coord_sys`) and why."""

    model_config = ConfigDict(extra="forbid")

    geometry: PointGeometry
    note: Annotated[str, Field(max_length=500), NoNulText] | None = None


class DecisionIn(BaseModel):
    """Accept or reject a proposal, optionally saying why."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500), NoNulText] | None = None


@router.post(
    "/stations/{station_id:int}/proposals",
    status_code=201,
    summary="Propose a new position for your station (a district admin accepts or rejects it)",
    responses=body(Proposal, status=201, description="Proposed") | errors(*WRITE, *JSON_BODY, 404),
)
def propose_location(
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    proposal: ProposalIn,
    coord_sys: CoordSysQ = "wgs84",
) -> JSONBytesResponse:
    row = service.propose_location(
        conn,
        actor,
        station_id,
        proposal.geometry.lon,
        proposal.geometry.lat,
        proposal.note,
        coord_sys,
    )
    return JSONBytesResponse(service.proposal_json(row, coord_sys), status_code=201)


@router.get(
    "/proposals",
    summary="Location proposals for the stations in your scope, newest first",
    responses=body(ProposalList) | errors(401, 422, 503),
)
def list_proposals(
    conn: ConnDep,
    actor: ActorDep,
    status: Annotated[
        Literal["pending", "accepted", "rejected"] | None, Query(description="Only these")
    ] = "pending",
    station_id: Annotated[int | None, StrictInteger, Query(ge=1, le=2**62)] = None,
    coord_sys: CoordSysQ = "wgs84",
    limit: Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONBytesResponse:
    rows = service.list_proposals(conn, actor, status, station_id, limit)
    return JSONBytesResponse({"proposals": [service.proposal_json(r, coord_sys) for r in rows]})


ProposalId = Annotated[int, Path(ge=1, le=2**62, description="The proposal's id")]


@router.post(
    "/proposals/{proposal_id}/accept",
    summary="Accept a proposal: the station moves there (district admins in scope, admins)",
    responses=body(Proposal) | errors(*WRITE, *JSON_BODY, 404),
)
def accept_proposal(
    conn: ConnDep,
    actor: ActorDep,
    proposal_id: ProposalId,
    decision: DecisionIn | None = None,
    coord_sys: CoordSysQ = "wgs84",
) -> JSONBytesResponse:
    note = decision.note if decision else None
    row = service.decide_proposal(conn, actor, proposal_id, True, note)
    return JSONBytesResponse(service.proposal_json(row, coord_sys))


@router.post(
    "/proposals/{proposal_id}/reject",
    summary="Reject a proposal (district admins in scope, admins)",
    responses=body(Proposal) | errors(*WRITE, *JSON_BODY, 404),
)
def reject_proposal(
    conn: ConnDep,
    actor: ActorDep,
    proposal_id: ProposalId,
    decision: DecisionIn | None = None,
    coord_sys: CoordSysQ = "wgs84",
) -> JSONBytesResponse:
    note = decision.note if decision else None
    row = service.decide_proposal(conn, actor, proposal_id, False, note)
    return JSONBytesResponse(service.proposal_json(row, coord_sys))


# --- freshness: confirmations, check-ins, the staleness list ---------------------------------


@router.post(
    "/stations/{station_id:int}/confirm",
    summary="Confirm the station's information is still correct (its managers, district "
    "admins in scope, admins)",
    description=(
        "Sets `freshness.confirmed_at` to now without changing the version (an editor's ETag "
        "stays valid); recorded as the audit event `station.confirm`. Any edit by an account "
        "confirms too."
    ),
    response_class=GeoJSONResponse,
    responses=body(Station, media=GEOJSON, **_ETAG) | errors(*WRITE, 404),
)
def confirm_station(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    coord_sys: CoordSysQ = "wgs84",
) -> GeoJSONResponse:
    row = service.confirm_station(conn, actor, station_id)
    ctx = service.FeatureContext.build(settings, conn, None, coord_sys)
    return GeoJSONResponse(service.to_feature(row, ctx), headers={"ETag": _etag(row["version"])})


class CheckinIn(BaseModel):
    """What a courier found: the station open or closed when they got there."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["open", "closed"]


@router.post(
    "/stations/{station_id:int}/checkins",
    status_code=201,
    summary="Say whether the station was open when you got there (public; rate-limited per "
    "client address)",
    responses=body(CheckinResult, status=201, description="Stored")
    | errors(400, 404, 409, 413, 422, 429, 503),
    tags=["reports"],
)
def check_in(
    request: Request,
    settings: SettingsDep,
    limiter: CheckinLimiterDep,
    conn: ConnDep,
    station_id: StationId,
    checkin: CheckinIn,
) -> JSONBytesResponse:
    address = request.client.host if request.client else "unknown"
    key = client_key(address, settings.report_salt.get_secret_value())
    result = service.check_in(conn, station_id, checkin.outcome, key, limiter)
    return JSONBytesResponse(result, status_code=201)


def _stale_responses() -> dict[int | str, dict[str, Any]]:
    """200 as JSON (StaleList) or, with `format=csv`, the call list as CSV."""
    ok = body(
        StaleList,
        description="The list (JSON), or with `format=csv` the call list: "
        "UTF-8 with BOM, Chinese headers, formula-safe",
    )
    ok[200]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return ok


@router.get(
    "/stations/stale",
    summary="Stations not confirmed for `days` days, with unanswered and overdue reports "
    "(district admins: their districts; admins); `format=csv` for a call list",
    responses=_stale_responses() | errors(401, 403, 422, 503),
)
def stale_stations(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    days: Annotated[
        int | None,
        StrictInteger,
        Query(
            ge=0,
            le=3650,
            description="Not confirmed for this many days (default: YIZHAN_STALE_DAYS)",
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
    limit: Annotated[int, StrictInteger, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    result = service.stale_stations(
        conn,
        actor,
        settings.stale_days if days is None else days,
        settings.report_escalate_days,
        limit,
    )
    if format == "json":
        return JSONBytesResponse(result)
    return Response(
        csvsafe.write_rows(
            ([item[k] for k, _ in service.STALE_COLUMNS] for item in result["stations"]),
            header=[zh for _, zh in service.STALE_COLUMNS],
        ),
        media_type=csvsafe.MEDIA_TYPE,
        headers=csvsafe.attachment("stale-stations.csv"),
    )


# --- spreadsheets: the template, import (dry run, apply), exports --------------------------------

#: Uploads: the body-size middleware allows this (method, path) `YIZHAN_MAX_UPLOAD_BYTES`
#: (20 MiB) instead of the 64 KiB of every other request (app/main.py).
IMPORT_METHOD = "POST"
IMPORT_PATH = "/api/v1/stations/import"

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_BINARY = {"type": "string", "format": "binary"}


def _download(media: str, what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": what,
            "content": {media: {"schema": _BINARY if media == _XLSX else {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": "attachment; filename=…",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        }
    }


@router.get(
    "/stations/template.xlsx",
    summary="The import template: XLSX with Chinese headers, drop-downs and a sheet "
    "explaining each column (zh/en)",
    response_class=Response,
    responses=_download(_XLSX, "The template workbook") | errors(503),
)
def import_template_xlsx() -> Response:
    return Response(
        exchange_service.template_xlsx(),
        media_type=_XLSX,
        headers=csvsafe.attachment("yizhan-stations-template.xlsx"),
    )


@router.get(
    "/stations/template.csv",
    summary="The import template as CSV (the header line; UTF-8 with BOM)",
    response_class=Response,
    responses=_download("text/csv", "The template's header line") | errors(503),
)
def import_template_csv() -> Response:
    return Response(
        exchange_service.template_csv(),
        media_type=csvsafe.MEDIA_TYPE,
        headers=csvsafe.attachment("yizhan-stations-template.csv"),
    )


_IMPORT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {**_BINARY, "description": ".xlsx, .csv or .geojson"}},
                "required": ["file"],
            }
        },
        _XLSX: {"schema": _BINARY},
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "The template's columns (UTF-8, with or without BOM, or GBK)",
            }
        },
        "application/geo+json": {
            "schema": {
                "type": "object",
                "description": "FeatureCollection of Points; properties by the API's names",
            }
        },
    },
}


@router.post(
    "/stations/import",
    summary="Import stations from XLSX, CSV or GeoJSON: a dry run previews (per-row errors, "
    "new / changed / unchanged, likely duplicates); applying writes all of it or nothing "
    "(admins; district admins within their districts)",
    openapi_extra={"requestBody": _IMPORT_BODY},
    responses=body(ImportPreview, description="The preview (dry run) or what was written")
    | errors(*WRITE, 400, 415),
)
async def import_stations(
    request: Request,
    settings: SettingsDep,
    db: DbDep,
    actor: BriefActorDep,
    dry_run: Annotated[bool, Query(description="true: only preview; false: apply")] = True,
    coord_sys: Annotated[
        CoordSys,
        Query(description="Datum of rows whose 坐标系 column is empty: wgs84, gcj02 or bd09"),
    ] = "wgs84",
    skip: Annotated[
        str | None,
        Query(max_length=4000, description="External ids of rows to leave out, comma list"),
    ] = None,
    confirm_duplicates: Annotated[
        bool, Query(description="Import rows that look like existing stations anyway")
    ] = False,
) -> JSONBytesResponse:
    # The caller is checked before the body is read (there is no body parameter).
    exchange_service.check_may_import(actor)
    media = request.headers.get("content-type") or ""
    filename: str | None = None
    if media.lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise InvalidInputError(
                    "file: send the file as the multipart field `file` (缺少文件)", field="file"
                )
            data = await upload.read()
            filename, media = upload.filename, upload.content_type or ""
    else:
        data = await request.body()
    options = exchange_service.ImportOptions(
        dry_run=dry_run,
        coord_sys=coord_sys,
        skip=exchange_service.parse_skip(skip),
        confirm_duplicates=confirm_duplicates,
    )

    def work() -> exchange_service.Outcome:
        parsed = exchange_service.read_file(data, media, filename, coord_sys)  # before writing
        with db.read() if dry_run else db.write() as conn:
            ctx = service.FeatureContext.build(settings, conn, None, "wgs84")
            return exchange_service.run_import(conn, actor, parsed, options, ctx)

    outcome = await run_in_threadpool(work)
    return JSONBytesResponse(outcome.body, status_code=outcome.status)


def _export_name(suffix: str) -> dict[str, str]:
    return csvsafe.attachment(f"{exchange_service.EXPORT_NAME}.{suffix}")


@router.get(
    "/me/stations/export.xlsx",
    summary="The stations you may edit as XLSX in the template's columns (admins: all)",
    response_class=Response,
    responses=_download(_XLSX, "The workbook") | errors(401, 503),
)
def export_xlsx(conn: ConnDep, actor: ActorDep) -> Response:
    rows = exchange_service.export_rows(conn, actor)
    return Response(
        exchange_service.export_xlsx(rows), media_type=_XLSX, headers=_export_name("xlsx")
    )


@router.get(
    "/me/stations/export.csv",
    summary="The stations you may edit as CSV in the template's columns (formula-safe)",
    response_class=Response,
    responses=_download("text/csv", "UTF-8 CSV with BOM") | errors(401, 503),
)
def export_csv(conn: ConnDep, actor: ActorDep) -> Response:
    rows = exchange_service.export_rows(conn, actor)
    return Response(
        exchange_service.export_csv(rows),
        media_type=csvsafe.MEDIA_TYPE,
        headers=_export_name("csv"),
    )


@router.get(
    "/me/stations/export.geojson",
    summary="The stations you may edit as GeoJSON with the template's properties",
    response_class=GeoJSONResponse,
    responses=body(
        StationExport,
        media=GEOJSON,
        headers={"Content-Disposition": "attachment; filename=…"},
        required_headers=("Content-Disposition",),
    )
    | errors(401, 503),
)
def export_geojson(conn: ConnDep, actor: ActorDep) -> GeoJSONResponse:
    rows = exchange_service.export_rows(conn, actor)
    return GeoJSONResponse(exchange_service.export_geojson(rows), headers=_export_name("geojson"))
