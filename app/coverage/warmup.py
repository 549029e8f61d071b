"""Warm the planner's default view after start-up, in the background.

Without it the first `/planner` page after a start pays for everything at once (2-3 s idle,
11 s under load): reading the live network and building the walking graph, starting the
compute process and sending it the network, the walk-15 run itself, storing its cells, the
summary and gaps the page shows. `warm_up` asks for exactly that run through the same engine
and cache the pages and the API use (so a request arriving meanwhile joins it, never
computes it twice), then derives what the default page shows and the reach step of the
default suggestions (`service.reach_cover`, kept with the run).

It never delays readiness (the app starts it as a task once serving) and never breaks
start-up: no network loaded, no database, a busy engine — it logs one line and stops.
`YIZHAN_COVERAGE_WARM_UP=false` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from app.coverage import service
from app.errors import DomainError

log = logging.getLogger("yizhan.coverage")

#: The run the planner page and `GET /api/v1/coverage/summary` show without parameters.
DEFAULT_VIEW: dict[str, Any] = {"mode": "walk", "minutes": 15, "resolution": 9, "weight": "road"}
#: How long to keep asking for the run while it computes (a loaded machine).
PATIENCE_S = 600.0


async def warm_up(
    coverage: service.CoverageEngine,
    db: service.UnitsOfWork,
    time_zone: str,
    *,
    suggest_k: int = 5,
    then: Callable[[service.Run], None] | None = None,
) -> dict[str, Any]:
    """Compute (or find) the default run and its page's derived data, then call `then(run)`
    (the app builds the page's map once: templates, close pairs …); what was done, with
    timings in seconds. Never raises: a failure is logged and reported as `status`."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"status": "ok", "params": DEFAULT_VIEW}
    try:
        params = service.make_params(**DEFAULT_VIEW)
        deadline = time.monotonic() + PATIENCE_S
        while True:
            found = await coverage.obtain(db, params, time_zone=time_zone)
            if isinstance(found, service.Run):
                run = found
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run was still computing after {PATIENCE_S:.0f} s")
            await asyncio.sleep(1.0)
        out["run_s"] = round(time.perf_counter() - t0, 3)

        def derive() -> None:
            run.summary()
            run.gaps(None)
            if suggest_k:
                service.suggest(run, suggest_k)
            if then is not None:
                then(run)

        t1 = time.perf_counter()
        with coverage.derived_slot():
            await to_thread.run_sync(derive)
        out["derived_s"] = round(time.perf_counter() - t1, 3)
        out["run_key"] = run.key
    except asyncio.CancelledError:
        raise
    except DomainError as exc:  # no network, no districts, busy …: nothing to warm yet
        out.update(status="skipped", reason=exc.detail)
    except Exception as exc:  # the database may be down; /readyz says so
        out.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    level = logging.WARNING if out["status"] == "failed" else logging.INFO
    log.log(level, "coverage warm-up %s", out)
    return out
