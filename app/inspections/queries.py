"""All SQL of inspections, and the star level they set on a station."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

_COLUMNS = (
    "id, station_id, inspected_on, inspector, inspector_id, checklist, findings, level, created_at"
)


def insert(
    conn: Connection,
    station_id: int,
    inspected_on: date,
    inspector: str,
    inspector_id: int | None,
    checklist: dict[str, bool],
    findings: str | None,
    level: int | None,
) -> RowMapping:
    """Store one inspection; returns it."""
    return (
        conn.execute(
            text(
                "INSERT INTO inspections (station_id, inspected_on, inspector, inspector_id, "
                "checklist, findings, level) VALUES (:sid, :on, :inspector, :inspector_id, "
                f"CAST(:checklist AS jsonb), :findings, :level) RETURNING {_COLUMNS}"
            ),
            {
                "sid": station_id,
                "on": inspected_on,
                "inspector": inspector,
                "inspector_id": inspector_id,
                "checklist": orjson.dumps(checklist).decode(),
                "findings": findings,
                "level": level,
            },
        )
        .mappings()
        .one()
    )


def set_level(conn: Connection, station_id: int, level: int) -> bool:
    """Give the station its star level (a new version, so a revision, only when it changes)."""
    return (
        conn.execute(
            text(
                "UPDATE stations SET level = :level, updated_at = now(), version = version + 1 "
                "WHERE id = :id AND level IS DISTINCT FROM :level"
            ),
            {"id": station_id, "level": level},
        ).rowcount
        == 1
    )


def for_station(conn: Connection, station_id: int, limit: int) -> list[RowMapping]:
    """A station's inspections, newest first (by date, then by when they were recorded)."""
    params: dict[str, Any] = {"sid": station_id, "limit": limit}
    return list(
        conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM inspections WHERE station_id = :sid "
                "ORDER BY inspected_on DESC, id DESC LIMIT :limit"
            ),
            params,
        ).mappings()
    )
