"""Travel-time use cases on the live road network: isochrones, station service areas (cached),
and network minutes for the nearest stations.

The graph of the live network version is built once per process and mode (Wuhan: ~92,700
edges, about a second) and rebuilt when another version goes live; every request checks the
live version id (one indexed row) so a reload is picked up at once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.api.responses import dumps
from app.errors import InvalidInputError, NotFoundError
from app.geo import coords
from app.geo.coords import CoordSys
from app.network import queries
from app.network.errors import NoNetworkError
from app.network.graph import (
    ModeGraph,
    NetworkError,
    RoadNetwork,
    Snap,
    build_graph,
    multi_source_seconds,
    point_sources,
    seconds_at_points,
)
from app.network.isochrone import isochrones
from app.network.travel import Mode, TravelSettings, allowed_classes, max_speed_mps

MAX_MINUTES = 60
MAX_RINGS = 6
#: Holes smaller than this inside a ring are city blocks whose buildings face reached streets:
#: filled. Rivers, lakes and unreached districts are far larger and stay out.
FILL_HOLES_BELOW_M2 = 250_000.0


@dataclass(frozen=True)
class Loaded:
    """One live network version in memory, with its per-mode graphs built on demand."""

    version_id: int
    network: RoadNetwork
    graphs: dict[str, ModeGraph]
    #: Street name of each edge (by index), None where unnamed; None if the network has none.
    edge_names: list[str | None] | None = None


class NetworkState:
    """The in-memory graph of the live network, shared by the requests of one process."""

    def __init__(self, settings: TravelSettings) -> None:
        self.settings = settings
        self._loaded: Loaded | None = None
        self._lock = threading.Lock()

    def get(self, conn: Connection, mode: Mode) -> tuple[Loaded, ModeGraph]:
        """The live version's graph for `mode` (NoNetworkError when nothing is loaded)."""
        live = queries.require_live_version(conn)
        loaded = self._loaded
        if loaded is None or loaded.version_id != live.id:
            with self._lock:
                loaded = self._loaded
                if loaded is None or loaded.version_id != live.id:
                    arrays = queries.live_edges_arrays(conn)
                    geometry = queries.edge_geometries(conn, arrays.version_id)
                    net = RoadNetwork.from_arrays(**arrays.graph_kwargs(), geometry=geometry)
                    names = queries.edge_names(conn, arrays.version_id, len(arrays.edge_id))
                    loaded = Loaded(arrays.version_id, net, {}, names)
                    self._loaded = loaded
        graph = loaded.graphs.get(mode.value)
        if graph is None:
            with self._lock:
                graph = loaded.graphs.get(mode.value)
                if graph is None:
                    graph = build_graph(loaded.network, mode, self.settings)
                    loaded.graphs[mode.value] = graph
        return loaded, graph

    def settings_key(self) -> str:
        """A digest of the travel settings, part of every cached service area's key."""
        s = self.settings
        raw = json.dumps(
            [
                s.walk_kmh,
                s.ebike_kmh,
                sorted(s.car_kmh_by_class.items()),
                sorted(s.walk_classes),
                sorted(s.ebike_classes),
                sorted(s.ebike_push_classes),
                s.max_off_network_m,
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def parse_minutes(raw: str) -> list[int]:
    """`15` or `5,10,15` → sorted distinct whole minutes in 1..60 (InvalidInputError)."""
    values: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        # ASCII only: "²".isdigit() is true, but int("²") fails (and "١٠" would be 10)
        if not (part.isascii() and part.isdigit()) or not 1 <= int(part) <= MAX_MINUTES:
            raise InvalidInputError(
                f"minutes: whole minutes from 1 to {MAX_MINUTES}, comma-separated "
                f"(e.g. 5,10,15); got {raw!r}",
                field="minutes",
            )
        values.append(int(part))
    out = sorted(set(values))
    if len(out) > MAX_RINGS:
        raise InvalidInputError(f"minutes: at most {MAX_RINGS} values", field="minutes")
    return out


def _snap(
    conn: Connection, state: NetworkState, loaded: Loaded, mode: Mode, lon: float, lat: float
) -> Snap:
    found = queries.snap(
        conn,
        lon,
        lat,
        highways=allowed_classes(mode, state.settings),
        version_id=loaded.version_id,
    )
    limit = state.settings.max_off_network_m
    if found is None or found.distance_m > limit:
        far = "no road" if found is None else f"{found.distance_m:,.0f} m from the nearest road"
        raise InvalidInputError(
            f"lat/lon: {far} usable by {mode.value}; points must be within {limit:,.0f} m "
            "of the loaded road network",
            field="lat/lon",
        )
    return Snap(found.edge_id, found.fraction, found.distance_m)


def _ring_features(
    polygons: Sequence[Any], minutes: Sequence[int], mode: Mode, coord_sys: CoordSys
) -> list[dict[str, Any]]:
    feats = []
    for m, poly in sorted(zip(minutes, polygons, strict=True), key=lambda t: -t[0]):
        area_km2 = _area_km2(poly)
        feats.append(
            {
                "type": "Feature",
                "geometry": coords.geometry_geojson(poly, coord_sys),
                "properties": {"minutes": m, "mode": mode.value, "area_km2": round(area_km2, 3)},
            }
        )
    return feats


def _area_km2(poly: Any) -> float:
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(poly)[0]) / 1e6


def isochrone_collection(
    conn: Connection,
    state: NetworkState,
    lon: float,
    lat: float,
    mode: Mode,
    minutes: list[int],
    coord_sys: CoordSys,
) -> dict[str, Any]:
    """Where a worker at (lon, lat) gets within each of `minutes` (largest ring first)."""
    loaded, graph = state.get(conn, mode)
    snap = _snap(conn, state, loaded, mode, lon, lat)
    try:
        polys = isochrones(
            graph,
            snap,
            minutes,
            origin_lonlat=(lon, lat),
            fill_holes_below_m2=FILL_HOLES_BELOW_M2,
        )
    except NetworkError as exc:
        raise InvalidInputError(exc.detail, field=exc.field) from exc
    return {
        "type": "FeatureCollection",
        "features": _ring_features(polys, minutes, mode, coord_sys),
        "network_version": loaded.version_id,
        "coord_sys": coord_sys,
    }


_AREA_LOOKUP = text(
    """
SELECT s.lon, s.lat, s.position, v.id AS version,
       coalesce(c.minutes, '{}') AS minutes, coalesce(c.features, '{}') AS features
FROM (SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat,
             ST_X(geom)::text || ',' || ST_Y(geom)::text AS position
      FROM stations WHERE id = :id) s
LEFT JOIN network_versions v ON v.is_live
LEFT JOIN LATERAL (
    SELECT array_agg(sa.minutes) AS minutes, array_agg(sa.geojson) AS features
    FROM service_areas sa
    WHERE sa.station_id = :id AND sa.mode = :mode AND sa.network_version = v.id
      AND sa.position = s.position AND sa.settings = :settings
      AND sa.minutes = ANY(CAST(:minutes AS smallint[]))
) c ON true
"""
)


def service_area_response(
    conn: Connection,
    state: NetworkState,
    station_id: int,
    mode: Mode,
    minutes: list[int],
    coord_sys: CoordSys,
) -> bytes:
    """From where workers reach the station within each of `minutes` (largest ring first), as
    GeoJSON bytes. Rings are cached as response-ready Features keyed by the station position,
    mode, minutes, network version and travel settings: moving a station or loading another
    network misses exactly the entries that changed. A full hit in WGS-84 is one statement
    whose stored text is spliced into the response unparsed."""
    settings_key = state.settings_key()
    row = (
        conn.execute(
            _AREA_LOOKUP,
            {"id": station_id, "mode": mode.value, "settings": settings_key, "minutes": minutes},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"id: no station with id {station_id}", field="id")
    if row["version"] is None:
        raise NoNetworkError()
    stored = dict(zip(row["minutes"], row["features"], strict=True))
    missing = [m for m in minutes if m not in stored]
    if missing:
        lon, lat = float(row["lon"]), float(row["lat"])
        loaded, graph = state.get(conn, mode)
        snap = _snap(conn, state, loaded, mode, lon, lat)
        try:
            polys = isochrones(
                graph,
                snap,
                missing,
                reverse=True,
                origin_lonlat=(lon, lat),
                fill_holes_below_m2=FILL_HOLES_BELOW_M2,
            )
        except NetworkError as exc:
            raise InvalidInputError(exc.detail, field=exc.field) from exc
        for m, poly in zip(missing, polys, strict=True):
            feature_text = json.dumps(_ring_features([poly], [m], mode, "wgs84")[0])
            stored[m] = feature_text
            conn.execute(
                text(
                    "INSERT INTO service_areas (station_id, mode, minutes, network_version, "
                    "position, settings, geojson) VALUES (:sid, :mode, :m, :v, :position, "
                    ":settings, :g) ON CONFLICT DO NOTHING"
                ),
                {
                    "sid": station_id,
                    "mode": mode.value,
                    "m": m,
                    "v": loaded.version_id,
                    "position": row["position"],
                    "settings": settings_key,
                    "g": feature_text,
                },
            )
    ordered = [stored[m] for m in sorted(minutes, reverse=True)]
    if coord_sys != "wgs84":
        moved = []
        for t in ordered:
            f = json.loads(t)
            f["geometry"] = coords.geometry_geojson(shape(f["geometry"]), coord_sys)
            moved.append(json.dumps(f))
        ordered = moved
    cache = "hit" if not missing else ("miss" if len(missing) == len(minutes) else "partial")
    meta = dumps(
        {
            "station_id": station_id,
            "network_version": int(row["version"]),
            "coord_sys": coord_sys,
            "cache": cache,
        }
    )
    return (
        b'{"type":"FeatureCollection","features":[' + ",".join(ordered).encode() + b"]," + meta[1:]
    )


def network_minutes(
    conn: Connection,
    state: NetworkState,
    mode: Mode,
    lon: float,
    lat: float,
    candidates: Sequence[tuple[int, float, float, float]],
) -> dict[int, float]:
    """Minutes on the network from (lon, lat) to each candidate (id, lon, lat, metres)."""
    loaded, graph = state.get(conn, mode)
    origin = _snap(conn, state, loaded, mode, lon, lat)
    node_seconds = multi_source_seconds(graph, point_sources(graph, origin))
    snaps = queries.snap_many(
        conn,
        [c[1] for c in candidates],
        [c[2] for c in candidates],
        highways=allowed_classes(mode, state.settings),
        version_id=loaded.version_id,
    )
    usable = [(c[0], s) for c, s in zip(candidates, snaps, strict=True) if s is not None]
    secs = seconds_at_points(
        graph,
        node_seconds,
        [Snap(s.edge_id, s.fraction, s.distance_m) for _, s in usable],
        origin=origin,
    )
    return {sid: float(t) / 60.0 for (sid, _), t in zip(usable, secs, strict=True)}


def lower_bound_minutes(metres: float, mode: Mode, settings: TravelSettings) -> float:
    """No route can be faster than the straight line at the mode's top speed."""
    return metres / max_speed_mps(mode, settings) / 60.0
