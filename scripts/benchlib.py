"""What the benchmark scripts share: a real uvicorn serving the app on a free port."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def uvicorn_server(
    database_url: str, log: Callable[[str], None], extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `uvicorn app.main:app` (one worker, no access log) with `extra_env` and yield its
    base URL; stopped (by its own pid) on exit."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": secrets.token_urlsafe(24),
        **(extra_env or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with code {proc.returncode}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not become ready within 60 s")
            time.sleep(0.2)
        log(f"uvicorn pid {proc.pid} ready on port {port}")
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log(f"uvicorn pid {proc.pid} stopped")


def get_ok(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
    """GET, body read, 200 required."""
    resp = client.get(path, params=params)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {path} → HTTP {resp.status_code}: {resp.text[:300]}")
    return resp


def code_version() -> str:
    """The checked-out commit and whether app/ differs from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "app"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"commit {head}" + (" with uncommitted changes in app/" if dirty else ", app/ clean")


def loadavg() -> str:
    """The 1/5/15-minute load averages (other work on the machine skews latencies)."""
    path = Path("/proc/loadavg")
    return " / ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def write_section(path: Path, title: str, section: str) -> None:
    """Replace (or append) the `## {title}` section of a Markdown file, keeping the rest."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
    else:
        text = (
            "# Benchmarks\n\nMeasured performance of yizhan. Each section is written by the "
            "script named in it; re-run that script to refresh it.\n"
        )
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == f"## {title}"), None)
    if start is None:
        new = text.rstrip() + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        before = "\n".join(lines[:start]).rstrip()
        after = "\n".join(lines[end:]).strip()
        new = (before + "\n\n" if before else "") + section + ("\n" + after + "\n" if after else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")


def server_url() -> str:
    """The main database URL (libpq form): $DATABASE_URL, else the private cluster's."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "pg.sh"), "url"],
            check=True,
            capture_output=True,
            text=True,
        )
        url = out.stdout.strip().splitlines()[-1]
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def bench_database(main_url: str, suffix: str = "loadbench") -> str:
    """`<dbname>_<suffix>` on the same server, created if missing."""
    base = make_url(main_url)
    name = f"{base.database}_{suffix}"
    with psycopg.connect(main_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            print(f"creating database {name}", file=sys.stderr)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return base.set(database=name).render_as_string(hide_password=False)
