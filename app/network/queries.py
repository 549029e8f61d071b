"""All SQL of the road-network domain. Parameters are always bound, never formatted in.

Versions live side by side in the same tables (`version_id` column); exactly one version is
live (`network_versions.is_live`, guarded by a partial unique index). An import writes a new
version and switches over in one transaction, so readers see the old network until the commit
and the new one after it, never a mix (see app/network/importer.py). Every read below
therefore names the live version explicitly.

Distances are geodesic metres on the WGS-84 spheroid (`ST_Distance(geography)`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.types import Float, Text

from app.network.errors import NoNetworkError
from app.network.readers import NoProgress, Progress

#: pg_advisory_xact_lock key serialising network imports ("yizhan" in ASCII).
IMPORT_LOCK_KEY = 0x79697A68616E

#: Rows written to COPY between two progress updates.
COPY_CHUNK = 20000

#: Lower bounds of the length of one degree (metres): of latitude (at the equator) and of
#: longitude at the equator (the WGS-84 semi-major axis × π/180). Dividing by them gives a box
#: in degrees that surely holds every point within a geodesic distance.
M_PER_DEG_LAT = 110574.0
M_PER_DEG_LON_EQUATOR = 111319.0

_VERSION_COLUMNS = (
    "id, source, source_format, sha256, loaded_at, node_count, edge_count, total_length_m, "
    "oneway_edges, components, largest_component_share, stats, is_live, "
    "ST_XMin(extent) AS minlon, ST_YMin(extent) AS minlat, "
    "ST_XMax(extent) AS maxlon, ST_YMax(extent) AS maxlat"
)


@dataclass(frozen=True, slots=True)
class NetworkVersion:
    """One loaded network (the live one, or a retired one whose rows are gone)."""

    id: int
    source: str
    source_format: str
    sha256: str
    loaded_at: datetime
    node_count: int
    edge_count: int
    total_length_m: float
    oneway_edges: int
    components: int
    #: Share of the edges in the largest connected component (undirected), 0..1.
    largest_component_share: float
    #: (minlon, minlat, maxlon, maxlat)
    bbox: tuple[float, float, float, float]
    #: {"highways": {class: edges}, "skipped": {reason: count}, "oneway": {...}}
    stats: dict[str, Any]
    is_live: bool


def _version(row: Any) -> NetworkVersion:
    m = row._mapping
    stats = m["stats"]
    if isinstance(stats, str):
        stats = json.loads(stats)
    return NetworkVersion(
        id=int(m["id"]),
        source=m["source"],
        source_format=m["source_format"],
        sha256=m["sha256"],
        loaded_at=m["loaded_at"],
        node_count=int(m["node_count"]),
        edge_count=int(m["edge_count"]),
        total_length_m=float(m["total_length_m"]),
        oneway_edges=int(m["oneway_edges"]),
        components=int(m["components"]),
        largest_component_share=float(m["largest_component_share"]),
        bbox=(float(m["minlon"]), float(m["minlat"]), float(m["maxlon"]), float(m["maxlat"])),
        stats=dict(stats or {}),
        is_live=bool(m["is_live"]),
    )


# ------------------------------------------------------------------------------------------
# Versions
# ------------------------------------------------------------------------------------------


def live_version(conn: Connection) -> NetworkVersion | None:
    """The live network's version, or None when no network has been loaded yet."""
    row = conn.execute(
        text(f"SELECT {_VERSION_COLUMNS} FROM network_versions WHERE is_live")
    ).first()
    return _version(row) if row is not None else None


def require_live_version(conn: Connection) -> NetworkVersion:
    """The live network's version; NoNetworkError (503, says how to load one) if none."""
    version = live_version(conn)
    if version is None:
        raise NoNetworkError()
    return version


def versions(conn: Connection) -> list[NetworkVersion]:
    """Every version ever loaded, newest first (only the live one still has nodes and edges)."""
    rows = conn.execute(text(f"SELECT {_VERSION_COLUMNS} FROM network_versions ORDER BY id DESC"))
    return [_version(r) for r in rows]


# ------------------------------------------------------------------------------------------
# Loading (importer only; runs inside the importer's one transaction)
# ------------------------------------------------------------------------------------------


def lock_imports(conn: Connection) -> None:
    """Serialise imports: a second one waits until the first committed or rolled back."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": IMPORT_LOCK_KEY})


def insert_version(
    conn: Connection,
    *,
    source: str,
    source_format: str,
    sha256: str,
    node_count: int,
    edge_count: int,
    total_length_m: float,
    oneway_edges: int,
    components: int,
    largest_component_share: float,
    bbox: tuple[float, float, float, float],
    stats: dict[str, Any],
) -> int:
    """Register a new, not yet live version; returns its id."""
    stmt = text(
        "INSERT INTO network_versions (source, source_format, sha256, node_count, edge_count, "
        "total_length_m, oneway_edges, components, largest_component_share, stats, extent) "
        "VALUES (:source, :source_format, :sha256, :node_count, :edge_count, :total_length_m, "
        ":oneway_edges, :components, :share, CAST(:stats AS jsonb), "
        "ST_MakeEnvelope(:minlon, :minlat, :maxlon, :maxlat, 4326)) RETURNING id"
    )
    params = {
        "source": source,
        "source_format": source_format,
        "sha256": sha256,
        "node_count": node_count,
        "edge_count": edge_count,
        "total_length_m": total_length_m,
        "oneway_edges": oneway_edges,
        "components": components,
        "share": largest_component_share,
        "stats": json.dumps(stats, ensure_ascii=False, sort_keys=True),
    }
    params.update(zip(("minlon", "minlat", "maxlon", "maxlat"), bbox, strict=True))
    return int(conn.execute(stmt, params).scalar_one())


def _copy(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]], progress: Progress) -> None:
    """COPY rows in the connection's transaction (psycopg 3 under SQLAlchemy)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for start in range(0, len(rows), COPY_CHUNK):
            for row in rows[start : start + COPY_CHUNK]:
                copy.write_row(row)
            progress.advance(min(COPY_CHUNK, len(rows) - start))


def copy_nodes(
    conn: Connection,
    version_id: int,
    point_ewkb_hex: Sequence[str],
    osm_id: NDArray[np.int64] | None,
    progress: Progress | None = None,
) -> None:
    """Write the nodes of a version (ids 0..n-1 in the given order) with COPY."""
    n = len(point_ewkb_hex)
    osm: list[int | None] = osm_id.tolist() if osm_id is not None else [None] * n
    rows = list(zip([version_id] * n, range(n), osm, point_ewkb_hex, strict=True))
    _copy(
        conn,
        "COPY network_nodes (version_id, id, osm_id, geom) FROM STDIN",
        rows,
        progress or NoProgress(),
    )


def copy_edges(
    conn: Connection,
    version_id: int,
    *,
    source: NDArray[np.int64],
    target: NDArray[np.int64],
    length_m: NDArray[np.float64],
    highway: NDArray[np.str_],
    oneway: NDArray[np.int8],
    osm_way_id: NDArray[np.int64] | None,
    line_ewkb_hex: Sequence[str],
    name: NDArray[np.object_] | None = None,
    progress: Progress | None = None,
) -> None:
    """Write the edges of a version (ids 0..m-1 in the given order) with COPY."""
    m = len(line_ewkb_hex)
    way: list[int | None] = osm_way_id.tolist() if osm_way_id is not None else [None] * m
    names: list[str | None] = name.tolist() if name is not None else [None] * m
    rows = list(
        zip(
            [version_id] * m,
            range(m),
            source.tolist(),
            target.tolist(),
            length_m.tolist(),
            highway.tolist(),
            oneway.tolist(),
            way,
            line_ewkb_hex,
            names,
            strict=True,
        )
    )
    _copy(
        conn,
        "COPY network_edges (version_id, id, source, target, length_m, highway, oneway, "
        "osm_way_id, geom, name) FROM STDIN",
        rows,
        progress or NoProgress(),
    )


def loaded_counts(conn: Connection, version_id: int) -> tuple[int, int]:
    """How many nodes and edges a version has in the tables."""
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM network_nodes WHERE version_id = :v), "
            "(SELECT count(*) FROM network_edges WHERE version_id = :v)"
        ),
        {"v": version_id},
    ).one()
    return int(row[0]), int(row[1])


def swap_live(conn: Connection, version_id: int) -> int | None:
    """Make `version_id` the live network, retire the previous one and delete every other
    version's nodes and edges. Returns the previous live version id (None if there was none).
    Atomic with the caller's transaction: readers see the switch only at commit."""
    previous = conn.execute(
        text(
            "UPDATE network_versions SET is_live = false, retired_at = now() "
            "WHERE is_live AND id <> :v RETURNING id"
        ),
        {"v": version_id},
    ).scalar_one_or_none()
    conn.execute(
        text("UPDATE network_versions SET is_live = true WHERE id = :v"), {"v": version_id}
    )
    conn.execute(text("DELETE FROM network_edges WHERE version_id <> :v"), {"v": version_id})
    conn.execute(text("DELETE FROM network_nodes WHERE version_id <> :v"), {"v": version_id})
    return int(previous) if previous is not None else None


def analyze(conn: Connection) -> None:
    """Refresh planner statistics after a load (allowed inside a transaction)."""
    conn.execute(text("ANALYZE network_nodes"))
    conn.execute(text("ANALYZE network_edges"))


# ------------------------------------------------------------------------------------------
# Reading the live network
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EdgeArrays:
    """The live network as arrays for an in-memory graph (edges ordered by id, ids 0..m-1, so
    an edge's id is also its index; nodes ordered by id 0..n-1, likewise).

    `RoadNetwork.from_arrays(**arrays.graph_kwargs())` in app/network/graph.py takes it as is.
    """

    version_id: int
    edge_id: NDArray[np.int64]
    source: NDArray[np.int64]
    target: NDArray[np.int64]
    length_m: NDArray[np.float64]
    highway: NDArray[np.str_]
    #: 0 both ways, 1 source→target only, -1 target→source only (vehicles; walking ignores it)
    oneway: NDArray[np.int8]
    node_id: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]

    def graph_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `RoadNetwork.from_arrays` (without geometry)."""
        return {
            "edge_id": self.edge_id,
            "source": self.source,
            "target": self.target,
            "length_m": self.length_m,
            "highway": self.highway,
            "oneway": self.oneway,
            "node_id": self.node_id,
            "lon": self.lon,
            "lat": self.lat,
        }


def _fetch(conn: Connection, sql: str, version_id: int) -> list[tuple[Any, ...]]:
    raw = conn.connection.driver_connection
    assert raw is not None
    # binary results: ~4x faster than text for 10^5 rows of numbers
    with raw.cursor(binary=True) as cur:
        cur.execute(sql, {"v": version_id})
        return cur.fetchall()


def live_edges_arrays(conn: Connection, attempts: int = 3) -> EdgeArrays:
    """All live edges and nodes as numpy arrays; NoNetworkError if nothing is loaded.

    The version, its edges and its nodes are three statements; should an import switch over
    between them, the counts disagree with the version and the read is repeated.
    """
    for _ in range(attempts):
        version = require_live_version(conn)
        edges = _fetch(
            conn,
            "SELECT id, source, target, length_m, highway, oneway FROM network_edges "
            "WHERE version_id = %(v)s ORDER BY id",
            version.id,
        )
        nodes = _fetch(
            conn,
            "SELECT id, ST_X(geom), ST_Y(geom) FROM network_nodes "
            "WHERE version_id = %(v)s ORDER BY id",
            version.id,
        )
        if len(edges) == version.edge_count and len(nodes) == version.node_count:
            break
    else:
        raise RuntimeError("the live network kept changing while it was read")
    e = np.array(edges, dtype=object).reshape(-1, 6)
    n = np.array(nodes, dtype=object).reshape(-1, 3)
    return EdgeArrays(
        version_id=version.id,
        edge_id=e[:, 0].astype(np.int64),
        source=e[:, 1].astype(np.int64),
        target=e[:, 2].astype(np.int64),
        length_m=e[:, 3].astype(np.float64),
        highway=e[:, 4].astype(str),
        oneway=e[:, 5].astype(np.int8),
        node_id=n[:, 0].astype(np.int64),
        lon=n[:, 1].astype(np.float64),
        lat=n[:, 2].astype(np.float64),
    )


def edge_names(conn: Connection, version_id: int, edge_count: int) -> list[str | None] | None:
    """The street name of each of a version's `edge_count` edges, by id (= index, as in
    `live_edges_arrays`), None where an edge has none; None when no edge has a name (the
    demo network), so unnamed networks cost nothing."""
    rows = _fetch(
        conn,
        "SELECT id, name FROM network_edges WHERE version_id = %(v)s AND name IS NOT NULL",
        version_id,
    )
    if not rows:
        return None
    out: list[str | None] = [None] * edge_count
    for edge_id, name in rows:
        if 0 <= edge_id < edge_count:
            out[edge_id] = name
    return out


def edge_geometries(
    conn: Connection, version_id: int, edge_ids: Sequence[int] | NDArray[np.int64] | None = None
) -> NDArray[np.object_]:
    """Shapely LineStrings (WGS-84, source end first) of a version's edges, in the order of
    `edge_ids` (all edges ordered by id when None). Unknown ids raise KeyError."""
    if edge_ids is None:
        rows = _fetch(
            conn,
            "SELECT id, ST_AsBinary(geom) FROM network_edges WHERE version_id = %(v)s ORDER BY id",
            version_id,
        )
        if not rows:  # retired (its rows deleted) between the caller's reads, or unknown
            raise KeyError(f"network version {version_id} has no edges (no longer live?)")
        return np.asarray(shapely.from_wkb([bytes(r[1]) for r in rows]), dtype=object)
    wanted = np.asarray(edge_ids, dtype=np.int64)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor(binary=True) as cur:
        cur.execute(
            "SELECT id, ST_AsBinary(geom) FROM network_edges "
            "WHERE version_id = %(v)s AND id = ANY(%(ids)s)",
            {"v": version_id, "ids": np.unique(wanted).tolist()},
        )
        found = {int(i): bytes(g) for i, g in cur.fetchall()}
    missing = [int(i) for i in wanted if int(i) not in found]
    if missing:
        raise KeyError(f"edges not in version {version_id}: {missing[:5]}")
    return np.asarray(shapely.from_wkb([found[int(i)] for i in wanted]), dtype=object)


# ------------------------------------------------------------------------------------------
# Snapping points to the network
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapResult:
    """A point placed on its nearest edge.

    `fraction` runs from the edge's source (0) to its target (1) along the stored geometry
    (ST_LineLocatePoint, planar in degrees: exact for the straight segments of OSM data, a
    close approximation on long curved edges); `distance_m` is the geodesic distance from the
    point to the edge, i.e. the metres off the network. For app/network/graph.py:
    `Snap(r.edge_id, r.fraction, r.distance_m)` (edge ids are the array indices).
    """

    version_id: int
    edge_id: int
    source: int
    target: int
    fraction: float
    distance_m: float
    #: The snapped position on the edge.
    lon: float
    lat: float
    length_m: float
    highway: str
    oneway: int


_TEXT_ARRAY = ARRAY(Text)
_FLOAT_ARRAY = ARRAY(Float)


def _snap_sql(with_classes: bool) -> str:
    classes = " AND e.highway = ANY(:highways)" if with_classes else ""
    classes1 = " AND e1.highway = ANY(:highways)" if with_classes else ""
    # Stage 1: the nearest edge by planar KNN on the GiST index (degrees) and its geodesic
    # distance d. Stage 2: every edge whose box meets a box surely holding the geodesic circle
    # of radius d (degree lengths bounded from below), ordered by exact spheroid metres. So the
    # answer is the geodesically nearest edge even where degrees distort distances.
    return f"""
SELECT q.i, s.*
FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS q(lon, lat, i)
CROSS JOIN LATERAL (
    SELECT e.id AS edge_id, e.source, e.target, e.length_m, e.highway, e.oneway,
           ST_LineLocatePoint(e.geom, p.g) AS fraction,
           ST_Distance(e.geom::geography, p.g::geography) AS distance_m,
           ST_X(ST_ClosestPoint(e.geom, p.g)) AS snap_lon,
           ST_Y(ST_ClosestPoint(e.geom, p.g)) AS snap_lat
    FROM (SELECT ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326) AS g) p
    CROSS JOIN LATERAL (
        SELECT ST_Distance(e1.geom::geography, p.g::geography) * 1.01 + 0.01 AS r
        FROM network_edges e1
        WHERE e1.version_id = :v{classes1}
        ORDER BY e1.geom <-> p.g
        LIMIT 1
    ) c
    JOIN network_edges e
      ON e.version_id = :v{classes}
     AND e.geom && ST_Expand(
            p.g,
            c.r / ({M_PER_DEG_LON_EQUATOR} * greatest(
                cos(radians(least(89.99, abs(q.lat) + c.r / {M_PER_DEG_LAT}))), 1e-6)),
            c.r / {M_PER_DEG_LAT})
    ORDER BY distance_m, e.id
    LIMIT 1
) s
ORDER BY q.i
"""


def snap_many(
    conn: Connection,
    lons: Sequence[float] | NDArray[np.float64],
    lats: Sequence[float] | NDArray[np.float64],
    *,
    highways: Sequence[str] | frozenset[str] | None = None,
    version_id: int | None = None,
) -> list[SnapResult | None]:
    """Snap many points in one statement (e.g. every station); None where no edge qualifies.

    `highways` restricts the candidate edges to the classes a mode may use (pass
    `travel.allowed_classes(mode)`). Without `version_id` the live network is used
    (NoNetworkError when there is none).
    """
    lon_list = [float(x) for x in lons]
    lat_list = [float(y) for y in lats]
    if len(lon_list) != len(lat_list):
        raise ValueError("lons and lats must have the same length")
    if version_id is None:
        version_id = require_live_version(conn).id
    out: list[SnapResult | None] = [None] * len(lon_list)
    if not lon_list:
        return out
    params: dict[str, Any] = {"lons": lon_list, "lats": lat_list, "v": version_id}
    stmt = text(_snap_sql(highways is not None)).bindparams(
        bindparam("lons", type_=_FLOAT_ARRAY), bindparam("lats", type_=_FLOAT_ARRAY)
    )
    if highways is not None:
        params["highways"] = sorted(highways)
        stmt = stmt.bindparams(bindparam("highways", type_=_TEXT_ARRAY))
    for row in conn.execute(stmt, params).mappings():
        out[int(row["i"]) - 1] = SnapResult(
            version_id=version_id,
            edge_id=int(row["edge_id"]),
            source=int(row["source"]),
            target=int(row["target"]),
            fraction=min(max(float(row["fraction"]), 0.0), 1.0),
            distance_m=float(row["distance_m"]),
            lon=float(row["snap_lon"]),
            lat=float(row["snap_lat"]),
            length_m=float(row["length_m"]),
            highway=row["highway"],
            oneway=int(row["oneway"]),
        )
    return out


def snap(
    conn: Connection,
    lon: float,
    lat: float,
    *,
    highways: Sequence[str] | frozenset[str] | None = None,
    version_id: int | None = None,
) -> SnapResult | None:
    """The nearest edge (geodesically) to a point, the fraction along it and the metres off
    the network; None when no edge of the given classes exists. NoNetworkError if no network."""
    return snap_many(conn, [lon], [lat], highways=highways, version_id=version_id)[0]
