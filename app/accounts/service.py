"""Account use cases: authenticate a request, log in and out, users, invitations.

Every write here checks the policy, writes its audit event in the same transaction, and lets
the caller's unit of work commit before anything is answered.
"""

from __future__ import annotations

import re
import secrets as _secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from app.accounts import queries
from app.accounts.credentials import (
    LoginThrottle,
    Passwords,
    check_password,
    digest,
    new_code,
    new_token,
)
from app.accounts.policy import (
    ADMIN_TOKEN,
    ROLE_LABELS,
    Action,
    Actor,
    UserRef,
    check,
    check_grant,
    user_in_scope,
)
from app.accounts.schemas import AcceptIn, InvitationIn, UserIn, UserPatch
from app.audit import service as audit
from app.audit.service import Channel
from app.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")
BAD_LOGIN = "username/password: wrong user name or password (用户名或密码错误)"


def actor_from_row(row: RowMapping, session_id: int | None = None) -> Actor:
    """The acting user of an account row."""
    return Actor(
        kind="user",
        role=row["role"],
        name=row["username"],
        user_id=int(row["id"]),
        display_name=row["display_name"],
        districts=tuple(row["districts"]),
        stations=frozenset(int(s) for s in row["stations"]),
        session_id=session_id,
    )


def authenticate(conn: Connection, token: str | None, admin_token: str | None) -> Actor:
    """The actor presenting `token`: the break-glass ADMIN_TOKEN or a live session's user.
    Raises UnauthorizedError (401) for a missing, wrong, expired or revoked token."""
    if not token:
        raise UnauthorizedError(
            "Authorization: a 'Bearer <token>' header is required (请先登录)",
            field="Authorization",
        )
    if admin_token and _secrets.compare_digest(token.encode(), admin_token.encode()):
        return ADMIN_TOKEN
    row = queries.session_user(conn, digest(token))
    if row is None:
        raise UnauthorizedError(
            "Authorization: the token is wrong, expired or revoked (登录已失效，请重新登录)",
            field="Authorization",
        )
    return actor_from_row(row, int(row["session_id"]))


def authenticate_cookie(conn: Connection, token: str | None) -> Actor | None:
    """The user of a page's cookie session (kind 'cookie'), or None when there is none or it
    is wrong, expired or revoked. Only /manage pages call this: the JSON API stays
    bearer-only, so a cookie (sent by the browser on its own) can never authorise an API
    write, and cross-site forgery of pages is stopped by their CSRF field."""
    if not token or len(token) > 200:
        return None
    row = queries.session_user(conn, digest(token), kind="cookie")
    return None if row is None else actor_from_row(row, int(row["session_id"]))


def issue_token(conn: Connection, user_id: int, ttl_s: int, kind: str = "bearer") -> dict[str, Any]:
    """A new session for a user: the token (shown once) and when it expires."""
    token = new_token()
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    queries.insert_session(conn, user_id, digest(token), kind, expires)
    return {"access_token": token, "token_type": "bearer", "expires_in": ttl_s}


def login(
    conn: Connection,
    username: str,
    password: str,
    address: str,
    passwords: Passwords,
    throttle: LoginThrottle,
    ttl_s: int,
    kind: str = "bearer",
) -> dict[str, Any]:
    """The OAuth2 password grant: a token for the right password, else one answer for an
    unknown user and a wrong password alike (after the same Argon2 work), throttled per
    account and per client address. `kind="cookie"`: a session for the /manage pages (the
    same table, TTL and throttle; it authenticates only those pages)."""
    name = username.strip().lower()
    throttle.check(name, address)
    # a name that cannot exist (NUL, spaces, Chinese …) is an unknown user, not a query
    row = queries.user_by_name(conn, name) if _USERNAME.fullmatch(name) else None
    ok, rehashed = passwords.verify(password, row["password_hash"] if row else None)
    if not ok or row is None:
        throttle.failed(name, address)
        raise UnauthorizedError(BAD_LOGIN, field="password")
    if rehashed is not None:
        queries.update_user(conn, int(row["id"]), {"password_hash": rehashed})
    return issue_token(conn, int(row["id"]), ttl_s, kind)


def logout(conn: Connection, actor: Actor) -> None:
    """Revoke the presented token (ADMIN_TOKEN cannot be revoked: change the setting)."""
    if actor.session_id is None:
        raise InvalidInputError(
            "Authorization: only a user's session token can be revoked; ADMIN_TOKEN is "
            "changed in the deployment's settings",
            field="Authorization",
        )
    queries.delete_session(conn, actor.session_id)


def user_json(row: RowMapping) -> dict[str, Any]:
    """An account as the API shows it (never its password hash)."""
    label = ROLE_LABELS[row["role"]]
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "role": row["role"],
        "role_label": {"zh": label.zh, "en": label.en},
        "districts": list(row["districts"]),
        "stations": [int(s) for s in row["stations"]],
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def me_json(conn: Connection, actor: Actor) -> dict[str, Any]:
    """Who the caller is, with role and scope."""
    if actor.user_id is None:
        label = ROLE_LABELS[actor.role]
        return {
            "id": None,
            "username": actor.name,
            "display_name": actor.name,
            "role": actor.role,
            "role_label": {"zh": label.zh, "en": label.en},
            "kind": actor.kind,
            "districts": [],
            "stations": [],
        }
    row = queries.user_by_id(conn, actor.user_id)
    if row is None:  # removed in the same instant
        raise UnauthorizedError("Authorization: the account was removed", field="Authorization")
    return {**user_json(row), "kind": actor.kind}


def list_users(
    conn: Connection, actor: Actor, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of the accounts in the actor's scope (scoped in SQL)."""
    check(actor, Action.USERS_READ)
    rows, total = queries.list_users(conn, actor, limit, offset)
    return [user_json(r) for r in rows], total


def _ref(row: RowMapping) -> UserRef:
    return UserRef(
        role=row["role"],
        districts=tuple(row["districts"]),
        station_districts=tuple(row["station_districts"]),
        user_id=int(row["id"]),
    )


def _station_districts(conn: Connection, stations: list[int]) -> tuple[str | None, ...]:
    found = queries.station_districts(conn, stations)
    missing = [s for s in stations if s not in found]
    if missing:
        raise InvalidInputError(
            f"stations: no station with id {', '.join(map(str, missing))}", field="stations"
        )
    return tuple(found[s] for s in stations)


def _scope_shape(role: str, districts: list[str], stations: list[int]) -> None:
    """Which scope each role carries."""
    if role == "district_admin" and not districts:
        raise InvalidInputError(
            "districts: a district admin needs at least one district code", field="districts"
        )
    if role != "manager" and stations:
        raise InvalidInputError("stations: only managers keep stations", field="stations")
    if role in ("admin", "manager") and districts:
        raise InvalidInputError(f"districts: a {role} has no district scope", field="districts")


def _get_in_scope(conn: Connection, actor: Actor, user_id: int, *, lock: bool) -> RowMapping:
    row = queries.user_by_id(conn, user_id, lock=lock)
    if row is None:
        raise NotFoundError(f"id: no user with id {user_id}", field="id")
    if not user_in_scope(actor, _ref(row)):
        raise ForbiddenError(
            f"id: user {user_id} is outside your scope (超出您的管辖范围)", field="id"
        )
    return row


def create_user(
    conn: Connection,
    actor: Actor,
    body: UserIn,
    passwords: Passwords,
    min_length: int,
    channel: Channel = "api",
) -> RowMapping:
    """A new account with the given role and scope; the actor may grant no more than they
    hold. Without a password the account cannot log in until one is set."""
    check_grant(
        actor,
        UserRef(
            role=body.role,
            districts=tuple(body.districts),
            station_districts=_station_districts(conn, body.stations),
        ),
    )
    _scope_shape(body.role, body.districts, body.stations)
    if queries.username_taken(conn, body.username):
        raise ConflictError(f"username: {body.username!r} is taken", field="username")
    hashed = None
    if body.password is not None:
        check_password(body.password, body.username, min_length)
        hashed = passwords.hash(body.password)
    user_id = queries.insert_user(
        conn, body.username, body.display_name, body.role, body.districts, hashed, actor.name
    )
    queries.set_stations(conn, user_id, body.stations)
    audit.record(
        conn,
        actor,
        channel,
        "user.create",
        f"user:{user_id}",
        {
            "username": body.username,
            "role": body.role,
            "districts": body.districts,
            "stations": body.stations,
        },
    )
    row = queries.user_by_id(conn, user_id)
    assert row is not None
    return row


def get_user(conn: Connection, actor: Actor, user_id: int) -> RowMapping:
    return _get_in_scope(conn, actor, user_id, lock=False)


def patch_user(
    conn: Connection,
    actor: Actor,
    user_id: int,
    body: UserPatch,
    passwords: Passwords,
    min_length: int,
    channel: Channel = "api",
) -> RowMapping:
    """Change an account. Role and scope: by admins and district admins (never their own),
    within what they may grant. A password change ends every session of the account."""
    row = _get_in_scope(conn, actor, user_id, lock=True)
    sent = body.model_fields_set - {"current_password"}
    own = actor.user_id == user_id
    scope_change = sent & {"role", "districts", "stations"}
    if scope_change and (own or actor.role not in ("admin", "district_admin")):
        raise ForbiddenError(
            f"{sorted(scope_change)[0]}: you may not change your own role or scope "
            "(不能修改自己的角色或范围)"
            if own
            else f"{sorted(scope_change)[0]}: only administrators change roles and scopes",
            field=sorted(scope_change)[0],
        )
    changes: dict[str, Any] = {}
    if body.display_name is not None:
        changes["display_name"] = body.display_name
    role = body.role or row["role"]
    districts = body.districts if body.districts is not None else list(row["districts"])
    stations = body.stations if body.stations is not None else [int(s) for s in row["stations"]]
    if scope_change:
        check_grant(
            actor,
            UserRef(
                role=role,
                districts=tuple(districts),
                station_districts=_station_districts(conn, stations),
            ),
        )
        _scope_shape(role, districts, stations)
        changes["role"] = role
        changes["districts"] = districts
    if "password" in sent:
        if body.password is None:
            raise InvalidInputError("password: cannot be null", field="password")
        if own and actor.kind == "user":
            current = queries.user_by_name(conn, row["username"])
            ok, _ = passwords.verify(
                body.current_password or "", current["password_hash"] if current else None
            )
            if not ok:
                raise ForbiddenError(
                    "current_password: give your current password to set a new one "
                    "(请输入当前密码)",
                    field="current_password",
                )
        check_password(body.password, row["username"], min_length)
        changes["password_hash"] = passwords.hash(body.password)
    if changes:
        queries.update_user(conn, user_id, changes)
    if scope_change:
        queries.set_stations(conn, user_id, stations)
    ended = queries.delete_sessions(conn, user_id) if "password_hash" in changes else 0
    details: dict[str, Any] = {k: v for k, v in changes.items() if k != "password_hash"}
    if scope_change:
        details["stations"] = stations
    if "password_hash" in changes:
        details["password_changed"] = True
        details["sessions_ended"] = ended
    audit.record(conn, actor, channel, "user.update", f"user:{user_id}", details)
    updated = queries.user_by_id(conn, user_id)
    assert updated is not None
    return updated


def remove_user(conn: Connection, actor: Actor, user_id: int, channel: Channel = "api") -> None:
    """Remove an account: it can no longer log in, its sessions end, its stations are freed;
    the row stays so that its edits stay attributed."""
    row = _get_in_scope(conn, actor, user_id, lock=True)
    if actor.user_id == user_id:
        raise ForbiddenError("id: you may not remove your own account", field="id")
    if actor.role != "admin" and row["role"] == "admin":  # pragma: no cover - scope forbids
        raise ForbiddenError("id: only an administrator removes an administrator", field="id")
    queries.remove_user(conn, user_id)
    audit.record(
        conn, actor, channel, "user.remove", f"user:{user_id}", {"username": row["username"]}
    )


def create_invitation(
    conn: Connection,
    actor: Actor,
    body: InvitationIn,
    ttl_days: int,
    channel: Channel = "api",
) -> tuple[RowMapping, str]:
    """A one-time invitation to the given role and scope; returns it and its code (shown
    once; only its digest is stored)."""
    check_grant(
        actor,
        UserRef(
            role=body.role,
            districts=tuple(body.districts),
            station_districts=_station_districts(conn, body.stations),
        ),
    )
    _scope_shape(body.role, body.districts, body.stations)
    if body.username is not None and queries.username_taken(conn, body.username):
        raise ConflictError(f"username: {body.username!r} is taken", field="username")
    code = new_code()
    row = queries.insert_invitation(
        conn,
        digest(code),
        body.role,
        body.districts,
        body.stations,
        body.username,
        body.display_name,
        actor.name,
        datetime.now(UTC) + timedelta(days=ttl_days),
    )
    audit.record(
        conn,
        actor,
        channel,
        "invitation.create",
        f"invitation:{row['id']}",
        {"role": body.role, "districts": body.districts, "stations": body.stations},
    )
    return row, code


def invitation_json(row: RowMapping, code: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": code,
        "accept_url": f"/api/v1/invitations/{code}/accept",
        "role": row["role"],
        "districts": list(row["districts"]),
        "stations": [int(s) for s in row["station_ids"]],
        "username": row["username"],
        "display_name": row["display_name"],
        "created_by": row["created_by"],
        "expires_at": row["expires_at"].isoformat(),
    }


def accept_invitation(
    conn: Connection,
    code: str,
    body: AcceptIn,
    passwords: Passwords,
    min_length: int,
    ttl_s: int,
    kind: str = "bearer",
) -> tuple[RowMapping, dict[str, Any]]:
    """Create the invited account with the invitee's password; the code is then spent.
    Returns the account and a first session token (`kind="cookie"`: a /manage page
    session)."""
    inv = queries.open_invitation(conn, digest(code)) if len(code) <= 100 else None
    if inv is None:
        raise NotFoundError(
            "code: no such invitation, or it was used or has expired (邀请无效或已过期)",
            field="code",
        )
    username = inv["username"] or body.username
    if username is None:
        raise InvalidInputError("username: choose a user name", field="username")
    if inv["username"] and body.username and body.username != inv["username"]:
        raise InvalidInputError(
            f"username: this invitation is for {inv['username']!r}", field="username"
        )
    display_name = body.display_name or inv["display_name"] or username
    if queries.username_taken(conn, username):
        raise ConflictError(f"username: {username!r} is taken", field="username")
    check_password(body.password, username, min_length)
    stations = [int(s) for s in inv["station_ids"]]
    existing = queries.station_districts(conn, stations)
    stations = [s for s in stations if s in existing]  # a station deleted meanwhile
    user_id = queries.insert_user(
        conn,
        username,
        display_name,
        inv["role"],
        list(inv["districts"]),
        passwords.hash(body.password),
        inv["created_by"],
    )
    queries.set_stations(conn, user_id, stations)
    queries.accept_invitation(conn, int(inv["id"]), user_id)
    user = queries.user_by_id(conn, user_id)
    assert user is not None
    audit.record(
        conn,
        actor_from_row(user),
        "api",
        "invitation.accept",
        f"invitation:{inv['id']}",
        {"user_id": user_id, "username": username, "role": inv["role"]},
    )
    return user, issue_token(conn, user_id, ttl_s, kind)
