#!/usr/bin/env python3
"""Nearest-station latency while the planner's coverage runs are hammered, and what the
server spends doing it (issue 9, "bounded public compute").

Against a real uvicorn (one worker, like `scripts/demo.sh`) serving the Wuhan demo:

1. **Idle**: `--idle` sequential `GET /api/v1/stations/nearest` (random points in Wuhan, k=5)
   after a warm-up that also loads the walking graph and one coverage run; measured again
   once the server has gone idle after the load (the machine may be shared: both count).
2. **Control**: nearest again while a plain CPU-bound loop runs at the lowest CPU priority
   (SCHED_IDLE, as the coverage compute process does) and nothing else: what any background
   computation costs nearest on this machine (e.g. hyperthreads sharing a core).
3. **Under load**: `--clients` clients (default 30, in a separate process so that they do not
   share this process's GIL with the nearest client) fire `GET /api/v1/coverage/summary`
   requests, each with parameters no other request used (mode, target minutes, resolution,
   over-density radius; a shuffled enumeration), for `--duration` seconds. A client waits for
   each answer (timeout `--timeout`), and after a 503/429 sleeps its `Retry-After` but at
   most `--max-backoff` seconds. Meanwhile one client measures nearest again, sequentially.
4. **After the clients leave**: the seconds until the server's CPU (uvicorn and every process
   it started) falls below 5 % of a core over a 2-second window (at most `--settle-max`).

The server's resident memory (VmRSS of uvicorn plus its child processes, sampled every
0.2 s) is reported before the load and at its peak.

Data lives in its own database `<dbname>_loadbench` on the DATABASE_URL server, set up once with
the app's own commands (`yizhan db upgrade`, `yizhan demo load`, `yizhan network demo`,
`yizhan districts demo`; the network download is cached in `.cache/`).

Usage (from the project root; DATABASE_URL names the server, else `scripts/pg.sh url` is asked):

    .venv/bin/python scripts/bench_load.py [--clients 30] [--duration 60] [--idle 300]
        [--timeout 30] [--max-backoff 1] [--settle-max 600] [--seed 20261201]
        [--env YIZHAN_X=y ...] [--write docs/reliability.md]

Exit status 0 when every nearest request under load answered 200 and their p95 is within 2× of
idle, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
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
    bench_database,
    code_version,
    loadavg,
    server_url,
    uvicorn_server,
    write_section,
)

SECTION = "Coverage under load"
#: Wuhan's urban core (WGS-84), where the demo stations are.
BBOX = (114.15, 30.45, 114.45, 30.70)
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(msg: str) -> None:
    """Progress line on stderr (stdout carries the report)."""
    print(f"[loadbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (inclusive method)."""
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return float(samples[0])
    return float(statistics.quantiles(samples, n=100, method="inclusive")[round(p) - 1])


# --------------------------------------------------------------------------------------------
# Database and data
# --------------------------------------------------------------------------------------------


def yizhan(url: str, *args: str) -> None:
    """Run the app's own command line against the bench database."""
    exe = Path(sys.executable).with_name("yizhan")
    log(f"yizhan {' '.join(args)}")
    subprocess.run([str(exe), *args], cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, check=True)


def ensure_data(url: str) -> dict[str, int]:
    """Migrate and load the Wuhan demo (stations, road network, districts) where missing."""
    yizhan(url, "db", "upgrade")

    def counts() -> dict[str, int]:
        with psycopg.connect(url) as conn:
            q = {
                "stations": "SELECT count(*) FROM stations",
                "network_edges": "SELECT count(*) FROM network_edges e JOIN network_versions v "
                "ON v.id = e.version_id WHERE v.is_live",
                "districts": "SELECT count(*) FROM districts",
            }
            out = {}
            for k, text in q.items():
                row = conn.execute(text).fetchone()  # type: ignore[arg-type]
                out[k] = int(row[0]) if row else 0
            return out

    have = counts()
    if have["stations"] == 0:
        yizhan(url, "demo", "load")
    if have["network_edges"] == 0:
        yizhan(url, "network", "demo")
    if have["districts"] == 0:
        yizhan(url, "districts", "demo")
    return counts()


# --------------------------------------------------------------------------------------------
# The server's processes: memory and CPU
# --------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()


def server_pid(port: int) -> int:
    """The uvicorn process listening on `port` (found by its command line; read-only)."""
    want = ["--port", str(port)]
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            args = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args]
        if "uvicorn" in words and any(words[i : i + 2] == want for i in range(len(words))):
            return int(d.name)
    raise RuntimeError(f"no uvicorn process found for port {port}")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(d.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def role(pid: int, root: int) -> str:
    """What a process of the server's tree is."""
    if pid == root:
        return "uvicorn (server)"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if "spawn_main" in cmd:
        return "coverage compute process"
    return cmd[:60]


def tree_usage(pid: int, per_process: dict[int, int] | None = None) -> tuple[int, float]:
    """(resident bytes, CPU seconds) of `pid` and its descendants; `per_process` gets each
    one's resident bytes."""
    rss = 0
    cpu = 0.0
    for p in process_tree(pid):
        try:
            f = _stat_fields(p)
            cpu += (int(f[11]) + int(f[12])) / TICKS  # utime, stime
            one = int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
        rss += one
        if per_process is not None:
            per_process[p] = one
    return rss, cpu


class Sampler(threading.Thread):
    """Samples the server tree's RSS and CPU every `every` seconds; keeps the peak RSS."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.peak_rss = 0
        self.procs_at_peak = 0
        self.peak_by_role: dict[str, int] = {}
        self.samples: list[tuple[float, int, float]] = []
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            each: dict[int, int] = {}
            rss, cpu = tree_usage(self.pid, each)
            now = time.monotonic()
            with self._lock:
                self.samples.append((now, rss, cpu))
                if rss > self.peak_rss:
                    self.peak_rss = rss
                    self.procs_at_peak = len(each)
                for p, b in each.items():
                    name = role(p, self.pid)
                    self.peak_by_role[name] = max(self.peak_by_role.get(name, 0), b)
            self._halt.wait(self.every)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak_rss = 0
            self.peak_by_role = {}

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def cpu_rate(self, window: float) -> float | None:
        """Cores used over the last `window` seconds (None until enough samples)."""
        with self._lock:
            s = list(self.samples)
        if len(s) < 2 or s[-1][0] - s[0][0] < window:
            return None
        last = s[-1]
        first = next(x for x in reversed(s) if last[0] - x[0] >= window)
        return (last[2] - first[2]) / (last[0] - first[0])


#: The control's CPU burner: a pure-Python loop at the lowest CPU priority.
BURNER = """
import os
try:
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
except (AttributeError, OSError):
    os.nice(19)
x = 0
while True:
    x = (x * 31 + 7) % 1000003
"""


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def nearest_points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(BBOX[0], BBOX[2]), rng.uniform(BBOX[1], BBOX[3])) for _ in range(n)]


def nearest_once(client: httpx.Client, lon: float, lat: float) -> tuple[float, str]:
    """Milliseconds and status of one nearest request (a transport error is its status)."""
    t0 = time.perf_counter()
    try:
        r = client.get(
            "/api/v1/stations/nearest", params={"lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "k": 5}
        )
        status = str(r.status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return (time.perf_counter() - t0) * 1000, status


def nearest_ok(client: httpx.Client, lon: float, lat: float) -> float:
    ms, status = nearest_once(client, lon, lat)
    if status != "200":
        raise RuntimeError(f"nearest → {status} while idle")
    return ms


def distinct_params(seed: int) -> list[dict[str, Any]]:
    """Coverage parameters, every combination once (shuffled): each is a run of its own."""
    combos = [
        {"mode": mode, "minutes": m, "resolution": res, "dense_minutes": d}
        for mode, m, res, d in itertools.product(
            ("walk", "ebike"), range(5, 61), (9, 10, 8), range(1, 16)
        )
    ]
    random.Random(seed).shuffle(combos)
    return combos


@dataclass
class LoadResult:
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    runs_done: int = 0
    requests: int = 0
    finished_at: float = 0.0


def load_clients(
    base: str,
    clients: int,
    duration: float,
    timeout: float,
    max_backoff: float,
    seed: int,
    out: Any,
) -> None:
    """Child process: `clients` threads fire distinct coverage summaries for `duration` s."""
    combos = iter(distinct_params(seed))
    lock = threading.Lock()
    res = LoadResult()
    runs: set[str] = set()
    end = time.monotonic() + duration

    def next_params() -> dict[str, Any] | None:
        with lock:
            return next(combos, None)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=timeout) as client:
            while time.monotonic() < end:
                params = next_params()
                if params is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = client.get("/api/v1/coverage/summary", params=params)
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                    r = None
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    res.requests += 1
                    res.statuses[status] = res.statuses.get(status, 0) + 1
                    res.latencies_ms.setdefault(status, []).append(ms)
                    if r is not None and r.status_code == 200:
                        runs.add(r.json()["run"])
                    elif (
                        r is not None
                        and r.status_code not in (202, 429, 503)
                        and len(res.errors) < 5
                    ):
                        res.errors.append(f"{r.status_code}: {r.text[:200]}")
                if r is not None and r.status_code in (429, 503):
                    try:
                        wait = float(r.headers.get("Retry-After", "1"))
                    except ValueError:
                        wait = 1.0
                    time.sleep(min(wait, max_backoff))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res.runs_done = len(runs)
    res.finished_at = time.time()
    out.put(json.dumps(res.__dict__))


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    idle_ms: list[float]
    idle_after_ms: list[float]
    control_ms: list[float]
    peak_by_role: dict[str, int]
    load_ms: list[float]
    load_status: dict[str, int]
    load: LoadResult
    rss_before: int
    rss_peak: int
    procs_at_peak: int
    settle_s: float
    settled: bool
    cpu_during_s: float
    load_avg: tuple[str, str]
    data: dict[str, int]
    seconds: float


def run(args: argparse.Namespace) -> Results:
    t_start = time.perf_counter()
    url = bench_database(server_url())
    data = ensure_data(url)
    log(f"data: {data}")
    extra = dict(kv.split("=", 1) for kv in args.env)
    extra.setdefault("YIZHAN_HOURS_AUTO_REFRESH", "false")
    load_start = loadavg()
    points = nearest_points(args.idle + 50, args.seed)
    with uvicorn_server(url, log, extra) as base:
        pid = server_pid(int(base.rsplit(":", 1)[1]))
        sampler = Sampler(pid)
        sampler.start()
        with httpx.Client(base_url=base, timeout=args.timeout) as client:
            log("warm-up: nearest ×50, one coverage run (graph, grid)")
            for lon, lat in points[:50]:
                nearest_ok(client, lon, lat)
            r = client.get("/api/v1/coverage/summary", params={"mode": "walk"}, timeout=120)
            if r.status_code != 200:
                raise RuntimeError(f"warm-up coverage → {r.status_code}: {r.text[:300]}")
            time.sleep(1.0)
            rss_before, _ = tree_usage(pid)
            log(f"idle: nearest ×{args.idle}")
            idle = [nearest_ok(client, lon, lat) for lon, lat in points[50:]]
            log(f"idle p50 {pct(idle, 50):.1f} ms, p95 {pct(idle, 95):.1f} ms")
            log("control: nearest beside a SCHED_IDLE CPU burner")
            burner = subprocess.Popen([sys.executable, "-c", BURNER])
            try:
                time.sleep(0.5)
                control = [nearest_ok(client, lon, lat) for lon, lat in points[50:]]
            finally:
                burner.kill()
                burner.wait()
            log(f"control p50 {pct(control, 50):.1f} ms, p95 {pct(control, 95):.1f} ms")
            sampler.reset_peak()
            _, cpu0 = tree_usage(pid)
            ctx = mp.get_context("spawn")
            q: Any = ctx.Queue()
            proc = ctx.Process(
                target=load_clients,
                args=(
                    base,
                    args.clients,
                    args.duration,
                    args.timeout,
                    args.max_backoff,
                    args.seed,
                    q,
                ),
            )
            log(f"load: {args.clients} clients × distinct coverage runs for {args.duration:.0f} s")
            proc.start()
            try:
                time.sleep(2.0)  # the clients' process starts (spawn) and fires
                under: list[float] = []
                under_status: Counter[str] = Counter()
                rng = random.Random(args.seed + 1)
                raw = None
                while raw is None:
                    lon, lat = rng.uniform(BBOX[0], BBOX[2]), rng.uniform(BBOX[1], BBOX[3])
                    ms, status = nearest_once(client, lon, lat)
                    under.append(ms)
                    under_status[status] += 1
                    try:
                        raw = q.get_nowait()
                    except queue.Empty:
                        if not proc.is_alive():
                            raw = q.get(timeout=10)
                load = LoadResult(**json.loads(raw))
                proc.join(timeout=30)
            finally:
                if proc.is_alive():
                    proc.terminate()
                    proc.join()
            left = time.monotonic()
            _, cpu1 = tree_usage(pid)
            log(
                f"under load p50 {pct(under, 50):.1f} ms, p95 {pct(under, 95):.1f} ms "
                f"({len(under)} requests, {dict(under_status)}); coverage answers {load.statuses}"
            )
            log("waiting for the server to go idle")
            settled = False
            while time.monotonic() - left < args.settle_max:
                time.sleep(0.5)
                rate = sampler.cpu_rate(2.0)
                if rate is not None and rate < 0.05 and time.monotonic() - left >= 2.0:
                    settled = True
                    break
            settle = max(0.0, time.monotonic() - left - 2.0) if settled else args.settle_max
            log(f"idle again: nearest ×{args.idle}")
            idle_after = [nearest_ok(client, lon, lat) for lon, lat in points[50:]]
            log(f"idle after p50 {pct(idle_after, 50):.1f} ms, p95 {pct(idle_after, 95):.1f} ms")
        sampler.stop()
        load_end = loadavg()
        log(f"settled after {settle:.1f} s; peak RSS {sampler.peak_rss / 2**20:.0f} MiB")
    return Results(
        idle_ms=idle,
        idle_after_ms=idle_after,
        control_ms=control,
        peak_by_role=dict(sampler.peak_by_role),
        load_ms=under,
        load_status=dict(under_status),
        load=load,
        rss_before=rss_before,
        rss_peak=max(sampler.peak_rss, rss_before),
        procs_at_peak=sampler.procs_at_peak,
        settle_s=settle,
        settled=settled,
        cpu_during_s=cpu1 - cpu0,
        load_avg=(load_start, load_end),
        data=data,
        seconds=time.perf_counter() - t_start,
    )


def report(r: Results, args: argparse.Namespace, command: str) -> str:
    mib = 2**20
    idle = r.idle_ms + r.idle_after_ms
    idle95, load95 = pct(idle, 95), pct(r.load_ms, 95)
    ratio = load95 / idle95 if idle95 > 0 else float("inf")
    st = r.load.statuses
    cov = r.load.latencies_ms
    lines = [
        f"## {SECTION}",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `{command}` on {code_version()}; "
        f"{r.seconds:.0f} s in all, load average at start {r.load_avg[0]}, at the end "
        f"{r.load_avg[1]}.",
        "",
        f"- Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; the database, "
        "the server and the clients share it.",
        f"- Data: the Wuhan demo ({r.data['stations']} stations, {r.data['network_edges']:,} "
        f"street edges, {r.data['districts']} districts) in its own database; uvicorn, one "
        f"worker{', ' + ', '.join(args.env) if args.env else ''}.",
        f"- Load: {args.clients} clients, each firing `GET /api/v1/coverage/summary` with "
        "parameters no other request used (mode, minutes, resolution, dense_minutes) for "
        f"{args.duration:.0f} s, waiting for each answer (timeout {args.timeout:.0f} s) and "
        f"sleeping `Retry-After` (at most {args.max_backoff:g} s) after a 503/429; one more "
        "client measures nearest (k=5, random points in Wuhan) sequentially meanwhile.",
        "",
        "| | value |",
        "|---|---:|",
        f"| nearest idle before the load: p50 / p95, ms ({len(r.idle_ms)} requests) | "
        f"{pct(r.idle_ms, 50):.1f} / {pct(r.idle_ms, 95):.1f} |",
        f"| nearest idle after the load: p50 / p95, ms ({len(r.idle_after_ms)} requests) | "
        f"{pct(r.idle_after_ms, 50):.1f} / {pct(r.idle_after_ms, 95):.1f} |",
        f"| nearest idle, both: p50 / p95, ms | {pct(idle, 50):.1f} / {idle95:.1f} |",
        f"| nearest under load: p50 / p95 / max, ms ({len(r.load_ms)} requests) | "
        f"{pct(r.load_ms, 50):.1f} / {load95:.1f} / {max(r.load_ms):.1f} |",
        f"| nearest answers under load | "
        f"{', '.join(f'{n} × {k}' for k, n in sorted(r.load_status.items()))} |",
        f"| **p95 under load ÷ p95 idle (both)** (target ≤ 2) | **{ratio:.2f}** |",
        f"| control, nearest beside a SCHED_IDLE CPU burner: p50 / p95, ms | "
        f"{pct(r.control_ms, 50):.1f} / {pct(r.control_ms, 95):.1f} |",
        f"| control p95 ÷ p95 idle (both): what any background CPU work costs here | "
        f"{pct(r.control_ms, 95) / idle95:.2f} |",
        f"| coverage requests sent | {r.load.requests} |",
    ]
    for code in sorted(st):
        lat = cov.get(code, [])
        lines.append(
            f"| … answered {code} (p50 / max ms) | {st[code]} "
            f"({pct(lat, 50):.0f} / {max(lat) if lat else 0:.0f}) |"
        )
    lines += [
        f"| distinct runs answered 200 | {r.load.runs_done} |",
        f"| server CPU during the load, core-seconds | {r.cpu_during_s:.1f} |",
        f"| server RSS before the load, MiB | {r.rss_before / mib:.0f} |",
        f"| **server RSS peak** (uvicorn + children, {r.procs_at_peak} processes), MiB | "
        f"**{r.rss_peak / mib:.0f}** |",
        *(
            f"| … peak of the {name}, MiB | {b / mib:.0f} |"
            for name, b in sorted(r.peak_by_role.items())
        ),
        f"| **CPU busy after the clients left**, s (< 5 % of a core over 2 s) | "
        f"**{r.settle_s:.1f}{'' if r.settled else ' (not settled)'}** |",
    ]
    if r.load.errors:
        lines += ["", "Unexpected answers: " + "; ".join(r.load.errors)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=30)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--idle", type=int, default=300)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--max-backoff", type=float, default=1.0)
    p.add_argument("--settle-max", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the server, repeatable"
    )
    p.add_argument("--write", type=Path, default=None)
    return p.parse_args(argv)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)  # so that `finally` stops uvicorn
    r = run(args)
    command = ".venv/bin/python scripts/bench_load.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    section = report(r, args, command.strip())
    print(section)
    if args.write:
        write_section(args.write, SECTION, section)
        log(f"wrote section '{SECTION}' of {args.write}")
    idle95 = pct(r.idle_ms + r.idle_after_ms, 95)
    ok = pct(r.load_ms, 95) <= 2 * idle95 and set(r.load_status) == {"200"}
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
