"""Opening hours in the database: the SQL-filterable form and its refresh.

Every station stores `open_intervals`, a `tstzmultirange` of when it is open inside one shared
window (`hours_window`: from the start of yesterday to 36 days ahead, local time). SQL filters
"open at T" with `open_intervals @> T` while walking the KNN index, without fetching stations
into Python; only the few stations returned are then evaluated exactly (open_now and the next
change). The intervals are computed on every write and for all stations by `refresh`, which
runs at start-up when the window is stale, daily in the app, and via `yizhan hours refresh`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from app.errors import InvalidInputError
from app.hours import evaluate, moments
from app.hours.calendar import HolidayCalendar

#: The window covers [local midnight yesterday, that + WINDOW_DAYS).
WINDOW_DAYS = 37
#: Refresh when less than this much of the window lies ahead.
MIN_AHEAD = timedelta(days=30)


def window_for(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """The window of intervals for a refresh at `now` (aware), in UTC."""
    local = now.astimezone(ZoneInfo(tz))
    start_day = local.date() - timedelta(days=1)
    start = datetime.combine(start_day, time(0), tzinfo=ZoneInfo(tz))
    end = datetime.combine(start_day + timedelta(days=WINDOW_DAYS), time(0), tzinfo=ZoneInfo(tz))
    return start.astimezone(UTC), end.astimezone(UTC)


def current_window(conn: Connection) -> tuple[datetime, datetime] | None:
    """The window the stored intervals cover, or None before the first refresh."""
    row = conn.execute(
        text("SELECT lower(covers), upper(covers) FROM hours_window WHERE id = 1")
    ).first()
    return (row[0], row[1]) if row else None


_calendar_cache: dict[tuple[tuple[date, str], ...], HolidayCalendar] = {}
_calendar_lock = threading.Lock()


def calendar(conn: Connection) -> HolidayCalendar:
    """The holiday calendar: the `holidays` package plus the planners' `calendar_days`."""
    rows = conn.execute(text("SELECT day, kind FROM calendar_days ORDER BY day")).all()
    return _calendar_for(tuple((d, k) for d, k in rows))


def snapshot(conn: Connection) -> tuple[tuple[datetime, datetime] | None, HolidayCalendar]:
    """The hours window and the calendar in one round trip (read on every request)."""
    row = conn.execute(
        text(
            "SELECT (SELECT lower(covers) FROM hours_window WHERE id = 1), "
            "(SELECT upper(covers) FROM hours_window WHERE id = 1), "
            "(SELECT array_agg(day ORDER BY day) FROM calendar_days WHERE kind = 'holiday'), "
            "(SELECT array_agg(day ORDER BY day) FROM calendar_days WHERE kind = 'workday')"
        )
    ).one()
    window = (row[0], row[1]) if row[0] is not None else None
    days = tuple((d, "holiday") for d in row[2] or ()) + tuple((d, "workday") for d in row[3] or ())
    return window, _calendar_for(tuple(sorted(days)))


def _calendar_for(rows: tuple[tuple[date, str], ...]) -> HolidayCalendar:
    """One calendar object per distinct set of planner rows, kept for the process: it caches
    the package's years (~180 ms each to load) and day kinds."""
    cached = _calendar_cache.get(rows)
    if cached is not None:
        return cached
    with _calendar_lock:
        if len(_calendar_cache) > 16:
            _calendar_cache.clear()
        cal = HolidayCalendar(
            extra_holidays=[d for d, k in rows if k == "holiday"],
            extra_workdays=[d for d, k in rows if k == "workday"],
        )
        _calendar_cache[rows] = cal
        return cal


def multirange_literal(intervals: list[tuple[datetime, datetime]]) -> str:
    """A tstzmultirange literal of half-open UTC intervals."""
    parts = [f"[{a.isoformat()},{b.isoformat()})" for a, b in intervals]
    return "{" + ",".join(parts) + "}"


def intervals_literal(
    opening_hours: str | None,
    window: tuple[datetime, datetime] | None,
    tz: str,
    cal: HolidayCalendar,
) -> str | None:
    """The stored form for one station: None when hours are unknown or no window exists yet."""
    if opening_hours is None or window is None:
        return None
    try:
        found = evaluate.open_intervals(opening_hours, window[0], window[1], tz, cal)
    except evaluate.HoursError:
        return None  # a string that no longer validates: hours unknown, never "open"
    return multirange_literal(found)


def refresh(
    conn: Connection,
    tz: str,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every station's intervals for a new window, in the caller's transaction.

    Work is per distinct opening_hours string (one evaluation and one UPDATE each): real data
    repeats a few hundred strings across thousands of stations."""
    now = now or datetime.now(UTC)
    window = window_for(now, tz)
    cal = calendar(conn)
    conn.execute(
        text(
            "INSERT INTO hours_window (id, covers, time_zone, refreshed_at) "
            "VALUES (1, tstzrange(:a, :b), :tz, now()) "
            "ON CONFLICT (id) DO UPDATE SET covers = EXCLUDED.covers, "
            "time_zone = EXCLUDED.time_zone, refreshed_at = now()"
        ),
        {"a": window[0], "b": window[1], "tz": tz},
    )
    groups = conn.execute(
        text("SELECT opening_hours, count(*) FROM stations GROUP BY opening_hours")
    ).all()
    done = 0
    for hours, n in groups:
        literal = intervals_literal(hours, window, tz, cal)
        conn.execute(
            text(
                "UPDATE stations SET open_intervals = CAST(:iv AS tstzmultirange) "
                "WHERE opening_hours IS NOT DISTINCT FROM :oh"
            ),
            {"iv": literal, "oh": hours},
        )
        done += int(n)
        if progress:
            progress(int(n))
    return done


def needs_refresh(conn: Connection, tz: str, now: datetime | None = None) -> bool:
    """True before the first refresh, when the time zone changed, or the window runs out."""
    now = now or datetime.now(UTC)
    row = conn.execute(
        text("SELECT upper(covers), time_zone FROM hours_window WHERE id = 1")
    ).first()
    return row is None or row[1] != tz or row[0] - now < MIN_AHEAD


def refresh_if_stale(engine: Engine, tz: str) -> int | None:
    """Refresh in one transaction when needed; returns how many stations were recomputed."""
    with engine.begin() as conn:
        # one refresher at a time across processes
        conn.execute(text("SELECT pg_advisory_xact_lock(7201001)"))
        if not needs_refresh(conn, tz):
            return None
        return refresh(conn, tz)


def parse_instant(raw: str) -> datetime:
    """An ISO 8601 instant with a UTC offset; a naive one is refused (whose clock would it be?)."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(
            f"open_at: {raw!r} is not an ISO 8601 date-time", field="open_at"
        ) from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            "open_at: add a UTC offset, e.g. 2026-11-22T23:40+08:00 (a time without one is "
            "ambiguous between the server's, the phone's and the station's clock)",
            field="open_at",
        )
    return value


def requested_instant(
    conn: Connection, open_now: bool, open_at: str | None, filtering: bool = True
) -> datetime:
    """The instant hours are evaluated at. When it also filters (`filtering`), it must lie in
    the stored window; exact evaluation of single stations has no such limit."""
    if open_now and open_at is not None:
        raise InvalidInputError("open_at: use either open_now or open_at, not both", "open_at")
    when = datetime.now(UTC) if open_at is None else parse_instant(open_at)
    if filtering and (open_now or open_at is not None):
        window = current_window(conn)
        if window is None or not window[0] <= when < window[1]:
            span = (
                f"between {window[0].isoformat()} and {window[1].isoformat()}"
                if window
                else "after the first `yizhan hours refresh`"
            )
            raise InvalidInputError(
                f"open_at: opening hours can be filtered {span}", field="open_at"
            )
    return when


def moments_at(
    conn: Connection, raws: list[str], tz: str, now: datetime | None = None
) -> list[moments.Moment]:
    """Named moments ("weekday-22", "spring-1-10", "2026-12-02T22:00" …) as instants in `tz`,
    by the planners' calendar (InvalidInputError naming `at`)."""
    cal = calendar(conn)
    when = now or moments.utc_now()
    try:
        return [moments.resolve(raw, when, tz, cal) for raw in raws]
    except moments.MomentError as exc:
        raise InvalidInputError(str(exc), field="at") from exc
