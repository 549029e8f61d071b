"""Help for people typing opening hours: what they probably meant, and what is wrong, in plain
words (zh-CN and English) instead of the parser's grammar.

Pure: no I/O, no web or database imports.

* `suggest(text)` turns the ways people write hours in Chinese (and loose variants of the OSM
  syntax) into a valid `opening_hours` string, or None when it cannot tell:
  "8点到22点", "早8点-晚10点", "8:00-22:00 每天" → `08:00-22:00`;
  "周一至周五 9点到17点" → `Mo-Fr 09:00-17:00`; "工作日 9:00-17:30；周末 10点-16点" →
  `Mo-Fr 09:00-17:30; Sa,Su 10:00-16:00`; "全天" / "24小时" → `24/7`.
  Every suggestion is checked with `validate` before it is offered.
* `explain(text)` says, for a string that does not validate, what to change (a few short
  sentences, each in both languages).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.hours.calendar import DayKind, HolidayCalendar, default_calendar
from app.hours.evaluate import DEFAULT_TZ, HoursError, open_intervals, validate, zone

__all__ = ["Advice", "PreviewDay", "advise", "explain", "suggest", "week"]

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
#: Chinese weekday names after 周 / 星期 / 礼拜.
_ZH_DAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_EN_DAY = {d.lower(): i for i, d in enumerate(_DAYS)}

_DASHES = "－—–~～〜至到"
_WEEK_WORD = r"(?:周|星期|礼拜)"
_ZH_DAY_CHARS = "一二三四五六日天七"
#: "周一至周五", "周六日", "周一、三、五", "星期二和星期四": a weekday word, then more days.
_ZH_DAYS_RE = re.compile(
    rf"{_WEEK_WORD}[{_ZH_DAY_CHARS}](?:\s*[-、,，和及]?\s*{_WEEK_WORD}?[{_ZH_DAY_CHARS}])*"
)
_EN_DAYS_RE = re.compile(rf"(?i)\b(?:{'|'.join(_DAYS)})(?:\s*[-,]\s*(?:{'|'.join(_DAYS)}))*\b")

#: A clock time as people write it: an optional part of day, hour, and minutes as ":30",
#: "点", "点半", "点30(分)", "时15分".
_TIME = re.compile(
    r"(?P<part>凌晨|早上|早晨|早|上午|中午|午|下午|傍晚|晚上|晚|夜里|夜间)?\s*"
    r"(?P<h>\d{1,2})\s*"
    r"(?:[:.]\s*(?P<m1>\d{2})|(?:点|时)\s*(?:(?P<half>半)|(?P<m2>\d{1,2})\s*分?)?)?"
)


@dataclass(frozen=True, slots=True)
class Advice:
    """What a form shows under an opening-hours field."""

    valid: bool
    #: The normalised string when valid.
    normalised: str | None
    #: A valid string the input probably meant (None: no idea, or already valid).
    suggestion: str | None
    #: Plain-word explanations (zh, en), empty when valid.
    problems: tuple[tuple[str, str], ...]


def _normalise(text: str) -> str:
    """Full-width to ASCII (NFKC), one kind of dash, one kind of rule separator."""
    s = unicodedata.normalize("NFKC", text).strip()
    for d in _DASHES:
        s = s.replace(d, "-")
    s = re.sub(r"\s*-\s*", "-", s)
    s = s.replace("；", ";").replace("。", ";").replace("\n", ";")
    # "周一至周六 8:00-18:00，周日休息": a comma after a time and before days starts a rule
    s = re.sub(
        rf"(?<=[0-9点时分半])\s*[,，]\s*(?={_WEEK_WORD}|工作日|周末|双休|节假日|法定)", ";", s
    )
    return s


def _clock(part: str | None, hour: int, minute: int) -> tuple[int, int] | None:
    """24-hour (hour, minute) of a time with an optional part of day; None if impossible."""
    if minute > 59 or hour > 24:
        return None
    evening = part in ("下午", "傍晚", "晚上", "晚", "夜里", "夜间") and hour < 12
    if evening or (part in ("中午", "午") and hour < 6):
        hour += 12
    elif part == "凌晨" and hour == 12:
        hour = 0
    if hour == 24 and minute:
        return None
    return hour, minute


def _parse_time(m: re.Match[str]) -> tuple[int, int] | None:
    g = m.groupdict()
    minute = 30 if g.get("half") else int(g.get("m1") or g.get("m2") or 0)
    return _clock(g.get("part"), int(g["h"]), minute)


def _times(segment: str) -> list[str] | None:
    """The time ranges of a segment as OSM `HH:MM-HH:MM`, or None if it has none."""
    out = []
    pos = 0
    while True:
        a = _TIME.search(segment, pos)
        if a is None:
            break
        rest = segment[a.end() :]
        dash = re.match(r"\s*-\s*", rest)
        if dash is None:
            pos = a.end()
            if a.end() == a.start():
                pos += 1
            continue
        b = _TIME.match(segment, a.end() + dash.end())
        if b is None:
            pos = a.end()
            continue
        start, end = _parse_time(a), _parse_time(b)
        if start is None or end is None:
            return None
        # "早8点-晚10点": a bare end hour before its start is on the afternoon clock
        if end <= start and b.group("part") is None and end[0] < 12 and end[0] + 12 > start[0]:
            end = (end[0] + 12, end[1])
        if end == (0, 0):
            end = (24, 0)
        out.append(f"{start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}")
        pos = b.end()
    return out or None


def _day_index(token: str) -> int | None:
    token = token.strip()
    if token.lower() in _EN_DAY:
        return _EN_DAY[token.lower()]
    token = re.sub(rf"^{_WEEK_WORD}", "", token)
    return _ZH_DAY.get(token)


def _day_list(text: str) -> str | None:
    """OSM weekdays of a matched day expression ("Mo-Fr", "Sa,Su", "Mo,We,Fr")."""
    items = re.findall(
        rf"([-、,，和及]?)\s*{_WEEK_WORD}?([{_ZH_DAY_CHARS}]|{'|'.join(_DAYS)})",
        text,
        flags=re.IGNORECASE,
    )
    out: list[str] = []
    for sep, token in items:
        idx = _day_index(token)
        if idx is None:
            return None
        if sep == "-" and out:
            out[-1] = f"{out[-1]}-{_DAYS[idx]}"
        else:
            out.append(_DAYS[idx])
    return ",".join(out) or None


def _days(segment: str) -> tuple[str | None, str]:
    """The weekday selector of a segment (OSM) and the segment without it."""
    words = [
        ("工作日", "Mo-Fr"),
        ("周一至周五", "Mo-Fr"),
        ("周末", "Sa,Su"),
        ("双休日", "Sa,Su"),
        ("法定节假日", "PH"),
        ("节假日", "PH"),
        ("每天", ""),
        ("每日", ""),
        ("天天", ""),
        ("全年", ""),
        ("全周", ""),
    ]
    selector: list[str] = []
    for word, osm in words:
        if word in segment:
            segment = segment.replace(word, " ")
            if osm:
                selector.append(osm)
    for m in list(_ZH_DAYS_RE.finditer(segment)) + list(_EN_DAYS_RE.finditer(segment)):
        parts = _day_list(m.group(0))
        if parts:
            selector.append(parts)
            segment = segment.replace(m.group(0), " ", 1)
    return (",".join(selector) or None), segment


def _closed(segment: str) -> bool:
    return any(w in segment for w in ("休息", "关闭", "不开放", "闭馆", "停业", "off", "closed"))


def _always(segment: str) -> bool:
    s = segment.replace(" ", "")
    return any(w in s for w in ("24小时", "全天", "24h", "24/7", "全天候"))


def _rule(segment: str) -> str | None:
    segment = segment.strip(" ,，;")
    if not segment:
        return None
    if _always(segment) and not re.search(r"\d{1,2}\s*(?:点|时|:)", segment.replace("24", "")):
        days, _ = _days(segment)
        return f"{days} 00:00-24:00" if days else "24/7"
    days, rest = _days(segment)
    times = _times(rest)
    if times is None:
        if days and _closed(rest):
            return f"{days} off"
        return None
    return f"{days} {','.join(times)}" if days else ",".join(times)


def suggest(text: str) -> str | None:
    """A valid `opening_hours` string that `text` probably means, or None. A string that is
    valid already is returned normalised."""
    if not text or not text.strip() or len(text) > 500:
        return None
    try:
        return validate(text)
    except HoursError:
        pass
    s = _normalise(text)
    rules = [r for r in (_rule(seg) for seg in re.split(r";", s)) if r]
    # "8:00-12:00, 14:00-18:00" written as two comma-separated rules of times only
    if not rules:
        return None
    merged: list[str] = []
    for r in rules:
        if merged and re.fullmatch(r"[\d:,-]+", r) and re.fullmatch(r"[\d:,-]+", merged[-1]):
            merged[-1] += "," + r
        else:
            merged.append(r)
    candidate = "; ".join(merged)
    try:
        return validate(candidate)
    except HoursError:
        return None


def explain(text: str) -> list[tuple[str, str]]:
    """Plain-word reasons (zh, en) why `text` is not valid opening hours (empty if it is)."""
    try:
        validate(text)
        return []
    except HoursError:
        pass
    out: list[tuple[str, str]] = []
    s = unicodedata.normalize("NFKC", text)
    if re.search(r"[\u4e00-\u9fff]", s):
        out.append(
            (
                "请不要用中文写时间或星期：时间写成 24 小时制「08:00-22:00」，星期用英文缩写 "
                "Mo Tu We Th Fr Sa Su（例如「Mo-Fr 09:00-17:00」）。",
                "Write times and weekdays without Chinese: times as 24-hour “08:00-22:00”, "
                "weekdays as Mo Tu We Th Fr Sa Su (e.g. “Mo-Fr 09:00-17:00”).",
            )
        )
    if re.search(r"(?<![\d:])\d{1,2}\s*-\s*\d{1,2}(?![\d:])", s):
        out.append(
            (
                "每个时间都要写出分钟：「8-22」要写成「08:00-22:00」。",
                "Every time needs its minutes: “8-22” is written “08:00-22:00”.",
            )
        )
    for h, m in re.findall(r"(\d{1,2}):(\d{2})", s):
        if int(h) > 24 or int(m) > 59:
            out.append(
                (
                    f"「{h}:{m}」不是有效的时间：小时为 00–24，分钟为 00–59。",
                    f"“{h}:{m}” is not a time: hours run 00–24, minutes 00–59.",
                )
            )
            break
    if re.search(r"(?i)(?:\d|\b)\s*[ap]\.?m\.?\b", s):
        out.append(
            (
                "请用 24 小时制，不要写 am/pm：下午 5 点写成「17:00」。",
                "Use the 24-hour clock, not am/pm: 5 pm is “17:00”.",
            )
        )
    if "；" in text or "，" in text:
        out.append(
            (
                "请用英文标点：不同的日子之间用英文分号「;」，同一天的几段时间之间用英文逗号「,」。",
                "Use ASCII punctuation: “;” between rules for different days, “,” between "
                "time ranges of the same day.",
            )
        )
    if not out:
        out.append(
            (
                "无法识别这种写法。格式是「星期 时间段」，"
                "例如「Mo-Fr 09:00-17:00; Sa 10:00-16:00」；"
                "每天相同可只写时间「08:00-22:00」；全天开放写「24/7」。",
                "This form is not recognised. Write “weekdays time-range”, e.g. "
                "“Mo-Fr 09:00-17:00; Sa 10:00-16:00”; the same every day is just "
                "“08:00-22:00”; always open is “24/7”.",
            )
        )
    return out


def advise(text: str) -> Advice:
    """What to show under an opening-hours field for `text` (blank means no hours)."""
    if not text.strip():
        return Advice(True, None, None, ())
    try:
        return Advice(True, validate(text), None, ())
    except HoursError:
        return Advice(False, None, suggest(text), tuple(explain(text)))


@dataclass(frozen=True, slots=True)
class PreviewDay:
    """One local day of a preview: its date, kind (holiday, make-up working day) and the
    open spans as local "HH:MM-HH:MM" (24:00 for a span running to midnight)."""

    day: date
    kind: DayKind
    spans: tuple[str, ...]
    #: Temporarily closed for the whole day (no spans because of the closure).
    closed_by_status: bool = False


def _span(lo: datetime, hi: datetime, midnight: datetime) -> str:
    end = "24:00" if hi >= midnight + timedelta(days=1) else f"{hi:%H:%M}"
    return f"{lo:%H:%M}-{end}"


def week(
    hours: str | None,
    status: str,
    now: datetime,
    tz: str = DEFAULT_TZ,
    calendar: HolidayCalendar | None = None,
    closed_until: datetime | None = None,
    days: int = 7,
) -> list[PreviewDay] | None:
    """The open spans of the next `days` local days from `now`'s day, as couriers are told
    them: a station not open (planned, closed, duplicate, or temporarily closed without an
    end) is closed every day; a temporary closure with `closed_until` is closed until that
    instant and follows its hours after. None when the hours are unknown (blank) while the
    status would let them apply. Raises HoursError for an invalid string."""
    tzinfo = zone(tz)
    cal = calendar or default_calendar()
    today = now.astimezone(tzinfo).date()
    temporarily = status == "temporarily_closed"
    follows_hours = status == "open" or (temporarily and closed_until is not None)
    if follows_hours and not (hours or "").strip():
        return None
    out: list[PreviewDay] = []
    for i in range(days):
        d = today + timedelta(days=i)
        midnight = datetime(d.year, d.month, d.day, tzinfo=tzinfo)
        nxt = midnight + timedelta(days=1)
        spans: list[str] = []
        closed_by_status = not follows_hours
        if follows_hours and hours:
            for lo, hi in open_intervals(hours, midnight, nxt, tzinfo, cal):
                lo, hi = lo.astimezone(tzinfo), hi.astimezone(tzinfo)
                if temporarily and closed_until is not None:
                    lo = max(lo, closed_until.astimezone(tzinfo))
                if lo < hi:
                    spans.append(_span(lo, hi, midnight))
            if temporarily and closed_until is not None and closed_until >= nxt:
                closed_by_status = True
        out.append(PreviewDay(d, cal.day_kind(d), tuple(spans), closed_by_status))
    return out
