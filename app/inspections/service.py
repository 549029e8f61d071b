"""Inspections: a district union's visit to a station — date, inspector, the checklist
(default "八有"), findings — and the star level it gives the station. Both audited: the
inspection as an audit event, the level as a station revision (action `inspection`)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator
from sqlalchemy.engine import Connection, RowMapping

from app.accounts import policy
from app.accounts.policy import Action, Actor, StationRef
from app.audit import service as audit
from app.audit.service import Channel
from app.config import Settings
from app.errors import InvalidInputError, NotFoundError
from app.inspections import queries
from app.inspections.checklist import checklist
from app.stations import queries as station_queries
from app.stations.schemas import JsonNumber
from app.stations.vocab import Term

MAX_FINDINGS = 2000


def _plain(v: str | None) -> str | None:
    if v is None:
        return None
    v = unicodedata.normalize("NFC", v).strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c != "\n" for c in v):
        raise ValueError("must be plain text (no control or formatting characters)")
    return v or None


def _iso_date(value: object) -> object:
    # pydantic's lax mode reads 0 as 1970-01-01 (a Unix time); a JSON body writes a date
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("a date written YYYY-MM-DD, e.g. 2026-11-20 (日期格式：年-月-日)")
    return value


class InspectionIn(BaseModel):
    """One inspection: `checklist` maps item codes (GET …/inspections lists them) to whether
    the station meets them; items left out were not checked."""

    model_config = ConfigDict(extra="forbid")

    inspected_on: Annotated[date, BeforeValidator(_iso_date)] = Field(
        description="The day of the visit, YYYY-MM-DD (not in the future)"
    )
    checklist: dict[Annotated[str, Field(max_length=40)], StrictBool] = Field(
        default_factory=dict, max_length=50
    )
    findings: Annotated[str, Field(max_length=MAX_FINDINGS)] | None = None
    level: Annotated[int, JsonNumber, Field(ge=1, le=5)] | None = Field(
        default=None, description="Star level 1-5 to give the station"
    )
    inspector: Annotated[str, Field(max_length=100)] | None = Field(
        default=None, description="Who inspected; default: the account recording it"
    )

    @field_validator("findings", "inspector")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return _plain(v)


def items(settings: Settings) -> tuple[Term, ...]:
    """The checklist in force in this deployment."""
    return checklist(settings.inspection_checklist)


def inspection_json(row: RowMapping, terms: tuple[Term, ...]) -> dict[str, Any]:
    stored: dict[str, bool] = dict(row["checklist"] or {})
    known = {t.code for t in terms}
    # Items of an older checklist stay visible under their codes.
    listed = [*terms, *(Term(c, c, c) for c in stored if c not in known)]
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "inspected_on": row["inspected_on"].isoformat(),
        "inspector": row["inspector"],
        "checklist": [
            {"code": t.code, "zh": t.zh, "en": t.en, "ok": stored.get(t.code)} for t in listed
        ],
        "passed": sum(1 for v in stored.values() if v),
        "findings": row["findings"],
        "level": row["level"],
        "created_at": row["created_at"].isoformat(),
    }


def record_inspection(
    conn: Connection,
    settings: Settings,
    actor: Actor,
    station_id: int,
    body: InspectionIn,
    channel: Channel = "api",
) -> dict[str, Any]:
    """Store an inspection (district admins in scope, admins); with a level, the station
    gets it in the same transaction."""
    ref = station_queries.locked_ref(conn, station_id)
    if ref is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    policy.check(actor, Action.INSPECTION_WRITE, StationRef(station_id, ref["district_code"]))
    terms = items(settings)
    codes = {t.code for t in terms}
    unknown = [c for c in body.checklist if c not in codes]
    if unknown:
        raise InvalidInputError(
            f"checklist.{unknown[0]}: not an item of the checklist (检查项不存在); "
            f"valid: {', '.join(t.code for t in terms)}",
            field=f"checklist.{unknown[0]}",
        )
    today = datetime.now(ZoneInfo(settings.time_zone)).date()
    if body.inspected_on > today:
        raise InvalidInputError(
            f"inspected_on: {body.inspected_on} is in the future (检查日期不能晚于今天)",
            field="inspected_on",
        )
    inspector = body.inspector or actor.display_name or actor.name
    row = queries.insert(
        conn,
        station_id,
        body.inspected_on,
        inspector,
        actor.user_id,
        body.checklist,
        body.findings,
        body.level,
    )
    details: dict[str, Any] = {"inspection": row["id"], "level": body.level}
    if body.level is not None:
        audit.attribute(conn, actor, channel, action="inspection", meta={"inspection": row["id"]})
        details["level_changed"] = queries.set_level(conn, station_id, body.level)
    audit.record(conn, actor, channel, "inspection.create", f"station:{station_id}", details)
    return inspection_json(row, terms)


def station_inspections(
    conn: Connection, settings: Settings, actor: Actor, station_id: int, limit: int
) -> dict[str, Any]:
    """A station's inspections, newest first (its managers, district admins in scope,
    admins), with the checklist in force and the station's level."""
    station = station_queries.get(conn, station_id)
    if station is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    policy.check(actor, Action.INSPECTION_READ, StationRef(station_id, station["district_code"]))
    terms = items(settings)
    rows = queries.for_station(conn, station_id, limit)
    return {
        "station_id": station_id,
        "level": station["level"],
        "checklist": [{"code": t.code, "zh": t.zh, "en": t.en} for t in terms],
        "inspections": [inspection_json(r, terms) for r in rows],
        "numberReturned": len(rows),
    }
