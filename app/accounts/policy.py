"""Who may do what: the one pure authorisation policy (no I/O, no web or database imports).

Every write path asks `check(actor, action, station)` (and `check_fields` for field-level
rights); list queries apply the same scope in SQL from `Scope` (app/accounts/queries.py), so the
rules live here once. A station is described by `StationRef` (its id and district code), a
user by `UserRef` (role, district prefixes, and the districts of the stations they manage).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from app.errors import ForbiddenError
from app.stations.vocab import Term

Role = Literal["admin", "district_admin", "manager", "planner"]

ROLES: tuple[Term, ...] = (
    Term("admin", "系统管理员", "Administrator"),
    Term("district_admin", "区域管理员", "District administrator"),
    Term("manager", "站点负责人", "Station manager"),
    Term("planner", "规划人员", "Planner"),
)
ROLE_CODES: tuple[str, ...] = tuple(t.code for t in ROLES)
ROLE_LABELS: dict[str, Term] = {t.code: t for t in ROLES}

#: A district scope is a prefix of the 6/9/12-digit administrative codes: a province (2 digits),
#: a city (4), a county/district (6), a street (9) or a community (12).
SCOPE_RE = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{3}([0-9]{3})?)?)?)?$")

#: The operational fields a station manager may set; every other field is refused by name.
MANAGER_FIELDS: frozenset[str] = frozenset(
    {
        "amenities",
        "opening_hours",
        "status",
        "phone",
        "capacity",
        "notes",
        "closed_until",
        "status_reason",
    }
)

ActorKind = Literal["user", "admin_token", "system"]


class Action(StrEnum):
    """Everything the policy decides."""

    STATION_CREATE = "station.create"
    STATION_EDIT = "station.edit"
    STATION_DELETE = "station.delete"
    STATION_HISTORY = "station.history"
    STATION_REVERT = "station.revert"
    STATION_IMPORT = "station.import"
    LOCATION_PROPOSE = "location.propose"
    LOCATION_DECIDE = "location.decide"
    STATION_CONFIRM = "station.confirm"
    STALE_LIST = "stations.stale"
    DEMAND_WRITE = "demand.write"
    DISTRICTS_WRITE = "districts.write"
    NETWORK_WRITE = "network.write"
    USERS_READ = "users.read"
    REPORT_READ = "report.read"
    REPORT_ANSWER = "report.answer"
    INSPECTION_READ = "inspection.read"
    INSPECTION_WRITE = "inspection.write"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a user (with role and scope), the break-glass ADMIN_TOKEN, or the system
    (the CLI without `--as`)."""

    kind: ActorKind
    role: Role
    name: str
    user_id: int | None = None
    display_name: str = ""
    #: District-code prefixes (district admins, planners).
    districts: tuple[str, ...] = ()
    #: Stations assigned (managers).
    stations: frozenset[int] = field(default_factory=frozenset)
    #: The authenticating session (token) row, when a user presented one.
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


SYSTEM = Actor(kind="system", role="admin", name="system")
ADMIN_TOKEN = Actor(kind="admin_token", role="admin", name="admin-token")


@dataclass(frozen=True, slots=True)
class StationRef:
    """What the policy needs to know of a station: its id (None for a new one) and district."""

    id: int | None
    district_code: str | None


@dataclass(frozen=True, slots=True)
class UserRef:
    """What the policy needs to know of a user account being created, read or changed."""

    role: str
    districts: tuple[str, ...] = ()
    #: The district codes of the stations the user manages (None for a station without one).
    station_districts: tuple[str | None, ...] = ()
    user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """The stations an actor may change, as SQL can apply it: everything, or the stations whose
    district starts with one of `districts`, or whose id is in `stations`."""

    everything: bool = False
    districts: tuple[str, ...] = ()
    stations: tuple[int, ...] = ()


def covers(prefixes: Iterable[str], district_code: str | None) -> bool:
    """Whether a district code lies inside one of the prefixes (NULL lies in none)."""
    return district_code is not None and any(district_code.startswith(p) for p in prefixes)


def within(prefixes: Iterable[str], inner: Iterable[str]) -> bool:
    """Whether every inner prefix (at least one) is inside one of `prefixes`."""
    inner = list(inner)
    outer = list(prefixes)
    return bool(inner) and all(covers(outer, p) for p in inner)


def station_scope(actor: Actor) -> Scope:
    """The stations `actor` may edit."""
    if actor.is_admin:
        return Scope(everything=True)
    if actor.role == "district_admin":
        return Scope(districts=actor.districts)
    if actor.role == "manager":
        return Scope(stations=tuple(sorted(actor.stations)))
    return Scope()


def in_scope(actor: Actor, station: StationRef) -> bool:
    """Whether the station lies in the actor's editing scope."""
    if actor.is_admin:
        return True
    if actor.role == "district_admin":
        return covers(actor.districts, station.district_code)
    if actor.role == "manager":
        return station.id is not None and station.id in actor.stations
    return False


_STATION_ROLES: dict[Action, frozenset[str]] = {
    Action.STATION_CREATE: frozenset({"district_admin"}),
    Action.STATION_EDIT: frozenset({"district_admin", "manager"}),
    Action.STATION_DELETE: frozenset({"district_admin"}),
    Action.STATION_HISTORY: frozenset({"district_admin", "manager"}),
    Action.STATION_REVERT: frozenset({"district_admin"}),
    Action.STATION_IMPORT: frozenset({"district_admin"}),
    Action.LOCATION_PROPOSE: frozenset({"manager"}),
    Action.LOCATION_DECIDE: frozenset({"district_admin"}),
    Action.REPORT_READ: frozenset({"district_admin", "manager"}),
    Action.REPORT_ANSWER: frozenset({"district_admin", "manager"}),
    Action.INSPECTION_READ: frozenset({"district_admin", "manager"}),
    Action.INSPECTION_WRITE: frozenset({"district_admin"}),
    Action.STATION_CONFIRM: frozenset({"district_admin", "manager"}),
}
_GLOBAL_ROLES: dict[Action, frozenset[str]] = {
    Action.DEMAND_WRITE: frozenset({"planner"}),
    Action.DISTRICTS_WRITE: frozenset({"planner"}),
    Action.NETWORK_WRITE: frozenset(),
    Action.USERS_READ: frozenset({"district_admin"}),
    Action.STALE_LIST: frozenset({"district_admin"}),
}


def can(actor: Actor, action: Action, station: StationRef | None = None) -> bool:
    """Whether `actor` may do `action` (to `station`, for station actions)."""
    if actor.is_admin:
        return True
    if action in _GLOBAL_ROLES:
        return actor.role in _GLOBAL_ROLES[action]
    if actor.role not in _STATION_ROLES[action] or station is None:
        return False
    return in_scope(actor, station)


#: What was refused, in English and Chinese ({} is the station's id, or nothing).
_ACTION_WORDS: dict[Action, tuple[str, str]] = {
    Action.STATION_CREATE: ("create stations here", "无权在此创建站点"),
    Action.STATION_EDIT: ("edit station{}", "无权编辑此站点"),
    Action.STATION_DELETE: ("delete station{}", "无权删除此站点"),
    Action.STATION_HISTORY: ("read the history of station{}", "无权查看此站点的修改记录"),
    Action.STATION_REVERT: ("revert station{}", "无权回退此站点"),
    Action.STATION_IMPORT: ("import station{}", "无权导入此站点"),
    Action.LOCATION_PROPOSE: ("propose a location for station{}", "无权为此站点提出位置修改"),
    Action.LOCATION_DECIDE: ("decide on the location of station{}", "无权审核此站点的位置"),
    Action.DEMAND_WRITE: ("change demand layers", "无权修改需求图层"),
    Action.DISTRICTS_WRITE: ("change district outlines", "无权修改行政区边界"),
    Action.NETWORK_WRITE: ("change the road network", "无权修改路网"),
    Action.USERS_READ: ("manage users", "无权管理用户"),
    Action.REPORT_READ: ("read the reports about station{}", "无权查看此站点的问题反馈"),
    Action.REPORT_ANSWER: ("answer reports about station{}", "无权处理此站点的问题反馈"),
    Action.INSPECTION_READ: ("read the inspections of station{}", "无权查看此站点的检查记录"),
    Action.INSPECTION_WRITE: ("record inspections of station{}", "无权记录此站点的检查"),
    Action.STATION_CONFIRM: ("confirm station{}", "无权确认此站点信息"),
    Action.STALE_LIST: ("read the list of stale stations", "无权查看待核实站点清单"),
}


def check(
    actor: Actor, action: Action, station: StationRef | None = None, field: str | None = None
) -> None:
    """Raise ForbiddenError (403) unless `can(actor, action, station)`."""
    if can(actor, action, station):
        return
    has_id = station is not None and station.id is not None
    en, zh = _ACTION_WORDS[action]
    what = en.format(f" {station.id}" if has_id and station is not None else "")
    raise ForbiddenError(
        f"{actor.name} ({actor.role}) may not {what} ({zh})",
        field=field or ("id" if has_id else "role"),
    )


def refused_fields(actor: Actor, fields: Iterable[str]) -> list[str]:
    """The fields `actor` may not set on a station they may edit (sorted)."""
    if actor.role == "manager":
        return sorted(set(fields) - MANAGER_FIELDS)
    return []


def check_fields(actor: Actor, fields: Iterable[str], prefix: str = "properties.") -> None:
    """Raise ForbiddenError naming the first field a manager may not set."""
    refused = refused_fields(actor, fields)
    if refused:
        name = refused[0] if refused[0] == "geometry" else f"{prefix}{refused[0]}"
        hint = (
            "; propose a new location with POST /api/v1/stations/{id}/proposals"
            if refused[0] == "geometry"
            else ""
        )
        raise ForbiddenError(
            f"{name}: a station manager may not change this field (站点负责人不能修改此项: "
            f"{', '.join(refused)}){hint}",
            field=name,
        )


def check_move(actor: Actor, station: StationRef, new_district: str | None) -> None:
    """A district admin may move a station only to a district inside their scope."""
    if actor.role == "district_admin" and not covers(actor.districts, new_district):
        raise ForbiddenError(
            "properties.district_code: outside your districts (超出您的管辖范围): "
            f"{new_district or 'none'}",
            field="properties.district_code",
        )


def user_in_scope(actor: Actor, user: UserRef) -> bool:
    """Whether `actor` may read, change or remove the account `user`."""
    if actor.is_admin:
        return True
    if actor.user_id is not None and user.user_id == actor.user_id:
        return True
    if actor.role != "district_admin":
        return False
    if user.role in ("district_admin", "planner"):
        return within(actor.districts, user.districts)
    if user.role == "manager":
        return bool(user.station_districts) and all(
            covers(actor.districts, d) for d in user.station_districts
        )
    return False


def check_grant(actor: Actor, user: UserRef) -> None:
    """Raise ForbiddenError unless `actor` may give an account this role and scope (creating,
    inviting or changing a user): no one above their own scope."""
    if actor.is_admin:
        return
    if actor.role != "district_admin":
        raise ForbiddenError(
            f"{actor.name} ({actor.role}) may not create or change accounts (无权管理账户)",
            field="role",
        )
    if user.role == "admin":
        raise ForbiddenError(
            "role: a district admin may not grant the admin role "
            "(区域管理员不能授予系统管理员角色)",
            field="role",
        )
    if user.role in ("district_admin", "planner") and not within(actor.districts, user.districts):
        raise ForbiddenError(
            "districts: each must lie inside your own districts "
            f"({', '.join(actor.districts)}) (不能超出您的管辖范围)",
            field="districts",
        )
    if user.role == "manager" and not (
        user.station_districts and all(covers(actor.districts, d) for d in user.station_districts)
    ):
        raise ForbiddenError(
            "stations: name at least one, each inside your districts (站点须在您的管辖范围内)",
            field="stations",
        )
