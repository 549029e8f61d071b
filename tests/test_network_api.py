"""Travel-time API on hand-made networks whose answers can be worked out by hand: network
minutes on nearest, isochrones, station service areas and their cache, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from geopy.distance import geodesic
from shapely.geometry import Point, shape
from sqlalchemy import text

from app.network import importer
from tests.conftest import AUTH
from tests.factories import feature

URL = "/api/v1"
LAT = 30.58
#: Metres per degree of longitude at LAT on the WGS-84 ellipsoid (via geopy, not our code).
M_PER_DEG_LON = geodesic((LAT, 114.0), (LAT, 115.0)).meters
M_PER_DEG_LAT = geodesic((LAT, 114.0), (LAT + 1.0, 114.0)).meters


def east(metres: float, lon0: float = 114.30) -> float:
    return lon0 + metres / M_PER_DEG_LON


def north(metres: float) -> float:
    return LAT + metres / M_PER_DEG_LAT


def line(coords: list[tuple[float, float]], highway: str = "residential", **props) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]},
        "properties": {"highway": highway, **props},
    }


def load(conn, tmp_path: Path, features: list[dict]) -> int:
    p = tmp_path / "net.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return importer.import_path(conn, p).version_id


@pytest.fixture
def river_town(conn, tmp_path):
    """Two banks of a river 100 m apart, one bridge 1.5 km east.

    South bank road: y=0 from x=0 to x=1500 m; north bank road: y=100 m likewise; the bridge
    joins them at x=1500. The origin is on the south bank at x=0.
    """
    s = [(east(x), LAT) for x in (0, 500, 1000, 1500)]
    n = [(east(x), north(100)) for x in (0, 500, 1000, 1500)]
    feats = [line([s[i], s[i + 1]]) for i in range(3)]
    feats += [line([n[i], n[i + 1]]) for i in range(3)]
    feats.append(line([s[3], n[3]], highway="primary"))
    return load(conn, tmp_path, feats)


def create(client, ext: str, lon: float, lat: float) -> int:
    r = client.post(
        URL + "/stations",
        json=feature(ext, lon=lon, lat=lat, opening_hours="24/7"),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_near_in_metres_but_far_by_road_does_not_push_out_the_closer_by_road(client, river_town):
    across = create(client, "ACROSS", east(0), north(100))  # 100 m away, across the river
    along = create(client, "ALONG", east(400), LAT)  # 400 m away on the same bank
    params = {"lat": LAT, "lon": east(0), "k": 1}
    plain = client.get(URL + "/stations/nearest", params=params).json()["features"]
    assert [f["id"] for f in plain] == [across]
    walk = client.get(URL + "/stations/nearest", params={**params, "mode": "walk"})
    assert walk.status_code == 200, walk.text
    got = walk.json()["features"]
    assert [f["id"] for f in got] == [along]
    # 400 m at 5 km/h = 4.8 min (both points sit on the road: no off-network walk)
    assert got[0]["properties"]["minutes"] == pytest.approx(4.8, abs=0.1)
    both = client.get(URL + "/stations/nearest", params={**params, "k": 2, "mode": "walk"})
    feats = both.json()["features"]
    assert [f["id"] for f in feats] == [along, across]
    # across: 1500 m east + 100 m bridge + 1500 m back = 3100 m = 37.2 min on foot
    assert feats[1]["properties"]["minutes"] == pytest.approx(37.2, abs=0.2)
    ebike = client.get(URL + "/stations/nearest", params={**params, "k": 2, "mode": "ebike"})
    assert ebike.json()["features"][1]["properties"]["minutes"] == pytest.approx(12.4, abs=0.1)


def test_isochrone_rings_follow_the_road_not_the_crow(client, river_town):
    r = client.get(
        URL + "/isochrones", params={"lat": LAT, "lon": east(0), "mode": "walk", "minutes": "5,10"}
    )
    assert r.status_code == 200, r.text
    fc = r.json()
    assert [f["properties"]["minutes"] for f in fc["features"]] == [10, 5]
    ten, five = (shape(f["geometry"]) for f in fc["features"])
    assert ten.buffer(1e-9).contains(five)
    # 5 min on foot = 416.7 m along the south bank; 10 min = 833.3 m
    assert five.contains(Point(east(380), LAT)) and not five.contains(Point(east(460), LAT))
    assert ten.contains(Point(east(800), LAT)) and not ten.contains(Point(east(880), LAT))
    # the north bank, 100 m away as the crow flies, is not reached in 10 minutes
    assert not ten.contains(Point(east(0), north(100)))
    assert not ten.intersects(Point(east(300), north(100)).buffer(20 / M_PER_DEG_LON))


def test_service_area_is_cached_and_invalidated_by_exactly_what_changed(
    client, conn, tmp_path, river_town
):
    sid = create(client, "SA", east(700), LAT)
    url = f"{URL}/stations/{sid}/service-area"
    first = client.get(url, params={"mode": "walk", "minutes": "5"})
    assert first.status_code == 200, first.text
    assert first.json()["cache"] == "miss"
    again = client.get(url, params={"mode": "walk", "minutes": "5"})
    assert again.json()["cache"] == "hit"
    assert again.json()["features"] == first.json()["features"]
    area = shape(first.json()["features"][0]["geometry"])
    # workers within 416 m along the road reach it in 5 minutes
    assert area.contains(Point(east(400), LAT)) and not area.contains(Point(east(200), LAT))
    # a change that does not move the station keeps the cache
    client.patch(
        f"{URL}/stations/{sid}",
        json={"type": "Feature", "properties": {"name": "改名"}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert client.get(url, params={"mode": "walk", "minutes": "5"}).json()["cache"] == "hit"
    # another mode or ring is its own entry
    assert client.get(url, params={"mode": "ebike", "minutes": "5"}).json()["cache"] == "miss"
    assert client.get(url, params={"mode": "walk", "minutes": "5,10"}).json()["cache"] == "partial"
    # moving the station misses
    client.patch(
        f"{URL}/stations/{sid}",
        json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [east(900), LAT]}},
        headers={**AUTH, "If-Match": "*"},
    )
    moved = client.get(url, params={"mode": "walk", "minutes": "5"}).json()
    assert moved["cache"] == "miss"
    assert shape(moved["features"][0]["geometry"]).contains(Point(east(1200), LAT))
    # a reloaded network misses
    s = [(east(x), LAT) for x in (0, 2000)]
    load(conn, tmp_path, [line(s)])
    reloaded = client.get(url, params={"mode": "walk", "minutes": "5"}).json()
    assert reloaded["cache"] == "miss"
    assert reloaded["network_version"] != moved["network_version"]


def test_one_way_street_binds_cars_not_walkers(client, conn, tmp_path):
    a, b, c = (east(0), LAT), (east(600), LAT), (east(600), north(600))
    load(
        conn,
        tmp_path,
        [
            line([a, b], highway="residential", oneway="yes"),  # a → b only for vehicles
            line([b, c], highway="residential"),
            line([c, a], highway="residential"),
        ],
    )
    sid = create(client, "OW", *b)
    params = {"lat": LAT, "lon": east(0), "k": 1}
    walk = client.get(URL + "/stations/nearest", params={**params, "mode": "walk"}).json()
    car_from_b = client.get(
        URL + "/stations/nearest",
        params={"lat": LAT, "lon": east(590), "k": 1, "mode": "car"},
    ).json()
    assert walk["features"][0]["id"] == sid
    assert walk["features"][0]["properties"]["minutes"] == pytest.approx(7.2, abs=0.1)
    assert car_from_b["features"][0]["id"] == sid  # 10 m along the one-way street
    # a car from b to the origin cannot go against the one-way street: it goes round via c
    iso = client.get(
        URL + "/isochrones",
        params={"lat": LAT, "lon": east(600), "mode": "car", "minutes": "1"},
    ).json()
    reach = shape(iso["features"][0]["geometry"])
    assert not reach.contains(Point(east(300), LAT))  # against the one-way direction


def test_no_network_and_bad_input(client, conn):
    conn.execute(text("UPDATE network_versions SET is_live = false"))
    r = client.get(URL + "/isochrones", params={"lat": LAT, "lon": 114.3})
    assert r.status_code == 409
    assert "yizhan network demo" in r.json()["detail"]
    sid = create(client, "NN", 114.3, LAT)
    assert client.get(f"{URL}/stations/{sid}/service-area").status_code == 409
    r = client.get(URL + "/stations/nearest", params={"lat": LAT, "lon": 114.3, "mode": "walk"})
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mode": "bus"}, "mode"),
        ({"minutes": "0"}, "minutes"),
        ({"minutes": "61"}, "minutes"),
        ({"minutes": "5,x"}, "minutes"),
        ({"minutes": "1,2,3,4,5,6,7"}, "minutes"),
        ({"lat": "nan"}, "lat"),
    ],
)
def test_bad_isochrone_parameters(client, river_town, params, field):
    r = client.get(URL + "/isochrones", params={"lat": LAT, "lon": east(0), **params})
    assert r.status_code == 422
    assert r.json()["detail"].startswith(field)


def test_point_far_from_any_road_is_422(client, river_town):
    r = client.get(URL + "/isochrones", params={"lat": north(2000), "lon": east(0)})
    assert r.status_code == 422
    assert "from the nearest road" in r.json()["detail"]


def test_isochrone_in_gcj02_lines_up_with_the_wgs84_one(client, river_town):
    from app.geo import coords

    params = {"lat": LAT, "lon": east(0), "mode": "walk", "minutes": "5"}
    wgs = shape(client.get(URL + "/isochrones", params=params).json()["features"][0]["geometry"])
    glon, glat = coords.wgs84_to_gcj02(east(0), LAT)
    gcj = client.get(
        URL + "/isochrones",
        params={**params, "lat": glat, "lon": glon, "coord_sys": "gcj02"},
    ).json()
    poly = shape(gcj["features"][0]["geometry"])
    back = shapely.transform(
        poly,
        lambda xy: [coords.gcj02_to_wgs84(x, y) for x, y in xy],  # type: ignore[misc]
    )
    assert back.symmetric_difference(wgs).area < 0.02 * wgs.area


def test_car_speeds_are_settings(settings, conn, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app
    from tests.conftest import TransactionDatabase

    monkeypatch.setenv("YIZHAN_CAR_KMH", '{"residential": 10}')
    env = Settings(_env_file=None)  # type: ignore[call-arg]
    assert env.car_kmh == {"residential": 10.0}
    a, b = (east(0), LAT), (east(1000), LAT)
    load(conn, tmp_path, [line([a, b], highway="residential")])
    minutes = {}
    sid = None
    for kmh in (20.0, 10.0):
        app = create_app(settings.model_copy(update={"car_kmh": {"residential": kmh}}))
        with TestClient(app) as tc:
            app.state.db = TransactionDatabase(conn)
            sid = sid or create(tc, "CAR", *b)
            got = tc.get(
                URL + "/stations/nearest",
                params={"lat": LAT, "lon": east(0), "k": 1, "mode": "car"},
            ).json()["features"][0]
            assert got["id"] == sid
            minutes[kmh] = got["properties"]["minutes"]
    assert minutes[20.0] == pytest.approx(3.0, abs=0.05)  # 1 km at 20 km/h
    assert minutes[10.0] == pytest.approx(6.0, abs=0.05)
