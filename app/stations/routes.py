"""Station HTTP routes: parse, call the service, shape the response. No SQL here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from app.api.responses import GeoJSONResponse, JSONBytesResponse
from app.api.security import AdminDep
from app.db.engine import ConnDep
from app.errors import InvalidInputError
from app.stations import queries, service
from app.stations.schemas import (
    StationFeatureIn,
    StationFeaturePatch,
    parse_bbox,
    parse_csv_codes,
)
from app.stations.vocab import (
    ACCESS,
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
MAX_ID = 2**63 - 1

router = APIRouter(prefix="/api/v1", tags=["stations"])

StationId = Annotated[int, Path(ge=1, le=MAX_ID, description="Station id")]


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise InvalidInputError(
            'If-Match: expected the station version as an ETag, e.g. "3"', field="If-Match"
        )
    return int(raw)


def _codes(raw: str | None, vocabulary: tuple[str, ...], field: str) -> list[str]:
    try:
        return parse_csv_codes(raw, vocabulary, field)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field=field) from exc


def _terms(terms: tuple[Term, ...]) -> list[dict[str, str]]:
    return [{"code": t.code, "zh": t.zh, "en": t.en} for t in terms]


@router.get("/amenities", summary="Amenity vocabulary (zh-CN and English labels)")
def list_amenities() -> JSONBytesResponse:
    return JSONBytesResponse({"amenities": _terms(AMENITIES)})


@router.get("/vocabulary", summary="All fixed vocabularies of a station")
def vocabulary() -> JSONBytesResponse:
    return JSONBytesResponse(
        {
            "amenities": _terms(AMENITIES),
            "host_types": _terms(HOST_TYPES),
            "access": _terms(ACCESS),
            "statuses": _terms(STATUSES),
        }
    )


@router.get(
    "/stations/nearest",
    summary="The k nearest stations by geodesic distance",
    response_class=GeoJSONResponse,
)
def nearest(
    conn: ConnDep,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="WGS-84")],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="WGS-84")],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 5,
    radius_m: Annotated[
        float | None, Query(gt=0, le=MAX_RADIUS_M, allow_inf_nan=False, description="metres")
    ] = None,
    amenities: Annotated[
        str | None, Query(max_length=1000, description="comma list; all must be present")
    ] = None,
    status: Annotated[
        str | None,
        Query(max_length=200, description="comma list; default open,temporarily_closed"),
    ] = None,
) -> GeoJSONResponse:
    statuses = _codes(status, STATUS_CODES, "status") or list(DEFAULT_VISIBLE_STATUSES)
    flt = queries.NearestFilter(
        lon=lon,
        lat=lat,
        k=k,
        radius_m=radius_m,
        amenities=tuple(_codes(amenities, AMENITY_CODES, "amenities")),
        statuses=tuple(statuses),
    )
    rows = queries.nearest(conn, flt)
    features = [
        service.to_feature(r, {"distance_m": round(float(r["distance_m"]), 1)}) for r in rows
    ]
    return GeoJSONResponse(service.feature_collection(features, numberReturned=len(features)))


@router.get("/stations", summary="Stations in a bbox, paged", response_class=GeoJSONResponse)
def list_stations(
    request: Request,
    conn: ConnDep,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS-84)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> GeoJSONResponse:
    box = None
    if bbox is not None:
        try:
            box = parse_bbox(bbox)
        except ValueError as exc:
            raise InvalidInputError(f"bbox: {exc}", field="bbox") from exc
    rows, total = queries.page_in_bbox(conn, box, limit, offset)
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
    return GeoJSONResponse(
        service.feature_collection(
            [service.to_feature(r) for r in rows],
            numberMatched=total,
            numberReturned=len(rows),
            links=links,
        )
    )


@router.post(
    "/stations",
    status_code=201,
    summary="Create a station from a GeoJSON Feature",
    dependencies=[AdminDep],
    response_class=GeoJSONResponse,
)
def create_station(conn: ConnDep, feature: StationFeatureIn) -> GeoJSONResponse:
    row = service.create_station(conn, feature)
    return GeoJSONResponse(
        service.to_feature(row),
        status_code=201,
        headers={"Location": f"/api/v1/stations/{row['id']}", "ETag": _etag(row["version"])},
    )


@router.get("/stations/{station_id}", summary="One station", response_class=GeoJSONResponse)
def get_station(conn: ConnDep, station_id: StationId) -> GeoJSONResponse:
    row = service.get_station(conn, station_id)
    return GeoJSONResponse(service.to_feature(row), headers={"ETag": _etag(row["version"])})


@router.patch(
    "/stations/{station_id}",
    summary="Change some properties and/or the position (optional If-Match: version)",
    dependencies=[AdminDep],
    response_class=GeoJSONResponse,
)
def patch_station(
    conn: ConnDep,
    station_id: StationId,
    patch: StationFeaturePatch,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> GeoJSONResponse:
    row = service.patch_station(conn, station_id, patch, _parse_if_match(if_match))
    return GeoJSONResponse(service.to_feature(row), headers={"ETag": _etag(row["version"])})


@router.delete(
    "/stations/{station_id}",
    status_code=204,
    summary="Delete a station",
    dependencies=[AdminDep],
)
def delete_station(conn: ConnDep, station_id: StationId) -> Response:
    service.delete_station(conn, station_id)
    return Response(status_code=204)
