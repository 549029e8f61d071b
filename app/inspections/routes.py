"""Inspection routes: record one (district admins in scope, admins), list a station's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ConnDep, SettingsDep
from app.api.openapi import JSON_BODY, WRITE, Inspection, InspectionList, body, errors
from app.api.params import StationId, StrictInteger
from app.api.responses import JSONBytesResponse
from app.api.security import ActorDep
from app.inspections import service
from app.inspections.service import InspectionIn

router = APIRouter(prefix="/api/v1", tags=["inspections"])

MAX_PAGE = 500


@router.post(
    "/stations/{station_id:int}/inspections",
    status_code=201,
    summary="Record an inspection (checklist, findings) and optionally the star level "
    "(district admins in scope, admins)",
    responses=body(Inspection, status=201, description="Recorded")
    | errors(*WRITE, *JSON_BODY, 404),
)
def record_inspection(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    inspection: InspectionIn,
) -> JSONBytesResponse:
    row = service.record_inspection(conn, settings, actor, station_id, inspection)
    return JSONBytesResponse(row, status_code=201)


@router.get(
    "/stations/{station_id:int}/inspections",
    summary="A station's inspections, newest first, with the checklist and its level "
    "(its managers, district admins in scope, admins)",
    responses=body(InspectionList) | errors(401, 403, 404, 422, 503),
)
def station_inspections(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    limit: Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)] = 100,
) -> JSONBytesResponse:
    return JSONBytesResponse(service.station_inspections(conn, settings, actor, station_id, limit))
