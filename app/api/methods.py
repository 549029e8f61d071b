"""`Allow` that names every method a path supports: on 405, and as the answer to OPTIONS.

Starlette answers a method a route does not take with 405 and `Allow` naming that one route's
methods; FastAPI makes one route per method, so `POST /api/v1/stations/nearest` used to say
`Allow: GET` while `GET /api/v1/stations` and `POST /api/v1/stations` are two routes and a PUT
there said `Allow: GET` or `Allow: POST`. Here the router itself is asked, for each method,
whether a route would take the path: that is the `Allow` of every 405, and `OPTIONS` on a
path some route takes answers 204 with it (no CORS: there are no cross-origin clients).
"""

from __future__ import annotations

from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Methods probed, in the order `Allow` lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _routed(router: Router, scope: Scope, method: str) -> bool:
    """Whether some route (not a mount: those take any method) takes `method` on the path."""
    probe = {key: value for key, value in scope.items() if key != "fastapi"}
    probe["method"] = method
    return any(
        not isinstance(route, Mount) and route.matches(probe)[0] is Match.FULL
        for route in router.routes
    )


def allowed_methods(router: Router, scope: Scope) -> list[str]:
    """The methods the routes of `router` take on the scope's path, OPTIONS last; empty when
    no route has the path."""
    found = [method for method in METHODS if _routed(router, scope, method)]
    return [*found, "OPTIONS"] if found else []


class AllowedMethods:
    """ASGI middleware: `OPTIONS` → 204 with `Allow` (unless a route takes OPTIONS itself),
    and a correct `Allow` on every 405 the app answers."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and not _routed(self.router, scope, "OPTIONS"):
            allow = allowed_methods(self.router, scope)
            if allow:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [(b"allow", ", ".join(allow).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = allowed_methods(self.router, scope)
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                if allow:
                    headers.append((b"allow", ", ".join(allow).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
