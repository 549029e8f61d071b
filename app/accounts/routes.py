"""Account routes: log in and out, who am I, users, invitations. Thin: parse, call the
service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response

from app.accounts import service
from app.accounts.schemas import AcceptIn, InvitationIn, UserIn, UserPatch
from app.api.deps import ConnDep, SettingsDep
from app.api.openapi import (
    DB,
    JSON_BODY,
    WRITE,
    Accepted,
    Invitation,
    Me,
    Token,
    User,
    UserList,
    body,
    empty,
    errors,
)
from app.api.responses import JSONBytesResponse
from app.api.security import ActorDep, LoginThrottleDep, PasswordsDep

router = APIRouter(prefix="/api/v1", tags=["accounts"])

UserId = Annotated[int, Path(ge=1, le=2**62, description="The account's id")]
FormText = Annotated[str, Form(max_length=256)]


@router.post(
    "/auth/token",
    summary="Log in (OAuth2 password flow): a bearer token for user name and password",
    responses=body(Token) | errors(401, 413, 422, 429, 503),
)
def login(
    request: Request,
    settings: SettingsDep,
    conn: ConnDep,
    passwords: PasswordsDep,
    throttle: LoginThrottleDep,
    username: FormText,
    password: FormText,
) -> JSONBytesResponse:
    address = request.client.host if request.client else "unknown"
    token = service.login(
        conn, username, password, address, passwords, throttle, settings.token_ttl_s
    )
    return JSONBytesResponse(token, headers={"Cache-Control": "no-store"})


@router.delete(
    "/auth/token",
    status_code=204,
    summary="Log out: revoke the token presented",
    responses=empty(204, "Revoked") | errors(401, 422, 503),
)
def logout(conn: ConnDep, actor: ActorDep) -> Response:
    service.logout(conn, actor)
    return Response(status_code=204)


@router.get(
    "/me",
    summary="Who am I: account, role and scope",
    responses=body(Me) | errors(401, *DB),
)
def me(conn: ConnDep, actor: ActorDep) -> JSONBytesResponse:
    return JSONBytesResponse(service.me_json(conn, actor))


@router.get(
    "/users",
    summary="Accounts in your scope (admins: all; district admins: those inside theirs)",
    responses=body(UserList) | errors(401, 403, 422, *DB),
)
def list_users(
    conn: ConnDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONBytesResponse:
    users, total = service.list_users(conn, actor, limit, offset)
    return JSONBytesResponse({"users": users, "numberReturned": len(users), "numberMatched": total})


@router.post(
    "/users",
    status_code=201,
    summary="Create an account (no one may grant more than they hold)",
    responses=body(User, status=201, description="Created") | errors(*WRITE, *JSON_BODY),
)
def create_user(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    passwords: PasswordsDep,
    user: UserIn,
) -> JSONBytesResponse:
    row = service.create_user(conn, actor, user, passwords, settings.password_min_length)
    return JSONBytesResponse(
        service.user_json(row),
        status_code=201,
        headers={"Location": f"/api/v1/users/{row['id']}"},
    )


@router.get(
    "/users/{user_id}",
    summary="One account (yours, or one in your scope)",
    responses=body(User) | errors(401, 403, 404, 422, *DB),
)
def get_user(conn: ConnDep, actor: ActorDep, user_id: UserId) -> JSONBytesResponse:
    return JSONBytesResponse(service.user_json(service.get_user(conn, actor, user_id)))


@router.patch(
    "/users/{user_id}",
    summary="Change an account: name, password (ends its sessions), role and scope",
    responses=body(User) | errors(*WRITE, *JSON_BODY, 404),
)
def patch_user(
    settings: SettingsDep,
    conn: ConnDep,
    actor: ActorDep,
    passwords: PasswordsDep,
    user_id: UserId,
    patch: UserPatch,
) -> JSONBytesResponse:
    row = service.patch_user(conn, actor, user_id, patch, passwords, settings.password_min_length)
    return JSONBytesResponse(service.user_json(row))


@router.delete(
    "/users/{user_id}",
    status_code=204,
    summary="Remove an account (its sessions end; its history stays attributed)",
    responses=empty(204, "Removed") | errors(*WRITE, 404),
)
def remove_user(conn: ConnDep, actor: ActorDep, user_id: UserId) -> Response:
    service.remove_user(conn, actor, user_id)
    return Response(status_code=204)


@router.post(
    "/invitations",
    status_code=201,
    summary="Invite someone to a role and scope: a one-time code that expires",
    responses=body(Invitation, status=201, description="Created") | errors(*WRITE, *JSON_BODY),
)
def create_invitation(
    settings: SettingsDep, conn: ConnDep, actor: ActorDep, invitation: InvitationIn
) -> JSONBytesResponse:
    row, code = service.create_invitation(conn, actor, invitation, settings.invitation_ttl_days)
    return JSONBytesResponse(
        service.invitation_json(row, code),
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/invitations/{code}/accept",
    status_code=201,
    summary="Accept an invitation: set your password; the account and a first token",
    responses=body(Accepted, status=201, description="Created")
    | errors(404, 409, 413, 422, 503, *JSON_BODY),
)
def accept_invitation(
    settings: SettingsDep,
    conn: ConnDep,
    passwords: PasswordsDep,
    code: Annotated[str, Path(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")],
    acceptance: AcceptIn,
) -> JSONBytesResponse:
    user, token = service.accept_invitation(
        conn, code, acceptance, passwords, settings.password_min_length, settings.token_ttl_s
    )
    return JSONBytesResponse(
        {"user": service.user_json(user), "token": token},
        status_code=201,
        headers={"Cache-Control": "no-store", "Location": f"/api/v1/users/{user['id']}"},
    )
