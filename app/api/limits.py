"""ASGI middleware that refuses request bodies over a size limit before the app reads them.

One limit for everything (`YIZHAN_MAX_BODY_BYTES`, 64 KiB), except the few (method, path)
pairs given in `large_bodies` with their own limit: admin uploads such as
`PUT /api/v1/districts` and `PUT /api/v1/demand/{name}` (`YIZHAN_MAX_UPLOAD_BYTES`, 20 MiB),
whose routes check the token before reading the body. A path ending in "/" covers every path
below it. A declared (Content-Length) or streamed (chunked) body over the limit is answered
413 with the JSON error shape, whatever the route would have made of the cut-off body.

Also `QueryNulGuard`: a NUL character in an API query string is a 422 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.responses import dumps


class BodySizeLimit:
    """413 for a declared or streamed body larger than `max_bytes` (or the limit of its
    (method, path) in `large_bodies`); nothing reaches the app."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        large_bodies: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.large_bodies = dict(large_bodies or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", ""), scope.get("path", "")
        limit = self.large_bodies.get((method, path))
        if limit is None:  # a key ending in "/" covers every path below it
            for (m, p), value in self.large_bodies.items():
                if m == method and p.endswith("/") and path.startswith(p):
                    limit = value
                    break
        max_bytes = self.max_bytes if limit is None else limit
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reject(send, 400, "Content-Length: not an integer")
                    return
                if declared > max_bytes:
                    await self._reject(send, 413, self._too_large(max_bytes))
                    return
        received = 0
        too_large = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if too_large and not response_started:
                # The app's own answer to the body it could not read (FastAPI turns an
                # exception from `receive` into "400 error parsing the body"): dropped, the
                # 413 below replaces it.
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except* _TooLarge:
            pass  # raised from `receive`, through the app (alone or in a task group's group)
        if too_large and not response_started:
            await self._reject(send, 413, self._too_large(max_bytes))

    @staticmethod
    def _too_large(max_bytes: int) -> str:
        return f"body: request body larger than {max_bytes} bytes (请求体过大)"

    @staticmethod
    async def _reject(send: Send, status: int, detail: str) -> None:
        body = dumps({"detail": detail, "field": "body"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


NUL_MESSAGE = "must not contain NUL characters (不能包含 NUL 字符)"


class QueryNulGuard:
    """422 naming the parameter for a NUL character (`%00`) anywhere in the query string of
    a path under one of `prefixes` (the API), before any route sees it: PostgreSQL text
    cannot hold NUL, and no parameter of ours has a use for one. One check for every query
    parameter, present and future. (Path parameters are typed: ids are integers, codes and
    layer names have patterns or `NoNul`; JSON text fields use the schemas' text types.)"""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = ("/api/",)) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(self.prefixes):
            raw: bytes = scope.get("query_string", b"")
            if b"%00" in raw or b"\x00" in raw:
                names = nul_parameters(raw)
                if names:
                    await _reject_nul(send, names)
                    return
        await self.app(scope, receive, send)


def nul_parameters(query_string: bytes) -> list[str]:
    """Names of the parameters whose decoded name or value holds a NUL, in order, once each
    (a NUL in the name itself is reported as the name with the NUL shown as `\\0`)."""
    out: list[str] = []
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "\\0")
            if shown not in out:
                out.append(shown)
    return out


async def _reject_nul(send: Send, names: list[str]) -> None:
    errors = [{"field": n, "loc": ["query", n], "msg": NUL_MESSAGE} for n in names]
    body = dumps(
        {
            "detail": "; ".join(f"{n}: {NUL_MESSAGE}" for n in names),
            "field": names[0],
            "errors": errors,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
