"""SQL of the coverage domain: the stations an analysis uses, district outlines, run storage."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True, eq=False)
class StationRows:
    """Stations as arrays (WGS-84), in id order, with a fingerprint of the whole table."""

    ids: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    names: list[str]
    status: list[str]
    opening_hours: list[str | None]
    district_code: list[str | None]
    fingerprint: str
    #: The end of each station's temporary closure (None: none). `status` is already
    #: `open` for a closure that ended before the read; this decides at an `open_at`.
    closed_until: list[datetime | None] = field(default_factory=list)


#: A station's status with a temporary closure that has ended by now read as `open`.
_EFFECTIVE_STATUS = (
    "CASE WHEN status = 'temporarily_closed' AND closed_until <= now() THEN 'open' ELSE status END"
)


def stations(conn: Connection) -> StationRows:
    """Every station couriers may use (open or temporarily closed: not planned, closed or a
    duplicate), and a fingerprint of the table. A temporary closure that has ended by now
    reads as status `open` (the station reopened by itself).

    The fingerprint covers every row's id and version (bumped by every edit, hours included)
    and the hours window, so any change to stations changes the coverage cache key.
    """
    rows = conn.execute(
        text(
            "SELECT id, ST_X(geom), ST_Y(geom), name, "
            f"{_EFFECTIVE_STATUS}, opening_hours, district_code, closed_until "
            "FROM stations WHERE status IN ('open', 'temporarily_closed') ORDER BY id"
        )
    ).all()
    fp = stations_fingerprint(conn)
    return StationRows(
        ids=np.asarray([r[0] for r in rows], dtype=np.int64),
        lon=np.asarray([r[1] for r in rows], dtype=np.float64),
        lat=np.asarray([r[2] for r in rows], dtype=np.float64),
        names=[r[3] for r in rows],
        status=[r[4] for r in rows],
        opening_hours=[r[5] for r in rows],
        district_code=[r[6] for r in rows],
        fingerprint=str(fp),
        closed_until=[r[7] for r in rows],
    )


def stations_fingerprint(conn: Connection) -> str:
    """A digest of every station row's id and version, and of which temporary closures have
    ended by now (a station reopening by itself changes the key without a new version; one
    aggregate, no rows fetched)."""
    return str(
        conn.execute(
            text(
                "SELECT md5(count(*)::text || ':' || coalesce(string_agg(id::text || '.' || "
                "version::text || CASE WHEN status = 'temporarily_closed' "
                "AND closed_until <= now() THEN 'r' ELSE '' END, ',' ORDER BY id), '')) "
                "FROM stations"
            )
        ).scalar_one()
    )


def _districts_fp(rows: Sequence[Any]) -> str:
    return "|".join(f"{r[0]}@{r[1].isoformat()}" for r in rows)


def districts_fingerprint(conn: Connection) -> str:
    """The district outlines' fingerprint (codes and update times; no geometry read)."""
    rows = conn.execute(text("SELECT code, updated_at FROM districts ORDER BY code")).all()
    return _districts_fp(rows)


@dataclass(frozen=True, eq=False)
class DistrictShapes:
    codes: list[str]
    names: list[str]
    names_en: list[str | None]
    geoms: list[Any]  # shapely (Multi)Polygons, WGS-84
    fingerprint: str


def districts(conn: Connection) -> DistrictShapes:
    rows = conn.execute(
        text(
            "SELECT code, name, name_en, ST_AsBinary(geom), updated_at FROM districts ORDER BY code"
        )
    ).all()
    fp = _districts_fp([(r[0], r[4]) for r in rows])
    return DistrictShapes(
        codes=[r[0] for r in rows],
        names=[r[1] for r in rows],
        names_en=[r[2] for r in rows],
        geoms=[shapely.from_wkb(bytes(r[3])) for r in rows],
        fingerprint=fp,
    )


def find_run(conn: Connection, key: str) -> int | None:
    return conn.execute(
        text("SELECT id FROM coverage_runs WHERE key = :k AND status = 'done'"), {"k": key}
    ).scalar_one_or_none()


def run_exists(conn: Connection, run_id: int) -> bool:
    return bool(
        conn.execute(text("SELECT 1 FROM coverage_runs WHERE id = :i"), {"i": run_id}).first()
    )


def cell_rows(
    cells: NDArray[np.int64],
    polygons: Sequence[Any] | NDArray[np.object_],
    minutes: NDArray[np.float64],
    multiplicity: NDArray[np.int64],
    weights: NDArray[np.float64],
    district_codes: Sequence[str | None],
) -> str:
    """The `coverage_cells` COPY lines of a run without their leading run id: one
    `\t<cell>\t<geom>\t<minutes>\t<multiplicity>\t<weight>\t<district>\n` per cell."""
    wkb = shapely.to_wkb(np.asarray(polygons, dtype=object), hex=True, include_srid=False)
    buf = io.StringIO()
    for i in range(len(cells)):
        m = minutes[i]
        buf.write(
            f"\t{int(cells[i])}\tSRID=4326;{wkb[i]}\t"
            f"{'' if not np.isfinite(m) else repr(float(m))}\t{int(multiplicity[i])}\t"
            f"{float(weights[i])!r}\t{district_codes[i] or ''}\n"
        )
    return buf.getvalue()


def store_run(
    conn: Connection,
    *,
    key: str,
    params: dict[str, Any],
    network_version: int,
    summary: dict[str, Any],
    seconds: float,
    cells: NDArray[np.int64],
    polygons: Sequence[Any] | NDArray[np.object_],
    minutes: NDArray[np.float64],
    multiplicity: NDArray[np.int64],
    weights: NDArray[np.float64],
    district_codes: Sequence[str | None],
    keep_runs: int = 20,
    rows: str | None = None,
) -> int:
    """Insert a finished run and its cells (COPY); keep only the newest `keep_runs` runs.
    `rows`: the cells' COPY lines as `cell_rows` writes them, when made elsewhere already
    (the coverage compute process does, so the server does not spend its time on them)."""
    import json

    run_id = conn.execute(
        text(
            "INSERT INTO coverage_runs (key, params, network_version, status, summary, seconds, "
            "finished_at) VALUES (:k, CAST(:p AS jsonb), :v, 'done', CAST(:s AS jsonb), :sec, "
            "now()) ON CONFLICT (key) DO NOTHING RETURNING id"
        ),
        {
            "k": key,
            "p": json.dumps(params),
            "v": network_version,
            "s": json.dumps(summary),
            "sec": seconds,
        },
    ).scalar_one_or_none()
    if run_id is None:  # stored already (by another request or process)
        existing = find_run(conn, key)
        assert existing is not None
        return existing
    if rows is None:
        rows = cell_rows(cells, polygons, minutes, multiplicity, weights, district_codes)
    rid = str(run_id)
    body = rid + rows[:-1].replace("\n", "\n" + rid) + "\n" if rows else ""
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY coverage_cells (run_id, cell, geom, minutes, multiplicity, weight, "
            "district_code) FROM STDIN WITH (FORMAT text, NULL '')"
        ) as cp,
    ):
        cp.write(body)
    conn.execute(
        text(
            "DELETE FROM coverage_runs WHERE id IN (SELECT id FROM coverage_runs "
            "ORDER BY created_at DESC, id DESC OFFSET :keep)"
        ),
        {"keep": keep_runs},
    )
    return int(run_id)
