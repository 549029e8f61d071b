"""All SQL of the audit domain: the actor of a transaction, station revisions, audit events."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

REVISION_COLUMNS = (
    "id, station_id, version, op, action, actor_kind, actor_id, actor_name, channel, at, "
    "district_code, changes, snapshot, meta"
)


def set_actor(conn: Connection, context: dict[str, Any]) -> None:
    """Name who is acting for the rest of this transaction (read by the stations trigger)."""
    conn.execute(
        text("SELECT set_config('yizhan.actor', :ctx, true)"),
        {"ctx": orjson.dumps(context).decode()},
    )


def clear_actor(conn: Connection) -> None:
    """Forget the actor (the end of a unit of work that shares its transaction, in tests)."""
    conn.execute(text("SELECT set_config('yizhan.actor', '', true)"))


def insert_event(
    conn: Connection,
    context: dict[str, Any],
    action: str,
    subject: str,
    details: dict[str, Any],
) -> None:
    """Append one audit event in the caller's transaction."""
    conn.execute(
        text(
            "INSERT INTO audit_events (actor_kind, actor_id, actor_name, channel, action, "
            "subject, details) VALUES (:kind, :id, :name, :channel, :action, :subject, "
            "CAST(:details AS jsonb))"
        ),
        {
            "kind": context["kind"],
            "id": context.get("id"),
            "name": context["name"],
            "channel": context["channel"],
            "action": action,
            "subject": subject,
            "details": orjson.dumps(details).decode(),
        },
    )


def revisions(
    conn: Connection, station_id: int, limit: int, before: int | None
) -> tuple[list[RowMapping], int]:
    """A page of one station's revisions, newest first (keyset on id), and how many in all."""
    params: dict[str, Any] = {"sid": station_id, "limit": limit}
    cond = ""
    if before is not None:
        cond = " AND id < :before"
        params["before"] = before
    rows = list(
        conn.execute(
            text(
                f"SELECT {REVISION_COLUMNS} FROM station_revisions "
                f"WHERE station_id = :sid{cond} ORDER BY id DESC LIMIT :limit"
            ),
            params,
        ).mappings()
    )
    total = conn.execute(
        text("SELECT count(*) FROM station_revisions WHERE station_id = :sid"), {"sid": station_id}
    ).scalar_one()
    return rows, int(total)


def revision(conn: Connection, revision_id: int) -> RowMapping | None:
    """One revision by id."""
    return (
        conn.execute(
            text(f"SELECT {REVISION_COLUMNS} FROM station_revisions WHERE id = :id"),
            {"id": revision_id},
        )
        .mappings()
        .first()
    )


def last_revision(conn: Connection, station_id: int) -> RowMapping | None:
    """The newest revision of a station (a deleted station's last known state)."""
    return (
        conn.execute(
            text(
                f"SELECT {REVISION_COLUMNS} FROM station_revisions WHERE station_id = :sid "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"sid": station_id},
        )
        .mappings()
        .first()
    )


def events(
    conn: Connection, limit: int, before: int | None, action: str | None
) -> list[RowMapping]:
    """A page of audit events, newest first."""
    conds = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        conds.append("id < :before")
        params["before"] = before
    if action is not None:
        conds.append("action = :action")
        params["action"] = action
    return list(
        conn.execute(
            text(
                "SELECT id, at, actor_kind, actor_id, actor_name, channel, action, subject, "
                f"details FROM audit_events WHERE {' AND '.join(conds)} "
                "ORDER BY id DESC LIMIT :limit"
            ),
            params,
        ).mappings()
    )
