"""Initial schema: PostGIS, stations with geodesic KNN and per-amenity partial indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Vocabularies are written out here (not imported) so this migration never changes after the fact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMENITIES = (
    "drinking_water",
    "hot_water",
    "microwave",
    "fridge",
    "phone_charging",
    "ebike_charging",
    "toilet",
    "air_conditioning",
    "heating",
    "seating",
    "first_aid",
    "wifi",
    "rain_shelter",
    "lockers",
    "accessible_entrance",
)
HOST_TYPES = (
    "union_office",
    "community",
    "bank",
    "fuel_station",
    "telecom_shop",
    "sanitation_depot",
    "mall",
    "enterprise",
    "other",
)
ACCESS = (
    "outdoor_workers",
    "drivers_only",
    "public",
)
STATUSES = (
    "open",
    "temporarily_closed",
    "closed",
)
COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "stations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("host_type", sa.Text(), server_default="other", nullable=False),
        sa.Column("operator", sa.Text(), nullable=True),
        sa.Column("access", sa.Text(), server_default="outdoor_workers", nullable=False),
        sa.Column(
            "geom",
            Geometry("POINT", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column(
            "amenities",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("opening_hours", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("source_crs", sa.Text(), server_default="wgs84", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(f"host_type IN ({_in(HOST_TYPES)})", name=op.f("ck_stations_host_type")),
        sa.CheckConstraint(f"access IN ({_in(ACCESS)})", name=op.f("ck_stations_access")),
        sa.CheckConstraint(f"status IN ({_in(STATUSES)})", name=op.f("ck_stations_status")),
        sa.CheckConstraint(
            f"source_crs IN ({_in(COORD_SYSTEMS)})", name=op.f("ck_stations_source_crs")
        ),
        sa.CheckConstraint(
            f"amenities <@ ARRAY[{_in(AMENITIES)}]::text[]", name=op.f("ck_stations_amenities")
        ),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name=op.f("ck_stations_capacity")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_stations_version")),
        sa.CheckConstraint(
            "district_code IS NULL OR district_code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'",
            name=op.f("ck_stations_district_code"),
        ),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 200", name=op.f("ck_stations_name")),
        sa.PrimaryKeyConstraint("id", name="pk_stations"),
        sa.UniqueConstraint("external_id", name="uq_stations_external_id"),
    )
    op.create_index("ix_stations_district_code", "stations", ["district_code"])
    op.create_index("idx_stations_geom", "stations", ["geom"], postgresql_using="gist")
    op.create_index("ix_stations_amenities", "stations", ["amenities"], postgresql_using="gin")
    op.execute("CREATE INDEX ix_stations_geog ON stations USING gist ((geom::geography))")
    for code in AMENITIES:
        op.execute(
            f"CREATE INDEX ix_stations_geog_{code} ON stations USING gist ((geom::geography)) "
            f"WHERE amenities @> ARRAY['{code}']::text[]"
        )


def downgrade() -> None:
    op.drop_table("stations")
