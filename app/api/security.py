"""Who is calling: `ActorDep` resolves the bearer token (a user's session, or the break-glass
ADMIN_TOKEN) to an `Actor`, on the request's own connection; routes pass the actor to their
service, which asks the one policy (app/accounts/policy.py) before it writes.

The scheme is OAuth2's password flow, so the OpenAPI document (and Swagger UI's Authorize
button) show it on every protected operation; ADMIN_TOKEN is sent the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from app.accounts import service as accounts
from app.accounts.credentials import LoginThrottle, Passwords
from app.accounts.policy import Actor
from app.api.deps import ConnDep, DbDep
from app.config import Settings

oauth2 = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    scheme_name="bearer",
    description=(
        "A session token from POST /api/v1/auth/token (user name and password), or the "
        "deployment's ADMIN_TOKEN (break-glass, recorded as `admin-token`)."
    ),
)


def get_actor(
    request: Request, conn: ConnDep, token: Annotated[str | None, Depends(oauth2)]
) -> Actor:
    settings: Settings = request.app.state.settings
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    return accounts.authenticate(conn, token, admin or None)


async def get_actor_briefly(
    request: Request, db: DbDep, token: Annotated[str | None, Depends(oauth2)]
) -> Actor:
    """The actor, looked up in a short read of its own: for async routes that must not hold
    a connection while they read a large body (uploads), and that check the caller before
    reading a byte of it."""
    settings: Settings = request.app.state.settings
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None

    def lookup() -> Actor:
        with db.read() as conn:
            return accounts.authenticate(conn, token, admin or None)

    return await run_in_threadpool(lookup)


async def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


ActorDep = Annotated[Actor, Depends(get_actor, scope="function")]
BriefActorDep = Annotated[Actor, Depends(get_actor_briefly, scope="function")]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
