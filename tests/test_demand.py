"""Planner-imported demand layers: parsing against hand-computed and independent oracles,
the HTTP upload (all or nothing, admin only) and the command line."""

from __future__ import annotations

import json
import math
from typing import Any

import h3
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from app.config import Settings
from app.db import migrate
from app.demand import parse, queries
from app.demand.parse import LayerCells, parse_csv, parse_geojson
from app.errors import InvalidInputError
from app.geo import coords
from tests.conftest import AUTH, fresh_database

WUHAN = (114.30, 30.55)
RES = 9
CSV = {"Content-Type": "text/csv"}
GEOJSON = {"Content-Type": "application/geo+json"}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def cell_of(lon: float, lat: float, res: int = RES) -> int:
    return h3.str_to_int(h3.latlng_to_cell(lat, lon, res))


def centre(cell: int) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    return lon, lat


def cells_near(lon: float, lat: float, k: int, res: int = RES) -> list[int]:
    """k distinct cells in a row eastwards of a point (each well apart from the others)."""
    start = h3.latlng_to_cell(lat, lon, res)
    ring = sorted(h3.grid_ring(start, 3), key=lambda c: h3.cell_to_latlng(c)[1])
    return [h3.str_to_int(c) for c in [start, *ring][:k]]


def csv_bytes(header: str, rows: list[tuple[Any, ...]]) -> bytes:
    lines = [header] + [",".join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def collection(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def point(lon: float, lat: float, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def polygon(rings: list[list[tuple[float, float]]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in r] for r in rings]},
        "properties": props,
    }


def as_dict(layer: LayerCells) -> dict[int, float]:
    assert layer.cells.dtype == np.int64 and layer.weights.dtype == np.float64
    assert np.all(np.diff(layer.cells) > 0), "cells sorted and unique"
    return dict(zip(layer.cells.tolist(), layer.weights.tolist(), strict=True))


def put(client, name: str, body: bytes, headers=CSV, auth=AUTH, **params: Any):
    params.setdefault("unit", "persons")
    return client.put(
        f"/api/v1/demand/{name}", content=body, params=params, headers={**headers, **auth}
    )


# An irregular, concave pentagon in Wuchang (~2 km across) with a hole.
SHELL = [
    (114.300, 30.540),
    (114.322, 30.543),
    (114.318, 30.560),
    (114.309, 30.552),
    (114.298, 30.561),
    (114.300, 30.540),
]
HOLE = [
    (114.305, 30.545),
    (114.310, 30.545),
    (114.310, 30.549),
    (114.305, 30.549),
    (114.305, 30.545),
]


# ------------------------------------------------------------------------------------------
# parsing: points, cells, polygons, datums
# ------------------------------------------------------------------------------------------


def test_points_in_one_cell_are_summed():
    a, b = cells_near(*WUHAN, 2)
    (alon, alat), (blon, blat) = centre(a), centre(b)
    d = 0.0004  # ~40 m, well inside a resolution-9 cell (~150 m centre to edge)
    rows = [
        (alon, alat, 1.5),
        (alon + d, alat, 2),
        (alon, alat - d, 3.25),
        (blon, blat, 4),
    ]
    layer = parse_csv(csv_bytes("lon,lat,weight", rows), RES, "wgs84")
    assert as_dict(layer) == {a: 6.75, b: 4.0}
    assert layer.rows == 4 and layer.total_weight == 10.75
    # header aliases, any case, a BOM, CRLF, extra columns and blank lines
    text = "\ufeffID,Longitude,LATITUDE,Weight\r\n" + "".join(
        f"{i},{x},{y},{w}\r\n\r\n" for i, (x, y, w) in enumerate(rows)
    )
    assert as_dict(parse_csv(text.encode(), RES, "wgs84")) == {a: 6.75, b: 4.0}
    lng = csv_bytes("lng,lat,population", rows)
    assert as_dict(parse_csv(lng, RES, "wgs84", weight_property="Population")) == {
        a: 6.75,
        b: 4.0,
    }


def test_finer_h3_cells_count_for_their_parent():
    a, b = cells_near(*WUHAN, 2)
    kids = h3.cell_to_children(h3.int_to_str(a), 11)[:5]  # resolution 11, inside a
    mid = h3.cell_to_children(h3.int_to_str(b), 10)[0]  # resolution 10, inside b
    rows = [(k, i + 1) for i, k in enumerate(kids)]  # 1 + 2 + 3 + 4 + 5 = 15
    rows += [(h3.int_to_str(b).upper(), 0.5), (mid, 2)]  # b itself (upper case), a child
    layer = parse_csv(csv_bytes("h3,weight", rows), RES, "wgs84")
    assert as_dict(layer) == {a: 15.0, b: 2.5}
    assert layer.rows == 7


def test_polygon_weight_goes_to_cells_whose_centres_are_inside_by_area():
    shape = shapely.Polygon(SHELL, [HOLE])
    layer = parse_geojson(collection([polygon([SHELL, HOLE], weight=1234.5)]), RES, "wgs84")
    got = as_dict(layer)
    assert math.isclose(sum(got.values()), 1234.5, rel_tol=0, abs_tol=1e-9)
    # independent oracle: every cell around, its centre tested with shapely
    around = h3.grid_disk(h3.latlng_to_cell(30.55, 114.31, RES), 15)
    lat, lon = np.array([h3.cell_to_latlng(c) for c in around]).T
    inside = shapely.contains_xy(shape, lon, lat)
    expected = {h3.str_to_int(c) for c, ok in zip(around, inside, strict=True) if ok}
    assert len(expected) > 20
    assert set(got) == expected
    # shares proportional to cell area: weight per km² is the same everywhere
    density = [w / h3.cell_area(h3.int_to_str(c), unit="km^2") for c, w in got.items()]
    assert max(density) == pytest.approx(min(density), rel=1e-12)
    # the hole receives nothing
    assert cell_of(114.3075, 30.547) not in got


def test_multipolygon_and_a_polygon_smaller_than_a_cell():
    b = cell_of(114.40, 30.60)  # far from SHELL
    blon, blat = centre(b)
    x, y = blon + 5e-5, blat + 5e-5  # a ~20 m triangle beside the centre, not over it
    tiny = [(x, y), (x + 2e-4, y), (x + 2e-4, y + 2e-4), (x, y)]
    assert not h3.geo_to_cells(shapely.Polygon(tiny), RES), "holds no cell centre"

    big = shapely.Polygon(SHELL).buffer(0)
    multi = {
        "type": "Feature",
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [[[list(p) for p in SHELL]], [[list(p) for p in tiny]]],
        },
        "properties": {"orders": 10},
    }
    alone = polygon([tiny], orders=7)
    layer = parse_geojson(collection([multi, alone]), RES, "wgs84", "orders")
    got = as_dict(layer)
    assert layer.rows == 2
    assert sum(got.values()) == pytest.approx(17, abs=1e-9)
    # the tiny triangle holds no cell centre: its whole weight goes to its own cell
    tiny_cell = cell_of(*shapely.Polygon(tiny).representative_point().coords[0])
    assert tiny_cell == b and got[b] == pytest.approx(7, abs=1e-12)
    assert big.contains(shapely.Point(centre(next(c for c in got if c != b))))


@pytest.mark.parametrize("system", ["gcj02", "bd09"])
def test_chinese_datums_land_in_the_same_cells_as_their_wgs84_original(system):
    to = coords.wgs84_to_gcj02 if system == "gcj02" else coords.wgs84_to_bd09
    cells = h3.grid_disk(h3.latlng_to_cell(WUHAN[1], WUHAN[0], RES), 4)
    pts = []
    for i, c in enumerate(cells):
        lat, lon = h3.cell_to_latlng(c)
        pts.append((lon + 3e-4 * (i % 3 - 1), lat + 2e-4 * (i % 2), i + 1))
    wgs = parse_csv(csv_bytes("lon,lat,weight", pts), RES, "wgs84")
    shifted = [(*to(x, y), w) for x, y, w in pts]
    assert as_dict(parse_csv(csv_bytes("lon,lat,weight", shifted), RES, system)) == as_dict(wgs)
    # and read as WGS-84 the shifted points are hundreds of metres off: the test means it
    assert as_dict(parse_csv(csv_bytes("lon,lat,weight", shifted), RES, "wgs84")) != as_dict(wgs)
    feats = [point(x, y, weight=w) for x, y, w in shifted]
    assert as_dict(parse_geojson(collection(feats), RES, system)) == as_dict(wgs)
    # polygons: converted vertex by vertex
    ring = [to(x, y) for x, y in SHELL]
    poly_wgs = parse_geojson(collection([polygon([SHELL], weight=5)]), RES, "wgs84")
    poly_sys = parse_geojson(collection([polygon([ring], weight=5)]), RES, system)
    assert set(as_dict(poly_sys)) == set(as_dict(poly_wgs))


# ------------------------------------------------------------------------------------------
# validation: parser level
# ------------------------------------------------------------------------------------------

GOOD = "lon,lat,weight\n114.30,30.55,1\n"
COARSE = h3.cell_to_parent(h3.latlng_to_cell(30.55, 114.30, RES), 7)

BAD_CSV = [
    ("bad number", GOOD + "114.3,30.55,abc\n", "rows[2].weight", "got 'abc'"),
    ("negative", GOOD + "114.3,30.55,-1\n", "rows[2].weight", "got '-1'"),
    ("nan", GOOD + "114.3,30.55,NaN\n", "rows[2].weight", "got 'NaN'"),
    ("infinite", GOOD + "114.3,30.55,inf\n", "rows[2].weight", "finite"),
    ("empty weight", GOOD + "114.3,30.55,\n", "rows[2].weight", "got ''"),
    ("missing weight column", "lon,lat,w\n114.3,30.55,1\n", "header", "no 'weight' column"),
    ("missing lat column", "lon,weight\n114.3,1\n", "header", "lon,lat,weight"),
    ("both kinds", "h3,lon,lat,weight\nx,1,2,3\n", "header", "both"),
    ("duplicate column", "lon,lat,weight,Weight\n1,2,3,4\n", "header", "duplicate"),
    ("lon out of range", GOOD + "200,30.55,1\n", "rows[2].lon", "[-180, 180]"),
    ("lat out of range", GOOD + "114.3,-91,1\n", "rows[2].lat", "[-90, 90]"),
    ("short row", GOOD + "114.3,30.55\n", "rows[2]", "2 fields where the header has 3"),
    ("bad h3", "h3,weight\nnot-a-cell,1\n", "rows[1].h3", "not an H3 cell"),
    ("coarser h3", f"h3,weight\n{COARSE},1\n", "rows[1].h3", "resolution 7, coarser"),
    ("empty", "", "file", "empty"),
    ("only whitespace", " \n\n", "file", "empty"),
    ("header only", "lon,lat,weight\n", "file", "no data rows"),
]


@pytest.mark.parametrize(("why", "body", "field", "says"), BAD_CSV, ids=[b[0] for b in BAD_CSV])
def test_bad_csv_names_the_field_and_row(why, body, field, says):
    with pytest.raises(InvalidInputError) as err:
        parse_csv(body.encode(), RES, "wgs84")
    assert err.value.field == field
    assert err.value.detail.startswith(f"{field}: ")
    assert says in err.value.detail


def test_csv_errors_say_the_line_and_how_many_more():
    body = GOOD + "\n114.3,30.55,x\n114.3,30.55,-2\n114.3,30.55,-3\n"
    with pytest.raises(InvalidInputError) as err:
        parse_csv(body.encode(), RES, "wgs84")
    assert err.value.detail == ("rows[2].weight: must be a finite number ≥ 0, got 'x' (line 4)"), (
        "first offender, physical line counted with the blank one"
    )
    with pytest.raises(InvalidInputError) as err:
        parse_csv((GOOD + "1,2,-1\n3,4,-2\n").encode(), RES, "wgs84")
    assert "rows[2].weight" in err.value.detail and "1 more rows like it" in err.value.detail


def test_csv_not_utf8_and_too_many_rows(monkeypatch):
    with pytest.raises(InvalidInputError, match="file: not UTF-8"):
        parse_csv("lon,lat,weight\n114.3,30.55,1 # 人口\n".encode("gbk"), RES, "wgs84")
    monkeypatch.setattr(parse, "MAX_ROWS", 3)
    body = csv_bytes("lon,lat,weight", [(114.3, 30.55, 1)] * 4)
    with pytest.raises(InvalidInputError, match="more than 3 data rows") as err:
        parse_csv(body, RES, "wgs84")
    assert err.value.field == "file"
    with pytest.raises(InvalidInputError, match="more than 3 features"):
        parse_geojson(collection([point(114.3, 30.55, weight=1)] * 4), RES, "wgs84")


def _geom(kind: str, coordinates: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": kind, "coordinates": coordinates},
        "properties": props or {"weight": 1},
    }


BOWTIE = [[[114.30, 30.54], [114.32, 30.56], [114.32, 30.54], [114.30, 30.56], [114.30, 30.54]]]
BAD_GEOJSON = [
    ("string weight", [point(114.3, 30.55, weight="12")], "features[0].properties.weight", "'12'"),
    ("negative weight", [point(114.3, 30.55, weight=-1)], "features[0].properties.weight", "≥ 0"),
    ("bool weight", [point(114.3, 30.55, weight=True)], "features[0].properties.weight", "true"),
    ("no weight", [point(114.3, 30.55, pop=1)], "features[0].properties.weight", "missing"),
    (
        "null geometry",
        [
            point(114.3, 30.55, weight=1),
            {"type": "Feature", "geometry": None, "properties": {"weight": 1}},
        ],
        "features[1].geometry",
        "missing",
    ),
    (
        "line",
        [_geom("LineString", [[114.3, 30.5], [114.4, 30.6]])],
        "features[0].geometry.type",
        "'LineString'",
    ),
    ("lat out of range", [point(114.3, 95, weight=1)], "features[0].geometry.coordinates", "lat"),
    (
        "bad position",
        [_geom("Point", ["114.3", 30.5])],
        "features[0].geometry.coordinates",
        "[lon, lat]",
    ),
    (
        "open ring",
        [_geom("Polygon", [[[114.3, 30.5], [114.4, 30.5], [114.4, 30.6], [114.3, 30.6]]])],
        "features[0].geometry.coordinates[0]",
        "closed",
    ),
    ("bow tie", [_geom("Polygon", BOWTIE)], "features[0].geometry", "Self-intersection"),
    ("not a feature", [{"type": "Point", "coordinates": [1, 2]}], "features[0]", "Feature"),
]


@pytest.mark.parametrize(
    ("why", "features", "field", "says"), BAD_GEOJSON, ids=[b[0] for b in BAD_GEOJSON]
)
def test_bad_geojson_names_the_feature(why, features, field, says):
    with pytest.raises(InvalidInputError) as err:
        parse_geojson(collection(features), RES, "wgs84")
    assert err.value.field == field
    assert err.value.detail.startswith(f"{field}: ")
    assert says in err.value.detail


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (b"", "file", "empty"),
        (b"{not json", "file", "not UTF-8 JSON"),
        (b'{"type": "Feature"}', "type", "FeatureCollection"),
        (b'{"type": "FeatureCollection", "features": []}', "features", "no features"),
        (b'{"type": "FeatureCollection"}', "features", "array"),
    ],
)
def test_bad_geojson_documents(body, field, says):
    with pytest.raises(InvalidInputError) as err:
        parse_geojson(body, RES, "wgs84")
    assert err.value.field == field and says in err.value.detail


def test_a_polygon_too_large_for_a_layer(monkeypatch):
    monkeypatch.setattr(parse, "MAX_CELLS", 1000)
    province = [(113, 29), (116, 29), (116, 31), (113, 31), (113, 29)]
    with pytest.raises(InvalidInputError, match="covers about") as err:
        parse_geojson(collection([polygon([province], weight=1)]), 10, "wgs84")
    assert err.value.field == "features[0].geometry"


def test_resolution_and_coord_sys_are_checked():
    with pytest.raises(InvalidInputError, match="resolution: must be one of 8, 9, 10"):
        parse_csv(GOOD.encode(), 7, "wgs84")
    with pytest.raises(InvalidInputError, match="coord_sys: must be one of"):
        parse_csv(GOOD.encode(), RES, "mercator")


# ------------------------------------------------------------------------------------------
# storage
# ------------------------------------------------------------------------------------------


def test_replace_and_load_round_trip_exactly(conn):
    rng = np.random.default_rng(7)
    base = h3.latlng_to_cell(30.55, 114.30, RES)
    cells = np.array(sorted(h3.str_to_int(c) for c in h3.grid_disk(base, 60)), dtype=np.int64)
    weights = rng.gamma(2.0, 50.0, len(cells))
    weights[::17] = 0.0
    assert queries.replace_layer(conn, "pop-2026", "persons", 9, "人口", "test", cells, weights)
    layer = queries.load_layer(conn, "pop-2026")
    assert layer is not None
    assert (layer.name, layer.unit, layer.resolution, layer.description) == (
        "pop-2026",
        "persons",
        9,
        "人口",
    )
    assert layer.cells.dtype == np.int64 and layer.weights.dtype == np.float64
    assert np.array_equal(layer.cells, cells) and np.array_equal(layer.weights, weights)
    info = queries.layer_info(conn, "pop-2026")
    assert info is not None and info.cells == len(cells)
    assert info.total_weight == pytest.approx(weights.sum(), rel=1e-12)
    assert queries.load_layer(conn, "nope") is None
    empty = np.empty(0, dtype=np.int64)
    assert not queries.replace_layer(conn, "pop-2026", "p", 9, None, None, empty, empty * 1.0)
    again = queries.load_layer(conn, "pop-2026")
    assert again is not None and len(again.cells) == 0
    assert again.fingerprint != layer.fingerprint
    assert queries.delete_layer(conn, "pop-2026") and not queries.delete_layer(conn, "pop-2026")


# ------------------------------------------------------------------------------------------
# HTTP
# ------------------------------------------------------------------------------------------


def test_upload_list_get_delete(client, conn):
    a, b = cells_near(*WUHAN, 2)
    rows = [(*centre(a), 3), (*centre(a), 4), (*centre(b), 5)]
    r = put(client, "riders", csv_bytes("lon,lat,weight", rows), description="外卖骑手")
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/v1/demand/riders"
    assert r.json() == {
        "name": "riders",
        "unit": "persons",
        "resolution": 9,
        "cells": 2,
        "total_weight": 12.0,
        "rows": 3,
        "coord_sys": "wgs84",
    }
    layer = queries.load_layer(conn, "riders")
    assert layer is not None
    assert dict(zip(layer.cells.tolist(), layer.weights.tolist(), strict=True)) == {a: 7, b: 5}

    geo = collection([point(*centre(a), orders=2.5)])
    r = put(
        client,
        "orders",
        geo,
        GEOJSON,
        unit="orders/day",
        weight_property="orders",
        resolution=10,
        source="platform export",
    )
    assert r.status_code == 201, r.text
    assert r.json()["resolution"] == 10
    r = put(
        client,
        "orders",
        geo,
        {"Content-Type": "application/json; charset=utf-8"},
        unit="orders/day",
        weight_property="orders",
    )
    assert r.status_code == 200, r.text  # replaced

    listed = client.get("/api/v1/demand").json()["layers"]
    assert [x["name"] for x in listed] == ["orders", "riders"]
    riders = client.get("/api/v1/demand/riders").json()
    assert riders["description"] == "外卖骑手" and riders["cells"] == 2
    assert riders["total_weight"] == 12.0 and riders["unit"] == "persons"
    assert riders["created_at"]

    assert client.delete("/api/v1/demand/riders", headers=AUTH).status_code == 204
    missing = client.get("/api/v1/demand/riders")
    assert missing.status_code == 404 and missing.json()["field"] == "name"
    assert client.delete("/api/v1/demand/riders", headers=AUTH).status_code == 404


def test_writes_need_the_admin_token(client):
    body = GOOD.encode()
    assert put(client, "x", body, auth={}).status_code == 401
    wrong = put(client, "x", body, auth={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["field"] == "Authorization"
    assert put(client, "x", body).status_code == 201
    assert client.delete("/api/v1/demand/x").status_code == 401
    assert client.get("/api/v1/demand/x").status_code == 200


HTTP_ERRORS = [
    (
        "bad number",
        GOOD + "1,2,abc\n",
        CSV,
        {},
        422,
        "rows[2].weight: must be a finite number ≥ 0, got 'abc'",
    ),
    (
        "negative",
        GOOD + "1,2,-5\n",
        CSV,
        {},
        422,
        "rows[2].weight: must be a finite number ≥ 0, got '-5'",
    ),
    ("nan", GOOD + "1,2,nan\n", CSV, {}, 422, "rows[2].weight:"),
    ("missing column", "lon,lat\n1,2\n", CSV, {}, 422, "header:"),
    ("lon out of range", GOOD + "181,2,1\n", CSV, {}, 422, "rows[2].lon:"),
    ("bad h3", "h3,weight\nabc,1\n", CSV, {}, 422, "rows[1].h3: not an H3 cell index, got 'abc'"),
    ("coarser h3", f"h3,weight\n{COARSE},1\n", CSV, {}, 422, "rows[1].h3:"),
    ("empty", "", CSV, {}, 422, "file: the file is empty"),
    (
        "geojson weight",
        '{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"weight":"x"}}]}',
        GEOJSON,
        {},
        422,
        "features[0].properties.weight:",
    ),
    ("csv sent as geojson", GOOD, GEOJSON, {}, 422, "file: not UTF-8 JSON"),
    (
        "wrong content type",
        GOOD,
        {"Content-Type": "text/plain"},
        {},
        415,
        "Content-Type: must be text/csv",
    ),
    ("no content type", GOOD, {}, {}, 415, "Content-Type:"),
    ("resolution", GOOD, CSV, {"resolution": 11}, 422, "resolution: must be one of 8, 9, 10"),
    ("coord_sys", GOOD, CSV, {"coord_sys": "utm"}, 422, "coord_sys"),
    ("unit too long", GOOD, CSV, {"unit": "u" * 41}, 422, "unit: 1-40 characters"),
    ("no unit", GOOD, CSV, {"unit": None}, 422, "unit"),
]


@pytest.mark.parametrize(
    ("why", "body", "headers", "params", "status", "says"),
    HTTP_ERRORS,
    ids=[e[0] for e in HTTP_ERRORS],
)
def test_upload_errors_are_4xx_naming_the_field(client, why, body, headers, params, status, says):
    if params.get("unit", "") is None:
        r = client.put("/api/v1/demand/x", content=body.encode(), headers={**headers, **AUTH})
    else:
        r = put(client, "x", body.encode(), headers, **params)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert client.get("/api/v1/demand/x").status_code == 404, "nothing was stored"


def test_bad_layer_name(client):
    r = put(client, "Pop 2026", GOOD.encode())
    assert r.status_code == 422 and r.json()["field"] == "name"
    r = put(client, "-pop", GOOD.encode())
    assert r.status_code == 422 and r.json()["field"] == "name"


def test_a_bad_replacement_leaves_the_previous_layer_intact(client, conn, monkeypatch):
    a, b = cells_near(*WUHAN, 2)
    good = csv_bytes("lon,lat,weight", [(*centre(a), 1), (*centre(b), 2)])
    assert put(client, "pop", good).status_code == 201
    before = queries.load_layer(conn, "pop")
    assert before is not None
    # a bad file: refused before any write
    bad = csv_bytes("lon,lat,weight", [(*centre(a), 100)] * 20 + [(*centre(b), "many")])
    r = put(client, "pop", bad)
    assert r.status_code == 422 and "rows[21].weight" in r.json()["detail"]

    # a failure half-way through the write (after the old layer was deleted) rolls back too
    def boom(*args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(queries, "_copy_weights", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        put(client, "pop", csv_bytes("lon,lat,weight", [(*centre(a), 5)]))
    after = queries.load_layer(conn, "pop")
    assert after is not None
    assert after.fingerprint == before.fingerprint
    assert np.array_equal(after.cells, before.cells)
    assert np.array_equal(after.weights, before.weights)
    assert client.get("/api/v1/demand/pop").json()["total_weight"] == 3.0


def test_fingerprint_changes_whenever_the_layer_is_replaced(client, conn):
    a, b = cells_near(*WUHAN, 2)
    body = csv_bytes("lon,lat,weight", [(*centre(a), 1), (*centre(b), 2)])
    assert put(client, "pop", body).status_code == 201
    first = queries.load_layer(conn, "pop")
    assert first is not None and len(first.fingerprint) == 32
    assert queries.load_layer(conn, "pop").fingerprint == first.fingerprint, "stable"  # type: ignore[union-attr]
    assert put(client, "pop", body).status_code == 200  # the same file again
    second = queries.load_layer(conn, "pop")
    assert second is not None and second.fingerprint != first.fingerprint
    changed = csv_bytes("lon,lat,weight", [(*centre(a), 1), (*centre(b), 2.5)])
    assert put(client, "pop", changed).status_code == 200
    third = queries.load_layer(conn, "pop")
    assert third is not None
    assert third.fingerprint not in (first.fingerprint, second.fingerprint)


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def test_cli_import_and_list(monkeypatch, tmp_path):
    from app import cli

    url = fresh_database("demandcli")
    migrate.upgrade(url)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url))
    runner = CliRunner()
    a, b = cells_near(*WUHAN, 2)
    points = tmp_path / "pop.csv"
    points.write_bytes(csv_bytes("lon,lat,weight", [(*centre(a), 2), (*centre(b), 3)]))
    empty = runner.invoke(cli.cli, ["demand", "list"])
    assert empty.exit_code == 0 and "no demand layers" in empty.output

    ok = runner.invoke(
        cli.cli,
        [
            "demand",
            "import",
            str(points),
            "--name",
            "pop",
            "--unit",
            "persons",
            "--coord-sys",
            "wgs84",
            "--description",
            "census",
        ],
    )
    assert ok.exit_code == 0, ok.output
    out = " ".join(ok.output.split())
    assert "'pop' created" in out and "2 rows" in out and "resolution 9" in out

    shapes = tmp_path / "orders.geojson"
    shapes.write_bytes(collection([polygon([SHELL], n=100.0)]))
    ok = runner.invoke(
        cli.cli,
        [
            "demand",
            "import",
            str(shapes),
            "--name",
            "orders",
            "--unit",
            "orders",
            "--resolution",
            "8",
            "--weight-property",
            "n",
        ],
    )
    assert ok.exit_code == 0, ok.output

    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat,weight\n114.3,30.5,-1\n")
    failed = runner.invoke(cli.cli, ["demand", "import", str(bad), "--name", "pop", "--unit", "p"])
    assert failed.exit_code == 2
    out = " ".join(failed.output.split())
    assert "rows[1].weight" in out and "nothing was imported" in out
    wrong = runner.invoke(
        cli.cli, ["demand", "import", str(tmp_path / "x.txt"), "--name", "p", "--unit", "p"]
    )
    assert wrong.exit_code == 2 and ".csv, .geojson or .json" in wrong.output

    listed = runner.invoke(cli.cli, ["demand", "list"])
    assert listed.exit_code == 0, listed.output
    assert "pop" in listed.output and "orders" in listed.output and "pop.csv" in listed.output

    from app.db.engine import make_engine

    engine = make_engine(Settings(database_url=url))
    try:
        with engine.connect() as c:
            pop = queries.load_layer(c, "pop")
            orders = queries.load_layer(c, "orders")
    finally:
        engine.dispose()
    assert pop is not None and orders is not None
    # untouched by the failed import
    assert pop.cells.tolist() == sorted([a, b])
    assert pop.description == "census" and float(pop.weights.sum()) == 5.0
    assert orders.resolution == 8 and float(orders.weights.sum()) == pytest.approx(100.0)
