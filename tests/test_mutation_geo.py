"""Issue 15: coordinates near the edge of the shifted region, and nearest near-ties far from 30° N.

What a courier would notice: standing in Shenzhen a few metres from the Hong Kong line (or
anywhere a few metres inside the mainland outline), sending the position Amap or Baidu shows,
and being stored ~600 m away. And: asking for the nearest rest station in Sanya or Mohe and
being sent to the one that is really a few metres further.

Oracles are independent of the code under test: the forward GCJ-02 polynomial and the BD-09 step
from the `coordtransform` package (its own one-step inverse is not used; the inverse here is a
plain fixed-point solve on *its* forward), and geographiclib (via geopy) for geodesic ranking.
The region (`in_china`, `in_greater_china`) is the documented definition of where a shift
applies; it is used to classify sample points, not re-derived.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import coordTransform
import pytest
import shapely
from geopy.distance import geodesic
from sqlalchemy.engine import Connection

from app.geo import coords
from app.geo.coords import (
    bd09_to_wgs84,
    gcj02_to_wgs84,
    in_china,
    in_greater_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from app.stations import queries
from tests.factories import bulk_insert
from tests.test_nearest import assert_same_ranking

LonLat = tuple[float, float]
Pair = tuple[str, LonLat, LonLat]  # (label, inside, outside)
Transform = Callable[[float, float], LonLat]

# The module docstring promises `wgs84 → gcj02 → wgs84` is exact to < 1 µm for every point in
# mainland China; the round trips below are held to exactly that.
PROMISED_M = 1e-6
# Distances from the outline sampled on each side, in metres ("right at" to "a block away").
OFFSETS_M = (0.5, 2.0, 10.0, 50.0, 300.0)
EDGE_FRACTIONS = (0.2, 0.5, 0.8)


def flat_metres(a: LonLat, b: LonLat) -> float:
    """Distance between two points micrometres to metres apart (local flat approximation;
    geodesic libraries are not meant for sub-micrometre separations)."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320.0 * math.cos(lat)
    dy = (a[1] - b[1]) * 110_574.0
    return math.hypot(dx, dy)


# --- independent oracle: coordtransform's forward formulas, our own plain inverse -----------
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323


def oracle_gcj_forward(lon: float, lat: float) -> LonLat:
    """The published GCJ-02 shift with coordtransform's polynomial, without its rectangle
    region test (which would leave Mohe, north of 53.55° N, unshifted)."""
    dlat = coordTransform._transformlat(lon - 105.0, lat - 35.0)
    dlon = coordTransform._transformlng(lon - 105.0, lat - 35.0)
    rad = math.radians(lat)
    magic = 1 - _KRASOVSKY_EE * math.sin(rad) ** 2
    dlat = (
        dlat * 180.0 / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * math.sqrt(magic)) * math.pi)
    )
    dlon = dlon * 180.0 / (_KRASOVSKY_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def oracle_bd_forward(lon: float, lat: float) -> LonLat:
    bd_lon, bd_lat = coordTransform.gcj02_to_bd09(lon, lat)
    return float(bd_lon), float(bd_lat)


def solve(forward: Callable[[float, float], LonLat], target: LonLat) -> LonLat:
    """Fixed-point solve forward(x) = target (both shifts move by < 1e-3 m per metre)."""
    x = target
    for _ in range(60):
        f = forward(*x)
        r = (target[0] - f[0], target[1] - f[1])
        x = (x[0] + r[0], x[1] + r[1])
        if abs(r[0]) < 1e-14 and abs(r[1]) < 1e-14:
            break
    return x


def expected_gcj_to_wgs(g: LonLat) -> LonLat:
    """What `gcj02_to_wgs84` must return: the pre-image if that is in mainland China (the
    documented rule), else the input unchanged."""
    w = solve(oracle_gcj_forward, g)
    return w if in_china(*w) else g


def expected_bd_to_wgs(b: LonLat) -> LonLat:
    """What `bd09_to_wgs84` must return: a mainland pre-image (GCJ-02 then BD-09) if there is
    one (the documented rule), else a Hong Kong/Macau/Taiwan pre-image (BD-09 alone), else the
    input unchanged."""
    g = solve(oracle_bd_forward, b)
    w = solve(oracle_gcj_forward, g)
    if in_china(*w):
        return w
    if in_greater_china(*g) and not in_china(*g):
        return g
    return b


# --- sample points within metres of the outline, on both sides ------------------------------


def _rings() -> list[tuple[str, tuple[LonLat, ...]]]:
    boxes = [
        (f"island box {i}", ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
        for i, (x0, y0, x1, y1) in enumerate(coords._OFFSHORE_ISLAND_BOXES)
    ]
    return [
        ("mainland", coords._MAINLAND_OUTLINE),
        ("Hainan", coords._HAINAN_OUTLINE),
        ("Hong Kong", coords._HONG_KONG_OUTLINE),
        ("Macau", coords._MACAU_OUTLINE),
        ("Taiwan", coords._TAIWAN_OUTLINE),
        *boxes,
    ]


def _across(a: LonLat, b: LonLat, t: float, d: float) -> tuple[LonLat, LonLat]:
    """The point a fraction t along edge a→b, moved d metres to either side of the edge."""
    lon, lat = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
    kx = 111_320.0 * math.cos(math.radians(lat))
    ky = 110_574.0
    ex, ey = (b[0] - a[0]) * kx, (b[1] - a[1]) * ky
    n = math.hypot(ex, ey)
    nx, ny = -ey / n, ex / n  # unit normal in metres
    return (lon + d * nx / kx, lat + d * ny / ky), (lon - d * nx / kx, lat - d * ny / ky)


def straddling_pairs(region: Callable[[float, float], bool]) -> list[Pair]:
    """(label, inside, outside) pairs a few metres either side of the region's outline.

    Edges of every ring are sampled; only pairs that the region test really splits are kept,
    so each pair straddles the effective boundary (e.g. the Shenzhen River where the mainland
    ring and the Hong Kong cut-out meet, or the coastline where the cut-outs end)."""
    out = []
    for name, ring in _rings():
        for i, a in enumerate(ring):
            b = ring[(i + 1) % len(ring)]
            for t in EDGE_FRACTIONS:
                for d in OFFSETS_M:
                    p, q = _across(a, b, t, d)
                    if region(*p) and not region(*q):
                        out.append((f"{name} edge {i} t={t} {d} m", p, q))
                    elif region(*q) and not region(*p):
                        out.append((f"{name} edge {i} t={t} {d} m", q, p))
    return out


MAINLAND_PAIRS = straddling_pairs(in_china)
GREATER_PAIRS = straddling_pairs(in_greater_china)
# Shenzhen Bay to Sha Tau Kok: the Hong Kong cut-out's northern edges, Shenzhen on one side.
SHENZHEN_HK_PAIRS = [
    (label, p, q)
    for label, p, q in MAINLAND_PAIRS
    if "Hong Kong" in label and 113.9 < p[0] < 114.3 and p[1] > 22.42
]


def test_samples_straddle_the_outline_everywhere():
    # Every mainland edge sampled, the Shenzhen-Hong Kong line among them.
    assert len(MAINLAND_PAIRS) > 2000
    assert len(GREATER_PAIRS) > 1500
    assert len(SHENZHEN_HK_PAIRS) >= 40


def _round_trip_failures(pairs: list[Pair], forward: Transform, inverse: Transform) -> list[str]:
    bad = []
    for label, p, _ in pairs:
        back = inverse(*forward(*p))
        err = flat_metres(back, p)
        if err >= PROMISED_M:
            bad.append(f"{label} {p}: {err:.3g} m off")
    return bad


def test_shenzhen_courier_next_to_hong_kong_is_stored_where_they_stand():
    """Futian checkpoint side of the Shenzhen River: Amap's position comes back exactly."""
    bad = _round_trip_failures(SHENZHEN_HK_PAIRS, wgs84_to_gcj02, gcj02_to_wgs84)
    assert not bad, f"{len(bad)} of {len(SHENZHEN_HK_PAIRS)}: {bad[:5]}"


def test_gcj02_round_trip_is_exact_metres_inside_the_outline():
    bad = _round_trip_failures(MAINLAND_PAIRS, wgs84_to_gcj02, gcj02_to_wgs84)
    assert not bad, f"{len(bad)} of {len(MAINLAND_PAIRS)}: {bad[:5]}"


def _gcj_leaves_greater_china(p: LonLat) -> bool:
    return not in_greater_china(*oracle_gcj_forward(*p))


def test_bd09_round_trip_is_exact_metres_inside_the_outline():
    """Mainland points near the outline (both shifts), where the GCJ-02 step stays inside
    Greater China: Shenzhen by Hong Kong, Zhuhai by Macau, Xiamen by Kinmen, every land
    border where the shifted point is still inside."""
    inside = [
        (label, p, q)
        for label, p, q in MAINLAND_PAIRS + GREATER_PAIRS
        if in_china(*p) and not _gcj_leaves_greater_china(p)
    ]
    assert len(inside) > 2500
    bad = _round_trip_failures(inside, wgs84_to_bd09, bd09_to_wgs84)
    assert not bad, f"{len(bad)} of {len(inside)}: {bad[:5]}"


def test_bd09_round_trip_where_the_gcj02_step_leaves_greater_china():
    """A mainland point whose GCJ-02 shift crosses Greater China's outer outline: it used to
    get no BD-09 step and came back 700-800 m away (found by this suite, issue 15)."""
    leaving = [
        (label, p, q)
        for label, p, q in MAINLAND_PAIRS
        if in_china(*p) and _gcj_leaves_greater_china(p)
    ]
    assert len(leaving) > 100
    bad = _round_trip_failures(leaving, wgs84_to_bd09, bd09_to_wgs84)
    assert not bad, f"{len(bad)} of {len(leaving)}: {bad[:5]}"


def test_gcj02_just_outside_the_outline_follows_the_pre_image_rule():
    """Metres outside mainland China a WGS-84 point is its own GCJ-02 (to the last bit). Read
    back as GCJ-02 it is the point itself, unless a mainland point's shift lands exactly there
    (e.g. Hong Kong just south of the Shenzhen River): then the documented rule decides on the
    pre-image and the mainland reading wins."""
    ambiguous = 0
    for label, _, q in MAINLAND_PAIRS:
        assert wgs84_to_gcj02(*q) == q, label
        want = expected_gcj_to_wgs(q)
        ambiguous += want != q
        assert flat_metres(gcj02_to_wgs84(*q), want) < PROMISED_M, (label, q, want)
    # both cases are really exercised
    assert 100 < ambiguous < len(MAINLAND_PAIRS) - 100


def test_bd09_just_outside_the_mainland_follows_the_pre_image_rule():
    """Points metres outside mainland China, on both sides of Greater China's outline (Hong
    Kong, Macau, Taiwan, Kinmen, Matsu inside; Russia, Vietnam, the open sea outside): no GCJ-02
    step, BD-09 only inside Greater China, and read back by the pre-image rule."""
    points = [(label, q) for label, _, q in MAINLAND_PAIRS + GREATER_PAIRS] + [
        (label, p) for label, p, _ in GREATER_PAIRS if not in_china(*p)
    ]
    bd_shifted = 0
    for label, w in points:
        b = oracle_bd_forward(*w) if in_greater_china(*w) else w
        bd_shifted += b != w
        assert flat_metres(wgs84_to_bd09(*w), b) < PROMISED_M, (label, w)
        want = expected_bd_to_wgs(b)
        assert flat_metres(bd09_to_wgs84(*b), want) < PROMISED_M, (label, w, want)
    assert 500 < bd_shifted < len(points) - 500


# --- nearest near-ties far from 30° N -------------------------------------------------------
# PostGIS orders KNN candidates and filters the re-rank by sphere distance (R = 6371008.8 m)
# while the answer is ranked by spheroid metres. On the sphere a north-south metre is longer
# than on the spheroid by up to +0.46 % at 18° N (meridional radius 6341.6 km), while at 53° N
# the sphere is shorter in every direction (-0.08 % north-south, -0.33 % east-west).

SANYA = (109.5, 18.25)
MOHE = (122.5, 53.0)
SPHERE_R = 6371008.8


def _offset(q: LonLat, metres: float, bearing: float) -> LonLat:
    p = geodesic(meters=metres).destination((q[1], q[0]), bearing)
    return p.longitude, p.latitude


def _sphere(q: LonLat, p: LonLat) -> float:
    dlat = math.radians(p[1] - q[1])
    dlon = math.radians(p[0] - q[0])
    h = (
        math.sin(dlat / 2) ** 2
        + math.cos(math.radians(q[1])) * math.cos(math.radians(p[1])) * math.sin(dlon / 2) ** 2
    )
    return 2 * SPHERE_R * math.asin(math.sqrt(h))


def _geodesic_ids(stations: list[tuple[int, LonLat]], q: LonLat, k: int) -> list[int]:
    ranked = sorted(stations, key=lambda s: (geodesic((q[1], q[0]), (s[1][1], s[1][0])).m, s[0]))
    return [sid for sid, _ in ranked[:k]]


@pytest.mark.parametrize(
    ("where", "q", "north_m", "east_m"),
    [
        # Sanya: the northern station is 0.5 m nearer, but 4 m further on the sphere; the
        # re-rank needs a margin of ~0.42 % to see it.
        ("Sanya 18N", SANYA, 1000.0, 1000.5),
        # Mohe: the northern station is 0.3 m nearer, 2.1 m further on the sphere. The sphere
        # is shorter than the spheroid here in every direction, so a margin of 1.0 suffices;
        # this guards the spheroid re-rank and fails for any margin below ~0.9989.
        ("Mohe 53N", MOHE, 1000.0, 1000.3),
    ],
)
def test_nearest_station_is_the_geodesically_nearest_on_a_near_tie(
    conn: Connection, where: str, q: LonLat, north_m: float, east_m: float
):
    north = _offset(q, north_m, 0.0)
    east = _offset(q, east_m, 90.0)
    others = [_offset(q, 3000.0 + 500.0 * i, 45.0 + 70.0 * i) for i in range(4)]
    pts = [north, east, *others]
    ids = bulk_insert(conn, [(*p, [], "open") for p in pts], prefix="HE-TIE")
    stations = list(zip(ids, pts, strict=True))
    # The constructed tie really is one: the sphere orders the pair the other way round.
    assert _sphere(q, north) > _sphere(q, east), where
    assert _geodesic_ids(stations, q, 2) == [ids[0], ids[1]]
    for k in (1, 2, 3, 6):
        got = queries.nearest(conn, queries.NearestFilter(lon=q[0], lat=q[1], k=k))
        assert [int(r["id"]) for r in got] == _geodesic_ids(stations, q, k), (where, k)
        assert float(got[0]["distance_m"]) == pytest.approx(north_m, abs=0.01)


def test_stations_sharing_one_position_are_ranked_by_id(conn: Connection):
    """Two rest stations in one building: both at the same distance, the lower id first, as
    the brute-force ordering (and `assert_same_ranking`, which now compares ids) expects."""
    q = SANYA
    here = _offset(q, 800.0, 30.0)
    ids = bulk_insert(conn, [(*here, [], "open")] * 3, prefix="HE-SAME")
    stations = [(sid, here) for sid in ids]
    for k in (1, 2, 3):
        got = queries.nearest(conn, queries.NearestFilter(lon=q[0], lat=q[1], k=k))
        ranking = [(int(r["id"]), float(r["distance_m"])) for r in got]
        want_ids = _geodesic_ids(stations, q, k)
        d = geodesic((q[1], q[0]), (here[1], here[0])).m
        assert_same_ranking(ranking, [(sid, d) for sid in want_ids])


# --- the far corners of the shifted region (found by mutation testing) ----------------------
# A courier at the very edge of the outline's bounding box: at Fuyuan (easternmost) and Mohe
# (northernmost) the GCJ-02 shift pushes the position *out* of the box, and at the southern tip
# of Hainan the point lies within 0.05° of the box's edge. Reading Amap's or Baidu's position
# back must still give the spot they stand on.
CORNER_VERTICES = {
    "Fuyuan, east": max(coords._MAINLAND_OUTLINE),
    "Mohe, north": max(coords._MAINLAND_OUTLINE, key=lambda p: p[1]),
    "Kashgar, west": min(coords._MAINLAND_OUTLINE),
    "Hainan, south": min(coords._HAINAN_OUTLINE, key=lambda p: p[1]),
}


def _just_inside(vertex: LonLat) -> list[LonLat]:
    """Points 20-500 m from an outline vertex that are inside mainland China."""
    out = []
    for bearing in range(0, 360, 30):
        for metres in (20.0, 100.0, 500.0):
            p = _offset(vertex, metres, bearing)
            if in_china(*p):
                out.append(p)
    return out


@pytest.mark.parametrize("label", sorted(CORNER_VERTICES))
def test_courier_at_a_far_corner_of_china_is_stored_where_they_stand(label):
    points = _just_inside(CORNER_VERTICES[label])
    assert len(points) >= 3
    for p in points:
        g = oracle_gcj_forward(*p)
        assert flat_metres(wgs84_to_gcj02(*p), g) < PROMISED_M
        assert flat_metres(gcj02_to_wgs84(*g), p) < PROMISED_M, (label, p)
        b = oracle_bd_forward(*g)
        assert flat_metres(wgs84_to_bd09(*p), b) < PROMISED_M
        assert flat_metres(bd09_to_wgs84(*b), p) < PROMISED_M, (label, p)
        # Baidu's own step alone, for a GCJ-02 position just inside the outline:
        assert flat_metres(coords.bd09_to_gcj02(*oracle_bd_forward(*p)), p) < PROMISED_M


def test_the_east_and_north_corners_really_leave_the_box():
    """The corner test above is only meaningful if some shifted points leave the bounding box
    of the outlines (else a box pre-check without margin would pass it by luck)."""
    _, _, maxx, maxy = coords._GREATER_BOUNDS
    east = [oracle_gcj_forward(*p) for p in _just_inside(CORNER_VERTICES["Fuyuan, east"])]
    north = [oracle_gcj_forward(*p) for p in _just_inside(CORNER_VERTICES["Mohe, north"])]
    assert any(g[0] > maxx for g in east)
    assert any(g[1] > maxy for g in north)


# Places whose side of the line is not in doubt (city centres, far from any border).
KNOWN_PLACES = {
    # name: (lon, lat, in mainland China, in Greater China)
    "Shenzhen Futian": (114.055, 22.541, True, True),
    "Beijing": (116.397, 39.909, True, True),
    "Haikou": (110.330, 20.030, True, True),
    "Sanya": (109.512, 18.253, True, True),
    "Hong Kong Central": (114.158, 22.282, False, True),
    "Macau": (113.543, 22.187, False, True),
    "Taipei": (121.565, 25.033, False, True),
    "Kinmen": (118.35, 24.45, False, True),
    "Matsu Nangan": (119.94, 26.16, False, True),
    "Vladivostok": (131.886, 43.115, False, False),
    "Hanoi": (105.834, 21.028, False, False),
    "Tokyo": (139.692, 35.690, False, False),
}


def test_regions_put_known_places_on_the_right_side():
    # Built afresh (the module builds them once at import), and through the public functions.
    mainland, greater = coords._build_regions()
    assert mainland.is_valid and greater.is_valid
    for name, (lon, lat, in_main, in_greater) in KNOWN_PLACES.items():
        assert bool(shapely.contains_xy(mainland, lon, lat)) is in_main, name
        assert bool(shapely.contains_xy(greater, lon, lat)) is in_greater, name
        assert in_china(lon, lat) is in_main, name
        assert in_greater_china(lon, lat) is in_greater, name


# --- validation and GeoJSON output ----------------------------------------------------------


def test_range_check_defaults_to_wgs84_and_names_the_systems():
    coords.check_in_range(114.3, 30.6)  # no system given: WGS-84, valid
    with pytest.raises(ValueError, match=r"^coord_sys must be one of wgs84, gcj02, bd09, got 'x'$"):
        coords.check_in_range(114.3, 30.6, "x")
    with pytest.raises(ValueError, match=r"^lon must be .*\(wgs84\), got 180\.5$"):
        coords.check_in_range(180.5, 30.6)


@pytest.mark.parametrize("convert", [coords.to_wgs84, coords.from_wgs84])
def test_conversions_refuse_an_unknown_system(convert):
    with pytest.raises(ValueError, match="coord_sys must be one of"):
        convert(114.3, 30.6, "GCJ-02")


def test_geometry_geojson_in_each_system():
    """A street drawn for Amap or Baidu lies where those apps put it (coordtransform's
    forward formulas), every vertex on the documented 1e-7° grid."""
    wuhan = [(114.3051234567, 30.5931234567), (114.3152, 30.6011)]
    line = shapely.LineString(wuhan)

    def grid(v: float) -> float:
        return round(v * 1e7) / 1e7

    plain = coords.geometry_geojson(line)
    assert plain["type"] == "LineString"
    assert [tuple(c) for c in plain["coordinates"]] == [(grid(x), grid(y)) for x, y in wuhan]
    assert plain["coordinates"][0][0] != wuhan[0][0]  # really rounded

    for sys, forward in (
        ("gcj02", coordTransform.wgs84_to_gcj02),
        ("bd09", coordTransform.wgs84_to_bd09),
    ):
        got = coords.geometry_geojson(line, sys)["coordinates"]
        assert len(got) == 2
        for (x, y), (gx, gy) in zip(wuhan, got, strict=True):
            ex, ey = forward(x, y)
            assert abs(gx - ex) < 1.5e-7 and abs(gy - ey) < 1.5e-7, (sys, x, y)
            assert gx == grid(gx) and gy == grid(gy)
