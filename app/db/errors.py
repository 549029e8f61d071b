"""Database errors → domain errors, in one place (the units of work in app/db/engine.py use it).

- no connection free in the pool within `YIZHAN_POOL_TIMEOUT_S` → 503, `Retry-After: 2`;
- server down, restarting, connection lost (SQLSTATE 08…, 57P0…) → 503, `Retry-After: 5`;
- statement timeout (57014) → 503, `Retry-After: 5`;
- lock not available within `lock_timeout` (55P03), serialization failure (40001), deadlock
  (40P01) → 409, `Retry-After: 1`;
- unique violation (23505) → 409 naming the column;
- not-null (23502), check (23514), foreign key (23503) violation → 422 naming the column;
- bad data (22…: out of range, invalid text, NUL byte) → 422.

Anything else is a programming error and stays an exception (a logged 500).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from app.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    ServiceUnavailableError,
)

#: Seconds a client is asked to wait after each kind of temporary failure.
RETRY_POOL_S = 2
RETRY_OUTAGE_S = 5
RETRY_CONFLICT_S = 1

_UNAVAILABLE = "数据库暂时无法服务，请稍后重试 / database temporarily unavailable, retry shortly"


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or "")


def _column(exc: sa_exc.DBAPIError) -> str:
    """The column a constraint names: the driver's diagnostic, else the constraint's name
    without its `uq_/ck_/fk_<table>_` prefix."""
    diag = getattr(exc.orig, "diag", None)
    column = getattr(diag, "column_name", None)
    if column:
        return str(column)
    constraint = str(getattr(diag, "constraint_name", None) or "")
    table = str(getattr(diag, "table_name", None) or "")
    name = re.sub(r"^(uq|ck|fk|ix|pk)_", "", constraint)
    if table and name.startswith(table + "_"):
        name = name[len(table) + 1 :]
    return name or "body"


def translate(exc: BaseException) -> DomainError | None:
    """The domain error a database exception means to a client, or None if it is a bug."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool: every connection is busy
        return ServiceUnavailableError(
            f"database: busy, no connection became free; retry in {RETRY_POOL_S} s",
            field="database",
            retry_after=RETRY_POOL_S,
        )
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    state = _sqlstate(exc)
    if (
        exc.connection_invalidated
        or state.startswith(("08", "57P"))
        or (not state and isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError))
    ):
        return ServiceUnavailableError(
            f"database: {_UNAVAILABLE}", field="database", retry_after=RETRY_OUTAGE_S
        )
    if state == "57014":
        return ServiceUnavailableError(
            "database: the query took too long and was cancelled; retry later",
            field="database",
            retry_after=RETRY_OUTAGE_S,
        )
    if state in ("55P03", "40001", "40P01"):
        return ConflictError(
            "the record is being changed by another request right now; retry "
            f"in {RETRY_CONFLICT_S} s (正在被他人修改，请稍后重试)",
            field="id",
            retry_after=RETRY_CONFLICT_S,
        )
    if state == "23505":
        col = _column(exc)
        return ConflictError(f"{col}: a record with this {col} already exists", field=col)
    if state in ("23502", "23514", "23503"):
        col = _column(exc)
        what = {
            "23502": "must not be null",
            "23514": "value not allowed",
            "23503": "refers to a record that does not exist",
        }[state]
        return InvalidInputError(f"{col}: {what}", field=col)
    if state.startswith("22"):
        diag = getattr(exc.orig, "diag", None)
        message = str(getattr(diag, "message_primary", None) or "")
        return InvalidInputError(f"body: invalid value ({message or state})", field="body")
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise database exceptions that mean something to a client as domain errors."""
    try:
        yield
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        domain = translate(exc)
        if domain is None:
            raise
        raise domain from exc
