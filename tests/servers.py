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
def uvicorn_server(env_overrides: dict[str, str]) -> Iterator[str]:
    """Serve app.main:app with these environment variables; yields the base URL."""
    env = {**os.environ, **env_overrides}
    port = free_port()
    # The server's output goes to a file, not an unread pipe: a run that logs many
    # tracebacks would fill the pipe and hang the server.
    log = tempfile.NamedTemporaryFile(prefix="yizhan-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [str(BIN / "yizhan"), "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"uvicorn did not start: {Path(log.name).read_text()[-2000:]}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        os.unlink(log.name)
