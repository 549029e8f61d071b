"""All SQL of the district domain. Parameters are always bound, never formatted in.

Geometries cross the boundary as WKB (shapely in Python, MultiPolygon SRID 4326 in PostGIS).
Every function runs on the caller's connection and inside the caller's transaction, so a
load followed by `assign_station_districts` is one unit of work: all of it, or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

#: Metres per degree of latitude (mean); used to turn a metre tolerance into degrees.
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True, slots=True)
class DistrictRow:
    """One district ready for writing: WGS-84 MultiPolygon as WKB."""

    code: str
    name: str
    name_en: str | None
    parent_code: str | None
    wkb: bytes


_COLUMNS = (
    "code, name, name_en, parent_code, source, updated_at, "
    "ST_Area(geom::geography) / 1e6 AS area_km2"
)

# Self-conflicting, but readers (ACCESS SHARE) go on: two loads at once run one after the
# other instead of deleting each other's fresh rows half-way.
_LOCK = text("LOCK TABLE districts IN SHARE ROW EXCLUSIVE MODE")

_INSERT = (
    "INSERT INTO districts (code, name, name_en, parent_code, geom, source, updated_at) "
    "VALUES (:code, :name, :name_en, :parent_code, "
    "ST_Multi(ST_GeomFromWKB(:wkb, 4326)), :source, now())"
)
_UPSERT = _INSERT + (
    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en, "
    "parent_code = EXCLUDED.parent_code, geom = EXCLUDED.geom, source = EXCLUDED.source, "
    "updated_at = now()"
)


def _params(rows: Sequence[DistrictRow], source: str) -> list[dict[str, Any]]:
    return [
        {
            "code": r.code,
            "name": r.name,
            "name_en": r.name_en,
            "parent_code": r.parent_code,
            "wkb": r.wkb,
            "source": source,
        }
        for r in rows
    ]


def replace_all(conn: Connection, rows: Sequence[DistrictRow], source: str) -> int:
    """Delete every district and insert `rows` (in the caller's transaction). Returns how many
    districts were removed. Replace is what "upload your own boundaries" means: codes missing
    from the new set disappear instead of lingering with stale outlines."""
    conn.execute(_LOCK)
    removed = conn.execute(text("DELETE FROM districts")).rowcount
    if rows:
        conn.execute(text(_INSERT), _params(rows, source))
    return int(removed)


def upsert(conn: Connection, rows: Sequence[DistrictRow], source: str) -> int:
    """Insert or update `rows` by code, keeping districts not mentioned. Returns how many of
    the codes existed before (i.e. were updated rather than inserted)."""
    conn.execute(_LOCK)
    if not rows:
        return 0
    existing = conn.execute(
        text("SELECT count(*) FROM districts WHERE code = ANY(:codes)"),
        {"codes": [r.code for r in rows]},
    ).scalar_one()
    conn.execute(text(_UPSERT), _params(rows, source))
    return int(existing)


def count(conn: Connection) -> int:
    """How many districts are stored."""
    return int(conn.execute(text("SELECT count(*) FROM districts")).scalar_one())


def _geom_sql(simplify_m: float) -> tuple[str, dict[str, Any]]:
    if simplify_m <= 0:
        return "ST_AsBinary(geom) AS wkb", {}
    # A metre tolerance as degrees of latitude: east-west it is then a little smaller (cos φ),
    # never larger than asked. Each district is simplified on its own, so shared borders may
    # part by up to the tolerance: a display aid, never used for assignment or areas.
    return (
        "ST_AsBinary(ST_Multi(ST_SimplifyPreserveTopology(geom, :tol_deg))) AS wkb",
        {"tol_deg": simplify_m / METRES_PER_DEGREE},
    )


def list_rows(conn: Connection, simplify_m: float = 0.0) -> list[RowMapping]:
    """Every district ordered by code: properties, geodesic `area_km2` (of the stored, not the
    simplified, outline) and `wkb` (WGS-84)."""
    geom, params = _geom_sql(simplify_m)
    sql = f"SELECT {_COLUMNS}, {geom} FROM districts ORDER BY code"
    return list(conn.execute(text(sql), params).mappings())


def get_row(conn: Connection, code: str, simplify_m: float = 0.0) -> RowMapping | None:
    """One district by code (same columns as `list_rows`), or None."""
    geom, params = _geom_sql(simplify_m)
    sql = f"SELECT {_COLUMNS}, {geom} FROM districts WHERE code = :code"
    return conn.execute(text(sql), {**params, "code": code}).mappings().first()


def polygon_rows(conn: Connection) -> list[RowMapping]:
    """code, name, name_en and WKB of every district, ordered by code (for analyses)."""
    sql = "SELECT code, name, name_en, ST_AsBinary(geom) AS wkb FROM districts ORDER BY code"
    return list(conn.execute(text(sql)).mappings())


_ASSIGN = text(
    """
WITH d AS (
    SELECT code, geom, ST_Area(geom) AS area FROM districts
), m AS (
    SELECT DISTINCT ON (s.id) s.id, d.code
    FROM d JOIN stations s ON ST_Intersects(d.geom, s.geom)
    ORDER BY s.id, d.area, d.code
), u AS (
    UPDATE stations s SET district_code = m.code
    FROM m
    WHERE s.id = m.id AND s.district_code IS DISTINCT FROM m.code
    RETURNING s.id
)
SELECT (SELECT count(*) FROM m) AS matched, (SELECT count(*) FROM u) AS changed
"""
)


_RESOLVE = text(
    """
SELECT coalesce(
    (
        SELECT d.code FROM districts d
        WHERE ST_Intersects(d.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
        ORDER BY ST_Area(d.geom), d.code
        LIMIT 1
    ),
    p.given
) AS code
FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]), CAST(:given AS text[]))
    WITH ORDINALITY AS p(lon, lat, given, i)
ORDER BY p.i
"""
)


def resolve_station_districts(
    conn: Connection, points: Sequence[tuple[float, float, str | None]]
) -> list[str | None]:
    """The `district_code` each station written at WGS-84 (lon, lat) gets, claiming `given`:
    the district containing the point by the rule of `assign_station_districts` (smallest
    district, then lowest code; a point on a shared border is in both, so the same tie-break
    decides), else — outside every outline, or none loaded — the given code. Every station
    write (create, move, import, revert, accepted proposal) asks this before the permission
    check, so a scope is checked against the district the station will really be in."""
    if not points:
        return []
    rows = conn.execute(
        _RESOLVE,
        {
            "lons": [float(p[0]) for p in points],
            "lats": [float(p[1]) for p in points],
            "given": [p[2] for p in points],
        },
    ).scalars()
    return list(rows)


def assign_station_districts(conn: Connection) -> tuple[int, int]:
    """Set each station's `district_code` to the district containing it; returns (stations
    inside some district, stations whose code changed).

    * Nested districts (a 9-digit sub-district inside its 6-digit district): the smallest
      wins (a contained area is smaller in any measure, so planar area orders them).
      A station exactly on a shared border goes to the smaller, then the lower code.
    * Stations outside every district keep the code they have (a partial upload must not
      wipe codes elsewhere).
    * Neither `version` nor `updated_at` changes: the code is derived from the position and
      the district table, not an edit of the station. Bumping `version` would make every
      station manager's next `If-Match` PATCH fail with 412 because a planner uploaded
      boundaries, for a field they never touched.
    """
    row = conn.execute(_ASSIGN).one()
    return int(row.matched), int(row.changed)
