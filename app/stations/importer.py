"""All-or-nothing import of station FeatureCollections (files and the demo sample)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from app.accounts.policy import SYSTEM, Actor
from app.config import Settings
from app.errors import InvalidInputError, validation_body
from app.stations import exchange_service, service
from app.stations.schemas import StationCollectionIn, StationFeatureIn

MAX_FILE_BYTES = 200 * 1024 * 1024


def read_collection(path: Path) -> StationCollectionIn:
    """Parse and validate a whole file before anything is written; errors name the feature."""
    if not path.is_file():
        raise InvalidInputError(f"file: {path} does not exist", field="file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"file: {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"file: {path} is not UTF-8 JSON: {exc}", field="file") from exc
    try:
        return StationCollectionIn.model_validate(data)
    except ValidationError as exc:
        body = validation_body([dict(e) for e in exc.errors()])
        first = body["errors"][:5]
        more = len(body["errors"]) - len(first)
        lines = "; ".join(f"{e['field']}: {e['msg']}" for e in first)
        raise InvalidInputError(
            f"{path.name}: {lines}" + (f" (and {more} more)" if more else "")
        ) from exc


def import_file(engine: Engine, path: Path, settings: Settings, actor: Actor = SYSTEM) -> int:
    """Validate every feature, then upsert them all in one transaction (or none), as `actor`
    (the CLI's `--as USER`, else the system), each change audited with channel `import`."""
    collection = read_collection(path)
    with engine.begin() as conn:
        ctx = service.FeatureContext.build(settings, conn, None, "wgs84")
        return service.import_collection(conn, collection.features, ctx, actor)


def load_keeping_edits(
    conn: Connection, features: list[StationFeatureIn], ctx: service.FeatureContext, actor: Actor
) -> tuple[int, list[str]]:
    """Import `features` as `actor` (the demo loader), except those whose station a person
    changed since it was last loaded (edited, moved, renamed or deleted it: its newest
    revision is not the system's nor this loader's import): those are kept as they are.
    Returns (rows imported, the external ids kept)."""
    ids = [f.properties.external_id for f in features]
    kept = exchange_service.edited_since_loaded(conn, ids, actor)
    todo = [f for f in features if f.properties.external_id not in kept]
    return service.import_collection(conn, todo, ctx, actor), sorted(kept)


def load_sample(
    engine: Engine, path: Path, settings: Settings, actor: Actor = SYSTEM
) -> tuple[int, list[str]]:
    """`yizhan demo load`: the sample file, all or nothing, without clobbering edits."""
    collection = read_collection(path)
    with engine.begin() as conn:
        ctx = service.FeatureContext.build(settings, conn, None, "wgs84")
        return load_keeping_edits(conn, collection.features, ctx, actor)


#: Spreadsheet suffixes `yizhan stations import` reads through the template's columns.
SHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv")


def import_sheet(
    engine: Engine,
    path: Path,
    settings: Settings,
    actor: Actor,
    options: exchange_service.ImportOptions,
) -> exchange_service.Outcome:
    """`yizhan stations import FILE.xlsx|.csv`: the same preview and all-or-nothing apply as
    `POST /api/v1/stations/import` (audited with channel `import`)."""
    if not path.is_file():
        raise InvalidInputError(f"file: {path} does not exist", field="file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"file: {path} is larger than {MAX_FILE_BYTES} bytes")
    parsed = exchange_service.read_file(path.read_bytes(), None, path.name, options.coord_sys)
    with engine.begin() as conn:
        ctx = service.FeatureContext.build(settings, conn, None, "wgs84")
        # a refused file (errors, rows out of scope, undecided duplicates) wrote nothing
        return exchange_service.run_import(conn, actor, parsed, options, ctx)
