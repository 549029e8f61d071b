"""Station REST API: CRUD, auth, paging, optimistic locking, and every kind of bad input."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.conftest import AUTH, TransactionDatabase
from tests.factories import feature

URL = "/api/v1/stations"


def count(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM stations")).scalar_one()


def create(client, **kw):
    r = client.post(URL, json=feature(**kw), headers=AUTH)
    assert r.status_code == 201, r.text
    return r


def test_create_get_roundtrip(client):
    r = create(client, lon=114.2875, lat=30.5825, amenities=["microwave", "drinking_water"])
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    sid = body["id"]
    assert r.headers["location"] == f"{URL}/{sid}"
    assert r.headers["etag"] == '"1"'
    assert body["geometry"] == {"type": "Point", "coordinates": [114.2875, 30.5825]}
    # amenities come back deduplicated in vocabulary order
    assert body["properties"]["amenities"] == ["drinking_water", "microwave"]
    got = client.get(f"{URL}/{sid}")
    assert got.status_code == 200
    assert got.json() == body
    assert "crs" not in got.json()


def test_reads_are_public_writes_need_the_token(client):
    assert client.post(URL, json=feature()).status_code == 401
    r = client.post(URL, json=feature(), headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.json()["detail"].startswith("Authorization")
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post(URL, json=feature(), headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401
    sid = create(client).json()["id"]
    assert client.get(f"{URL}/{sid}").status_code == 200
    assert client.delete(f"{URL}/{sid}").status_code == 401
    assert client.patch(f"{URL}/{sid}", json={"type": "Feature"}).status_code == 401


def test_without_admin_token_configured_the_old_token_is_refused(settings, conn):
    """ADMIN_TOKEN is optional now that there are accounts: unset, no bearer string is it."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app(settings.model_copy(update={"admin_token": None}))
    with TestClient(app) as tc:
        tc.app.state.db = TransactionDatabase(conn)
        r = tc.post(URL, json=feature(), headers=AUTH)
        empty = tc.post(URL, json=feature(), headers={"Authorization": "Bearer "})
    assert r.status_code == 401, r.text
    assert r.json()["field"] == "Authorization"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert empty.status_code == 401


def test_duplicate_external_id_is_409_and_writes_nothing(client, conn):
    create(client, external_id="DUP-1")
    before = count(conn)
    r = client.post(URL, json=feature(external_id="DUP-1", name="另一个"), headers=AUTH)
    assert r.status_code == 409
    assert r.json()["field"] == "external_id"
    assert count(conn) == before


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda f: f["geometry"].update(coordinates=[181, 30]), "geometry.coordinates"),
        (lambda f: f["geometry"].update(coordinates=[114, -90.5]), "geometry.coordinates"),
        (lambda f: f["geometry"].update(coordinates=[114]), "geometry.coordinates"),
        (lambda f: f["geometry"].update(type="LineString"), "geometry.type"),
        (lambda f: f["properties"].update(amenities=["water"]), "properties.amenities"),
        (lambda f: f["properties"].update(host_type="bar"), "properties.host_type"),
        (lambda f: f["properties"].update(access="anyone"), "properties.access"),
        (lambda f: f["properties"].update(status="maybe"), "properties.status"),
        (lambda f: f["properties"].update(district_code="42"), "properties.district_code"),
        (lambda f: f["properties"].update(name=""), "properties.name"),
        (lambda f: f["properties"].update(name="x" * 201), "properties.name"),
        (lambda f: f["properties"].update(capacity=-1), "properties.capacity"),
        (lambda f: f["properties"].update(phone="call me"), "properties.phone"),
        (lambda f: f["properties"].update(external_id="has space"), "properties.external_id"),
        (lambda f: f["properties"].update(opening_hours="  "), "properties.opening_hours"),
        (lambda f: f["properties"].update(amenity=["toilet"]), "properties.amenity"),
        (lambda f: f["properties"].pop("name"), "properties.name"),
        (lambda f: f.update(type="FeatureCollection"), "type"),
    ],
)
def test_bad_feature_is_422_naming_the_field(client, conn, mutate, field):
    f = feature()
    mutate(f)
    r = client.post(URL, json=f, headers=AUTH)
    assert r.status_code == 422, r.text
    body = r.json()
    assert field in [e["field"] for e in body["errors"]]
    assert field in body["detail"]
    assert count(conn) == 0


def test_nan_coordinates_in_raw_json_are_rejected(client, conn):
    raw = json.dumps(feature()).replace("114.2875", "NaN")
    r = client.post(URL, content=raw, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    assert "geometry.coordinates" in r.json()["detail"]
    assert count(conn) == 0


def test_malformed_json_is_422(client):
    r = client.post(URL, content=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    assert "detail" in r.json()


def test_body_too_large_is_413_and_writes_nothing(client, conn, settings):
    f = feature(address="长" * (settings.max_body_bytes // 2))
    r = client.post(URL, json=f, headers=AUTH)
    assert r.status_code == 413
    assert r.json()["field"] == "body"
    assert count(conn) == 0


def test_unknown_id_is_404_and_bad_id_is_422(client):
    assert client.get(f"{URL}/424242").status_code == 404
    assert client.get(f"{URL}/424242").json()["field"] == "id"
    # a path that is not a station id is no route at all (the :int converter keeps
    # /stations/nearest from colliding with /stations/{id} for every method)
    assert client.get(f"{URL}/abc").status_code == 404
    assert client.get(f"{URL}/0").status_code == 422
    assert client.get(f"{URL}/{2**63}").status_code == 422
    assert client.delete(f"{URL}/424242", headers=AUTH).status_code == 404
    r = client.patch(f"{URL}/424242", json={"type": "Feature"}, headers={**AUTH, "If-Match": "*"})
    assert r.status_code == 404


def test_patch_changes_only_what_is_sent_and_bumps_version(client):
    body = create(client).json()
    sid = body["id"]
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"status": "temporarily_closed", "phone": None}},
        headers={**AUTH, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert props["status"] == "temporarily_closed"
    assert props["phone"] is None
    assert props["name"] == body["properties"]["name"]
    assert props["version"] == 2
    assert r.headers["etag"] == '"2"'
    moved = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.3, 30.6]}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert moved.json()["geometry"]["coordinates"] == [114.3, 30.6]
    assert moved.json()["properties"]["version"] == 3


def test_patch_with_stale_version_is_412_and_changes_nothing(client):
    sid = create(client).json()["id"]
    client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 3}},
        headers={**AUTH, "If-Match": "*"},
    )
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 99}},
        headers={**AUTH, "If-Match": '"1"'},
    )
    assert r.status_code == 412
    assert client.get(f"{URL}/{sid}").json()["properties"]["capacity"] == 3
    bad = client.patch(f"{URL}/{sid}", json={"type": "Feature"}, headers={**AUTH, "If-Match": "x"})
    assert bad.status_code == 422


def test_patch_cannot_null_required_fields_or_duplicate_external_id(client):
    a = create(client, external_id="A-1").json()["id"]
    create(client, external_id="B-1")
    r = client.patch(
        f"{URL}/{a}",
        json={"type": "Feature", "properties": {"name": None}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert r.status_code == 422
    assert r.json()["field"] == "properties.name"
    r = client.patch(
        f"{URL}/{a}",
        json={"type": "Feature", "properties": {"external_id": "B-1"}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert r.status_code == 409
    assert client.get(f"{URL}/{a}").json()["properties"]["external_id"] == "A-1"


def test_delete(client):
    sid = create(client).json()["id"]
    assert client.delete(f"{URL}/{sid}", headers=AUTH).status_code == 204
    assert client.get(f"{URL}/{sid}").status_code == 404


def test_bbox_paging_walks_every_station_once(client):
    inside = [(114.20 + i * 0.01, 30.50 + (i % 3) * 0.01) for i in range(7)]
    for i, (lon, lat) in enumerate(inside):
        create(client, external_id=f"IN-{i}", lon=lon, lat=lat)
    create(client, external_id="OUT-1", lon=116.4, lat=39.9)
    seen: list[int] = []
    url = f"{URL}?bbox=114.0,30.4,114.5,30.7&limit=3"
    pages = 0
    while url:
        page = client.get(url).json()
        pages += 1
        assert page["numberMatched"] == 7
        seen += [f["id"] for f in page["features"]]
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else ""
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    everything = client.get(f"{URL}?limit=500").json()
    assert everything["numberMatched"] == 8


@pytest.mark.parametrize(
    "bbox",
    [
        "1,2,3",
        "a,b,c,d",
        "114,30,113,31",
        "114,31,115,30",
        "114,30,200,31",
        "nan,1,2,3",
        "1e999,0,1,1",
        "",
    ],
)
def test_malformed_bbox_is_422(client, bbox):
    r = client.get(f"{URL}?bbox={bbox}")
    assert r.status_code == 422
    assert r.json()["field"] == "bbox"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("lat=91&lon=114", "lat"),
        ("lat=-91&lon=114", "lat"),
        ("lat=30&lon=181", "lon"),
        ("lat=nan&lon=114", "lat"),
        ("lat=30&lon=inf", "lon"),
        ("lat=30", "lon"),
        ("lat=x&lon=114", "lat"),
        ("lat=30&lon=114&k=0", "k"),
        ("lat=30&lon=114&k=51", "k"),
        ("lat=30&lon=114&k=-3", "k"),
        ("lat=30&lon=114&radius_m=0", "radius_m"),
        ("lat=30&lon=114&radius_m=nan", "radius_m"),
        ("lat=30&lon=114&radius_m=1e9", "radius_m"),
        ("lat=30&lon=114&amenities=water", "amenities"),
        ("lat=30&lon=114&amenities=toilet,,bogus", "amenities"),
        ("lat=30&lon=114&status=gone", "status"),
    ],
)
def test_bad_nearest_query_is_422_naming_the_field(client, query, field):
    r = client.get(f"{URL}/nearest?{query}")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"].startswith(field) or field in [e["field"] for e in body["errors"]]


def test_nearest_over_http_orders_by_distance_and_filters(client):
    create(client, external_id="N-far", lon=114.40, lat=30.58, amenities=["toilet"])
    create(client, external_id="N-near", lon=114.31, lat=30.58, amenities=["drinking_water"])
    create(client, external_id="N-mid", lon=114.35, lat=30.58, amenities=["toilet", "wifi"])
    create(client, external_id="N-shut", lon=114.301, lat=30.58, status="closed")
    r = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&k=5")
    assert r.status_code == 200
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    ext = [f["properties"]["external_id"] for f in fc["features"]]
    assert ext == ["N-near", "N-mid", "N-far"]  # closed stations are not offered by default
    dists = [f["properties"]["distance_m"] for f in fc["features"]]
    assert dists == sorted(dists)
    assert 900 < dists[0] < 1000  # 0.01° of longitude at 30.58°N is ~959 m
    toilets = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&amenities=toilet").json()
    assert [f["properties"]["external_id"] for f in toilets["features"]] == ["N-mid", "N-far"]
    both = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&amenities=toilet,wifi").json()
    assert [f["properties"]["external_id"] for f in both["features"]] == ["N-mid"]
    near = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&radius_m=5000").json()
    assert [f["properties"]["external_id"] for f in near["features"]] == ["N-near", "N-mid"]
    closed = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&status=closed").json()
    assert [f["properties"]["external_id"] for f in closed["features"]] == ["N-shut"]


def test_vocabularies_have_both_languages(client):
    body = client.get("/api/v1/amenities").json()
    codes = [a["code"] for a in body["amenities"]]
    assert len(codes) >= 15 and "microwave" in codes
    assert all(a["zh"] and a["en"] for a in body["amenities"])
    vocab = client.get("/api/v1/vocabulary").json()
    assert {"amenities", "host_types", "access", "statuses"} <= vocab.keys()


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    from alembic.script import ScriptDirectory

    from app.db.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()
    assert ready.json()["schema"] == head


def test_readiness_reports_unreachable_database(settings):
    from fastapi.testclient import TestClient

    from app.main import create_app

    broken = settings.model_copy(
        update={"database_url": "postgresql+psycopg://nobody:x@127.0.0.1:1/none"}
    )
    with TestClient(create_app(broken)) as tc:
        r = tc.get("/readyz")
        assert tc.get("/healthz").status_code == 200
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


def test_openapi_docs_served(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/stations/nearest" in spec["paths"]
