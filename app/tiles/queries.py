"""All SQL of the vector tiles: Mapbox Vector Tiles (MVT) made by PostGIS itself.

**Why `ST_AsMVT` in our own routes and not tipg.** tipg (or pg_tileserv, Martin) is a whole
separate application: its own asyncpg pool next to our SQLAlchemy engine, its own catalog of
tables and functions, its own configuration and deployment. Our coverage-cell layer is
parameterised by an analysis run id (and its band edges by that run's target minutes), and our
station layer follows our status vocabulary; both are one SQL statement each with PostGIS 3's
`ST_TileEnvelope` / `ST_AsMVTGeom` / `ST_AsMVT`, on the connection every other route uses,
with our error shape and our tests. So the tiles are built here.

**Tiles.** XYZ scheme in EPSG:3857 (Web Mercator), extent 4096, buffer 64 (features up to 64
tile units outside the tile are kept so symbols and outlines do not break at tile edges), one
layer per tile. Attributes that are NULL are left out of a feature (MVT has no null), lists are
comma-joined strings (MVT has no arrays).

**The index filter.** Rows are found with `geom && <box in EPSG:4326>` on the GiST index of
`geom` (`idx_stations_geom`, `idx_coverage_cells_geom`). The box is the buffered tile converted
to longitude/latitude here (`tile_lonlat_bounds`) rather than `ST_Transform(ST_TileEnvelope(z,
x, y, margin => …), 4326)`: a buffered tile at the world's left or right edge reaches beyond
±180°, which PROJ wraps to the other side (tile 1/0/0 becomes lon 2.8…177.2 instead of
-182.8…2.8) and the filter would then miss the tile's own features. Longitude is clamped to
±180° instead (features across the antimeridian are not copied into the neighbouring buffer).

**Cells at low zoom.** From `CELL_POLYGON_MIN_ZOOM` (9) up, a cell is its H3 hexagon. Below,
a hexagon is a pixel or less, so each cell is served as its centroid (a Point) with the same
attributes; an aggregation to H3 parent cells would be nicer but needs H3 in SQL, which the
database does not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.types import Text

#: Tile coordinate space (units per tile side) and buffer in those units.
EXTENT = 4096
BUFFER = 64
#: Highest zoom served (Web Mercator tiles of ~1 cm per unit at the equator).
MAX_ZOOM = 22
#: Below this zoom coverage cells are served as centroid points, from it on as hexagons.
CELL_POLYGON_MIN_ZOOM = 9
#: Fixed band edges (minutes); a band beyond the run's target minutes is a "gap".
BAND_EDGES = (5, 10, 15)
#: Target minutes when a run's parameters do not name one.
DEFAULT_TARGET_MINUTES = 15.0

STATIONS_LAYER = "stations"
CELLS_LAYER = "cells"

#: The attributes of each layer and their types, as TileJSON `vector_layers[].fields` lists
#: them (the order is the SQL column order).
STATION_FIELDS: dict[str, str] = {
    "id": "Number: station id (also the feature id)",
    "name": "String",
    "status": "String: planned | open | temporarily_closed | closed | duplicate",
    "host_type": "String",
    "amenities": "String: comma-separated amenity codes",
    "district_code": "String: administrative code (absent when unknown)",
}
CELL_FIELDS: dict[str, str] = {
    "h3": "String: H3 cell index, hexadecimal (the feature id is the same index as a number)",
    "minutes": "Number: minutes to the nearest open station, up to 0.1 (absent: unreachable)",
    "band": "String: 0-5 | 5-10 | 10-15 | >15 | gap (beyond the run's target or unreachable)",
    "multiplicity": "Number: stations reachable within the run's target minutes",
    "weight": "Number: the cell's demand weight",
    "district_code": "String: administrative code (absent when outside every district)",
}

#: Spherical Mercator (EPSG:3857): earth radius and half the world's width in metres.
_R = 6378137.0
_HALF = math.pi * _R

_TEXT_ARRAY = ARRAY(Text)


def tile_lonlat_bounds(
    z: int, x: int, y: int, margin: float = 0.0
) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of tile z/x/y grown by `margin` tile widths on
    every side; longitude clamped to ±180° (never wrapped), latitude by the Mercator inverse."""
    size = 2 * _HALF / (1 << z)
    minx = -_HALF + (x - margin) * size
    maxx = -_HALF + (x + 1 + margin) * size
    maxy = _HALF - (y - margin) * size
    miny = _HALF - (y + 1 + margin) * size

    def lon(mx: float) -> float:
        return max(-180.0, min(180.0, math.degrees(mx / _R)))

    def lat(my: float) -> float:
        return math.degrees(math.atan(math.sinh(my / _R)))

    return lon(minx), lat(miny), lon(maxx), lat(maxy)


def _tile_params(z: int, x: int, y: int) -> dict[str, float | int]:
    west, south, east, north = tile_lonlat_bounds(z, x, y, BUFFER / EXTENT)
    return {"z": z, "x": x, "y": y, "west": west, "south": south, "east": east, "north": north}


_ENVELOPE = "ST_TileEnvelope(CAST(:z AS integer), CAST(:x AS integer), CAST(:y AS integer))"
_FILTER_BOX = "ST_MakeEnvelope(:west, :south, :east, :north, 4326)"


def _mvt_geom(expr: str) -> str:
    return f"ST_AsMVTGeom(ST_Transform({expr}, 3857), {_ENVELOPE}, {EXTENT}, {BUFFER}, true)"


_STATIONS_SQL = f"""
SELECT ST_AsMVT(t, '{STATIONS_LAYER}', {EXTENT}, 'geom', 'fid')
FROM (
    SELECT {_mvt_geom("s.geom")} AS geom,
           s.id AS fid, s.id, s.name, e.status, s.host_type,
           array_to_string(s.amenities, ',') AS amenities, s.district_code
    FROM stations s
    -- a temporary closure that has ended is open again (its hours apply)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.status = 'temporarily_closed' AND s.closed_until <= now()
                    THEN 'open' ELSE s.status END AS status
    ) e
    WHERE s.geom && {_FILTER_BOX} AND e.status = ANY(:statuses)
    ORDER BY s.id
) t
WHERE t.geom IS NOT NULL
"""


def _stations_params(z: int, x: int, y: int, statuses: tuple[str, ...]) -> dict[str, object]:
    return {**_tile_params(z, x, y), "statuses": list(statuses)}


def stations_tile(conn: Connection, z: int, x: int, y: int, statuses: tuple[str, ...]) -> bytes:
    """The `stations` layer of tile z/x/y: stations whose status is in `statuses`. Empty bytes
    when no station falls inside the buffered tile."""
    stmt = text(_STATIONS_SQL).bindparams(bindparam("statuses", type_=_TEXT_ARRAY))
    body = conn.execute(stmt, _stations_params(z, x, y, statuses)).scalar()
    return bytes(body or b"")


def stations_tile_plan(conn: Connection, z: int, x: int, y: int, statuses: tuple[str, ...]) -> str:
    """EXPLAIN of the stations tile query (tests check that the GiST index is used)."""
    stmt = text("EXPLAIN " + _STATIONS_SQL).bindparams(bindparam("statuses", type_=_TEXT_ARRAY))
    return "\n".join(conn.execute(stmt, _stations_params(z, x, y, statuses)).scalars())


def band_sql(column: str) -> str:
    """SQL for the band of `column` minutes against the bound target `:target`."""
    lo = [0, *BAND_EDGES[:-1]]
    whens = " ".join(
        f"WHEN {column} <= {hi} THEN '{a}-{hi}'" for a, hi in zip(lo, BAND_EDGES, strict=True)
    )
    return (
        f"CASE WHEN {column} IS NULL OR {column} > :target THEN 'gap' "
        f"{whens} ELSE '>{BAND_EDGES[-1]}' END"
    )


def shown_minutes_sql(column: str) -> str:
    """SQL for the minutes shown in a tile: rounded up to 0.1 (exact, in numeric), the rule of
    `app.coverage.bands.shown_minutes`, so that a 10.02-minute cell in '10-15' shows 10.1 and
    a 15.04-minute gap 15.1, never the "10.0" / "15.0" of plain rounding."""
    return f"CAST(ceil(CAST({column} AS numeric) * 10) / 10 AS double precision)"


def band(minutes: float | None, target: float) -> str:
    """The same banding in Python (the SQL is the one served; this one documents and tests)."""
    if minutes is None or minutes > target:
        return "gap"
    lo = 0
    for hi in BAND_EDGES:
        if minutes <= hi:
            return f"{lo}-{hi}"
        lo = hi
    return f">{BAND_EDGES[-1]}"


def _cells_sql(points: bool) -> str:
    geom = "ST_Centroid(c.geom)" if points else "c.geom"
    return f"""
SELECT ST_AsMVT(t, '{CELLS_LAYER}', {EXTENT}, 'geom', 'fid')
FROM (
    SELECT {_mvt_geom(geom)} AS geom,
           c.cell AS fid,
           to_hex(c.cell) AS h3,
           {shown_minutes_sql("c.minutes")} AS minutes,
           {band_sql("c.minutes")} AS band,
           c.multiplicity, c.weight, c.district_code
    FROM coverage_cells c
    WHERE c.run_id = :run AND c.geom && {_FILTER_BOX}
    ORDER BY c.cell
) t
WHERE t.geom IS NOT NULL
"""


def cells_tile(conn: Connection, run_id: int, target: float, z: int, x: int, y: int) -> bytes:
    """The `cells` layer of tile z/x/y for one coverage run: hexagons from zoom
    `CELL_POLYGON_MIN_ZOOM`, centroid points below. Empty bytes when no cell is in the tile."""
    sql = _cells_sql(points=z < CELL_POLYGON_MIN_ZOOM)
    params = {**_tile_params(z, x, y), "run": run_id, "target": float(target)}
    body = conn.execute(text(sql), params).scalar()
    return bytes(body or b"")


@dataclass(frozen=True, slots=True)
class Run:
    """What the tiles need to know of a coverage run."""

    id: int
    status: str
    target_minutes: float


def target_minutes(params: Mapping[str, object] | None) -> float:
    """A run's target minutes from its parameters: `minutes` as a number (or the largest of a
    list of numbers); `DEFAULT_TARGET_MINUTES` when absent."""
    value = (params or {}).get("minutes")
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        value = max(numbers) if numbers else None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return DEFAULT_TARGET_MINUTES


def coverage_run(conn: Connection, run_id: int) -> Run | None:
    """The run with this id, or None."""
    row = (
        conn.execute(
            text("SELECT id, status, params FROM coverage_runs WHERE id = :id"), {"id": run_id}
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Run(
        id=int(row["id"]), status=row["status"], target_minutes=target_minutes(row["params"])
    )


def _bounds(row: RowMapping | None) -> tuple[float, float, float, float] | None:
    if row is None or row["w"] is None:
        return None
    return float(row["w"]), float(row["s"]), float(row["e"]), float(row["n"])


_EXTENT_COLUMNS = "ST_XMin(e) AS w, ST_YMin(e) AS s, ST_XMax(e) AS e, ST_YMax(e) AS n"


def stations_bounds(
    conn: Connection, statuses: tuple[str, ...]
) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the stations with these statuses; None when there are
    none."""
    stmt = text(
        f"SELECT {_EXTENT_COLUMNS} FROM "
        "(SELECT ST_Extent(geom) AS e FROM stations WHERE status = ANY(:statuses)) q"
    ).bindparams(bindparam("statuses", type_=_TEXT_ARRAY))
    return _bounds(conn.execute(stmt, {"statuses": list(statuses)}).mappings().first())


def cells_bounds(conn: Connection, run_id: int) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of a run's cells; None when it has none."""
    stmt = text(
        f"SELECT {_EXTENT_COLUMNS} FROM "
        "(SELECT ST_Extent(geom) AS e FROM coverage_cells WHERE run_id = :run) q"
    )
    return _bounds(conn.execute(stmt, {"run": run_id}).mappings().first())
