"""Spreadsheets in and out: read XLSX (python-calamine), CSV (UTF-8 with or without BOM, or
GBK/GB 18030 as Excel on a Chinese Windows saves it) and write XLSX (xlsxwriter), formula-safe.

Pure: bytes in, rows out (and back). What the rows mean is `app/exchange/stations.py`'s.

Formula safety of XLSX: every text cell is written with `write_string` — a shared string,
never a formula, whatever it starts with — and a text that starts with `=`, `+`, `-`, `@`,
tab or carriage return also gets Excel's "quote prefix" style (the cell shows as text and stays
text when someone edits it and presses Enter). Reading gives the text back unchanged. CSV is
written by `app/exchange/csvsafe.py` (a leading `'`), and reading a CSV cell removes that one
`'` again when what follows would be a formula, so an export re-imports unchanged.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from app.errors import InvalidInputError
from app.exchange.csvsafe import FORMULA_START

Format = Literal["xlsx", "csv", "geojson"]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Media types a client may send a file with (the body of the import endpoint).
MEDIA_TYPES: dict[str, Format] = {
    XLSX_MEDIA_TYPE: "xlsx",
    "application/vnd.ms-excel": "csv",  # what some browsers call a .csv
    "text/csv": "csv",
    "application/csv": "csv",
    "text/plain": "csv",
    "application/geo+json": "geojson",
    "application/json": "geojson",
}
SUFFIXES: dict[str, Format] = {
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".txt": "csv",
    ".geojson": "geojson",
    ".json": "geojson",
}
#: A ZIP archive (every XLSX) starts with these bytes.
ZIP_MAGIC = b"PK\x03\x04"

#: At most this many data rows in one file (the 20 MiB upload limit allows ~100 000 rows).
MAX_ROWS = 50_000
#: At most this many columns are looked at.
MAX_COLUMNS = 64


@dataclass
class Table:
    """A sheet: its header row and its data rows, each with its 1-based row number as the
    spreadsheet shows it (the header is row 1; blank rows are dropped but counted)."""

    header: list[str]
    rows: list[tuple[int, list[Any]]] = field(default_factory=list)
    sheet: str | None = None


def detect_format(data: bytes, media_type: str | None, filename: str | None) -> Format:
    """The file's format: from its first bytes where they tell (a ZIP is XLSX), then the file
    name's suffix, then the media type; otherwise `{`…  is GeoJSON and anything else CSV."""
    if data.startswith(ZIP_MAGIC):
        return "xlsx"
    if filename:
        dot = filename.rfind(".")
        if dot >= 0 and filename[dot:].lower() in SUFFIXES:
            fmt = SUFFIXES[filename[dot:].lower()]
            if fmt != "xlsx":
                return fmt
    media = (media_type or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES and MEDIA_TYPES[media] != "xlsx":
        return MEDIA_TYPES[media]
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return "geojson"
    if media == XLSX_MEDIA_TYPE or (filename or "").lower().endswith((".xlsx", ".xlsm")):
        raise InvalidInputError(
            "file: not an XLSX workbook (no ZIP signature); save it again as .xlsx "
            "(不是有效的 XLSX 文件)",
            field="file",
        )
    return "csv"


def _cell_from_xlsx(value: Any) -> Any:
    """A calamine value as our rows hold it: None for empty, int for whole numbers, text,
    floats; dates and times as ISO text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, int | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        total = int(value.total_seconds())
        return f"{total // 3600:02d}:{total % 3600 // 60:02d}"
    return str(value)


def _trim(row: Sequence[Any], width: int) -> list[Any]:
    cells = list(row[:width])
    return cells + [None] * (width - len(cells))


def _blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _table(raw: Iterable[Sequence[Any]], sheet: str | None) -> Table:
    it = iter(raw)
    header: list[str] | None = None
    number = 0
    for row in it:
        number += 1
        cells = list(row[:MAX_COLUMNS])
        if _blank(cells):
            continue
        header = ["" if c is None else str(c).strip() for c in cells]
        break
    if header is None:
        raise InvalidInputError("file: the sheet is empty (表格为空)", field="file")
    while header and not header[-1]:
        header.pop()
    table = Table(header=header, sheet=sheet)
    width = len(header)
    for row in it:
        number += 1
        cells = _trim(list(row), width)
        if _blank(cells):
            continue
        if len(table.rows) >= MAX_ROWS:
            raise InvalidInputError(
                f"file: more than {MAX_ROWS} rows; split the file (超过 {MAX_ROWS} 行，请拆分)",
                field="file",
            )
        table.rows.append((number, cells))
    return table


#: Sheet names looked for first (the template's data sheet), else the first sheet.
DATA_SHEETS = ("站点", "stations")


def read_xlsx(data: bytes) -> Table:
    """The data sheet of an XLSX workbook (the one called 站点 / stations, else the first)."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        names = list(book.sheet_names)
        name = next((n for n in names if n.strip().lower() in DATA_SHEETS), None)
        if name is None and names:
            name = names[0]
        if name is None:
            raise InvalidInputError("file: the workbook has no sheet (工作簿没有工作表)", "file")
        sheet = book.get_sheet_by_name(name)
        raw = sheet.to_python(skip_empty_area=False)
    except InvalidInputError:
        raise
    except Exception as exc:  # calamine's errors (zip, XML, password) and any oddity in them
        raise InvalidInputError(
            f"file: cannot read the XLSX workbook ({type(exc).__name__}: {str(exc)[:200]}) "
            "(无法读取 XLSX 文件)",
            field="file",
        ) from exc
    return _table(([_cell_from_xlsx(v) for v in row] for row in raw), name)


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else GB 18030 (a superset of GBK: what Excel saves as
    "CSV" on a Chinese Windows); NUL characters are refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"file: neither UTF-8 nor GBK text (byte {exc.start}) (编码无法识别，请存为 UTF-8)",
                field="file",
            ) from exc
    if "\x00" in text:
        raise InvalidInputError("file: contains NUL characters (文件包含 NUL 字符)", field="file")
    return text


def unescape_csv_cell(value: str) -> str:
    """Undo csvsafe's formula guard: `'=1+1` → `=1+1` (only where the `'` guards a formula
    start; any other leading `'` is kept)."""
    if len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def read_csv(data: bytes) -> Table:
    """A CSV file as a table (comma-separated, RFC 4180 quoting)."""
    text = decode_text(data)
    try:
        sample = text[:4096]
        delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        rows = [[None if c.strip() == "" else unescape_csv_cell(c) for c in row] for row in reader]
    except csv.Error as exc:
        raise InvalidInputError(f"file: not valid CSV: {exc} (CSV 格式错误)", field="file") from exc
    return _table(rows, None)


def write_xlsx(
    sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]],
    *,
    widths: Sequence[float] = (),
    validations: Sequence[tuple[int, list[str]]] = (),
    validation_rows: int = 10_000,
) -> bytes:
    """A workbook of (name, header, rows) sheets; the first sheet gets the column `widths`
    and drop-down `validations` (column index, allowed values) for `validation_rows` rows.
    Text is never a formula (see the module docstring)."""
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    guarded = book.add_format({"quote_prefix": True})
    for index, (name, header, rows) in enumerate(sheets):
        ws = book.add_worksheet(name)
        for col, title in enumerate(header):
            ws.write_string(0, col, title, head)
        ws.freeze_panes(1, 0)
        if index == 0:
            for col, width in enumerate(widths):
                ws.set_column(col, col, width)
            for col, values in validations:
                ws.data_validation(
                    1,
                    col,
                    validation_rows,
                    col,
                    {
                        "validate": "list",
                        "source": values,
                        "error_title": "取值无效 Invalid value",
                        "error_message": "请从下拉列表中选择 / choose from the list",
                    },
                )
        else:
            ws.set_column(0, len(header) - 1, 28)
        for r, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                _write(ws, r, col, value, guarded)
    book.close()
    return buf.getvalue()


def _write(ws: Any, row: int, col: int, value: Any, guarded: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        ws.write_boolean(row, col, value)
    elif isinstance(value, int | float):
        if math.isfinite(value):
            ws.write_number(row, col, value)
    else:
        text = str(value)
        if text.startswith(FORMULA_START):
            ws.write_string(row, col, text, guarded)
        else:
            ws.write_string(row, col, text)
