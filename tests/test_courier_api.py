"""Courier questions through the API: open now/at on a real Chinese calendar, coordinates as
Chinese phone maps give them, navigation links."""

from __future__ import annotations

import random
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import pytest
from geopy.distance import geodesic
from sqlalchemy import text

from app.geo import coords
from app.hours import is_open
from app.hours import store as hours_store
from tests.conftest import AUTH
from tests.factories import feature

URL = "/api/v1/stations"
TZ = "Asia/Shanghai"
HERE = {"lat": 30.58, "lon": 114.29}

HOURS = {
    "A": ("24/7", "open"),
    "B": ("Mo-Fr 09:00-17:00; PH off", "open"),
    "C": ("Mo-Su 22:00-06:00", "open"),
    "D": ("Su 20:00-24:00; Mo 00:00-08:00", "open"),
    "E": ("24/7", "temporarily_closed"),
    "F": ("Mo-Fr 08:00-18:00; Sa,Su off", "open"),
    "G": (None, "open"),
}


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


@pytest.fixture
def stations(client, conn):
    ids = {}
    for i, (key, (hours, status)) in enumerate(HOURS.items()):
        f = feature(key, lon=114.29 + i * 0.002, lat=30.58, status=status, opening_hours=hours)
        r = client.post(URL, json=f, headers=AUTH)
        assert r.status_code == 201, r.text
        ids[key] = r.json()["id"]
    return ids


def refresh_at(conn, when: str) -> None:
    hours_store.refresh(conn, TZ, now=at(when))


def open_keys(client, when: str, path: str = "/nearest") -> list[str]:
    params = {"open_at": when, "k": 50, **HERE} if path == "/nearest" else {"open_at": when}
    r = client.get(URL + path, params=params)
    assert r.status_code == 200, r.text
    return sorted(f["properties"]["external_id"] for f in r.json()["features"])


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # National Day, Thu 2026-10-01: PH off closes B; F has no PH rule, so it keeps its
        # weekday hours; the night station C and the Sunday-night station D are shut.
        ("2026-10-01T10:00:00+08:00", ["A", "F"]),
        # Sat 2026-10-03, inside the holiday block: F is off on Saturdays, B is PH off.
        ("2026-10-03T10:00:00+08:00", ["A"]),
        # Sat 2026-10-10 is a make-up working day (调休): weekday schedules apply.
        ("2026-10-10T10:00:00+08:00", ["A", "B", "F"]),
    ],
)
def test_open_at_follows_holidays_and_makeup_days(client, conn, stations, when, expected):
    refresh_at(conn, "2026-09-30T12:00:00+08:00")
    assert open_keys(client, when) == expected
    assert open_keys(client, when, path="") == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-11-25T23:40:00+08:00", ["A", "C"]),  # Wednesday night, overnight span
        ("2026-11-26T05:59:00+08:00", ["A", "C"]),  # still the same span after midnight
        ("2026-11-26T06:00:00+08:00", ["A"]),  # closes at 06:00 sharp
        ("2026-11-29T23:30:00+08:00", ["A", "C", "D"]),  # Sunday night
        ("2026-11-30T02:00:00+08:00", ["A", "C", "D"]),  # across Sunday→Monday
        ("2026-11-30T09:00:00+08:00", ["A", "B", "F"]),  # Monday morning
        ("2026-11-28T12:00:00+08:00", ["A"]),  # Saturday: off days
        ("2026-11-30T01:00:00Z", ["A", "B", "F"]),  # same instant as 09:00 in Wuhan
    ],
)
def test_open_at_overnight_and_weekly(client, conn, stations, when, expected):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    assert open_keys(client, when) == expected


def test_every_station_carries_open_now_and_the_next_change(client, conn, stations):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    r = client.get(URL + "/nearest", params={"open_at": "2026-11-25T23:40:00+08:00", **HERE})
    by_key = {f["properties"]["external_id"]: f["properties"] for f in r.json()["features"]}
    c = by_key["C"]
    assert c["open_now"] is True
    assert c["next_change"] == "2026-11-26T06:00:00+08:00"
    assert "06:00" in c["next_change_label"]["zh"] and "06:00" in c["next_change_label"]["en"]
    unfiltered = client.get(URL, params={"limit": 50}).json()["features"]
    states = {f["properties"]["external_id"]: f["properties"]["open_now"] for f in unfiltered}
    assert states["E"] is False  # temporarily closed is never open, even 24/7
    assert states["G"] is None  # no hours: unknown, not open
    assert states["A"] is True
    e = next(f["properties"] for f in unfiltered if f["properties"]["external_id"] == "E")
    assert e["next_change"] is None


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"open_at": "2026-11-25T23:40:00"}, "UTC offset"),
        ({"open_at": "tomorrow"}, "ISO 8601"),
        ({"open_at": "2026-11-25T23:40:00+08:00", "open_now": "true"}, "either"),
        ({"open_at": "2030-01-01T12:00:00+08:00"}, "between"),
    ],
)
def test_bad_open_at_is_422(client, conn, params, fragment):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    r = client.get(URL + "/nearest", params={**HERE, **params})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("open_at")
    assert fragment in r.json()["detail"]


def test_open_now_uses_the_current_window(client, conn, stations):
    hours_store.refresh(conn, TZ)  # window around the real now
    r = client.get(URL + "/nearest", params={**HERE, "open_now": "true", "k": 50})
    assert r.status_code == 200
    for f in r.json()["features"]:
        assert f["properties"]["open_now"] is True
    keys = {f["properties"]["external_id"] for f in r.json()["features"]}
    assert "A" in keys and "E" not in keys and "G" not in keys


@pytest.mark.parametrize(
    ("hours", "fragment"),
    [("Mo-Fr 25:00-26:00", "Mo-Fr 25:00-26:00"), ("sometimes", "sometimes")],
)
def test_invalid_hours_are_422_quoting_the_string(client, conn, hours, fragment):
    r = client.post(URL, json=feature(opening_hours=hours), headers=AUTH)
    assert r.status_code == 422
    assert r.json()["field"] == "properties.opening_hours"
    assert fragment in r.json()["detail"]
    assert conn.execute(text("SELECT count(*) FROM stations")).scalar_one() == 0


def test_hours_written_later_are_filterable_at_once(client, conn, stations):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    when = "2026-11-28T12:00:00+08:00"  # Saturday
    assert open_keys(client, when) == ["A"]
    sid = stations["F"]
    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"opening_hours": "Sa 10:00-14:00"}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert r.status_code == 200
    assert open_keys(client, when) == ["A", "F"]


@pytest.mark.slow
def test_open_filter_at_1e5_stations_evaluates_only_the_answers(client, conn, monkeypatch):
    """10^5 stations: SQL filters by the stored intervals; Python evaluates only what is
    returned. The oracle evaluates every station's string with is_open and sorts by geodesic
    distance."""
    pool = [h for h, _ in HOURS.values()]
    conn.execute(
        text(
            "INSERT INTO stations (external_id, name, opening_hours, status, geom) "
            "SELECT 'M' || g, '站' || g, (CAST(:pool AS text[]))[1 + g % 7], "
            "CASE WHEN g % 53 = 0 THEN 'temporarily_closed' ELSE 'open' END, "
            "ST_SetSRID(ST_MakePoint(114.29 + (random() - 0.5) * 0.6, "
            "30.58 + (random() - 0.5) * 0.4), 4326) FROM generate_series(1, 100000) g"
        ),
        {"pool": pool},
    )
    conn.execute(text("ANALYZE stations"))
    assert hours_store.refresh(conn, TZ, now=at("2026-11-22T12:00:00+08:00")) == 100_000
    import app.stations.service as svc

    per_station, exact = [], []
    real_state, real_eval = svc._state, svc.station_state

    def count_state(*args, **kwargs):
        per_station.append(1)
        return real_state(*args, **kwargs)

    def count_eval(*args, **kwargs):
        exact.append(1)
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(svc, "_state", count_state)
    monkeypatch.setattr(svc, "station_state", count_eval)
    svc._state_at_minute.cache_clear()
    rng = random.Random(3)
    for when in ["2026-11-25T23:40:00+08:00", "2026-11-30T09:00:00+08:00"]:
        lon, lat = 114.29 + rng.uniform(-0.2, 0.2), 30.58 + rng.uniform(-0.1, 0.1)
        per_station.clear()
        exact.clear()
        r = client.get(URL + "/nearest", params={"lat": lat, "lon": lon, "k": 10, "open_at": when})
        got = [(f["id"], f["properties"]["distance_m"]) for f in r.json()["features"]]
        # Python looked at the 10 answers only, and evaluated at most one string per answer
        assert len(per_station) == len(got) == 10
        assert 1 <= len(exact) <= 10
        rows = conn.execute(
            text("SELECT id, ST_X(geom), ST_Y(geom), opening_hours, status FROM stations")
        ).all()
        verdict = {h: (h is not None and is_open(h, at(when), TZ)) for h in pool}
        cands = sorted(
            (geodesic((lat, lon), (y, x)).meters, i)
            for i, x, y, h, st in rows
            if st == "open" and verdict[h]
        )[:10]
        assert [i for _, i in cands] == [i for i, _ in got]
        for (d, _), (_, gd) in zip(cands, got, strict=True):
            assert gd == pytest.approx(d, abs=0.1)


# --- coordinates as Chinese phone maps give them ---------------------------------------


def test_nearest_from_gcj02_and_bd09_equals_the_wgs84_query(client, stations):
    wgs = (114.2931, 30.5802)
    gcj = coords.wgs84_to_gcj02(*wgs)
    bd = coords.wgs84_to_bd09(*wgs)
    base = client.get(URL + "/nearest", params={"lon": wgs[0], "lat": wgs[1], "k": 3}).json()
    for sys_, (lon, lat) in (("gcj02", gcj), ("bd09", bd)):
        other = client.get(
            URL + "/nearest", params={"lon": lon, "lat": lat, "k": 3, "coord_sys": sys_}
        ).json()
        assert other["coord_sys"] == sys_
        assert [f["id"] for f in other["features"]] == [f["id"] for f in base["features"]]
        for a, b in zip(base["features"], other["features"], strict=True):
            assert a["properties"]["distance_m"] == pytest.approx(
                b["properties"]["distance_m"], abs=0.05
            )
            shown = b["geometry"]["coordinates"]
            expect = coords.from_wgs84(*a["geometry"]["coordinates"], sys_)
            assert geodesic(shown[::-1], expect[::-1]).meters < 0.05
            # the GCJ shift in Wuhan is hundreds of metres: the output really moved
            assert geodesic(shown[::-1], a["geometry"]["coordinates"][::-1]).meters > 100


def test_write_in_gcj02_is_stored_in_wgs84(client, conn):
    wgs = (114.3051, 30.5930)
    gcj = coords.wgs84_to_gcj02(*wgs)
    r = client.post(
        URL, params={"coord_sys": "gcj02"}, json=feature(lon=gcj[0], lat=gcj[1]), headers=AUTH
    )
    assert r.status_code == 201
    assert r.json()["properties"]["source_crs"] == "gcj02"
    lon, lat = conn.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE id = :i"), {"i": r.json()["id"]}
    ).one()
    assert geodesic((lat, lon), (wgs[1], wgs[0])).meters < 0.01
    shown = client.get(f"{URL}/{r.json()['id']}").json()["geometry"]["coordinates"]
    assert geodesic(shown[::-1], wgs[::-1]).meters < 0.02


def test_bbox_in_bd09(client, stations):
    lo = coords.wgs84_to_bd09(114.285, 30.575)
    hi = coords.wgs84_to_bd09(114.297, 30.585)
    bbox = f"{lo[0]},{lo[1]},{hi[0]},{hi[1]}"
    keys = {
        f["properties"]["external_id"]
        for f in client.get(URL, params={"bbox": bbox, "coord_sys": "bd09"}).json()["features"]
    }
    assert keys == {"A", "B", "C", "D"}  # 114.290..114.296 are inside, 114.298+ are not


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 114.3, "lat": 95, "coord_sys": "gcj02"},
        {"lon": 190, "lat": 30, "coord_sys": "bd09"},
        {"lon": 114.3, "lat": 30.5, "coord_sys": "utm"},
    ],
)
def test_bad_coordinates_for_the_system_are_422(client, params):
    r = client.get(URL + "/nearest", params=params)
    assert r.status_code == 422


def test_navigation_links_use_each_apps_coordinate_system(client, stations):
    f = client.get(f"{URL}/{stations['A']}").json()
    lon, lat = f["geometry"]["coordinates"]
    links = f["properties"]["links"]
    amap = parse_qs(urlparse(links["amap"]).query)
    glon, glat = (float(v) for v in amap["position"][0].split(","))
    assert geodesic((glat, glon), coords.wgs84_to_gcj02(lon, lat)[::-1]).meters < 0.2
    assert amap["name"] == [f["properties"]["name"]]
    baidu = parse_qs(urlparse(links["baidu"]).query)
    blat, blon = (float(v) for v in baidu["location"][0].split(","))
    assert baidu["coord_type"] == ["bd09ll"]
    assert geodesic((blat, blon), coords.wgs84_to_bd09(lon, lat)[::-1]).meters < 0.2
    osm = urlparse(links["osm"])
    q = parse_qs(osm.query)
    assert float(q["mlat"][0]) == pytest.approx(lat, abs=1e-6)
    assert float(q["mlon"][0]) == pytest.approx(lon, abs=1e-6)


def test_one_station_can_be_evaluated_at_any_instant(client, conn, stations):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    far = "2027-03-03T10:00:00+08:00"  # a Wednesday outside the filter window
    b = client.get(f"{URL}/{stations['B']}", params={"open_at": far})
    assert b.status_code == 200
    assert b.json()["properties"]["open_now"] is True
    assert b.json()["properties"]["next_change"] == "2027-03-03T17:00:00+08:00"


def test_planner_calendar_days_change_what_is_open(client, conn, stations):
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    when = "2026-12-02T10:00:00+08:00"  # an ordinary Wednesday
    assert open_keys(client, when) == ["A", "B", "F"]
    conn.execute(
        text(
            "INSERT INTO calendar_days (day, kind, name) VALUES ('2026-12-02', "
            "'holiday', '地方假日')"
        )
    )
    refresh_at(conn, "2026-11-22T12:00:00+08:00")
    assert open_keys(client, when) == ["A", "F"]  # B is PH off
