"""Typed dependencies: what a route needs from the app, declared in its signature.

The getters are `async` so that FastAPI calls them on the event loop (a sync dependency costs
a worker-thread hop each).

Routes never read `request.app.state` themselves; they ask for `SettingsDep`, `DbDep`,
`NetworkDep`, `CoverageDep`, `ReportLimiterDep` or a connection (`ConnDep`). The accounts
issue hangs the current user here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Connection

from app.api.admission import Admission
from app.config import Settings
from app.coverage.service import CoverageEngine
from app.db.engine import SAFE_METHODS, Database
from app.network.service import NetworkState
from app.reports.service import ReportLimiter


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[Database]:
    """The database, once this request is admitted (see app/api/admission.py): a route that
    declares `DbDep` or `ConnDep` holds one admission slot until its function returns."""
    admission: Admission = request.app.state.admission
    async with admission.slot():
        yield request.app.state.db


async def get_network(request: Request) -> NetworkState:
    network: NetworkState = request.app.state.network
    return network


async def get_coverage(request: Request) -> CoverageEngine:
    coverage: CoverageEngine = request.app.state.coverage
    return coverage


async def get_report_limiter(request: Request) -> ReportLimiter:
    limiter: ReportLimiter = request.app.state.report_limiter
    return limiter


async def get_checkin_limiter(request: Request) -> ReportLimiter:
    limiter: ReportLimiter = request.app.state.checkin_limiter
    return limiter


DbDep = Annotated[Database, Depends(get_db, scope="function")]


def get_conn(request: Request, db: DbDep) -> Iterator[Connection]:
    """A connection for the request: a read unit for safe methods, else a write unit.

    Declared with `scope="function"`, so its exit (the COMMIT of a write) runs when the route
    function returns and *before* any byte of the response is sent: a COMMIT that fails
    becomes an error response (503/409/422), never an acknowledged 2xx."""
    unit = db.read() if request.method in SAFE_METHODS else db.write()
    with unit as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
NetworkDep = Annotated[NetworkState, Depends(get_network)]
CoverageDep = Annotated[CoverageEngine, Depends(get_coverage)]
ReportLimiterDep = Annotated[ReportLimiter, Depends(get_report_limiter)]
CheckinLimiterDep = Annotated[ReportLimiter, Depends(get_checkin_limiter)]
ConnDep = Annotated[Connection, Depends(get_conn, scope="function")]
