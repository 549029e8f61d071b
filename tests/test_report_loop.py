"""The report loop: a courier files a report and gets a key; the station's people see it (their
queue, overdue first), acknowledge, resolve with what was done — optionally with the station
edit in the same step — or reject with a reason; the courier reads the answer with the key.

Expected values are written from the issue (statuses, who may answer, what counts as open),
and counts are compared with what the tables hold."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import text

from app.config import Settings
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

API = "/api/v1"


def _station(client, ext: str, district: str, lon: float, lat: float, **props: Any) -> int:
    r = client.post(
        f"{API}/stations",
        json=feature(ext, lon, lat, district_code=district, name=f"反馈测试站 {ext}", **props),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _file(client, sid: int, kind: str = "other", comment: str | None = "门锁了") -> dict[str, Any]:
    r = client.post(f"{API}/stations/{sid}/reports", json={"kind": kind, "comment": comment})
    assert r.status_code == 201, r.text
    return r.json()


def _age(conn, report_id: int, days: float) -> None:
    """Make a report `days` old (in SQL, against the database's clock)."""
    conn.execute(
        text("UPDATE reports SET created_at = now() - make_interval(secs => :s) WHERE id = :id"),
        {"s": days * 86400, "id": report_id},
    )


@pytest.fixture
def world(client, conn) -> dict[str, Any]:
    """Wuhan stations A (kept by `manager`) and B, a Shenzhen station C; one account per role."""
    ids = {
        "a": _station(client, "RL-A", "420102", 114.30, 30.60),
        "b": _station(client, "RL-B", "420103", 114.28, 30.58),
        "c": _station(client, "RL-C", "440305", 114.06, 22.54),
    }
    people = {
        "manager": make_user(conn, "rl-manager", "manager", stations=(ids["a"],)),
        "other_manager": make_user(conn, "rl-other", "manager", stations=(ids["b"],)),
        "district_admin": make_user(conn, "rl-da", "district_admin", districts=("4201",)),
        "shenzhen_admin": make_user(conn, "rl-sz", "district_admin", districts=("4403",)),
        "planner": make_user(conn, "rl-planner", "planner"),
        "admin": make_user(conn, "rl-admin", "admin"),
    }
    return {"ids": ids, "people": people, "h": {k: p.headers for k, p in people.items()}}


# --- the courier's key ------------------------------------------------------------------------


def test_filing_returns_a_key_that_is_stored_only_as_its_hash(client, conn, world):
    body = _file(client, world["ids"]["a"])
    key = body["key"]
    assert len(key) >= 10 and all(c.isalnum() or c in "-_" for c in key)
    assert body["status_url"] == f"{API}/reports/{body['id']}?key={key}"
    row = (
        conn.execute(text("SELECT * FROM reports WHERE id = :id"), {"id": body["id"]})
        .mappings()
        .one()
    )
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in [str(v) for v in row.values()]
    # every report gets its own key
    assert _file(client, world["ids"]["a"])["key"] != key


def test_the_courier_reads_the_status_with_the_key(client, world):
    body = _file(client, world["ids"]["a"], kind="closed_when_should_be_open")
    r = client.get(body["status_url"])
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["status"] == "open"
    assert got["status_label"] == {"zh": "待处理", "en": "Open"}
    assert got["kind_label"] == {"zh": "应开放却关门", "en": "Closed when it should be open"}
    assert got["note"] is None and got["answered_at"] is None
    assert got["station_name"] == "反馈测试站 RL-A"
    assert "comment" not in got and "answered_by" not in got
    assert r.headers["cache-control"] == "no-store"


def test_a_wrong_or_missing_key_is_the_same_404_as_an_unknown_id(client, world):
    body = _file(client, world["ids"]["a"])
    rid, key = body["id"], body["key"]
    wrong = client.get(f"{API}/reports/{rid}?key={'x' * len(key)}")
    missing = client.get(f"{API}/reports/{rid}")
    empty = client.get(f"{API}/reports/{rid}?key=")
    assert wrong.status_code == missing.status_code == empty.status_code == 404
    assert wrong.json() == missing.json() == empty.json()
    unknown = client.get(f"{API}/reports/{rid + 1000}?key={key}")
    assert unknown.status_code == 404
    assert unknown.json()["detail"].replace(str(rid + 1000), str(rid)) == wrong.json()["detail"]
    # another report's key does not open this one
    other = _file(client, world["ids"]["a"])
    assert client.get(f"{API}/reports/{rid}?key={other['key']}").status_code == 404


# --- the station's people see the reports -----------------------------------------------------


def test_station_reports_newest_first_with_overdue_from_created_at(client, conn, world):
    sid = world["ids"]["a"]
    old = _file(client, sid, comment="四天前")["id"]
    young = _file(client, sid, comment="两天前")["id"]
    new = _file(client, sid, comment="刚才")["id"]
    old_done = _file(client, sid, comment="四天前已解决")["id"]
    _age(conn, old, 4)
    _age(conn, young, 2)
    _age(conn, new, 0.01)
    _age(conn, old_done, 5)
    conn.execute(
        text("UPDATE reports SET status = 'resolved', note = '修好了' WHERE id = :id"),
        {"id": old_done},
    )
    r = client.get(f"{API}/stations/{sid}/reports", headers=world["h"]["manager"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["escalate_days"] == 3
    assert [x["id"] for x in body["reports"]] == [new, young, old, old_done]
    overdue = {x["id"]: x["overdue"] for x in body["reports"]}
    assert overdue == {new: False, young: False, old: True, old_done: False}
    first = body["reports"][0]
    assert first["comment"] == "刚才" and first["status_label"]["zh"] == "待处理"
    only = client.get(f"{API}/stations/{sid}/reports?status=resolved", headers=world["h"]["admin"])
    assert [x["id"] for x in only.json()["reports"]] == [old_done]


def test_an_acknowledged_report_still_escalates(client, conn, world):
    sid = world["ids"]["a"]
    rid = _file(client, sid)["id"]
    _age(conn, rid, 3.5)
    r = client.patch(
        f"{API}/reports/{rid}", json={"status": "acknowledged"}, headers=world["h"]["manager"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["overdue"] is True


@pytest.mark.parametrize(
    ("who", "target", "want"),
    [
        ("manager", "a", 200),
        ("manager", "b", 403),
        ("other_manager", "a", 403),
        ("district_admin", "a", 200),
        ("district_admin", "b", 200),
        ("district_admin", "c", 403),
        ("shenzhen_admin", "c", 200),
        ("planner", "a", 403),
        ("admin", "c", 200),
        ("anonymous", "a", 401),
        ("manager", "unknown", 404),
    ],
)
def test_who_reads_a_stations_reports(client, world, who, target, want):
    sid = world["ids"].get(target, 987_654_321)
    if target != "unknown":
        _file(client, sid, comment="秘密备注")
    headers = world["h"].get(who, {})
    r = client.get(f"{API}/stations/{sid}/reports", headers=headers)
    assert r.status_code == want, r.text
    if want != 200:
        assert "秘密备注" not in r.text and set(r.json()) <= {"detail", "field"}


def test_the_queue_is_the_scope_overdue_first(client, conn, world):
    ids = world["ids"]
    reports = {}
    for name, sid, age in (
        ("a_new", ids["a"], 0.1),
        ("a_overdue", ids["a"], 5),
        ("b_new", ids["b"], 0.2),
        ("b_overdue", ids["b"], 4),
        ("c_overdue", ids["c"], 6),
    ):
        reports[name] = _file(client, sid)["id"]
        _age(conn, reports[name], age)
    rows = conn.execute(
        text(
            "SELECT r.id, s.district_code, r.station_id FROM reports r JOIN stations s "
            "ON s.id = r.station_id"
        )
    ).all()
    want = {
        "district_admin": {i for i, d, _ in rows if d.startswith("4201")},
        "shenzhen_admin": {i for i, d, _ in rows if d.startswith("4403")},
        "manager": {i for i, _, s in rows if s == ids["a"]},
        "admin": {i for i, _, _ in rows},
        "planner": set(),
    }
    for role, expected_ids in want.items():
        r = client.get(f"{API}/reports", headers=world["h"][role])
        assert r.status_code == 200, r.text
        assert {x["id"] for x in r.json()["reports"]} == expected_ids, role
        assert r.json()["numberMatched"] == len(expected_ids)
    da = client.get(f"{API}/reports", headers=world["h"]["district_admin"]).json()
    # overdue first (newest first among them), then the rest newest first
    assert [x["id"] for x in da["reports"]] == [
        reports["b_overdue"],
        reports["a_overdue"],
        reports["a_new"],
        reports["b_new"],
    ]
    assert da["numberOverdue"] == 2
    late = client.get(f"{API}/reports?overdue=true", headers=world["h"]["district_admin"]).json()
    assert [x["id"] for x in late["reports"]] == [reports["b_overdue"], reports["a_overdue"]]
    assert all(x["overdue"] for x in late["reports"])
    assert client.get(f"{API}/reports").status_code == 401


def test_the_escalation_days_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("YIZHAN_REPORT_ESCALATE_DAYS", "5")
    assert Settings().report_escalate_days == 5
    monkeypatch.delenv("YIZHAN_REPORT_ESCALATE_DAYS")
    assert Settings().report_escalate_days == 3


# --- answers ----------------------------------------------------------------------------------


def _answer(client, rid: int, headers: dict[str, str], **body: Any):
    return client.patch(f"{API}/reports/{rid}", json=body, headers=headers)


def _open_reports(client, sid: int) -> int:
    return int(client.get(f"{API}/stations/{sid}").json()["properties"]["open_reports"])


def test_acknowledge_then_resolve_and_the_courier_learns_it(client, conn, world):
    sid = world["ids"]["a"]
    filed = _file(client, sid)
    rid = filed["id"]
    _file(client, sid)  # a second report stays open throughout
    assert _open_reports(client, sid) == 2
    ack = _answer(client, rid, world["h"]["manager"], status="acknowledged")
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "acknowledged" and ack.json()["answered_by"] == "rl-manager"
    assert _open_reports(client, sid) == 2  # acknowledged is still unanswered
    done = _answer(
        client, rid, world["h"]["manager"], status="resolved", note="已联系物业，开门时间已恢复"
    )
    assert done.status_code == 200, done.text
    assert _open_reports(client, sid) == 1
    courier = client.get(filed["status_url"]).json()
    assert courier["status"] == "resolved"
    assert courier["status_label"] == {"zh": "已解决", "en": "Resolved"}
    assert courier["note"] == "已联系物业，开门时间已恢复"
    assert courier["answered_at"] is not None
    events = conn.execute(
        text(
            "SELECT action, actor_name, subject, details FROM audit_events "
            "WHERE action LIKE 'report.%' ORDER BY id"
        )
    ).all()
    assert [(a, n, s) for a, n, s, _ in events] == [
        ("report.acknowledged", "rl-manager", f"station:{sid}"),
        ("report.resolved", "rl-manager", f"station:{sid}"),
    ]
    assert events[1][3]["report"] == rid and events[1][3]["note"] == "已联系物业，开门时间已恢复"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("resolved", "resolved"),
        ("resolved", "rejected"),
        ("rejected", "acknowledged"),
        ("acknowledged", "acknowledged"),
    ],
)
def test_answering_an_answered_report_is_409(client, conn, world, first, second):
    rid = _file(client, world["ids"]["a"])["id"]
    da = world["h"]["district_admin"]
    assert _answer(client, rid, da, status=first, note="第一次").status_code == 200
    before = conn.execute(text("SELECT * FROM reports WHERE id = :id"), {"id": rid}).one()
    again = _answer(client, rid, world["h"]["admin"], status=second, note="第二次")
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "status"
    assert conn.execute(text("SELECT * FROM reports WHERE id = :id"), {"id": rid}).one() == before


@pytest.mark.parametrize("status", ["resolved", "rejected"])
@pytest.mark.parametrize("note", [None, "", "   "])
def test_resolving_or_rejecting_needs_a_note(client, conn, world, status, note):
    rid = _file(client, world["ids"]["a"])["id"]
    body: dict[str, Any] = {"status": status}
    if note is not None:
        body["note"] = note
    r = _answer(client, rid, world["h"]["manager"], **body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "note"
    assert (
        conn.execute(text("SELECT status FROM reports WHERE id = :id"), {"id": rid}).scalar_one()
        == "open"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "open"}, "status"),
        ({"status": "dismissed"}, "status"),
        ({"status": "resolved", "note": "长" * 501}, "note"),
        ({"status": "resolved", "note": "bad\x00"}, "note"),
        ({"status": "resolved", "note": "ok", "extra": 1}, "extra"),
        ({"status": "resolved", "note": "ok", "station": {"colour": "red"}}, "station.colour"),
    ],
)
def test_bad_answers_are_422_naming_the_field(client, world, body, field):
    rid = _file(client, world["ids"]["a"])["id"]
    r = _answer(client, rid, world["h"]["manager"], **body)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize(
    ("who", "target", "want"),
    [
        ("manager", "a", 200),
        ("manager", "b", 403),
        ("other_manager", "a", 403),
        ("district_admin", "b", 200),
        ("district_admin", "c", 403),
        ("planner", "a", 403),
        ("admin", "c", 200),
        ("anonymous", "a", 401),
        ("manager", "unknown", 404),
    ],
)
def test_who_answers(client, conn, world, who, target, want):
    rid = 987_654_321
    if target != "unknown":
        rid = _file(client, world["ids"][target])["id"]
    before = conn.execute(text("SELECT id, status, note FROM reports ORDER BY id")).all()
    r = _answer(client, rid, world["h"].get(who, {}), status="rejected", note="重复反馈")
    assert r.status_code == want, r.text
    after = conn.execute(text("SELECT id, status, note FROM reports ORDER BY id")).all()
    if want == 200:
        assert r.json()["status"] == "rejected" and r.json()["note"] == "重复反馈"
    else:
        assert after == before


def test_resolving_with_the_station_edit_changes_the_station_in_the_same_step(client, conn, world):
    sid = _station(client, "RL-CLOSED", "420102", 114.31, 30.61, status="temporarily_closed")
    manager = make_user(conn, "rl-keeper", "manager", stations=(sid,))
    filed = _file(client, sid, kind="closed_when_should_be_open", comment="下午两点关着门")
    version = client.get(f"{API}/stations/{sid}").json()["properties"]["version"]
    r = _answer(
        client,
        filed["id"],
        manager.headers,
        status="resolved",
        note="值班人员已到岗，恢复开放",
        station={"status": "open", "amenities": ["drinking_water", "toilet"]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["station"]["properties"]["status"] == "open"
    assert body["station"]["properties"]["amenities"] == ["drinking_water", "toilet"]
    assert body["station"]["properties"]["open_reports"] == 0  # the answer already counts
    station = client.get(f"{API}/stations/{sid}").json()["properties"]
    assert station["status"] == "open" and station["version"] == version + 1
    rev = conn.execute(
        text(
            "SELECT actor_kind, actor_id, actor_name, channel, changes FROM station_revisions "
            "WHERE station_id = :s ORDER BY id DESC LIMIT 1"
        ),
        {"s": sid},
    ).one()
    assert rev[:4] == ("user", manager.id, "rl-keeper", "api")
    assert rev[4]["status"] == ["temporarily_closed", "open"]
    event = conn.execute(
        text("SELECT details FROM audit_events WHERE action = 'report.resolved'")
    ).scalar_one()
    assert event["station_version"] == version + 1 and event["report"] == filed["id"]
    assert client.get(filed["status_url"]).json()["status"] == "resolved"


@pytest.mark.parametrize(
    ("station", "status", "field"),
    [
        ({"name": "改名"}, 403, "station.name"),
        ({"level": 5}, 403, "station.level"),
        ({"opening_hours": "8点到22点"}, 422, "station.opening_hours"),
    ],
)
def test_a_refused_station_edit_writes_nothing(client, conn, world, station, status, field):
    sid = world["ids"]["a"]
    rid = _file(client, sid)["id"]

    def state():
        return (
            conn.execute(text("SELECT id, status, note FROM reports ORDER BY id")).all(),
            conn.execute(text("SELECT id, version, name FROM stations ORDER BY id")).all(),
            conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one(),
        )

    before = state()
    r = _answer(
        client, rid, world["h"]["manager"], status="resolved", note="改好了", station=station
    )
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert state() == before


def test_open_reports_count_only_unanswered_ones(client, world):
    sid = world["ids"]["b"]
    da = world["h"]["district_admin"]
    rids = [_file(client, sid)["id"] for _ in range(4)]
    assert _answer(client, rids[0], da, status="acknowledged").status_code == 200
    assert _answer(client, rids[1], da, status="resolved", note="已修").status_code == 200
    assert _answer(client, rids[2], da, status="rejected", note="不属实").status_code == 200
    # open (rids[3]) + acknowledged (rids[0])
    assert _open_reports(client, sid) == 2
    listed = client.get(f"{API}/stations?district=420103").json()["features"]
    assert [f["properties"]["open_reports"] for f in listed if f["id"] == sid] == [2]
    near = client.get(f"{API}/stations/nearest?lat=30.58&lon=114.28&k=1").json()["features"]
    assert near[0]["id"] == sid and near[0]["properties"]["open_reports"] == 2
    filed = _file(client, sid)
    assert filed["station_open_reports"] == 3


def test_open_reports_and_station_lists_can_use_their_indexes(conn):
    """The counting subquery matches the partial index's predicate (so it can be used at all),
    and a station's newest-first list has its (station_id, created_at) index."""
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    count = "\n".join(
        conn.execute(
            text(
                "EXPLAIN SELECT count(*) FROM reports r WHERE r.station_id = 1 "
                "AND r.status IN ('open', 'acknowledged')"
            )
        ).scalars()
    )
    # with sequential scans priced out, a plan without one proves an index serves the count
    # (ix_reports_station_open or, on small tables, ix_reports_unanswered: the planner picks)
    assert "Seq Scan" not in count, count
    assert "ix_reports_station_open" in count or "ix_reports_unanswered" in count, count
    listing = "\n".join(
        conn.execute(
            text(
                "EXPLAIN SELECT id FROM reports r WHERE r.station_id = 1 "
                "ORDER BY r.created_at DESC LIMIT 100"
            )
        ).scalars()
    )
    assert "ix_reports_station_time" in listing
