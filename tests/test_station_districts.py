"""Every station write takes its district from the loaded outlines (issue 14): API create and
move, a claimed code, spreadsheet and file imports, accepted location proposals and reverts —
before the permission check, so a district admin's scope is checked against the district the
station will really be in. Outside every outline (or with none loaded) the given code stays.

Two hand-made districts share the border x = 114.265625; every coordinate is a multiple of
1/128°, exact in binary, so both squares have exactly the same planar area and the border point
is on both outlines (the tie goes to the lower code, as when outlines are reloaded).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text

from app.accounts.policy import SYSTEM
from app.stations import service
from app.stations.schemas import StationFeatureIn
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user
from tests.test_spreadsheets import csv_bytes, row, upload

WEST, EAST = "420103", "420106"  # 江汉区 (west square), 武昌区 (east square)
X0, X1, X2 = 114.25, 114.265625, 114.28125  # west edge, shared border, east edge
Y0, Y1 = 30.5, 30.515625
IN_WEST = (114.2578125, 30.5078125)
IN_EAST = (114.2734375, 30.5078125)
ON_BORDER = (X1, 30.5078125)
OUTSIDE = (114.3, 30.6)  # in no outline


def square(code: str, x0: float, x1: float) -> dict[str, Any]:
    ring = [[x0, Y0], [x1, Y0], [x1, Y1], [x0, Y1], [x0, Y0]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"code": code, "name": f"区{code}"},
    }


def load_outlines(client: Any) -> dict[str, Any]:
    body = {"type": "FeatureCollection", "features": [square(WEST, X0, X1), square(EAST, X1, X2)]}
    r = client.put("/api/v1/districts", content=orjson.dumps(body), headers=AUTH)
    assert r.status_code == 200, r.text
    return dict(r.json())


def create(client: Any, ext: str, at: tuple[float, float], headers=AUTH, **props: Any) -> Any:
    return client.post("/api/v1/stations", json=feature(ext, *at, **props), headers=headers)


def stored_district(conn: Any, sid: int) -> str | None:
    return conn.execute(
        text("SELECT district_code FROM stations WHERE id = :i"), {"i": sid}
    ).scalar_one()


def ids_in(client: Any, code: str) -> set[int]:
    got = client.get("/api/v1/stations", params={"district": code, "limit": 100})
    assert got.status_code == 200, got.text
    return {f["id"] for f in got.json()["features"]}


def patch(client: Any, sid: int, body: dict[str, Any], headers=AUTH) -> Any:
    return client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", **body},
        headers={**headers, "If-Match": "*"},
    )


def test_without_outlines_the_given_code_stays(client, conn):
    r = create(client, "SD-0", IN_EAST, district_code=WEST)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["district_code"] == WEST
    none = create(client, "SD-00", IN_EAST, district_code=None)
    assert none.json()["properties"]["district_code"] is None


def test_api_create_inside_an_outline_gets_its_code_and_the_district_filter_finds_it(client, conn):
    load_outlines(client)
    unclaimed = create(client, "SD-1", IN_EAST, district_code=None)
    wrong = create(client, "SD-2", IN_EAST, district_code=WEST)
    west = create(client, "SD-3", IN_WEST, district_code=None)
    for r in (unclaimed, wrong, west):
        assert r.status_code == 201, r.text
    assert unclaimed.json()["properties"]["district_code"] == EAST
    assert wrong.json()["properties"]["district_code"] == EAST  # the outline wins over a claim
    assert west.json()["properties"]["district_code"] == WEST
    assert ids_in(client, EAST) == {unclaimed.json()["id"], wrong.json()["id"]}
    assert ids_in(client, WEST) == {west.json()["id"]}


def test_outside_every_outline_the_given_code_stays(client, conn):
    load_outlines(client)
    beijing = create(client, "SD-4", (116.3975, 39.9087), district_code="110101")
    nowhere = create(client, "SD-5", OUTSIDE, district_code=None)
    assert beijing.json()["properties"]["district_code"] == "110101"
    assert nowhere.json()["properties"]["district_code"] is None


def test_a_station_on_the_border_goes_where_a_reload_would_put_it(client, conn):
    load_outlines(client)
    r = create(client, "SD-6", ON_BORDER, district_code=EAST)
    assert r.status_code == 201, r.text
    # equal areas (exact binary coordinates): the lower code, deterministically
    assert r.json()["properties"]["district_code"] == WEST
    again = load_outlines(client)
    assert again["stations_changed"] == 0
    assert stored_district(conn, r.json()["id"]) == WEST


def test_patch_moving_across_the_line_changes_the_code_and_the_revision_records_it(client, conn):
    load_outlines(client)
    sid = create(client, "SD-7", IN_WEST, district_code=None).json()["id"]
    assert stored_district(conn, sid) == WEST
    moved = patch(client, sid, {"geometry": {"type": "Point", "coordinates": list(IN_EAST)}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["properties"]["district_code"] == EAST
    assert ids_in(client, EAST) == {sid} and ids_in(client, WEST) == set()
    history = client.get(f"/api/v1/stations/{sid}/history", headers=AUTH).json()
    newest = history["revisions"][0]
    assert newest["changes"]["district_code"] == [WEST, EAST]
    # moving it out of every outline keeps the code it had
    out = patch(client, sid, {"geometry": {"type": "Point", "coordinates": list(OUTSIDE)}})
    assert out.json()["properties"]["district_code"] == EAST


def test_patch_claiming_another_code_inside_an_outline_keeps_the_outline(client, conn):
    load_outlines(client)
    sid = create(client, "SD-8", IN_WEST, district_code=None).json()["id"]
    r = patch(client, sid, {"properties": {"district_code": EAST}})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["district_code"] == WEST
    # an edit that touches neither position nor code leaves the code alone
    r = patch(client, sid, {"properties": {"capacity": 7}})
    assert r.json()["properties"]["district_code"] == WEST


def test_district_admin_cannot_claim_their_district_for_a_point_in_another(client, conn):
    load_outlines(client)
    west_admin = make_user(conn, "sd-west-admin", "district_admin", districts=(WEST,))
    count = "SELECT count(*) FROM stations"
    before = conn.execute(text(count)).scalar_one()
    r = create(client, "SD-9", IN_EAST, headers=west_admin.headers, district_code=WEST)
    assert r.status_code == 403, r.text
    assert conn.execute(text(count)).scalar_one() == before
    # claiming the other district for a point in their own is theirs to create
    ok = create(client, "SD-10", IN_WEST, headers=west_admin.headers, district_code=EAST)
    assert ok.status_code == 201, ok.text
    assert ok.json()["properties"]["district_code"] == WEST
    # and moving it across the line is a move out of their districts
    sid = ok.json()["id"]
    move = patch(
        client,
        sid,
        {"geometry": {"type": "Point", "coordinates": list(IN_EAST)}},
        headers=west_admin.headers,
    )
    assert move.status_code == 403, move.text
    assert move.json()["field"] == "properties.district_code"
    assert stored_district(conn, sid) == WEST


def test_spreadsheet_import_takes_the_outline_code(client, conn):
    load_outlines(client)
    data = csv_bytes(
        [
            row("SD-S1", lon=IN_EAST[0], lat=IN_EAST[1], 行政区划代码=None),
            row("SD-S2", name="另一驿站", lon=IN_WEST[0], lat=IN_WEST[1], 行政区划代码=EAST),
        ]
    )
    r = upload(client, data, AUTH, dry_run="false")
    assert r.status_code == 200, r.text
    got = dict(
        conn.execute(
            text("SELECT external_id, district_code FROM stations WHERE external_id LIKE 'SD-S%'")
        ).all()
    )
    assert got == {"SD-S1": EAST, "SD-S2": WEST}
    # the same file again changes nothing (the preview agrees with what was stored)
    again = upload(client, data, AUTH)
    assert again.json()["counts"]["unchanged"] == 2, again.text


def test_spreadsheet_import_by_a_district_admin_is_scoped_by_the_outline(client, conn):
    load_outlines(client)
    west_admin = make_user(conn, "sd-west-importer", "district_admin", districts=(WEST,))
    data = csv_bytes([row("SD-S3", lon=IN_EAST[0], lat=IN_EAST[1], 行政区划代码=WEST)])
    r = upload(client, data, west_admin.headers, dry_run="false")
    assert r.status_code == 403, r.text
    assert r.json()["field"].endswith("district_code")
    assert (
        conn.execute(text("SELECT count(*) FROM stations WHERE external_id = 'SD-S3'")).scalar_one()
        == 0
    )


def test_file_and_demo_imports_take_the_outline_code(client, conn, ctx):
    """`yizhan stations import FILE.geojson` and the demo loader both go through
    `service.import_collection`."""
    load_outlines(client)
    features = [
        StationFeatureIn.model_validate(feature("SD-F1", *IN_EAST, district_code=None)),
        StationFeatureIn.model_validate(feature("SD-F2", *IN_WEST, district_code=EAST)),
        StationFeatureIn.model_validate(feature("SD-F3", *OUTSIDE, district_code="420111")),
    ]
    assert service.import_collection(conn, features, ctx, SYSTEM) == 3
    got = dict(
        conn.execute(
            text("SELECT external_id, district_code FROM stations WHERE external_id LIKE 'SD-F%'")
        ).all()
    )
    assert got == {"SD-F1": EAST, "SD-F2": WEST, "SD-F3": "420111"}


def test_accepting_a_proposal_across_the_line_changes_the_code(client, conn):
    load_outlines(client)
    sid = create(client, "SD-P1", IN_WEST, district_code=None).json()["id"]
    manager = make_user(conn, "sd-manager", "manager", stations=(sid,))
    west_admin = make_user(conn, "sd-west-decider", "district_admin", districts=(WEST,))
    proposal = client.post(
        f"/api/v1/stations/{sid}/proposals",
        json={"geometry": {"type": "Point", "coordinates": list(IN_EAST)}},
        headers=manager.headers,
    )
    assert proposal.status_code == 201, proposal.text
    pid = proposal.json()["id"]
    # the west admin may decide on their station, but not move it into the east
    refused = client.post(f"/api/v1/proposals/{pid}/accept", headers=west_admin.headers)
    assert refused.status_code == 403, refused.text
    assert stored_district(conn, sid) == WEST
    accepted = client.post(f"/api/v1/proposals/{pid}/accept", headers=AUTH)
    assert accepted.status_code == 200, accepted.text
    assert stored_district(conn, sid) == EAST
    history = client.get(f"/api/v1/stations/{sid}/history", headers=AUTH).json()
    assert history["revisions"][0]["changes"]["district_code"] == [WEST, EAST]


def test_revert_takes_the_district_of_the_restored_position(client, conn):
    load_outlines(client)
    sid = create(client, "SD-R1", IN_WEST, district_code=None).json()["id"]
    first = client.get(f"/api/v1/stations/{sid}/history", headers=AUTH).json()["revisions"][-1]
    patch(client, sid, {"geometry": {"type": "Point", "coordinates": list(IN_EAST)}})
    assert stored_district(conn, sid) == EAST
    r = client.post(f"/api/v1/stations/{sid}/revert?to={first['id']}", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["district_code"] == WEST
