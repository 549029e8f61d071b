"""Courier problem report routes (public, rate-limited)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.deps import ConnDep, ReportLimiterDep, SettingsDep
from app.api.openapi import Report, body, errors
from app.api.params import StationId
from app.api.responses import JSONBytesResponse
from app.reports import service
from app.reports.service import ReportIn

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.post(
    "/stations/{station_id:int}/reports",
    status_code=201,
    summary="Report a problem with a station (public; rate-limited per client address)",
    responses=body(Report, status=201, description="Filed")
    | errors(400, 404, 409, 413, 422, 429, 503),
)
def file_report(
    request: Request,
    settings: SettingsDep,
    limiter: ReportLimiterDep,
    conn: ConnDep,
    station_id: StationId,
    report: ReportIn,
) -> JSONBytesResponse:
    address = request.client.host if request.client else "unknown"
    key = service.client_key(address, settings.report_salt.get_secret_value())
    body = service.file_report(conn, station_id, report, key, limiter)
    return JSONBytesResponse(body, status_code=201)
