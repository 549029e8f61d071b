"""GIS clients read our layers: GDAL opens the GeoJSON endpoints and the vector tiles over HTTP.

GDAL is the one bundled with pyogrio (dev dependency; drivers GeoJSON and MVT). A real uvicorn
serves the app on its own database (`<db>_gdal`) as in tests/test_e2e_server.py. GDAL itself
fetches every URL (its HTTP client: GeoJSON from a plain URL, tiles through `/vsicurl/`, whose
`{z}/{x}/{y}.pbf` file name tells the MVT driver the tile's place in EPSG:3857).

To check another GeoJSON endpoint, add one `Endpoint` to `GEOJSON_ENDPOINTS`; `gdal_layer_info`
does the reading.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h3
import httpx2 as httpx
import psycopg
import pyogrio
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN_TOKEN, fresh_database
from tests.factories import feature
from tests.servers import uvicorn_server, yizhan

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)

#: Stations loaded through the API: external id → (lon, lat, status), all in one zoom-14 tile.
STATIONS = {
    "GDAL-1": (114.2901, 30.5721, "open"),
    "GDAL-2": (114.2862, 30.5695, "open"),
    "GDAL-3": (114.2923, 30.5750, "temporarily_closed"),
    "GDAL-4": (114.2954, 30.5688, "open"),
    "GDAL-5": (114.2885, 30.5763, "closed"),
}
TILE_Z = 14


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    lat_r = math.radians(lat)
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)


def gdal_layer_info(url: str, layer: str | None = None) -> dict[str, Any]:
    """What GDAL makes of the dataset at `url` (an http URL, `/vsicurl/…`, or a path): driver,
    layer name, geometry type, CRS, field names, feature count, FIDs, the field values
    (`values[name]`, one per feature) and the geometries (shapely, in the layer's CRS)."""
    info = pyogrio.read_info(url, layer=layer)
    meta, fids, wkb, columns = pyogrio.raw.read(url, layer=layer, return_fids=True)
    names = [str(n) for n in meta["fields"]]
    return {
        "driver": info["driver"],
        "layer": info["layer_name"],
        "geometry_type": info["geometry_type"],
        "crs": info["crs"],
        "fields": names,
        "count": len(fids),
        "fids": [int(f) for f in fids],
        "values": {n: list(v) for n, v in zip(names, columns, strict=True)},
        "geometries": list(shapely.from_wkb(wkb)),
    }


@pytest.fixture(scope="module")
def database() -> str:
    url = fresh_database("gdal")
    yizhan(url, "db", "upgrade")
    return url


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    env = {
        "DATABASE_URL": database,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "YIZHAN_HOURS_AUTO_REFRESH": "false",
    }
    with uvicorn_server(env) as base:
        yield base


@pytest.fixture(scope="module")
def loaded(server: str) -> dict[str, int]:
    """The stations, created through the API: external id → station id."""
    ids = {}
    for ext, (lon, lat, status) in STATIONS.items():
        r = httpx.post(
            f"{server}/api/v1/stations",
            json=feature(ext, lon=lon, lat=lat, status=status),
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        ids[ext] = r.json()["id"]
    return ids


@pytest.fixture(scope="module")
def coverage_run(database: str) -> tuple[int, list[str]]:
    """A finished coverage run with a few H3 cells around the stations, written directly."""
    dsn = make_url(database).set(drivername="postgresql").render_as_string(hide_password=False)
    lon, lat, _ = STATIONS["GDAL-1"]
    cells = sorted(h3.grid_disk(h3.latlng_to_cell(lat, lon, 9), 1))
    with psycopg.connect(dsn) as c:
        version = c.execute(
            "INSERT INTO network_versions (source, source_format, sha256, node_count, "
            "edge_count, total_length_m, oneway_edges, components, largest_component_share, "
            "extent) VALUES ('gdal test', 'geojson', repeat('0', 64), 1, 1, 1, 0, 1, 1, "
            "ST_MakeEnvelope(114, 30, 115, 31, 4326)) RETURNING id"
        ).fetchone()
        run = c.execute(
            "INSERT INTO coverage_runs (key, params, network_version, status) "
            "VALUES ('gdal', '{\"minutes\": 15}', %s, 'done') RETURNING id",
            (version[0],),
        ).fetchone()[0]
        for i, cell in enumerate(cells):
            ring = [(g, t) for t, g in h3.cell_to_boundary(cell)]
            wkt = "POLYGON((" + ", ".join(f"{a} {b}" for a, b in [*ring, ring[0]]) + "))"
            c.execute(
                "INSERT INTO coverage_cells (run_id, cell, geom, minutes, multiplicity, weight) "
                "VALUES (%s, %s, ST_GeomFromText(%s, 4326), %s, 1, 1)",
                (run, h3.str_to_int(cell), wkt, 3.0 * i),
            )
    return int(run), cells


# --------------------------------------------------------------------------------------------
# GeoJSON endpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A GeoJSON endpoint GDAL must open: its path (and query), the geometry type, fields that
    must be there, and how many features (of the loaded data) it returns."""

    path: str
    geometry_type: str
    fields: frozenset[str] = field(default_factory=frozenset)
    count: int | None = None


_STATION_FIELDS = frozenset({"external_id", "name", "status", "amenities", "district_code"})
GEOJSON_ENDPOINTS = [
    pytest.param(
        Endpoint(
            "/api/v1/stations?bbox=114.28,30.56,114.30,30.58&limit=50",
            "Point",
            _STATION_FIELDS,
            count=len(STATIONS),
        ),
        id="stations-bbox",
    ),
    pytest.param(
        Endpoint(
            "/api/v1/stations/nearest?lat=30.572&lon=114.29&k=3",
            "Point",
            _STATION_FIELDS | {"distance_m"},
            count=3,
        ),
        id="stations-nearest",
    ),
]


@pytest.mark.parametrize("endpoint", GEOJSON_ENDPOINTS)
def test_gdal_opens_the_geojson_endpoint(server, loaded, endpoint: Endpoint):
    info = gdal_layer_info(server + endpoint.path)
    assert info["driver"] == "GeoJSON"
    assert info["geometry_type"] == endpoint.geometry_type
    assert info["crs"] == "EPSG:4326"
    assert endpoint.fields <= set(info["fields"]), info["fields"]
    if endpoint.count is not None:
        assert info["count"] == endpoint.count
    else:
        assert info["count"] > 0


def test_gdal_reads_the_stations_list_ids_and_positions(server, loaded):
    info = gdal_layer_info(f"{server}/api/v1/stations?bbox=114.28,30.56,114.30,30.58")
    # the Feature `id` is GDAL's FID
    assert sorted(info["fids"]) == sorted(loaded.values())
    by_ext = dict(zip(info["values"]["external_id"], info["geometries"], strict=True))
    for ext, (lon, lat, _) in STATIONS.items():
        assert (by_ext[ext].x, by_ext[ext].y) == pytest.approx((lon, lat), abs=1e-7)
    statuses = dict(zip(info["values"]["external_id"], info["values"]["status"], strict=True))
    assert statuses == {ext: st for ext, (_, _, st) in STATIONS.items()}


# --------------------------------------------------------------------------------------------
# Vector tiles through GDAL's MVT driver
# --------------------------------------------------------------------------------------------


def test_gdal_opens_a_stations_vector_tile(server, loaded):
    x, y = tile_of(*STATIONS["GDAL-1"][:2], TILE_Z)
    assert all(tile_of(lon, lat, TILE_Z) == (x, y) for lon, lat, _ in STATIONS.values())
    info = gdal_layer_info(f"/vsicurl/{server}/api/v1/tiles/stations/{TILE_Z}/{x}/{y}.pbf")
    assert info["driver"] == "MVT"
    assert info["layer"] == "stations"
    assert info["geometry_type"] == "Point"
    assert info["crs"] == "EPSG:3857"
    assert {"id", "name", "status", "host_type", "amenities", "district_code"} <= set(
        info["fields"]
    )
    visible = {sid for ext, sid in loaded.items() if STATIONS[ext][2] != "closed"}
    # the MVT feature id (GDAL: mvt_id) and the id attribute are the station id
    assert set(info["values"]["mvt_id"]) == visible
    assert info["values"]["id"] == info["values"]["mvt_id"]
    # positions in EPSG:3857 to within a tile unit (~0.6 m at zoom 14)
    by_id = dict(zip(info["values"]["id"], info["geometries"], strict=True))
    for ext, sid in loaded.items():
        if sid in visible:
            lon, lat, _ = STATIONS[ext]
            mx, my = TO_3857.transform(lon, lat)
            assert math.hypot(by_id[sid].x - mx, by_id[sid].y - my) < 0.7


def test_gdal_opens_a_coverage_cells_vector_tile(server, coverage_run):
    run, cells = coverage_run
    lon, lat, _ = STATIONS["GDAL-1"]
    x, y = tile_of(lon, lat, TILE_Z)
    info = gdal_layer_info(f"/vsicurl/{server}/api/v1/tiles/coverage/{run}/{TILE_Z}/{x}/{y}.pbf")
    assert info["driver"] == "MVT"
    assert info["layer"] == "cells"
    assert info["geometry_type"] in ("Polygon", "MultiPolygon")
    assert info["crs"] == "EPSG:3857"
    assert {"h3", "minutes", "band", "multiplicity", "weight"} <= set(info["fields"])
    assert set(info["values"]["h3"]) <= set(cells)
    assert h3.latlng_to_cell(lat, lon, 9) in info["values"]["h3"]


# --------------------------------------------------------------------------------------------
# Coverage layers (GeoJSON) on a real run over a small street grid
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def street_grid(database: str, loaded, tmp_path_factory) -> None:
    """A 2 km × 2 km street grid (200 m blocks) around the stations, imported and made live
    with the project's own command."""
    x0, y0, step, n = 114.275, 30.555, 0.002, 11
    feats = []
    for i in range(n):
        for j in range(n - 1):
            for a, b in (
                ((x0 + i * step, y0 + j * step), (x0 + i * step, y0 + (j + 1) * step)),
                ((x0 + j * step, y0 + i * step), (x0 + (j + 1) * step, y0 + i * step)),
            ):
                feats.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "LineString", "coordinates": [a, b]},
                        "properties": {"highway": "residential"},
                    }
                )
    path = tmp_path_factory.mktemp("net") / "grid.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")
    yizhan(database, "network", "import", str(path))


COVERAGE_ENDPOINTS = [
    ("/api/v1/coverage/cells?mode=walk&minutes=5", "Polygon", {"h3", "minutes", "band"}),
    ("/api/v1/coverage/gaps?mode=walk&minutes=5", None, {"rank", "uncovered_demand"}),
    (
        "/api/v1/coverage/overdense?mode=walk&minutes=15&kind=stations&redundant_pct=100"
        "&redundant_rel=100",
        "Point",
        {"kind", "station_id", "loss_pct"},
    ),
]


@pytest.mark.parametrize(("path", "geometry_type", "fields"), COVERAGE_ENDPOINTS)
def test_gdal_opens_the_coverage_layers(server, street_grid, path, geometry_type, fields):
    info = gdal_layer_info(server + path)
    assert info["driver"] == "GeoJSON"
    assert info["count"] > 0
    assert fields <= set(info["fields"])
    if geometry_type is not None:
        assert info["geometry_type"] == geometry_type
    assert "4326" in str(info["crs"])
    # and GDAL reads the same numbers the JSON carries
    body = httpx.get(server + path, timeout=60).json()
    assert info["count"] == len(body["features"])
