"""The planner page (/planner): the folium coverage map, the district table and the downloads,
on a small hand-made street grid with two districts and three stations.

The grid: three east-west streets (y = 0, 200, 400 m) 2 km long, joined every 200 m by
north-south streets; district 420102 is the west half (x < 1 km), 420103 the east half. The
target is 5 minutes on foot (417 m), so the middle of the grid is a gap.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from itertools import pairwise

import pytest
from sqlalchemy import text

from app.coverage.service import Pending, Run, make_params
from app.geo import coords
from app.web import maps
from tests.test_network_api import LAT, create, east, line, load, north

EVIL = "<script>alert(1)</script>"
BRACES = "{{ 7*7 }}驿站"
PARAMS = {"minutes": "5", "resolution": "9"}


@pytest.fixture(scope="module", autouse=True)
def leaflet_assets():
    """Leaflet and Leaflet.markercluster in .cache/ (what `yizhan web assets` does; a real
    registry fetch the first time)."""
    from app.web import assets

    assets.ensure_leaflet()
    assert maps.assets_ready()


@pytest.fixture
def grid_town(conn, tmp_path):
    feats = []
    for y in (0, 200, 400):
        xs = list(range(0, 2001, 200))
        feats += [line([(east(a), north(y)), (east(b), north(y))]) for a, b in pairwise(xs)]
    for x in range(0, 2001, 200):
        feats += [
            line([(east(x), north(a)), (east(x), north(b))]) for a, b in ((0, 200), (200, 400))
        ]
    version = load(conn, tmp_path, feats)
    mid = east(1000)
    for code, name, name_en, w, e in (
        ("420102", "江岸区", "Jiang'an", east(-300), mid),
        ("420103", "江汉区", "Jianghan", mid, east(2300)),
    ):
        conn.execute(
            text(
                "INSERT INTO districts (code, name, name_en, geom, source) VALUES (:c, :n, :ne, "
                "ST_Multi(ST_MakeEnvelope(:w, :s, :e, :nn, 4326)), 'test')"
            ),
            {
                "c": code,
                "n": name,
                "ne": name_en,
                "w": w,
                "e": e,
                "s": north(-300),
                "nn": north(700),
            },
        )
    return version


@pytest.fixture
def stations(client, grid_town):
    """Three stations: an evil name and a Jinja-looking name in the west, a plain one east."""
    evil = create(client, "EVIL", east(200), LAT)
    braces = create(client, "BRACES", east(400), north(400))
    plain = create(client, "PLAIN", east(1800), north(400))
    for sid, name in ((evil, EVIL), (braces, BRACES), (plain, "江汉路驿站")):
        r = client.patch(
            f"/api/v1/stations/{sid}",
            json={"type": "Feature", "properties": {"name": name}},
            headers={"Authorization": "Bearer test-admin-token", "If-Match": "*"},
        )
        assert r.status_code == 200, r.text
    return {"evil": evil, "braces": braces, "plain": plain}


def _run(client, conn, **kw) -> Run:
    """The run the page used: same engine, same parameters, from the engine's cache."""
    engine = client.app.state.coverage
    params = make_params(minutes=int(kw.get("minutes", 5)), resolution=int(kw.get("resolution", 9)))
    inputs = engine.read_inputs(conn, params, time_zone="Asia/Shanghai")
    run = engine.cached(inputs.key)
    assert run is not None, "the page should have computed and cached this run"
    return run


def _table(html: str) -> dict[str, dict[str, str]]:
    """{row code: {column key: data-v}} of the district table (tbody rows and the tfoot)."""
    out = {}
    for m in re.finditer(r'<tr data-code="([^"]+)"[^>]*>(.*?)</tr>', html, re.S):
        out[m.group(1)] = dict(re.findall(r'data-k="([^"]+)" data-v="([^"]*)"', m.group(2)))
    return out


def _same(shown: str, value: object) -> bool:
    if value is None:
        return shown == "None"
    return float(shown) == pytest.approx(float(value), rel=0, abs=0)


def test_page_renders_in_zh_and_en(client, stations):
    zh = client.get("/planner", params=PARAMS)
    assert zh.status_code == 200, zh.text
    assert zh.headers["content-type"].startswith("text/html")
    assert "驿站规划" in zh.text and "分区统计" in zh.text and "江岸区" in zh.text
    assert 'class="folium-map"' in zh.text
    assert set(_table(zh.text)) == {"420102", "420103", "all"}
    en = client.get("/planner", params={**PARAMS, "lang": "en"})
    assert en.status_code == 200
    assert "service-circle coverage" in en.text and "Jiang&#39;an" in en.text
    assert "By district" in en.text and "中文" in en.text


def test_names_from_data_stay_text(client, stations):
    for params in (PARAMS, {**PARAMS, "lang": "en", "tiles": "amap"}):
        page = client.get("/planner", params=params).text
        assert "<script>alert(1)" not in page
        # escaped for HTML, then JSON-encoded by folium (& → \u0026)
        assert "\\u0026lt;script\\u0026gt;alert(1)\\u0026lt;/script\\u0026gt;" in page
        # folium renders its output a second time as a Jinja template: braces are neutralised
        assert "\\u0026#123;\\u0026#123; 7*7 \\u0026#125;\\u0026#125;" in page
        assert '"49' not in page
    export = client.get("/planner/map.html", params=PARAMS).text
    assert "<script>alert(1)" not in export
    assert "\\u0026lt;script\\u0026gt;alert(1)" in export


def test_escape_helper():
    assert (
        maps.esc("<b>{{x}}</b> & 'q'")
        == "&lt;b&gt;&#123;&#123;x&#125;&#125;&lt;/b&gt; &amp; &#x27;q&#x27;"
    )


def test_amap_draws_gcj02_and_osm_wgs84(client, stations):
    lon, lat = east(1800), north(400)
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    assert abs(glon - lon) > 1e-4  # the offset is hundreds of metres here
    p = maps.PRECISION

    def row(la: float, lo: float) -> str:
        return json.dumps([round(la, p), round(lo, p)])[:-1]  # "[lat, lon" of a station row

    amap = client.get("/planner", params={**PARAMS, "tiles": "amap"}).text
    assert "autonavi.com" in amap
    assert row(glat, glon) in amap
    assert row(lat, lon) not in amap
    assert f"{round(lat, p)}," not in amap and f"{round(lon, p)}]" not in amap
    osm = client.get("/planner", params={**PARAMS, "tiles": "osm"}).text
    assert "tile.openstreetmap.org" in osm
    assert row(lat, lon) in osm and row(glat, glon) not in osm


def test_table_and_map_show_the_runs_numbers(client, conn, stations):
    page = client.get("/planner", params={**PARAMS, "lang": "en"}).text
    run = _run(client, conn)
    summary = run.summary()
    table = _table(page)
    for r in [*summary["districts"], {**summary["overall"], "code": "all"}]:
        shown = table[r["code"]]
        within = {w["minutes"]: w for w in r["within"]}
        ext = r["extent"]
        expect = {
            "district_area_km2": ext["district_area_km2"],
            "network_share": ext["network_share"],
            "street_area_km2": r["area_km2"],
            "demand": r["demand"],
            "demand_share_within_5min": within[5]["demand_share"],
            "area_share_within_5min": within[5]["area_share"],
            "stations": r["stations"],
            "stations_per_10k_demand": r["stations_per_10k_demand"],
            "overdense_cells": r["overdense_cells"],
        }
        assert set(shown) == set(expect)
        for key, value in expect.items():
            assert _same(shown[key], value), (r["code"], key, shown[key], value)
    assert [r["stations"] for r in summary["districts"]] == [2, 1]
    overall = summary["overall"]
    share = next(w for w in overall["within"] if w["minutes"] == 5)["demand_share"]
    assert 0 < share < 1  # the middle of the grid is a gap
    # the map drawn from the same run: legend share, station and over-dense counts, gaps
    legend = re.search(r'yz-share\\"\\u003e([0-9.]+)%', page)
    assert legend and legend.group(1) == f"{100 * share:.1f}"
    assert f"Open stations: {overall['stations']}" in page
    dense = re.search(r"/ 5 min\): (\d+)", page)
    assert dense and int(dense.group(1)) == overall["overdense_cells"]
    assert f"Gaps: {len(run.gaps(None))}" in page
    headline = re.search(r"by walking: ([0-9.]+)%", page)
    assert headline and headline.group(1) == f"{100 * share:.1f}"


def test_one_district_view(client, conn, stations):
    page = client.get("/planner", params={**PARAMS, "district": "420103", "lang": "en"}).text
    run = _run(client, conn)
    d = run.summary("420103")["district"]
    assert 'data-code="420103" class="focus"' in page
    assert f"Open stations: {d['stations']}" in page and d["stations"] == 1
    unknown = client.get("/planner", params={**PARAMS, "district": "429999"})
    assert unknown.status_code == 404
    assert "429999" in unknown.text and 'class="error"' in unknown.text


def test_district_csv(client, conn, stations):
    r = client.get("/planner/districts.csv", params=PARAMS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.text.startswith("\ufeff")  # for Excel / WPS
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert [row["code"] for row in rows] == ["420102", "420103", ""]  # and the whole city
    assert rows[0]["name"] == "江岸区" and rows[1]["name_en"] == "Jianghan"
    assert rows[2]["name"] == "全部" and rows[2]["name_en"] == "All"
    summary = _run(client, conn).summary()
    for row, d in zip(rows, [*summary["districts"], summary["overall"]], strict=True):
        assert float(row["demand"]) == round(d["demand"], 1)
        assert int(row["stations"]) == d["stations"]
        assert float(row["demand_share_within_5min"]) == round(d["within"][0]["demand_share"], 4)


def test_district_geojson(client, stations):
    r = client.get("/planner/districts.geojson", params=PARAMS)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    fc = json.loads(r.content)
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in fc["features"]] == ["420102", "420103"]
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in fc["features"])
    assert fc["features"][0]["properties"]["stations"] == 2


def test_cell_downloads(client, conn, stations):
    r = client.get("/planner/cells.csv", params=PARAMS)
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    run = _run(client, conn)
    assert len(rows) == run.grid.n_cells
    assert {row["band"] for row in rows} <= {"0-5", "gap"}
    g = client.get("/planner/cells.geojson", params={**PARAMS, "district": "420102"})
    feats = json.loads(g.content)["features"]
    assert len(feats) == int((run.cell_district == 0).sum())
    assert {f["properties"]["district"] for f in feats} == {"420102"}


def test_standalone_map_export(client, stations):
    r = client.get("/planner/map.html", params={**PARAMS, "lang": "en"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and ".html" in disposition
    doc = r.text
    assert doc.lstrip().startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
    assert "<head>" in doc and "<body>" in doc and 'charset="utf-8"' in doc
    # Leaflet and markercluster inlined: nothing to fetch but the tiles
    assert "Leaflet 1.9" in doc and "markerClusterGroup" in doc
    assert not re.search(r"<script[^>]+src=", doc)
    assert not re.search(r"<link[^>]+href=", doc)
    # (\b: base64 data: URIs of the inlined CSS images may contain the letters "cdn")
    assert not re.search(r"\bcdn|unpkg|jsdelivr|code\.jquery|bootstrap", doc, re.I)
    urls = set(re.findall(r"https?://[^\s\"'<>);]+", doc))  # ";": the CSP <meta>
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in urls
    # the rest are comments and licence lines of the inlined libraries, and an SVG namespace
    hosts = {re.sub(r"^https?://([^/]+).*", r"\1", u) for u in urls}
    assert hosts <= {
        "tile.openstreetmap.org",
        "leafletjs.com",
        "www.w3.org",
        "bugzilla.mozilla.org",
    }


def test_page_uses_no_cdn(client, stations):
    page = client.get("/planner", params=PARAMS).text
    assert '<script src="/static/leaflet/leaflet.js"></script>' in page
    assert "/static/leaflet/markercluster/leaflet.markercluster.js" in page
    assert "/static/leaflet/markercluster/MarkerCluster.Default.css" in page
    for host in ("cdn", "unpkg", "jsdelivr", "code.jquery", "bootstrap", "fontawesome"):
        assert host not in page.lower(), host
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    links = re.findall(r'<link[^>]+href="([^"]+)"', page)
    assert scripts and all(s.startswith("/static/") for s in scripts)
    assert all(h.startswith("/static/") for h in links)
    served = client.get("/static/leaflet/markercluster/leaflet.markercluster.js")
    assert served.status_code == 200 and b"MarkerClusterGroup" in served.content


def test_downloads_and_language_links_keep_the_parameters(client, stations):
    page = client.get("/planner", params={**PARAMS, "mode": "ebike", "district": "420102"}).text
    links = [unescape(h) for h in re.findall(r'href="([^"]*/planner/[^"]+)"', page)]
    assert len(links) == 7  # districts, cells and gap pieces as CSV and GeoJSON; the map
    for h in links:
        assert "mode=ebike" in h and "minutes=5" in h and "district=420102" in h


def test_computing_state_reloads(client, stations, monkeypatch):
    engine = client.app.state.coverage

    async def still_computing(*args, **kwargs):
        return Pending("k" * 32, 0.0, {"stage": "stations", "done": 1, "total": 3})

    monkeypatch.setattr(engine, "obtain", still_computing)
    page = client.get("/planner", params=PARAMS)
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="3">' in page.text
    assert "正在计算" in page.text and "1/3" in page.text
    assert 'class="folium-map"' not in page.text
    dl = client.get("/planner/districts.csv", params=PARAMS)
    assert dl.status_code == 202 and dl.headers["retry-after"] == "3"


def test_no_network_says_how_to_load_one(client):
    page = client.get("/planner")
    assert page.status_code == 409
    assert "还没有加载道路网络" in page.text and "yizhan network demo" in page.text
    en = client.get("/planner", params={"lang": "en"})
    assert "No road network is loaded yet" in en.text
    assert client.get("/planner/districts.csv").status_code == 409


def test_bad_parameters_show_a_message_not_a_500(client, stations):
    for params, field in (
        ({"minutes": "abc"}, "minutes"),
        ({"mode": "plane"}, "mode"),
        ({"resolution": "12"}, "resolution"),
        ({"district": "<x>"}, "district"),
        ({"weight": "Road!"}, "weight"),
    ):
        r = client.get("/planner", params=params)
        assert r.status_code == 422, params
        assert f"{field}:" in r.text and 'class="error"' in r.text
        assert "<x>" not in r.text
        assert client.get("/planner/districts.csv", params=params).status_code == 422
    missing = client.get("/planner", params={**PARAMS, "weight": "nosuchlayer"})
    assert missing.status_code == 422 and "nosuchlayer" in missing.text


def test_map_without_assets_says_how_to_get_them(client, stations, monkeypatch):
    monkeypatch.setattr(maps, "assets_ready", lambda: False)
    page = client.get("/planner", params=PARAMS)
    assert page.status_code == 200
    assert "yizhan web assets" in page.text and 'class="folium-map"' not in page.text
    assert "分区统计" in page.text  # the table still shows
    assert client.get("/planner/map.html", params=PARAMS).status_code == 503


def test_suggested_sites_are_numbered_markers(client, stations):
    page = client.get("/planner", params={**PARAMS, "suggest": "3", "lang": "en"}).text
    assert re.search(r"Suggested sites: [1-3]", page)
    assert '"label": "1"' in page


def test_gap_list_shows_pieces_per_district_with_what_one_station_covers(client, stations):
    """The page's gap list and the API answer the same pieces: the middle gap (x ≈ 800–1,400
    m) crosses the district line at x = 1 km, so it is listed as pieces of both districts,
    never one piece across the line, each with its best single site."""
    page = client.get("/planner", params={**PARAMS, "lang": "en"})
    assert page.status_code == 200, page.text
    table = re.search(r'<table class="districts gap-pieces">(.*?)</table>', page.text, re.S)
    assert table
    rows = [
        (
            int(m.group(1)),
            m.group(2),
            dict(re.findall(r'data-k="([^"]+)" data-v="([^"]*)"', m.group(3))),
        )
        for m in re.finditer(
            r'<tr data-rank="(\d+)" data-district="([^"]*)">(.*?)</tr>', table.group(1), re.S
        )
    ]
    api = client.get("/api/v1/coverage/gaps", params={**PARAMS, "limit": 1000}).json()
    pieces = {f["properties"]["rank"]: f["properties"] for f in api["features"]}
    assert rows and len(rows) == min(len(pieces), maps.MAP_GAP_SITES)
    assert {d for _, d, _ in rows} == {"420102", "420103"}
    for rank, district, cells in rows:
        p = pieces[rank]
        assert p["district"] == district
        assert float(cells["uncovered_demand"]) == pytest.approx(p["uncovered_demand"], abs=1e-3)
        assert float(cells["gain"]) == pytest.approx(p["best_site"]["gain"], abs=1e-3)
        assert float(cells["gain"]) > 0
    # the gap itself spans both districts
    gaps = client.get("/api/v1/coverage/gaps", params={**PARAMS, "level": "gap"}).json()
    assert any(f["properties"]["districts"] == "420102,420103" for f in gaps["features"])
    # the map draws the pieces; its layer counts both
    assert f"Gaps: {len(gaps['features'])}, cut by district" in page.text
    assert f"into {len(pieces)} pieces" in page.text
    zh = client.get("/planner", params=PARAMS).text
    assert "一个新站点能解决多少" in zh
    # each piece's popup names its gap and rank (folium writes the popups as escaped JSON)
    assert re.search(r"Gap \d+ (·|\\u00b7) piece 1\b", page.text)
    # the downloads: every piece, one row each, the best sites the page shows
    r = client.get("/planner/gaps.csv", params={**PARAMS, "lang": "en"})
    assert r.status_code == 200, r.text
    got = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [int(x["rank"]) for x in got] == sorted(pieces)
    for x in got:
        p = pieces[int(x["rank"])]
        assert x["district"] == p["district"]
        assert float(x["uncovered_demand"]) == pytest.approx(p["uncovered_demand"], abs=1e-3)
        if p["best_site"]:
            assert float(x["site_gain"]) == pytest.approx(p["best_site"]["gain"], abs=1e-3)
    geo = client.get("/planner/gaps.geojson", params=PARAMS).json()
    assert [f["properties"]["rank"] for f in geo["features"]] == sorted(pieces)
