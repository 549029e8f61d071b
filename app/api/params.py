"""Query and path parameter types shared by every domain's routes (one definition each).

A domain's routes never import another domain's routes; what they share lives here.
Numbers are strict: `lat=1_0` or `lat=0x1` are refused (Python's float() would read them).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from app.geo.coords import CoordSys

MAX_ID = 2**63 - 1
DISTRICT_PATTERN = r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"

#: A plain decimal number as people and phones write it: optional sign, digits, optional
#: fraction and exponent. No underscores, no hex, no "inf"/"nan", no surrounding junk.
_DECIMAL = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _plain_decimal(value: object) -> object:
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise ValueError("must be a plain decimal number, e.g. 30.5825 (请填写十进制数)")
    return value


#: A plain whole number: optional sign and ASCII digits only (no "1_0", " 5", "5.0", "٣").
_INTEGER = re.compile(r"[-+]?[0-9]+")


def _plain_integer(value: object) -> object:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("must be a whole number written with digits 0-9, e.g. 5 (请填写整数)")
    return value


def _no_nul(value: object) -> object:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters (不能包含 NUL 字符)")
    return value


#: Put these in the `Annotated[...]` of every numeric query or path parameter (before the
#: `Query`/`Path`), also around `X | None`: `Annotated[float | None, StrictDecimal, Query(...)]`.
StrictDecimal = BeforeValidator(_plain_decimal)
StrictInteger = BeforeValidator(_plain_integer)
NoNul = AfterValidator(_no_nul)

StationId = Annotated[int, StrictInteger, Path(ge=1, le=MAX_ID, description="Station id")]
LatQ = Annotated[
    float,
    StrictDecimal,
    Query(ge=-90, le=90, allow_inf_nan=False, description="latitude, decimal degrees"),
]
LonQ = Annotated[
    float,
    StrictDecimal,
    Query(ge=-180, le=180, allow_inf_nan=False, description="longitude, decimal degrees"),
]
CoordSysQ = Annotated[
    CoordSys,
    Query(
        description="Coordinate system of lat/lon/bbox in and geometries out: "
        "wgs84 (GPS, OSM), gcj02 (Amap, Tencent), bd09 (Baidu)"
    ),
]


def _district_code(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(DISTRICT_PATTERN, value):
        raise ValueError("a 6, 9 or 12-digit administrative code, e.g. 420103")
    return value


DistrictQ = Annotated[
    str | None,
    AfterValidator(_district_code),
    Query(max_length=12, description="6, 9 or 12-digit administrative code, e.g. 420106"),
]
OpenAtQ = Annotated[
    str | None,
    NoNul,
    Query(
        max_length=64,
        description="Only stations open at this ISO 8601 instant; must carry a "
        "UTC offset, e.g. 2026-11-22T23:40+08:00",
    ),
]
LayerName = Annotated[
    str,
    NoNul,
    Path(
        max_length=100,
        description="Layer name: 1-40 characters of a-z, 0-9, '_' or '-' (e.g. population)",
    ),
]
