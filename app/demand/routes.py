"""Demand-layer routes: upload (replace) a layer, list, read metadata, delete. No SQL here."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.accounts.policy import Action, check
from app.api.deps import ConnDep, DbDep
from app.api.openapi import WRITE, DemandLayer, DemandLayers, DemandLoad, body, empty, errors
from app.api.params import CoordSysQ, LayerName, StrictInteger
from app.api.responses import JSONBytesResponse
from app.api.security import ActorDep, BriefActorDep
from app.audit import service as audit
from app.coverage.grid import DEFAULT_RESOLUTION, RESOLUTIONS
from app.demand import parse, queries
from app.errors import NotFoundError

router = APIRouter(prefix="/api/v1", tags=["demand"])

#: Uploads go to `PUT {UPLOAD_PATH_PREFIX}<name>`: the body-size middleware must allow this
#: prefix `YIZHAN_MAX_UPLOAD_BYTES` rather than the default 64 KiB (see app/main.py).
UPLOAD_METHOD: Final = "PUT"
UPLOAD_PATH_PREFIX: Final = "/api/v1/demand/"


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "UTF-8 CSV with a header: lon,lat,weight (points; lng, "
                "longitude, latitude accepted) or h3,weight (H3 cells at the layer resolution "
                "or finer)",
            }
        },
        "application/geo+json": {
            "schema": {
                "type": "object",
                "description": "FeatureCollection of Point, Polygon or MultiPolygon features "
                "with a numeric weight property (polygons: spread over the cells whose centres "
                "lie inside, by cell area)",
            }
        },
    },
}


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"name: no demand layer {name!r}", field="name")


@router.put(
    "/demand/{name}",
    summary="Create or replace a demand layer (weights per H3 cell) from CSV or GeoJSON "
    "(admins and planners)",
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses=body(DemandLoad, description="Replaced")
    | body(
        DemandLoad,
        status=201,
        description="Created",
        headers={"Location": "The layer's URL"},
        required_headers=("Location",),
    )
    | errors(*WRITE, 415),
)
async def put_layer(
    request: Request,
    db: DbDep,
    actor: BriefActorDep,
    name: LayerName,
    unit: Annotated[
        str, Query(max_length=100, description="What one unit of weight is, e.g. persons")
    ],
    resolution: Annotated[
        int,
        StrictInteger,
        Query(description=f"H3 resolution, one of {', '.join(map(str, RESOLUTIONS))}"),
    ] = DEFAULT_RESOLUTION,
    coord_sys: CoordSysQ = "wgs84",
    weight_property: Annotated[
        str,
        Query(max_length=100, description="Weight column (CSV) or property (GeoJSON)"),
    ] = parse.DEFAULT_WEIGHT_PROPERTY,
    description: Annotated[str | None, Query(max_length=500)] = None,
    source: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Provenance label")
    ] = None,
) -> JSONBytesResponse:
    # The caller is checked before the body is read (there is no body parameter).
    check(actor, Action.DEMAND_WRITE)
    fmt = parse.format_of_media_type(request.headers.get("content-type"))
    if fmt is None:
        raise HTTPException(
            415,
            "Content-Type: must be text/csv, application/geo+json or application/json, "
            f"got {request.headers.get('content-type')!r}",
        )
    parse.check_layer_args(name, unit, resolution, coord_sys, weight_property)
    body = await request.body()

    def work() -> tuple[bool, parse.LayerCells]:
        layer = parse.parse(body, fmt, resolution, coord_sys, weight_property)  # before writing
        with db.write() as conn:
            created = queries.replace_layer(
                conn, name, unit, resolution, description, source, layer.cells, layer.weights
            )
            audit.record(
                conn,
                actor,
                "api",
                "demand.create" if created else "demand.replace",
                f"demand:{name}",
                {"unit": unit, "resolution": resolution, "cells": layer.n_cells},
            )
        return created, layer

    created, layer = await run_in_threadpool(work)
    return JSONBytesResponse(
        {
            "name": name,
            "unit": unit,
            "resolution": resolution,
            "cells": layer.n_cells,
            "total_weight": layer.total_weight,
            "rows": layer.rows,
            "coord_sys": coord_sys,
        },
        status_code=201 if created else 200,
        headers={"Location": f"{UPLOAD_PATH_PREFIX}{name}"} if created else None,
    )


@router.get(
    "/demand",
    summary="Demand layers: metadata and totals",
    responses=body(DemandLayers) | errors(503),
)
def list_layers(conn: ConnDep) -> JSONBytesResponse:
    return JSONBytesResponse({"layers": [i.as_dict() for i in queries.list_layers(conn)]})


@router.get(
    "/demand/{name}",
    summary="One demand layer: metadata and totals",
    responses=body(DemandLayer) | errors(404, 422, 503),
)
def get_layer(conn: ConnDep, name: LayerName) -> JSONBytesResponse:
    info = queries.layer_info(conn, name)
    if info is None:
        raise _not_found(name)
    return JSONBytesResponse(info.as_dict())


@router.delete(
    "/demand/{name}",
    status_code=204,
    summary="Delete a demand layer (admins and planners)",
    responses=empty(204, "Deleted") | errors(*WRITE, 404),
)
def delete_layer(conn: ConnDep, actor: ActorDep, name: LayerName) -> Response:
    check(actor, Action.DEMAND_WRITE)
    if not queries.delete_layer(conn, name):
        raise _not_found(name)
    audit.record(conn, actor, "api", "demand.delete", f"demand:{name}")
    return Response(status_code=204)
