"""Pydantic shapes of station input: GeoJSON Features (RFC 7946), strict about properties."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.stations.vocab import (
    ACCESS_CODES,
    AMENITY_CODES,
    HOST_TYPE_CODES,
    STATUS_CODES,
    unknown_codes,
)

DISTRICT_RE = r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"
EXTERNAL_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$"
PHONE_RE = r"^[0-9+()\- ]{3,40}$"

NUL_MESSAGE = "must not contain NUL characters (不能包含 NUL 字符)"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


def _json_number(value: object) -> object:
    # pydantic's lax mode reads true as 1 and "114.3" as 114.3; a JSON body says what it means
    if isinstance(value, bool | str | bytes):
        shown = "a boolean" if isinstance(value, bool) else "a string"
        raise ValueError(f"must be a JSON number, got {shown} (须为数字)")
    return value


#: Text read from JSON: PostgreSQL text cannot hold NUL, so it is refused here, naming the
#: field, for every text field of every body (`Annotated[str, NoNulText, ...]`).
NoNulText = AfterValidator(_no_nul)
#: Numbers read from JSON: JSON numbers only (an integer is fine for a float), never booleans
#: or numbers written as strings (`Annotated[float, JsonNumber, ...]`).
JsonNumber = BeforeValidator(_json_number)

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNulText
]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNulText
]
HoursText = Annotated[str, Field(max_length=500), NoNulText]
NotesText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), NoNulText
]
Capacity = Annotated[int, JsonNumber, Field(ge=0, le=100_000)]
#: The end of a temporary closure: an ISO 8601 instant with its UTC offset.
ClosedUntil = Annotated[
    AwareDatetime,
    Field(description="ISO 8601 instant with offset; only with status temporarily_closed"),
]
StationIdRef = Annotated[
    int,
    JsonNumber,
    Field(ge=1, le=2**62, description="The station that stays; only with status duplicate"),
]
Level = Annotated[int, JsonNumber, Field(ge=1, le=5, description="Star level 1-5")]


def check_lon_lat(lon: float, lat: float) -> None:
    """Raise ValueError naming the coordinate that is not a finite WGS-84 value."""
    if not math.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude must be a finite number in [-180, 180], got {lon}")
    if not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude must be a finite number in [-90, 90], got {lat}")


def _check_vocab(value: str, vocabulary: tuple[str, ...], what: str) -> str:
    if value not in vocabulary:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(vocabulary)}")
    return value


def normalise_amenities(values: list[str]) -> list[str]:
    """Validate against the vocabulary, drop duplicates, order as the vocabulary does."""
    bad = unknown_codes(values, AMENITY_CODES)
    if bad:
        raise ValueError(
            f"unknown amenity {', '.join(repr(b) for b in bad)}; valid: {', '.join(AMENITY_CODES)}"
        )
    present = set(values)
    return [code for code in AMENITY_CODES if code in present]


class PointGeometry(BaseModel):
    """A GeoJSON Point in WGS-84 longitude, latitude order (altitude accepted and ignored)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[Annotated[float, JsonNumber]] = Field(min_length=2, max_length=3)

    @field_validator("coordinates")
    @classmethod
    def _range(cls, v: list[float]) -> list[float]:
        check_lon_lat(v[0], v[1])
        return v

    @property
    def lon(self) -> float:
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        return self.coordinates[1]


class _PropertyChecks(BaseModel):
    """Validators shared by create and patch properties."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("host_type", check_fields=False)
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else _check_vocab(v, HOST_TYPE_CODES, "host_type")

    @field_validator("access", check_fields=False)
    @classmethod
    def _access(cls, v: str | None) -> str | None:
        return None if v is None else _check_vocab(v, ACCESS_CODES, "access")

    @field_validator("status", check_fields=False)
    @classmethod
    def _status(cls, v: str | None) -> str | None:
        return None if v is None else _check_vocab(v, STATUS_CODES, "status")

    @field_validator("amenities", check_fields=False)
    @classmethod
    def _amenities(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else normalise_amenities(v)

    @field_validator("opening_hours", check_fields=False)
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v:
            raise ValueError("opening_hours must not be empty (omit it or send null)")
        return v


class StationProperties(_PropertyChecks):
    """Properties of a new station. Unknown keys are rejected, so typos are not lost silently."""

    external_id: Annotated[str, Field(pattern=EXTERNAL_ID_RE)]
    name: ShortText
    address: LongText | None = None
    district_code: Annotated[str, Field(pattern=DISTRICT_RE)] | None = None
    host_type: str = "other"
    operator: ShortText | None = None
    access: str = "outdoor_workers"
    amenities: list[str] = Field(default_factory=list, max_length=64)
    opening_hours: HoursText | None = None
    status: str = "open"
    phone: Annotated[str, Field(pattern=PHONE_RE)] | None = None
    capacity: Capacity | None = None
    notes: NotesText | None = None
    closed_until: ClosedUntil | None = None
    status_reason: ShortText | None = None
    duplicate_of: StationIdRef | None = None


PATCH_REQUIRED: frozenset[str] = frozenset(
    {"external_id", "name", "host_type", "access", "amenities", "status"}
)


class StationPatchProperties(_PropertyChecks):
    """Properties of a partial update: only the keys sent are changed; null clears a field."""

    external_id: Annotated[str, Field(pattern=EXTERNAL_ID_RE)] | None = None
    name: ShortText | None = None
    address: LongText | None = None
    district_code: Annotated[str, Field(pattern=DISTRICT_RE)] | None = None
    host_type: str | None = None
    operator: ShortText | None = None
    access: str | None = None
    amenities: list[str] | None = Field(default=None, max_length=64)
    opening_hours: HoursText | None = None
    status: str | None = None
    phone: Annotated[str, Field(pattern=PHONE_RE)] | None = None
    capacity: Capacity | None = None
    notes: NotesText | None = None
    closed_until: ClosedUntil | None = None
    status_reason: ShortText | None = None
    duplicate_of: StationIdRef | None = None
    level: Level | None = None

    #: Fields that may not be cleared with null. A ClassVar: an annotated class attribute
    #: would be a field a client could send (`"REQUIRED": []`), switching this guard off.
    REQUIRED: ClassVar[frozenset[str]] = PATCH_REQUIRED

    @field_validator(*sorted(PATCH_REQUIRED))
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("cannot be null; omit it to keep the current value (不能为空)")
        return v

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their new values; null for a required field fails."""
        out: dict[str, Any] = {}
        for key in self.model_fields_set:
            value = getattr(self, key)
            if value is None and key in self.REQUIRED:
                raise ValueError(key)
            out[key] = value
        return out


class StationFeatureIn(BaseModel):
    """A GeoJSON Feature creating one station. Foreign members (e.g. `id`) are ignored."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["Feature"]
    geometry: PointGeometry
    properties: StationProperties


class StationFeaturePatch(BaseModel):
    """A partial GeoJSON Feature: geometry and/or a subset of properties."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["Feature"]
    geometry: PointGeometry | None = None
    properties: StationPatchProperties = Field(default_factory=StationPatchProperties)


class AmenityChange(BaseModel):
    """Amenities to add and to remove, applied atomically on the server (no read-modify-write
    on the phone, so two managers ticking different boxes never undo each other)."""

    model_config = ConfigDict(extra="forbid")

    add: list[Annotated[str, Field(json_schema_extra={"enum": list(AMENITY_CODES)})]] = Field(
        default_factory=list, max_length=64
    )
    remove: list[Annotated[str, Field(json_schema_extra={"enum": list(AMENITY_CODES)})]] = Field(
        default_factory=list, max_length=64
    )

    @field_validator("add", "remove")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        return normalise_amenities(v)

    @model_validator(mode="after")
    def _disjoint(self) -> AmenityChange:
        both = set(self.add) & set(self.remove)
        if both:
            raise ValueError(f"add and remove both name {', '.join(sorted(both))}")
        if not self.add and not self.remove:
            raise ValueError("name at least one amenity to add or remove")
        return self


class StationCollectionIn(BaseModel):
    """A GeoJSON FeatureCollection of new stations, for all-or-nothing imports."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["FeatureCollection"]
    features: list[StationFeatureIn]


def parse_csv_codes(raw: str | None, vocabulary: tuple[str, ...], field: str) -> list[str]:
    """Split a comma list of codes from a query string, checking each against the vocabulary."""
    if raw is None:
        return []
    items = [p.strip() for p in raw.split(",") if p.strip()]
    bad = unknown_codes(items, vocabulary)
    if bad:
        raise ValueError(
            f"{field}: unknown value {', '.join(repr(b) for b in bad)}; "
            f"valid: {', '.join(vocabulary)}"
        )
    return list(dict.fromkeys(items))


_BBOX_NUM = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """Parse `minlon,minlat,maxlon,maxlat`, raising ValueError with the reason."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise ValueError("bbox must be four numbers: minlon,minlat,maxlon,maxlat")
    if not all(_BBOX_NUM.match(p) for p in parts):
        raise ValueError("bbox must contain only finite decimal numbers")
    minlon, minlat, maxlon, maxlat = (float(p) for p in parts)
    check_lon_lat(minlon, minlat)
    check_lon_lat(maxlon, maxlat)
    if minlon > maxlon:
        raise ValueError("bbox minlon must be <= maxlon (antimeridian-crossing boxes unsupported)")
    if minlat > maxlat:
        raise ValueError("bbox minlat must be <= maxlat")
    return minlon, minlat, maxlon, maxlat
