"""Migrations and models agree; migrations go down and up; the KNN indexes are really used."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.db import migrate, models
from app.db.base import Base
from app.stations import queries
from app.stations.vocab import AMENITY_CODES
from tests.conftest import fresh_database


def _include(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name in {"spatial_ref_sys"})


def test_models_and_migrations_do_not_drift(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _include}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_drift_test_would_notice_a_missing_column(engine):
    """Guard against a drift test that cannot fail: drop a column inside a rolled-back txn."""
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(text("ALTER TABLE stations DROP COLUMN phone"))
        ctx = MigrationContext.configure(conn, opts={"include_object": _include})
        diff = compare_metadata(ctx, Base.metadata)
        trans.rollback()
    assert any(d[0] == "add_column" and d[3].name == "phone" for d in diff)


def test_downgrade_to_base_and_up_again():
    url = fresh_database("migrations")
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    eng = create_engine(url)
    try:
        assert "stations" not in inspect(eng).get_table_names()
        migrate.upgrade(url)
        assert "stations" in inspect(eng).get_table_names()
    finally:
        eng.dispose()


def test_every_amenity_has_its_partial_knn_index(conn):
    names = set(
        conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'stations'"))
        .scalars()
        .all()
    )
    assert {"ix_stations_geog", "idx_stations_geom", "ix_stations_amenities"} <= names
    assert {models.amenity_index_name(c) for c in AMENITY_CODES} <= names


def _plan(conn, f: queries.NearestFilter) -> str:
    stmt = queries.nearest_statement(f, explain=True)
    return "\n".join(conn.execute(stmt, queries.nearest_params(f)).scalars())


def test_knn_plans_use_the_geography_and_partial_indexes(conn):
    # Enough rows that the planner prefers the indexes to a sequential scan.
    conn.execute(
        text(
            "INSERT INTO stations (external_id, name, amenities, geom) "
            "SELECT 'P-' || g, 'p', CASE WHEN g % 200 = 0 THEN ARRAY['lockers'] "
            "ELSE ARRAY['toilet'] END, "
            "ST_SetSRID(ST_MakePoint(110 + random() * 10, 25 + random() * 10), 4326) "
            "FROM generate_series(1, 20000) g"
        )
    )
    conn.execute(text("ANALYZE stations"))
    plain = _plan(conn, queries.NearestFilter(lon=114.3, lat=30.5, k=5))
    assert_knn_walk(plain, "ix_stations_geog")
    lockers = queries.NearestFilter(lon=114.3, lat=30.5, k=5, amenities=("lockers",))
    # Repeated execution turns on server-side prepared statements in psycopg; the engine's
    # plan_cache_mode=force_custom_plan keeps the partial index usable after that too.
    for _ in range(12):
        queries.nearest(conn, lockers)
    assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    assert_knn_walk(_plan(conn, lockers), "ix_stations_geog_lockers")


def assert_knn_walk(plan: str, index: str) -> None:
    """Stage 1 must be an index scan ordered by distance (KNN), never a scan of the table."""
    assert "Seq Scan on stations" not in plan, plan
    lines = plan.splitlines()
    knn = [
        i
        for i, line in enumerate(lines)
        if f"Index Scan using {index} on stations" in line
        and any("Order By:" in nxt for nxt in lines[i + 1 : i + 4])
    ]
    assert knn, plan
