#!/usr/bin/env python3
"""Benchmark the command line's start-up: wall time of `yizhan --help` (and other commands
that do no work) over `--runs` runs, and the modules imported (`python -X importtime`).

To compare with another copy of the package (e.g. the previous commit, unpacked with
`git archive HEAD app | tar -x -C /tmp/before`), pass `--before /tmp/before`: that copy is
put first on PYTHONPATH and both are timed interleaved (one before run, one after run, …), so
the machine's load hits both alike.

Usage (from the project root):

    .venv/bin/python scripts/bench_cli_startup.py [--runs 10] [--before DIR]

Needs no database (YIZHAN_HOME points at an empty folder: nothing may connect anyway).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import sys; from app.cli import main; sys.argv = ['yizhan', *sys.argv[1:]]; main()"
COMMANDS = (["--help"], ["coverage", "--help"], ["coverage", "suggest", "--help"])
HEAVY = ("numpy", "scipy", "shapely", "sqlalchemy", "fastapi", "pydantic_settings", "h3")


def _env(pythonpath: str | None, home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    env["YIZHAN_HOME"] = home
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _once(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        capture_output=True,
        check=True,
        cwd=env["YIZHAN_HOME"],
    )
    return time.perf_counter() - t0


def _imports(args: list[str], env: dict[str, str]) -> tuple[int, float, list[str]]:
    """(modules imported, their cumulative import time in s, heavy ones among them)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=env["YIZHAN_HOME"],
    )
    rows = [r for r in done.stderr.splitlines() if r.startswith("import time:")]
    names = [r.split("|")[2].strip() for r in rows[1:]]
    top = sum(int(r.split("|")[1]) for r in rows[1:] if re.match(r"\S", r.split("|")[2][1:] or "x"))
    return len(names), top / 1e6, sorted(h for h in HEAVY if h in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--before", type=Path, help="folder holding the `app` package to compare")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="yizhan-bench-")
    variants = {"after": _env(None, home)}
    if a.before:
        variants = {"before": _env(str(a.before), home), **variants}
    print(f"{a.runs} runs each, load average {os.getloadavg()[0]:.2f} at start")
    print("| command | copy | median s | min s | max s | modules | import s (top level) | heavy |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for args in COMMANDS:
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(a.runs):
            for name, env in variants.items():
                times[name].append(_once(args, env))
        for name, env in variants.items():
            n, imp, heavy = _imports(args, env)
            t = times[name]
            print(
                f"| `yizhan {' '.join(args)}` | {name} | {statistics.median(t):.2f} | "
                f"{min(t):.2f} | {max(t):.2f} | {n} | {imp:.2f} | {', '.join(heavy) or '—'} |"
            )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
