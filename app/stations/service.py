"""Station use cases: validation beyond shape, DB error translation, GeoJSON shaping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NoReturn

from psycopg import errors as pg_errors
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.config import Settings
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
            field = constraint.removeprefix("ck_stations_") or "body"
            raise InvalidInputError(f"{field}: value not allowed", field=field) from exc
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
        )

    def collection_members(self) -> dict[str, Any]:
        """Foreign members telling clients how to read the collection."""
        return {"coord_sys": self.coord_sys, "evaluated_at": self.at.isoformat()}


def _state(
    hours: str | None, status: str, at: datetime, tz: str, calendar: HolidayCalendar
) -> dict[str, Any]:
    """open_now / next change of a station. Opening hours have minute resolution, so the state
    is the same all through a minute: memoised per (hours, status, minute) — exact, and it
    makes a page of stations sharing a few hour strings cost a few evaluations."""
    minute = at.replace(second=0, microsecond=0)
    return _state_at_minute(hours, status, minute, tz, calendar)


@lru_cache(maxsize=8192)
def _state_at_minute(
    hours: str | None, status: str, minute: datetime, tz: str, calendar: HolidayCalendar
) -> dict[str, Any]:
    return describe(station_state(hours, status, minute, tz, calendar), minute, tz)


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
        **_state(row["opening_hours"], row["status"], ctx.at, ctx.tz, ctx.calendar),
        "phone": row["phone"],
        "capacity": row["capacity"],
        "open_reports": row["open_reports"],
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


def create_station(conn: Connection, feature: StationFeatureIn, ctx: FeatureContext) -> RowMapping:
    """Insert a new station from a validated Feature given in the context's coordinates."""
    props = feature.properties.model_dump()
    props["opening_hours"] = _checked_hours(props["opening_hours"])
    lon, lat = _wgs84(feature.geometry.lon, feature.geometry.lat, ctx.coord_sys)
    props["source_crs"] = ctx.coord_sys
    props["open_intervals"] = hours_store.intervals_literal(
        props["opening_hours"], ctx.window, ctx.tz, ctx.calendar
    )
    with translated_db_errors():
        return queries.insert(conn, props, lon, lat)


def patch_station(
    conn: Connection,
    station_id: int,
    patch: StationFeaturePatch,
    expected_version: int | None,
    ctx: FeatureContext,
) -> RowMapping:
    """Apply a partial update, honouring an optional If-Match version."""
    try:
        changes = patch.properties.changes()
    except ValueError as exc:
        field = f"properties.{exc}"
        raise InvalidInputError(f"{field}: cannot be null", field=field) from exc
    if "opening_hours" in changes:
        changes["opening_hours"] = _checked_hours(changes["opening_hours"])
        changes["open_intervals"] = hours_store.intervals_literal(
            changes["opening_hours"], ctx.window, ctx.tz, ctx.calendar
        )
    lon_lat = None
    if patch.geometry:
        lon_lat = _wgs84(patch.geometry.lon, patch.geometry.lat, ctx.coord_sys)
        changes["source_crs"] = ctx.coord_sys
    with translated_db_errors():
        row = queries.update(conn, station_id, changes, lon_lat, expected_version)
    return row if row is not None else _missing(conn, station_id, expected_version)


def change_amenities(
    conn: Connection, station_id: int, change: AmenityChange, expected_version: int | None
) -> RowMapping:
    """Add/remove amenities atomically (optionally only at `expected_version`)."""
    row = queries.change_amenities(
        conn, station_id, change.add, change.remove, AMENITY_CODES, expected_version
    )
    return row if row is not None else _missing(conn, station_id, expected_version)


def delete_station(conn: Connection, station_id: int, expected_version: int | None = None) -> None:
    """Delete a station (optionally only at `expected_version`)."""
    if not queries.delete(conn, station_id, expected_version):
        _missing(conn, station_id, expected_version)


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
    conn: Connection, features: list[StationFeatureIn], ctx: FeatureContext
) -> int:
    """Upsert many validated WGS-84 stations by external_id in the caller's one transaction."""
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
        try:
            props["opening_hours"] = _checked_hours(props["opening_hours"])
        except InvalidInputError as exc:
            raise InvalidInputError(f"features[{i}].{exc.detail}", exc.field) from exc
        props["source_crs"] = "wgs84"
        props["open_intervals"] = hours_store.intervals_literal(
            props["opening_hours"], ctx.window, ctx.tz, ctx.calendar
        )
        rows.append((props, f.geometry.lon, f.geometry.lat))
    with translated_db_errors():
        return queries.upsert_many(conn, rows)
