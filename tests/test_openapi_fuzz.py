"""schemathesis against a real server: the OpenAPI document is what the API does.

A fixed-seed, deterministic run over every documented operation (examples, coverage and
fuzzing phases; every check schemathesis has but one: server errors, status codes, content
types, headers, response schemas, invalid input refused, unsupported methods and `Allow`…)
against
uvicorn serving a fresh database with the sample stations, a street grid, two districts and a
demand layer, so that routes do real work; the admin token is sent, so writes are exercised.
The run must generate at least `MIN_CASES` cases and find nothing.

`scripts/fuzz.sh` runs the same with more cases per operation (YIZHAN_FUZZ_EXAMPLES) and a
seed, and keeps the run in a folder (YIZHAN_FUZZ_OUT).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.reports.vocab import REPORT_KINDS
from app.stations.vocab import AMENITY_CODES
from tests.conftest import ADMIN_TOKEN, fresh_database
from tests.servers import BIN, ROOT, uvicorn_server, yizhan

#: Cases per operation and phase; the whole run must generate at least MIN_CASES.
EXAMPLES = int(os.environ.get("YIZHAN_FUZZ_EXAMPLES", "25"))
MIN_CASES = int(os.environ.get("YIZHAN_FUZZ_MIN_CASES", "1000"))
#: Unset: schemathesis's deterministic mode (the same cases every run, Hypothesis's fixed
#: derandomised seed); set (scripts/fuzz.sh): a seeded run, reproducible with the same seed.
SEED = os.environ.get("YIZHAN_FUZZ_SEED")
#: schemathesis phases; `stateful` (chains through Location headers: create, then read, change,
#: delete) is slow, so it is left to scripts/fuzz.sh (FUZZ_PHASES).
PHASES = os.environ.get("YIZHAN_FUZZ_PHASES") or "examples,coverage,fuzzing"
MAX_SECONDS = os.environ.get("YIZHAN_FUZZ_MAX_SECONDS")
#: A folder to keep the run in (scripts/fuzz.sh): schemathesis.toml, schemathesis.txt (its
#: account of every failure, with curl reproducers), report.json and the server's log.
OUT = Path(os.environ["YIZHAN_FUZZ_OUT"]) if os.environ.get("YIZHAN_FUZZ_OUT") else None

#: Jianghan Road, Wuhan: the centre of the street grid (the sample stations are around it).
LAT0, LON0 = 30.5825, 114.2875
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def _at(x_m: float, y_m: float) -> list[float]:
    return [round(LON0 + x_m / M_PER_DEG_LON, 7), round(LAT0 + y_m / M_PER_DEG_LAT, 7)]


def _street_grid(half_m: int = 1500, step_m: int = 250) -> dict[str, Any]:
    """Streets every `step_m` metres over a square; the middle ones are primary roads."""
    feats = []
    ticks = range(-half_m, half_m + 1, step_m)
    for t in ticks:
        highway = "primary" if t == 0 else "residential"
        for a, b in itertools.pairwise(ticks):
            for line in ([_at(a, t), _at(b, t)], [_at(t, a), _at(t, b)]):
                feats.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "LineString", "coordinates": line},
                        "properties": {"highway": highway},
                    }
                )
    return {"type": "FeatureCollection", "features": feats}


def _districts(half_m: int = 2000) -> dict[str, Any]:
    """Two districts splitting the grid's square west/east."""

    def rect(x0: float, x1: float) -> dict[str, Any]:
        ring = [_at(x0, -half_m), _at(x1, -half_m), _at(x1, half_m), _at(x0, half_m)]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": rect(-half_m, 0),
                "properties": {"code": "420103", "name": "江汉区", "name_en": "Jianghan"},
            },
            {
                "type": "Feature",
                "geometry": rect(0, half_m),
                "properties": {"code": "420102", "name": "江岸区", "name_en": "Jiang'an"},
            },
        ],
    }


def _demand_csv() -> str:
    rows = ["lon,lat,weight"]
    for i in range(-5, 6):
        for j in range(-5, 6):
            lon, lat = _at(i * 250.0, j * 250.0)
            rows.append(f"{lon},{lat},{(i * i + j * j) % 7 + 1}")
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Target:
    base: str
    #: Stations within reach of the street grid (service areas, travel-time nearest work).
    station_ids: list[int]
    log: Path


def _stations_on_grid(url: str) -> list[int]:
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as c:
        rows = c.execute(
            "SELECT id FROM stations WHERE ST_DWithin(geom::geography, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 1400) ORDER BY id",
            (LON0, LAT0),
        ).fetchall()
    return [int(r[0]) for r in rows]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    out = OUT or tmp
    out.mkdir(parents=True, exist_ok=True)
    url = fresh_database("fuzz")
    yizhan(url, "db", "upgrade")
    yizhan(url, "demo", "load")
    (tmp / "streets.geojson").write_text(json.dumps(_street_grid()), "utf-8")
    yizhan(url, "network", "import", str(tmp / "streets.geojson"))
    (tmp / "districts.geojson").write_text(json.dumps(_districts()), "utf-8")
    yizhan(url, "districts", "import", str(tmp / "districts.geojson"))
    (tmp / "riders.csv").write_text(_demand_csv(), "utf-8")
    yizhan(url, "demand", "import", str(tmp / "riders.csv"), "--name", "riders", "--unit", "orders")
    env = {
        "DATABASE_URL": url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "YIZHAN_HOURS_AUTO_REFRESH": "false",
        "YIZHAN_COVERAGE_WAIT_S": "60",
    }
    # The server's log is kept in `out`: its tail is shown when the run finds something.
    log_path = out / "server.log"
    with uvicorn_server(env, log_path=log_path) as base:
        yield Target(base, _stations_on_grid(url), log_path)


#: 413 (the body-size limit) is a rejection too. `positive_data_acceptance` is left out: it
#: expects a 2xx for anything the JSON Schema allows, and the API rightly refuses input that
#: no schema can describe (opening_hours grammar, polygons, points 500 m from any road, an
#: instant outside the hours window, a version that is not the current one…).
#: Identifiers that exist (the sample's stations are 1..400 on the fresh database; runs are
#: numbered from 1) are drawn often, so reads, writes and coverage runs do real work.
def config(station_ids: list[int]) -> str:
    """schemathesis.toml for the run."""
    return f"""
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

[dictionaries.stations]
values = {station_ids + list(range(1, 401, 25))}
[dictionaries.districts]
values = ["420103", "420102"]
[dictionaries.layers]
values = ["riders"]
[dictionaries.weights]
values = ["road", "area", "riders"]
[dictionaries.runs]
values = [1, 2, 3]
[dictionaries.minutes]
values = ["5", "10", "5,10,15", "15"]
[dictionaries.if_match]
values = ["*"]
[dictionaries.kinds]
values = {list(REPORT_KINDS)}
[dictionaries.amenities]
values = {list(AMENITY_CODES[:6])}
[dictionaries.lat]
values = {[round(LAT0 + d, 5) for d in (-0.01, -0.004, 0.0, 0.003, 0.008)]}
[dictionaries.lon]
values = {[round(LON0 + d, 5) for d in (-0.012, -0.005, 0.0, 0.002, 0.011)]}

[parameters]
"path.station_id" = {{ dictionary = "stations", probability = 0.7 }}
"path.code" = {{ dictionary = "districts", probability = 0.5 }}
"query.district" = {{ dictionary = "districts", probability = 0.5 }}
"path.name" = {{ dictionary = "layers", probability = 0.5 }}
"query.weight" = {{ dictionary = "weights", probability = 0.7 }}
"path.run_id" = {{ dictionary = "runs", probability = 0.7 }}
"query.lat" = {{ dictionary = "lat", probability = 0.7 }}
"query.lon" = {{ dictionary = "lon", probability = 0.7 }}
"query.minutes" = {{ dictionary = "minutes", probability = 0.7 }}
"header.If-Match" = {{ dictionary = "if_match", probability = 0.6 }}
"body.kind" = {{ dictionary = "kinds", probability = 0.8 }}
"body.add[*]" = {{ dictionary = "amenities", probability = 0.8 }}
"body.remove[*]" = {{ dictionary = "amenities", probability = 0.8 }}
"body.properties.amenities[*]" = {{ dictionary = "amenities", probability = 0.8 }}
"""


def run_schemathesis(
    target: Target, report: Path, examples: int, seed: str | None
) -> dict[str, Any]:
    """One schemathesis run; its JSON report."""
    config_file = report.with_name("schemathesis.toml")
    config_file.write_text(config(target.station_ids), "utf-8")
    cmd = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config_file),
        "run",
        f"{target.base}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--phases",
        PHASES,
        *(["--max-time", MAX_SECONDS] if MAX_SECONDS else []),
        "--max-examples",
        str(examples),
        *(["--seed", seed] if seed else ["--generation-deterministic"]),
        "--workers",
        "1",
        "--continue-on-failure",
        "--no-color",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--request-timeout",
        "60",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3 * 3600)
    report.with_name("schemathesis.txt").write_text(done.stdout, "utf-8")
    print(done.stdout[-20000:])
    assert report.exists(), done.stderr[-5000:]
    result: dict[str, Any] = json.loads(report.read_text("utf-8"))
    return result


def summarise(result: dict[str, Any]) -> str:
    cases = result["test_cases"]
    lines = [
        f"cases generated: {cases['generated']}, with failures: {cases['with_failures']}, "
        f"errored: {cases['errored']}, operations tested: {result['operations']['tested']}"
    ]
    for failure in result["failures"]:
        lines.append(f"  {failure['count']:5d} × {failure['title']} ({failure['code']})")
    for error in result["errors"]:
        lines.append(f"  {error['count']:5d} × error: {error['title']}")
    return "\n".join(lines)


def test_fuzzed_api_answers_as_documented(server, tmp_path):
    result = run_schemathesis(server, (OUT or tmp_path) / "report.json", EXAMPLES, SEED)
    summary = summarise(result)
    if result["failures"] or result["errors"]:
        tracebacks = server.log.read_text("utf-8", errors="replace")
        summary += "\n--- server log (tail) ---\n" + tracebacks[-4000:]
    print("\nschemathesis:", summary)
    assert result["complete"], summary
    assert result["test_cases"]["generated"] >= MIN_CASES, summary
    assert result["operations"]["tested"] == result["operations"]["selected"], summary
    assert result["failures"] == [], summary
    assert result["errors"] == [], summary
    assert result["exit_code"] == 0, summary
