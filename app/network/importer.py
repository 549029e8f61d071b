"""All-or-nothing import of a street network: read, validate, load, switch over.

1. Read the whole file into memory (app/network/readers.py) — nothing touches the database.
2. Validate: non-empty; every geometry valid, finite and on the globe; every length finite
   and positive; node references in range; the largest connected component (undirected)
   holds at least `min_largest_share` of the edges. Every problem found is named.
3. In ONE transaction: take the import lock, register a new version (not live), COPY its
   nodes and edges into the shared tables, check the row counts, flip `is_live` to it,
   retire the previous version and delete the other versions' rows, ANALYZE, commit.

Why side-by-side versions in one transaction rather than staging tables renamed at the end:
the previous network is never touched until the new one has been validated and written; the
switch is atomic (concurrent readers see the old network until the commit, the new one after
it, because every read names the live version); a failure anywhere — a corrupt file, a bug,
a killed process — rolls back to exactly the previous state with nothing to clean up; and no
DDL (renames of tables, indexes, constraints under ACCESS EXCLUSIVE locks) is needed, so the
schema stays what the migrations made and the drift test checks. The price is a DELETE of
the retired rows (autovacuum reclaims them) and one long transaction for a big province.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from app.network import queries
from app.network.errors import NetworkImportError
from app.network.readers import (
    MAX_LISTED,
    NoProgress,
    Progress,
    RawNetwork,
    check_coordinates,
    listing,
    read_network,
)
from app.network.sources import sha256_file

#: Reject a network whose largest connected part holds less than this share of the edges:
#: a clipped or broken extract would make most stations unreachable from most places.
MIN_LARGEST_SHARE = 0.5

_GEOD = Geod(ellps="WGS84")


@dataclass(eq=False)
class PreparedNetwork:
    """A validated network, ready to be written."""

    raw: RawNetwork
    length_m: NDArray[np.float64]
    line_ewkb_hex: list[str]
    point_ewkb_hex: list[str]
    components: int
    largest_component_share: float
    bbox: tuple[float, float, float, float]
    stats: dict[str, Any]

    @property
    def edge_count(self) -> int:
        return self.raw.edge_count

    @property
    def node_count(self) -> int:
        return self.raw.node_count


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    version_id: int
    previous_version_id: int | None
    #: True when the file equals the live network (same SHA-256) and nothing was done.
    unchanged: bool
    source: str
    source_format: str
    sha256: str
    node_count: int
    edge_count: int
    components: int
    largest_component_share: float
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)


def geodesic_lengths(
    coords: NDArray[np.float64], offsets: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Length in metres of each polyline on the WGS-84 ellipsoid (vectorised pyproj.Geod)."""
    if len(coords) < 2:
        return np.zeros(len(offsets) - 1)
    _, _, seg = _GEOD.inv(coords[:-1, 0], coords[:-1, 1], coords[1:, 0], coords[1:, 1])
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(seg, dtype=np.float64))])
    return np.asarray(cum[offsets[1:] - 1] - cum[offsets[:-1]], dtype=np.float64)


def _largest_component(raw: RawNetwork) -> tuple[int, float]:
    """Number of connected components (undirected, nodes with edges) and the largest one's
    share of the edges."""
    n, m = raw.node_count, raw.edge_count
    graph = coo_matrix((np.ones(m, dtype=np.int8), (raw.source, raw.target)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    per = np.bincount(labels[raw.source], minlength=count)
    return int(count), float(per.max() / m)


def prepare(
    raw: RawNetwork,
    name: str,
    *,
    min_largest_share: float = MIN_LARGEST_SHARE,
    progress: Progress | None = None,
) -> PreparedNetwork:
    """Validate a network read from `name` and compute what is stored; NetworkImportError
    listing what is wrong (nothing has been written at that point)."""
    sink = progress or NoProgress()
    sink.start("checking the network", None)
    m, n = raw.edge_count, raw.node_count
    if m == 0:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(raw.skipped.items())[:8])
        raise NetworkImportError(
            f"network: {name} contains no routable street segments"
            + (f" (skipped {skipped})" if skipped else "")
        )
    check_coordinates(raw.coords, raw.offsets, raw.origin, raw.origin_label, name)
    problems: list[str] = []
    if raw.source.min() < 0 or raw.target.min() < 0 or max(raw.source.max(), raw.target.max()) >= n:
        problems.append("edges refer to nodes that do not exist")
    idx = np.repeat(np.arange(m, dtype=np.int64), np.diff(raw.offsets))
    lines = shapely.linestrings(raw.coords, indices=idx)
    invalid = np.flatnonzero(~shapely.is_valid(lines))
    if len(invalid):
        reasons = shapely.is_valid_reason(lines[invalid[:MAX_LISTED]])
        problems.append(
            "invalid geometry: "
            + listing(
                [
                    f"{raw.origin_label}{raw.origin[e]} ({r})"
                    for e, r in zip(invalid, reasons, strict=False)
                ],
                len(invalid),
            )
        )
    length = geodesic_lengths(raw.coords, raw.offsets)
    bad_length = np.flatnonzero(~np.isfinite(length) | (length <= 0))
    if len(bad_length):
        problems.append(
            "zero or undefined length: "
            + listing([f"{raw.origin_label}{raw.origin[e]}" for e in bad_length], len(bad_length))
        )
    if problems:
        raise NetworkImportError(f"network: {name}: " + "; ".join(problems))

    components, share = _largest_component(raw)
    if share < min_largest_share:
        raise NetworkImportError(
            f"network: {name}: the largest connected part holds only {share:.1%} of the "
            f"{m} edges ({components} separate parts; at least {min_largest_share:.0%} "
            "required): is the extract clipped or broken?"
        )
    lines = shapely.set_srid(lines, 4326)
    points = shapely.set_srid(shapely.points(raw.node_lon, raw.node_lat), 4326)
    hw, hw_counts = np.unique(raw.highway, return_counts=True)
    stats = {
        "highways": {str(h): int(c) for h, c in zip(hw, hw_counts, strict=True)},
        "oneway": {
            "forward": int(np.count_nonzero(raw.oneway == 1)),
            "backward": int(np.count_nonzero(raw.oneway == -1)),
        },
        "skipped": {k: int(v) for k, v in sorted(raw.skipped.items())},
    }
    return PreparedNetwork(
        raw=raw,
        length_m=length,
        line_ewkb_hex=list(shapely.to_wkb(lines, hex=True, include_srid=True)),
        point_ewkb_hex=list(shapely.to_wkb(points, hex=True, include_srid=True)),
        components=components,
        largest_component_share=share,
        bbox=(
            float(raw.coords[:, 0].min()),
            float(raw.coords[:, 1].min()),
            float(raw.coords[:, 0].max()),
            float(raw.coords[:, 1].max()),
        ),
        stats=stats,
    )


def read_and_prepare(
    path: Path,
    *,
    min_largest_share: float = MIN_LARGEST_SHARE,
    progress: Progress | None = None,
) -> PreparedNetwork:
    """Read and validate a network file (no database involved)."""
    raw = read_network(path, progress)
    return prepare(raw, path.name, min_largest_share=min_largest_share, progress=progress)


def load(
    conn: Connection,
    prepared: PreparedNetwork,
    *,
    source: str,
    sha256: str,
    progress: Progress | None = None,
) -> tuple[int, int | None]:
    """Write a prepared network as a new version and make it live, in the caller's
    transaction (commit it to publish; roll it back and nothing happened). Returns the new
    and the previous live version ids."""
    sink = progress or NoProgress()
    raw = prepared.raw
    queries.lock_imports(conn)
    version_id = queries.insert_version(
        conn,
        source=source,
        source_format=raw.format,
        sha256=sha256,
        node_count=prepared.node_count,
        edge_count=prepared.edge_count,
        total_length_m=float(prepared.length_m.sum()),
        oneway_edges=int(np.count_nonzero(raw.oneway)),
        components=prepared.components,
        largest_component_share=prepared.largest_component_share,
        bbox=prepared.bbox,
        stats=prepared.stats,
    )
    sink.start("loading nodes", prepared.node_count)
    queries.copy_nodes(conn, version_id, prepared.point_ewkb_hex, raw.node_osm_id, sink)
    sink.start("loading edges", prepared.edge_count)
    queries.copy_edges(
        conn,
        version_id,
        source=raw.source,
        target=raw.target,
        length_m=prepared.length_m,
        highway=raw.highway,
        oneway=raw.oneway,
        osm_way_id=raw.osm_way_id,
        line_ewkb_hex=prepared.line_ewkb_hex,
        name=raw.name,
        progress=sink,
    )
    sink.start("checking and switching over", None)
    counts = queries.loaded_counts(conn, version_id)
    if counts != (prepared.node_count, prepared.edge_count):
        raise NetworkImportError(
            f"network: wrote {counts[0]} nodes and {counts[1]} edges but expected "
            f"{prepared.node_count} and {prepared.edge_count}; nothing was changed"
        )
    previous = queries.swap_live(conn, version_id)
    queries.analyze(conn)
    return version_id, previous


def _result(
    prepared: PreparedNetwork,
    version_id: int,
    previous: int | None,
    source: str,
    sha256: str,
    started: float,
) -> ImportResult:
    return ImportResult(
        version_id=version_id,
        previous_version_id=previous,
        unchanged=False,
        source=source,
        source_format=prepared.raw.format,
        sha256=sha256,
        node_count=prepared.node_count,
        edge_count=prepared.edge_count,
        components=prepared.components,
        largest_component_share=prepared.largest_component_share,
        seconds=time.perf_counter() - started,
        skipped=dict(prepared.raw.skipped),
    )


def _unchanged(live: queries.NetworkVersion, started: float) -> ImportResult:
    return ImportResult(
        version_id=live.id,
        previous_version_id=None,
        unchanged=True,
        source=live.source,
        source_format=live.source_format,
        sha256=live.sha256,
        node_count=live.node_count,
        edge_count=live.edge_count,
        components=live.components,
        largest_component_share=live.largest_component_share,
        seconds=time.perf_counter() - started,
    )


def import_file(
    engine: Engine,
    path: Path,
    *,
    source: str | None = None,
    force: bool = False,
    min_largest_share: float = MIN_LARGEST_SHARE,
    progress: Progress | None = None,
    on_loaded: Callable[[Connection, ImportResult], None] | None = None,
) -> ImportResult:
    """Import a network file and make it live, all or nothing (see the module docstring).

    A file identical (SHA-256) to the live network is not loaded again unless `force`.
    The file is read and validated before a transaction is opened. `on_loaded` runs in the
    import's transaction after the load (the CLI records its audit event there).
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise NetworkImportError(f"file: {path} does not exist or is not a file")
    sha256 = sha256_file(path)
    if not force:
        with engine.connect() as conn:
            live = queries.live_version(conn)
        if live is not None and live.sha256 == sha256:
            return _unchanged(live, started)
    prepared = read_and_prepare(path, min_largest_share=min_largest_share, progress=progress)
    label = source or path.name
    with engine.begin() as conn:
        version_id, previous = load(conn, prepared, source=label, sha256=sha256, progress=progress)
        result = _result(prepared, version_id, previous, label, sha256, started)
        if on_loaded is not None:
            on_loaded(conn, result)
    return result


def import_path(
    conn: Connection,
    path: Path,
    *,
    source: str | None = None,
    min_largest_share: float = MIN_LARGEST_SHARE,
    progress: Progress | None = None,
) -> ImportResult:
    """Like `import_file` but in the caller's connection and transaction (tests, scripts):
    nothing is committed here."""
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise NetworkImportError(f"file: {path} does not exist or is not a file")
    sha256 = sha256_file(path)
    prepared = read_and_prepare(path, min_largest_share=min_largest_share, progress=progress)
    label = source or path.name
    version_id, previous = load(conn, prepared, source=label, sha256=sha256, progress=progress)
    return _result(prepared, version_id, previous, label, sha256, started)
