"""The OpenAPI document tells the truth: response models and per-route `responses=`.

Routes return our own Response classes (orjson bytes, `application/geo+json` where the body is
GeoJSON), so FastAPI cannot infer their bodies; and its default 422 schema
(`HTTPValidationError`, `detail` as an array) is not what `app/errors.py` sends. Here:

- pydantic models of the one error shape and of every response body, precise where that is
  cheap (fields, types, vocabularies) and open (`additionalProperties`) where bodies are;
- `body(...)` and `errors(...)` build a route's `responses=` with the right media type and
  headers: `responses=body(StationCollection, media=GEOJSON) | errors(409, 422, 503)`;
- `install_openapi(app)` puts the models into `components/schemas`, swaps any leftover
  `HTTPValidationError` for `Error` and drops FastAPI's `type: string` guess beside a `$ref`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, models_json_schema

from app.geo.coords import COORD_SYSTEMS
from app.reports.vocab import REPORT_KINDS, REPORT_STATUSES
from app.stations.vocab import ACCESS_CODES, AMENITY_CODES, HOST_TYPE_CODES, STATUS_CODES

JSON = "application/json"
GEOJSON = "application/geo+json"
REF = "#/components/schemas/"


def _enum(values: tuple[str, ...], description: str | None = None) -> Any:
    extra: dict[str, Any] = {"enum": list(values)}
    return Field(json_schema_extra=extra, description=description)


def _drop_null_default(schema: dict[str, Any]) -> None:
    """Optional members that are left out (never `null`) have no `default: null`."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", 0) is None:
            del prop["default"]


class _Closed(BaseModel):
    """A body whose members are all listed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_default)


class _Open(BaseModel):
    """A body that may carry members beyond those listed (foreign members, run details)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_drop_null_default)


# --- the one error shape ---------------------------------------------------------------------


class ErrorItem(_Closed):
    """One invalid input of a validation error."""

    field: str = Field(description="The input, e.g. `lat` or `properties.name`")
    loc: list[str | int] = Field(description="Where it is: body/query/path/header, then keys")
    msg: str = Field(description="What is wrong with it")


class Error(_Open):
    """Every error: `detail` names the field and what is wrong (`"lat: ..."`); domain errors
    add `field`, validation errors add `errors` (one item per invalid input)."""

    detail: str = Field(description="`<field>: <what is wrong>`, for people")
    field: str | SkipJsonSchema[None] = Field(default=None, description="The offending input")
    errors: list[ErrorItem] | SkipJsonSchema[None] = Field(
        default=None, description="Validation errors: one per invalid input"
    )


# --- GeoJSON building blocks -----------------------------------------------------------------

GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)


class Geometry(_Open):
    """A GeoJSON geometry (RFC 7946) in the response's `coord_sys`."""

    type: str = _enum(GEOMETRY_TYPES)
    coordinates: list[Any] | SkipJsonSchema[None] = None


class Point(_Closed):
    """A GeoJSON Point: [longitude, latitude]."""

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=2)


class Feature(_Open):
    """A GeoJSON Feature with open properties."""

    type: Literal["Feature"]
    id: int | str | SkipJsonSchema[None] = None
    geometry: Geometry | None
    properties: dict[str, Any] | None


class FeatureCollection(_Open):
    """A GeoJSON FeatureCollection with foreign members (run metadata, `coord_sys`…)."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


# --- stations --------------------------------------------------------------------------------


class Label(_Closed):
    """A short text in Chinese and English."""

    zh: str
    en: str


class NavigationLinks(_Closed):
    """Links that open the station in Amap, Baidu Maps and OpenStreetMap."""

    amap: str
    baidu: str
    osm: str


class Checkins(_Closed):
    """Couriers' check-ins of the last 30 days."""

    open: int = Field(description="'It was open when I got there'")
    closed: int = Field(description="'It was closed when I got there'")
    last_at: str | None = Field(description="The latest one (ISO 8601)")


class Freshness(_Closed):
    """How fresh a station's information is."""

    confirmed_at: str | None = Field(description="Last confirmed by its people (ISO 8601)")
    confirmed_days_ago: int | None = Field(description="Whole days since then; null: never")
    stale: bool = Field(description="Never confirmed, or not for YIZHAN_STALE_DAYS days")
    checkins: Checkins


class StationInfo(_Open):
    """A station's properties as returned (`app/stations/service.py` `to_feature`)."""

    external_id: str
    name: str
    address: str | None
    district_code: str | None
    host_type: str = _enum(HOST_TYPE_CODES)
    operator: str | None
    access: str = _enum(ACCESS_CODES)
    amenities: list[Annotated[str, _enum(AMENITY_CODES)]]
    opening_hours: str | None = Field(description="OpenStreetMap opening_hours syntax")
    status: str = _enum(STATUS_CODES)
    status_reason: str | None = Field(description="Why the status (at most 200 characters)")
    closed_until: str | None = Field(
        description="temporarily_closed: the instant it reopens by itself (ISO 8601)"
    )
    duplicate_of: int | None = Field(description="duplicate: the id of the station that stays")
    open_now: bool | None = Field(description="null: opening hours unknown")
    next_change: str | None = Field(description="ISO 8601, in the station's time zone")
    next_change_label: Label
    phone: str | None
    capacity: int | None
    notes: str | None = Field(description="The manager's note to couriers")
    open_reports: int
    level: int | None = Field(description="Star level 1-5 (set by inspections)")
    freshness: Freshness
    source_crs: str = _enum(COORD_SYSTEMS)
    created_at: str
    updated_at: str
    version: int = Field(description="Optimistic-locking version; the ETag")
    links: NavigationLinks
    distance_m: float | SkipJsonSchema[None] = Field(
        default=None, description="nearest: geodesic metres"
    )
    minutes: float | SkipJsonSchema[None] = Field(
        default=None, description="nearest with mode: minutes on the network"
    )
    mode: str | SkipJsonSchema[None] = None


class Station(_Open):
    """One station as a GeoJSON Feature."""

    type: Literal["Feature"]
    id: int
    geometry: Point
    properties: StationInfo


class Actor(_Closed):
    """Who made a change: a user, the break-glass ADMIN_TOKEN, the CLI's system, or a
    database role (a write outside the application)."""

    kind: str = _enum(("user", "admin_token", "system", "database"))
    id: int | None = Field(description="The user's id (users only)")
    name: str


class Revision(_Closed):
    """One change to a station (`changes`: each field's [before, after])."""

    id: int
    station_id: int
    version: int
    op: str = _enum(("create", "update", "delete"))
    action: str = Field(
        description="create, edit, status, delete, import, revert, proposal (what was done)"
    )
    actor: Actor
    channel: str = _enum(("api", "page", "import", "cli", "sql"))
    at: str
    changes: dict[str, list[Any]]
    meta: dict[str, Any]


class History(_Closed):
    """A station's revisions, newest first."""

    station_id: int
    revisions: list[Revision]
    numberReturned: int
    numberMatched: int
    next: str | None = Field(description="The next (older) page, or null")


class Proposal(_Closed):
    """A manager's proposed position for a station."""

    id: int
    station_id: int
    station_name: str
    coordinates: list[float] = Field(description="[lon, lat] in the requested coord_sys")
    current: list[float] = Field(description="The station's position now, same system")
    distance_m: float = Field(description="Geodesic metres from the current position")
    note: str | None
    status: str = _enum(("pending", "accepted", "rejected"))
    proposed_by: str
    created_at: str
    decided_by: str | None
    decided_at: str | None
    decision_note: str | None


class ProposalList(_Closed):
    """Location proposals in the caller's scope."""

    proposals: list[Proposal]


class PageLink(_Closed):
    """A `next`/`prev` link of a paged collection."""

    rel: str
    type: str
    href: str


class StationCollection(_Open):
    """Stations as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[Station]
    numberReturned: int
    numberMatched: int | SkipJsonSchema[None] = None
    links: list[PageLink] | SkipJsonSchema[None] = None
    coord_sys: str = _enum(COORD_SYSTEMS)
    evaluated_at: str = Field(description="The instant opening hours were evaluated at")


class RoleLabel(_Closed):
    """A role's labels."""

    zh: str
    en: str


class User(_Closed):
    """An account (never its password)."""

    id: int
    username: str
    display_name: str
    role: str = _enum(("admin", "district_admin", "manager", "planner"))
    role_label: RoleLabel
    districts: list[str] = Field(description="District-code prefixes (district admins, planners)")
    stations: list[int] = Field(description="Stations kept (managers)")
    created_by: str | None
    created_at: str
    updated_at: str


class Me(_Closed):
    """The caller: an account, or ADMIN_TOKEN (`kind` admin_token, no id)."""

    id: int | None
    username: str
    display_name: str
    role: str = _enum(("admin", "district_admin", "manager", "planner"))
    role_label: RoleLabel
    kind: str = _enum(("user", "admin_token", "system"))
    districts: list[str]
    stations: list[int]
    created_by: str | SkipJsonSchema[None] = None
    created_at: str | SkipJsonSchema[None] = None
    updated_at: str | SkipJsonSchema[None] = None


class UserList(_Closed):
    """Accounts in the caller's scope."""

    users: list[User]
    numberReturned: int
    numberMatched: int


class Token(_Closed):
    """An OAuth2 bearer token (opaque; revoke with DELETE /api/v1/auth/token)."""

    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds")


class Invitation(_Closed):
    """A one-time invitation; `code` is shown only here."""

    id: int
    code: str
    accept_url: str
    role: str
    districts: list[str]
    stations: list[int]
    username: str | None
    display_name: str | None
    created_by: str
    expires_at: str


class Accepted(_Closed):
    """The account an invitation created, and its first session."""

    user: User
    token: Token


class Term(_Closed):
    """A vocabulary entry."""

    code: str
    zh: str
    en: str


class AmenityList(_Closed):
    amenities: list[Term]


class Vocabulary(_Closed):
    amenities: list[Term]
    host_types: list[Term]
    access: list[Term]
    statuses: list[Term]
    report_kinds: list[Term]


class Report(_Open):
    """A filed problem report."""

    id: int
    station_id: int
    kind: str = _enum(REPORT_KINDS)
    comment: str | None
    status: str = _enum(REPORT_STATUSES)
    created_at: str
    station_open_reports: int = Field(description="The station's unanswered reports now")
    key: str = Field(
        description="The courier's key to this report's status (shown only here): "
        "GET /api/v1/reports/{id}?key=…"
    )
    status_url: str = Field(description="Where the courier reads the answer (with the key)")


class ReportStatus(_Closed):
    """A report's status and answer, for the courier holding its key."""

    id: int
    station_id: int
    station_name: str
    kind: str = _enum(REPORT_KINDS)
    kind_label: Label
    status: str = _enum(REPORT_STATUSES)
    status_label: Label
    note: str | None = Field(description="The station's answer: what was done, or why not")
    created_at: str
    answered_at: str | None


class ReportItem(_Closed):
    """A report as the station's people see it."""

    id: int
    station_id: int
    station_name: str
    kind: str = _enum(REPORT_KINDS)
    kind_label: Label
    comment: str | None = Field(description="The courier's words (plain text)")
    status: str = _enum(REPORT_STATUSES)
    status_label: Label
    note: str | None
    created_at: str
    answered_at: str | None
    answered_by: str | None
    overdue: bool = Field(
        description="Unanswered (open or acknowledged) for more than `escalate_days`"
    )
    station: Station | SkipJsonSchema[None] = Field(
        default=None, description="PATCH only: the station after the edit made with the answer"
    )


class StationReports(_Closed):
    """A station's reports, newest first."""

    station_id: int
    escalate_days: int
    reports: list[ReportItem]
    numberReturned: int


class ReportQueue(_Closed):
    """The reports about the stations in the caller's scope: overdue first, then newest."""

    escalate_days: int
    reports: list[ReportItem]
    numberReturned: int
    numberMatched: int
    numberOverdue: int = Field(description="How many of the matching reports are overdue")


class ChecklistItem(_Closed):
    """One item of the inspection checklist (default: Zhejiang's "八有")."""

    code: str
    zh: str
    en: str


class ChecklistResult(_Closed):
    """One checklist item as an inspection recorded it (null: not checked)."""

    code: str
    zh: str
    en: str
    ok: bool | None


class Inspection(_Closed):
    """An inspection of a station by its district union."""

    id: int
    station_id: int
    inspected_on: str = Field(description="ISO date")
    inspector: str
    checklist: list[ChecklistResult]
    passed: int = Field(description="Checklist items met")
    findings: str | None
    level: int | None = Field(description="Star level (1-5) set with this inspection")
    created_at: str


class InspectionList(_Closed):
    """A station's inspections, newest first, with the checklist in force and its level."""

    station_id: int
    level: int | None
    checklist: list[ChecklistItem]
    inspections: list[Inspection]
    numberReturned: int


class CheckinResult(_Closed):
    """A stored check-in and the station's check-ins of the last 30 days."""

    station_id: int
    outcome: str = _enum(("open", "closed"))
    checkins: Checkins


class StaleStation(_Closed):
    """One row of the staleness (call) list."""

    id: int
    external_id: str
    name: str
    district_code: str | None
    phone: str | None
    status: str = _enum(STATUS_CODES)
    confirmed_at: str | None
    confirmed_days_ago: int | None
    open_reports: int = Field(description="Unanswered (open or acknowledged)")
    overdue_reports: int = Field(description="Unanswered for YIZHAN_REPORT_ESCALATE_DAYS days")


class StaleList(_Closed):
    """Stations not confirmed for `days` days, never confirmed first."""

    days: int
    report_escalate_days: int
    stations: list[StaleStation]
    numberReturned: int
    numberMatched: int


# --- travel times ----------------------------------------------------------------------------


class RingInfo(_Open):
    minutes: int
    mode: str
    area_km2: float


class Ring(_Open):
    """The area within `minutes`."""

    type: Literal["Feature"]
    geometry: Geometry
    properties: RingInfo


class IsochroneCollection(_Open):
    """Rings, largest first."""

    type: Literal["FeatureCollection"]
    features: list[Ring]
    network_version: int
    coord_sys: str = _enum(COORD_SYSTEMS)


class ServiceAreaCollection(_Open):
    """A station's service-area rings, largest first."""

    type: Literal["FeatureCollection"]
    features: list[Ring]
    station_id: int
    network_version: int
    coord_sys: str = _enum(COORD_SYSTEMS)
    cache: Literal["hit", "miss", "partial"]


# --- districts and demand --------------------------------------------------------------------


class DistrictInfo(_Open):
    code: str
    name: str
    name_en: str | None
    parent_code: str | None
    source: str | None
    area_km2: float
    updated_at: str


class District(_Open):
    """One district outline."""

    type: Literal["Feature"]
    id: str
    geometry: Geometry
    properties: DistrictInfo
    coord_sys: str | SkipJsonSchema[None] = None


class DistrictCollection(_Open):
    type: Literal["FeatureCollection"]
    features: list[District]
    numberReturned: int
    coord_sys: str = _enum(COORD_SYSTEMS)
    simplify_m: float


class DistrictLoad(_Open):
    """What an upload did."""

    mode: Literal["replace", "upsert"]
    districts: int
    replaced: int
    total: int
    stations_in_districts: int
    stations_changed: int
    source: str
    coord_sys: str = _enum(COORD_SYSTEMS)


class DemandLayer(_Open):
    name: str
    description: str | None
    unit: str
    resolution: int
    source: str | None
    created_at: str
    cells: int
    total_weight: float


class DemandLayers(_Closed):
    layers: list[DemandLayer]


class DemandLoad(_Open):
    """What an upload stored."""

    name: str
    unit: str
    resolution: int
    cells: int
    total_weight: float
    rows: int
    coord_sys: str = _enum(COORD_SYSTEMS)


# --- coverage --------------------------------------------------------------------------------


class CoverageRunning(_Open):
    """A run still computing: poll `poll` (also the `Location` header)."""

    status: Literal["running"]
    run: str
    progress: Any = None
    poll: str | SkipJsonSchema[None] = None


class CoverageRunStatus(_Open):
    """done (with the run's metadata), running (with progress) or failed (with the error)."""

    status: Literal["done", "running", "failed"]
    run: str


class CoverageSummary(_Open):
    """Share of area and demand within each band, overall and per district, with the run's
    metadata (`run`, `params`, `network_version`…). A row's `area_km2` is the area of its
    street cells (the analysed cells); its `extent` gives the district's own area
    (`district_area_km2`, geodesic), the share of it inside the road network's outline
    (`network_share`; `network_outline`: the convex hull of the network's nodes) and a
    `status` inside / partial / outside with a `reason` (zh, en)."""

    run: str
    params: dict[str, Any]
    overall: dict[str, Any]
    districts: list[dict[str, Any]]
    network_outline: dict[str, Any]


class CoverageCollection(FeatureCollection):
    """Cells, gaps, over-density or suggested sites, with the run's metadata."""

    run: str
    params: dict[str, Any]


class Scenario(_Open):
    """Coverage before and after adding sites and closing stations."""


class CoverageCompare(_Open):
    """Coverage at two instants (day vs night) per district: shares within the target,
    stations open, demand lost and gained at night (see docs/planner.md)."""

    day: dict[str, Any]
    night: dict[str, Any]
    overall: dict[str, Any]
    districts: list[dict[str, Any]]


# --- tiles and operations --------------------------------------------------------------------


class TileJSON(_Open):
    """TileJSON 3.0.0."""

    tilejson: Literal["3.0.0"]
    name: str
    description: str
    scheme: Literal["xyz"]
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(min_length=4, max_length=4)
    vector_layers: list[dict[str, Any]]


class Health(_Closed):
    status: Literal["ok"]


class Ready(_Open):
    status: Literal["ok"]
    database: Literal["ok"]
    schema_: str | None = Field(alias="schema")


class NotReady(_Open):
    status: Literal["unavailable"]
    detail: str


class ImportRowError(_Open):
    """What is wrong with one cell of an uploaded file (or why the caller may not import it)."""

    row: int = Field(description="The spreadsheet row (header = row 1), or the feature's 1-based "
                     "position in GeoJSON")  # fmt: skip
    column: str = Field(description="The column's key, e.g. opening_hours")
    header: str = Field(description="The column's Chinese header, e.g. 开放时间")
    message: str
    zh: str = Field(description="第 12 行 开放时间: …")
    en: str = Field(description="row 12, opening_hours: …")


class ImportDuplicate(_Open):
    """A new row that looks like a station that exists (or an earlier row of the file)."""

    row: int
    external_id: str
    name: str
    resolution: str | None = Field(description="skip, confirmed, or null: not yet decided")
    matches: list[dict[str, Any]] = Field(
        description="reason nearby (within 50 m, similar name), external_id (the same id "
        "spelled differently) or same_file, with the other station or row"
    )


class ImportChange(_Open):
    """A row that changes a stored station: each field's [stored, new]."""

    row: int
    external_id: str
    id: int
    name: str
    changes: dict[str, list[Any]]


class ImportPreview(_Open):
    """What a spreadsheet import does (dry run) or did (applied)."""

    dry_run: bool
    applied: bool
    format: str = _enum(("xlsx", "csv", "geojson"))
    coord_sys: str = _enum(COORD_SYSTEMS)
    rows: int
    counts: dict[str, int]
    errors: list[ImportRowError]
    refused: list[ImportRowError]
    duplicates: list[ImportDuplicate]
    new: list[dict[str, Any]]
    changed: list[ImportChange]
    skipped: list[str]
    written: int | SkipJsonSchema[None] = Field(default=None, description="Rows written")


class StationExport(_Open):
    """The stations in your scope as a FeatureCollection with the template's properties."""

    type: Literal["FeatureCollection"]
    coord_sys: Literal["wgs84"]
    features: list[Feature]


MODELS: tuple[type[BaseModel], ...] = (
    Error,
    Station,
    StationCollection,
    CheckinResult,
    StaleList,
    AmenityList,
    Vocabulary,
    Report,
    ReportStatus,
    ReportItem,
    StationReports,
    ReportQueue,
    Inspection,
    InspectionList,
    IsochroneCollection,
    ServiceAreaCollection,
    District,
    DistrictCollection,
    DistrictLoad,
    DemandLayer,
    DemandLayers,
    DemandLoad,
    CoverageRunning,
    CoverageRunStatus,
    CoverageSummary,
    CoverageCollection,
    Scenario,
    CoverageCompare,
    TileJSON,
    Health,
    Ready,
    NotReady,
    History,
    ProposalList,
    Proposal,
    User,
    UserList,
    Me,
    Token,
    Invitation,
    Accepted,
    ImportPreview,
    StationExport,
)

# --- responses= helpers ----------------------------------------------------------------------

Responses = dict[int | str, dict[str, Any]]

_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}

ERROR_TEXT: dict[int, str] = {
    400: "The body is not JSON (or not UTF-8) (请求体无法解析)",
    401: "Missing, wrong, expired or revoked bearer token (未登录或登录已失效)",
    403: "Your role or scope does not allow this; `field` names what (无权操作)",
    404: "No such resource (不存在)",
    409: "Conflicts with the current state: a duplicate, no road network loaded, or the "
    "record is being changed right now (冲突)",
    412: "If-Match does not match the current version: re-read and retry (版本已变化)",
    413: "Request body too large (请求体过大)",
    415: "Unsupported Content-Type (不支持的内容类型)",
    422: "Invalid input; `detail` and `field` name it, `errors` lists each (输入无效)",
    428: "If-Match required: send the ETag you read, or * to overwrite (需要 If-Match)",
    429: "Too many requests: wait `Retry-After` seconds (请求过多)",
    503: "Temporarily unavailable: the database is down or busy, or writes are switched "
    "off (暂时无法服务)",
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "Bearer",
            "required": True,
            "schema": _STR,
        }
    },
    409: {"Retry-After": {"description": "Seconds; when retrying may help", "schema": _INT}},
    429: {"Retry-After": {"description": "Seconds to wait", "required": True, "schema": _INT}},
    503: {"Retry-After": {"description": "Seconds; when the outage is temporary", "schema": _INT}},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF + model.__name__}


def errors(*statuses: int) -> Responses:
    """`responses=` entries for error statuses: each the `Error` shape as `application/json`
    (whatever the route's own media type), with `Retry-After`/`WWW-Authenticate` where sent."""
    out: Responses = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": ERROR_TEXT[status],
            "content": {JSON: {"schema": _ref(Error)}},
        }
        if status in _ERROR_HEADERS:
            entry["headers"] = _ERROR_HEADERS[status]
        out[status] = entry
    return out


def body(
    model: type[BaseModel],
    *,
    status: int = 200,
    media: str = JSON,
    description: str = "OK",
    headers: dict[str, str] | None = None,
    required_headers: tuple[str, ...] = (),
) -> Responses:
    """A success response: `model` as `media`; `headers` names → descriptions (string
    values), those in `required_headers` always sent."""
    entry: dict[str, Any] = {
        "description": description,
        "content": {media: {"schema": _ref(model)}},
    }
    if headers:
        entry["headers"] = {
            name: {"description": text, "required": name in required_headers, "schema": _STR}
            for name, text in headers.items()
        }
    return {status: entry}


def empty(status: int, description: str, headers: dict[str, str] | None = None) -> Responses:
    """A response without a body (204, 304)."""
    entry: dict[str, Any] = {"description": description}
    if headers:
        entry["headers"] = {
            name: {"description": text, "schema": _STR} for name, text in headers.items()
        }
    return {status: entry}


#: A coverage run still computing (202 + Location).
PENDING: Responses = body(
    CoverageRunning,
    status=202,
    description="The run is still computing: poll the Location (计算中)",
    headers={"Location": "The run's status URL", "Retry-After": "Seconds before polling"},
    required_headers=("Location",),
)

#: Statuses every route that reads or writes the database can answer beyond its own.
DB = (503,)
#: Statuses of every authenticated write: the token (401), role and scope (403),
#: the body-size limit (413), validation (422) and the database (409 lock/unique, 503).
WRITE = (401, 403, 409, 413, 422, 503)
#: Statuses of a JSON body FastAPI parses: undecodable (400), too large (413), invalid (422).
JSON_BODY = (400, 413, 422)


# --- the document ----------------------------------------------------------------------------


def component_schemas() -> dict[str, Any]:
    """JSON Schemas of every response model, keyed by model name, referencing each other
    under `#/components/schemas/`."""
    _, top = models_json_schema(
        [(m, "serialization") for m in MODELS], ref_template=REF + "{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


def _swap_refs(node: Any, old: str, new: str) -> None:
    if isinstance(node, dict):
        if node.get("$ref") == old:
            node["$ref"] = new
        for value in node.values():
            _swap_refs(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _swap_refs(value, old, new)


def tidy(doc: dict[str, Any]) -> dict[str, Any]:
    """Make FastAPI's generated document say what the app sends (in place)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in component_schemas().items():
        if name in schemas and schemas[name] != schema:
            raise RuntimeError(f"two different schemas are both called {name}")
        schemas[name] = schema
    _swap_refs(doc.get("paths", {}), REF + "HTTPValidationError", REF + Error.__name__)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            operation["responses"] = dict(sorted(responses.items()))
            for response in responses.values():
                for media in response.get("content", {}).values():
                    schema = media.get("schema", {})
                    # our $ref merged onto FastAPI's guess for a non-JSONResponse class
                    if "$ref" in schema and schema.get("type") == "string":
                        del schema["type"]
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve the tidied document at /openapi.json (and to `app.openapi()`)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    tidied: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        doc = generate()  # FastAPI caches it until the routes change
        if not tidied or tidied[0] is not doc:
            tidied[:] = [tidy(doc)]
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
