"""`yizhan coverage run|map|suggest`: the planner's analysis from the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from app.cli.users import get_settings, make_engine
from app.errors import DomainError
from app.network.modes import Mode

if TYPE_CHECKING:
    from app.coverage import service

# The coverage engine (numpy, shapely, the network …) is imported inside the commands: every
# other command, and --help, starts without it.

coverage_cli = typer.Typer(
    help="Planner's view: 15-minute coverage, gaps, over-density, site suggestions",
    no_args_is_help=True,
)
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _compute(mode: Mode, minutes: int, resolution: int, weight: str) -> tuple[service.Run, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from app.coverage import service
    from app.network.service import NetworkState
    from app.network.travel import DEFAULT_CAR_KMH, TravelSettings

    settings = get_settings()
    engine = make_engine(settings)
    network = NetworkState(
        TravelSettings(
            walk_kmh=settings.walk_kmh,
            ebike_kmh=settings.ebike_kmh,
            max_off_network_m=settings.max_off_network_m,
            car_kmh_by_class={**DEFAULT_CAR_KMH, **settings.car_kmh},
        )
    )
    cov = service.CoverageEngine(network)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        params = service.make_params(
            mode=mode, minutes=minutes, resolution=resolution, weight=weight
        )
        with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("reading stations, districts and the road network", total=None)
            with engine.connect() as conn:
                inputs = cov.read_inputs(conn, params, time_zone=settings.time_zone)
            bar.update(task, description="building demand cells", total=1, completed=0)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=f"searching from {stage}", completed=done, total=total)

            run = cov.run_now(inputs, progress)
        with engine.begin() as conn:
            service.persist(conn, run)
    except DomainError as exc:
        raise _fail(exc.detail) from exc
    finally:
        cov.shutdown()
    return run, engine


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


@coverage_cli.command("run")
def coverage_run(
    mode: Mode = typer.Option(Mode.WALK, help="walk, ebike or car"),
    minutes: int = typer.Option(15, min=1, max=60, help="target minutes (service circle)"),
    resolution: int = typer.Option(9, help="H3 resolution 8, 9 or 10"),
    weight: str = typer.Option("road", help="road, area or an imported demand layer"),
    out: Path | None = typer.Option(None, help="write the full summary as JSON here"),
    csv_out: Path | None = typer.Option(None, "--csv", help="write the district table as CSV"),
) -> None:
    """Compute coverage and print the overall and per-district summary."""
    from rich.table import Table

    from app.coverage import extent
    from app.exchange import csvsafe

    run, engine = _compute(mode, minutes, resolution, weight)
    engine.dispose()
    body = run.summary()
    table = Table(title=f"{mode.value}, {minutes} min, {body['demand_unit']['en']}")
    heads = ("district", "km²", "in net", "cells", "stations")
    for col in (*heads, *[f"≤{b} min" for b in run.params.bands]):
        table.add_column(col, justify="right" if col != "district" else "left")
    rows = [*body["districts"], {"code": "", "name": "全部 all", **body["overall"]}]
    for r in rows:
        shares = [_pct(w["demand_share"]) for w in r["within"]]
        ext = r.get("extent") or {}  # the district's own area, and how much the network holds
        area = "—" if ext.get("district_area_km2") is None else f"{ext['district_area_km2']:,.0f}"
        share = ext.get("network_share")
        inside = "—" if share is None else extent.pct_text(share)
        if ext.get("status") in ("partial", "outside"):
            inside += f" {ext['status']}"
        cells = (str(r["cells"]), str(r["stations"]))
        table.add_row(f"{r['code']} {r['name']}", area, inside, *cells, *shares)
    Console().print(table)
    console.print(
        f"run {run.key} (id {run.run_id}): {run.grid.n_cells} cells, "
        f"{len(run.station_ids)} stations, {run.seconds:.2f} s; demand share within each band"
    )
    if out:
        out.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    if csv_out:
        csv_out.write_text(csvsafe.coverage_summary(body), encoding="utf-8", newline="")


@coverage_cli.command("map")
def coverage_map(
    out: Path = typer.Argument(..., help="HTML file to write (standalone folium map)"),
    mode: Mode = typer.Option(Mode.WALK),
    minutes: int = typer.Option(15, min=1, max=60),
    resolution: int = typer.Option(9),
    weight: str = typer.Option("road"),
    district: str | None = typer.Option(None, help="district code, e.g. 420106"),
    tiles: str = typer.Option("osm", help="osm (WGS-84) or amap (GCJ-02)"),
    lang: str = typer.Option("zh", help="zh or en"),
) -> None:
    """Write the coverage map (cells, gaps, over-density, districts) as one HTML file."""
    from app.web import maps

    run, engine = _compute(mode, minutes, resolution, weight)
    engine.dispose()
    m = maps.standalone_html(run, district=district, tiles=tiles, lang=lang)
    out.write_text(m, encoding="utf-8")
    console.print(f"[green]wrote {out}[/] ({out.stat().st_size / 1024:,.0f} KiB)")


def _read_sites(path: Path) -> list[service.SitePoint]:
    """Candidate sites from CSV (lon,lat[,name]) or a GeoJSON FeatureCollection of Points."""
    from app.coverage import service

    sites: list[service.SitePoint] = []
    if path.suffix.lower() in (".geojson", ".json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for i, f in enumerate(data.get("features", [])):
            g = f.get("geometry") or {}
            if g.get("type") != "Point":
                raise _fail(f"features[{i}].geometry: a Point is required")
            x, y = g["coordinates"][:2]
            name = (f.get("properties") or {}).get("name")
            sites.append(service.SitePoint(float(x), float(y), name))
    else:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                try:
                    sites.append(
                        service.SitePoint(float(row["lon"]), float(row["lat"]), row.get("name"))
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise _fail(f"rows[{i}]: lon and lat numbers are required") from exc
    return sites


@coverage_cli.command("suggest")
def coverage_suggest(
    k: int = typer.Option(5, "-k", min=1, help="sites to suggest (at most 50)"),
    mode: Mode = typer.Option(Mode.WALK),
    minutes: int = typer.Option(15, min=1, max=60),
    resolution: int = typer.Option(9),
    weight: str = typer.Option("road"),
    district: str | None = typer.Option(None),
    candidates: Path | None = typer.Option(
        None, help="planner's host sites (CSV lon,lat,name or GeoJSON points, WGS-84)"
    ),
    exact: bool = typer.Option(False, help="also solve exactly (HiGHS) and report the ratio"),
    out: Path | None = typer.Option(None, help="write the picks as GeoJSON"),
) -> None:
    """Suggest the next K sites that add the most covered demand (existing stations kept)."""
    from rich.table import Table

    from app.coverage import service

    if k > service.MAX_SUGGESTIONS:
        raise _fail(f"-k: at most {service.MAX_SUGGESTIONS} sites")
    sites = _read_sites(candidates) if candidates else None
    run, engine = _compute(mode, minutes, resolution, weight)
    engine.dispose()
    try:
        with console.status("choosing sites…"):
            result = service.suggest(run, k, district=district, sites=sites, compare_exact=exact)
    except DomainError as exc:
        raise _fail(exc.detail) from exc
    table = Table(title=f"next {k} sites ({result['candidates']['kind']})")
    for col in ("rank", "lon", "lat", "name", "gain", "covered after"):
        table.add_column(col)
    for p in result["picks"]:
        table.add_row(
            str(p["rank"]),
            f"{p['lon']:.6f}",
            f"{p['lat']:.6f}",
            p["name"] or p["h3"] or "",
            f"{p['gain']:,.0f} {run.unit['en']}",
            _pct(p["covered_share_after"]),
        )
    Console().print(table)
    if "exact" in result:
        ex = result["exact"]
        console.print(
            f"exact optimum ({ex['solver']}, optimal={ex['optimal']}): greedy reaches "
            f"{ex['greedy_ratio']:.4f} of it; exact took {ex['seconds']} s"
        )
    if out:
        feats = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
                "properties": {k2: v for k2, v in p.items() if k2 not in ("lon", "lat")},
            }
            for p in result["picks"]
        ]
        out.write_text(
            json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False),
            encoding="utf-8",
        )
