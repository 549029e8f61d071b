"""The exception handlers that give every error the one JSON shape of app/errors.py (and a
bilingual page to browsers when the service is unavailable)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.api.responses import JSONBytesResponse
from app.errors import (
    DomainError,
    ServiceUnavailableError,
    UnauthorizedError,
    status_for,
    validation_body,
)

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
