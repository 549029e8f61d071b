"""Opening hours: OSM `opening_hours` strings evaluated in a station's own time zone.

Pure Python (no SQL, no web). Parsing and evaluation are done by opening-hours-py; Chinese
public holidays and make-up working days (调休) come from the `holidays` package plus planner
dates (`HolidayCalendar`).

* `validate(text)` → normalised string, or `HoursError` (a ValueError) quoting the string.
* `is_open`, `next_change`, `open_intervals` evaluate a string at aware instants, in the local
  time of `tz` (default `Asia/Shanghai`), never the server's.
* `station_state` adds the station status (temporarily closed is never open; no hours is
  unknown, not open) and `describe` renders it for the API with zh/en labels.

How `PH` and 调休 apply:

* `PH` matches the calendar's public holidays: the `holidays` package's, the weekend days
  inside a holiday block (so Spring Festival 2026 is PH from 15 to 23 Feb, as announced), and
  the planner's extra holidays.
* A make-up working day (a Saturday or Sunday that is a working day) follows the normal
  working-day schedule: a Saturday is evaluated as a Friday, a Sunday as a Monday. So
  `Mo-Fr 08:00-18:00; Sa,Su off` is open 08:00-18:00 on Sat 2026-02-14.

See `app.hours.evaluate` for how this is laid on top of the library.
"""

from app.hours.calendar import DayKind, HolidayCalendar, default_calendar
from app.hours.evaluate import (
    DEFAULT_TZ,
    HoursError,
    Interval,
    is_open,
    next_change,
    open_intervals,
    validate,
    zone,
)
from app.hours.state import Reason, StationState, describe, station_state

__all__ = [
    "DEFAULT_TZ",
    "DayKind",
    "HolidayCalendar",
    "HoursError",
    "Interval",
    "Reason",
    "StationState",
    "default_calendar",
    "describe",
    "is_open",
    "next_change",
    "open_intervals",
    "station_state",
    "validate",
    "zone",
]
