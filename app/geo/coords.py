"""WGS-84 ⇄ GCJ-02 ⇄ BD-09 conversion for coordinates that phone maps in China hand out.

Storage is always WGS-84. Amap/Gaode and Tencent give GCJ-02 (the state-mandated obfuscated
datum); Baidu gives BD-09, a second shift on top of GCJ-02. Endpoints accept a
`coord_sys` of `wgs84` (default), `gcj02` or `bd09` and use `to_wgs84` / `from_wgs84`.

Library or our own: the PyPI candidates were checked. `coordtransform` 0.2.1 (MIT) inverts
GCJ-02 by one-step subtraction, which errs by up to ~4 m, and shifts everything inside a
rectangle that contains Seoul, Hanoi and Taipei. `eviltransform` 0.1.1 (2018, unmaintained,
no licence in its package metadata) has a bisection inverse that stops at ~0.15 m and the same
rectangle. This module therefore implements the widely published formulas itself: the
GCJ-02 forward formula (Krasovsky a = 6378245.0, ee = 0.00669342162296594323), an
iterative inverse that converges to under 1 µm, and the BD-09 formula (x_pi = π·3000/180).

Where the shifts apply (from public descriptions of provider behaviour; no provider publishes
an exact boundary):

* GCJ-02 is applied only in **mainland China** (`in_china`). Hong Kong and Macau use
  WGS-84 on their own maps, and the GCJ mismatch is visible at their borders with Shenzhen and
  Zhuhai. Taiwan, Penghu, Kinmen and Matsu are also left unshifted. Developer write-ups
  describe Amap and Tencent as GCJ-02 in mainland China and WGS-84 outside it.
* BD-09 is applied in mainland China, Hong Kong, Macau and Taiwan (`in_greater_china`).
  Baidu's SDK FAQ says "domestic (including HK, Macau, Taiwan): BD09LL; overseas: WGS84", so
  outside that region `bd09` coordinates equal WGS-84. In HK, Macau and Taiwan, BD-09 is taken
  as the BD step on unshifted WGS-84. That follows from the two rules above, but no published
  reference pair there confirms it.

The mainland outline (`_MAINLAND_OUTLINE`) is a coarse polygon of about 200 vertices. It was
written for this module from well-known border geography: the Amur, Ussuri, Tumen and Yalu
rivers, the Mongolian, Central Asian and Himalayan frontiers, the Myanmar/Laos/Vietnam border,
and a coastline pushed 10-40 km out to sea. Small areas cut out of it are Hong Kong, Macau,
Kinmen and Matsu. Hainan is a separate ring. Near a land border, points within ~20-50 km may
be misclassified. Where a Chinese city sits on a border river (Dandong, Heihe, Hekou, Ruili,
Dongxing, Manzhouli), the line errs towards China. For example, Sinuiju, Blagoveshchensk and
Lao Cai may count as mainland. This is acceptable because the error it causes is the GCJ
offset itself, ~20-700 m, and border zones are thinly populated. The South China Sea islands
are not included.

Points outside the region are returned unchanged (to the last bit). For a point within
~1 km of the outline, a forward shift can move it across the line, so there
`gcj02_to_wgs84` decides on the *pre-image*. `wgs84 → gcj02 → wgs84` is exact (< 1 µm) for
every point `in_china`.
"""

from __future__ import annotations

import math
import threading
from typing import Final, Literal, get_args

import numpy as np
import shapely
import shapely.geometry
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = [
    "COORD_SYSTEMS",
    "CoordSys",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "check_in_range",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "in_greater_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CoordSys = Literal["wgs84", "gcj02", "bd09"]
COORD_SYSTEMS: Final[tuple[str, ...]] = get_args(CoordSys)

# --- GCJ-02 / BD-09 constants (the published algorithm) -------------------------------------
_A: Final = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE: Final = 0.00669342162296594323  # its first eccentricity squared
_X_PI: Final = math.pi * 3000.0 / 180.0  # BD-09 angular constant
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006

# Iterative inverses stop when the residual is below this (degrees; 1e-11° ≈ 1 µm).
_INVERSE_TOL_DEG: Final = 1e-11
_INVERSE_MAX_ITER: Final = 30
# Both shifts are far below this (GCJ-02 < 0.01°, BD-09 < 0.015°); used for cheap rejects.
_SHIFT_MARGIN_DEG: Final = 0.05

# --- Region outlines, (lon, lat) degrees WGS-84 ---------------------------------------------
# fmt: off
# Mainland China, clockwise from the Argun/Shilka confluence, five vertices a line. Derived by
# hand for this module (see module docstring); vertices sit on or slightly beyond the border on
# the foreign side where a Chinese city lies on a border river, and 10-40 km out to sea along
# the coast.
_MAINLAND_OUTLINE: Final[tuple[tuple[float, float], ...]] = (
    # Amur (Heilongjiang) downstream: Mohe, Huma, Heihe, Jiayin, Tongjiang, Fuyuan
    (121.30, 53.40), (122.40, 53.58), (123.40, 53.63), (125.20, 53.30), (126.00, 52.85),
    (126.90, 51.60), (127.70, 50.30), (129.60, 49.50), (130.80, 48.95), (131.00, 47.80),
    (132.60, 47.85), (133.60, 48.25), (134.75, 48.45),
    # Ussuri upstream, Lake Khanka, Suifenhe, Dongning, Hunchun
    (134.70, 47.75), (134.25, 46.85), (133.85, 46.05), (133.15, 45.15), (133.10, 45.05),
    (132.00, 44.95), (131.85, 44.95), (131.30, 44.45), (131.30, 44.00), (131.20, 43.45),
    (130.90, 42.95), (130.64, 42.42),
    # Tumen and Yalu rivers (North Korea): Tumen city, Changbai, Linjiang, Ji'an, Dandong
    (130.20, 42.75), (129.85, 42.90), (129.70, 42.45), (128.95, 42.05), (128.10, 41.98),
    (128.35, 41.35), (127.10, 41.60), (126.20, 41.00), (125.00, 40.45), (124.45, 40.05),
    (124.20, 39.75),
    # Coast: Liaodong, Bohai strait, Shandong, Jiangsu, Shanghai, Zhejiang, Fujian
    (123.00, 39.45), (121.90, 38.80), (121.10, 38.60), (120.80, 38.30), (121.50, 37.85),
    (122.30, 37.65), (122.80, 37.40), (122.60, 36.85), (120.90, 36.20), (119.80, 35.30),
    (119.60, 34.55), (120.60, 33.80), (121.20, 32.75), (122.15, 31.85), (122.20, 30.90),
    (122.75, 30.30), (122.45, 29.30), (122.00, 28.45), (121.30, 27.75), (120.55, 26.85),
    (120.15, 26.40), (119.95, 25.45), (119.20, 24.90), (118.80, 24.60), (118.20, 24.15),
    # Guangdong, Pearl River mouth (Hong Kong and Macau cut out below), Leizhou, Beibu Gulf
    (117.60, 23.55), (116.90, 23.05), (115.60, 22.60), (114.60, 22.40), (114.40, 22.05),
    (113.70, 21.80), (112.80, 21.55), (111.80, 21.40), (110.75, 20.95), (110.60, 20.22),
    (109.85, 20.22), (109.60, 20.90), (109.20, 20.90), (108.45, 21.45), (108.00, 21.48),
    # Vietnam: Dongxing, Youyiguan, Jingxi, Malipo, Hekou, Jinping
    (107.40, 21.62), (106.70, 21.93), (106.55, 22.45), (106.30, 22.85), (105.80, 23.20),
    (105.30, 23.30), (104.85, 22.95), (104.40, 22.70), (104.05, 22.45), (103.40, 22.72),
    (102.45, 22.70), (102.15, 22.40),
    # Laos and Myanmar: Mohan, Daluo, Menglian, Cangyuan, Ruili, Yingjiang, Pianma, Gongshan
    (101.70, 22.45), (101.78, 21.15), (101.15, 21.55), (100.15, 21.40), (99.90, 21.95),
    (99.20, 22.10), (99.10, 23.10), (98.65, 23.95), (97.55, 23.90), (97.55, 24.80),
    (98.10, 25.40), (98.55, 26.00), (98.75, 26.70), (98.45, 27.60), (97.35, 28.20),
    # Line of actual control in the east (Zayu, Medog, Cona), Bhutan, Chumbi valley, Sikkim
    (96.40, 28.95), (95.40, 29.20), (94.20, 29.15), (93.20, 28.60), (92.20, 27.85),
    (91.60, 27.90), (90.50, 28.15), (89.60, 28.20), (89.10, 27.55), (89.00, 27.25),
    (88.80, 27.35), (88.85, 27.90), (88.70, 28.10),
    # Nepal: Everest, Zhangmu, Mustang, Purang
    (88.00, 27.95), (86.90, 28.00), (85.95, 27.95), (85.30, 28.30), (84.50, 28.75),
    (83.90, 29.35), (83.20, 29.55), (82.20, 30.05), (81.30, 30.15), (81.00, 30.15),
    # India (line of actual control): Zanda, Demchok, Pangong, Galwan, Karakoram pass
    (80.20, 30.75), (79.20, 31.25), (78.75, 31.90), (79.35, 32.60), (78.85, 33.35),
    (78.75, 34.10), (78.10, 34.75), (77.80, 35.50),
    # Pakistan, Afghanistan, Tajikistan: K2, Khunjerab, Wakhan, Tashkurgan
    (76.60, 35.80), (75.90, 36.50), (75.40, 36.90), (74.85, 37.25), (74.85, 38.50),
    (74.00, 38.70), (73.65, 39.45),
    # Kyrgyzstan: Irkeshtam, Torugart, Khan Tengri
    (73.85, 39.75), (74.85, 40.50), (75.60, 40.60), (76.60, 40.35), (77.40, 41.00),
    (78.30, 41.40), (79.50, 41.85), (80.25, 42.10),
    # Kazakhstan: Ili valley, Khorgos, Alashankou, Tacheng, Zaysan, Altai
    (80.20, 42.75), (80.65, 43.20), (80.75, 43.70), (80.30, 44.30), (80.55, 45.05),
    (82.45, 45.25), (82.35, 45.60), (82.65, 46.80), (83.05, 47.25), (85.00, 47.05),
    (85.60, 47.40), (85.60, 48.10), (86.60, 48.60), (87.35, 49.15), (87.85, 49.17),
    # Mongolia: Altay, Qinghe, Ejin, Erenhot, Arxan, Hulunbuir
    (88.60, 48.40), (90.05, 47.85), (90.50, 46.95), (91.00, 46.50), (91.00, 45.30),
    (93.50, 44.95), (95.30, 44.30), (96.40, 42.75), (99.50, 42.60), (101.70, 42.50),
    (103.00, 42.00), (104.50, 41.70), (105.20, 41.60), (106.50, 42.20), (107.50, 42.40),
    (109.50, 42.50), (110.50, 42.75), (111.75, 43.80), (113.60, 44.80), (114.70, 45.45),
    (116.30, 45.85), (117.40, 46.40), (118.40, 46.80), (119.60, 46.60), (119.60, 47.25),
    (118.50, 47.95), (117.50, 47.70), (116.10, 47.70), (115.50, 48.10), (116.05, 48.75),
    (116.70, 49.85),
    # Russia: Manzhouli, then up the Argun river back to the start
    (117.80, 49.75), (119.05, 50.30), (119.85, 51.30), (120.80, 52.60),
)

_HAINAN_OUTLINE: Final[tuple[tuple[float, float], ...]] = (
    (108.50, 19.20), (108.55, 18.40), (109.50, 17.95), (110.30, 18.35), (110.75, 19.10),
    (111.15, 19.75), (110.95, 20.15), (110.10, 20.20), (109.45, 20.00), (108.65, 19.60),
)

# Hong Kong: Lantau to Mirs Bay, along the Shenzhen River (Shenzhen Bay ~22.50 N).
_HONG_KONG_OUTLINE: Final[tuple[tuple[float, float], ...]] = (
    (113.82, 22.10), (113.80, 22.30), (113.90, 22.42), (113.96, 22.505), (114.05, 22.51),
    (114.10, 22.535), (114.22, 22.555), (114.30, 22.57), (114.50, 22.45), (114.50, 22.10),
)

# Macau peninsula, Taipa, Cotai and Coloane; Zhuhai's Gongbei lies north of 22.216 N and
# Hengqin west of ~113.545 E.
_MACAU_OUTLINE: Final[tuple[tuple[float, float], ...]] = (
    (113.525, 22.215), (113.56, 22.218), (113.60, 22.16), (113.60, 22.10), (113.55, 22.10),
    (113.545, 22.15), (113.528, 22.18),
)

# Taiwan with Penghu and Orchid Island (used only for the BD-09 region).
_TAIWAN_OUTLINE: Final[tuple[tuple[float, float], ...]] = (
    (119.25, 23.00), (119.30, 23.90), (120.10, 25.45), (121.60, 25.55), (122.15, 25.00),
    (121.70, 22.00), (120.75, 21.80), (120.00, 22.50),
)

# Kinmen and the Matsu islands (Nangan/Beigan, Juguang, Dongyin): Taiwan-administered, not
# shifted, and close enough to Xiamen and Fuzhou to need cutting out of the mainland outline.
_OFFSHORE_ISLAND_BOXES: Final[tuple[tuple[float, float, float, float], ...]] = (
    (118.215, 24.37, 118.50, 24.545),  # Kinmen and Lesser Kinmen
    (119.89, 26.13, 120.03, 26.30),  # Nangan, Beigan
    (119.90, 25.93, 120.00, 26.00),  # Juguang
    (120.45, 26.33, 120.53, 26.40),  # Dongyin
)
# fmt: on


def _build_regions() -> tuple[BaseGeometry, BaseGeometry]:
    """Build (mainland, greater China) geometries, prepared for fast point queries."""
    outer = MultiPolygon([Polygon(_MAINLAND_OUTLINE), Polygon(_HAINAN_OUTLINE)])
    not_shifted = shapely.union_all(
        [Polygon(_HONG_KONG_OUTLINE), Polygon(_MACAU_OUTLINE)]
        + [box(*b) for b in _OFFSHORE_ISLAND_BOXES]
    )
    mainland = outer.difference(not_shifted)
    greater = shapely.union_all([outer, not_shifted, Polygon(_TAIWAN_OUTLINE)])
    for geom in (mainland, greater):
        if not geom.is_valid:  # pragma: no cover - guards edits to the outlines
            raise RuntimeError("coordinate region outline is not a valid polygon")
        shapely.prepare(geom)
    return mainland, greater


_MAINLAND, _GREATER_CHINA = _build_regions()
_GREATER_BOUNDS: Final = _GREATER_CHINA.bounds


def _near_region(lon: float, lat: float, margin: float = 0.0) -> bool:
    """Cheap bounding-box test (with a margin in degrees) before any polygon work."""
    minx, miny, maxx, maxy = _GREATER_BOUNDS
    return minx - margin <= lon <= maxx + margin and miny - margin <= lat <= maxy + margin


# GEOS prepared geometries build their point-in-area index lazily and are not documented as
# thread-safe (libgeos/geos#825); FastAPI runs sync endpoints in a thread pool. An uncontended
# lock costs well under a microsecond against the ~3 µs query, so take it.
_GEOS_LOCK: Final = threading.Lock()


def _in_region(region: BaseGeometry, lon: float, lat: float) -> bool:
    if not _near_region(lon, lat):
        return False  # most of the world, and NaN, never reach the polygon test
    with _GEOS_LOCK:
        return bool(shapely.contains_xy(region, lon, lat))


def in_china(lon: float, lat: float) -> bool:
    """True where map providers apply GCJ-02: mainland China, including Hainan.

    Hong Kong, Macau, Taiwan (with Penghu, Kinmen, Matsu) and every neighbouring country are
    outside. The outline is coarse (see the module docstring): within ~20-50 km of a land
    border the answer may be wrong.
    """
    return _in_region(_MAINLAND, lon, lat)


def in_greater_china(lon: float, lat: float) -> bool:
    """True where Baidu uses BD-09: mainland China plus Hong Kong, Macau and Taiwan."""
    return _in_region(_GREATER_CHINA, lon, lat)


# --- GCJ-02 ---------------------------------------------------------------------------------


def _gcj_offset(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS-84 (lon, lat), ignoring regions."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += common
    dlat += (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * math.sin(y / 12.0 * pi) + 320.0 * math.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlon += common
    dlon += (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0

    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * pi)
    return dlon, dlat


def _gcj_forward(lon: float, lat: float) -> tuple[float, float]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_inverse(lon: float, lat: float) -> tuple[float, float]:
    """Solve forward(w) = (lon, lat) by fixed-point iteration; converges to < 1 µm.

    The offset field changes by only ~1e-3 m per metre, so each step shrinks the
    error about a thousandfold: 3-4 iterations reach the tolerance.
    """
    w_lon, w_lat = lon, lat
    for _ in range(_INVERSE_MAX_ITER):
        f_lon, f_lat = _gcj_forward(w_lon, w_lat)
        r_lon, r_lat = lon - f_lon, lat - f_lat
        w_lon += r_lon
        w_lat += r_lat
        if abs(r_lon) < _INVERSE_TOL_DEG and abs(r_lat) < _INVERSE_TOL_DEG:
            break
    return w_lon, w_lat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (Amap/Tencent). Points outside mainland China are returned unchanged."""
    if not in_china(lon, lat):
        return lon, lat
    return _gcj_forward(lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84, iterative, accurate to well under 1 cm (exact inverse of the forward).

    The region test is applied to the WGS-84 pre-image, so `gcj02_to_wgs84(wgs84_to_gcj02(p))`
    returns `p` for every `p` in mainland China. A GCJ-02 point whose pre-image is outside
    mainland China is returned unchanged.
    """
    if not _near_region(lon, lat, _SHIFT_MARGIN_DEG):
        return lon, lat  # the rest of the world: no pre-image can be in China
    w_lon, w_lat = _gcj_inverse(lon, lat)
    if not in_china(w_lon, w_lat):
        return lon, lat
    return w_lon, w_lat


# --- BD-09 ----------------------------------------------------------------------------------


def _bd_forward(lon: float, lat: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.cos(theta) + _BD_DLON, z * math.sin(theta) + _BD_DLAT


def _bd_inverse(lon: float, lat: float) -> tuple[float, float]:
    """Invert the BD-09 step: the published closed form, then fixed-point refinement.

    The closed form alone is off by up to ~2e-6° (~0.2 m); a few fixed-point steps on the
    forward formula remove that.
    """
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    g_lon, g_lat = z * math.cos(theta), z * math.sin(theta)
    for _ in range(_INVERSE_MAX_ITER):
        f_lon, f_lat = _bd_forward(g_lon, g_lat)
        r_lon, r_lat = lon - f_lon, lat - f_lat
        g_lon += r_lon
        g_lat += r_lat
        if abs(r_lon) < _INVERSE_TOL_DEG and abs(r_lat) < _INVERSE_TOL_DEG:
            break
    return g_lon, g_lat


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu). Unchanged outside mainland China, Hong Kong, Macau and Taiwan."""
    if not in_greater_china(lon, lat):
        return lon, lat
    return _bd_forward(lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 → GCJ-02, exact inverse of `gcj02_to_bd09` (region tested on the pre-image)."""
    if not _near_region(lon, lat, _SHIFT_MARGIN_DEG):
        return lon, lat
    g_lon, g_lat = _bd_inverse(lon, lat)
    if not in_greater_china(g_lon, g_lat):
        return lon, lat
    return g_lon, g_lat


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → BD-09: in mainland China the GCJ-02 step, then the BD-09 step; in Hong Kong,
    Macau and Taiwan the BD-09 step alone; elsewhere unchanged.

    Both steps are decided on the WGS-84 point. (Deciding the BD-09 step on the GCJ-02 point
    left a mainland point whose GCJ-02 shift crosses Greater China's outer outline without it,
    and `bd09_to_wgs84` then read it back 700-800 m away.)"""
    if in_china(lon, lat):
        return _bd_forward(*_gcj_forward(lon, lat))
    if in_greater_china(lon, lat):
        return _bd_forward(lon, lat)
    return lon, lat


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """BD-09 → WGS-84, the exact inverse of `wgs84_to_bd09`: `bd09_to_wgs84(wgs84_to_bd09(p))`
    is `p` for every `p` in Greater China. Regions are tested on the WGS-84 pre-image; where a
    BD-09 point has both a mainland reading and another one, the mainland reading wins (as in
    `gcj02_to_wgs84`)."""
    if not _near_region(lon, lat, _SHIFT_MARGIN_DEG):
        return lon, lat
    g_lon, g_lat = _bd_inverse(lon, lat)
    w_lon, w_lat = _gcj_inverse(g_lon, g_lat)
    if in_china(w_lon, w_lat):
        return w_lon, w_lat
    if in_greater_china(g_lon, g_lat) and not in_china(g_lon, g_lat):
        return g_lon, g_lat
    return lon, lat


# --- validation and dispatch ----------------------------------------------------------------


def check_in_range(lon: float, lat: float, sys: str = "wgs84") -> None:
    """Raise ValueError naming `lon`, `lat` or `coord_sys` when the input is unusable.

    Every system needs finite lon in [-180, 180] and lat in [-90, 90]. GCJ-02 and BD-09 are
    only *meaningful* inside China, but points outside pass and are left unshifted; that is not
    an error.
    """
    if sys not in COORD_SYSTEMS:
        raise ValueError(f"coord_sys must be one of {', '.join(COORD_SYSTEMS)}, got {sys!r}")
    if not math.isfinite(lon) or not -180.0 <= lon <= 180.0:
        raise ValueError(f"lon must be a finite number in [-180, 180] ({sys}), got {lon!r}")
    if not math.isfinite(lat) or not -90.0 <= lat <= 90.0:
        raise ValueError(f"lat must be a finite number in [-90, 90] ({sys}), got {lat!r}")


def to_wgs84(lon: float, lat: float, sys: str = "wgs84") -> tuple[float, float]:
    """Convert (lon, lat) given in `sys` to WGS-84 for storage; validates first."""
    check_in_range(lon, lat, sys)
    if sys == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if sys == "bd09":
        return bd09_to_wgs84(lon, lat)
    return float(lon), float(lat)


def from_wgs84(lon: float, lat: float, sys: str = "wgs84") -> tuple[float, float]:
    """Convert stored WGS-84 (lon, lat) to `sys` for a response; validates first."""
    check_in_range(lon, lat, sys)
    if sys == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if sys == "bd09":
        return wgs84_to_bd09(lon, lat)
    return float(lon), float(lat)


def geometry_geojson(geom: BaseGeometry, sys: str = "wgs84") -> dict[str, object]:
    """GeoJSON geometry of a WGS-84 shapely geometry in `sys`, on a 1e-7° grid (~1 cm)."""
    if sys != "wgs84":

        def move(xy: np.ndarray) -> np.ndarray:
            return np.array([from_wgs84(x, y, sys) for x, y in xy])

        geom = shapely.transform(geom, move)
    return dict(shapely.geometry.mapping(shapely.set_precision(geom, 1e-7)))
