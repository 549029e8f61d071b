"""Domain exceptions, their HTTP status in one table, and one JSON error shape.

Every error body is `{"detail": "<message naming the field>"}`; validation errors add
`"errors": [{"field", "loc", "msg"}]` so clients can highlight each bad field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.api.responses import JSONBytesResponse


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
    """Shape pydantic errors as `{"detail": "field: msg; …", "errors": [...]}`."""
    items = []
    for err in errors:
        field = _field_of(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        items.append({"field": field, "loc": list(err.get("loc", ())), "msg": msg})
    return {
        "detail": "; ".join(f"{i['field']}: {i['msg']}" for i in items),
        "errors": items,
    }


#: The page a browser gets when the service cannot answer for now (no user input in it).
UNAVAILABLE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>暂时无法服务 · Temporarily unavailable</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em">
<h1>暂时无法服务</h1>
<p>驿站服务暂时无法连接数据库，请稍后刷新本页（约 {retry} 秒后）。</p>
<h2 lang="en">Temporarily unavailable</h2>
<p lang="en">The service cannot reach its database right now. Please reload this page in about
{retry} seconds.</p>
</body></html>
"""


def wants_html(request: Request) -> bool:
    """Whether the client is a browser asking for one of our pages (not the API)."""
    path = request.url.path
    if path.startswith("/api/") or path in ("/healthz", "/readyz", "/openapi.json"):
        return False
    return "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if isinstance(exc, ServiceUnavailableError) and wants_html(request):
            retry = exc.retry_after or 5
            return HTMLResponse(
                UNAVAILABLE_PAGE.format(retry=retry),
                status_code=503,
                headers={"Retry-After": str(retry)},
            )
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.field:
            body["field"] = exc.field
        headers = {}
        if isinstance(exc, UnauthorizedError):
            headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONBytesResponse(body, status_code=status_for(exc), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONBytesResponse:
        return JSONBytesResponse(validation_body([dict(e) for e in exc.errors()]), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONBytesResponse:
        # A bug: logged by the server with its traceback; the client still gets the one shape.
        return JSONBytesResponse({"detail": "internal error (内部错误)"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONBytesResponse:
        return JSONBytesResponse(
            {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )
