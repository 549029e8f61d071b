"""All-or-nothing import of station FeatureCollections (files and the demo sample)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine

from app.accounts.policy import SYSTEM, Actor
from app.config import Settings
from app.errors import InvalidInputError, validation_body
from app.stations import service
from app.stations.schemas import StationCollectionIn

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
