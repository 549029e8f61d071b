"""Cache of station service areas (isochrone polygons towards a station).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_areas",
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("minutes", sa.SmallInteger(), nullable=False),
        sa.Column("network_version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("geojson", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("minutes BETWEEN 1 AND 60", name=op.f("ck_service_areas_minutes")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_service_areas_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["network_version"],
            ["network_versions.id"],
            name=op.f("fk_service_areas_network_version_network_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "station_id",
            "mode",
            "minutes",
            "network_version",
            "position",
            "settings",
            name=op.f("pk_service_areas"),
        ),
    )


def downgrade() -> None:
    op.drop_table("service_areas")
