"""App factory: settings, engine in the lifespan, routers, error handlers, health probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import GZipMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import __version__
from app.accounts.credentials import LoginThrottle, Passwords
from app.accounts.routes import router as accounts_router
from app.api.admission import Admission
from app.api.handlers import install_error_handlers
from app.api.headers import SecurityHeaders
from app.api.limits import BodySizeLimit, QueryNulGuard
from app.api.methods import AllowedMethods
from app.api.openapi import Health, NotReady, Ready, body, install_openapi
from app.api.responses import JSONBytesResponse
from app.config import Settings, get_settings
from app.coverage.routes import router as coverage_router
from app.coverage.service import CoverageEngine, Run
from app.coverage.warmup import warm_up
from app.db.engine import Database, make_engine
from app.demand.routes import UPLOAD_METHOD as DEMAND_UPLOAD_METHOD
from app.demand.routes import UPLOAD_PATH_PREFIX as DEMAND_UPLOAD_PREFIX
from app.demand.routes import router as demand_router
from app.districts.routes import UPLOAD_METHOD, UPLOAD_PATH
from app.districts.routes import router as districts_router
from app.hours import store as hours_store
from app.inspections.routes import router as inspections_router
from app.network.routes import router as network_router
from app.network.service import NetworkState
from app.network.travel import DEFAULT_CAR_KMH, TravelSettings
from app.reports.routes import router as reports_router
from app.reports.service import ReportLimiter
from app.stations.routes import IMPORT_METHOD as STATIONS_IMPORT_METHOD
from app.stations.routes import IMPORT_PATH as STATIONS_IMPORT_PATH
from app.stations.routes import router as stations_router
from app.tiles.routes import router as tiles_router
from app.web.assets import LEAFLET_DIR, SWAGGER_UI_DIR
from app.web.basemaps import tile_origins
from app.web.docs import STATIC as DOCS_STATIC
from app.web.docs import router as docs_router
from app.web.manage import UPLOAD_PAGE_PATH as MANAGE_UPLOAD_PATH
from app.web.manage import router as manage_router
from app.web.maps import planner_map
from app.web.routes import TEMPLATES as PAGE_TEMPLATES
from app.web.routes import router as web_router

log = logging.getLogger("yizhan")


async def _keep_hours_fresh(engine: Engine, tz: str, every_s: float = 3600.0) -> None:
    """Keep the opening-hours window current: check at start-up, then hourly (a refresh
    happens about once a day). Runs in a worker thread; failures are logged, never fatal."""
    while True:
        try:
            n = await run_in_threadpool(hours_store.refresh_if_stale, engine, tz)
            if n is not None:
                log.info("opening-hours window refreshed for %d stations", n)
        except Exception:  # the database may be down; /readyz reports that
            log.warning("opening-hours refresh failed", exc_info=True)
        await asyncio.sleep(every_s)


def _warm_planner_map(run: Run) -> None:
    """Build the default planner page's map once and compile the page's template (a first
    build compiles folium's templates and derives close pairs: ~0.8 s of a first page
    otherwise; app/coverage/warmup.py)."""
    planner_map(run, tiles="osm", lang="zh")
    PAGE_TEMPLATES.get_template("planner.html")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; the database engine is opened and closed in the lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings, serving=True)
        app.state.engine = engine
        app.state.db = Database(engine)
        # Requests admitted to the database ≤ connections < worker threads: an admitted request
        # never waits for a connection, and always finds a thread (app/api/admission.py).
        connections = settings.pool_size + settings.pool_max_overflow
        threads = settings.worker_threads or connections + 8
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(
            threads, connections + 1
        )
        refresher = None
        if settings.hours_auto_refresh:
            refresher = asyncio.create_task(_keep_hours_fresh(engine, settings.time_zone))
        warming = None
        if settings.coverage_warm_up:
            # in the background: readiness never waits for it, and it never fails start-up
            warming = asyncio.create_task(
                warm_up(
                    app.state.coverage, app.state.db, settings.time_zone, then=_warm_planner_map
                )
            )
            app.state.warm_up = warming
        try:
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            if warming is not None:
                warming.cancel()
            app.state.coverage.shutdown()
            engine.dispose()

    app = FastAPI(
        title="yizhan 驿站",
        version=__version__,
        description=(
            "Union rest stations for outdoor workers (户外劳动者服务站点 / 工会驿站). "
            "GeoJSON (RFC 7946) in and out, WGS-84 coordinates."
        ),
        lifespan=lifespan,
        default_response_class=JSONBytesResponse,
        docs_url=None,  # /docs is app.web.docs: Swagger UI from our host, CSP-nonced
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.admission = Admission(
        settings.pool_size + settings.pool_max_overflow, settings.pool_timeout_s
    )
    app.state.network = NetworkState(
        TravelSettings(
            walk_kmh=settings.walk_kmh,
            ebike_kmh=settings.ebike_kmh,
            max_off_network_m=settings.max_off_network_m,
            car_kmh_by_class={**DEFAULT_CAR_KMH, **settings.car_kmh},
        )
    )
    app.state.coverage = CoverageEngine.from_settings(app.state.network, settings)
    app.state.passwords = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    app.state.login_throttle = LoginThrottle(
        settings.login_rate_limit_account,
        settings.login_rate_limit_address,
        settings.rate_limit_storage,
    )
    app.state.report_limiter = ReportLimiter(
        settings.report_rate_limit, settings.rate_limit_storage
    )
    app.state.checkin_limiter = ReportLimiter(
        settings.checkin_rate_limit, settings.rate_limit_storage, namespace="checkins"
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        large_bodies={
            (UPLOAD_METHOD, UPLOAD_PATH): settings.max_upload_bytes,
            (DEMAND_UPLOAD_METHOD, DEMAND_UPLOAD_PREFIX): settings.max_upload_bytes,
            (STATIONS_IMPORT_METHOD, STATIONS_IMPORT_PATH): settings.max_upload_bytes,
            ("POST", MANAGE_UPLOAD_PATH): settings.max_upload_bytes,
        },
    )
    # `?q=a%00b`: 422 naming q, before any route (the API and the manager pages)
    app.add_middleware(QueryNulGuard, prefixes=("/api/", "/manage"))
    if settings.trusted_proxies.strip():
        # Believe X-Forwarded-For only from the configured proxies (uvicorn's own middleware;
        # our launchers start uvicorn with proxy headers off, so nothing else rewrites them).
        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[h.strip() for h in settings.trusted_proxies.split(",") if h.strip()],
        )
    app.add_middleware(AllowedMethods, router=app.router)  # 405/OPTIONS name every method
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)  # 9: 4x CPU, -1%
    app.add_middleware(SecurityHeaders, img_hosts=tile_origins())  # CSP, nosniff: outermost
    install_error_handlers(app)
    app.include_router(stations_router)
    app.include_router(accounts_router)
    app.include_router(reports_router)
    app.include_router(inspections_router)
    app.include_router(network_router)
    app.include_router(demand_router)
    app.include_router(coverage_router)
    app.include_router(districts_router)
    app.include_router(tiles_router)
    app.include_router(web_router)
    app.include_router(manage_router)
    app.include_router(docs_router)
    # Leaflet, fetched into .cache/ by `yizhan web assets`; the map page says so when missing
    LEAFLET_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static/leaflet", StaticFiles(directory=LEAFLET_DIR), name="leaflet")
    SWAGGER_UI_DIR.mkdir(parents=True, exist_ok=True)
    app.mount(DOCS_STATIC, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")

    @app.get("/healthz", tags=["ops"], summary="The process is up", responses=body(Health))
    async def healthz() -> JSONBytesResponse:
        return JSONBytesResponse({"status": "ok"})

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="The database answers and is migrated",
        responses=body(Ready)
        | body(NotReady, status=503, description="The database does not answer"),
    )
    async def readyz() -> JSONBytesResponse:
        def probe() -> str | None:
            with app.state.db.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

        try:
            revision = await run_in_threadpool(probe)
        except Exception as exc:  # any failure means "not ready", reported, never a 500
            return JSONBytesResponse(
                {"status": "unavailable", "detail": f"database: {type(exc).__name__}"},
                status_code=503,
            )
        return JSONBytesResponse({"status": "ok", "database": "ok", "schema": revision})

    install_openapi(app)  # what /openapi.json documents is what the routes send
    return app


app = create_app()
