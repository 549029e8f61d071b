"""The command line run by hand (issue 14): it finds the project's private cluster the way
scripts/lib.sh does, never uses a server someone else started, says in one line what to do
when there is no database, and starts without importing the whole app.

Every CLI here runs as a subprocess with DATABASE_URL removed from its environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.localdb import NoDatabaseError, candidate_roots, discover, redacted

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "yizhan"
#: Modules `yizhan --help` must not import (each costs tenths of a second). Not pydantic:
#: typer 0.29 itself coerces every parsed parameter through it.
HEAVY = (
    "numpy",
    "shapely",
    "fastapi",
    "sqlalchemy",
    "pydantic_settings",
    "scipy",
    "h3",
    "alembic",
    "psycopg",
    "app.config",
    "app.coverage.service",
)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "YIZHAN_DATABASE_URL", "YIZHAN_HOME", "YIZHAN_PGROOT")
    }
    return {**env, "COLUMNS": "200", **extra}


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=_env(**env), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _fake_cluster(home: Path, port: int, pid: int | None, pid_port: int | None = None) -> Path:
    """A `.pgdata` like lib.sh's: port and password files, and a postmaster.pid (PostgreSQL's
    layout: pid, data dir, start time, port, socket dir, address …) when `pid` is given."""
    pgroot = home / ".pgdata"
    (pgroot / "15" / "data").mkdir(parents=True)
    (pgroot / "port").write_text(f"{port}\n")
    (pgroot / "password").write_text("s3cret/+pw\n")
    if pid is not None:
        lines = [pid, pgroot / "15" / "data", 1796162706, pid_port or port, pgroot / "run"]
        (pgroot / "15" / "data" / "postmaster.pid").write_text(
            "\n".join(map(str, lines)) + "\n127.0.0.1\n  5390743  9\nready   \n"
        )
    return pgroot


class _Listener:
    """A foreign "server": accepts TCP connections on 127.0.0.1 and counts them."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.close()


# -- discovery rules (no database, no subprocess) -----------------------------------------------


def test_discovery_uses_the_running_clusters_port_and_password(tmp_path: Path) -> None:
    pgroot = _fake_cluster(tmp_path, 56001, os.getpid())
    found = discover({"YIZHAN_HOME": str(tmp_path)})
    assert found.pgroot == pgroot and found.port == 56001
    assert found.url == "postgresql+psycopg://yizhan:s3cret%2F%2Bpw@127.0.0.1:56001/yizhan"
    assert redacted(found.url) == "postgresql+psycopg://yizhan:***@127.0.0.1:56001/yizhan"


@pytest.mark.parametrize(
    ("pid", "pid_port", "why"),
    [
        (None, None, "not running"),  # no postmaster.pid: stopped
        ("dead", None, "not running"),  # stale postmaster.pid of a dead process
        ("self", 56099, "not running"),  # ours runs, but on another port than `port` says
    ],
)
def test_discovery_refuses_a_cluster_that_is_not_running_there(
    tmp_path: Path, pid: str | None, pid_port: int | None, why: str
) -> None:
    real = {None: None, "dead": _dead_pid(), "self": os.getpid()}[pid]
    _fake_cluster(tmp_path, 56002, real, pid_port)
    with pytest.raises(NoDatabaseError) as caught:
        discover({"YIZHAN_HOME": str(tmp_path)})
    assert why in caught.value.reason_en and "56002" in caught.value.reason_en


def test_discovery_roots(tmp_path: Path) -> None:
    # YIZHAN_PGROOT (as in lib.sh) beats YIZHAN_HOME; YIZHAN_HOME is the only place then
    both = {"YIZHAN_PGROOT": str(tmp_path / "pg"), "YIZHAN_HOME": str(tmp_path / "home")}
    assert candidate_roots(both) == [tmp_path / "pg"]
    assert candidate_roots({"YIZHAN_HOME": str(tmp_path)}) == [tmp_path / ".pgdata"]
    # default: the checkout this package lives in, then the current directory
    assert candidate_roots({}, cwd=tmp_path) == [ROOT / ".pgdata", (tmp_path / ".pgdata")]
    with pytest.raises(NoDatabaseError, match="holds no private cluster"):
        discover({"YIZHAN_HOME": str(tmp_path)})


# -- the CLI as a subprocess ----------------------------------------------------------------


def test_cli_finds_the_private_cluster_without_database_url(tmp_path: Path) -> None:
    """(a) DATABASE_URL unset, run from elsewhere: the checkout's running cluster is used."""
    try:
        found = discover({}, cwd=tmp_path)
    except NoDatabaseError as exc:
        pytest.skip(f"no private cluster in this checkout: {exc.reason_en}")
    done = _cli("db", "check", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"127.0.0.1:{found.port}/yizhan" in done.stderr
    assert f"server port {found.port}," in done.stderr  # the server itself says so
    assert found.url.split(":")[2].split("@")[0] not in done.stderr  # password never shown


@pytest.mark.parametrize(
    "command", [["db", "check"], ["demand", "list"], ["db", "upgrade"], ["serve", "--port", "9"]]
)
def test_cli_without_any_database_says_so_in_one_line(tmp_path: Path, command: list[str]) -> None:
    """(b) YIZHAN_HOME without .pgdata: one line (zh + en) with what to do, exit code 2; and
    nothing connects to the default port 55432 (listened on here when it is free)."""
    try:
        default = _Listener(55432)
    except OSError:
        default = None  # the private cluster (or someone) holds it; the check below still runs
    try:
        done = _cli(*command, cwd=tmp_path, YIZHAN_HOME=str(tmp_path))
    finally:
        if default is not None:
            default.close()
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "未找到数据库" in lines[0] and "no database" in lines[0]
    assert "scripts/pg.sh start" in lines[0] and "DATABASE_URL" in lines[0]
    assert str(tmp_path / ".pgdata") in lines[0]
    if default is not None:
        assert default.accepted == 0


@pytest.mark.parametrize("pid", ["none", "dead"])
def test_cli_never_uses_a_foreign_server_on_the_clusters_port(
    tmp_path: Path, listener: _Listener, pid: str
) -> None:
    """(c) The port file names a port where someone else's server listens, and our cluster is
    not running (no postmaster.pid, or a stale one): refused without connecting."""
    _fake_cluster(tmp_path, listener.port, None if pid == "none" else _dead_pid())
    done = _cli("db", "check", cwd=tmp_path, YIZHAN_HOME=str(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"not running on port {listener.port}" in done.stderr
    assert listener.accepted == 0


def test_cli_unreachable_database_url_is_one_line(tmp_path: Path, listener: _Listener) -> None:
    """An explicit DATABASE_URL whose server does not speak PostgreSQL: one line, exit 2."""
    url = f"postgresql://u:pw@127.0.0.1:{listener.port}/x"
    done = _cli("db", "check", cwd=tmp_path, DATABASE_URL=url)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and "无法连接数据库" in line and "cannot reach the database" in line
    assert ":pw@" not in line and ":***@" in line
    assert listener.accepted >= 1  # it was asked to, so it did connect there


# -- start-up imports ----------------------------------------------------------------------

_PROBE = """
import sys
from app.cli import main
sys.argv = ["yizhan", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["coverage", "--help"], ["coverage", "suggest", "--help"], ["users"]]
)
def test_help_does_not_import_the_app(tmp_path: Path, args: list[str]) -> None:
    probe = _PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        env=_env(YIZHAN_HOME=str(tmp_path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout + done.stderr
    loaded = done.stdout.strip().splitlines()[-1]
    assert loaded == "LOADED", loaded


def test_help_states_the_suggestion_limit_the_service_enforces() -> None:
    import inspect

    from app.cli.coverage import coverage_suggest
    from app.coverage.service import MAX_SUGGESTIONS

    k = inspect.signature(coverage_suggest).parameters["k"].default
    assert f"at most {MAX_SUGGESTIONS}" in k.help


def test_the_cli_mode_enum_is_the_travel_models() -> None:
    from app.cli import coverage
    from app.network import travel

    assert coverage.Mode is travel.Mode
