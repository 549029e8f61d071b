"""Leaflet for the map page, served from this server (CDNs are slow or blocked for many
users in China, and a courier's phone should not wait on a third host).

Leaflet's own dist files (BSD-2-Clause) are taken from the PyPI wheel `django-leaflet` 0.34.0,
which ships them under `leaflet/static/leaflet/`; the wheel is downloaded with pip into the
git-ignored `.cache/`, checked against its SHA-256, and only Leaflet's files are extracted.
Django is not installed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEAFLET_DIR = ROOT / ".cache" / "leaflet"
WHEEL = "django_leaflet-0.34.0-py3-none-any.whl"
WHEEL_SHA256 = "367f74c63709c1b466b740e0e7bd50cdc0d76f08cab2d6566af1559818d79cc2"
PREFIX = "leaflet/static/leaflet/"
FILES = ("leaflet.js", "leaflet.css")


def leaflet_ready(target: Path = LEAFLET_DIR) -> bool:
    """Whether the Leaflet files are in place."""
    return all((target / f).is_file() for f in FILES)


def ensure_leaflet(target: Path = LEAFLET_DIR) -> Path:
    """Fetch and extract Leaflet once; returns the folder served at /static/leaflet."""
    if leaflet_ready(target):
        return target
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
    return target
