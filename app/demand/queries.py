"""All SQL of demand layers. Parameters are always bound, never formatted in.

Every function runs on the caller's connection, inside the caller's transaction: a replace is
`DELETE` of the old layer (its weights go by `ON DELETE CASCADE`) and `INSERT` + `COPY` of the
new one, so until the caller commits, readers see the old layer whole, and if anything fails
the old layer stays. Concurrent replaces of the same name are serialised by an advisory lock.

Weights cross the boundary as numpy arrays in PostgreSQL's binary COPY format (fixed-width
rows: 2 million cells take well under a second each way).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, RowMapping

#: pg_advisory_xact_lock class key ("demd") serialising writes to one layer name.
LOCK_CLASS: Final = 0x64656D64

_PGCOPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_PGCOPY_TRAILER: Final = struct.pack(">h", -1)
# One (cell int8, weight float8) tuple of a binary COPY out: field count, then length + value.
_ROW_OUT: Final = np.dtype(
    [("nf", ">i2"), ("l1", ">i4"), ("cell", ">i8"), ("l2", ">i4"), ("weight", ">f8")]
)


@dataclass(frozen=True, eq=False)
class DemandLayerData:
    """A layer's weights, ready for a coverage analysis. `fingerprint` identifies this very
    import of the layer (part of the coverage cache key): a digest of the name, unit,
    resolution, the import instant and every (cell, weight), so it changes whenever the
    layer is replaced."""

    name: str
    unit: str
    resolution: int
    description: str | None
    cells: NDArray[np.int64]  # H3 indices as signed int64, sorted
    weights: NDArray[np.float64]
    fingerprint: str


@dataclass(frozen=True, slots=True)
class DemandLayerInfo:
    """A layer's metadata and totals (no weights)."""

    name: str
    description: str | None
    unit: str
    resolution: int
    source: str | None
    created_at: datetime
    cells: int
    total_weight: float

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "unit": self.unit,
            "resolution": self.resolution,
            "source": self.source,
            "created_at": self.created_at,
            "cells": self.cells,
            "total_weight": self.total_weight,
        }


_INFO = (
    "SELECT l.name, l.description, l.unit, l.resolution, l.source, l.created_at, "
    "coalesce(w.cells, 0) AS cells, coalesce(w.total, 0) AS total_weight "
    "FROM demand_layers l LEFT JOIN LATERAL ("
    "  SELECT count(*) AS cells, sum(weight) AS total FROM demand_weights WHERE layer = l.name"
    ") w ON true"
)


def _info(row: RowMapping) -> DemandLayerInfo:
    return DemandLayerInfo(
        name=row["name"],
        description=row["description"],
        unit=row["unit"],
        resolution=int(row["resolution"]),
        source=row["source"],
        created_at=row["created_at"],
        cells=int(row["cells"]),
        total_weight=float(row["total_weight"]),
    )


def _lock(conn: Connection, name: str) -> None:
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:k, hashtext(:name))"), {"k": LOCK_CLASS, "name": name}
    )


def replace_layer(
    conn: Connection,
    name: str,
    unit: str,
    resolution: int,
    description: str | None,
    source: str | None,
    cells: NDArray[np.int64],
    weights: NDArray[np.float64],
) -> bool:
    """Create or replace layer `name` with these weights, in the caller's transaction.
    True when the layer is new, False when an existing one was replaced."""
    cells = np.asarray(cells, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if cells.shape != weights.shape or cells.ndim != 1:
        raise ValueError("cells and weights must be 1-D arrays of the same length")
    _lock(conn, name)
    existed = (
        conn.execute(
            text("DELETE FROM demand_layers WHERE name = :name RETURNING name"), {"name": name}
        ).first()
        is not None
    )
    # clock_timestamp(), not now(): two replaces in one transaction still differ.
    conn.execute(
        text(
            "INSERT INTO demand_layers (name, description, unit, resolution, source, created_at) "
            "VALUES (:name, :description, :unit, :resolution, :source, clock_timestamp())"
        ),
        {
            "name": name,
            "description": description,
            "unit": unit,
            "resolution": resolution,
            "source": source,
        },
    )
    _copy_weights(conn, name, cells, weights)
    return not existed


def _copy_weights(
    conn: Connection, name: str, cells: NDArray[np.int64], weights: NDArray[np.float64]
) -> None:
    """COPY (layer, cell, weight) rows in binary format."""
    layer = name.encode()
    row = np.dtype(
        [
            ("nf", ">i2"),
            ("l0", ">i4"),
            ("layer", f"S{len(layer)}"),
            ("l1", ">i4"),
            ("cell", ">i8"),
            ("l2", ">i4"),
            ("weight", ">f8"),
        ]
    )
    rows = np.empty(len(cells), dtype=row)
    rows["nf"] = 3
    rows["l0"] = len(layer)
    rows["layer"] = layer
    rows["l1"] = 8
    rows["cell"] = cells
    rows["l2"] = 8
    rows["weight"] = weights
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy("COPY demand_weights (layer, cell, weight) FROM STDIN (FORMAT binary)") as cp,
    ):
        cp.write(_PGCOPY_HEADER)
        cp.write(rows.tobytes())
        cp.write(_PGCOPY_TRAILER)


def _read_weights(conn: Connection, name: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    raw = conn.connection.driver_connection
    assert raw is not None
    stmt = sql.SQL(
        "COPY (SELECT cell, weight FROM demand_weights WHERE layer = {} ORDER BY cell) "
        "TO STDOUT (FORMAT binary)"
    ).format(sql.Literal(name))
    with raw.cursor() as cur, cur.copy(stmt) as cp:
        data = b"".join(bytes(chunk) for chunk in cp)
    if not data.startswith(_PGCOPY_HEADER[:11]):
        raise RuntimeError("demand_weights: unexpected COPY header")
    (ext,) = struct.unpack(">i", data[15:19])
    body = data[19 + ext : len(data) - len(_PGCOPY_TRAILER)]
    if len(body) % _ROW_OUT.itemsize:
        raise RuntimeError("demand_weights: unexpected COPY row size")
    rows = np.frombuffer(body, dtype=_ROW_OUT)
    return rows["cell"].astype(np.int64), rows["weight"].astype(np.float64)


def fingerprint(
    name: str,
    unit: str,
    resolution: int,
    created_at: datetime,
    cells: NDArray[np.int64],
    weights: NDArray[np.float64],
) -> str:
    """Digest identifying one import of a layer (see `DemandLayerData`)."""
    h = hashlib.sha256()
    h.update(f"{name}\0{unit}\0{resolution}\0{created_at.isoformat()}\0".encode())
    h.update(np.ascontiguousarray(cells, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(weights, dtype="<f8").tobytes())
    return h.hexdigest()[:32]


def load_layer(conn: Connection, name: str) -> DemandLayerData | None:
    """The layer's cells (sorted) and weights, or None when there is no such layer."""
    row = (
        conn.execute(
            text(
                "SELECT name, unit, resolution, description, created_at "
                "FROM demand_layers WHERE name = :name"
            ),
            {"name": name},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    cells, weights = _read_weights(conn, name)
    resolution = int(row["resolution"])
    return DemandLayerData(
        name=row["name"],
        unit=row["unit"],
        resolution=resolution,
        description=row["description"],
        cells=cells,
        weights=weights,
        fingerprint=fingerprint(
            row["name"], row["unit"], resolution, row["created_at"], cells, weights
        ),
    )


def layer_info(conn: Connection, name: str) -> DemandLayerInfo | None:
    """One layer's metadata and totals, or None."""
    row = conn.execute(text(_INFO + " WHERE l.name = :name"), {"name": name}).mappings().first()
    return _info(row) if row is not None else None


def list_layers(conn: Connection) -> list[DemandLayerInfo]:
    """Every layer's metadata and totals, by name."""
    return [_info(r) for r in conn.execute(text(_INFO + " ORDER BY l.name")).mappings()]


def delete_layer(conn: Connection, name: str) -> bool:
    """Delete a layer and its weights; False when there was none."""
    _lock(conn, name)
    return (
        conn.execute(
            text("DELETE FROM demand_layers WHERE name = :name RETURNING name"), {"name": name}
        ).first()
        is not None
    )
