"""app/hours/suggest.py: opening hours as people type them → a valid OSM string; plain-word
explanations instead of the parser's grammar; the 7-day preview of the station editor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.hours import HoursError, validate
from app.hours.calendar import DayKind, HolidayCalendar
from app.hours.suggest import advise, explain, suggest, week


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("8点到22点", "08:00-22:00"),
        ("早8点-晚10点", "08:00-22:00"),
        ("8:00-22:00 每天", "08:00-22:00"),
        ("每天 7:00-21:00", "07:00-21:00"),
        ("周一至周五 9点到17点", "Mo-Fr 09:00-17:00"),
        ("星期一至星期五 早上9点至晚上9点", "Mo-Fr 09:00-21:00"),
        ("周一到周六 8:00-18:00", "Mo-Sa 08:00-18:00"),
        ("工作日 9:00-17:30；周末 10点-16点", "Mo-Fr 09:00-17:30; Sa,Su 10:00-16:00"),
        ("周一至周六 8:00-18:00，周日休息", "Mo-Sa 08:00-18:00; Su closed"),
        ("周一至周五 9点到17点；周六日休息", "Mo-Fr 09:00-17:00; Sa,Su closed"),
        ("周二、周四 9点-17点", "Tu,Th 09:00-17:00"),
        ("周一、三、五 9点-17点", "Mo,We,Fr 09:00-17:00"),
        ("上午8点半到下午5点半", "08:30-17:30"),
        ("8点到12点，14点到18点", "08:00-12:00,14:00-18:00"),
        ("晚上8点到凌晨2点", "20:00-02:00"),
        ("８：００－２２：００", "08:00-22:00"),
        ("8-22", "08:00-22:00"),
        ("Mo-Fr 9-17", "Mo-Fr 09:00-17:00"),
        ("24小时", "24/7"),
        ("全天开放", "24/7"),
        ("节假日休息", "PH closed"),
    ],
)
def test_suggestions(typed, meant):
    assert suggest(typed) == meant
    assert validate(meant) == meant  # every suggestion is a valid string


@pytest.mark.parametrize("typed", ["", "   ", "abc", "9点", "随时来", "25点到26点", "x" * 600])
def test_no_suggestion_when_it_cannot_tell(typed):
    assert suggest(typed) is None


def test_a_valid_string_is_returned_normalised():
    assert suggest("Mo-Fr 9:00-17:00") == "Mo-Fr 09:00-17:00"


def test_explanations_are_plain_words_not_grammar():
    for typed in (
        "8点到22点",
        "8-22",
        "9am-5pm",
        "25:00-26:00",
        "Mo-Fr 09:00-17:00；Sa 10:00-12:00",
    ):
        with pytest.raises(HoursError):
            validate(typed)
        reasons = explain(typed)
        assert reasons, typed
        text = " ".join(zh + en for zh, en in reasons)
        assert "expected" not in text and "EOI" not in text and "syntax error" not in text
    assert "24 小时制" in explain("8点到22点")[0][0]
    assert "08:00-22:00" in explain("8-22")[0][1]
    assert any("am/pm" in en for _, en in explain("9am-5pm"))
    assert any("25:00" in zh for zh, _ in explain("25:00-26:00"))
    assert explain("08:00-22:00") == []


def test_advise():
    assert advise("").valid and advise("").normalised is None
    ok = advise("Mo-Su 8:00-20:00")
    assert ok.valid and ok.normalised == "Mo-Su 08:00-20:00" and ok.problems == ()
    bad = advise("8点到22点")
    assert not bad.valid and bad.suggestion == "08:00-22:00" and bad.problems


#: Thursday 12 Feb 2026, 12:00 in Shanghai. Spring Festival 2026 is 15-23 Feb; Sat 14 Feb is a
#: make-up working day (调休).
NOON = datetime(2026, 2, 12, 4, 0, tzinfo=UTC)
CAL = HolidayCalendar()


def test_week_lists_seven_local_days_with_their_kinds():
    days = week("Mo-Fr 08:00-18:00; Sa,Su off", "open", NOON, calendar=CAL)
    assert days is not None
    assert [d.day.isoformat() for d in days] == [f"2026-02-{n}" for n in range(12, 19)]
    assert [d.kind for d in days[:4]] == [
        DayKind.NORMAL,
        DayKind.NORMAL,
        DayKind.MAKEUP_WORKDAY,
        DayKind.HOLIDAY,
    ]
    # the make-up Saturday follows the working-day hours; Sunday the 15th is off
    assert [d.spans for d in days[:4]] == [("08:00-18:00",)] * 3 + [()]


def test_week_spans_across_midnight_and_whole_days():
    days = week("22:00-06:00", "open", NOON, calendar=CAL)
    assert days is not None
    assert days[0].spans == ("00:00-06:00", "22:00-24:00")
    whole = week("24/7", "open", NOON, calendar=CAL)
    assert whole is not None and all(d.spans == ("00:00-24:00",) for d in whole)


def test_week_follows_the_status_and_a_temporary_closure():
    closed = week("08:00-20:00", "closed", NOON, calendar=CAL)
    assert closed is not None and all(d.spans == () and d.closed_by_status for d in closed)
    shut = week("08:00-20:00", "temporarily_closed", NOON, calendar=CAL)
    assert shut is not None and all(d.closed_by_status for d in shut)
    # closed until Saturday 14 Feb 12:00 Shanghai: that day opens at noon, later days as usual
    until = NOON + timedelta(days=2)
    days = week("08:00-20:00", "temporarily_closed", NOON, calendar=CAL, closed_until=until)
    assert days is not None
    assert [d.spans for d in days[:4]] == [(), (), ("12:00-20:00",), ("08:00-20:00",)]
    assert [d.closed_by_status for d in days[:3]] == [True, True, False]


def test_week_without_hours_is_unknown_and_invalid_hours_raise():
    assert week(None, "open", NOON) is None
    assert week("  ", "open", NOON) is None
    unknown_but_closed = week(None, "closed", NOON)
    assert unknown_but_closed is not None and len(unknown_but_closed) == 7
    with pytest.raises(HoursError):
        week("8点到22点", "open", NOON)
