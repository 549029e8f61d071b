"""Generate the demo data set `geodata/wuhan_demo_stations.geojson`.

The positions come from the real OpenStreetMap street network of Wuhan that ships inside the
PyPI source distribution of ``neatnet`` 0.1.6 (``data/wuhan_8989/original.parquet``, ODbL 1.0,
(c) OpenStreetMap contributors). Stations are put beside local streets, drawn with a weight that
grows with the local street density, so the old town and the commercial centres get many and
the outskirts few. Everything else (names, addresses, operators, phones, amenities, hours) is
invented SAMPLE data: none of it describes a real station.

Usage::

    python scripts/make_demo_stations.py [--count 400] [--seed 20261122]
                                         [--out geodata/wuhan_demo_stations.geojson]

Needs ``pyarrow``, ``pyproj`` and ``shapely`` (and optionally ``opening-hours-py`` to validate
the opening_hours strings). The sdist is fetched with pip into the git-ignored ``.cache/``.
The output is byte-for-byte reproducible for a given ``--count`` and ``--seed``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import shapely
from pyproj import Geod, Transformer

# --------------------------------------------------------------------------------------------
# Source data
# --------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "neatnet"
SDIST_NAME = "neatnet-0.1.6.tar.gz"
SDIST_SHA256 = "a1f760e0875a7f42a778d86293c397b37ee61e71fba49769c2b3db30271a7fff"
PARQUET_MEMBER = "neatnet-0.1.6/data/wuhan_8989/original.parquet"
SOURCE_EPSG = 32650  # WGS 84 / UTM zone 50N

#: The box every station must fall in (WGS-84 degrees).
MIN_LON, MAX_LON = 113.98, 114.55
MIN_LAT, MAX_LAT = 30.38, 30.78

#: Street classes a rest station can sit beside (no motorways, trunks or their links).
LOCAL_HIGHWAYS: dict[str, float] = {
    "residential": 1.0,
    "living_street": 1.0,
    "tertiary": 1.0,
    "secondary": 0.9,
    "primary": 0.7,
    "unclassified": 0.6,
    "service": 0.5,
}

#: Streets that make up the urban fabric whose density is measured (all but fast roads).
DENSITY_HIGHWAYS: frozenset[str] = frozenset(
    {*LOCAL_HIGHWAYS, "pedestrian", "primary_link", "secondary_link", "tertiary_link"}
)

CANDIDATE_SPACING_M = 60.0
DENSITY_RADIUS_M = 500.0
DENSITY_POWER = 2.0
#: A site needs this much street within NEAR_RADIUS_M (keeps stations off bridge decks).
NEAR_RADIUS_M = 250.0
NEAR_MIN_LENGTH_M = 1200.0
#: Extra weight near the commercial centres flagged in LANDMARKS.
CENTRE_BOOST = 3.0
CENTRE_SIGMA_M = 700.0
MIN_SPACING_M = 150.0
#: A station stands beside the street, not on its centre line.
OFFSET_RANGE_M = (8.0, 18.0)

DEFAULT_COUNT = 400
DEFAULT_SEED = 20261122
DEFAULT_OUT = REPO_ROOT / "geodata" / "wuhan_demo_stations.geojson"

DESCRIPTION = (
    "Generated SAMPLE data, not real stations: demo union rest stations (工会驿站/户外劳动者服务"
    "站点) in Wuhan. Names, addresses, operators, phones, amenities and hours are invented; "
    "district codes are approximate. Positions are derived from OpenStreetMap data, "
    "© OpenStreetMap contributors, ODbL 1.0 (via the neatnet 0.1.6 sdist). "
    "Made by scripts/make_demo_stations.py."
)

# --------------------------------------------------------------------------------------------
# Vocabularies (same codes as app/stations/vocab.py)
# --------------------------------------------------------------------------------------------

AMENITY_ORDER: tuple[str, ...] = (
    "drinking_water",
    "hot_water",
    "microwave",
    "fridge",
    "phone_charging",
    "ebike_charging",
    "toilet",
    "air_conditioning",
    "heating",
    "seating",
    "first_aid",
    "wifi",
    "rain_shelter",
    "lockers",
    "accessible_entrance",
)
HOST_TYPES: tuple[str, ...] = (
    "union_office",
    "community",
    "bank",
    "fuel_station",
    "telecom_shop",
    "sanitation_depot",
    "mall",
    "enterprise",
    "other",
)
ACCESS_VALUES: tuple[str, ...] = ("outdoor_workers", "drivers_only", "public")
STATUS_VALUES: tuple[str, ...] = ("open", "temporarily_closed", "closed")

#: Probability of each amenity (in AMENITY_ORDER) per host type.
AMENITY_P: dict[str, tuple[float, ...]] = {
    # drinking, hot water, microwave, fridge, phone, e-bike, toilet, AC, heating, seats,
    # first aid, wifi, rain shelter, lockers, accessible entrance
    "bank": (.97, .50, .08, .10, .92, .05, .35, .97, .85, .97, .85, .85, .50, .04, .10),
    "community": (.95, .75, .28, .30, .80, .30, .70, .90, .60, .95, .70, .60, .60, .05, .06),
    "union_office": (.98, .80, .40, .45, .90, .25, .80, .95, .75, .95, .85, .80, .50, .12, .10),
    "fuel_station": (.85, .95, .45, .20, .70, .10, .97, .80, .50, .90, .50, .50, .60, .03, .05),
    "telecom_shop": (.90, .40, .05, .05, .98, .10, .20, .95, .70, .95, .50, .95, .40, .02, .10),
    "sanitation_depot": (.95, .95, .60, .35, .70, .45, .85, .70, .50, .90, .60, .20, .80, .25, .02),
    "mall": (.95, .60, .20, .15, .90, .15, .98, .98, .90, .95, .80, .90, .40, .10, .50),
    "enterprise": (.95, .80, .30, .30, .85, .40, .75, .85, .60, .90, .70, .60, .50, .10, .05),
    "other": (.90, .60, .20, .15, .80, .20, .60, .80, .50, .95, .60, .60, .60, .05, .12),
}

#: (opening_hours, weight) per host type.
HOURS: dict[str, tuple[tuple[str, int], ...]] = {
    "bank": (
        ("Mo-Fr 09:00-17:00; Sa 09:00-12:00; Su,PH off", 5),
        ("Mo-Fr 08:30-17:30", 4),
        ("Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00", 4),
        ("Mo-Su 09:00-17:00", 3),
        ("Mo-Fr 08:30-17:00; PH off", 2),
    ),
    "community": (
        ("Mo-Fr 08:30-17:30", 4),
        ("Mo-Fr 08:00-18:00; PH off", 4),
        ("Mo-Su 07:00-21:00", 3),
        ("Mo-Fr 08:30-12:00,14:00-17:30; PH off", 2),
        ("Mo-Su 08:00-20:00", 2),
        ("24/7", 1),
    ),
    "union_office": (
        ("Mo-Fr 08:30-17:30; PH off", 3),
        ("Mo-Su 08:00-20:00", 3),
        ("Mo-Su 07:00-21:00", 2),
        ("24/7", 1),
    ),
    "fuel_station": (
        ("24/7", 14),
        ("Mo-Su 06:00-22:00", 3),
        ("Mo-Su 06:00-23:00", 2),
        ("Mo-Su 00:00-24:00", 1),
    ),
    "telecom_shop": (
        ("Mo-Su 09:00-21:00", 4),
        ("Mo-Su 08:30-20:30", 3),
        ("Mo-Su 09:00-18:00", 2),
    ),
    "sanitation_depot": (
        ("Mo-Su 05:00-21:00", 4),
        ("24/7", 4),
        ("Mo-Su 04:30-20:00", 2),
        ("Mo-Su 18:00-02:00", 1),
        ("Mo-Su 06:00-22:00", 2),
    ),
    "mall": (
        ("Mo-Su 10:00-22:00", 4),
        ("Mo-Su 09:30-22:00", 2),
        ("Mo-Th 10:00-22:00; Fr-Su 10:00-22:30", 1),
    ),
    "enterprise": (
        ("Mo-Su 07:00-21:00", 3),
        ("24/7", 2),
        ("Mo-Sa 08:00-20:00", 2),
        ("Mo-Su 18:00-02:00", 1),
    ),
    "other": (
        ("Mo-Su 06:00-22:00", 3),
        ("Mo-Su 07:00-21:00", 3),
        ("Mo-Fr 09:00-17:00; Sa,Su 10:00-16:00", 2),
        ("Mo-Su 18:00-02:00", 1),
        ("24/7", 1),
    ),
}

CAPACITY: dict[str, tuple[int, int]] = {
    "bank": (4, 12),
    "community": (6, 30),
    "union_office": (8, 40),
    "fuel_station": (4, 16),
    "telecom_shop": (4, 10),
    "sanitation_depot": (6, 24),
    "mall": (10, 40),
    "enterprise": (6, 30),
    "other": (4, 20),
}

# --------------------------------------------------------------------------------------------
# Places (approximate positions, chosen by hand; only used for naming and district codes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class District:
    """A Wuhan district: its code, its name and real road names used for sample addresses."""

    code: str
    name: str
    roads: tuple[str, ...]


DISTRICTS: dict[str, District] = {
    d.code: d
    for d in (
        District("420102", "江岸区", ("解放大道", "中山大道", "建设大道", "京汉大道", "沿江大道",
                                       "胜利街", "黄浦大街", "二七路", "发展大道", "后湖大道",
                                       "台北路", "香港路", "三阳路", "金桥大道", "黄孝河路")),
        District("420103", "江汉区", ("江汉路", "解放大道", "中山大道", "建设大道", "京汉大道",
                                       "新华路", "青年路", "唐家墩路", "常青路", "发展大道",
                                       "万松园路", "航空路", "红旗渠路", "雪松路")),
        District("420104", "硚口区", ("解放大道", "中山大道", "京汉大道", "汉正街", "长堤街",
                                       "沿河大道", "古田一路", "古田二路", "古田四路", "长风路",
                                       "宝丰路", "武胜路", "利济北路", "崇仁路", "汉西一路")),
        District("420105", "汉阳区", ("汉阳大道", "鹦鹉大道", "龙阳大道", "墨水湖北路",
                                       "琴台大道", "拦江路", "翠微路", "江城大道", "四新大道",
                                       "归元寺路", "汉阳大街", "晴川大道", "芳草路")),
        District("420106", "武昌区", ("中山路", "武珞路", "中南路", "中北路", "友谊大道",
                                       "和平大道", "徐东大街", "秦园路", "临江大道", "解放路",
                                       "民主路", "彭刘杨路", "首义路", "白沙洲大道", "八一路",
                                       "东湖路", "紫阳路")),
        District("420107", "青山区", ("和平大道", "友谊大道", "建设一路", "建设二路", "建设三路",
                                       "冶金大道", "工业路", "红钢城大街", "吉林街")),
        District("420111", "洪山区", ("珞喻路", "雄楚大道", "鲁磨路", "民族大道", "光谷大道",
                                       "关山大道", "南湖大道", "书城路", "卓刀泉路", "珞狮路",
                                       "虎泉街", "团结大道", "欢乐大道", "仁和路", "青菱大道")),
        District("420112", "东西湖区", ("东西湖大道", "金银湖路", "将军路", "临空港大道",
                                         "金山大道", "吴中街", "马池路")),
        District("420113", "汉南区", ("汉南大道", "军山大道", "通航大道")),
        District("420114", "蔡甸区", ("蔡甸大街", "树藩大街", "知音湖大道", "中法大道",
                                       "东风大道", "沌阳大道", "神龙大道", "车城南路")),
        District("420115", "江夏区", ("文化大道", "江夏大道", "藏龙大道", "光谷二路",
                                       "流芳大道")),
        District("420116", "黄陂区", ("盘龙大道", "巨龙大道", "汉口北大道", "腾龙大道",
                                       "川龙大道")),
        District("420117", "新洲区", ("阳逻大道", "平江大道", "港城大道")),
    )
}


@dataclass(frozen=True, slots=True)
class Subdistrict:
    """A sub-district (街道 or similar) with a rough reference point and its district."""

    admin: str  # full name, e.g. "大智街道"
    place: str  # short place name, e.g. "大智"
    district: str  # district code
    lon: float
    lat: float


def _subs(district: str, rows: Sequence[tuple[str, float, float]]) -> list[Subdistrict]:
    out = []
    for place, lon, lat in rows:
        admin = place if place.endswith(("开发区", "岛")) else place + "街道"
        short = place.removesuffix("经济开发区")
        out.append(Subdistrict(admin, short, district, lon, lat))
    return out


#: Reference points; a station gets the district of the nearest one (approximate on purpose).
SUBDISTRICTS: tuple[Subdistrict, ...] = tuple(
    _subs("420102", (("大智", 114.296, 30.594), ("一元", 114.301, 30.589),
                     ("车站", 114.302, 30.598), ("四唯", 114.308, 30.603),
                     ("永清", 114.313, 30.611), ("西马", 114.292, 30.598),
                     ("球场", 114.284, 30.610), ("劳动", 114.296, 30.610),
                     ("二七", 114.332, 30.637), ("新村", 114.316, 30.626),
                     ("丹水池", 114.340, 30.653), ("台北", 114.296, 30.618),
                     ("花桥", 114.306, 30.628), ("谌家矶", 114.362, 30.684),
                     ("后湖", 114.290, 30.650), ("塔子湖", 114.290, 30.633),
                     ("百步亭花园路", 114.300, 30.643)))
    + _subs("420103", (("民族", 114.289, 30.578), ("花楼", 114.284, 30.576),
                       ("水塔", 114.281, 30.581), ("民权", 114.277, 30.579),
                       ("满春", 114.272, 30.578), ("民意", 114.270, 30.588),
                       ("新华", 114.265, 30.595), ("万松", 114.258, 30.600),
                       ("唐家墩", 114.258, 30.615), ("北湖", 114.271, 30.606),
                       ("前进", 114.278, 30.586), ("常青", 114.250, 30.625),
                       ("汉兴", 114.266, 30.633)))
    + _subs("420104", (("古田", 114.207, 30.594), ("韩家墩", 114.230, 30.592),
                       ("宗关", 114.240, 30.578), ("汉水桥", 114.250, 30.580),
                       ("宝丰", 114.255, 30.588), ("荣华", 114.262, 30.578),
                       ("汉中", 114.267, 30.573), ("汉正", 114.272, 30.570),
                       ("六角亭", 114.262, 30.582), ("易家", 114.224, 30.601),
                       ("长丰", 114.228, 30.615)))
    + _subs("420105", (("建桥", 114.273, 30.561), ("晴川", 114.279, 30.557),
                       ("鹦鹉", 114.265, 30.545), ("洲头", 114.270, 30.534),
                       ("五里墩", 114.245, 30.561), ("琴断口", 114.220, 30.565),
                       ("江汉二桥", 114.250, 30.567), ("永丰", 114.195, 30.565),
                       ("四新", 114.215, 30.520), ("江堤", 114.250, 30.510),
                       ("龙阳", 114.215, 30.550)))
    + _subs("420106", (("积玉桥", 114.306, 30.565), ("杨园", 114.330, 30.580),
                       ("徐家棚", 114.338, 30.590), ("粮道", 114.310, 30.552),
                       ("中华路", 114.298, 30.553), ("黄鹤楼", 114.300, 30.543),
                       ("紫阳", 114.305, 30.535), ("白沙洲", 114.297, 30.505),
                       ("首义路", 114.312, 30.538), ("中南路", 114.335, 30.538),
                       ("水果湖", 114.345, 30.555), ("珞珈山", 114.360, 30.540),
                       ("南湖", 114.330, 30.505)))
    + _subs("420107", (("红卫路", 114.385, 30.640), ("冶金", 114.395, 30.638),
                       ("新沟桥", 114.372, 30.625), ("红钢城", 114.402, 30.628),
                       ("工人村", 114.392, 30.650), ("青山镇", 114.397, 30.658),
                       ("厂前", 114.421, 30.630), ("武东", 114.440, 30.625),
                       ("白玉山", 114.455, 30.637), ("钢花村", 114.380, 30.628)))
    + _subs("420111", (("珞南", 114.385, 30.515), ("关山", 114.410, 30.490),
                       ("狮子山", 114.355, 30.480), ("张家湾", 114.315, 30.490),
                       ("梨园", 114.370, 30.575), ("卓刀泉", 114.370, 30.517),
                       ("洪山", 114.340, 30.522), ("和平", 114.370, 30.600),
                       ("青菱", 114.285, 30.455), ("关东", 114.425, 30.500),
                       ("九峰", 114.470, 30.500), ("花山", 114.510, 30.560),
                       ("左岭", 114.540, 30.605), ("建设乡", 114.400, 30.600)))
    + _subs("420112", (("吴家山", 114.135, 30.630), ("将军路", 114.225, 30.652),
                       ("慈惠", 114.170, 30.600), ("走马岭", 114.095, 30.600),
                       ("径河", 114.120, 30.660), ("长青", 114.215, 30.665),
                       ("金银湖", 114.195, 30.655), ("新沟镇", 114.045, 30.650),
                       ("东山", 114.150, 30.700), ("柏泉", 114.100, 30.730)))
    + _subs("420113", (("军山", 114.095, 30.425),))
    + _subs("420114", (("蔡甸", 114.030, 30.580), ("奓山", 114.030, 30.480),
                       ("永安", 114.005, 30.530), ("张湾", 114.080, 30.545),
                       ("沌口", 114.165, 30.495), ("沌阳", 114.135, 30.515)))
    + _subs("420115", (("佛祖岭", 114.440, 30.455), ("豹澥", 114.520, 30.470),
                       ("庙山", 114.360, 30.420), ("藏龙岛", 114.415, 30.415),
                       ("大桥新区", 114.300, 30.400), ("滨湖", 114.500, 30.420)))
    + _subs("420116", (("盘龙城经济开发区", 114.265, 30.700), ("滠口", 114.340, 30.705),
                       ("横店", 114.300, 30.775), ("天河", 114.210, 30.760),
                       ("武湖", 114.420, 30.700)))
    + _subs("420117", (("阳逻", 114.540, 30.670),))
)


@dataclass(frozen=True, slots=True)
class Landmark:
    """A well-known place used in names and addresses of nearby stations."""

    name: str
    lon: float
    lat: float
    roads: tuple[str, ...]
    metro: bool = False
    centre: bool = False  # a commercial centre that draws extra stations


LANDMARKS: tuple[Landmark, ...] = (
    Landmark(
        "江汉路", 114.2875, 30.5810, ("江汉路", "中山大道", "沿江大道"), metro=True, centre=True
    ),
    Landmark(
        "中山公园", 114.2645, 30.5870, ("解放大道", "青年路", "京汉大道"), metro=True, centre=True
    ),
    Landmark("武汉广场", 114.2680, 30.5845, ("解放大道", "新华路")),
    Landmark(
        "循礼门", 114.2790, 30.5890, ("解放大道", "京汉大道", "航空路"), metro=True, centre=True
    ),
    Landmark(
        "大智路", 114.2950, 30.5930, ("中山大道", "京汉大道", "解放大道"), metro=True, centre=True
    ),
    Landmark("三阳路", 114.3040, 30.6020, ("三阳路", "解放大道", "中山大道"), metro=True),
    Landmark("武汉天地", 114.3120, 30.6065, ("中山大道", "沿江大道"), centre=True),
    Landmark("黄浦路", 114.3180, 30.6160, ("黄浦大街", "解放大道"), metro=True),
    Landmark("汉口火车站", 114.2550, 30.6175, ("发展大道", "常青路"), centre=True),
    Landmark("唐家墩", 114.2580, 30.6070, ("唐家墩路", "建设大道")),
    Landmark("后湖", 114.2950, 30.6500, ("后湖大道", "金桥大道"), centre=True),
    Landmark("常青花园", 114.2430, 30.6380, ("常青路", "发展大道"), metro=True),
    Landmark(
        "汉正街", 114.2705, 30.5705, ("汉正街", "沿河大道", "长堤街"), metro=True, centre=True
    ),
    Landmark("宗关", 114.2400, 30.5760, ("解放大道", "汉西一路"), metro=True, centre=True),
    Landmark("古田", 114.2070, 30.5930, ("古田二路", "古田四路", "解放大道")),
    Landmark(
        "钟家村", 114.2680, 30.5530, ("汉阳大道", "鹦鹉大道", "汉阳大街"), metro=True, centre=True
    ),
    Landmark("王家湾", 114.2140, 30.5580, ("汉阳大道", "龙阳大道"), metro=True, centre=True),
    Landmark("四新", 114.2050, 30.5150, ("四新大道", "江城大道")),
    Landmark("积玉桥", 114.3060, 30.5650, ("和平大道", "临江大道"), metro=True, centre=True),
    Landmark("司门口", 114.3000, 30.5470, ("解放路", "民主路", "彭刘杨路"), centre=True),
    Landmark("首义广场", 114.3070, 30.5390, ("武珞路", "首义路")),
    Landmark("武昌火车站", 114.3165, 30.5290, ("中山路", "武珞路"), centre=True),
    Landmark("中南路", 114.3345, 30.5400, ("中南路", "武珞路", "中北路"), metro=True, centre=True),
    Landmark("楚河汉街", 114.3430, 30.5580, ("中北路", "东湖路"), centre=True),
    Landmark("徐东", 114.3450, 30.5880, ("徐东大街", "友谊大道", "秦园路"), centre=True),
    Landmark("街道口", 114.3520, 30.5270, ("珞喻路", "武珞路", "珞狮路"), metro=True, centre=True),
    Landmark("广埠屯", 114.3650, 30.5240, ("珞喻路", "卓刀泉路"), metro=True),
    Landmark(
        "光谷广场", 114.3980, 30.5050, ("珞喻路", "鲁磨路", "民族大道"), metro=True, centre=True
    ),
    Landmark("光谷软件园", 114.4130, 30.4850, ("关山大道", "光谷大道")),
    Landmark("南湖", 114.3270, 30.4960, ("南湖大道", "雄楚大道")),
    Landmark("武汉火车站", 114.4240, 30.6075, ("团结大道", "欢乐大道")),
    Landmark("红钢城", 114.4000, 30.6280, ("和平大道", "冶金大道", "建设二路"), centre=True),
    Landmark("吴家山", 114.1350, 30.6330, ("东西湖大道", "吴中街", "金山大道"), centre=True),
    Landmark("金银湖", 114.2000, 30.6570, ("金银湖路", "将军路")),
    Landmark("沌口", 114.1650, 30.4950, ("东风大道", "沌阳大道", "车城南路")),
    Landmark("盘龙城", 114.2650, 30.7000, ("盘龙大道", "巨龙大道")),
    Landmark("阳逻", 114.5400, 30.6700, ("阳逻大道", "平江大道")),
    Landmark("藏龙岛", 114.4150, 30.4150, ("藏龙大道", "江夏大道")),
)
LANDMARK_RADIUS_M = 1200.0


@dataclass(frozen=True, slots=True)
class Mall:
    """A shopping centre that hosts a station when a selected point lies close to it."""

    name: str
    lon: float
    lat: float
    operator: str


MALLS: tuple[Mall, ...] = (
    Mall("武商广场", 114.2680, 30.5855, "武商集团工会"),
    Mall("汉街万达广场", 114.3440, 30.5585, "武汉万达广场商业管理有限公司"),
    Mall("菱角湖万达广场", 114.2620, 30.6050, "武汉万达广场商业管理有限公司"),
    Mall("武汉天地", 114.3120, 30.6065, "武汉天地商业管理有限公司"),
    Mall("群光广场", 114.3530, 30.5275, "武汉群光广场工会"),
    Mall("中商广场", 114.3365, 30.5400, "中商集团工会"),
    Mall("销品茂", 114.3450, 30.5880, "武汉销品茂工会"),
    Mall("光谷世界城", 114.4060, 30.5010, "光谷世界城商业管理有限公司"),
    Mall("王家湾摩尔城", 114.2145, 30.5575, "摩尔城商业管理有限公司"),
    Mall("永旺梦乐城金银潭", 114.2260, 30.6550, "永旺梦乐城（湖北）商业管理有限公司"),
)
MALL_RADIUS_M = 800.0

COMMUNITY_WORDS: tuple[str, ...] = (
    "惠民", "幸福", "和平", "永安", "红旗", "新华", "东方", "建设", "友谊", "胜利", "长青", "光明",
    "花园", "桃源", "兴业", "育才", "民主", "青年", "复兴", "同心", "新桥", "百花", "丰收", "车站",
    "滨江", "锦绣", "康居", "新城", "南苑", "北苑", "紫荆", "翠园", "江滩", "工农", "向阳", "朝阳",
)

BANKS: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    # (bank, operator, station labels, weight)
    ("中国建设银行", "中国建设银行武汉分行", ("劳动者港湾",), 6),
    ("中国工商银行", "中国工商银行武汉分行", ("工行驿站", "户外劳动者服务站点"), 6),
    ("中国农业银行", "中国农业银行武汉分行", ("农情暖域", "爱心驿站"), 4),
    ("中国银行", "中国银行湖北省分行", ("爱心驿站", "户外劳动者服务站点"), 4),
    ("交通银行", "交通银行湖北省分行", ("爱心驿站",), 2),
    ("招商银行", "招商银行武汉分行", ("爱心驿站",), 2),
    ("汉口银行", "汉口银行", ("爱心驿站", "工会驿站"), 3),
    ("湖北银行", "湖北银行武汉分行", ("爱心驿站",), 2),
    ("武汉农村商业银行", "武汉农村商业银行", ("户外劳动者服务站点", "爱心驿站"), 3),
    ("中国邮政储蓄银行", "中国邮政储蓄银行武汉市分行", ("爱心驿站",), 2),
)
#: Banks named without a "武汉" before the branch (they are Wuhan banks already).
LOCAL_BANKS = frozenset({"汉口银行", "武汉农村商业银行"})

FUEL_BRANDS: tuple[tuple[str, str, int], ...] = (
    ("中国石化", "中国石化湖北石油分公司", 6),
    ("中国石油", "中国石油湖北销售分公司", 3),
    ("中化石油", "中化石油湖北有限公司", 1),
)
CARRIERS: tuple[tuple[str, str, int], ...] = (
    ("中国移动", "中国移动湖北公司武汉分公司", 4),
    ("中国电信", "中国电信武汉分公司", 3),
    ("中国联通", "中国联通武汉市分公司", 3),
)

# --------------------------------------------------------------------------------------------
# Fetching and reading the network
# --------------------------------------------------------------------------------------------


def fetch_sdist(cache_dir: Path = CACHE_DIR) -> Path:
    """Download the neatnet 0.1.6 sdist with pip into `cache_dir` unless it is there already.

    The file's SHA-256 is checked, so a changed upload cannot silently change the output.
    """
    sdist = cache_dir / SDIST_NAME
    if not sdist.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "neatnet",
            "neatnet==0.1.6", "-d", str(cache_dir),
        ]
        subprocess.run(cmd, check=True)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{sdist}: unexpected SHA-256 {digest}")
    return sdist


def extract_parquet(sdist: Path, cache_dir: Path = CACHE_DIR) -> Path:
    """Extract only the Wuhan street network GeoParquet from the sdist (once)."""
    target = cache_dir / "wuhan_8989_original.parquet"
    if target.exists():
        return target
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(PARQUET_MEMBER)
        if member is None:
            raise RuntimeError(f"{PARQUET_MEMBER} missing from {sdist}")
        data = member.read()
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate station sites spaced along local streets, in UTM 50N metres."""

    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray  # unit direction of the street at the site
    dy: np.ndarray
    highway: list[str]
    weight: np.ndarray
    density: np.ndarray  # metres of street within DENSITY_RADIUS_M


def points_along(
    lines: np.ndarray, spacing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points every ~`spacing` metres along each line (at least its midpoint).

    Returns x, y, the unit direction dx, dy of the line there, and the index of the line.
    """
    lengths = shapely.length(lines)
    counts = np.maximum(1, np.rint(lengths / spacing)).astype(np.int64)
    line_idx = np.repeat(np.arange(len(lines)), counts)
    first = np.cumsum(counts) - counts
    k = np.arange(len(line_idx)) - np.repeat(first, counts)
    step_len = lengths[line_idx] / counts[line_idx]
    at = (k + 0.5) * step_len
    parts = lines[line_idx]
    pts = shapely.line_interpolate_point(parts, at)
    delta = np.minimum(5.0, step_len / 4.0)
    before = shapely.line_interpolate_point(parts, at - delta)
    after = shapely.line_interpolate_point(parts, at + delta)
    dx = shapely.get_x(after) - shapely.get_x(before)
    dy = shapely.get_y(after) - shapely.get_y(before)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    return shapely.get_x(pts), shapely.get_y(pts), dx / norm, dy / norm, line_idx


def street_density(
    lines: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float = DENSITY_RADIUS_M
) -> np.ndarray:
    """Metres of street within `radius` of each (x, y), counted on a 50 m integer grid.

    The streets are cut into 25 m pieces whose centres are binned; a disc of cells is summed.
    Integer arithmetic keeps the result exactly reproducible.
    """
    cell, piece = 50.0, 25.0
    px, py, _, _, _ = points_along(lines, piece)
    x0 = min(px.min(), x.min()) - radius - cell
    y0 = min(py.min(), y.min()) - radius - cell
    r = math.ceil(radius / cell)
    ix, iy = ((px - x0) // cell).astype(np.int64), ((py - y0) // cell).astype(np.int64)
    cx, cy = ((x - x0) // cell).astype(np.int64), ((y - y0) // cell).astype(np.int64)
    shape = (int(max(ix.max(), cx.max())) + r + 2, int(max(iy.max(), cy.max())) + r + 2)
    grid = np.zeros(shape, dtype=np.int64)
    np.add.at(grid, (ix, iy), 1)
    total = np.zeros_like(grid)
    pad = np.pad(grid, r)
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            if i * i + j * j <= r * r:
                total += pad[r + i : r + i + shape[0], r + j : r + j + shape[1]]
    return total[cx, cy].astype(float) * piece


def centre_boost(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """1 + CENTRE_BOOST * a Gaussian bump around the nearest commercial centre."""
    best = np.zeros_like(lon)
    for lm in LANDMARKS:
        if not lm.centre:
            continue
        kx = 111_320.0 * math.cos(math.radians(lm.lat))
        d2 = ((lon - lm.lon) * kx) ** 2 + ((lat - lm.lat) * 110_574.0) ** 2
        best = np.maximum(best, np.exp(-d2 / (2.0 * CENTRE_SIGMA_M**2)))
    return 1.0 + CENTRE_BOOST * best


def load_candidates(
    parquet: Path, power: float = DENSITY_POWER, boost: bool = True
) -> Candidates:
    """Read the network and build weighted candidate sites beside local streets."""
    table = pq.read_table(parquet, columns=["highway", "geometry"])
    highway = np.array([str(h) for h in table.column("highway").to_pylist()])
    lines = shapely.from_wkb(table.column("geometry").to_numpy(zero_copy_only=False))
    local = np.isin(highway, list(LOCAL_HIGHWAYS))
    fabric = np.isin(highway, list(DENSITY_HIGHWAYS))

    x, y, dx, dy, idx = points_along(lines[local], CANDIDATE_SPACING_M)
    site_highway = highway[local][idx].tolist()
    density = street_density(lines[fabric], x, y)
    near = street_density(lines[fabric], x, y, NEAR_RADIUS_M)

    to_wgs = Transformer.from_crs(SOURCE_EPSG, 4326, always_xy=True)
    lon, lat = to_wgs.transform(x, y)
    margin = 0.0005  # keep clear of the box edge so the sideways offset cannot leave it
    inside = (
        (lon > MIN_LON + margin) & (lon < MAX_LON - margin)
        & (lat > MIN_LAT + margin) & (lat < MAX_LAT - margin)
    )
    class_factor = np.array([LOCAL_HIGHWAYS[h] for h in site_highway])
    weight = (density / density.max()) ** power * class_factor
    if boost:
        weight *= centre_boost(lon, lat)
    weight[~(inside & (near >= NEAR_MIN_LENGTH_M))] = 0.0
    return Candidates(x, y, dx, dy, site_highway, weight, density)


# --------------------------------------------------------------------------------------------
# Selecting positions
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Site:
    """A chosen station position."""

    lon: float
    lat: float
    x: float
    y: float
    highway: str
    density: float


def select_sites(cand: Candidates, count: int, rng: random.Random) -> list[Site]:
    """Draw `count` sites, weighted and without replacement, at least MIN_SPACING_M apart.

    Uses exponential keys (log(u) / w, largest first) to get a weighted random order, then
    accepts greedily while the true ellipsoidal distance to every accepted site is large enough.
    """
    keys = np.full(len(cand.weight), -np.inf)
    for i, w in enumerate(cand.weight.tolist()):
        u = rng.random()
        if w > 0.0:
            keys[i] = math.log(u if u > 0.0 else 1e-300) / w
    order = np.argsort(-keys, kind="stable")

    to_wgs = Transformer.from_crs(SOURCE_EPSG, 4326, always_xy=True)
    geod = Geod(ellps="WGS84")
    cell = MIN_SPACING_M * 1.01
    grid: dict[tuple[int, int], list[int]] = {}
    sites: list[Site] = []
    for idx in order.tolist():
        if len(sites) >= count or keys[idx] == -np.inf:
            break
        side = 1.0 if rng.random() < 0.5 else -1.0
        off = rng.uniform(*OFFSET_RANGE_M) * side
        x = float(cand.x[idx] - cand.dy[idx] * off)
        y = float(cand.y[idx] + cand.dx[idx] * off)
        lon_f, lat_f = to_wgs.transform(x, y)
        lon, lat = round(lon_f, 6), round(lat_f, 6)
        if not (MIN_LON <= lon <= MAX_LON and MIN_LAT <= lat <= MAX_LAT):
            continue
        gx, gy = int(x // cell), int(y // cell)
        near = [
            j for ix in (gx - 1, gx, gx + 1) for iy in (gy - 1, gy, gy + 1)
            for j in grid.get((ix, iy), ())
        ]
        if near:
            _, _, dist = geod.inv(
                [lon] * len(near), [lat] * len(near),
                [sites[j].lon for j in near], [sites[j].lat for j in near],
            )
            if min(dist) < MIN_SPACING_M:
                continue
        grid.setdefault((gx, gy), []).append(len(sites))
        sites.append(Site(lon, lat, x, y, cand.highway[idx], float(cand.density[idx])))
    if len(sites) < count:
        raise RuntimeError(f"only {len(sites)} sites fit, {count} asked")
    return sites


# --------------------------------------------------------------------------------------------
# Inventing the attributes
# --------------------------------------------------------------------------------------------


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Equirectangular distance in metres, good enough at city scale."""
    kx = 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2.0))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574.0)


def nearest_subdistrict(lon: float, lat: float) -> Subdistrict:
    """The sub-district whose reference point is nearest (an approximation of boundaries)."""
    return min(SUBDISTRICTS, key=lambda s: _metres(lon, lat, s.lon, s.lat))


def nearest_landmark(lon: float, lat: float) -> Landmark | None:
    """The nearest landmark within LANDMARK_RADIUS_M, if any."""
    best = min(LANDMARKS, key=lambda m: _metres(lon, lat, m.lon, m.lat))
    return best if _metres(lon, lat, best.lon, best.lat) <= LANDMARK_RADIUS_M else None


def _weighted(rng: random.Random, items: Sequence[tuple[Any, int]]) -> Any:
    values = [v for v, _ in items]
    weights = [w for _, w in items]
    return rng.choices(values, weights=weights, k=1)[0]


def assign_malls(sites: Sequence[Site]) -> dict[int, Mall]:
    """Give each mall the nearest still-free site within MALL_RADIUS_M (deterministic)."""
    taken: dict[int, Mall] = {}
    for mall in MALLS:
        dists = [
            (_metres(s.lon, s.lat, mall.lon, mall.lat), i)
            for i, s in enumerate(sites)
            if i not in taken
        ]
        if not dists:
            break
        d, i = min(dists)
        if d <= MALL_RADIUS_M:
            taken[i] = mall
    return taken


def choose_host_type(rng: random.Random, site: Site, max_density: float) -> str:
    """Draw a host type; fuel stations favour big roads and the outskirts, banks the centre."""
    dens = site.density / max_density
    big_road = site.highway in ("primary", "secondary")
    weights = {
        "bank": 26.0 * (0.5 + dens),
        "community": 24.0 * (1.3 if site.highway in ("residential", "living_street") else 0.9),
        "union_office": 8.0,
        "fuel_station": 11.0 * (2.2 if big_road else 0.4) * (1.6 - dens),
        "telecom_shop": 8.0 * (0.6 + dens),
        "sanitation_depot": 11.0,
        "enterprise": 7.0,
        "other": 5.0,
    }
    items = list(weights.items())
    return rng.choices([k for k, _ in items], weights=[w for _, w in items], k=1)[0]


@dataclass(slots=True)
class Context:
    """Where a station is, for naming it."""

    district: District
    sub: Subdistrict
    landmark: Landmark | None
    highway: str

    @property
    def place(self) -> str:
        """A short place name: the nearby landmark, else the sub-district."""
        return self.landmark.name if self.landmark else self.sub.place

    def road(self, rng: random.Random, big: bool = False) -> str:
        """A road name plausible for the place (landmark roads first)."""
        if self.landmark and rng.random() < 0.65:
            return rng.choice(self.landmark.roads)
        roads = self.district.roads
        if big:
            avenues = tuple(r for r in roads if r.endswith("大道"))
            roads = avenues or roads
        return rng.choice(roads)


def make_name(
    rng: random.Random, host: str, ctx: Context, mall: Mall | None, used_district_level: set[str]
) -> tuple[str, str, str, str]:
    """Return (name, operator, road, access) for a station of the given host type."""
    d = ctx.district.name
    sub = ctx.sub.admin
    access = "outdoor_workers"
    if host == "mall" and mall is not None:
        label = rng.choice(("工会驿站", "户外劳动者服务站点", "爱心驿站"))
        return f"{mall.name}{label}", mall.operator, ctx.road(rng), "public"
    if host == "union_office":
        key = f"union:{d}"
        if key not in used_district_level and rng.random() < 0.5:
            used_district_level.add(key)
            return f"{d}总工会户外劳动者服务站点", f"{d}总工会", ctx.road(rng), access
        form = rng.randrange(3)
        if form == 0:
            name = f"{sub}总工会工会驿站"
        elif form == 1:
            name = f"{sub}工会户外劳动者服务站点"
        else:
            name = f"{ctx.place}工会驿站"
        return name, f"{sub}总工会", ctx.road(rng), access
    if host == "community":
        comm = rng.choice(COMMUNITY_WORDS) + "社区"
        form = rng.randrange(3)
        if form == 0:
            name = f"{sub}{comm}户外劳动者服务站点"
        elif form == 1:
            name = f"{sub}{comm}工会驿站"
        else:
            name = f"{comm}党群服务中心爱心驿站"
        if rng.random() < 0.1:
            access = "public"
        return name, f"{sub}{comm}居民委员会", ctx.road(rng), access
    if host == "bank":
        bank, operator, labels, _ = _weighted(rng, [(b, b[3]) for b in BANKS])
        road = ctx.road(rng)
        branch = rng.choice((road, road, ctx.place))
        city = "" if bank in LOCAL_BANKS else "武汉"
        return f"{bank}{city}{branch}支行{rng.choice(labels)}", operator, road, access
    if host == "fuel_station":
        brand, operator = _weighted(rng, [((b, o), w) for b, o, w in FUEL_BRANDS])
        road = ctx.road(rng, big=True)
        if rng.random() < 0.6:
            where = road + rng.choice(("", "", "", "第二", "第三"))
        else:
            where = ctx.place + rng.choice(("", "", "东", "西", "南", "北"))
        if rng.random() < 0.5:
            return f"{brand}{where}加油站司机之家", operator, road, "drivers_only"
        label = rng.choice(("爱心驿站", "户外劳动者服务站点"))
        return f"{brand}{where}加油站{label}", operator, road, access
    if host == "telecom_shop":
        carrier, operator = _weighted(rng, [((c, o), w) for c, o, w in CARRIERS])
        road = ctx.road(rng)
        where = rng.choice((road, ctx.place))
        label = rng.choice(("爱心驿站", "户外劳动者服务站点", "暖心驿站"))
        return f"{carrier}{where}营业厅{label}", operator, road, access
    if host == "sanitation_depot":
        key = f"sanitation:{d}"
        operator = f"{d}城市管理执法局"
        if key not in used_district_level and rng.random() < 0.4:
            used_district_level.add(key)
            return f"{d}环卫工人爱心驿站", operator, ctx.road(rng), access
        road = ctx.road(rng)
        form = rng.randrange(3)
        if form == 0:
            name = f"{sub}环卫工作站爱心驿站"
        elif form == 1:
            name = f"{road}环卫工人休息驿站"
        else:
            name = f"{ctx.place}环卫所暖心驿站"
        return name, operator, road, access
    if host == "enterprise":
        road = ctx.road(rng)
        form = rng.randrange(5 if ctx.landmark and ctx.landmark.metro else 4)
        if form == 0:
            return (f"武汉公交集团{road}公交场站职工驿站", "武汉市公共交通集团有限责任公司",
                    road, access)
        if form == 1:
            return (f"中国邮政{ctx.place}邮政支局户外劳动者驿站",
                    "中国邮政集团有限公司武汉市分公司", road, access)
        if form == 2:
            return f"国网武汉供电公司{ctx.place}供电所爱心驿站", "国网武汉供电公司", road, access
        if form == 3:
            return f"顺丰速运{ctx.place}营业部小哥驿站", "顺丰速运武汉区", road, access
        assert ctx.landmark is not None
        return f"武汉地铁{ctx.landmark.name}站职工驿站", "武汉地铁集团有限公司工会", road, access
    # other
    road = ctx.road(rng)
    form = rng.randrange(3)
    if form == 0:
        return f"{sub}党群服务中心户外劳动者驿站", f"{sub}办事处", road, access
    if form == 1:
        return f"{sub}新时代文明实践站劳动者驿站", f"{sub}办事处", road, "public"
    return f"{d}图书馆{ctx.place}分馆爱心驿站", f"{d}图书馆", road, "public"


def make_address(rng: random.Random, ctx: Context, road: str, mall: Mall | None) -> str:
    """An invented address on `road` in the station's district."""
    number = rng.randrange(1, 1000 if road.endswith("大道") else 400)
    base = f"武汉市{ctx.district.name}{road}{number}号"
    if mall is not None:
        return f"{base}{mall.name}{rng.randrange(1, 6)}楼"
    r = rng.random()
    if r < 0.15:
        return f"{base}1楼"
    if r < 0.3:
        return f"{base}附{rng.randrange(1, 10)}号"
    return base


def make_amenities(rng: random.Random, host: str) -> list[str]:
    """Amenities drawn independently with host-specific probabilities, in vocabulary order."""
    chosen = [a for a, p in zip(AMENITY_ORDER, AMENITY_P[host], strict=True) if rng.random() < p]
    if "drinking_water" not in chosen and "hot_water" not in chosen:
        chosen.insert(0, "drinking_water")
    return chosen


def make_phone(rng: random.Random, used: set[str]) -> str | None:
    """A unique "027-8xxxxxxx" number, or None for about one station in five."""
    if rng.random() < 0.2:
        return None
    while True:
        phone = f"027-8{rng.randrange(0, 10_000_000):07d}"
        if phone not in used:
            used.add(phone)
            return phone


def make_status(rng: random.Random) -> str:
    """Mostly open; a few temporarily or permanently closed."""
    r = rng.random()
    if r < 0.95:
        return "open"
    return "temporarily_closed" if r < 0.99 else "closed"


def _hours_validator() -> Callable[[str], bool] | None:
    try:
        import opening_hours
    except ImportError:
        return None

    def check(value: str) -> bool:
        try:
            opening_hours.OpeningHours(value)
        except Exception:
            return False
        return True

    return check


def build_features(sites: Sequence[Site], rng: random.Random) -> list[dict[str, Any]]:
    """Attach invented properties to the sites and return GeoJSON Features."""
    max_density = max(s.density for s in sites)
    malls = assign_malls(sites)
    used_names: set[str] = set()
    used_phones: set[str] = set()
    used_district_level: set[str] = set()
    features: list[dict[str, Any]] = []
    for i, site in enumerate(sites):
        sub = nearest_subdistrict(site.lon, site.lat)
        ctx = Context(DISTRICTS[sub.district], sub, nearest_landmark(site.lon, site.lat),
                      site.highway)
        mall = malls.get(i)
        host = "mall" if mall else choose_host_type(rng, site, max_density)
        for _ in range(50):
            name, operator, road, access = make_name(rng, host, ctx, mall, used_district_level)
            if name not in used_names:
                break
        else:
            raise RuntimeError(f"could not find a unique name for site {i}")
        used_names.add(name)
        capacity: int | None = None
        if rng.random() >= 0.1:
            capacity = rng.randint(*CAPACITY[host])
        props: dict[str, Any] = {
            "external_id": f"WH-DEMO-{i + 1:04d}",
            "name": name,
            "address": make_address(rng, ctx, road, mall),
            "district_code": sub.district,
            "host_type": host,
            "operator": operator,
            "access": access,
            "amenities": make_amenities(rng, host),
            "opening_hours": _weighted(rng, HOURS[host]),
            "status": make_status(rng),
            "phone": make_phone(rng, used_phones),
            "capacity": capacity,
        }
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
            "properties": props,
        })
    return features


def order_sites(sites: list[Site]) -> list[Site]:
    """Sort sites north to south, west to east, so ids read like a map."""
    return sorted(sites, key=lambda s: (-round(s.lat, 2), s.lon, -s.lat))


# --------------------------------------------------------------------------------------------
# Output and checks
# --------------------------------------------------------------------------------------------


def to_geojson(features: Sequence[dict[str, Any]]) -> str:
    """Serialise as an RFC 7946 FeatureCollection, one feature per line."""
    head = {"type": "FeatureCollection", "sample_data": True, "description": DESCRIPTION}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('"features": [')
    body = [json.dumps(f, ensure_ascii=False) for f in features]
    lines.append(",\n".join(body))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def check_features(features: Sequence[dict[str, Any]]) -> None:
    """Raise if any feature breaks the data rules (box, spacing, vocabularies, uniqueness)."""
    validate_hours = _hours_validator()
    geod = Geod(ellps="WGS84")
    ids = [f["properties"]["external_id"] for f in features]
    names = [f["properties"]["name"] for f in features]
    if len(set(ids)) != len(ids) or ids != sorted(ids):
        raise ValueError("external_id not unique or not ordered")
    if len(set(names)) != len(names):
        raise ValueError("names not unique")
    coords = np.array([f["geometry"]["coordinates"] for f in features], dtype=float)
    if not (
        (coords[:, 0] >= MIN_LON).all() and (coords[:, 0] <= MAX_LON).all()
        and (coords[:, 1] >= MIN_LAT).all() and (coords[:, 1] <= MAX_LAT).all()
    ):
        raise ValueError("coordinate outside the box")
    for i in range(len(coords) - 1):
        n = len(coords) - i - 1
        _, _, dist = geod.inv(
            np.full(n, coords[i, 0]), np.full(n, coords[i, 1]), coords[i + 1 :, 0],
            coords[i + 1 :, 1],
        )
        if np.min(dist) < MIN_SPACING_M:
            raise ValueError(f"{ids[i]} closer than {MIN_SPACING_M} m to another station")
    for f in features:
        p = f["properties"]
        am = p["amenities"]
        if am != [a for a in AMENITY_ORDER if a in am] or len(set(am)) != len(am):
            raise ValueError(f"{p['external_id']}: bad amenities {am}")
        if p["host_type"] not in HOST_TYPES or p["access"] not in ACCESS_VALUES:
            raise ValueError(f"{p['external_id']}: bad host_type/access")
        if p["status"] not in STATUS_VALUES or p["district_code"] not in DISTRICTS:
            raise ValueError(f"{p['external_id']}: bad status/district")
        if validate_hours is not None and not validate_hours(p["opening_hours"]):
            raise ValueError(f"{p['external_id']}: invalid opening_hours {p['opening_hours']!r}")
    if validate_hours is None:
        print("note: opening-hours-py not installed, opening_hours strings not validated")


def summarise(features: Sequence[dict[str, Any]]) -> str:
    """A short text summary: counts per district and host type, and the bounds."""
    props = [f["properties"] for f in features]
    coords = np.array([f["geometry"]["coordinates"] for f in features], dtype=float)
    per_district = Counter(p["district_code"] for p in props)
    per_host = Counter(p["host_type"] for p in props)
    out = [f"{len(features)} stations"]
    out.append("per district: " + ", ".join(
        f"{DISTRICTS[c].name}({c}) {n}" for c, n in sorted(per_district.items())))
    out.append("per host type: " + ", ".join(f"{h} {n}" for h, n in per_host.most_common()))
    out.append(
        f"bounds: lon {coords[:, 0].min():.6f}..{coords[:, 0].max():.6f}, "
        f"lat {coords[:, 1].min():.6f}..{coords[:, 1].max():.6f}"
    )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    parquet = extract_parquet(fetch_sdist())
    cand = load_candidates(parquet)
    rng = random.Random(args.seed)
    sites = order_sites(select_sites(cand, args.count, rng))
    features = build_features(sites, random.Random(args.seed + 1))
    check_features(features)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_geojson(features), encoding="utf-8")
    print(f"wrote {args.out}")
    print(summarise(features))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
