"""Domain exceptions, their HTTP status in one table, and one JSON error shape.

Every error body is `{"detail": "<message naming the field>"}`; validation errors add
`"errors": [{"field", "loc", "msg"}]` so clients can highlight each bad field.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of errors the API reports to clients; `field` names the offending input and
    `retry_after` (seconds) becomes a `Retry-After` header for temporary failures."""

    def __init__(
        self, detail: str, field: str | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


class NotFoundError(DomainError):
    """The addressed resource does not exist."""


class ConflictError(DomainError):
    """The write collides with existing data (e.g. a duplicate external_id)."""


class PreconditionFailedError(DomainError):
    """An If-Match version no longer matches: someone else changed the resource."""


class InvalidInputError(DomainError):
    """Input that passed parsing but is semantically wrong."""


class UnauthorizedError(DomainError):
    """Missing or wrong credentials."""


class ForbiddenError(DomainError):
    """Authenticated, but the actor's role or scope does not allow this (403)."""


class PayloadTooLargeError(DomainError):
    """The request body exceeds the configured limit."""


class PreconditionRequiredError(DomainError):
    """A conditional request was required (RFC 6585): PATCH without If-Match."""


class TooManyRequestsError(DomainError):
    """A client sent more requests than its rate limit allows."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, field="client", retry_after=retry_after)


class ServiceUnavailableError(DomainError):
    """A capability is switched off or its backing service is down."""


STATUS_BY_ERROR: dict[type[DomainError], int] = {
    InvalidInputError: 422,
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    PayloadTooLargeError: 413,
    PreconditionRequiredError: 428,
    TooManyRequestsError: 429,
    ServiceUnavailableError: 503,
}


def status_for(exc: DomainError) -> int:
    """The HTTP status of a domain error (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Shape pydantic errors as `{"detail": "field: msg; …", "field": <the first>,
    "errors": [...]}`."""
    items = []
    for err in errors:
        field = _field_of(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        items.append({"field": field, "loc": list(err.get("loc", ())), "msg": msg})
    return {
        "detail": "; ".join(f"{i['field']}: {i['msg']}" for i in items),
        "field": items[0]["field"] if items else "body",
        "errors": items,
    }
