"""Station use cases: validation beyond shape, DB error translation, GeoJSON shaping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import errors as pg_errors
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
)
from app.stations import queries
from app.stations.schemas import StationFeatureIn, StationFeaturePatch

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


def to_feature(row: RowMapping, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One stored station as a GeoJSON Feature (lon/lat rounded to ~1 cm)."""
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
        "phone": row["phone"],
        "capacity": row["capacity"],
        "source_crs": row["source_crs"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "version": row["version"],
    }
    if extra:
        props.update(extra)
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": {
            "type": "Point",
            "coordinates": [
                round(row["lon"], COORD_DECIMALS),
                round(row["lat"], COORD_DECIMALS),
            ],
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


def create_station(conn: Connection, feature: StationFeatureIn) -> RowMapping:
    """Insert a new station from a validated Feature."""
    with translated_db_errors():
        return queries.insert(
            conn,
            feature.properties.model_dump(),
            feature.geometry.lon,
            feature.geometry.lat,
        )


def patch_station(
    conn: Connection,
    station_id: int,
    patch: StationFeaturePatch,
    expected_version: int | None,
) -> RowMapping:
    """Apply a partial update, honouring an optional If-Match version."""
    try:
        changes = patch.properties.changes()
    except ValueError as exc:
        field = f"properties.{exc}"
        raise InvalidInputError(f"{field}: cannot be null", field=field) from exc
    lon_lat = (patch.geometry.lon, patch.geometry.lat) if patch.geometry else None
    with translated_db_errors():
        row = queries.update(conn, station_id, changes, lon_lat, expected_version)
    if row is not None:
        return row
    if not queries.exists(conn, station_id):
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    raise PreconditionFailedError(
        f"If-Match: station {station_id} is no longer at version {expected_version}; "
        "fetch it again and reapply your change",
        field="If-Match",
    )


def delete_station(conn: Connection, station_id: int) -> None:
    """Delete a station or raise NotFoundError."""
    if not queries.delete(conn, station_id):
        raise NotFoundError(f"id: no station with id {station_id}", field="id")


def import_collection(conn: Connection, features: list[StationFeatureIn]) -> int:
    """Upsert many validated stations by external_id in the caller's single transaction."""
    seen: set[str] = set()
    for i, f in enumerate(features):
        ext = f.properties.external_id
        if ext in seen:
            raise InvalidInputError(
                f"features[{i}].properties.external_id: {ext!r} appears twice in the file",
                field=f"features[{i}].properties.external_id",
            )
        seen.add(ext)
    rows = [(f.properties.model_dump(), f.geometry.lon, f.geometry.lat) for f in features]
    with translated_db_errors():
        return queries.upsert_many(conn, rows)
