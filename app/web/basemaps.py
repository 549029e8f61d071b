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


def tile_origins(*names: str) -> list[str]:
    """The origins (scheme://host) the tile URLs above (all, or those named) load images
    from, every `{s}` subdomain spelled out: the `img-src` of a Content-Security-Policy."""
    out: list[str] = []
    for name, spec in TILES.items():
        if names and name not in names:
            continue
        url = spec["url"]
        subs = spec["subdomains"] if "{s}" in url else ""
        for s in subs or [""]:
            origin = "/".join(url.replace("{s}", s).split("/", 3)[:3])
            if origin not in out:
                out.append(origin)
    return out
