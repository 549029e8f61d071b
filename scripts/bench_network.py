#!/usr/bin/env python3
"""Benchmark the road-network engine on the Wuhan graph (e-bike) against pgRouting and pandana.

Everything runs in one process and one run, on the same graph and the same stations:

1. **Minutes to the nearest station for every node** (400 demo stations, cutoff 3600 s):
   the app's `minutes_to_nearest` (one multi-source scipy.sparse.csgraph run, reverse search =
   worker → station) against pandana's `nearest_pois`, one csgraph search per station (min over
   stations), pgRouting's `pgr_drivingDistance` with every station vertex as a start vertex and
   `equicost => true`, and igraph / rustworkx (virtual super-source) when installed. The answers
   are compared node by node.
2. **One 15-minute e-bike service area, cold**, for `--stations` stations: a raw
   `pgr_drivingDistance` call from the station's vertex on the whole graph, our search alone,
   our full `isochrones()` polygon build (and, as a reference, the same polygon built the way
   it was before 2026-11-22: pieces buffered one by one, without `shapely.line_merge`), and
   `GET /api/v1/stations/{id}/service-area` with the station's `service_areas` rows deleted
   first, interleaved per station. The first request after the server starts (graph build
   included) is reported on its own.
3. **Cached service area** over HTTP (`--cached` requests), `GET /healthz` as the floor, and
   the app's hit path in process (`service.service_area_response`, no HTTP).
4. **One isochrone** (5, 10, 15 min e-bike) over HTTP.
5. **Graph build** (arrays from PostGIS, edge geometry, csgraph, metric geometry) and the
   network import time.

Data lives in its own database `<dbname>_netbench` on the DATABASE_URL server (created,
migrated, the Wuhan network imported with the app's importer, the demo stations loaded with the
app's station importer) and is reused between runs. pgRouting is installed from Debian
(`postgresql-<major>-pgrouting`) when missing and enabled in that database only; the e-bike
costs of the app (`travel.edge_costs`) are written to `bench_edges(id, source, target, cost,
reverse_cost, geom)` with -1 for a forbidden direction.

Usage (from the project root; DATABASE_URL names the server, else `scripts/pg.sh url` is asked):

    .venv/bin/python scripts/bench_network.py [--stations 30] [--cached 300] [--isochrones 30]
        [--repeat 5] [--loop-budget 120] [--seed 20261122] [--reimport]
        [--write docs/benchmarks.md]

pandana, igraph and rustworkx are optional (`pip install pandana igraph rustworkx` into the
venv); a missing one is reported as such.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import heapq
import importlib.metadata
import json
import math
import os
import platform
import random
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from benchlib import (  # noqa: E402
    code_version,
    get_ok,
    loadavg,
    server_url,
    uvicorn_server,
    write_section,
)
from numpy.typing import NDArray  # noqa: E402
from psycopg import sql  # noqa: E402
from scipy.sparse.csgraph import dijkstra  # noqa: E402
from sqlalchemy import Engine, create_engine  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.config import Settings, normalise_database_url  # noqa: E402
from app.db import migrate  # noqa: E402
from app.network import importer as network_importer  # noqa: E402
from app.network import isochrone as iso_mod  # noqa: E402
from app.network import queries, sources  # noqa: E402
from app.network.graph import (  # noqa: E402
    ModeGraph,
    RoadNetwork,
    Snap,
    build_graph,
    minutes_to_nearest,
    multi_source_seconds,
    point_sources,
    sources_from_points,
)
from app.network.isochrone import isochrones  # noqa: E402
from app.network.service import (  # noqa: E402
    FILL_HOLES_BELOW_M2,
    NetworkState,
    service_area_response,
)
from app.network.travel import (  # noqa: E402
    DEFAULT_SETTINGS,
    Mode,
    allowed_classes,
    edge_costs,
    max_speed_mps,
)
from app.stations import importer as station_importer  # noqa: E402

SECTION = "Road network"
MODE = Mode.EBIKE
STATIONS_FILE = ROOT / "geodata" / "wuhan_demo_stations.geojson"
COVER_CUTOFF_S = 3600.0
AREA_MINUTES = 15
ISO_MINUTES = (5, 10, 15)
#: Agreement tolerance (seconds) for engines that sum float8 costs in their own order.
TOL_S = 1e-3
#: pandana's tolerance: its answers sit up to ~1.2 ms per edge of the path below the exact
#: sums (always below, never above: consistent with edge weights kept as whole milliseconds),
#: so paths of ~200 edges are off by up to ~0.1 s. Bound: 2 ms per edge of our path.
PANDANA_TOL_PER_EDGE_S = 2e-3
#: Bumped when bench_edges' layout or meaning changes (forces a rebuild).
EDGES_LAYOUT = 2

#: Targets of the issue.
COLD_FACTOR = 2.0  # cold service area ≤ 2 × a raw pgr_drivingDistance call
CACHED_MS = 5.0  # cached service area at the HTTP level
LOOP_FACTOR = 20.0  # all-nodes nearest ≥ 20 × faster than one search per station

Arr = NDArray[np.float64]


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the report)."""
    print(f"[netbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr for a while (pandana's C++ prints progress there)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def ms_since(t0: int) -> float:
    """Milliseconds since a perf_counter_ns() reading."""
    return (time.perf_counter_ns() - t0) / 1e6


def pct(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (inclusive method; the value itself for one sample)."""
    if len(samples) == 1 or p >= 100:
        return float(max(samples))
    if p <= 0:
        return float(min(samples))
    return float(statistics.quantiles(samples, n=100, method="inclusive")[round(p) - 1])


# --------------------------------------------------------------------------------------------
# Database, pgRouting and data
# --------------------------------------------------------------------------------------------


def netbench_url(main_url: str) -> str:
    """`<dbname>_netbench` on the same server, created with PostGIS if missing."""
    base = make_url(main_url)
    name = f"{base.database}_netbench"
    with psycopg.connect(main_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public")
    return url


def as_root(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a command as root (directly, or through `sudo -n`), like scripts/lib.sh does."""
    if os.geteuid() != 0:
        cmd = ["sudo", "-n", *cmd]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def ensure_pgrouting(url: str) -> str:
    """Install the server's pgRouting package if missing, enable it here; returns its version."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        major = int(str(row[0]) if row else "150000") // 10000
        have = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting'"
        ).fetchone()
    if have is None:
        package = f"postgresql-{major}-pgrouting"
        log(f"installing Debian package {package}")
        done = as_root(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package])
        if done.returncode != 0:
            as_root(["apt-get", "update", "-qq"])
            done = as_root(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package])
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install {package} failed: {done.stderr.strip()[-400:]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
        ver = conn.execute("SELECT pgr_version()").fetchone()
    return str(ver[0]) if ver else "?"


def sa_engine(url: str) -> Engine:
    """A SQLAlchemy engine (psycopg 3) on the bench database."""
    return create_engine(normalise_database_url(url))


def meta_get(conn: psycopg.Connection[Any], key: str) -> str | None:
    """A value of the bench's own key/value table."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
    row = conn.execute("SELECT value FROM bench_meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else str(row[0])


def meta_set(conn: psycopg.Connection[Any], key: str, value: str) -> None:
    """Store a value in the bench's key/value table."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text)")
    conn.execute(
        "INSERT INTO bench_meta VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (key, value),
    )


@dataclass
class ImportInfo:
    """How the network and stations got into the bench database."""

    import_s: float
    import_date: str
    imported_now: bool
    stations: int


def ensure_data(url: str, reimport: bool) -> ImportInfo:
    """Migrate, import the Wuhan network (unless the live one is that file) and the stations."""
    log("migrating the bench database")
    migrate.upgrade(url)
    path = sources.wuhan_parquet()
    engine = sa_engine(url)
    try:
        with engine.connect() as conn:
            live = queries.live_version(conn)
        same = live is not None and live.sha256 == sources.sha256_file(path)
        with psycopg.connect(url, autocommit=True) as pconn:
            known = meta_get(pconn, "import_seconds")
        imported = False
        if reimport or not same or known is None:
            log("importing the Wuhan network with app.network.importer.import_file")
            t0 = time.perf_counter()
            res = network_importer.import_file(engine, path, force=same)
            took = time.perf_counter() - t0
            log(
                f"network imported: {res.node_count:,} nodes, {res.edge_count:,} edges, "
                f"{took:.1f} s"
            )
            with psycopg.connect(url, autocommit=True) as pconn:
                meta_set(pconn, "import_seconds", f"{took:.3f}")
                meta_set(pconn, "import_date", dt.date.today().isoformat())
            imported = True
        else:
            log("Wuhan network already live, kept (--reimport to measure the import again)")
        with psycopg.connect(url, autocommit=True) as pconn:
            import_s = float(meta_get(pconn, "import_seconds") or "nan")
            import_date = meta_get(pconn, "import_date") or "?"
            want = len(json.loads(STATIONS_FILE.read_text(encoding="utf-8"))["features"])
            row = pconn.execute(
                "SELECT count(*) FROM stations WHERE external_id LIKE 'WH-DEMO-%'"
            ).fetchone()
            have = int(row[0]) if row else 0
        if have != want:
            log(f"loading {want} demo stations with app.stations.importer.import_file")
            settings = Settings.model_validate({"DATABASE_URL": url})
            station_importer.import_file(engine, STATIONS_FILE, settings)
    finally:
        engine.dispose()
    return ImportInfo(import_s, import_date, imported, want)


# --------------------------------------------------------------------------------------------
# The app's graph, the stations and bench_edges
# --------------------------------------------------------------------------------------------


@dataclass
class BuildTimes:
    """Median seconds of each stage of building the in-memory e-bike graph."""

    arrays_s: float
    geometry_s: float
    network_s: float
    csgraph_s: float
    metric_s: float
    nodes: int
    edges: int
    arcs: int

    @property
    def total_s(self) -> float:
        """Everything the first service-area request of a process pays for the graph."""
        return self.arrays_s + self.geometry_s + self.network_s + self.csgraph_s + self.metric_s


def load_graph(url: str, repeat: int) -> tuple[ModeGraph, int, BuildTimes]:
    """Build the e-bike graph like NetworkState.get (plus the metric geometry the first
    isochrone needs), `repeat` times; returns the last graph, the version and median times."""
    engine = sa_engine(url)
    stages: dict[str, list[float]] = {k: [] for k in ("arr", "geo", "net", "csg", "met")}
    graph: ModeGraph | None = None
    version = -1
    try:
        for _ in range(repeat):
            with engine.connect() as conn:
                t0 = time.perf_counter()
                arrays = queries.live_edges_arrays(conn)
                t1 = time.perf_counter()
                geometry = queries.edge_geometries(conn, arrays.version_id)
                t2 = time.perf_counter()
            net = RoadNetwork.from_arrays(**arrays.graph_kwargs(), geometry=geometry)
            t3 = time.perf_counter()
            graph = build_graph(net, MODE, DEFAULT_SETTINGS)
            t4 = time.perf_counter()
            _ = net.metric_geometry
            t5 = time.perf_counter()
            for key, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stages[key].append(v)
            version = arrays.version_id
            if not np.array_equal(arrays.edge_id, np.arange(len(arrays.edge_id))):
                raise RuntimeError("edge ids are not 0..m-1: snaps would not index the arrays")
    finally:
        engine.dispose()
    assert graph is not None
    med = {k: statistics.median(v) for k, v in stages.items()}
    times = BuildTimes(
        med["arr"],
        med["geo"],
        med["net"],
        med["csg"],
        med["met"],
        graph.n_nodes,
        graph.network.n_edges,
        int(graph.matrix.nnz),
    )
    return graph, version, times


@dataclass
class Station:
    """A demo station, snapped for e-bike, with its best search start node (reverse)."""

    id: int
    lon: float
    lat: float
    snap: Snap
    node: int  # index of the edge end from which the station is reached soonest


def load_stations(url: str, graph: ModeGraph, version: int) -> tuple[list[Station], int]:
    """The demo stations that the e-bike graph can serve, and how many could not be used."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM stations "
            "WHERE external_id LIKE 'WH-DEMO-%' ORDER BY id"
        ).fetchall()
    engine = sa_engine(url)
    try:
        with engine.connect() as conn:
            snaps = queries.snap_many(
                conn,
                [r[1] for r in rows],
                [r[2] for r in rows],
                highways=allowed_classes(MODE, DEFAULT_SETTINGS),
                version_id=version,
            )
    finally:
        engine.dispose()
    out: list[Station] = []
    for (sid, lon, lat), s in zip(rows, snaps, strict=True):
        if s is None or s.distance_m > DEFAULT_SETTINGS.max_off_network_m:
            continue
        snap = Snap(s.edge_id, s.fraction, s.distance_m)
        srcs = point_sources(graph, snap, reverse=True)
        if not srcs:
            continue
        node = min(srcs, key=lambda t: t[1])[0]
        out.append(Station(int(sid), float(lon), float(lat), snap, int(node)))
    return out, len(rows) - len(out)


def ensure_bench_edges(url: str, graph: ModeGraph, version: int) -> int:
    """(Re)write bench_edges for the live version with the app's e-bike costs; returns rows.

    One row per edge the mode may use in at least one direction: cost = seconds source →
    target or -1, reverse_cost = seconds target → source or -1 (pgRouting skips negative
    costs), exactly `travel.edge_costs(Mode.EBIKE, …)` as the app's csgraph uses them.
    """
    net = graph.network
    costs = edge_costs(MODE, net.length_m, net.highway, net.oneway, DEFAULT_SETTINGS)
    for a, b in ((costs.seconds, graph.costs.seconds), (costs.forward, graph.costs.forward)):
        if not np.array_equal(a, b):
            raise RuntimeError("edge_costs disagrees with the graph's costs")
    settings = NetworkState(DEFAULT_SETTINGS).settings_key()
    mark = f"layout={EDGES_LAYOUT};version={version};settings={settings}"
    with psycopg.connect(url, autocommit=True) as conn:
        if meta_get(conn, "bench_edges") == mark:
            row = conn.execute("SELECT count(*) FROM bench_edges").fetchone()
            return int(row[0]) if row else 0
        log("writing bench_edges (e-bike costs in seconds from travel.edge_costs)")
        usable = np.flatnonzero(costs.forward | costs.backward)
        fwd = np.where(costs.forward, costs.seconds, -1.0)
        bwd = np.where(costs.backward, costs.seconds, -1.0)
        with conn.transaction():
            conn.execute("DROP TABLE IF EXISTS bench_edges")
            conn.execute(
                "CREATE TABLE bench_edges (id bigint PRIMARY KEY, source bigint NOT NULL, "
                "target bigint NOT NULL, cost float8 NOT NULL, reverse_cost float8 NOT NULL, "
                "geom geometry(LineString, 4326))"
            )
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY bench_edges (id, source, target, cost, reverse_cost) FROM STDIN"
                ) as copy,
            ):
                for i in usable.tolist():
                    copy.write_row(
                        (
                            int(net.edge_id[i]),
                            int(net.source_id[i]),
                            int(net.target_id[i]),
                            float(fwd[i]),
                            float(bwd[i]),
                        )
                    )
            conn.execute(
                "UPDATE bench_edges b SET geom = e.geom FROM network_edges e "
                "WHERE e.version_id = %s AND e.id = b.id",
                (version,),
            )
            conn.execute("CREATE INDEX bench_edges_geom ON bench_edges USING gist (geom)")
            meta_set(conn, "bench_edges", mark)
        conn.execute("VACUUM ANALYZE bench_edges")
        return len(usable)


#: pgRouting edges SQL of the *transposed* e-bike graph: pgr_drivingDistance searches outbound
#: from its start vertices, so swapping cost and reverse_cost gives seconds node → station.
PGR_REVERSE_EDGES = (
    "SELECT id, source, target, reverse_cost AS cost, cost AS reverse_cost FROM bench_edges"
)


def pgr_bbox_edges(lon: float, lat: float, radius_m: float) -> str:
    """The transposed edges within a box that surely holds every node reached in time
    (straight-line radius = budget × the mode's top speed; degree lengths bounded below)."""
    dlat = radius_m / queries.M_PER_DEG_LAT
    dlon = radius_m / (
        queries.M_PER_DEG_LON_EQUATOR * max(math.cos(math.radians(abs(lat) + dlat)), 1e-6)
    )
    return (
        f"{PGR_REVERSE_EDGES} WHERE geom && ST_MakeEnvelope({lon - dlon:.7f}, {lat - dlat:.7f}, "
        f"{lon + dlon:.7f}, {lat + dlat:.7f}, 4326)"
    )


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------


def arcs(graph: ModeGraph, reverse: bool) -> tuple[NDArray[np.int64], NDArray[np.int64], Arr]:
    """Every allowed arc (tail, head, seconds) from the app's edge costs, loops dropped;
    transposed when `reverse` (a search on it gives seconds node → start)."""
    net, c = graph.network, graph.costs
    tail = np.concatenate([net.src[c.forward], net.dst[c.backward]]).astype(np.int64)
    head = np.concatenate([net.dst[c.forward], net.src[c.backward]]).astype(np.int64)
    w = np.concatenate([c.seconds[c.forward], c.seconds[c.backward]])
    keep = tail != head
    tail, head, w = tail[keep], head[keep], w[keep]
    return (head, tail, w) if reverse else (tail, head, w)


def plain_dijkstra(
    n: int,
    tails: NDArray[np.int64],
    heads: NDArray[np.int64],
    w: Arr,
    start: int,
    cutoff: float,
) -> Arr:
    """Textbook Dijkstra with a binary heap over adjacency lists (an independent check)."""
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for a, b, c in zip(tails.tolist(), heads.tolist(), w.tolist(), strict=True):
        adj[a].append((b, c))
    dist = [math.inf] * n
    dist[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, c in adj[u]:
            nd = d + c
            if nd < dist[v] and nd <= cutoff:
                dist[v] = nd
                heapq.heappush(heap, (nd, v))
    return np.asarray(dist, dtype=np.float64)


def compare(ref: Arr, other: Arr, cutoff: float) -> tuple[float, int]:
    """(max |difference| in seconds over nodes both reach, nodes only one reaches) — nodes
    within 1 ms of the cutoff on either side are not counted as a reach difference."""
    a = np.where(ref <= cutoff, ref, np.inf)
    b = np.where(other <= cutoff, other, np.inf)
    both = np.isfinite(a) & np.isfinite(b)
    diff = float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0
    one = np.isfinite(a) != np.isfinite(b)
    near = np.abs(np.where(np.isfinite(a), a, b) - cutoff) <= TOL_S
    return diff, int(np.count_nonzero(one & ~near))


def tree_hops(graph: ModeGraph, starts: Sequence[int], cutoff: float) -> NDArray[np.int64]:
    """Edges on each node's shortest path to its nearest start (reverse search; 0 unreached)."""
    dist, pred, _src = dijkstra(
        graph.reverse_matrix,
        directed=True,
        indices=list(starts),
        min_only=True,
        limit=cutoff,
        return_predecessors=True,
    )
    hops = np.zeros(graph.n_nodes, dtype=np.int64)
    reached = np.flatnonzero(np.isfinite(dist))
    for v in reached[np.argsort(dist[reached], kind="stable")].tolist():
        p = int(pred[v])
        if p >= 0:
            hops[v] = hops[p] + 1
    return hops


def pandana_check(name: str, ref: Arr, got: Arr, hops: NDArray[np.int64], cut: float) -> Check:
    """pandana vs ours within PANDANA_TOL_PER_EDGE_S per edge of our path."""
    a = np.where(ref <= cut, ref, np.inf)
    b = np.where(got <= cut, got, np.inf)
    both = np.isfinite(a) & np.isfinite(b)
    d = b[both] - a[both]
    h = np.maximum(hops[both], 1)
    tol = PANDANA_TOL_PER_EDGE_S * h + TOL_S
    one = np.isfinite(a) != np.isfinite(b)
    edge = np.abs(np.where(np.isfinite(a), a, b) - cut) <= PANDANA_TOL_PER_EDGE_S * 200
    n_one = int(np.count_nonzero(one & ~edge))
    worst = float(np.max(np.abs(d))) if len(d) else 0.0
    per = float(np.max(np.abs(d) / h)) if len(d) else 0.0
    low, high = (float(d.min()), float(d.max())) if len(d) else (0.0, 0.0)
    return Check(
        name,
        f"max |Δ| {worst:.3f} s (Δ from {low:.3f} to {high:.1g} s; ≤ {per * 1e3:.2f} ms per edge "
        f"of the path), {n_one} nodes reached by one only",
        bool(np.all(np.abs(d) <= tol)) and n_one == 0,
    )


def pgr_seconds(
    conn: psycopg.Connection[Any],
    net: RoadNetwork,
    edges_sql: str,
    starts: Sequence[int],
    cutoff: float,
    equicost: bool,
) -> Arr:
    """Run pgr_drivingDistance (start *node indices*) and spread agg_cost over all nodes."""
    ids = [int(net.node_id[i]) for i in starts]
    if len(ids) == 1:
        rows = conn.execute(
            "SELECT node, agg_cost FROM pgr_drivingDistance(%s, %s::bigint, %s, true)",
            (edges_sql, ids[0], cutoff),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT node, agg_cost FROM pgr_drivingDistance(%s, %s::bigint[], %s, true, true)"
            if equicost
            else "SELECT node, min(agg_cost) FROM pgr_drivingDistance(%s, %s::bigint[], %s, "
            "true, false) GROUP BY node",
            (edges_sql, ids, cutoff),
        ).fetchall()
    out = np.full(net.n_nodes, np.inf)
    if rows:
        arr = np.asarray(rows, dtype=np.float64)
        idx = net.node_index(arr[:, 0].astype(np.int64))
        np.minimum.at(out, idx, arr[:, 1])
    return out


def version_of(package: str) -> str | None:
    """An installed distribution's version, None when it is missing."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


class Pandana:
    """pandana 0.8 networks over the app's e-bike arcs (`twoway=False`: every allowed direction
    is its own arc). `nearest_pois` and `nodes_in_range` search outbound from each node along
    the arcs (checked on a 3-node chain), so the forward arcs give node → station for
    `nearest_pois`, and the transposed arcs give "reaches the station" for `nodes_in_range`."""

    def __init__(self, graph: ModeGraph, reverse: bool) -> None:
        import pandana
        import pandas as pd

        self.pd = pd
        self.graph = graph
        tail, head, w = arcs(graph, reverse=reverse)
        net = graph.network
        t0 = time.perf_counter_ns()
        with stdout_to_stderr():
            self.net = pandana.Network(
                pd.Series(net.lon),
                pd.Series(net.lat),
                pd.Series(tail),
                pd.Series(head),
                pd.DataFrame({"s": w}),
                twoway=False,
            )
        self.build_ms = ms_since(t0)

    @staticmethod
    def check_direction() -> bool:
        """True when pandana searches outbound from the query node along the arcs."""
        import pandana
        import pandas as pd

        with stdout_to_stderr():
            tiny = pandana.Network(
                pd.Series([0.0, 1.0, 2.0]),
                pd.Series([0.0, 0.0, 0.0]),
                pd.Series([0, 1]),
                pd.Series([1, 2]),
                pd.DataFrame({"s": [1.5, 2.25]}),
                twoway=False,
            )
            tiny.set_pois("p", 10.0, 1, pd.Series([1.0]), pd.Series([0.0]))
            near = tiny.nearest_pois(10.0, "p", num_pois=1, max_distance=np.inf)[1].to_numpy()
            rng = tiny.nodes_in_range([1], 10.0)
        reach = dict(zip(rng["destination"].tolist(), rng["s"].tolist(), strict=True))
        return bool(near[0] == 1.5 and np.isinf(near[2]) and reach.get(2) == 2.25)

    def set_pois(self, nodes: Sequence[int]) -> tuple[float, int]:
        """Place the stations on their nodes; (ms, stations pandana mapped to another node)."""
        net = self.graph.network
        xs = self.pd.Series(net.lon[list(nodes)])
        ys = self.pd.Series(net.lat[list(nodes)])
        t0 = time.perf_counter_ns()
        with stdout_to_stderr():
            self.net.set_pois("stations", COVER_CUTOFF_S, 1, xs, ys)
        took = ms_since(t0)
        mapped = self.net.get_node_ids(xs, ys).to_numpy()
        return took, int(np.count_nonzero(mapped != np.asarray(nodes)))

    def nearest(self) -> Arr:
        """Seconds from every node to its nearest station (inf beyond the cutoff)."""
        with stdout_to_stderr():
            df = self.net.nearest_pois(COVER_CUTOFF_S, "stations", num_pois=1, max_distance=np.inf)
        return np.asarray(df[1].to_numpy(), dtype=np.float64)

    def in_range(self, node: int, cutoff: float) -> Arr:
        """Seconds to the nodes within `cutoff` of one node (inf elsewhere)."""
        with stdout_to_stderr():
            df = self.net.nodes_in_range([node], cutoff)
        out = np.full(self.graph.n_nodes, np.inf)
        out[df["destination"].to_numpy(dtype=np.int64)] = df["s"].to_numpy(dtype=np.float64)
        return out


class IGraph:
    """igraph on the transposed arcs plus a virtual super-source (no cutoff in igraph)."""

    def __init__(self, graph: ModeGraph, starts: Sequence[int]) -> None:
        import igraph

        n = graph.n_nodes
        tail, head, w = arcs(graph, reverse=True)
        st = np.asarray(starts, dtype=np.int64)
        t0 = time.perf_counter_ns()
        edges = np.column_stack(
            [np.concatenate([tail, np.full(len(st), n)]), np.concatenate([head, st])]
        )
        self.g = igraph.Graph(n=n + 1, edges=edges.tolist(), directed=True)
        self.w = np.concatenate([w, np.zeros(len(st))]).tolist()
        self.build_ms = ms_since(t0)
        self.n = n

    def seconds(self, source: int | None = None) -> Arr:
        """Seconds to every node from `source`, or from the super-source (all starts)."""
        src = self.n if source is None else source
        d = self.g.distances(source=[src], weights=self.w, mode="out")[0]
        return np.asarray(d[: self.n], dtype=np.float64)


class RustworkX:
    """rustworkx on the transposed arcs plus a virtual super-source (no cutoff in rustworkx)."""

    def __init__(self, graph: ModeGraph, starts: Sequence[int]) -> None:
        import rustworkx

        self.rx = rustworkx
        n = graph.n_nodes
        tail, head, w = arcs(graph, reverse=True)
        t0 = time.perf_counter_ns()
        g = rustworkx.PyDiGraph()
        g.add_nodes_from(range(n + 1))
        g.add_edges_from(list(zip(tail.tolist(), head.tolist(), w.tolist(), strict=True)))
        g.add_edges_from([(n, int(s), 0.0) for s in starts])
        self.g = g
        self.build_ms = ms_since(t0)
        self.n = n

    def seconds(self, source: int | None = None) -> Arr:
        """Seconds to every node from `source`, or from the super-source (all starts)."""
        src = self.n if source is None else source
        res = self.rx.digraph_dijkstra_shortest_path_lengths(self.g, src, float)
        out = np.full(self.n + 1, np.inf)
        if len(res):
            keys = np.fromiter(res.keys(), dtype=np.int64, count=len(res))
            out[keys] = np.fromiter(res.values(), dtype=np.float64, count=len(res))
        out[src] = 0.0
        return out[: self.n]


# --------------------------------------------------------------------------------------------
# 1. Minutes to the nearest station for every node
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measured line: label, milliseconds per run (samples), and a note."""

    label: str
    samples: list[float]
    note: str = ""
    extrapolated: bool = False

    @property
    def p50(self) -> float:
        """Median milliseconds."""
        return pct(self.samples, 50)

    def p(self, q: float) -> float:
        """A percentile in milliseconds."""
        return pct(self.samples, q)


@dataclass
class Check:
    """One agreement check; `counted` ones decide the exit code."""

    name: str
    result: str
    ok: bool
    counted: bool = True


@dataclass
class Coverage:
    """Everything measured for task 1."""

    stations: int
    start_nodes: int
    rows: dict[str, Row] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    reached: int = 0
    loop_done: int = 0
    pandana_note: str = ""


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Call fn `repeat` times; (milliseconds of each call, the last result)."""
    out: list[float] = []
    res: Any = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter_ns()
        res = fn()
        out.append(ms_since(t0))
    return out, res


def bench_coverage(
    url: str, graph: ModeGraph, stations: list[Station], args: argparse.Namespace
) -> Coverage:
    """Minutes from every node to the nearest of the stations, by every engine."""
    nodes = [s.node for s in stations]
    uniq = sorted(set(nodes))
    cov = Coverage(len(stations), len(uniq))
    cut = COVER_CUTOFF_S
    net = graph.network

    log(f"coverage: ours, minutes_to_nearest over {len(nodes)} station nodes ({args.repeat}×)")
    ours_ms, ours_min = timed(
        lambda: minutes_to_nearest(graph, nodes, cutoff_s=cut, reverse=True), args.repeat
    )
    cov.rows["ours"] = Row("ours: `minutes_to_nearest` (csgraph, one multi-source run)", ours_ms)
    ref = np.asarray(ours_min, dtype=np.float64) * 60.0
    cov.reached = int(np.count_nonzero(np.isfinite(ref)))

    srcs, _owner = sources_from_points(graph, [s.snap for s in stations], reverse=True)
    snap_ms, _ = timed(lambda: multi_source_seconds(graph, srcs, cut, reverse=True), args.repeat)
    cov.rows["ours_snap"] = Row(
        "ours, stations on their snapped edges (initial seconds, virtual super-source)",
        snap_ms,
        f"{len(srcs)} sources",
    )

    log(f"coverage: one csgraph search per station node ({len(uniq)} nodes)")
    rev = graph.reverse_matrix
    best = np.full(graph.n_nodes, np.inf)
    per: list[float] = []
    t_loop = time.perf_counter()
    gc.collect()
    for node in uniq:
        t0 = time.perf_counter_ns()
        d = dijkstra(rev, directed=True, indices=node, limit=cut)
        np.minimum(best, d, out=best)
        per.append(ms_since(t0))
        if time.perf_counter() - t_loop > args.loop_budget:
            break
    cov.loop_done = len(per)
    full = len(per) == len(uniq)
    total = sum(per) if full else statistics.fmean(per) * len(uniq)
    cov.rows["loop"] = Row(
        "one csgraph search per station node, min over stations",
        [total],
        f"{len(per)} of {len(uniq)} searches run"
        + ("" if full else f", total extrapolated from their mean {statistics.fmean(per):.1f} ms"),
        extrapolated=not full,
    )
    if full:
        same = bool(np.array_equal(best / 60.0, ours_min))
        cov.checks.append(
            Check(
                "ours: multi-source = min over per-station searches (all nodes)",
                "exactly equal" if same else "differ",
                same,
            )
        )

    log("coverage: plain heapq Dijkstra check from 3 stations (cutoff 900 s)")
    tails, heads, w = arcs(graph, reverse=True)
    worst = 0.0
    for node in uniq[:3]:
        plain = plain_dijkstra(graph.n_nodes, tails, heads, w, node, 900.0)
        ours1 = multi_source_seconds(graph, [(node, 0.0)], 900.0, reverse=True)
        diff, one = compare(plain, ours1, 900.0)
        worst = max(worst, diff if one == 0 else math.inf)
    cov.checks.append(
        Check(
            "ours: csgraph vs an independent plain heapq Dijkstra (3 stations, 900 s)",
            f"max |Δ| {worst:.2g} s",
            worst <= 1e-9,
        )
    )

    log("coverage: pgRouting pgr_drivingDistance, all station vertices, equicost")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '600s'")
        reps = max(2, min(3, args.repeat))
        pgr_ms, pgr = timed(
            lambda: pgr_seconds(conn, net, PGR_REVERSE_EDGES, uniq, cut, True), reps
        )
        log("coverage: pgRouting without equicost, min(agg_cost) per node in SQL (once)")
        exact_ms, exact = timed(
            lambda: pgr_seconds(conn, net, PGR_REVERSE_EDGES, uniq, cut, False), 1
        )
    cov.rows["pgr"] = Row(
        "pgRouting `pgr_drivingDistance(…, ARRAY[stations], 3600, equicost => true)`",
        pgr_ms,
        "transposed edges SQL; **not the minimum**, see checks",
    )
    cov.rows["pgr_exact"] = Row(
        "pgRouting, `equicost => false`, `min(agg_cost) GROUP BY node`",
        exact_ms,
        "the exact pgRouting answer",
    )
    diff, one = compare(ref, pgr, cut)
    worse = int(np.count_nonzero(np.isfinite(ref) & (pgr > ref + TOL_S)))
    cov.checks.append(
        Check(
            "pgRouting `equicost => true` vs ours (not counted: a pgRouting defect)",
            f"{worse} nodes get more than the minimum, by up to {diff:.1f} s; "
            f"{one} nodes reached by one only",
            diff <= TOL_S and one == 0,
            counted=False,
        )
    )
    diff, one = compare(ref, exact, cut)
    cov.checks.append(
        Check(
            "pgRouting `equicost => false` + min per node vs ours",
            f"max |Δ| {diff:.2g} s, {one} nodes reached by one only",
            diff <= TOL_S and one == 0,
        )
    )

    if version_of("pandana"):
        log("coverage: pandana (contraction hierarchy build, set_pois, nearest_pois)")
        if not Pandana.check_direction():
            cov.pandana_note = "pandana's search direction is not the one assumed; not compared"
        else:
            hops = tree_hops(graph, uniq, cut)
            pan = Pandana(graph, reverse=False)
            poi_ms, moved = pan.set_pois(nodes)
            near_ms, near = timed(pan.nearest, args.repeat)
            cov.rows["pandana_build"] = Row(
                "pandana `Network(…, twoway=False)` (contraction hierarchy, precompute)",
                [pan.build_ms],
            )
            cov.rows["pandana_pois"] = Row("pandana `set_pois` (precompute)", [poi_ms])
            cov.rows["pandana"] = Row(
                "pandana `nearest_pois(3600, num_pois=1)`", near_ms, "query only"
            )
            cov.checks.append(pandana_check("pandana nearest_pois vs ours", ref, near, hops, cut))
            if moved:
                cov.checks.append(
                    Check("pandana set_pois: stations on their own nodes", f"{moved} moved", False)
                )
            del pan
    else:
        cov.pandana_note = "pandana is not installed"

    for name, cls in (("igraph", IGraph), ("rustworkx", RustworkX)):
        if not version_of(name):
            continue
        log(f"coverage: {name} (virtual super-source, no cutoff)")
        eng = cls(graph, uniq)
        q_ms, got = timed(eng.seconds, max(2, min(3, args.repeat)))
        cov.rows[name] = Row(
            f"{name} Dijkstra from a virtual super-source",
            q_ms,
            f"whole graph (no cutoff); graph build {eng.build_ms:.0f} ms not counted",
        )
        diff, one = compare(ref, got, cut)
        cov.checks.append(
            Check(
                f"{name} vs ours",
                f"max |Δ| {diff:.2g} s, {one} nodes reached by one only",
                diff <= TOL_S and one == 0,
            )
        )
    return cov


# --------------------------------------------------------------------------------------------
# 2–4. Service areas and isochrones
# --------------------------------------------------------------------------------------------


@dataclass
class Areas:
    """Everything measured for tasks 2–4."""

    stations: int
    rows: dict[str, Row] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    first_ms: float = 0.0
    first_cache: str = ""
    reached_nodes: list[int] = field(default_factory=list)
    pieces_area_km2: list[float] = field(default_factory=list)
    cached_n: int = 0
    iso_n: int = 0


def jitter(rng: random.Random, lon: float, lat: float, max_m: float) -> tuple[float, float]:
    """A point up to `max_m` from (lon, lat) in a random direction."""
    d, b = rng.uniform(0.0, max_m), rng.uniform(0.0, 2 * math.pi)
    dlat = d * math.cos(b) / 111_320.0
    dlon = d * math.sin(b) / (111_320.0 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def unmerged_polygon(graph: ModeGraph, st: Station, minutes: int) -> Any:
    """The service-area polygon as `isochrones()` built it before 2026-11-22: every reached
    line piece buffered on its own, then the union (no `shapely.line_merge` first)."""
    import shapely

    t = minutes * 60.0
    srcs = point_sources(graph, st.snap, reverse=True)
    secs = multi_source_seconds(graph, srcs, t, reverse=True)
    pieces = iso_mod.reached_pieces(graph, secs, t, reverse=True, snap=st.snap)
    parts = list(iso_mod.piece_geometries(graph, pieces))
    if pieces.connector > 0:
        parts.append(iso_mod._connector(graph, st.snap, (st.lon, st.lat), pieces.connector))
    geoms = np.asarray(parts, dtype=object)
    width = iso_mod.DEFAULT_BUFFER_M[graph.mode]
    poly = shapely.union_all(shapely.buffer(geoms, width, quad_segs=iso_mod._QUAD_SEGS))
    poly = iso_mod._fill_holes(poly, FILL_HOLES_BELOW_M2)
    return iso_mod._to_wgs84(graph, poly)


def bench_hits_in_process(url: str, sample: list[Station], count: int) -> dict[str, Row]:
    """Cache hits without HTTP: the app's `service_area_response` (bytes as the route sends
    them), one transaction per call like the route's `db.write()`."""
    engine = sa_engine(url)
    state = NetworkState(DEFAULT_SETTINGS)
    app_ms: list[float] = []
    try:
        with engine.begin() as conn:
            state.get(conn, MODE)  # builds the graph once (a hit does not need it)
        for k in range(count):
            st = sample[k % len(sample)]
            t0 = time.perf_counter_ns()
            with engine.begin() as conn:
                body = service_area_response(conn, state, st.id, MODE, [AREA_MINUTES], "wgs84")
            app_ms.append(ms_since(t0))
            cache = json.loads(body).get("cache")
            if cache != "hit":
                raise RuntimeError(f"station {st.id}: expected a cache hit in process, got {cache}")
    finally:
        engine.dispose()
    return {
        "hit_app": Row(
            "ref: in process, `service_area_response` hit (no HTTP)",
            app_ms,
            "one statement, stored Feature text spliced into the body",
        ),
    }


def bench_areas(
    url: str, graph: ModeGraph, stations: list[Station], args: argparse.Namespace
) -> Areas:
    """Cold service areas (pgRouting vs ours vs HTTP), cached ones, isochrones over HTTP."""
    rng = random.Random(args.seed)
    pick = rng.sample(stations, min(len(stations), args.stations + 1))
    first, sample = pick[0], pick[1:]
    res = Areas(len(sample))
    budget = AREA_MINUTES * 60.0
    radius = budget * max_speed_mps(MODE, DEFAULT_SETTINGS)
    net = graph.network
    have_ig = version_of("igraph") is not None
    ig = IGraph(graph, []) if have_ig else None
    pan = None
    if version_of("pandana") and Pandana.check_direction():
        log("service areas: pandana network on the transposed arcs (for nodes_in_range)")
        pan = Pandana(graph, reverse=True)
        res.rows["pandana_build"] = Row(
            "pandana `Network` on the transposed arcs (precompute, once)", [pan.build_ms]
        )
    keys = ["pgr", "pgr_bbox", "ours", "iso", "iso_before", "http"]
    if ig is not None:
        keys.append("igraph")
    if pan is not None:
        keys.append("pandana")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    cmp_ref: list[Arr] = []
    cmp_pgr: list[Arr] = []
    cmp_pan: list[Arr] = []
    cmp_hops: list[NDArray[np.int64]] = []
    sym: list[float] = []
    with (
        psycopg.connect(url, autocommit=True) as conn,
        uvicorn_server(url, log, {"YIZHAN_HOURS_AUTO_REFRESH": "false"}) as base,
        httpx.Client(base_url=base, timeout=300) as client,
    ):
        conn.execute("SET statement_timeout = '120s'")
        conn.execute("DELETE FROM service_areas")
        params = {"mode": MODE.value, "minutes": str(AREA_MINUTES)}
        t0 = time.perf_counter_ns()
        body = get_ok(client, f"/api/v1/stations/{first.id}/service-area", params).json()
        res.first_ms = ms_since(t0)
        res.first_cache = str(body.get("cache"))
        log(
            f"service areas: first request after start (graph build included) {res.first_ms:.0f} ms"
        )

        log(f"service areas: {len(sample)} stations, cold, interleaved")
        gc.collect()
        for i, st in enumerate(sample):
            t0 = time.perf_counter_ns()
            pgr = pgr_seconds(conn, net, PGR_REVERSE_EDGES, [st.node], budget, False)
            samples["pgr"].append(ms_since(t0))
            t0 = time.perf_counter_ns()
            pgr_seconds(
                conn,
                net,
                pgr_bbox_edges(net.lon[st.node], net.lat[st.node], radius),
                [st.node],
                budget,
                False,
            )
            samples["pgr_bbox"].append(ms_since(t0))
            t0 = time.perf_counter_ns()
            srcs = point_sources(graph, st.snap, reverse=True)
            secs = multi_source_seconds(graph, srcs, budget, reverse=True)
            samples["ours"].append(ms_since(t0))
            t0 = time.perf_counter_ns()
            polys = isochrones(
                graph,
                st.snap,
                [AREA_MINUTES],
                reverse=True,
                origin_lonlat=(st.lon, st.lat),
                fill_holes_below_m2=FILL_HOLES_BELOW_M2,
            )
            samples["iso"].append(ms_since(t0))
            t0 = time.perf_counter_ns()
            alt = unmerged_polygon(graph, st, AREA_MINUTES)
            samples["iso_before"].append(ms_since(t0))
            sym.append(float(alt.symmetric_difference(polys[0]).area / max(polys[0].area, 1e-30)))
            conn.execute("DELETE FROM service_areas WHERE station_id = %s", (st.id,))
            t0 = time.perf_counter_ns()
            body = get_ok(client, f"/api/v1/stations/{st.id}/service-area", params).json()
            samples["http"].append(ms_since(t0))
            if body.get("cache") != "miss":
                raise RuntimeError(
                    f"station {st.id}: expected a cache miss, got {body.get('cache')}"
                )
            if ig is not None:
                t0 = time.perf_counter_ns()
                ig.seconds(st.node)
                samples["igraph"].append(ms_since(t0))
            node_only = multi_source_seconds(graph, [(st.node, 0.0)], budget, reverse=True)
            cmp_ref.append(node_only)
            cmp_pgr.append(pgr)
            if pan is not None:
                t0 = time.perf_counter_ns()
                got = pan.in_range(st.node, budget)
                samples["pandana"].append(ms_since(t0))
                cmp_pan.append(got)
                cmp_hops.append(tree_hops(graph, [st.node], budget))
            res.reached_nodes.append(int(np.count_nonzero(np.isfinite(secs))))
            res.pieces_area_km2.append(float(body["features"][0]["properties"]["area_km2"]))
            del polys
            if (i + 1) % 10 == 0:
                log(f"  {i + 1}/{len(sample)} stations")
        ref_all = np.concatenate(cmp_ref)
        diff, one = compare(ref_all, np.concatenate(cmp_pgr), budget)
        res.checks.append(
            Check(
                "pgRouting single vertex (transposed edges) vs our search from the same vertex",
                f"max |Δ| {diff:.2g} s, {one} nodes reached by one only",
                diff <= TOL_S and one == 0,
            )
        )
        if pan is not None:
            res.checks.append(
                pandana_check(
                    "pandana nodes_in_range (transposed arcs) vs our search from the same vertex",
                    ref_all,
                    np.concatenate(cmp_pan),
                    np.concatenate(cmp_hops),
                    budget,
                )
            )
        res.checks.append(
            Check(
                "app's line-merged polygon vs the one built before 2026-11-22 (not counted)",
                f"symmetric difference: median {statistics.median(sym) * 100:.4f} %, max "
                f"{max(sym) * 100:.3f} % of the area",
                statistics.median(sym) <= 1e-4 and max(sym) <= 5e-3,
                counted=False,
            )
        )

        log(f"service areas: {args.cached} cached requests")
        for st in sample[:5]:  # warm the connection and code paths
            get_ok(client, f"/api/v1/stations/{st.id}/service-area", params)
        cached: list[float] = []
        floor: list[float] = []
        gc.collect()
        gc.disable()
        try:
            for k in range(args.cached):
                st = sample[k % len(sample)]
                # the clock stops when the response is read: "at the HTTP level" is the
                # server's answer, not the client's JSON parse of a ~56 KB body
                t0 = time.perf_counter_ns()
                resp = get_ok(client, f"/api/v1/stations/{st.id}/service-area", params)
                cached.append(ms_since(t0))
                body = resp.json()
                if body.get("cache") != "hit":
                    raise RuntimeError(f"station {st.id}: expected a cache hit")
                t0 = time.perf_counter_ns()
                get_ok(client, "/healthz")
                floor.append(ms_since(t0))
        finally:
            gc.enable()
        res.cached_n = len(cached)
        res.rows["cached"] = Row("HTTP service area, cached", cached)
        res.rows["floor"] = Row("ref: `GET /healthz` (HTTP floor)", floor)
        res.rows.update(bench_hits_in_process(url, sample, args.cached))

        log(f"isochrones: {args.isochrones} points, {','.join(map(str, ISO_MINUTES))} min")
        iso: list[float] = []
        iparams = {"mode": MODE.value, "minutes": ",".join(map(str, ISO_MINUTES))}
        points = [jitter(rng, s.lon, s.lat, 300.0) for s in rng.sample(stations, args.isochrones)]
        get_ok(client, "/api/v1/isochrones", {**iparams, "lon": points[0][0], "lat": points[0][1]})
        for lon, lat in points:
            t0 = time.perf_counter_ns()
            resp = client.get("/api/v1/isochrones", params={**iparams, "lon": lon, "lat": lat})
            took = ms_since(t0)
            if resp.status_code == 200:
                iso.append(took)
        res.iso_n = len(iso)
        res.rows["iso_http"] = Row("HTTP isochrone 5, 10, 15 min", iso)

    res.rows["pgr"] = Row("raw `pgr_drivingDistance(…, vertex, 900)`, whole graph", samples["pgr"])
    res.rows["pgr_bbox"] = Row(
        "ref: `pgr_drivingDistance`, edges SQL limited to a box of 3.75 km", samples["pgr_bbox"]
    )
    res.rows["ours"] = Row(
        "ours: search alone (csgraph, snapped point, cutoff 900 s)", samples["ours"]
    )
    res.rows["iso"] = Row(
        "ours: full `isochrones()` polygon (search + pieces + buffer + union)", samples["iso"]
    )
    res.rows["iso_before"] = Row(
        "ref: same polygon as built before 2026-11-22 (pieces buffered one by one, no "
        "`shapely.line_merge`)",
        samples["iso_before"],
    )
    res.rows["http"] = Row("HTTP service area, cold (cache rows deleted)", samples["http"])
    if ig is not None:
        res.rows["igraph"] = Row(
            "igraph single-source Dijkstra (whole graph, no cutoff)", samples["igraph"]
        )
    if pan is not None:
        res.rows["pandana"] = Row("pandana `nodes_in_range(vertex, 900)`", samples["pandana"])
    return res


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine(url: str, pgr_version: str) -> dict[str, str]:
    """CPU, RAM, server and library versions for the report."""
    cpu = "unknown"
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    with psycopg.connect(url, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        gis = conn.execute("SELECT postgis_lib_version()").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    libs = []
    for name in ("scipy", "numpy", "shapely", "pandana", "igraph", "rustworkx"):
        v = version_of(name)
        libs.append(f"{name} {v}" if v else f"{name} not installed")
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count() or "?"),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": str(pg[0]) if pg else "?",
        "postgis": str(gis[0]) if gis else "?",
        "pgrouting": pgr_version,
        "shared_buffers": str(buffers[0]) if buffers else "?",
        "libs": ", ".join(libs),
    }


def verdict(ok: bool) -> str:
    """PASS / FAIL marker."""
    return "PASS" if ok else "**FAIL**"


@dataclass
class Results:
    """Everything one run measured."""

    build: BuildTimes
    imp: ImportInfo
    cov: Coverage
    areas: Areas
    unusable: int
    edges_rows: int
    load: str
    seconds: float


def targets(r: Results) -> list[tuple[str, str, str, bool]]:
    """(target, measured, limit, ok) for each of the issue's performance targets."""
    cov, a = r.cov.rows, r.areas.rows
    out: list[tuple[str, str, str, bool]] = []
    for q in (50, 95):
        f = a["http"].p(q) / a["pgr"].p(q)
        out.append(
            (
                f"service area cold, HTTP p{q} / raw pgr_drivingDistance p{q}",
                f"{f:.2f}×",
                f"≤ {COLD_FACTOR:.0f}×",
                f <= COLD_FACTOR,
            )
        )
    out.append(
        (
            "service area cached, HTTP p50",
            f"{a['cached'].p50:.2f} ms",
            f"≤ {CACHED_MS:.0f} ms",
            a["cached"].p50 <= CACHED_MS,
        )
    )
    out.append(
        (
            "service area cached, HTTP p99 (strict reading)",
            f"{a['cached'].p(99):.2f} ms",
            f"≤ {CACHED_MS:.0f} ms",
            a["cached"].p(99) <= CACHED_MS,
        )
    )
    if "pandana" in cov:
        f = cov["pandana"].p50 / cov["ours"].p50
        out.append(
            (
                "nearest station for every node: pandana nearest_pois p50 / ours p50",
                f"{f:.2f}×",
                "> 1× (ours faster)",
                f > 1.0,
            )
        )
        pre = cov["pandana_build"].p50 + cov["pandana_pois"].p50
        f2 = (pre + cov["pandana"].p50) / (r.build.csgraph_s * 1e3 + cov["ours"].p50)
        out.append(
            (
                "… including set-up: pandana (CH + set_pois + query) / ours (csgraph build + run)",
                f"{f2:.2f}×",
                "> 1× (ours faster)",
                f2 > 1.0,
            )
        )
    else:
        out.append(("nearest station for every node: faster than pandana", "n/a", "> 1×", False))
    f = cov["loop"].p50 / cov["ours"].p50
    out.append(
        (
            "nearest station for every node: per-station loop / ours"
            + (" (loop extrapolated)" if cov["loop"].extrapolated else ""),
            f"{f:.1f}×",
            f"≥ {LOOP_FACTOR:.0f}×",
            f >= LOOP_FACTOR,
        )
    )
    return out


def table(rows: Sequence[Row], cols: Sequence[tuple[str, float]]) -> list[str]:
    """A Markdown table of rows with the given percentile columns."""
    head = "| Engine / path | " + " | ".join(c for c, _ in cols) + " | runs | note |"
    sep = "|---|" + "---:|" * len(cols) + "---:|---|"
    out = [head, sep]
    for row in rows:
        vals = " | ".join(
            f"{row.p(q):,.1f}" if row.p(q) >= 10 else f"{row.p(q):.2f}" for _, q in cols
        )
        out.append(f"| {row.label} | {vals} | {len(row.samples)} | {row.note} |")
    return out


def report(r: Results, mach: dict[str, str], command: str) -> str:
    """The whole "Road network" section."""
    today = dt.datetime.now().astimezone().date().isoformat()
    b, cov, a = r.build, r.cov, r.areas
    imp = (
        f"{r.imp.import_s:.1f} s (this run)"
        if r.imp.imported_now
        else f"{r.imp.import_s:.1f} s (measured {r.imp.import_date} when the data was loaded; "
        "`--reimport` measures it again)"
    )
    reached = statistics.median(a.reached_nodes) if a.reached_nodes else 0
    area = statistics.median(a.pieces_area_km2) if a.pieces_area_km2 else 0.0
    out = [
        f"## {SECTION}",
        "",
        f"Measured {today} with `{command}` on {code_version()}; {r.seconds:.0f} s in all, "
        f"load average at start {r.load}.",
        "",
        f"- Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram']} RAM, {mach['os']}; "
        f"PostgreSQL {mach['postgres']} (shared_buffers {mach['shared_buffers']}), "
        f"PostGIS {mach['postgis']}, pgRouting {mach['pgrouting']}, Python {mach['python']}; "
        f"{mach['libs']}. Database server, uvicorn and the benchmark share the machine.",
        f"- Graph: the Wuhan OSM street network (`sources.wuhan_parquet()`, imported with "
        f"`app.network.importer.import_file` into `<dbname>_netbench`), e-bike mode with the "
        f"app's costs (`travel.edge_costs`, 15 km/h riding, pushing at 5 km/h, one-way rules): "
        f"{b.nodes:,} nodes, {b.edges:,} edges, {b.arcs:,} directed arcs in the csgraph; "
        f"`bench_edges` holds the {r.edges_rows:,} edges usable by e-bike (cost / reverse_cost "
        "in seconds, -1 where forbidden).",
        f"- Stations: the {r.imp.stations} demo stations (`geodata/wuhan_demo_stations.geojson`, "
        f"loaded with `app.stations.importer.import_file`); {cov.stations} snap to an e-bike "
        f"road within 500 m ({r.unusable} do not), on {cov.start_nodes} distinct start nodes "
        "(per station, the end of its snapped edge from which it is reached soonest; that is "
        "the vertex every engine starts from).",
        '- Direction: "minutes to the nearest station" and service areas are worker → '
        "station, the app's reverse search (transposed matrix). pgRouting's drivingDistance is "
        "outbound from its start vertices, so it gets the transposed edges "
        "(`reverse_cost AS cost, cost AS reverse_cost`), which is the same directed problem; "
        "pandana's `nearest_pois` is outbound from each node to the POIs, so it gets the "
        "forward arcs (`twoway=False`, one arc per allowed direction), and `nodes_in_range` "
        "the transposed ones. Every engine starts at the same station nodes with 0 s, except "
        "the app's own paths, which start on the snapped edge (initial seconds).",
        "- Timing: wall clock in this process around each call, results fetched; "
        "HTTP: `uvicorn app.main:app --workers 1 --no-access-log` against the bench database "
        "with `YIZHAN_HOURS_AUTO_REFRESH=false`, one keep-alive `httpx.Client`, sequential; "
        "an HTTP time ends when the whole response body has been read (the client's JSON "
        "parse of it is not counted; until 2026-11-22 it was, which added ~0.8 ms p50 and "
        "~1.5 ms p99 to the cached service area). "
        "The cold service-area paths run interleaved per station on the same stations.",
        "",
        f"### Minutes to the nearest station, every node ({cov.stations} stations, "
        f"cutoff {COVER_CUTOFF_S:.0f} s)",
        "",
        f"{cov.reached:,} of {b.nodes:,} nodes reach a station within an hour.",
        "",
    ]
    order = [
        "ours",
        "ours_snap",
        "pandana",
        "pandana_build",
        "pandana_pois",
        "pgr",
        "pgr_exact",
        "igraph",
        "rustworkx",
        "loop",
    ]
    out += table([cov.rows[k] for k in order if k in cov.rows], [("p50 ms", 50), ("max ms", 100)])
    if cov.pandana_note:
        out += ["", f"pandana: {cov.pandana_note}."]
    out += [
        "",
        f"### One {AREA_MINUTES}-minute e-bike service area ({a.stations} stations)",
        "",
        f"Median {reached:,.0f} nodes reached per area; median polygon area {area:.1f} km². "
        f"First request after the server started (graph build included, cache {a.first_cache}): "
        f"**{a.first_ms:,.0f} ms**.",
        "",
    ]
    order = [
        "pgr",
        "pgr_bbox",
        "ours",
        "iso",
        "iso_before",
        "http",
        "igraph",
        "pandana",
        "pandana_build",
    ]
    out += table(
        [a.rows[k] for k in order if k in a.rows], [("p50 ms", 50), ("p95 ms", 95), ("max ms", 100)]
    )
    out += [
        "",
        "### Cached service area and isochrones over HTTP",
        "",
    ]
    out += table(
        [a.rows[k] for k in ("cached", "floor", "hit_app", "iso_http") if k in a.rows],
        [("p50 ms", 50), ("p95 ms", 95), ("p99 ms", 99)],
    )
    out += [
        "",
        "### Graph build and import",
        "",
        "| Stage | seconds |",
        "|---|---:|",
        f"| `live_edges_arrays` (edges and nodes from PostGIS) | {b.arrays_s:.2f} |",
        f"| `edge_geometries` (all LineStrings) | {b.geometry_s:.2f} |",
        f"| `RoadNetwork.from_arrays` | {b.network_s:.2f} |",
        f"| `build_graph(…, ebike)` (csgraph and its transpose) | {b.csgraph_s:.2f} |",
        f"| `metric_geometry` (UTM projection, first isochrone) | {b.metric_s:.2f} |",
        f"| **total in-process graph build** | **{b.total_s:.2f}** |",
        f"| network import (`importer.import_file`, read + validate + COPY + ANALYZE) | "
        f"{r.imp.import_s:.1f} |",
        "",
        f"Import: {imp}. Build stages: median of 3 builds.",
        "",
        "### Targets and checks",
        "",
        "| Target | Measured | Limit | Result |",
        "|---|---:|---|---|",
    ]
    for name, value, limit, ok in targets(r):
        out.append(f"| {name} | {value} | {limit} | {verdict(ok)} |")
    out += ["", "| Agreement check | Result | |", "|---|---|---|"]
    for c in cov.checks + a.checks:
        cell = c.result.replace("|", "\\|")  # |Δ| must not split the Markdown cell
        out.append(f"| {c.name} | {cell} | {verdict(c.ok)} |")
    out += findings(r)
    return "\n".join(out).rstrip() + "\n"


def findings(r: Results) -> list[str]:
    """Observations derived from the figures (all numbers are this run's p50s)."""
    cov, a = r.cov.rows, r.areas.rows
    ours = cov["ours"].p50
    others = {
        k: cov[k].p50 for k in ("pandana", "pgr", "pgr_exact", "igraph", "rustworkx") if k in cov
    }
    fastest = min(others, key=lambda k: others[k]) if others else ""
    notes = [
        f"- Engine: the app's one multi-source csgraph run ({ours:.0f} ms) is the fastest way "
        "to the all-nodes answer here"
        + (
            f"; the next best is {fastest} at {others[fastest]:.0f} ms "
            f"({others[fastest] / ours:.1f}×)"
            if fastest
            else ""
        )
        + f", and {cov['loop'].p50 / ours:.0f}× faster than one search per station. "
        "It needs no precompute beyond the csgraph the process already holds, takes the "
        "stations' snap offsets (virtual super-source) at no extra cost, and agrees exactly with "
        "the per-station minimum and with an independent heapq Dijkstra."
    ]
    if "pgr_exact" in cov:
        bad = next((c for c in r.cov.checks if "equicost => true" in c.name), None)
        notes.append(
            f"- pgRouting 3.4's `equicost => true` ({cov['pgr'].p50:.0f} ms) does not return the "
            "minimum over start vertices: "
            + (bad.result if bad else "see checks")
            + ". Without equicost and with `min(agg_cost) … GROUP BY node` it agrees with ours "
            f"to float precision but takes {cov['pgr_exact'].p50 / 1e3:.1f} s (one search per "
            "start vertex, every (start, node) row materialised)."
        )
    if "pandana" in cov:
        pre = cov["pandana_build"].p50 + cov["pandana_pois"].p50
        notes.append(
            f"- pandana: {cov['pandana'].p50:.0f} ms per all-nodes query (OpenMP, both cores) "
            f"after {pre / 1e3:.1f} s of precompute (contraction hierarchy + POI buckets), to "
            "redo whenever the network, the mode or the stations change; its times sit slightly "
            "below the exact sums (see checks), as if each edge weight were cut to whole "
            "milliseconds."
        )
    iso, srch, http, pgr = a["iso"].p50, a["ours"].p50, a["http"].p50, a["pgr"].p50
    notes.append(
        f"- Cold service area: our search is {srch:.1f} ms vs {pgr:.0f} ms for the raw "
        f"pgRouting call ({a['pgr_bbox'].p50:.0f} ms with a bounding-box edges query), but the "
        f"polygon build is {iso:.0f} ms, {srch / iso * 100:.0f} % of it the search and the "
        "rest cutting, merging, buffering and unioning the reached edge pieces; HTTP adds "
        f"{http - iso:.0f} ms (snap, cache lookup and insert, area, GeoJSON), "
        f"{http / pgr:.2f}× the raw pgRouting call in all. So the ≤ 2× target is decided by "
        "the polygon, not by the shortest-path engine."
    )
    if "iso_before" in a:
        notes.append(
            "- Applied 2026-11-22 (commit ed4cebf), both as proposed by the previous run of this "
            "script: (1) `isochrone.polygon_from_pieces` joins the line pieces with "
            "`shapely.line_merge` before `shapely.buffer`; measured then as polygon p50 "
            "172 → 99 ms (HTTP cold 204 ms, 2.05× pgRouting, before). This run: "
            f"{a['iso_before'].p50:.0f} ms the old way → {iso:.0f} ms the app's. The shape is "
            "the same up to the arc approximation of the buffers (`quad_segs=4`), see checks; "
            "where the difference is larger than a few m², a hairline gap between two buffers "
            "closes in one version and not the other, so a small notch becomes a filled hole "
            "in one only (neither is more exact than the other)."
        )
    if "hit_app" in a:
        floor = a["floor"].p50
        notes.append(
            "- (2) `service.service_area_response` stores the response-ready Feature (rounded "
            "geometry, `area_km2`) on a miss and, on a full WGS-84 hit, runs one statement and "
            "splices the stored text into the body; measured then as the in-process hit "
            "12.6 → 2.5 ms p50 (HTTP cached 15.7 ms before). This run: "
            f"{a['hit_app'].p50:.1f} ms in process, {a['cached'].p50:.1f} ms over HTTP "
            f"(p99 {a['cached'].p(99):.1f} ms), with a {floor:.1f} ms HTTP floor."
        )
    return ["", "Findings:", "", *notes]


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--stations", type=int, default=30, help="stations for cold service areas")
    p.add_argument("--cached", type=int, default=300, help="cached service-area requests")
    p.add_argument("--isochrones", type=int, default=30, help="isochrone requests over HTTP")
    p.add_argument("--repeat", type=int, default=5, help="repetitions of the all-nodes runs")
    p.add_argument(
        "--loop-budget",
        type=float,
        default=120.0,
        help="seconds for the one-search-per-station loop (the rest is extrapolated)",
    )
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--reimport", action="store_true", help="import the network again (timed)")
    p.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = p.parse_args(argv)
    if args.stations < 5 or args.cached < 100 or args.isochrones < 5 or args.repeat < 1:
        p.error("--stations ≥ 5, --cached ≥ 100, --isochrones ≥ 5, --repeat ≥ 1")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every target and check passes, 1 otherwise."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)  # so that `finally` stops uvicorn
    t_start = time.perf_counter()
    url = netbench_url(server_url())
    pgr_version = ensure_pgrouting(url)
    imp = ensure_data(url, args.reimport)
    load = loadavg()
    log("building the e-bike graph in process (3×)")
    graph, version, build = load_graph(url, 3)
    log(
        f"graph: {build.nodes:,} nodes, {build.edges:,} edges, {build.arcs:,} arcs; "
        f"build {build.total_s:.2f} s"
    )
    edges_rows = ensure_bench_edges(url, graph, version)
    stations, unusable = load_stations(url, graph, version)
    log(f"{len(stations)} stations usable by e-bike ({unusable} not)")
    cov = bench_coverage(url, graph, stations, args)
    areas = bench_areas(url, graph, stations, args)
    results = Results(
        build, imp, cov, areas, unusable, edges_rows, load, time.perf_counter() - t_start
    )
    mach = machine(url, pgr_version)
    command = ".venv/bin/python scripts/bench_network.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    section = report(results, mach, command.strip())
    print(section)
    if args.write:
        write_section(args.write, SECTION, section)
        log(f"wrote section '{SECTION}' of {args.write}")
    checks = [c for c in cov.checks + areas.checks if c.counted]
    ok = all(t[3] for t in targets(results)) and all(c.ok for c in checks)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
