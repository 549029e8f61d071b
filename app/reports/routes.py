"""Courier problem report routes (public, rate-limited)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.responses import JSONBytesResponse
from app.db.engine import ConnDep
from app.reports import service
from app.reports.service import ReportIn
from app.stations.routes import StationId

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.post(
    "/stations/{station_id}/reports",
    status_code=201,
    summary="Report a problem with a station (public; rate-limited per client address)",
)
def file_report(
    request: Request, conn: ConnDep, station_id: StationId, report: ReportIn
) -> JSONBytesResponse:
    settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"
    key = service.client_key(address, settings.report_salt.get_secret_value())
    body = service.file_report(conn, station_id, report, key, request.app.state.report_limiter)
    return JSONBytesResponse(body, status_code=201)
