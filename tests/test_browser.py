"""Real-browser tests: Debian's Chromium (/usr/bin/chromium, installed by scripts/lib.sh
`ensure_browser`) driven by Playwright against a real uvicorn serving the hostile town of
tests/hostile.py (XSS payloads as station, district and unit names).

Every page, at a phone (390×844) and a desktop (1280×800) size, must load with no console
error, no Content-Security-Policy violation and no request to any host but ours (map tiles
are answered locally with a blank image, never fetched); /docs must show the operations.
The payloads must stay text wherever they are shown: the courier page, the /map popups, the
planner table, the folium tooltips, legend and popups, and the standalone map of
`yizhan coverage map` opened from disk — `window.__xss` stays undefined and no `<img src=x>`
element exists. Screenshots go to /tmp/shots/.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from app.config import Settings
from app.web import assets
from app.web.basemaps import tile_origins
from tests.conftest import ADMIN_TOKEN
from tests.hostile import PARAMS, XSS, hostile_database
from tests.servers import uvicorn_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
SHOTS = Path("/tmp/shots")
#: Records every CSP violation of the page (an init script: runs before the page's own).
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.effectiveDirective + " " + (e.blockedURI || "inline") + " "
                    + (e.sourceFile || "") + ":" + e.lineNumber);
});
"""
#: Every popup and tooltip of every Leaflet layer the page defines (also layers hidden at
#: first and markers inside clusters), rendered the way Leaflet renders them (a string is
#: innerHTML, a function is called): their text.
OPEN_ALL_POPUPS = """
() => {
  var seen = new Set(), texts = [];
  function show(content, layer) {
    if (typeof content === "function") { content = content(layer); }
    var box = document.createElement("div");
    if (typeof content === "string") { box.innerHTML = content; }
    else if (content) { box.appendChild(content); }
    document.body.appendChild(box);
    texts.push(box.textContent);
  }
  function visit(layer) {
    if (!layer || seen.has(layer)) { return; }
    seen.add(layer);
    if (layer.getPopup && layer.getPopup()) { show(layer.getPopup().getContent(), layer); }
    if (layer.getTooltip && layer.getTooltip()) { show(layer.getTooltip().getContent(), layer); }
    if (layer.getLayers) { layer.getLayers().forEach(visit); }
  }
  Object.keys(window).forEach(function (k) {
    var v = window[k];
    if (v instanceof L.Map) { v.eachLayer(visit); }
    else if (v instanceof L.Layer) { visit(v); }
  });
  return texts;
}
"""


def _blank_png() -> bytes:
    """A 1×1 light grey PNG (what a blocked tile is answered with)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xee\xee\xee")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def town() -> tuple[str, dict[str, str]]:
    assets.ensure_leaflet()
    assets.ensure_swagger_ui()
    url, layers = hostile_database()
    return url, dict(layers)


@pytest.fixture(scope="module")
def server(town) -> Iterator[str]:
    env = {"DATABASE_URL": town[0], "ADMIN_TOKEN": ADMIN_TOKEN, "YIZHAN_HOURS_AUTO_REFRESH": "0"}
    with uvicorn_server(env) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert os.access(CHROMIUM, os.X_OK), (
        f"{CHROMIUM} is missing: scripts/test.sh installs it (ensure_browser: apt chromium)"
    )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Tab:
    """A page that records console errors, CSP violations and requests to other hosts."""

    def __init__(self, browser: Any, base: str | None, size: tuple[int, int]) -> None:
        self.base = base
        self.ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
        self.ctx.add_init_script(WATCH)
        self.ctx.route("**/*", self._route)
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.tiles = 0
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(msg.text)

    def _route(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if (self.base and url.startswith(self.base + "/")) or parts.scheme == "file":
            route.continue_()
        elif origin in tile_origins():
            self.tiles += 1  # never fetched: a local blank image instead
            route.fulfill(status=200, content_type="image/png", body=_blank_png())
        else:
            self.foreign.append(url)
            route.abort()

    def open(self, url: str, ready: str) -> Any:
        self.errors.clear()
        self.foreign.clear()
        r = self.page.goto(url, wait_until="load")
        try:
            self.page.wait_for_selector(ready, state="attached", timeout=15_000)
        except PlaywrightTimeout:
            text = self.page.inner_text("body")[:500]
            pytest.fail(f"{url}: no {ready} ({r.status if r else '?'}): {self.errors} {text}")
        return r

    def clean(self) -> None:
        """No console error, no CSP violation, nothing fetched from another host, no XSS."""
        csp = self.page.evaluate("window.__csp")
        assert csp == [], csp
        assert self.errors == [], self.errors
        assert self.foreign == [], self.foreign
        assert self.page.evaluate("typeof window.__xss") == "undefined"
        assert self.page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0

    def assert_csp_enforced(self) -> None:
        """A second line of defence is live: a planted inline handler is refused (and
        reported), whatever the escaping did."""
        before = len(self.page.evaluate("window.__csp"))
        self.page.evaluate(
            "document.body.insertAdjacentHTML('beforeend',"
            ' \'<img src="data:," onerror="window.__planted = 1">\')'
        )
        self.page.wait_for_function(f"window.__csp.length > {before}", timeout=5_000)
        assert self.page.evaluate("typeof window.__planted") == "undefined"

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"))

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture
def tab_factory(browser) -> Iterator[Any]:
    tabs: list[Tab] = []

    def make(base: str | None, size: tuple[int, int] = VIEWPORTS["desktop"]) -> Tab:
        tabs.append(Tab(browser, base, size))
        return tabs[-1]

    yield make
    for t in tabs:
        t.close()


def _query(params: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


PAGES = (
    ("courier", "/?lat=30.58&lon=114.30", "li.station"),
    ("map", "/map", "path.leaflet-interactive"),
    ("planner", f"/planner?{_query(PARAMS)}", ".yz-legend"),
    ("docs", "/docs", ".opblock"),
)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_pages_load_cleanly(server, tab_factory, size):
    tab = tab_factory(server, VIEWPORTS[size])
    for name, path, ready in PAGES:
        r = tab.open(server + path, ready)
        assert r.status == 200, (path, r.status)
        assert "'nonce-" in r.headers["content-security-policy"]
        tab.clean()
        tab.shot(f"{name}-{size}")
    # /docs lists the operations, grouped by tag
    assert tab.page.locator(".opblock").count() >= 20
    assert tab.page.locator(".opblock-tag").count() >= 5


def test_courier_page_shows_payloads_as_text(server, tab_factory):
    tab = tab_factory(server)
    for lang in ("zh", "en"):
        tab.open(f"{server}/?lat=30.58&lon=114.30&lang={lang}", "li.station")
        names = tab.page.locator("li.station .name").all_inner_texts()
        assert set(XSS) <= set(names), names
        # the navigation buttons (Amap, Baidu, OSM) are plain https links to those apps
        hrefs = tab.page.eval_on_selector_all("li.station .nav a", "as => as.map(a => a.href)")
        assert len(hrefs) == 3 * len(names) and all(h.startswith("https://") for h in hrefs)
        tab.clean()
        tab.assert_csp_enforced()


def test_map_popups_show_payloads_as_text(server, tab_factory):
    tab = tab_factory(server)
    #: the station markers (open: green); a click also draws an isochrone, whose polygons
    #: are interactive paths too
    station = 'path.leaflet-interactive[fill="#1a7f37"]'
    tab.open(f"{server}/map", station)
    markers = tab.page.locator(station)
    assert markers.count() == 4
    shown = []
    for i in range(4):
        close = tab.page.locator(".leaflet-popup-close-button")
        if close.count():
            close.dispatch_event("click")
            tab.page.wait_for_selector(".leaflet-popup", state="detached")
        markers.nth(i).dispatch_event("click")
        popup = tab.page.wait_for_selector(".leaflet-popup-content .popup-name")
        shown.append(popup.inner_text())
    assert set(XSS) <= set(shown), shown
    tab.page.wait_for_load_state("networkidle")  # the service-area / isochrone fetches
    tab.clean()
    tab.assert_csp_enforced()
    tab.shot("map-popup")


def test_planner_table_and_folium_map_show_payloads_as_text(server, town, tab_factory):
    _url, layers = town
    xss_layer = next(name for name, unit in layers.items() if unit == XSS[0])
    tab = tab_factory(server)
    for lang in ("zh", "en"):
        params = {**PARAMS, "lang": lang, "weight": xss_layer}
        tab.open(f"{server}/planner?{_query(params)}", ".yz-legend")
        table = tab.page.locator("table.districts:not(.gap-pieces):not(.daynight)").inner_text()
        labels = " ".join(tab.page.locator(".yz-label").all_inner_texts())
        legend = tab.page.locator(".yz-legend").inner_text()
        for text in XSS:
            assert text in table and text in labels, (lang, text)
        assert XSS[0] in legend  # the demand unit
        texts = tab.page.evaluate(OPEN_ALL_POPUPS)
        popups = " ".join(texts)
        assert all(text in popups for text in XSS), popups[:500]
        tab.clean()
        tab.assert_csp_enforced()
    tab.shot("planner-xss")


def test_standalone_map_file_runs_offline_and_keeps_payloads_text(
    town, tab_factory, tmp_path, monkeypatch
):
    from app import cli
    from app.cli import coverage as coverage_cli

    url, _layers = town
    monkeypatch.setattr(coverage_cli, "get_settings", lambda: Settings(database_url=url))
    out = tmp_path / "map.html"
    done = CliRunner().invoke(cli.cli, ["coverage", "map", str(out), "--minutes", "5"])
    assert done.exit_code == 0, done.output
    tab = tab_factory(None)
    tab.open(out.as_uri(), ".yz-legend")
    texts = " ".join(tab.page.evaluate(OPEN_ALL_POPUPS))
    assert all(text in texts for text in XSS)
    tab.clean()
    tab.assert_csp_enforced()  # the file's own <meta> policy
    assert tab.tiles > 0  # the tiles are the one thing it asks the internet for
    tab.shot("standalone-map")


def test_docs_authorize_logs_in_and_calls_a_protected_operation(server, town, tab_factory):
    """A district admin logs in through Swagger UI's Authorize dialog (the OAuth2 password
    flow the OpenAPI document declares), then runs GET /api/v1/me: 200, their hostile display
    name shown as text, nothing blocked by the CSP."""
    from sqlalchemy import create_engine, text

    from app.accounts.credentials import Passwords

    password = "river-plum-7-blossom"
    hashed = Passwords(1, 1024, 1).hash(password)  # costs differ from the server's: rehashed
    eng = create_engine(town[0])
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO users (username, display_name, role, districts, password_hash) "
                "VALUES ('docs-da', :n, 'district_admin', '{4201}', :h) "
                "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash"
            ),
            {"n": XSS[0], "h": hashed},
        )
    eng.dispose()
    tab = tab_factory(server)
    tab.open(server + "/docs", ".btn.authorize")
    page = tab.page
    page.click(".btn.authorize")
    page.fill("input#oauth_username", "docs-da")
    page.fill("input#oauth_password", password)
    page.click(".auth-btn-wrapper .btn.modal-btn.auth.authorize")
    page.wait_for_selector(".modal-ux-content h6:has-text('Authorized')", timeout=10_000)
    page.click(".auth-btn-wrapper .btn-done")
    op = "#operations-accounts-me_api_v1_me_get"
    page.click(op)
    page.click(f"{op} .try-out__btn")
    page.click(f"{op} .execute")
    status = f"{op} .live-responses-table tbody .response-col_status"
    page.wait_for_selector(status, timeout=10_000)
    assert page.inner_text(status).strip().startswith("200")
    body = page.inner_text(f"{op} .live-responses-table .microlight")
    assert '"username": "docs-da"' in body and '"role": "district_admin"' in body
    tab.shot("docs-authorized")
    tab.clean()


def test_map_colours_and_filters_by_star_level(server, town, tab_factory):
    """Planners colour the map by level and keep only stations of at least N stars: the
    markers drawn are exactly the open stations in view with that level (counted here from
    the database)."""
    from sqlalchemy import create_engine, text

    eng = create_engine(town[0])
    with eng.begin() as c:
        ids = list(
            c.execute(
                text("SELECT id FROM stations WHERE status IN ('open', 'temporarily_closed')")
            ).scalars()
        )
        levels = {sid: (i % 6) or None for i, sid in enumerate(sorted(ids))}
        for sid, lv in levels.items():
            c.execute(text("UPDATE stations SET level = :l WHERE id = :i"), {"l": lv, "i": sid})
    eng.dispose()
    tab = tab_factory(server)
    tab.open(server + "/map", "path.leaflet-interactive")
    page = tab.page
    page.select_option("#colour", "level")
    page.locator("#legend-level").wait_for(state="visible")
    page.wait_for_timeout(800)
    drawn = page.eval_on_selector_all(
        "path.leaflet-interactive[data-level]",
        "els => els.map(e => [Number(e.getAttribute('data-level')), e.getAttribute('fill')])",
    )
    palette = {1: "#f7fbff", 2: "#c6dbef", 3: "#6baed6", 4: "#2171b5", 5: "#08306b", 0: "#999"}
    assert drawn and all(fill == palette[lv] for lv, fill in drawn), drawn
    assert len({lv for lv, _ in drawn}) >= 3 and 0 in {lv for lv, _ in drawn}
    total = len(drawn)
    page.select_option("#level-min", "3")
    markers = page.locator("path.leaflet-interactive[data-level]")
    for _ in range(50):  # the page's CSP forbids eval, so no wait_for_function: poll
        if markers.count() < total:
            break
        page.wait_for_timeout(100)
    kept = page.eval_on_selector_all(
        "path.leaflet-interactive[data-level]",
        "els => els.map(e => Number(e.getAttribute('data-level')))",
    )
    assert kept and all(lv >= 3 for lv in kept)
    assert len(kept) == sum(1 for lv, _ in drawn if lv >= 3)
    tab.shot("map-levels")
    tab.clean()
