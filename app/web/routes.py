"""HTML pages. Thin: they call the same station service as the API and render templates."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.db.engine import ConnDep
from app.errors import InvalidInputError
from app.geo import coords
from app.hours import store as hours_store
from app.stations import queries, service
from app.stations.vocab import AMENITIES, AMENITY_CODES, DEFAULT_VISIBLE_STATUSES, HOST_TYPES
from app.web.assets import leaflet_ready
from app.web.i18n import distance_label, term_label, texts

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[2] / "templates"))
router = APIRouter(include_in_schema=False)

#: Jianghan Road, Wuhan: where the demo opens.
DEFAULT_POINT = (30.5825, 114.2875)


def _point(lat: str | None, lon: str | None) -> tuple[float, float] | None:
    try:
        la = float(lat) if lat else DEFAULT_POINT[0]
        lo = float(lon) if lon else DEFAULT_POINT[1]
    except ValueError:
        return None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return la, lo


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    conn: ConnDep,
    lat: Annotated[str | None, Query(max_length=40)] = None,
    lon: Annotated[str | None, Query(max_length=40)] = None,
    amenities: Annotated[list[str] | None, Query(max_length=20)] = None,
    open_now: Annotated[str | None, Query(max_length=10)] = None,
    lang: Annotated[str, Query(max_length=5)] = "zh",
) -> HTMLResponse:
    """Courier page: the nearest stations with the chosen amenities, open now by default."""
    lang = "en" if lang == "en" else "zh"
    t = texts(lang)
    first_visit = lat is None and lon is None and amenities is None and open_now is None
    want_open = first_visit or open_now == "true"
    selected = [a for a in (amenities or []) if a in AMENITY_CODES]
    point = _point(lat, lon)
    stations: list[dict[str, Any]] | None = None
    error = None
    if point is None:
        error = t["bad_point"]
        point = DEFAULT_POINT
    else:
        try:
            when = hours_store.requested_instant(conn, want_open, None)
            flt = queries.NearestFilter(
                lat=point[0],
                lon=point[1],
                k=10,
                amenities=tuple(selected),
                statuses=DEFAULT_VISIBLE_STATUSES,
                open_at=when if want_open else None,
            )
            ctx = service.FeatureContext.build(request.app.state.settings, conn, when, "wgs84")
            stations = [
                _card(service.to_feature(r, ctx), r, lang) for r in queries.nearest(conn, flt)
            ]
        except InvalidInputError:
            error = t["no_window"]
    other = "zh" if lang == "en" else "en"
    return TEMPLATES.TemplateResponse(
        request,
        "index.html",
        {
            "t": t,
            "lang": lang,
            "other_lang_url": str(request.url.include_query_params(lang=other)),
            "lat": point[0],
            "lon": point[1],
            "amenities": [{"code": a.code, "label": term_label(a, lang)} for a in AMENITIES],
            "selected": selected,
            "open_now": want_open,
            "stations": stations,
            "error": error,
        },
    )


_AMENITY = {a.code: a for a in AMENITIES}
_HOST = {h.code: h for h in HOST_TYPES}


def _card(feature: dict[str, Any], row: Any, lang: str) -> dict[str, Any]:
    p = feature["properties"]
    label = p.get("next_change_label") or {}
    return {
        "name": p["name"],
        "address": p["address"],
        "host": term_label(_HOST[p["host_type"]], lang),
        "distance": distance_label(float(row["distance_m"]), lang),
        "open_now": p["open_now"],
        "next_label": label.get(lang),
        "reports": p["open_reports"],
        "amenities": [term_label(_AMENITY[a], lang) for a in p["amenities"]],
        "links": p["links"],
    }


TILES = {
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


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    lang: Annotated[str, Query(max_length=5)] = "zh",
) -> HTMLResponse:
    """Planner/courier map: stations, click for isochrones and station service areas."""
    lang = "en" if lang == "en" else "zh"
    t = texts(lang)
    tiles = TILES[request.app.state.settings.tiles]
    center = list(DEFAULT_POINT)
    if tiles["coord_sys"] != "wgs84":
        lon, lat = coords.from_wgs84(DEFAULT_POINT[1], DEFAULT_POINT[0], tiles["coord_sys"])
        center = [lat, lon]
    other = "zh" if lang == "en" else "en"
    return TEMPLATES.TemplateResponse(
        request,
        "map.html",
        {
            "t": t,
            "t_json": json.dumps(t, ensure_ascii=False).replace("</", "<\\/"),
            "lang": lang,
            "other_lang_url": str(request.url.include_query_params(lang=other)),
            "tiles": tiles,
            "coord_sys": tiles["coord_sys"],
            "center": center,
            "leaflet_ready": leaflet_ready(),
        },
    )
