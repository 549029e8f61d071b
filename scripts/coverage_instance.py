"""The real Wuhan site-suggestion instance for scripts/bench_suggest.py (`--instance wuhan`).

Needs the dev database with the Wuhan demo (`scripts/demo.sh`, or `yizhan demo load` and
`yizhan network demo`). Cells: every H3 resolution-10 demand cell of the demo network (~60,000),
weighted by street metres; already covered: cells within 15 minutes' walk of the open demo
stations; candidates: 1,000 cell street points drawn (seeded) among those that can reach
uncovered demand, each covering the cells within 15 minutes' walk of it — exactly what
`POST /api/v1/coverage/suggestions` builds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from app.config import Settings
from app.coverage import service
from app.coverage.analysis import Points, point_reach
from app.db.engine import make_engine
from app.network.service import NetworkState
from app.network.travel import TravelSettings

N_CANDIDATES = 1000
SEED = 20261122


@dataclass
class WuhanInstance:
    cover: sparse.csr_matrix
    weights: np.ndarray
    covered: np.ndarray
    description: list[str]


def wuhan_instance(resolution: int = 10, minutes: int = 15) -> WuhanInstance:
    t0 = time.perf_counter()
    settings = Settings()
    engine = make_engine(settings)
    cov = service.CoverageEngine(NetworkState(TravelSettings()))
    try:
        params = service.make_params(mode="walk", minutes=minutes, resolution=resolution)
        with engine.connect() as conn:
            inputs = cov.read_inputs(conn, params, time_zone=settings.time_zone)
        run = cov.run_now(inputs)
    finally:
        cov.shutdown()
        engine.dispose()
    old = service.MAX_CELL_CANDIDATES
    service.MAX_CELL_CANDIDATES = 10**9  # no thinning: sample instead
    try:
        pool = service.cell_candidates(run, np.ones(run.grid.n_cells, dtype=bool))
    finally:
        service.MAX_CELL_CANDIDATES = old
    rng = np.random.default_rng(SEED)
    pick = np.sort(rng.choice(pool, size=min(N_CANDIDATES, len(pool)), replace=False))
    s = run.cell_snaps
    cand = Points(s.edge[pick], s.fraction[pick], s.off_m[pick])
    cover = point_reach(run.graph, cand, s, minutes * 60.0).matrix()
    covered = run.model.covered()
    per = np.diff(cover.indptr)
    desc = [
        f"- Instance: Wuhan demo, H3 resolution {resolution}, walking {minutes} min: "
        f"{run.grid.n_cells:,} cells weighted by street metres, "
        f"{covered.sum():,} already covered by {len(run.station_ids)} open stations "
        f"({run.weights[covered].sum() / run.weights.sum():.1%} of demand); "
        f"{len(pick):,} candidates drawn from {len(pool):,} cell street points that reach "
        f"uncovered demand, covering a median {int(np.median(per))} cells each "
        f"({int(per.min())}–{int(per.max())}); built in {time.perf_counter() - t0:.1f} s "
        "(`scripts/coverage_instance.py`).",
    ]
    return WuhanInstance(cover, run.weights, covered, desc)
