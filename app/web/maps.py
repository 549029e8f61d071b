"""The planner's coverage map: one folium (Leaflet) map of a coverage run.

`planner_map(run, …)` draws, each as a layer in a layer control (names, popups and the legend
in zh-CN or English):

* **cells by band** ('0-5', '5-10', '10-15' … minutes up to the target), with a legend giving
  each band's share of the demand and the share within the target;
* **gaps** (cells beyond the target or unreachable, the 'gap' band) filled red, as the pieces
  a planner can act on (`Run.gap_pieces`: one district each, at most the area one station
  reaches), each with its gap and rank, district, uncovered demand and unit, area, longest time
  over the reachable cells, unreachable cells with the sentence explaining them, and for the
  first `MAP_GAP_SITES` what one new station in it would cover, in the popup;
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
one feature per gap piece (the `GAP_LIMIT` largest; the rest merged into one), over-dense cells
into one per station count, so the cell layers are at most a few hundred Leaflet layers
whatever the resolution. Everything is drawn on a canvas (`prefer_canvas`), coordinates are
rounded to 5 decimals (~1 m) and district outlines simplified to ~40 m for display. Stations
travel as compact rows and their popups are built in the browser when clicked.

**Page weight**, measured on the Wuhan demo (400 stations, 377 of them open and on the
network, 92,667 streets, 13 districts), whole city, walk 15 min, resolution 9: the /planner
page is 906,719 bytes (~885 KB; the map's script 884 KB: cell bands 290 KB, 68 gaps 316 KB,
district outlines 95 KB, stations 54 KB, redundant-station rings 59 KB, close pairs 15 KB);
e-bike 15 min 1.30 MB (326 close pairs: 277 KB); resolution 8 414 KB, resolution 10 2.8 MB;
one district (Wuchang) 156 KB. The standalone export with Leaflet and markercluster inlined is
1,089,714 bytes (~1.06 MB). Stations cost ~145 bytes each (names JSON-escaped), so 12,000
stations add ~1.7 MB. Drawing gap pieces instead of whole gaps (issue 14) made the walking gap
layer 471 KB (398 pieces: 200 one by one, the rest merged) instead of 316 KB (68 gaps); the
walking map script is then 1.08 MB, e-bike 1.15 MB (126 pieces, 202 KB).

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
from app.coverage.bands import shown_minutes
from app.coverage.extent import pct_text
from app.coverage.service import Run, gap_note
from app.errors import ServiceUnavailableError
from app.geo import coords
from app.web import assets
from app.web.basemaps import TILES, tile_origins
from app.web.i18n import texts

#: Gap pieces outlined at most (largest uncovered demand first); all gap cells are drawn.
GAP_LIMIT = 200
#: Gap pieces whose popup tells what one new station in it would cover (the page's list).
MAP_GAP_SITES = 10
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
                className: p.weak ? "yz-site yz-site-weak" : "yz-site", html: p.label,
                iconSize: [26, 26], iconAnchor: [13, 13]
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
    m.bindPopup(function () { return window.yzStation(row.slice(2, 8), row[8] === 1); });
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
.yz-site-weak { background: #9a9a9a; border-color: #e0e0e0; opacity: .8; }
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
        """Every gap cell, filled red, as the pieces a planner can act on (`Run.gap_pieces`:
        one district each, at most the area one station reaches): the `GAP_LIMIT` largest one
        feature each (gap and piece rank, district, numbers and — for the first
        `MAP_GAP_SITES` — what one new station in it would cover, in the popup), the rest
        merged into one."""
        run = self.run
        found = run.gap_pieces(self.district)
        n_gaps = len(run.gaps(self.district))
        sites = run.gap_sites(found[:MAP_GAP_SITES])
        style = {
            "color": "#7f0000",
            "weight": 1.2,
            "opacity": 0.9,
            "fillColor": GAP_COLOUR,
            "fillOpacity": 0.5,
        }
        feats = []
        for i, p in enumerate(found[:GAP_LIMIT]):
            longest = shown_minutes(p.max_minutes)
            rows = [
                (
                    self.tx("pl_in_district"),
                    esc(self.names.get(p.district, p.district))
                    if p.district
                    else self.tx("pl_outside_districts"),
                ),
                (self.tx("pl_uncovered"), self.demand(p.demand)),
                (self.tx("pl_share_demand"), _pct(p.demand, self.total_w)),
                (self.tx("pl_area"), f"{_num(p.area_km2, 2)} km²"),
                (
                    self.tx("pl_max_minutes"),
                    self.tx("pl_unreachable")
                    if longest is None
                    else f"{_num(longest, 1)} {self.tx('min')}",
                ),
            ]
            if p.unreachable_cells:
                rows.append((self.tx("pl_unreachable_cells"), _num(p.unreachable_cells)))
            site = sites[i] if i < len(sites) else None
            if site is not None:
                site_name = site["name_en"] if self.ul == "en" else site["name"]
                if site_name:
                    rows.append((self.tx("pl_site_where"), esc(site_name)))
                rows.append((self.tx("pl_site_gain"), self.demand(site["gain"])))
                rows.append(
                    (
                        self.tx("pl_site_in_piece"),
                        _pct(site["gain_in_piece"], p.demand),
                    )
                )
            note = gap_note(
                p.unreachable_cells,
                p.max_minutes,
                run.params.mode,
                run.graph.settings.max_off_network_m,
            )
            feats.append(
                _feature(
                    self.datum.geometry(shape(p.geometry)),
                    style=style,
                    popup=_popup(
                        self.tx("pl_piece_title", gap=p.gap, rank=p.rank),
                        rows,
                        esc(note[self.ul]) if note else None,
                    ),
                )
            )
        rest = found[GAP_LIMIT:]
        if rest:
            cells = np.concatenate([p.cells for p in rest])
            w = float(sum(p.demand for p in rest))
            feats.append(
                _feature(
                    self.datum.geometry(_cells_shape(run.grid.cells[cells])),
                    style=style,
                    popup=_popup(
                        self.tx("pl_small_pieces", n=len(rest), k=GAP_LIMIT),
                        [
                            (self.tx("pl_uncovered"), self.demand(w)),
                            (self.tx("pl_share_demand"), _pct(w, self.total_w)),
                            (self.tx("pl_area"), self.area(cells)),
                        ],
                    ),
                )
            )
        return _layer(feats, self.tx("pl_layer_gaps", n=_num(n_gaps), p=_num(len(found))))

    def districts(self) -> folium.FeatureGroup | None:
        """Outlines labelled with the name (and "partly inside / outside the network"); the
        popup gives the district's area, the share inside the network and the street cells'."""
        run, feats = self.run, []
        rows = run.summary()["districts"]
        for i, code in enumerate(run.district_codes):
            if self.district is not None and code != self.district:
                continue
            geom = shapely.simplify(run.district_geoms[i], DISTRICT_SIMPLIFY_DEG)
            ext = rows[i].get("extent") or {}
            state = ext.get("status")
            label = self.names[code]
            if state in ("partial", "outside"):
                status_text = self.t["pl_status_" + state]
                label += f"（{status_text}）" if self.ul == "zh" else f" ({status_text})"
            share = ext.get("network_share")
            feats.append(
                _feature(
                    self.datum.geometry(geom),
                    style={"color": "#333", "weight": 1.6, "fill": False, "dashArray": "6 4"},
                    tip=esc(label),
                    tip_opts={"permanent": True, "direction": "center", "className": "yz-label"},
                    popup=_popup(
                        esc(self.names[code]),
                        [
                            (
                                self.tx("pl_col_district_area"),
                                _num(ext.get("district_area_km2") or 0.0, 1),
                            ),
                            (
                                self.tx("pl_col_network_share"),
                                "–" if share is None else pct_text(share),
                            ),
                            (self.tx("pl_col_area"), _num(rows[i]["area_km2"], 1)),
                        ],
                        why=esc((ext.get("reason") or {}).get(self.ul, "")) or None,
                    ),
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

    def stations(
        self, redundant_pct: float, redundant_rel: float = derive.DEFAULT_REDUNDANT_REL
    ) -> tuple[list[list[Any]], list[dict[str, Any]]]:
        """Rows [lat, lon, name, id, covered, exclusive, loss %, backup min, redundant 0/1] of
        every station in view (clustered), and the redundant ones (`derive.redundant_flags`)
        again as point features (rings, an overlay hidden at first); popups are built in the
        browser from these escaped rows (`station_popup_js`), which keeps 10^4 stations
        light."""
        run = self.run
        cover = run.station_coverage()
        flags = derive.redundant_flags(cover, redundant_pct, redundant_rel)
        rows: list[list[Any]] = []
        redundant: list[dict[str, Any]] = []
        for i in np.flatnonzero(self.in_view).tolist():
            c = cover[i]
            loss, backup = c.loss_pct, c.backup_minutes
            lat, lon = self.datum.latlon(float(run.station_lon[i]), float(run.station_lat[i]))
            row = [
                lat,
                lon,
                esc(run.station_names[i]),
                int(run.station_ids[i]),
                round(c.covered_demand),
                round(c.exclusive_demand),
                None if loss is None else round(loss, 1),
                None if backup is None else round(backup, 2),
            ]
            review = flags[i]
            if review:
                redundant.append(_feature({"type": "Point", "coordinates": [lon, lat]}, st=row[2:]))
            rows.append([*row, 1 if review else 0])
        return rows, redundant

    def station_popup_js(
        self, redundant_pct: float, redundant_rel: float = derive.DEFAULT_REDUNDANT_REL
    ) -> str:
        """`window.yzStation(row, review)`: a station's popup from its row [escaped name, id,
        covered, exclusive, loss %, backup min] (the labels are escaped here; the rest are
        numbers)."""
        med = derive.median_backup(self.run.station_coverage())
        labels = {
            "id": self.tx("pl_station_id"),
            "covered": self.tx("pl_covered", m=self.target),
            "exclusive": self.tx("pl_exclusive"),
            "loss": self.tx("pl_loss"),
            "backup": self.tx("pl_backup", med="–" if med is None else f"{med:.2f}"),
            "min": self.tx("min"),
            "review": self.tx("pl_redundant"),
            "why": self.tx(
                "pl_redundant_why",
                p=f"{redundant_pct:g}",
                m=self.target,
                r=f"{redundant_rel:.0%}",
                med="–" if med is None else f"{med:.2f}",
            ),
            "unit": self.unit,
            "locale": "en" if self.ul == "en" else "zh-CN",
        }
        data = json.dumps(labels, ensure_ascii=False).replace("<", "\\u003c")
        return _script(
            "window.yzStation = (function (T) {\n"
            "  function n(x) { return Math.round(x).toLocaleString(T.locale); }\n"
            "  return function (r, review) {\n"
            "    var loss = r[4] === null ? '–' : r[4].toFixed(1) + '%';\n"
            "    var backup = r[5] === null ? '–' : r[5].toFixed(2) + ' ' + T.min;\n"
            "    var rows = [[T.id, r[1]], [T.covered, n(r[2]) + ' ' + T.unit],\n"
            "                [T.exclusive, n(r[3]) + ' ' + T.unit], [T.loss, loss],\n"
            "                [T.backup, backup]];\n"
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
        """Numbered markers with the site's name, gain (marginal to the earlier sites and on
        its own) and the share covered after it; sites below a useful gain are greyed."""
        feats = []

        def share(x: float | None) -> str:
            return "–" if x is None else f"{100.0 * x:.2f}%"

        for s in suggestions:
            lat, lon = self.datum.latlon(float(s["lon"]), float(s["lat"]))
            rank = int(s["rank"])
            title = self.tx("pl_site_title", rank=rank)
            name = s.get("name_en") if self.ul == "en" else s.get("name")
            if name:
                title += f" · {esc(name)}"
            rows = [
                (
                    self.tx("pl_gain", m=self.target),
                    f"{self.demand(float(s['gain']))} ({share(s.get('gain_share'))})",
                )
            ]
            if s.get("gain_alone") is not None:
                rows.append(
                    (
                        self.tx("pl_gain_alone"),
                        f"{self.demand(float(s['gain_alone']))} "
                        f"({share(s.get('gain_alone_share'))})",
                    )
                )
            if s.get("covered_share_after") is not None:
                rows.append((self.tx("pl_covered_after", n=rank), share(s["covered_share_after"])))
            if s.get("near_station_name"):
                rows.append(
                    (
                        self.tx("pl_near_station"),
                        f"{esc(s['near_station_name'])} · {_num(s['near_station_m'])} m",
                    )
                )
            useful = s.get("useful", True)
            why = (
                self.tx("pl_site_weak", p=f"{100 * derive.USEFUL_SHARE_OF_FIRST:g}")
                if not useful
                else (self.tx("pl_site_marginal", n=rank - 1) if rank > 1 else None)
            )
            feats.append(
                _feature(
                    {"type": "Point", "coordinates": [lon, lat]},
                    label=str(rank),
                    weak=not useful,
                    popup=_popup(title, rows, why),
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
    redundant_rel: float = derive.DEFAULT_REDUNDANT_REL,
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
    rows, redundant = b.stations(redundant_pct, redundant_rel)
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
    review = b.tx(
        "pl_layer_redundant", n=len(redundant), p=f"{redundant_pct:g}", r=f"{redundant_rel:.0%}"
    )
    _layer(redundant, review, show=False).add_to(m)
    if suggestions:
        b.sites(suggestions).add_to(m)
    _use_assets(m, cluster, leaflet_base)
    header.add_child(
        _Raw(b.station_popup_js(redundant_pct, redundant_rel)), name="yz_station_popup"
    )
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
