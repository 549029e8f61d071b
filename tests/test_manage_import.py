"""The spreadsheet pages under /manage over HTTP (TestClient, real PostGIS): uploading a file
for a preview (row/column errors, counts, changed fields, likely duplicates) that writes
nothing, applying exactly the previewed file all-or-nothing with revisions of channel
`import` by the signed-in user, CSRF and role refusals, the duplicate choices, expiry and a
preview gone stale, exports of the stations in scope and the stale call list."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time

import coordTransform
import openpyxl
import pytest
from sqlalchemy import text

from app.accounts.credentials import Passwords
from app.web import manage
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user
from tests.test_manage_pages import PASSWORD, signed_in
from tests.test_spreadsheets import HEADER, csv_bytes, row, xlsx_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def password_hash() -> str:
    return Passwords(1, 1024, 1).hash(PASSWORD)


def _station(client, ext: str, **props) -> int:
    r = client.post("/api/v1/stations", json=feature(ext, **props), headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def people(client, conn, password_hash):
    """A Jianghan (420103) station with a manager, a Wuchang (420106) one, a district admin
    of Jianghan and an admin."""
    a = _station(client, "IMP-A", name="江汉路驿站", lon=114.2800, lat=30.5800)
    c = _station(client, "IMP-C", name="武昌驿站", district_code="420106", lon=114.31, lat=30.55)
    return {
        "a": a,
        "c": c,
        "manager": make_user(
            conn, "imp-mgr", "manager", stations=(a,), password_hash=password_hash
        ),
        "jh": make_user(
            conn, "imp-jh", "district_admin", districts=("420103",), password_hash=password_hash
        ),
        "admin": make_user(conn, "imp-admin", "admin", password_hash=password_hash),
    }


def _count(conn, prefix: str) -> int:
    return conn.execute(
        text("SELECT count(*) FROM stations WHERE external_id LIKE :p"), {"p": prefix + "%"}
    ).scalar_one()


def _preview(client, csrf: str, data: bytes, name: str = "stations.csv", **fields):
    return client.post(
        "/manage/import",
        data={"csrf": csrf, **fields},
        files={"file": (name, data)},
        follow_redirects=False,
    )


def _upload_id(html: str) -> str:
    m = re.search(r'name="upload" value="([^"]+)"', html)
    assert m, "no apply form on the page"
    return m.group(1)


def _apply(client, csrf: str, upload: str, **choices):
    return client.post(
        "/manage/import/apply",
        data={"csrf": csrf, "upload": upload, **choices},
        follow_redirects=False,
    )


def _count_badge(html: str, kind: str) -> int:
    m = re.search(rf'class="badge[^"]*count-{kind}">[^<]*<b>(\d+)</b>', html)
    assert m, f"no {kind} count"
    return int(m.group(1))


# --- who may ---------------------------------------------------------------------------------


def test_managers_get_the_403_page_and_no_import_link(client, people):
    csrf = signed_in(client, people["manager"])
    home = client.get("/manage")
    assert home.status_code == 200 and "/manage/import" not in home.text
    assert "/manage/stale.csv" not in home.text  # the stale list is for district admins
    r = client.get("/manage/import")
    assert r.status_code == 403 and 'id="problem"' in r.text
    r = _preview(client, csrf, csv_bytes([row("IMP-M1")]))
    assert r.status_code == 403 and 'id="problem"' in r.text
    assert client.get("/manage/stale.csv").status_code == 403


def test_district_admin_sees_the_upload_form_templates_and_exports(client, people):
    signed_in(client, people["jh"])
    home = client.get("/manage")
    assert 'href="/manage/import"' in home.text and 'href="/manage/stale.csv"' in home.text
    assert 'href="/manage/export.xlsx"' in home.text
    page = client.get("/manage/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text and 'name="csrf"' in page.text
    for href in (
        "/api/v1/stations/template.xlsx",
        "/api/v1/stations/template.csv",
        "/manage/export.csv",
        "/manage/export.geojson",
    ):
        assert f'href="{href}"' in page.text
    assert 'value="gcj02"' in page.text and 'value="bd09"' in page.text
    en = client.get("/manage/import?lang=en")
    assert "Spreadsheet import and export" in en.text


def test_pages_need_a_session(client, people):
    for path in ("/manage/import", "/manage/export.csv", "/manage/stale.csv"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/manage/login")


# --- preview ---------------------------------------------------------------------------------


def test_preview_shows_row_and_column_errors_and_writes_nothing(client, conn, people):
    csrf = signed_in(client, people["jh"])
    data = csv_bytes(
        [
            row("IMP-P1", name="花楼街驿站一", lon=114.2875),
            row("IMP-P2", name="花楼街驿站二", lon=114.2975, 开放时间="每天很早到很晚"),
        ]
    )
    r = _preview(client, csrf, data)
    assert r.status_code == 200, r.text
    # the header is line 1: the second data row is line 3 of the file
    assert "第 3 行 开放时间:" in r.text
    assert _count_badge(r.text, "errors") == 1
    assert _count_badge(r.text, "new") == 1
    assert 'id="apply-form"' not in r.text and 'id="cannot-apply"' in r.text
    assert _count(conn, "IMP-P") == 0
    r_en = client.post(
        "/manage/import?lang=en",
        data={"csrf": csrf},
        files={"file": ("s.csv", data)},
    )
    assert "row 3, opening_hours:" in r_en.text


def test_preview_lists_each_changed_field_old_and_new(client, conn, people):
    csrf = signed_in(client, people["jh"])
    # the stored station IMP-A as exported, with its phone changed
    export = client.get("/manage/export.csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    mine = next(r for r in rows if r["编号"] == "IMP-A")
    old_phone = mine["电话"]
    mine["电话"] = "027-11112222"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerow(mine)
    r = _preview(client, csrf, buf.getvalue().encode("utf-8-sig"))
    assert r.status_code == 200, r.text
    assert _count_badge(r.text, "changed") == 1 and _count_badge(r.text, "new") == 0
    change = re.search(r'<tr class="change" data-row="2">.*?</tr>', r.text, re.S)
    assert change and "电话" in change.group(0)
    assert old_phone in change.group(0) and "027-11112222" in change.group(0)
    phone = conn.execute(
        text("SELECT phone FROM stations WHERE id = :i"), {"i": people["a"]}
    ).scalar_one()
    assert phone == (old_phone or None)


def test_file_level_problem_is_a_422_page(client, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, b"\x00\x01 not a table", name="x.xlsx")
    assert r.status_code == 422 and 'id="form-error"' in r.text
    r = client.post("/manage/import", data={"csrf": csrf}, files={"file": ("e.csv", b"")})
    assert r.status_code == 422


# --- apply -----------------------------------------------------------------------------------


def test_apply_of_a_good_xlsx_writes_every_row_audited_as_import_by_the_user(client, conn, people):
    csrf = signed_in(client, people["jh"])
    data = xlsx_bytes(
        [
            row("IMP-X1", name="前进一路驿站", lon=114.2700, lat=30.5900),
            row("IMP-X2", name="民意四路驿站", lon=114.2750, lat=30.5950),
            row("IMP-X3", name="新华路驿站", lon=114.2650, lat=30.6000),
        ]
    )
    r = _preview(client, csrf, data, name="stations.xlsx")
    assert r.status_code == 200, r.text
    assert _count_badge(r.text, "new") == 3
    assert _count(conn, "IMP-X") == 0  # the preview wrote nothing
    done = _apply(client, csrf, _upload_id(r.text))
    assert done.status_code == 200, done.text
    assert 'id="done"' in done.text and "新建 3 个" in done.text
    assert 'href="/manage"' in done.text
    revs = conn.execute(
        text(
            "SELECT s.external_id, r.channel, r.actor_kind, r.actor_id, r.actor_name "
            "FROM station_revisions r JOIN stations s ON s.id = r.station_id "
            "WHERE s.external_id LIKE 'IMP-X%' ORDER BY s.external_id"
        )
    ).all()
    assert [r[0] for r in revs] == ["IMP-X1", "IMP-X2", "IMP-X3"]
    for _, channel, kind, actor_id, name in revs:
        assert (channel, kind, actor_id, name) == ("import", "user", people["jh"].id, "imp-jh")
    # applied once: the upload is gone, a second apply changes nothing
    again = _apply(client, csrf, _upload_id(r.text))
    assert again.status_code == 410 and _count(conn, "IMP-X") == 3


def test_forged_apply_without_csrf_is_refused_and_writes_nothing(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, csv_bytes([row("IMP-F1", name="汉正街驿站", lon=114.27)]))
    upload = _upload_id(r.text)
    forged = client.post("/manage/import/apply", data={"upload": upload})
    assert forged.status_code == 403 and 'id="problem"' in forged.text
    wrong = client.post("/manage/import/apply", data={"upload": upload, "csrf": "x" * 64})
    assert wrong.status_code == 403
    no_csrf_upload = client.post(
        "/manage/import", files={"file": ("s.csv", csv_bytes([row("IMP-F2")]))}
    )
    assert no_csrf_upload.status_code == 403
    assert _count(conn, "IMP-F") == 0
    # the genuine form still works afterwards
    assert _apply(client, csrf, upload).status_code == 200 and _count(conn, "IMP-F") == 1


def test_an_upload_belongs_to_its_session(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, csv_bytes([row("IMP-S1", name="单洞门驿站", lon=114.27)]))
    upload = _upload_id(r.text)
    client.cookies.clear()
    other = signed_in(client, people["admin"])
    stolen = _apply(client, other, upload)
    assert stolen.status_code == 410 and _count(conn, "IMP-S") == 0
    assert _apply(client, other, "../../etc/passwd").status_code == 410


def test_an_expired_upload_is_refused(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, csv_bytes([row("IMP-E1", name="大智路驿站", lon=114.27)]))
    upload = _upload_id(r.text)
    old = time.time() - manage.IMPORT_TTL_S - 60
    for path in manage._upload_dir().glob(f"*-{upload}.*"):
        os.utime(path, (old, old))
    expired = _apply(client, csrf, upload)
    assert expired.status_code == 410 and "已过期" in expired.text
    assert _count(conn, "IMP-E") == 0


def test_rows_outside_the_district_are_refused(client, conn, people):
    csrf = signed_in(client, people["jh"])
    data = csv_bytes(
        [row("IMP-O1", name="积玉桥驿站", lon=114.31, lat=30.56, 行政区划代码="420106")]
    )
    r = _preview(client, csrf, data)
    assert r.status_code == 200 and _count_badge(r.text, "refused") == 1
    assert "超出您的管辖范围" in r.text and 'id="apply-form"' not in r.text
    assert _count(conn, "IMP-O") == 0


def test_a_preview_gone_stale_is_shown_again_and_nothing_written(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, csv_bytes([row("IMP-G1", name="黄石路驿站", lon=114.27)]))
    upload = _upload_id(r.text)
    # someone creates the same station meanwhile: the previewed "new" is now "changed"
    _station(client, "IMP-G1", name="黄石路驿站（旧）", lon=114.27, lat=30.5825)
    stale = _apply(client, csrf, upload)
    assert stale.status_code == 409 and "预览之后站点数据已被修改" in stale.text
    assert _count_badge(stale.text, "changed") == 1
    name = conn.execute(text("SELECT name FROM stations WHERE external_id = 'IMP-G1'")).scalar_one()
    assert name == "黄石路驿站（旧）"
    # applying the new preview works
    done = _apply(client, csrf, _upload_id(stale.text))
    assert done.status_code == 200, done.text
    name = conn.execute(text("SELECT name FROM stations WHERE external_id = 'IMP-G1'")).scalar_one()
    assert name == "黄石路驿站"


def test_geojson_in_gcj02_is_converted_on_apply(client, conn, people):
    csrf = signed_in(client, people["jh"])
    gcj = (114.2700, 30.5900)  # as copied from Amap
    doc = {"type": "FeatureCollection", "features": [feature("IMP-J1", lon=gcj[0], lat=gcj[1])]}
    data = json.dumps(doc).encode()
    r = _preview(client, csrf, data, name="stations.geojson", coord_sys="gcj02")
    assert r.status_code == 200, r.text
    assert _count_badge(r.text, "new") == 1 and 'value="gcj02" selected' in r.text
    assert _apply(client, csrf, _upload_id(r.text)).status_code == 200
    lon, lat = conn.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE external_id = 'IMP-J1'")
    ).one()
    want = coordTransform.gcj02_to_wgs84(*gcj)
    assert abs(lon - want[0]) < 1e-5 and abs(lat - want[1]) < 1e-5
    assert abs(lon - gcj[0]) > 1e-3  # really moved off the GCJ-02 position


def test_unknown_coordinate_system_is_a_422_page(client, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, csv_bytes([row("IMP-K1")]), coord_sys="mercator")
    assert r.status_code == 422 and 'id="form-error"' in r.text


def test_uploads_may_be_larger_than_the_form_body_limit(client, people):
    csrf = signed_in(client, people["jh"])
    rows = [
        row(f"IMP-L{i}", name=f"长江驿站{i}号", lon=114.20 + (i % 30) / 1000, lat=30.50 + i / 3000)
        for i in range(700)
    ]
    data = csv_bytes(rows)
    assert len(data) > client.app.state.settings.max_body_bytes
    r = _preview(client, csrf, data)
    assert r.status_code == 200, r.text[:300]
    assert _count_badge(r.text, "new") == 700
    # any other /manage form keeps the small limit
    big = client.post("/manage/logout", data={"csrf": csrf, "pad": "x" * len(data)})
    assert big.status_code == 413


# --- likely duplicates -----------------------------------------------------------------------


def _duplicate_file() -> bytes:
    # IMP-D1 sits ~10 m from the stored 江汉路驿站 (IMP-A) with the same name; IMP-D2 is far
    return csv_bytes(
        [
            row("IMP-D1", name="江汉路驿站", lon=114.2801, lat=30.5800),
            row("IMP-D2", name="循礼门驿站", lon=114.2600, lat=30.6100),
        ]
    )


def test_duplicates_must_be_decided(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, _duplicate_file())
    assert r.status_code == 200 and _count_badge(r.text, "duplicates") == 1
    dup = re.search(r'<li class="duplicate" data-row="2">.*?</li>\s*</ol>', r.text, re.S)
    assert dup and f"#{people['a']}" in dup.group(0)
    assert 'name="dup_2" value="skip"' in r.text and 'name="dup_2" value="import"' in r.text
    undecided = _apply(client, csrf, _upload_id(r.text))
    assert undecided.status_code == 409 and "疑似重复" in undecided.text
    assert _count(conn, "IMP-D") == 0


def test_a_skipped_duplicate_is_left_out(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, _duplicate_file())
    done = _apply(client, csrf, _upload_id(r.text), dup_2="skip")
    assert done.status_code == 200, done.text
    ids = conn.execute(
        text("SELECT external_id FROM stations WHERE external_id LIKE 'IMP-D%'")
    ).scalars()
    assert sorted(ids) == ["IMP-D2"]
    assert "跳过 1 个" in done.text


def test_a_duplicate_imported_anyway_is_written(client, conn, people):
    csrf = signed_in(client, people["jh"])
    r = _preview(client, csrf, _duplicate_file())
    done = _apply(client, csrf, _upload_id(r.text), dup_2="import")
    assert done.status_code == 200, done.text
    ids = conn.execute(
        text("SELECT external_id FROM stations WHERE external_id LIKE 'IMP-D%'")
    ).scalars()
    assert sorted(ids) == ["IMP-D1", "IMP-D2"]


# --- exports and the stale call list ---------------------------------------------------------


def test_exports_carry_only_the_stations_in_scope(client, people):
    signed_in(client, people["jh"])
    x = client.get("/manage/export.xlsx")
    assert x.status_code == 200 and x.headers["content-type"] == XLSX
    assert "attachment" in x.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0][: len(HEADER)]) == HEADER
    xlsx_ids = {v[0] for v in values[1:] if v[0]}
    assert "IMP-A" in xlsx_ids and "IMP-C" not in xlsx_ids
    c = client.get("/manage/export.csv")
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    csv_ids = {r["编号"] for r in csv.DictReader(io.StringIO(c.content.decode("utf-8-sig")))}
    assert csv_ids == xlsx_ids
    g = client.get("/manage/export.geojson")
    assert g.status_code == 200 and g.headers["content-type"].startswith("application/geo+json")
    doc = json.loads(g.content)
    assert doc["type"] == "FeatureCollection"
    assert {f["properties"]["external_id"] for f in doc["features"]} == xlsx_ids
    assert client.get("/manage/export.pdf").status_code == 404


def test_a_manager_exports_only_their_stations(client, people):
    signed_in(client, people["manager"])
    c = client.get("/manage/export.csv")
    ids = [r["编号"] for r in csv.DictReader(io.StringIO(c.content.decode("utf-8-sig")))]
    assert ids == ["IMP-A"]


def test_stale_call_list_for_district_admins(client, people):
    signed_in(client, people["jh"])
    r = client.get("/manage/stale.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    api = client.get("/api/v1/stations/stale?format=csv", headers=people["jh"].headers)
    assert lines == list(csv.reader(io.StringIO(api.content.decode("utf-8-sig"))))
    cells = {cell for line in lines[1:] for cell in line}
    assert "IMP-A" in cells and "IMP-C" not in cells  # never confirmed; Wuchang out of scope
