"""Vector tile routes: MVT tiles of stations and coverage cells, and their TileJSON documents.

- `GET /api/v1/tiles/stations/{z}/{x}/{y}.pbf` (`?status=` as elsewhere; default: not closed)
- `GET /api/v1/tiles/coverage/{run_id}/{z}/{x}/{y}.pbf`
- `GET /api/v1/tiles/stations.json`, `GET /api/v1/tiles/coverage/{run_id}.json` (TileJSON
  3.0.0, for MapLibre, OpenLayers, QGIS)

A tile with no feature is **204 No Content** (no body; MapLibre, OpenLayers and GDAL treat it
as an empty tile) with the same Cache-Control as a full one. A tile with features is 200
`application/vnd.mapbox-vector-tile` with an `ETag` (a digest of the body; `If-None-Match` gives
304). Station tiles may be cached for a minute; a finished run's cells never change (a new
analysis is a new run id), so its tiles are `immutable` for a day; a run still running is
`no-cache`. See `app/tiles/queries.py` for the tile contents and why PostGIS makes them.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.engine import Connection

from app.api.deps import ConnDep
from app.api.openapi import TileJSON, body, errors
from app.api.params import StrictInteger
from app.api.responses import JSONBytesResponse
from app.errors import InvalidInputError, NotFoundError
from app.stations.schemas import parse_csv_codes
from app.stations.vocab import DEFAULT_VISIBLE_STATUSES, STATUS_CODES
from app.tiles import queries
from app.tiles.queries import MAX_ZOOM

PREFIX = "/api/v1/tiles"
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_ID = 2**63 - 1
#: The zoom range TileJSON advertises; clients overzoom beyond it (the routes serve to 22).
TILEJSON_MINZOOM = 0
TILEJSON_MAXZOOM = 16
WORLD_BOUNDS = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)

STATIONS_CACHE = "public, max-age=60"
FINISHED_RUN_CACHE = "public, max-age=86400, immutable"
RUNNING_RUN_CACHE = "no-cache"

router = APIRouter(prefix=PREFIX, tags=["tiles"])

Z = Annotated[int, StrictInteger, Path(ge=0, le=MAX_ZOOM, description="Zoom level, 0-22")]
X = Annotated[
    int, StrictInteger, Path(ge=0, description="Tile column, 0 .. 2^z - 1 (west to east)")
]
Y = Annotated[
    int, StrictInteger, Path(ge=0, description="Tile row, 0 .. 2^z - 1 (north to south, XYZ)")
]
RunId = Annotated[int, StrictInteger, Path(ge=1, le=MAX_ID, description="Coverage run id")]
StatusQ = Annotated[
    str | None,
    Query(
        max_length=200,
        description="comma list: open,temporarily_closed,closed (default: all but closed)",
    ),
]

_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MVT_MEDIA_TYPE: {}}, "description": "A Mapbox Vector Tile"},
    204: {"description": "No feature in this tile (an empty tile)"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
}


def _check_tile(z: int, x: int, y: int) -> None:
    n = 1 << z
    for name, value in (("x", x), ("y", y)):
        if value >= n:
            raise InvalidInputError(
                f"{name}: must be between 0 and {n - 1} at zoom {z}", field=name
            )


def _statuses(raw: str | None) -> tuple[str, ...]:
    try:
        codes = parse_csv_codes(raw, STATUS_CODES, "status")
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="status") from exc
    return tuple(codes) or DEFAULT_VISIBLE_STATUSES


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _tile_response(request: Request, body: bytes, cache_control: str) -> Response:
    headers = {"Cache-Control": cache_control}
    if not body:
        return Response(status_code=204, headers=headers)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers["ETag"] = etag
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MVT_MEDIA_TYPE, headers=headers)


def _run(conn: Connection, run_id: int) -> queries.Run:
    run = queries.coverage_run(conn, run_id)
    if run is None:
        raise NotFoundError(f"run_id: no coverage run {run_id}", field="run_id")
    return run


def _run_cache(run: queries.Run) -> str:
    return FINISHED_RUN_CACHE if run.status == "done" else RUNNING_RUN_CACHE


@router.get(
    "/stations/{z}/{x}/{y}.pbf",
    summary="Stations as a Mapbox Vector Tile (layer `stations`)",
    response_class=Response,
    responses=_TILE_RESPONSES | errors(422, 503),
)
def stations_tile(
    request: Request, conn: ConnDep, z: Z, x: X, y: Y, status: StatusQ = None
) -> Response:
    _check_tile(z, x, y)
    body = queries.stations_tile(conn, z, x, y, _statuses(status))
    return _tile_response(request, body, STATIONS_CACHE)


@router.get(
    "/coverage/{run_id}/{z}/{x}/{y}.pbf",
    summary="A coverage run's cells as a Mapbox Vector Tile (layer `cells`)",
    response_class=Response,
    responses=_TILE_RESPONSES | errors(404, 422, 503),
)
def coverage_tile(request: Request, conn: ConnDep, run_id: RunId, z: Z, x: X, y: Y) -> Response:
    _check_tile(z, x, y)
    run = _run(conn, run_id)
    body = queries.cells_tile(conn, run.id, run.target_minutes, z, x, y)
    return _tile_response(request, body, _run_cache(run))


def _tilejson(
    request: Request,
    path: str,
    name: str,
    description: str,
    bounds: tuple[float, float, float, float] | None,
    layer: dict[str, Any],
) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "tilejson": "3.0.0",
        "name": name,
        "description": description,
        "scheme": "xyz",
        "tiles": [f"{base}{PREFIX}{path}"],
        "minzoom": TILEJSON_MINZOOM,
        "maxzoom": TILEJSON_MAXZOOM,
        "bounds": list(bounds or WORLD_BOUNDS),
        "vector_layers": [layer],
    }


@router.get(
    "/stations.json",
    summary="TileJSON 3.0.0 of the stations tiles",
    responses=body(TileJSON) | errors(422, 503),
)
def stations_tilejson(request: Request, conn: ConnDep, status: StatusQ = None) -> Response:
    statuses = _statuses(status)
    query = f"?status={','.join(statuses)}" if status is not None else ""
    doc = _tilejson(
        request,
        "/stations/{z}/{x}/{y}.pbf" + query,
        "yizhan stations",
        "Union rest stations for outdoor workers (工会驿站), statuses: " + ", ".join(statuses),
        queries.stations_bounds(conn, statuses),
        {
            "id": queries.STATIONS_LAYER,
            "description": "One point per station",
            "minzoom": TILEJSON_MINZOOM,
            "maxzoom": TILEJSON_MAXZOOM,
            "fields": queries.STATION_FIELDS,
        },
    )
    return JSONBytesResponse(doc, headers={"Cache-Control": STATIONS_CACHE})


@router.get(
    "/coverage/{run_id}.json",
    summary="TileJSON 3.0.0 of a coverage run's cell tiles",
    responses=body(TileJSON) | errors(404, 422, 503),
)
def coverage_tilejson(request: Request, conn: ConnDep, run_id: RunId) -> Response:
    run = _run(conn, run_id)
    doc = _tilejson(
        request,
        f"/coverage/{run.id}/{{z}}/{{x}}/{{y}}.pbf",
        f"yizhan coverage run {run.id}",
        f"Demand cells of coverage run {run.id} (target {run.target_minutes:g} minutes): "
        f"H3 hexagons from zoom {queries.CELL_POLYGON_MIN_ZOOM}, their centroids as points "
        "below",
        queries.cells_bounds(conn, run.id),
        {
            "id": queries.CELLS_LAYER,
            "description": "One feature per demand cell: hexagon (zoom "
            f">= {queries.CELL_POLYGON_MIN_ZOOM}) or centroid point (below)",
            "minzoom": TILEJSON_MINZOOM,
            "maxzoom": TILEJSON_MAXZOOM,
            "fields": queries.CELL_FIELDS,
        },
    )
    return JSONBytesResponse(doc, headers={"Cache-Control": _run_cache(run)})
