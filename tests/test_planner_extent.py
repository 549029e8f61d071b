"""Issue 14: district areas that don't mislead, minutes that agree with their band, one CSV.

* **Areas**: each district's own area (geodesic), the share of it inside the road network
  (convex hull of the network's nodes) and a status (inside / partial / outside) with a
  reason, next to the analysed street-cell area. Checked by hand on the two-street town of
  test_coverage_api (streets y = 0 and 400 m, x = 0..1,500 m, so the network's hull is the
  rectangle 0..1,500 × 0..400 m): a district square half outside it has share 0.5.
* **Rounding**: the minutes shown are rounded up to 0.1, so that they fall in the band the
  cell is counted in (10.02 in '10-15' shows 10.1, not "10.0"; a 15.04 gap shows 15.1).
* **CSV**: the command line's `--csv` and the web's districts.csv are the same file (one
  writer, one header); with `?district=` the web file holds that district's row only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from geopy.distance import geodesic
from sqlalchemy import text
from typer.testing import CliRunner

from app.config import Settings
from app.coverage import bands, extent
from app.exchange import csvsafe
from app.main import create_app
from tests.conftest import ADMIN_TOKEN
from tests.hostile import hostile_database
from tests.test_coverage_api import town  # noqa: F401  (fixture)
from tests.test_network_api import LAT, create, east, north

RES = {"resolution": 10}

# -- rounding that agrees with the bands (pure) --------------------------------------------

BANDS, TARGET = (5, 10, 15), 15


@pytest.mark.parametrize(
    "minutes, shown, band",
    [
        (10.0, 10.0, "5-10"),  # on the edge: in the lower band, shown as the edge
        (10.02, 10.1, "10-15"),  # plain rounding would show 10.0, the edge of '5-10'
        (14.96, 15.0, "10-15"),  # 15.0 is in '10-15' (bands include their upper edge)
        (15.0, 15.0, "10-15"),
        (15.04, 15.1, "gap"),  # plain rounding would show 15.0: "within 15 minutes"
        (15.0000000001, 15.0, "10-15"),  # within the 1e-9 tolerance: on the edge
        (0.0, 0.0, "0-5"),
        (7.3, 7.3, "5-10"),  # a tenth already: unchanged (7.3 is 7.2999… as a float)
        (0.1, 0.1, "0-5"),  # 0.1000…06 as a float: still 0.1
        (math.inf, None, "gap"),
    ],
)
def test_shown_minutes_at_the_band_edges(minutes, shown, band):
    assert bands.band_label(minutes, BANDS, TARGET) == band
    assert bands.shown_minutes(minutes) == shown
    if shown is not None:
        assert bands.band_label(shown, BANDS, TARGET) == band


def test_shown_minutes_always_fall_in_the_band_of_the_minutes():
    """Brute force: random minutes, many of them within a hundredth of an edge; the band of
    the shown value is the band of the exact value, and it is off by less than 0.1."""
    rng = random.Random(14)
    edges = [0, 3, 5, 10, 12, 15, 20, 30]
    values = [rng.uniform(0, 40) for _ in range(3000)]
    values += [e + rng.uniform(-0.06, 0.06) for e in edges for _ in range(300)]
    for target, bs in ((15, (5, 10, 15)), (12, (3, 5, 10, 20)), (30, (10, 20, 30))):
        for m in values:
            m = max(m, 0.0)
            s = bands.shown_minutes(m)
            assert bands.band_label(s, bs, target) == bands.band_label(m, bs, target), (m, s)
            assert m - 1e-9 <= s < m + 0.1 and round(s, 1) == s


# -- district areas and the network's outline (pure) ---------------------------------------


def _rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(east(x0), north(y0), east(x1), north(y1))


def _km2(width_m: float, height_m: float) -> float:
    return width_m * height_m / 1e6


def test_geodesic_area_of_a_rectangle_with_a_hole():
    # sides measured independently (geopy's geodesic, not pyproj)
    w = geodesic((LAT, east(0)), (LAT, east(1500))).meters
    h = geodesic((LAT, east(0)), (north(400), east(0))).meters
    assert w == pytest.approx(1500, rel=1e-4) and h == pytest.approx(400, rel=1e-4)
    outer = _rect(0, 0, 1500, 400)
    assert extent.geodesic_area_km2(outer) == pytest.approx(_km2(w, h), rel=1e-3)
    holed = outer.difference(_rect(100, 100, 600, 300))  # a 500 × 200 m lake
    assert extent.geodesic_area_km2(holed) == pytest.approx(_km2(1500, 400) - 0.1, rel=1e-3)
    multi = shapely.MultiPolygon([holed, _rect(2000, 0, 2100, 100)])  # clockwise or not
    assert extent.geodesic_area_km2(multi) == pytest.approx(0.5 + 0.01, rel=1e-3)
    assert extent.geodesic_area_km2(shapely.Polygon()) == 0.0


def test_district_shares_inside_the_hull_by_hand():
    # the town's nodes: both streets every 250 m and the bridge's middle
    xs = [east(x) for x in range(0, 1501, 250)]
    lon = np.array(xs + xs + [east(1500)])
    lat = np.array([north(0)] * len(xs) + [north(400)] * len(xs) + [north(200)])
    outline = extent.network_outline(lon, lat)
    assert outline.area_km2 == pytest.approx(0.6, rel=1e-3)
    assert outline.bbox == pytest.approx((east(0), north(0), east(1500), north(400)))
    districts = [
        _rect(100, 0, 700, 400),  # inside
        _rect(750, 0, 2250, 400),  # half outside (east of x = 1,500)
        _rect(3000, 0, 3500, 400),  # beyond the network
        _rect(-1500, -400, 3000, 800),  # holds the whole network: 0.6 of 5.4 km²
    ]
    got = extent.district_extents(districts, outline)
    assert [round(e.area_km2, 3) for e in got] == pytest.approx([0.24, 0.6, 0.2, 5.4], abs=1e-3)
    assert [e.share for e in got] == pytest.approx([1.0, 0.5, 0.0, 0.6 / 5.4], abs=1e-3)
    whole = extent.total(got)
    assert whole.area_km2 == pytest.approx(0.24 + 0.6 + 0.2 + 5.4, rel=1e-3)
    assert whole.inside_km2 == pytest.approx(0.24 + 0.3 + 0 + 0.6, rel=1e-3)
    # a network too small for an outline: nothing is inside it
    tiny = extent.network_outline(lon[:2], lat[:2])
    assert tiny.geometry is None
    assert extent.district_extents(districts[:1], tiny)[0].share == 0.0


def test_status_and_reasons():
    assert extent.status(0, 1.0) == "outside"  # no street cells, wherever it lies
    assert extent.status(3, 0.5) == "partial"
    assert extent.status(3, 0.9499) == "partial"
    assert extent.status(3, extent.PARTIAL_BELOW) == "inside"
    assert extent.status(3, None) == "inside"
    box = (113.98261, 30.37837, 114.5518, 30.77959)
    r = extent.reason("partial", 0.0612, box)
    assert r["zh"].startswith("全区只有 6.1% 的面积在道路网络范围内")
    assert "东经 113.98–114.55°、北纬 30.38–30.78°" in r["zh"]
    assert r["en"].startswith("only 6.1% of the district lies inside the road network")
    assert "113.98–114.55°E, 30.38–30.78°N" in r["en"]
    out = extent.reason("outside", 0.0, box)
    assert "不在道路网络范围内" in out["zh"] and "no streets to analyse" in out["en"]
    thin = extent.reason("outside", 0.0009, box)
    assert "<0.1%" in thin["zh"] and "covers only <0.1%" in thin["en"]


@pytest.mark.parametrize(
    "share, text",
    [
        (0.9499, "94%"),  # partial (< 95 %): never "95%"
        (0.95, "95%"),
        (0.999, "99%"),  # not wholly inside: never "100%"
        (1.0, "100%"),
        (0.29, "29%"),
        (0.49996, "50%"),  # elsewhere plain rounding
        (0.7591, "76%"),
        (0.0605, "6.0%"),  # 6.05 as a float is 6.0499…
        (0.0612, "6.1%"),
        (0.0009, "<0.1%"),  # some, but under a tenth of a percent
        (0.0, "0.0%"),
    ],
)
def test_network_share_as_text_agrees_with_the_status(share, text):
    assert extent.pct_text(share) == text


# -- through the API and the page, on the hand-made town -----------------------------------

#: (code, name, name_en, west, south, east, north in metres)
DISTRICTS = (
    ("420191", "内区", "Inner", 100, 0, 700, 400),
    ("420192", "半区", "Half", 750, 0, 2250, 400),
    ("420193", "外区", "Beyond", 3000, 0, 3500, 400),
)


@pytest.fixture
def districts(conn, town):  # noqa: F811
    for code, name, name_en, w, s, e, n in DISTRICTS:
        conn.execute(
            text(
                "INSERT INTO districts (code, name, name_en, geom, source) VALUES (:c, :n, :ne, "
                "ST_Multi(ST_MakeEnvelope(:w, :s, :e, :nn, 4326)), 'test')"
            ),
            {"c": code, "n": name, "ne": name_en, "w": east(w), "s": north(s)}
            | {"e": east(e), "nn": north(n)},
        )


def test_summary_has_district_area_share_and_status(client, districts):
    create(client, "N0", east(0), north(400))
    r = client.get("/api/v1/coverage/summary", params=RES)
    assert r.status_code == 200, r.text
    body = r.json()
    outline = body["network_outline"]
    assert outline["method"] == "convex_hull_of_nodes"
    assert outline["area_km2"] == pytest.approx(0.6, rel=1e-3)
    assert outline["bbox"] == pytest.approx([east(0), north(0), east(1500), north(400)], abs=1e-5)
    rows = {d["code"]: d for d in body["districts"]}
    inner, half, beyond = rows["420191"], rows["420192"], rows["420193"]
    # the district's own area (geodesic, hand-computed) against its street cells' area
    assert inner["extent"]["district_area_km2"] == pytest.approx(0.24, rel=1e-3)
    assert half["extent"]["district_area_km2"] == pytest.approx(0.6, rel=1e-3)
    assert beyond["extent"]["district_area_km2"] == pytest.approx(0.2, rel=1e-3)
    # shares: the hull's east edge is x = 1,500 m (nodes stored to 1e-7°, ~1 cm: 1e-5 of
    # the 750 m inside), so 0.5 within 1e-3; the inner district lies wholly inside
    assert inner["extent"]["network_share"] == pytest.approx(1.0, abs=1e-3)
    assert half["extent"]["network_share"] == pytest.approx(0.5, abs=1e-3)
    assert beyond["extent"]["network_share"] == 0
    assert [inner["extent"]["status"], half["extent"]["status"]] == ["inside", "partial"]
    assert beyond["extent"]["status"] == "outside" and beyond["cells"] == 0
    assert inner["cells"] > 0 and half["cells"] > 0
    assert "50%" in half["extent"]["reason"]["en"] and "50%" in half["extent"]["reason"]["zh"]
    assert "outside the road network" in beyond["extent"]["reason"]["en"]
    # street cells: the area of the analysed cells, far less than the district's
    assert 0 < half["area_km2"] < half["extent"]["district_area_km2"]
    whole = body["overall"]["extent"]
    assert whole["district_area_km2"] == pytest.approx(0.24 + 0.6 + 0.2, rel=1e-3)
    assert whole["network_share"] == pytest.approx((0.24 + 0.3) / 1.04, abs=1e-3)
    assert whole["status"] == "partial" and "districts' area" in whole["reason"]["en"]


def test_planner_table_map_and_downloads_explain_the_areas(client, districts):
    create(client, "N0", east(0), north(400))
    params = {**RES, "minutes": "15"}
    page = client.get("/planner", params={**params, "lang": "en"})
    assert page.status_code == 200, page.text
    html = page.text
    assert "District area km²" in html and "Street-cell area km²" in html
    assert "Inside road network" in html
    assert '<li data-code="420192" data-status="partial">' in html
    assert '<li data-code="420193" data-status="outside">' in html
    assert '<li data-code="420191"' not in html  # inside: nothing to explain
    assert "only 50% of the district lies inside the road network" in html
    assert "the convex hull of its nodes, 0.6 km²" in html
    # the map's district labels and popups say it too
    assert "Half (partly inside the network)" in html and "Beyond (outside the network)" in html
    popup = re.search(
        r'"popup": "\\u003cdiv class=\\"yz-pop\\"\\u003e\\u003cb\\u003eHalf(.*?)", ', html
    )
    assert popup, "the half district's popup"
    text = json.loads(f'"{popup[1]}"')
    assert "<td>District area km²</td><td>0.6</td>" in text
    assert "<td>Inside road network</td><td>50%</td>" in text
    assert '<div class="why">only 50% of the district lies inside the road network' in text
    zh = client.get("/planner", params=params).text
    assert "全区面积 km²" in zh and "街道网格面积 km²" in zh
    assert json.dumps("半区（部分在路网内）")[1:-1] in zh  # the map's label, in its script
    assert "需求（街道延米）" in zh and "米道路" not in zh
    geo = client.get("/planner/districts.geojson", params={**params, "district": "420192"})
    feats = geo.json()["features"]
    assert [f["id"] for f in feats] == ["420192"]
    props = feats[0]["properties"]
    assert props["status"] == "partial"
    assert props["network_share"] == pytest.approx(0.5, abs=1e-3)
    assert props["district_area_km2"] == pytest.approx(0.6, rel=1e-3)


# -- one CSV writer -------------------------------------------------------------------------

DECIMALS = {"demand": 1, "uncovered_demand": 1, "district_area_km2": 3, "street_area_km2": 3}


def _decimals(cell: str) -> int:
    return len(cell.split(".", 1)[1]) if "." in cell else 0


def test_cli_and_web_write_the_same_district_csv(tmp_path, monkeypatch):
    from app import cli
    from app.cli import coverage as coverage_cli

    url, _ = hostile_database()
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, hours_auto_refresh=False)
    monkeypatch.setattr(coverage_cli, "get_settings", lambda: settings)
    out = tmp_path / "districts.csv"
    done = CliRunner().invoke(
        cli.cli, ["coverage", "run", "--minutes", "5", "--resolution", "9", "--csv", str(out)]
    )
    assert done.exit_code == 0, done.output
    from_cli = out.read_bytes().decode("utf-8")
    params = {"minutes": "5", "resolution": "9", "mode": "walk", "weight": "road"}
    with TestClient(create_app(settings)) as web:
        r = web.get("/planner/districts.csv", params=params)
        assert r.status_code == 200, r.text
        one = web.get("/planner/districts.csv", params={**params, "district": "420103"})
        assert one.status_code == 200, one.text
    rows = list(csv.reader(io.StringIO(from_cli[1:], newline="")))
    web_rows = list(csv.reader(io.StringIO(r.text[1:], newline="")))
    assert web_rows[0] == rows[0] == csvsafe.district_columns([5])  # one header
    assert "demand_share_within_5min" in rows[0] and "district_area_km2" in rows[0]
    assert r.text == from_cli  # the same run, the same writer: the same file
    assert len(rows) == 1 + 6 + 1  # header, six districts, the whole city
    # one district: its row only
    one_rows = list(csv.reader(io.StringIO(one.text[1:], newline="")))
    assert one_rows[0] == rows[0]
    assert [row[0] for row in one_rows[1:]] == ["420103"]
    assert one_rows[1] == next(row for row in rows if row[0] == "420103")
    # numbers rounded: demand 0.1, km² 0.001, shares 0.0001, minutes 0.1
    head = rows[0]
    for row in rows[1:]:
        rec = dict(zip(head, row, strict=True))
        for key, digits in DECIMALS.items():
            assert _decimals(rec[key]) <= digits, (key, rec[key])
        for key in head:
            if "share" in key and rec[key]:
                assert _decimals(rec[key]) <= 4, (key, rec[key])
        if rec["median_minutes"]:
            assert _decimals(rec["median_minutes"]) <= 1
        assert rec["demand_unit"] == "街道延米" and rec["demand_unit_en"] == "m of street"
        assert rec["status"] in extent.STATUSES and rec["status_reason"]
    assert float(rows[-1][head.index("demand")]) > 0  # the whole city's demand


# -- vector tiles: the same rule in SQL -----------------------------------------------------


def test_tile_minutes_agree_with_their_band(client, conn):
    import h3

    from app.tiles import queries as tile_queries
    from tests.test_tiles import JIANGHAN, add_cells, cells_by_h3, make_run, tile_center, tile_of

    z = 13
    x, y = tile_of(*JIANGHAN, z)
    clon, clat = tile_center(z, x, y)
    disk = sorted(h3.grid_disk(h3.latlng_to_cell(clat, clon, 9), 2))
    edge_minutes = [10.0, 10.02, 14.96, 15.0, 15.04, None, 4.99, 5.01, 0.0, 7.3, 19.999]
    cells = dict(zip(disk, edge_minutes, strict=False))
    run = make_run(conn, {"minutes": 15, "mode": "walk"})
    add_cells(conn, run, cells)
    got = cells_by_h3(client, run, z, x, y)
    for cell, minutes in cells.items():
        props = got[cell]["properties"]
        want = bands.shown_minutes(minutes)
        assert props.get("minutes") == want, (minutes, props)
        assert props["band"] == tile_queries.band(minutes, 15)
        if want is not None:
            assert tile_queries.band(want, 15) == props["band"], (minutes, props)
