"""Leaflet for the map page, served from this server (CDNs are slow or blocked for many
users in China, and a courier's phone should not wait on a third host).

Leaflet's own dist files (BSD-2-Clause) are taken from the PyPI wheel `django-leaflet` 0.34.0,
which ships them under `leaflet/static/leaflet/`; the wheel is downloaded with pip into the
git-ignored `.cache/`, checked against its SHA-256, and only Leaflet's files are extracted.
Django is not installed.

Leaflet.markercluster (MIT, for the planner map's 10^4 stations) is the npm package
`leaflet.markercluster` 1.5.3: its registry tarball is fetched with `npm pack` when npm is
installed (so a configured registry mirror is used), otherwise straight from the npm registry,
checked against its SHA-256, and only `dist/` is extracted into `.cache/leaflet/markercluster/`,
which the existing /static/leaflet mount serves.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEAFLET_DIR = ROOT / ".cache" / "leaflet"
WHEEL = "django_leaflet-0.34.0-py3-none-any.whl"
WHEEL_SHA256 = "367f74c63709c1b466b740e0e7bd50cdc0d76f08cab2d6566af1559818d79cc2"
PREFIX = "leaflet/static/leaflet/"
FILES = ("leaflet.js", "leaflet.css")
MARKERCLUSTER_DIR = LEAFLET_DIR / "markercluster"
MARKERCLUSTER_SPEC = "leaflet.markercluster@1.5.3"
MARKERCLUSTER_TGZ = "leaflet.markercluster-1.5.3.tgz"
MARKERCLUSTER_URL = "https://registry.npmjs.org/leaflet.markercluster/-/" + MARKERCLUSTER_TGZ
MARKERCLUSTER_SHA256 = "fc6b0b1d00b6c708ae54e43ee4a11ac345e41660e19f0a570190bb35babb1a1c"
MARKERCLUSTER_FILES = ("leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css")


def leaflet_ready(target: Path = LEAFLET_DIR) -> bool:
    """Whether the Leaflet files are in place."""
    return all((target / f).is_file() for f in FILES)


def ensure_leaflet(target: Path = LEAFLET_DIR) -> Path:
    """Fetch and extract Leaflet (and Leaflet.markercluster into `markercluster/`) once;
    returns the folder served at /static/leaflet."""
    if not leaflet_ready(target):
        _fetch_leaflet(target)
    ensure_markercluster(target / "markercluster")
    return target


def markercluster_ready(target: Path = MARKERCLUSTER_DIR) -> bool:
    """Whether the Leaflet.markercluster files are in place."""
    return all((target / f).is_file() for f in MARKERCLUSTER_FILES)


def _markercluster_tarball(tmp: Path) -> bytes:
    npm = shutil.which("npm")
    if npm:
        done = subprocess.run(  # noqa: S603 (fixed argv: npm pack of a pinned name)
            [npm, "pack", "--silent", MARKERCLUSTER_SPEC, "--pack-destination", str(tmp)],
            check=False,
            capture_output=True,
        )
        if done.returncode == 0 and (tmp / MARKERCLUSTER_TGZ).is_file():
            return (tmp / MARKERCLUSTER_TGZ).read_bytes()
    with urllib.request.urlopen(MARKERCLUSTER_URL, timeout=60) as r:
        return bytes(r.read())


def ensure_markercluster(target: Path = MARKERCLUSTER_DIR) -> Path:
    """Fetch Leaflet.markercluster's dist files once (npm tarball, SHA-256 checked)."""
    if markercluster_ready(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        data = _markercluster_tarball(Path(tmp))
    digest = hashlib.sha256(data).hexdigest()
    if digest != MARKERCLUSTER_SHA256:
        raise RuntimeError(f"{MARKERCLUSTER_TGZ}: unexpected SHA-256 {digest}")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for name in MARKERCLUSTER_FILES:
            member = tf.extractfile(f"package/dist/{name}")
            assert member is not None
            (target / name).write_bytes(member.read())
    return target


def _fetch_leaflet(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(  # noqa: S603 (fixed argv: this interpreter's pip, a pinned name)
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "django-leaflet==0.34.0",
                "-d",
                tmp,
            ],
            check=True,
        )
        wheel = Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise RuntimeError(f"{WHEEL}: unexpected SHA-256 {digest}")
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if not name.startswith(PREFIX) or name.endswith((".map", "/")):
                    continue
                rel = name[len(PREFIX) :]
                if rel not in FILES and not rel.startswith("images/"):
                    continue
                out = target / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(name))
