"""Street names (issue 14): kept by the readers (GeoJSON, GeoParquet, OSM PBF) and the
importer, and naming suggested sites "<street> · <district>" — the site's own edge's name, a
named edge within 150 m, else the station form ("<district> · 近 <station>").

The town of the suggestion test (metres east/north of (114.30, 30.58)), walking 15 min = 1,250 m:

    y=100          (1500)━━━━━━━━━ 友谊大道 ━━━━━━━━━(2500)
                      ┃ unnamed link
    y=0   (0)━━ 中北路 ━━(1000)──────(1500)──────────(3000)──────────────────(6000)
                                 unnamed street (x 1000..6000)

One station S at x=5500 covers 4,250..6,000. Four planner sites on the y=0 street, each of
positive gain whatever the greedy order: x=500 on 中北路 itself; x=1600 on the unnamed
street, 100 m from 友谊大道 (but ~410 m from its midpoint); x=2700, 224 m from 友谊大道's end
(beyond 150 m) and 2,800 m from S; x=4800, 700 m from S.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from geopy.distance import geodesic
from sqlalchemy import text

from app.coverage.naming import STREET_NEAR_M, NamedStreets
from app.network import importer, queries
from app.network.readers import MAX_NAME_CHARS, normalise_name, read_network
from tests.factories import feature
from tests.test_network_api import LAT, create, east, line, load, north

URL = "/api/v1/coverage"


def _names_in_db(conn, version_id: int) -> list[str | None]:
    return list(
        conn.execute(
            text("SELECT name FROM network_edges WHERE version_id = :v ORDER BY id"),
            {"v": version_id},
        ).scalars()
    )


# ------------------------------------------------------------------------------------------
# Readers and the importer
# ------------------------------------------------------------------------------------------


def test_normalise_name_by_hand():
    assert normalise_name("  中北路 ") == "中北路"
    assert normalise_name("Nathan\tRoad\n ") == "Nathan Road"
    assert normalise_name(None) is None
    assert normalise_name("") is None and normalise_name("   ") is None
    assert normalise_name(float("nan")) is None
    assert normalise_name(["", None, "武珞路", "中南路"]) == "武珞路"  # OSMnx merged ways
    assert normalise_name(42) == "42"
    assert normalise_name("a\x00b") == "a b"
    assert normalise_name("路" * 500) == "路" * MAX_NAME_CHARS


def test_geojson_names_survive_the_import(conn, tmp_path):
    a, b, c, d = (east(0), LAT), (east(100), LAT), (east(200), LAT), (east(300), LAT)
    feats = [
        line([a, b], name="中北路"),
        line([b, c]),  # no name property
        line([c, d], name="  "),  # blank
        {  # a MultiLineString: both parts keep the feature's name
            "type": "Feature",
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [[list(d), [east(400), LAT]], [[east(400), LAT], [east(500), LAT]]],
            },
            "properties": {"highway": "primary", "name": "Jiefang Ave 解放大道"},
        },
        line([a, (east(0), north(100))], highway="construction", name="skipped"),
    ]
    version = load(conn, tmp_path, feats)
    assert _names_in_db(conn, version) == [
        "中北路",
        None,
        None,
        "Jiefang Ave 解放大道",
        "Jiefang Ave 解放大道",
    ]
    # the server's read: aligned with the edge order of live_edges_arrays
    arrays = queries.live_edges_arrays(conn)
    assert queries.edge_names(conn, version, len(arrays.edge_id)) == _names_in_db(conn, version)


def test_a_network_without_names_reads_as_none(conn, tmp_path):
    feats = [line([(east(0), LAT), (east(100), LAT)]), line([(east(100), LAT), (east(200), LAT)])]
    version = load(conn, tmp_path, feats)
    assert _names_in_db(conn, version) == [None, None]
    assert queries.edge_names(conn, version, 2) is None


def test_geoparquet_name_column_is_kept(conn, tmp_path):
    pts = [shapely.Point(east(x), LAT) for x in (0, 100, 200, 300)]
    geoms = [shapely.LineString([pts[i], pts[i + 1]]) for i in range(3)]
    table = pa.table(
        {
            "u": [1, 2, 3],
            "v": [2, 3, 4],
            "highway": ["residential", "footway", "primary"],
            "name": ["武珞路", None, "中南路"],
            "geometry": shapely.to_wkb(geoms),
        }
    )
    path = tmp_path / "named.parquet"
    pq.write_table(table, path)
    raw = read_network(path)
    assert raw.name is not None and raw.name.tolist() == ["武珞路", None, "中南路"]
    res = importer.import_path(conn, path)
    assert _names_in_db(conn, res.version_id) == ["武珞路", None, "中南路"]
    # without the column: no names at all
    pq.write_table(table.drop(["name"]), path)
    assert read_network(path).name is None


def test_pbf_names_prefer_name_zh_and_follow_the_split_ways(conn, tmp_path):
    osmium = pytest.importorskip("osmium")
    from osmium.osm.mutable import Node, Way

    path = tmp_path / "named.osm.pbf"
    pos = {1: (114.300, 30.550), 2: (114.301, 30.550), 3: (114.302, 30.550)}
    pos |= {4: (114.301, 30.549), 5: (114.301, 30.551)}
    ways = [
        (10, [1, 2, 3], {"highway": "residential", "name": "横街"}),
        (11, [4, 2, 5], {"highway": "primary", "name": "彌敦道 Nathan Road", "name:zh": "彌敦道"}),
        (12, [3, 5], {"highway": "service"}),
    ]
    with osmium.SimpleWriter(str(path), overwrite=True) as w:
        for nid, xy in pos.items():
            w.add_node(Node(id=nid, location=xy))
        for wid, refs, tags in ways:
            w.add_way(Way(id=wid, nodes=refs, tags=tags))
    res = importer.import_path(conn, path)
    rows = conn.execute(
        text("SELECT osm_way_id, name FROM network_edges WHERE version_id = :v ORDER BY id"),
        {"v": res.version_id},
    ).all()
    assert [tuple(r) for r in rows] == [
        (10, "横街"),
        (10, "横街"),
        (11, "彌敦道"),
        (11, "彌敦道"),
        (12, None),
    ]


# ------------------------------------------------------------------------------------------
# The nearest named edge (pure)
# ------------------------------------------------------------------------------------------


def test_named_streets_by_hand():
    lon0, lat0 = 114.30, 30.58
    m_lon = geodesic((lat0, lon0), (lat0, lon0 + 0.01)).meters / 0.01
    m_lat = geodesic((lat0, lon0), (lat0 + 0.01, lon0)).meters / 0.01

    def pt(x: float, y: float) -> tuple[float, float]:
        return lon0 + x / m_lon, lat0 + y / m_lat

    geoms = np.asarray(
        [
            shapely.LineString([pt(0, 0), pt(1000, 0)]),  # 0: "A"
            shapely.LineString([pt(0, 50), pt(1000, 50)]),  # 1: unnamed
            shapely.LineString([pt(0, 80), pt(1000, 80)]),  # 2: "B", unusable by the mode
            shapely.LineString([pt(0, 170), pt(1000, 170)]),  # 3: "C"
        ],
        dtype=object,
    )
    names = ["A", None, "B", "C"]
    usable = np.asarray([True, True, False, True])
    streets = NamedStreets.build(names, geoms, usable)
    # on its own named edge, usable or not
    assert streets.street_at(*pt(500, 0), 0) == ("A", 0.0)
    assert streets.street_at(*pt(500, 80), 2) == ("B", 0.0)
    # on the unnamed edge at y=50: B (30 m) is not usable, A is 50 m away, C 120 m
    name, m = streets.street_at(*pt(500, 50), 1)
    assert name == "A" and m == pytest.approx(50, rel=0.005)
    # at y=110 on no known edge: C is 60 m away, A 110 m
    name, m = streets.street_at(*pt(500, 110), None)
    assert name == "C" and m == pytest.approx(60, rel=0.005)
    # past the end of A and C: to the end point, not the line through it
    name, m = streets.street_at(*pt(1100, 0), None)
    assert name == "A" and m == pytest.approx(100, rel=0.005)
    name, m = streets.street_at(*pt(1120, 0), None)
    assert name == "A" and m == pytest.approx(120, rel=0.005)
    assert streets.street_at(*pt(1000 + STREET_NEAR_M + 2, 0), None) == (None, None)
    # far off everything
    assert streets.street_at(*pt(500, -200), None) == (None, None)
    # with every edge usable, B (30 m) wins at y=50
    assert NamedStreets.build(names, geoms).street_at(*pt(500, 50), 1)[0] == "B"
    # no names at all
    assert NamedStreets.build([None] * 4, geoms).street_at(*pt(500, 0), 0) == (None, None)


# ------------------------------------------------------------------------------------------
# Suggested sites named by their street (through the API, the compute process and all)
# ------------------------------------------------------------------------------------------


@pytest.fixture
def named_town(conn, tmp_path):
    def seg(x0: float, x1: float, y: float = 0, **props) -> dict:
        return line([(east(x0), north(y)), (east(x1), north(y))], **props)

    feats = [
        seg(0, 500, name="中北路"),
        seg(500, 1000, name="中北路"),
        seg(1000, 1500),
        seg(1500, 3000),
        seg(3000, 4500),
        seg(4500, 6000),
        line([(east(1500), LAT), (east(1500), north(100))]),  # the unnamed link
        seg(1500, 2000, 100, name="友谊大道"),
        seg(2000, 2500, 100, name="友谊大道"),
    ]
    version = load(conn, tmp_path, feats)
    conn.execute(
        text(
            "INSERT INTO districts (code, name, name_en, geom, source) VALUES ('420106', "
            "'武昌区', 'Wuchang', ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), 't')"
        ),
        {"x0": east(-200), "y0": north(-300), "x1": east(6200), "y1": north(400)},
    )
    return version


def test_suggested_sites_are_named_by_their_street(client, named_town):
    create(client, "S", east(5500), LAT)
    s_name = feature()["properties"]["name"]
    xs = [500, 1600, 2700, 4800]
    sites = [{"lon": east(x), "lat": LAT} for x in xs]
    r = client.post(
        URL + "/suggestions", json={"resolution": 10, "k": len(sites), "candidates": sites}
    )
    assert r.status_code == 200, r.text
    picks = {f["properties"]["candidate"]: f["properties"] for f in r.json()["features"]}
    assert set(picks) == {0, 1, 2, 3}  # every site adds demand (module docstring)
    # on 中北路 itself
    assert (picks[0]["name"], picks[0]["name_en"]) == ("中北路 · 武昌区", "中北路 · Wuchang")
    assert picks[0]["street"] == "中北路"
    # on the unnamed street, 100 m from 友谊大道 (its midpoint is ~412 m away)
    assert (picks[1]["name"], picks[1]["name_en"]) == ("友谊大道 · 武昌区", "友谊大道 · Wuchang")
    # 224 m from 友谊大道's end: beyond 150 m, so the station form (2.8 km from S)
    assert math.hypot(200, 100) > STREET_NEAR_M
    assert picks[2]["street"] is None
    assert picks[2]["name"] == f"武昌区 · 距 {s_name} 2.8 公里"
    assert picks[2]["name_en"] == f"Wuchang · 2.8 km from {s_name}"
    # 700 m from S: near it
    assert picks[3]["name"] == f"武昌区 · 近 {s_name}"
    assert picks[3]["name_en"] == f"Wuchang · near {s_name}"
    # the nearest station is given whatever the name
    for j, x in enumerate(xs):
        assert picks[j]["district"] == "420106"
        assert picks[j]["near_station_name"] == s_name
        assert picks[j]["near_station_m"] == pytest.approx(5500 - x, rel=0.01)


def test_a_gap_piece_s_best_site_is_named_by_its_street(client, named_town):
    # one station at the west end: the uncovered rest's best site sits on a street; its
    # name is that of the edge under it or of a named edge within 150 m, else the station form
    create(client, "W", east(0), LAT)
    r = client.get(URL + "/gaps", params={"resolution": 10, "best_sites": 5})
    assert r.status_code == 200, r.text
    sites = [f["properties"]["best_site"] for f in r.json()["features"]]
    sites = [s for s in sites if s]
    assert sites
    checked = 0
    for s in sites:
        x = (s["point"]["coordinates"][0] - east(0)) / (east(1) - east(0))
        y = (s["point"]["coordinates"][1] - LAT) / (north(1) - LAT)
        if abs(y - 100) < 1 and 1500 <= x <= 2500:  # on 友谊大道
            expected = "友谊大道"
        elif abs(y) < 1 and x <= 1000:
            expected = "中北路"
        else:  # the unnamed street or link: the nearer named street if within 150 m
            to_zb = math.hypot(max(x - 1000, 0, -x), y)
            to_yy = math.hypot(max(1500 - x, 0, x - 2500), 100 - y)
            near, d = min((("中北路", to_zb), ("友谊大道", to_yy)), key=lambda t: t[1])
            if abs(d - STREET_NEAR_M) < 2 or abs(to_zb - to_yy) < 2:
                continue  # too close to call by hand
            expected = near if d <= STREET_NEAR_M else None
        checked += 1
        assert s["street"] == expected, (x, y, s)
        if expected:
            assert s["name"] == f"{expected} · 武昌区" and s["name_en"] == f"{expected} · Wuchang"
        else:
            station = feature()["properties"]["name"]
            assert s["name"].startswith("武昌区 · ") and station in s["name"]
    assert checked
