"""Engine creation, units of work, and the per-request connection dependency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


class Database:
    """Units of work on the engine: `read()` (autocommit, no BEGIN/COMMIT round trips) and
    `write()` (one transaction, committed on success, rolled back on error). The app keeps one
    in `app.state.db`; tests swap in one bound to their rolled-back transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn


def get_conn(request: Request) -> Iterator[Connection]:
    """The per-request connection dependency: a read unit for safe methods, else a write unit."""
    db: Database = request.app.state.db
    unit = db.read() if request.method in SAFE_METHODS else db.write()
    with unit as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_conn)]
