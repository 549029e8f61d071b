"""Write semantics in-process: If-Match policy (428 / * / 412), atomic amenity changes, and
database errors translated in one place (lock timeout → 409, outage → 503, pool → 503)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from app.db.errors import translate
from app.errors import ConflictError, InvalidInputError, ServiceUnavailableError
from app.stations.vocab import AMENITY_CODES
from tests.conftest import AUTH
from tests.factories import feature

URL = "/api/v1/stations"


def create(client, external_id="W-1", **props):
    r = client.post(URL, json=feature(external_id, **props), headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_patch_without_if_match_is_428_and_changes_nothing(client):
    sid = create(client)
    r = client.patch(
        f"{URL}/{sid}", json={"type": "Feature", "properties": {"capacity": 99}}, headers=AUTH
    )
    assert r.status_code == 428
    assert r.json()["field"] == "If-Match"
    assert "If-Match" in r.json()["detail"]
    assert client.get(f"{URL}/{sid}").json()["properties"]["capacity"] == 12
    # an empty header is no precondition either
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 99}},
        headers={**AUTH, "If-Match": " "},
    )
    assert r.status_code == 428


def test_if_match_star_is_the_explicit_override_and_versions_still_count(client):
    sid = create(client)
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 5}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 6}},
        headers={**AUTH, "If-Match": 'W/"2"'},
    )
    assert r.status_code == 200 and r.headers["etag"] == '"3"'
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"capacity": 7}},
        headers={**AUTH, "If-Match": '"2"'},
    )
    assert r.status_code == 412
    assert client.get(f"{URL}/{sid}").json()["properties"]["capacity"] == 6
    # * on an id that does not exist is 404, not a silent create
    r = client.patch(f"{URL}/987654", json={"type": "Feature"}, headers={**AUTH, "If-Match": "*"})
    assert r.status_code == 404


def test_delete_honours_if_match(client):
    sid = create(client)
    r = client.delete(f"{URL}/{sid}", headers={**AUTH, "If-Match": '"7"'})
    assert r.status_code == 412
    assert client.get(f"{URL}/{sid}").status_code == 200
    assert client.delete(f"{URL}/{sid}", headers={**AUTH, "If-Match": '"1"'}).status_code == 204
    assert client.get(f"{URL}/{sid}").status_code == 404


def test_amenity_changes_compose_without_reading_first(client):
    sid = create(client, amenities=["microwave", "drinking_water"])
    r = client.post(f"{URL}/{sid}/amenities", json={"add": ["toilet"]}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    r = client.post(
        f"{URL}/{sid}/amenities",
        json={"add": ["wifi", "toilet"], "remove": ["microwave", "heating"]},
        headers=AUTH,
    )
    got = r.json()["properties"]["amenities"]
    expected = {"drinking_water", "toilet", "wifi"}
    # stored in the vocabulary's order, like every other write path
    assert got == [a for a in AMENITY_CODES if a in expected]
    assert r.json()["properties"]["version"] == 3


def test_amenity_change_validation_and_preconditions(client):
    sid = create(client)
    url = f"{URL}/{sid}/amenities"
    r = client.post(url, json={"add": ["sauna"]}, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "add" and "sauna" in r.json()["detail"]
    assert client.post(url, json={}, headers=AUTH).status_code == 422
    r = client.post(url, json={"add": ["toilet"], "remove": ["toilet"]}, headers=AUTH)
    assert r.status_code == 422
    assert client.post(url, json={"add": ["toilet"]}).status_code == 401
    r = client.post(url, json={"add": ["toilet"]}, headers={**AUTH, "If-Match": '"9"'})
    assert r.status_code == 412
    r = client.post(f"{URL}/987654/amenities", json={"add": ["toilet"]}, headers=AUTH)
    assert r.status_code == 404
    assert client.get(f"{URL}/{sid}").json()["properties"]["version"] == 1


def test_a_row_lock_held_elsewhere_is_a_409_with_retry_after(client, engine, conn):
    sid = create(client)
    # The station must be visible to another connection: commit it from a real one.
    ext = "LOCK-1"
    with engine.begin() as other:
        row = other.execute(
            text(
                "INSERT INTO stations (external_id, name, geom) VALUES "
                "(:e, 'x', ST_SetSRID(ST_MakePoint(114.3, 30.5), 4326)) RETURNING id"
            ),
            {"e": ext},
        ).one()
    locked_id = row[0]
    try:
        with engine.connect() as locker:
            tx = locker.begin()
            locker.execute(
                text("SELECT 1 FROM stations WHERE id = :i FOR UPDATE"), {"i": locked_id}
            )
            conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
            r = client.patch(
                f"{URL}/{locked_id}",
                json={"type": "Feature", "properties": {"capacity": 1}},
                headers={**AUTH, "If-Match": "*"},
            )
            tx.rollback()
        assert r.status_code == 409, r.text
        assert r.headers["retry-after"] == "1"
        assert r.json()["field"] == "id"
    finally:
        with engine.begin() as other:
            other.execute(text("DELETE FROM stations WHERE id = :i"), {"i": locked_id})
    assert client.get(f"{URL}/{sid}").status_code == 200


class _Orig(Exception):
    """A stand-in for a psycopg error object: what translate() reads is sqlstate and diag."""

    def __init__(self, sqlstate: str, **diag: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.diag = type("Diag", (), diag)()


def _dbapi(cls: type[sa_exc.DBAPIError], sqlstate: str, **diag: str) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, _Orig(sqlstate, **diag))


@pytest.mark.parametrize(
    ("error", "kind", "status_field", "retry"),
    [
        (sa_exc.TimeoutError("QueuePool limit"), ServiceUnavailableError, "database", 2),
        (_dbapi(sa_exc.OperationalError, "57P01"), ServiceUnavailableError, "database", 5),
        (_dbapi(sa_exc.OperationalError, "08006"), ServiceUnavailableError, "database", 5),
        (_dbapi(sa_exc.OperationalError, ""), ServiceUnavailableError, "database", 5),
        (_dbapi(sa_exc.OperationalError, "57014"), ServiceUnavailableError, "database", 5),
        (_dbapi(sa_exc.OperationalError, "55P03"), ConflictError, "id", 1),
        (_dbapi(sa_exc.OperationalError, "40001"), ConflictError, "id", 1),
        (
            _dbapi(
                sa_exc.IntegrityError,
                "23505",
                constraint_name="uq_stations_external_id",
                table_name="stations",
            ),
            ConflictError,
            "external_id",
            None,
        ),
        (
            _dbapi(sa_exc.IntegrityError, "23502", column_name="name"),
            InvalidInputError,
            "name",
            None,
        ),
        (
            _dbapi(
                sa_exc.IntegrityError,
                "23514",
                constraint_name="ck_stations_status",
                table_name="stations",
            ),
            InvalidInputError,
            "status",
            None,
        ),
        (_dbapi(sa_exc.DataError, "22P05"), InvalidInputError, "body", None),
    ],
)
def test_translation_table(error, kind, status_field, retry):
    domain = translate(error)
    assert type(domain) is kind
    assert domain.field == status_field
    assert domain.retry_after == retry


def test_programming_errors_are_not_translated():
    assert translate(_dbapi(sa_exc.ProgrammingError, "42P01")) is None
    assert translate(ValueError("x")) is None


def test_an_unreachable_database_is_503_json_on_the_api_and_a_page_in_browsers(settings):
    """A server whose database does not answer: every data route 503 with Retry-After and the
    error shape (JSON for the API, a bilingual page for browsers), /readyz 503, /healthz 200."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    dead = settings.model_copy(
        update={
            # a port nothing listens on (the discard port on loopback): refused at once
            "database_url": "postgresql+psycopg://nobody:x@127.0.0.1:9/none",
            "pool_timeout_s": 1.0,
        }
    )
    with TestClient(create_app(dead), raise_server_exceptions=False) as tc:
        assert tc.get("/healthz").status_code == 200
        assert tc.get("/readyz").status_code == 503
        for path in (
            "/api/v1/stations/nearest?lat=30.58&lon=114.28",
            "/api/v1/stations?limit=5",
            "/api/v1/stations/1",
            "/api/v1/districts",
            "/api/v1/coverage/summary",
        ):
            r = tc.get(path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["retry-after"] == "5"
            assert r.json()["field"] == "database"
        r = tc.post(URL, json=feature("DEAD-1"), headers=AUTH)
        assert r.status_code == 503 and r.json()["field"] == "database"
        for page in ("/", "/planner"):
            r = tc.get(page, headers={"Accept": "text/html,application/xhtml+xml"})
            assert r.status_code == 503, (page, r.text[:200])
            assert r.headers["content-type"].startswith("text/html")
            assert "暂时无法服务" in r.text and "temporarily unavailable" in r.text.lower()


def test_admission_gives_each_slot_once_and_a_503_after_the_wait():
    import asyncio

    from app.api.admission import Admission

    async def scenario() -> tuple[int, ServiceUnavailableError | None, int]:
        gate = Admission(slots=2, wait_s=0.05)
        refused = None
        async with gate.slot(), gate.slot():
            taken = gate.in_use
            try:
                async with gate.slot():
                    pass
            except ServiceUnavailableError as exc:
                refused = exc
        return taken, refused, gate.in_use

    taken, refused, after = asyncio.run(scenario())
    assert taken == 2
    assert refused is not None and refused.retry_after == 2 and refused.field == "database"
    assert after == 0  # every slot is given back, also after a refusal
