"""Write authorisation: a shared admin bearer token until accounts arrive."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.errors import ServiceUnavailableError, UnauthorizedError

_bearer = HTTPBearer(auto_error=False, description="ADMIN_TOKEN, required for writes")


async def require_admin(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Allow the request only with `Authorization: Bearer <ADMIN_TOKEN>`."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        raise ServiceUnavailableError(
            "Authorization: writes are disabled because ADMIN_TOKEN is not configured",
            field="Authorization",
        )
    if creds is None:
        raise UnauthorizedError(
            "Authorization: a 'Bearer <token>' header is required for writes",
            field="Authorization",
        )
    expected = settings.admin_token.get_secret_value().encode()
    if not secrets.compare_digest(creds.credentials.encode(), expected):
        raise UnauthorizedError("Authorization: the bearer token is wrong", field="Authorization")


AdminDep = Depends(require_admin)
