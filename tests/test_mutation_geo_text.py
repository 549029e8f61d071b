"""Issue 15 (mutation testing): what a courier or planner reads from app/geo, checked DB-free.

* The navigation links on a station page: a courier taps "Amap" or "Baidu" and must land on the
  station, not ~500 m off. Expected positions come from the independent `coordtransform`
  package; the URL layouts are the map apps' documented marker URLs.
* The message a planner gets for an invalid district or demand polygon: what is wrong, near
  where (read off the drawing by hand), in English and Chinese.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import coordTransform
import pytest
from shapely import from_wkt
from shapely.geometry import MultiPolygon, Point, Polygon, box

from app.geo.links import navigation_links
from app.geo.validity import invalid_reason

WUHAN = (114.305, 30.593)
# "驿站 A&B/1" percent-encoded by hand: 驿 U+9A7F = E9 A9 BF, 站 U+7AD9 = E7 AB 99 in UTF-8;
# space, "&" and "/" must be escaped too or the name would cut the query string short.
NAME = "驿站 A&B/1"
NAME_Q = "%E9%A9%BF%E7%AB%99%20A%26B%2F1"


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def test_navigation_links_in_wuhan_open_each_app_on_the_station():
    links = navigation_links(*WUHAN, NAME)
    g_lon, g_lat = coordTransform.wgs84_to_gcj02(*WUHAN)
    b_lon, b_lat = coordTransform.wgs84_to_bd09(*WUHAN)
    assert links["amap"] == (
        f"https://uri.amap.com/marker?position={g_lon:.6f}%2C{g_lat:.6f}&name={NAME_Q}"
        "&coordinate=gaode&callnative=1&src=yizhan"
    )
    # Baidu's marker takes "lat,lon" (the other way round from Amap) in BD-09.
    assert links["baidu"] == (
        f"https://api.map.baidu.com/marker?location={b_lat:.6f}%2C{b_lon:.6f}&title={NAME_Q}"
        f"&content={NAME_Q}&coord_type=bd09ll&output=html&src=yizhan"
    )
    assert links["osm"] == (
        "https://www.openstreetmap.org/?mlat=30.593000&mlon=114.305000#map=18/30.593000/114.305000"
    )
    # And read back the way a browser would: the name arrives whole.
    assert _query(links["amap"])["name"] == NAME
    assert _query(links["baidu"])["title"] == NAME


def test_navigation_links_in_hong_kong_shift_for_baidu_only():
    """Amap shows Hong Kong in WGS-84 (no GCJ-02 there); Baidu still applies its BD-09 step."""
    hk = (114.1694, 22.3193)
    links = navigation_links(*hk, "x")
    b_lon, b_lat = coordTransform.gcj02_to_bd09(*hk)
    assert _query(links["amap"])["position"] == "114.169400,22.319300"
    assert _query(links["baidu"])["location"] == f"{b_lat:.6f},{b_lon:.6f}"
    assert _query(links["osm"]) == {"mlat": "22.319300", "mlon": "114.169400"}


def test_navigation_links_abroad_are_unshifted_everywhere():
    paris = (2.3522, 48.8566)
    links = navigation_links(*paris, "P")
    assert _query(links["amap"])["position"] == "2.352200,48.856600"
    assert _query(links["baidu"])["location"] == "48.856600,2.352200"
    assert links["osm"].endswith("#map=18/48.856600/2.352200")


# --- invalid polygons ------------------------------------------------------------------------


def test_a_valid_polygon_has_no_reason():
    assert invalid_reason(box(114.30, 30.60, 114.31, 30.61)) is None


def test_bow_tie_names_the_crossing_point_and_says_it_in_chinese():
    # The diagonals of the 0.005° square cross at its centre, (114.3075, 30.6075).
    bow_tie = Polygon([(114.305, 30.605), (114.31, 30.61), (114.31, 30.605), (114.305, 30.61)])
    assert invalid_reason(bow_tie) == "Self-intersection near 114.3075, 30.6075 (自相交)"


def test_crossing_point_is_rounded_to_six_decimals():
    # Edges y = x and y = 0.5 - x/2 cross at (1/3, 1/3).
    poly = Polygon([(0, 0), (1, 1), (1, 0), (0, 0.5)])
    assert invalid_reason(poly) == "Self-intersection near 0.333333, 0.333333 (自相交)"


@pytest.mark.parametrize(
    ("geom", "expected"),
    [
        # A hole drawn outside its shell, starting at (5, 5).
        (
            Polygon(box(0, 0, 4, 4).exterior.coords, [[(5, 5), (6, 5), (6, 6), (5, 5)]]),
            "Hole lies outside shell near 5, 5 (内环（洞）在外环之外)",
        ),
        # A diamond hole touching the shell at the middle of each side cuts the inside apart.
        (
            from_wkt("POLYGON((0 0,4 0,4 4,0 4,0 0),(0 2,2 0,4 2,2 4,0 2))"),
            "Interior is disconnected near 2, 0 (内部不连通)",
        ),
        # A ring of three points, two of them the same: no area at all.
        (
            from_wkt("POLYGON((0 0,1 1,0 0,0 0))"),
            "Too few points in geometry component near 0, 0 (组成部分的点数不足)",
        ),
    ],
)
def test_each_problem_is_named_in_both_languages(geom, expected):
    assert invalid_reason(geom) == expected


def test_one_shell_inside_another_is_named_near_the_inner_one():
    text = invalid_reason(MultiPolygon([box(0, 0, 4, 4), box(1, 1, 2, 2)]))
    assert text is not None
    assert text.startswith("Nested shells near ")
    assert text.endswith(" (外环互相嵌套)")
    x, y = (float(v) for v in text.removeprefix("Nested shells near ").split(" (")[0].split(", "))
    assert box(1, 1, 2, 2).boundary.distance(Point(x, y)) == 0.0


def test_a_hole_inside_another_hole_is_named_in_chinese_too():
    # GEOS words this "Holes are nested"; the planner must still get the Chinese name.
    poly = Polygon(
        box(0, 0, 4, 4).exterior.coords,
        [box(1, 1, 3, 3).exterior.coords, [(1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 1.5)]],
    )
    assert invalid_reason(poly) == "Holes are nested near 1.5, 1.5 (内环互相嵌套)"


def test_a_reason_geos_may_word_differently_is_still_shown(monkeypatch):
    """A GEOS upgrade may word a problem in a way the Chinese table does not know yet, or
    (in principle) give no reason: the planner still gets the English text, never "(None)"."""
    from app.geo import validity

    bow_tie = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    monkeypatch.setattr(validity.shapely, "is_valid_reason", lambda g: "Ring twisted[1 2]")
    assert invalid_reason(bow_tie) == "Ring twisted near 1, 2"
    monkeypatch.setattr(validity.shapely, "is_valid_reason", lambda g: None)
    assert invalid_reason(bow_tie) == "invalid geometry"
    monkeypatch.setattr(validity.shapely, "is_valid_reason", lambda g: "[odd")
    assert invalid_reason(bow_tie) == "[odd"
