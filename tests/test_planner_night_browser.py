"""The planner's day vs night comparison in a real browser (Debian's Chromium through
Playwright, as tests/test_browser.py), at a phone (390×844) and a desktop (1280×800) size:
the page loads with no console error, no CSP violation and no request to another host, the
comparison table shows the stations open by day and at night per district as worked out by
hand; its screenshots go to /tmp/shots/ (the ones in docs/screenshots are of the Wuhan demo).

The town: the street grid of tests/hostile.py (three east-west streets 2 km long, joined every
200 m), three districts side by side and five stations with different hours. On a working
weekday at 12:00 all five are open; at 22:00 only the two open around the clock:

    江岸区 (x < 700 m):      24/7 at x=200, 08:00-18:00 at x=600      → day 2, night 1
    江汉区 (700–1,400 m):    08:00-20:00 at x=1000                     → day 1, night 0
    硚口区 (x ≥ 1,400 m):    24/7 at x=1600, 09:00-17:00 at x=1800     → day 2, night 1
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import migrate
from app.db.engine import make_engine
from app.main import create_app
from app.web import assets
from tests.conftest import ADMIN_TOKEN, AUTH, fresh_database
from tests.factories import feature
from tests.hostile import streets
from tests.servers import uvicorn_server
from tests.test_browser import VIEWPORTS, browser, tab_factory  # noqa: F401 (fixtures)
from tests.test_network_api import east, load, north

SHOTS = Path("/tmp/shots")
DISTRICTS = (
    ("420102", "江岸区", "Jiang'an", -300, 700),
    ("420103", "江汉区", "Jianghan", 700, 1400),
)
DISTRICTS += (("420104", "硚口区", "Qiaokou", 1400, 2300),)
STATIONS = (
    (200, 0, "江岸 24 小时驿站", "24/7"),
    (600, 400, "江岸 日间驿站", "08:00-18:00"),
    (1000, 200, "江汉 延时驿站", "08:00-20:00"),
    (1600, 0, "硚口 24 小时驿站", "24/7"),
    (1800, 400, "硚口 日间驿站", "09:00-17:00"),
)
EXPECTED = {"420102": (2, 1), "420103": (1, 0), "420104": (2, 1), "all": (5, 2)}
#: The default day and night (the next working weekday at 12:00 and 22:00: whichever day it
#: is, the hours above give the same counts), the page itself at 22:00.
QUERY = "minutes=5&resolution=10&compare=1&at=weekday-22"


def _collection() -> dict:
    feats = []
    for code, name, name_en, w, e in DISTRICTS:
        ring = [[east(x), north(y)] for x, y in ((w, -300), (e, -300), (e, 700), (w, 700))]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"code": code, "name": name, "name_en": name_en},
            }
        )
    return {"type": "FeatureCollection", "features": feats}


@pytest.fixture(scope="module")
def night_town() -> str:
    assets.ensure_leaflet()
    url = fresh_database("night")
    migrate.upgrade(url)
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, hours_auto_refresh=False)
    engine = make_engine(settings)
    try:
        with tempfile.TemporaryDirectory() as tmp, engine.begin() as conn:
            load(conn, Path(tmp), streets())
    finally:
        engine.dispose()
    with TestClient(create_app(settings)) as client:
        r = client.put(
            "/api/v1/districts",
            content=json.dumps(_collection()),
            headers={"Content-Type": "application/geo+json", **AUTH},
        )
        assert r.status_code == 200, r.text
        for i, (x, y, name, hours) in enumerate(STATIONS):
            f = feature(f"NIGHT-{i}", lon=east(x), lat=north(y), name=name, opening_hours=hours)
            r = client.post("/api/v1/stations", json=f, headers=AUTH)
            assert r.status_code == 201, r.text
    return url


@pytest.fixture(scope="module")
def server(night_town) -> Iterator[str]:
    env = {"DATABASE_URL": night_town, "ADMIN_TOKEN": ADMIN_TOKEN, "YIZHAN_HOURS_AUTO_REFRESH": "0"}
    with uvicorn_server(env) as base:
        yield base


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_day_vs_night_comparison_in_the_browser(server, tab_factory, size):  # noqa: F811
    tab = tab_factory(server, VIEWPORTS[size])
    r = tab.open(f"{server}/planner?{QUERY}", "#daynight table.daynight")
    assert r.status == 200
    tab.clean()
    page = tab.page
    table = page.locator("#daynight table.daynight")
    for code, (day, night) in EXPECTED.items():
        row = table.locator(f'tr[data-code="{code}"]')
        assert row.locator('td[data-k="day_stations"]').inner_text() == str(day), code
        assert row.locator('td[data-k="night_stations"]').inner_text() == str(night), code
    # the page itself is at 22:00: two stations open, and the night's gaps are listed
    assert "2 个开放驿站" in page.locator("p.headline").inner_text()
    assert page.locator("#daynight .gaps-night li").count() >= 1
    summary = page.locator("#daynight .dn-summary").inner_text()
    assert "工作日 12:00 有 5 个开放驿站，工作日 22:00 有 2 个" in summary
    assert page.locator("#daynight h2").inner_text() == "昼夜对比：工作日 12:00 与 工作日 22:00"
    # the comparison is on screen and readable: nothing wider than the viewport but the table
    # (which scrolls inside its box)
    section = page.locator("#daynight")
    section.scroll_into_view_if_needed()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORTS[size][0], width
    SHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SHOTS / f"planner-day-night-{size}.png"))
