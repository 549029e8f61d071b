"""User-facing text of the pages, in zh-CN and English."""

from __future__ import annotations

from typing import Any

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "驿站 · 附近的户外劳动者服务站点",
        "other_lang": "English",
        "lat": "纬度",
        "lon": "经度",
        "locate": "用我的位置",
        "need": "需要的设施（全部满足）：",
        "open_now": "现在开放",
        "search": "查找",
        "found": "找到 {n} 个站点（按距离排序）",
        "is_open": "开放中",
        "is_closed": "未开放",
        "unknown": "开放时间未知",
        "reports": "{n} 条问题反馈待处理",
        "amap": "高德导航",
        "baidu": "百度导航",
        "footer": "示例数据仅供演示 · 地图数据 © OpenStreetMap 贡献者",
        "bad_point": "请输入有效的经纬度（WGS-84）。",
        "no_window": "开放时间数据尚未准备好，请稍后再试。",
        "m": "{d} 米",
        "km": "{d} 公里",
        "map_title": "驿站地图 · 15 分钟服务圈",
        "map_hint": "点地图看从该点出发的可达范围；点站点看它的服务范围。",
        "mode": "出行方式",
        "walk": "步行",
        "ebike": "电动车",
        "car": "汽车",
        "min": "分钟",
        "open": "开放中",
        "closed": "未开放",
        "service_area": "5/10/15 分钟服务范围",
        "loading": "计算中…",
        "no_leaflet": "地图组件尚未下载：请运行 yizhan web assets（scripts/demo.sh 会自动运行）。",
    },
    "en": {
        "title": "yizhan · rest stations for outdoor workers nearby",
        "other_lang": "中文",
        "lat": "Latitude",
        "lon": "Longitude",
        "locate": "Use my location",
        "need": "Needs (all of):",
        "open_now": "Open now",
        "search": "Find",
        "found": "{n} stations, nearest first",
        "is_open": "Open",
        "is_closed": "Closed",
        "unknown": "Hours unknown",
        "reports": "{n} open problem reports",
        "amap": "Amap",
        "baidu": "Baidu Maps",
        "footer": "Sample data for the demo · map data © OpenStreetMap contributors",
        "bad_point": "Please enter a valid latitude and longitude (WGS-84).",
        "no_window": "Opening-hours data is not ready yet; please try again shortly.",
        "m": "{d} m",
        "km": "{d} km",
        "map_title": "Station map · 15-minute service circle",
        "map_hint": "Click the map for what is reachable from there; click a station for its "
        "service area.",
        "mode": "Travel by",
        "walk": "walking",
        "ebike": "e-bike",
        "car": "car",
        "min": "min",
        "open": "Open",
        "closed": "Closed",
        "service_area": "5/10/15-minute service area",
        "loading": "Computing…",
        "no_leaflet": "The map library is not downloaded yet: run `yizhan web assets` "
        "(scripts/demo.sh does it).",
    },
}


def texts(lang: str) -> dict[str, str]:
    """The strings of one language (zh unless English was asked for)."""
    return TEXT["en" if lang == "en" else "zh"]


def distance_label(metres: float, lang: str) -> str:
    """'850 米' / '1.2 公里' (or English)."""
    t = texts(lang)
    if metres < 1000:
        return t["m"].format(d=int(round(metres, -1)))
    return t["km"].format(d=f"{metres / 1000:.1f}")


def term_label(term: Any, lang: str) -> str:
    """The label of a vocabulary term in the page language."""
    return str(term.en if lang == "en" else term.zh)
