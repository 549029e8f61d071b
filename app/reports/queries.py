"""All SQL of courier problem reports: filing, the courier's status check, the managers'
lists and queue (scoped in SQL), answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

from app.accounts.policy import Scope
from app.accounts.queries import station_scope_sql
from app.reports.vocab import OPEN_STATUSES

#: `status IN ('open', 'acknowledged')`: still waiting for the station's people.
_UNANSWERED = "r.status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"

#: A report as managers see it; `overdue` is computed in SQL from `:escalate_days`.
_COLUMNS = (
    "r.id, r.station_id, s.name AS station_name, s.district_code, r.kind, r.comment, r.status, "
    "r.created_at, r.note, r.answered_by, r.answered_by_id, r.answered_at, r.key_hash, "
    f"({_UNANSWERED} AND r.created_at < now() - make_interval(days => :escalate_days)) "
    "AS overdue"
)


def insert(
    conn: Connection,
    station_id: int,
    kind: str,
    comment: str | None,
    client_key: str,
    key_hash: str,
) -> RowMapping:
    """Store one report (with the SHA-256 of its status key); returns it."""
    return (
        conn.execute(
            text(
                "INSERT INTO reports (station_id, kind, comment, client_key, key_hash) "
                "VALUES (:sid, :kind, :comment, :key, :key_hash) "
                "RETURNING id, station_id, kind, comment, status, created_at"
            ),
            {
                "sid": station_id,
                "kind": kind,
                "comment": comment,
                "key": client_key,
                "key_hash": key_hash,
            },
        )
        .mappings()
        .one()
    )


def open_count(conn: Connection, station_id: int) -> int:
    """How many reports about a station are still unanswered (open or acknowledged)."""
    return int(
        conn.execute(
            text(f"SELECT count(*) FROM reports r WHERE r.station_id = :sid AND {_UNANSWERED}"),
            {"sid": station_id},
        ).scalar_one()
    )


def get(
    conn: Connection, report_id: int, escalate_days: int, *, lock: bool = False
) -> RowMapping | None:
    """One report with its station's name and district (locked with the station's row for an
    answer, so neither can change before it lands)."""
    return (
        conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM reports r JOIN stations s ON s.id = r.station_id "
                "WHERE r.id = :id" + (" FOR UPDATE OF r, s" if lock else "")
            ),
            {"id": report_id, "escalate_days": escalate_days},
        )
        .mappings()
        .first()
    )


def for_station(
    conn: Connection, station_id: int, status: str | None, escalate_days: int, limit: int
) -> list[RowMapping]:
    """A station's reports, newest first."""
    params: dict[str, Any] = {"sid": station_id, "escalate_days": escalate_days, "limit": limit}
    where = "r.station_id = :sid"
    if status is not None:
        where += " AND r.status = :status"
        params["status"] = status
    return list(
        conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM reports r JOIN stations s ON s.id = r.station_id "
                f"WHERE {where} ORDER BY r.created_at DESC, r.id DESC LIMIT :limit"
            ),
            params,
        ).mappings()
    )


def queue(
    conn: Connection,
    scope: Scope,
    status: str | None,
    overdue_only: bool,
    escalate_days: int,
    limit: int,
) -> tuple[list[RowMapping], int, int]:
    """The reports of the stations in `scope`: overdue first, then newest first; with how
    many match and how many of those are overdue."""
    cond, params = station_scope_sql(scope, alias="s")
    conds = [cond]
    params.update(escalate_days=escalate_days, limit=limit)
    if status is not None:
        conds.append("r.status = :status")
        params["status"] = status
    if overdue_only:
        conds.append(
            f"{_UNANSWERED} AND r.created_at < now() - make_interval(days => :escalate_days)"
        )
    where = " AND ".join(conds)
    rows = list(
        conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM reports r JOIN stations s ON s.id = r.station_id "
                f"WHERE {where} ORDER BY overdue DESC, r.created_at DESC, r.id DESC LIMIT :limit"
            ),
            params,
        ).mappings()
    )
    total, overdue = conn.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE "
            f"{_UNANSWERED} AND r.created_at < now() - make_interval(days => :escalate_days)) "
            f"FROM reports r JOIN stations s ON s.id = r.station_id WHERE {where}"
        ),
        params,
    ).one()
    return rows, int(total), int(overdue)


def answer(
    conn: Connection,
    report_id: int,
    status: str,
    note: str | None,
    by: str,
    by_id: int | None,
) -> None:
    """Record a manager's answer."""
    conn.execute(
        text(
            "UPDATE reports SET status = :status, note = :note, answered_by = :by, "
            "answered_by_id = :by_id, answered_at = now() WHERE id = :id"
        ),
        {"status": status, "note": note, "by": by, "by_id": by_id, "id": report_id},
    )
