"""The courier page: renders the nearest stations, escapes station text, speaks zh and en."""

from __future__ import annotations

from app.hours import store as hours_store
from tests.conftest import AUTH
from tests.factories import feature


def test_courier_page_lists_escaped_stations_in_both_languages(client, conn):
    evil = "<script>alert('x')</script>驿站"
    r = client.post(
        "/api/v1/stations",
        json=feature("W1", lon=114.288, lat=30.583, name=evil, opening_hours="24/7"),
        headers=AUTH,
    )
    assert r.status_code == 201
    hours_store.refresh(conn, "Asia/Shanghai")
    zh = client.get("/")
    assert zh.status_code == 200
    assert zh.headers["content-type"].startswith("text/html")
    assert "<script>alert('x')</script>" not in zh.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;驿站" in zh.text
    assert "开放中" in zh.text and "高德导航" in zh.text
    en = client.get("/", params={"lang": "en", "amenities": "microwave", "open_now": "true"})
    assert "Open" in en.text and "Microwave" in en.text
    assert "&lt;script&gt;" in en.text


def test_courier_page_never_500s_on_bad_input(client, conn):
    hours_store.refresh(conn, "Asia/Shanghai")
    for params in ({"lat": "abc"}, {"lat": "nan", "lon": "1"}, {"lat": "91", "lon": "0"}):
        r = client.get("/", params=params)
        assert r.status_code == 200
        assert "请输入有效的经纬度" in r.text
    r = client.get("/", params={"amenities": "sauna", "lang": "xx"})
    assert r.status_code == 200


def test_courier_page_says_when_hours_are_not_ready(client, conn):
    from sqlalchemy import text

    conn.execute(text("DELETE FROM hours_window"))  # as before the first refresh
    r = client.get("/")
    assert r.status_code == 200
    assert "开放时间数据尚未准备好" in r.text
    # without the open-now filter the page still answers
    r = client.get("/", params={"lat": "30.58", "lon": "114.29"})
    assert "找到" in r.text


def test_map_page_serves_leaflet_from_this_server(client, monkeypatch):
    from app.web import assets

    folder = assets.ensure_leaflet()  # what `yizhan web assets` does (real registry fetch)
    assert (folder / "leaflet.js").read_text("utf-8").lstrip().startswith("/* @preserve")
    assert (folder / "images" / "marker-icon.png").is_file()
    served = client.get("/static/leaflet/leaflet.js")
    assert served.status_code == 200
    assert served.content == (folder / "leaflet.js").read_bytes()
    page = client.get("/map")
    assert page.status_code == 200
    assert '<script src="/static/leaflet/leaflet.js">' in page.text
    assert "cdn" not in page.text.lower()  # nothing from third-party hosts but the tiles
    assert "驿站地图" in page.text and "电动车" in page.text
    en = client.get("/map", params={"lang": "en"}).text
    assert "Station map" in en and "e-bike" in en and "中文" in en
    monkeypatch.setattr("app.web.routes.leaflet_ready", lambda: False)
    assert "yizhan web assets" in client.get("/map").text


def test_map_page_with_amap_tiles_asks_for_gcj02(settings, conn, monkeypatch):
    from fastapi.testclient import TestClient

    from app.main import create_app

    monkeypatch.setattr("app.web.routes.leaflet_ready", lambda: True)
    app = create_app(settings.model_copy(update={"tiles": "amap"}))
    with TestClient(app) as tc:
        page = tc.get("/map").text
    assert 'var COORD = "gcj02";' in page
    assert "autonavi" in page


def test_favicon_is_an_empty_cached_answer_not_a_404(client):
    r = client.get("/favicon.ico")
    assert r.status_code == 204 and r.content == b""
    assert "max-age" in r.headers["cache-control"]
