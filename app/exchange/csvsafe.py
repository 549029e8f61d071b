"""The one CSV writer of the pages, the API and the command line.

Planners open our CSV files in Excel or WPS. Both need a byte-order mark to read UTF-8
(Chinese district names) and both treat a cell that starts with `=`, `+`, `-` or `@` as a
formula — also after a tab or a carriage return — so a district name or a demand unit such as
`=HYPERLINK("http://…"&A1)` would run as soon as the file is opened (CSV injection, OWASP).

Rules (`cell`):

* **Text** (`str`) starting with `=`, `+`, `-`, `@`, tab or carriage return gets a single
  quote in front (`'=1+1`), which spreadsheet programs show as text; nothing else changes.
* **Numbers** (`int`, `float`, numpy numbers, `Decimal`; not `bool`) are written as numbers,
  never quoted: `-2.5` is a number, not a formula, and a spreadsheet reads it as one.
  A number that is not finite (NaN, ±inf) has no spreadsheet form and `-inf` would read as
  a formula: it is written as an empty cell, like `None`.
* `bool` is written `true`/`false`; anything else as its `str()`, then treated as text.

Files are UTF-8 with a BOM and CRLF line ends (RFC 4180), quoted where needed by the `csv`
module.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from app.coverage.bands import shown_minutes

#: What makes a spreadsheet read a text cell as a formula (OWASP "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"


def cell(value: Any) -> str | int | float:
    """One value as a safe CSV cell (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        return x if math.isfinite(x) else ""
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_rows(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """The rows (and a header line first) as CSV text, BOM included."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    if header is not None:
        w.writerow([cell(h) for h in header])
    for row in rows:
        w.writerow([cell(v) for v in row])
    return BOM + buf.getvalue()


def write_dicts(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Dicts as CSV with these columns (a header line; missing keys are empty cells)."""
    return write_rows(([r.get(c) for c in columns] for r in rows), header=columns)


def attachment(filename: str) -> dict[str, str]:
    """The Content-Disposition header of a download (an ASCII file name we made)."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


#: Decimals of the district table's numbers in CSV: demand (metres of street, people …) to
#: 0.1, areas in km² to 0.001 (1,000 m²), shares to 0.0001 (0.01 %), minutes to 0.1.
DEMAND_DECIMALS = 1
AREA_DECIMALS = 3
SHARE_DECIMALS = 4


def district_columns(bands: Sequence[int]) -> list[str]:
    """The header of the district table (the CLI's `--csv` and the web's districts.csv)."""
    head = ["code", "name", "name_en", "status", "status_reason", "status_reason_en"]
    head += ["district_area_km2", "network_share", "street_area_km2", "cells"]
    head += ["demand", "demand_unit", "demand_unit_en", "uncovered_demand", "stations"]
    head += ["stations_per_10k_demand", "overdense_cells", "median_minutes"]
    head += [f"demand_share_within_{b}min" for b in bands]
    head += [f"area_share_within_{b}min" for b in bands]
    return head


def _rounded(x: Any, digits: int) -> Any:
    return round(float(x), digits) if isinstance(x, numbers.Real) and math.isfinite(x) else x


def _district_line(r: Mapping[str, Any], body: Mapping[str, Any]) -> list[Any]:
    unit = body.get("demand_unit") or {}
    ext = r.get("extent") or {}
    reason = ext.get("reason") or {}
    line = [r.get("code"), r.get("name"), r.get("name_en"), ext.get("status")]
    line += [reason.get("zh"), reason.get("en"), ext.get("district_area_km2")]
    line += [_rounded(ext.get("network_share"), SHARE_DECIMALS)]
    line += [_rounded(r["area_km2"], AREA_DECIMALS), r["cells"]]
    line += [_rounded(r["demand"], DEMAND_DECIMALS), unit.get("zh"), unit.get("en")]
    line += [_rounded(r["uncovered_demand"], DEMAND_DECIMALS), r["stations"]]
    line += [r["stations_per_10k_demand"], r["overdense_cells"]]
    line += [shown_minutes(r["median_minutes"])]
    line += [_rounded(w["demand_share"], SHARE_DECIMALS) for w in r["within"]]
    line += [_rounded(w["area_share"], SHARE_DECIMALS) for w in r["within"]]
    return line


def coverage_summary(body: dict[str, Any], district: str | None = None) -> str:
    """The district table of a coverage summary (`Run.summary()`) as CSV: one row per
    district and an 'all' row (code empty, name 全部 / All), or only `district`'s row. The one
    writer of `yizhan coverage run --csv` and the planner's districts.csv (same header, same
    rounding: `district_columns`, `DEMAND_DECIMALS` …)."""
    bands = [w["minutes"] for w in body["overall"]["within"]]
    if district is not None:
        rows = [r for r in body["districts"] if r.get("code") == district]
    else:
        rows = [
            *body["districts"],
            {**body["overall"], "code": "", "name": "全部", "name_en": "All"},
        ]
    return write_rows((_district_line(r, body) for r in rows), header=district_columns(bands))
