"""ASGI middleware that refuses request bodies over a size limit before the app reads them.

One limit for everything (`YIZHAN_MAX_BODY_BYTES`, 64 KiB), except the few (method, path)
pairs given in `large_bodies` with their own limit: admin uploads such as
`PUT /api/v1/districts` and `PUT /api/v1/demand/{name}` (`YIZHAN_MAX_UPLOAD_BYTES`, 20 MiB),
whose routes check the token before reading the body. A path ending in "/" covers every path
below it.
"""

from __future__ import annotations

from collections.abc import Mapping

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
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(send, 413, self._too_large(max_bytes))

    @staticmethod
    def _too_large(max_bytes: int) -> str:
        return f"body: request body larger than {max_bytes} bytes"

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
