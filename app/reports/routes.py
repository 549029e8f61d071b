"""Courier problem report routes: filing (public, rate-limited), the courier's status check
(public, with the report's key), the managers' lists, queue and answers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.api.deps import ConnDep, ReportLimiterDep, SettingsDep
from app.api.openapi import (
    JSON_BODY,
    WRITE,
    Report,
    ReportItem,
    ReportQueue,
    ReportStatus,
    StationReports,
    body,
    errors,
)
from app.api.params import NoNul, StationId, StrictInteger
from app.api.responses import JSONBytesResponse
from app.api.security import ActorDep
from app.reports import service
from app.reports.service import ReportAnswerIn, ReportIn

router = APIRouter(prefix="/api/v1", tags=["reports"])

MAX_PAGE = 500

ReportId = Annotated[int, StrictInteger, Path(ge=1, le=2**62, description="The report's id")]
StatusQ = Annotated[
    Literal["open", "acknowledged", "resolved", "rejected"] | None,
    Query(description="Only reports with this status"),
]
LimitQ = Annotated[int, StrictInteger, Query(ge=1, le=MAX_PAGE)]


@router.post(
    "/stations/{station_id:int}/reports",
    status_code=201,
    summary="Report a problem with a station (public; rate-limited per client address)",
    description="The answer carries `key`, shown once: with it, "
    "GET /api/v1/reports/{id}?key=… tells the courier what became of the report.",
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
    return JSONBytesResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


@router.get(
    "/reports/{report_id}",
    summary="A report's status and the station's answer (public, with the report's key)",
    description="A wrong or missing key answers 404, the same as an unknown id.",
    responses=body(ReportStatus) | errors(404, 422, 503),
)
def report_status(
    settings: SettingsDep,
    conn: ConnDep,
    report_id: ReportId,
    key: Annotated[
        str | None, NoNul, Query(max_length=100, description="The key given when filing")
    ] = None,
) -> JSONBytesResponse:
    body = service.courier_status(conn, report_id, key, settings.report_escalate_days)
    return JSONBytesResponse(body, headers={"Cache-Control": "no-store"})


@router.get(
    "/stations/{station_id:int}/reports",
    summary="A station's reports, newest first (its managers, district admins in scope, admins)",
    responses=body(StationReports) | errors(401, 403, 404, 422, 503),
)
def station_reports(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    station_id: StationId,
    status: StatusQ = None,
    limit: LimitQ = 100,
) -> JSONBytesResponse:
    return JSONBytesResponse(
        service.station_reports(
            conn, actor, station_id, status, settings.report_escalate_days, limit
        )
    )


@router.get(
    "/reports",
    summary="Your report queue: reports about the stations in your scope, overdue first",
    description="Overdue: still open or acknowledged `YIZHAN_REPORT_ESCALATE_DAYS` (3) days "
    "after filing.",
    responses=body(ReportQueue) | errors(401, 422, 503),
)
def report_queue(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    status: StatusQ = None,
    overdue: Annotated[bool, Query(description="Only overdue reports")] = False,
    limit: LimitQ = 100,
) -> JSONBytesResponse:
    return JSONBytesResponse(
        service.report_queue(conn, actor, status, overdue, settings.report_escalate_days, limit)
    )


@router.patch(
    "/reports/{report_id}",
    summary="Answer a report: acknowledge, resolve (say what was done) or reject (say why), "
    "optionally with the station edit that fixes it",
    description="Only open or acknowledged reports can be answered (409 otherwise). `station` "
    "holds station properties to change in the same transaction (no If-Match: the answer "
    "is the deliberate edit), within the caller's rights on the station (managers: "
    "amenities, opening_hours, status, phone, capacity, notes).",
    responses=body(ReportItem) | errors(*WRITE, *JSON_BODY, 404),
)
def answer_report(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    report_id: ReportId,
    answer: ReportAnswerIn,
) -> JSONBytesResponse:
    return JSONBytesResponse(service.answer_report(conn, settings, actor, report_id, answer))
