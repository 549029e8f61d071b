"""Hardened edges without a browser: security headers and the CSP nonce on every HTML page,
nosniff everywhere, gzip (pages, JSON errors, vector tiles with ETag/304), /docs served from
our host, and hostile names rendered as text on every HTML surface (courier page, planner
page and table, folium map, the standalone map from the server and from `yizhan coverage
map`)."""

from __future__ import annotations

import math
import re

import mapbox_vector_tile
import pytest
from markupsafe import escape as jinja_escape
from typer.testing import CliRunner

from app.config import Settings
from app.web.basemaps import tile_origins
from tests.factories import bulk_insert
from tests.hostile import PARAMS, XSS, build_in, hostile_database

JIANGHAN = (114.2875, 30.5825)


@pytest.fixture(scope="module", autouse=True)
def web_assets():
    """Leaflet, markercluster and Swagger UI in .cache/ (what `yizhan web assets` does)."""
    from app.web import assets

    assets.ensure_leaflet()
    assets.ensure_swagger_ui()


@pytest.fixture
def town(client, conn, tmp_path):
    return build_in(conn, client, tmp_path)


def policy(r) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as {directive: [sources]}."""
    out = {}
    for part in r.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def nonce_of(r) -> str:
    [n] = [s for s in policy(r)["script-src"] if s.startswith("'nonce-")]
    return n[len("'nonce-") : -1]


def inline_tags(html: str) -> list[str]:
    """Opening tags of inline scripts (no src) and of style elements."""
    tags = re.findall(r"<script\b[^>]*>|<style\b[^>]*>", html, re.I)
    return [t for t in tags if not re.search(r"\bsrc=", t)]


HTML_PAGES = [
    ("/", {}),
    ("/", {"lang": "en"}),
    ("/map", {}),
    ("/planner", PARAMS),
    ("/planner", {**PARAMS, "lang": "en", "tiles": "amap", "suggest": "3"}),
    ("/docs", {}),
]


def assert_common_headers(r) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_every_html_page_has_a_nonce_policy(client, town):
    for path, params in HTML_PAGES:
        r = client.get(path, params=params)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        assert_common_headers(r)
        csp = policy(r)
        nonce = nonce_of(r)
        assert len(nonce) >= 22  # ≥ 128 bits, base64
        assert csp["script-src"] == ["'self'", f"'nonce-{nonce}'"], path
        assert csp["style-src-elem"] == ["'self'", f"'nonce-{nonce}'"]
        assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert csp["object-src"] == ["'none'"] and csp["form-action"] == ["'self'"]
        assert set(csp["img-src"]) == {"'self'", "data:", *tile_origins()}
        tags = inline_tags(r.text)
        assert tags, path
        for tag in tags:
            assert f'nonce="{nonce}"' in tag, (path, tag)
        for src in re.findall(r'<script\b[^>]*\bsrc="([^"]*)"', r.text):
            assert src.startswith("/static/"), (path, src)
        for href in re.findall(r'<link\b[^>]*\bhref="([^"]*)"', r.text):
            assert href.startswith("/static/"), (path, href)
        # no inline event handler attribute in any tag (scripts taken out first)
        markup = re.sub(r"<script\b.*?</script>", "", r.text, flags=re.S | re.I)
        for tag in re.findall(r"<[a-zA-Z][^>]*>", markup):
            assert not re.search(r"\son[a-z]+\s*=", tag, re.I), (path, tag)


def test_the_nonce_is_fresh_for_every_response(client):
    a, b = client.get("/map"), client.get("/map")
    assert nonce_of(a) != nonce_of(b)
    assert f'nonce="{nonce_of(a)}"' in a.text and f'nonce="{nonce_of(b)}"' in b.text
    assert nonce_of(a) not in b.text


def test_other_responses_are_nosniff_and_run_nothing(client):
    for path, status in (
        ("/api/v1/amenities", 200),
        ("/api/v1/stations/999999", 404),
        ("/api/v1/stations/nearest?lat=91&lon=0", 422),
        ("/static/leaflet/leaflet.js", 200),
        ("/static/swagger-ui/swagger-ui.css", 200),
        ("/openapi.json", 200),
    ):
        r = client.get(path)
        assert r.status_code == status, path
        assert_common_headers(r)
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_docs_are_served_from_our_host(client):
    r = client.get("/docs")
    assert r.status_code == 200
    assert not re.search(r"https?://", r.text), "no third-party URL on /docs"
    assert "/static/swagger-ui/swagger-ui-bundle.js" in r.text
    assert "/static/swagger-ui/swagger-ui.css" in r.text
    assert '"validatorUrl": null' in r.text  # no badge image from validator.swagger.io
    js = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert b"SwaggerUIBundle" in js.content
    for f in ("swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"):
        assert client.get(f"/static/swagger-ui/{f}").status_code == 200, f
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["paths"]


def test_docs_without_the_files_say_how_to_get_them(client, monkeypatch):
    from app.web import docs

    monkeypatch.setattr(docs, "swagger_ui_ready", lambda: False)
    r = client.get("/docs")
    assert r.status_code == 503 and "yizhan web assets" in r.text


def test_gzip_pages_and_json_bodies(client, town):
    page = client.get("/planner", params=PARAMS, headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in page.headers["vary"].lower()
    assert page.text.rstrip().endswith("</html>")
    assert int(page.headers["content-length"]) < len(page.content) / 3
    assert nonce_of(page) in page.text  # the policy and the compressed page agree
    plain = client.get("/planner", params=PARAMS, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    spec = client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert spec.headers["content-encoding"] == "gzip" and spec.json()["openapi"]
    for path, status in (
        ("/api/v1/stations/nearest?lat=91&lon=0", 422),
        ("/api/v1/stations/999999", 404),
        ("/api/v1/stations?bbox=" + "1," * 400 + "1", 422),
    ):
        r = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == status, (path, r.text)
        body = r.json()
        assert isinstance(body["detail"], str) and body["detail"], path
        assert r.headers["content-type"].startswith("application/json")


def test_vector_tiles_gzip_keeps_etag_and_304(client, conn):
    lon, lat = JIANGHAN
    pts = [
        (lon + (i % 20) * 1e-4, lat + (i // 20) * 1e-4, ["drinking_water"], "open")
        for i in range(300)
    ]
    bulk_insert(conn, pts, prefix="GZ")
    n = 2**14
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    url = f"/api/v1/tiles/stations/14/{x}/{y}.pbf"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and len(plain.content) > 1000
    strong = plain.headers["etag"]
    assert strong.startswith('"')
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert r.content == plain.content  # httpx took the gzip off: the same tile
    assert r.headers["etag"] == strong  # the tile's state, whatever the encoding
    tile = mapbox_vector_tile.decode(r.content)
    assert len(next(iter(tile.values()))["features"]) == 300
    for tag in (strong, "W/" + strong):
        again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", tag
        assert "content-encoding" not in again.headers


# -- hostile names on every HTML surface ---------------------------------------------------


def _no_live_payload(html: str) -> None:
    low = html.lower()
    assert "<img src=x" not in low
    assert "<script>window.__xss" not in low
    for p in XSS:
        assert p not in html


def _protected(r) -> None:
    """A second line of defence: no inline script runs without this response's nonce."""
    csp = policy(r)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]


def test_payloads_are_text_on_the_courier_page(client, town):
    for lang in ("zh", "en"):
        r = client.get("/", params={"lat": "30.58", "lon": "114.30", "lang": lang})
        assert r.status_code == 200
        _no_live_payload(r.text)
        for p in XSS:
            assert str(jinja_escape(p)) in r.text  # the names and addresses, shown as text
        _protected(r)


def test_payloads_are_text_on_the_planner_page_and_its_map(client, town):
    for params in (PARAMS, {**PARAMS, "lang": "en", "tiles": "amap"}):
        for weight in ("road", *town):
            r = client.get("/planner", params={**params, "weight": weight})
            assert r.status_code == 200, r.text[:300]
            _no_live_payload(r.text)
            _protected(r)
            # the table and district choice (Jinja) and the folium map (escaped, then JSON)
            assert str(jinja_escape(XSS[0])) in r.text
            assert "\\u0026lt;img src=x onerror=window.__xss=1\\u0026gt;" in r.text
    export = client.get("/planner/map.html", params=PARAMS)
    assert export.status_code == 200
    _no_live_payload(export.text)
    _protected(export)
    nonce = nonce_of(export)
    assert all(f'nonce="{nonce}"' in t for t in inline_tags(export.text))


def test_the_standalone_map_from_the_command_line(tmp_path, monkeypatch):
    from app import cli
    from app.cli import coverage as coverage_cli

    url, _layers = hostile_database()
    monkeypatch.setattr(coverage_cli, "get_settings", lambda: Settings(database_url=url))
    for lang in ("zh", "en"):
        out = tmp_path / f"map-{lang}.html"
        done = CliRunner().invoke(
            cli.cli, ["coverage", "map", str(out), "--minutes", "5", "--lang", lang]
        )
        assert done.exit_code == 0, done.output
        doc = out.read_text("utf-8")
        _no_live_payload(doc)
        assert "\\u0026lt;img src=x onerror=window.__xss=1\\u0026gt;" in doc
        # opened from disk there are no headers: the policy is a <meta> first in <head>
        head = doc[doc.index("<head>") : doc.index("</head>")]
        meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', head)
        assert meta and head.index(meta.group(0)) < head.lower().index("<script")
        content = meta.group(1).replace("&#x27;", "'")
        [nonce] = re.findall(r"'nonce-([A-Za-z0-9_-]+)'", content.split(";")[1])
        assert "'unsafe-inline'" not in content.split(";")[1]
        assert all(f'nonce="{nonce}"' in t for t in inline_tags(doc))
        assert "frame-ancestors" not in content  # not allowed in <meta>
