"""Fault test: a throwaway PostgreSQL cluster is restarted, then stopped and started again,
under a bounded load of reads and writes against a real server.

Promises checked: every answer is 2xx, 4xx or 503 (never another 5xx, never a dropped
connection); 503s carry Retry-After; every acknowledged write is there afterwards; the server
answers again within 5 s of the database coming back.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.factories import feature
from tests.servers import free_port, uvicorn_server, yizhan

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API = "/api/v1"


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin/pg_ctl") if p.is_file()),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


class Cluster:
    """A private PostgreSQL cluster in a temporary folder (trust auth, loopback only)."""

    def __init__(self, bindir: Path) -> None:
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="yizhan-outage-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def run(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.run(
            self.bin / "initdb", "-D", self.data, "-U", "yizhan", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip

    def start(self) -> None:
        self.run(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self.run(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.run(
            self.bin / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-m", "fast", "-w",
            "-t", "60", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "restart",
        )  # fmt: skip

    def createdb(self, name: str) -> str:
        self.run(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "yizhan", name)
        return f"postgresql+psycopg://yizhan@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = _pg_bin()
    if bindir is None:  # DATABASE_URL points at a server elsewhere and no local binaries
        pytest.skip("no PostgreSQL server binaries on this machine to run a throwaway cluster")
    c = Cluster(bindir)
    try:
        c.init()
        c.start()
        yield c
    finally:
        c.remove()


class Load:
    """Bounded load: a few client threads, each with its own connection, for a fixed time."""

    def __init__(self, base: str, station_ids: list[int]) -> None:
        self.base = base
        self.ids = station_ids
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: Counter[tuple[str, int | str]] = Counter()
        self.missing_retry_after = 0
        self.acked: list[int] = []
        self.phase = "up"
        self.during_outage: Counter[int | str] = Counter()
        self.errors: list[str] = []

    def _record(self, what: str, r: httpx.Response | Exception) -> None:
        status: int | str = r.status_code if isinstance(r, httpx.Response) else "dropped"
        with self.lock:
            self.answers[(what, status)] += 1
            if self.phase == "down":
                self.during_outage[status] += 1
            if isinstance(r, Exception):
                self.errors.append(f"{what}: {type(r).__name__}: {r}")
            elif status == 503 and "retry-after" not in r.headers:
                self.missing_retry_after += 1

    def writer(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            i = 0
            while not self.stop.is_set():
                i += 1
                ext = f"LOAD-{n}-{i}"
                try:
                    r = c.post(
                        f"{API}/stations", json=feature(ext, lon=114.3 + i * 1e-4), headers=AUTH
                    )
                except httpx.TransportError as exc:
                    self._record("create", exc)
                    continue
                self._record("create", r)
                if r.status_code == 201:
                    with self.lock:
                        self.acked.append(int(r.json()["id"]))
                time.sleep(0.01)

    def amenity_toggler(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as c:
            on = True
            while not self.stop.is_set():
                body = {"add": ["wifi"]} if on else {"remove": ["wifi"]}
                try:
                    r = c.post(f"{API}/stations/{self.ids[0]}/amenities", json=body, headers=AUTH)
                except httpx.TransportError as exc:
                    self._record("amenities", exc)
                    continue
                self._record("amenities", r)
                on = not on
                time.sleep(0.01)

    def reader(self, seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=self.base, timeout=30) as c:
            while not self.stop.is_set():
                kind = rnd.choice(("nearest", "station", "page", "list"))
                try:
                    if kind == "nearest":
                        r = c.get(f"{API}/stations/nearest", params={"lat": 30.58, "lon": 114.3})
                    elif kind == "station":
                        r = c.get(f"{API}/stations/{rnd.choice(self.ids)}")
                    elif kind == "page":
                        r = c.get("/", headers={"Accept": "text/html"})
                    else:
                        r = c.get(f"{API}/stations", params={"limit": 20})
                except httpx.TransportError as exc:
                    self._record(kind, exc)
                    continue
                self._record(kind, r)
                time.sleep(0.005)


def _first_ok(base: str, deadline_s: float) -> float | None:
    """Seconds until nearest and a write both succeed again, or None within the deadline."""
    t0 = time.monotonic()
    with httpx.Client(base_url=base, timeout=10) as c:
        while time.monotonic() - t0 < deadline_s:
            try:
                near = c.get(f"{API}/stations/nearest", params={"lat": 30.58, "lon": 114.3})
                ext = f"RECOVER-{time.monotonic_ns()}"
                made = c.post(f"{API}/stations", json=feature(ext), headers=AUTH)
                if near.status_code == 200 and made.status_code == 201:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    return None


def test_restart_and_outage_under_load(cluster: Cluster):
    url = cluster.createdb("outage")
    yizhan(url, "db", "upgrade")
    env = {"DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN, "YIZHAN_HOURS_AUTO_REFRESH": "false"}
    with uvicorn_server(env) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            ids = [
                c.post(
                    f"{API}/stations", json=feature(f"SEED-{i}", lon=114.3 + i * 1e-3), headers=AUTH
                ).json()["id"]
                for i in range(5)
            ]
        load = Load(base, ids)
        threads = [threading.Thread(target=load.writer, args=(n,)) for n in range(2)]
        threads += [threading.Thread(target=load.reader, args=(s,)) for s in range(3)]
        threads += [threading.Thread(target=load.amenity_toggler)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            cluster.restart()  # a fast restart: in-flight queries and COMMITs are cut off
            time.sleep(1.5)
            cluster.stop()
            load.phase = "down"  # from here until the start below, nothing can succeed
            time.sleep(2.0)  # a real outage: nothing listens
            load.phase = "back"
            cluster.start()
            recovery = _first_ok(base, deadline_s=5.0)
            time.sleep(1.0)
        finally:
            load.stop.set()
            for t in threads:
                t.join(timeout=60)

        statuses = Counter(s for (_, s), n in load.answers.items() for _ in range(n))
        assert not load.errors, load.errors[:5]
        assert statuses["dropped"] == 0
        bad = {s: n for s, n in statuses.items() if isinstance(s, int) and s >= 500 and s != 503}
        assert not bad, load.answers
        assert load.during_outage[503] > 0, load.during_outage  # the outage was seen, as 503
        assert set(load.during_outage) == {503}, load.during_outage
        assert load.missing_retry_after == 0
        assert statuses[201] > 0 and statuses[200] > 0
        assert recovery is not None, "no successful read and write within 5 s of the restart"

        with httpx.Client(base_url=base, timeout=30) as c:
            lost = [i for i in load.acked if c.get(f"{API}/stations/{i}").status_code != 200]
        assert lost == [], f"{len(lost)} of {len(load.acked)} acknowledged creates are gone"
        print(
            f"\noutage test: {sum(statuses.values())} answers {dict(statuses)}; "
            f"acknowledged creates {len(load.acked)}, lost {len(lost)}; "
            f"during outage {dict(load.during_outage)}; recovered in {recovery:.2f} s"
        )
