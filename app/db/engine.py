"""Engine creation and the per-request connection dependency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection

from app.config import Settings


def make_engine(settings: Settings) -> Engine:
    """Create the process engine (called from the app lifespan and the CLI, never at import)."""
    return create_engine(
        settings.database_url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=True,
        connect_args={
            # Partial per-amenity indexes only match plans made with the real parameter
            # values; a generic plan would silently fall back to the unfiltered index.
            "options": "-c plan_cache_mode=force_custom_plan -c timezone=UTC",
            "application_name": "yizhan",
        },
    )


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_conn(request: Request) -> Iterator[Connection]:
    """A connection per request. Writes get one transaction, committed on success and rolled
    back on error; reads run in autocommit (no BEGIN/COMMIT round trips on the hot path)."""
    engine: Engine = request.app.state.engine
    if request.method in SAFE_METHODS:
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    with engine.begin() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
