"""All SQL of the accounts domain: users and their stations, sessions, invitations, and the
scope of lists (the policy's `Scope` applied in SQL, never by filtering in Python)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.types import BigInteger, Text

from app.accounts.policy import Actor, Scope

USER_COLUMNS = (
    "u.id, u.username, u.display_name, u.role, u.districts, u.created_by, u.created_at, "
    "u.updated_at, u.removed_at, "
    "ARRAY(SELECT us.station_id FROM user_stations us WHERE us.user_id = u.id "
    "ORDER BY us.station_id) AS stations, "
    "ARRAY(SELECT s.district_code FROM user_stations us JOIN stations s ON s.id = us.station_id "
    "WHERE us.user_id = u.id) AS station_districts"
)

_TEXTS = ARRAY(Text)
_IDS = ARRAY(BigInteger)


def station_scope_sql(scope: Scope, alias: str = "stations") -> tuple[str, dict[str, Any]]:
    """A WHERE condition selecting the stations of `scope` (bound parameters only)."""
    if scope.everything:
        return "TRUE", {}
    conds = []
    params: dict[str, Any] = {}
    if scope.districts:
        conds.append(
            f"EXISTS (SELECT 1 FROM unnest(CAST(:scope_districts AS text[])) AS p "
            f"WHERE starts_with({alias}.district_code, p))"
        )
        params["scope_districts"] = list(scope.districts)
    if scope.stations:
        conds.append(f"{alias}.id = ANY(CAST(:scope_stations AS bigint[]))")
        params["scope_stations"] = list(scope.stations)
    return ("(" + " OR ".join(conds) + ")") if conds else "FALSE", params


def user_scope_sql(actor: Actor) -> tuple[str, dict[str, Any]]:
    """A WHERE condition (on `users u`) selecting the accounts `actor` may see and manage —
    the SQL twin of policy.user_in_scope."""
    if actor.is_admin:
        return "TRUE", {}
    params: dict[str, Any] = {"me": actor.user_id or -1}
    if actor.role != "district_admin":
        return "u.id = :me", params
    params["prefixes"] = list(actor.districts)
    inside = "EXISTS (SELECT 1 FROM unnest(CAST(:prefixes AS text[])) p WHERE starts_with({}, p))"
    return (
        "(u.id = :me"
        " OR (u.role IN ('district_admin', 'planner') AND cardinality(u.districts) > 0"
        "     AND NOT EXISTS (SELECT 1 FROM unnest(u.districts) d WHERE NOT "
        + inside.format("d")
        + "))"
        " OR (u.role = 'manager'"
        "     AND EXISTS (SELECT 1 FROM user_stations us WHERE us.user_id = u.id)"
        "     AND NOT EXISTS (SELECT 1 FROM user_stations us JOIN stations s"
        "         ON s.id = us.station_id WHERE us.user_id = u.id AND NOT coalesce("
        + inside.format("s.district_code")
        + ", false))))",
        params,
    )


def session_user(conn: Connection, token_hash: str, kind: str = "bearer") -> RowMapping | None:
    """The live account behind an unexpired session token of this kind (a page's cookie
    session never authenticates an API call, nor a bearer token a page)."""
    return (
        conn.execute(
            text(
                f"SELECT s.id AS session_id, s.expires_at, {USER_COLUMNS} "
                "FROM auth_sessions s JOIN users u ON u.id = s.user_id "
                "WHERE s.token_hash = :h AND s.kind = :k AND s.expires_at > now() "
                "AND u.removed_at IS NULL"
            ),
            {"h": token_hash, "k": kind},
        )
        .mappings()
        .first()
    )


def user_by_name(conn: Connection, username: str) -> RowMapping | None:
    """A live account by user name, with its password hash."""
    return (
        conn.execute(
            text(
                f"SELECT {USER_COLUMNS}, u.password_hash FROM users u "
                "WHERE u.username = :n AND u.removed_at IS NULL"
            ),
            {"n": username},
        )
        .mappings()
        .first()
    )


def user_by_id(conn: Connection, user_id: int, *, lock: bool = False) -> RowMapping | None:
    """A live account by id."""
    return (
        conn.execute(
            text(
                f"SELECT {USER_COLUMNS} FROM users u WHERE u.id = :id AND u.removed_at IS NULL"
                + (" FOR UPDATE OF u" if lock else "")
            ),
            {"id": user_id},
        )
        .mappings()
        .first()
    )


def username_taken(conn: Connection, username: str) -> bool:
    """Whether a user name was ever used (removed accounts keep theirs)."""
    found = conn.execute(text("SELECT 1 FROM users WHERE username = :n"), {"n": username})
    return found.first() is not None


def list_users(
    conn: Connection, actor: Actor, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """Live accounts in the actor's scope, by id."""
    where, params = user_scope_sql(actor)
    where = f"u.removed_at IS NULL AND {where}"
    rows = list(
        conn.execute(
            text(
                f"SELECT {USER_COLUMNS} FROM users u WHERE {where} "
                "ORDER BY u.id LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": limit, "offset": offset},
        ).mappings()
    )
    total = conn.execute(text(f"SELECT count(*) FROM users u WHERE {where}"), params).scalar_one()
    return rows, int(total)


def insert_user(
    conn: Connection,
    username: str,
    display_name: str,
    role: str,
    districts: list[str],
    password_hash: str | None,
    created_by: str,
) -> int:
    stmt = text(
        "INSERT INTO users (username, display_name, role, districts, password_hash, created_by) "
        "VALUES (:username, :display_name, :role, :districts, :password_hash, :created_by) "
        "RETURNING id"
    ).bindparams(bindparam("districts", type_=_TEXTS))
    return int(
        conn.execute(
            stmt,
            {
                "username": username,
                "display_name": display_name,
                "role": role,
                "districts": districts,
                "password_hash": password_hash,
                "created_by": created_by,
            },
        ).scalar_one()
    )


def set_stations(conn: Connection, user_id: int, station_ids: list[int]) -> None:
    """Replace the stations a manager keeps."""
    conn.execute(text("DELETE FROM user_stations WHERE user_id = :u"), {"u": user_id})
    if station_ids:
        conn.execute(
            text(
                "INSERT INTO user_stations (user_id, station_id) "
                "SELECT :u, unnest(CAST(:ids AS bigint[]))"
            ),
            {"u": user_id, "ids": station_ids},
        )


def update_user(conn: Connection, user_id: int, changes: dict[str, Any]) -> None:
    """Set some of display_name, role, districts, password_hash."""
    allowed = ("display_name", "role", "districts", "password_hash")
    sets = [f"{c} = :{c}" for c in allowed if c in changes]
    stmt = text(f"UPDATE users SET {', '.join([*sets, 'updated_at = now()'])} WHERE id = :id")
    if "districts" in changes:
        stmt = stmt.bindparams(bindparam("districts", type_=_TEXTS))
    conn.execute(stmt, {**{c: changes[c] for c in allowed if c in changes}, "id": user_id})


def remove_user(conn: Connection, user_id: int) -> None:
    """Mark an account removed, end its sessions and free its stations."""
    conn.execute(
        text("UPDATE users SET removed_at = now(), updated_at = now() WHERE id = :id"),
        {"id": user_id},
    )
    conn.execute(text("DELETE FROM auth_sessions WHERE user_id = :id"), {"id": user_id})
    conn.execute(text("DELETE FROM user_stations WHERE user_id = :id"), {"id": user_id})


def insert_session(
    conn: Connection, user_id: int, token_hash: str, kind: str, expires_at: datetime
) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO auth_sessions (user_id, token_hash, kind, expires_at) "
                "VALUES (:u, :h, :k, :e) RETURNING id"
            ),
            {"u": user_id, "h": token_hash, "k": kind, "e": expires_at},
        ).scalar_one()
    )


def delete_session(conn: Connection, session_id: int) -> None:
    conn.execute(text("DELETE FROM auth_sessions WHERE id = :id"), {"id": session_id})


def delete_sessions(conn: Connection, user_id: int) -> int:
    """End every session of a user; how many there were."""
    return conn.execute(
        text("DELETE FROM auth_sessions WHERE user_id = :u"), {"u": user_id}
    ).rowcount


def station_districts(conn: Connection, station_ids: list[int]) -> dict[int, str | None]:
    """The district of each existing station among `station_ids`."""
    rows = conn.execute(
        text("SELECT id, district_code FROM stations WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": station_ids},
    )
    return {int(r[0]): r[1] for r in rows}


def insert_invitation(
    conn: Connection,
    code_hash: str,
    role: str,
    districts: list[str],
    station_ids: list[int],
    username: str | None,
    display_name: str | None,
    created_by: str,
    expires_at: datetime,
) -> RowMapping:
    stmt = text(
        "INSERT INTO invitations (code_hash, role, districts, station_ids, username, "
        "display_name, created_by, expires_at) VALUES (:h, :role, :districts, :ids, :username, "
        ":display_name, :created_by, :expires_at) RETURNING id, role, districts, station_ids, "
        "username, display_name, created_by, created_at, expires_at"
    ).bindparams(bindparam("districts", type_=_TEXTS), bindparam("ids", type_=_IDS))
    return (
        conn.execute(
            stmt,
            {
                "h": code_hash,
                "role": role,
                "districts": districts,
                "ids": station_ids,
                "username": username,
                "display_name": display_name,
                "created_by": created_by,
                "expires_at": expires_at,
            },
        )
        .mappings()
        .one()
    )


def open_invitation(conn: Connection, code_hash: str) -> RowMapping | None:
    """An unaccepted, unexpired invitation, locked for acceptance."""
    return (
        conn.execute(
            text(
                "SELECT id, role, districts, station_ids, username, display_name, created_by "
                "FROM invitations WHERE code_hash = :h AND accepted_at IS NULL "
                "AND expires_at > now() FOR UPDATE"
            ),
            {"h": code_hash},
        )
        .mappings()
        .first()
    )


def accept_invitation(conn: Connection, invitation_id: int, user_id: int) -> None:
    conn.execute(
        text("UPDATE invitations SET accepted_at = now(), user_id = :u WHERE id = :id"),
        {"u": user_id, "id": invitation_id},
    )
