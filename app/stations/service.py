"""Station use cases: validation beyond shape, DB error translation, GeoJSON shaping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn

from psycopg import errors as pg_errors
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.accounts import policy
from app.accounts.policy import Action, Actor, StationRef
from app.audit import service as audit
from app.audit.service import Channel
from app.config import Settings
from app.districts import queries as district_queries
from app.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
)
from app.geo import coords
from app.geo.coords import CoordSys
from app.geo.links import navigation_links
from app.hours import describe, evaluate, station_state
from app.hours import store as hours_store
from app.hours.calendar import HolidayCalendar
from app.reports.vocab import OPEN_STATUSES
from app.stations import queries
from app.stations.schemas import AmenityChange, StationFeatureIn, StationFeaturePatch
from app.stations.vocab import AMENITY_CODES

COORD_DECIMALS = 7


@contextmanager
def translated_db_errors() -> Iterator[None]:
    """Turn constraint violations into domain errors naming the field."""
    try:
        yield
    except IntegrityError as exc:
        orig = exc.orig
        constraint = getattr(getattr(orig, "diag", None), "constraint_name", None) or ""
        if isinstance(orig, pg_errors.UniqueViolation):
            if "external_id" in constraint:
                raise ConflictError(
                    "external_id: a station with this external_id already exists",
                    field="external_id",
                ) from exc
            raise ConflictError(f"duplicate value violates {constraint}") from exc
        if isinstance(orig, pg_errors.CheckViolation):
            name = constraint.removeprefix("ck_stations_") or "body"
            raise InvalidInputError(f"{name}: value not allowed", field=name) from exc
        if isinstance(orig, pg_errors.ForeignKeyViolation) and "duplicate_of" in constraint:
            raise ConflictError(
                "duplicate_of: the station that stays was deleted, or this station is the one "
                "that stays for duplicates (其他重复站点指向此站点)",
                field="duplicate_of",
            ) from exc
        raise
    except DBAPIError as exc:
        if isinstance(exc.orig, pg_errors.DataError | pg_errors.NumericValueOutOfRange):
            raise InvalidInputError(f"invalid value: {exc.orig}") from exc
        raise


@dataclass(frozen=True)
class FeatureContext:
    """How stations are presented (coordinate system, the instant hours are evaluated at) and
    what writes need to store hours (time zone, calendar, the current hours window)."""

    coord_sys: CoordSys
    at: datetime
    tz: str
    calendar: HolidayCalendar
    window: tuple[datetime, datetime] | None
    #: Freshness: a station not confirmed for this many days is stale, as of `now`.
    stale_days: int = 90
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def build(
        cls, settings: Settings, conn: Connection, at: datetime | None, coord_sys: CoordSys
    ) -> FeatureContext:
        window, calendar = hours_store.snapshot(conn)
        return cls(
            coord_sys=coord_sys,
            at=at or datetime.now(UTC),
            tz=settings.time_zone,
            calendar=calendar,
            window=window,
            stale_days=settings.stale_days,
        )

    def collection_members(self) -> dict[str, Any]:
        """Foreign members telling clients how to read the collection."""
        return {"coord_sys": self.coord_sys, "evaluated_at": self.at.isoformat()}


def _state(
    hours: str | None,
    status: str,
    at: datetime,
    tz: str,
    calendar: HolidayCalendar,
    closed_until: datetime | None = None,
) -> dict[str, Any]:
    """open_now / next change of a station. Opening hours have minute resolution, so the state
    is the same all through a minute: memoised per (hours, status, minute) — exact, and it
    makes a page of stations sharing a few hour strings cost a few evaluations. A closure end
    (any second) is applied here against the exact instant: once it has passed the station
    is `open` by status, before it the minute's state is closed throughout."""
    if status == "temporarily_closed" and closed_until is not None and closed_until <= at:
        status, closed_until = "open", None
    elif status != "temporarily_closed":
        closed_until = None
    minute = at.replace(second=0, microsecond=0)
    return _state_at_minute(hours, status, minute, tz, calendar, closed_until)


@lru_cache(maxsize=8192)
def _state_at_minute(
    hours: str | None,
    status: str,
    minute: datetime,
    tz: str,
    calendar: HolidayCalendar,
    closed_until: datetime | None = None,
) -> dict[str, Any]:
    state = station_state(hours, status, minute, tz, calendar, closed_until)
    return describe(state, minute, tz)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def freshness(row: RowMapping, ctx: FeatureContext) -> dict[str, Any]:
    """How fresh a station's information is: when its people last confirmed it (days ago,
    whole days rounded down), whether that is older than `stale_days` (or never), and the
    last 30 days' courier check-ins."""
    confirmed: datetime | None = row["confirmed_at"]
    days = None
    stale = True
    if confirmed is not None:
        age = ctx.now - confirmed
        days = max(0, age.days)
        stale = age > timedelta(days=ctx.stale_days)
    counts = row["checkins"] or {}
    last = counts.get("last_at")
    return {
        "confirmed_at": _iso(confirmed),
        "confirmed_days_ago": days,
        "stale": stale,
        "checkins": {
            "open": int(counts.get("open") or 0),
            "closed": int(counts.get("closed") or 0),
            "last_at": _iso(datetime.fromtimestamp(float(last), UTC)) if last else None,
        },
    }


def to_feature(
    row: RowMapping, ctx: FeatureContext, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One stored station as a GeoJSON Feature in the context's coordinate system, with its
    state at the context's instant (open_now, next change) and navigation links."""
    lon, lat = coords.from_wgs84(row["lon"], row["lat"], ctx.coord_sys)
    props = {
        "external_id": row["external_id"],
        "name": row["name"],
        "address": row["address"],
        "district_code": row["district_code"],
        "host_type": row["host_type"],
        "operator": row["operator"],
        "access": row["access"],
        "amenities": list(row["amenities"]),
        "opening_hours": row["opening_hours"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "closed_until": _iso(row["closed_until"]),
        "duplicate_of": row["duplicate_of"],
        **_state(
            row["opening_hours"],
            row["status"],
            ctx.at,
            ctx.tz,
            ctx.calendar,
            row["closed_until"],
        ),
        "phone": row["phone"],
        "capacity": row["capacity"],
        "notes": row["notes"],
        "open_reports": row["open_reports"],
        "level": row["level"],
        "freshness": freshness(row, ctx),
        "source_crs": row["source_crs"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "version": row["version"],
        "links": navigation_links(row["lon"], row["lat"], row["name"]),
    }
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": {
            "type": "Point",
            "coordinates": [round(lon, COORD_DECIMALS), round(lat, COORD_DECIMALS)],
        },
        "properties": props,
    }


def feature_collection(features: list[dict[str, Any]], **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with optional foreign members (paging, counts)."""
    return {"type": "FeatureCollection", "features": features, **members}


def get_station(conn: Connection, station_id: int) -> RowMapping:
    """A station row, or NotFoundError."""
    row = queries.get(conn, station_id)
    if row is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    return row


def _wgs84(lon: float, lat: float, coord_sys: CoordSys) -> tuple[float, float]:
    try:
        return coords.to_wgs84(lon, lat, coord_sys)
    except ValueError as exc:
        raise InvalidInputError(f"geometry.coordinates: {exc}", "geometry.coordinates") from exc


def _checked_hours(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return evaluate.validate(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"properties.opening_hours: {exc}", field="properties.opening_hours"
        ) from exc


def resolve_districts(
    conn: Connection, points: list[tuple[float, float, str | None]]
) -> list[str | None]:
    """The district each station written at WGS-84 (lon, lat) claiming a code will really be
    in: the loaded outline containing its stored (rounded) position, else the claimed code
    (`app/districts/queries.py`, one rule for every write and for outline loads)."""
    return district_queries.resolve_station_districts(
        conn,
        [
            (round(x, queries.POSITION_DECIMALS), round(y, queries.POSITION_DECIMALS), code)
            for x, y, code in points
        ],
    )


def _locked(conn: Connection, station_id: int) -> StationRef:
    """The station a write addresses, its row locked; NotFoundError for an unknown id."""
    row = queries.locked_ref(conn, station_id)
    if row is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    return StationRef(int(row["id"]), row["district_code"])


def _lifecycle(
    conn: Connection,
    station_id: int | None,
    current: RowMapping | None,
    changes: dict[str, Any],
) -> None:
    """Check a write's status, closure end and duplicate pointer together, completing
    `changes` (in place) with what a status change clears: `closed_until` only with
    `temporarily_closed`, `duplicate_of` (required) only with `duplicate`, and the old
    `status_reason` unless a new one is given. `current` is the stored row (None: a new
    station)."""
    old_status = current["status"] if current is not None else None
    status = changes.get("status", old_status or "open")
    status_changed = current is None or ("status" in changes and status != old_status)
    if changes.get("closed_until") is not None and status != "temporarily_closed":
        raise InvalidInputError(
            "properties.closed_until: only with status temporarily_closed "
            f"(status is {status}; 仅暂停开放时可设置恢复开放时间)",
            field="properties.closed_until",
        )
    if changes.get("duplicate_of") is not None and status != "duplicate":
        raise InvalidInputError(
            f"properties.duplicate_of: only with status duplicate (status is {status}; "
            "仅重复站点可指向保留的站点)",
            field="properties.duplicate_of",
        )
    if current is not None and "status" in changes:
        if status != "temporarily_closed":
            changes["closed_until"] = None
        if status != "duplicate":
            changes["duplicate_of"] = None
        if status_changed:
            changes.setdefault("status_reason", None)
    if status != "duplicate" or not (status_changed or "duplicate_of" in changes):
        return
    target = changes.get("duplicate_of", current["duplicate_of"] if current else None)
    if target is None:
        raise InvalidInputError(
            "properties.duplicate_of: required with status duplicate — the id of the station "
            "that stays (重复站点须指明保留的站点)",
            field="properties.duplicate_of",
        )
    if station_id is not None and target == station_id:
        raise InvalidInputError(
            "properties.duplicate_of: a station cannot be a duplicate of itself",
            field="properties.duplicate_of",
        )
    kept = queries.lifecycle_target(conn, int(target))
    if kept is None:
        raise NotFoundError(
            f"properties.duplicate_of: no station with id {target}",
            field="properties.duplicate_of",
        )
    if kept["status"] == "duplicate":
        raise InvalidInputError(
            f"properties.duplicate_of: station {target} is itself a duplicate; point at the "
            "station that stays (请指向保留的站点)",
            field="properties.duplicate_of",
        )
    if station_id is not None:
        pointing = queries.duplicates_of(conn, station_id)
        if pointing:
            raise ConflictError(
                f"properties.status: stations {', '.join(map(str, pointing))} are duplicates "
                f"of this one; point them at station {target} first",
                field="properties.status",
            )


def create_station(
    conn: Connection,
    feature: StationFeatureIn,
    ctx: FeatureContext,
    actor: Actor,
    channel: Channel = "api",
) -> RowMapping:
    """Insert a new station from a validated Feature given in the context's coordinates."""
    props = feature.properties.model_dump()
    lon, lat = _wgs84(feature.geometry.lon, feature.geometry.lat, ctx.coord_sys)
    # the district comes from the outlines before the scope is checked against it
    [props["district_code"]] = resolve_districts(conn, [(lon, lat, props["district_code"])])
    policy.check(actor, Action.STATION_CREATE, StationRef(None, props["district_code"]))
    _lifecycle(conn, None, None, props)
    props["opening_hours"] = _checked_hours(props["opening_hours"])
    props["source_crs"] = ctx.coord_sys
    props["open_intervals"] = hours_store.intervals_literal(
        props["opening_hours"], ctx.window, ctx.tz, ctx.calendar
    )
    audit.attribute(conn, actor, channel)
    with translated_db_errors():
        return queries.insert(conn, props, lon, lat)


def patch_station(
    conn: Connection,
    station_id: int,
    patch: StationFeaturePatch,
    expected_version: int | None,
    ctx: FeatureContext,
    actor: Actor,
    channel: Channel = "api",
) -> RowMapping:
    """Apply a partial update, honouring an optional If-Match version, within the actor's
    rights: scope (403), a manager's fields (403 naming the first refused field), a district
    admin's moves (only into their districts)."""
    try:
        changes = patch.properties.changes()
    except ValueError as exc:
        field = f"properties.{exc}"
        raise InvalidInputError(f"{field}: cannot be null", field=field) from exc
    current = queries.locked_ref(conn, station_id)
    if current is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    ref = StationRef(int(current["id"]), current["district_code"])
    policy.check(actor, Action.STATION_EDIT, ref)
    policy.check_fields(actor, [*changes, *(["geometry"] if patch.geometry else [])])
    lon_lat = None
    if patch.geometry:
        lon_lat = _wgs84(patch.geometry.lon, patch.geometry.lat, ctx.coord_sys)
        changes["source_crs"] = ctx.coord_sys
    if lon_lat is not None or "district_code" in changes:
        # a move (or a claimed code) takes the district of the outlines at the new position
        lon, lat = lon_lat or (float(current["lon"]), float(current["lat"]))
        given = changes.get("district_code", current["district_code"])
        [district] = resolve_districts(conn, [(lon, lat, given)])
        if "district_code" in changes or district != current["district_code"]:
            changes["district_code"] = district
    if "district_code" in changes:
        policy.check_move(actor, ref, changes["district_code"])
    _lifecycle(conn, station_id, current, changes)
    if "opening_hours" in changes:
        changes["opening_hours"] = _checked_hours(changes["opening_hours"])
        changes["open_intervals"] = hours_store.intervals_literal(
            changes["opening_hours"], ctx.window, ctx.tz, ctx.calendar
        )
    audit.attribute(conn, actor, channel)
    with translated_db_errors():
        row = queries.update(
            conn, station_id, changes, lon_lat, expected_version, confirm=_confirms(actor)
        )
    return row if row is not None else _missing(conn, station_id, expected_version)


def change_amenities(
    conn: Connection,
    station_id: int,
    change: AmenityChange,
    expected_version: int | None,
    actor: Actor,
    channel: Channel = "api",
) -> RowMapping:
    """Add/remove amenities atomically (optionally only at `expected_version`)."""
    policy.check(actor, Action.STATION_EDIT, _locked(conn, station_id))
    audit.attribute(conn, actor, channel)
    row = queries.change_amenities(
        conn,
        station_id,
        change.add,
        change.remove,
        AMENITY_CODES,
        expected_version,
        confirm=_confirms(actor),
    )
    return row if row is not None else _missing(conn, station_id, expected_version)


def delete_station(
    conn: Connection,
    station_id: int,
    actor: Actor,
    expected_version: int | None = None,
    channel: Channel = "api",
) -> None:
    """Delete a station (optionally only at `expected_version`); its history stays."""
    policy.check(actor, Action.STATION_DELETE, _locked(conn, station_id))
    audit.attribute(conn, actor, channel)
    pointing = queries.duplicates_of(conn, station_id)
    if pointing:
        raise ConflictError(
            f"id: stations {', '.join(map(str, pointing))} are duplicates of station "
            f"{station_id} (it is the one that stays); change them first "
            "(有重复站点指向此站点)",
            field="id",
        )
    with translated_db_errors():
        deleted = queries.delete(conn, station_id, expected_version)
    if not deleted:
        _missing(conn, station_id, expected_version)


def _confirms(actor: Actor) -> bool:
    """Whether an edit by `actor` also confirms the station: any edit by a person's account
    does (they looked at it); the break-glass token, the system and imports do not."""
    return actor.kind == "user"


def _missing(conn: Connection, station_id: int, expected_version: int | None) -> NoReturn:
    """Why a conditional write matched no row: the id is unknown (404) or the version moved
    on (412)."""
    if expected_version is None or not queries.exists(conn, station_id):
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    raise PreconditionFailedError(
        f"If-Match: station {station_id} is no longer at version {expected_version}; "
        "fetch it again and reapply your change (站点已被他人修改，请重新读取)",
        field="If-Match",
    )


def import_collection(
    conn: Connection,
    features: list[StationFeatureIn],
    ctx: FeatureContext,
    actor: Actor,
    channel: Channel = "import",
) -> int:
    """Upsert many validated WGS-84 stations by external_id in the caller's one transaction,
    each create or update allowed for `actor` (all or nothing) and audited as `import`."""
    existing = queries.refs_by_external_id(conn, [f.properties.external_id for f in features])
    districts = resolve_districts(
        conn, [(f.geometry.lon, f.geometry.lat, f.properties.district_code) for f in features]
    )
    for i, f in enumerate(features):
        old = existing.get(f.properties.external_id)
        targets = [StationRef(None, districts[i])]
        if old is not None:
            targets = [StationRef(int(old["id"]), old["district_code"]), *targets]
        for ref in targets:
            policy.check(actor, Action.STATION_IMPORT, ref, field=f"features[{i}]")
    seen: set[str] = set()
    rows = []
    for i, f in enumerate(features):
        ext = f.properties.external_id
        if ext in seen:
            raise InvalidInputError(
                f"features[{i}].properties.external_id: {ext!r} appears twice in the file",
                field=f"features[{i}].properties.external_id",
            )
        seen.add(ext)
        props = f.properties.model_dump()
        props["district_code"] = districts[i]
        try:
            props["opening_hours"] = _checked_hours(props["opening_hours"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"features[{i}].{exc.detail}", exc.field) from exc
        props["source_crs"] = "wgs84"
        props["open_intervals"] = hours_store.intervals_literal(
            props["opening_hours"], ctx.window, ctx.tz, ctx.calendar
        )
        rows.append((props, f.geometry.lon, f.geometry.lat))
    audit.attribute(conn, actor, channel, action="import")
    with translated_db_errors():
        return queries.upsert_many(conn, rows)


# --- history, revert, location proposals ------------------------------------------------------

#: The station fields a revision's snapshot holds, restored by a revert (plus `location`):
#: everything an edit may set but the derived open intervals.
SNAPSHOT_FIELDS: tuple[str, ...] = tuple(c for c in queries.UPDATABLE if c != "open_intervals")


def _history_ref(conn: Connection, station_id: int) -> StationRef:
    """The station, or what its last revision says of it when it was deleted."""
    row = queries.get(conn, station_id)
    if row is not None:
        return StationRef(station_id, row["district_code"])
    last = audit.last_revision(conn, station_id)
    if last is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    return StationRef(station_id, last["district_code"])


def history(
    conn: Connection, actor: Actor, station_id: int, limit: int, before: int | None
) -> dict[str, Any]:
    """A page of a station's revisions, newest first (its managers, district admins in scope,
    admins); a deleted station's history stays readable by district admins and admins."""
    policy.check(actor, Action.STATION_HISTORY, _history_ref(conn, station_id))
    rows, total = audit.revisions(conn, station_id, limit, before)
    items = [audit.revision_json(r) for r in rows]
    nxt = None
    if len(rows) == limit and rows[-1]["id"] > 1:
        nxt = f"/api/v1/stations/{station_id}/history?limit={limit}&before={rows[-1]['id']}"
    return {
        "station_id": station_id,
        "revisions": items,
        "numberReturned": len(items),
        "numberMatched": total,
        "next": nxt,
    }


def revert_station(
    conn: Connection,
    actor: Actor,
    station_id: int,
    to: int,
    expected_version: int | None,
    ctx: FeatureContext,
    channel: Channel = "api",
) -> RowMapping:
    """Make the station what it was right after revision `to` (admins; district admins when
    both its current and its restored district are theirs). A deleted station comes back
    under its id. The revert is itself a revision (action `revert`)."""
    rev = audit.revision(conn, to)
    if rev is None or int(rev["station_id"]) != station_id:
        raise NotFoundError(f"to: station {station_id} has no revision {to}", field="to")
    if rev["op"] == "delete":
        raise InvalidInputError(
            f"to: revision {to} is the deletion; revert to a revision before it", field="to"
        )
    snap = rev["snapshot"]
    current = queries.locked_ref(conn, station_id)
    now_district = (
        current["district_code"]
        if current is not None
        else _history_ref(conn, station_id).district_code
    )
    policy.check(actor, Action.STATION_REVERT, StationRef(station_id, now_district))
    lon, lat = snap["location"]
    # the restored position lies in today's outlines, which may differ from the revision's
    [restored_district] = resolve_districts(conn, [(lon, lat, snap.get("district_code"))])
    policy.check(actor, Action.STATION_REVERT, StationRef(station_id, restored_district), "to")
    props = {k: snap.get(k) for k in SNAPSHOT_FIELDS}
    props["district_code"] = restored_district
    props["amenities"] = list(props["amenities"] or [])
    if isinstance(props["closed_until"], str):
        props["closed_until"] = datetime.fromisoformat(props["closed_until"])
    props["open_intervals"] = hours_store.intervals_literal(
        props["opening_hours"], ctx.window, ctx.tz, ctx.calendar
    )
    audit.attribute(conn, actor, channel, action="revert", meta={"reverted_to": to})
    with translated_db_errors():
        if current is None:
            last = audit.last_revision(conn, station_id)
            version = int(last["version"]) + 1 if last is not None else 1
            if expected_version is not None:
                raise PreconditionFailedError(
                    f"If-Match: station {station_id} is deleted; revert it without If-Match",
                    field="If-Match",
                )
            return queries.insert_with_id(conn, station_id, version, props, lon, lat)
        row = queries.update(conn, station_id, props, (lon, lat), expected_version)
    return row if row is not None else _missing(conn, station_id, expected_version)


def proposal_json(row: RowMapping, coord_sys: CoordSys) -> dict[str, Any]:
    lon, lat = coords.from_wgs84(row["lon"], row["lat"], coord_sys)
    slon, slat = coords.from_wgs84(row["station_lon"], row["station_lat"], coord_sys)
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "station_name": row["station_name"],
        "coordinates": [round(lon, COORD_DECIMALS), round(lat, COORD_DECIMALS)],
        "current": [round(slon, COORD_DECIMALS), round(slat, COORD_DECIMALS)],
        "distance_m": round(float(row["distance_m"]), 2),
        "note": row["note"],
        "status": row["status"],
        "proposed_by": row["proposed_by"],
        "created_at": row["created_at"].isoformat(),
        "decided_by": row["decided_by"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "decision_note": row["decision_note"],
    }


def propose_location(
    conn: Connection,
    actor: Actor,
    station_id: int,
    lon: float,
    lat: float,
    note: str | None,
    coord_sys: CoordSys,
    channel: Channel = "api",
) -> RowMapping:
    """A manager's proposed position for one of their stations (a district admin decides)."""
    policy.check(actor, Action.LOCATION_PROPOSE, _locked(conn, station_id))
    wlon, wlat = _wgs84(lon, lat, coord_sys)
    pid = queries.insert_proposal(conn, station_id, wlon, wlat, note, actor.user_id, actor.name)
    audit.record(
        conn,
        actor,
        channel,
        "proposal.create",
        f"station:{station_id}",
        {"proposal": pid, "location": [wlon, wlat]},
    )
    row = queries.proposal(conn, pid)
    assert row is not None
    return row


def list_proposals(
    conn: Connection, actor: Actor, status: str | None, station_id: int | None, limit: int
) -> list[RowMapping]:
    """Proposals for the stations in the actor's scope (applied in SQL)."""
    return queries.proposals(conn, policy.station_scope(actor), status, station_id, limit)


def decide_proposal(
    conn: Connection,
    actor: Actor,
    proposal_id: int,
    accept: bool,
    note: str | None,
    channel: Channel = "api",
) -> RowMapping:
    """Accept (the station moves, audited as action `proposal`) or reject a pending
    proposal."""
    row = queries.proposal(conn, proposal_id, lock=True)
    if row is None:
        raise NotFoundError(f"id: no proposal with id {proposal_id}", field="id")
    ref = StationRef(int(row["station_id"]), row["district_code"])
    policy.check(actor, Action.LOCATION_DECIDE, ref)
    if row["status"] != "pending":
        raise ConflictError(
            f"id: proposal {proposal_id} was already {row['status']} by {row['decided_by']}",
            field="id",
        )
    if accept:
        [district] = resolve_districts(conn, [(row["lon"], row["lat"], row["district_code"])])
        policy.check_move(actor, ref, district)
        audit.attribute(
            conn,
            actor,
            channel,
            action="proposal",
            meta={"proposal": proposal_id, "proposed_by": row["proposed_by"]},
        )
        changes = {"source_crs": "wgs84", "district_code": district}
        queries.update(conn, int(row["station_id"]), changes, (row["lon"], row["lat"]), None)
    status = "accepted" if accept else "rejected"
    queries.decide_proposal(conn, proposal_id, status, actor.name, note)
    audit.record(
        conn,
        actor,
        channel,
        f"proposal.{'accept' if accept else 'reject'}",
        f"station:{row['station_id']}",
        {"proposal": proposal_id},
    )
    decided = queries.proposal(conn, proposal_id)
    assert decided is not None
    return decided


# --- freshness: confirmations, check-ins, the staleness list ---------------------------------


def confirm_station(
    conn: Connection, actor: Actor, station_id: int, channel: Channel = "api"
) -> RowMapping:
    """A manager's "still correct" (its managers, district admins in scope, admins): sets
    confirmed_at to now, without a new version or revision; audited as `station.confirm`."""
    policy.check(actor, Action.STATION_CONFIRM, _locked(conn, station_id))
    row = queries.confirm(conn, station_id)
    if row is None:  # pragma: no cover - the row is locked above
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    audit.record(conn, actor, channel, "station.confirm", f"station:{station_id}", {})
    return row


def check_in(
    conn: Connection, station_id: int, outcome: str, client_key: str, limiter: Any
) -> dict[str, Any]:
    """A courier's "open / closed when I got there" (public, rate-limited per client): stored
    with the client's key; returns the station's last 30 days' check-ins."""
    if not queries.exists(conn, station_id):
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    limiter.hit(client_key)
    queries.insert_checkin(conn, station_id, outcome, client_key)
    counts = queries.checkin_counts(conn, station_id)
    last = counts.get("last_at")
    return {
        "station_id": station_id,
        "outcome": outcome,
        "checkins": {
            "open": int(counts.get("open") or 0),
            "closed": int(counts.get("closed") or 0),
            "last_at": _iso(datetime.fromtimestamp(float(last), UTC)) if last else None,
        },
    }


#: The staleness list's columns: JSON keys and the call list's Chinese CSV headers.
STALE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "站点编号"),
    ("external_id", "外部编号"),
    ("name", "站点名称"),
    ("district_code", "行政区划代码"),
    ("phone", "联系电话"),
    ("status", "状态"),
    ("confirmed_at", "最近确认时间"),
    ("confirmed_days_ago", "距上次确认天数"),
    ("open_reports", "待处理反馈"),
    ("overdue_reports", "超期未处理反馈"),
)


def stale_stations(
    conn: Connection,
    actor: Actor,
    days: int,
    escalate_days: int,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Stations in the actor's scope (applied in SQL) not confirmed for `days` days, never
    confirmed first; district admins and admins."""
    policy.check(actor, Action.STALE_LIST)
    rows, total = queries.stale(
        conn, policy.station_scope(actor), days, escalate_days, OPEN_STATUSES, limit
    )
    at = now or datetime.now(UTC)
    items = []
    for r in rows:
        confirmed = r["confirmed_at"]
        items.append(
            {
                "id": r["id"],
                "external_id": r["external_id"],
                "name": r["name"],
                "district_code": r["district_code"],
                "phone": r["phone"],
                "status": r["status"],
                "confirmed_at": _iso(confirmed),
                "confirmed_days_ago": max(0, (at - confirmed).days) if confirmed else None,
                "open_reports": int(r["open_reports"]),
                "overdue_reports": int(r["overdue_reports"]),
            }
        )
    return {
        "days": days,
        "report_escalate_days": escalate_days,
        "stations": items,
        "numberReturned": len(items),
        "numberMatched": total,
    }
