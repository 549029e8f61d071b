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


def coverage_summary(body: dict[str, Any]) -> str:
    """The district table of a coverage summary (`Run.summary()`) as CSV, one row per
    district and an 'all' row: what `yizhan coverage run --csv` writes."""
    bands = [w["minutes"] for w in body["overall"]["within"]]
    head = ["code", "name", "name_en", "cells", "area_km2", "demand", "stations"]
    head += ["stations_per_10k_demand", "overdense_cells", "uncovered_demand"]
    for b in bands:
        head += [f"demand_share_{b}min", f"area_share_{b}min"]
    rows = [*body["districts"], {"code": "", "name": "全部", "name_en": "All", **body["overall"]}]
    lines = []
    for r in rows:
        line = [r.get("code"), r.get("name"), r.get("name_en"), r["cells"], r["area_km2"]]
        line += [round(r["demand"], 3), r["stations"], r["stations_per_10k_demand"]]
        line += [r["overdense_cells"], round(r["uncovered_demand"], 3)]
        for x in r["within"]:
            line += [x["demand_share"], x["area_share"]]
        lines.append(line)
    return write_rows(lines, header=head)
