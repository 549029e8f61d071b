"""District rules: validate uploads, convert and repair outlines, load, present.

Storage is WGS-84 MultiPolygons that are valid and not empty (the table `CHECK`s it too).
Input may be in WGS-84, GCJ-02 (Amap, Tencent) or BD-09 (Baidu); `app.districts.convert`
applies the project's own transforms (`app.geo.coords`, exact iterative inverses) to whole
outlines at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection, RowMapping

from app.accounts.policy import SYSTEM, Actor
from app.audit import service as audit
from app.audit.service import Channel
from app.districts import queries
from app.districts.convert import from_wgs84, to_wgs84
from app.errors import InvalidInputError, NotFoundError
from app.geo import coords
from app.geo.validity import invalid_reason

CODE_RE: Final = r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"
MAX_FEATURES: Final = 5000
MAX_NAME: Final = 100
MAX_ERRORS_SHOWN: Final = 10
#: Coordinates in responses are rounded to 1e-7° (~1 cm).
OUTPUT_DECIMALS: Final = 7


@dataclass(frozen=True, slots=True)
class DistrictIn:
    """A validated district: WGS-84, valid, non-empty MultiPolygon."""

    code: str
    name: str
    name_en: str | None
    parent_code: str | None
    geom: MultiPolygon


class DistrictPolygon(NamedTuple):
    """A stored district for analyses: (code, name, name_en, WGS-84 MultiPolygon)."""

    code: str
    name: str
    name_en: str | None
    geom: MultiPolygon


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load did."""

    mode: str
    #: Districts written by this load.
    districts: int
    #: Replace: districts that were deleted first; upsert: existing codes that were updated.
    replaced: int
    #: Districts in the table afterwards.
    total: int
    #: Stations lying in some district, and those whose `district_code` changed.
    stations_in_districts: int
    stations_changed: int
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "districts": self.districts,
            "replaced": self.replaced,
            "total": self.total,
            "stations_in_districts": self.stations_in_districts,
            "stations_changed": self.stations_changed,
            "source": self.source,
        }


# --- geometry --------------------------------------------------------------------------------


def polygonal(geom: BaseGeometry) -> MultiPolygon:
    """Repair `geom` (`shapely.make_valid`) and keep its polygonal parts as one MultiPolygon
    (empty when nothing with area is left). Lines and points a repair produces are dropped."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    parts: list[Polygon] = []

    def collect(g: BaseGeometry) -> None:
        if isinstance(g, Polygon):
            if not g.is_empty:
                parts.append(g)
        elif isinstance(g, MultiPolygon):
            parts.extend(p for p in g.geoms if not p.is_empty)
        elif hasattr(g, "geoms"):  # GeometryCollection
            for sub in g.geoms:
                collect(sub)

    collect(geom)
    multi = MultiPolygon(parts)
    if not multi.is_valid:  # polygons of a collection may overlap or touch: dissolve them
        merged = shapely.union_all(parts)
        multi = merged if isinstance(merged, MultiPolygon) else MultiPolygon([merged])
    return multi


# --- upload validation -----------------------------------------------------------------------


class _Bad(Exception):
    """One problem in one feature: `field: message`."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field


def _position_problem(pos: Any, coord_sys: str) -> str | None:
    """What is wrong with one position, or None."""
    if not isinstance(pos, list) or not 2 <= len(pos) <= 3:
        return "a position is [lon, lat] (optionally with altitude)"
    for v in pos:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"coordinates must be numbers, got {v!r}"
    try:
        coords.check_in_range(float(pos[0]), float(pos[1]), coord_sys)
    except ValueError as exc:
        return str(exc)
    return None


def _ring(ring: Any, where: str, coord_sys: str) -> NDArray[np.float64]:
    if not isinstance(ring, list):
        raise _Bad(where, "a linear ring is an array of positions")
    arr: NDArray[Any] | None
    try:
        arr = np.asarray(ring)
    except (ValueError, TypeError):
        arr = None
    ok = (
        arr is not None
        and arr.ndim == 2
        and arr.shape[1] in (2, 3)
        and arr.dtype.kind in "if"
        and bool(np.isfinite(arr).all())
        and bool((np.abs(arr[:, 0]) <= 180.0).all())
        and bool((np.abs(arr[:, 1]) <= 90.0).all())
        # numpy turns true/false into 1/0 next to numbers; JSON booleans are not coordinates
        and not any(v is True or v is False for pos in ring for v in pos)
    )
    if not ok:
        for i, pos in enumerate(ring):
            problem = _position_problem(pos, coord_sys)
            if problem is not None:
                raise _Bad(f"{where}[{i}]", problem)
        raise _Bad(where, "positions must all have the same number of coordinates")
    assert arr is not None
    xy = arr[:, :2].astype(np.float64)
    if len(xy) < 4:
        raise _Bad(where, f"a linear ring needs at least 4 positions, got {len(xy)}")
    if not np.array_equal(xy[0], xy[-1]):
        raise _Bad(where, "a linear ring must be closed (first and last positions equal)")
    return xy


def _polygon(rings: Any, where: str, coord_sys: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise _Bad(where, "a Polygon is a non-empty array of linear rings")
    shell = _ring(rings[0], f"{where}[0]", coord_sys)
    holes = [_ring(r, f"{where}[{i}]", coord_sys) for i, r in enumerate(rings[1:], start=1)]
    return Polygon(shell, holes)


def _geometry(geometry: Any, where: str, coord_sys: str) -> BaseGeometry:
    if not isinstance(geometry, dict):
        raise _Bad(where, "a Polygon or MultiPolygon geometry is required")
    kind = geometry.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise _Bad(f"{where}.type", f"must be Polygon or MultiPolygon, got {kind!r}")
    raw = geometry.get("coordinates")
    at = f"{where}.coordinates"
    if kind == "Polygon":
        return _polygon(raw, at, coord_sys)
    if not isinstance(raw, list) or not raw:
        raise _Bad(at, "a MultiPolygon is a non-empty array of Polygons")
    return MultiPolygon([_polygon(p, f"{at}[{i}]", coord_sys) for i, p in enumerate(raw)])


def _code(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(CODE_RE, value):
        raise _Bad(where, f"a 6, 9 or 12-digit administrative code string, got {value!r}")
    return value


def _name(value: Any, where: str, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Bad(where, f"a string of 1-{MAX_NAME} characters is required, got {value!r}")
    if "\x00" in value:
        raise _Bad(where, "must not contain NUL characters (不能包含 NUL 字符)")
    value = " ".join(value.split())
    if not 1 <= len(value) <= MAX_NAME:
        raise _Bad(where, f"must be 1-{MAX_NAME} characters, got {len(value)}")
    return value


@dataclass(slots=True)
class _Parsed:
    index: int
    code: str
    name: str
    name_en: str | None
    parent_code: str | None
    geom: BaseGeometry


def _feature(feature: Any, i: int, coord_sys: str) -> _Parsed:
    at = f"features[{i}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _Bad(f"{at}.type", "each member of features must be a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise _Bad(f"{at}.properties", "an object with code and name is required")
    code = _code(props.get("code"), f"{at}.properties.code")
    name = _name(props.get("name"), f"{at}.properties.name", required=True)
    assert name is not None
    name_en = _name(props.get("name_en"), f"{at}.properties.name_en", required=False)
    parent = props.get("parent_code")
    if parent is not None:
        parent = _code(parent, f"{at}.properties.parent_code")
        if parent == code:
            raise _Bad(f"{at}.properties.parent_code", "a district cannot be its own parent")
    geom = _geometry(feature.get("geometry"), f"{at}.geometry", coord_sys)
    # Checked as given (before any datum conversion): an invalid outline is refused, not
    # repaired into something the planner did not draw.
    problem = invalid_reason(geom)
    if problem is not None:
        raise _Bad(f"{at}.geometry", problem)
    return _Parsed(i, code, name, name_en, parent, geom)


def parse_collection(data: Any, coord_sys: str = "wgs84") -> list[DistrictIn]:
    """Validate a GeoJSON FeatureCollection of districts given in `coord_sys`; return them in
    WGS-84, repaired. Every problem found is reported at once (the first ten shown), naming
    the field as `features[3].properties.code`; nothing is returned unless all are fine.

    Each Feature needs properties `code` (6, 9 or 12 digits, unique in the file) and `name`
    (1-100 characters); `name_en` and `parent_code` are optional; other properties are
    ignored. Geometry: Polygon or MultiPolygon with closed rings of at least 4 positions,
    finite in-range number coordinates (no booleans or strings), valid as OGC simple features
    (no self-intersection, holes inside their shell, parts not overlapping): an invalid one is
    refused naming the feature, the problem and where, e.g. `features[3].geometry:
    self-intersection near 114.301, 30.552`, never repaired into another shape.
    """
    if coord_sys not in coords.COORD_SYSTEMS:
        raise InvalidInputError(
            f"coord_sys: one of {', '.join(coords.COORD_SYSTEMS)}, got {coord_sys!r}",
            field="coord_sys",
        )
    if not isinstance(data, dict):
        raise InvalidInputError("body: a GeoJSON FeatureCollection object is required", "body")
    if data.get("type") != "FeatureCollection":
        raise InvalidInputError(
            f"type: must be 'FeatureCollection', got {data.get('type')!r}", field="type"
        )
    features = data.get("features")
    if not isinstance(features, list):
        raise InvalidInputError("features: an array of Features is required", field="features")
    if not features:
        raise InvalidInputError("features: at least one district is required", "features")
    if len(features) > MAX_FEATURES:
        raise InvalidInputError(
            f"features: at most {MAX_FEATURES} districts per upload, got {len(features)}",
            field="features",
        )
    errors: list[_Bad] = []
    parsed: list[_Parsed] = []
    first_at: dict[str, int] = {}
    for i, feature in enumerate(features):
        try:
            p = _feature(feature, i, coord_sys)
        except _Bad as bad:
            errors.append(bad)
            continue
        if p.code in first_at:
            errors.append(
                _Bad(
                    f"features[{i}].properties.code",
                    f"{p.code!r} appears more than once (also features[{first_at[p.code]}])",
                )
            )
            continue
        first_at[p.code] = i
        parsed.append(p)
    if not errors:
        for p, geom in zip(parsed, to_wgs84([p.geom for p in parsed], coord_sys), strict=True):
            # valid as given; a datum shift can still pinch a ring by a millimetre: repaired
            p.geom = polygonal(geom)
            if p.geom.is_empty:
                errors.append(
                    _Bad(f"features[{p.index}].geometry", "has no area (empty after repair)")
                )
    if errors:
        shown = "; ".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
        more = len(errors) - MAX_ERRORS_SHOWN
        raise InvalidInputError(
            shown + (f" (and {more} more)" if more > 0 else ""), field=errors[0].field
        )
    return [DistrictIn(p.code, p.name, p.name_en, p.parent_code, _as_multi(p.geom)) for p in parsed]


def _as_multi(geom: BaseGeometry) -> MultiPolygon:
    assert isinstance(geom, MultiPolygon)
    return geom


def parse_json(body: bytes, coord_sys: str = "wgs84") -> list[DistrictIn]:
    """Parse a request body or file (UTF-8 JSON), then `parse_collection`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"body: not valid JSON: {exc}", field="body") from exc
    return parse_collection(data, coord_sys)


# --- loading ---------------------------------------------------------------------------------

_DATUM_NAMES: Final = {"wgs84": "WGS-84", "gcj02": "GCJ-02", "bd09": "BD-09"}


def source_label(base: str | None, coord_sys: str) -> str:
    """The provenance stored with uploaded districts: `base` (default "upload"), plus the
    conversion when the input was not WGS-84, e.g. "districts.geojson (GCJ-02 → WGS-84)"."""
    label = " ".join((base or "").split())[:200] or "upload"
    if coord_sys != "wgs84":
        label += f" ({_DATUM_NAMES[coord_sys]} → WGS-84)"
    return label


def load(
    conn: Connection,
    districts: Sequence[DistrictIn],
    source: str,
    *,
    replace: bool = True,
    actor: Actor = SYSTEM,
    channel: Channel = "cli",
) -> LoadResult:
    """Write validated districts in the caller's transaction, then re-assign every station's
    district. `replace=True` (the default) deletes all districts first, so the table is
    exactly the upload; `replace=False` upserts by code and keeps the others. Audited: one
    event for the upload, and each station whose district changes gets its revision
    (action `districts`), all as `actor`."""
    audit.attribute(conn, actor, channel, action="districts")
    rows = [
        queries.DistrictRow(d.code, d.name, d.name_en, d.parent_code, shapely.to_wkb(d.geom))
        for d in districts
    ]
    if replace:
        replaced = queries.replace_all(conn, rows, source)
    else:
        replaced = queries.upsert(conn, rows, source)
    matched, changed = queries.assign_station_districts(conn)
    audit.record(
        conn,
        actor,
        channel,
        "districts.replace" if replace else "districts.upsert",
        "districts",
        {"districts": len(rows), "source": source, "stations_changed": changed},
    )
    return LoadResult(
        mode="replace" if replace else "upsert",
        districts=len(rows),
        replaced=replaced,
        total=queries.count(conn),
        stations_in_districts=matched,
        stations_changed=changed,
        source=source,
    )


def district_polygons(conn: Connection) -> list[DistrictPolygon]:
    """Every stored district as (code, name, name_en, WGS-84 MultiPolygon), ordered by code:
    what coverage summaries need."""
    out = []
    for r in queries.polygon_rows(conn):
        geom = shapely.from_wkb(bytes(r["wkb"]))
        out.append(DistrictPolygon(r["code"], r["name"], r["name_en"], _as_multi(geom)))
    return out


# --- presentation ----------------------------------------------------------------------------


def _round(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.round(xy, OUTPUT_DECIMALS))


def _features(rows: Sequence[RowMapping], coord_sys: str) -> list[dict[str, Any]]:
    geoms = from_wgs84([shapely.from_wkb(bytes(r["wkb"])) for r in rows], coord_sys)
    return [
        {
            "type": "Feature",
            "id": r["code"],
            "geometry": mapping(_round(g)),
            "properties": {
                "code": r["code"],
                "name": r["name"],
                "name_en": r["name_en"],
                "parent_code": r["parent_code"],
                "source": r["source"],
                "area_km2": round(float(r["area_km2"]), 3),
                "updated_at": r["updated_at"].isoformat(),
            },
        }
        for r, g in zip(rows, geoms, strict=True)
    ]


def feature_collection(conn: Connection, coord_sys: str, simplify_m: float) -> dict[str, Any]:
    """All districts as a GeoJSON FeatureCollection in `coord_sys`."""
    rows = queries.list_rows(conn, simplify_m)
    features = _features(rows, coord_sys)
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberReturned": len(features),
        "coord_sys": coord_sys,
        "simplify_m": simplify_m,
    }


def feature(conn: Connection, code: str, coord_sys: str, simplify_m: float) -> dict[str, Any]:
    """One district as a GeoJSON Feature; 404 naming `code` when there is none."""
    if not re.fullmatch(CODE_RE, code):
        raise InvalidInputError(
            f"code: a 6, 9 or 12-digit administrative code, got {code!r}", field="code"
        )
    row = queries.get_row(conn, code, simplify_m)
    if row is None:
        raise NotFoundError(f"code: no district {code}", field="code")
    out = _features([row], coord_sys)[0]
    out["coord_sys"] = coord_sys
    return out
