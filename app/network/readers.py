"""Street-network readers: OSM PBF (pyosmium), GeoParquet and GeoJSON into one plain form.

Nothing here touches the database. Each reader returns a `RawNetwork` — edge geometries as one
flat WGS-84 coordinate array, nodes numbered 0..n-1, highway class and one-way rule per edge —
or raises `NetworkImportError` saying what is wrong with the file.

Nodes. In an OSM PBF a node is an OSM node id: ways are split into edges at every node shared
with another routable way (or visited twice by one way) and at their ends. GeoParquet/GeoJSON
files are edge tables (already split at junctions, like OSMnx or neatnet output); with `u`/`v`
columns those OSM node ids are the nodes (two OSM nodes at one position stay apart, as at a
bridge over a street); without them, end points that coincide to ~1e-7° (1 cm) are one node.
Edge end points are snapped to their node's position, so the network is consistent.

One-way. `oneway` is 0 both ways, 1 source→target only, -1 target→source only, where source is
the first vertex of the stored geometry. OSM tags follow the wiki: `oneway=yes/true/1`,
`oneway=-1/reverse`, `oneway=no/false/0`; without a `oneway` tag, `junction=roundabout` or
`circular` and `highway=motorway` imply one-way (a `motorway_link` does not: the wiki asks
mappers to tag its `oneway`). `oneway=reversible`/`alternating` (time-dependent) count as both
ways. In an edge table with `u`/`v`, `oneway` is relative to u→v (the OSMnx convention; the
geometry is turned round to run u→v where it was stored the other way).

Names. An edge keeps its street name when the file has one (`RawNetwork.name`, None when no
edge has a name): an OSM way's `name:zh`, else `name`; an edge table's `name` column or
property (see `normalise_name`). They name suggested sites (app/coverage/naming.py).
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import shapely
from numpy.typing import NDArray

from app.network.errors import NetworkImportError
from app.network.travel import (
    DEFAULT_CAR_KMH,
    EBIKE_CLASSES,
    EBIKE_PUSH_CLASSES,
    WALK_CLASSES,
)

#: Highway classes stored for routing: every class some travel mode may use (see
#: app/network/travel.py). Anything else (`construction`, `proposed`, `platform`, `raceway`,
#: `busway`, `elevator`, `via_ferrata`, non-standard values…) is skipped and counted.
ROUTABLE_HIGHWAYS: frozenset[str] = (
    WALK_CLASSES | EBIKE_CLASSES | EBIKE_PUSH_CLASSES | frozenset(DEFAULT_CAR_KMH)
)
#: The class of an edge whose file gives none (OSM's "road of unknown classification").
UNKNOWN_HIGHWAY = "road"
#: End points closer than this (degrees) are one node when the file has no node ids.
SNAP_DEGREES = 1e-7
#: End points of one node id may differ by this much (degrees, ~10 cm) before it is an error.
ID_TOLERANCE_DEGREES = 1e-6
#: How many problems an error message lists before "and N more".
MAX_LISTED = 5

FORMATS = ("osm_pbf", "geoparquet", "geojson")


class Progress(Protocol):
    """Where readers and the loader report progress (the CLI draws rich progress bars)."""

    def start(self, description: str, total: float | None = None) -> None: ...

    def advance(self, amount: float = 1) -> None: ...


class NoProgress:
    """A progress sink that shows nothing."""

    def start(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1) -> None:
        pass


@dataclass(eq=False)
class RawNetwork:
    """A street network as read from a file, before validation (WGS-84 lon/lat)."""

    format: str
    #: (N, 2) lon/lat of every edge vertex, edge after edge.
    coords: NDArray[np.float64]
    #: (m + 1,) edge i's vertices are coords[offsets[i]:offsets[i + 1]].
    offsets: NDArray[np.int64]
    source: NDArray[np.int64]
    target: NDArray[np.int64]
    node_lon: NDArray[np.float64]
    node_lat: NDArray[np.float64]
    highway: NDArray[np.str_]
    oneway: NDArray[np.int8]
    #: The row, feature index or OSM way id each edge came from (for error messages).
    origin: NDArray[np.int64]
    origin_label: str
    node_osm_id: NDArray[np.int64] | None = None
    osm_way_id: NDArray[np.int64] | None = None
    #: Each edge's street name (object array of str or None); None when the file has none.
    name: NDArray[np.object_] | None = None
    #: What was left out, and how often (e.g. {"highway=construction": 3}).
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def edge_count(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def node_count(self) -> int:
        return int(self.node_lon.shape[0])


def detect_format(path: Path) -> str:
    """The reader for a file name: .osm.pbf/.pbf, .parquet/.geoparquet, .geojson/.json."""
    name = path.name.lower()
    if name.endswith(".pbf"):
        return "osm_pbf"
    if name.endswith((".parquet", ".geoparquet")):
        return "geoparquet"
    if name.endswith((".geojson", ".json")):
        return "geojson"
    raise NetworkImportError(
        f"file: {path.name}: unknown file type; expected .osm.pbf, .parquet (GeoParquet) "
        "or .geojson"
    )


def read_network(path: Path, progress: Progress | None = None) -> RawNetwork:
    """Read any supported file (chosen by its name); NetworkImportError if it is unusable."""
    fmt = detect_format(path)
    if not path.is_file():
        raise NetworkImportError(f"file: {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise NetworkImportError(f"file: {path.name} is empty")
    sink = progress or NoProgress()
    if fmt == "osm_pbf":
        return read_pbf(path, sink)
    if fmt == "geoparquet":
        return read_geoparquet(path, sink)
    return read_geojson(path, sink)


# ------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------


def listing(items: Sequence[str], total: int | None = None) -> str:
    """'a; b; c (and 7 more)' for error messages."""
    total = len(items) if total is None else total
    shown = "; ".join(items[:MAX_LISTED])
    more = total - min(len(items), MAX_LISTED)
    return shown + (f" (and {more} more)" if more > 0 else "")


def parse_oneway(value: Any) -> int:
    """An OSM-style oneway value (str, bool, number or None) as 1, -1 or 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return 0
        return 1 if value == 1 else -1 if value == -1 else 0
    text = str(value).strip().lower()
    if text in ("yes", "true", "1"):
        return 1
    if text in ("-1", "reverse"):
        return -1
    return 0


def osm_oneway(tags: Any, highway: str) -> int:
    """The one-way rule of an OSM way from its tags, with the implied cases of the wiki."""
    value = tags.get("oneway")
    if value is not None:
        return parse_oneway(value)
    if tags.get("junction") in ("roundabout", "circular"):
        return 1
    return 1 if highway == "motorway" else 0


def normalise_highway(value: Any) -> str:
    """A highway class as lower-case text; the first entry of a list; 'road' when missing."""
    if isinstance(value, list | tuple | np.ndarray):
        value = value[0] if len(value) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN_HIGHWAY
    text = str(value).strip().lower()
    return text or UNKNOWN_HIGHWAY


#: A street name longer than this (characters) is cut: a name labels a site, not a document.
MAX_NAME_CHARS = 100
#: OSM name tags of a street, the first present wins: Chinese first (in mainland China
#: `name` is Chinese anyway; in Hong Kong or Macau it is "彌敦道 Nathan Road").
OSM_NAME_TAGS = ("name:zh", "name")


def normalise_name(value: Any) -> str | None:
    """A street name as clean one-line text, or None: lists give their first name (OSMnx
    merges ways into one edge with a list of names), blanks and NaN are None, control
    characters and runs of white space become one space, over MAX_NAME_CHARS is cut."""
    if isinstance(value, list | tuple | np.ndarray):
        value = next((v for v in value if normalise_name(v) is not None), None)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = "".join(ch if ch.isprintable() else " " for ch in str(value))
    text = " ".join(text.split())[:MAX_NAME_CHARS].strip()
    return text or None


def name_array(names: Sequence[str | None]) -> NDArray[np.object_] | None:
    """Names as an object array, or None when no edge has one (the file carries none)."""
    if not any(n is not None for n in names):
        return None
    out = np.empty(len(names), dtype=object)
    out[:] = list(names)
    return out


def _keys(xy: NDArray[np.float64]) -> NDArray[np.uint64]:
    """One integer per position on a SNAP_DEGREES grid (positions must be valid lon/lat)."""
    qx = np.rint(xy[:, 0] / SNAP_DEGREES).astype(np.int64) + (1 << 31)
    qy = np.rint(xy[:, 1] / SNAP_DEGREES).astype(np.int64) + (1 << 31)
    return (qx.astype(np.uint64) << np.uint64(32)) | qy.astype(np.uint64)


def _edge_of_vertex(offsets: NDArray[np.int64]) -> NDArray[np.int64]:
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def check_coordinates(
    coords: NDArray[np.float64],
    offsets: NDArray[np.int64],
    origin: NDArray[np.int64],
    label: str,
    name: str,
) -> None:
    """Every vertex finite and on the globe, every line with two distinct points, or raise."""
    m = len(offsets) - 1
    if coords.shape[0] == 0:
        return
    bad_vertex = ~np.isfinite(coords).all(axis=1)
    finite = ~bad_vertex
    out = np.zeros(len(coords), dtype=bool)
    out[finite] = (np.abs(coords[finite, 0]) > 180) | (np.abs(coords[finite, 1]) > 90)
    # (0, 0) lies in the Gulf of Guinea: a street there is a position that was never filled in
    null_island = np.all(coords == 0.0, axis=1)
    edge = _edge_of_vertex(offsets)
    problems: list[str] = []
    total = 0
    for mask, what in (
        (bad_vertex, "a coordinate that is not a finite number"),
        (out, "a coordinate outside -180..180 / -90..90 (not WGS-84 longitude/latitude?)"),
        (null_island, "a coordinate at (0, 0) (a missing position?)"),
    ):
        edges = np.unique(edge[mask])
        problems += [f"{label}{origin[e]}: {what}" for e in edges[:MAX_LISTED]]
        if len(edges):
            total = len(edges)
            break
    if not problems:
        moves = np.zeros(m, dtype=bool)
        step = np.any(coords[1:] != coords[:-1], axis=1) & (edge[1:] == edge[:-1])
        np.logical_or.at(moves, edge[1:][step], True)
        flat = np.flatnonzero(~moves)
        problems += [
            f"{label}{origin[e]}: a line needs two distinct points" for e in flat[:MAX_LISTED]
        ]
        total = len(flat)
    if problems:
        raise NetworkImportError(f"file: {name}: {listing(problems, total)}")


def _nodes_from_positions(
    coords: NDArray[np.float64], offsets: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Source, target and node positions, merging end points within SNAP_DEGREES."""
    m = len(offsets) - 1
    ends = np.concatenate([coords[offsets[:-1]], coords[offsets[1:] - 1]])
    _, first, inverse = np.unique(_keys(ends), return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    return inverse[:m], inverse[m:], ends[first]


def _nodes_from_ids(
    coords: NDArray[np.float64],
    offsets: NDArray[np.int64],
    u: NDArray[np.int64],
    v: NDArray[np.int64],
    origin: NDArray[np.int64],
    label: str,
    name: str,
) -> tuple[
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.int64],
]:
    """Turn lines round to run u→v and place nodes; coords, source, target, node xy, node ids.

    A node's position is the end point all its edges share (a dead end's follows from its
    neighbour's); ambiguous lines keep their direction. Ids whose edges disagree on where the
    node is by more than ID_TOLERANCE_DEGREES make the file invalid.
    """
    m = len(u)
    start, end = coords[offsets[:-1]], coords[offsets[1:] - 1]
    ks, ke = _keys(start), _keys(end)
    nodes = np.concatenate([u, u, v, v])
    keys = np.concatenate([ks, ke, ks, ke])
    order = np.lexsort((keys, nodes))
    n_s, k_s = nodes[order], keys[order]
    new = np.ones(len(n_s), dtype=bool)
    new[1:] = (n_s[1:] != n_s[:-1]) | (k_s[1:] != k_s[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, len(n_s)))
    pn, pk = n_s[starts], k_s[starts]
    by_count = np.lexsort((-counts, pn))
    pn, pk, counts = pn[by_count], pk[by_count], counts[by_count]
    first = np.ones(len(pn), dtype=bool)
    first[1:] = pn[1:] != pn[:-1]
    head = np.flatnonzero(first)
    second = np.zeros(len(head), dtype=np.int64)
    has_next = head + 1 < len(pn)
    nxt = np.minimum(head + 1, len(pn) - 1)
    same_node = has_next & (pn[nxt] == pn[head])
    second[same_node] = counts[nxt[same_node]]
    ids, best, sure = pn[head], pk[head], counts[head] > second

    iu, iv = np.searchsorted(ids, u), np.searchsorted(ids, v)
    fwd = (sure[iu] & (best[iu] == ks)) | (sure[iv] & (best[iv] == ke))
    rev = (sure[iu] & (best[iu] == ke)) | (sure[iv] & (best[iv] == ks))
    flip = rev & ~fwd

    edge = _edge_of_vertex(offsets)
    pos = np.arange(len(coords), dtype=np.int64) - offsets[edge]
    turned = np.where(flip[edge], offsets[edge + 1] - 1 - pos, np.arange(len(coords)))
    coords = coords[turned]

    all_ids = np.concatenate([u, v])
    all_xy = np.concatenate([coords[offsets[:-1]], coords[offsets[1:] - 1]])
    node_ids, first_at, inverse = np.unique(all_ids, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    node_xy = all_xy[first_at]
    off = np.abs(all_xy - node_xy[inverse]).max(axis=1) > ID_TOLERANCE_DEGREES
    if off.any():
        rows = np.unique(np.flatnonzero(off) % m)
        problems = [f"{label}{origin[e]}" for e in rows[:MAX_LISTED]]
        raise NetworkImportError(
            f"file: {name}: u/v node ids do not match the geometry's end points "
            f"({listing(problems, len(rows))})"
        )
    return coords, inverse[:m], inverse[m:], node_xy, node_ids.astype(np.int64)


def assemble(
    fmt: str,
    name: str,
    coords: NDArray[np.float64],
    offsets: NDArray[np.int64],
    highway: NDArray[np.str_],
    oneway: NDArray[np.int8],
    origin: NDArray[np.int64],
    label: str,
    u: NDArray[np.int64] | None = None,
    v: NDArray[np.int64] | None = None,
    skipped: dict[str, int] | None = None,
    names: NDArray[np.object_] | None = None,
) -> RawNetwork:
    """Check the coordinates of an edge table and number its nodes (by id or by position)."""
    check_coordinates(coords, offsets, origin, label, name)
    node_ids: NDArray[np.int64] | None = None
    if len(offsets) == 1:
        source = target = np.empty(0, dtype=np.int64)
        node_xy = np.empty((0, 2))
    elif u is not None and v is not None:
        coords, source, target, node_xy, node_ids = _nodes_from_ids(
            coords, offsets, u, v, origin, label, name
        )
    else:
        source, target, node_xy = _nodes_from_positions(coords, offsets)
    if len(offsets) > 1:
        coords = coords.copy()
        coords[offsets[:-1]] = node_xy[source]
        coords[offsets[1:] - 1] = node_xy[target]
    return RawNetwork(
        format=fmt,
        coords=coords,
        offsets=offsets,
        source=source,
        target=target,
        node_lon=np.ascontiguousarray(node_xy[:, 0]),
        node_lat=np.ascontiguousarray(node_xy[:, 1]),
        highway=highway,
        oneway=oneway,
        origin=origin,
        origin_label=label,
        node_osm_id=node_ids,
        name=names,
        skipped=dict(skipped or {}),
    )


def _filter_classes(highways: Iterable[str], skipped: Counter[str]) -> NDArray[np.bool_]:
    keep = []
    for hw in highways:
        ok = hw in ROUTABLE_HIGHWAYS
        if not ok:
            skipped[f"highway={hw}"] += 1
        keep.append(ok)
    return np.asarray(keep, dtype=bool)


# ------------------------------------------------------------------------------------------
# GeoParquet
# ------------------------------------------------------------------------------------------


def _parquet_crs(meta: dict[bytes, bytes] | None, name: str) -> tuple[str, Any]:
    """The geometry column and its CRS (GeoParquet `geo` metadata; lon/lat when absent)."""
    geo = None
    if meta and b"geo" in meta:
        try:
            geo = json.loads(meta[b"geo"])
        except ValueError as exc:
            raise NetworkImportError(f"file: {name}: unreadable GeoParquet metadata") from exc
    if not geo:
        return "geometry", "OGC:CRS84"
    column = geo.get("primary_column", "geometry")
    col = (geo.get("columns") or {}).get(column) or {}
    encoding = str(col.get("encoding", "WKB"))
    if encoding.upper() != "WKB":
        raise NetworkImportError(
            f"file: {name}: geometry encoding {encoding!r} is not supported; write WKB"
        )
    if "crs" in col and col["crs"] is None:
        raise NetworkImportError(f"file: {name}: the geometry's CRS is undefined (crs: null)")
    return column, col.get("crs", "OGC:CRS84")


def read_geoparquet(path: Path, progress: Progress) -> RawNetwork:
    """A GeoParquet edge table: WKB LineStrings, columns highway, oneway, u, v, name
    (optional)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    name = path.name
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise NetworkImportError(f"file: {name} is not a readable GeoParquet file ({exc})") from exc
    geom_col, crs = _parquet_crs(schema.metadata, name)
    names = set(schema.names)
    if geom_col not in names:
        raise NetworkImportError(f"file: {name} has no geometry column {geom_col!r}")
    has_ids = {"u", "v"} <= names
    if ("u" in names) != ("v" in names):
        raise NetworkImportError(f"file: {name}: columns u and v must come together")
    try:
        src = CRS.from_json_dict(crs) if isinstance(crs, dict) else CRS.from_user_input(crs)
        to_wgs84 = Transformer.from_crs(src, CRS.from_epsg(4326), always_xy=True)
    except CRSError as exc:
        raise NetworkImportError(f"file: {name}: unknown CRS ({exc})") from exc

    wanted = [c for c in ("u", "v", "highway", "oneway", "name") if c in names] + [geom_col]
    total = pf.metadata.num_rows
    progress.start(f"reading {name}", total)
    skipped: Counter[str] = Counter()
    parts: list[tuple[Any, ...]] = []
    row0 = 0
    try:
        for batch in pf.iter_batches(batch_size=65536, columns=wanted):
            n = batch.num_rows
            rows = np.arange(row0, row0 + n, dtype=np.int64)
            row0 += n
            hw_col = batch.column("highway").to_pylist() if "highway" in names else [None] * n
            hw = [normalise_highway(h) for h in hw_col]
            keep = _filter_classes(hw, skipped)
            wkb = batch.column(geom_col).to_numpy(zero_copy_only=False)[keep]
            geoms = shapely.from_wkb(np.asarray(wkb, dtype=object))
            ow_col = batch.column("oneway").to_pylist() if "oneway" in names else None
            ow = np.asarray(
                [parse_oneway(x) for x in ow_col] if ow_col else np.zeros(n), dtype=np.int8
            )[keep]
            uv = None
            if has_ids:
                uv = (
                    batch.column("u").to_numpy(zero_copy_only=False)[keep],
                    batch.column("v").to_numpy(zero_copy_only=False)[keep],
                )
            nm = np.empty(n, dtype=object)
            if "name" in names:
                nm[:] = [normalise_name(x) for x in batch.column("name").to_pylist()]
            parts.append((rows[keep], geoms, np.asarray(hw, dtype=object)[keep], ow, uv, nm[keep]))
            progress.advance(n)
    except (pa.ArrowException, OSError, ValueError, shapely.errors.GEOSException) as exc:
        raise NetworkImportError(f"file: {name} is not a readable GeoParquet file ({exc})") from exc

    if parts:
        rows = np.concatenate([p[0] for p in parts])
        geoms = np.concatenate([p[1] for p in parts])
        hw_arr = np.concatenate([p[2] for p in parts])
        ow_arr = np.concatenate([p[3] for p in parts]).astype(np.int8)
        nm_arr = np.concatenate([p[5] for p in parts])
    else:
        rows, geoms = np.empty(0, np.int64), np.empty(0, object)
        hw_arr, ow_arr, nm_arr = np.empty(0, object), np.empty(0, np.int8), np.empty(0, object)
    u = v = None
    if has_ids and parts:
        try:
            u = np.concatenate([p[4][0] for p in parts]).astype(np.int64)
            v = np.concatenate([p[4][1] for p in parts]).astype(np.int64)
        except (TypeError, ValueError) as exc:
            raise NetworkImportError(f"file: {name}: u/v must be integer node ids") from exc

    types = shapely.get_type_id(geoms)
    problems = [f"row {r}: no geometry" for r in rows[types == -1][:MAX_LISTED]]
    if has_ids:
        bad = types != shapely.GeometryType.LINESTRING
    else:
        bad = (types != shapely.GeometryType.LINESTRING) & (
            types != shapely.GeometryType.MULTILINESTRING
        )
    bad &= types != -1
    problems += [
        f"row {r}: a {g.geom_type} is not a LineString"
        for r, g in zip(rows[bad][:MAX_LISTED], geoms[bad][:MAX_LISTED], strict=True)
    ]
    if problems:
        count = int(np.count_nonzero(bad | (types == -1)))
        raise NetworkImportError(f"file: {name}: {listing(problems, count)}")

    if not has_ids and np.any(types == shapely.GeometryType.MULTILINESTRING):
        geoms, part_of = shapely.get_parts(geoms, return_index=True)
        rows, hw_arr, ow_arr = rows[part_of], hw_arr[part_of], ow_arr[part_of]
        nm_arr = nm_arr[part_of]
    xy, line = shapely.get_coordinates(geoms, return_index=True)
    offsets = np.zeros(len(geoms) + 1, dtype=np.int64)
    np.cumsum(np.bincount(line, minlength=len(geoms)), out=offsets[1:])
    if len(xy):
        x, y = to_wgs84.transform(xy[:, 0], xy[:, 1])
        xy = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    return assemble(
        "geoparquet",
        name,
        xy.astype(np.float64, copy=False),
        offsets,
        np.asarray(hw_arr, dtype=str),
        ow_arr,
        rows,
        "row ",
        u,
        v,
        skipped,
        name_array(nm_arr.tolist()),
    )


# ------------------------------------------------------------------------------------------
# GeoJSON
# ------------------------------------------------------------------------------------------

MAX_GEOJSON_BYTES = 2 * 1024**3


def _node_id(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def read_geojson(path: Path, progress: Progress) -> RawNetwork:
    """A GeoJSON FeatureCollection of LineStrings (RFC 7946 lon/lat) with optional
    properties highway, oneway, u, v, name; MultiLineStrings are split into their parts."""
    import orjson

    name = path.name
    if path.stat().st_size > MAX_GEOJSON_BYTES:
        raise NetworkImportError(
            f"file: {name} is larger than {MAX_GEOJSON_BYTES} bytes; use GeoParquet or OSM PBF"
        )
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise NetworkImportError(f"file: {name} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise NetworkImportError(f"file: {name} is not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise NetworkImportError(f"file: {name}: features must be a list")
    progress.start(f"reading {name}", len(features))

    skipped: Counter[str] = Counter()
    problems: list[str] = []
    n_problems = 0
    flat: list[list[float]] = []
    lengths: list[int] = []
    origin: list[int] = []
    highways: list[str] = []
    oneways: list[int] = []
    us: list[int | None] = []
    vs: list[int | None] = []
    street_names: list[str | None] = []

    def problem(msg: str) -> None:
        nonlocal n_problems
        n_problems += 1
        if len(problems) < MAX_LISTED:
            problems.append(msg)

    reported = 0
    for i, feat in enumerate(features):
        if i - reported >= 10000:
            progress.advance(i - reported)
            reported = i
        where = f"features.{i}"
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            problem(f"{where}: not a Feature")
            continue
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            problem(f"{where}.properties: must be an object")
            continue
        hw = normalise_highway(props.get("highway"))
        if hw not in ROUTABLE_HIGHWAYS:
            skipped[f"highway={hw}"] += 1
            continue
        geom = feat.get("geometry")
        if not isinstance(geom, dict):
            problem(f"{where}.geometry: missing")
            continue
        gtype, coords = geom.get("type"), geom.get("coordinates")
        if gtype == "LineString":
            lines = [coords]
        elif gtype == "MultiLineString" and isinstance(coords, list):
            lines = coords
        else:
            problem(f"{where}.geometry: a {gtype} is not a LineString")
            continue
        u, v = _node_id(props.get("u")), _node_id(props.get("v"))
        if (u is None) != (v is None) or (u is not None and len(lines) != 1):
            problem(f"{where}.properties: u and v must both be integer node ids of one line")
            continue
        ok = True
        parsed: list[list[list[float]]] = []
        for line in lines:
            if not isinstance(line, list) or len(line) < 2:
                problem(f"{where}.geometry: a LineString needs at least two positions")
                ok = False
                break
            try:
                pts = [[float(p[0]), float(p[1])] for p in line]
            except (TypeError, ValueError, IndexError):
                problem(f"{where}.geometry: positions must be [longitude, latitude] numbers")
                ok = False
                break
            parsed.append(pts)
        if not ok:
            continue
        ow = parse_oneway(props.get("oneway"))
        street = normalise_name(props.get("name"))
        for pts in parsed:
            flat.extend(pts)
            lengths.append(len(pts))
            origin.append(i)
            highways.append(hw)
            oneways.append(ow)
            us.append(u)
            vs.append(v)
            street_names.append(street)
    progress.advance(len(features) - reported)
    if problems:
        raise NetworkImportError(f"file: {name}: {listing(problems, n_problems)}")

    with_ids = [u is not None for u in us]
    if any(with_ids) and not all(with_ids):
        raise NetworkImportError(f"file: {name}: either every feature has u/v node ids or none has")
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=offsets[1:])
    coords_arr = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    u_arr = v_arr = None
    if with_ids and all(with_ids):
        u_arr = np.asarray(us, dtype=np.int64)
        v_arr = np.asarray(vs, dtype=np.int64)
    return assemble(
        "geojson",
        name,
        coords_arr,
        offsets,
        np.asarray(highways, dtype=str),
        np.asarray(oneways, dtype=np.int8),
        np.asarray(origin, dtype=np.int64),
        "features.",
        u_arr,
        v_arr,
        skipped,
        name_array(street_names),
    )


# ------------------------------------------------------------------------------------------
# OSM PBF (pyosmium)
# ------------------------------------------------------------------------------------------


def read_pbf(path: Path, progress: Progress) -> RawNetwork:
    """Routable `highway` ways of an OSM PBF, split into edges at shared nodes.

    One streaming pass with osmium's node-location cache: only ways with a routable class reach
    Python, their node ids and locations are kept in flat arrays, and the splitting is done
    afterwards with numpy. Nodes missing from the extract (ways clipped at its border) split a
    way there; closed `area=yes` ways (pedestrian squares) are not streets and are skipped.
    """
    import osmium

    name = path.name
    refs = array("q")
    lons = array("d")
    lats = array("d")
    piece_start = array("q")
    piece_way = array("q")
    piece_hw: list[str] = []
    piece_ow = array("b")
    piece_name: list[str | None] = []
    skipped: Counter[str] = Counter()

    def close_piece(start: int) -> None:
        # keep a run of >= 2 located nodes as one piece, drop a lone node
        if len(refs) - start >= 2:
            return
        del refs[start:], lons[start:], lats[start:]
        piece_start.pop()
        piece_way.pop()
        piece_hw.pop()
        piece_ow.pop()
        piece_name.pop()

    progress.start(f"reading ways of {name}", None)
    ways = 0
    try:
        processor = (
            osmium.FileProcessor(osmium.io.File(str(path), "pbf"))
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.TagFilter(*(("highway", h) for h in ROUTABLE_HIGHWAYS)))
        )
        for way in processor:
            if not isinstance(way, osmium.osm.Way):
                continue
            ways += 1
            if ways % 10000 == 0:
                progress.advance(10000)
            tags = way.tags
            if tags.get("area") == "yes":
                skipped["area=yes"] += 1
                continue
            hw = str(tags.get("highway", ""))
            ow = osm_oneway(tags, hw)
            street = next(
                (n for n in (normalise_name(tags.get(k)) for k in OSM_NAME_TAGS) if n), None
            )
            start = -1
            missing = 0
            for node in way.nodes:
                loc = node.location
                if not loc.valid():
                    missing += 1
                    if start >= 0:
                        close_piece(start)
                        start = -1
                    continue
                if start < 0:
                    start = len(refs)
                    piece_start.append(start)
                    piece_way.append(way.id)
                    piece_hw.append(hw)
                    piece_ow.append(ow)
                    piece_name.append(street)
                refs.append(node.ref)
                lons.append(loc.lon)
                lats.append(loc.lat)
            if start >= 0:
                close_piece(start)
            if missing:
                skipped["nodes missing from the extract"] += missing
    except RuntimeError as exc:
        raise NetworkImportError(f"file: {name} is not a readable OSM PBF file ({exc})") from exc
    progress.advance(ways % 10000)

    ref = np.frombuffer(refs, dtype=np.int64) if refs else np.empty(0, np.int64)
    lon = np.frombuffer(lons, dtype=np.float64) if lons else np.empty(0)
    lat = np.frombuffer(lats, dtype=np.float64) if lats else np.empty(0)
    bounds = np.append(np.frombuffer(piece_start, dtype=np.int64), len(ref)).astype(np.int64)
    if len(piece_start) == 0:
        bounds = np.zeros(1, dtype=np.int64)
    piece_of = _edge_of_vertex(bounds)

    # split points: nodes used twice or more (by any routable way) and the ends of each piece
    _, inverse, counts = np.unique(ref, return_inverse=True, return_counts=True)
    split = counts[inverse.reshape(-1)] >= 2
    if len(bounds) > 1:
        split[bounds[:-1]] = True
        split[bounds[1:] - 1] = True
    at = np.flatnonzero(split)
    same = piece_of[at[:-1]] == piece_of[at[1:]]
    a, b = at[:-1][same], at[1:][same]

    # edges that do not move (a node repeated in a row, two nodes at one spot) are dropped
    xy = np.column_stack([lon, lat])
    span = b - a + 1
    offsets = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(span, out=offsets[1:])
    idx = (
        np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], span) + np.repeat(a, span)
    )
    edge = _edge_of_vertex(offsets)
    moves = np.zeros(len(a), dtype=bool)
    cx = xy[idx]
    step = np.any(cx[1:] != cx[:-1], axis=1) & (edge[1:] == edge[:-1])
    np.logical_or.at(moves, edge[1:][step], True)
    if not moves.all():
        skipped["zero-length segments"] += int(np.count_nonzero(~moves))
        a, b, span = a[moves], b[moves], span[moves]
        offsets = np.zeros(len(a) + 1, dtype=np.int64)
        np.cumsum(span, out=offsets[1:])
        idx = (
            np.arange(offsets[-1], dtype=np.int64)
            - np.repeat(offsets[:-1], span)
            + np.repeat(a, span)
        )

    piece = piece_of[a]
    src_ref, dst_ref = ref[a], ref[b]
    node_ids, first_at, node_inv = np.unique(
        np.concatenate([src_ref, dst_ref]), return_index=True, return_inverse=True
    )
    node_inv = node_inv.reshape(-1).astype(np.int64)
    node_pos = np.concatenate([a, b])[first_at]
    way_ids = np.frombuffer(piece_way, dtype=np.int64) if piece_way else np.empty(0, np.int64)
    hw_all = np.asarray(piece_hw, dtype=str) if piece_hw else np.empty(0, dtype=str)
    ow_all = np.frombuffer(piece_ow, dtype=np.int8) if piece_ow else np.empty(0, np.int8)
    m = len(a)
    return RawNetwork(
        format="osm_pbf",
        coords=np.ascontiguousarray(xy[idx]),
        offsets=offsets,
        source=node_inv[:m],
        target=node_inv[m:],
        node_lon=lon[node_pos].copy(),
        node_lat=lat[node_pos].copy(),
        highway=hw_all[piece],
        oneway=ow_all[piece].copy(),
        origin=way_ids[piece],
        origin_label="way ",
        node_osm_id=node_ids.astype(np.int64),
        osm_way_id=way_ids[piece].copy(),
        name=name_array([piece_name[i] for i in piece.tolist()]),
        skipped=dict(skipped),
    )
