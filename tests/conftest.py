"""Test fixtures: a fresh, migrated PostGIS database per run; every test rolled back.

DATABASE_URL (exported by scripts/test.sh) names the server; tests create their own databases
`<name>_test` (and `<name>_e2e` for the real-server tests) so the demo data is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import Connection, make_url

from app.audit.queries import clear_actor
from app.config import Settings, normalise_database_url
from app.db import migrate
from app.db.engine import make_engine
from app.db.errors import translated
from app.main import create_app

ADMIN_TOKEN = "test-admin-token"
# No coverage warm-up (app/coverage/warmup.py) in the apps and servers tests start: it would
# queue a run beside theirs. tests/test_coverage_warm.py turns it on where it is the subject.
os.environ.setdefault("YIZHAN_COVERAGE_WARM_UP", "false")
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.exit("DATABASE_URL is not set: run the suite with scripts/test.sh", returncode=2)
    return normalise_database_url(url)


def fresh_database(suffix: str) -> str:
    """Drop and create `<db>_<suffix>` on the DATABASE_URL server; return its SQLAlchemy URL."""
    base = make_url(_server_url())
    # YIZHAN_TEST_TAG keeps two suites run at once (e.g. by two developers on one server)
    # from dropping each other's databases.
    name = f"{base.database}_{os.environ.get('YIZHAN_TEST_TAG', '')}{suffix}"
    admin = base.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = fresh_database("test")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        hours_auto_refresh=False,
        report_rate_limit="5/minute",
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as c:
        trans = c.begin()
        try:
            yield c
        finally:
            trans.rollback()


class TransactionDatabase:
    """Units of work inside the test's transaction: each is a savepoint on its connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def _unit(self) -> Iterator[Connection]:
        sp = self.conn.begin_nested()
        try:
            with translated():
                yield self.conn
        except Exception:
            sp.rollback()
            raise
        else:
            sp.commit()
        finally:
            # In production each unit is its own transaction, so the actor it named (a
            # transaction-local setting) ends with it; here the test's transaction goes on.
            clear_actor(self.conn)

    read = _unit
    write = _unit


@pytest.fixture
def client(settings: Settings, conn: Connection) -> Iterator[TestClient]:
    """The app, its requests running inside the test's transaction (savepoint per request)."""
    app = create_app(settings)
    with TestClient(app) as tc:
        app.state.db = TransactionDatabase(conn)
        yield tc


@pytest.fixture
def ctx(settings: Settings, conn: Connection):
    """A presentation/write context in WGS-84 at the current instant."""
    from app.stations.service import FeatureContext

    return FeatureContext.build(settings, conn, None, "wgs84")
