"""The OpenAPI document says what the API sends: a valid OpenAPI 3.1 document, real responses
validate against the schema documented for their status and media type, every operation
lists the statuses it can answer, and 405/OPTIONS carry an `Allow` naming every method."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from app.config import Settings
from app.main import create_app
from tests.conftest import AUTH
from tests.factories import feature

URL = "/api/v1"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    app = create_app(Settings(database_url="postgresql://u:p@127.0.0.1:1/none", admin_token="t"))
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def check(doc: dict[str, Any], r: Any, method: str, path: str) -> None:
    """`r` is documented for `method path`: its status, media type, body schema and required
    headers (an independent JSON Schema validator reads the document)."""
    responses = doc["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in responses, (method, path, r.status_code, sorted(responses))
    documented = responses[str(r.status_code)]
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in r.headers, (method, path, r.status_code, name)
    content = documented.get("content")
    if not content:
        assert not r.content, (method, path, r.status_code)
        return
    media = r.headers["content-type"].split(";")[0].strip()
    assert media in content, (method, path, r.status_code, media, list(content))
    schema = {**content[media]["schema"], "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(r.json())


def test_the_document_is_valid_openapi_and_has_no_fastapi_validation_error(doc):
    validate(doc)
    text = str(doc)
    assert "HTTPValidationError" not in text
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                schema = content.get("schema", {})
                # a JSON body is an object described by a model, not FastAPI's "string" guess
                if "json" in media:
                    assert "$ref" in schema, (method, path, status, media, schema)
                    assert "type" not in schema, (method, path, status, media)
                if status.startswith(("4", "5")):
                    assert media == "application/json", (method, path, status)


def test_every_operation_documents_what_it_can_answer(doc):
    for method, path, op in operations(doc):
        statuses = set(op["responses"])
        has_params = bool(op.get("parameters")) or "requestBody" in op
        if has_params:
            assert "422" in statuses, (method, path)
        if op.get("security"):  # the admin token: 401, and 503 when writes are off
            assert {"401", "503"} <= statuses, (method, path)
        if method in ("POST", "PUT", "PATCH"):
            assert "413" in statuses, (method, path)
        if (
            path.startswith(URL)
            and not path.startswith(URL + "/amenities")
            and path != (URL + "/vocabulary")
        ):
            assert "503" in statuses, (method, path)  # every data route reads the database
        # an id in the path may name nothing (not: tile coordinates, a layer being created)
        addressed = "{" in path and not path.startswith(URL + "/tiles/stations")
        if addressed and (method, path) != ("PUT", URL + "/demand/{name}"):
            assert "404" in statuses, (method, path)
    ops = {(m, p): op for m, p, op in operations(doc)}
    assert "428" in ops[("PATCH", URL + "/stations/{station_id}")]["responses"]
    assert "412" in ops[("PATCH", URL + "/stations/{station_id}")]["responses"]
    assert "429" in ops[("POST", URL + "/stations/{station_id}/reports")]["responses"]
    for path in ("/summary", "/cells", "/gaps", "/overdense"):
        # a run still computing is 202; a full queue is 503 (server capacity, not a client quota)
        responses = set(ops[("GET", URL + "/coverage" + path)]["responses"])
        assert {"202", "503"} <= responses and "429" not in responses
    assert {"200", "204", "304"} <= set(
        ops[("GET", URL + "/tiles/stations/{z}/{x}/{y}.pbf")]["responses"]
    )
    headers = ops[("GET", URL + "/coverage/summary")]["responses"]["202"]["headers"]
    assert headers["Location"]["required"] is True


def test_real_responses_match_their_documentation(client: TestClient, doc):
    created = client.post(URL + "/stations", json=feature("DOC-1"), headers=AUTH)
    check(doc, created, "POST", URL + "/stations")
    assert created.headers["content-type"] == "application/geo+json"
    sid = created.json()["id"]
    one = f"{URL}/stations/{sid}"
    for r, method, path in [
        (client.get(one), "GET", URL + "/stations/{station_id}"),
        (client.get(f"{URL}/stations/{sid + 10_000}"), "GET", URL + "/stations/{station_id}"),
        (client.get(one, params={"coord_sys": "utm"}), "GET", URL + "/stations/{station_id}"),
        (
            client.get(URL + "/stations/nearest", params={"lat": 30.58, "lon": 114.29, "k": 3}),
            "GET",
            URL + "/stations/nearest",
        ),
        (
            client.get(URL + "/stations/nearest", params={"lat": "north", "lon": 114.29}),
            "GET",
            URL + "/stations/nearest",
        ),
        (client.get(URL + "/stations", params={"limit": 1}), "GET", URL + "/stations"),
        (client.get(URL + "/amenities"), "GET", URL + "/amenities"),
        (client.get(URL + "/vocabulary"), "GET", URL + "/vocabulary"),
        (client.get(URL + "/districts"), "GET", URL + "/districts"),
        (client.get(URL + "/districts/420199"), "GET", URL + "/districts/{code}"),
        (client.get(URL + "/demand"), "GET", URL + "/demand"),
        (client.get(URL + "/tiles/stations.json"), "GET", URL + "/tiles/stations.json"),
        (
            client.patch(one, json={"type": "Feature", "properties": {"name": "x"}}, headers=AUTH),
            "PATCH",
            URL + "/stations/{station_id}",
        ),
        (
            client.patch(
                one,
                json={"type": "Feature", "properties": {"name": "x"}},
                headers={**AUTH, "If-Match": '"999"'},
            ),
            "PATCH",
            URL + "/stations/{station_id}",
        ),
        (
            client.patch(
                one, content=b"\xff{", headers={**AUTH, "content-type": "application/json"}
            ),
            "PATCH",
            URL + "/stations/{station_id}",
        ),
        (
            client.post(URL + "/stations", json=feature("DOC-1")),
            "POST",
            URL + "/stations",
        ),
        (
            client.post(URL + "/stations", json=feature("DOC-1"), headers=AUTH),
            "POST",
            URL + "/stations",
        ),
        (
            client.post(
                URL + "/stations",
                content=b"[" * 100_000,
                headers={**AUTH, "content-type": "application/json"},
            ),
            "POST",
            URL + "/stations",
        ),
        (
            client.post(f"{one}/reports", json={"kind": "other", "comment": "门锁了"}),
            "POST",
            URL + "/stations/{station_id}/reports",
        ),
        (
            client.patch(
                one,
                json={"type": "Feature", "properties": {"name": "y"}},
                headers={**AUTH, "If-Match": created.headers["etag"]},
            ),
            "PATCH",
            URL + "/stations/{station_id}",
        ),
        (client.delete(one, headers=AUTH), "DELETE", URL + "/stations/{station_id}"),
    ]:
        check(doc, r, method, path)


def test_405_names_every_method_of_the_path(client: TestClient, doc):
    for method, path, allow in [
        ("PUT", URL + "/stations", "GET, POST, OPTIONS"),
        ("PATCH", URL + "/stations/nearest", "GET, OPTIONS"),
        ("POST", URL + "/stations/7", "GET, PATCH, DELETE, OPTIONS"),
        ("POST", URL + "/demand/riders", "GET, PUT, DELETE, OPTIONS"),
        ("DELETE", URL + "/districts", "GET, PUT, OPTIONS"),
    ]:
        r = client.request(method, path, headers=AUTH)
        assert r.status_code == 405, (method, path, r.status_code, r.text)
        assert r.headers["allow"] == allow, (method, path)
        assert r.json()["detail"]
    # the same set the document lists for the path (plus OPTIONS)
    documented = {m.upper() for m in doc["paths"][URL + "/stations/{station_id}"]}
    r = client.post(URL + "/stations/7", headers=AUTH)
    assert set(r.headers["allow"].split(", ")) == documented | {"OPTIONS"}


def test_options_answers_with_allow_and_no_body(client: TestClient, doc):
    for path, template in [
        (URL + "/stations", URL + "/stations"),
        (URL + "/stations/12", URL + "/stations/{station_id}"),
        (URL + "/stations/nearest", URL + "/stations/nearest"),
        (URL + "/tiles/stations/3/1/2.pbf", URL + "/tiles/stations/{z}/{x}/{y}.pbf"),
        (URL + "/coverage/summary", URL + "/coverage/summary"),
    ]:
        r = client.options(path)
        assert r.status_code == 204, (path, r.status_code)
        assert r.content == b""
        allowed = set(r.headers["allow"].split(", "))
        assert allowed == {m.upper() for m in doc["paths"][template]} | {"OPTIONS"}, path
    assert client.options("/openapi.json").headers["allow"] == "GET, HEAD, OPTIONS"
    assert client.options(URL + "/no-such-thing").status_code == 404
