"""Inspections and star levels: a district union records a visit against the checklist
(Zhejiang's "八有" by default, configurable), its findings and the station's level (1-5);
both are audited; couriers see the level and filter by it; only district admins and admins
set it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from app.accounts.policy import Actor
from app.config import Settings
from app.errors import InvalidInputError
from app.inspections import service
from app.inspections.checklist import BA_YOU
from app.inspections.service import InspectionIn
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

API = "/api/v1"
EIGHT = [
    "signage",
    "premises",
    "facilities",
    "services",
    "management",
    "online_map",
    "publicity",
    "activities",
]


def _station(client, ext: str, district: str, lon: float, lat: float, **props: Any) -> int:
    r = client.post(
        f"{API}/stations",
        json=feature(ext, lon, lat, district_code=district, name=f"检查测试站 {ext}", **props),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def world(client, conn) -> dict[str, Any]:
    ids = {
        "a": _station(client, "IN-A", "420102", 114.30, 30.60),
        "b": _station(client, "IN-B", "420103", 114.28, 30.58),
        "c": _station(client, "IN-C", "440305", 114.06, 22.54),
    }
    people = {
        "manager": make_user(conn, "in-manager", "manager", stations=(ids["a"],)),
        "district_admin": make_user(conn, "in-da", "district_admin", districts=("4201",)),
        "planner": make_user(conn, "in-planner", "planner"),
        "admin": make_user(conn, "in-admin", "admin"),
    }
    return {"ids": ids, "people": people, "h": {k: p.headers for k, p in people.items()}}


def _inspect(client, sid: int, headers: dict[str, str], **body: Any):
    body.setdefault("inspected_on", "2026-11-20")
    return client.post(f"{API}/stations/{sid}/inspections", json=body, headers=headers)


def test_the_default_checklist_is_zhejiangs_eight(client, world):
    assert [t.code for t in BA_YOU] == EIGHT
    assert all(t.zh.startswith("有") and t.en for t in BA_YOU)
    r = client.get(f"{API}/stations/{world['ids']['a']}/inspections", headers=world["h"]["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["code"] for i in body["checklist"]] == EIGHT
    assert body["checklist"][5] == {
        "code": "online_map",
        "zh": "有线上地图可查",
        "en": "Findable on online maps",
    }
    assert body["inspections"] == [] and body["level"] is None


def test_an_inspection_with_a_level_is_recorded_and_audited(client, conn, world):
    sid = world["ids"]["a"]
    da = world["people"]["district_admin"]
    version = client.get(f"{API}/stations/{sid}").json()["properties"]["version"]
    checks = {code: code != "activities" for code in EIGHT}
    r = _inspect(
        client,
        sid,
        da.headers,
        checklist=checks,
        findings="暖心活动未开展",
        level=4,
        inspector="江岸区总工会 王芳",
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["inspected_on"] == "2026-11-20" and got["inspector"] == "江岸区总工会 王芳"
    assert got["passed"] == 7 and got["level"] == 4 and got["findings"] == "暖心活动未开展"
    assert [(c["code"], c["ok"]) for c in got["checklist"]] == list(checks.items())
    station = client.get(f"{API}/stations/{sid}").json()["properties"]
    assert station["level"] == 4 and station["version"] == version + 1
    rev = conn.execute(
        text(
            "SELECT action, actor_kind, actor_id, actor_name, changes, meta "
            "FROM station_revisions WHERE station_id = :s ORDER BY id DESC LIMIT 1"
        ),
        {"s": sid},
    ).one()
    assert rev[:4] == ("inspection", "user", da.id, "in-da")
    assert rev[4] == {"level": [None, 4]} and rev[5] == {"inspection": got["id"]}
    event = conn.execute(
        text(
            "SELECT actor_name, subject, details FROM audit_events "
            "WHERE action = 'inspection.create'"
        )
    ).one()
    assert event[:2] == ("in-da", f"station:{sid}")
    assert event[2]["inspection"] == got["id"] and event[2]["level"] == 4
    stored = conn.execute(
        text("SELECT checklist, inspector_id FROM inspections WHERE id = :i"), {"i": got["id"]}
    ).one()
    assert stored == (checks, da.id)
    listed = client.get(f"{API}/stations/{sid}/inspections", headers=world["h"]["manager"])
    assert listed.status_code == 200
    assert listed.json()["level"] == 4 and [i["id"] for i in listed.json()["inspections"]] == [
        got["id"]
    ]


def test_an_inspection_without_a_level_leaves_the_station_alone(client, conn, world):
    sid = world["ids"]["b"]
    revs = conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one()
    r = _inspect(client, sid, world["h"]["district_admin"], checklist={"signage": True})
    assert r.status_code == 201, r.text
    assert r.json()["inspector"] == "in-da"  # the account recording it, by default
    assert r.json()["checklist"][1] == {
        "code": "premises",
        "zh": "有合适的场地标准",
        "en": "Suitable premises",
        "ok": None,
    }
    assert conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one() == revs
    # the same level twice: one revision only
    _inspect(client, sid, world["h"]["district_admin"], level=3)
    _inspect(client, sid, world["h"]["district_admin"], level=3, inspected_on="2026-11-21")
    assert conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one() == revs + 1
    listed = client.get(f"{API}/stations/{sid}/inspections", headers=world["h"]["admin"]).json()
    assert [i["inspected_on"] for i in listed["inspections"]] == [
        "2026-11-21",
        "2026-11-20",
        "2026-11-20",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"checklist": {"signage": True, "wifi": True}}, "checklist.wifi"),
        ({"checklist": {"signage": "yes"}}, "checklist.signage"),
        ({"checklist": {"signage": 1}}, "checklist.signage"),
        ({"level": 6}, "level"),
        ({"level": 0}, "level"),
        ({"level": "4"}, "level"),
        ({"findings": "长" * 2001}, "findings"),
        ({"inspected_on": "2026-13-01"}, "inspected_on"),
        ({"inspected_on": 0}, "inspected_on"),
        ({"inspected_on": "20261120"}, "inspected_on"),
        ({"inspected_on": "2999-01-01"}, "inspected_on"),
        ({"extra": True}, "extra"),
    ],
)
def test_bad_inspections_are_422_naming_the_field(client, conn, world, body, field):
    r = _inspect(client, world["ids"]["a"], world["h"]["district_admin"], **body)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json().get("errors", [])] + [r.json().get("field")]
    assert any(f is not None and f.startswith(field) for f in fields), r.json()
    assert conn.execute(text("SELECT count(*) FROM inspections")).scalar_one() == 0


@pytest.mark.parametrize(
    ("who", "target", "write", "read"),
    [
        ("manager", "a", 403, 200),
        ("manager", "b", 403, 403),
        ("district_admin", "a", 201, 200),
        ("district_admin", "b", 201, 200),
        ("district_admin", "c", 403, 403),
        ("planner", "a", 403, 403),
        ("admin", "c", 201, 200),
        ("anonymous", "a", 401, 401),
        ("district_admin", "unknown", 404, 404),
    ],
)
def test_who_inspects_and_who_reads(client, conn, world, who, target, write, read):
    sid = world["ids"].get(target, 987_654_321)
    headers = world["h"].get(who, {})
    w = _inspect(client, sid, headers, level=2)
    assert w.status_code == write, w.text
    if write != 201:
        assert conn.execute(text("SELECT count(*) FROM inspections")).scalar_one() == 0
        assert (
            conn.execute(text("SELECT count(*) FROM stations WHERE level IS NOT NULL")).scalar_one()
            == 0
        )
    assert client.get(f"{API}/stations/{sid}/inspections", headers=headers).status_code == read


def test_a_configured_checklist_replaces_the_default(conn, world, monkeypatch):
    items = [
        {"code": "sign", "zh": "有标识", "en": "Sign"},
        {"code": "water", "zh": "有饮水", "en": "Water"},
    ]
    monkeypatch.setenv(
        "YIZHAN_INSPECTION_CHECKLIST",
        '[{"code": "sign", "zh": "有标识", '
        '"en": "Sign"}, {"code": "water", "zh": "有饮水", "en": "Water"}]',
    )
    settings = Settings()
    assert settings.inspection_checklist == items
    assert [t.code for t in service.items(settings)] == ["sign", "water"]
    actor = Actor(kind="user", role="admin", name="in-admin", user_id=world["people"]["admin"].id)
    sid = world["ids"]["a"]
    done = service.record_inspection(
        conn,
        settings,
        actor,
        sid,
        InspectionIn.model_validate({"inspected_on": "2026-11-01", "checklist": {"water": False}}),
    )
    assert [(c["code"], c["ok"]) for c in done["checklist"]] == [("sign", None), ("water", False)]
    with pytest.raises(InvalidInputError) as err:
        service.record_inspection(
            conn,
            settings,
            actor,
            sid,
            InspectionIn.model_validate(
                {"inspected_on": "2026-11-01", "checklist": {"signage": True}}
            ),
        )
    assert err.value.field == "checklist.signage"


@pytest.mark.parametrize(
    "bad",
    [
        "[]",
        '[{"code": "Sign", "zh": "有", "en": "x"}]',
        '[{"code": "sign", "zh": "", "en": "x"}]',
        '[{"code": "sign", "zh": "有"}]',
        '[{"code": "a", "zh": "甲", "en": "a"}, {"code": "a", "zh": "乙", "en": "b"}]',
    ],
)
def test_a_bad_checklist_setting_is_refused_at_start(monkeypatch, bad):
    monkeypatch.setenv("YIZHAN_INSPECTION_CHECKLIST", bad)
    with pytest.raises(ValidationError):
        Settings()


# --- the level on the station -----------------------------------------------------------------


def _patch_level(client, sid: int, headers: dict[str, str], level: Any):
    return client.patch(
        f"{API}/stations/{sid}",
        json={"type": "Feature", "properties": {"level": level}},
        headers={**headers, "If-Match": "*"},
    )


def test_only_district_admins_and_admins_set_the_level(client, conn, world):
    sid = world["ids"]["a"]
    refused = _patch_level(client, sid, world["h"]["manager"], 5)
    assert refused.status_code == 403
    assert refused.json()["field"] == "properties.level"
    assert (
        conn.execute(text("SELECT level FROM stations WHERE id = :s"), {"s": sid}).scalar() is None
    )
    ok = _patch_level(client, sid, world["h"]["district_admin"], 3)
    assert ok.status_code == 200, ok.text
    assert ok.json()["properties"]["level"] == 3
    assert _patch_level(client, sid, world["h"]["admin"], 5).json()["properties"]["level"] == 5
    assert _patch_level(client, sid, world["h"]["admin"], 6).status_code == 422


def test_couriers_see_the_level_and_filter_by_it(client, world):
    ids = world["ids"]
    da = world["h"]["district_admin"]
    assert _inspect(client, ids["a"], da, level=4).status_code == 201
    assert _inspect(client, ids["b"], da, level=2).status_code == 201
    unrated = _station(client, "IN-D", "420103", 114.29, 30.59)
    one = client.get(f"{API}/stations/{ids['a']}").json()["properties"]
    assert one["level"] == 4
    assert client.get(f"{API}/stations/{unrated}").json()["properties"]["level"] is None

    def listed(query: str) -> set[int]:
        r = client.get(f"{API}/stations?{query}")
        assert r.status_code == 200, r.text
        return {f["id"] for f in r.json()["features"]}

    assert listed("level_min=3") == {ids["a"]}
    assert listed("level_min=2") == {ids["a"], ids["b"]}
    assert listed("level_min=1") == {ids["a"], ids["b"]}  # unrated stations are left out
    assert unrated in listed("limit=500")
    near = client.get(f"{API}/stations/nearest?lat=30.59&lon=114.29&k=10&level_min=3")
    assert [f["id"] for f in near.json()["features"]] == [ids["a"]]
    near_all = client.get(f"{API}/stations/nearest?lat=30.59&lon=114.29&k=10")
    assert {f["id"] for f in near_all.json()["features"]} >= {ids["a"], ids["b"], unrated}
    for bad in ("0", "6", "x", "2.5"):
        r = client.get(f"{API}/stations?level_min={bad}")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "level_min"
