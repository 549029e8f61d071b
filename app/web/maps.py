"""The planner's coverage map: one folium (Leaflet) map of a coverage run.

`planner_map(run, …)` draws, each as a layer in a layer control (names, popups and the legend
in zh-CN or English):

* **cells by band** ('0-5', '5-10', '10-15' … minutes up to the target), with a legend giving
  each band's share of the demand and the share within the target;
* **gaps** (`Run.gaps`: connected cells beyond the target or unreachable, the 'gap' band)
  filled red, each with its rank, uncovered demand and unit, area, longest time and districts
  in the popup;
* **over-dense cells** (reached by ≥ `dense_n` stations within `params.dense_minutes`), dashed
  purple, one merged shape per station count (hidden at first);
* **stations** in a marker cluster (Leaflet.markercluster, dissolved from zoom 15), popups
  with covered and exclusively covered demand and the loss if closed; **redundant stations**
  (`loss_pct` < `redundant_pct`: closing one alone leaves less than that share of the demand
  it serves beyond the target) as orange rings with the reason (hidden at first: in a dense
  centre they are most stations); **close pairs** (`Run.station_pairs`) as lines;
* **district outlines** with their names, and **suggested sites** as numbered markers.

**Aggregation.** Cells are never drawn one by one (Wuhan's demo grid has 9,139 cells at
resolution 9 and 34,586 at 10; a province 10^5): the cells of each band within the target are
merged with `h3.cells_to_h3shape` into one MultiPolygon feature per band, the gap cells into
one feature per gap (the `GAP_LIMIT` largest; the rest merged into one), over-dense cells into
one per station count, so the cell layers are at most a few hundred Leaflet layers whatever
the resolution. Everything is drawn on a canvas (`prefer_canvas`), coordinates are rounded to
5 decimals (~1 m) and district outlines simplified to ~40 m for display. Stations travel as
compact rows and their popups are built in the browser when clicked.

**Page weight**, measured on the Wuhan demo (400 stations, 377 of them open and on the
network, 92,667 streets, 13 districts), whole city, walk 15 min, resolution 9: the /planner
page is 906,719 bytes (~885 KB; the map's script 884 KB: cell bands 290 KB, 68 gaps 316 KB,
district outlines 95 KB, stations 54 KB, redundant-station rings 59 KB, close pairs 15 KB);
e-bike 15 min 1.30 MB (326 close pairs: 277 KB); resolution 8 414 KB, resolution 10 2.8 MB;
one district (Wuchang) 156 KB. The standalone export with Leaflet and markercluster inlined is
1,089,714 bytes (~1.06 MB). Stations cost ~145 bytes each (names JSON-escaped), so 12,000
stations add ~1.7 MB.

**Escaping.** Every text that comes from data (station, district and site names) or goes into
a layer name, popup, tooltip or the legend is escaped here with `html.escape`, and `{`/`}`
become `&#123;`/`&#125;`: Leaflet inserts popup, tooltip and layer-control text as HTML, and
folium renders each element's output a second time as a Jinja template (`MacroElement.render`
wraps it in `Element(template)`), so a name such as `{{ 7*7 }}` would otherwise be evaluated
on the server. folium's own `Popup` (which needs jQuery) and `Tooltip` (raw HTML inside a JS
template literal) are not used: popups and tooltips are bound from escaped feature properties.

**Tiles and datum.** `tiles='osm'` draws OpenStreetMap tiles and WGS-84 geometries;
`tiles='amap'` draws Amap (高德) tiles (the URL and attribution of the /map page,
`app.web.routes.TILES`) and converts every drawn coordinate — polygon vertices, lines,
markers, the map's bounds — to GCJ-02 with `app.geo.coords`, so they sit on Amap's shifted
streets.

**Assets (no CDN).** folium links Leaflet, jQuery, Bootstrap, Font Awesome and
Leaflet.awesome-markers from CDNs that are slow or blocked in China. This map needs only
Leaflet and Leaflet.markercluster: nothing here uses jQuery (folium's `Popup`), Bootstrap or
awesome-markers (folium's `Icon`), so those links are dropped, not served. With
`leaflet_base='/static/leaflet'` (the /planner page) the map links Leaflet and
`markercluster/` under that path: both are fetched at setup time by `yizhan web assets`
(`app.web.assets`: Leaflet from the django-leaflet wheel on PyPI, Leaflet.markercluster 1.5.3
from its npm tarball, SHA-256 checked) into `.cache/leaflet/`. With `leaflet_base=None` (the
standalone `map.html` export) the same files are **inlined** (CSS images as data: URIs), so
the file opens anywhere without our server or a CDN; only the map tiles need the internet.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import folium
import h3
import numpy as np
import shapely
from branca.element import Element, Figure, MacroElement
from folium.plugins import FastMarkerCluster
from folium.template import Template
from folium.utilities import JsCode
from numpy.typing import NDArray
from shapely.geometry import mapping, shape

from app.api.headers import add_nonce, html_policy
from app.coverage import derive
from app.coverage.service import Run
from app.errors import ServiceUnavailableError
from app.geo import coords
from app.web import assets
from app.web.basemaps import TILES, tile_origins
from app.web.i18n import texts

#: Gaps outlined at most (largest uncovered demand first); all gap cells are in the band layer.
GAP_LIMIT = 200
#: Decimals of drawn coordinates (1e-5° ≈ 1 m).
PRECISION = 5
#: Display simplification of district outlines, degrees (~40 m).
DISTRICT_SIMPLIFY_DEG = 0.0004
#: Band colours from the shortest time on (ColorBrewer RdYlGn, greens to orange), and gaps.
BAND_COLOURS = ("#1a9850", "#66bd63", "#a6d96a", "#d9ef8b", "#fee08b", "#fdae61", "#f46d43")
GAP_COLOUR = "#d73027"
DENSE_COLOUR = "#7b3294"
REDUNDANT_COLOUR = "#e66101"
PAIR_COLOUR = "#c51b7d"
STATION_COLOUR = "#1f4e9c"

_ON_EACH = JsCode(
    """function (feature, layer) {
        var p = feature.properties || {};
        if (p.popup) { layer.bindPopup(p.popup, {maxWidth: 340}); }
        if (p.st) { layer.bindPopup(function () { return window.yzStation(p.st, true); }); }
        if (p.tip) { layer.bindTooltip(p.tip, p.tip_opts || {sticky: true}); }
    }"""
)
_POINT = JsCode(
    """function (feature, latlng) {
        var p = feature.properties || {};
        if (p.label) {
            return L.marker(latlng, {icon: L.divIcon({
                className: "yz-site", html: p.label, iconSize: [26, 26], iconAnchor: [13, 13]
            })});
        }
        if (p.st) {
            return L.circleMarker(latlng, {
                radius: 8, color: "REDUNDANT", weight: 3, fillColor: "#fff", fillOpacity: 0.7
            });
        }
        return L.circleMarker(latlng, p.style || {});
    }""".replace("REDUNDANT", REDUNDANT_COLOUR)
)
_STATION_CALLBACK = """function (row) {
    var m = L.marker(new L.LatLng(row[0], row[1]), {icon: L.divIcon({
        className: "yz-st", iconSize: [12, 12], iconAnchor: [6, 6]
    })});
    m.bindPopup(function () { return window.yzStation(row.slice(2, 7), row[7] === 1); });
    return m;
}"""
_CLUSTER_ICON = """function (cluster) {
    var n = cluster.getChildCount(), s = n < 10 ? 26 : n < 100 ? 32 : 40;
    return L.divIcon({html: "<span style='line-height:" + (s - 4) + "px'>" + n + "</span>",
                      className: "yz-cluster", iconSize: L.point(s, s)});
}"""
_CSS = """
.yz-cluster { background: rgba(31, 78, 156, .88); color: #fff; border: 2px solid #fff;
              border-radius: 50%; box-shadow: 0 0 0 1px #1f4e9c; font: 600 12px sans-serif; }
.yz-cluster span { display: block; text-align: center; }
.yz-st { background: #1f4e9c; border: 2px solid #fff; border-radius: 50%;
         box-shadow: 0 0 0 1px #1f4e9c; }
.yz-site { background: #111; color: #fff; border: 2px solid #ffd400; border-radius: 50%;
           font: bold 13px/22px sans-serif; text-align: center; }
.yz-legend { background: #fff; padding: 6px 9px; border-radius: 5px; line-height: 1.45;
             box-shadow: 0 1px 4px rgba(0,0,0,.35); font-size: 12.5px; max-width: 260px; }
.yz-legend b { display: block; margin-bottom: 2px; }
.yz-legend i { display: inline-block; width: 14px; height: 11px; margin-right: 5px;
               vertical-align: -1px; opacity: .8; border: 1px solid #0003; }
.yz-legend .sym { display: inline-block; width: 14px; margin-right: 5px; text-align: center; }
.yz-legend .share { float: right; margin-left: 8px; color: #333; }
.yz-legend .note { color: #555; margin-top: 3px; }
.yz-label { background: rgba(255,255,255,.8); border: 0; box-shadow: none; font-weight: 600;
            color: #333; padding: 0 3px; }
.yz-pop { font-size: 13px; }
.yz-pop b { font-size: 14px; }
.yz-pop table { border-collapse: collapse; margin-top: 3px; }
.yz-pop td { padding: 1px 6px 1px 0; vertical-align: top; }
.yz-pop td + td { text-align: right; font-variant-numeric: tabular-nums; }
.yz-pop .why { margin-top: 4px; color: #8a3b00; }
"""


def esc(text: object) -> str:
    """HTML-escape a text for Leaflet (innerHTML) and neutralise Jinja braces (folium renders
    its output again as a template)."""
    return html.escape(str(text)).replace("{", "&#123;").replace("}", "&#125;")


# -- coordinates -----------------------------------------------------------------------------


def _mover(coord_sys: str) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """(N, 2) lon/lat WGS-84 → the drawing datum, rounded to PRECISION decimals."""

    def move(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        if coord_sys != "wgs84" and len(xy):
            xy = np.array([coords.from_wgs84(float(x), float(y), coord_sys) for x, y in xy])
        return np.round(xy, PRECISION)

    return move


class _Datum:
    def __init__(self, coord_sys: str) -> None:
        self.coord_sys = coord_sys
        self.move = _mover(coord_sys)

    def geometry(self, geom: Any) -> dict[str, Any]:
        return dict(mapping(shapely.transform(geom, self.move)))

    def latlon(self, lon: float, lat: float) -> list[float]:
        x, y = self.move(np.array([[lon, lat]], dtype=np.float64))[0]
        return [float(y), float(x)]


def _cells_shape(cells: NDArray[np.int64]) -> Any:
    """The union of H3 cells as one shapely (Multi)Polygon (WGS-84)."""
    h3shape = h3.cells_to_h3shape([h3.int_to_str(int(c)) for c in cells.tolist()])
    return shape(h3shape.__geo_interface__)


# -- formatting ------------------------------------------------------------------------------


def _num(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole > 0 else "–"


def _popup(title: str, rows: Sequence[tuple[str, str]], why: str | None = None) -> str:
    """Popup HTML; every argument is already escaped."""
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    note = f'<div class="why">{why}</div>' if why else ""
    return f'<div class="yz-pop"><b>{title}</b><table>{body}</table>{note}</div>'


def _feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _layer(features: list[dict[str, Any]], name: str, *, show: bool = True) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=name, show=show)
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            on_each_feature=_ON_EACH,
            point_to_layer=_POINT,
        ).add_to(group)
    return group


def band_order(run: Run) -> list[str]:
    """The run's band labels from the shortest time on, then 'gap'."""
    labels, lo = [], 0
    for b in sorted(run.params.bands):
        if b > run.params.minutes:
            break
        labels.append(f"{lo}-{b}")
        lo = b
    if lo < run.params.minutes:
        labels.append(f"{lo}-{run.params.minutes}")
    return [*labels, "gap"]


def band_colour(labels: Sequence[str], label: str) -> str:
    """A band's colour: greens to yellow spread over the bands (orange only beyond five);
    red for the gap."""
    if label == "gap":
        return GAP_COLOUR
    i = list(labels).index(label)
    n = len([x for x in labels if x != "gap"])
    if n > 5:
        return BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)]
    return BAND_COLOURS[0 if n == 1 else round(i * 4 / (n - 1))]


# -- assets ----------------------------------------------------------------------------------


class _Raw(Element):
    """Text placed as is (never compiled as a template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


def _data_uri_images(css: str, folder: Path) -> str:
    def inline(m: re.Match[str]) -> str:
        f = folder / m.group(1)
        if not f.is_file():
            return m.group(0)
        return f"url(data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()})"

    return re.sub(r"url\((images/[A-Za-z0-9@_.-]+\.png)\)", inline, css)


def _script(text: str) -> str:
    # "<script"/"<style" inside the code would also be hit by `add_nonce`
    if re.search(r"</?(script|style)", text, re.IGNORECASE):
        raise ValueError("an inlined script contains a <script or <style tag")
    return f"<script>{text}</script>"


def _figure(m: folium.Map) -> Figure:
    root = m.get_root()
    assert isinstance(root, Figure)
    return root


def _use_assets(m: folium.Map, cluster: FastMarkerCluster, leaflet_base: str | None) -> None:
    """Link Leaflet and markercluster from `leaflet_base`, or inline them (None); drop the
    rest of folium's CDN links (instance attributes: the class lists stay untouched)."""
    if leaflet_base is not None:
        base = leaflet_base.rstrip("/")
        m.default_js = [("leaflet", f"{base}/leaflet.js")]
        m.default_css = [("leaflet_css", f"{base}/leaflet.css")]
        cluster.default_js = [("markerclusterjs", f"{base}/markercluster/leaflet.markercluster.js")]
        cluster.default_css = [
            ("markerclustercss", f"{base}/markercluster/MarkerCluster.css"),
            ("markerclusterdefaultcss", f"{base}/markercluster/MarkerCluster.Default.css"),
        ]
        return
    if not assets_ready():
        raise ServiceUnavailableError(
            "assets: Leaflet and Leaflet.markercluster are not downloaded yet; run "
            "`yizhan web assets` (scripts/demo.sh does it)",
            field="assets",
        )
    m.default_js, m.default_css = [], []
    cluster.default_js, cluster.default_css = [], []
    lf, mc = assets.LEAFLET_DIR, assets.MARKERCLUSTER_DIR
    css = _data_uri_images((lf / "leaflet.css").read_text("utf-8"), lf)
    css += (mc / "MarkerCluster.css").read_text("utf-8")
    css += (mc / "MarkerCluster.Default.css").read_text("utf-8")
    header = _figure(m).header
    header.add_child(_Raw(f"<style>{css}</style>"), name="yz_inline_css")
    header.add_child(_Raw(_script((lf / "leaflet.js").read_text("utf-8"))), name="yz_leaflet")
    header.add_child(
        _Raw(_script((mc / "leaflet.markercluster.js").read_text("utf-8"))), name="yz_mc"
    )


def assets_ready() -> bool:
    """Whether Leaflet and Leaflet.markercluster are in `.cache/leaflet/`."""
    return assets.leaflet_ready() and assets.markercluster_ready()


class _Legend(MacroElement):
    """A Leaflet control holding already-escaped legend HTML (passed as a JSON string)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: "bottomleft"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "yz-legend");
                div.innerHTML = {{ this.markup|tojson }};
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, markup: str) -> None:
        super().__init__()
        self._name = "Legend"
        self.markup = markup


# -- the map ---------------------------------------------------------------------------------


class _Builder:
    """What every layer needs: the run, the cells in view, texts, datum."""

    def __init__(self, run: Run, district: str | None, lang: str, coord_sys: str) -> None:
        self.run = run
        self.district = district
        self.t = texts(lang)
        self.ul = "en" if lang == "en" else "zh"
        self.unit = esc(run.unit[self.ul])
        self.datum = _Datum(coord_sys)
        self.idx = np.flatnonzero(run.district_mask(district))
        self.total_w = float(run.weights[self.idx].sum())
        self.target = run.params.minutes
        self.labels = band_order(run)
        self.cell_band = np.array(
            [run.band(float(x)) for x in run.model.minutes[self.idx]], dtype=object
        )
        self.names = {
            code: (run.district_names[i][1] if self.ul == "en" else None)
            or run.district_names[i][0]
            for i, code in enumerate(run.district_codes)
        }
        if district is None:
            self.in_view = np.ones(len(run.station_ids), dtype=bool)
        else:
            self.in_view = run.station_district == run.district_codes.index(district)

    def tx(self, key: str, **kw: Any) -> str:
        """An escaped text of the page language."""
        return esc(self.t[key].format(**kw) if kw else self.t[key])

    def area(self, sel: NDArray[np.intp]) -> str:
        return f"{_num(float(self.run.grid.area_km2[sel].sum()), 2)} km²"

    def demand(self, w: float) -> str:
        return f"{_num(w)} {self.unit}"

    # -- layers --------------------------------------------------------------------------
    def bands(self) -> tuple[folium.FeatureGroup, list[str]]:
        """Cells within the target, merged per band (gap cells are drawn by `gaps`); the
        legend rows of every band and the gap."""
        run = self.run
        feats: list[dict[str, Any]] = []
        legend: list[str] = []
        for label in self.labels:
            sel = self.idx[self.cell_band == label]
            colour = band_colour(self.labels, label)
            w = float(run.weights[sel].sum())
            if label == "gap":
                name = self.tx("pl_gap_band", m=self.target)
            else:
                lo, hi = label.split("-")
                name = self.tx("pl_band", lo=lo, hi=hi)
            legend.append(
                f'<div><i style="background:{colour}"></i>{name}'
                f'<span class="share">{_pct(w, self.total_w)}</span></div>'
            )
            if label == "gap" or not len(sel):
                continue
            feats.append(
                _feature(
                    self.datum.geometry(_cells_shape(run.grid.cells[sel])),
                    style={
                        "color": colour,
                        "weight": 0.5,
                        "opacity": 0.6,
                        "fillColor": colour,
                        "fillOpacity": 0.45,
                    },
                    popup=_popup(
                        name,
                        [
                            (self.tx("pl_demand"), self.demand(w)),
                            (self.tx("pl_share_demand"), _pct(w, self.total_w)),
                            (self.tx("pl_area"), self.area(sel)),
                            (self.tx("pl_cells"), _num(len(sel))),
                        ],
                    ),
                )
            )
        return _layer(feats, self.tx("pl_layer_bands")), legend

    def gaps(self) -> folium.FeatureGroup:
        """Every gap cell, filled red: the `GAP_LIMIT` largest gaps one feature each (rank and
        numbers in the popup), the rest merged into one."""
        run, found = self.run, self.run.gaps(self.district)
        style = {
            "color": "#7f0000",
            "weight": 1.5,
            "opacity": 0.9,
            "fillColor": GAP_COLOUR,
            "fillOpacity": 0.5,
        }
        sep = "、" if self.ul == "zh" else ", "
        feats = []
        for g in found[:GAP_LIMIT]:
            longest = (
                self.tx("pl_unreachable")
                if not math.isfinite(g.max_minutes)
                else f"{_num(g.max_minutes, 1)} {self.tx('min')}"
            )
            where = esc(sep.join(self.names.get(c, c) for c in g.districts)) or "–"
            feats.append(
                _feature(
                    self.datum.geometry(shape(g.geometry)),
                    style=style,
                    popup=_popup(
                        self.tx("pl_gap_title", rank=g.rank),
                        [
                            (self.tx("pl_uncovered"), self.demand(g.demand)),
                            (self.tx("pl_share_demand"), _pct(g.demand, self.total_w)),
                            (self.tx("pl_area"), f"{_num(g.area_km2, 2)} km²"),
                            (self.tx("pl_max_minutes"), longest),
                            (self.tx("pl_in_districts"), where),
                        ],
                    ),
                )
            )
        rest = found[GAP_LIMIT:]
        if rest:
            cells = np.concatenate([g.cells for g in rest])
            w = float(sum(g.demand for g in rest))
            feats.append(
                _feature(
                    self.datum.geometry(_cells_shape(run.grid.cells[cells])),
                    style=style,
                    popup=_popup(
                        self.tx("pl_small_gaps", n=len(rest), k=GAP_LIMIT),
                        [
                            (self.tx("pl_uncovered"), self.demand(w)),
                            (self.tx("pl_share_demand"), _pct(w, self.total_w)),
                            (self.tx("pl_area"), self.area(cells)),
                        ],
                    ),
                )
            )
        return _layer(feats, self.tx("pl_layer_gaps", n=_num(len(found))))

    def districts(self) -> folium.FeatureGroup | None:
        run, feats = self.run, []
        for i, code in enumerate(run.district_codes):
            if self.district is not None and code != self.district:
                continue
            geom = shapely.simplify(run.district_geoms[i], DISTRICT_SIMPLIFY_DEG)
            feats.append(
                _feature(
                    self.datum.geometry(geom),
                    style={"color": "#333", "weight": 1.6, "fill": False, "dashArray": "6 4"},
                    tip=esc(self.names[code]),
                    tip_opts={"permanent": True, "direction": "center", "className": "yz-label"},
                )
            )
        return _layer(feats, self.tx("pl_layer_districts")) if feats else None

    def dense(self, dense_n: int) -> folium.FeatureGroup:
        """Over-dense cells merged per station count (hidden at first)."""
        run = self.run
        count = run.model.dense_count
        sel_all = self.idx[count[self.idx] >= dense_n]
        dm = f"{run.params.dense_minutes:g}"
        feats = []
        for n in sorted({int(x) for x in count[sel_all].tolist()}):
            sel = sel_all[count[sel_all] == n]
            feats.append(
                _feature(
                    self.datum.geometry(_cells_shape(run.grid.cells[sel])),
                    style={
                        "color": DENSE_COLOUR,
                        "weight": 1.5,
                        "dashArray": "4 3",
                        "fillColor": DENSE_COLOUR,
                        "fillOpacity": 0.15,
                    },
                    popup=_popup(
                        self.tx("pl_dense_title"),
                        [
                            (self.tx("pl_dense_n", m=dm), str(n)),
                            (self.tx("pl_cells"), _num(len(sel))),
                            (self.tx("pl_area"), self.area(sel)),
                        ],
                        self.tx("pl_dense_why", n=dense_n, m=dm),
                    ),
                )
            )
        name = self.tx("pl_layer_dense", n=dense_n, m=dm, c=_num(len(sel_all)))
        return _layer(feats, name, show=False)

    def pairs(self, pair_minutes: float) -> folium.FeatureGroup:
        run, feats = self.run, []
        for a, b, ab, ba in run.station_pairs(pair_minutes):
            if not (self.in_view[a] or self.in_view[b]):
                continue
            line = shapely.LineString(
                [
                    (run.station_lon[a], run.station_lat[a]),
                    (run.station_lon[b], run.station_lat[b]),
                ]
            )
            na, nb = esc(run.station_names[a]), esc(run.station_names[b])
            feats.append(
                _feature(
                    self.datum.geometry(line),
                    style={"color": PAIR_COLOUR, "weight": 3, "opacity": 0.85},
                    popup=_popup(
                        self.tx("pl_pair_title"),
                        [
                            (f"{na} → {nb}", f"{_num(ab, 1)} {self.tx('min')}"),
                            (f"{nb} → {na}", f"{_num(ba, 1)} {self.tx('min')}"),
                        ],
                        self.tx("pl_pair_why", m=f"{pair_minutes:g}"),
                    ),
                )
            )
        return _layer(feats, self.tx("pl_layer_pairs", n=len(feats), m=f"{pair_minutes:g}"))

    def stations(self, redundant_pct: float) -> tuple[list[list[Any]], list[dict[str, Any]]]:
        """Rows [lat, lon, name, id, covered, exclusive, loss %, redundant 0/1] of every station
        in view (clustered), and the redundant ones again as point features (rings, an overlay
        hidden at first: in a dense centre they are most stations); popups are built in the
        browser from these escaped rows (`station_popup_js`), which keeps 10^4 stations
        light."""
        run = self.run
        cover = run.station_coverage()
        rows: list[list[Any]] = []
        redundant: list[dict[str, Any]] = []
        for i in np.flatnonzero(self.in_view).tolist():
            c = cover[i]
            loss = c.loss_pct
            lat, lon = self.datum.latlon(float(run.station_lon[i]), float(run.station_lat[i]))
            row = [
                lat,
                lon,
                esc(run.station_names[i]),
                int(run.station_ids[i]),
                round(c.covered_demand),
                round(c.exclusive_demand),
                None if loss is None else round(loss, 1),
            ]
            review = loss is not None and loss < redundant_pct
            if review:
                redundant.append(_feature({"type": "Point", "coordinates": [lon, lat]}, st=row[2:]))
            rows.append([*row, 1 if review else 0])
        return rows, redundant

    def station_popup_js(self, redundant_pct: float) -> str:
        """`window.yzStation(row, review)`: a station's popup from its row [escaped name, id,
        covered, exclusive, loss %] (the labels are escaped here; the rest are numbers)."""
        labels = {
            "id": self.tx("pl_station_id"),
            "covered": self.tx("pl_covered", m=self.target),
            "exclusive": self.tx("pl_exclusive"),
            "loss": self.tx("pl_loss"),
            "review": self.tx("pl_redundant"),
            "why": self.tx("pl_redundant_why", p=f"{redundant_pct:g}", m=self.target),
            "unit": self.unit,
            "locale": "en" if self.ul == "en" else "zh-CN",
        }
        data = json.dumps(labels, ensure_ascii=False).replace("<", "\\u003c")
        return _script(
            "window.yzStation = (function (T) {\n"
            "  function n(x) { return Math.round(x).toLocaleString(T.locale); }\n"
            "  return function (r, review) {\n"
            "    var loss = r[4] === null ? '–' : r[4].toFixed(1) + '%';\n"
            "    var rows = [[T.id, r[1]], [T.covered, n(r[2]) + ' ' + T.unit],\n"
            "                [T.exclusive, n(r[3]) + ' ' + T.unit], [T.loss, loss]];\n"
            "    var h = '<div class=\"yz-pop\"><b>' + r[0] + (review ? ' · ' + T.review : '')\n"
            "            + '</b><table>';\n"
            "    rows.forEach(function (x) {\n"
            "      h += '<tr><td>' + x[0] + '</td><td>' + x[1] + '</td></tr>';\n"
            "    });\n"
            "    h += '</table>' + (review ? '<div class=\"why\">' + T.why + '</div>' : '');\n"
            "    return h + '</div>';\n"
            "  };\n"
            "})(" + data + ");"
        )

    def sites(self, suggestions: list[dict[str, Any]]) -> folium.FeatureGroup:
        feats = []
        for s in suggestions:
            lat, lon = self.datum.latlon(float(s["lon"]), float(s["lat"]))
            rank = int(s["rank"])
            title = self.tx("pl_site_title", rank=rank)
            if s.get("name"):
                title += f" · {esc(s['name'])}"
            feats.append(
                _feature(
                    {"type": "Point", "coordinates": [lon, lat]},
                    label=str(rank),
                    popup=_popup(
                        title,
                        [(self.tx("pl_gain", m=self.target), self.demand(float(s["gain"])))],
                    ),
                )
            )
        return _layer(feats, self.tx("pl_layer_sites", n=len(feats)))

    def legend(self, band_rows: list[str], sites: bool) -> str:
        within = float(self.run.weights[self.idx[self.cell_band != "gap"]].sum())
        symbols = [
            (STATION_COLOUR, "●", "pl_sym_station"),
            (REDUNDANT_COLOUR, "◯", "pl_sym_redundant"),
            (PAIR_COLOUR, "━", "pl_sym_pair"),
            (DENSE_COLOUR, "▦", "pl_sym_dense"),
        ]
        if sites:
            symbols.append(("#111", "❶", "pl_sym_site"))
        mode = self.t[self.run.params.mode.value]
        return "".join(
            [
                f"<b>{self.tx('pl_legend_title', m=self.target, mode=mode)}</b>",
                *band_rows,
                f'<div class="note">{self.tx("pl_legend_share", m=self.target)} '
                f'<strong class="yz-share">{_pct(within, self.total_w)}</strong></div>',
                *(
                    f'<div><span class="sym" style="color:{c}">{sym}</span>{self.tx(k)}</div>'
                    for c, sym, k in symbols
                ),
                f'<div class="note">{self.tx("pl_legend_unit", u=self.run.unit[self.ul])}</div>',
            ]
        )

    def bounds(self) -> tuple[list[float], list[float]] | None:
        if not len(self.idx):
            return None
        g = self.run.grid
        sw = self.datum.latlon(float(g.lon[self.idx].min()), float(g.lat[self.idx].min()))
        ne = self.datum.latlon(float(g.lon[self.idx].max()), float(g.lat[self.idx].max()))
        return sw, ne


def planner_map(
    run: Run,
    *,
    district: str | None = None,
    tiles: str = "osm",
    lang: str = "zh",
    dense_n: int = derive.DEFAULT_DENSE_N,
    pair_minutes: float = derive.DEFAULT_PAIR_MINUTES,
    redundant_pct: float = derive.DEFAULT_REDUNDANT_PCT,
    suggestions: list[dict[str, Any]] | None = None,
    leaflet_base: str | None = "/static/leaflet",
) -> folium.Map:
    """The coverage map of `run` (optionally one district: NotFoundError if unknown) as a
    folium Map; see the module docstring for layers, aggregation, escaping, datum and
    assets."""
    if tiles not in TILES:
        raise ValueError(f"tiles: one of {', '.join(TILES)}")
    spec = TILES[tiles]
    b = _Builder(run, district, lang, str(spec["coord_sys"]))
    m = folium.Map(location=[0.0, 0.0], zoom_start=12, tiles=None, prefer_canvas=True)
    header = _figure(m).header
    header.add_child(_Raw(f"<style>{_CSS}</style>"), name="yz_css")
    folium.TileLayer(
        tiles=str(spec["url"]),
        attr=str(spec["attribution"]),
        subdomains=str(spec["subdomains"]),
        max_zoom=18,
        name=b.tx("pl_tiles"),
        control=False,
    ).add_to(m)
    bands, band_rows = b.bands()
    bands.add_to(m)
    b.gaps().add_to(m)
    b.dense(dense_n).add_to(m)
    districts = b.districts()
    if districts is not None:
        districts.add_to(m)
    b.pairs(pair_minutes).add_to(m)
    rows, redundant = b.stations(redundant_pct)
    cluster = FastMarkerCluster(
        rows,
        callback=_STATION_CALLBACK,
        name=b.tx("pl_layer_stations", n=len(rows)),
        icon_create_function=_CLUSTER_ICON,
        disableClusteringAtZoom=15,
        showCoverageOnHover=False,
        chunkedLoading=True,
    )
    cluster.add_to(m)
    review = b.tx("pl_layer_redundant", n=len(redundant), p=f"{redundant_pct:g}")
    _layer(redundant, review, show=False).add_to(m)
    if suggestions:
        b.sites(suggestions).add_to(m)
    _use_assets(m, cluster, leaflet_base)
    header.add_child(_Raw(b.station_popup_js(redundant_pct)), name="yz_station_popup")
    m.add_child(_Legend(b.legend(band_rows, bool(suggestions))))
    folium.LayerControl(collapsed=False).add_to(m)
    bounds = b.bounds()
    if bounds is not None:
        sw, ne = bounds
        m.location = [(sw[0] + ne[0]) / 2, (sw[1] + ne[1]) / 2]
        m.fit_bounds([sw, ne])
    return m


def map_parts(m: folium.Map, nonce: str = "") -> dict[str, str]:
    """The map's header (links, styles), body (the map's div) and script, for embedding in
    one of our pages; `nonce` goes on every inline `<script>`/`<style>` of the header and
    body (the page's Content-Security-Policy; the script part goes into the page's own
    nonced `<script>`)."""
    root = _figure(m)
    root.render()
    # our page has its own viewport (folium's forbids pinch zoom on the whole page)
    header = re.sub(r'<meta name="viewport"[^>]*>', "", root.header.render())
    return {
        "header": add_nonce(header, nonce),
        "html": add_nonce(root.html.render(), nonce),
        "script": root.script.render(),
    }


def standalone_html(
    run: Run,
    *,
    district: str | None = None,
    tiles: str = "osm",
    lang: str = "zh",
    suggestions: list[dict[str, Any]] | None = None,
    nonce: str = "",
    **options: Any,
) -> str:
    """The coverage map as one complete HTML document with Leaflet and markercluster inlined
    (opens without our server or a CDN; only the tiles come from the internet). `options`
    go to `planner_map` (dense_n, pair_minutes, redundant_pct). `nonce` (served by us: the
    response's CSP nonce, else a new one) goes on every inline script and style, and a
    Content-Security-Policy `<meta>` allows only those (the file is opened from disk, where
    no response header protects it)."""
    m = planner_map(
        run,
        district=district,
        tiles=tiles,
        lang=lang,
        suggestions=suggestions,
        leaflet_base=None,
        **options,
    )
    t = texts(lang)
    root = _figure(m)
    root.title = esc(
        f"{t['planner_title']} · {t[run.params.mode.value]} {run.params.minutes} {t['min']}"
    )
    html_lang = "en" if lang == "en" else "zh-CN"
    # A saved file has no response headers: the policy travels in a <meta> element, first in
    # <head>, with a nonce of its own unless the server gave one.
    nonce = nonce or secrets.token_urlsafe(18)
    policy = html.escape(html_policy(nonce, tile_origins(tiles), meta=True))
    out = add_nonce(root.render(), nonce)
    return out.replace("<html>", f'<html lang="{html_lang}">', 1).replace(
        "<head>",
        f'<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" '
        f'content="{policy}">',
        1,
    )
