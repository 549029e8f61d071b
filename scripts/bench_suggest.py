#!/usr/bin/env python3
"""Benchmark site suggestion: the lazy greedy against the exact MILP (HiGHS) at city scale.

One process, one instance (1,000 candidate sites × 50,000 demand cells by default), for each K
in `--k`:

1. **Greedy** — `app.coverage.solver.greedy_max_cover` (lazy gain updates), `--repeat` runs,
   median wall time; and, as a reference, a plain greedy written here that recomputes every
   gain every round with one sparse mat-vec (same tie-break), which must pick the same sites.
2. **Exact** — `exact_max_cover` (reduction, then `scipy.optimize.milp` / HiGHS with
   `mip_rel_gap=0`, i.e. a proven optimum), once, with `--time-limit` seconds; a run stopped by
   the limit is recorded as such, with its incumbent and HiGHS's bound.
3. For one K (`--unreduced-k`), the exact model **without** the reduction, to show what the
   reduction buys.

Both answers are re-evaluated independently with `coverage_gain`. Targets of the issue:
greedy ≥ 0.97 × the exact optimum and ≥ 20× faster than the exact solver, for every K.

Instances (`--instance`):

* `synthetic` (default): a spatially realistic plane generated here from `--seed` — hexagonal
  cells, a river with a few bridges, lakes, clustered lognormal demand, 300 existing stations
  covering ~30 % of the cells (mostly the dense core), 1,000 candidates biased to the uncovered
  area, each covering the cells within 2–3.5 km of "network" distance (per-site anisotropy,
  detours over bridges, a smooth circuity field). See `synthetic_instance`.
* `wuhan`: real Wuhan cells and candidates from `scripts/coverage_instance.py` `wuhan_instance()`
  (to be provided by the coverage analysis work). It must return an object with attributes
  `cover` (candidates × cells, 0/1 scipy sparse), `weights` (per cell), `covered` (bool mask)
  and optionally `description` (a string or a list of Markdown bullet lines), or the tuple
  `(cover, weights, covered)`. Until it exists the script says so and exits with status 2.

Usage (from the project root):

    .venv/bin/python scripts/bench_suggest.py [--instance synthetic|wuhan] [--k 5,10,20,50]
        [--time-limit 600] [--repeat 5] [--unreduced-k 10] [--unreduced-time-limit 300]
        [--seed 20261123] [--write docs/benchmarks.md]

Needs no database. About 4 minutes on 2 cores with the defaults (the exact solves dominate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from benchlib import code_version, loadavg, write_section  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from scipy import sparse  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from app.coverage.solver import (  # noqa: E402
    Selection,
    coverage_gain,
    exact_max_cover,
    greedy_max_cover,
    reduce_instance,
)

SECTION = "Site suggestion"
DEFAULT_K = (5, 10, 20, 50)

#: Targets of the issue.
RATIO_TARGET = 0.97  # greedy ≥ 0.97 × exact optimum
SPEED_TARGET = 20.0  # greedy ≥ 20× faster than the exact solver

#: Relative tolerance of the agreement checks.
REL = 1e-9

# Synthetic instance ------------------------------------------------------------------------
GRID_NX, GRID_NY = 200, 250  # 50,000 cells
SPACING_KM = 0.15  # hexagon centre spacing
N_STATIONS = 300
STATION_RADIUS_KM = 2.5
STATION_CLUSTERING = 3.0  # stations placed ∝ density ** this (the core first)
N_CANDIDATES = 1000
CANDIDATE_RADIUS_KM = (2.0, 3.5)
UNCOVERED_BIAS = 4.0  # a candidate site is this much likelier outside the covered area
RIVER_HALF_WIDTH_KM = 0.55
BRIDGES = (0.15, 0.32, 0.45, 0.55, 0.68, 0.85)  # along x, fractions of the width
N_LAKES = 5
MEAN_WEIGHT = 20.0  # demand per cell on average (workers)
CIRCUITY = (1.2, 1.5)  # network distance / straight (or via-bridge) distance, per cell

Arr = NDArray[np.float64]
T = TypeVar("T")


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the report)."""
    print(f"[suggestbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Instances
# --------------------------------------------------------------------------------------------


@dataclass
class Instance:
    """A site-suggestion instance and how it was made."""

    name: str
    cover: sparse.csr_matrix
    weights: Arr
    covered: NDArray[np.bool_]
    description: list[str]
    build_s: float

    @property
    def n_candidates(self) -> int:
        return int(self.cover.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.cover.shape[1])


def synthetic_instance(seed: int) -> Instance:
    """A 30 × 32.5 km city of 50,000 hexagonal cells (see the module docstring)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    dy = SPACING_KM * math.sqrt(3) / 2
    row, col = np.meshgrid(np.arange(GRID_NY), np.arange(GRID_NX), indexing="ij")
    x = ((col + 0.5 * (row % 2)) * SPACING_KM).ravel()
    y = (row * dy).ravel()
    width, height = GRID_NX * SPACING_KM, GRID_NY * dy
    n = x.shape[0]
    cell_km2 = SPACING_KM**2 * math.sqrt(3) / 2

    # water: a meandering river from south-west to north-east, a few lakes
    def river_y(xx: Arr) -> Arr:
        return 0.45 * height + 0.35 * (xx - width / 2) + 1.5 * np.sin(xx / 3.2)

    offset = y - river_y(x)
    river = np.abs(offset) < RIVER_HALF_WIDTH_KM
    north = offset > 0
    lakes = np.zeros(n, dtype=bool)
    for _ in range(N_LAKES):
        cx, cy = rng.uniform(3, width - 3), rng.uniform(3, height - 3)
        lakes |= np.hypot(x - cx, y - cy) < rng.uniform(0.6, 1.6)
    water = river | lakes
    bx = np.asarray(BRIDGES) * width
    bridges = np.c_[bx, river_y(bx)]

    # demand: a dense core, sub-centres, a thin background; lognormal per cell; none on water
    density = np.exp(-((x - width / 2) ** 2 + (y - height / 2) ** 2) / (2 * 4.0**2))
    for _ in range(7):
        cx, cy = rng.uniform(2, width - 2), rng.uniform(2, height - 2)
        sigma, peak = rng.uniform(1.0, 2.5), rng.uniform(0.25, 0.7)
        density += peak * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    density += 0.04
    weights = density * rng.lognormal(0.0, 0.9, n)
    weights[water] = 0.0
    weights *= MEAN_WEIGHT * n / weights.sum()

    # circuity: a smooth random field (a sum of plane waves) between CIRCUITY[0] and [1]
    field_ = np.zeros(n)
    for _ in range(10):
        wave = rng.uniform(0.2, 1.2)
        theta, phase = rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
        field_ += np.sin(wave * (x * np.cos(theta) + y * np.sin(theta)) + phase)
    field_ /= np.abs(field_).max()
    lo, hi = CIRCUITY
    circuity = (lo + hi) / 2 + (hi - lo) / 2 * field_

    tree = cKDTree(np.c_[x, y])

    def reach(site: int, radius: float, theta: float, stretch: float) -> NDArray[np.int64]:
        """Land cells within `radius` km of network-like distance from cell `site`."""
        sx, sy = x[site], y[site]
        near = np.asarray(tree.query_ball_point([sx, sy], radius / lo), dtype=np.int64)
        near = near[~water[near]]
        ddx, ddy = x[near] - sx, y[near] - sy
        along = ddx * math.cos(theta) + ddy * math.sin(theta)
        across = -ddx * math.sin(theta) + ddy * math.cos(theta)
        dist = np.sqrt((along / stretch) ** 2 + (across * stretch) ** 2)
        cross = north[near] != north[site]
        if cross.any():
            far = near[cross]
            to_bridge = np.hypot(bridges[:, 0] - sx, bridges[:, 1] - sy)
            from_bridge = np.hypot(
                x[far][:, None] - bridges[None, :, 0], y[far][:, None] - bridges[None, :, 1]
            )
            dist[cross] = (to_bridge[None, :] + from_bridge).min(axis=1)
        return near[dist * circuity[near] <= radius]

    land = np.flatnonzero(~water)
    p = density[land] ** STATION_CLUSTERING
    stations = rng.choice(land, N_STATIONS, replace=False, p=p / p.sum())
    covered = np.zeros(n, dtype=bool)
    for s in stations:
        covered[reach(int(s), STATION_RADIUS_KM, rng.uniform(0, np.pi), rng.uniform(1, 1.5))] = True

    q = np.sqrt(density[land]) * np.where(covered[land], 1.0, UNCOVERED_BIAS)
    sites = rng.choice(land, N_CANDIDATES, replace=False, p=q / q.sum())
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    for j, s in enumerate(sites):
        cells = reach(
            int(s), rng.uniform(*CANDIDATE_RADIUS_KM), rng.uniform(0, np.pi), rng.uniform(1, 1.6)
        )
        rows.append(np.full(cells.shape[0], j, dtype=np.int64))
        cols.append(cells)
    r, c = np.concatenate(rows), np.concatenate(cols)
    cover = sparse.csr_matrix((np.ones(r.shape[0], dtype=bool), (r, c)), shape=(len(sites), n))
    build_s = time.perf_counter() - t0

    per = np.diff(cover.indptr)
    new_w = np.where(covered, 0.0, weights)
    gain0 = cover @ new_w
    useless = int((gain0 <= 0).sum())
    description = [
        f"- Instance: synthetic (`--seed {seed}`, built in {build_s:.1f} s). {n:,} hexagonal "
        f"cells ({GRID_NX} × {GRID_NY}, centres {SPACING_KM * 1000:.0f} m apart, "
        f"{cell_km2:.4f} km² each) on a {width:.0f} × {height:.1f} km plane; a "
        f"{2 * RIVER_HALF_WIDTH_KM:.1f} km wide river crosses it south-west to north-east with "
        f"{len(BRIDGES)} bridges, and {N_LAKES} lakes: {int(water.sum()):,} water cells "
        "(weight 0, no sites). Demand: a core (σ 4 km) + 7 sub-centres + a thin background, "
        f"× lognormal(0, 0.9) per cell, scaled to a mean of {MEAN_WEIGHT:.0f} per cell (total "
        f"{weights.sum():,.0f}).",
        "- Reach ('network-like' distance): straight-line distance in an ellipse per site "
        "(axis ratio 1–1.6, random direction, the main road), or via the best bridge when the "
        f"river lies between, × a smooth circuity field of {lo}–{hi} per cell.",
        f"- Existing: {N_STATIONS} stations placed ∝ density^{STATION_CLUSTERING:g} (the core "
        f"first), each reaching {STATION_RADIUS_KM} km: {covered.mean() * 100:.1f} % of the "
        f"cells and {weights[covered].sum() / weights.sum() * 100:.1f} % of the demand already "
        "covered.",
        f"- Candidates: {len(sites):,} sites among land cells ∝ √density, {UNCOVERED_BIAS:g}× "
        f"likelier outside the covered area ({(~covered[sites]).mean() * 100:.0f} % are), "
        f"reaching {CANDIDATE_RADIUS_KM[0]}–{CANDIDATE_RADIUS_KM[1]} km: median "
        f"{int(np.median(per))} cells each ({int(per.min())}–{int(per.max())}), "
        f"{cover.nnz:,} (candidate, cell) pairs; {useless} candidates add nothing (every cell "
        "they reach is already covered).",
    ]
    return Instance("synthetic", cover, weights, covered, description, build_s)


def wuhan() -> Instance:
    """Real Wuhan cells and candidates from `scripts/coverage_instance.py` (needs the demo DB)."""
    name = "coverage_instance"
    if importlib.util.find_spec(name) is None:
        raise SystemExit(
            f"--instance wuhan needs {name}.wuhan_instance(), which does not exist yet "
            "(it comes with the coverage analysis work); use --instance synthetic meanwhile."
        )
    module = importlib.import_module(name)
    make = getattr(module, "wuhan_instance", None)
    if make is None:
        raise SystemExit(f"{name} has no wuhan_instance(); use --instance synthetic meanwhile.")
    t0 = time.perf_counter()
    got = make()
    build_s = time.perf_counter() - t0
    if isinstance(got, tuple):
        cover, weights, covered = got
        desc: object = None
    else:
        cover, weights, covered = got.cover, got.weights, got.covered
        desc = getattr(got, "description", None)
    lines = (
        [desc]
        if isinstance(desc, str)
        else list(desc)
        if isinstance(desc, list)
        else [f"- Instance: Wuhan, from `{name}.wuhan_instance()` ({build_s:.1f} s)."]
    )
    cov = (
        np.zeros(cover.shape[1], dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    )
    return Instance(
        "wuhan",
        sparse.csr_matrix(cover, dtype=bool),
        np.asarray(weights, dtype=np.float64),
        cov,
        [str(x) for x in lines],
        build_s,
    )


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Result and wall seconds of one call."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def plain_greedy(
    cover: sparse.csr_matrix, weights: Arr, covered: NDArray[np.bool_], k: int
) -> tuple[list[int], list[float]]:
    """Reference: every gain recomputed every round (one sparse mat-vec), largest gain, lowest
    index on ties, stop when nothing adds weight."""
    remaining = np.where(covered, 0.0, weights)
    chosen: list[int] = []
    gains: list[float] = []
    taken = np.zeros(cover.shape[0], dtype=bool)
    for _ in range(k):
        g = np.asarray(cover @ remaining, dtype=np.float64)
        g[taken] = -1.0
        j = int(np.argmax(g))
        if g[j] <= 0:
            break
        chosen.append(j)
        gains.append(float(g[j]))
        taken[j] = True
        remaining[cover.indices[cover.indptr[j] : cover.indptr[j + 1]]] = 0.0
    return chosen, gains


@dataclass
class KResult:
    """Everything measured for one K."""

    k: int
    greedy: Selection
    greedy_s: list[float]
    plain: tuple[list[int], list[float]]
    plain_s: list[float]
    exact: Selection
    exact_s: float
    greedy_eval: float  # coverage_gain of the greedy picks
    exact_eval: float

    @property
    def greedy_med(self) -> float:
        return statistics.median(self.greedy_s)

    @property
    def plain_med(self) -> float:
        return statistics.median(self.plain_s)

    @property
    def ratio(self) -> float:
        e = self.exact.added_weight
        return self.greedy.added_weight / e if e > 0 else 1.0

    @property
    def speedup(self) -> float:
        return self.exact_s / self.greedy_med

    @property
    def certified(self) -> float:
        """Greedy's own certificate: its weight / its upper bound on the optimum."""
        ub = self.greedy.upper_bound
        if ub is None:
            return float("nan")
        room = ub - self.greedy.covered_weight_before
        return self.greedy.added_weight / room if room > 0 else 1.0


@dataclass
class Unreduced:
    """The exact model without the reduction, for one K."""

    k: int
    sel: Selection
    seconds: float


@dataclass
class Reduction:
    """Sizes before and after `reduce_instance`."""

    seconds: float
    active_cells: int
    groups: int
    kept: int


@dataclass
class Results:
    """One run."""

    inst: Instance
    red: Reduction
    ks: list[KResult]
    unreduced: Unreduced | None
    time_limit: float
    repeat: int
    load: str
    seconds: float = 0.0
    checks: list[tuple[str, str, bool]] = field(default_factory=list)


def measure_reduction(inst: Instance) -> Reduction:
    """Median time of 3 `reduce_instance` calls and the reduced sizes."""
    times = []
    red = None
    for _ in range(3):
        red, s = timed(lambda: reduce_instance(inst.cover, inst.weights, inst.covered))
        times.append(s)
    assert red is not None
    return Reduction(
        statistics.median(times),
        int((red.group_of_cell >= 0).sum()),
        red.n_groups,
        int(red.candidates.shape[0]),
    )


def measure_k(inst: Instance, k: int, repeat: int, time_limit: float) -> KResult:
    """Greedy (repeat), the plain reference (repeat), exact (once) for one K."""
    greedy_s, plain_s = [], []
    g: Selection | None = None
    plain: tuple[list[int], list[float]] | None = None
    for _ in range(repeat):
        g, s = timed(lambda: greedy_max_cover(inst.cover, inst.weights, inst.covered, k=k))
        greedy_s.append(s)
        plain, s = timed(lambda: plain_greedy(inst.cover, inst.weights, inst.covered, k))
        plain_s.append(s)
    assert g is not None and plain is not None
    log(
        f"K={k}: greedy {statistics.median(greedy_s) * 1e3:.1f} ms, "
        f"{g.evaluations} evaluations; exact with a {time_limit:g} s limit …"
    )
    e, exact_s = timed(
        lambda: exact_max_cover(
            inst.cover, inst.weights, inst.covered, k=k, time_limit_s=time_limit
        )
    )
    ratio = g.added_weight / e.added_weight if e.added_weight > 0 else 1.0
    log(f"K={k}: exact {exact_s:.1f} s, optimal={e.optimal}, greedy/exact {ratio:.4f}")
    return KResult(
        k,
        g,
        greedy_s,
        plain,
        plain_s,
        e,
        exact_s,
        coverage_gain(inst.cover, inst.weights, inst.covered, g.chosen),
        coverage_gain(inst.cover, inst.weights, inst.covered, e.chosen),
    )


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)


def run_checks(r: Results) -> list[tuple[str, str, bool]]:
    """Agreement checks (name, result, ok)."""
    out: list[tuple[str, str, bool]] = []
    same = [
        kr.greedy.chosen == kr.plain[0]
        and all(close(a, b) for a, b in zip(kr.greedy.gains, kr.plain[1], strict=True))
        for kr in r.ks
    ]
    out.append(
        (
            "lazy greedy = plain greedy (every gain recomputed each round): same sites, same gains",
            f"{sum(same)} of {len(same)} K",
            all(same),
        )
    )
    dev = max(
        max(
            abs(kr.greedy_eval - kr.greedy.added_weight) / max(kr.greedy_eval, 1e-300),
            abs(kr.exact_eval - kr.exact.added_weight) / max(kr.exact_eval, 1e-300),
        )
        for kr in r.ks
    )
    out.append(
        (
            "both solvers' newly covered weight = `coverage_gain` of their picks (independent)",
            f"max relative difference {dev:.1e}",
            dev <= REL,
        )
    )
    worse = [kr.k for kr in r.ks if kr.exact.optimal and kr.exact_eval < kr.greedy_eval * (1 - REL)]
    out.append(
        (
            "exact (proven optimal) ≥ greedy",
            "every K" if not worse else f"violated at K = {worse}",
            not worse,
        )
    )
    bad_ub = [
        kr.k
        for kr in r.ks
        if kr.greedy.upper_bound is not None
        and kr.greedy.upper_bound < kr.exact.covered_weight_after * (1 - REL)
    ]
    out.append(
        (
            "greedy's a-posteriori bound ≥ the exact optimum",
            "every K" if not bad_ub else f"violated at K = {bad_ub}",
            not bad_ub,
        )
    )
    lazy = [kr.greedy.evaluations < kr.k * r.inst.n_candidates for kr in r.ks]
    out.append(
        (
            "lazy greedy evaluates fewer gains than K × candidates",
            ", ".join(
                f"K={kr.k}: {kr.greedy.evaluations:,} vs {kr.k * r.inst.n_candidates:,}"
                for kr in r.ks
            ),
            all(lazy),
        )
    )
    if r.unreduced is not None:
        u = r.unreduced
        ref = next(kr for kr in r.ks if kr.k == u.k)
        if u.sel.optimal and ref.exact.optimal:
            ok = close(u.sel.added_weight, ref.exact.added_weight)
            res = f"{u.sel.added_weight:,.3f} vs {ref.exact.added_weight:,.3f} (K={u.k})" + (
                "" if ok else " — differ"
            )
        else:
            ok = True
            res = f"not compared: a run hit its time limit (K={u.k})"
        out.append(("exact optimum without the reduction = with it", res, ok))
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def version_of(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def highs_version() -> str:
    try:
        core: Any = importlib.import_module("scipy.optimize._highspy._core")
        return f"{core.HIGHS_VERSION_MAJOR}.{core.HIGHS_VERSION_MINOR}.{core.HIGHS_VERSION_PATCH}"
    except (ImportError, AttributeError):
        return "?"


def machine() -> str:
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
    return (
        f"{os.cpu_count() or '?'} CPUs ({cpu}), {ram} RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"numpy {version_of('numpy')}, scipy {version_of('scipy')} (HiGHS {highs_version()})"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**FAIL**"


def status(sel: Selection) -> str:
    """Optimal, or stopped by the time limit with the relative gap HiGHS left."""
    if sel.optimal:
        return "optimal"
    ub = sel.upper_bound
    if ub is None:
        return "**time limit**"
    room = max(ub - sel.covered_weight_before, 1e-300)
    return f"**time limit**, gap ≤ {(ub - sel.covered_weight_after) / room * 100:.2f} %"


def ms(seconds: float) -> str:
    v = seconds * 1e3
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def targets(r: Results) -> list[tuple[str, str, str, bool]]:
    worst_ratio = min(r.ks, key=lambda kr: kr.ratio)
    worst_speed = min(r.ks, key=lambda kr: kr.speedup)
    all_optimal = all(kr.exact.optimal for kr in r.ks)
    return [
        (
            "greedy / exact optimum, newly covered weight, worst K"
            + ("" if all_optimal else " (exact not proven optimal everywhere)"),
            f"{worst_ratio.ratio:.4f} (K={worst_ratio.k})",
            f"≥ {RATIO_TARGET}",
            worst_ratio.ratio >= RATIO_TARGET,
        ),
        (
            "exact time / greedy time, worst K",
            f"{worst_speed.speedup:,.0f}× (K={worst_speed.k})",
            f"≥ {SPEED_TARGET:g}×",
            worst_speed.speedup >= SPEED_TARGET,
        ),
    ]


def section_title(instance: str) -> str:
    """One section per instance: the synthetic one and the real Wuhan one."""
    return SECTION if instance == "synthetic" else f"{SECTION} (Wuhan)"


def report(r: Results, command: str) -> str:
    today = dt.date.today().isoformat()
    inst, red = r.inst, r.red
    active_w = float(np.where(inst.covered, 0.0, inst.weights).sum())
    out = [
        f"## {section_title(inst.name)}",
        "",
        f"Measured {today} with `{command}` on {code_version()}; {r.seconds:.0f} s in all, "
        f"load average at start {r.load}.",
        "",
        f"- Machine: {machine()}. No database involved.",
        *inst.description,
        f"- Reduction (`reduce_instance`, {red.seconds * 1e3:.0f} ms, inside every exact run): "
        f"{inst.n_cells:,} cells → {red.active_cells:,} that can still add weight (uncovered, "
        f"weight > 0, reached by a candidate) → {red.groups:,} groups of cells reached by "
        f"exactly the same candidates; {inst.n_candidates:,} candidates → {red.kept:,} (the "
        "others add nothing or duplicate a lower-indexed one). The MILP has one binary per "
        "kept candidate and one continuous y per group.",
        f"- Timing: wall clock around the public calls (input validation and copying "
        f"included); greedy and the plain reference: median of {r.repeat} runs; exact: one "
        f"run, `time_limit_s={r.time_limit:g}`, `mip_rel_gap=0` (HiGHS must prove the "
        "optimum, not stop within its default 0.01 %). Newly covered weight is what the "
        f"picks add to the {inst.weights[inst.covered].sum():,.0f} already covered (of "
        f"{inst.weights.sum():,.0f}; {active_w:,.0f} is uncovered).",
        "",
        "| K | greedy ms | exact s | exact status | greedy newly covered | exact newly "
        "covered | greedy / exact | exact time / greedy time | greedy gain evaluations "
        "(plain: K × n) | greedy / its own bound |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kr in r.ks:
        out.append(
            f"| {kr.k} | {ms(kr.greedy_med)} | {kr.exact_s:,.1f} | {status(kr.exact)} | "
            f"{kr.greedy.added_weight:,.0f} | {kr.exact.added_weight:,.0f} | {kr.ratio:.4f} | "
            f"{kr.speedup:,.0f}× | {kr.greedy.evaluations:,} ({kr.k * inst.n_candidates:,}) | "
            f"{kr.certified:.3f} |"
        )
    out += [
        "",
        "| Reference | K | time | note |",
        "|---|---:|---:|---|",
    ]
    for kr in r.ks:
        out.append(
            f"| ref: plain greedy, every gain recomputed each round (one sparse mat-vec) | "
            f"{kr.k} | {ms(kr.plain_med)} ms | same picks as the lazy greedy: "
            f"{'yes' if kr.plain[0] == kr.greedy.chosen else 'no'} |"
        )
    if r.unreduced is not None:
        u = r.unreduced
        ref = next(kr for kr in r.ks if kr.k == u.k)
        out.append(
            f"| ref: exact without the reduction ({inst.n_candidates:,} binaries × "
            f"{inst.n_cells:,} cells) | {u.k} | {u.seconds:,.1f} s | {status(u.sel)}; "
            f"{u.seconds / ref.exact_s:.1f}× the reduced model's {ref.exact_s:.1f} s |"
        )
    out += [
        "",
        "### Targets and checks",
        "",
        "| Target | Measured | Limit | Result |",
        "|---|---:|---|---|",
    ]
    for name, value, limit, ok in targets(r):
        out.append(f"| {name} | {value} | {limit} | {verdict(ok)} |")
    out += ["", "| Agreement check | Result | |", "|---|---|---|"]
    for name, result, ok in r.checks:
        out.append(f"| {name} | {result} | {verdict(ok)} |")
    out += findings(r)
    return "\n".join(out).rstrip() + "\n"


def findings(r: Results) -> list[str]:
    ks = r.ks
    worst = min(ks, key=lambda kr: kr.ratio)
    slowest = max(ks, key=lambda kr: kr.exact_s)
    fastest_exact = min(ks, key=lambda kr: kr.exact_s)
    greedy_max = max(kr.greedy_med for kr in ks)
    n_opt = sum(1 for kr in ks if abs(kr.ratio - 1) <= REL)
    big = max(ks, key=lambda kr: kr.k)
    notes = [
        f"- Greedy takes at most {greedy_max * 1e3:.0f} ms and reaches "
        f"{min(kr.ratio for kr in ks):.3f}–{max(kr.ratio for kr in ks):.3f} of the proven "
        f"optimum (lowest at K={worst.k}; the optimum itself at {n_opt} of {len(ks)} K). The "
        f"exact solve takes {fastest_exact.exact_s:.0f}–{slowest.exact_s:.0f} s (the most at "
        f"K={slowest.k}), {min(kr.speedup for kr in ks):,.0f}× the greedy time or more.",
        "- Laziness: the lazy greedy evaluates "
        + ", ".join(f"{kr.greedy.evaluations:,}" for kr in ks)
        + f" gains for K = {', '.join(str(kr.k) for kr in ks)} instead of K × "
        f"{r.inst.n_candidates:,} (most of them the initial pass). In wall time the plain "
        "greedy (one vectorised sparse mat-vec over all candidates per round) takes "
        + ", ".join(f"{kr.plain_med * 1e3:.0f}" for kr in ks)
        + " ms against the lazy one's "
        + ", ".join(f"{kr.greedy_med * 1e3:.0f}" for kr in ks)
        + " ms: a gain evaluated one at a time from Python costs far more than a row of the "
        "mat-vec, so the lazy greedy only pulls ahead as K grows ("
        + (
            f"{big.plain_med / big.greedy_med:.1f}× at K={big.k}"
            if big.plain_med > big.greedy_med
            else f"not yet at K={big.k}"
        )
        + "); either is negligible next to the exact solve.",
        "- Greedy's own certificate (`Selection.upper_bound`: weight so far + the K largest "
        "stale gains, the smallest over the rounds) proves "
        + ", ".join(f"{kr.certified:.2f}" for kr in ks)
        + " of the optimum without solving the MILP: much less than the true ratios, as "
        "such bounds are; it is the number to show a planner when no exact run is available.",
    ]
    if r.unreduced is not None:
        u = r.unreduced
        ref = next(kr for kr in r.ks if kr.k == u.k)
        notes.append(
            f"- The reduction ({r.inst.n_cells:,} cells → {r.red.groups:,} groups) makes the "
            f"exact solve at K={u.k} {u.seconds / ref.exact_s:.1f}× faster "
            f"({u.seconds:.0f} s → {ref.exact_s:.0f} s) with the same optimum."
        )
    return ["", "Findings:", "", *notes]


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def parse_k(text: str) -> list[int]:
    try:
        ks = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k: comma-separated integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("--k: at least one K, each ≥ 1")
    return ks


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--instance", choices=("synthetic", "wuhan"), default="synthetic")
    p.add_argument("--k", type=parse_k, default=list(DEFAULT_K), help="e.g. 5,10,20,50")
    p.add_argument("--time-limit", type=float, default=600.0, help="exact solver, s per K")
    p.add_argument("--repeat", type=int, default=5, help="greedy runs per K (median)")
    p.add_argument(
        "--unreduced-k", type=int, default=10, help="K for the unreduced exact run (0: skip)"
    )
    p.add_argument("--unreduced-time-limit", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = p.parse_args(list(argv))
    if args.repeat < 1 or args.time_limit <= 0 or args.unreduced_time_limit <= 0:
        p.error("--repeat ≥ 1, time limits > 0")
    if args.unreduced_k and args.unreduced_k not in args.k:
        p.error("--unreduced-k must be one of --k (or 0)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every target and check passes, 1 otherwise."""
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(raw)
    t_start = time.perf_counter()
    load = loadavg()
    if args.instance == "wuhan":
        try:
            inst = wuhan()
        except SystemExit as exc:
            log(str(exc))
            return 2
    else:
        log(f"building the synthetic instance (seed {args.seed})")
        inst = synthetic_instance(args.seed)
    log(
        f"instance {inst.name}: {inst.n_candidates:,} candidates × {inst.n_cells:,} cells, "
        f"{inst.cover.nnz:,} pairs, {inst.covered.mean() * 100:.1f} % of cells covered"
    )
    red = measure_reduction(inst)
    log(f"reduction: {red.groups:,} groups, {red.kept:,} candidates, {red.seconds * 1e3:.0f} ms")
    ks = [measure_k(inst, k, args.repeat, args.time_limit) for k in args.k]
    unreduced = None
    if args.unreduced_k:
        k = args.unreduced_k
        log(f"K={k}: exact without the reduction, {args.unreduced_time_limit:g} s limit …")
        sel, s = timed(
            lambda: exact_max_cover(
                inst.cover,
                inst.weights,
                inst.covered,
                k=k,
                time_limit_s=args.unreduced_time_limit,
                reduce=False,
            )
        )
        log(f"K={k}: unreduced exact {s:.1f} s, optimal={sel.optimal}")
        unreduced = Unreduced(k, sel, s)
    results = Results(inst, red, ks, unreduced, args.time_limit, args.repeat, load)
    results.checks = run_checks(results)
    results.seconds = time.perf_counter() - t_start
    command = (".venv/bin/python scripts/bench_suggest.py " + shlex.join(raw)).strip()
    section = report(results, command)
    print(section)
    if args.write:
        write_section(args.write, section_title(args.instance), section)
        log(f"wrote section '{SECTION}' of {args.write}")
    ok = all(t[3] for t in targets(results)) and all(c[2] for c in results.checks)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
