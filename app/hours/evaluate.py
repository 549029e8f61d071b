"""Parse, validate and evaluate OSM `opening_hours` strings with opening-hours-py.

The library parses and evaluates the strings. It carries its own holiday table per country, but
that table has only the statutory days for China (no 调休 arrangement, no make-up working days)
and cannot be replaced, so the library is always run without a country (`PH` then never
matches) and `PH` and make-up working days are applied here, per local calendar day:

* The state at a clock time of local day D depends only on which rules select D and D-1 (D-1
  for spans past midnight such as `22:00-06:00`). When both days are ordinary, D is evaluated
  with the expression as written.
* Otherwise D is evaluated with a *day view*: a copy of the expression whose weekday selectors
  are rewritten for the two weekdays of D-1 and D only. For each of those two days, its weekday
  is in a rewritten selector exactly when
  - the day is a public holiday and the selector contains `PH`, or
  - the selector contains the weekday the day is *evaluated as*: its own weekday, or for a
    make-up working day (调休) the adjacent working weekday — a Saturday is evaluated as a
    Friday, a Sunday as a Monday.
  `PH` itself is dropped from the view. The other five weekdays are untouched, and dates,
  months, weeks and times keep their meaning because the view is evaluated on the real date.
  This is exactly the library's own semantics with `PH` following our calendar; overnight spans
  leaving or entering a holiday behave as the library's own `PH` does.

Not supported (rejected by `validate` with a clear message): `SH` (no school-holiday calendar
is kept for China) and `PH` with a day offset (`PH +1 day`). Weekdays with an nth-of-month
qualifier (`Su[1]`) follow the real weekday, also on make-up working days.

A state of `unknown` (e.g. `Mo-Fr 08:00-18:00 unknown`) is never reported as open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import opening_hours

from app.hours.calendar import DayKind, HolidayCalendar, default_calendar

__all__ = [
    "DEFAULT_TZ",
    "HoursError",
    "Interval",
    "is_open",
    "next_change",
    "open_intervals",
    "validate",
    "zone",
]

#: Time zone used when a deployment configures none.
DEFAULT_TZ = "Asia/Shanghai"

#: An aware [start, end) interval.
Interval = tuple[datetime, datetime]

#: Windows (days) searched in turn by `next_change`; past the last one there is no change.
_NEXT_CHANGE_WINDOWS = (8, 64, 400)

_WEEKDAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
#: A make-up working day on a Saturday is evaluated as a Friday, on a Sunday as a Monday.
_MAKEUP_AS = {5: 4, 6: 0}

_DAY = r"(?:Mo|Tu|We|Th|Fr|Sa|Su)"
_ITEM = rf"(?:PH|SH|{_DAY}(?:-{_DAY})?)(?:\[[^\]]*\])?(?:\s+[+-]?\d+\s+days?)?"
#: A weekday selector: comma-separated weekday ranges and holidays (outside comments).
_SELECTOR_RE = re.compile(rf"(?<![A-Za-z0-9]){_ITEM}(?:,{_ITEM})*(?![A-Za-z])")
_ITEM_RE = re.compile(rf"(PH|SH|{_DAY})(?:-({_DAY}))?(\[[^\]]*\])?(\s+[+-]?\d+\s+days?)?")
_PEST_POS_RE = re.compile(r"-->\s*(\d+):(\d+)")
_ONE_DAY = timedelta(days=1)

_PARSER_ERROR: type[Exception] = getattr(opening_hours, "ParserError", Exception)


class HoursError(ValueError):
    """An `opening_hours` string that cannot be used; the message quotes it and says why."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f'invalid opening_hours "{text}": {reason}')
        self.text = text
        self.reason = reason


# -- parsing ----------------------------------------------------------------------------------

#: (real weekday, weekday it is evaluated as, is a public holiday) of one local day.
_DaySig = tuple[int, int, bool]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A parsed expression: its canonical text and the library object (no country)."""

    text: str
    base: opening_hours.OpeningHours = field(compare=False)
    #: Whether the text has weekday or PH selectors; without them every day is ordinary.
    uses_days: bool = field(default=True, compare=False)


def _parser_reason(exc: Exception) -> str:
    """One line out of the library's (pest) multi-line parse error."""
    message = str(exc)
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    expected = next((ln[1:].strip() for ln in reversed(lines) if ln.startswith("=")), None)
    pos = _PEST_POS_RE.search(message)
    if expected and pos:
        return f"syntax error at character {pos.group(2)}: {expected}"
    return " ".join(lines) or type(exc).__name__


def _parse(text: str) -> opening_hours.OpeningHours:
    try:
        return opening_hours.OpeningHours(text)
    except _PARSER_ERROR as exc:
        raise HoursError(text, _parser_reason(exc)) from exc


def _code_parts(text: str) -> list[tuple[bool, str]]:
    """Split into (is_code, part): comments in double quotes are never rewritten."""
    return [(i % 2 == 0, part) for i, part in enumerate(text.split('"'))]


def _check_supported(canonical: str, text: str) -> None:
    """Reject what parses but cannot be evaluated here; messages quote the input `text`."""
    for is_code, part in _code_parts(canonical):
        if not is_code:
            continue
        for selector in _SELECTOR_RE.finditer(part):
            for item in _ITEM_RE.finditer(selector.group(0)):
                head, _, _, offset = item.groups()
                if head == "SH":
                    raise HoursError(
                        text, "SH (school holidays) is not supported: no school calendar is kept"
                    )
                if head == "PH" and offset:
                    raise HoursError(
                        text, "PH with a day offset (e.g. 'PH +1 day') is not supported"
                    )


def _format_days(days: Iterable[int]) -> list[str]:
    """Weekday numbers as OSM ranges, Monday first: {0, 1, 2, 4} -> ['Mo-We', 'Fr']."""
    out: list[str] = []
    ordered = sorted(set(days))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = _WEEKDAYS[ordered[i]], _WEEKDAYS[ordered[j]]
        out.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return out


def _rewrite_selector(selector: str, sigs: tuple[_DaySig, ...]) -> str:
    plain: set[int] = set()
    opaque: list[str] = []
    has_ph = False
    for item in _ITEM_RE.finditer(selector):
        head, tail, nth, offset = item.groups()
        if head == "PH":
            has_ph = True
        elif nth or offset or head == "SH":
            opaque.append(item.group(0))
        else:
            start = _WEEKDAYS.index(head)
            stop = _WEEKDAYS.index(tail) if tail else start
            plain.update((start + k) % 7 for k in range((stop - start) % 7 + 1))
    chosen = set(plain)
    for real, evaluated_as, holiday in sigs:
        if evaluated_as in plain or (has_ph and holiday):
            chosen.add(real)
        else:
            chosen.discard(real)
    parts = _format_days(chosen) + opaque
    if not parts:
        # Matches neither day of the view: any weekday other than theirs will do.
        reals = {real for real, _, _ in sigs}
        parts = [next(_WEEKDAYS[d] for d in range(7) if d not in reals)]
    return ",".join(parts)


def _view_text(text: str, sigs: tuple[_DaySig, ...]) -> str:
    out = []
    for is_code, part in _code_parts(text):
        if is_code:
            part = _SELECTOR_RE.sub(lambda m: _rewrite_selector(m.group(0), sigs), part)
        out.append(part)
    return '"'.join(out)


#: Day pairs whose views are parsed at validation, so evaluation cannot meet a bad rewrite.
_PROBE_SIGS: tuple[tuple[_DaySig, ...], ...] = (
    ((3, 3, True), (4, 4, True)),  # Th, Fr both holidays
    ((6, 6, False), (0, 0, True)),  # Su normal, Mo holiday
    ((4, 4, False), (5, 4, False)),  # Fr, then a make-up Saturday
    ((5, 5, True), (6, 0, False)),  # Sa holiday, then a make-up Sunday
)


@lru_cache(maxsize=8192)
def _compile(text: str) -> _Compiled:
    stripped = text.strip()
    if not stripped:
        raise HoursError(text, "it is empty")
    parsed = _parse(stripped)
    canonical = str(parsed)
    try:
        if str(opening_hours.OpeningHours(canonical)) != canonical:
            canonical = stripped
    except _PARSER_ERROR:
        canonical = stripped
    _check_supported(canonical, text)
    for sigs in _PROBE_SIGS:
        view = _view_text(canonical, sigs)
        try:
            opening_hours.OpeningHours(view)
        except _PARSER_ERROR as exc:
            raise HoursError(
                text, f"its weekday or PH selectors cannot be evaluated ({_parser_reason(exc)})"
            ) from exc
    base = parsed if canonical == stripped else opening_hours.OpeningHours(canonical)
    uses_days = any(
        is_code and _SELECTOR_RE.search(part) for is_code, part in _code_parts(canonical)
    )
    return _Compiled(canonical, base, uses_days)


@lru_cache(maxsize=8192)
def _view(compiled: _Compiled, sigs: tuple[_DaySig, ...]) -> opening_hours.OpeningHours:
    text = _view_text(compiled.text, sigs)
    return compiled.base if text == compiled.text else opening_hours.OpeningHours(text)


def validate(text: str) -> str:
    """Check an `opening_hours` string; return its normalised form.

    The normalised form is the library's canonical rendering (`off` becomes `closed`, spacing
    is regular); it means the same as the input.

    Raises:
        HoursError: the message quotes the string and says what is wrong.
    """
    return _compile(text).text


# -- time zones and days ----------------------------------------------------------------------


@lru_cache(maxsize=64)
def _zone_by_name(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The ZoneInfo for an IANA name (ValueError if unknown); a ZoneInfo is returned as is."""
    return tz if isinstance(tz, ZoneInfo) else _zone_by_name(tz)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    """Wall-clock time in tz, naive (the library evaluates naive local times)."""
    return at.astimezone(tz).replace(tzinfo=None)


def _sig(calendar: HolidayCalendar, day: date) -> _DaySig:
    kind = calendar.day_kind(day)
    real = day.weekday()
    evaluated_as = _MAKEUP_AS.get(real, real) if kind is DayKind.MAKEUP_WORKDAY else real
    return (real, evaluated_as, kind is DayKind.HOLIDAY)


def _is_ordinary(sig: _DaySig) -> bool:
    return sig[0] == sig[1] and not sig[2]


def _evaluator(
    compiled: _Compiled, calendar: HolidayCalendar, day: date
) -> opening_hours.OpeningHours:
    """The library object that gives the right state at any clock time of local `day`."""
    if not compiled.uses_days:
        return compiled.base
    prev, cur = _sig(calendar, day - timedelta(days=1)), _sig(calendar, day)
    if _is_ordinary(prev) and _is_ordinary(cur):
        return compiled.base
    return _view(compiled, (prev, cur))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _open_pieces(
    evaluator: opening_hours.OpeningHours, start: datetime, end: datetime
) -> Iterable[tuple[datetime, datetime]]:
    for lo, hi, state, _comment in evaluator.intervals(start, end):
        if state == opening_hours.State.OPEN:
            yield lo, hi


def _local_open(
    compiled: _Compiled, calendar: HolidayCalendar, first: date, stop: date
) -> list[tuple[datetime, datetime]]:
    """Merged naive local open intervals over the local days [first, stop)."""
    pieces: list[tuple[datetime, datetime]] = []
    run_start: date | None = None  # first day of a run evaluated with the base expression
    day = first
    while day < stop:
        evaluator = _evaluator(compiled, calendar, day)
        if evaluator is compiled.base:
            if run_start is None:
                run_start = day
        else:
            if run_start is not None:
                pieces.extend(_open_pieces(compiled.base, _midnight(run_start), _midnight(day)))
                run_start = None
            pieces.extend(_open_pieces(evaluator, _midnight(day), _midnight(day) + _ONE_DAY))
        day += _ONE_DAY
    if run_start is not None:
        pieces.extend(_open_pieces(compiled.base, _midnight(run_start), _midnight(stop)))
    return _merge(pieces)


def _merge(pieces: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(pieces):
        if hi <= lo:
            continue
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


# -- the public evaluation functions ----------------------------------------------------------


def is_open(
    text: str,
    at: datetime,
    tz: str | ZoneInfo = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
) -> bool:
    """Whether the hours say open at `at` (aware), evaluated in tz's local time.

    Raises:
        HoursError: invalid string. ValueError: naive `at` or unknown tz.
    """
    _require_aware(at, "at")
    compiled = _compile(text)
    local = _local(at, zone(tz))
    evaluator = _evaluator(compiled, calendar or default_calendar(), local.date())
    return bool(evaluator.is_open(local))


def open_intervals(
    text: str,
    start: datetime,
    end: datetime,
    tz: str | ZoneInfo = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
) -> list[Interval]:
    """The open intervals within [start, end), as merged aware UTC [lo, hi) pairs.

    Spans across midnight or across Sunday→Monday come out as one interval. This is the form
    stored for SQL filtering (a `tstzmultirange` over a window, refreshed on write and daily).
    Results are cached per (string, window, tz, calendar object), so a refresh of many stations
    sharing a few distinct strings costs little more than those strings.

    Raises:
        HoursError: invalid string. ValueError: naive bounds or unknown tz.
    """
    _require_aware(start, "start")
    _require_aware(end, "end")
    compiled = _compile(text)
    cal = calendar or default_calendar()
    key_start, key_end = start.astimezone(UTC), end.astimezone(UTC)
    return list(_open_intervals_cached(compiled, key_start, key_end, zone(tz), cal))


@lru_cache(maxsize=4096)
def _open_intervals_cached(
    compiled: _Compiled, start: datetime, end: datetime, tz: ZoneInfo, cal: HolidayCalendar
) -> tuple[Interval, ...]:
    return tuple(_utc_open(compiled, start, end, tz, cal))


def _utc_open(
    compiled: _Compiled, start: datetime, end: datetime, tz: ZoneInfo, cal: HolidayCalendar
) -> list[Interval]:
    """Merged aware UTC open intervals clipped to [start, end) (aware bounds)."""
    if end <= start:
        return []
    # One spare local day each side: DST shifts never leave an instant of [start, end) out.
    first = _local(start, tz).date() - _ONE_DAY
    stop = _local(end, tz).date() + 2 * _ONE_DAY
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    out: list[Interval] = []
    for lo, hi in _local_open(compiled, cal, first, stop):
        lo_utc = max(lo.replace(tzinfo=tz).astimezone(UTC), start_utc)
        hi_utc = min(hi.replace(tzinfo=tz).astimezone(UTC), end_utc)
        if lo_utc < hi_utc:
            out.append((lo_utc, hi_utc))
    return _merge(out)


def next_change(
    text: str,
    at: datetime,
    tz: str | ZoneInfo = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
) -> datetime | None:
    """The next instant after `at` when the state flips, aware in tz.

    None when the state never changes (`24/7`, `off`); for strings with weekday or PH
    selectors "never" means not within about 400 days.

    Raises:
        HoursError: invalid string. ValueError: naive `at` or unknown tz.
    """
    _require_aware(at, "at")
    compiled = _compile(text)
    tzinfo = zone(tz)
    if not compiled.uses_days:
        # No day depends on the calendar: the library's own answer is exact.
        change = compiled.base.next_change(_local(at, tzinfo))
        return None if change is None else change.replace(tzinfo=tzinfo)
    cal = calendar or default_calendar()
    for days in _NEXT_CHANGE_WINDOWS:
        horizon = at + timedelta(days=days)
        spans = _utc_open(compiled, at, horizon, tzinfo, cal)
        if not spans:
            continue  # closed throughout the window
        lo, hi = spans[0]
        if lo > at:
            return lo.astimezone(tzinfo)
        if hi < horizon:
            return hi.astimezone(tzinfo)
    return None
