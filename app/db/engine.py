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


def get_conn(request: Request) -> Iterator[Connection]:
    """One connection and transaction per request: committed on success, rolled back on error."""
    engine: Engine = request.app.state.engine
    with engine.begin() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
