"""Network behaviours a worker or planner would notice, pinned against hand-computed answers
(issue 15): a station's service area on a one-way street, the reach of an isochrone that starts
off the road, and custom travel settings.

Expected values are worked out by hand in the comments; nothing is read back from the code under
test. Metres per degree come from geopy's geodesic (tests.test_network_api), not from our code.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, shape

from app.network.graph import Snap, build_graph
from app.network.isochrone import DEFAULT_BUFFER_M, isochrones
from app.network.service import lower_bound_minutes
from app.network.travel import (
    DEFAULT_CAR_KMH,
    DEFAULT_SETTINGS,
    EBIKE_CLASSES,
    EBIKE_PUSH_CLASSES,
    Mode,
    TravelSettings,
    allowed_classes,
    max_speed_mps,
    obeys_oneway_classes,
)
from tests.test_network_api import LAT, M_PER_DEG_LON, URL, create, east, line, load, north
from tests.test_network_graph import network_from

KMH = {"walk": 5.0, "ebike": 15.0, "car": 20.0}  # car: residential in DEFAULT_CAR_KMH


def mps(mode: str) -> float:
    return KMH[mode] / 3.6


# ------------------------------------------------------------------------------------------
# 1. a station on a one-way street: its service area lies upstream, not downstream
# ------------------------------------------------------------------------------------------


@pytest.fixture
def one_way_block(conn, tmp_path):
    """A 1000 m × 300 m block of residential streets; the south side A→B is one-way eastward.

    A=(0,0) → B=(1000,0) one-way; B–C=(1000,300), C–D=(0,300), D–A two-way. A vehicle just
    east of a point on A→B must go round the block (B, C, D, A) to get back to it.
    """
    a, b = (east(0), LAT), (east(1000), LAT)
    c, d = (east(1000), north(300)), (east(0), north(300))
    load(
        conn,
        tmp_path,
        [
            line([a, b], oneway="yes"),
            line([b, c]),
            line([c, d]),
            line([d, a]),
        ],
    )


def hand_seconds_to_station(mode: str, x: float) -> float:
    """A worker at x on A→B reaching the station at x=500 on the same street (by hand)."""
    if mode == "walk" or x <= 500:
        return abs(500 - x) / mps(mode)
    # downstream: on to B, round the block B→C→D→A (300 + 1000 + 300 m), then A→station
    return ((1000 - x) + 1600 + 500) / mps(mode)


@pytest.mark.parametrize("mode", ["ebike", "car", "walk"])
def test_hf_service_area_on_a_one_way_street_lies_upstream(client, one_way_block, mode):
    sid = create(client, "HF1W", east(500), LAT)
    r = client.get(f"{URL}/stations/{sid}/service-area", params={"mode": mode, "minutes": "1"})
    assert r.status_code == 200, r.text
    area = shape(r.json()["features"][0]["geometry"])
    buffer_m = DEFAULT_BUFFER_M[Mode(mode)]
    reach = 60 * mps(mode)  # ebike 250 m, car 333.3 m, walk 83.3 m along the street

    def drawn(x: float) -> bool:
        return bool(area.contains(Point(east(x), LAT)))

    # upstream (west): workers up to `reach` metres away get there in 1 minute
    assert hand_seconds_to_station(mode, 500 - reach + 5) < 60
    assert drawn(500 - reach + 5)
    assert drawn(500 - reach / 2)
    # beyond the reach plus the drawn frontage, not
    assert hand_seconds_to_station(mode, 500 - reach - buffer_m - 5) > 60
    assert not drawn(500 - reach - buffer_m - 5)
    just_downstream = 500 + buffer_m + 5  # past the station's own frontage
    if mode == "walk":  # walkers ignore the arrow: symmetric
        assert drawn(500 + reach - 5) and not drawn(500 + reach + buffer_m + 5)
    else:  # riding or driving: from just downstream one must go round the block (over 7 min)
        assert hand_seconds_to_station(mode, just_downstream) > 7 * 60
        assert not drawn(just_downstream)
        assert not drawn(500 + reach - 5)

    # the same question asked from the worker's side: network minutes to the nearest station
    for x in (400.0, 600.0):
        got = client.get(
            URL + "/stations/nearest",
            params={"lat": LAT, "lon": east(x), "k": 1, "mode": mode},
        )
        assert got.status_code == 200, got.text
        feat = got.json()["features"][0]
        assert feat["id"] == sid
        want = hand_seconds_to_station(mode, x) / 60
        assert feat["properties"]["minutes"] == pytest.approx(want, abs=0.02)


def test_hf_one_way_station_pieces_core():
    """The same block without the database: reverse isochrone of a station on a one-way edge."""
    lon = np.array([east(0), east(1000), east(1000), east(0)])
    lat = np.array([LAT, LAT, north(300), north(300)])
    edges = [
        (0, 1, 1000.0, "residential", 1),
        (1, 2, 300.0, "residential", 0),
        (2, 3, 1000.0, "residential", 0),
        (3, 0, 300.0, "residential", 0),
    ]
    net = network_from(edges, 4, coords=np.column_stack([lon, lat]))
    for mode in ("ebike", "car"):
        g = build_graph(net, mode)
        (area,) = isochrones(g, Snap(0, 0.5, 0.0), [1], reverse=True)
        reach, width = 60 * mps(mode), DEFAULT_BUFFER_M[Mode(mode)]
        on_street = shapely.intersection(area, LineString([(east(0), LAT), (east(1000), LAT)]))
        west, _, east_end, _ = on_street.bounds
        # drawn from reach + buffer upstream to the buffer downstream of the station
        assert (west - east(0)) * M_PER_DEG_LON == pytest.approx(500 - reach - width, abs=0.5)
        assert (east_end - east(0)) * M_PER_DEG_LON == pytest.approx(500 + width, abs=0.5)


# ------------------------------------------------------------------------------------------
# 2. an isochrone from a point off the road: the off-road walk comes out of the budget
# ------------------------------------------------------------------------------------------


def street_2km():
    """A straight two-way residential street from x=0 to x=2000 m along LAT."""
    coords = np.array([[east(0), LAT], [east(2000), LAT]])
    return network_from([(0, 1, 2000.0, "residential", 0)], 2, coords=coords)


def extent_along_street(poly) -> tuple[float, float]:
    """West and east ends (metres from x=0) of the polygon on the street's axis."""
    cut = shapely.intersection(poly, LineString([(east(-500), LAT), (east(2500), LAT)]))
    west, _, east_end, _ = cut.bounds
    return (west - east(0)) * M_PER_DEG_LON, (east_end - east(0)) * M_PER_DEG_LON


@pytest.mark.parametrize(
    ("mode", "minutes", "off_m"),
    [("walk", 5, 15.0), ("car", 1, 15.0), ("walk", 3, 60.0), ("car", 2, 40.0)],
)
def test_hf_off_road_walk_comes_out_of_the_reach_along_the_street(mode, minutes, off_m):
    """Start `off_m` north of x=1000: reach along the street = (T − off/walk) × speed.

    E.g. 15 m off, car, 1 min: the walk takes 15 / (5/3.6) = 10.8 s, leaving 49.2 s at 20 km/h
    = 273.3 m each way (not 333.3 m: the walk is worth 60 m of driving). Tolerance 0.5 m: the
    buffer's round cap has a vertex exactly on the street's axis, and the UTM scale error at
    114.3° E (~4e-4) moves a ~500 m extent by 0.2 m; the effect tested is 15-60 m (walk) and
    60-160 m (car).
    """
    net = street_2km()
    g = build_graph(net, mode)
    T = minutes * 60.0
    walk_s = off_m / mps("walk")
    reach = (T - walk_s) * mps(mode)
    width = DEFAULT_BUFFER_M[Mode(mode)]
    origin = (east(1000), north(off_m))
    (poly,) = isochrones(g, Snap(0, 0.5, off_m), [minutes], origin_lonlat=origin)
    west, east_end = extent_along_street(poly)
    assert east_end == pytest.approx(1000 + reach + width, abs=0.5)
    assert west == pytest.approx(1000 - reach - width, abs=0.5)
    # and the start point itself is in its own isochrone
    assert poly.contains(Point(*origin))


def test_hf_off_road_isochrone_through_the_api(client, conn, tmp_path):
    """The same through the service, which snaps the point itself (15 m north of x=1000)."""
    load(conn, tmp_path, [line([(east(0), LAT), (east(2000), LAT)])])
    for mode, minutes in (("walk", 5), ("car", 1)):
        r = client.get(
            URL + "/isochrones",
            params={"lat": north(15), "lon": east(1000), "mode": mode, "minutes": minutes},
        )
        assert r.status_code == 200, r.text
        poly = shape(r.json()["features"][0]["geometry"])
        reach = (minutes * 60 - 15 / mps("walk")) * mps(mode)  # walk 401.7 m, car 273.3 m
        width = DEFAULT_BUFFER_M[Mode(mode)]
        west, east_end = extent_along_street(poly)
        assert east_end == pytest.approx(1000 + reach + width, abs=0.5)
        assert west == pytest.approx(1000 - reach - width, abs=0.5)


# ------------------------------------------------------------------------------------------
# 3. custom travel settings are honoured
# ------------------------------------------------------------------------------------------


def test_hf_custom_classes_decide_who_obeys_one_way():
    custom = TravelSettings(
        ebike_classes=frozenset({"residential", "trunk"}),  # a deployment allowing trunk roads
        car_kmh_by_class={"residential": 10.0, "track": 15.0},
    )
    assert obeys_oneway_classes("ebike", custom) == {"residential", "trunk"}
    assert obeys_oneway_classes("car", custom) == {"residential", "track"}
    assert obeys_oneway_classes("walk", custom) == frozenset()
    # defaults, for contrast: trunk is no e-bike road, track no car road
    assert "trunk" not in obeys_oneway_classes("ebike")
    assert "track" not in obeys_oneway_classes("car")

    # what a rider sees: on a one-way trunk road allowed by the deployment, no riding against it
    net = network_from([(0, 1, 300.0, "trunk", 1), (1, 2, 300.0, "track", 1)], 3)
    ebike = build_graph(net, "ebike", custom)
    assert ebike.costs.forward[0] and not ebike.costs.backward[0]
    car = build_graph(net, "car", custom)
    assert car.costs.forward[1] and not car.costs.backward[1]
    assert car.costs.seconds[1] == pytest.approx(300 / (15 / 3.6))


@pytest.mark.parametrize(
    ("mode", "settings", "kmh"),
    [
        ("walk", TravelSettings(walk_kmh=7.0), 7.0),
        ("ebike", TravelSettings(ebike_kmh=30.0), 30.0),
        ("car", TravelSettings(car_kmh_by_class={"residential": 100.0}), 100.0),
        ("car", TravelSettings(car_kmh_by_class={"residential": 3.0}), 5.0),  # walking is faster
        ("car", TravelSettings(walk_kmh=4.0, car_kmh_by_class={"residential": 3.0}), 4.0),
        ("ebike", TravelSettings(ebike_kmh=4.0, walk_kmh=6.0), 6.0),  # pushing is faster
    ],
)
def test_hf_max_speed_follows_the_settings(mode, settings, kmh):
    assert max_speed_mps(mode, settings) == pytest.approx(kmh / 3.6)
    # the straight-line lower bound used by "nearest by network time": 1 km at that speed
    assert lower_bound_minutes(1000.0, Mode(mode), settings) == pytest.approx(60 / kmh)


def test_hf_default_max_speeds():
    assert max_speed_mps("walk") == pytest.approx(5 / 3.6)
    assert max_speed_mps("ebike") == pytest.approx(15 / 3.6)
    assert max_speed_mps("car") == pytest.approx(max(DEFAULT_CAR_KMH.values()) / 3.6)


def test_hf_a_riding_class_listed_as_push_is_ridden():
    s = TravelSettings(ebike_push_classes=EBIKE_PUSH_CLASSES | {"residential", "cycleway"})
    assert s.ebike_push_classes == EBIKE_PUSH_CLASSES
    assert s == DEFAULT_SETTINGS and hash(s) == hash(DEFAULT_SETTINGS)  # same cache key
    only = TravelSettings(
        ebike_classes=frozenset({"residential"}),
        ebike_push_classes=frozenset({"residential", "footway"}),
    )
    assert only.ebike_push_classes == {"footway"}
    assert allowed_classes("ebike", only) == {"residential", "footway"}
    # on the ridden class the rider keeps to the one-way rule at riding speed
    net = network_from([(0, 1, 600.0, "residential", 1), (1, 2, 600.0, "footway", 1)], 3)
    g = build_graph(net, "ebike", only)
    assert g.costs.forward[0] and not g.costs.backward[0]
    assert g.costs.seconds[0] == pytest.approx(600 / (15 / 3.6))
    assert g.costs.backward[1] and g.costs.seconds[1] == pytest.approx(600 / (5 / 3.6))
    assert not EBIKE_CLASSES & s.ebike_push_classes
