"""Audit history: every change to a station leaves exactly one revision, in the change's own
transaction, with its actor, channel, and each changed field's before and after; history reads
are scoped; reverts restore and are audited themselves; the log is append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.accounts.policy import SYSTEM, Actor
from app.audit import service as audit
from app.stations import service
from app.stations.importer import read_collection
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

URL = "/api/v1/stations"


def revisions(conn, sid: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text("SELECT * FROM station_revisions WHERE station_id = :s ORDER BY id"), {"s": sid}
    ).mappings()
    return [dict(r) for r in rows]


def create(client, **props) -> dict[str, Any]:
    r = client.post(URL, json=feature(**props), headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_edit_status_amenities_delete_each_leave_one_revision(client, conn):
    da = make_user(conn, "audit-da", "district_admin", districts=("4201",))
    st = create(client, external_id="AUD-1", phone="027-10000000")
    sid = st["id"]
    [rev] = revisions(conn, sid)
    assert (rev["op"], rev["action"], rev["channel"]) == ("create", "create", "api")
    assert (rev["actor_kind"], rev["actor_name"], rev["actor_id"]) == (
        "admin_token",
        "admin-token",
        None,
    )
    assert rev["changes"]["phone"] == [None, "027-10000000"]
    # a creation lists the fields it set, not the empty ones
    assert "notes" not in rev["changes"] and "operator" in rev["changes"]
    assert all(before != after for before, after in rev["changes"].values())
    assert rev["snapshot"]["location"] == st["geometry"]["coordinates"]

    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"phone": "027-20000000"}},
        headers={**da.headers, "If-Match": str(st["properties"]["version"])},
    )
    assert r.status_code == 200
    edit = revisions(conn, sid)[-1]
    assert len(revisions(conn, sid)) == 2
    assert edit["changes"] == {"phone": ["027-10000000", "027-20000000"]}
    assert (edit["actor_kind"], edit["actor_name"], edit["actor_id"]) == (
        "user",
        da.username,
        da.id,
    )
    assert (edit["op"], edit["action"], edit["version"]) == ("update", "edit", 2)

    r = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"status": "closed"}},
        headers={**da.headers, "If-Match": "*"},
    )
    assert revisions(conn, sid)[-1]["action"] == "status"
    assert revisions(conn, sid)[-1]["changes"] == {"status": ["open", "closed"]}

    r = client.post(f"{URL}/{sid}/amenities", json={"add": ["wifi"]}, headers=da.headers)
    assert r.status_code == 200
    am = revisions(conn, sid)[-1]
    assert am["changes"] == {
        "amenities": [["drinking_water", "microwave"], ["drinking_water", "microwave", "wifi"]]
    }

    last_state = client.get(f"{URL}/{sid}").json()
    assert client.delete(f"{URL}/{sid}", headers=da.headers).status_code == 204
    gone = revisions(conn, sid)[-1]
    assert len(revisions(conn, sid)) == 5
    assert (gone["op"], gone["action"], gone["actor_name"]) == ("delete", "delete", da.username)
    assert gone["snapshot"]["phone"] == last_state["properties"]["phone"]
    assert gone["snapshot"]["amenities"] == last_state["properties"]["amenities"]
    assert all(after is None for _, after in gone["changes"].values())


def test_refused_or_failed_writes_leave_no_revision(client, conn):
    st = create(client, external_id="AUD-2")
    sid = st["id"]
    n = len(revisions(conn, sid))
    stale = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"phone": "027-3"}},
        headers={**AUTH, "If-Match": "99"},
    )
    assert stale.status_code == 412
    bad = client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": {"opening_hours": "not hours at all"}},
        headers={**AUTH, "If-Match": "*"},
    )
    assert bad.status_code == 422
    dup = client.post(URL, json=feature(external_id="AUD-2"), headers=AUTH)
    assert dup.status_code == 409
    assert len(revisions(conn, sid)) == n
    assert (
        conn.execute(
            text("SELECT count(*) FROM station_revisions WHERE snapshot->>'external_id' = 'AUD-2'")
        ).scalar_one()
        == n
    )


def test_import_is_audited_per_station_with_channel_import(conn, ctx, tmp_path):
    import json

    feats = [feature(f"IMP-{i}", 114.28 + i * 0.001, 30.58) for i in range(3)]
    path = tmp_path / "s.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")
    da = make_user(conn, "audit-importer", "district_admin", districts=("420103",))
    actor = Actor(
        kind="user", role="district_admin", name=da.username, user_id=da.id, districts=("420103",)
    )
    assert service.import_collection(conn, read_collection(path).features, ctx, actor) == 3
    rows = conn.execute(
        text(
            "SELECT actor_name, actor_kind, channel, action, op FROM station_revisions "
            "WHERE snapshot->>'external_id' LIKE 'IMP-%'"
        )
    ).all()
    assert sorted(rows) == [(da.username, "user", "import", "import", "create")] * 3
    # the same file again changes nothing: no version bump, no revision
    versions = list(
        conn.execute(text("SELECT version FROM stations WHERE external_id LIKE 'IMP-%'")).scalars()
    )
    service.import_collection(conn, read_collection(path).features, ctx, SYSTEM)
    assert (
        conn.execute(
            text(
                "SELECT count(*) FROM station_revisions WHERE snapshot->>'external_id' LIKE 'IMP-%'"
            )
        ).scalar_one()
        == 3
    )
    assert sorted(
        conn.execute(text("SELECT version FROM stations WHERE external_id LIKE 'IMP-%'")).scalars()
    ) == sorted(versions)
    # one changed station: one update revision, by the system, naming only that field
    feats[1]["properties"]["phone"] = "027-77776666"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")
    service.import_collection(conn, read_collection(path).features, ctx, SYSTEM)
    rows = conn.execute(
        text(
            "SELECT snapshot->>'external_id', actor_name, changes FROM station_revisions "
            "WHERE snapshot->>'external_id' LIKE 'IMP-%' AND op = 'update'"
        )
    ).all()
    assert rows == [("IMP-1", "system", {"phone": ["027-85551234", "027-77776666"]})]


def test_a_write_outside_the_application_is_still_recorded(client, conn):
    st = create(client, external_id="AUD-SQL")
    user = conn.execute(text("SELECT session_user")).scalar_one()
    conn.execute(text("UPDATE stations SET phone = '027-55' WHERE id = :i"), {"i": st["id"]})
    rev = revisions(conn, st["id"])[-1]
    assert (rev["actor_kind"], rev["actor_name"], rev["channel"]) == ("database", user, "sql")
    assert rev["changes"] == {"phone": [st["properties"]["phone"], "027-55"]}


def test_derived_columns_alone_are_not_a_revision(client, conn):
    st = create(client, external_id="AUD-DERIVED")
    n = len(revisions(conn, st["id"]))
    conn.execute(text("UPDATE stations SET open_intervals = NULL WHERE id = :i"), {"i": st["id"]})
    assert len(revisions(conn, st["id"])) == n


def test_revisions_are_append_only(client, conn):
    st = create(client, external_id="AUD-RO")
    for sql in (
        "UPDATE station_revisions SET actor_name = 'someone else' WHERE station_id = :i",
        "DELETE FROM station_revisions WHERE station_id = :i",
    ):
        sp = conn.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql), {"i": st["id"]})
        sp.rollback()
    assert len(revisions(conn, st["id"])) == 1


def test_history_endpoint_pages_newest_first(client, conn):
    st = create(client, external_id="AUD-HIST")
    sid = st["id"]
    for i in range(4):
        client.patch(
            f"{URL}/{sid}",
            json={"type": "Feature", "properties": {"capacity": i}},
            headers={**AUTH, "If-Match": "*"},
        )
    first = client.get(f"{URL}/{sid}/history?limit=3", headers=AUTH).json()
    assert first["numberMatched"] == 5
    assert [r["version"] for r in first["revisions"]] == [5, 4, 3]
    second = client.get(first["next"], headers=AUTH).json()
    assert [r["version"] for r in second["revisions"]] == [2, 1]
    assert second["revisions"][-1]["action"] == "create"
    assert first["revisions"][0]["changes"] == {"capacity": [2, 3]}


def test_revert_restores_exactly_and_is_audited(client, conn):
    st = create(client, external_id="AUD-REV", name="原名", capacity=5)
    sid = st["id"]
    first_rev = revisions(conn, sid)[0]["id"]
    client.patch(
        f"{URL}/{sid}",
        json={
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [114.3, 30.6]},
            "properties": {"name": "新名", "capacity": 9, "amenities": ["toilet"]},
        },
        headers={**AUTH, "If-Match": "*"},
    )
    r = client.post(f"{URL}/{sid}/revert?to={first_rev}", headers=AUTH)
    assert r.status_code == 200, r.text
    now = r.json()
    keep = ("name", "capacity", "amenities", "phone", "opening_hours", "status", "district_code")
    assert {k: now["properties"][k] for k in keep} == {k: st["properties"][k] for k in keep}
    assert now["geometry"]["coordinates"] == st["geometry"]["coordinates"]
    assert now["properties"]["version"] == 3
    rev = revisions(conn, sid)[-1]
    assert (rev["action"], rev["meta"]) == ("revert", {"reverted_to": first_rev})
    assert rev["changes"]["name"] == ["新名", "原名"]


def test_a_deleted_station_keeps_its_history_and_can_come_back(client, conn):
    st = create(client, external_id="AUD-UNDEL")
    sid = st["id"]
    first_rev = revisions(conn, sid)[0]["id"]
    assert client.delete(f"{URL}/{sid}", headers=AUTH).status_code == 204
    assert client.get(f"{URL}/{sid}").status_code == 404
    hist = client.get(f"{URL}/{sid}/history", headers=AUTH).json()
    assert [r["op"] for r in hist["revisions"]] == ["delete", "create"]
    delete_rev = hist["revisions"][0]["id"]
    assert client.post(f"{URL}/{sid}/revert?to={delete_rev}", headers=AUTH).status_code == 422
    back = client.post(f"{URL}/{sid}/revert?to={first_rev}", headers=AUTH)
    assert back.status_code == 200, back.text
    assert back.json()["id"] == sid
    assert back.json()["properties"]["version"] == 2
    assert client.get(f"{URL}/{sid}").json()["properties"]["name"] == st["properties"]["name"]
    assert [r["op"] for r in revisions(conn, sid)] == ["create", "delete", "create"]
    assert revisions(conn, sid)[-1]["action"] == "revert"


def test_a_revision_of_another_station_cannot_be_reverted_to(client, conn):
    a = create(client, external_id="AUD-A")
    b = create(client, external_id="AUD-B", lon=114.29)
    rev_b = revisions(conn, b["id"])[0]["id"]
    r = client.post(f"{URL}/{a['id']}/revert?to={rev_b}", headers=AUTH)
    assert r.status_code == 404
    assert r.json()["field"] == "to"


def test_accepted_proposal_moves_the_station_and_names_both_people(client, conn):
    st = create(client, external_id="AUD-PROP")
    sid = st["id"]
    manager = make_user(conn, "prop-manager", "manager", stations=(sid,))
    da = make_user(conn, "prop-da", "district_admin", districts=("420103",))
    p = client.post(
        f"{URL}/{sid}/proposals",
        json={"geometry": {"type": "Point", "coordinates": [114.2885, 30.5830]}, "note": "门口"},
        headers=manager.headers,
    )
    assert p.status_code == 201, p.text
    assert p.json()["status"] == "pending"
    assert 90 < p.json()["distance_m"] < 150  # ~0.001° lon + 0.0005° lat at 30.58° N
    assert client.get(f"{URL}/{sid}").json()["geometry"]["coordinates"] == [114.2875, 30.5825]
    ok = client.post(f"/api/v1/proposals/{p.json()['id']}/accept", headers=da.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "accepted" and ok.json()["decided_by"] == da.username
    assert client.get(f"{URL}/{sid}").json()["geometry"]["coordinates"] == [114.2885, 30.583]
    rev = revisions(conn, sid)[-1]
    assert (rev["action"], rev["actor_name"]) == ("proposal", da.username)
    assert rev["meta"] == {"proposal": p.json()["id"], "proposed_by": manager.username}
    assert rev["changes"]["location"] == [[114.2875, 30.5825], [114.2885, 30.583]]
    again = client.post(f"/api/v1/proposals/{p.json()['id']}/reject", headers=da.headers)
    assert again.status_code == 409


def test_district_upload_records_each_moved_station_and_one_event(client, conn):
    st = create(client, external_id="AUD-DIST", district_code="420103")
    planner = make_user(conn, "dist-planner", "planner")
    ring = [[114.28, 30.58], [114.30, 30.58], [114.30, 30.59], [114.28, 30.59], [114.28, 30.58]]
    r = client.put(
        "/api/v1/districts?mode=upsert",
        json={
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"code": "420106", "name": "武昌区"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            ],
        },
        headers=planner.headers,
    )
    assert r.status_code == 200, r.text
    rev = revisions(conn, st["id"])[-1]
    assert (rev["action"], rev["actor_name"], rev["channel"]) == (
        "districts",
        planner.username,
        "api",
    )
    assert rev["changes"] == {"district_code": ["420103", "420106"]}
    events = conn.execute(
        text("SELECT actor_name, channel, action FROM audit_events WHERE subject = 'districts'")
    ).all()
    assert events == [(planner.username, "api", "districts.upsert")]


def test_history_of_one_station_is_readable_by_whom_the_issue_says(client, conn):
    st = create(client, external_id="AUD-WHO", district_code="420103")
    sid = st["id"]
    other = create(client, external_id="AUD-OTHER", district_code="420103", lon=114.29)
    own = make_user(conn, "who-manager", "manager", stations=(sid,))
    not_own = make_user(conn, "who-other-manager", "manager", stations=(other["id"],))
    da_in = make_user(conn, "who-da-in", "district_admin", districts=("420103",))
    da_out = make_user(conn, "who-da-out", "district_admin", districts=("4403",))
    planner = make_user(conn, "who-planner", "planner")
    got = {
        p.username: client.get(f"{URL}/{sid}/history", headers=p.headers).status_code
        for p in (own, not_own, da_in, da_out, planner)
    }
    assert got == {
        own.username: 200,
        not_own.username: 403,
        da_in.username: 200,
        da_out.username: 403,
        planner.username: 403,
    }


def test_revision_json_shape(client, conn):
    st = create(client, external_id="AUD-JSON")
    [row] = conn.execute(
        text("SELECT * FROM station_revisions WHERE station_id = :s"), {"s": st["id"]}
    ).mappings()
    out = audit.revision_json(row)
    assert out["actor"] == {"kind": "admin_token", "id": None, "name": "admin-token"}
    assert out["station_id"] == st["id"] and out["version"] == 1


def test_demand_uploads_and_deletes_are_audit_events_of_their_actor(client, conn):
    planner = make_user(conn, "demand-planner", "planner")

    def events() -> list[tuple[str, str, str, str]]:
        return conn.execute(
            text(
                "SELECT actor_name, channel, action, subject FROM audit_events "
                "WHERE subject = 'demand:audit-layer' ORDER BY id"
            )
        ).all()

    csv = b"lon,lat,weight\n114.30,30.60,5\n114.31,30.60,2\n"
    headers = {**planner.headers, "Content-Type": "text/csv"}
    first = client.put("/api/v1/demand/audit-layer?unit=persons", content=csv, headers=headers)
    assert first.status_code == 201, first.text
    assert events() == [(planner.username, "api", "demand.create", "demand:audit-layer")]
    r = client.put("/api/v1/demand/audit-layer?unit=persons", content=csv, headers=headers)
    assert r.status_code == 200
    bad = client.put("/api/v1/demand/audit-layer?unit=persons", content=b"nope", headers=headers)
    assert bad.status_code == 422
    assert client.delete("/api/v1/demand/audit-layer", headers=planner.headers).status_code == 204
    assert [e[2] for e in events()] == ["demand.create", "demand.replace", "demand.delete"]
