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

#: Check-ins count over this many days (`freshness.checkins`).
CHECKIN_DAYS = 30

#: Columns every station read returns (plus lon/lat split out of the geometry).
COLUMNS = (
    "id, external_id, name, address, district_code, host_type, operator, access, amenities, "
    "opening_hours, status, phone, capacity, notes, source_crs, created_at, updated_at, version, "
    "ST_X(geom) AS lon, ST_Y(geom) AS lat, "
    "confirmed_at, closed_until, status_reason, duplicate_of, level, "
    # The last 30 days' courier check-ins, one index range scan per returned row (evaluated
    # after the sort and limit, like open_reports).
    "(SELECT jsonb_build_object("
    "'open', count(*) FILTER (WHERE c.outcome = 'open'), "
    "'closed', count(*) FILTER (WHERE c.outcome = 'closed'), "
    "'last_at', extract(epoch FROM max(c.created_at))) "
    "FROM checkins c WHERE c.station_id = stations.id "
    f"AND c.created_at > now() - interval '{CHECKIN_DAYS} days') AS checkins, "
    # Unanswered reports: open or acknowledged (app/reports/vocab.py OPEN_STATUSES).
    "(SELECT count(*) FROM reports r WHERE r.station_id = stations.id "
    "AND r.status IN ('open', 'acknowledged')) AS open_reports"
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
    "closed_until",
    "status_reason",
    "duplicate_of",
)

#: What an edit (PATCH, revert) may set: the writable columns and the star level, which
#: inspections and edits set but imports never overwrite.
UPDATABLE = (*WRITABLE, "level")

#: Whether a station is open for couriers at :open_at by status: open, or temporarily closed
#: with a closure that has ended (its hours apply again).
OPEN_STATUS_AT = (
    "(status = 'open' OR (status = 'temporarily_closed' "
    "AND closed_until <= CAST(:open_at AS timestamptz)))"
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
    #: Only stations with at least this star level (1-5); unrated stations are left out.
    level_min: int | None = None
    #: Only stations not confirmed since this instant (never confirmed included).
    stale_before: datetime | None = None
    #: Only stations with unanswered reports (open or acknowledged).
    with_open_reports: bool = False
    #: Only stations with a report unanswered since before this instant (overdue).
    overdue_before: datetime | None = None


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
        conds.append(f"{OPEN_STATUS_AT} AND open_intervals @> CAST(:open_at AS timestamptz)")
        params["open_at"] = f.open_at
    if f.level_min is not None:
        conds.append("level >= :level_min")
        params["level_min"] = f.level_min
    if f.stale_before is not None:
        conds.append("(confirmed_at IS NULL OR confirmed_at < :stale_before)")
        params["stale_before"] = f.stale_before
    if f.with_open_reports or f.overdue_before is not None:
        cond = (
            "EXISTS (SELECT 1 FROM reports r WHERE r.station_id = stations.id "
            "AND r.status IN ('open', 'acknowledged')"
        )
        if f.overdue_before is not None:
            cond += " AND r.created_at < :overdue_before"
            params["overdue_before"] = f.overdue_before
        conds.append(cond + ")")
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
    confirm: bool = False,
) -> RowMapping | None:
    """Apply changes (and, with `confirm`, mark the station confirmed now, in the same
    statement); None when the id is unknown or the expected version no longer matches."""
    sets = [f"{c} = {_ph(c)}" for c in UPDATABLE if c in changes]
    params: dict[str, Any] = {c: changes[c] for c in UPDATABLE if c in changes}
    if lon_lat is not None:
        sets.append("geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)")
        params["lon"], params["lat"] = _pos(lon_lat[0]), _pos(lon_lat[1])
    sets += ["updated_at = now()", "version = version + 1"]
    if confirm:
        sets.append("confirmed_at = now()")
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
    confirm: bool = False,
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
        " updated_at = now(), version = version + 1"
        + (", confirmed_at = now()" if confirm else "")
        + f" WHERE {where} RETURNING {COLUMNS}"
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
    """id, district_code, version, lifecycle and WGS-84 `lon`/`lat` of a station, its row
    locked until the transaction ends (so the scope a write was allowed for cannot change
    before it lands)."""
    return (
        conn.execute(
            text(
                "SELECT id, district_code, version, status, closed_until, duplicate_of, "
                "ST_X(geom) AS lon, ST_Y(geom) AS lat "
                "FROM stations WHERE id = :id FOR UPDATE"
            ),
            {"id": station_id},
        )
        .mappings()
        .first()
    )


def lifecycle_target(conn: Connection, station_id: int) -> RowMapping | None:
    """id and status of a station a duplicate would point at, locked (so it cannot become a
    duplicate itself or vanish before the pointer lands)."""
    return (
        conn.execute(
            text("SELECT id, status FROM stations WHERE id = :id FOR SHARE"), {"id": station_id}
        )
        .mappings()
        .first()
    )


def duplicates_of(conn: Connection, station_id: int, limit: int = 5) -> list[int]:
    """Ids of stations marked as duplicates of this one (a few)."""
    rows = conn.execute(
        text("SELECT id FROM stations WHERE duplicate_of = :id ORDER BY id LIMIT :limit"),
        {"id": station_id, "limit": limit},
    )
    return [int(r[0]) for r in rows]


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
    cols = ", ".join(UPDATABLE)
    vals = ", ".join(_ph(c) for c in UPDATABLE)
    stmt = text(
        f"INSERT INTO stations (id, version, {cols}, geom) "
        f"VALUES (:id, :version, {vals}, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
        f"RETURNING {COLUMNS}"
    ).bindparams(bindparam("amenities", type_=_TEXT_ARRAY))
    params = {
        **_values(props),
        "level": props.get("level"),
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


# --- freshness: confirmations, check-ins, the staleness list ---------------------------------


def confirm(conn: Connection, station_id: int) -> RowMapping | None:
    """Mark a station confirmed now (no version bump: a confirmation is not an edit, so an
    editor holding the ETag is not disturbed, and the audit trigger writes no revision)."""
    return (
        conn.execute(
            text(f"UPDATE stations SET confirmed_at = now() WHERE id = :id RETURNING {COLUMNS}"),
            {"id": station_id},
        )
        .mappings()
        .first()
    )


def insert_checkin(conn: Connection, station_id: int, outcome: str, client_key: str) -> None:
    """Store one courier check-in."""
    conn.execute(
        text(
            "INSERT INTO checkins (station_id, outcome, client_key) VALUES (:sid, :outcome, :key)"
        ),
        {"sid": station_id, "outcome": outcome, "key": client_key},
    )


def checkin_counts(conn: Connection, station_id: int) -> dict[str, Any]:
    """The station's check-ins of the last CHECKIN_DAYS days (the `checkins` column's shape)."""
    value = conn.execute(
        text(
            "SELECT jsonb_build_object("
            "'open', count(*) FILTER (WHERE c.outcome = 'open'), "
            "'closed', count(*) FILTER (WHERE c.outcome = 'closed'), "
            "'last_at', extract(epoch FROM max(c.created_at))) "
            "FROM checkins c WHERE c.station_id = :sid "
            f"AND c.created_at > now() - interval '{CHECKIN_DAYS} days'"
        ),
        {"sid": station_id},
    ).scalar_one()
    return dict(value)


def stale(
    conn: Connection,
    scope: Scope,
    days: int,
    escalate_days: int,
    open_statuses: tuple[str, ...],
    limit: int,
) -> tuple[list[RowMapping], int]:
    """Stations in `scope` not confirmed for `days` days (never confirmed first, then the
    oldest confirmation), with their unanswered and overdue report counts; and how many in
    all. Courier-visible and planned stations only: closed and duplicate ones need no call."""
    cond, params = station_scope_sql(scope, alias="s")
    params.update(days=days, esc=escalate_days, open_statuses=list(open_statuses))
    where = (
        f"{cond} AND s.status IN ('planned', 'open', 'temporarily_closed') "
        "AND (s.confirmed_at IS NULL "
        "OR s.confirmed_at < now() - make_interval(days => CAST(:days AS integer)))"
    )
    rows = conn.execute(
        text(
            "SELECT s.id, s.external_id, s.name, s.district_code, s.phone, s.status, "
            "s.confirmed_at, "
            "(SELECT count(*) FROM reports r WHERE r.station_id = s.id "
            "AND r.status = ANY(:open_statuses)) AS open_reports, "
            "(SELECT count(*) FROM reports r WHERE r.station_id = s.id "
            "AND r.status = ANY(:open_statuses) "
            "AND r.created_at < now() - make_interval(days => CAST(:esc AS integer))) "
            "AS overdue_reports "
            f"FROM stations s WHERE {where} "
            "ORDER BY s.confirmed_at ASC NULLS FIRST, s.id LIMIT :limit"
        ).bindparams(bindparam("open_statuses", type_=_TEXT_ARRAY)),
        {**params, "limit": limit},
    ).mappings()
    total = conn.execute(
        text(f"SELECT count(*) FROM stations s WHERE {where}"),
        {k: v for k, v in params.items() if k not in ("open_statuses", "esc")},
    ).scalar_one()
    return list(rows), int(total)


# --- spreadsheets: import previews, exports, the demo loader -----------------------------------

#: The columns a spreadsheet row compares and exports (no derived or bookkeeping columns).
EXCHANGE_COLUMNS = (
    "id, external_id, name, address, district_code, host_type, operator, access, amenities, "
    "opening_hours, status, phone, capacity, notes, ST_X(geom) AS lon, ST_Y(geom) AS lat, "
    "closed_until, status_reason, duplicate_of"
)


def exchange_rows_by_external_id(
    conn: Connection, external_ids: list[str], lock: bool = False
) -> dict[str, RowMapping]:
    """The stored stations among `external_ids` (optionally locked until the transaction
    ends), keyed by external_id."""
    rows = conn.execute(
        text(
            f"SELECT {EXCHANGE_COLUMNS} FROM stations "
            "WHERE external_id = ANY(CAST(:ids AS text[]))" + (" FOR UPDATE" if lock else "")
        ),
        {"ids": external_ids},
    ).mappings()
    return {r["external_id"]: r for r in rows}


def stations_near(
    conn: Connection, points: list[tuple[int, float, float]], radius_m: float
) -> list[RowMapping]:
    """Stations within `radius_m` geodesic metres of each (key, lon, lat) point: rows of
    key, id, external_id, name, district_code, distance_m (one query, the geography index)."""
    if not points:
        return []
    return list(
        conn.execute(
            text(
                "SELECT p.k AS key, s.id, s.external_id, s.name, s.district_code, "
                "ST_Distance(s.geom::geography, p.g) AS distance_m "
                "FROM (SELECT k, CAST(ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS geography) AS g "
                "      FROM unnest(CAST(:keys AS bigint[]), CAST(:lons AS float8[]), "
                "                  CAST(:lats AS float8[])) AS u(k, lon, lat)) p "
                "JOIN stations s ON ST_DWithin(s.geom::geography, p.g, :r) "
                "ORDER BY p.k, distance_m, s.id"
            ),
            {
                "keys": [k for k, _, _ in points],
                "lons": [_pos(lon) for _, lon, _ in points],
                "lats": [_pos(lat) for _, _, lat in points],
                "r": radius_m,
            },
        ).mappings()
    )


#: An external_id folded for comparison: lower case, letters and digits only.
_FOLDED_ID = "lower(regexp_replace(external_id, '[^A-Za-z0-9]', '', 'g'))"


def stations_by_folded_external_id(conn: Connection, folded: list[str]) -> list[RowMapping]:
    """Stations whose folded external_id (lower case, letters and digits) is among `folded`."""
    if not folded:
        return []
    return list(
        conn.execute(
            text(
                f"SELECT id, external_id, name, district_code, {_FOLDED_ID} AS folded "
                f"FROM stations WHERE {_FOLDED_ID} = ANY(CAST(:f AS text[]))"
            ),
            {"f": folded},
        ).mappings()
    )


def exchange_rows(conn: Connection, scope: Scope) -> list[RowMapping]:
    """Every station of `scope` (applied in SQL), ordered by id, for an export."""
    cond, params = station_scope_sql(scope)
    return list(
        conn.execute(
            text(f"SELECT {EXCHANGE_COLUMNS} FROM stations WHERE {cond} ORDER BY id"), params
        ).mappings()
    )


def edited_by_others(conn: Connection, external_ids: list[str], kind: str, name: str) -> set[str]:
    """Which of `external_ids` a person changed last — a live station, or one that once
    carried the id (since renamed or deleted), whose newest revision is neither the
    system's (imports, district re-assignment) nor the loader's own (`kind`, `name` through
    channel `import`)."""
    rows = conn.execute(
        text(
            "WITH cand AS ("
            "  SELECT id AS station_id, external_id AS ext FROM stations "
            "  WHERE external_id = ANY(CAST(:ids AS text[])) "
            "  UNION "
            "  SELECT DISTINCT station_id, snapshot->>'external_id' FROM station_revisions "
            "  WHERE snapshot->>'external_id' = ANY(CAST(:ids AS text[]))"
            ") "
            "SELECT DISTINCT c.ext FROM cand c "
            "JOIN LATERAL (SELECT actor_kind, actor_name, channel FROM station_revisions r "
            "              WHERE r.station_id = c.station_id ORDER BY r.id DESC LIMIT 1) last "
            "ON TRUE "
            "WHERE last.actor_kind <> 'system' AND NOT (last.actor_kind = :kind "
            "      AND last.actor_name = :name AND last.channel = 'import')"
        ),
        {"ids": external_ids, "kind": kind, "name": name},
    ).scalars()
    return set(rows)
