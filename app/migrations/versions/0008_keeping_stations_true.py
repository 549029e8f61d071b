"""Keeping stations true: freshness (confirmed_at, check-ins), temporary closures and the
lifecycle (planned … duplicate), star levels and inspections, the report loop's answers.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATION_STATUSES = "'open', 'temporarily_closed', 'closed'"
STATION_STATUSES = "'planned', 'open', 'temporarily_closed', 'closed', 'duplicate'"
OLD_REPORT_STATUSES = "'open', 'resolved', 'dismissed'"
REPORT_STATUSES = "'open', 'acknowledged', 'resolved', 'rejected'"

#: The revision snapshot leaves out bookkeeping: confirmations are audit events, not edits.
STATE_FN = r"""
CREATE OR REPLACE FUNCTION yizhan_station_state(s stations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT (to_jsonb(s) - ARRAY['id', 'geom', 'search_grams', 'open_intervals', 'created_at',
                              'updated_at', 'version', 'confirmed_at'])
         || jsonb_build_object('location', jsonb_build_array(ST_X(s.geom), ST_Y(s.geom)))
$$;
"""
OLD_STATE_FN = r"""
CREATE OR REPLACE FUNCTION yizhan_station_state(s stations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT (to_jsonb(s) - ARRAY['id', 'geom', 'search_grams', 'open_intervals', 'created_at',
                              'updated_at', 'version'])
         || jsonb_build_object('location', jsonb_build_array(ST_X(s.geom), ST_Y(s.geom)))
$$;
"""


def _ts(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    op.add_column("stations", _ts("confirmed_at"))
    op.add_column("stations", _ts("closed_until"))
    op.add_column("stations", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column("stations", sa.Column("duplicate_of", sa.BigInteger(), nullable=True))
    op.add_column("stations", sa.Column("level", sa.SmallInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_stations_duplicate_of_stations"), "stations", "stations", ["duplicate_of"], ["id"]
    )
    op.drop_constraint(op.f("ck_stations_status"), "stations", type_="check")
    op.create_check_constraint(
        op.f("ck_stations_status"), "stations", f"status IN ({STATION_STATUSES})"
    )
    op.create_check_constraint(
        op.f("ck_stations_status_reason"),
        "stations",
        "status_reason IS NULL OR char_length(status_reason) <= 200",
    )
    op.create_check_constraint(
        op.f("ck_stations_level"), "stations", "level IS NULL OR level BETWEEN 1 AND 5"
    )
    op.create_check_constraint(
        op.f("ck_stations_closed_until"),
        "stations",
        "closed_until IS NULL OR status = 'temporarily_closed'",
    )
    op.create_check_constraint(
        op.f("ck_stations_duplicate_of"),
        "stations",
        "(status = 'duplicate') = (duplicate_of IS NOT NULL) AND duplicate_of IS DISTINCT FROM id",
    )
    op.execute(STATE_FN)

    op.drop_constraint(op.f("ck_reports_status"), "reports", type_="check")
    op.execute("UPDATE reports SET status = 'rejected' WHERE status = 'dismissed'")
    op.create_check_constraint(
        op.f("ck_reports_status"), "reports", f"status IN ({REPORT_STATUSES})"
    )
    op.add_column("reports", sa.Column("key_hash", sa.Text(), nullable=True))
    op.add_column("reports", sa.Column("note", sa.Text(), nullable=True))
    op.add_column("reports", sa.Column("answered_by", sa.Text(), nullable=True))
    op.add_column("reports", sa.Column("answered_by_id", sa.BigInteger(), nullable=True))
    op.add_column("reports", _ts("answered_at"))
    op.create_check_constraint(
        op.f("ck_reports_note"), "reports", "note IS NULL OR char_length(note) <= 500"
    )
    op.create_index(
        "ix_reports_unanswered",
        "reports",
        ["created_at"],
        postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
    )
    # A station's `open_reports` now counts open and acknowledged reports (the old partial
    # index's `status = 'open'` no longer matches it), and its reports are listed newest first.
    op.drop_index("ix_reports_station_open", table_name="reports")
    op.create_index(
        "ix_reports_station_open",
        "reports",
        ["station_id"],
        postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
    )
    op.create_index("ix_reports_station_time", "reports", ["station_id", "created_at"])

    op.create_table(
        "checkins",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("client_key", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("outcome IN ('open', 'closed')", name=op.f("ck_checkins_outcome")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_checkins_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index("ix_checkins_station_time", "checkins", ["station_id", "created_at"])
    op.create_table(
        "inspections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("inspector", sa.Text(), nullable=False),
        sa.Column("inspector_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "checklist",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "findings IS NULL OR char_length(findings) <= 2000",
            name=op.f("ck_inspections_findings"),
        ),
        sa.CheckConstraint(
            "level IS NULL OR level BETWEEN 1 AND 5", name=op.f("ck_inspections_level")
        ),
        sa.CheckConstraint(
            "char_length(inspector) BETWEEN 1 AND 100", name=op.f("ck_inspections_inspector")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_inspections_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
    )
    op.create_index(op.f("ix_inspections_station_id"), "inspections", ["station_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inspections_station_id"), table_name="inspections")
    op.drop_table("inspections")
    op.drop_index("ix_checkins_station_time", table_name="checkins")
    op.drop_table("checkins")
    op.drop_index("ix_reports_station_time", table_name="reports")
    op.drop_index("ix_reports_station_open", table_name="reports")
    op.create_index(
        "ix_reports_station_open",
        "reports",
        ["station_id"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.drop_index("ix_reports_unanswered", table_name="reports")
    op.drop_constraint(op.f("ck_reports_note"), "reports", type_="check")
    for col in ("answered_at", "answered_by_id", "answered_by", "note", "key_hash"):
        op.drop_column("reports", col)
    op.drop_constraint(op.f("ck_reports_status"), "reports", type_="check")
    op.execute("UPDATE reports SET status = 'dismissed' WHERE status = 'rejected'")
    op.execute("UPDATE reports SET status = 'open' WHERE status = 'acknowledged'")
    op.create_check_constraint(
        op.f("ck_reports_status"), "reports", f"status IN ({OLD_REPORT_STATUSES})"
    )
    op.execute(OLD_STATE_FN)
    for name in ("duplicate_of", "closed_until", "level", "status_reason"):
        op.drop_constraint(op.f(f"ck_stations_{name}"), "stations", type_="check")
    op.drop_constraint(op.f("ck_stations_status"), "stations", type_="check")
    op.execute("UPDATE stations SET status = 'closed' WHERE status IN ('planned', 'duplicate')")
    op.create_check_constraint(
        op.f("ck_stations_status"), "stations", f"status IN ({OLD_STATION_STATUSES})"
    )
    op.drop_constraint(op.f("fk_stations_duplicate_of_stations"), "stations", type_="foreignkey")
    for col in ("level", "duplicate_of", "status_reason", "closed_until", "confirmed_at"):
        op.drop_column("stations", col)
