"""A real uvicorn server on a free port, for the tests that go over a socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def yizhan(database_url: str, *args: str) -> None:
    """Run the `yizhan` command line against a database; fail the test on error."""
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [str(BIN / "yizhan"), *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@contextmanager
def uvicorn_server(
    env_overrides: dict[str, str], log_path: Path | None = None, start_s: float = 60.0
) -> Iterator[str]:
    """Serve app.main:app with these environment variables (as `yizhan serve` does); yields
    the base URL. The server's output goes to `log_path` (kept), else to a temporary file
    (removed): never to an unread pipe, which a run logging many tracebacks would fill, hanging
    the server."""
    env = {**os.environ, **env_overrides}
    port = free_port()
    keep = log_path is not None
    path = log_path or Path(tempfile.mkstemp(prefix="yizhan-server-", suffix=".log")[1])
    log = path.open("w")
    proc = subprocess.Popen(
        [str(BIN / "yizhan"), "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start: {path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        if not keep:
            path.unlink(missing_ok=True)
