"""Edges a planner or a courier would notice, pinned where a one-character change of a
comparison would move them (issue 15).

Coverage (docs/planner.md, app/coverage/derive.py): "covered within T" is minutes ≤ T, so a cell
exactly 15.0 minutes away is within 15 and not in a gap; an over-dense cell is reached by
≥ N stations, so exactly N is over-dense; multiplicity counts stations reached within the target,
a station exactly at the target included; a gap is listed when its uncovered demand is at least
`min_demand`. Every expected number below is worked out by hand.

Opening hours (app/hours/evaluate.py `next_change`): a station open for weeks on end, whose
next change is a public holiday more than one search window ahead, must be told as closing at
the holiday — never as closing at the edge of a search window.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pytest

from app.coverage import derive
from app.coverage.analysis import Points, Reach, build_model
from app.coverage.grid import CellSnaps
from app.hours import describe, evaluate, is_open, next_change, station_state
from app.hours.calendar import HolidayCalendar
from app.network.graph import build_graph
from app.network.travel import Mode
from tests.test_coverage_core import _model, path_network

SH = ZoneInfo("Asia/Shanghai")
ONE_SECOND_MIN = 1 / 60


def _reach(
    triplets: list[tuple[int, int, float]], n_points: int, n_cells: int, cutoff_s: float = 900.0
) -> Reach:
    """(station, cell, seconds) triplets as a Reach."""
    p, c, s = (np.array(x) for x in zip(*triplets, strict=True))
    return Reach(p.astype(np.intp), c.astype(np.intp), s.astype(float), n_points, n_cells, cutoff_s)


def _line_of_cells(n: int) -> np.ndarray:
    """n H3 cells in a row, each sharing an edge with the next (sorted as the grid keeps them)."""
    a = h3.latlng_to_cell(30.58, 114.3, 9)
    b = h3.latlng_to_cell(30.60, 114.4, 9)
    path = h3.grid_path_cells(a, b)[:n]
    return np.asarray([h3.str_to_int(c) for c in path], dtype=np.int64)


# -- coverage bands --------------------------------------------------------------------------


def test_a_cell_exactly_15_minutes_away_is_within_15_and_not_a_gap():
    # cells at 5, 10, 15 minutes exactly and one second past 15; demand 1, 2, 4, 8
    m = _model([5.0, 10.0, 15.0, 15.0 + ONE_SECOND_MIN], [1, 2, 4, 8])
    s = derive.area_summary(m, np.ones(4, bool), np.ones(4), (5, 10, 15), 1)
    assert [w["demand"] for w in s["within"]] == [1, 3, 7]
    assert [w["area_km2"] for w in s["within"]] == [1, 2, 3]
    assert s["uncovered_demand"] == 8
    assert m.covered().tolist() == [True, True, True, False]
    # the four cells in a row: only the last is a gap (the 15.0 one next to it is covered)
    cells = _line_of_cells(4)
    gaps = derive.find_gaps(m, cells, np.ones(4), np.asarray([None] * 4, dtype=object))
    assert [(g.cells.tolist(), g.demand) for g in gaps] == [([3], 8)]


def test_a_street_corner_exactly_1250_m_walk_away_is_within_15_minutes():
    # a 1,250 m street then 250 m more; walking 5 km/h: 1,250 m is exactly 900 s = 15 min
    g = build_graph(path_network([1250.0, 250.0]), Mode.WALK)
    station = Points(np.array([0]), np.array([0.0]), np.array([0.0]))  # at the west end
    # cells: at the corner (1,250 m), 125 m past it (1,375 m = 990 s)
    cells = CellSnaps(np.array([0, 1]), np.array([1.0, 0.5]), np.zeros(2))
    m = build_model(g, cells, np.ones(2), station, minutes_target=15, dense_minutes=5)
    assert m.minutes.tolist() == [15.0, 16.5]
    assert m.covered().tolist() == [True, False]
    assert m.multiplicity.tolist() == [1, 0]
    cov = derive.station_coverage(m)
    assert (cov[0].covered_demand, cov[0].cells) == (1, 1)


def test_multiplicity_counts_a_station_exactly_at_the_target():
    # cell 0: station 0 at 600 s and station 1 at exactly 900 s → 2, exclusive to neither;
    # cell 1: station 1 only, at exactly 900 s → 1, exclusive to station 1;
    # cell 2: station 0 at 901 s → beyond the target (the reach holds up to the cutoff only,
    # so 901 s is there as if the over-density radius were larger)
    reach = _reach([(0, 0, 600.0), (1, 0, 900.0), (1, 1, 900.0), (0, 2, 901.0)], 2, 3, 901.0)
    m = _model([10.0, 15.0, 15.0 + ONE_SECOND_MIN], [1, 2, 4], reach)
    assert m.multiplicity.tolist() == [2, 1, 0]
    cov = derive.station_coverage(m)
    assert [(c.covered_demand, c.exclusive_demand) for c in cov] == [(1, 0), (3, 2)]
    assert cov[0].loss_pct == 0  # closing station 0 leaves nobody uncovered: redundant


def test_over_dense_at_exactly_n_stations_within_exactly_5_minutes():
    # cell 0: three stations, the third at exactly 300 s → 3 stations within 5 min: over-dense
    # cell 1: two stations → not; cell 2: three, but the third at 301 s → 2: not
    reach = _reach(
        [
            *[(0, 0, 60.0), (1, 0, 120.0), (2, 0, 300.0)],
            *[(0, 1, 60.0), (1, 1, 60.0)],
            *[(0, 2, 60.0), (1, 2, 200.0), (2, 2, 301.0)],
        ],
        3,
        3,
    )
    m = _model([1.0, 1.0, 1.0], [1, 1, 1], reach)
    assert m.dense_count.tolist() == [3, 2, 2]
    s = derive.area_summary(m, np.ones(3, bool), np.ones(3), (15,), 3)
    assert s["overdense_cells"] == 1


def test_close_pair_exactly_pair_minutes_apart_both_ways():
    # stations 0 and 1 are exactly 180 s apart both ways: a pair at 3 min; 0 and 2 181 s one way
    sr = _reach([(0, 1, 180.0), (1, 0, 180.0), (0, 2, 100.0), (2, 0, 181.0)], 3, 3)
    assert derive.close_pairs(sr, 3) == [(0, 1, 3.0, 3.0)]


def test_a_gap_with_exactly_min_demand_is_listed():
    # two separate uncovered cells (far apart), demand 5 and 3; a covered one between
    cells = np.asarray(
        sorted(h3.str_to_int(h3.latlng_to_cell(lat, 114.3, 9)) for lat in (30.50, 30.58, 30.66)),
        dtype=np.int64,
    )
    m = _model([20.0, 1.0, 30.0], [5, 100, 3])
    none = np.asarray([None] * 3, dtype=object)

    def demands(min_demand: float) -> list[float]:
        gaps = derive.find_gaps(m, cells, np.ones(3), none, min_demand=min_demand)
        return [g.demand for g in gaps]

    assert demands(0) == [5, 3]
    assert demands(3) == [5, 3]  # exactly 3: listed
    assert demands(3.5) == [5]
    assert demands(5) == [5]  # exactly 5: listed
    assert demands(5.5) == []


# -- next change of a station open for weeks -------------------------------------------------

#: A holiday 15 days after AT (and one 100 days after, past the second search window).
AT = datetime(2026, 3, 10, 10, 0, tzinfo=SH)  # a Tuesday, no Chinese holiday near
HOLIDAY = date(2026, 3, 25)  # a Wednesday, 15 days later
FAR_HOLIDAY = date(2026, 6, 17)  # a Wednesday
ALWAYS_BUT_PH = ("Mo-Su 00:00-24:00; PH off", "00:00-24:00; PH off")

#: Search windows (days) to try besides the shipped ones: the answer must not depend on them.
WINDOWS = [evaluate._NEXT_CHANGE_WINDOWS, (1, 3, 400), (2, 5, 9, 120, 400)]


@pytest.fixture(params=WINDOWS, ids=lambda w: "windows=" + "-".join(map(str, w)))
def windows(request, monkeypatch):
    monkeypatch.setattr(evaluate, "_NEXT_CHANGE_WINDOWS", request.param)
    evaluate._open_intervals_cached.cache_clear()
    yield request.param
    evaluate._open_intervals_cached.cache_clear()


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=SH)


@pytest.mark.parametrize("hours", ALWAYS_BUT_PH)
def test_open_for_days_closes_at_the_holiday_not_at_the_search_edge(hours, windows):
    cal = HolidayCalendar(extra_holidays=[HOLIDAY], country=None)
    assert is_open(hours, AT, calendar=cal)
    assert next_change(hours, AT, calendar=cal) == _midnight(HOLIDAY)
    state = station_state(hours, "open", AT, calendar=cal)
    assert describe(state, AT)["next_change_label"] == {
        "zh": "3月25日 00:00 关门",
        "en": "closes 25 Mar 00:00",
    }
    # on the holiday it is closed and opens the next midnight
    on = _midnight(HOLIDAY) + timedelta(hours=12)
    assert next_change(hours, on, calendar=cal) == _midnight(HOLIDAY + timedelta(days=1))


@pytest.mark.parametrize("hours", ALWAYS_BUT_PH)
def test_open_for_months_closes_at_a_holiday_past_the_second_window(hours, windows):
    cal = HolidayCalendar(extra_holidays=[FAR_HOLIDAY], country=None)
    assert next_change(hours, AT, calendar=cal) == _midnight(FAR_HOLIDAY)


@pytest.mark.parametrize("hours", ALWAYS_BUT_PH)
def test_open_without_a_holiday_has_no_change_and_reads_open_24_7(hours, windows):
    cal = HolidayCalendar(country=None)
    assert next_change(hours, AT, calendar=cal) is None
    state = station_state(hours, "open", AT, calendar=cal)
    assert describe(state, AT)["next_change_label"] == {"zh": "24 小时开放", "en": "open 24/7"}


def test_24_7_ignores_holidays(windows):
    cal = HolidayCalendar(extra_holidays=[HOLIDAY], country=None)
    assert next_change("24/7", AT, calendar=cal) is None
    assert is_open("24/7", _midnight(HOLIDAY) + timedelta(hours=12), calendar=cal)


def test_closed_for_weeks_opens_on_the_holiday(windows):
    # open only on public holidays: closed through the first windows, opens 25 Mar 10:00
    cal = HolidayCalendar(extra_holidays=[HOLIDAY], country=None)
    hours = "PH 10:00-12:00"
    assert not is_open(hours, AT, calendar=cal)
    assert next_change(hours, AT, calendar=cal) == _midnight(HOLIDAY) + timedelta(hours=10)
