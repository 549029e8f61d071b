"""A station's open-now state and its bilingual description for API responses.

Rules:

* A station whose `status` is not `open` (`temporarily_closed`, `closed`) is never open,
  whatever its hours say; it has no next change (reopening is a status edit, not a schedule).
* A station without `opening_hours` has an unknown state: `open_now` is None, not True — an
  outdoor worker must not walk to a door that may be shut. The same holds for a stored string
  that no longer validates (it is reported as unknown rather than failing the response).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.hours.calendar import HolidayCalendar
from app.hours.evaluate import DEFAULT_TZ, HoursError, is_open, next_change, zone

__all__ = ["Reason", "StationState", "describe", "station_state"]

_ZH_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Reason(enum.Enum):
    """Where a station's state comes from."""

    HOURS = "hours"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"
    UNKNOWN_HOURS = "unknown_hours"


@dataclass(frozen=True, slots=True)
class StationState:
    """Open now (None = unknown), the next flip (aware, station tz) and why."""

    open_now: bool | None
    next_change: datetime | None
    reason: Reason


def station_state(
    opening_hours: str | None,
    status: str,
    at: datetime,
    tz: str | ZoneInfo = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
) -> StationState:
    """The state of one station at `at` (aware). See the module docstring for the rules.

    Raises:
        ValueError: naive `at` or unknown tz.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be a timezone-aware datetime, got naive {at!r}")
    if status != "open":
        reason = Reason.TEMPORARILY_CLOSED if status == "temporarily_closed" else Reason.CLOSED
        return StationState(False, None, reason)
    if opening_hours is None:
        return StationState(None, None, Reason.UNKNOWN_HOURS)
    try:
        now_open = is_open(opening_hours, at, tz, calendar)
        change = next_change(opening_hours, at, tz, calendar)
    except HoursError:
        return StationState(None, None, Reason.UNKNOWN_HOURS)
    return StationState(now_open, change, Reason.HOURS)


def _when(change: datetime, at: datetime) -> tuple[str, str]:
    """(zh, en) prefix naming the day of `change` relative to `at` (both in one tz)."""
    days = (change.date() - at.date()).days
    if days == 0 or (days == 1 and change.hour == 0 and change.minute == 0):
        return "", ""
    if days == 1:
        return "明天 ", "tomorrow "
    if days < 7:
        wd = change.weekday()
        return f"{_ZH_WEEKDAYS[wd]} ", f"{_EN_WEEKDAYS[wd]} "
    return (
        f"{change.month}月{change.day}日 ",
        f"{change.day} {_EN_MONTHS[change.month - 1]} ",
    )


def _clock(change: datetime, at: datetime) -> str:
    """HH:MM, with a change at the midnight ending `at`'s day written 24:00."""
    if change.hour == 0 and change.minute == 0 and change.date() == at.date() + timedelta(days=1):
        return "24:00"
    return f"{change:%H:%M}"


def _label(state: StationState, at: datetime) -> dict[str, str]:
    if state.reason is Reason.TEMPORARILY_CLOSED:
        return {"zh": "暂停开放", "en": "temporarily closed"}
    if state.reason is Reason.CLOSED:
        return {"zh": "已关闭", "en": "closed permanently"}
    if state.reason is Reason.UNKNOWN_HOURS or state.open_now is None:
        return {"zh": "开放时间未知", "en": "opening hours unknown"}
    if state.next_change is None:
        if state.open_now:
            return {"zh": "24 小时开放", "en": "open 24/7"}
        return {"zh": "暂无开放时段", "en": "no opening scheduled"}
    change = state.next_change
    zh_day, en_day = _when(change, at)
    clock = _clock(change, at)
    if state.open_now:
        en = f"closes {en_day}{clock}" if en_day else f"closes at {clock}"
        return {"zh": f"{zh_day}{clock} 关门", "en": en}
    en = f"opens {en_day}{clock}" if en_day else f"opens at {clock}"
    return {"zh": f"{zh_day}{clock} 开门", "en": en}


def describe(state: StationState, at: datetime, tz: str | ZoneInfo = DEFAULT_TZ) -> dict[str, Any]:
    """The API form of a state, labels in the station's local time.

    `{"open_now": bool | None, "next_change": ISO 8601 with offset | None,
    "next_change_label": {"zh": "22:00 关门", "en": "closes at 22:00"}}`; the label names the
    day ("明天", "周一", "10月8日" / "tomorrow", "Mon", "8 Oct") when the change is not today.
    """
    tzinfo = zone(tz)
    local_at = at.astimezone(tzinfo)
    change = state.next_change.astimezone(tzinfo) if state.next_change else None
    local_state = StationState(state.open_now, change, state.reason)
    return {
        "open_now": state.open_now,
        "next_change": change.isoformat() if change else None,
        "next_change_label": _label(local_state, local_at),
    }
