"""Security headers on every response (pure ASGI middleware) and the CSP nonce of a request.

Every response gets `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
`Referrer-Policy: strict-origin-when-cross-origin` (the Amap / Baidu / OSM navigation links
are plain links: they keep working, and learn only our origin). HTML responses get a
Content-Security-Policy:

* `script-src 'self' 'nonce-…'`: scripts from our host, or inline ones carrying this
  response's nonce (fresh for every request, 144 random bits). No `'unsafe-inline'`: an
  injected `<script>` or `onerror=` handler does not run even if escaping were ever missed.
  Templates put the nonce on their inline scripts; folium's and Swagger UI's generated
  markup gets it from `add_nonce`.
* `style-src-elem 'self' 'nonce-…'` (a `<style>` element needs the nonce) but
  `style-src-attr 'unsafe-inline'`: Leaflet's and folium's markup carries `style="…"`
  attributes (legend swatches, cluster icons, marker HTML) that cannot take a nonce. A style
  attribute cannot run script; what CSS could leak is confined by `img-src`/`connect-src`.
  `style-src 'self' 'unsafe-inline'` is only the fallback of browsers without CSP level 3.
* `img-src 'self' data:` and the base-map tile hosts (passed in: `basemaps.tile_origins()`),
  `connect-src 'self'`, `object-src 'none'`, `base-uri 'none'`, `form-action 'self'`.
* `frame-ancestors 'none'` (and `X-Frame-Options: DENY`): no page of ours frames another
  (the planner embeds its folium map inline, not in an iframe), so nothing may frame us.

Other responses (JSON, GeoJSON, tiles, CSV, static files) get
`default-src 'none'; frame-ancestors 'none'`: opened directly, they can run nothing.

ETags are left as the routes made them, also when the GZip middleware (inside this one)
compresses the body: they name the resource's state (a station's version for If-Match, a
tile's digest for If-None-Match → 304), which the encoding does not change, and nothing here
serves byte ranges, where a strong tag per encoding would matter.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Where the request's nonce is kept (`request.state.csp_nonce`).
NONCE_KEY = "csp_nonce"
NON_HTML_CSP = "default-src 'none'; frame-ancestors 'none'"
_TAG = re.compile(r"<(script|style)\b(?![^>]*\b(?:nonce|src)=)", re.IGNORECASE)


def html_policy(nonce: str, img_hosts: Iterable[str] = (), *, meta: bool = False) -> str:
    """The Content-Security-Policy of an HTML response with this nonce (`meta`: for a
    `<meta http-equiv>` element, which cannot carry frame-ancestors)."""
    imgs = " ".join(["'self'", "data:", *img_hosts])
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        f"style-src-elem 'self' 'nonce-{nonce}'",
        "style-src-attr 'unsafe-inline'",
        f"img-src {imgs}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
    return "; ".join(directives if meta else [*directives, "frame-ancestors 'none'"])


def csp_nonce(request: Request) -> str:
    """This request's nonce ('' when the middleware is not installed)."""
    state = request.scope.get("state") or {}
    return str(state.get(NONCE_KEY, ""))


def add_nonce(markup: str, nonce: str) -> str:
    """Give every inline `<script>` and `<style>` tag of generated markup (folium's, Swagger
    UI's) the nonce (`<script src>` of our host needs none). Only for markup we generate, in
    which every text from data is escaped."""
    if not nonce:
        return markup
    return _TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', markup)


class SecurityHeaders:
    """Pure ASGI middleware: a fresh nonce per request, the headers above on every
    response (headers a route set itself are kept)."""

    def __init__(self, app: ASGIApp, img_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.img_hosts = tuple(img_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})[NONCE_KEY] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").lower().startswith("text/html")
                policy = html_policy(nonce, self.img_hosts) if html else NON_HTML_CSP
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
