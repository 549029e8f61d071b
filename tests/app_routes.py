"""Every route of the app, with the routers FastAPI (0.16x) wraps as `_IncludedRouter`
flattened: `app.routes` alone lists the wrappers, whose methods and paths are not the routes'."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            assert not prefix, "routers are included without an extra prefix"
            yield from flat_routes(inner.routes)
        else:
            yield route


def write_routes(app: Any, prefix: str = "/") -> set[tuple[str, str]]:
    """(method, path) of every POST/PUT/PATCH/DELETE route under `prefix`."""
    return {
        (m, r.path)
        for r in flat_routes(app.routes)
        for m in getattr(r, "methods", None) or set()
        if m in {"POST", "PUT", "PATCH", "DELETE"} and r.path.startswith(prefix)
    }
