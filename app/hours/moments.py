"""Named moments a planner asks coverage at: "工作日 22:00", "春节 初一 10:00" … resolved to a
concrete instant in the deployment's time zone, by the same holiday calendar the opening hours
are evaluated with (`app.hours.calendar`: the `holidays` package plus the planners' dates).

A moment is written as one of the `PRESETS` codes or as a date-time:

* `now` — the current instant (to the minute);
* `weekday-12`, `weekday-22` — the next working weekday (Monday to Friday, neither a public
  holiday nor in a holiday block) at 12:00 / 22:00, today included while that time is ahead;
* `weekend-03` — the next ordinary weekend day (Saturday or Sunday that is neither a make-up
  working day nor a holiday) at 03:00;
* `spring-1-10` — Spring Festival day 1 (正月初一, the first day the calendar lists as
  "Chinese New Year (Spring Festival)") at 10:00, this year's while ahead, else next year's;
* `2026-12-02T22:00` (what an HTML `datetime-local` input sends: local time of the deployment)
  or an ISO 8601 instant with a UTC offset.

Pure: no database; `resolve` takes the current instant, the time zone and the calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from holidays.constants import PUBLIC

from app.hours.calendar import DayKind, HolidayCalendar

__all__ = ["PRESETS", "Moment", "MomentError", "check", "label", "resolve", "spring_festival"]

#: code → (kind, local clock time)
_PRESET_TIMES: dict[str, tuple[str, time | None]] = {
    "now": ("now", None),
    "weekday-12": ("weekday", time(12, 0)),
    "weekday-22": ("weekday", time(22, 0)),
    "weekend-03": ("weekend", time(3, 0)),
    "spring-1-10": ("spring", time(10, 0)),
}
PRESETS = tuple(_PRESET_TIMES)
#: The presets' names, zh-CN and English.
LABELS: dict[str, dict[str, str]] = {
    "now": {"zh": "现在", "en": "now"},
    "weekday-12": {"zh": "工作日 12:00", "en": "weekday 12:00"},
    "weekday-22": {"zh": "工作日 22:00", "en": "weekday 22:00"},
    "weekend-03": {"zh": "周末 03:00", "en": "weekend 03:00"},
    "spring-1-10": {"zh": "春节 初一 10:00", "en": "Spring Festival day 1, 10:00"},
}
#: Days searched for the next working weekday or ordinary weekend day (the longest holiday
#: blocks are 8–9 days).
_SEARCH_DAYS = 60
#: Years a date-time may fall in (the lunisolar and holiday data cover them).
YEARS = range(2000, 2100)
_WEEKDAYS_ZH = "一二三四五六日"
_SPRING_NAME = "Chinese New Year (Spring Festival)"


class MomentError(ValueError):
    """A moment that is neither a preset nor a date-time (the message names what is allowed)."""


@dataclass(frozen=True)
class Moment:
    """A resolved moment: what was asked (`raw`: a preset code or a date-time) and when."""

    raw: str
    at: datetime  # aware, in the deployment's time zone

    @property
    def preset(self) -> str | None:
        return self.raw if self.raw in _PRESET_TIMES else None

    def label(self, lang: str) -> str:
        """'工作日 22:00 · 2026-12-02（周三）22:00' / 'weekday 22:00 · Wed 2026-12-02 22:00'."""
        return label(self, lang)


@lru_cache(maxsize=256)
def spring_festival(year: int) -> date:
    """Spring Festival day 1 (正月初一) of `year`: the first day the `holidays` package lists
    as the Spring Festival (the same data the opening hours' calendar reads)."""
    table = holidays.country_holidays("CN", years=year, categories=(PUBLIC,), language="en_US")
    days = sorted(d for d, name in table.items() if name == _SPRING_NAME and d.year == year)
    if not days:
        raise MomentError(f"at: no Spring Festival date known for {year}")
    return days[0]


def _working_weekday(day: date, calendar: HolidayCalendar) -> bool:
    return day.weekday() < 5 and calendar.day_kind(day) is DayKind.NORMAL


def _ordinary_weekend(day: date, calendar: HolidayCalendar) -> bool:
    return day.weekday() >= 5 and calendar.day_kind(day) is DayKind.NORMAL


def resolve(raw: str, now: datetime, tz: str, calendar: HolidayCalendar) -> Moment:
    """The instant `raw` names, seen from `now` (aware) in time zone `tz`. MomentError when
    `raw` is neither a preset nor a date-time in `YEARS`."""
    zone = ZoneInfo(tz)
    text = raw.strip()
    local_now = now.astimezone(zone)
    preset = _PRESET_TIMES.get(text)
    if preset is None:
        return Moment(text, _parse(text, zone))
    kind, clock = preset
    if kind == "now" or clock is None:
        return Moment(text, local_now.replace(second=0, microsecond=0))
    if kind == "spring":
        for year in (local_now.year, local_now.year + 1):
            at = datetime.combine(spring_festival(year), clock, tzinfo=zone)
            if at >= local_now:
                return Moment(text, at)
        raise MomentError("at: no Spring Festival ahead")  # pragma: no cover (always found)
    ok = _working_weekday if kind == "weekday" else _ordinary_weekend
    for i in range(_SEARCH_DAYS):
        day = local_now.date() + timedelta(days=i)
        at = datetime.combine(day, clock, tzinfo=zone)
        if at >= local_now and ok(day, calendar):
            return Moment(text, at)
    raise MomentError(f"at: no {kind} day in the next {_SEARCH_DAYS} days")


def check(raw: str, tz: str) -> str:
    """`raw` stripped when it is a preset or a date-time `resolve` accepts (MomentError
    otherwise); no calendar needed."""
    text = raw.strip()
    if text not in _PRESET_TIMES:
        _parse(text, ZoneInfo(tz))
    return text


def _parse(text: str, zone: ZoneInfo) -> datetime:
    allowed = ", ".join(PRESETS)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    except ValueError:
        value = None
    if value is None:
        raise MomentError(
            f"at: 时间须为 {allowed} 之一，或日期时间如 2026-12-02T22:00 / one of {allowed}, "
            f"or a date-time such as 2026-12-02T22:00; got {text!r}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    if value.year not in YEARS:
        raise MomentError(
            f"at: 年份须在 {YEARS.start}–{YEARS.stop - 1} / the year must be "
            f"{YEARS.start}–{YEARS.stop - 1}; got {text!r}"
        )
    return value.astimezone(zone)


def label(moment: Moment, lang: str) -> str:
    """A moment for people: the preset's name (if any) and the local date and time."""
    at = moment.at
    if lang == "en":
        when = f"{at:%a} {at:%Y-%m-%d %H:%M}"
    else:
        when = f"{at:%Y-%m-%d}（周{_WEEKDAYS_ZH[at.weekday()]}）{at:%H:%M}"
    name = LABELS.get(moment.raw, {}).get("en" if lang == "en" else "zh")
    return f"{name} · {when}" if name else when


def utc_now() -> datetime:
    """The current instant (a seam the routes call; tests pass their own `now`)."""
    return datetime.now(UTC)
