"""Planner's view: districts, imported demand layers, coverage runs and their cells.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISTRICT_CODE_RE = "^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"
DEMAND_LAYER_RE = "^[a-z0-9][a-z0-9_-]{0,39}$"


def upgrade() -> None:
    op.create_table(
        "districts",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("parent_code", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry("MULTIPOLYGON", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"code ~ '{DISTRICT_CODE_RE}'", name=op.f("ck_districts_code")),
        sa.CheckConstraint("char_length(name) BETWEEN 1 AND 100", name=op.f("ck_districts_name")),
        sa.CheckConstraint(
            "ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name=op.f("ck_districts_geom_valid")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_districts")),
    )
    op.create_index("idx_districts_geom", "districts", ["geom"], postgresql_using="gist")

    op.create_table(
        "demand_layers",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"name ~ '{DEMAND_LAYER_RE}'", name=op.f("ck_demand_layers_name")),
        sa.CheckConstraint("resolution BETWEEN 6 AND 11", name=op.f("ck_demand_layers_resolution")),
        sa.CheckConstraint(
            "char_length(unit) BETWEEN 1 AND 40", name=op.f("ck_demand_layers_unit")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_demand_layers")),
    )
    op.create_table(
        "demand_weights",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("weight", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.CheckConstraint(
            "weight >= 0 AND weight < 'Infinity'::float8", name=op.f("ck_demand_weights_weight")
        ),
        sa.ForeignKeyConstraint(
            ["layer"],
            ["demand_layers.name"],
            name=op.f("fk_demand_weights_layer_demand_layers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer", "cell", name=op.f("pk_demand_weights")),
    )

    op.create_table(
        "coverage_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("network_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", postgresql.JSONB(), nullable=True),
        sa.Column("seconds", postgresql.DOUBLE_PRECISION(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_coverage_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["network_version"],
            ["network_versions.id"],
            name=op.f("fk_coverage_runs_network_version_network_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage_runs")),
        sa.UniqueConstraint("key", name=op.f("uq_coverage_runs_key")),
    )
    op.create_table(
        "coverage_cells",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry("POLYGON", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column("minutes", sa.REAL(), nullable=True),
        sa.Column("multiplicity", sa.SmallInteger(), nullable=False),
        sa.Column("weight", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["coverage_runs.id"],
            name=op.f("fk_coverage_cells_run_id_coverage_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "cell", name=op.f("pk_coverage_cells")),
    )
    op.create_index("idx_coverage_cells_geom", "coverage_cells", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("coverage_cells")
    op.drop_table("coverage_runs")
    op.drop_table("demand_weights")
    op.drop_table("demand_layers")
    op.drop_index("idx_districts_geom", table_name="districts", postgresql_using="gist")
    op.drop_table("districts")
