"""Audit: say who acts in a transaction (the stations trigger records each change with it),
append events for the writes that are not station changes, read a station's history.

Capture is trigger-based (migration 0007): every path that changes a station — API, CLI,
imports, a bulk SQL fix in psql — leaves its revision in the same transaction, and a path
that forgot to name its actor is still recorded (as the database role, channel `sql`) rather
than lost. docs/accounts.md says why this beat service-level capture.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.engine import Connection, RowMapping

from app.accounts.policy import Actor
from app.audit import queries

Channel = Literal["api", "page", "import", "cli"]


def context(
    actor: Actor,
    channel: Channel,
    action: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON the trigger reads: who, through which channel, and optionally what."""
    ctx: dict[str, Any] = {
        "kind": actor.kind,
        "id": actor.user_id,
        "name": actor.name,
        "channel": channel,
    }
    if action is not None:
        ctx["action"] = action
    if meta:
        ctx["meta"] = meta
    return ctx


def attribute(
    conn: Connection,
    actor: Actor,
    channel: Channel,
    action: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Every station change for the rest of this transaction is `actor`'s via `channel`."""
    queries.set_actor(conn, context(actor, channel, action, meta))


def record(
    conn: Connection,
    actor: Actor,
    channel: Channel,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit event (a non-station write) in the caller's transaction."""
    queries.insert_event(conn, context(actor, channel), action, subject, details or {})


def revision_json(row: RowMapping) -> dict[str, Any]:
    """One revision as the history endpoint shows it."""
    return {
        "id": row["id"],
        "station_id": row["station_id"],
        "version": row["version"],
        "op": row["op"],
        "action": row["action"],
        "actor": {
            "kind": row["actor_kind"],
            "id": row["actor_id"],
            "name": row["actor_name"],
        },
        "channel": row["channel"],
        "at": row["at"].isoformat(),
        "changes": row["changes"],
        "meta": row["meta"],
    }


def revisions(
    conn: Connection, station_id: int, limit: int, before: int | None
) -> tuple[list[RowMapping], int]:
    """A page of a station's revisions, newest first, and how many there are."""
    return queries.revisions(conn, station_id, limit, before)


def revision(conn: Connection, revision_id: int) -> RowMapping | None:
    return queries.revision(conn, revision_id)


def last_revision(conn: Connection, station_id: int) -> RowMapping | None:
    return queries.last_revision(conn, station_id)
