"""Coverage at night: named moments ("工作日 22:00", "春节 初一 10:00") resolved by the holiday
calendar, and the day vs night comparison per district (API, planner page, CSV) on a town
whose answers are worked out by hand.

The town is test_coverage_api's: two parallel streets 400 m apart (north y=400, south y=0),
each 1,500 m long, joined by a 400 m bridge at x=1500; walking 5 km/h, 15 minutes is 1,250 m;
street metres are the demand, 3,400 m in all. Two stations at x=0:

* A on the north street, open 24/7: covers the north street x 0..1,250 (1,250 m);
* B on the south street, open 08:00-18:00: covers the south street x 0..1,250 (1,250 m) —
  the other station is ≥ 1,500 + 400 m away by road, so neither reaches the other's street.

At 12:00 both count: 2,500 m of 3,400 covered (73.5 %). At 22:00 only A: 1,250 m (36.8 %),
1,250 m lost at night. District 西区 holds x < 750 (1,500 m: all covered by day, 750 m at
night, both stations), 东区 x ≥ 750 (1,900 m: 1,000 m by day, 500 m at night, no station).
Cells are H3 resolution 10 (~130 m across): totals within 150 m of street.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import text

from app.coverage import daynight
from app.hours import moments
from app.hours.calendar import HolidayCalendar
from tests.conftest import AUTH
from tests.factories import feature
from tests.hostile import read_csv
from tests.test_network_api import LAT, east, line, load, north

URL = "/api/v1/coverage"
RES = {"resolution": 10}
TOL_M = 150.0
TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
#: A working Wednesday, local time.
DAY = "2026-12-02T12:00+08:00"
NIGHT = "2026-12-02T22:00+08:00"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)  # type: ignore[misc]


# -- named moments (pure) ------------------------------------------------------------------


def test_spring_festival_day_one_comes_from_the_holiday_data():
    # 正月初一: 2026-02-17, 2027-02-06, 2028-01-26 (published lunar calendar)
    assert moments.spring_festival(2026) == date(2026, 2, 17)
    assert moments.spring_festival(2027) == date(2027, 2, 6)
    assert moments.spring_festival(2028) == date(2028, 1, 26)
    cal = HolidayCalendar()
    got = moments.resolve("spring-1-10", local(2026, 12, 2, 6, 30), TZ, cal)
    assert got.at == local(2027, 2, 6, 10, 0)
    # the same day before 10:00 is still ahead; after it, next year's
    assert moments.resolve("spring-1-10", local(2027, 2, 6, 9, 59), TZ, cal).at == got.at
    later = moments.resolve("spring-1-10", local(2027, 2, 6, 10, 1), TZ, cal)
    assert later.at == local(2028, 1, 26, 10, 0)
    assert got.label("zh") == "春节 初一 10:00 · 2027-02-06（周六）10:00"
    assert got.label("en") == "Spring Festival day 1, 10:00 · Sat 2027-02-06 10:00"


def test_weekday_and_weekend_follow_the_2026_spring_festival_arrangement():
    """The State Council's 2026 arrangement: 2月15日至23日放假调休，共9天; Saturdays 14 and 28
    February are working days (调休)."""
    cal = HolidayCalendar()
    # Saturday 14 Feb (a make-up working day) at night: the next working *weekday* is
    # Tuesday 24 Feb — Mon 16 to Mon 23 are the break
    sat = local(2026, 2, 14, 23, 0)
    assert moments.resolve("weekday-12", sat, TZ, cal).at == local(2026, 2, 24, 12, 0)
    # the next ordinary weekend day after Friday 13 Feb: not Sat 14 (working), not 15, 21, 22
    # (the break), not Sat 28 (working): Sunday 1 March
    fri = local(2026, 2, 13, 12, 0)
    assert moments.resolve("weekend-03", fri, TZ, cal).at == local(2026, 3, 1, 3, 0)


def test_weekday_today_while_ahead_then_tomorrow_and_planner_holidays():
    cal = HolidayCalendar()
    wed = local(2026, 12, 2, 21, 59)
    assert moments.resolve("weekday-22", wed, TZ, cal).at == local(2026, 12, 2, 22, 0)
    assert moments.resolve("weekday-22", wed + timedelta(minutes=2), TZ, cal).at == local(
        2026, 12, 3, 22, 0
    )
    # a Friday evening: the next weekday noon is Monday's
    fri = local(2026, 12, 4, 13, 0)
    assert moments.resolve("weekday-12", fri, TZ, cal).at == local(2026, 12, 7, 12, 0)
    # a planner's extra holiday on Thursday moves "weekday 22:00" to Friday
    extra = HolidayCalendar(extra_holidays=[date(2026, 12, 3)])
    thu = local(2026, 12, 2, 23, 0)
    assert moments.resolve("weekday-22", thu, TZ, extra).at == local(2026, 12, 4, 22, 0)
    # "now" is the current minute, in the deployment's zone
    now = moments.resolve("now", datetime(2026, 12, 1, 22, 30, 15, tzinfo=UTC), TZ, cal)
    assert now.at == local(2026, 12, 2, 6, 30)


def test_date_times_and_bad_values():
    cal = HolidayCalendar()
    now = local(2026, 12, 1, 0, 0)
    # a datetime-local value is the deployment's local time; an offset is kept
    assert moments.resolve("2026-12-02T22:00", now, TZ, cal).at == local(2026, 12, 2, 22, 0)
    utc = moments.resolve("2026-12-02T14:00Z", now, TZ, cal).at
    assert utc == datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert utc.utcoffset() == timedelta(hours=8)  # shown in local time
    for bad in ("tomorrow", "2026-13-01T00:00", "1999-01-01T00:00", "", "weekday-23"):
        with pytest.raises(moments.MomentError, match=r"^at: "):
            moments.resolve(bad, now, TZ, cal)
        with pytest.raises(moments.MomentError):
            moments.check(bad, TZ)
    assert moments.check(" weekday-22 ", TZ) == "weekday-22"


def test_compare_arrays_by_hand():
    # 4 cells: weights 1, 2, 3, 4; groups 0, 0, 1, -1; target 10 min
    w = [1.0, 2.0, 3.0, 4.0]
    rows = daynight.compare_arrays(
        np.array(w),
        np.array([0, 0, 1, -1]),
        2,
        np.array([5.0, 5.0, 20.0, 1.0]),  # day: cells 0, 1, 3 covered
        np.array([5.0, np.inf, 3.0, 1.0]),  # night: 0, 2, 3 (1 lost, 2 gained)
        10.0,
        np.array([0, 0, 1]),
        np.array([0, 1]),
    )
    g0, g1, everything = rows
    assert g0["demand"] == 3 and g0["day_share"] == 1.0 and g0["night_share"] == round(1 / 3, 4)
    assert g0["lost_at_night"] == 2 and g0["gained_at_night"] == 0
    assert (g0["day_stations"], g0["night_stations"]) == (2, 1)
    assert g0["change_pp"] == round(100 * (1 / 3 - 1), 2)
    assert g1["day_share"] == 0 and g1["night_share"] == 1 and g1["gained_at_night"] == 3
    assert (g1["day_stations"], g1["night_stations"]) == (1, 1)
    assert everything["demand"] == 10 and everything["day_covered_demand"] == 7
    assert everything["night_covered_demand"] == 8 and everything["day_stations"] == 3


# -- the town through the API, the page and the CSV ----------------------------------------


@pytest.fixture
def town(conn, client, tmp_path):
    s = [(east(x), LAT) for x in range(0, 1501, 250)]
    n = [(east(x), north(400)) for x in range(0, 1501, 250)]
    feats = [line([s[i], s[i + 1]]) for i in range(len(s) - 1)]
    feats += [line([n[i], n[i + 1]]) for i in range(len(n) - 1)]
    feats.append(line([s[-1], (east(1500), north(200)), n[-1]]))
    load(conn, tmp_path, feats)
    for code, name, name_en, w, e in (
        ("420198", "西区", "West", -100, 750),
        ("420199", "东区", "East", 750, 1600),
    ):
        conn.execute(
            text(
                "INSERT INTO districts (code, name, name_en, geom, source) VALUES (:c, :n, :ne, "
                "ST_Multi(ST_MakeEnvelope(:w, :s, :e, :nn, 4326)), 'test')"
            ),
            {"c": code, "n": name, "ne": name_en, "w": east(w), "e": east(e)}
            | {"s": north(-100), "nn": north(500)},
        )
    ids = {}
    for ext, y, hours in (("A", 400, "24/7"), ("B", 0, "08:00-18:00")):
        r = client.post(
            "/api/v1/stations",
            json=feature(ext, lon=east(0), lat=north(y), opening_hours=hours),
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        ids[ext] = r.json()["id"]
    return ids


def _row(body, code):
    return next(r for r in body["districts"] if r["code"] == code)


def test_compare_day_and_night_by_hand(client, town):
    r = client.get(URL + "/compare", params={**RES, "at": [DAY, NIGHT]})
    assert r.status_code == 200, r.text
    body = r.json()
    o = body["overall"]
    assert o["demand"] == pytest.approx(3400, abs=5)
    assert (o["day_stations"], o["night_stations"]) == (2, 1)
    assert o["day_covered_demand"] == pytest.approx(2500, abs=2 * TOL_M)
    assert o["night_covered_demand"] == pytest.approx(1250, abs=TOL_M)
    assert o["lost_at_night"] == pytest.approx(1250, abs=TOL_M)
    assert o["gained_at_night"] == 0
    assert o["day_share"] == pytest.approx(2500 / 3400, abs=2 * TOL_M / 3400)
    assert o["night_share"] == pytest.approx(1250 / 3400, abs=TOL_M / 3400)
    # the shares recompute from the covered demand (the rows are consistent)
    assert o["night_share"] == pytest.approx(o["night_covered_demand"] / o["demand"], abs=1e-4)
    assert o["change_pp"] == pytest.approx(100 * (o["night_share"] - o["day_share"]), abs=0.01)
    west, east_ = _row(body, "420198"), _row(body, "420199")
    assert west["demand"] == pytest.approx(1500, abs=TOL_M)
    assert west["day_share"] == pytest.approx(1.0, abs=0.02)
    assert west["night_share"] == pytest.approx(0.5, abs=TOL_M / 1500)
    assert west["lost_at_night"] == pytest.approx(750, abs=TOL_M)
    assert (west["day_stations"], west["night_stations"]) == (2, 1)
    assert east_["demand"] == pytest.approx(1900, abs=TOL_M)
    assert east_["day_covered_demand"] == pytest.approx(1000, abs=2 * TOL_M)
    assert east_["night_covered_demand"] == pytest.approx(500, abs=TOL_M)
    assert (east_["day_stations"], east_["night_stations"]) == (0, 0)
    # the instants as asked, and B left out at night for its hours
    assert body["day"]["at"] == "2026-12-02T12:00:00+08:00" and body["day"]["asked"] == DAY
    assert body["night"]["stations_open"] == 1
    assert {"id": town["B"], "reason": "closed_at_open_at"} in body["night"]["stations_excluded"]
    assert body["day"]["stations_excluded"] == []
    # night gaps beside day gaps: by day the north street's end, the bridge and the south
    # street's end are one gap (250 + 400 + 250 m); at night the whole south street joins it
    assert body["day"]["uncovered_demand"] == pytest.approx(900, abs=2 * TOL_M)
    assert body["night"]["uncovered_demand"] == pytest.approx(2150, abs=TOL_M)
    # … listed as the pieces a planner acts on: one connected gap, cut at the district line
    # x = 750 m into the south street's west part (750 m) and the rest (750 + 400 + 250 m)
    pieces = body["night"]["gaps"]
    assert [p["districts"] for p in pieces] == [["420199"], ["420198"]]
    assert [p["gap"] for p in pieces] == [1, 1]
    assert pieces[0]["uncovered_demand"] == pytest.approx(1400, abs=TOL_M)
    assert pieces[1]["uncovered_demand"] == pytest.approx(750, abs=TOL_M)
    # both runs are the engine's ordinary runs: a summary at the night instant is the same run
    night = client.get(URL + "/summary", params={**RES, "open_at": NIGHT}).json()
    assert night["run"] == body["night"]["run"] != body["day"]["run"]
    assert night["overall"]["stations"] == 1
    # one district
    one = client.get(URL + "/compare", params={**RES, "at": [DAY, NIGHT], "district": "420198"})
    assert [r["code"] for r in one.json()["districts"]] == ["420198"]


def test_compare_defaults_to_weekday_noon_and_ten_pm(client, town):
    body = client.get(URL + "/compare", params=RES).json()
    assert (body["day"]["asked"], body["night"]["asked"]) == ("weekday-12", "weekday-22")
    day = datetime.fromisoformat(body["day"]["at"])
    night = datetime.fromisoformat(body["night"]["at"])
    assert day.astimezone(SH).hour == 12 and night.astimezone(SH).hour == 22
    assert day.astimezone(SH).weekday() < 5 and night.astimezone(SH).weekday() < 5
    assert body["day"]["label"]["zh"].startswith("工作日 12:00 · ")
    # whichever working weekday it is, B keeps 08:00-18:00: the same numbers as by hand
    o = body["overall"]
    assert (o["day_stations"], o["night_stations"]) == (2, 1)
    assert o["lost_at_night"] == pytest.approx(1250, abs=TOL_M)


@pytest.mark.parametrize(
    ("params", "field", "status"),
    [
        ({"at": ["tomorrow", NIGHT]}, "at", 422),
        ({"at": [DAY]}, "at", 422),
        ({"at": [DAY, NIGHT, DAY]}, "at", 422),
        ({"at": ["x" * 41, NIGHT]}, "at", 422),
        ({"open_at": DAY}, "open_at", 422),
        ({"at": [DAY, NIGHT], "district": "420100"}, "district", 404),
    ],
)
def test_compare_bad_input_names_the_field(client, town, params, field, status):
    r = client.get(URL + "/compare", params={**RES, **params})
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


PAGE = {"minutes": "15", "resolution": "10"}


def _cell(html: str, code: str, key: str) -> float:
    """A number of the comparison table (the section after the district table)."""
    section = html[html.index('id="daynight"') :]
    row = re.search(rf'<tr data-code="{code}"[^>]*>(.*?)</tr>', section, re.S)
    assert row, code
    found = re.search(rf'data-k="{key}" data-v="([^"]*)"', row.group(1))
    assert found, (code, key)
    return float(found.group(1))


def test_planner_page_at_night_and_the_comparison(client, town):
    # the map and table at a chosen time: only A is open at 22:00
    r = client.get("/planner", params={**PAGE, "at_custom": "2026-12-02T22:00"})
    assert r.status_code == 200, r.text
    assert "2026-12-02（周三）22:00" in r.text and "1 个开放驿站" in r.text
    assert 'name="at_custom" value="2026-12-02T22:00"' in r.text
    assert "此时不开放或暂停服务的 1 个不计" in r.text
    # an instant with an offset (22:00 in Shanghai) stays an option, not the local input
    utc = client.get("/planner", params={**PAGE, "at": "2026-12-02T14:00Z"})
    assert utc.status_code == 200 and "1 个开放驿站" in utc.text
    assert '<option value="2026-12-02T14:00Z" selected>' in utc.text
    assert 'name="at_custom" value=""' in utc.text
    day = client.get("/planner", params={**PAGE, "at": "2026-12-02T12:00"})
    assert "2 个开放驿站" in day.text
    # the comparison section: per district, the numbers of the API
    q = {**PAGE, "compare": "1", "day": "2026-12-02T12:00", "night": "2026-12-02T22:00"}
    page = client.get("/planner", params=q)
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="daynight"' in html
    api = client.get(URL + "/compare", params={**RES, "at": [DAY, NIGHT]}).json()
    for code in ("420198", "420199"):
        row = _row(api, code)
        for key in ("day_stations", "night_stations", "day_share", "night_share"):
            assert _cell(html, code, key) == pytest.approx(row[key]), (code, key)
    assert _cell(html, "all", "lost_at_night") == pytest.approx(1250, abs=TOL_M)
    assert "夜间的缺口" in html and "其中白天有驿站覆盖" in html
    assert "昼夜对比：2026-12-02（周三）12:00 与 2026-12-02（周三）22:00" in html
    # English
    en = client.get("/planner", params={**q, "lang": "en"})
    assert "Day vs night" in en.text and "Gap pieces at night" in en.text
    # the CSV: one writer, one row per district and the whole city
    csv_r = client.get("/planner/daynight.csv", params=q)
    assert csv_r.status_code == 200, csv_r.text
    assert "-2026-12-02T1200-vs-2026-12-02T2200.csv" in csv_r.headers["content-disposition"]
    # a download at one time says which
    at = client.get("/planner/districts.csv", params={**PAGE, "at": "weekday-22"})
    assert "-at-weekday-22.csv" in at.headers["content-disposition"]
    assert csv_r.headers["content-type"].startswith("text/csv")
    rows = read_csv(csv_r.text)
    assert rows[0] == [*daynight.COLUMNS, "day_at", "night_at"]
    by_code = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert set(by_code) == {"420198", "420199", ""}
    assert float(by_code[""]["lost_at_night"]) == pytest.approx(1250, abs=TOL_M)
    assert float(by_code["420198"]["night_share"]) == _row(api, "420198")["night_share"]
    assert by_code[""]["night_at"] == "2026-12-02T22:00:00+08:00"
    one = read_csv(client.get("/planner/daynight.csv", params={**q, "district": "420199"}).text)
    assert [r[0] for r in one[1:]] == ["420199", ""]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"at": "tomorrow"}, "at:"),
        ({"at_custom": "2026-02-30T10:00"}, "at:"),
        ({"compare": "1", "night": "midnight"}, "night:"),
    ],
)
def test_planner_bad_time_is_the_error_line_not_a_500(client, town, params, field):
    r = client.get("/planner", params={**PAGE, **params})
    assert r.status_code == 422
    assert f'<p class="error">{field}' in r.text
    csv_r = client.get("/planner/daynight.csv", params={**PAGE, **params})
    assert csv_r.status_code == 422
