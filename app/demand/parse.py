"""Read a planner's demand file into weights per H3 cell at one resolution. Pure: no database.

**CSV** (UTF-8, with or without BOM, comma separated, header required; column names are
case-insensitive, other columns are ignored):

* points: `lon,lat,weight` (`lng`/`longitude` and `latitude` also accepted);
* cells: `h3,weight`, H3 cell strings at the layer resolution or finer. A finer cell counts
  for its parent at the layer resolution; a coarser one is an error (its weight cannot be
  split without knowing where inside it the demand is).

**GeoJSON**: a FeatureCollection whose features carry a numeric property (`weight_property`,
default `weight`) and a geometry:

* `Point`: the weight goes to the cell containing the point;
* `Polygon` / `MultiPolygon`: the weight is spread over the layer-resolution cells whose
  *centres* lie inside the polygon (H3's centroid containment, `h3.geo_to_cells`, the shape
  form of `polygon_to_cells`; holes excluded), each receiving a share proportional to its
  area (`h3.cell_area`), so the total is preserved. A polygon that contains no cell centre
  (smaller than about one cell) gives its whole weight to the cell containing its
  representative point (`shapely.point_on_surface`, always inside the polygon).

Coordinates are in `coord_sys` (`wgs84`, `gcj02` for Amap/Tencent, `bd09` for Baidu) and are
converted to WGS-84 with `app.geo.coords` (vertex by vertex for polygons) before any cell is
computed. Weights of every row or feature falling into the same cell are summed. A polygon
must be valid as given (closed rings of at least 4 positions, no self-intersection, holes
inside their shell): an invalid one is refused naming the feature, the problem and where,
e.g. `features[3].geometry: not a valid Polygon: self-intersection near 114.301, 30.552`.

**Errors** raise `InvalidInputError` whose detail starts with the field: `header`, `file`,
`rows[N].<column>` (N counts data rows from 1, the header not included; the physical line is
given too) or `features[N].<member>` (N is the index in the `features` array, from 0). Nothing
partial is ever returned: a file is read whole, or refused.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import h3
import numpy as np
import orjson
import shapely
from numpy.typing import NDArray

from app.coverage.grid import RESOLUTIONS, cells_of_points
from app.db.models import DEMAND_LAYER_RE
from app.errors import InvalidInputError
from app.geo import coords
from app.geo.validity import invalid_reason

#: Data rows (CSV) or features (GeoJSON) one file may hold.
MAX_ROWS: Final = 2_000_000
#: Distinct cells one layer may hold (polygons can spread over many).
MAX_CELLS: Final = 2_000_000
#: Largest file the command line reads (the HTTP body limit is the server's own).
MAX_FILE_BYTES: Final = 512 * 1024 * 1024

LON_COLUMNS: Final = ("lon", "lng", "longitude")
LAT_COLUMNS: Final = ("lat", "latitude")
H3_COLUMN: Final = "h3"
DEFAULT_WEIGHT_PROPERTY: Final = "weight"

Format = Literal["csv", "geojson"]
#: Request media types (without parameters) and the parser each selects.
MEDIA_TYPES: Final[dict[str, Format]] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/geo+json": "geojson",
    "application/json": "geojson",
}
#: File suffixes (command line) and the parser each selects.
SUFFIXES: Final[dict[str, Format]] = {".csv": "csv", ".geojson": "geojson", ".json": "geojson"}

_H3_RE: Final = re.compile(r"[0-9a-f]{15,16}")
_WEIGHT_RULE: Final = "must be a finite number ≥ 0"
_KM_PER_DEGREE: Final = 111.32
_MAX_SHOWN: Final = 40


@dataclass(frozen=True, eq=False)
class LayerCells:
    """A parsed layer: sorted unique H3 cells (signed int64) with their summed weights, and
    how many data rows or features were read."""

    cells: NDArray[np.int64]
    weights: NDArray[np.float64]
    rows: int

    @property
    def n_cells(self) -> int:
        return int(self.cells.shape[0])

    @property
    def total_weight(self) -> float:
        return float(self.weights.sum())


# --- arguments --------------------------------------------------------------------------------


def _error(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


def _shown(value: Any) -> str:
    """A value quoted for an error message, cut to a readable length."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return repr(text)


def check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise _error(
            "resolution",
            f"must be one of {', '.join(map(str, RESOLUTIONS))} (H3), got {resolution!r}",
        )


def check_coord_sys(coord_sys: str) -> None:
    if coord_sys not in coords.COORD_SYSTEMS:
        raise _error(
            "coord_sys",
            f"must be one of {', '.join(coords.COORD_SYSTEMS)}, got {_shown(coord_sys)}",
        )


def check_layer_args(
    name: str, unit: str, resolution: int, coord_sys: str, weight_property: str
) -> None:
    """Validate what comes with a file (name, unit, resolution …) before reading the file."""
    if not re.fullmatch(DEMAND_LAYER_RE, name):
        raise _error(
            "name",
            "1-40 characters of a-z, 0-9, '_' or '-', starting with a letter or digit, "
            f"got {_shown(name)}",
        )
    if not 1 <= len(unit.strip()) <= 40 or unit != unit.strip():
        raise _error("unit", f"1-40 characters without surrounding spaces, got {_shown(unit)}")
    check_resolution(resolution)
    check_coord_sys(coord_sys)
    if not 1 <= len(weight_property) <= 100:
        raise _error("weight_property", "1-100 characters")


def format_of_media_type(content_type: str | None) -> Format | None:
    """The parser for a Content-Type header (parameters such as charset ignored)."""
    if not content_type:
        return None
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def parse(
    data: bytes,
    fmt: Format,
    resolution: int,
    coord_sys: str = "wgs84",
    weight_property: str = DEFAULT_WEIGHT_PROPERTY,
) -> LayerCells:
    """Dispatch to `parse_csv` or `parse_geojson`."""
    if fmt == "csv":
        return parse_csv(data, resolution, coord_sys, weight_property=weight_property)
    return parse_geojson(data, resolution, coord_sys, weight_property)


# --- CSV --------------------------------------------------------------------------------------


def _row_error(i: int, column: str, message: str, lines: Sequence[int]) -> InvalidInputError:
    field = f"rows[{i + 1}].{column}"
    return InvalidInputError(f"{field}: {message} (line {lines[i]})", field=field)


def _floats(
    values: list[str],
    column: str,
    rule: str,
    lines: Sequence[int],
    lo: float,
    hi: float,
) -> NDArray[np.float64]:
    """Column of numbers, each finite and in [lo, hi]; the first offender is named, with a
    count of the others."""
    try:
        out = np.array(values, dtype=np.float64)
    except ValueError:
        out = np.empty(len(values))
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except ValueError:
                raise _row_error(i, column, f"{rule}, got {_shown(v)}", lines) from None
    bad = np.flatnonzero(~(np.isfinite(out) & (out >= lo) & (out <= hi)))
    if len(bad):
        i = int(bad[0])
        more = f"; {len(bad) - 1} more rows like it" if len(bad) > 1 else ""
        raise _row_error(i, column, f"{rule}, got {_shown(values[i])}{more}", lines)
    return out


def _column(names: list[str], wanted: Sequence[str], header: list[str]) -> int | None:
    found = [i for i, n in enumerate(names) if n in wanted]
    if len(found) > 1:
        both = ", ".join(repr(header[i]) for i in found)
        raise _error("header", f"columns {both} mean the same thing; keep one")
    return found[0] if found else None


def parse_csv(
    data: bytes,
    resolution: int,
    coord_sys: str,
    *,
    weight_property: str = DEFAULT_WEIGHT_PROPERTY,
) -> LayerCells:
    """Read a CSV of points (`lon,lat,weight`) or of H3 cells (`h3,weight`); see the module
    docstring. `weight_property` names the weight column."""
    check_resolution(resolution)
    check_coord_sys(coord_sys)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(
            "file",
            f"not UTF-8 text (invalid byte at offset {exc.start}); save it as 'CSV UTF-8'",
        ) from None
    if not text.strip():
        raise _error("file", "the file is empty")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(h for h in reader if h)
    except csv.Error as exc:
        raise _error("header", f"not valid CSV: {exc}") from None
    header = [h.strip() for h in header]
    names = [h.lower() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _error("header", f"duplicate column {dupes[0]!r}")
    found = ", ".join(repr(h) for h in header)
    w_col = _column(names, (weight_property.lower(),), header)
    h3_col = _column(names, (H3_COLUMN,), header)
    lon_col = _column(names, LON_COLUMNS, header)
    lat_col = _column(names, LAT_COLUMNS, header)
    if h3_col is not None and (lon_col is not None or lat_col is not None):
        raise _error("header", f"has both h3 and lon/lat columns ({found}); keep one kind")
    if h3_col is None and (lon_col is None or lat_col is None):
        raise _error(
            "header",
            f"needs columns lon,lat,{weight_property} (points) or h3,{weight_property} "
            f"(H3 cells), comma separated; found {found}",
        )
    if w_col is None:
        raise _error("header", f"no {weight_property!r} column; found {found}")

    width = len(header)
    used = [c for c in (w_col, h3_col, lon_col, lat_col) if c is not None]
    columns: dict[int, list[str]] = {c: [] for c in used}
    lines: list[int] = []
    n = 0
    try:
        for rec in reader:
            if not rec:
                continue  # a blank line
            n += 1
            if n > MAX_ROWS:
                raise _error("file", f"more than {MAX_ROWS:,} data rows; split the file")
            if len(rec) != width:
                field = f"rows[{n}]"
                raise InvalidInputError(
                    f"{field}: {len(rec)} fields where the header has {width} "
                    f"(line {reader.line_num})",
                    field=field,
                )
            for c in used:
                columns[c].append(rec[c])
            lines.append(reader.line_num)
    except csv.Error as exc:
        field = f"rows[{n + 1}]"
        raise InvalidInputError(
            f"{field}: not valid CSV: {exc} (line {reader.line_num})", field=field
        ) from None
    if n == 0:
        raise _error("file", "no data rows after the header")

    weights = _floats(columns[w_col], header[w_col], _WEIGHT_RULE, lines, 0.0, math.inf)
    if h3_col is not None:
        cells = _h3_cells(columns[h3_col], header[h3_col], resolution, lines)
    else:
        assert lon_col is not None and lat_col is not None
        lon = _floats(
            columns[lon_col],
            header[lon_col],
            f"must be a finite longitude in [-180, 180] ({coord_sys})",
            lines,
            -180.0,
            180.0,
        )
        lat = _floats(
            columns[lat_col],
            header[lat_col],
            f"must be a finite latitude in [-90, 90] ({coord_sys})",
            lines,
            -90.0,
            90.0,
        )
        lon, lat = _to_wgs84(lon, lat, coord_sys)
        cells = cells_of_points(lon, lat, resolution)
    return _aggregate([cells], [weights], n)


def _h3_cells(
    values: list[str], column: str, resolution: int, lines: Sequence[int]
) -> NDArray[np.int64]:
    out = np.empty(len(values), dtype=np.int64)
    for i, raw in enumerate(values):
        s = raw.strip().lower()
        if not _H3_RE.fullmatch(s) or not h3.is_valid_cell(s):
            raise _row_error(i, column, f"not an H3 cell index, got {_shown(raw)}", lines)
        r = h3.get_resolution(s)
        if r < resolution:
            raise _row_error(
                i,
                column,
                f"{s} is an H3 cell at resolution {r}, coarser than the layer's "
                f"resolution {resolution}; give cells at resolution {resolution} or finer",
                lines,
            )
        if r > resolution:
            s = h3.cell_to_parent(s, resolution)
        out[i] = h3.str_to_int(s)
    return out


# --- GeoJSON ----------------------------------------------------------------------------------


def parse_geojson(
    data: bytes,
    resolution: int,
    coord_sys: str,
    weight_property: str = DEFAULT_WEIGHT_PROPERTY,
) -> LayerCells:
    """Read a FeatureCollection of Point / Polygon / MultiPolygon features with a numeric
    `weight_property`; see the module docstring."""
    check_resolution(resolution)
    check_coord_sys(coord_sys)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise _error("file", "the file is empty")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _error("file", f"not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        got = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise _error("type", f"expected a GeoJSON FeatureCollection, got {_shown(got)}")
    features = doc.get("features")
    if not isinstance(features, list):
        raise _error("features", "must be an array of Features")
    if not features:
        raise _error("features", "the collection has no features")
    if len(features) > MAX_ROWS:
        raise _error("features", f"more than {MAX_ROWS:,} features; split the file")

    pt_lon: list[float] = []
    pt_lat: list[float] = []
    pt_w: list[float] = []
    parts_cells: list[NDArray[np.int64]] = []
    parts_weights: list[NDArray[np.float64]] = []
    spread = 0
    for i, feature in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise _error(where, "must be a GeoJSON Feature object")
        weight = _feature_weight(feature, where, weight_property)
        geom = feature.get("geometry")
        if not isinstance(geom, dict):
            raise _error(f"{where}.geometry", "missing; a Point, Polygon or MultiPolygon is needed")
        kind = geom.get("type")
        at = f"{where}.geometry.coordinates"
        raw = geom.get("coordinates")
        if kind == "Point":
            lon, lat = _position(raw, at, coord_sys)
            pt_lon.append(lon)
            pt_lat.append(lat)
            pt_w.append(weight)
        elif kind in ("Polygon", "MultiPolygon"):
            polys = [raw] if kind == "Polygon" else _array(raw, at, "an array of polygons")
            shape = _polygons(polys, at, coord_sys, multi=kind == "MultiPolygon")
            # checked as given, before the datum conversion: the error's place is the file's
            problem = invalid_reason(shape)
            if problem is not None:
                raise _error(f"{where}.geometry", f"not a valid {kind}: {problem}")
            shape = _polygon_to_wgs84(shape, coord_sys)
            cells, shares = _spread(shape, weight, resolution, f"{where}.geometry", spread)
            spread += len(cells)
            parts_cells.append(cells)
            parts_weights.append(shares)
        else:
            raise _error(
                f"{where}.geometry.type",
                f"must be Point, Polygon or MultiPolygon, got {_shown(kind)}",
            )
    if pt_lon:
        parts_cells.append(cells_of_points(np.asarray(pt_lon), np.asarray(pt_lat), resolution))
        parts_weights.append(np.asarray(pt_w, dtype=np.float64))
    return _aggregate(parts_cells, parts_weights, len(features))


def _feature_weight(feature: dict[str, Any], where: str, prop: str) -> float:
    props = feature.get("properties")
    field = f"{where}.properties.{prop}"
    if not isinstance(props, dict) or prop not in props:
        raise _error(field, f"missing; every feature needs a numeric {prop!r} property")
    value = props[prop]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _error(field, f"{_WEIGHT_RULE}, got {_shown(value)}")
    try:
        weight = float(value)
    except OverflowError:
        weight = math.inf
    if not math.isfinite(weight) or weight < 0:
        raise _error(field, f"{_WEIGHT_RULE}, got {_shown(value)}")
    return weight


def _array(raw: Any, at: str, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise _error(at, f"must be {what}, got {_shown(raw)}")
    return raw


def _raw_position(raw: Any, at: str, coord_sys: str) -> tuple[float, float]:
    """A GeoJSON position [lon, lat(, z)] as given: numbers (not booleans or strings),
    finite and in range for `coord_sys`."""
    if (
        not isinstance(raw, list)
        or not 2 <= len(raw) <= 3
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in raw)
    ):
        raise _error(at, f"a position must be [lon, lat] numbers, got {_shown(raw)}")
    try:
        lon, lat = float(raw[0]), float(raw[1])
        coords.check_in_range(lon, lat, coord_sys)
    except (ValueError, OverflowError) as exc:
        raise _error(at, f"{exc}") from None
    return lon, lat


def _position(raw: Any, at: str, coord_sys: str) -> tuple[float, float]:
    """A GeoJSON position [lon, lat(, z)], validated and converted to WGS-84."""
    lon, lat = _raw_position(raw, at, coord_sys)
    return coords.to_wgs84(lon, lat, coord_sys)


def _polygon_to_wgs84(
    shape: shapely.Polygon | shapely.MultiPolygon, coord_sys: str
) -> shapely.Polygon | shapely.MultiPolygon:
    """A valid polygon given in `coord_sys`, vertex by vertex in WGS-84. A datum shift can
    pinch a ring by a millimetre; such a result is repaired (it only selects cell centres)."""
    if coord_sys == "wgs84":
        return shape

    def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        out = [coords.to_wgs84(x, y, coord_sys) for x, y in xy.tolist()]
        return np.asarray(out, dtype=np.float64).reshape(-1, 2)

    moved = shapely.transform(shape, move)
    if not shapely.is_valid(moved):
        moved = moved.buffer(0)
    return moved


def _polygons(
    polys: list[Any], at: str, coord_sys: str, *, multi: bool
) -> shapely.Polygon | shapely.MultiPolygon:
    out = []
    for p, rings in enumerate(polys):
        p_at = f"{at}[{p}]" if multi else at
        rings = _array(rings, p_at, "an array of linear rings")
        if not rings:
            raise _error(p_at, "a polygon needs at least its outer ring")
        shells = []
        for r, ring in enumerate(rings):
            r_at = f"{p_at}[{r}]"
            ring = _array(ring, r_at, "an array of positions")
            if len(ring) < 4:
                raise _error(r_at, f"a linear ring needs at least 4 positions, got {len(ring)}")
            xy = [_raw_position(pos, f"{r_at}[{k}]", coord_sys) for k, pos in enumerate(ring)]
            if xy[0] != xy[-1]:
                raise _error(r_at, "a linear ring must end at its first position (closed)")
            shells.append(xy)
        out.append(shapely.Polygon(shells[0], shells[1:]))
    if not out:
        raise _error(at, "a MultiPolygon needs at least one polygon")
    return shapely.MultiPolygon(out) if multi else out[0]


def _spread(
    shape: shapely.Polygon | shapely.MultiPolygon,
    weight: float,
    resolution: int,
    at: str,
    already: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Cells whose centres lie in `shape`, each with its area share of `weight`."""
    _, miny, _, maxy = shape.bounds
    mid_lat = math.radians((miny + maxy) / 2)
    km2 = shape.area * _KM_PER_DEGREE**2 * max(math.cos(mid_lat), 0.01)
    estimate = int(km2 / h3.average_hexagon_area(resolution, unit="km^2"))
    if estimate + already > MAX_CELLS:
        raise _error(
            at,
            f"covers about {estimate:,} cells at resolution {resolution}; a layer holds at "
            f"most {MAX_CELLS:,} — use a coarser resolution or smaller areas",
        )
    found = h3.geo_to_cells(shape, resolution)
    if not found:
        pt = shapely.point_on_surface(shape)
        found = [h3.latlng_to_cell(pt.y, pt.x, resolution)]
    cells = np.fromiter((h3.str_to_int(c) for c in found), dtype=np.int64, count=len(found))
    areas = np.fromiter(
        (h3.cell_area(c, unit="km^2") for c in found), dtype=np.float64, count=len(found)
    )
    return cells, weight * (areas / areas.sum())


# --- shared -----------------------------------------------------------------------------------


def _to_wgs84(
    lon: NDArray[np.float64], lat: NDArray[np.float64], coord_sys: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert validated coordinates to WGS-84 (app.geo.coords is per point; repeated
    positions are converted once)."""
    if coord_sys == "wgs84" or len(lon) == 0:
        return lon, lat
    xy, inverse = np.unique(np.column_stack((lon, lat)), axis=0, return_inverse=True)
    out = np.empty_like(xy)
    for k, (x, y) in enumerate(xy.tolist()):
        out[k] = coords.to_wgs84(x, y, coord_sys)
    inverse = inverse.reshape(-1)
    return out[inverse, 0], out[inverse, 1]


def _aggregate(
    cells: list[NDArray[np.int64]], weights: list[NDArray[np.float64]], rows: int
) -> LayerCells:
    """Sum the weights per cell; cells sorted and unique."""
    all_cells = np.concatenate(cells) if cells else np.empty(0, dtype=np.int64)
    all_w = np.concatenate(weights) if weights else np.empty(0, dtype=np.float64)
    uniq, inverse = np.unique(all_cells, return_inverse=True)
    if len(uniq) > MAX_CELLS:
        raise _error("file", f"{len(uniq):,} distinct cells; a layer holds at most {MAX_CELLS:,}")
    sums = np.bincount(inverse.reshape(-1), weights=all_w, minlength=len(uniq))
    if not np.isfinite(sums).all():
        raise _error("weight", "the sum of the weights in one cell is too large for a float")
    return LayerCells(
        cells=uniq.astype(np.int64, copy=False), weights=sums.astype(np.float64), rows=rows
    )
