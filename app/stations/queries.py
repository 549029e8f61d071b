"""All SQL of the station domain. Parameters are always bound, never formatted in.

Distances are geodesic metres on the WGS-84 spheroid (`ST_Distance(geography)` default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.types import Text

#: Columns every station read returns (plus lon/lat split out of the geometry).
COLUMNS = (
    "id, external_id, name, address, district_code, host_type, operator, access, amenities, "
    "opening_hours, status, phone, capacity, source_crs, created_at, updated_at, version, "
    "ST_X(geom) AS lon, ST_Y(geom) AS lat"
)

#: Writable columns (geometry handled separately).
WRITABLE = (
    "external_id",
    "name",
    "address",
    "district_code",
    "host_type",
    "operator",
    "access",
    "amenities",
    "opening_hours",
    "status",
    "phone",
    "capacity",
)

#: Sphere-vs-spheroid distances differ by well under 1 %; the KNN candidate radius gets this
#: margin so the exact spheroid re-rank can never miss a station (see `nearest`).
SPHERE_MARGIN = 1.01

_TEXT_ARRAY = ARRAY(Text)


@dataclass(frozen=True, slots=True)
class NearestFilter:
    """What the nearest query is restricted to."""

    lon: float
    lat: float
    k: int
    radius_m: float | None = None
    amenities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("open", "temporarily_closed")


def _nearest_sql(f: NearestFilter) -> str:
    # One `amenities @> ARRAY[:a_i]` per amenity (not one array containment) so that the
    # planner can match the partial per-amenity index of any single one of them.
    conds = ["status = ANY(:statuses)"]
    conds += [f"amenities @> ARRAY[CAST(:a{i} AS text)]" for i in range(len(f.amenities))]
    if f.radius_m is not None:
        conds.append("ST_DWithin(geom::geography, q.g, :radius_m)")
    where = " AND ".join(conds)
    # Stage 1 walks the geography GiST index in sphere-distance order (true KNN) for k
    # candidates. Stage 2 takes everything within the k-th candidate's spheroid distance (plus
    # margin) and orders by exact spheroid metres, so the answer equals a brute-force geodesic
    # ordering even where sphere and spheroid disagree about near ties.
    return f"""
WITH q AS (SELECT CAST(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geography) AS g),
knn AS (
    SELECT ST_Distance(geom::geography, q.g) AS d
    FROM stations, q
    WHERE {where}
    ORDER BY geom::geography <-> q.g
    LIMIT :k
),
bound AS (SELECT max(d) * {SPHERE_MARGIN} AS r FROM knn)
SELECT {COLUMNS}, ST_Distance(geom::geography, q.g) AS distance_m
FROM stations, q, bound
WHERE {where} AND ST_DWithin(geom::geography, q.g, bound.r, false)
ORDER BY distance_m, id
LIMIT :k
"""


def nearest_params(f: NearestFilter) -> dict[str, Any]:
    """Bound parameters of the nearest query (also used by the benchmark's raw-SQL run)."""
    params: dict[str, Any] = {
        "lon": f.lon,
        "lat": f.lat,
        "k": f.k,
        "statuses": list(f.statuses),
    }
    for i, code in enumerate(f.amenities):
        params[f"a{i}"] = code
    if f.radius_m is not None:
        params["radius_m"] = f.radius_m
    return params


def nearest_sql(f: NearestFilter) -> str:
    """The nearest query's SQL text with named (`:name`) parameters."""
    return _nearest_sql(f)


def nearest_statement(f: NearestFilter, explain: bool = False) -> TextClause:
    """The nearest query as a SQLAlchemy statement (optionally prefixed with EXPLAIN)."""
    sql = ("EXPLAIN " if explain else "") + _nearest_sql(f)
    return text(sql).bindparams(bindparam("statuses", type_=_TEXT_ARRAY))


def nearest(conn: Connection, f: NearestFilter) -> list[RowMapping]:
    """The k stations nearest to a point by geodesic distance, nearest first."""
    return list(conn.execute(nearest_statement(f), nearest_params(f)).mappings())


def get(conn: Connection, station_id: int) -> RowMapping | None:
    """One station by id."""
    return (
        conn.execute(text(f"SELECT {COLUMNS} FROM stations WHERE id = :id"), {"id": station_id})
        .mappings()
        .first()
    )


def page_in_bbox(
    conn: Connection,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> tuple[list[RowMapping], int]:
    """One page of stations (ordered by id) inside a bbox, and how many match in all."""
    where = "TRUE"
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if bbox is not None:
        where = "geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)"
        params.update(zip(("minlon", "minlat", "maxlon", "maxlat"), bbox, strict=True))
    rows = list(
        conn.execute(
            text(
                f"SELECT {COLUMNS} FROM stations WHERE {where} "
                "ORDER BY id LIMIT :limit OFFSET :offset"
            ),
            params,
        ).mappings()
    )
    total = conn.execute(text(f"SELECT count(*) FROM stations WHERE {where}"), params).scalar_one()
    return rows, int(total)


def _values(props: dict[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in WRITABLE}


def insert(conn: Connection, props: dict[str, Any], lon: float, lat: float) -> RowMapping:
    """Insert one station; returns the stored row."""
    cols = ", ".join(WRITABLE)
    vals = ", ".join(f":{c}" for c in WRITABLE)
    stmt = text(
        f"INSERT INTO stations ({cols}, geom) "
        f"VALUES ({vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"RETURNING {COLUMNS}"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    return conn.execute(stmt, {**_values(props), "lon": lon, "lat": lat}).mappings().one()


def upsert_many(conn: Connection, rows: list[tuple[dict[str, Any], float, float]]) -> int:
    """Insert or update (by external_id) many stations in the caller's transaction."""
    cols = ", ".join(WRITABLE)
    vals = ", ".join(f":{c}" for c in WRITABLE)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in WRITABLE if c != "external_id")
    stmt = text(
        f"INSERT INTO stations ({cols}, geom) "
        f"VALUES ({vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}, geom = EXCLUDED.geom, "
        "updated_at = now(), version = stations.version + 1"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    params = [{**_values(p), "lon": lon, "lat": lat} for p, lon, lat in rows]
    if params:
        conn.execute(stmt, params)
    return len(params)


def update(
    conn: Connection,
    station_id: int,
    changes: dict[str, Any],
    lon_lat: tuple[float, float] | None,
    expected_version: int | None,
) -> RowMapping | None:
    """Apply changes; None when the id is unknown or the expected version no longer matches."""
    sets = [f"{c} = :{c}" for c in WRITABLE if c in changes]
    params: dict[str, Any] = {c: changes[c] for c in WRITABLE if c in changes}
    if lon_lat is not None:
        sets.append("geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)")
        params["lon"], params["lat"] = lon_lat
    sets += ["updated_at = now()", "version = version + 1"]
    where = "id = :id"
    params["id"] = station_id
    if expected_version is not None:
        where += " AND version = :expected_version"
        params["expected_version"] = expected_version
    stmt = text(f"UPDATE stations SET {', '.join(sets)} WHERE {where} RETURNING {COLUMNS}")
    if "amenities" in params:
        stmt = stmt.bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    return conn.execute(stmt, params).mappings().first()


def delete(conn: Connection, station_id: int) -> bool:
    """Delete one station; False when the id is unknown."""
    result = conn.execute(text("DELETE FROM stations WHERE id = :id"), {"id": station_id})
    return result.rowcount == 1


def exists(conn: Connection, station_id: int) -> bool:
    """Whether a station id exists."""
    found = conn.execute(text("SELECT 1 FROM stations WHERE id = :id"), {"id": station_id})
    return found.first() is not None
