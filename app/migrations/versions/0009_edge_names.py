"""Street names on network edges (OSM `name:zh`/`name`, an edge table's `name` column), used
to name suggested sites ("中北路 · 武昌区"). Nullable: the demo network carries none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("network_edges", sa.Column("name", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("network_edges", "name")
