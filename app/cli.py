"""`yizhan` command line: database, demo data, imports, serving."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy import text

from app.config import get_settings
from app.db import migrate
from app.db.engine import make_engine
from app.errors import DomainError

ROOT = Path(__file__).resolve().parents[1]
DEMO_FILE = ROOT / "geodata" / "wuhan_demo_stations.geojson"

cli = typer.Typer(
    help="yizhan 驿站 — union rest stations for outdoor workers", no_args_is_help=True
)
db_cli = typer.Typer(help="Database schema", no_args_is_help=True)
demo_cli = typer.Typer(help="Demo data", no_args_is_help=True)
stations_cli = typer.Typer(help="Stations", no_args_is_help=True)
hours_cli = typer.Typer(help="Opening hours", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(stations_cli, name="stations")
cli.add_typer(hours_cli, name="hours")
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: newest)."""
    migrate.upgrade(get_settings().database_url, revision)
    console.print(f"[green]database migrated to {revision}[/]")


def _import(path: Path) -> None:
    from app.stations.importer import import_file

    settings = get_settings()
    engine = make_engine(settings)
    try:
        with console.status(f"validating and importing {path.name}…"):
            n = import_file(engine, path, settings)
    except DomainError as exc:
        raise _fail(f"{exc.detail} — nothing was imported") from exc
    finally:
        engine.dispose()
    console.print(f"[green]imported {n} stations from {path.name}[/] (one transaction)")


@demo_cli.command("load")
def demo_load(path: Path = typer.Option(DEMO_FILE, help="Sample FeatureCollection")) -> None:
    """Load (or refresh) the Wuhan sample stations — sample data, not real stations."""
    _import(path)
    hours_refresh()


@stations_cli.command("import")
def stations_import(path: Path) -> None:
    """Import a GeoJSON FeatureCollection of stations: all of it, or nothing."""
    _import(path)


@hours_cli.command("refresh")
def hours_refresh() -> None:
    """Recompute every station's open intervals for a new window (run daily, e.g. from cron;
    the server also does it by itself)."""
    from rich.progress import Progress

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


@cli.command("serve")
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API and pages."""
    import uvicorn

    uvicorn.run("app.main:app", host=host, port=port)


def main() -> None:
    """Entry point of the `yizhan` console script."""
    cli()
