"""Opening hours (app.hours): pure, no database.

Expectations are computed by hand on the real 2026 calendar (weekdays checked below), with the
`holidays` package's China data for public holidays and make-up working days (调休). Property
tests compare `is_open`, `open_intervals` and `next_change` with each other, and with the
library's own `PH` evaluation on the library's own holiday table as an independent oracle.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import opening_hours
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.hours import (
    DayKind,
    HolidayCalendar,
    HoursError,
    Reason,
    default_calendar,
    describe,
    is_open,
    next_change,
    open_intervals,
    station_state,
    validate,
)

SH = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """An instant given in Shanghai wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def test_the_weekdays_used_below():
    # 2026-01-01 is a Thursday; the dates the tests rely on:
    assert date(2026, 3, 6).strftime("%a") == "Fri"
    assert date(2026, 3, 7).strftime("%a") == "Sat"
    assert date(2026, 3, 8).strftime("%a") == "Sun"
    assert date(2026, 3, 9).strftime("%a") == "Mon"
    assert date(2026, 2, 14).strftime("%a") == "Sat"
    assert date(2026, 9, 20).strftime("%a") == "Sun"
    assert date(2026, 10, 1).strftime("%a") == "Thu"
    assert date(2026, 10, 4).strftime("%a") == "Sun"


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("24/7", "24/7"),
        ("Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00", "Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00"),
        ("22:00-06:00", "22:00-06:00"),
        ("PH off", "PH closed"),
        ("  Mo-Fr 08:00-18:00 ;PH off ", "Mo-Fr 08:00-18:00; PH closed"),
        ("mo-fr 08:00-18:00; sa,su off", "Mo-Fr 08:00-18:00; Sa,Su closed"),
    ],
)
def test_validate_normalises(raw, normalised):
    assert validate(raw) == normalised
    assert validate(normalised) == normalised


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("Mo-Fr 25:00-26:00", "syntax error at character 7"),
        ("24/24", "syntax error at character 1"),
        ("Mo-Fr 08:00-18:00; ph off", "syntax error at character 20"),
        ("", "it is empty"),
        ("SH off", "SH (school holidays) is not supported"),
        ("PH +1 day off", "PH with a day offset"),
    ],
)
def test_invalid_strings_quote_the_string_and_say_why(raw, why):
    with pytest.raises(HoursError) as err:
        validate(raw)
    message = str(err.value)
    assert f'"{raw}"' in message
    assert why in message
    assert isinstance(err.value, ValueError)
    with pytest.raises(HoursError):
        is_open(raw, sh(2026, 3, 9, 10))


# -- overnight spans, Sunday→Monday, 24/7, off days --------------------------------------------


def test_overnight_span_across_midnight():
    hours = "Mo-Su 22:00-06:00"
    assert is_open(hours, sh(2026, 3, 10, 23, 0))  # Tue night
    assert is_open(hours, sh(2026, 3, 11, 3, 0))  # Wed small hours
    assert not is_open(hours, sh(2026, 3, 11, 6, 0))  # closes at 06:00 sharp
    assert not is_open(hours, sh(2026, 3, 11, 12, 0))
    assert is_open(hours, sh(2026, 3, 11, 22, 0))  # opens at 22:00 sharp
    # one continuous interval Tue 22:00 → Wed 06:00 (= 14:00Z → 22:00Z)
    spans = open_intervals(hours, sh(2026, 3, 10, 12), sh(2026, 3, 11, 12))
    assert spans == [(utc(2026, 3, 10, 14), utc(2026, 3, 10, 22))]
    assert next_change(hours, sh(2026, 3, 10, 23, 0)) == sh(2026, 3, 11, 6, 0)
    assert next_change(hours, sh(2026, 3, 11, 12, 0)) == sh(2026, 3, 11, 22, 0)


def test_span_across_sunday_to_monday():
    hours = "Su 20:00-24:00; Mo 00:00-08:00"
    assert is_open(hours, sh(2026, 3, 8, 23, 59))  # Sunday
    assert is_open(hours, sh(2026, 3, 9, 0, 0))  # Monday
    assert not is_open(hours, sh(2026, 3, 9, 8, 0))
    spans = open_intervals(hours, sh(2026, 3, 7), sh(2026, 3, 11))
    # Sun 20:00 → Mon 08:00 in Shanghai is one interval 12:00Z → 00:00Z
    assert spans == [(utc(2026, 3, 8, 12), utc(2026, 3, 9, 0))]
    assert next_change(hours, sh(2026, 3, 8, 21)) == sh(2026, 3, 9, 8)

    weekend_nights = "Sa-Su 22:00-06:00"
    assert is_open(weekend_nights, sh(2026, 3, 9, 5, 59))  # Monday morning, from Sunday
    assert not is_open(weekend_nights, sh(2026, 3, 10, 5, 0))  # no Monday night
    assert open_intervals(weekend_nights, sh(2026, 3, 6), sh(2026, 3, 10)) == [
        (utc(2026, 3, 7, 14), utc(2026, 3, 7, 22)),  # Sat 22:00 → Sun 06:00
        (utc(2026, 3, 8, 14), utc(2026, 3, 8, 22)),  # Sun 22:00 → Mon 06:00, one interval
    ]


def test_24_7_is_always_open_and_never_changes():
    at = sh(2026, 3, 9, 3, 17)
    assert is_open("24/7", at)
    assert next_change("24/7", at) is None
    start, end = sh(2026, 3, 1), sh(2026, 4, 7)
    assert open_intervals("24/7", start, end) == [(start.astimezone(UTC), end.astimezone(UTC))]
    state = station_state("24/7", "open", at)
    assert describe(state, at) == {
        "open_now": True,
        "next_change": None,
        "next_change_label": {"zh": "24 小时开放", "en": "open 24/7"},
    }


def test_off_days():
    hours = "Mo-Fr 09:00-17:00; Sa,Su off"
    assert is_open(hours, sh(2026, 3, 6, 16, 0))  # Friday
    assert not is_open(hours, sh(2026, 3, 7, 12, 0))  # Saturday
    assert not is_open(hours, sh(2026, 3, 8, 12, 0))  # Sunday
    assert next_change(hours, sh(2026, 3, 6, 18, 0)) == sh(2026, 3, 9, 9, 0)  # Monday
    assert next_change(hours, sh(2026, 3, 6, 16, 0)) == sh(2026, 3, 6, 17, 0)
    assert not is_open("off", sh(2026, 3, 6, 12))
    assert next_change("off", sh(2026, 3, 6, 12)) is None


# -- public holidays and make-up working days --------------------------------------------------


def test_the_package_calendar_for_2026():
    cal = default_calendar()
    # National Day 2026 (package lists 1-3, 5-7 Oct; Sun 4 Oct lies inside the block)
    for d in range(1, 8):
        assert cal.day_kind(date(2026, 10, d)) is DayKind.HOLIDAY, d
    assert cal.day_kind(date(2026, 10, 8)) is DayKind.NORMAL
    # Spring Festival break as announced: 15-23 Feb 2026
    assert cal.holidays_between(date(2026, 2, 10), date(2026, 2, 28)) == [
        date(2026, 2, d) for d in range(15, 24)
    ]
    # 调休: the Saturdays and Sundays that are working days in 2026
    assert cal.makeup_workdays_between(date(2026, 1, 1), date(2027, 1, 1)) == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    # an ordinary weekend is neither
    assert cal.day_kind(date(2026, 3, 7)) is DayKind.NORMAL


def test_public_holiday_with_ph_off():
    hours = "Mo-Su 08:00-20:00; PH off"
    assert is_open(hours, sh(2026, 9, 30, 10))
    assert not is_open(hours, sh(2026, 10, 1, 10))  # National Day, Thursday
    assert not is_open(hours, sh(2026, 10, 4, 10))  # Sunday inside the block
    assert is_open(hours, sh(2026, 10, 8, 10))
    at = sh(2026, 10, 1, 10)
    assert next_change(hours, at) == sh(2026, 10, 8, 8)
    assert describe(station_state(hours, "open", at), at)["next_change_label"] == {
        "zh": "10月8日 08:00 开门",
        "en": "opens 8 Oct 08:00",
    }
    # the window shows the closure as a gap: last opening 30 Sep, next 8 Oct
    spans = open_intervals(hours, sh(2026, 9, 30), sh(2026, 10, 9))
    assert spans == [
        (utc(2026, 9, 30, 0), utc(2026, 9, 30, 12)),
        (utc(2026, 10, 8, 0), utc(2026, 10, 8, 12)),
    ]


def test_ph_with_its_own_hours_and_spring_festival():
    hours = "Mo-Fr 08:00-18:00; PH 10:00-14:00"
    assert not is_open(hours, sh(2026, 2, 17, 9))  # Spring Festival, Tuesday
    assert is_open(hours, sh(2026, 2, 17, 11))
    assert is_open(hours, sh(2026, 2, 21, 11))  # Saturday inside the break is PH
    assert not is_open(hours, sh(2026, 2, 21, 16))
    assert is_open(hours, sh(2026, 2, 24, 16))  # back to work on Tuesday 24 Feb


def test_makeup_working_day_follows_the_working_day_schedule():
    hours = "Mo-Fr 08:00-18:00; Sa,Su off"
    assert is_open(hours, sh(2026, 2, 14, 10))  # Saturday, make-up working day
    assert not is_open(hours, sh(2026, 2, 7, 10))  # an ordinary Saturday
    assert is_open(hours, sh(2026, 9, 20, 10))  # Sunday, make-up working day
    assert next_change(hours, sh(2026, 2, 14, 10)) == sh(2026, 2, 14, 18)
    assert open_intervals(hours, sh(2026, 2, 14), sh(2026, 2, 15)) == [
        (utc(2026, 2, 14, 0), utc(2026, 2, 14, 10))
    ]
    # a make-up Saturday is evaluated as a Friday, a make-up Sunday as a Monday
    split = "Mo 08:00-12:00; Fr 14:00-18:00"
    assert is_open(split, sh(2026, 2, 14, 15)) and not is_open(split, sh(2026, 2, 14, 10))
    assert is_open(split, sh(2026, 9, 20, 10)) and not is_open(split, sh(2026, 9, 20, 15))
    # written in lower case: the library's canonical form is what gets evaluated
    assert is_open("mo-fr 08:00-18:00; sa,su off", sh(2026, 2, 14, 10))


def test_planner_dates_extend_and_override_the_package():
    extra = HolidayCalendar(
        extra_holidays=[date(2026, 3, 10)],
        extra_workdays=[date(2026, 3, 7), date(2026, 10, 7)],
    )
    assert not is_open("Mo-Fr 08:00-18:00; PH off", sh(2026, 3, 10, 10), calendar=extra)
    assert is_open("Mo-Fr 08:00-18:00; PH off", sh(2026, 3, 10, 10))  # default calendar
    assert is_open("Mo-Fr 08:00-18:00; Sa,Su off", sh(2026, 3, 7, 10), calendar=extra)
    # 7 Oct is a holiday for the package; the planner made it a working day
    assert is_open("Mo-Fr 08:00-18:00; PH off", sh(2026, 10, 7, 10), calendar=extra)
    assert not is_open("Mo-Fr 08:00-18:00; PH off", sh(2026, 10, 7, 10))
    with pytest.raises(ValueError, match="2026-03-10"):
        HolidayCalendar(extra_holidays=[date(2026, 3, 10)], extra_workdays=[date(2026, 3, 10)])


# -- station state, time zones, labels -------------------------------------------------------


def test_temporarily_closed_station_is_never_open():
    at = sh(2026, 3, 9, 12)
    state = station_state("24/7", "temporarily_closed", at)
    assert state.open_now is False and state.next_change is None
    assert state.reason is Reason.TEMPORARILY_CLOSED
    assert describe(state, at)["next_change_label"] == {
        "zh": "暂停开放",
        "en": "temporarily closed",
    }
    assert station_state("24/7", "closed", at).open_now is False
    assert station_state(None, "temporarily_closed", at).open_now is False


@settings(max_examples=100, deadline=None)
@given(
    hours=st.sampled_from(["24/7", "Mo-Su 22:00-06:00", "Mo-Fr 08:00-18:00; PH off", None]),
    at=st.datetimes(
        min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
    ),
)
def test_temporarily_closed_is_never_open_at_any_time(hours, at):
    assert station_state(hours, "temporarily_closed", at).open_now is False


def test_missing_or_broken_hours_are_unknown_not_open():
    at = sh(2026, 3, 9, 12)
    for hours in (None, "not hours"):
        state = station_state(hours, "open", at)
        assert state.open_now is None and state.reason is Reason.UNKNOWN_HOURS
        assert describe(state, at) == {
            "open_now": None,
            "next_change": None,
            "next_change_label": {"zh": "开放时间未知", "en": "opening hours unknown"},
        }


def test_naive_datetimes_are_rejected():
    naive = datetime(2026, 3, 9, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open("24/7", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_change("24/7", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        open_intervals("24/7", naive, sh(2026, 3, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        station_state("24/7", "open", naive)
    with pytest.raises(ValueError, match="unknown time zone"):
        is_open("24/7", sh(2026, 3, 9), "Mars/Olympus_Mons")


def test_evaluated_in_the_station_time_zone():
    hours = "Mo-Su 08:00-20:00"
    instant = utc(2026, 3, 10, 1, 0)  # 09:00 in Shanghai, 01:00 in London
    assert is_open(hours, instant, "Asia/Shanghai")
    assert not is_open(hours, instant, "Europe/London")
    assert next_change(hours, instant, "Asia/Shanghai") == sh(2026, 3, 10, 20)
    assert next_change(hours, instant, "Europe/London") == datetime(2026, 3, 10, 8, tzinfo=LONDON)
    # London's clocks go forward on 29 Mar 2026: 08:00 BST is 07:00Z
    assert open_intervals(hours, utc(2026, 3, 29), utc(2026, 3, 30), LONDON) == [
        (utc(2026, 3, 29, 7), utc(2026, 3, 29, 19))
    ]


def test_labels_in_both_languages():
    def label(hours: str, at: datetime) -> dict[str, str]:
        return describe(station_state(hours, "open", at), at)["next_change_label"]

    assert label("Mo-Su 06:00-22:00", sh(2026, 3, 9, 12)) == {
        "zh": "22:00 关门",
        "en": "closes at 22:00",
    }
    assert label("Mo-Su 06:00-22:00", sh(2026, 3, 9, 5)) == {
        "zh": "06:00 开门",
        "en": "opens at 06:00",
    }
    assert label("Mo-Su 06:00-22:00", sh(2026, 3, 9, 23)) == {
        "zh": "明天 06:00 开门",
        "en": "opens tomorrow 06:00",
    }
    assert label("Mo-Su 22:00-06:00", sh(2026, 3, 9, 23)) == {
        "zh": "明天 06:00 关门",
        "en": "closes tomorrow 06:00",
    }
    assert label("Mo-Fr 08:00-18:00; Sa,Su off", sh(2026, 3, 6, 19)) == {
        "zh": "周一 08:00 开门",
        "en": "opens Mon 08:00",
    }
    assert label("Mo-Su 08:00-24:00", sh(2026, 3, 9, 23)) == {
        "zh": "24:00 关门",
        "en": "closes at 24:00",
    }
    at = sh(2026, 3, 9, 12)
    out = describe(station_state("Mo-Su 06:00-22:00", "open", at), at.astimezone(UTC))
    assert out["open_now"] is True
    assert out["next_change"] == "2026-03-09T22:00:00+08:00"


# -- properties --------------------------------------------------------------------------------

REALISTIC = [
    "24/7",
    "Mo-Su 22:00-06:00",
    "Su 20:00-24:00; Mo 00:00-08:00",
    "Sa-Su 22:00-06:00",
    "Mo-Fr 09:00-17:00; Sa,Su off",
    "Mo-Fr 08:00-20:00; Sa,Su 09:00-17:00",
    "Mo-Fr 08:00-18:00; PH off",
    "Mo-Su 08:00-20:00; PH off",
    "Mo-Fr 08:00-12:00,13:30-17:30; Sa 09:00-12:00; Su,PH off",
    "Mo-Fr 07:00-19:00; PH 10:00-16:00",
    "Mo-Su 20:00-04:00; PH off",
    "22:00-06:00",
    "off",
]
INSTANTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2027, 1, 31), timezones=st.just(UTC)
)
ZONES = st.sampled_from(["Asia/Shanghai", "Asia/Urumqi", "UTC"])


@settings(max_examples=400, deadline=None)
@given(hours=st.sampled_from(REALISTIC), at=INSTANTS, tz=ZONES)
def test_is_open_agrees_with_open_intervals(hours, at, tz):
    spans = open_intervals(hours, at - timedelta(days=2), at + timedelta(days=2), tz)
    assert is_open(hours, at, tz) == any(lo <= at < hi for lo, hi in spans)
    for (_, hi), (lo, _) in pairwise(spans):
        assert hi < lo  # merged: no two intervals touch


@settings(max_examples=300, deadline=None)
@given(hours=st.sampled_from(REALISTIC), at=INSTANTS, tz=ZONES)
def test_next_change_is_the_first_flip(hours, at, tz):
    now = is_open(hours, at, tz)
    change = next_change(hours, at, tz)
    if change is None:
        spans = open_intervals(hours, at, at + timedelta(days=60), tz)
        assert spans == ([(at, at + timedelta(days=60))] if now else [])
        return
    assert change > at
    assert is_open(hours, change, tz) != now
    spans = open_intervals(hours, at, change, tz)
    assert spans == ([(at, change)] if now else [])


def _library_cn_holidays() -> list[date]:
    """The days the library's own embedded table says are PH in China."""
    probe = opening_hours.OpeningHours("PH", country="CN")
    days = (date(2025, 11, 1) + timedelta(days=i) for i in range(500))
    return [d for d in days if probe.is_open(datetime(d.year, d.month, d.day, 12))]


LIB_CN = _library_cn_holidays()
PH_STRINGS = [
    "Mo-Fr 08:00-18:00; PH off",
    "Mo-Su 22:00-06:00; PH off",
    "Mo-Fr 08:00-18:00; PH 22:00-02:00",
    "PH,Sa-Su 10:00-16:00; Mo-Fr 08:00-20:00",
    "PH off; Mo-Fr 09:00-17:00",
    "Th 20:00-30:00; PH,Fr closed",
    "Mo-Fr 08:00-18:00, PH 19:00-21:00",
    "Jan-Feb PH 10:00-12:00; Mar-Dec Mo-Fr 08:00-09:00",
    "Fr-Mo 21:00-03:00; PH,Tu off",
]


@settings(max_examples=400, deadline=None)
@given(hours=st.sampled_from(PH_STRINGS), at=INSTANTS)
def test_ph_matches_the_librarys_own_ph_on_its_own_holidays(hours, at):
    """Independent oracle: the library evaluating PH itself, with its embedded CN table."""
    assert len(LIB_CN) >= 6
    cal = HolidayCalendar(LIB_CN, country=None, bridge_weekends=False)
    library = opening_hours.OpeningHours(hours, country="CN")
    expected = library.state(at.replace(tzinfo=None))[0] == opening_hours.State.OPEN
    assert is_open(hours, at, "UTC", cal) == expected


def test_intervals_over_a_year_match_the_library_on_its_own_holidays():
    cal = HolidayCalendar(LIB_CN, country=None, bridge_weekends=False)
    start, end = datetime(2026, 1, 1), datetime(2027, 1, 1)
    for hours in PH_STRINGS:
        expected: list[tuple[datetime, datetime]] = []
        for lo, hi, state, _ in opening_hours.OpeningHours(hours, country="CN").intervals(
            start, end
        ):
            if state == opening_hours.State.OPEN:
                if expected and expected[-1][1] == lo:
                    expected[-1] = (expected[-1][0], hi)
                else:
                    expected.append((lo, hi))
        got = open_intervals(hours, start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), "UTC", cal)
        assert [(lo.replace(tzinfo=None), hi.replace(tzinfo=None)) for lo, hi in got] == expected
