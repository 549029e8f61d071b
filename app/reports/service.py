"""Courier problem reports: validation, rate limiting per client, storage as plain text; the
loop back — a status key for the courier, the managers' lists and queue, their answers (with
the matching station edit in the same transaction)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from typing import Annotated, Any, Literal

from limits import RateLimitItem, parse_many, storage, strategies
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Connection

from app.accounts import policy
from app.accounts.policy import Action, Actor, StationRef
from app.audit import service as audit
from app.audit.service import Channel
from app.config import Settings
from app.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    TooManyRequestsError,
)
from app.reports import queries
from app.reports.vocab import (
    KIND_LABELS,
    MAX_COMMENT,
    MAX_NOTE,
    OPEN_STATUSES,
    REPORT_KINDS,
    STATUS_LABELS,
)
from app.stations import queries as station_queries
from app.stations import service as station_service
from app.stations.schemas import StationFeaturePatch, StationPatchProperties


def _plain_text(v: str | None) -> str | None:
    """NFC, trimmed, None when empty; control or formatting characters refused."""
    if v is None:
        return None
    v = unicodedata.normalize("NFC", v).strip()
    bad = [c for c in v if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c != "\n"]
    if bad:
        raise ValueError("must be plain text (no control or formatting characters)")
    return v or None


class ReportIn(BaseModel):
    """A courier's report. The comment is plain text: control characters are refused."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, Field(json_schema_extra={"enum": list(REPORT_KINDS)})]
    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in REPORT_KINDS:
            raise ValueError(f"unknown kind {v!r}; valid: {', '.join(REPORT_KINDS)}")
        return v

    @field_validator("comment")
    @classmethod
    def _comment(cls, v: str | None) -> str | None:
        return _plain_text(v)


class ReportAnswerIn(BaseModel):
    """A manager's answer: acknowledge, resolve (saying what was done) or reject (saying why);
    optionally with the station edit that fixes what the courier reported, applied in the same
    transaction (`{"status": "open"}`, `{"amenities": [...]}`: the fields the answering person
    may set on the station)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["acknowledged", "resolved", "rejected"]
    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None
    station: StationPatchProperties | None = None

    @field_validator("note")
    @classmethod
    def _note(cls, v: str | None) -> str | None:
        return _plain_text(v)


class ReportLimiter:
    """Moving-window limits per client key (the `limits` library; memory or Redis storage)."""

    def __init__(
        self, spec: str, storage_uri: str = "memory://", namespace: str = "reports"
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(spec)
        self.namespace = namespace
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def hit(self, key: str) -> None:
        """Count one report for `key`, or raise TooManyRequestsError without counting it."""
        for item in self.items:
            if not self.limiter.test(item, self.namespace, key):
                reset = self.limiter.get_window_stats(item, self.namespace, key).reset_time
                wait = max(1, int(reset - time.time()) + 1)
                raise TooManyRequestsError(
                    f"client: too many {self.namespace} ({item}); try again in {wait} s", wait
                )
        for item in self.items:
            self.limiter.hit(item, self.namespace, key)


def client_key(address: str, salt: str) -> str:
    """A salted hash of the client address: enough to rate-limit, not enough to identify."""
    return hashlib.sha256(f"{salt}:{address}".encode()).hexdigest()[:32]


def file_report(
    conn: Connection, station_id: int, report: ReportIn, key: str, limiter: ReportLimiter
) -> dict[str, Any]:
    """Check the station exists, apply the rate limit, store the report."""
    if not station_queries.exists(conn, station_id):
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    limiter.hit(key)
    status_key = new_status_key()
    row = queries.insert(
        conn, station_id, report.kind, report.comment, key, status_key_hash(status_key)
    )
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "kind": row["kind"],
        "comment": row["comment"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
        "station_open_reports": queries.open_count(conn, station_id),
        "key": status_key,
        "status_url": f"/api/v1/reports/{row['id']}?key={status_key}",
    }


# --- the loop back: the courier's status key, managers' lists and answers ---------------------


def new_status_key() -> str:
    """The courier's key to their report's status: 12 URL-safe characters (72 random bits),
    shown once; only its SHA-256 is stored (random, so a slow hash would add nothing)."""
    return secrets.token_urlsafe(9)


def status_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _label(term: Any) -> dict[str, str]:
    return {"zh": term.zh, "en": term.en}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def courier_json(row: Any) -> dict[str, Any]:
    """What the courier holding the key sees: the status and the answer, in zh and en."""
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "station_name": row["station_name"],
        "kind": row["kind"],
        "kind_label": _label(KIND_LABELS[row["kind"]]),
        "status": row["status"],
        "status_label": _label(STATUS_LABELS[row["status"]]),
        "note": row["note"],
        "created_at": row["created_at"].isoformat(),
        "answered_at": _iso(row["answered_at"]),
    }


def report_json(row: Any) -> dict[str, Any]:
    """A report as the station's people see it (the courier's comment, who answered)."""
    return {
        **courier_json(row),
        "comment": row["comment"],
        "answered_by": row["answered_by"],
        "overdue": bool(row["overdue"]),
    }


def courier_status(
    conn: Connection, report_id: int, key: str | None, escalate_days: int
) -> dict[str, Any]:
    """A report's status for whoever holds its key. A wrong or missing key is the same 404 as
    an unknown id, so ids cannot be probed."""
    row = queries.get(conn, report_id, escalate_days)
    if (
        row is None
        or not key
        or row["key_hash"] is None
        or not hmac.compare_digest(row["key_hash"], status_key_hash(key))
    ):
        raise NotFoundError(
            f"id: no report {report_id} with this key (没有找到该反馈，请核对链接)", field="id"
        )
    return courier_json(row)


def station_reports(
    conn: Connection,
    actor: Actor,
    station_id: int,
    status: str | None,
    escalate_days: int,
    limit: int,
) -> dict[str, Any]:
    """A station's reports, newest first (its managers, district admins in scope, admins)."""
    station = station_queries.get(conn, station_id)
    if station is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    policy.check(actor, Action.REPORT_READ, StationRef(station_id, station["district_code"]))
    rows = queries.for_station(conn, station_id, status, escalate_days, limit)
    return {
        "station_id": station_id,
        "escalate_days": escalate_days,
        "reports": [report_json(r) for r in rows],
        "numberReturned": len(rows),
    }


def report_queue(
    conn: Connection,
    actor: Actor,
    status: str | None,
    overdue_only: bool,
    escalate_days: int,
    limit: int,
) -> dict[str, Any]:
    """The caller's queue: reports about every station in their scope (in SQL), overdue
    first, then newest first."""
    rows, total, overdue = queries.queue(
        conn, policy.station_scope(actor), status, overdue_only, escalate_days, limit
    )
    return {
        "escalate_days": escalate_days,
        "reports": [report_json(r) for r in rows],
        "numberReturned": len(rows),
        "numberMatched": total,
        "numberOverdue": overdue,
    }


def _as_station_field(exc: DomainError) -> DomainError:
    """The station edit's errors name `station.<field>` (the answer's own body)."""
    field = exc.field or ""
    if not field.startswith("properties."):
        return exc
    new = "station." + field.removeprefix("properties.")
    detail = exc.detail.replace(field, new, 1)
    return type(exc)(detail, field=new, retry_after=exc.retry_after)


def answer_report(
    conn: Connection,
    settings: Settings,
    actor: Actor,
    report_id: int,
    answer: ReportAnswerIn,
    channel: Channel = "api",
) -> dict[str, Any]:
    """Acknowledge, resolve or reject an unanswered report — with the optional station edit
    in the same transaction (through the station service: its policy checks, its revision
    with the actor) — and record the answer as an audit event `report.<status>`."""
    days = settings.report_escalate_days
    row = queries.get(conn, report_id, days, lock=True)
    if row is None:
        raise NotFoundError(f"id: no report with id {report_id}", field="id")
    station_id = int(row["station_id"])
    policy.check(actor, Action.REPORT_ANSWER, StationRef(station_id, row["district_code"]))
    if row["status"] not in OPEN_STATUSES or row["status"] == answer.status:
        by = f" by {row['answered_by']}" if row["answered_by"] else ""
        raise ConflictError(
            f"status: report {report_id} is already {row['status']}{by} "
            "(该反馈已处理，不能重复处理)",
            field="status",
        )
    if answer.status != "acknowledged" and answer.note is None:
        what = (
            "say what was done (请说明处理结果)"
            if answer.status == "resolved"
            else "give the reason (请说明原因)"
        )
        raise InvalidInputError(f"note: required to mark a report {answer.status}: {what}", "note")
    # The answer first, so that the station returned already counts it as answered.
    queries.answer(conn, report_id, answer.status, answer.note, actor.name, actor.user_id)
    station: dict[str, Any] | None = None
    details: dict[str, Any] = {"report": report_id, "kind": row["kind"], "note": answer.note}
    if answer.station is not None and answer.station.model_fields_set:
        ctx = station_service.FeatureContext.build(settings, conn, None, "wgs84")
        patch = StationFeaturePatch(type="Feature", properties=answer.station)
        try:
            srow = station_service.patch_station(conn, station_id, patch, None, ctx, actor, channel)
        except (InvalidInputError, ForbiddenError) as exc:
            raise _as_station_field(exc) from exc
        station = station_service.to_feature(srow, ctx)
        details["station_version"] = srow["version"]
    audit.record(conn, actor, channel, f"report.{answer.status}", f"station:{station_id}", details)
    done = queries.get(conn, report_id, days)
    assert done is not None
    out = report_json(done)
    if station is not None:
        out["station"] = station
    return out
