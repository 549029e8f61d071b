#!/usr/bin/env python3
"""Gap pieces on the Wuhan demo (issue 14): how many gaps span several districts, how many
pieces they are cut into, and what the cut and the per-piece best sites cost.

Needs the dev database with the Wuhan demo (`scripts/demo.sh`, or `yizhan demo load`,
`yizhan network demo` and `yizhan districts demo`). For each mode at resolution 9 and a
15-minute target: one run (`CoverageEngine.run_now`), then `Run.gaps` (connected gaps),
`Run.gap_pieces` (the cut) and `Run.gap_sites` for the first N pieces — the first call
computes (one bounded search per candidate cell), the second reads the run's memo.

Times are wall-clock and CPU (process time): on a busy machine the CPU figure is the one to
compare.

Usage: DATABASE_URL=… .venv/bin/python scripts/bench_gap_pieces.py [--modes walk,ebike,car]
"""

from __future__ import annotations

import argparse
import statistics
import time

from app.config import Settings
from app.coverage import service
from app.db.engine import make_engine
from app.network.service import NetworkState
from app.network.travel import TravelSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", default="walk,ebike,car")
    ap.add_argument("--minutes", type=int, default=15)
    ap.add_argument("--resolution", type=int, default=9)
    ap.add_argument("--sites", type=int, default=service.GAP_SITES_DEFAULT)
    a = ap.parse_args()
    settings = Settings()
    engine = make_engine(settings)
    cov = service.CoverageEngine(NetworkState(TravelSettings()))
    try:
        for mode in a.modes.split(","):
            params = service.make_params(mode=mode, minutes=a.minutes, resolution=a.resolution)
            with engine.connect() as conn:
                inputs = cov.read_inputs(conn, params, time_zone=settings.time_zone)
            run = cov.run_now(inputs)
            total = float(run.weights.sum())
            gaps = run.gaps(None)
            multi = sum(len(g.districts) > 1 for g in gaps)
            t0, c0 = time.perf_counter(), time.process_time()
            pieces = run.gap_pieces(None)
            t_cut, c_cut = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            sites = run.gap_sites(pieces[: a.sites])
            t_sites, c_sites = time.perf_counter() - t0, time.process_time() - c0
            t0 = time.perf_counter()
            run.gap_sites(pieces[: a.sites])
            t_warm = time.perf_counter() - t0
            cands = sum(s["candidates"] for s in sites if s)
            areas = [p.area_km2 for p in pieces]
            print(
                f"{mode} {a.minutes} min r{a.resolution}: {len(gaps)} gaps, {multi} across "
                f"several districts; gap 1: {len(gaps[0].cells)} cells, "
                f"{gaps[0].area_km2:.0f} km², {gaps[0].demand / total:.1%} of demand, "
                f"{len(gaps[0].districts)} districts, {gaps[0].unreachable_cells} unreachable"
            )
            print(
                f"  cap {run.piece_cap_km2():.2f} km² → {len(pieces)} pieces "
                f"(median {statistics.median(areas):.2f} km², max {max(areas):.2f}, "
                f"{sum(len(p.cells) == 1 for p in pieces)} single cells); cut {t_cut:.2f} s "
                f"(CPU {c_cut:.2f} s)"
            )
            print(
                f"  best sites of the first {len(sites)} pieces: {t_sites:.2f} s "
                f"(CPU {c_sites:.2f} s, {cands} candidate cells), again from the memo "
                f"{t_warm * 1000:.1f} ms"
            )
            for p, s in list(zip(pieces, sites, strict=False))[:3]:
                if s:
                    print(
                        f"    piece {p.rank} (gap {p.gap}, {p.district}): "
                        f"{p.demand / total:.2%} of demand, {p.area_km2:.1f} km²; one station "
                        f"adds {s['gain'] / total:.2%}, covering {s['share_of_piece']:.0%} of it"
                    )
    finally:
        cov.shutdown()
        engine.dispose()


if __name__ == "__main__":
    main()
