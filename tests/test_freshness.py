"""Freshness: confirmations (and edits that confirm), `freshness` on every station, couriers'
check-ins, the staleness list and its call-list CSV, the courier page's freshness line.

Ages are set in SQL relative to the transaction's now(); expected day counts are whole days
worked out by hand (3 days 2 hours ago → 3).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.reports.service import ReportLimiter
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

URL = "/api/v1/stations"
UNKNOWN = 987_654_321


def _create(client, ext: str, **props) -> int:
    lon = props.pop("lon", 114.30)
    lat = props.pop("lat", 30.58)
    r = client.post(URL, json=feature(ext, lon, lat, **props), headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _confirmed_ago(conn, sid: int, interval: str | None) -> None:
    conn.execute(
        text(
            "UPDATE stations SET confirmed_at = "
            + ("NULL" if interval is None else f"now() - interval '{interval}'")
            + " WHERE id = :id"
        ),
        {"id": sid},
    )


def _fresh(client, sid: int) -> dict:
    r = client.get(f"{URL}/{sid}")
    assert r.status_code == 200, r.text
    return r.json()["properties"]["freshness"]


# --- freshness on every station ----------------------------------------------------------------


def test_a_new_station_is_stale_and_never_confirmed(client):
    sid = _create(client, "F-1")
    assert _fresh(client, sid) == {
        "confirmed_at": None,
        "confirmed_days_ago": None,
        "stale": True,
        "checkins": {"open": 0, "closed": 0, "last_at": None},
    }


@pytest.mark.parametrize(
    ("interval", "days", "stale"),
    [
        ("2 hours", 0, False),
        ("3 days 2 hours", 3, False),
        ("89 days 23 hours", 89, False),
        ("90 days 1 hour", 90, True),
        ("400 days", 400, True),
    ],
)
def test_days_ago_and_stale(client, conn, interval, days, stale):
    sid = _create(client, "F-2")
    _confirmed_ago(conn, sid, interval)
    f = _fresh(client, sid)
    assert (f["confirmed_days_ago"], f["stale"]) == (days, stale)
    assert f["confirmed_at"] is not None


def test_every_response_carries_freshness(client, conn):
    a = _create(client, "F-a")
    b = _create(client, "F-b", lon=114.3005)
    _confirmed_ago(conn, a, "5 days 1 hour")
    for outcome, sid, age in [
        ("open", a, "1 day"),
        ("open", a, "2 days"),
        ("closed", a, "3 days"),
        ("closed", b, "29 days 23 hours"),
        ("open", b, "31 days"),  # too old to count
    ]:
        conn.execute(
            text(
                "INSERT INTO checkins (station_id, outcome, client_key, created_at) "
                f"VALUES (:s, :o, 'k', now() - interval '{age}')"
            ),
            {"s": sid, "o": outcome},
        )
    tx_now = conn.execute(text("SELECT now()")).scalar_one()
    want = {
        a: {"open": 2, "closed": 1, "last_at": tx_now - timedelta(days=1)},
        b: {"open": 0, "closed": 1, "last_at": tx_now - timedelta(days=29, hours=23)},
    }

    def check(features):
        seen = {f["id"]: f["properties"]["freshness"] for f in features if f["id"] in want}
        assert set(seen) == {a, b}
        for sid, w in want.items():
            c = seen[sid]["checkins"]
            assert (c["open"], c["closed"]) == (w["open"], w["closed"])
            assert datetime.fromisoformat(c["last_at"]) == w["last_at"]
        assert seen[a]["confirmed_days_ago"] == 5 and seen[b]["confirmed_days_ago"] is None

    check(client.get(f"{URL}/nearest?lat=30.58&lon=114.30&k=10").json()["features"])
    check(client.get(f"{URL}?bbox=114.29,30.57,114.31,30.59").json()["features"])
    manager = make_user(conn, "fresh-m", "manager", stations=(a, b))
    check(client.get("/api/v1/me/stations", headers=manager.headers).json()["features"])


# --- confirming --------------------------------------------------------------------------------


def test_confirm_sets_confirmed_at_without_a_new_version_or_revision(client, conn):
    sid = _create(client, "C-1")
    manager = make_user(conn, "confirm-m", "manager", stations=(sid,))
    revisions = conn.execute(
        text("SELECT count(*) FROM station_revisions WHERE station_id = :s"), {"s": sid}
    ).scalar_one()
    r = client.post(f"{URL}/{sid}/confirm", headers=manager.headers)
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert p["version"] == 1 and r.headers["ETag"] == '"1"'
    assert p["freshness"]["confirmed_days_ago"] == 0 and p["freshness"]["stale"] is False
    stored = conn.execute(
        text("SELECT confirmed_at, now() FROM stations WHERE id = :s"), {"s": sid}
    ).one()
    assert stored[0] == stored[1]  # now() of the transaction
    assert (
        conn.execute(
            text("SELECT count(*) FROM station_revisions WHERE station_id = :s"), {"s": sid}
        ).scalar_one()
        == revisions
    )
    event = conn.execute(
        text(
            "SELECT action, actor_name, subject FROM audit_events "
            "WHERE action = 'station.confirm' ORDER BY id DESC LIMIT 1"
        )
    ).one()
    assert tuple(event) == ("station.confirm", "confirm-m", f"station:{sid}")


CONFIRM_CASES = [
    ("anonymous", "own", 401),
    ("planner", "own", 403),
    ("manager", "own", 200),
    ("manager", "in_scope", 403),
    ("district_admin", "own", 200),
    ("district_admin", "in_scope", 200),
    ("district_admin", "out_of_scope", 403),
    ("admin", "out_of_scope", 200),
    ("admin_token", "in_scope", 200),
    ("manager", "unknown", 404),
    ("district_admin", "unknown", 404),
]


@pytest.mark.parametrize(("role", "target", "want"), CONFIRM_CASES)
def test_confirm_permissions(client, conn, role, target, want):
    ids = {
        "own": _create(client, "P-own", district_code="420102"),
        "in_scope": _create(client, "P-in", lon=114.31, district_code="420103"),
        "out_of_scope": _create(client, "P-out", lon=114.06, lat=22.54, district_code="440305"),
        "unknown": UNKNOWN,
    }
    people = {
        "planner": make_user(conn, "cp-planner", "planner", districts=("4201",)),
        "manager": make_user(conn, "cp-manager", "manager", stations=(ids["own"],)),
        "district_admin": make_user(conn, "cp-da", "district_admin", districts=("4201",)),
        "admin": make_user(conn, "cp-admin", "admin"),
    }
    headers = {r: p.headers for r, p in people.items()} | {"admin_token": AUTH, "anonymous": {}}
    before = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    r = client.post(f"{URL}/{ids[target]}/confirm", headers=headers[role])
    assert r.status_code == want, r.text
    after = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    confirmed = conn.execute(
        text("SELECT count(*) FROM stations WHERE confirmed_at IS NOT NULL AND id = ANY(:ids)"),
        {"ids": [i for i in ids.values()]},
    ).scalar_one()
    assert (after - before, confirmed) == ((1, 1) if want == 200 else (0, 0))


def test_edits_by_accounts_confirm_but_not_the_token_or_imports(client, conn):
    sid = _create(client, "E-1")
    manager = make_user(conn, "edit-m", "manager", stations=(sid,))

    def confirmed_at():
        return conn.execute(
            text("SELECT confirmed_at FROM stations WHERE id = :s"), {"s": sid}
        ).scalar_one()

    body = {"type": "Feature", "properties": {"phone": "027-11112222"}}
    r = client.patch(f"{URL}/{sid}", json=body, headers={**AUTH, "If-Match": "*"})
    assert r.status_code == 200 and confirmed_at() is None  # break-glass token: no
    r = client.post(f"{URL}/{sid}/amenities", json={"add": ["wifi"]}, headers=manager.headers)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["freshness"]["confirmed_days_ago"] == 0
    assert confirmed_at() is not None
    _confirmed_ago(conn, sid, None)
    r = client.patch(f"{URL}/{sid}", json=body, headers={**manager.headers, "If-Match": "*"})
    assert r.status_code == 200 and confirmed_at() is not None
    _confirmed_ago(conn, sid, None)
    from app.accounts.policy import SYSTEM
    from app.stations import service
    from app.stations.schemas import StationFeatureIn

    ctx = service.FeatureContext.build(client.app.state.settings, conn, None, "wgs84")
    service.import_collection(
        conn, [StationFeatureIn.model_validate(feature("E-1", name="改名"))], ctx, SYSTEM
    )
    assert confirmed_at() is None


# --- check-ins ---------------------------------------------------------------------------------


def test_checkins_count_and_validate(client, conn):
    sid = _create(client, "K-1")
    r = client.post(f"{URL}/{sid}/checkins", json={"outcome": "open"})
    assert r.status_code == 201, r.text
    assert r.json()["checkins"]["open"] == 1 and r.json()["checkins"]["closed"] == 0
    r = client.post(f"{URL}/{sid}/checkins", json={"outcome": "closed"})
    body = r.json()
    assert (body["station_id"], body["outcome"]) == (sid, "closed")
    assert (body["checkins"]["open"], body["checkins"]["closed"]) == (1, 1)
    assert body["checkins"]["last_at"] is not None
    key = conn.execute(
        text("SELECT DISTINCT client_key FROM checkins WHERE station_id = :s"), {"s": sid}
    ).scalars()
    assert len(list(key)) == 1  # stored with the client's (hashed) key
    assert client.post(f"{URL}/{sid}/checkins", json={"outcome": "maybe"}).status_code == 422
    assert client.post(f"{URL}/{sid}/checkins", json={}).status_code == 422
    r = client.post(f"{URL}/{UNKNOWN}/checkins", json={"outcome": "open"})
    assert (r.status_code, r.json()["field"]) == (404, "id")
    assert _fresh(client, sid)["checkins"]["closed"] == 1


def test_checkins_are_rate_limited_apart_from_reports(client):
    client.app.state.checkin_limiter = ReportLimiter("3/minute", namespace="checkins")
    client.app.state.report_limiter = ReportLimiter("3/minute")
    sid = _create(client, "K-2")
    for _ in range(3):
        assert client.post(f"{URL}/{sid}/checkins", json={"outcome": "open"}).status_code == 201
    r = client.post(f"{URL}/{sid}/checkins", json={"outcome": "open"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    r = client.post(f"{URL}/{sid}/reports", json={"kind": "other"})
    assert r.status_code == 201, r.text  # reports keep their own budget
    assert _fresh(client, sid)["checkins"]["open"] == 3


def test_default_checkin_limit_setting(settings):
    assert settings.checkin_rate_limit == "10/minute;50/day"
    assert settings.stale_days == 90


# --- the staleness list ------------------------------------------------------------------------


@pytest.fixture
def stale_world(client, conn):
    ids = {
        "never": _create(client, "S-never", district_code="420102", name="从未确认站"),
        "old": _create(client, "S-old", lon=114.301, district_code="420103", name="=HYPERLINK(1)"),
        "fresh": _create(client, "S-fresh", lon=114.302, district_code="420103", name="新鲜站"),
        "mid": _create(client, "S-mid", lon=114.303, district_code="420103", name="中等站"),
        "away": _create(
            client, "S-away", lon=114.06, lat=22.54, district_code="440305", name="深圳站"
        ),
    }
    _confirmed_ago(conn, ids["old"], "200 days 3 hours")
    _confirmed_ago(conn, ids["fresh"], "2 days")
    _confirmed_ago(conn, ids["mid"], "40 days 1 hour")
    for status, age in [
        ("open", "5 days"),  # overdue (escalate after 3 days)
        ("acknowledged", "1 day"),  # unanswered, not overdue
        ("acknowledged", "4 days"),  # overdue
        ("resolved", "10 days"),  # answered: counts nowhere
    ]:
        conn.execute(
            text(
                "INSERT INTO reports (station_id, kind, status, client_key, created_at) "
                f"VALUES (:s, 'other', :st, 'k', now() - interval '{age}')"
            ),
            {"s": ids["old"], "st": status},
        )
    return ids


def test_stale_list_for_a_district_admin(client, conn, stale_world):
    ids = stale_world
    da = make_user(conn, "stale-da", "district_admin", districts=("4201",))
    r = client.get(f"{URL}/stale", headers=da.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["days"], body["report_escalate_days"]) == (90, 3)
    got = [s["id"] for s in body["stations"] if s["id"] in ids.values()]
    assert got == [ids["never"], ids["old"]]  # never confirmed first; Shenzhen out of scope
    old = next(s for s in body["stations"] if s["id"] == ids["old"])
    assert (old["confirmed_days_ago"], old["open_reports"], old["overdue_reports"]) == (200, 3, 2)
    assert old["phone"] == "027-85551234" and old["district_code"] == "420103"
    r = client.get(f"{URL}/stale?days=30", headers=da.headers)
    got = [s["id"] for s in r.json()["stations"] if s["id"] in ids.values()]
    assert got == [ids["never"], ids["old"], ids["mid"]]
    r = client.get(f"{URL}/stale?days=0", headers=AUTH)
    got = {s["id"] for s in r.json()["stations"]}
    assert set(ids.values()) <= got  # admins: everywhere


def test_stale_call_list_csv(client, conn, stale_world):
    da = make_user(conn, "stale-csv", "district_admin", districts=("4201",))
    r = client.get(f"{URL}/stale?format=csv", headers=da.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["站点编号", "外部编号", "站点名称"]
    assert "联系电话" in rows[0] and "超期未处理反馈" in rows[0]
    names = [row[2] for row in rows[1:]]
    assert "'=HYPERLINK(1)" in names and "从未确认站" in names  # formula-safe
    assert "深圳站" not in names


@pytest.mark.parametrize(
    ("role", "want"),
    [("anonymous", 401), ("planner", 403), ("manager", 403), ("district_admin", 200)],
)
def test_stale_list_permissions(client, conn, role, want):
    sid = _create(client, "SP-1")
    headers = {}
    if role != "anonymous":
        headers = make_user(
            conn,
            f"sp-{role}",
            role,
            districts=("4201",) if role != "manager" else (),
            stations=(sid,) if role == "manager" else (),
        ).headers
    r = client.get(f"{URL}/stale", headers=headers)
    assert r.status_code == want, r.text
    r = client.get(f"{URL}/stale?format=csv", headers=headers)
    assert r.status_code == want


# --- the courier page --------------------------------------------------------------------------


def test_courier_page_shows_freshness_and_closure_end(client, conn):
    a = _create(client, "W-a", name="三天站")
    b = _create(client, "W-b", lon=114.3002, name="过期站")
    until = datetime(2026, 12, 3, 18, 0, tzinfo=UTC) + timedelta(hours=-8)  # 18:00 in Shanghai
    if until <= datetime.now(UTC):
        until = until.replace(year=datetime.now(UTC).year + 1)
    c = _create(
        client,
        "W-c",
        lon=114.3004,
        name="暂停站",
        status="temporarily_closed",
        closed_until=until.isoformat(),
    )
    _confirmed_ago(conn, a, "3 days 5 hours")
    _confirmed_ago(conn, b, "120 days")
    _confirmed_ago(conn, c, "1 hour")
    zh = client.get("/?lat=30.58&lon=114.30&open_now=false").text
    assert "3 天前已确认" in zh and "信息可能已过期" in zh and "今天已确认" in zh
    assert "暂停开放至 12月3日 18:00" in zh
    en = client.get("/?lat=30.58&lon=114.30&open_now=false&lang=en").text
    assert "confirmed 3 days ago" in en and "may be out of date" in en
    assert "temporarily closed until 3 Dec 18:00" in en
