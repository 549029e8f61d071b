"""Issue 15 (mutation testing): opening hours as a courier reads them, DB-free.

Expected values are the State Council's 2026 holiday arrangement (Spring Festival off
Sun 15 - Mon 23 Feb, make-up working days Sat 14 and Sat 28 Feb; May Day off 1-5 May with
Sat 9 May worked), weekdays read off a printed 2026 calendar, and small planner calendars whose
answer is worked out by hand in each test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from app.hours import (
    HolidayCalendar,
    HoursError,
    Reason,
    StationState,
    describe,
    is_open,
    next_change,
    open_intervals,
    station_state,
    validate,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --- the calendar ----------------------------------------------------------------------------


def test_spring_festival_2026_as_announced():
    cal = HolidayCalendar()  # a calendar of its own, loaded afresh
    off = days(date(2026, 2, 15), date(2026, 2, 23))
    assert [d for d in days(date(2026, 2, 10), date(2026, 3, 2)) if cal.is_holiday(d)] == off
    assert cal.holidays_between(date(2026, 2, 10), date(2026, 3, 3)) == off
    assert cal.makeup_workdays_between(date(2026, 2, 1), date(2026, 3, 1)) == [
        date(2026, 2, 14),
        date(2026, 2, 28),
    ]
    assert cal.day_kind(date(2026, 2, 14)).value == "makeup_workday"
    assert cal.day_kind(date(2026, 2, 13)).value == "normal"


def test_national_day_and_may_day_2026():
    cal = HolidayCalendar()
    assert cal.holidays_between(date(2026, 9, 28), date(2026, 10, 12)) == days(
        date(2026, 10, 1), date(2026, 10, 7)
    )
    assert cal.makeup_workdays_between(date(2026, 9, 14), date(2026, 10, 14)) == [
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert cal.holidays_between(date(2026, 4, 30), date(2026, 5, 11)) == days(
        date(2026, 5, 1), date(2026, 5, 5)
    )
    assert cal.is_makeup_workday(date(2026, 5, 9))


def test_without_bridging_only_listed_days_are_holidays():
    cal = HolidayCalendar(bridge_weekends=False)
    # Sun 15, Sat 21 and Sun 22 Feb are off only as part of the block.
    assert not cal.is_holiday(date(2026, 2, 15))
    assert not cal.is_holiday(date(2026, 2, 21))
    assert cal.is_holiday(date(2026, 2, 17))


# A planner calendar with no package data: March 2026 (Fri 6, Mon 16, Thu 26).
FRI_6, MON_16, THU_26 = date(2026, 3, 6), date(2026, 3, 16), date(2026, 3, 26)


def test_planner_holidays_pull_in_the_adjacent_weekend_only():
    cal = HolidayCalendar([FRI_6, MON_16, THU_26], country=None)
    holidays = cal.holidays_between(date(2026, 3, 1), date(2026, 4, 1))
    assert holidays == [
        FRI_6,
        date(2026, 3, 7),  # Sat, joined to Friday
        date(2026, 3, 8),  # Sun, joined through Saturday
        date(2026, 3, 14),  # Sat, joined through Sunday to Monday
        date(2026, 3, 15),  # Sun, joined to Monday
        MON_16,
        THU_26,  # Fri 27 is worked: Sat 28 / Sun 29 stay ordinary
    ]


def test_a_planner_workday_on_a_weekend_breaks_the_block():
    # Sat 7 is worked: Sun 8 is no longer joined to Friday.
    cal = HolidayCalendar([FRI_6], [date(2026, 3, 7)], country=None)
    assert cal.day_kind(date(2026, 3, 7)).value == "makeup_workday"
    assert not cal.is_holiday(date(2026, 3, 8))
    assert cal.is_holiday(FRI_6)


def test_a_planner_workday_on_a_weekday_is_just_a_normal_day():
    wed = date(2026, 3, 4)
    cal = HolidayCalendar(extra_workdays=[wed], country=None)
    assert not cal.is_makeup_workday(wed)
    assert cal.day_kind(wed).value == "normal"
    # and a weekend day that is a planner holiday is never a make-up day
    cal = HolidayCalendar([date(2026, 2, 14)])
    assert not cal.is_makeup_workday(date(2026, 2, 14))
    assert cal.is_holiday(date(2026, 2, 14))


def test_no_country_means_no_package_holidays():
    cal = HolidayCalendar(country=None)
    assert cal.holidays_between(date(2026, 1, 1), date(2027, 1, 1)) == []
    assert cal.makeup_workdays_between(date(2026, 1, 1), date(2027, 1, 1)) == []


def test_a_date_in_both_extra_sets_is_refused_by_name():
    with pytest.raises(ValueError) as err:
        HolidayCalendar([date(2026, 3, 2), date(2026, 3, 1)], [date(2026, 3, 1), date(2026, 3, 2)])
    assert str(err.value) == (
        "dates cannot be both extra holidays and extra workdays: 2026-03-01, 2026-03-02"
    )


# --- errors a caller sees --------------------------------------------------------------------


class NoOffset(tzinfo):
    """A tzinfo that does not know its offset: such a time is as good as naive."""

    def utcoffset(self, dt):
        return None

    def dst(self, dt):
        return None


@pytest.mark.parametrize(
    "when", [datetime(2026, 3, 2, 9), datetime(2026, 3, 2, 9, tzinfo=NoOffset())]
)
def test_naive_times_are_refused_naming_the_argument(when):
    aware = sh(2026, 3, 2, 9)
    with pytest.raises(ValueError, match=r"^at must be a timezone-aware datetime"):
        is_open("24/7", when)
    with pytest.raises(ValueError, match=r"^at must be a timezone-aware datetime"):
        next_change("Mo-Fr 08:00-18:00", when)
    with pytest.raises(ValueError, match=r"^start must be a timezone-aware datetime"):
        open_intervals("24/7", when, aware)
    with pytest.raises(ValueError, match=r"^end must be a timezone-aware datetime"):
        open_intervals("24/7", aware, when)
    with pytest.raises(ValueError, match=r"^at must be a timezone-aware datetime"):
        station_state("24/7", "open", when)


def test_hours_error_keeps_the_text_and_the_reason():
    with pytest.raises(HoursError) as err:
        validate("Mo-Fr 08:00-18:00; SH off")
    assert err.value.text == "Mo-Fr 08:00-18:00; SH off"
    assert err.value.reason == "SH (school holidays) is not supported: no school calendar is kept"
    assert str(err.value) == f'invalid opening_hours "{err.value.text}": {err.value.reason}'


def test_school_holidays_after_a_comment_are_still_refused():
    with pytest.raises(HoursError, match=r"SH \(school holidays\) is not supported"):
        validate('Mo-Fr 08:00-18:00 "summer hours"; SH off')


def test_ph_with_an_offset_is_refused_but_a_weekday_with_one_is_not_mistaken_for_it():
    with pytest.raises(HoursError) as err:
        validate("PH +1 day 08:00-12:00")
    assert err.value.reason == "PH with a day offset (e.g. 'PH +1 day') is not supported"
    assert validate("PH 08:00-12:00") == "PH 08:00-12:00"


def test_a_syntax_error_says_where():
    with pytest.raises(HoursError) as err:
        validate("Mo-Fr 08:00-")
    assert err.value.reason.startswith("syntax error at character ")


# --- a station's state and its label ---------------------------------------------------------


def test_next_change_is_given_in_the_station_time_zone():
    change = next_change("Mo-Fr 08:00-18:00", sh(2026, 3, 2, 9))
    assert change == sh(2026, 3, 2, 18)
    assert change.utcoffset() == timedelta(hours=8)
    urumqi = next_change("Mo-Fr 08:00-18:00", sh(2026, 3, 2, 9), "Asia/Urumqi")
    assert urumqi.utcoffset() == timedelta(hours=6)
    # 09:00 in Shanghai is 07:00 in Urumqi (UTC+6): the station there opens at 08:00 local.
    assert urumqi == datetime(2026, 3, 2, 8, tzinfo=ZoneInfo("Asia/Urumqi"))


def test_station_state_follows_the_planner_calendar():
    """A planner closes a station on a local holiday (Wed 4 Mar): the state must say so."""
    cal = HolidayCalendar([date(2026, 3, 4)], country=None)
    hours = "Mo-Fr 08:00-18:00; PH off"
    state = station_state(hours, "open", sh(2026, 3, 4, 10), calendar=cal)
    assert state == StationState(False, sh(2026, 3, 5, 8), Reason.HOURS)
    # the day before, the station closes at 18:00 and stays shut over the holiday
    assert station_state(hours, "open", sh(2026, 3, 3, 10), calendar=cal) == StationState(
        True, sh(2026, 3, 3, 18), Reason.HOURS
    )


@pytest.mark.parametrize(
    ("status", "reason", "label"),
    [
        (
            "temporarily_closed",
            Reason.TEMPORARILY_CLOSED,
            {"zh": "暂停开放", "en": "temporarily closed"},
        ),
        ("closed", Reason.CLOSED, {"zh": "已关闭", "en": "closed permanently"}),
    ],
)
def test_a_station_not_open_by_status(status, reason, label):
    at = sh(2026, 3, 2, 10)
    state = station_state("24/7", status, at)
    assert state == StationState(False, None, reason)
    assert describe(state, at)["next_change_label"] == label


def test_labels_for_never_and_unknown():
    at = sh(2026, 3, 2, 10)
    off = station_state("off", "open", at)
    assert off == StationState(False, None, Reason.HOURS)
    assert describe(off, at) == {
        "open_now": False,
        "next_change": None,
        "next_change_label": {"zh": "暂无开放时段", "en": "no opening scheduled"},
    }
    # open_now unknown is "unknown" whatever the reason says
    unknown = StationState(None, sh(2026, 3, 2, 18), Reason.HOURS)
    assert describe(unknown, at)["next_change_label"] == {
        "zh": "开放时间未知",
        "en": "opening hours unknown",
    }


def test_open_intervals_are_utc_whatever_the_server_zone(monkeypatch):
    """The stored intervals are UTC even on a server whose local zone is not."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        spans = open_intervals("Mo-Fr 08:00-18:00", sh(2026, 3, 2), sh(2026, 3, 4))
        # a window starting and ending inside opening hours: cut at its own bounds
        inner = open_intervals("Mo-Fr 08:00-18:00", sh(2026, 3, 2, 9), sh(2026, 3, 3, 12))
        nxt = next_change("Mo-Fr 08:00-18:00", sh(2026, 3, 2, 9))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert spans == [
        (datetime(2026, 3, 2, 0, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)),
        (datetime(2026, 3, 3, 0, tzinfo=UTC), datetime(2026, 3, 3, 10, tzinfo=UTC)),
    ]
    assert inner == [
        (datetime(2026, 3, 2, 1, tzinfo=UTC), datetime(2026, 3, 2, 10, tzinfo=UTC)),
        (datetime(2026, 3, 3, 0, tzinfo=UTC), datetime(2026, 3, 3, 4, tzinfo=UTC)),
    ]
    assert all(b.utcoffset() == timedelta(0) for span in spans + inner for b in span)
    assert nxt.utcoffset() == timedelta(hours=8)


# --- a temporary closure with an end -----------------------------------------------------------
# (station state rules in app/hours/state.py: from `closed_until` on the hours apply again)

HOURS = "Mo-Fr 08:00-18:00"


def test_a_closure_ending_during_opening_hours_reopens_at_its_end():
    # Mon 2 Mar 10:00, closed until Wed 4 Mar 12:00 (a weekday, within 08:00-18:00)
    at, until = sh(2026, 3, 2, 10), sh(2026, 3, 4, 12)
    state = station_state(HOURS, "temporarily_closed", at, closed_until=until)
    assert state == StationState(False, until, Reason.TEMPORARILY_CLOSED, until)
    assert describe(state, at)["next_change_label"] == {
        "zh": "暂停开放至 3月4日 12:00",
        "en": "temporarily closed until 4 Mar 12:00",
    }


def test_a_closure_ending_at_night_reopens_with_the_next_opening():
    # closed until Wed 4 Mar 20:00: the hours open again on Thu 5 Mar at 08:00
    at, until = sh(2026, 3, 2, 10), sh(2026, 3, 4, 20)
    state = station_state(HOURS, "temporarily_closed", at, closed_until=until)
    assert state == StationState(False, sh(2026, 3, 5, 8), Reason.TEMPORARILY_CLOSED, until)
    # without hours the reopening is the end of the closure itself
    unknown = station_state(None, "temporarily_closed", at, closed_until=until)
    assert unknown == StationState(False, until, Reason.TEMPORARILY_CLOSED, until)


def test_from_the_end_of_a_closure_on_the_hours_apply():
    until = sh(2026, 3, 4, 12)
    # at the very instant, and after it
    for at in (until, sh(2026, 3, 4, 13)):
        state = station_state(HOURS, "temporarily_closed", at, closed_until=until)
        assert state == StationState(True, sh(2026, 3, 4, 18), Reason.HOURS)


def test_an_end_only_counts_for_a_temporary_closure():
    at, until = sh(2026, 3, 2, 10), sh(2026, 3, 4, 12)
    assert station_state(HOURS, "closed", at, closed_until=until) == StationState(
        False, None, Reason.CLOSED
    )
    assert station_state(HOURS, "open", at, closed_until=until) == StationState(
        True, sh(2026, 3, 2, 18), Reason.HOURS
    )
    with pytest.raises(ValueError, match=r"^closed_until must be timezone-aware"):
        station_state(HOURS, "temporarily_closed", at, closed_until=datetime(2026, 3, 4, 12))


def test_a_time_without_offset_is_refused_whatever_the_status():
    with pytest.raises(ValueError, match=r"^at must be a timezone-aware datetime"):
        station_state("24/7", "closed", datetime(2026, 3, 2, 9, tzinfo=NoOffset()))


def test_parser_messages_of_an_unexpected_shape_are_still_readable():
    """What the planner reads if the parsing library words an error differently from today's
    pest layout (`--> 1:13` and `= expected ...`)."""
    from app.hours.evaluate import _parser_reason

    pest = "  --> 1:13\n   |\n 1 | Mo-Fr 08:00-\n   |             ^---\n   |\n   = expected time"
    assert _parser_reason(ValueError(pest)) == "syntax error at character 13: expected time"
    # no position: the lines, joined
    assert _parser_reason(ValueError("bad\n  = expected time")) == "bad = expected time"
    # no "= expected" line: the lines, joined
    assert _parser_reason(ValueError("--> 1:2\nbroken")) == "--> 1:2 broken"
    # nothing at all: the kind of error
    assert _parser_reason(KeyError()) == "KeyError"
    assert _parser_reason(ValueError("  \n ")) == "ValueError"


def test_a_closure_follows_the_planner_calendar_too():
    """Thu 5 Mar is a local holiday with `PH off`: a closure ending Wed evening reopens on
    Friday, and once the closure is over Thursday is still shut."""
    cal = HolidayCalendar([date(2026, 3, 5)], country=None)
    hours = "Mo-Fr 08:00-18:00; PH off"
    until = sh(2026, 3, 4, 20)
    during = station_state(
        hours, "temporarily_closed", sh(2026, 3, 2, 10), calendar=cal, closed_until=until
    )
    assert during.next_change == sh(2026, 3, 6, 8)
    after = station_state(
        hours, "temporarily_closed", sh(2026, 3, 5, 10), calendar=cal, closed_until=until
    )
    assert after == StationState(False, sh(2026, 3, 6, 8), Reason.HOURS)
    with pytest.raises(ValueError, match=r"^closed_until must be timezone-aware"):
        station_state(
            hours,
            "temporarily_closed",
            sh(2026, 3, 2, 10),
            closed_until=datetime(2026, 3, 4, 12, tzinfo=NoOffset()),
        )


# --- selectors on holidays and make-up days (found by mutation testing) -------------------------


def test_a_weekday_list_with_a_gap_stays_a_list_on_a_holiday():
    """ "Mo,We" on a Tuesday holiday (Tue 3 Mar, planner calendar, no PH rule): still shut."""
    cal = HolidayCalendar([date(2026, 3, 3)], country=None)
    assert not is_open("Mo,We 08:00-12:00", sh(2026, 3, 3, 10), calendar=cal)
    assert is_open("Mo,We 08:00-12:00", sh(2026, 3, 4, 10), calendar=cal)
    assert is_open("Mo,We 08:00-12:00", sh(2026, 3, 2, 10), calendar=cal)


def test_first_sunday_of_the_month_keeps_its_qualifier_next_to_a_make_up_day():
    """Sun 11 Oct 2026 follows the make-up Saturday 10 Oct, so it is evaluated through a day
    view; it is the month's *second* Sunday, so `Su[1]` does not open it. Sun 4 Oct (the first,
    inside National Day) does open: the rule has no PH part."""
    hours = "Su[1] 10:00-12:00"
    assert not is_open(hours, sh(2026, 10, 11, 11))
    assert is_open(hours, sh(2026, 10, 4, 11))


def test_a_saturday_rule_does_not_spill_into_a_make_up_saturday():
    """Sat 14 Feb 2026 is a make-up working day, run as a Friday: a Saturday-night rule
    (22:00-02:00) opens neither on it nor from the Friday before."""
    hours = "Sa 22:00-02:00"
    assert not is_open(hours, sh(2026, 2, 14, 1))
    assert not is_open(hours, sh(2026, 2, 14, 23))
    assert is_open(hours, sh(2026, 2, 7, 23))  # an ordinary Saturday
    assert is_open(hours, sh(2026, 2, 8, 1))


def test_a_weekend_worked_through_opens_both_days():
    """A planner makes Sat 7 and Sun 8 Mar working days: Saturday runs as a Friday, Sunday as
    a Monday, so weekday hours apply on both."""
    cal = HolidayCalendar(extra_workdays=[date(2026, 3, 7), date(2026, 3, 8)], country=None)
    assert is_open("Mo-Fr 08:00-18:00", sh(2026, 3, 7, 10), calendar=cal)
    assert is_open("Mo-Fr 08:00-18:00", sh(2026, 3, 8, 10), calendar=cal)
    assert not is_open("Mo-Fr 08:00-18:00", sh(2026, 3, 14, 10), calendar=cal)


def test_comments_are_left_alone():
    """A note in quotes is never read as a selector, also on days seen through a day view."""
    hours = 'Mo-Fr 08:00-18:00 "ring the bell, SH staff on Mo"; PH off'
    assert validate(hours) == hours.replace("PH off", "PH closed")  # the canonical spelling
    assert is_open(hours, sh(2026, 3, 2, 10))
    assert not is_open(hours, sh(2026, 10, 1, 10))  # National Day, PH off
    assert is_open(hours, sh(2026, 2, 14, 10))  # make-up Saturday, run as a Friday
