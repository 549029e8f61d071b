"""Courier questions: opening-hours intervals, search grams, problem reports, holiday table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_KINDS = (
    "closed_when_should_be_open",
    "amenity_missing_or_broken",
    "wrong_location",
    "other",
)
REPORT_STATUSES = ("open", "resolved", "dismissed")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# Character unigrams and bigrams of a lower-cased text, skipping grams with white space: the
# GIN-indexable form of "contains this substring" that works for Chinese (no word breaks, and
# two-character queries like 江汉 that trigrams cannot serve) as well as for Latin text.
GRAMS_FN = r"""
CREATE FUNCTION yizhan_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT coalesce(array_agg(DISTINCT g ORDER BY g), '{}'::text[])
  FROM (
    SELECT substr(s, i, n) AS g
    FROM (SELECT lower(t) AS s) x,
         LATERAL (VALUES (1), (2)) AS len(n),
         LATERAL generate_series(1, length(s) - n + 1) AS i
  ) y
  WHERE g !~ '\s'
$$
"""

# The grams a query must contain: its bigrams (unigrams only for a one-character query).
QUERY_GRAMS_FN = r"""
CREATE FUNCTION yizhan_query_grams(q text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT coalesce(array_agg(DISTINCT g ORDER BY g), '{}'::text[])
  FROM (
    SELECT substr(s, i, CASE WHEN length(s) = 1 THEN 1 ELSE 2 END) AS g
    FROM (SELECT lower(q) AS s) x,
         LATERAL generate_series(1, greatest(length(s) - 1, 1)) AS i
  ) y
  WHERE g !~ '\s'
$$
"""


def upgrade() -> None:
    op.execute(GRAMS_FN)
    op.execute(QUERY_GRAMS_FN)
    op.add_column(
        "stations",
        sa.Column(
            "search_grams",
            postgresql.ARRAY(sa.Text()),
            sa.Computed(
                "(yizhan_grams(name) || COALESCE(yizhan_grams(address), '{}'::text[]))",
                persisted=True,
            ),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_stations_search_grams", "stations", ["search_grams"], postgresql_using="gin"
    )
    op.add_column(
        "stations", sa.Column("open_intervals", postgresql.TSTZMULTIRANGE(), nullable=True)
    )
    op.create_index("ix_stations_access", "stations", ["access"])
    op.create_table(
        "hours_window",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("covers", postgresql.TSTZRANGE(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False),
        sa.Column(
            "refreshed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_hours_window_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hours_window")),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_days_kind")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("client_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(f"kind IN ({_in(REPORT_KINDS)})", name=op.f("ck_reports_kind")),
        sa.CheckConstraint(f"status IN ({_in(REPORT_STATUSES)})", name=op.f("ck_reports_status")),
        sa.CheckConstraint(
            "comment IS NULL OR char_length(comment) <= 500", name=op.f("ck_reports_comment")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_reports_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index(
        "ix_reports_station_open",
        "reports",
        ["station_id"],
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("reports")
    op.drop_table("calendar_days")
    op.drop_table("hours_window")
    op.drop_index("ix_stations_access", table_name="stations")
    op.drop_column("stations", "open_intervals")
    op.drop_index("ix_stations_search_grams", table_name="stations")
    op.drop_column("stations", "search_grams")
    op.execute("DROP FUNCTION yizhan_query_grams(text)")
    op.execute("DROP FUNCTION yizhan_grams(text)")
