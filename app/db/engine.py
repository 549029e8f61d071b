"""Engine creation, units of work, and the per-request connection dependency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection

from app.config import Settings, require_database_url
from app.db.errors import translated


def make_engine(settings: Settings, *, serving: bool = False) -> Engine:
    """Create the process engine (called from the app lifespan and the CLI, never at import).

    A serving engine (the API) also bounds how long a request waits: for a free pooled
    connection (`YIZHAN_POOL_TIMEOUT_S`, then 503) and for a row lock (`YIZHAN_LOCK_TIMEOUT_MS`,
    then 409); a transaction left idle is ended by the server after a minute. The CLI's
    imports may wait for locks as long as they need. See docs/reliability.md for the sizing."""
    options = [
        # Partial per-amenity indexes only match plans made with the real parameter
        # values; a generic plan would silently fall back to the unfiltered index.
        "-c plan_cache_mode=force_custom_plan",
        "-c timezone=UTC",
    ]
    if serving:
        options += [
            f"-c lock_timeout={settings.lock_timeout_ms}",
            "-c idle_in_transaction_session_timeout=60000",
        ]
    return create_engine(
        require_database_url(settings.database_url),
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_pre_ping=True,
        connect_args={
            "options": " ".join(options),
            "application_name": "yizhan",
            # A dead server or network must fail a new connection fast, not hang a request.
            "connect_timeout": 5,
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
        with translated(), self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction; its COMMIT happens when the block ends, and a COMMIT that fails
        raises (translated) — so a caller that answers after the block never acknowledges a
        write that is not durable."""
        with translated(), self.engine.begin() as conn:
            yield conn
