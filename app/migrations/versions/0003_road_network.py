"""Road network: versions (exactly one live), nodes and edges from an OSM extract.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Versions live side by side in network_nodes / network_edges (keyed by version_id); an import
writes a new version and flips `is_live` in the same transaction (app/network/importer.py).
No foreign keys on the big tables: they would cost a trigger call per COPY row, and the
importer checks the references itself before the switch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "network_versions",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_format", sa.Text(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("total_length_m", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.Column("oneway_edges", sa.Integer(), nullable=False),
        sa.Column("components", sa.Integer(), nullable=False),
        sa.Column("largest_component_share", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.Column(
            "extent",
            Geometry("POLYGON", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_live", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "source_format IN ('osm_pbf', 'geoparquet', 'geojson')",
            name=op.f("ck_network_versions_source_format"),
        ),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_network_versions_sha256")),
        sa.CheckConstraint(
            "node_count > 0 AND edge_count > 0 AND oneway_edges >= 0 AND components > 0",
            name=op.f("ck_network_versions_counts"),
        ),
        sa.CheckConstraint(
            "largest_component_share > 0 AND largest_component_share <= 1",
            name=op.f("ck_network_versions_share"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_versions")),
    )
    op.create_index(
        "ux_network_versions_live",
        "network_versions",
        ["is_live"],
        unique=True,
        postgresql_where=sa.text("is_live"),
    )
    op.create_table(
        "network_nodes",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry("POINT", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("version_id", "id", name=op.f("pk_network_nodes")),
    )
    op.create_table(
        "network_edges",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("length_m", postgresql.DOUBLE_PRECISION(), nullable=False),
        sa.Column("highway", sa.Text(), nullable=False),
        sa.Column("oneway", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("osm_way_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            Geometry("LINESTRING", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.CheckConstraint("oneway IN (-1, 0, 1)", name=op.f("ck_network_edges_oneway")),
        sa.CheckConstraint("length_m >= 0", name=op.f("ck_network_edges_length_m")),
        sa.PrimaryKeyConstraint("version_id", "id", name=op.f("pk_network_edges")),
    )
    op.create_index("idx_network_edges_geom", "network_edges", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("network_edges")
    op.drop_table("network_nodes")
    op.drop_index("ux_network_versions_live", table_name="network_versions")
    op.drop_table("network_versions")
