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

Swagger UI (Apache-2.0) for /docs is the npm package `swagger-ui-dist` 5.35.0, SmartBear's
own distribution, fetched the same way (pinned tarball SHA-256): its bundle, CSS, icon and
licence files go to `.cache/swagger-ui/`, served at /static/swagger-ui. (PyPI's
`swagger-ui-bundle` is a third party's repackaging, last released in 2023.) ReDoc is not
served: one documentation UI is enough, and ReDoc injects `<style>` elements at run time,
which the pages' Content-Security-Policy refuses.
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
SWAGGER_UI_DIR = ROOT / ".cache" / "swagger-ui"
SWAGGER_UI_SPEC = "swagger-ui-dist@5.35.0"
SWAGGER_UI_TGZ = "swagger-ui-dist-5.35.0.tgz"
SWAGGER_UI_URL = "https://registry.npmjs.org/swagger-ui-dist/-/" + SWAGGER_UI_TGZ
SWAGGER_UI_SHA256 = "1b8e891893404ea4c3558b6a87e2a3e494e7eedba41168c2ece5800a391a6ea6"
SWAGGER_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
)


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


def _npm_tarball(spec: str, tgz: str, url: str, sha256: str) -> bytes:
    """A pinned npm package's registry tarball: `npm pack` when npm is installed (a
    configured registry mirror is used), else straight from the registry; SHA-256 checked."""
    with tempfile.TemporaryDirectory() as tmp:
        data = None
        npm = shutil.which("npm")
        if npm:
            done = subprocess.run(  # noqa: S603 (fixed argv: npm pack of a pinned name)
                [npm, "pack", "--silent", spec, "--pack-destination", tmp],
                check=False,
                capture_output=True,
            )
            if done.returncode == 0 and (Path(tmp) / tgz).is_file():
                data = (Path(tmp) / tgz).read_bytes()
        if data is None:
            assert url.startswith("https://registry.npmjs.org/")
            with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (pinned https URL)
                data = bytes(r.read())
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{tgz}: unexpected SHA-256 {digest}")
    return data


def _extract(data: bytes, prefix: str, names: tuple[str, ...], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for name in names:
            member = tf.extractfile(f"{prefix}{name}")
            assert member is not None
            (target / name).write_bytes(member.read())


def ensure_markercluster(target: Path = MARKERCLUSTER_DIR) -> Path:
    """Fetch Leaflet.markercluster's dist files once (npm tarball, SHA-256 checked)."""
    if markercluster_ready(target):
        return target
    data = _npm_tarball(
        MARKERCLUSTER_SPEC, MARKERCLUSTER_TGZ, MARKERCLUSTER_URL, MARKERCLUSTER_SHA256
    )
    _extract(data, "package/dist/", MARKERCLUSTER_FILES, target)
    return target


def swagger_ui_ready(target: Path = SWAGGER_UI_DIR) -> bool:
    """Whether Swagger UI's files are in place."""
    return all((target / f).is_file() for f in SWAGGER_UI_FILES)


def ensure_swagger_ui(target: Path = SWAGGER_UI_DIR) -> Path:
    """Fetch Swagger UI's bundle, CSS and icon for /docs once (npm tarball, SHA-256 checked),
    with its licence texts (Apache-2.0 asks for LICENSE and NOTICE to travel with it)."""
    if swagger_ui_ready(target):
        return target
    data = _npm_tarball(SWAGGER_UI_SPEC, SWAGGER_UI_TGZ, SWAGGER_UI_URL, SWAGGER_UI_SHA256)
    _extract(data, "package/", SWAGGER_UI_FILES, target)
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
