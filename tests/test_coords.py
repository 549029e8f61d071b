"""WGS-84 / GCJ-02 / BD-09 conversion (app.geo.coords): pure, no database.

Oracles are independent of the module: a second implementation from PyPI, a published point,
well-known city locations for the region test, and the geodesic distance from geopy.
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor

import coordTransform
import pytest
from geopy.distance import geodesic
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.geo.coords import (
    COORD_SYSTEMS,
    bd09_to_gcj02,
    bd09_to_wgs84,
    check_in_range,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    in_greater_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

LonLat = tuple[float, float]


def metres(a: LonLat, b: LonLat) -> float:
    """Geodesic (WGS-84 ellipsoid) distance between two (lon, lat) points."""
    return float(geodesic((a[1], a[0]), (b[1], b[0])).meters)


# --- independent implementation and a published reference point ------------------------------
# The forward formulas are checked against a second implementation from PyPI, `coordtransform`
# (MIT; a dev dependency used only here), at thousands of points; our inverses are checked by
# round trips below. Its own inverse is the one-step subtraction we deliberately do not use.


def test_forward_transforms_agree_with_an_independent_implementation(
    mainland_points: list[LonLat],
):
    # A plain import (not importorskip): a missing dev dependency must fail, not skip, the
    # only independent check of the forward formulas.
    for lon, lat in mainland_points[:3000]:
        ref_gcj = tuple(coordTransform.wgs84_to_gcj02(lon, lat))
        assert metres(wgs84_to_gcj02(lon, lat), ref_gcj) < 1e-3
        ref_bd = tuple(coordTransform.gcj02_to_bd09(*ref_gcj))
        assert metres(gcj02_to_bd09(*ref_gcj), ref_bd) < 1e-3


# Tiananmen, WGS-84 → GCJ-02 and BD-09, as shown by the DevKitLab map coordinate converter
# (https://www.devkitlab.com/en/tools/coordinate-converter/), 8 decimals.
TIANANMEN_WGS: LonLat = (116.397428, 39.90923)
TIANANMEN_GCJ: LonLat = (116.40367163, 39.91063351)
TIANANMEN_BD: LonLat = (116.4100441, 39.91697286)
EXACT_REFERENCE_TOLERANCE_M = 0.5


def test_tiananmen_reference_point():
    tol = EXACT_REFERENCE_TOLERANCE_M
    assert metres(wgs84_to_gcj02(*TIANANMEN_WGS), TIANANMEN_GCJ) < tol
    assert metres(wgs84_to_bd09(*TIANANMEN_WGS), TIANANMEN_BD) < tol
    assert metres(gcj02_to_wgs84(*TIANANMEN_GCJ), TIANANMEN_WGS) < tol
    assert metres(bd09_to_wgs84(*TIANANMEN_BD), TIANANMEN_WGS) < tol
    assert metres(bd09_to_gcj02(*TIANANMEN_BD), TIANANMEN_GCJ) < tol


@pytest.mark.slow
def test_one_step_subtraction_would_not_be_good_enough(mainland_points: list[LonLat]):
    """Guards the iterative inverse: the naive inverse g - offset(g) errs by metres somewhere."""

    def naive_inverse(g: LonLat) -> LonLat:
        f = wgs84_to_gcj02(*g)
        return (2 * g[0] - f[0], 2 * g[1] - f[1])

    gcj_points = [wgs84_to_gcj02(*p) for p in mainland_points]
    naive_worst = max(metres(naive_inverse(g), p) for g, p in zip(gcj_points, mainland_points))
    ours_worst = max(metres(gcj02_to_wgs84(*g), p) for g, p in zip(gcj_points, mainland_points))
    print(
        f"\nGCJ-02 inverse, max error: one-step {naive_worst:.2f} m, iterative {ours_worst:.1e} m"
    )
    assert naive_worst > 1.0
    assert ours_worst < 0.01


# --- region: which places are shifted ---------------------------------------------------------

# Approximate city-centre coordinates (lon, lat), WGS-84.
MAINLAND_CITIES: dict[str, LonLat] = {
    "Beijing": (116.40, 39.90),
    "Shanghai": (121.47, 31.23),
    "Urumqi": (87.62, 43.83),
    "Kashgar": (75.99, 39.47),
    "Lhasa": (91.13, 29.65),
    "Harbin": (126.63, 45.75),
    "Mohe": (122.53, 52.97),
    "Mohe Beiji village": (122.37, 53.48),
    "Sanya": (109.51, 18.25),
    "Haikou": (110.33, 20.03),
    "Xiamen": (118.09, 24.48),
    "Kunming": (102.83, 24.88),
    "Hohhot": (111.75, 40.84),
    "Dandong": (124.38, 40.13),
    "Shenzhen Futian": (114.06, 22.55),
    "Shenzhen Shekou": (113.92, 22.48),
    "Zhuhai": (113.58, 22.27),
    "Hengqin": (113.52, 22.13),
    "Guangzhou": (113.26, 23.13),
    "Fuzhou": (119.30, 26.08),
    "Heihe": (127.50, 50.25),
    "Manzhouli": (117.43, 49.60),
    "Erenhot": (111.98, 43.65),
    "Hekou": (103.95, 22.51),
    "Ruili": (97.85, 24.01),
    "Dongxing": (107.97, 21.54),
    "Hunchun": (130.37, 42.87),
    "Suifenhe": (131.15, 44.40),
    "Fuyuan": (134.29, 48.36),
    "Yining": (81.32, 43.92),
    "Tacheng": (82.98, 46.75),
    "Tashkurgan": (75.23, 37.77),
    "Zhangmu": (85.98, 27.99),
    "Yadong": (88.90, 27.48),
    "Mengla": (101.56, 21.47),
    "Arxan": (119.94, 47.18),
    "Dalian": (121.61, 38.91),
    "Weihai": (122.12, 37.51),
    "Zhoushan": (122.20, 30.00),
}

NOT_SHIFTED_NEIGHBOURS: dict[str, LonLat] = {
    "Seoul": (126.98, 37.57),
    "Pyongyang": (125.75, 39.02),
    "Tokyo": (139.69, 35.69),
    "Hanoi": (105.85, 21.03),
    "Ulaanbaatar": (106.92, 47.92),
    "Vientiane": (102.63, 17.97),
    "Yangon": (96.16, 16.87),
    "Kathmandu": (85.32, 27.72),
    "Thimphu": (89.64, 27.47),
    "Islamabad": (73.05, 33.68),
    "Almaty": (76.95, 43.24),
    "Bishkek": (74.59, 42.87),
    "Vladivostok": (131.89, 43.12),
    "Khabarovsk": (135.07, 48.48),
    "Manila": (120.98, 14.60),
    "Busan": (129.08, 35.18),
    "Lang Son": (106.76, 21.85),
    "Myitkyina": (97.40, 25.38),
    "Leh": (77.58, 34.15),
}

# Not GCJ-shifted, but inside Baidu's domestic (BD-09) area.
HK_MACAU_TAIWAN: dict[str, LonLat] = {
    "Hong Kong Central": (114.16, 22.28),
    "Hong Kong Tsim Sha Tsui": (114.17, 22.30),
    "Hong Kong Tin Shui Wai": (114.00, 22.46),
    "Hong Kong Sheung Shui": (114.13, 22.50),
    "Macau peninsula": (113.54, 22.20),
    "Macau Taipa": (113.56, 22.16),
    "Taipei": (121.56, 25.03),
    "Kaohsiung": (120.30, 22.63),
    "Penghu": (119.58, 23.57),
    "Kinmen": (118.32, 24.43),
    "Matsu": (119.95, 26.16),
}


@pytest.mark.parametrize("name", sorted(MAINLAND_CITIES))
def test_mainland_cities_are_shifted(name: str):
    p = MAINLAND_CITIES[name]
    assert in_china(*p) and in_greater_china(*p)
    assert 10.0 < metres(p, wgs84_to_gcj02(*p)) < 800.0
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(*p)), p) < 0.01
    assert metres(p, wgs84_to_bd09(*p)) > 100.0


@pytest.mark.parametrize("name", sorted(NOT_SHIFTED_NEIGHBOURS))
def test_neighbouring_cities_are_returned_unchanged(name: str):
    p = NOT_SHIFTED_NEIGHBOURS[name]
    assert not in_china(*p) and not in_greater_china(*p)
    for fn in (
        wgs84_to_gcj02,
        gcj02_to_wgs84,
        wgs84_to_bd09,
        bd09_to_wgs84,
        gcj02_to_bd09,
        bd09_to_gcj02,
    ):
        assert fn(*p) == p, fn.__name__
    for sys in COORD_SYSTEMS:
        assert to_wgs84(*p, sys) == p
        assert from_wgs84(*p, sys) == p


@pytest.mark.parametrize("name", sorted(HK_MACAU_TAIWAN))
def test_hong_kong_macau_taiwan_not_gcj_shifted_but_baidu_shifted(name: str):
    p = HK_MACAU_TAIWAN[name]
    assert not in_china(*p)
    assert in_greater_china(*p)
    assert wgs84_to_gcj02(*p) == p
    assert gcj02_to_wgs84(*p) == p
    bd = wgs84_to_bd09(*p)
    # Only Baidu's own step: ~0.0065° east, ~0.006° north, roughly 0.9-1 km.
    assert 500.0 < metres(p, bd) < 1500.0
    assert bd == gcj02_to_bd09(*p)
    assert metres(bd09_to_wgs84(*bd), p) < 0.01


def test_world_far_from_china_is_untouched():
    rng = random.Random(20240611)
    checked = 0
    while checked < 2000:
        p = (rng.uniform(-180.0, 180.0), rng.uniform(-90.0, 90.0))
        if 60.0 < p[0] < 150.0 and 0.0 < p[1] < 60.0:
            continue
        checked += 1
        assert not in_greater_china(*p)
        for sys in COORD_SYSTEMS:
            assert to_wgs84(*p, sys) == p
            assert from_wgs84(*p, sys) == p


@pytest.mark.parametrize("p", [(180.0, 90.0), (-180.0, -90.0), (0.0, 0.0), (180.0, -90.0)])
def test_extreme_valid_coordinates_pass_through(p: LonLat):
    for sys in COORD_SYSTEMS:
        assert to_wgs84(*p, sys) == p
        assert from_wgs84(*p, sys) == p


# --- round trips over the whole country -------------------------------------------------------

MARGIN_DEG = 0.02  # ~2 km: keeps samples clear of the outline, where a ~700 m shift can cross it


def well_inside(lon: float, lat: float) -> bool:
    d = MARGIN_DEG
    return all(
        in_china(lon + dx, lat + dy) for dx, dy in ((0, 0), (d, 0), (-d, 0), (0, d), (0, -d))
    )


def sample_mainland(n: int, seed: int) -> list[LonLat]:
    rng = random.Random(seed)
    points: list[LonLat] = []
    while len(points) < n:
        p = (rng.uniform(73.0, 135.2), rng.uniform(17.9, 53.7))
        if well_inside(*p):
            points.append(p)
    return points


@pytest.fixture(scope="module")
def mainland_points() -> list[LonLat]:
    return sample_mainland(10_000, seed=42)


@pytest.mark.slow
def test_gcj02_round_trip_10k_points(mainland_points: list[LonLat]):
    worst_wgs = max(metres(gcj02_to_wgs84(*wgs84_to_gcj02(*p)), p) for p in mainland_points)
    # The same points read as GCJ-02 coordinates, inverted, then shifted forward again.
    worst_gcj = max(metres(wgs84_to_gcj02(*gcj02_to_wgs84(*p)), p) for p in mainland_points)
    print(
        f"\nGCJ-02 round trip over 10k mainland points: max {worst_wgs:.3e} m / {worst_gcj:.3e} m"
    )
    assert worst_wgs < 0.01  # requirement is < 1 m; the iterative inverse does far better
    assert worst_gcj < 0.01


@pytest.mark.slow
def test_bd09_round_trip_10k_points(mainland_points: list[LonLat]):
    worst_wgs = max(metres(bd09_to_wgs84(*wgs84_to_bd09(*p)), p) for p in mainland_points)
    worst_gcj = max(metres(bd09_to_gcj02(*gcj02_to_bd09(*p)), p) for p in mainland_points)
    print(f"\nBD-09 round trip over 10k mainland points: max {worst_wgs:.3e} m / {worst_gcj:.3e} m")
    assert worst_wgs < 0.01
    assert worst_gcj < 0.01


@pytest.mark.slow
def test_gcj_offset_magnitude_is_plausible(mainland_points: list[LonLat]):
    """Sanity bounds on the GCJ-02 shift: tens to hundreds of metres, never a kilometre.

    The shift is not ≥ 100 m everywhere: the formula has its minimum, ~20 m, in western
    Qinghai near 96.6 E 37.2 N. So every point must lie in [10, 800] m, and 95% above 100 m.
    """
    offsets = sorted(metres(p, wgs84_to_gcj02(*p)) for p in mainland_points)
    assert offsets[0] > 10.0
    assert offsets[-1] < 800.0
    assert offsets[len(offsets) // 20] > 100.0


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(min_value=73.0, max_value=135.2, allow_nan=False),
    lat=st.floats(min_value=17.9, max_value=53.7, allow_nan=False),
)
def test_round_trip_property(lon: float, lat: float):
    assume(well_inside(lon, lat))
    p = (lon, lat)
    assert metres(gcj02_to_wgs84(*wgs84_to_gcj02(*p)), p) < 0.01
    assert metres(bd09_to_wgs84(*wgs84_to_bd09(*p)), p) < 0.01
    for sys in COORD_SYSTEMS:
        assert metres(to_wgs84(*from_wgs84(*p, sys), sys), p) < 0.01


@settings(max_examples=300, deadline=None)
@given(
    lon=st.floats(min_value=-180.0, max_value=180.0, allow_nan=False),
    lat=st.floats(min_value=-90.0, max_value=90.0, allow_nan=False),
)
def test_conversions_never_fail_and_stay_near(lon: float, lat: float):
    """Any valid input converts without error, and no shift exceeds ~2 km."""
    for sys in COORD_SYSTEMS:
        for out in (to_wgs84(lon, lat, sys), from_wgs84(lon, lat, sys)):
            assert all(math.isfinite(v) for v in out)
            assert abs(out[0] - lon) < 0.03 and abs(out[1] - lat) < 0.03


def test_region_test_is_consistent_across_threads():
    """FastAPI runs sync endpoints in a thread pool; the shared GEOS geometry must cope."""
    rng = random.Random(99)
    points = [(rng.uniform(70.0, 140.0), rng.uniform(15.0, 56.0)) for _ in range(4000)]
    serial = [in_china(*p) for p in points]
    with ThreadPoolExecutor(max_workers=8) as pool:
        chunks = [points[i::8] for i in range(8)]
        results = list(pool.map(lambda chunk: [in_china(*p) for p in chunk], chunks))
    threaded = {p: r for chunk, res in zip(chunks, results) for p, r in zip(chunk, res)}
    assert [threaded[p] for p in points] == serial


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "lat", "field"),
    [
        (180.5, 30.0, "lon"),
        (-181.0, 30.0, "lon"),
        (math.nan, 30.0, "lon"),
        (math.inf, 30.0, "lon"),
        (116.0, 90.01, "lat"),
        (116.0, -91.0, "lat"),
        (116.0, math.nan, "lat"),
        (116.0, -math.inf, "lat"),
    ],
)
@pytest.mark.parametrize("sys", COORD_SYSTEMS)
def test_out_of_range_raises_naming_the_field(lon: float, lat: float, field: str, sys: str):
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        check_in_range(lon, lat, sys)
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        to_wgs84(lon, lat, sys)
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        from_wgs84(lon, lat, sys)


def test_unknown_coord_sys_is_rejected():
    for bad in ("WGS84", "gcj-02", "bd09mc", ""):
        with pytest.raises(ValueError, match=r"^coord_sys\b"):
            check_in_range(116.0, 39.0, bad)
        with pytest.raises(ValueError, match=r"^coord_sys\b"):
            to_wgs84(116.0, 39.0, bad)


def test_outside_china_is_valid_for_every_system():
    for sys in COORD_SYSTEMS:
        check_in_range(-0.1276, 51.5072, sys)  # London: valid, simply not shifted
    assert COORD_SYSTEMS == ("wgs84", "gcj02", "bd09")


def test_default_coord_sys_is_wgs84():
    p = MAINLAND_CITIES["Beijing"]
    assert to_wgs84(*p) == p
    assert from_wgs84(*p) == p
