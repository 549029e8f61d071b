"""The public-holiday calendar that `PH` rules and make-up working days (调休) follow.

Source: the maintained `holidays` package (`holidays.country_holidays("CN")`, PUBLIC category
only). For China it lists the statutory holidays plus the weekdays given off by the State
Council's yearly arrangement ("Day off (substituted from …)"), and it exposes the make-up
working days — the Saturdays or Sundays that are working days — as `weekend_workdays`.

Two rules are added on top of the package:

* **Holiday blocks are whole.** The package leaves out the ordinary weekend days inside a
  holiday block (e.g. Sat 2026-02-21 and Sun 2026-02-22 inside the Spring Festival break). A
  weekend day that is not a working day and is joined to a listed holiday by a run of
  non-working days counts as a public holiday too, so the block matches the official
  announcement ("2月15日至23日放假调休，共9天"). Turn it off with `bridge_weekends=False`.
* **Planner corrections win.** `extra_holidays` adds holidays; `extra_workdays` marks working
  days: a Saturday or Sunday in it is a make-up working day, and any date in it stops being a
  holiday even if the package lists it. This is how a planner enters next year's arrangement
  before the package knows it (the State Council publishes it each November) or a local one.

The DB-backed table of planner dates feeds the same constructor.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

import holidays
from holidays.constants import PUBLIC

__all__ = ["DayKind", "HolidayCalendar", "default_calendar"]

#: Longest run of non-working days walked when joining weekend days to a holiday block.
_MAX_BLOCK_WALK = 14
#: Python weekday numbers of Saturday and Sunday.
_WEEKEND = frozenset({5, 6})


class DayKind(enum.Enum):
    """How a local calendar day is evaluated."""

    NORMAL = "normal"
    #: A public holiday: `PH` selectors match it.
    HOLIDAY = "holiday"
    #: A Saturday or Sunday that is a working day (调休): evaluated as a working weekday.
    MAKEUP_WORKDAY = "makeup_workday"


class HolidayCalendar:
    """Public holidays and make-up working days of one country (China by default).

    Years are loaded from the `holidays` package lazily, on first use, and kept.
    Instances are safe to share between threads.
    """

    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        *,
        country: str | None = "CN",
        subdiv: str | None = None,
        bridge_weekends: bool = True,
    ) -> None:
        """Build a calendar.

        Args:
            extra_holidays: dates that are public holidays in addition to the package's.
            extra_workdays: dates that are working days whatever the package says; a Saturday
                or Sunday among them is a make-up working day.
            country: ISO code for `holidays.country_holidays`; None for no package calendar
                (only the extra dates count).
            subdiv: optional subdivision code passed to the package.
            bridge_weekends: count weekend days inside a holiday block as holidays.

        Raises:
            ValueError: a date is in both extra sets.
        """
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        both = self._extra_holidays & self._extra_workdays
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"dates cannot be both extra holidays and extra workdays: {listed}")
        self.country = country
        self.subdiv = subdiv
        self.bridge_weekends = bridge_weekends
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
        self._kinds: dict[date, DayKind] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"HolidayCalendar(country={self.country!r}, subdiv={self.subdiv!r}, "
            f"extra_holidays={len(self._extra_holidays)}, "
            f"extra_workdays={len(self._extra_workdays)}, bridge_weekends={self.bridge_weekends})"
        )

    # -- the package's data, one year at a time -------------------------------------------

    def _year(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """(listed holidays, weekend workdays) of `year` from the package."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._years.get(year)
            if cached is not None:
                return cached
            if self.country is None:
                loaded: tuple[frozenset[date], frozenset[date]] = (frozenset(), frozenset())
            else:
                table = holidays.country_holidays(
                    self.country, subdiv=self.subdiv, years=year, categories=(PUBLIC,)
                )
                listed = frozenset(d for d in table if d.year == year)
                workdays = frozenset(
                    d for d in getattr(table, "weekend_workdays", ()) if d.year == year
                )
                loaded = (listed, workdays)
            self._years[year] = loaded
            return loaded

    def _listed(self, day: date) -> bool:
        """A holiday by the package or the planner, not overridden as a working day."""
        if day in self._extra_workdays:
            return False
        return day in self._extra_holidays or day in self._year(day.year)[0]

    def is_makeup_workday(self, day: date) -> bool:
        """True for a Saturday or Sunday that is a working day (调休)."""
        if day.weekday() not in _WEEKEND or day in self._extra_holidays:
            return False
        return day in self._extra_workdays or day in self._year(day.year)[1]

    def _non_working(self, day: date) -> bool:
        return self._listed(day) or (day.weekday() in _WEEKEND and not self.is_makeup_workday(day))

    def is_holiday(self, day: date) -> bool:
        """True when `PH` matches `day` (see the module docstring for holiday blocks)."""
        return self.day_kind(day) is DayKind.HOLIDAY

    def _in_block(self, day: date) -> bool:
        """A non-working weekend day joined to a listed holiday by non-working days."""
        for step in (timedelta(days=-1), timedelta(days=1)):
            other = day
            for _ in range(_MAX_BLOCK_WALK):
                other += step
                if not self._non_working(other):
                    break
                if self._listed(other):
                    return True
        return False

    def day_kind(self, day: date) -> DayKind:
        """Whether `day` is a public holiday, a make-up working day or a normal day."""
        kind = self._kinds.get(day)
        if kind is not None:
            return kind
        if self._listed(day):
            kind = DayKind.HOLIDAY
        elif self.is_makeup_workday(day):
            kind = DayKind.MAKEUP_WORKDAY
        elif self.bridge_weekends and day.weekday() in _WEEKEND and self._in_block(day):
            kind = DayKind.HOLIDAY
        else:
            kind = DayKind.NORMAL
        self._kinds[day] = kind
        return kind

    def holidays_between(self, start: date, end: date) -> list[date]:
        """The holidays in [start, end), for display and tests."""
        days = (start + timedelta(days=i) for i in range((end - start).days))
        return [d for d in days if self.is_holiday(d)]

    def makeup_workdays_between(self, start: date, end: date) -> list[date]:
        """The make-up working days in [start, end)."""
        days = (start + timedelta(days=i) for i in range((end - start).days))
        return [d for d in days if self.is_makeup_workday(d)]


@lru_cache(maxsize=1)
def default_calendar() -> HolidayCalendar:
    """The process-wide Chinese calendar from the `holidays` package, no planner dates."""
    return HolidayCalendar()
