"""District HTTP routes: read outlines (public), replace them (admin). No SQL here."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from app.accounts.policy import Action, check
from app.api.deps import ConnDep, DbDep
from app.api.openapi import (
    GEOJSON,
    WRITE,
    District,
    DistrictCollection,
    DistrictLoad,
    body,
    errors,
)
from app.api.params import CoordSysQ, StrictDecimal
from app.api.responses import GeoJSONResponse, JSONBytesResponse
from app.api.security import BriefActorDep
from app.districts import service

router = APIRouter(prefix="/api/v1", tags=["districts"])

#: The upload path; the body-size middleware allows it `YIZHAN_MAX_UPLOAD_BYTES` (20 MiB by
#: default) instead of the 64 KiB every other request gets (see app/main.py).
UPLOAD_PATH = "/api/v1/districts"
UPLOAD_METHOD = "PUT"

SimplifyQ = Annotated[
    float,
    StrictDecimal,
    Query(
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="Simplify outlines for display, tolerance in metres (0: as stored). "
        "Each district is simplified on its own; areas are always of the stored outline.",
    ),
]


@router.get(
    "/districts",
    summary="District outlines as a GeoJSON FeatureCollection",
    response_class=GeoJSONResponse,
    responses=body(DistrictCollection, media=GEOJSON) | errors(422, 503),
)
def list_districts(
    conn: ConnDep, coord_sys: CoordSysQ = "wgs84", simplify: SimplifyQ = 0.0
) -> GeoJSONResponse:
    return GeoJSONResponse(service.feature_collection(conn, coord_sys, simplify))


@router.get(
    "/districts/{code}",
    summary="One district outline",
    response_class=GeoJSONResponse,
    responses=body(District, media=GEOJSON) | errors(404, 422, 503),
)
def get_district(
    conn: ConnDep,
    code: Annotated[str, Path(max_length=12, description="6, 9 or 12-digit code")],
    coord_sys: CoordSysQ = "wgs84",
    simplify: SimplifyQ = 0.0,
) -> GeoJSONResponse:
    return GeoJSONResponse(service.feature(conn, code, coord_sys, simplify))


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "application/geo+json": {
            "schema": {
                "type": "object",
                "description": "FeatureCollection; each Feature: Polygon or MultiPolygon, "
                "properties code (6/9/12 digits, unique), name (1-100 characters), optional "
                "name_en and parent_code",
            }
        }
    },
}


@router.put(
    "/districts",
    summary="Upload district outlines (replace all, or upsert by code), then re-assign "
    "every station's district (admins and planners)",
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses=body(DistrictLoad, description="Loaded") | errors(*WRITE),
)
async def put_districts(
    request: Request,
    db: DbDep,
    actor: BriefActorDep,
    coord_sys: CoordSysQ = "wgs84",
    mode: Annotated[
        Literal["replace", "upsert"],
        Query(description="replace: the table becomes exactly the upload; upsert: by code"),
    ] = "replace",
    source: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Provenance label stored with each"),
    ] = None,
) -> JSONBytesResponse:
    # The caller is checked before the body is read (there is no body parameter), so without
    # the right token and role a large upload is refused with 401/403, never read or parsed.
    check(actor, Action.DISTRICTS_WRITE)
    body = await request.body()
    label = service.source_label(source, coord_sys)

    def work() -> dict[str, object]:
        districts = service.parse_json(body, coord_sys)  # all validated before any write
        with db.write() as conn:
            result = service.load(
                conn, districts, label, replace=mode == "replace", actor=actor, channel="api"
            )
        return {**result.as_dict(), "coord_sys": coord_sys}

    return JSONBytesResponse(await run_in_threadpool(work))
