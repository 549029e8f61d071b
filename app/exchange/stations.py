"""Stations as spreadsheet rows: the template's columns, reading rows into validated station
records (per-row, per-column errors in Chinese and English) and writing stations back as
rows in exactly the same columns — so an export re-imports unchanged.

Pure: no database, no web framework. `app/stations/exchange_service.py` compares the records
with the stored stations, finds likely duplicates and applies them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.errors import InvalidInputError
from app.geo import coords
from app.hours import evaluate
from app.stations.schemas import StationProperties, check_lon_lat
from app.stations.vocab import ACCESS, AMENITIES, HOST_TYPES, STATUSES, Term

#: Decimal places positions are stored and compared with (1e-7° ≈ 1 cm).
POSITION_DECIMALS = 7

COORD_SYSTEMS: tuple[Term, ...] = (
    Term("wgs84", "WGS-84（GPS、天地图、OpenStreetMap）", "WGS-84 (GPS, Tianditu, OpenStreetMap)"),
    Term("gcj02", "GCJ-02（高德、腾讯地图）", "GCJ-02 (Amap, Tencent Maps)"),
    Term("bd09", "BD-09（百度地图）", "BD-09 (Baidu Maps)"),
)
#: Other ways people write a coordinate system (after lower-casing and dropping - _ space).
COORD_ALIASES: dict[str, str] = {
    "wgs84": "wgs84",
    "gps": "wgs84",
    "epsg4326": "wgs84",
    "天地图": "wgs84",
    "gcj02": "gcj02",
    "高德": "gcj02",
    "高德地图": "gcj02",
    "腾讯": "gcj02",
    "腾讯地图": "gcj02",
    "火星坐标": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "百度": "bd09",
    "百度地图": "bd09",
}


@dataclass(frozen=True)
class Column:
    """One column of the template: its property key, Chinese header, English name, whether a
    value is required, what it holds (zh/en) and its vocabulary, if any."""

    key: str
    zh: str
    en: str
    required: bool
    help_zh: str
    help_en: str
    vocab: tuple[Term, ...] = ()
    many: bool = False


COLUMNS: tuple[Column, ...] = (
    Column(
        "external_id", "编号", "ID", True,
        "本单位的站点编号，唯一；已有编号的行更新该站点，新编号新建站点。"
        "字母、数字及 _ . : / -，最多 64 个字符",
        "Your unique station ID; a row with an existing ID updates that station, a new ID "
        "creates one. Letters, digits and _ . : / -, at most 64 characters",
    ),
    Column("name", "名称", "Name", True, "站点名称，最多 200 字", "Station name, ≤ 200 characters"),
    Column("address", "地址", "Address", False, "地址，最多 500 字", "Address, ≤ 500 characters"),
    Column(
        "district_code", "行政区划代码", "District code", False,
        "6、9 或 12 位行政区划代码，如 420103（江汉区）",
        "6, 9 or 12-digit administrative code, e.g. 420103 (Jianghan)",
    ),
    Column(
        "host_type", "承办单位类型", "Host type", False,
        "下拉选择；留空为“其他”", "Choose from the list; empty means other", HOST_TYPES,
    ),
    Column("operator", "运营单位", "Operator", False, "运营单位名称", "Who runs it"),
    Column(
        "access", "服务对象", "Who may use it", False,
        "下拉选择；留空为“户外劳动者”", "Choose from the list; empty means all outdoor workers",
        ACCESS,
    ),
    Column(
        "amenities", "服务设施", "Amenities", False,
        "用逗号分隔的设施名称或代码，如：饮用水，微波炉，卫生间",
        "Comma-separated amenity names or codes, e.g. drinking_water, microwave, toilet",
        AMENITIES, many=True,
    ),
    Column(
        "opening_hours", "开放时间", "Opening hours", False,
        "OpenStreetMap 开放时间格式，如 Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00；全天开放写 24/7",
        "OpenStreetMap opening_hours syntax, e.g. Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00; or 24/7",
    ),
    Column(
        "status", "状态", "Status", False,
        "下拉选择；留空为“正常开放”。“重复（已合并）”只能在站点编辑页设置",
        "Choose from the list; empty means open. Duplicate can only be set in the station editor",
        STATUSES,
    ),
    Column("phone", "电话", "Phone", False, "联系电话，如 027-85551234", "Phone number"),
    Column(
        "capacity", "容纳人数", "Capacity", False, "可同时休息的人数（整数）",
        "How many people can rest at once (a whole number)",
    ),
    Column("notes", "备注", "Notes", False, "备注，最多 1000 字", "Notes, ≤ 1000 characters"),
    Column(
        "lon", "经度", "Longitude", True, "经度（十进制度数，如 114.2875）",
        "Longitude in decimal degrees, e.g. 114.2875",
    ),
    Column(
        "lat", "纬度", "Latitude", True, "纬度（十进制度数，如 30.5825）",
        "Latitude in decimal degrees, e.g. 30.5825",
    ),
    Column(
        "coord_sys", "坐标系", "Coordinate system", False,
        "经纬度的坐标系：从高德/腾讯地图复制的选 gcj02，百度地图选 bd09，GPS 选 wgs84；"
        "留空按上传时的选择（默认 wgs84）",
        "The datum of lon/lat: gcj02 if copied from Amap or Tencent Maps, bd09 from Baidu, "
        "wgs84 from GPS; empty means the upload's coord_sys (default wgs84)",
        COORD_SYSTEMS,
    ),
)  # fmt: skip

KEYS: tuple[str, ...] = tuple(c.key for c in COLUMNS)
HEADER: tuple[str, ...] = tuple(c.zh for c in COLUMNS)
BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
#: The station properties a row sets (everything but the position columns).
PROPERTY_KEYS: tuple[str, ...] = tuple(k for k in KEYS if k not in ("lon", "lat", "coord_sys"))
#: Statuses an import may set (a duplicate needs the station it duplicates).
IMPORT_STATUSES: frozenset[str] = frozenset(t.code for t in STATUSES) - {"duplicate"}

#: Response-only members of a station Feature (GET /stations): ignored when a GeoJSON export
#: or API response is imported; any other unknown member is an error.
IGNORED_GEOJSON_KEYS: frozenset[str] = frozenset(
    {
        "open_now", "next_change", "next_change_label", "open_reports", "source_crs",
        "created_at", "updated_at", "version", "links", "distance_m", "minutes", "mode",
        "freshness", "confirmed_at", "closed_until", "status_reason", "duplicate_of", "level",
        "id",
    }
)  # fmt: skip


def _fold(text: str) -> str:
    return re.sub(r"[\s\-_]", "", unicodedata.normalize("NFKC", text)).lower()


def _lookup(vocab: tuple[Term, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in vocab:
        for name in (t.code, t.zh, t.en):
            out[_fold(name)] = t.code
    return out


_HEADER_LOOKUP: dict[str, str] = {}
for _c in COLUMNS:
    for _name in (_c.key, _c.zh, _c.en, f"{_c.zh}({_c.key})", f"{_c.zh}（{_c.key}）"):
        _HEADER_LOOKUP[_fold(_name)] = _c.key
_HEADER_LOOKUP.update({_fold(a): k for a, k in (("lng", "lon"), ("longitude", "lon"))})
_HEADER_LOOKUP.update({_fold(a): k for a, k in (("latitude", "lat"),)})
_VOCAB_LOOKUP: dict[str, dict[str, str]] = {c.key: _lookup(c.vocab) for c in COLUMNS if c.vocab}
_VOCAB_LOOKUP["coord_sys"] = {**_VOCAB_LOOKUP["coord_sys"], **COORD_ALIASES}
_LABEL: dict[str, dict[str, str]] = {c.key: {t.code: t.zh for t in c.vocab} for c in COLUMNS}
_LIST_SPLIT = re.compile(r"[,，、;；\n]+")
_DECIMAL = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class RowError:
    """What is wrong with one cell: the row as the file numbers it (spreadsheet row, or the
    feature's 1-based position in GeoJSON), the column's key and the reason."""

    row: int
    column: str
    message: str
    geojson: bool = False

    def as_dict(self) -> dict[str, Any]:
        col = BY_KEY.get(self.column)
        header = col.zh if col else self.column
        where_zh = f"第 {self.row} 个要素" if self.geojson else f"第 {self.row} 行"
        where_en = f"feature {self.row}" if self.geojson else f"row {self.row}"
        return {
            "row": self.row,
            "column": self.column,
            "header": header,
            "message": self.message,
            "zh": f"{where_zh} {header}: {self.message}",
            "en": f"{where_en}, {self.column}: {self.message}",
        }


@dataclass
class Record:
    """One valid row: station properties (codes, normalised) and the WGS-84 position."""

    row: int
    properties: dict[str, Any]
    lon: float
    lat: float
    coord_sys: str
    #: The position as given (in `coord_sys`), for messages.
    given: tuple[float, float] = (0.0, 0.0)

    @property
    def external_id(self) -> str:
        return str(self.properties["external_id"])


@dataclass
class Parsed:
    """A whole file read: the valid records and every error, in file order."""

    format: str
    records: list[Record] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


def header_keys(header: Sequence[str]) -> list[str | None]:
    """The column key of each header cell (None for an empty header over an empty column);
    unknown or repeated headers are an error naming them."""
    keys: list[str | None] = []
    seen: set[str] = set()
    for i, title in enumerate(header):
        if not title:
            keys.append(None)
            continue
        key = _HEADER_LOOKUP.get(_fold(title))
        if key is None:
            raise InvalidInputError(
                f"header: unknown column {title!r} (column {i + 1}); the columns are "
                f"{', '.join(HEADER)} (未知的列名，请使用模板)",
                field="header",
            )
        if key in seen:
            raise InvalidInputError(
                f"header: column {title!r} appears twice (列名重复)", field="header"
            )
        seen.add(key)
        keys.append(key)
    missing = [BY_KEY[k].zh for k in ("external_id", "name", "lon", "lat") if k not in seen]
    if missing:
        raise InvalidInputError(
            f"header: required columns missing: {', '.join(missing)} (缺少必需的列)",
            field="header",
        )
    return keys


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number (须为数字)")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if not _DECIMAL.match(text):
        raise ValueError(f"{what} must be a decimal number, got {text!r} (须为十进制数字)")
    return float(text)


def _vocab(key: str, value: str) -> str:
    code = _VOCAB_LOOKUP[key].get(_fold(value))
    if code is None:
        col = BY_KEY[key]
        valid = "、".join(t.zh for t in col.vocab)
        raise ValueError(f"unknown value {value!r}; valid: {valid} (取值无效)")
    return code


def _amenities(value: Any) -> list[str]:
    items = value if isinstance(value, list) else _LIST_SPLIT.split(str(value))
    codes: list[str] = []
    bad: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        code = _VOCAB_LOOKUP["amenities"].get(_fold(text))
        if code is None:
            bad.append(text)
        else:
            codes.append(code)
    if bad:
        valid = "、".join(t.zh for t in AMENITIES)
        raise ValueError(
            f"unknown amenity {', '.join(repr(b) for b in bad)}; valid: {valid} (未知的服务设施)"
        )
    return codes


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number (须为整数)")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"must be a whole number, got {value} (须为整数)")
    text = str(value).strip()
    if not re.fullmatch(r"[+]?\d{1,9}", text):
        raise ValueError(f"must be a whole number, got {text!r} (须为整数)")
    return int(text)


def parse_row(
    row: int, cells: Mapping[str, Any], default_coord_sys: str, geojson: bool = False
) -> tuple[Record | None, list[RowError]]:
    """Validate one row (column key → raw cell): a record, or the errors of its cells."""
    errors: list[RowError] = []

    def fail(column: str, message: str) -> None:
        errors.append(RowError(row, column, message, geojson))

    props: dict[str, Any] = {}
    for key in PROPERTY_KEYS:
        raw = cells.get(key)
        if key == "amenities":
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                props[key] = []
                continue
            try:
                props[key] = _amenities(raw)
            except ValueError as exc:
                fail(key, str(exc))
            continue
        if key == "capacity":
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                props[key] = _integer(raw)
            except ValueError as exc:
                fail(key, str(exc))
            continue
        text = _text(raw)
        if text is None:
            continue
        if key in _VOCAB_LOOKUP:
            try:
                text = _vocab(key, text)
            except ValueError as exc:
                fail(key, str(exc))
                continue
        if key == "opening_hours":
            try:
                text = evaluate.validate(text)
            except ValueError as exc:
                fail(key, str(exc))
                continue
        props[key] = text
    coord_sys = default_coord_sys
    raw_sys = _text(cells.get("coord_sys"))
    if raw_sys is not None:
        try:
            coord_sys = _vocab("coord_sys", raw_sys)
        except ValueError as exc:
            fail("coord_sys", str(exc))
    position: list[float] = []
    for key, what in (("lon", "longitude"), ("lat", "latitude")):
        raw = cells.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            fail(key, "required (必填)")
            continue
        try:
            position.append(_number(raw, what))
        except ValueError as exc:
            fail(key, str(exc))
    try:
        model = StationProperties.model_validate(props)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err.get("loc") or ("external_id",)
            key = str(loc[0])
            msg = str(err.get("msg", "invalid"))
            msg = msg.removeprefix("Value error, ")
            if err.get("type") == "missing":
                msg = "required (必填)"
            fail(key, msg)
        model = None
    lon = lat = 0.0
    if len(position) == 2:
        try:
            check_lon_lat(position[0], position[1])
            lon, lat = coords.to_wgs84(position[0], position[1], coord_sys)
        except ValueError as exc:
            fail("lon" if "lon" in str(exc) else "lat", str(exc))
    if errors or model is None:
        return None, sorted(errors, key=lambda e: KEYS.index(e.column) if e.column in KEYS else 99)
    return (
        Record(
            row=row,
            properties=model.model_dump(),
            lon=round(lon, POSITION_DECIMALS),
            lat=round(lat, POSITION_DECIMALS),
            coord_sys=coord_sys,
            given=(position[0], position[1]),
        ),
        [],
    )


def _check_unique(parsed: Parsed) -> None:
    """A station ID twice in one file is an error on the later rows."""
    first: dict[str, int] = {}
    kept: list[Record] = []
    for rec in parsed.records:
        ext = rec.external_id
        if ext in first:
            parsed.errors.append(
                RowError(
                    rec.row,
                    "external_id",
                    f"{ext!r} is also in row {first[ext]} (编号与第 {first[ext]} 行重复)",
                    parsed.format == "geojson",
                )
            )
        else:
            first[ext] = rec.row
            kept.append(rec)
    parsed.records = kept
    parsed.errors.sort(key=lambda e: (e.row, KEYS.index(e.column) if e.column in KEYS else 99))


def parse_table(header: Sequence[str], rows: Sequence[tuple[int, Sequence[Any]]],
                fmt: str, default_coord_sys: str) -> Parsed:  # fmt: skip
    """Every row of a sheet (XLSX or CSV) validated."""
    keys = header_keys(header)
    parsed = Parsed(format=fmt, rows=len(rows))
    for number, cells in rows:
        values: dict[str, Any] = {}
        for key, value in zip(keys, cells, strict=False):
            if key is not None:
                values[key] = value
            elif value not in (None, ""):
                raise InvalidInputError(
                    f"header: row {number} has a value under a column without a header "
                    "(有数据的列缺少列名)",
                    field="header",
                )
        record, errors = parse_row(number, values, default_coord_sys)
        parsed.errors.extend(errors)
        if record is not None:
            parsed.records.append(record)
    _check_unique(parsed)
    return parsed


def parse_geojson(data: Any, default_coord_sys: str) -> Parsed:
    """A FeatureCollection of Point features whose properties use the column keys (the API's
    names) or the template's Chinese headers; a `coord_sys` member of the collection
    overrides the upload's default datum."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InvalidInputError(
            "file: a GeoJSON file must be a FeatureCollection (须为 FeatureCollection)",
            field="file",
        )
    features = data.get("features")
    if not isinstance(features, list):
        raise InvalidInputError("features: must be a list", field="features")
    if len(features) > 50_000:
        raise InvalidInputError("features: more than 50000 (要素过多，请拆分)", field="features")
    # a collection that says its datum (our own responses do: GET /stations?coord_sys=gcj02)
    # is read in it; rows may still name their own
    if data.get("coord_sys") in {t.code for t in COORD_SYSTEMS}:
        default_coord_sys = str(data["coord_sys"])
    parsed = Parsed(format="geojson", rows=len(features))
    for i, feat in enumerate(features, start=1):
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            parsed.errors.append(RowError(i, "type", "not a GeoJSON Feature (不是要素)", True))
            continue
        geom = feat.get("geometry")
        coords_ = geom.get("coordinates") if isinstance(geom, dict) else None
        if (
            not isinstance(geom, dict)
            or geom.get("type") != "Point"
            or not isinstance(coords_, list)
            or len(coords_) not in (2, 3)
        ):
            errors.append(RowError(i, "geometry", "must be a Point [lon, lat] (须为点)", True))
        else:
            values["lon"], values["lat"] = coords_[0], coords_[1]
        props = feat.get("properties")
        if not isinstance(props, dict):
            errors.append(RowError(i, "properties", "must be an object (须为对象)", True))
            props = {}
        for name, value in props.items():
            key = _HEADER_LOOKUP.get(_fold(str(name)))
            if key is None or key in ("lon", "lat"):
                if str(name) not in IGNORED_GEOJSON_KEYS:
                    errors.append(RowError(i, str(name), "unknown property (未知属性)", True))
                continue
            values[key] = value
        record, row_errors = parse_row(i, values, default_coord_sys, geojson=True)
        parsed.errors.extend(errors + row_errors)
        if record is not None and not errors:
            parsed.records.append(record)
    _check_unique(parsed)
    return parsed


# --- writing ---------------------------------------------------------------------------------


def station_row(s: Mapping[Any, Any]) -> list[Any]:
    """A stored station (codes, WGS-84 lon/lat) as a template row: vocabularies as their
    Chinese labels, amenities comma-separated, coordinates WGS-84 (the 坐标系 column says so)."""
    out: list[Any] = []
    for c in COLUMNS:
        if c.key == "coord_sys":
            out.append("wgs84")
        elif c.key in ("lon", "lat"):
            out.append(round(float(s[c.key]), POSITION_DECIMALS))
        elif c.key == "amenities":
            labels = _LABEL["amenities"]
            out.append(",".join(labels.get(a, a) for a in s.get("amenities") or []) or None)
        elif c.vocab:
            v = s.get(c.key)
            out.append(_LABEL[c.key].get(v, v) if v is not None else None)
        else:
            out.append(s.get(c.key))
    return out


def station_feature(s: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored station as an exported GeoJSON Feature: the template's properties by their
    keys (codes, amenities a list), WGS-84 coordinates."""
    props = {k: s.get(k) for k in PROPERTY_KEYS}
    props["amenities"] = list(s.get("amenities") or [])
    return {
        "type": "Feature",
        "id": s.get("id"),
        "geometry": {
            "type": "Point",
            "coordinates": [
                round(float(s["lon"]), POSITION_DECIMALS),
                round(float(s["lat"]), POSITION_DECIMALS),
            ],
        },
        "properties": props,
    }


#: Column widths of the data sheet (characters).
WIDTHS: tuple[float, ...] = (14, 30, 36, 14, 14, 24, 14, 40, 30, 12, 16, 10, 30, 13, 13, 10)


def validations() -> list[tuple[int, list[str]]]:
    """The drop-down lists of the data sheet: (column index, Chinese labels)."""
    out = []
    for i, c in enumerate(COLUMNS):
        if c.vocab and not c.many:
            values = [t.code for t in c.vocab] if c.key == "coord_sys" else [t.zh for t in c.vocab]
            out.append((i, values))
    return out


def help_rows() -> list[list[str]]:
    """The second sheet: each column explained in Chinese and English, with its values."""
    rows = []
    for c in COLUMNS:
        values = "、".join(f"{t.zh}（{t.code}）" for t in c.vocab) if c.vocab else ""
        rows.append(
            [c.zh, c.key, "是 yes" if c.required else "否 no", c.help_zh, c.help_en, values]
        )
    return rows


HELP_HEADER = ("列名", "key", "必填 required", "说明", "Description", "可选值 values")
DATA_SHEET = "站点"
HELP_SHEET = "说明"
