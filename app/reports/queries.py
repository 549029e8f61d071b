"""All SQL of courier problem reports."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping


def insert(
    conn: Connection, station_id: int, kind: str, comment: str | None, client_key: str
) -> RowMapping:
    """Store one report; returns it."""
    return (
        conn.execute(
            text(
                "INSERT INTO reports (station_id, kind, comment, client_key) "
                "VALUES (:sid, :kind, :comment, :key) "
                "RETURNING id, station_id, kind, comment, status, created_at"
            ),
            {"sid": station_id, "kind": kind, "comment": comment, "key": client_key},
        )
        .mappings()
        .one()
    )


def open_count(conn: Connection, station_id: int) -> int:
    """How many reports about a station are still open."""
    return int(
        conn.execute(
            text("SELECT count(*) FROM reports WHERE station_id = :sid AND status = 'open'"),
            {"sid": station_id},
        ).scalar_one()
    )
