"""End to end over a real socket: migrate and load the demo with the CLI, serve with uvicorn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.conftest import ADMIN_TOKEN, fresh_database
from tests.factories import feature
from tests.servers import uvicorn_server, yizhan


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    url = fresh_database("e2e")
    yizhan(url, "db", "upgrade")
    yizhan(url, "demo", "load")
    with uvicorn_server({"DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN}) as base:
        yield base


def test_ready_and_nearest_on_the_demo_data(server):
    assert httpx.get(f"{server}/readyz").json()["status"] == "ok"
    r = httpx.get(
        f"{server}/api/v1/stations/nearest",
        params={"lat": 30.5825, "lon": 114.2875, "k": 5, "amenities": "drinking_water"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/geo+json"
    feats = r.json()["features"]
    assert len(feats) == 5
    d = [f["properties"]["distance_m"] for f in feats]
    assert d == sorted(d) and d[0] < 2000  # Jianghan Road is in the dense old town
    assert all("drinking_water" in f["properties"]["amenities"] for f in feats)


def test_write_cycle_over_http(server):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    f = feature("E2E-1", lon=114.1, lat=30.45)
    assert httpx.post(f"{server}/api/v1/stations", json=f).status_code == 401
    created = httpx.post(f"{server}/api/v1/stations", json=f, headers=auth)
    assert created.status_code == 201
    sid = created.json()["id"]
    again = httpx.post(f"{server}/api/v1/stations", json=f, headers=auth)
    assert again.status_code == 409
    big = httpx.post(
        f"{server}/api/v1/stations",
        content=b"x" * 200_000,
        headers={**auth, "content-type": "application/json"},
    )
    assert big.status_code == 413
    assert httpx.delete(f"{server}/api/v1/stations/{sid}", headers=auth).status_code == 204
    assert httpx.get(f"{server}/api/v1/stations/{sid}").status_code == 404
