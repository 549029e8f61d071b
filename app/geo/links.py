"""Navigation links for Chinese and international map apps, each in its own coordinate system.

Amap (高德) takes GCJ-02, Baidu (百度) takes BD-09 (we pass `coord_type=bd09ll` explicitly),
OpenStreetMap takes WGS-84. Opening a link on a phone starts the app when it is installed and
falls back to the web map otherwise.
"""

from __future__ import annotations

from urllib.parse import quote

from app.geo import coords


def navigation_links(lon: float, lat: float, name: str) -> dict[str, str]:
    """Links to show the WGS-84 point `lon, lat` named `name` in Amap, Baidu and OSM."""
    glon, glat = coords.from_wgs84(lon, lat, "gcj02")
    blon, blat = coords.from_wgs84(lon, lat, "bd09")
    q = quote(name, safe="")
    return {
        "amap": (
            f"https://uri.amap.com/marker?position={glon:.6f}%2C{glat:.6f}&name={q}"
            "&coordinate=gaode&callnative=1&src=yizhan"
        ),
        "baidu": (
            f"https://api.map.baidu.com/marker?location={blat:.6f}%2C{blon:.6f}&title={q}"
            f"&content={q}&coord_type=bd09ll&output=html&src=yizhan"
        ),
        "osm": (
            f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}"
            f"#map=18/{lat:.6f}/{lon:.6f}"
        ),
    }
