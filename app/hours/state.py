"""A station's open-now state and its bilingual description for API responses.

Rules:

* A station whose `status` is not `open` (`planned`, `temporarily_closed`, `closed`,
  `duplicate`) is never open, whatever its hours say; it has no next change (reopening is a
  status edit, not a schedule) — except a temporary closure with an end:
* `temporarily_closed` with `closed_until` reopens by itself: from `closed_until` on (that
  instant included) its opening hours apply as if it were `open`. Before it, it is closed and
  its next change is the first instant at or after `closed_until` when it is no longer
  closed: `closed_until` itself when its hours say open then (or are unknown), else the next
  opening its hours give after it.
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
    #: The end of a temporary closure still in force (None otherwise).
    until: datetime | None = None


def station_state(
    opening_hours: str | None,
    status: str,
    at: datetime,
    tz: str | ZoneInfo = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
    closed_until: datetime | None = None,
) -> StationState:
    """The state of one station at `at` (aware). See the module docstring for the rules;
    `closed_until` (aware) only counts with status `temporarily_closed`.

    Raises:
        ValueError: naive `at` (or `closed_until`) or unknown tz.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be a timezone-aware datetime, got naive {at!r}")
    if status == "temporarily_closed" and closed_until is not None:
        if closed_until.tzinfo is None or closed_until.utcoffset() is None:
            raise ValueError(f"closed_until must be timezone-aware, got naive {closed_until!r}")
        if closed_until <= at:
            return station_state(opening_hours, "open", at, tz, calendar)
        return StationState(
            False,
            _reopening(opening_hours, closed_until, tz, calendar),
            Reason.TEMPORARILY_CLOSED,
            closed_until,
        )
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


def _reopening(
    opening_hours: str | None,
    closed_until: datetime,
    tz: str | ZoneInfo,
    calendar: HolidayCalendar | None,
) -> datetime | None:
    """The first instant from `closed_until` on when a reopening station is not closed."""
    after = station_state(opening_hours, "open", closed_until, tz, calendar)
    if after.open_now is False:
        return after.next_change
    return closed_until


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
        if state.until is not None:
            u = state.until
            return {
                "zh": f"暂停开放至 {u.month}月{u.day}日 {u:%H:%M}",
                "en": f"temporarily closed until {u.day} {_EN_MONTHS[u.month - 1]} {u:%H:%M}",
            }
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
    until = state.until.astimezone(tzinfo) if state.until else None
    local_state = StationState(state.open_now, change, state.reason, until)
    return {
        "open_now": state.open_now,
        "next_change": change.isoformat() if change else None,
        "next_change_label": _label(local_state, local_at),
    }
