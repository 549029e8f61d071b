"""Base-map tile providers shared by the /map page and the planner's folium maps."""

from __future__ import annotations

TILES: dict[str, dict[str, str]] = {
    "osm": {
        "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "subdomains": "abc",
        "attribution": "© OpenStreetMap contributors",
        "coord_sys": "wgs84",
    },
    "amap": {
        "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
        "&style=8&x={x}&y={y}&z={z}",
        "subdomains": "1234",
        "attribution": "© 高德地图 AutoNavi",
        "coord_sys": "gcj02",
    },
}
