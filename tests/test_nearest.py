"""Nearest stations against an independent oracle: brute force over geographiclib geodesics."""

from __future__ import annotations

import math
import random

import pytest
from geopy.distance import geodesic
from sqlalchemy.engine import Connection

from app.stations import queries
from tests.factories import bulk_insert

WUHAN = (114.30, 30.58)
AMENITY_POOL = ["drinking_water", "microwave", "toilet", "lockers", "hot_water"]


def brute_force(
    stations: list[tuple[int, float, float, list[str], str]],
    lon: float,
    lat: float,
    k: int,
    amenities: tuple[str, ...] = (),
    statuses: tuple[str, ...] = ("open", "temporarily_closed"),
    radius_m: float | None = None,
) -> list[tuple[int, float]]:
    """Every station's geodesic distance (WGS-84 ellipsoid, Karney), filtered, sorted, top k."""
    out = []
    for sid, slon, slat, ams, status in stations:
        if status not in statuses or not set(amenities) <= set(ams):
            continue
        d = geodesic((lat, lon), (slat, slon)).meters
        if radius_m is not None and d > radius_m:
            continue
        out.append((sid, d))
    out.sort(key=lambda t: (t[1], t[0]))
    return out[:k]


def assert_same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    """Same stations in the same order, each at the same distance to the centimetre.

    Ids are compared exactly: the query breaks exact distance ties by id, as `brute_force`
    does, and PostGIS and geographiclib agree on distances far more closely than any two
    stations here differ in distance (a failure prints both rankings with their distances).
    """
    assert len(got) == len(want), (got, want)
    assert [gid for gid, _ in got] == [wid for wid, _ in want], (got, want)
    for (_, gd), (_, wd) in zip(got, want, strict=True):
        assert gd == pytest.approx(wd, abs=0.01), (got, want)


@pytest.fixture
def random_stations(conn: Connection) -> list[tuple[int, float, float, list[str], str]]:
    """1,500 stations: clustered around Wuhan, plus a sparse spread over China."""
    rng = random.Random(7)
    pts: list[tuple[float, float, list[str], str]] = []
    for i in range(1500):
        if i % 5 == 0:
            lon, lat = rng.uniform(75, 134), rng.uniform(19, 52)
        else:
            lon = WUHAN[0] + rng.gauss(0, 0.08)
            lat = WUHAN[1] + rng.gauss(0, 0.06)
        ams = sorted(a for a in AMENITY_POOL if rng.random() < (0.02 if a == "lockers" else 0.4))
        status = rng.choices(["open", "temporarily_closed", "closed"], [90, 6, 4])[0]
        pts.append((lon, lat, ams, status))
    ids = bulk_insert(conn, pts)
    return [(sid, *p) for sid, p in zip(ids, pts, strict=True)]


def _run(conn: Connection, f: queries.NearestFilter) -> list[tuple[int, float]]:
    return [(int(r["id"]), float(r["distance_m"])) for r in queries.nearest(conn, f)]


def test_matches_brute_force_on_random_points(conn, random_stations):
    rng = random.Random(11)
    for _ in range(60):
        lon = WUHAN[0] + rng.gauss(0, 0.15)
        lat = WUHAN[1] + rng.gauss(0, 0.1)
        k = rng.choice([1, 5, 10, 50])
        got = _run(conn, queries.NearestFilter(lon=lon, lat=lat, k=k))
        assert_same_ranking(got, brute_force(random_stations, lon, lat, k))


def test_matches_brute_force_with_amenity_status_and_radius_filters(conn, random_stations):
    rng = random.Random(12)
    cases = [
        {"amenities": ("microwave",)},
        {"amenities": ("lockers",)},
        {"amenities": ("microwave", "toilet")},
        {"statuses": ("open",)},
        {"statuses": ("closed",)},
        {"radius_m": 2000.0},
        {"radius_m": 500.0, "amenities": ("drinking_water",)},
    ]
    for case in cases:
        for _ in range(8):
            lon = WUHAN[0] + rng.gauss(0, 0.1)
            lat = WUHAN[1] + rng.gauss(0, 0.08)
            f = queries.NearestFilter(lon=lon, lat=lat, k=7, **case)  # type: ignore[arg-type]
            want = brute_force(random_stations, lon, lat, 7, **case)  # type: ignore[arg-type]
            assert_same_ranking(_run(conn, f), want)


def test_far_query_point_reaches_across_china(conn, random_stations):
    # From Urumqi-ish and from the South China Sea edge: candidates are thousands of km away.
    for lon, lat in [(87.6, 43.8), (110.0, 18.3), (134.5, 52.9)]:
        got = _run(conn, queries.NearestFilter(lon=lon, lat=lat, k=5))
        assert_same_ranking(got, brute_force(random_stations, lon, lat, 5))


def _offset(lon: float, lat: float, metres: float, bearing: float) -> tuple[float, float]:
    p = geodesic(meters=metres).destination((lat, lon), bearing)
    return p.longitude, p.latitude


def test_spheroid_order_beats_sphere_order_on_a_near_tie(conn):
    """North-south metres are longer on the sphere than on the spheroid at 30°N, east-west
    shorter: a station 1000 m north and one 1003 m east swap places on a sphere. The exact
    answer is the northern one; a single sphere KNN would return the eastern one."""
    q = (114.3, 30.0)
    north = _offset(*q, 1000.0, 0.0)
    east = _offset(*q, 1003.0, 90.0)
    ids = bulk_insert(conn, [(*north, [], "open"), (*east, [], "open")], prefix="TIE")
    # sanity: the sphere really orders them the other way round
    r = 6371008.8
    sphere = [
        2
        * r
        * math.asin(
            math.sqrt(
                math.sin(math.radians(lat - q[1]) / 2) ** 2
                + math.cos(math.radians(q[1]))
                * math.cos(math.radians(lat))
                * math.sin(math.radians(lon - q[0]) / 2) ** 2
            )
        )
        for lon, lat in (north, east)
    ]
    assert sphere[0] > sphere[1]
    got = _run(conn, queries.NearestFilter(lon=q[0], lat=q[1], k=1))
    assert got[0][0] == ids[0]
    assert got[0][1] == pytest.approx(1000.0, abs=0.01)


def test_empty_table_and_no_match(conn):
    assert _run(conn, queries.NearestFilter(lon=114.3, lat=30.5, k=5)) == []
    bulk_insert(conn, [(114.3, 30.5, ["toilet"], "open")])
    assert _run(conn, queries.NearestFilter(lon=114.3, lat=30.5, k=5, amenities=("wifi",))) == []
    one = _run(conn, queries.NearestFilter(lon=114.3, lat=30.5, k=5))
    assert len(one) == 1 and one[0][1] == pytest.approx(0.0, abs=1e-6)
