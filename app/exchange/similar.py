"""Likely duplicates: two stations within a distance whose names are similar.

Names are compared after normalising them: Unicode NFKC, lower case, without spaces and
punctuation, and without the generic words every station's name carries (户外劳动者服务站点,
驿站, 服务站 …) — "江汉路街道户外劳动者服务站点" and "花桥街道户外劳动者服务站点" share most of
their characters but are different stations. Two normalised names are *similar* when one
contains the other, or when the Jaccard index of their character bigrams is at least
`THRESHOLD` (0.5). Pure: no database.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

THRESHOLD = 0.5
#: Generic parts of station names, longest first (removed before comparing).
GENERIC: tuple[str, ...] = (
    "户外劳动者服务站点",
    "户外劳动者服务站",
    "户外劳动者驿站",
    "户外劳动者",
    "工会驿站",
    "爱心驿站",
    "暖心驿站",
    "服务站点",
    "服务站",
    "驿站",
    "站点",
)
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
EARTH_RADIUS_M = 6_371_008.8


def normalise(name: str) -> str:
    """The part of a name that tells stations apart (see the module docstring)."""
    text = _PUNCT.sub("", unicodedata.normalize("NFKC", name).lower())
    stripped = text
    for word in GENERIC:
        stripped = stripped.replace(word, "")
    return stripped or text


def _bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i : i + 2] for i in range(len(text) - 1)}


def similarity(a: str, b: str) -> float:
    """1.0 when one normalised name contains the other, else the bigram Jaccard index."""
    na, nb = normalise(a), normalise(b)
    if not na or not nb:
        return 0.0
    if na in nb or nb in na:
        return 1.0
    ga, gb = _bigrams(na), _bigrams(nb)
    return len(ga & gb) / len(ga | gb)


def similar(a: str, b: str) -> bool:
    return similarity(a, b) >= THRESHOLD


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle metres (haversine; within 0.5 % of the geodesic at these distances)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def close_pairs(
    points: Sequence[tuple[float, float]], radius_m: float
) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) of points within `radius_m` of each other, with the distance: a
    grid of cells at least `radius_m` wide, each point compared with its 9 neighbour cells."""
    if not points:
        return []
    cell_lat = radius_m / 110_000.0
    # one cell width in longitude for all, wide enough at the point farthest from the equator
    widest = max(abs(lat) for _, lat in points)
    cell_lon = cell_lat / max(math.cos(math.radians(min(widest, 89.0))), 0.01)
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    keys = []
    for i, (lon, lat) in enumerate(points):
        key = (math.floor(lon / cell_lon), math.floor(lat / cell_lat))
        keys.append(key)
        grid[key].append(i)
    out = []
    for i, (cx, cy) in enumerate(keys):
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for j in grid.get((cx + dx, cy + dy), ()):
                    if j <= i:
                        continue
                    d = distance_m(*points[i], *points[j])
                    if d <= radius_m:
                        out.append((i, j, d))
    return sorted(out)
