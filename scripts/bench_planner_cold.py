#!/usr/bin/env python3
"""Benchmark cold starts of the planner: the first `/planner` page after the server starts,
and repeated site suggestions.

On a database of its own (`<db>_coldbench`, created, migrated and loaded with the Wuhan demo —
stations, OSM network, district outlines — when missing), for each variant, `--rounds` times:
start a real uvicorn (one worker, the default process compute worker) and measure

* **ready**: from starting the process to `/readyz` answering 200 (the warm-up must not delay
  it);
* **first page**: `GET /planner` (walk, 15 min: the default view), sent at once after ready,
  and (other servers) `--settle` seconds after it (a planner rarely arrives in the very second
  the server starts; the warm-up has then finished);
* **second page**: the same page again;
* **suggestions**: `POST /api/v1/coverage/suggestions` with k=5, then k=10, then k=5 for
  一个区 (`--district`): the reach step is computed once per run and candidate set when cached.

Variants: `no-warm-up` (`YIZHAN_COVERAGE_WARM_UP=false`: what every start was before the
warm-up) and `warm-up` (the default). What suggestions cost without the reach cache is the
first call's reach step (`timing_s.reach`), paid by every call before.

Usage (from the project root; DATABASE_URL names the server, else `scripts/pg.sh url`):

    .venv/bin/python scripts/bench_planner_cold.py [--rounds 3] [--settle 60]
        [--district 420106]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from benchlib import (
    ROOT,
    bench_database,
    code_version,
    loadavg,
    server_url,
    uvicorn_server,
)


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _yizhan(url: str, *args: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([str(ROOT / ".venv" / "bin" / "yizhan"), *args], env=env, check=True)


def prepare(url: str) -> None:
    """Migrate and load the Wuhan demo where missing (stations, network, districts)."""
    import psycopg

    _yizhan(url, "db", "upgrade")
    with psycopg.connect(url) as c:
        stations = c.execute("SELECT count(*) FROM stations").fetchone()[0]
        live = c.execute("SELECT count(*) FROM network_versions WHERE is_live").fetchone()[0]
        districts = c.execute("SELECT count(*) FROM districts").fetchone()[0]
    if not stations:
        _yizhan(url, "demo", "load")
    if not live:
        _yizhan(url, "network", "demo")
    if not districts:
        _yizhan(url, "districts", "demo")


def _timed(client: httpx.Client, method: str, path: str, **kw: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    resp = client.request(method, path, **kw)
    dt = time.perf_counter() - t0
    if resp.status_code != 200:
        raise RuntimeError(f"{method} {path} → HTTP {resp.status_code}: {resp.text[:300]}")
    return dt, resp


def one_round(url: str, env: dict[str, str], settle: float, district: str) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    with uvicorn_server(url, _log, env) as base:
        out["ready"] = time.perf_counter() - t0
        with httpx.Client(base_url=base, timeout=300) as c:
            time.sleep(settle)
            out["first page"], _ = _timed(c, "GET", "/planner")
            out["second page"], _ = _timed(c, "GET", "/planner")
            body = {"mode": "walk", "minutes": 15}
            path = "/api/v1/coverage/suggestions"
            for label, extra in (
                ("suggest k=5", {"k": 5}),
                ("suggest k=10", {"k": 10}),
                (f"suggest k=5 {district}", {"k": 5, "district": district}),
            ):
                out[label], resp = _timed(c, "POST", path, json={**body, **extra})
                out[label + " (reach s)"] = resp.json()["timing_s"]["reach"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=60.0, help="idle seconds after ready")
    ap.add_argument("--district", default="420106")
    a = ap.parse_args()
    url = bench_database(server_url(), "coldbench")
    prepare(url)
    off, on = {"YIZHAN_COVERAGE_WARM_UP": "false"}, {"YIZHAN_COVERAGE_WARM_UP": "true"}
    variants = [("no warm-up", off, 0.0), ("warm-up", on, 0.0), ("warm-up", on, a.settle)]
    print(f"{code_version()}; load average {loadavg()} at start; {a.rounds} rounds, median")
    rows: list[tuple[str, float, dict[str, float]]] = []
    for name, env, settle in variants:
        got = [one_round(url, env, settle, a.district) for _ in range(a.rounds)]
        med = {k: statistics.median(r[k] for r in got) for k in got[0]}
        rows.append((name, settle, med))
    keys = list(rows[0][2])
    print("| variant | settle s | " + " | ".join(keys) + " |")
    print("|---|---:|" + "---:|" * len(keys))
    for name, settle, med in rows:
        print(f"| {name} | {settle:g} | " + " | ".join(f"{med[k]:.2f}" for k in keys) + " |")
    print(f"load average {loadavg()} at the end")


if __name__ == "__main__":
    main()
