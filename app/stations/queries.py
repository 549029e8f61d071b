"""All SQL of the station domain. Parameters are always bound, never formatted in.

Distances are geodesic metres on the WGS-84 spheroid (`ST_Distance(geography)` default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.types import Text

from app.accounts.policy import Scope
from app.accounts.queries import station_scope_sql

#: Columns every station read returns (plus lon/lat split out of the geometry).
COLUMNS = (
    "id, external_id, name, address, district_code, host_type, operator, access, amenities, "
    "opening_hours, status, phone, capacity, notes, source_crs, created_at, updated_at, version, "
    "ST_X(geom) AS lon, ST_Y(geom) AS lat, "
    "(SELECT count(*) FROM reports r WHERE r.station_id = stations.id AND r.status = 'open') "
    "AS open_reports"
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
    "notes",
    "source_crs",
    "open_intervals",
)


#: Decimal places of every position written or queried (1e-7° ≈ 1 cm, what responses show).
#: PostGIS's geography KNN can fail ("index returned tuples in wrong order") when a query point
#: lies within ~1e-11° of a station; on a 1 cm grid two positions are equal or ≥ 1 cm apart.
POSITION_DECIMALS = 7


def _pos(value: float) -> float:
    return round(float(value), POSITION_DECIMALS)


def _ph(column: str) -> str:
    """The bind placeholder of a writable column (casts where the driver sends text)."""
    if column == "open_intervals":
        return "CAST(:open_intervals AS tstzmultirange)"
    return f":{column}"


#: Sphere-vs-spheroid distances differ by well under 1 %; the KNN candidate radius gets this
#: margin so the exact spheroid re-rank can never miss a station (see `nearest`).
SPHERE_MARGIN = 1.01

_TEXT_ARRAY = ARRAY(Text)


@dataclass(frozen=True, slots=True)
class StationFilter:
    """Restrictions shared by the nearest query and paged lists (all combine with AND)."""

    amenities: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    access: tuple[str, ...] = ()
    district_code: str | None = None
    #: Substring of name or address (Chinese or Latin, case-insensitive).
    q: str | None = None
    #: Only stations open at this instant (status open and inside their open intervals).
    open_at: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    #: Only stations in an actor's editing scope ("my stations").
    scope: Scope | None = None


@dataclass(frozen=True, slots=True)
class NearestFilter(StationFilter):
    """What the nearest query is restricted to, and where it is asked from."""

    lon: float = 0.0
    lat: float = 0.0
    k: int = 5
    radius_m: float | None = None
    statuses: tuple[str, ...] = ("open", "temporarily_closed")


def like_pattern(q: str) -> str:
    """An ILIKE pattern matching `q` anywhere, with LIKE's wildcards escaped."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(f: StationFilter) -> tuple[list[str], dict[str, Any]]:
    conds: list[str] = []
    params: dict[str, Any] = {}
    if f.statuses:
        conds.append("status = ANY(:statuses)")
        params["statuses"] = list(f.statuses)
    # One `amenities @> ARRAY[:a_i]` per amenity (not one array containment) so that the
    # planner can match the partial per-amenity index of any single one of them.
    for i, code in enumerate(f.amenities):
        conds.append(f"amenities @> ARRAY[CAST(:a{i} AS text)]")
        params[f"a{i}"] = code
    if f.scope is not None:
        cond, scope_params = station_scope_sql(f.scope)
        conds.append(cond)
        params.update(scope_params)
    if f.access:
        conds.append("access = ANY(:access)")
        params["access"] = list(f.access)
    if f.district_code is not None:
        conds.append("district_code = :district_code")
        params["district_code"] = f.district_code
    if f.q is not None:
        conds.append(
            "search_grams @> yizhan_query_grams(:q) "
            "AND (name ILIKE :q_like OR address ILIKE :q_like)"
        )
        params["q"] = f.q
        params["q_like"] = like_pattern(f.q)
    if f.open_at is not None:
        conds.append("status = 'open' AND open_intervals @> CAST(:open_at AS timestamptz)")
        params["open_at"] = f.open_at
    if f.bbox is not None:
        conds.append("geom && ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)")
        params.update(zip(("minlon", "minlat", "maxlon", "maxlat"), f.bbox, strict=True))
    return conds, params


def _bind(sql: str, params: dict[str, Any]) -> TextClause:
    stmt = text(sql)
    arrays = [bindparam(k, type_=_TEXT_ARRAY) for k in ("statuses", "access") if k in params]
    return stmt.bindparams(*arrays) if arrays else stmt


def _nearest_sql(f: NearestFilter) -> tuple[str, dict[str, Any]]:
    conds, params = _conditions(f)
    if f.radius_m is not None:
        conds.append("ST_DWithin(geom::geography, q.g, :radius_m)")
        params["radius_m"] = f.radius_m
    params.update(lon=_pos(f.lon), lat=_pos(f.lat), k=f.k)
    where = " AND ".join(conds) or "TRUE"
    # Stage 1 walks the geography GiST index in sphere-distance order (true KNN) for k
    # candidates. Stage 2 takes everything within the k-th candidate's spheroid distance (plus
    # margin) and orders by exact spheroid metres, so the answer equals a brute-force geodesic
    # ordering even where sphere and spheroid disagree about near ties.
    # `q` must be NOT MATERIALIZED: it is used twice, and a materialised CTE turns the KNN
    # operand into a joined column, which no index can order by (a full scan; measured 1.3 s
    # at 10^6 stations instead of 2 ms).
    sql = f"""
WITH q AS NOT MATERIALIZED (
    SELECT CAST(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geography) AS g
),
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
    return sql, params


def nearest_params(f: NearestFilter) -> dict[str, Any]:
    """Bound parameters of the nearest query (also used by the benchmark's raw-SQL run)."""
    return _nearest_sql(f)[1]


def nearest_sql(f: NearestFilter) -> str:
    """The nearest query's SQL text with named (`:name`) parameters."""
    return _nearest_sql(f)[0]


def nearest_statement(f: NearestFilter, explain: bool = False) -> TextClause:
    """The nearest query as a SQLAlchemy statement (optionally prefixed with EXPLAIN)."""
    sql, params = _nearest_sql(f)
    return _bind(("EXPLAIN " if explain else "") + sql, params)


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


def page(
    conn: Connection, f: StationFilter, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """One page of matching stations (ordered by id), and how many match in all."""
    conds, params = _conditions(f)
    where = " AND ".join(conds) or "TRUE"
    rows = list(
        conn.execute(
            _bind(
                f"SELECT {COLUMNS} FROM stations WHERE {where} "
                "ORDER BY id LIMIT :limit OFFSET :offset",
                params,
            ),
            {**params, "limit": limit, "offset": offset},
        ).mappings()
    )
    total = conn.execute(
        _bind(f"SELECT count(*) FROM stations WHERE {where}", params), params
    ).scalar_one()
    return rows, int(total)


def _values(props: dict[str, Any]) -> dict[str, Any]:
    values = {k: props.get(k) for k in WRITABLE}
    values["source_crs"] = values["source_crs"] or "wgs84"
    return values


def insert(conn: Connection, props: dict[str, Any], lon: float, lat: float) -> RowMapping:
    """Insert one station; returns the stored row."""
    cols = ", ".join(WRITABLE)
    vals = ", ".join(_ph(c) for c in WRITABLE)
    stmt = text(
        f"INSERT INTO stations ({cols}, geom) "
        f"VALUES ({vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"RETURNING {COLUMNS}"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    params = {**_values(props), "lon": _pos(lon), "lat": _pos(lat)}
    return conn.execute(stmt, params).mappings().one()


def upsert_many(conn: Connection, rows: list[tuple[dict[str, Any], float, float]]) -> int:
    """Insert or update (by external_id) many stations in the caller's transaction."""
    cols = ", ".join(WRITABLE)
    vals = ", ".join(_ph(c) for c in WRITABLE)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in WRITABLE if c != "external_id")
    # A row that would not change (every field a person sets, and the position, equal) is left
    # alone: re-importing the same file bumps no version and writes no revision.
    compared = [c for c in WRITABLE if c not in ("external_id", "open_intervals")]
    old = ", ".join(f"stations.{c}" for c in compared)
    new = ", ".join(f"EXCLUDED.{c}" for c in compared)
    stmt = text(
        f"INSERT INTO stations ({cols}, geom) "
        f"VALUES ({vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"ON CONFLICT (external_id) DO UPDATE SET {sets}, geom = EXCLUDED.geom, "
        "updated_at = now(), version = stations.version + 1 "
        f"WHERE ({old}, ST_AsBinary(stations.geom)) "
        f"IS DISTINCT FROM ({new}, ST_AsBinary(EXCLUDED.geom))"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    params = [{**_values(p), "lon": _pos(lon), "lat": _pos(lat)} for p, lon, lat in rows]
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
    sets = [f"{c} = {_ph(c)}" for c in WRITABLE if c in changes]
    params: dict[str, Any] = {c: changes[c] for c in WRITABLE if c in changes}
    if lon_lat is not None:
        sets.append("geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)")
        params["lon"], params["lat"] = _pos(lon_lat[0]), _pos(lon_lat[1])
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


def change_amenities(
    conn: Connection,
    station_id: int,
    add: list[str],
    remove: list[str],
    vocabulary: tuple[str, ...],
    expected_version: int | None,
) -> RowMapping | None:
    """Add and remove amenities in one statement (the row lock makes concurrent changes
    compose), keeping the vocabulary's order; None when the id (or version) does not match."""
    where = "id = :id"
    params: dict[str, Any] = {"id": station_id, "add": add, "remove": remove, "vocab": vocabulary}
    if expected_version is not None:
        where += " AND version = :expected_version"
        params["expected_version"] = expected_version
    stmt = text(
        "UPDATE stations SET amenities = ARRAY("
        " SELECT v.code FROM unnest(CAST(:vocab AS text[])) WITH ORDINALITY AS v(code, i)"
        " WHERE (v.code = ANY(amenities) OR v.code = ANY(:add)) AND NOT v.code = ANY(:remove)"
        " ORDER BY v.i),"
        f" updated_at = now(), version = version + 1 WHERE {where} RETURNING {COLUMNS}"
    ).bindparams(
        bindparam("add", type_=_TEXT_ARRAY),
        bindparam("remove", type_=_TEXT_ARRAY),
        bindparam("vocab", type_=_TEXT_ARRAY),
    )
    return conn.execute(stmt, params).mappings().first()


def delete(conn: Connection, station_id: int, expected_version: int | None = None) -> bool:
    """Delete one station; False when the id (or the expected version) does not match."""
    sql = "DELETE FROM stations WHERE id = :id"
    params: dict[str, Any] = {"id": station_id}
    if expected_version is not None:
        sql += " AND version = :expected_version"
        params["expected_version"] = expected_version
    return conn.execute(text(sql), params).rowcount == 1


def exists(conn: Connection, station_id: int) -> bool:
    """Whether a station id exists."""
    found = conn.execute(text("SELECT 1 FROM stations WHERE id = :id"), {"id": station_id})
    return found.first() is not None


def locked_ref(conn: Connection, station_id: int) -> RowMapping | None:
    """id, district_code and version of a station, its row locked until the transaction ends
    (so the scope a write was allowed for cannot change before it lands)."""
    return (
        conn.execute(
            text("SELECT id, district_code, version FROM stations WHERE id = :id FOR UPDATE"),
            {"id": station_id},
        )
        .mappings()
        .first()
    )


def refs_by_external_id(conn: Connection, external_ids: list[str]) -> dict[str, RowMapping]:
    """id and district of the existing stations among `external_ids`, locked."""
    rows = conn.execute(
        text(
            "SELECT id, external_id, district_code FROM stations "
            "WHERE external_id = ANY(CAST(:ids AS text[])) FOR UPDATE"
        ),
        {"ids": external_ids},
    ).mappings()
    return {r["external_id"]: r for r in rows}


def insert_with_id(
    conn: Connection,
    station_id: int,
    version: int,
    props: dict[str, Any],
    lon: float,
    lat: float,
) -> RowMapping:
    """Re-create a deleted station under its old id and next version (a revert)."""
    cols = ", ".join(WRITABLE)
    vals = ", ".join(_ph(c) for c in WRITABLE)
    stmt = text(
        f"INSERT INTO stations (id, version, {cols}, geom) "
        f"VALUES (:id, :version, {vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"RETURNING {COLUMNS}"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    params = {
        **_values(props),
        "id": station_id,
        "version": version,
        "lon": _pos(lon),
        "lat": _pos(lat),
    }
    return conn.execute(stmt, params).mappings().one()


# --- location proposals -----------------------------------------------------------------------

_PROPOSAL_COLUMNS = (
    "p.id, p.station_id, s.name AS station_name, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat, "
    "ST_X(s.geom) AS station_lon, ST_Y(s.geom) AS station_lat, "
    "ST_Distance(p.geom::geography, s.geom::geography) AS distance_m, s.district_code, "
    "p.note, p.status, p.proposed_by_id, p.proposed_by, p.created_at, p.decided_by, "
    "p.decided_at, p.decision_note"
)


def insert_proposal(
    conn: Connection,
    station_id: int,
    lon: float,
    lat: float,
    note: str | None,
    user_id: int | None,
    name: str,
) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO location_proposals (station_id, geom, note, proposed_by_id, "
                "proposed_by) VALUES (:sid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :note, "
                ":uid, :name) RETURNING id"
            ),
            {
                "sid": station_id,
                "lon": _pos(lon),
                "lat": _pos(lat),
                "note": note,
                "uid": user_id,
                "name": name,
            },
        ).scalar_one()
    )


def proposal(conn: Connection, proposal_id: int, *, lock: bool = False) -> RowMapping | None:
    return (
        conn.execute(
            text(
                f"SELECT {_PROPOSAL_COLUMNS} FROM location_proposals p "
                "JOIN stations s ON s.id = p.station_id WHERE p.id = :id"
                + (" FOR UPDATE OF p, s" if lock else "")
            ),
            {"id": proposal_id},
        )
        .mappings()
        .first()
    )


def proposals(
    conn: Connection, scope: Scope, status: str | None, station_id: int | None, limit: int
) -> list[RowMapping]:
    """Proposals for the stations of `scope`, newest first."""
    cond, params = station_scope_sql(scope, alias="s")
    conds = [cond]
    if status is not None:
        conds.append("p.status = :status")
        params["status"] = status
    if station_id is not None:
        conds.append("p.station_id = :sid")
        params["sid"] = station_id
    return list(
        conn.execute(
            text(
                f"SELECT {_PROPOSAL_COLUMNS} FROM location_proposals p "
                f"JOIN stations s ON s.id = p.station_id WHERE {' AND '.join(conds)} "
                "ORDER BY p.id DESC LIMIT :limit"
            ),
            {**params, "limit": limit},
        ).mappings()
    )


def decide_proposal(
    conn: Connection, proposal_id: int, status: str, by: str, note: str | None
) -> None:
    conn.execute(
        text(
            "UPDATE location_proposals SET status = :status, decided_by = :by, "
            "decided_at = now(), decision_note = :note WHERE id = :id"
        ),
        {"status": status, "by": by, "note": note, "id": proposal_id},
    )
