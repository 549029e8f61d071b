"""Shapes of account input: users, invitations, acceptance."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from app.accounts.policy import ROLE_CODES, SCOPE_RE
from app.stations.schemas import NoNulText

#: What a client may send: the same in either case (stored in lower case, as log-in folds it).
USERNAME_INPUT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,39}$"


def _fold(v: object) -> object:
    # Before the pattern: StringConstraints checks its pattern before applying to_lower, so
    # "WangWu" would be refused rather than stored as "wangwu".
    return v.lower() if isinstance(v, str) and v.isascii() else v


Username = Annotated[
    str,
    StringConstraints(pattern=USERNAME_INPUT_PATTERN),
    BeforeValidator(_fold),
    Field(
        description="3-40 letters, digits, '.', '_' or '-' (or a mobile number); stored in "
        "lower case"
    ),
]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNulText
]
Password = Annotated[str, Field(min_length=1, max_length=256), NoNulText]
StationIds = Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=500)]
Districts = Annotated[list[str], Field(max_length=50)]


def _districts(v: list[str] | None) -> list[str] | None:
    if v is None:
        return None
    bad = [d for d in v if not isinstance(d, str) or not SCOPE_RE.match(d)]
    if bad:
        raise ValueError(
            f"not a district code prefix (2, 4, 6, 9 or 12 digits): {', '.join(map(repr, bad))}"
        )
    return sorted(set(v))


def _role(v: str | None) -> str | None:
    if v is not None and v not in ROLE_CODES:
        raise ValueError(f"unknown role {v!r}; valid: {', '.join(ROLE_CODES)}")
    return v


class _Scoped(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("role", check_fields=False)
    @classmethod
    def _check_role(cls, v: str | None) -> str | None:
        return _role(v)

    @field_validator("districts", check_fields=False)
    @classmethod
    def _check_districts(cls, v: list[str] | None) -> list[str] | None:
        return _districts(v)

    @field_validator("stations", check_fields=False)
    @classmethod
    def _check_stations(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else sorted(set(v))


class UserIn(_Scoped):
    """A new account (admins, and district admins within their scope)."""

    username: Username
    display_name: DisplayName
    role: Annotated[str, Field(json_schema_extra={"enum": list(ROLE_CODES)})]
    password: Password | None = None
    districts: Districts = Field(default_factory=list)
    stations: StationIds = Field(default_factory=list)


class UserPatch(_Scoped):
    """Changes to an account; a user changing their own password gives `current_password`."""

    display_name: DisplayName | None = None
    role: Annotated[str, Field(json_schema_extra={"enum": list(ROLE_CODES)})] | None = None
    password: Password | None = None
    current_password: Password | None = None
    districts: Districts | None = None
    stations: StationIds | None = None


class InvitationIn(_Scoped):
    """An invitation: the role and scope the invitee will get."""

    role: Annotated[str, Field(json_schema_extra={"enum": list(ROLE_CODES)})]
    districts: Districts = Field(default_factory=list)
    stations: StationIds = Field(default_factory=list)
    username: Username | None = None
    display_name: DisplayName | None = None


class AcceptIn(BaseModel):
    """Accepting an invitation: the invitee's password (and name, unless the invitation set
    them)."""

    model_config = ConfigDict(extra="forbid")

    password: Password
    username: Username | None = None
    display_name: DisplayName | None = None
