"""How much of each district the road network reaches: what a district's numbers stand for.

A district's coverage numbers are those of its **street cells** (the H3 cells with streets; their
area is `area_km2` of the summary, "analysed street area"), not of its whole outline: 江夏区's
outline is about 2,000 km², its street cells 43 km². And where the road network stops (the demo's
Wuhan extract covers 113.98–114.55°E, 30.38–30.78°N) a district is only partly analysed, or not
at all. So each district row also carries:

* **district area** (`district_area_km2`): the outline's area on the WGS-84 ellipsoid (pyproj
  `Geod`, holes subtracted), what a federation's own statistics quote;
* **share inside the road network** (`network_share`): the part of that area inside the
  network's outline, which is the **convex hull of the network's nodes**. A network extract is
  cut along a box or an administrative outline; inside that cut every street is there, so a
  lake or a field without streets is "inside the network" (it simply has no cells), while the
  part of a district beyond the cut is not. The hull is the smallest convex shape holding the
  whole extract: exact for a box cut, an overestimate only where the cut itself is concave
  (then a district in a bay of the cut counts as inside although it has no streets: its
  status still says so, by its cell count);
* **status**, with a reason in zh and en a planner can read out: `outside` — no street cells
  at all (the district lies beyond the network, or the network has no streets there);
  `partial` — street cells, but less than `PARTIAL_BELOW` (95 %) of the district inside the
  network, so the numbers describe only that part; `inside` — the rest.

The whole city (all districts) gets the same fields from the sums of the districts' areas.
Pure Python (shapely, pyproj), no database; computed once per run (`Run.extents`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod
from scipy.spatial import ConvexHull, QhullError
from shapely.errors import GEOSException
from shapely.geometry.polygon import orient

#: Below this share of its area inside the network a district with cells is `partial`: 5 % of a
#: Wuhan district is 4–110 km², more than the hull's slack along a real extract's edge.
PARTIAL_BELOW = 0.95
STATUSES = ("inside", "partial", "outside")
_GEOD = Geod(ellps="WGS84")


def geodesic_area_km2(geom: Any) -> float:
    """Area in km² of a (Multi)Polygon (or a collection holding some) in WGS-84 lon/lat on the
    ellipsoid, holes subtracted; 0 for anything without area."""
    if geom is None or geom.is_empty:
        return 0.0
    if isinstance(geom, shapely.Polygon):
        area, _ = _GEOD.geometry_area_perimeter(orient(geom, 1.0))
        return abs(float(area)) / 1e6
    if hasattr(geom, "geoms"):
        return sum(geodesic_area_km2(g) for g in geom.geoms)
    return 0.0


@dataclass(frozen=True)
class NetworkOutline:
    """The road network's outline (convex hull of its nodes, WGS-84) and its box."""

    geometry: Any  # shapely Polygon, or None for a network of fewer than 3 spread nodes
    bbox: tuple[float, float, float, float] | None  # lon0, lat0, lon1, lat1

    @property
    def area_km2(self) -> float:
        return geodesic_area_km2(self.geometry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "convex_hull_of_nodes",
            "area_km2": round(self.area_km2, 3),
            "bbox": None if self.bbox is None else [round(x, 5) for x in self.bbox],
        }


def network_outline(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NetworkOutline:
    """The convex hull of the network's nodes."""
    if len(lon) == 0:
        return NetworkOutline(None, None)
    pts = np.column_stack([lon, lat])
    try:  # Qhull: 0.05 s for Wuhan's 83,000 nodes (shapely's point objects take 0.8 s)
        hull: Any = shapely.Polygon(pts[ConvexHull(pts).vertices])
    except QhullError:  # fewer than 3 nodes, or all on one line: no area
        hull = None
    bbox = (float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat)))
    return NetworkOutline(hull, bbox)


@dataclass(frozen=True)
class DistrictExtent:
    """A district's area and the part of it inside the network's outline (km²)."""

    area_km2: float
    inside_km2: float

    @property
    def share(self) -> float | None:
        return min(1.0, self.inside_km2 / self.area_km2) if self.area_km2 > 0 else None


def district_extents(outlines: Sequence[Any], outline: NetworkOutline) -> list[DistrictExtent]:
    """Each district's geodesic area and the part inside the network's outline."""
    hull = outline.geometry
    if hull is not None:
        shapely.prepare(hull)
    out = []
    for g in outlines:
        area = geodesic_area_km2(g)
        if hull is None or area == 0:
            inside = 0.0
        elif hull.contains(g):
            inside = area
        else:
            try:
                part = shapely.intersection(g, hull)
            except GEOSException:
                part = shapely.intersection(shapely.make_valid(g), hull)
            inside = geodesic_area_km2(part)
        out.append(DistrictExtent(area, inside))
    return out


def total(extents: Sequence[DistrictExtent]) -> DistrictExtent:
    """All districts together (the districts do not overlap)."""
    return DistrictExtent(sum(e.area_km2 for e in extents), sum(e.inside_km2 for e in extents))


def status(cells: int, share: float | None) -> str:
    """`outside` (no street cells), `partial` (cells, < PARTIAL_BELOW inside) or `inside`."""
    if cells == 0:
        return "outside"
    if share is not None and share < PARTIAL_BELOW:
        return "partial"
    return "inside"


def pct_text(share: float) -> str:
    """A share as a percentage that agrees with the status it explains: rounded (one decimal
    below 10 %), but rounded down where rounding would cross an edge, so a partial district
    (< 95 %) never reads "95%" and one not wholly inside never "100%"; a share above 0 but
    below 0.1 % reads "<0.1%", never "0.0%"."""
    p = 100 * share
    if 0 < p < 0.1:
        return "<0.1%"
    digits = 1 if p < 10 else 0
    scale = 10**digits
    shown = round(p, digits)
    for edge in (100 * PARTIAL_BELOW, 100.0):
        if p < edge <= shown:
            shown = math.floor(p * scale) / scale
    return f"{shown:.{digits}f}%"


def box_text(bbox: tuple[float, float, float, float] | None, lang: str) -> str:
    if bbox is None:
        return "无道路" if lang == "zh" else "no streets"
    x0, y0, x1, y1 = bbox
    ew = ("东经" if x0 >= 0 else "西经") if lang == "zh" else ("E" if x0 >= 0 else "W")
    ns = ("北纬" if y0 >= 0 else "南纬") if lang == "zh" else ("N" if y0 >= 0 else "S")
    xs = f"{abs(x0):.2f}–{abs(x1):.2f}°"
    ys = f"{abs(y0):.2f}–{abs(y1):.2f}°"
    return f"{ew} {xs}、{ns} {ys}" if lang == "zh" else f"{xs}{ew}, {ys}{ns}"


def reason(
    state: str,
    share: float | None,
    bbox: tuple[float, float, float, float] | None,
    *,
    whole: bool = False,
) -> dict[str, str]:
    """Why a district's numbers stand for all, part or none of it (zh, en); `whole`: the
    same said of all districts together."""
    zh_box, en_box = box_text(bbox, "zh"), box_text(bbox, "en")
    pct = pct_text(share or 0.0)
    zh_of, en_of = ("各区合计", "the districts' area") if whole else ("全区", "the district")
    if state == "inside":
        return {
            "zh": f"在道路网络范围内（占{zh_of}面积 {pct}）",
            "en": f"inside the road network ({pct} of {en_of})",
        }
    if state == "partial":
        return {
            "zh": f"{zh_of}只有 {pct} 的面积在道路网络范围内（{zh_box}），统计只反映这一部分",
            "en": f"only {pct} of {en_of} lies inside the road network ({en_box}): "
            "the numbers describe that part only",
        }
    if (share or 0.0) < 0.0005:
        return {
            "zh": f"不在道路网络范围内（{zh_box}），没有可分析的街道",
            "en": f"outside the road network ({en_box}): no streets to analyse",
        }
    return {
        "zh": f"道路网络只覆盖{zh_of}面积的 {pct}（{zh_box}），其中没有可分析的街道",
        "en": f"the road network covers only {pct} of {en_of} ({en_box}) "
        "and has no streets to analyse there",
    }


def fields(
    cells: int, extent: DistrictExtent, outline: NetworkOutline, *, whole: bool = False
) -> dict[str, Any]:
    """The summary's `extent` of one district (or, `whole`, of all): areas, share, status,
    reason."""
    # to 6 decimals like the summary's other shares; the reason tells the same number
    share = None if extent.share is None else round(extent.share, 6)
    state = status(cells, share)
    return {
        "district_area_km2": round(extent.area_km2, 3),
        "inside_network_km2": round(extent.inside_km2, 3),
        "network_share": share,
        "status": state,
        "reason": reason(state, share, outline.bbox, whole=whole),
    }
