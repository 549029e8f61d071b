"""Spreadsheet import (dry run and apply), exports and templates of stations.

The whole file is read and validated before anything is written (`app/exchange`: per-row,
per-column errors); then each row is compared with the stored station of the same external_id
(new / changed with each field's old → new / unchanged), new rows are checked for likely
duplicates (another station within `DUPLICATE_RADIUS_M` with a similar name, or the same
external_id spelled differently), and the caller's rights are checked row by row. A dry run
returns that preview. Applying writes the new and changed rows in the caller's one
transaction through `service.import_collection` (policy per station, audited with channel
`import`) — or nothing: any row error is 422, a row outside the caller's scope 403, a likely
duplicate neither confirmed nor skipped 409, each with the preview.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from app.accounts import policy
from app.accounts.policy import Action, Actor, StationRef
from app.errors import InvalidInputError
from app.exchange import csvsafe, similar
from app.exchange import stations as sheet
from app.exchange import table as tables
from app.exchange.stations import Parsed, Record, RowError
from app.stations import queries, service
from app.stations.schemas import PointGeometry, StationFeatureIn, StationProperties

#: New rows within this many metres of a station with a similar name are likely duplicates.
DUPLICATE_RADIUS_M = 50.0
#: Positions closer than this (degrees, ~5 cm) are the same: a round trip through GCJ-02 or
#: BD-09 (a response in those systems, 7 decimals, converted back) is not a move.
SAME_POSITION_DEG = 5e-7
#: At most this many of each list (changed, new, duplicates, errors) in a preview.
MAX_LISTED = 2_000


@dataclass(frozen=True)
class ImportOptions:
    """What the caller asked: only preview, the default datum, rows to leave out, and
    whether likely duplicates are confirmed as distinct stations."""

    dry_run: bool = True
    coord_sys: str = "wgs84"
    skip: frozenset[str] = frozenset()
    confirm_duplicates: bool = False


def parse_skip(raw: str | None) -> frozenset[str]:
    """`skip=A-1,A-2` → the external ids (comma or whitespace separated)."""
    if not raw:
        return frozenset()
    return frozenset(p for p in re.split(r"[,\s，]+", raw) if p)


def read_file(data: bytes, media_type: str | None, filename: str | None, coord_sys: str) -> Parsed:
    """Read and validate a whole upload (XLSX, CSV or GeoJSON); file-level problems (not a
    workbook, unknown columns) raise InvalidInputError, row problems are in `errors`."""
    if not data.strip():
        raise InvalidInputError("file: empty upload (文件为空)", field="file")
    fmt = tables.detect_format(data, media_type, filename)
    if fmt == "geojson":
        try:
            doc = json.loads(tables.decode_text(data))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"file: not valid JSON: {exc.msg} at line {exc.lineno} (JSON 格式错误)",
                field="file",
            ) from exc
        except RecursionError as exc:
            raise InvalidInputError("file: JSON nested too deeply (JSON 嵌套过深)", "file") from exc
        return sheet.parse_geojson(doc, coord_sys)
    tbl = tables.read_xlsx(data) if fmt == "xlsx" else tables.read_csv(data)
    return sheet.parse_table(tbl.header, tbl.rows, fmt, coord_sys)


# --- comparing with what is stored -----------------------------------------------------------


def _stored_props(row: RowMapping) -> dict[str, Any]:
    props = {k: row[k] for k in sheet.PROPERTY_KEYS}
    props["amenities"] = list(row["amenities"] or [])
    return props


def diff(record: Record, row: RowMapping) -> dict[str, list[Any]]:
    """Each field the row changes: [stored, new]; the position as `location` [lon, lat]."""
    old = _stored_props(row)
    out: dict[str, list[Any]] = {}
    for key in sheet.PROPERTY_KEYS:
        if old[key] != record.properties[key]:
            out[key] = [old[key], record.properties[key]]
    position = (
        round(float(row["lon"]), sheet.POSITION_DECIMALS),
        round(float(row["lat"]), sheet.POSITION_DECIMALS),
    )
    moved = max(abs(position[0] - record.lon), abs(position[1] - record.lat))
    if moved > SAME_POSITION_DEG:
        out["location"] = [list(position), [record.lon, record.lat]]
    return out


@dataclass
class Plan:
    """What applying a file would do, and what stands in the way."""

    parsed: Parsed
    options: ImportOptions
    new: list[Record] = field(default_factory=list)
    changed: list[tuple[Record, RowMapping, dict[str, list[Any]]]] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    refused: list[RowError] = field(default_factory=list)
    lifecycle: list[RowError] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[RowError]:
        return sorted(self.parsed.errors + self.lifecycle, key=lambda e: e.row)

    @property
    def unresolved(self) -> list[dict[str, Any]]:
        return [d for d in self.duplicates if d["resolution"] is None]

    def writes(self) -> list[Record]:
        """The records applying writes, in file order."""
        recs = self.new + [c[0] for c in self.changed]
        return sorted(recs, key=lambda r: r.row)

    def body(self) -> dict[str, Any]:
        geo = self.parsed.format == "geojson"
        return {
            "dry_run": self.options.dry_run,
            "applied": False,
            "format": self.parsed.format,
            "coord_sys": self.options.coord_sys,
            "rows": self.parsed.rows,
            "counts": {
                "new": len(self.new),
                "changed": len(self.changed),
                "unchanged": self.unchanged,
                "skipped": len(self.skipped),
                "errors": len(self.errors),
                "refused": len(self.refused),
                "duplicates": len(self.duplicates),
                "unresolved_duplicates": len(self.unresolved),
            },
            "errors": [e.as_dict() for e in self.errors[:MAX_LISTED]],
            "refused": [e.as_dict() for e in self.refused[:MAX_LISTED]],
            "duplicates": self.duplicates[:MAX_LISTED],
            "new": [
                {"row": r.row, "external_id": r.external_id, "name": r.properties["name"]}
                for r in self.new[:MAX_LISTED]
            ],
            "changed": [
                {
                    "row": r.row,
                    "external_id": r.external_id,
                    "id": row["id"],
                    "name": r.properties["name"],
                    "changes": changes,
                }
                for r, row, changes in self.changed[:MAX_LISTED]
            ],
            "skipped": sorted(self.skipped),
            "row_label": "feature" if geo else "row",
        }


def _lifecycle_errors(record: Record, row: RowMapping | None, geo: bool) -> list[RowError]:
    """Status changes a spreadsheet cannot make: marking a duplicate (it needs the station
    that stays), leaving duplicate, or reopening a station closed until a set time."""
    new = record.properties["status"]
    old = row["status"] if row is not None else None
    if new == "duplicate" and old != "duplicate":
        msg = (
            "a duplicate is marked in the station editor, naming the station that stays "
            "(“重复”须在站点编辑页设置，并指明保留的站点)"
        )
        return [RowError(record.row, "status", msg, geo)]
    if row is not None and old == "duplicate" and new != "duplicate":
        msg = (
            f"station {row['id']} is a duplicate of station {row['duplicate_of']}; undo that "
            "in the station editor (重复站点须在站点编辑页恢复)"
        )
        return [RowError(record.row, "status", msg, geo)]
    if row is not None and row["closed_until"] is not None and new != "temporarily_closed":
        msg = (
            f"station {row['id']} is closed until {row['closed_until'].isoformat()}; change "
            "that in the station editor (暂停开放有截止时间，请在站点编辑页修改)"
        )
        return [RowError(record.row, "status", msg, geo)]
    return []


#: Station fields a spreadsheet does not carry, kept from the stored station on an update
#: while its status stays (a new status drops the reason given for the old one).
LIFECYCLE_FIELDS = ("closed_until", "status_reason", "duplicate_of")


def _carry_lifecycle(record: Record, row: RowMapping) -> None:
    same_status = record.properties["status"] == row["status"]
    for key in LIFECYCLE_FIELDS:
        if key in record.properties and key in row:
            record.properties[key] = row[key] if same_status else None


def _refusals(actor: Actor, record: Record, row: RowMapping | None, geo: bool) -> list[RowError]:
    """The caller may not import this row: an existing station outside their scope, or a
    district outside it (new stations and moves)."""
    out = []
    if row is not None and not policy.can(
        actor, Action.STATION_IMPORT, StationRef(int(row["id"]), row["district_code"])
    ):
        out.append(
            RowError(
                record.row,
                "external_id",
                f"station {row['id']} ({row['district_code'] or 'no district'}) is outside "
                "your scope (该站点不在您的管辖范围内)",
                geo,
            )
        )
    elif not policy.can(
        actor, Action.STATION_IMPORT, StationRef(None, record.properties["district_code"])
    ):
        out.append(
            RowError(
                record.row,
                "district_code",
                f"{record.properties['district_code'] or 'empty'} is outside your districts "
                f"({', '.join(actor.districts) or '-'}) (超出您的管辖范围)",
                geo,
            )
        )
    return out


def _fold_id(external_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", external_id).lower()


def _duplicates(
    conn: Connection, new: list[Record], options: ImportOptions
) -> list[dict[str, Any]]:
    """Likely duplicates among the new rows: a stored station within the radius with a
    similar name, a stored station whose external_id differs only in case or punctuation, or
    an earlier new row of the same file within the radius with a similar name."""
    found: dict[int, dict[str, Any]] = {}

    def add(rec: Record, reason: str, other: dict[str, Any]) -> None:
        if rec.row in found:
            found[rec.row]["matches"].append({"reason": reason, **other})
            return
        resolution = None
        if rec.external_id in options.skip:
            resolution = "skip"
        elif options.confirm_duplicates:
            resolution = "confirmed"
        found[rec.row] = {
            "row": rec.row,
            "external_id": rec.external_id,
            "name": rec.properties["name"],
            "resolution": resolution,
            "matches": [{"reason": reason, **other}],
        }

    points = [(i, r.lon, r.lat) for i, r in enumerate(new)]
    for hit in queries.stations_near(conn, points, DUPLICATE_RADIUS_M):
        rec = new[int(hit["key"])]
        if similar.similar(rec.properties["name"], hit["name"]):
            add(
                rec,
                "nearby",
                {
                    "station_id": hit["id"],
                    "external_id": hit["external_id"],
                    "name": hit["name"],
                    "distance_m": round(float(hit["distance_m"]), 1),
                    "similarity": round(similar.similarity(rec.properties["name"], hit["name"]), 2),
                },
            )
    folded: dict[str, list[Record]] = {}
    for rec in new:
        folded.setdefault(_fold_id(rec.external_id), []).append(rec)
    for hit in queries.stations_by_folded_external_id(conn, [k for k in folded if k]):
        for rec in folded.get(hit["folded"], []):
            if hit["external_id"] != rec.external_id:
                add(
                    rec,
                    "external_id",
                    {
                        "station_id": hit["id"],
                        "external_id": hit["external_id"],
                        "name": hit["name"],
                    },
                )
    for i, j, dist in similar.close_pairs([(r.lon, r.lat) for r in new], DUPLICATE_RADIUS_M):
        a, b = new[i], new[j]
        if similar.similar(a.properties["name"], b.properties["name"]):
            later, earlier = (b, a) if b.row > a.row else (a, b)
            add(
                later,
                "same_file",
                {
                    "row": earlier.row,
                    "external_id": earlier.external_id,
                    "name": earlier.properties["name"],
                    "distance_m": round(dist, 1),
                    "similarity": round(
                        similar.similarity(a.properties["name"], b.properties["name"]), 2
                    ),
                },
            )
    return [found[k] for k in sorted(found)]


def plan(
    conn: Connection, actor: Actor, parsed: Parsed, options: ImportOptions, lock: bool = False
) -> Plan:
    """Compare every valid record with the stored stations (locked when `lock`), check the
    caller's rights and look for likely duplicates: the preview, without writing."""
    geo = parsed.format == "geojson"
    result = Plan(parsed=parsed, options=options)
    records = [r for r in parsed.records if r.external_id not in options.skip]
    result.skipped = sorted({r.external_id for r in parsed.records} & options.skip)
    stored = queries.exchange_rows_by_external_id(conn, [r.external_id for r in records], lock=lock)
    # the district of each row is the outline at its position (the given code outside them),
    # as applying will store it: the preview, the diff and the scope check agree with it
    districts = service.resolve_districts(
        conn, [(r.lon, r.lat, r.properties["district_code"]) for r in records]
    )
    for rec, district in zip(records, districts, strict=True):
        rec.properties["district_code"] = district
    for rec in records:
        row = stored.get(rec.external_id)
        if row is not None:
            changes = diff(rec, row)
            if not changes:
                result.unchanged += 1
                continue
            result.changed.append((rec, row, changes))
            _carry_lifecycle(rec, row)
        else:
            result.new.append(rec)
        result.lifecycle += _lifecycle_errors(rec, row, geo)
        result.refused += _refusals(actor, rec, row, geo)
    # every new row is looked at, skipped ones too, so that skipping is the answer to a match
    skipped_new = [
        r for r in parsed.records if r.external_id in options.skip and r.external_id not in stored
    ]
    if skipped_new:
        stored_skipped = queries.exchange_rows_by_external_id(
            conn, [r.external_id for r in skipped_new]
        )
        skipped_new = [r for r in skipped_new if r.external_id not in stored_skipped]
    candidates = sorted(result.new + skipped_new, key=lambda r: r.row)
    result.duplicates = _duplicates(conn, candidates, options)
    return result


def feature_of(rec: Record) -> StationFeatureIn:
    # already validated by StationProperties in app.exchange.stations
    return StationFeatureIn.model_construct(
        type="Feature",
        geometry=PointGeometry.model_construct(type="Point", coordinates=[rec.lon, rec.lat]),
        properties=StationProperties.model_construct(**rec.properties),
    )


def _first(errors: Iterable[RowError]) -> tuple[str, str]:
    items = list(errors)
    first = items[0].as_dict()
    more = f" (and {len(items) - 1} more; 另有 {len(items) - 1} 处)" if len(items) > 1 else ""
    return f"{first['en']} — {first['zh']}{more}", f"rows[{first['row']}].{first['column']}"


@dataclass
class Outcome:
    """The HTTP status of an import call and its body (a preview, or an error with one)."""

    status: int
    body: dict[str, Any]


def run_import(
    conn: Connection,
    actor: Actor,
    parsed: Parsed,
    options: ImportOptions,
    ctx: service.FeatureContext,
) -> Outcome:
    """Preview (dry run), or apply everything or nothing."""
    result = plan(conn, actor, parsed, options, lock=not options.dry_run)
    preview = result.body()
    if options.dry_run:
        return Outcome(200, preview)
    if result.errors:
        detail, where = _first(result.errors)
        return Outcome(422, {"detail": detail, "field": where, "preview": preview})
    if result.refused:
        detail, where = _first(result.refused)
        return Outcome(403, {"detail": detail, "field": where, "preview": preview})
    if result.unresolved:
        d = result.unresolved[0]
        detail = (
            f"row {d['row']}, external_id: {d['external_id']!r} looks like a station that "
            "exists; confirm with confirm_duplicates=true or leave it out with skip="
            f"{d['external_id']} (第 {d['row']} 行疑似重复站点：请确认或跳过)"
        )
        if len(result.unresolved) > 1:
            detail += f" (and {len(result.unresolved) - 1} more)"
        return Outcome(
            409, {"detail": detail, "field": f"rows[{d['row']}].external_id", "preview": preview}
        )
    writes = result.writes()
    if writes:
        service.import_collection(conn, [feature_of(r) for r in writes], ctx, actor, "import")
    return Outcome(200, {**preview, "applied": True, "written": len(writes)})


def check_may_import(actor: Actor) -> None:
    """403 before a byte of the upload is read unless the caller may import at all (admins;
    district admins — each row is then checked against their districts)."""
    if actor.is_admin:
        return
    if any(policy.can(actor, Action.STATION_IMPORT, StationRef(None, d)) for d in actor.districts):
        return
    policy.check(actor, Action.STATION_IMPORT)


# --- exports and templates -------------------------------------------------------------------

EXPORT_NAME = "stations"


def template_xlsx() -> bytes:
    """The empty template: the 站点 sheet with drop-downs, the 说明 sheet explaining columns."""
    return tables.write_xlsx(
        [
            (sheet.DATA_SHEET, sheet.HEADER, []),
            (sheet.HELP_SHEET, sheet.HELP_HEADER, sheet.help_rows()),
        ],
        widths=sheet.WIDTHS,
        validations=sheet.validations(),
    )


def template_csv() -> str:
    """The template's header line (UTF-8 with BOM, for Excel and WPS)."""
    return csvsafe.write_rows([], header=sheet.HEADER)


def export_rows(conn: Connection, actor: Actor) -> list[RowMapping]:
    """The stations the caller may edit (admins: all), scoped in SQL."""
    return queries.exchange_rows(conn, policy.station_scope(actor))


def export_xlsx(rows: list[RowMapping]) -> bytes:
    return tables.write_xlsx(
        [
            (sheet.DATA_SHEET, sheet.HEADER, (sheet.station_row(r) for r in rows)),
            (sheet.HELP_SHEET, sheet.HELP_HEADER, sheet.help_rows()),
        ],
        widths=sheet.WIDTHS,
        validations=sheet.validations(),
        validation_rows=max(10_000, len(rows) + 1_000),
    )


def export_csv(rows: list[RowMapping]) -> str:
    return csvsafe.write_rows((sheet.station_row(r) for r in rows), header=sheet.HEADER)


def export_geojson(rows: list[RowMapping]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "coord_sys": "wgs84",
        "features": [sheet.station_feature(r) for r in rows],
    }


# --- the demo loader -------------------------------------------------------------------------


def edited_since_loaded(conn: Connection, external_ids: list[str], loader: Actor) -> set[str]:
    """The external ids (of a file about to be re-loaded) whose station someone other than
    `loader` changed last (edited, moved, renamed or deleted it since the last load)."""
    return queries.edited_by_others(conn, external_ids, loader.kind, loader.name)
