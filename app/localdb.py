"""Which database the app uses when `DATABASE_URL` is not set: the project's private cluster.

scripts/lib.sh (`ensure_db`) starts a private PostgreSQL cluster in `.pgdata/` on 127.0.0.1,
on port 55432 or the next free one (kept in `.pgdata/port`), with a generated password
(`.pgdata/password`). Code run by hand (`.venv/bin/yizhan …`, a bare uvicorn) finds it the
same way, and never falls back to whatever listens on 55432:

* the folder: `$YIZHAN_PGROOT` if set (as in lib.sh); else `$YIZHAN_HOME/.pgdata` if
  `YIZHAN_HOME` is set (and only there); else `.pgdata` in the project folder this package
  lives in, then `.pgdata` in the current directory — the first that holds a `port` file;
* the cluster must be running and be ours: a `<version>/data/postmaster.pid` in that folder
  whose process is alive and whose port is the one in `port` (what `pg_ctl status` checks).
  A foreign server that took the port after ours stopped is therefore never used.

Standard library only: imported by the CLI before anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

#: The project folder when the package is used from its checkout (editable install).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

FIX_HINT_ZH = "请运行 scripts/pg.sh start 启动项目的私有数据库，或设置 DATABASE_URL"
FIX_HINT_EN = "start the project's private database with scripts/pg.sh start, or set DATABASE_URL"


class NoDatabaseError(RuntimeError):
    """No database was configured and the private cluster was not found or is not running."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        super().__init__(
            f"未找到数据库：{reason_zh}；{FIX_HINT_ZH} / no database: {reason_en}; {FIX_HINT_EN}"
        )


@dataclass(frozen=True)
class Found:
    """The private cluster: where its files are and the URL to reach it."""

    pgroot: Path
    port: int
    url: str


def candidate_roots(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> list[Path]:
    """The `.pgdata` folders looked at, in order (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("YIZHAN_PGROOT"):
        return [Path(env["YIZHAN_PGROOT"])]
    if env.get("YIZHAN_HOME"):
        return [Path(env["YIZHAN_HOME"]) / ".pgdata"]
    roots = [PACKAGE_ROOT / ".pgdata", (cwd or Path.cwd()) / ".pgdata"]
    return list(dict.fromkeys(p.resolve() for p in roots))


def _has_port_file(pgroot: Path) -> bool:
    try:
        return (pgroot / "port").is_file()
    except OSError:  # e.g. .pgdata owned by postgres, mode 700: not ours to read
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (postgres)
        return True
    return True


def _running_port(pgroot: Path) -> int | None:
    """The port of a live postmaster whose data folder is under `pgroot`, else None."""
    for pidfile in sorted(pgroot.glob("*/data/postmaster.pid")):
        try:
            lines = pidfile.read_text(encoding="utf-8").splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            continue
        if _alive(pid):
            return port
    return None


def discover(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Found:
    """The running private cluster, or NoDatabaseError saying why not."""
    roots = candidate_roots(env, cwd)
    pgroot = next((r for r in roots if _has_port_file(r)), None)
    if pgroot is None:
        where = " / ".join(str(r) for r in roots)
        raise NoDatabaseError(
            f"DATABASE_URL 未设置，{where} 中没有私有集群",
            f"DATABASE_URL is unset and {where} holds no private cluster",
        )
    try:
        port = int((pgroot / "port").read_text(encoding="utf-8").strip())
        password = (pgroot / "password").read_text(encoding="utf-8").strip()
    except (OSError, ValueError) as exc:
        raise NoDatabaseError(
            f"无法读取 {pgroot} 中的端口或口令文件（{type(exc).__name__}）",
            f"cannot read the port or password file in {pgroot} ({type(exc).__name__})",
        ) from exc
    if not password:
        raise NoDatabaseError(f"{pgroot}/password 为空", f"{pgroot}/password is empty")
    running = _running_port(pgroot)
    if running != port:
        raise NoDatabaseError(
            f"{pgroot} 中的私有集群没有在端口 {port} 上运行（不会连接该端口上的其他服务器）",
            f"the private cluster in {pgroot} is not running on port {port} (a server someone "
            "else started there is never used)",
        )
    url = f"postgresql+psycopg://yizhan:{quote(password, safe='')}@127.0.0.1:{port}/yizhan"
    return Found(pgroot, port, url)


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, userinfo = head.partition("//")
    return f"{scheme}//{userinfo.split(':', 1)[0]}:***@{tail}"
