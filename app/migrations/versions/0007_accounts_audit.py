"""Accounts, scoped roles and audit history: users, sessions, invitations, station revisions
(written by a trigger in the change's own transaction), audit events, location proposals.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "'admin', 'district_admin', 'manager', 'planner'"
USERNAME_RE = "^[a-z0-9][a-z0-9._-]{2,39}$"
SCOPES_RE = (
    "^([0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?"
    "(,[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?)*)?$"
)
ACTOR_KINDS = "'user', 'admin_token', 'system', 'database'"
CHANNELS = "'api', 'page', 'import', 'cli', 'sql'"

#: The station fields a revision records (everything a person sets; not the derived columns
#: search_grams / open_intervals nor the bookkeeping id / created_at / updated_at / version),
#: with the position as `location` [lon, lat].
AUDIT_FN = r"""
CREATE FUNCTION yizhan_station_state(s stations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT (to_jsonb(s) - ARRAY['id', 'geom', 'search_grams', 'open_intervals', 'created_at',
                              'updated_at', 'version'])
         || jsonb_build_object('location', jsonb_build_array(ST_X(s.geom), ST_Y(s.geom)))
$$;

-- Who is acting comes from the transaction-local setting yizhan.actor (JSON: kind, id, name,
-- channel, and optionally action and meta), set by app/audit before any station write. A write
-- without it (psql, a bulk SQL fix) is still recorded, as the database role on channel 'sql'.
CREATE FUNCTION yizhan_audit_station() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ctx jsonb := NULLIF(current_setting('yizhan.actor', true), '')::jsonb;
  old_state jsonb;
  new_state jsonb;
  diff jsonb;
  act text;
  op_name text;
BEGIN
  IF TG_OP <> 'INSERT' THEN old_state := yizhan_station_state(OLD); END IF;
  IF TG_OP <> 'DELETE' THEN new_state := yizhan_station_state(NEW); END IF;
  IF TG_OP = 'UPDATE' AND old_state = new_state AND OLD.version = NEW.version THEN
    RETURN NULL;  -- derived columns only (hours refresh): not a change anyone made
  END IF;
  SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(old_state -> k, new_state -> k)), '{}')
    INTO diff
    FROM jsonb_object_keys(coalesce(new_state, old_state)) AS k
   WHERE coalesce(old_state -> k, 'null') IS DISTINCT FROM coalesce(new_state -> k, 'null');
  op_name := CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'DELETE' THEN 'delete' ELSE 'update' END;
  act := coalesce(ctx ->> 'action',
                  CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'DELETE' THEN 'delete'
                             ELSE 'edit' END);
  IF act = 'edit' AND diff ? 'status' THEN act := 'status'; END IF;
  INSERT INTO station_revisions (station_id, version, op, action, actor_kind, actor_id,
                                 actor_name, channel, district_code, changes, snapshot, meta)
  VALUES (
    CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
    CASE WHEN TG_OP = 'DELETE' THEN OLD.version ELSE NEW.version END,
    op_name, act,
    coalesce(ctx ->> 'kind', 'database'),
    (ctx ->> 'id')::bigint,
    coalesce(ctx ->> 'name', session_user::text),
    coalesce(ctx ->> 'channel', 'sql'),
    coalesce(new_state, old_state) ->> 'district_code',
    diff,
    coalesce(new_state, old_state),
    coalesce(ctx -> 'meta', '{}'::jsonb));
  RETURN NULL;
END
$$;

CREATE TRIGGER stations_audit AFTER INSERT OR UPDATE OR DELETE ON stations
  FOR EACH ROW EXECUTE FUNCTION yizhan_audit_station();

CREATE FUNCTION yizhan_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER station_revisions_append_only BEFORE UPDATE OR DELETE ON station_revisions
  FOR EACH ROW EXECUTE FUNCTION yizhan_append_only();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION yizhan_append_only();
"""


def _now() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.add_column("stations", sa.Column("notes", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_stations_notes"), "stations", "notes IS NULL OR char_length(notes) <= 1000"
    )

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "districts",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        _now(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"username ~ '{USERNAME_RE}'", name=op.f("ck_users_username")),
        sa.CheckConstraint(
            "char_length(display_name) BETWEEN 1 AND 100", name=op.f("ck_users_display_name")
        ),
        sa.CheckConstraint(f"role IN ({ROLES})", name=op.f("ck_users_role")),
        sa.CheckConstraint(
            f"array_to_string(districts, ',') ~ '{SCOPES_RE}' AND cardinality(districts) <= 50",
            name=op.f("ck_users_districts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "user_stations",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_stations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_user_stations_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "station_id", name=op.f("pk_user_stations")),
    )
    op.create_index(
        op.f("ix_user_stations_station_id"), "user_stations", ["station_id"], unique=False
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), server_default="bearer", nullable=False),
        _now(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('bearer', 'cookie')", name=op.f("ck_auth_sessions_kind")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_auth_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_sessions_token_hash")),
    )
    op.create_index(op.f("ix_auth_sessions_user_id"), "auth_sessions", ["user_id"], unique=False)
    op.create_table(
        "invitations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "districts",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "station_ids",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'::bigint[]"),
            nullable=False,
        ),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        _now(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"role IN ({ROLES})", name=op.f("ck_invitations_role")),
        sa.CheckConstraint(
            f"username IS NULL OR username ~ '{USERNAME_RE}'", name=op.f("ck_invitations_username")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_invitations_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_invitations_code_hash")),
    )
    op.create_table(
        "station_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "meta",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "op IN ('create', 'update', 'delete')", name=op.f("ck_station_revisions_op")
        ),
        sa.CheckConstraint(
            f"actor_kind IN ({ACTOR_KINDS})", name=op.f("ck_station_revisions_actor_kind")
        ),
        sa.CheckConstraint(f"channel IN ({CHANNELS})", name=op.f("ck_station_revisions_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_revisions")),
    )
    op.create_index(
        "ix_station_revisions_station", "station_revisions", ["station_id", "id"], unique=False
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_kind", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            f"actor_kind IN ({ACTOR_KINDS})", name=op.f("ck_audit_events_actor_kind")
        ),
        sa.CheckConstraint(f"channel IN ({CHANNELS})", name=op.f("ck_audit_events_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_table(
        "location_proposals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("station_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry("POINT", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("proposed_by_id", sa.BigInteger(), nullable=True),
        sa.Column("proposed_by", sa.Text(), nullable=False),
        _now(),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'rejected')",
            name=op.f("ck_location_proposals_status"),
        ),
        sa.CheckConstraint(
            "note IS NULL OR char_length(note) <= 500", name=op.f("ck_location_proposals_note")
        ),
        sa.CheckConstraint(
            "decision_note IS NULL OR char_length(decision_note) <= 500",
            name=op.f("ck_location_proposals_decision_note"),
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_location_proposals_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location_proposals")),
    )
    op.create_index(
        op.f("ix_location_proposals_station_id"),
        "location_proposals",
        ["station_id"],
        unique=False,
    )
    op.execute(AUDIT_FN)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    op.execute("DROP TRIGGER station_revisions_append_only ON station_revisions")
    op.execute("DROP FUNCTION yizhan_append_only()")
    op.execute("DROP TRIGGER stations_audit ON stations")
    op.execute("DROP FUNCTION yizhan_audit_station()")
    op.execute("DROP FUNCTION yizhan_station_state(stations)")
    op.drop_table("location_proposals")
    op.drop_table("audit_events")
    op.drop_index("ix_station_revisions_station", table_name="station_revisions")
    op.drop_table("station_revisions")
    op.drop_table("invitations")
    op.drop_table("auth_sessions")
    op.drop_table("user_stations")
    op.drop_table("users")
    op.drop_constraint(op.f("ck_stations_notes"), "stations", type_="check")
    op.drop_column("stations", "notes")
