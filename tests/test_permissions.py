"""The permission matrix: every station write (and the scoped reads) × every role × own station,
station in scope, station out of scope, unknown id → the status the issue's role table gives,
with nothing leaked or written when refused.

The expected table below is written from the issue's roles table, not from app/accounts/policy.py:
admin — everything; district admin (here 4201, Wuhan) — create, edit, delete, revert, decide
locations for stations in their districts; manager — edit operational fields of their own
stations, propose locations, read their history; planner — no station writes; nobody without a
token.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.app_routes import write_routes
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

ROLES = ("anonymous", "planner", "manager", "district_admin", "admin", "admin_token")
TARGETS = ("own", "in_scope", "out_of_scope", "unknown")
UNKNOWN = 987_654_321

#: What each role may do, and to which targets ("own" = the manager's station, which also lies
#: inside the district admin's 4201; "in_scope" = another 4201 station; "out_of_scope" = a
#: Shenzhen station).
ALLOWED: dict[str, dict[str, set[str]]] = {
    "anonymous": {},
    "planner": {},
    "manager": {
        "patch": {"own"},
        "amenities": {"own"},
        "propose": {"own"},
        "history": {"own"},
        "answer": {"own"},
        "reports": {"own"},
        "inspections": {"own"},
        "confirm": {"own"},
    },
    "district_admin": {
        "patch": {"own", "in_scope"},
        "amenities": {"own", "in_scope"},
        "delete": {"own", "in_scope"},
        "revert": {"own", "in_scope"},
        "history": {"own", "in_scope"},
        "accept": {"own", "in_scope"},
        "reject": {"own", "in_scope"},
        "create": {"in_scope"},
        "answer": {"own", "in_scope"},
        "reports": {"own", "in_scope"},
        "inspect": {"own", "in_scope"},
        "inspections": {"own", "in_scope"},
        "confirm": {"own", "in_scope"},
    },
    "admin": {
        a: {"own", "in_scope", "out_of_scope"}
        for a in (
            "patch",
            "amenities",
            "delete",
            "revert",
            "history",
            "propose",
            "accept",
            "reject",
            "create",
            "answer",
            "reports",
            "inspect",
            "inspections",
            "confirm",
        )
    },
}
ALLOWED["admin_token"] = ALLOWED["admin"]

SUCCESS = {
    "patch": 200,
    "amenities": 200,
    "delete": 204,
    "revert": 200,
    "history": 200,
    "propose": 201,
    "accept": 200,
    "reject": 200,
    "create": 201,
    "answer": 200,
    "reports": 200,
    "inspect": 201,
    "inspections": 200,
    "confirm": 200,
}
#: Scoped reads: they change nothing when allowed either.
READS = {"history", "reports", "inspections"}

DISTRICTS = {"own": "420102", "in_scope": "420103", "out_of_scope": "440305"}
PLACES = {"own": (114.30, 30.60), "in_scope": (114.28, 30.58), "out_of_scope": (114.06, 22.54)}
SECRET_PHONE = "027-99990000"


def expected(role: str, action: str, target: str) -> int:
    if role == "anonymous":
        return 401
    if target == "unknown":
        return 404
    if target in ALLOWED[role].get(action, set()):
        return SUCCESS[action]
    return 403


@pytest.fixture
def world(client, conn) -> dict[str, Any]:
    """Three stations, a pending location proposal on each, and one account per role."""
    ids = {}
    for target, district in DISTRICTS.items():
        lon, lat = PLACES[target]
        r = client.post(
            "/api/v1/stations",
            json=feature(
                f"PERM-{target}",
                lon,
                lat,
                district_code=district,
                name=f"权限测试站 {target}",
                phone=SECRET_PHONE,
            ),
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        ids[target] = r.json()["id"]
    proposals = {}
    for target, sid in ids.items():
        proposals[target] = conn.execute(
            text(
                "INSERT INTO location_proposals (station_id, geom, proposed_by) VALUES "
                "(:s, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'someone') RETURNING id"
            ),
            {"s": sid, "lon": PLACES[target][0] + 0.0005, "lat": PLACES[target][1]},
        ).scalar_one()
    reports = {
        target: conn.execute(
            text(
                "INSERT INTO reports (station_id, kind, comment, client_key) "
                "VALUES (:s, 'other', '权限测试站的反馈', 'k') RETURNING id"
            ),
            {"s": sid},
        ).scalar_one()
        for target, sid in ids.items()
    }
    people = {
        "planner": make_user(conn, "perm-planner", "planner"),
        "manager": make_user(conn, "perm-manager", "manager", stations=(ids["own"],)),
        "district_admin": make_user(conn, "perm-da", "district_admin", districts=("4201",)),
        "admin": make_user(conn, "perm-admin", "admin"),
    }
    headers = {role: p.headers for role, p in people.items()}
    headers["admin_token"] = AUTH
    headers["anonymous"] = {}
    revisions = {
        target: conn.execute(
            text("SELECT min(id) FROM station_revisions WHERE station_id = :s"), {"s": sid}
        ).scalar_one()
        for target, sid in ids.items()
    }
    return {
        "ids": ids,
        "proposals": proposals,
        "reports": reports,
        "headers": headers,
        "revisions": revisions,
    }


def _call(client, world, action: str, target: str, headers: dict[str, str]):
    sid = world["ids"].get(target, UNKNOWN)
    if action == "patch":
        return client.patch(
            f"/api/v1/stations/{sid}",
            json={"type": "Feature", "properties": {"phone": "027-11112222"}},
            headers={**headers, "If-Match": "*"},
        )
    if action == "amenities":
        return client.post(
            f"/api/v1/stations/{sid}/amenities", json={"add": ["wifi"]}, headers=headers
        )
    if action == "delete":
        return client.delete(f"/api/v1/stations/{sid}", headers=headers)
    if action == "revert":
        rev = world["revisions"].get(target, 1)
        return client.post(f"/api/v1/stations/{sid}/revert?to={rev}", headers=headers)
    if action == "history":
        return client.get(f"/api/v1/stations/{sid}/history", headers=headers)
    if action == "answer":
        rid = world["reports"].get(target, UNKNOWN)
        return client.patch(
            f"/api/v1/reports/{rid}", json={"status": "acknowledged"}, headers=headers
        )
    if action == "reports":
        return client.get(f"/api/v1/stations/{sid}/reports", headers=headers)
    if action == "inspect":
        return client.post(
            f"/api/v1/stations/{sid}/inspections",
            json={"inspected_on": "2026-11-20", "checklist": {"signage": True}, "level": 3},
            headers=headers,
        )
    if action == "inspections":
        return client.get(f"/api/v1/stations/{sid}/inspections", headers=headers)
    if action == "propose":
        return client.post(
            f"/api/v1/stations/{sid}/proposals",
            json={"geometry": {"type": "Point", "coordinates": [114.31, 30.61]}},
            headers=headers,
        )
    if action in ("accept", "reject"):
        pid = world["proposals"].get(target, UNKNOWN)
        return client.post(f"/api/v1/proposals/{pid}/{action}", headers=headers)
    if action == "confirm":
        return client.post(f"/api/v1/stations/{sid}/confirm", headers=headers)
    if action == "create":
        lon, lat = PLACES[target]
        return client.post(
            "/api/v1/stations",
            json=feature(f"NEW-{target}", lon, lat, district_code=DISTRICTS[target]),
            headers=headers,
        )
    raise AssertionError(action)


def _state(conn) -> tuple[Any, ...]:
    """Everything a refused request must leave untouched."""
    return (
        conn.execute(
            text("SELECT id, version, phone, amenities, ST_AsText(geom) FROM stations ORDER BY id")
        ).all(),
        conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one(),
        conn.execute(text("SELECT id, status FROM location_proposals ORDER BY id")).all(),
        conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one(),
        conn.execute(text("SELECT id, status, note FROM reports ORDER BY id")).all(),
        conn.execute(text("SELECT count(*) FROM inspections")).scalar_one(),
        conn.execute(text("SELECT id, level FROM stations ORDER BY id")).all(),
    )


CASES = [
    (role, action, target)
    for role in ROLES
    for action in SUCCESS
    for target in TARGETS
    if not (action == "create" and target in ("own", "unknown"))
]


@pytest.mark.parametrize(("role", "action", "target"), CASES)
def test_matrix(client, conn, world, role, action, target):
    want = expected(role, action, target)
    before = _state(conn)
    r = _call(client, world, action, target, world["headers"][role])
    assert r.status_code == want, (role, action, target, r.text)
    if want >= 400:
        body = r.json()
        assert set(body) <= {"detail", "field"}, body  # the error shape, no station data
        assert SECRET_PHONE not in r.text and "权限测试站" not in r.text
        assert _state(conn) == before, "a refused request changed something"
        if want == 401:
            assert r.headers["WWW-Authenticate"] == "Bearer"
    else:
        assert _state(conn) != before or action in READS


def test_every_write_route_is_in_the_matrix(client):
    """A new write route must join the matrix (or this list of account routes tested in
    tests/test_accounts.py)."""
    routes = write_routes(client.app, "/api/")
    assert len(routes) >= 25, routes  # the guard sees the routes (not FastAPI's wrappers)
    covered = {
        ("POST", "/api/v1/stations"),
        ("PATCH", "/api/v1/stations/{station_id:int}"),
        ("DELETE", "/api/v1/stations/{station_id:int}"),
        ("POST", "/api/v1/stations/{station_id:int}/amenities"),
        ("POST", "/api/v1/stations/{station_id:int}/revert"),
        ("POST", "/api/v1/stations/{station_id:int}/proposals"),
        ("POST", "/api/v1/proposals/{proposal_id}/accept"),
        ("POST", "/api/v1/proposals/{proposal_id}/reject"),
        ("PATCH", "/api/v1/reports/{report_id}"),
        ("POST", "/api/v1/stations/{station_id:int}/inspections"),
        ("POST", "/api/v1/stations/{station_id:int}/confirm"),
    }
    elsewhere = {
        # accounts: tests/test_accounts.py
        ("POST", "/api/v1/auth/token"),
        ("DELETE", "/api/v1/auth/token"),
        ("POST", "/api/v1/users"),
        ("PATCH", "/api/v1/users/{user_id}"),
        ("DELETE", "/api/v1/users/{user_id}"),
        ("POST", "/api/v1/invitations"),
        ("POST", "/api/v1/invitations/{code}/accept"),
        # planner uploads: test_planner_uploads_by_role below
        ("PUT", "/api/v1/districts"),
        ("PUT", "/api/v1/demand/{name}"),
        ("DELETE", "/api/v1/demand/{name}"),
        # spreadsheet import: roles, scope per row, nothing written when refused —
        # tests/test_spreadsheets.py
        ("POST", "/api/v1/stations/import"),
        # public by design: couriers' reports, coverage runs (computations, no stored edits)
        ("POST", "/api/v1/stations/{station_id:int}/reports"),
        ("POST", "/api/v1/stations/{station_id:int}/checkins"),
    }
    public_compute = {(m, p) for m, p in routes if p.startswith("/api/v1/coverage")}
    missing = routes - covered - elsewhere - public_compute
    assert not missing, f"write routes outside the permission matrix: {sorted(missing)}"
    assert not (covered | elsewhere) - routes, "listed routes that no longer exist"


#: A valid value for every station property a manager may not set. Derived checks below make
#: a new property in the PATCH schema fail this module until it is listed here or made a
#: manager field on purpose.
MANAGER_REFUSED = {
    "external_id": "X-1",
    "name": "改名",
    "address": "别处",
    "district_code": "420104",
    "host_type": "bank",
    "operator": "某银行",
    "access": "public",
    "level": 3,
    "duplicate_of": None,  # filled in with a real station id by the test
}


def test_every_non_manager_field_is_in_the_mass_assignment_test():
    from app.accounts.policy import MANAGER_FIELDS
    from app.stations.schemas import StationPatchProperties

    fields = set(StationPatchProperties.model_fields)
    assert fields - MANAGER_FIELDS <= set(MANAGER_REFUSED), fields - MANAGER_FIELDS
    assert fields >= MANAGER_FIELDS


@pytest.mark.parametrize("field", sorted(MANAGER_REFUSED))
def test_manager_mass_assignment_is_refused_naming_the_field(client, conn, world, field):
    from app.stations.schemas import StationPatchProperties

    if field not in StationPatchProperties.model_fields:
        pytest.skip(f"{field} is not a station property (yet)")
    manager = world["headers"]["manager"]
    sid = world["ids"]["own"]
    value = MANAGER_REFUSED[field]
    props: dict[str, Any] = {"phone": "027-1", field: value}
    if field == "duplicate_of":
        props.update(duplicate_of=world["ids"]["in_scope"], status="duplicate")
    before = _state(conn)
    # Together with fields a manager may set: the refused one still wins, nothing is written.
    r = client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", "properties": props},
        headers={**manager, "If-Match": "*"},
    )
    assert r.status_code == 403, r.text
    assert r.json()["field"] == f"properties.{field}"
    assert _state(conn) == before


def test_manager_cannot_move_a_station_but_can_propose(client, conn, world):
    manager = world["headers"]["manager"]
    sid = world["ids"]["own"]
    r = client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.31, 30.61]}},
        headers={**manager, "If-Match": "*"},
    )
    assert r.status_code == 403
    assert r.json()["field"] == "geometry"
    assert "proposals" in r.json()["detail"]


def test_manager_may_set_every_operational_field(client, world):
    manager = world["headers"]["manager"]
    sid = world["ids"]["own"]
    props = {
        "amenities": ["toilet"],
        "opening_hours": "Mo-Fr 09:00-17:00",
        "status": "temporarily_closed",
        "phone": "027-12345678",
        "capacity": 3,
        "notes": "请从侧门进入",
    }
    r = client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", "properties": props},
        headers={**manager, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    got = r.json()["properties"]
    assert {k: got[k] for k in props} == props


def test_district_admin_moves_a_station_only_within_their_districts(client, conn, world):
    da = world["headers"]["district_admin"]
    sid = world["ids"]["in_scope"]
    before = _state(conn)
    out = client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", "properties": {"district_code": "440305"}},
        headers={**da, "If-Match": "*"},
    )
    assert out.status_code == 403
    assert out.json()["field"] == "properties.district_code"
    assert _state(conn) == before
    inside = client.patch(
        f"/api/v1/stations/{sid}",
        json={"type": "Feature", "properties": {"district_code": "420106"}},
        headers={**da, "If-Match": "*"},
    )
    assert inside.status_code == 200


def test_scoped_lists_come_from_sql(client, conn, world):
    """GET /me/stations for each role equals the scope computed here from the stations table."""
    rows = conn.execute(text("SELECT id, district_code FROM stations")).all()
    want = {
        "manager": {world["ids"]["own"]},
        "district_admin": {i for i, d in rows if d and d.startswith("4201")},
        "admin": {i for i, _ in rows},
        "planner": set(),
    }
    for role, ids in want.items():
        r = client.get("/api/v1/me/stations?limit=500", headers=world["headers"][role])
        assert r.status_code == 200
        assert {f["id"] for f in r.json()["features"]} == ids, role
        assert r.json()["numberMatched"] == len(ids)
    assert client.get("/api/v1/me/stations").status_code == 401


def test_proposal_lists_are_scoped(client, world):
    got = {}
    for role in ("manager", "district_admin", "admin", "planner"):
        r = client.get("/api/v1/proposals", headers=world["headers"][role])
        assert r.status_code == 200
        got[role] = {p["station_id"] for p in r.json()["proposals"]}
    ids = world["ids"]
    assert got["manager"] == {ids["own"]}
    assert got["district_admin"] == {ids["own"], ids["in_scope"]}
    assert got["admin"] == set(ids.values())
    assert got["planner"] == set()


def _upload_districts(client, headers):
    square = {
        "type": "Feature",
        "properties": {"code": "420102", "name": "江岸区"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[114.2, 30.5], [114.4, 30.5], [114.4, 30.7], [114.2, 30.7]]],
        },
    }
    square["geometry"]["coordinates"][0].append([114.2, 30.5])
    return client.put(
        "/api/v1/districts?mode=upsert",
        json={"type": "FeatureCollection", "features": [square]},
        headers=headers,
    )


@pytest.mark.parametrize(
    ("role", "want"),
    [
        ("anonymous", 401),
        ("manager", 403),
        ("district_admin", 403),
        ("planner", 200),
        ("admin", 200),
        ("admin_token", 200),
    ],
)
def test_planner_uploads_by_role(client, conn, world, role, want):
    headers = world["headers"][role]
    r = _upload_districts(client, headers)
    assert r.status_code == want, r.text
    csv = "lon,lat,weight\n114.30,30.60,5\n"
    d = client.put(
        "/api/v1/demand/perm-layer?unit=persons",
        content=csv.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert d.status_code == (201 if want == 200 else want), d.text
    if want == 200:
        gone = client.delete("/api/v1/demand/perm-layer", headers=headers)
        assert gone.status_code == 204


def test_openapi_security_matches_what_the_server_enforces(client):
    """Every operation the OpenAPI document marks as needing the bearer scheme answers 401
    without a token (and documents 401); every other operation answers without one."""
    doc = client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["flows"]["password"]["tokenUrl"] == (
        "/api/v1/auth/token"
    )
    secured = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            concrete = (
                path.replace("{station_id}", "1")
                .replace("{proposal_id}", "1")
                .replace("{user_id}", "1")
                .replace("{name}", "layer")
                .replace("{code}", "abcdefgh")
            )
            if op.get("security") == [{"bearer": []}]:
                secured.append((method, path))
                assert "401" in op["responses"], (method, path)
                r = client.request(method.upper(), concrete, json={})
                assert r.status_code == 401, (method, path, r.status_code, r.text)
            else:
                assert "security" not in op, (method, path)
                if (method, path) != ("post", "/api/v1/auth/token"):  # a wrong password: 401
                    assert "401" not in op["responses"], (method, path)
    assert len(secured) >= 20
