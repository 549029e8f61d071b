"""CSV injection: no cell of any CSV we write (planner downloads, `yizhan coverage run --csv`)
is a live spreadsheet formula, whatever a planner named a district or a demand unit.

Oracle: Python's csv module reads the files back; a cell starting with =, +, -, @, tab or CR
must be a plain decimal number. The payloads go in through the API and must come back out
(quoted as text) so we know they reached the file.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from typer.testing import CliRunner

from app.config import Settings
from app.exchange import csvsafe
from tests.hostile import (
    DISTRICTS,
    FORMULAS,
    PARAMS,
    build_in,
    formula_cells,
    hostile_database,
    read_csv,
)


@pytest.fixture(scope="module", autouse=True)
def leaflet_assets():
    from app.web import assets

    assets.ensure_leaflet()


@pytest.fixture
def town(client, conn, tmp_path):
    return build_in(conn, client, tmp_path)


def _stored_names(client) -> set[str]:
    """Every district name the API stored (an independent view of what reached the CSV)."""
    fc = client.get("/api/v1/districts").json()
    names = set()
    for f in fc["features"]:
        p = f["properties"]
        names |= {p["name"], p["name_en"]}
    return names


# -- the writer ----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", FORMULAS)
def test_text_starting_a_formula_is_quoted(payload):
    text = csvsafe.write_rows([[payload, "ok"]], header=["a", "b"])
    rows = read_csv(text)
    assert rows == [["a", "b"], ["'" + payload, "ok"]]
    assert formula_cells(rows) == []


def test_numbers_stay_numbers_and_text_stays_text():
    row = [
        -2,
        -2.5,
        np.int64(-7),
        np.float64(-0.25),
        Decimal("-1.50"),
        0,
        True,
        None,
        math.nan,
        -math.inf,
        "江汉区",
        "a=b",
        "-",
        " =1",
    ]
    text = csvsafe.write_rows([row])
    assert text.startswith("\ufeff") and text.endswith("\r\n")
    [out] = read_csv(text)
    assert out == [
        "-2",
        "-2.5",
        "-7",
        "-0.25",
        "-1.50",
        "0",
        "true",
        "",
        "",
        "",
        "江汉区",
        "a=b",
        "'-",
        " =1",
    ]
    assert formula_cells([out]) == []


def test_line_breaks_inside_a_cell_survive_quoted():
    text = csvsafe.write_dicts([{"name": "一\r\n二", "n": 1}], ["name", "n", "missing"])
    assert read_csv(text) == [["name", "n", "missing"], ["一\r\n二", "1", ""]]


# -- planner downloads (web) ---------------------------------------------------------------


def test_planner_csvs_have_no_live_formula(client, town):
    stored = _stored_names(client)
    # the API kept each payload (whitespace inside names is collapsed: "\t=1" is "=1")
    assert {d[1] for d in DISTRICTS} <= stored
    assert {" ".join(p.split()) for p in FORMULAS} <= stored
    weights = ["road", *town]
    assert len(town) >= 4, town  # =HYPERLINK, +1+1, -2+3, @SUM(1) are valid units
    for weight in weights:
        for lang in ("zh", "en"):
            params = {**PARAMS, "weight": weight, "lang": lang}
            for path in ("/planner/districts.csv", "/planner/cells.csv", "/planner/gaps.csv"):
                r = client.get(path, params=params)
                assert r.status_code == 200, (path, weight, r.text)
                assert r.headers["content-type"] == "text/csv; charset=utf-8"
                rows = read_csv(r.text)
                assert formula_cells(rows) == [], (path, weight)
                if path.endswith("districts.csv"):
                    cells = {c for row in rows for c in row}
                    shown = {"'" + n for n in stored if n[0] in "=+-@"}
                    assert shown <= cells, (weight, shown - cells)
                    if weight != "road":
                        unit = town[weight]
                        quoted = unit[0] in "=+-@\t\r"
                        assert ("'" + unit if quoted else unit) in cells, unit


def test_district_csv_numbers_are_numbers(client, town):
    """A negative-looking number is never quoted: the demand and shares read back as floats."""
    rows = read_csv(client.get("/planner/districts.csv", params=PARAMS).text)
    head, body = rows[0], rows[1:]
    for row in body:
        rec = dict(zip(head, row, strict=True))
        assert float(rec["demand"]) >= 0 and int(rec["stations"]) >= 0
        assert not rec["demand"].startswith("'")


# -- command line --------------------------------------------------------------------------


def test_cli_coverage_csv_has_no_live_formula(tmp_path, monkeypatch):
    from app import cli
    from app.cli import coverage as coverage_cli

    url, layers = hostile_database()
    monkeypatch.setattr(coverage_cli, "get_settings", lambda: Settings(database_url=url))
    for weight in ("road", layers[0][0]):
        out = tmp_path / f"{weight}.csv"
        done = CliRunner().invoke(
            cli.cli,
            ["coverage", "run", "--minutes", "5", "--weight", weight, "--csv", str(out)],
        )
        assert done.exit_code == 0, done.output
        raw = out.read_bytes()
        assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw
        rows = read_csv(raw.decode("utf-8"))
        assert formula_cells(rows) == []
        names = {c for row in rows for c in row}
        assert {"'" + d[1] for d in DISTRICTS if d[1][0] in "=+-@"} <= names
        assert len(rows) == 1 + len(DISTRICTS) + 1  # header, districts, all
