"""Courier problem reports: validation, rate limiting per client, storage as plain text."""

from __future__ import annotations

import hashlib
import time
import unicodedata
from typing import Annotated, Any

from limits import RateLimitItem, parse_many, storage, strategies
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Connection

from app.errors import NotFoundError, TooManyRequestsError
from app.reports import queries
from app.reports.vocab import MAX_COMMENT, REPORT_KINDS
from app.stations import queries as station_queries


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
        if v is None:
            return None
        v = unicodedata.normalize("NFC", v).strip()
        bad = [c for c in v if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c != "\n"]
        if bad:
            raise ValueError("must be plain text (no control or formatting characters)")
        return v or None


class ReportLimiter:
    """Moving-window limits per client key (the `limits` library; memory or Redis storage)."""

    def __init__(self, spec: str, storage_uri: str = "memory://") -> None:
        self.items: list[RateLimitItem] = parse_many(spec)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def hit(self, key: str) -> None:
        """Count one report for `key`, or raise TooManyRequestsError without counting it."""
        for item in self.items:
            if not self.limiter.test(item, "reports", key):
                reset = self.limiter.get_window_stats(item, "reports", key).reset_time
                wait = max(1, int(reset - time.time()) + 1)
                raise TooManyRequestsError(
                    f"client: too many reports ({item}); try again in {wait} s", wait
                )
        for item in self.items:
            self.limiter.hit(item, "reports", key)


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
    row = queries.insert(conn, station_id, report.kind, report.comment, key)
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "kind": row["kind"],
        "comment": row["comment"],
        "status": row["status"],
        "created_at": row["created_at"].isoformat(),
        "station_open_reports": queries.open_count(conn, station_id),
    }
