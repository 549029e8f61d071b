#!/usr/bin/env python3
"""Benchmark `GET /api/v1/stations/nearest` against its raw SQL, at realistic data sizes.

For every size N (default 200 000 and 1 000 000) the script

1. generates N stations spread over China (clusters around major cities plus a uniform
   background; deterministic seed) into its own database `<dbname>_bench`, one schema per N
   (`bench_n<N>`), bulk-loaded with COPY. Data is kept between runs when it already matches;
2. draws query points near stations (a random station jittered by 0–5 km);
3. measures, interleaved in blocks on the same query points, the two-stage nearest SQL through a
   plain psycopg connection and the HTTP endpoint served by a real uvicorn process, unfiltered
   and with amenity filters, plus a naive one-stage KNN query as a reference;
4. prints a Markdown report (latency percentiles, throughput, the issue's targets, the indexes
   each variant's plan uses) and, with `--write`, updates the "Nearest stations" section of
   that file.

Usage (from the project root; DATABASE_URL names the server, else `scripts/pg.sh url` is asked):

    .venv/bin/python scripts/bench_nearest.py [--sizes 200000,1000000] [--queries 2000]
        [--warmup 300] [--budget 180] [--seed 20261122] [--regenerate]
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import itertools
import json
import math
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from benchlib import (  # noqa: E402
    code_version,
    loadavg,
    server_url,
    uvicorn_server,
    write_section,
)
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.db import migrate  # noqa: E402
from app.stations.queries import COLUMNS, NearestFilter, nearest_params, nearest_sql  # noqa: E402
from app.stations.vocab import ACCESS_CODES, AMENITY_CODES, HOST_TYPE_CODES  # noqa: E402

#: Bump when the generator changes, so that kept data sets are regenerated.
GENERATOR_VERSION = 1
K = 5
RARE_AMENITY = "accessible_entrance"
RARE_SHARE = 0.005
COMMON_AMENITY = "drinking_water"
SECTION = "Nearest stations"
EARTH_KM_PER_DEG = 111.32
BLOCK = 100  # queries per variant before switching to the next one (interleaving)

#: Targets of the issue.
API_P50_EXTRA_MS = 1.5
API_P99_FACTOR = 3.0
FILTER_P99_FACTOR = 2.0

#: (name, lon, lat, weight ≈ urban population in millions). Approximate city centres.
CITIES: tuple[tuple[str, float, float, float], ...] = (
    ("Shanghai", 121.47, 31.23, 24.9),
    ("Beijing", 116.40, 39.90, 21.9),
    ("Guangzhou", 113.26, 23.13, 18.7),
    ("Shenzhen", 114.06, 22.54, 17.6),
    ("Chongqing", 106.55, 29.56, 16.0),
    ("Chengdu", 104.07, 30.67, 16.0),
    ("Tianjin", 117.20, 39.13, 13.9),
    ("Xi'an", 108.94, 34.34, 12.9),
    ("Suzhou", 120.62, 31.30, 12.7),
    ("Zhengzhou", 113.63, 34.75, 12.6),
    ("Wuhan", 114.31, 30.59, 12.3),
    ("Hangzhou", 120.16, 30.27, 12.2),
    ("Shijiazhuang", 114.51, 38.04, 11.2),
    ("Dongguan", 113.75, 23.02, 10.5),
    ("Qingdao", 120.38, 36.07, 10.1),
    ("Changsha", 112.94, 28.23, 10.0),
    ("Harbin", 126.53, 45.80, 10.0),
    ("Foshan", 113.12, 23.02, 9.6),
    ("Wenzhou", 120.70, 28.00, 9.6),
    ("Hefei", 117.23, 31.82, 9.4),
    ("Ningbo", 121.55, 29.87, 9.4),
    ("Nanjing", 118.80, 32.06, 9.3),
    ("Jinan", 117.00, 36.67, 9.2),
    ("Shenyang", 123.43, 41.80, 9.1),
    ("Changchun", 125.32, 43.82, 9.1),
    ("Xuzhou", 117.28, 34.20, 9.0),
    ("Nanning", 108.37, 22.82, 8.7),
    ("Kunming", 102.83, 24.88, 8.5),
    ("Fuzhou", 119.30, 26.08, 8.3),
    ("Dalian", 121.61, 38.91, 7.5),
    ("Wuxi", 120.31, 31.49, 7.5),
    ("Nanchang", 115.86, 28.68, 6.4),
    ("Guiyang", 106.63, 26.65, 6.0),
    ("Taiyuan", 112.55, 37.87, 5.3),
    ("Xiamen", 118.09, 24.48, 5.2),
    ("Lanzhou", 103.83, 36.06, 4.4),
    ("Urumqi", 87.62, 43.83, 4.1),
    ("Hohhot", 111.75, 40.84, 3.4),
    ("Haikou", 110.35, 20.02, 2.9),
    ("Yinchuan", 106.23, 38.49, 2.9),
    ("Xining", 101.78, 36.62, 2.5),
    ("Lhasa", 91.13, 29.65, 0.9),
)
#: Mainland China's rough extent (lon, lat) for the uniform background.
EXTENT = (73.0, 18.0, 135.0, 53.0)
BACKGROUND_SHARE = 0.12

#: Probability of each amenity except the rare one (whose share is exact).
AMENITY_P: dict[str, float] = {
    "drinking_water": 0.85,
    "hot_water": 0.60,
    "microwave": 0.35,
    "fridge": 0.20,
    "phone_charging": 0.70,
    "ebike_charging": 0.15,
    "toilet": 0.50,
    "air_conditioning": 0.60,
    "heating": 0.30,
    "seating": 0.80,
    "first_aid": 0.40,
    "wifi": 0.45,
    "rain_shelter": 0.30,
    "lockers": 0.10,
}
STATUS_WEIGHTS = (("open", 0.95), ("temporarily_closed", 0.03), ("closed", 0.02))
OPENING_HOURS = ("24/7", "Mo-Su 08:00-20:00", "Mo-Fr 09:00-18:00", "Mo-Sa 07:30-19:30", None)
COPY_COLUMNS = (
    "external_id",
    "name",
    "host_type",
    "access",
    "geom",
    "amenities",
    "opening_hours",
    "status",
    "capacity",
    "source_crs",
)

Runner = Callable[[float, float], Any]
Point = tuple[float, float]


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the report)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------------


def bench_url(main_url: str) -> str:
    """`<dbname>_bench` on the same server (created with PostGIS if missing)."""
    base = make_url(main_url)
    name = f"{base.database}_bench"
    with psycopg.connect(main_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public")
    return url


def schema_for(n: int) -> str:
    """The schema holding the data set of size n."""
    return f"bench_n{n}"


def with_search_path(url: str, schema: str) -> str:
    """URL whose sessions resolve unqualified names in `schema` first (for Alembic)."""
    u = make_url(url)
    return u.update_query_dict({"options": f"-csearch_path={schema},public"}).render_as_string(
        hide_password=False
    )


def raw_connect(url: str, schema: str, app_name: str) -> psycopg.Connection[Any]:
    """A plain psycopg connection with the engine's session settings and the schema's path."""
    return psycopg.connect(
        url,
        autocommit=True,
        application_name=app_name,
        options=(
            f"-c search_path={schema},public -c plan_cache_mode=force_custom_plan -c timezone=UTC"
        ),
    )


def migrations_digest() -> str:
    """Short hash of the migration files (data made under another schema is regenerated)."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "app" / "migrations" / "versions").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def fingerprint(n: int, seed: int) -> str:
    """What identifies one generated data set."""
    return (
        f"n={n};seed={seed};generator={GENERATOR_VERSION};rare={RARE_AMENITY}:{RARE_SHARE};"
        f"migrations={migrations_digest()}"
    )


def data_is_current(url: str, schema: str, n: int, seed: int) -> bool:
    """Whether the schema already holds the data set (count and marker match)."""
    with psycopg.connect(url, autocommit=True) as conn:
        meta = conn.execute("SELECT to_regclass(%s)", (f"{schema}.bench_meta",)).fetchone()
        if meta is None or meta[0] is None:
            return False
        mark = conn.execute(
            sql.SQL("SELECT value FROM {}.bench_meta WHERE key = 'fingerprint'").format(
                sql.Identifier(schema)
            )
        ).fetchone()
        if mark is None or mark[0] != fingerprint(n, seed):
            return False
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.stations").format(sql.Identifier(schema))
        ).fetchone()
        return count is not None and count[0] == n


# --------------------------------------------------------------------------------------------
# Data generation
# --------------------------------------------------------------------------------------------


def offset_point(lon: float, lat: float, east_km: float, north_km: float) -> Point:
    """Move a point by small east/north offsets (local flat approximation)."""
    lat2 = lat + north_km / EARTH_KM_PER_DEG
    lon2 = lon + east_km / (EARTH_KM_PER_DEG * math.cos(math.radians(lat)))
    return lon2, max(-89.9, min(89.9, lat2))


def random_location(rng: random.Random, cum_weights: list[float]) -> Point:
    """One station position: a city cluster (core or wider spread) or the background."""
    if rng.random() < BACKGROUND_SHARE:
        return rng.uniform(EXTENT[0], EXTENT[2]), rng.uniform(EXTENT[1], EXTENT[3])
    _, lon, lat, weight = rng.choices(CITIES, cum_weights=cum_weights)[0]
    sigma_km = 4.0 + 3.0 * math.sqrt(weight)  # ~7 km (Lhasa) … ~19 km (Shanghai)
    if rng.random() < 0.5:
        sigma_km *= 0.35  # dense city core
    return offset_point(lon, lat, rng.gauss(0.0, sigma_km), rng.gauss(0.0, sigma_km))


def generate_rows(n: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """N station rows (COPY_COLUMNS order); exactly RARE_SHARE of them have RARE_AMENITY."""
    rng = random.Random(seed)
    rare = set(rng.sample(range(n), round(n * RARE_SHARE)))
    cum_weights = list(itertools.accumulate(c[3] for c in CITIES))
    statuses = [s for s, _ in STATUS_WEIGHTS]
    status_w = [w for _, w in STATUS_WEIGHTS]
    others = [a for a in AMENITY_CODES if a != RARE_AMENITY]
    for i in range(n):
        lon, lat = random_location(rng, cum_weights)
        amenities = [a for a in others if rng.random() < AMENITY_P.get(a, 0.3)]
        if i in rare:
            amenities.append(RARE_AMENITY)
        yield (
            f"bench-{i:07d}",
            f"基准驿站 {i}",
            rng.choice(HOST_TYPE_CODES),
            rng.choice(ACCESS_CODES),
            f"SRID=4326;POINT({lon:.7f} {lat:.7f})",
            amenities,
            rng.choice(OPENING_HOURS),
            rng.choices(statuses, weights=status_w)[0],
            rng.randint(2, 30),
            "wgs84",
        )


def secondary_indexes(conn: psycopg.Connection[Any], schema: str) -> list[tuple[str, str, int]]:
    """(name, definition, pages) of the stations indexes not backing a constraint."""
    rows = conn.execute(
        """
        SELECT ic.relname, pg_get_indexdef(i.indexrelid), ic.relpages
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace ns ON ns.oid = t.relnamespace
        WHERE ns.nspname = %s AND t.relname = 'stations'
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        (schema,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def build_index(url: str, definition: str) -> float:
    """Run one CREATE INDEX on its own connection; returns its seconds."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(definition)  # trusted text from pg_get_indexdef
    return time.perf_counter() - t0


def generate(url: str, schema: str, n: int, seed: int) -> None:
    """(Re)create the schema, migrate it, bulk-load N stations with COPY, rebuild indexes."""
    ident = sql.Identifier(schema)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    log(f"{schema}: migrating")
    migrate.upgrade(with_search_path(url, schema))
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = secondary_indexes(conn, schema)
        for name, _, _ in indexes:  # loading without them and building once is much faster
            conn.execute(sql.SQL("DROP INDEX {}.{}").format(ident, sql.Identifier(name)))
        t0 = time.perf_counter()
        log(f"{schema}: generating and copying {n:,} stations")
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in COPY_COLUMNS)
        with conn.transaction(), conn.cursor() as cur:
            # generated data is not an edit anyone made: no audit revisions (and the trigger's
            # helper function would be looked up on this connection's search path)
            cur.execute(
                sql.SQL("ALTER TABLE {}.stations DISABLE TRIGGER stations_audit").format(ident)
            )
            stmt = sql.SQL("COPY {}.stations ({}) FROM STDIN").format(ident, cols)
            with cur.copy(stmt) as copy:
                for i, row in enumerate(generate_rows(n, seed), 1):
                    copy.write_row(row)
                    if i % 200_000 == 0:
                        log(f"{schema}: {i:,} rows")
            cur.execute(
                sql.SQL("ALTER TABLE {}.stations ENABLE TRIGGER stations_audit").format(ident)
            )
        log(f"{schema}: COPY done in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    workers = max(1, min(len(indexes), os.cpu_count() or 1))
    log(f"{schema}: building {len(indexes)} indexes ({workers} at a time)")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda d: build_index(url, d), [d for _, d, _ in indexes]))
    log(f"{schema}: indexes built in {time.perf_counter() - t0:.1f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}.stations").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {}.bench_meta (key text PRIMARY KEY, value text NOT NULL)"
            ).format(ident)
        )
        conn.execute(
            sql.SQL("INSERT INTO {}.bench_meta VALUES ('fingerprint', %s)").format(ident),
            (fingerprint(n, seed),),
        )


def ensure_data(url: str, n: int, seed: int, regenerate: bool) -> None:
    """Make schema bench_n<N> hold the data set, regenerating only when needed."""
    schema = schema_for(n)
    if not regenerate and data_is_current(url, schema, n, seed):
        log(f"{schema}: {n:,} stations already present, kept (use --regenerate to rebuild)")
        migrate.upgrade(with_search_path(url, schema))  # no-op unless migrations were added
        return
    t0 = time.perf_counter()
    generate(url, schema, n, seed)
    log(f"{schema}: data set ready in {time.perf_counter() - t0:.1f} s")


def refresh_hours(url: str, schema: str) -> None:
    """Compute the stations' open intervals for the current window (what the server and
    `yizhan hours refresh` do), so the open-now variants filter real data."""
    from sqlalchemy import create_engine

    from app.config import normalise_database_url
    from app.hours import store

    engine = create_engine(normalise_database_url(with_search_path(url, schema)))
    try:
        with engine.begin() as conn:
            if store.needs_refresh(conn, "Asia/Shanghai"):
                t0 = time.perf_counter()
                n = store.refresh(conn, "Asia/Shanghai")
                took = time.perf_counter() - t0
                log(f"{schema}: open intervals for {n:,} stations in {took:.1f} s")
    finally:
        engine.dispose()


def query_points(url: str, schema: str, n: int, count: int, seed: int) -> list[Point]:
    """Points near stations: a random station moved 0–5 km in a random direction."""
    rng = random.Random(seed)
    ids = [rng.randint(1, n) for _ in range(count)]
    with raw_connect(url, schema, "yizhan-bench-setup") as conn:
        rows = conn.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM stations WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    where = {r[0]: (r[1], r[2]) for r in rows}
    points = []
    for i in ids:
        lon, lat = where[i]
        dist, bearing = rng.uniform(0.0, 5.0), rng.uniform(0.0, 2 * math.pi)
        points.append(offset_point(lon, lat, dist * math.sin(bearing), dist * math.cos(bearing)))
    return points


# --------------------------------------------------------------------------------------------
# Variants and runners
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One measured kind of request."""

    key: str
    label: str
    path: str  # "SQL" or "HTTP"
    amenities: tuple[str, ...] = ()
    kind: str = "app"  # app: what the service runs; naive / fix / floor: reference lines
    open_now: bool = False


RARE_LABEL = f"{RARE_AMENITY} (0.5 %)"
COMMON_LABEL = f"{COMMON_AMENITY} (~{AMENITY_P[COMMON_AMENITY] * 100:.0f} %)"
FIX_NOTE = "q NOT MATERIALIZED"
VARIANTS: tuple[Variant, ...] = (
    Variant("sql", "unfiltered", "SQL"),
    Variant("api", "unfiltered", "HTTP"),
    Variant("sql_rare", RARE_LABEL, "SQL", (RARE_AMENITY,)),
    Variant("api_rare", RARE_LABEL, "HTTP", (RARE_AMENITY,)),
    Variant("sql_common", COMMON_LABEL, "SQL", (COMMON_AMENITY,)),
    Variant("api_common", COMMON_LABEL, "HTTP", (COMMON_AMENITY,)),
    Variant("sql_open", "open now", "SQL", open_now=True),
    Variant("api_open", "open now", "HTTP", open_now=True),
    Variant("sql_open_rare", f"open now + {RARE_LABEL}", "SQL", (RARE_AMENITY,), open_now=True),
    Variant("api_open_rare", f"open now + {RARE_LABEL}", "HTTP", (RARE_AMENITY,), open_now=True),
    Variant(
        "sql_open_common", f"open now + {COMMON_LABEL}", "SQL", (COMMON_AMENITY,), open_now=True
    ),
    Variant(
        "api_open_common", f"open now + {COMMON_LABEL}", "HTTP", (COMMON_AMENITY,), open_now=True
    ),
    Variant("sql_naive", "ref: naive 1-stage KNN, unfiltered", "SQL", kind="naive"),
    Variant("sql_fix", f"ref: unfiltered, {FIX_NOTE}", "SQL", kind="fix"),
    Variant("sql_fix_rare", f"ref: {RARE_LABEL}, {FIX_NOTE}", "SQL", (RARE_AMENITY,), "fix"),
    Variant("api_floor", "ref: GET /healthz (HTTP floor)", "HTTP", kind="floor"),
)

NAIVE_SQL = f"""
WITH q AS (SELECT CAST(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS geography) AS g)
SELECT {COLUMNS}, ST_Distance(geom::geography, q.g) AS distance_m
FROM stations, q
WHERE status = ANY(%(statuses)s)
ORDER BY geom::geography <-> q.g
LIMIT %(k)s
"""
#: The CTE of the query point, as `nearest_sql` writes it, and its inlinable form.
CTE_AS_WRITTEN = "WITH q AS ("
CTE_INLINED = "WITH q AS NOT MATERIALIZED ("


def to_pyformat(text: str) -> str:
    """Turn SQLAlchemy `:name` parameters into psycopg `%(name)s` ones (`::` casts kept)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", text.replace("%", "%%"))


def app_filter(
    v: Variant, lon: float = 0.0, lat: float = 0.0, now: dt.datetime | None = None
) -> NearestFilter:
    """The service's filter for a variant at a point (open-now variants: open at `now`)."""
    at = (now or dt.datetime.now(dt.UTC)) if v.open_now else None
    return NearestFilter(lon=lon, lat=lat, k=K, amenities=v.amenities, open_at=at)


def app_sql(amenities: tuple[str, ...], open_now: bool = False) -> str:
    """The exact SQL text of the service's nearest query (psycopg parameter style)."""
    at = dt.datetime.now(dt.UTC) if open_now else None
    return to_pyformat(
        nearest_sql(NearestFilter(lon=0.0, lat=0.0, k=K, amenities=amenities, open_at=at))
    )


def fix_applies() -> bool:
    """Whether the service's SQL still has the materialised point CTE (the proposed fix)."""
    return CTE_AS_WRITTEN in app_sql(())


def variant_sql(v: Variant) -> str:
    """The SQL text a raw variant runs (psycopg parameter style)."""
    if v.kind == "naive":
        return NAIVE_SQL
    if v.kind == "fix":
        return app_sql(v.amenities, v.open_now).replace(CTE_AS_WRITTEN, CTE_INLINED, 1)
    return app_sql(v.amenities, v.open_now)


def sql_runner(conn: psycopg.Connection[Any], v: Variant) -> Runner:
    """Run the variant's SQL for one point and fetch all rows; returns the station ids."""
    text = variant_sql(v)
    cur = conn.cursor()

    def run(lon: float, lat: float) -> list[int]:
        params = nearest_params(app_filter(v, lon, lat))
        cur.execute(text, params)
        return [r[0] for r in cur.fetchall()]

    return run


def http_runner(client: httpx.Client, v: Variant) -> Runner:
    """One GET of the endpoint (body fully read); returns the response."""

    def run(lon: float, lat: float) -> httpx.Response:
        if v.kind == "floor":
            resp = client.get("/healthz")
        else:
            params: dict[str, str | int | float] = {"lat": lat, "lon": lon, "k": K}
            if v.amenities:
                params["amenities"] = ",".join(v.amenities)
            if v.open_now:
                params["open_now"] = "true"
            resp = client.get("/api/v1/stations/nearest", params=params)
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:300]}")
        return resp

    return run


def ids_of(result: Any) -> list[int]:
    """Station ids of a runner's result (SQL: list of ids, HTTP: GeoJSON response)."""
    if isinstance(result, httpx.Response):
        return [f["id"] for f in result.json()["features"]]
    return list(result)


def check_same_answers(runners: dict[str, Runner], points: list[Point]) -> None:
    """The endpoint and the proposed fix must return the app SQL's stations, in order."""
    app_sql_keys = {
        (v.amenities, v.open_now): v.key for v in VARIANTS if v.kind == "app" and v.path == "SQL"
    }
    others = [v for v in VARIANTS if v.kind in {"app", "fix"} and v.key in runners]
    for lon, lat in points:
        want = {am: ids_of(runners[key](lon, lat)) for am, key in app_sql_keys.items()}
        for v in others:
            if ids_of(runners[v.key](lon, lat)) != want[(v.amenities, v.open_now)]:
                raise RuntimeError(f"{v.key} disagrees with the app SQL at ({lon}, {lat})")


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies (ms) of one variant and the wall time they took."""

    samples: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def pct(self, p: int) -> float:
        """The p-th percentile (inclusive method)."""
        return statistics.quantiles(self.samples, n=100, method="inclusive")[p - 1]

    @property
    def mean(self) -> float:
        """Mean latency."""
        return statistics.fmean(self.samples)

    @property
    def qps(self) -> float:
        """Sequential single-client throughput."""
        return len(self.samples) / self.wall_s


def run_round(runners: dict[str, Runner], chunk: list[Point], stats: dict[str, Stats]) -> None:
    """Run every variant over the same chunk of points, one variant after the other."""
    clock = time.perf_counter_ns
    for key, run in runners.items():
        st = stats[key]
        w0 = clock()
        for lon, lat in chunk:
            t0 = clock()
            run(lon, lat)
            st.samples.append((clock() - t0) / 1e6)
        st.wall_s += (clock() - w0) / 1e9


def warm_up(runners: dict[str, Runner], points: list[Point], budget_s: float) -> float:
    """Run all variants over the warm-up points (or until the budget is spent).

    Returns the estimated seconds one query point costs across all variants, from the second
    half of the warm-up (after per-connection first-call costs).
    """
    stats = {key: Stats() for key in runners}
    t0 = time.perf_counter()
    done = 0
    for start in range(0, len(points), 5):
        run_round(runners, points[start : start + 5], stats)
        done = min(start + 5, len(points))
        if done >= 10 and time.perf_counter() - t0 > budget_s:
            break
    half = done // 2
    per_point = sum(sum(st.samples[half:done]) for st in stats.values()) / 1e3
    log(f"  warm-up: {done} points × {len(runners)} variants in {time.perf_counter() - t0:.0f} s")
    return per_point / max(1, done - half)


def measure(runners: dict[str, Runner], points: list[Point]) -> dict[str, Stats]:
    """Time every variant on the same points, interleaved in blocks of BLOCK queries."""
    stats = {key: Stats() for key in runners}
    last = time.monotonic()
    gc.collect()
    gc.disable()
    try:
        for start in range(0, len(points), BLOCK):
            run_round(runners, points[start : start + BLOCK], stats)
            done = min(start + BLOCK, len(points))
            if time.monotonic() - last > 15 or done == len(points):
                log(f"  measured {done}/{len(points)} points × {len(runners)} variants")
                last = time.monotonic()
    finally:
        gc.enable()
    return stats


def plan_summary(conn: psycopg.Connection[Any], v: Variant, point: Point) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the variant at one point: scans, indexes, timings."""
    params = nearest_params(app_filter(v, point[0], point[1]))
    query = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + variant_sql(v)
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError("EXPLAIN returned nothing")
    doc = row[0][0]
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        rows = node.get("Actual Rows", "?")
        if "Index Name" in node:
            knn = ", KNN order" if "Order By" in node else ""
            scans.append(f"`{node['Index Name']}` ({kind}{knn}, {rows} rows)")
        elif kind in {"Seq Scan", "Bitmap Heap Scan"} and node.get("Relation Name") == "stations":
            scans.append(f"`stations` ({kind}, {rows} rows)")
        for child in node.get("Plans", []):
            walk(child)

    walk(doc["Plan"])
    top = doc["Plan"]
    return {
        "scans": scans,
        "exec_ms": doc["Execution Time"],
        "plan_ms": doc["Planning Time"],
        "hit": top.get("Shared Hit Blocks", 0),
        "read": top.get("Shared Read Blocks", 0),
    }


@dataclass
class SizeResult:
    """Everything measured for one N."""

    n: int
    stats: dict[str, Stats]
    plans: dict[str, dict[str, Any]]
    seconds: float
    load: str
    capped: bool
    revision: str


def bench_size(url: str, n: int, args: argparse.Namespace) -> SizeResult:
    """Prepare data for N, start the server and measure all variants."""
    t_start = time.perf_counter()
    ensure_data(url, n, args.seed, args.regenerate)
    schema = schema_for(n)
    with psycopg.connect(url, autocommit=True) as conn:  # the app's sessions find this N's data
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET search_path = {}, public").format(
                sql.Identifier(make_url(url).database or ""), sql.Identifier(schema)
            )
        )
    refresh_hours(url, schema)
    points = query_points(url, schema, n, args.queries, args.seed + n)
    warm = query_points(url, schema, n, args.warmup, args.seed + n + 1)
    variants = [v for v in VARIANTS if v.kind != "fix" or fix_applies()]
    load = loadavg()
    with (
        raw_connect(url, schema, "yizhan-bench-raw") as conn,
        uvicorn_server(url, log) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        runners: dict[str, Runner] = {}
        for v in variants:
            runners[v.key] = sql_runner(conn, v) if v.path == "SQL" else http_runner(client, v)
        check_same_answers(runners, warm[:3])
        log(f"N={n:,}: warm-up (up to {len(warm)} points, {args.budget * 0.15:.0f} s)")
        per_point = warm_up(runners, warm, args.budget * 0.15)
        count = min(len(points), max(40, int(args.budget / per_point)))
        log(
            f"N={n:,}: ~{per_point * 1e3:.0f} ms per point for all variants; "
            f"measuring {count} points per variant"
        )
        stats = measure(runners, points[:count])
        plans = {v.key: plan_summary(conn, v, points[0]) for v in variants if v.path == "SQL"}
        rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    revision = str(rev[0]) if rev else "?"
    elapsed = time.perf_counter() - t_start
    return SizeResult(n, stats, plans, elapsed, load, count < len(points), revision)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine(url: str) -> dict[str, str]:
    """CPU, RAM and server versions for the report."""
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
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    with psycopg.connect(url, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
        gis = conn.execute("SELECT postgis_lib_version()").fetchone()
        buffers = conn.execute("SHOW shared_buffers").fetchone()
    return {
        "cpu": cpu,
        "nproc": nproc or str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgres": str(pg[0]) if pg else "?",
        "postgis": str(gis[0]) if gis else "?",
        "shared_buffers": str(buffers[0]) if buffers else "?",
    }


def verdict(ok: bool) -> str:
    """PASS / FAIL marker."""
    return "PASS" if ok else "**FAIL**"


def findings(r: SizeResult) -> list[str]:
    """Observations derived from the plans and figures of one N (empty when nothing stands out)."""
    s = r.stats
    notes: list[str] = []
    seq = [
        v.label
        for v in VARIANTS
        if v.kind == "app"
        and any("`stations` (Seq Scan" in x for x in r.plans.get(v.key, {}).get("scans", []))
    ]
    if seq:
        fix = ""
        if "sql_fix" in s:
            fix = (
                f" With `{CTE_INLINED.strip(' (')}` the same SQL walks `ix_stations_geog` in KNN "
                f"order: unfiltered SQL p50 {s['sql'].pct(50):.1f} → {s['sql_fix'].pct(50):.2f} ms"
                f", p99 {s['sql'].pct(99):.1f} → {s['sql_fix'].pct(99):.2f} ms (same answers)."
            )
        notes.append(
            f"- The service's query reads the whole table (Seq Scan of `stations` in stage 1) for: "
            f"{', '.join(seq)}. The point CTE `q` is referenced by both stages, so PostgreSQL "
            "materialises it; `ORDER BY geom::geography <-> q.g` then compares against a column "
            "of a joined CTE scan, not a constant, and cannot be an index-ordered (KNN) scan: "
            "every station is read, its distance computed and a top-k sort applied." + fix
        )
        notes.append(
            "- So the filter target passes only because the unfiltered query is slow (the "
            "`not counted` row gives the ratio for the fixed query), and the API-vs-SQL targets "
            "of the unfiltered query compare two full scans, where the endpoint's overhead "
            "drowns in the scan's own variance."
        )
    if "api_floor" in s:
        extra = s["api_rare"].pct(50) - s["sql_rare"].pct(50)
        floor = s["api_floor"].pct(50)
        notes.append(
            f"- API − SQL at p50 with the {RARE_AMENITY} filter: {extra:.2f} ms, of which "
            f"{floor:.2f} ms is the HTTP floor (`GET /healthz`: httpx + uvicorn + FastAPI, no "
            f"database); {extra - floor:.2f} ms is the endpoint's own work around the query."
        )
    return ["", "Findings:", "", *notes] if notes else []


def size_markdown(r: SizeResult) -> tuple[list[str], list[bool]]:
    """The Markdown block of one N and the outcome of each target."""
    s = r.stats
    count = len(s["sql"].samples)
    capped = " (capped by `--budget`)" if r.capped else ""
    if count < 100:
        capped += "; with fewer than 100 samples p99 is close to the maximum"
    lines = [
        f"### N = {r.n:,} stations".replace(",", " "),
        "",
        f"{count} measured queries per variant{capped}, k = {K}; "
        f"schema revision {r.revision}; load average at start: {r.load}; "
        f"{r.seconds:.0f} s for this size (data set-up included).",
        "",
        "| Variant | Path | p50 ms | p99 ms | mean ms | queries/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for v in VARIANTS:
        if v.key not in s:
            continue
        st = s[v.key]
        lines.append(
            f"| {v.label} | {v.path} | {st.pct(50):.2f} | {st.pct(99):.2f} | "
            f"{st.mean:.2f} | {st.qps:,.0f} |"
        )
    checks: list[tuple[str, float, str, bool]] = []
    for suffix, name in (
        ("", "unfiltered"),
        ("_rare", RARE_AMENITY),
        ("_open", "open now"),
        ("_open_rare", f"open now + {RARE_AMENITY}"),
    ):
        sq, api = s["sql" + suffix], s["api" + suffix]
        d50 = api.pct(50) - sq.pct(50)
        checks.append(
            (
                f"API p50 − SQL p50 ({name})",
                d50,
                f"≤ {API_P50_EXTRA_MS} ms",
                d50 <= API_P50_EXTRA_MS,
            )
        )
        f99 = api.pct(99) / sq.pct(99)
        checks.append(
            (f"API p99 / SQL p99 ({name})", f99, f"≤ {API_P99_FACTOR}×", f99 <= API_P99_FACTOR)
        )
    for path in ("sql", "api"):
        label = "SQL" if path == "sql" else "API"
        for filtered, base, name in (
            ("_rare", "", f"{RARE_AMENITY} / {label} p99 unfiltered"),
            ("_open_rare", "_open", f"open now + {RARE_AMENITY} / {label} p99 open now"),
        ):
            f = s[path + filtered].pct(99) / s[path + base].pct(99)
            checks.append(
                (f"{label} p99 {name}", f, f"≤ {FILTER_P99_FACTOR}×", f <= FILTER_P99_FACTOR)
            )
    lines += ["", "| Target | Measured | Limit | Result |", "|---|---:|---|---|"]
    for name, value, limit, ok in checks:
        unit = " ms" if "−" in name else "×"
        lines.append(f"| {name} | {value:.2f}{unit} | {limit} | {verdict(ok)} |")
    if "sql_fix" in s and "sql_fix_rare" in s:
        f = s["sql_fix_rare"].pct(99) / s["sql_fix"].pct(99)
        lines.append(
            f"| ref, {FIX_NOTE}: SQL p99 {RARE_AMENITY} / SQL p99 unfiltered | {f:.2f}× | "
            f"≤ {FILTER_P99_FACTOR}× | ({verdict(f <= FILTER_P99_FACTOR)}, not counted) |"
        )
    lines += findings(r)
    lines += ["", "Plans (EXPLAIN (ANALYZE, BUFFERS) of the raw SQL at the first query point):", ""]
    for v in VARIANTS:
        p = r.plans.get(v.key)
        if p is None:
            continue
        lines.append(
            f"- {v.label}: {'; '.join(p['scans'])} — execution {p['exec_ms']:.2f} ms, "
            f"planning {p['plan_ms']:.2f} ms, shared buffers hit {p['hit']} / read {p['read']}"
        )
    lines.append("")
    return lines, [c[3] for c in checks]


def report(results: list[SizeResult], mach: dict[str, str], command: str) -> str:
    """The whole "Nearest stations" section."""
    today = dt.datetime.now().astimezone().date().isoformat()
    out = [
        f"## {SECTION}",
        "",
        f"Measured {today} with `{command}` on {code_version()}.",
        "",
        f"- Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['ram']} RAM, {mach['os']}; "
        f"PostgreSQL {mach['postgres']} (shared_buffers {mach['shared_buffers']}), "
        f"PostGIS {mach['postgis']}, Python {mach['python']}. Database server, uvicorn and "
        "the benchmark client share the machine.",
        "- Data: N stations per size (schema `bench_n<N>` in `<dbname>_bench`), "
        f"{100 - BACKGROUND_SHARE * 100:.0f} % Gaussian clusters around {len(CITIES)} major "
        f"cities weighted by population, {BACKGROUND_SHARE * 100:.0f} % uniform over "
        "73–135 °E, 18–53 °N; random amenity sets, "
        f"`{RARE_AMENITY}` on exactly {RARE_SHARE * 100:.1f} % of stations; 95 % open, "
        "3 % temporarily closed, 2 % closed. COPY, indexes built after loading, VACUUM ANALYZE.",
        "- Queries: a random station jittered by 0–5 km; the same points for every variant; a "
        "warm-up first; variants interleaved in blocks of "
        f"{BLOCK} queries so background noise hits all of them alike. The number of measured "
        "points is `--queries`, lowered when the warm-up predicts that the size would take "
        "longer than `--budget` seconds.",
        "- SQL: `nearest_sql()` text through a plain `psycopg.connect` (autocommit, default "
        "prepare threshold, `plan_cache_mode=force_custom_plan`), all rows fetched. "
        "HTTP: `uvicorn app.main:app --workers 1 --no-access-log`, one keep-alive "
        "`httpx.Client`, sequential; latency includes the client. Throughput = sequential "
        "single-client queries/s.",
        "- Reference lines (`ref:`): the naive one-stage `ORDER BY geom::geography <-> pt "
        f"LIMIT k`; the service's SQL with `{CTE_INLINED.strip(' (')}` (the point CTE "
        "inlined, so stage 1 can walk the GiST index in KNN order; only while the service's "
        "SQL still materialises it); `GET /healthz`, the HTTP + framework floor.",
        "- Targets: API p50 ≤ SQL p50 + 1.5 ms; API p99 ≤ 3 × SQL p99; a filter matching "
        "0.5 % of stations p99 ≤ 2 × unfiltered p99.",
        "",
    ]
    for r in results:
        lines, _ = size_markdown(r)
        out += lines
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="200000,1000000", help="comma list of station counts")
    p.add_argument("--queries", type=int, default=2000, help="measured queries per variant")
    p.add_argument("--warmup", type=int, default=300, help="warm-up points (at most)")
    p.add_argument(
        "--budget",
        type=float,
        default=180.0,
        help="seconds of measuring per size; fewer points are measured when it would be longer",
    )
    p.add_argument("--seed", type=int, default=20261122)
    p.add_argument("--regenerate", action="store_true", help="rebuild data even if present")
    p.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in str(args.sizes).replace("_", "").split(",") if x.strip()]
    if not args.sizes or min(args.sizes) < 1000:
        p.error("--sizes: give station counts of at least 1000")
    if args.queries < 100 or args.warmup < 25:
        p.error("--queries must be ≥ 100 and --warmup ≥ 25")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every target passes, 1 otherwise."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)  # so that `finally` stops uvicorn
    url = bench_url(server_url())
    mach = machine(url)
    log(f"machine: {json.dumps(mach, ensure_ascii=False)}")
    results = []
    for n in args.sizes:
        log(f"=== N = {n:,} ===")
        results.append(bench_size(url, n, args))
        log(f"N={n:,} done in {results[-1].seconds:.0f} s")
    command = ".venv/bin/python scripts/bench_nearest.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    section = report(results, mach, command.strip())
    print(section)
    if args.write:
        write_section(args.write, SECTION, section)
        log(f"wrote section '{SECTION}' of {args.write}")
    passed = all(all(size_markdown(r)[1]) for r in results)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
