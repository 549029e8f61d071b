#!/usr/bin/env python3
"""What the audit trigger costs: station imports and single-station edits with the
`stations_audit` trigger on, against the same statements with it disabled, in one run.

    .venv/bin/python scripts/bench_audit.py [--stations 20000] [--edits 2000] [--rounds 3]
        [--write docs/benchmarks.md]

Uses its own database `<dbname>_auditbench` on the DATABASE_URL server (or the private
cluster), dropped and migrated afresh. Each round runs both variants back to back, in
alternating order, on an emptied table, so background load hits both alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import code_version, loadavg, server_url, write_section

from app.accounts.policy import SYSTEM
from app.audit import service as audit
from app.db import migrate
from app.stations import queries
from app.stations.vocab import AMENITY_CODES

TITLE = "Audit history (trigger cost)"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fresh(main_url: str) -> str:
    base = make_url(main_url)
    name = f"{base.database}_auditbench"
    with psycopg.connect(main_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = base.set(database=name, drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def rows(n: int, rng: random.Random, tag: str) -> list[tuple[dict[str, Any], float, float]]:
    out = []
    for i in range(n):
        props = {
            "external_id": f"AB-{i:07d}",
            "name": f"驿站 {tag} {i}",
            "address": f"武汉市某区某路{i}号",
            "district_code": rng.choice(["420102", "420103", "420104", "420106", "420111"]),
            "host_type": "community",
            "operator": None,
            "access": "outdoor_workers",
            "amenities": sorted(rng.sample(AMENITY_CODES, 4)),
            "opening_hours": "Mo-Su 08:00-20:00",
            "status": "open",
            "phone": f"027-{rng.randrange(10**7, 10**8)}",
            "capacity": rng.randrange(1, 40),
            "notes": None,
            "source_crs": "wgs84",
            "open_intervals": None,
        }
        out.append((props, 114.0 + rng.random() * 0.5, 30.4 + rng.random() * 0.4))
    return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=20_000)
    ap.add_argument("--edits", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args()
    url = fresh(server_url())
    log("migrating")
    migrate.upgrade(url)
    engine = create_engine(url)
    rng = random.Random(20261201)
    first = rows(args.stations, rng, "v1")
    second = rows(args.stations, rng, "v2")  # the same external ids, every row changed
    results: dict[str, dict[str, list[float]]] = {
        v: {"insert": [], "update": [], "edit": []} for v in ("trigger", "no trigger")
    }
    load_start = loadavg()
    for r in range(args.rounds):
        order = ["trigger", "no trigger"] if r % 2 == 0 else ["no trigger", "trigger"]
        for variant in order:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE stations, station_revisions RESTART IDENTITY CASCADE"))
                conn.execute(
                    text(
                        "ALTER TABLE stations "
                        + ("ENABLE" if variant == "trigger" else "DISABLE")
                        + " TRIGGER stations_audit"
                    )
                )
            for phase, data in (("insert", first), ("update", second)):
                with engine.begin() as conn:
                    audit.attribute(conn, SYSTEM, "import", action="import")
                    results[variant][phase].append(
                        timed(lambda c=conn, d=data: queries.upsert_many(c, d))
                    )
            ids = [rng.randrange(1, args.stations + 1) for _ in range(args.edits)]
            lat = []
            for i, sid in enumerate(ids):
                with engine.begin() as conn:
                    audit.attribute(conn, SYSTEM, "api")
                    t = time.perf_counter()
                    queries.update(conn, sid, {"phone": f"027-{i:08d}"}, None, None)
                    lat.append(time.perf_counter() - t)
            results[variant]["edit"].append(statistics.median(lat))
            with engine.connect() as conn:
                revs = conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one()
            log(f"round {r + 1} {variant}: {revs} revisions")
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE stations ENABLE TRIGGER stations_audit"))
    engine.dispose()

    def best(v: str, phase: str) -> float:
        return min(results[v][phase])

    n = args.stations
    lines = [
        f"## {TITLE}",
        "",
        f"Measured {date.today().isoformat()} with `.venv/bin/python scripts/bench_audit.py "
        f"--stations {n} --edits {args.edits} --rounds {args.rounds} --write docs/benchmarks.md` "
        f"on {code_version()}; load average at start {load_start}. Best of {args.rounds} rounds "
        "per variant (alternating order), PostgreSQL on the same 2-core machine.",
        "",
        "The import is `app/stations/queries.upsert_many` (one `INSERT … ON CONFLICT` "
        f"executemany) of {n:,} stations into an empty table, then of the same {n:,} "
        "external ids with every row changed; an edit is one `UPDATE` of one station's phone "
        'in its own transaction (median of the edits). "no trigger" is the same statement '
        "with `ALTER TABLE stations DISABLE TRIGGER stations_audit`.",
        "",
        "| what | with the audit trigger | without | ratio |",
        "|---|---:|---:|---:|",
    ]
    for phase, label in (
        ("insert", f"import {n:,} new stations, s"),
        ("update", f"re-import {n:,} changed stations, s"),
    ):
        a, b = best("trigger", phase), best("no trigger", phase)
        lines.append(f"| {label} | {a:.2f} | {b:.2f} | {a / b:.2f}× |")
    a, b = best("trigger", "edit") * 1000, best("no trigger", "edit") * 1000
    lines.append(f"| one edit (UPDATE only), ms | {a:.3f} | {b:.3f} | {a / b:.2f}× |")
    lines.append("")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, TITLE, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
