"""Accounts for tests: users inserted directly (no Argon2 work) with a live session token."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.accounts import service


@dataclass(frozen=True)
class Person:
    """A test account and the headers that authenticate as it."""

    id: int
    username: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(
    conn: Connection,
    username: str,
    role: str,
    districts: tuple[str, ...] = (),
    stations: tuple[int, ...] = (),
    password_hash: str | None = None,
) -> Person:
    """Insert an account (scope as given) and issue it a 1-hour token."""
    user_id = conn.execute(
        text(
            "INSERT INTO users (username, display_name, role, districts, password_hash, "
            "created_by) VALUES (:u, :u, :r, CAST(:d AS text[]), :h, 'test') RETURNING id"
        ),
        {"u": username, "r": role, "d": list(districts), "h": password_hash},
    ).scalar_one()
    for sid in stations:
        conn.execute(
            text("INSERT INTO user_stations (user_id, station_id) VALUES (:u, :s)"),
            {"u": user_id, "s": sid},
        )
    token = service.issue_token(conn, int(user_id), 3600)["access_token"]
    return Person(int(user_id), username, role, token)
