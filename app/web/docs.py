"""/docs: Swagger UI served from this host (no CDN), its inline start-up script nonced.

The files come from `yizhan web assets` (`app.web.assets.ensure_swagger_ui`, the npm package
swagger-ui-dist, SHA-256 pinned) and are served at /static/swagger-ui. Swagger UI's validator
badge would load an image from validator.swagger.io: it is switched off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.api.headers import add_nonce, csp_nonce
from app.web.assets import swagger_ui_ready

#: Where main.py mounts `.cache/swagger-ui/`.
STATIC = "/static/swagger-ui"

router = APIRouter(include_in_schema=False)

_MISSING = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>API docs</title></head>
<body><p>API 文档的 Swagger UI 文件尚未下载：请运行 <code>yizhan web assets</code>
（scripts/demo.sh 会运行它）。</p>
<p>Swagger UI's files are not downloaded yet: run <code>yizhan web assets</code>
(scripts/demo.sh does it). The OpenAPI document is at <a href="{url}">{url}</a>.</p>
</body></html>"""


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    """Interactive API documentation (Swagger UI) from our own host."""
    openapi_url = request.app.openapi_url or "/openapi.json"
    if not swagger_ui_ready():
        return HTMLResponse(_MISSING.format(url=openapi_url), status_code=503)
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} · API",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    )
    body = bytes(page.body).decode("utf-8")
    return HTMLResponse(add_nonce(body, csp_nonce(request)))
