"""Vector tiles: the stations and coverage-cell MVT layers against independent oracles."""

from __future__ import annotations

import json
import math
import random
import uuid

import h3
import mapbox_vector_tile
import pytest
from pyproj import Transformer
from sqlalchemy import text

from app.tiles import queries
from tests.conftest import AUTH
from tests.factories import bulk_insert, feature

MVT = "application/vnd.mapbox-vector-tile"
EXTENT = 4096
BUFFER = 64
HALF = 20037508.342789244  # half the Web Mercator world width, metres
TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
TO_4326 = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)

JIANGHAN = (114.2875, 30.5825)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile containing a point (the slippy-map formula)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    y = int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)
    return x, y


def pixel_by_hand(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Tile units (y down) of a point in tile z/x/y, by the spherical Mercator formula."""
    n = 2**z
    fx = (lon + 180) / 360 * n
    lat_r = math.radians(lat)
    fy = (1 - math.log(math.tan(lat_r) + 1 / math.cos(lat_r)) / math.pi) / 2 * n
    return (fx - x) * EXTENT, (fy - y) * EXTENT


def pixel_by_pyproj(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    """Tile units (y down) of a point, projected by PROJ: independent of the hand formula."""
    mx, my = TO_3857.transform(lon, lat)
    size = 2 * HALF / 2**z
    return (mx - (-HALF + x * size)) / size * EXTENT, ((HALF - y * size) - my) / size * EXTENT


def tile_center(z: int, x: int, y: int) -> tuple[float, float]:
    size = 2 * HALF / 2**z
    return TO_4326.transform(-HALF + (x + 0.5) * size, HALF - (y + 0.5) * size)


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def get_tile(client, path: str, **params):
    r = client.get(f"/api/v1/tiles/{path}", params=params)
    assert r.status_code in (200, 204), r.text
    return r


def layer(client, path: str, name: str, **params) -> list[dict]:
    r = get_tile(client, path, **params)
    if r.status_code == 204:
        return []
    assert r.headers["content-type"] == MVT
    return decode(r.content)[name]["features"]


# --------------------------------------------------------------------------------------------
# The filter box
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zxy", [(0, 0, 0), (5, 26, 13), (12, 3348, 1686), (18, 213_000, 107_000)])
def test_filter_box_is_the_buffered_tile_in_lonlat(zxy):
    z, x, y = zxy
    size = 2 * HALF / 2**z
    m = BUFFER / EXTENT
    minx, maxx = -HALF + (x - m) * size, -HALF + (x + 1 + m) * size
    miny, maxy = HALF - (y + 1 + m) * size, HALF - (y - m) * size
    (w, s), (e, n) = TO_4326.transform(minx, miny), TO_4326.transform(maxx, maxy)
    if z == 0:  # the buffer reaches beyond ±180°: clamped, not wrapped
        w, e = -180.0, 180.0
    assert queries.tile_lonlat_bounds(z, x, y, m) == pytest.approx((w, s, e, n), abs=1e-9)


def test_filter_box_at_the_world_edge_is_clamped_not_wrapped():
    # ST_Transform(ST_TileEnvelope(1, 0, 0, margin => …), 4326) wraps to lon 2.8 … 177.2
    w, _, e, _ = queries.tile_lonlat_bounds(1, 0, 0, BUFFER / EXTENT)
    assert w == -180.0 and 0 < e < 3


# --------------------------------------------------------------------------------------------
# Stations
# --------------------------------------------------------------------------------------------


def test_stations_tile_holds_exactly_the_stations_inside_the_buffered_tile(client, conn):
    z = 12
    x, y = tile_of(*JIANGHAN, z)
    clon, clat = tile_center(z, x, y)
    rng = random.Random(7)
    width = 360 / 2**z
    points, kept = [], []
    while len(points) < 400:
        lon = clon + rng.uniform(-1.3, 1.3) * width
        lat = clat + rng.uniform(-1.3, 1.3) * width * math.cos(math.radians(clat))
        px, py = pixel_by_pyproj(lon, lat, z, x, y)
        # points within 2 units of the buffered edge could round either way: not used
        if any(abs(v - edge) < 2 for v in (px, py) for edge in (-BUFFER, EXTENT + BUFFER)):
            continue
        inside = -BUFFER < px < EXTENT + BUFFER and -BUFFER < py < EXTENT + BUFFER
        in_buffer = inside and not (0 <= px <= EXTENT and 0 <= py <= EXTENT)
        status = rng.choice(["open", "open", "temporarily_closed", "closed"])
        points.append((lon, lat, ["toilet"], status))
        kept.append((inside, in_buffer, status))
    ids = bulk_insert(conn, points)
    rows = list(zip(ids, kept, strict=True))
    expected = {i for i, (inside, _, st) in rows if inside and st != "closed"}
    closed = {i for i, (inside, _, st) in rows if inside and st == "closed"}
    buffered = {i for i, (_, in_buffer, st) in rows if in_buffer and st != "closed"}
    # the sample exercises every side: inside, in the buffer only, outside, closed
    assert 50 < len(expected) < 350 and closed and buffered

    feats = layer(client, f"stations/{z}/{x}/{y}.pbf", "stations")
    assert {f["id"] for f in feats} == expected
    assert all(f["properties"]["id"] == f["id"] for f in feats)
    assert all(f["properties"]["status"] != "closed" for f in feats)

    # asked for, closed stations come, and only they
    only_closed = layer(client, f"stations/{z}/{x}/{y}.pbf", "stations", status="closed")
    assert {f["id"] for f in only_closed} == closed
    everything = layer(
        client, f"stations/{z}/{x}/{y}.pbf", "stations", status="open,temporarily_closed,closed"
    )
    assert {f["id"] for f in everything} == expected | closed


def test_a_station_sits_where_the_hand_formula_puts_it_with_its_attributes(client):
    lon, lat = 114.30123, 30.57456
    r = client.post(
        "/api/v1/stations",
        json=feature(
            "TILE-1", lon=lon, lat=lat, amenities=["drinking_water", "microwave", "toilet"]
        ),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    for z in (10, 15, 18):
        x, y = tile_of(lon, lat, z)
        (f,) = [f for f in layer(client, f"stations/{z}/{x}/{y}.pbf", "stations") if f["id"] == sid]
        assert f["geometry"]["type"] == "Point"
        px, py = f["geometry"]["coordinates"]
        hx, hy = pixel_by_hand(lon, lat, z, x, y)
        assert abs(px - hx) <= 0.5 + 1e-6 and abs(py - hy) <= 0.5 + 1e-6, (z, px, py, hx, hy)
        assert f["properties"] == {
            "id": sid,
            "name": "江汉路街道户外劳动者服务站点",
            "status": "open",
            "host_type": "community",
            "amenities": "drinking_water,microwave,toilet",
            "district_code": "420103",
        }


def test_stations_tile_walks_the_gist_index(conn):
    conn.execute(
        text(
            "INSERT INTO stations (external_id, name, geom) "
            "SELECT 'IX-' || g, 'p', "
            "ST_SetSRID(ST_MakePoint(110 + random() * 10, 25 + random() * 10), 4326) "
            "FROM generate_series(1, 20000) g"
        )
    )
    conn.execute(text("ANALYZE stations"))
    x, y = tile_of(*JIANGHAN, 12)
    plan = queries.stations_tile_plan(conn, 12, x, y, ("open", "temporarily_closed"))
    assert "idx_stations_geom" in plan, plan
    assert "Seq Scan on stations" not in plan, plan


def test_empty_tile_is_204_and_caching_headers(client, conn):
    bulk_insert(conn, [(*JIANGHAN, [], "open")])
    r = client.get("/api/v1/tiles/stations/12/0/0.pbf")  # the Bering Sea corner
    assert r.status_code == 204 and r.content == b""
    assert r.headers["cache-control"] == "public, max-age=60"
    x, y = tile_of(*JIANGHAN, 12)
    full = client.get(f"/api/v1/tiles/stations/12/{x}/{y}.pbf")
    assert full.status_code == 200 and full.headers["content-type"] == MVT
    assert full.headers["cache-control"] == "public, max-age=60"
    etag = full.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = client.get(f"/api/v1/tiles/stations/12/{x}/{y}.pbf", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(
        f"/api/v1/tiles/stations/12/{x}/{y}.pbf", headers={"If-None-Match": '"nope"'}
    )
    assert other.status_code == 200 and other.content == full.content


@pytest.mark.parametrize(
    "path, field",
    [
        ("stations/23/0/0.pbf", "z"),
        ("stations/-1/0/0.pbf", "z"),
        ("stations/3/8/0.pbf", "x"),
        ("stations/3/0/8.pbf", "y"),
        ("stations/0/1/0.pbf", "x"),
        ("stations/3/a/0.pbf", "x"),
        ("stations/3/0/1.5.pbf", "y"),
        ("stations/zz/0/0.pbf", "z"),
        ("coverage/1/23/0/0.pbf", "z"),
        ("coverage/1/2/4/0.pbf", "x"),
        ("coverage/x/2/0/0.pbf", "run_id"),
        ("coverage/0/2/0/0.pbf", "run_id"),
    ],
)
def test_bad_tile_addresses_are_422_naming_the_field(client, path, field):
    r = client.get(f"/api/v1/tiles/{path}")
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}: "), r.json()


def test_unknown_status_is_422(client):
    r = client.get("/api/v1/tiles/stations/0/0/0.pbf", params={"status": "gone"})
    assert r.status_code == 422 and r.json()["field"] == "status"


def test_stations_tilejson(client, conn):
    ids = bulk_insert(conn, [(114.1, 30.4, [], "open"), (114.5, 30.7, ["toilet"], "open")])
    bulk_insert(conn, [(100.0, 20.0, [], "closed")], prefix="C")
    r = client.get("/api/v1/tiles/stations.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/api/v1/tiles/stations/{z}/{x}/{y}.pbf"]
    assert doc["bounds"] == pytest.approx([114.1, 30.4, 114.5, 30.7])  # not the closed one
    assert 0 <= doc["minzoom"] <= doc["maxzoom"] <= 22
    (vl,) = doc["vector_layers"]
    assert vl["id"] == "stations"
    # the fields it advertises are exactly what a tile carries
    x, y = tile_of(114.1, 30.4, 10)
    (f,) = [f for f in layer(client, f"stations/10/{x}/{y}.pbf", "stations") if f["id"] == ids[0]]
    assert set(vl["fields"]) == set(f["properties"]) | {"district_code"}  # NULL: left out
    with_closed = client.get("/api/v1/tiles/stations.json", params={"status": "open,closed"})
    assert with_closed.json()["tiles"][0].endswith("{z}/{x}/{y}.pbf?status=open,closed")
    assert with_closed.json()["bounds"] == pytest.approx([100.0, 20.0, 114.5, 30.7])


# --------------------------------------------------------------------------------------------
# Coverage cells
# --------------------------------------------------------------------------------------------


def make_run(conn, params: dict, status: str = "done") -> int:
    version = conn.execute(
        text(
            "INSERT INTO network_versions (source, source_format, sha256, node_count, "
            "edge_count, total_length_m, oneway_edges, components, largest_component_share, "
            "extent) VALUES ('tiles test', 'geojson', repeat('0', 64), 1, 1, 1, 0, 1, 1, "
            "ST_MakeEnvelope(114, 30, 115, 31, 4326)) RETURNING id"
        )
    ).scalar_one()
    return int(
        conn.execute(
            text(
                "INSERT INTO coverage_runs (key, params, network_version, status) "
                "VALUES (:key, CAST(:params AS jsonb), :v, :status) RETURNING id"
            ),
            {"key": uuid.uuid4().hex, "params": json.dumps(params), "v": version, "status": status},
        ).scalar_one()
    )


def add_cells(conn, run_id: int, cells: dict[str, float | None]) -> None:
    for i, (cell, minutes) in enumerate(cells.items()):
        ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]
        wkt = "POLYGON((" + ", ".join(f"{a} {b}" for a, b in [*ring, ring[0]]) + "))"
        conn.execute(
            text(
                "INSERT INTO coverage_cells (run_id, cell, geom, minutes, multiplicity, weight, "
                "district_code) VALUES (:run, :cell, ST_GeomFromText(:wkt, 4326), :minutes, "
                ":mult, :weight, :district)"
            ),
            {
                "run": run_id,
                "cell": h3.str_to_int(cell),
                "wkt": wkt,
                "minutes": minutes,
                "mult": i % 3,
                "weight": 1.5 * i,
                "district": "420103" if i % 2 == 0 else None,
            },
        )


MINUTES = [3.2, 14.9, 15.1, None, 5.0, 7.5, 10.0, 12.0, 0.0, 20.0, 25.0]


@pytest.fixture
def cells_area():
    """Hand-chosen minutes on H3 resolution-9 cells in the middle of a zoom-13 tile."""
    z = 13
    x, y = tile_of(*JIANGHAN, z)
    clon, clat = tile_center(z, x, y)
    disk = sorted(h3.grid_disk(h3.latlng_to_cell(clat, clon, 9), 2))
    return (z, x, y), dict(zip(disk, MINUTES, strict=False))


def cells_by_h3(client, run_id: int, z: int, x: int, y: int) -> dict[str, dict]:
    feats = layer(client, f"coverage/{run_id}/{z}/{x}/{y}.pbf", "cells")
    return {f["properties"]["h3"]: f for f in feats}


@pytest.mark.parametrize(
    "target, expected",
    [
        (15, ["0-5", "10-15", "gap", "gap", "0-5", "5-10", "5-10", "10-15", "0-5", "gap", "gap"]),
        (20, ["0-5", "10-15", ">15", "gap", "0-5", "5-10", "5-10", "10-15", "0-5", ">15", "gap"]),
        (10, ["0-5", "gap", "gap", "gap", "0-5", "5-10", "5-10", "gap", "0-5", "gap", "gap"]),
    ],
)
def test_cell_bands_follow_the_runs_target(client, conn, cells_area, target, expected):
    (z, x, y), cells = cells_area
    run = make_run(conn, {"minutes": target, "mode": "walk"})
    add_cells(conn, run, cells)
    got = cells_by_h3(client, run, z, x, y)
    assert set(got) == set(cells)
    for (cell, minutes), band in zip(cells.items(), expected, strict=True):
        props = got[cell]["properties"]
        assert props["band"] == band, (cell, minutes, props)
        assert props["band"] == queries.band(minutes, target)
        assert props.get("minutes") == (None if minutes is None else round(minutes, 1))
        assert got[cell]["id"] == h3.str_to_int(cell)


def test_cell_attributes_and_geometry_by_zoom(client, conn, cells_area):
    (z, x, y), cells = cells_area
    run = make_run(conn, {"minutes": 15})
    add_cells(conn, run, cells)
    got = cells_by_h3(client, run, z, x, y)
    for i, cell in enumerate(cells):
        f = got[cell]
        assert f["geometry"]["type"] == "Polygon"
        assert f["properties"]["multiplicity"] == i % 3
        assert f["properties"]["weight"] == pytest.approx(1.5 * i)
        assert f["properties"].get("district_code") == ("420103" if i % 2 == 0 else None)
        # the hexagon's first vertex where the hand formula puts it (ring closure aside)
        lat, lng = h3.cell_to_boundary(cell)[0]
        hx, hy = pixel_by_hand(lng, lat, z, x, y)
        ring = f["geometry"]["coordinates"][0]
        assert min(math.hypot(px - hx, py - hy) for px, py in ring) <= 1.0
    # below zoom 9 each cell is its centroid point, same attributes
    lz = queries.CELL_POLYGON_MIN_ZOOM - 1
    lx, ly = tile_of(*JIANGHAN, lz)
    low = cells_by_h3(client, run, lz, lx, ly)
    assert set(low) == set(cells)
    assert {f["geometry"]["type"] for f in low.values()} == {"Point"}
    assert all(low[c]["properties"] == got[c]["properties"] for c in cells)


def test_cell_tiles_caching_404_and_tilejson(client, conn, cells_area):
    (z, x, y), cells = cells_area
    done = make_run(conn, {"minutes": 15})
    add_cells(conn, done, cells)
    r = client.get(f"/api/v1/tiles/coverage/{done}/{z}/{x}/{y}.pbf")
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    assert r.headers["cache-control"] == "public, max-age=86400, immutable"
    assert r.headers["etag"]
    empty = client.get(f"/api/v1/tiles/coverage/{done}/{z}/0/0.pbf")
    assert empty.status_code == 204
    assert empty.headers["cache-control"] == "public, max-age=86400, immutable"
    running = make_run(conn, {"minutes": 15}, status="running")
    add_cells(conn, running, cells)
    r = client.get(f"/api/v1/tiles/coverage/{running}/{z}/{x}/{y}.pbf")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"

    missing = max(done, running) + 1000
    for path in (f"coverage/{missing}/{z}/{x}/{y}.pbf", f"coverage/{missing}.json"):
        r = client.get(f"/api/v1/tiles/{path}")
        assert r.status_code == 404
        assert r.json()["field"] == "run_id" and r.json()["detail"].startswith("run_id: ")

    doc = client.get(f"/api/v1/tiles/coverage/{done}.json").json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == [f"http://testserver/api/v1/tiles/coverage/{done}/{{z}}/{{x}}/{{y}}.pbf"]
    (vl,) = doc["vector_layers"]
    assert vl["id"] == "cells"
    assert set(vl["fields"]) == {"h3", "minutes", "band", "multiplicity", "weight", "district_code"}
    lats = [lat for c in cells for lat, _ in h3.cell_to_boundary(c)]
    lngs = [lng for c in cells for _, lng in h3.cell_to_boundary(c)]
    assert doc["bounds"] == pytest.approx([min(lngs), min(lats), max(lngs), max(lats)], abs=1e-9)


@pytest.mark.parametrize(
    "params, target",
    [
        ({"minutes": 15}, 15.0),
        ({"minutes": 12.5}, 12.5),
        ({"minutes": [5, 10, 15]}, 15.0),
        ({}, queries.DEFAULT_TARGET_MINUTES),
        ({"minutes": "15"}, queries.DEFAULT_TARGET_MINUTES),
        ({"minutes": True}, queries.DEFAULT_TARGET_MINUTES),
        (None, queries.DEFAULT_TARGET_MINUTES),
    ],
)
def test_target_minutes_from_run_params(params, target):
    assert queries.target_minutes(params) == target


def test_a_temporary_closure_that_has_ended_is_open_on_the_tiles(client, conn):
    lon, lat = 114.30321, 30.57654
    sid = client.post(
        "/api/v1/stations", json=feature("TILE-CLOSED", lon=lon, lat=lat), headers=AUTH
    ).json()["id"]
    z = 15
    x, y = tile_of(lon, lat, z)

    def status() -> str | None:
        found = [
            f for f in layer(client, f"stations/{z}/{x}/{y}.pbf", "stations") if f["id"] == sid
        ]
        return found[0]["properties"]["status"] if found else None

    conn.execute(
        text(
            "UPDATE stations SET status = 'temporarily_closed', "
            "closed_until = now() + interval '2 hours' WHERE id = :i"
        ),
        {"i": sid},
    )
    assert status() == "temporarily_closed"
    conn.execute(
        text("UPDATE stations SET closed_until = now() - interval '1 minute' WHERE id = :i"),
        {"i": sid},
    )
    assert status() == "open"
    only_open = layer(client, f"stations/{z}/{x}/{y}.pbf?status=open", "stations")
    assert sid in {f["id"] for f in only_open}
