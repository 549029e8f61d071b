"""Why a polygon is not valid (OGC simple features), in words a planner can act on. Pure.

GEOS (through shapely's `is_valid_reason`) names the first problem it finds and where, e.g.
`Self-intersection[114.305 30.605]`; uploads of districts and demand polygons refuse such
geometry instead of repairing it silently, so the message says what and where:
`Self-intersection near 114.305, 30.605 (自相交)`.
"""

from __future__ import annotations

import math
import re
from typing import Final

import shapely
from shapely.geometry.base import BaseGeometry

#: GEOS reasons (lower-cased, location removed) and their Chinese names.
_ZH: Final = {
    "self-intersection": "自相交",
    "ring self-intersection": "边界环自相交",
    "too few points in geometry component": "组成部分的点数不足",
    "hole lies outside shell": "内环（洞）在外环之外",
    "interior is disconnected": "内部不连通",
    "nested holes": "内环互相嵌套",
    "holes are nested": "内环互相嵌套",  # GEOS 3.x's wording of the same problem
    "nested shells": "外环互相嵌套",
    "duplicate rings": "重复的环",
    "invalid coordinate": "无效坐标",
    "ring is not closed": "环未闭合",
}
_REASON: Final = re.compile(r"^(?P<what>[^\[]+?)\s*(\[(?P<x>\S+) (?P<y>\S+)\])?$")


def _number(value: str) -> str:
    try:
        v = float(value)
    except ValueError:
        return value
    if not math.isfinite(v):
        return value
    return f"{v:.6f}".rstrip("0").rstrip(".")


def invalid_reason(geom: BaseGeometry) -> str | None:
    """None for a valid geometry, else what is wrong and near where, in English and Chinese:
    `Self-intersection near 114.305, 30.605 (自相交)`."""
    if shapely.is_valid(geom):
        return None
    raw = shapely.is_valid_reason(geom) or "invalid geometry"
    m = _REASON.match(raw.strip())
    if m is None:
        return raw
    what = m["what"].strip()
    text = what
    if m["x"] is not None:
        text += f" near {_number(m['x'])}, {_number(m['y'])}"
    zh = _ZH.get(what.lower())
    return f"{text} ({zh})" if zh else text
