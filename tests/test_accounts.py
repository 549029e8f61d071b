"""Accounts against real PostGIS: Argon2id hashing and rehash, password rules, the OAuth2
password login (no enumeration), token expiry and revocation, login throttling, the users API
and its scope, invitations, GET /me, and one audit event per user/invitation write.

Users are inserted with SQL and a password hash computed once per module (Argon2 costs tens of
milliseconds); tokens come from the service. The station permission matrix lives elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.accounts import queries, service
from app.accounts.credentials import Passwords, common_passwords
from app.config import Settings
from app.main import create_app
from tests.conftest import AUTH, TransactionDatabase

TOKEN_URL = "/api/v1/auth/token"
ME = "/api/v1/me"
USERS = "/api/v1/users"
INVITATIONS = "/api/v1/invitations"

PW = "Lantern-Bridge-4821"  # not on any common list; the same for every test user
NEW_PW = "Harbour-Kettle-9057"

#: Common passwords long enough to pass the length rule; the test module checks that each
#: really is on zxcvbn's list (so a rule that stopped consulting it would fail here).
COMMON = ("password1", "qwerty123", "1qaz2wsx", "iloveyou", "qwertyuiop")


# ------------------------------------------------------------------------------------------
# Fixtures and helpers
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def passwords(settings: Settings) -> Passwords:
    return Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


@pytest.fixture(scope="module")
def pw_hash(passwords: Passwords) -> str:
    """PW hashed once with the deployment's costs."""
    return passwords.hash(PW)


def make_user(
    conn: Connection,
    pw_hash: str | None,
    username: str,
    role: str = "manager",
    districts: tuple[str, ...] = (),
    stations: tuple[int, ...] = (),
) -> int:
    uid = queries.insert_user(
        conn, username, username.title(), role, list(districts), pw_hash, "test"
    )
    queries.set_stations(conn, uid, list(stations))
    return uid


def make_station(conn: Connection, external_id: str, district_code: str | None) -> int:
    return int(
        conn.execute(
            text(
                "INSERT INTO stations (external_id, name, district_code, amenities, status, geom) "
                "VALUES (:e, :n, :d, '{}'::text[], 'open', "
                "ST_SetSRID(ST_MakePoint(114.3, 30.58), 4326)) RETURNING id"
            ),
            {"e": external_id, "n": f"站点 {external_id}", "d": district_code},
        ).scalar_one()
    )


def token_for(conn: Connection, user_id: int, ttl_s: int = 3600) -> str:
    return str(service.issue_token(conn, user_id, ttl_s)["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, username: str, password: str) -> Any:
    return client.post(TOKEN_URL, data={"username": username, "password": password})


def stored_hash(conn: Connection, user_id: int) -> str | None:
    return conn.execute(
        text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
    ).scalar_one()


def mark(conn: Connection) -> int:
    """The newest audit event's id (events after it are the ones a test caused)."""
    return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_events")).scalar_one())


def events_since(conn: Connection, last: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT actor_kind, actor_id, actor_name, channel, action, subject, details, "
            "row_to_json(audit_events)::text AS raw FROM audit_events WHERE id > :m ORDER BY id"
        ),
        {"m": last},
    ).mappings()
    return [dict(r) for r in rows]


def one_event(conn: Connection, last: int, **expected: Any) -> dict[str, Any]:
    """Exactly one audit event since `last`, matching `expected`."""
    events = events_since(conn, last)
    assert len(events) == 1, events
    got = {k: events[0][k] for k in expected}
    assert got == expected
    return events[0]


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def varying(headers: Any) -> dict[str, str]:
    """Response headers without those that legitimately differ per request."""
    skip = {"date", "x-request-id", "server-timing"}
    return {k.lower(): v for k, v in headers.items() if k.lower() not in skip}


@contextmanager
def app_client(settings: Settings, conn: Connection, **update: Any) -> Iterator[TestClient]:
    """A fresh app (so a fresh login limiter) with some settings changed, its requests in the
    test's transaction like the `client` fixture's."""
    app = create_app(settings.model_copy(update=update))
    with TestClient(app) as tc:
        app.state.db = TransactionDatabase(conn)
        yield tc


# ------------------------------------------------------------------------------------------
# Hashing
# ------------------------------------------------------------------------------------------


def test_stored_hash_is_argon2id_phc_and_verifies(client, conn, passwords):
    r = client.post(
        USERS,
        json={
            "username": "li.hua",
            "display_name": "H",
            "role": "planner",
            "password": PW,
            "districts": ["4201"],
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert PW not in r.text and "argon2" not in r.text and "password" not in r.text
    stored = stored_hash(conn, r.json()["id"])
    assert stored is not None and stored.startswith("$argon2id$v=19$")
    assert PW not in stored
    assert passwords.verify(PW, stored) == (True, None)
    assert passwords.verify(PW + "x", stored) == (False, None)
    assert passwords.verify(PW, None) == (False, None)  # no account: a failure, not an error
    assert passwords.verify(PW, "not-a-hash") == (False, None)


def test_login_rehashes_a_hash_made_with_other_costs(client, conn, settings, passwords):
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))
    old = weak.hash(PW)
    assert "m=8192,t=1,p=1" in old
    uid = make_user(conn, old, "rehash-me")

    r = login(client, "rehash-me", PW)
    assert r.status_code == 200, r.text
    new = stored_hash(conn, uid)
    assert new is not None and new != old and new.startswith("$argon2id$")
    costs = (
        f"m={settings.argon2_memory_kib},t={settings.argon2_time_cost},"
        f"p={settings.argon2_parallelism}"
    )
    assert costs in new
    assert passwords.verify(PW, new) == (True, None)
    assert client.get(ME, headers=bearer(r.json()["access_token"])).status_code == 200

    # a hash already at the deployment's costs is left alone
    assert login(client, "rehash-me", PW).status_code == 200
    assert stored_hash(conn, uid) == new


# ------------------------------------------------------------------------------------------
# Password rules
# ------------------------------------------------------------------------------------------


def test_common_password_samples_are_on_zxcvbns_list():
    listed = common_passwords()
    assert len(listed) > 10_000
    for pw in COMMON:
        assert pw in listed, pw
    assert PW.lower() not in listed and NEW_PW.lower() not in listed


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("rules-a", "Ab3$x9"),  # shorter than the minimum (8)
        *[("rules-a", pw) for pw in COMMON],
        ("rules-a", "QWERTY123"),  # the list is matched without regard to case
        ("rules-a", "aaaaaaaaaa"),  # one repeated character
        ("rules-a", "%%%%%%%%%%%%"),
        ("zhangwei-2024", "zhangwei-2024"),  # the user name itself
        ("zhangwei-2024", "ZhangWei-2024"),
    ],
)
def test_weak_passwords_are_refused_naming_password(client, conn, username, password):
    before = mark(conn)
    r = client.post(
        USERS,
        json={"username": username, "display_name": "R", "role": "admin", "password": password},
        headers=AUTH,
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "password"
    assert password not in r.text
    assert not queries.username_taken(conn, username)
    assert events_since(conn, before) == []


def test_password_minimum_length_is_the_setting(client, settings):
    n = settings.password_min_length
    short = "Kx7#qW9!mZ2$pL5@vB8&"[: n - 1]
    ok = "Kx7#qW9!mZ2$pL5@vB8&"[:n]
    body = {"username": "len-check", "display_name": "L", "role": "admin"}
    r = client.post(USERS, json={**body, "password": short}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "password"
    assert str(n) in r.json()["detail"]
    assert client.post(USERS, json={**body, "password": ok}, headers=AUTH).status_code == 201


def test_a_good_password_is_accepted_and_logs_in(client):
    r = client.post(
        USERS,
        json={"username": "good-pw", "display_name": "G", "role": "admin", "password": PW},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert login(client, "good-pw", PW).status_code == 200


def test_weak_passwords_are_refused_on_change_and_on_acceptance(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "changer", "admin")
    r = client.patch(f"{USERS}/{uid}", json={"password": "qwerty123"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "password"
    assert stored_hash(conn, uid) == pw_hash

    inv = client.post(INVITATIONS, json={"role": "admin", "username": "invitee"}, headers=AUTH)
    code = inv.json()["code"]
    r = client.post(f"{INVITATIONS}/{code}/accept", json={"password": "invitee"})
    assert r.status_code == 422 and r.json()["field"] == "password"
    # the invitation is not spent by a refused password
    r = client.post(f"{INVITATIONS}/{code}/accept", json={"password": PW})
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------------------------------
# Login
# ------------------------------------------------------------------------------------------


def test_login_returns_a_bearer_token_that_works(client, conn, settings, pw_hash):
    uid = make_user(conn, pw_hash, "li.na", "planner", districts=("4201",))
    r = login(client, "li.na", PW)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_ttl_s
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 40
    assert "no-store" in r.headers["cache-control"]

    me = client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == uid and me.json()["username"] == "li.na"

    # the user name is matched without regard to case or surrounding spaces
    assert login(client, "  Li.Na ", PW).status_code == 200
    # each login is its own session with its own token
    assert login(client, "li.na", PW).json()["access_token"] != body["access_token"]


def test_login_session_expires_after_the_ttl(client, conn, settings, pw_hash):
    uid = make_user(conn, pw_hash, "ttl-user")
    assert login(client, "ttl-user", PW).status_code == 200
    secs = conn.execute(
        text(
            "SELECT extract(epoch FROM expires_at - created_at) FROM auth_sessions "
            "WHERE user_id = :u"
        ),
        {"u": uid},
    ).scalar_one()
    assert abs(float(secs) - settings.token_ttl_s) < 60


def test_no_enumeration_unknown_user_and_wrong_password_answer_alike(client, conn, pw_hash):
    make_user(conn, pw_hash, "known-user", "admin")
    gone = make_user(conn, pw_hash, "gone-user", "admin")
    make_user(conn, None, "no-password")  # created without a password
    assert client.delete(f"{USERS}/{gone}", headers=AUTH).status_code == 204

    wrong = login(client, "known-user", PW + "!")
    unknown = login(client, "nobody-here", PW)
    removed = login(client, "gone-user", PW)
    passwordless = login(client, "no-password", PW)
    empty = login(client, "known-user", "")
    for r in (wrong, unknown, removed, passwordless):
        assert r.status_code == 401, r.text
        assert r.json() == wrong.json()
        assert varying(r.headers) == varying(wrong.headers)
    assert "known-user" not in wrong.text
    # a missing form field is a plain validation error, not a login answer
    assert empty.status_code == 422


# ------------------------------------------------------------------------------------------
# Token expiry and revocation
# ------------------------------------------------------------------------------------------


def test_an_expired_token_is_refused(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "expiring")
    tok = token_for(conn, uid)
    assert client.get(ME, headers=bearer(tok)).status_code == 200
    conn.execute(
        text(
            "UPDATE auth_sessions SET expires_at = now() - interval '1 second' "
            "WHERE token_hash = :h"
        ),
        {"h": sha256(tok)},
    )
    r = client.get(ME, headers=bearer(tok))
    assert r.status_code == 401
    assert r.json()["field"] == "Authorization"
    assert r.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_only_the_presented_token(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "leaver")
    t1 = login(client, "leaver", PW).json()["access_token"]
    t2 = token_for(conn, uid)
    r = client.delete(TOKEN_URL, headers=bearer(t1))
    assert r.status_code == 204 and r.content == b""
    assert client.get(ME, headers=bearer(t1)).status_code == 401
    assert client.delete(TOKEN_URL, headers=bearer(t1)).status_code == 401
    assert client.get(ME, headers=bearer(t2)).status_code == 200
    # ADMIN_TOKEN is not a session: it is changed in the settings, not revoked
    assert client.delete(TOKEN_URL, headers=AUTH).status_code == 422
    assert client.get(ME, headers=AUTH).status_code == 200
    assert client.delete(TOKEN_URL).status_code == 401


def test_password_change_by_an_admin_revokes_all_tokens(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "victim", "planner", districts=("42",))
    other = make_user(conn, pw_hash, "bystander")
    t1, t2, keep = token_for(conn, uid), token_for(conn, uid), token_for(conn, other)
    before = mark(conn)
    r = client.patch(f"{USERS}/{uid}", json={"password": NEW_PW}, headers=AUTH)
    assert r.status_code == 200, r.text
    for t in (t1, t2):
        assert client.get(ME, headers=bearer(t)).status_code == 401
    assert client.get(ME, headers=bearer(keep)).status_code == 200  # only this user's
    ev = one_event(
        conn,
        before,
        actor_kind="admin_token",
        actor_name="admin-token",
        channel="api",
        action="user.update",
        subject=f"user:{uid}",
    )
    assert ev["details"]["password_changed"] is True and ev["details"]["sessions_ended"] == 2
    assert NEW_PW not in ev["raw"] and "argon2" not in ev["raw"]
    assert login(client, "victim", PW).status_code == 401
    assert login(client, "victim", NEW_PW).status_code == 200


def test_own_password_change_needs_the_current_one_and_revokes_all_tokens(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "self-changer")
    t1, t2 = token_for(conn, uid), token_for(conn, uid)

    before = mark(conn)
    r = client.patch(
        f"{USERS}/{uid}",
        json={"password": NEW_PW, "current_password": PW + "?"},
        headers=bearer(t1),
    )
    assert r.status_code == 403 and r.json()["field"] == "current_password"
    r = client.patch(f"{USERS}/{uid}", json={"password": NEW_PW}, headers=bearer(t1))
    assert r.status_code == 403 and r.json()["field"] == "current_password"
    assert stored_hash(conn, uid) == pw_hash
    assert events_since(conn, before) == []
    assert client.get(ME, headers=bearer(t2)).status_code == 200  # nothing revoked yet

    r = client.patch(
        f"{USERS}/{uid}", json={"password": NEW_PW, "current_password": PW}, headers=bearer(t1)
    )
    assert r.status_code == 200, r.text
    for t in (t1, t2):  # the token used for the change too
        assert client.get(ME, headers=bearer(t)).status_code == 401
    one_event(
        conn,
        before,
        actor_kind="user",
        actor_id=uid,
        actor_name="self-changer",
        channel="api",
        action="user.update",
        subject=f"user:{uid}",
    )
    assert login(client, "self-changer", NEW_PW).status_code == 200


def test_removal_revokes_all_tokens_and_keeps_the_row(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "removed-one", "planner", districts=("4201",))
    t1, t2 = token_for(conn, uid), token_for(conn, uid)
    before = mark(conn)
    assert client.delete(f"{USERS}/{uid}", headers=AUTH).status_code == 204
    for t in (t1, t2):
        assert client.get(ME, headers=bearer(t)).status_code == 401
    n = conn.execute(
        text("SELECT count(*) FROM auth_sessions WHERE user_id = :u"), {"u": uid}
    ).scalar_one()
    assert n == 0
    one_event(
        conn,
        before,
        actor_kind="admin_token",
        actor_name="admin-token",
        channel="api",
        action="user.remove",
        subject=f"user:{uid}",
    )
    assert client.get(f"{USERS}/{uid}", headers=AUTH).status_code == 404
    assert client.delete(f"{USERS}/{uid}", headers=AUTH).status_code == 404
    # the row stays (edits stay attributed) and its name is not given out again
    assert queries.username_taken(conn, "removed-one")
    r = client.post(
        USERS,
        json={
            "username": "removed-one",
            "display_name": "R",
            "role": "planner",
            "districts": ["4201"],
        },
        headers=AUTH,
    )
    assert r.status_code == 409


def test_tokens_are_stored_only_as_their_sha256(client, conn, pw_hash):
    uid = make_user(conn, pw_hash, "hashed-tokens")
    tok = login(client, "hashed-tokens", PW).json()["access_token"]
    rows = (
        conn.execute(
            text(
                "SELECT token_hash, row_to_json(auth_sessions)::text AS raw FROM auth_sessions "
                "WHERE user_id = :u"
            ),
            {"u": uid},
        )
        .mappings()
        .all()
    )
    assert len(rows) == 1
    assert rows[0]["token_hash"] == sha256(tok)
    assert tok not in rows[0]["raw"]
    everything = conn.execute(
        text("SELECT string_agg(row_to_json(auth_sessions)::text, '') FROM auth_sessions")
    ).scalar_one()
    assert tok not in everything and tok[3:] not in everything


# ------------------------------------------------------------------------------------------
# Throttling (each test builds its own app: a fresh in-memory limiter)
# ------------------------------------------------------------------------------------------


def _normalised(r: Any) -> dict[str, Any]:
    body = r.json()
    return {**body, "detail": re.sub(r"\d+", "N", body["detail"])}


def test_account_throttle_same_for_right_password_and_unknown_user(settings, conn, pw_hash):
    assert settings.login_rate_limit_account.startswith("5/minute")
    make_user(conn, pw_hash, "hammered")
    with app_client(settings, conn) as c:
        for _ in range(5):
            assert login(c, "hammered", "wrong-guess-123").status_code == 401
        known = login(c, "hammered", PW)  # the right password, too late
        assert known.status_code == 429, known.text
        assert 1 <= int(known.headers["retry-after"]) <= 61
        assert "access_token" not in known.text

        for _ in range(5):
            assert login(c, "no-such-person", "wrong-guess-123").status_code == 401
        unknown = login(c, "no-such-person", PW)
        assert unknown.status_code == 429
        assert 1 <= int(unknown.headers["retry-after"]) <= 61
        assert _normalised(unknown) == _normalised(known)
        assert set(varying(unknown.headers)) == set(varying(known.headers))

        # the throttle is per account: another one still logs in (same address, 12 failures
        # so far, under the per-address budget)
        make_user(conn, pw_hash, "unaffected")
        assert login(c, "unaffected", PW).status_code == 200


def test_successful_logins_are_not_counted(settings, conn, pw_hash):
    make_user(conn, pw_hash, "frequent")
    with app_client(settings, conn) as c:
        for _ in range(7):
            assert login(c, "frequent", PW).status_code == 200
        assert login(c, "frequent", "wrong-guess-123").status_code == 401


def test_address_throttle_trips_across_user_names(settings, conn, pw_hash):
    make_user(conn, pw_hash, "innocent")
    with app_client(settings, conn, login_rate_limit_address="3/minute") as c:
        for name in ("guess-a", "guess-b", "guess-c"):
            assert login(c, name, "wrong-guess-123").status_code == 401
        r = login(c, "innocent", PW)  # a different account, its first attempt
        assert r.status_code == 429, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert login(c, "guess-d", "wrong-guess-123").status_code == 429


# ------------------------------------------------------------------------------------------
# Users API and scope
# ------------------------------------------------------------------------------------------


@pytest.fixture
def world(conn, pw_hash) -> dict[str, Any]:
    """Stations in Wuhan (4201…) and Huangshi (4202…), and a district admin for 4201."""
    w: dict[str, Any] = {
        "s_jianghan": make_station(conn, "ACC-1", "420103"),
        "s_hongshan": make_station(conn, "ACC-2", "420111"),
        "s_huangshi": make_station(conn, "ACC-3", "420202"),
        "s_nowhere": make_station(conn, "ACC-4", None),
    }
    w["da"] = make_user(conn, pw_hash, "da-wuhan", "district_admin", districts=("4201",))
    w["da_tok"] = token_for(conn, w["da"])
    return w


def test_admin_creates_any_role(client, conn, world):
    cases: list[dict[str, Any]] = [
        {"username": "new-admin", "role": "admin"},
        {"username": "new-da", "role": "district_admin", "districts": ["42", "11"]},
        {"username": "new-mgr", "role": "manager", "stations": [world["s_huangshi"]]},
        {"username": "new-planner", "role": "planner", "districts": ["4202"]},
    ]
    for case in cases:
        before = mark(conn)
        r = client.post(USERS, json={"display_name": "新用户", **case}, headers=AUTH)
        assert r.status_code == 201, r.text
        got = r.json()
        assert r.headers["location"] == f"{USERS}/{got['id']}"
        assert got["role"] == case["role"]
        assert got["districts"] == sorted(case.get("districts", []))
        assert got["stations"] == case.get("stations", [])
        assert got["created_by"] == "admin-token"
        assert "password_hash" not in got
        one_event(
            conn,
            before,
            actor_kind="admin_token",
            actor_id=None,
            actor_name="admin-token",
            channel="api",
            action="user.create",
            subject=f"user:{got['id']}",
        )


def test_district_admin_creates_within_scope_only(client, conn, world):
    da = bearer(world["da_tok"])
    ok: list[dict[str, Any]] = [
        {"username": "mgr-jianghan", "role": "manager", "stations": [world["s_jianghan"]]},
        {"username": "da-hongshan", "role": "district_admin", "districts": ["420111"]},
        {"username": "da-wuchang", "role": "district_admin", "districts": ["420106"]},
        {"username": "planner-wh", "role": "planner", "districts": ["4201"]},
    ]
    for case in ok:
        before = mark(conn)
        r = client.post(USERS, json={"display_name": "下级", **case}, headers=da)
        assert r.status_code == 201, (case, r.text)
        assert r.json()["created_by"] == "da-wuhan"
        one_event(
            conn,
            before,
            actor_kind="user",
            actor_id=world["da"],
            actor_name="da-wuhan",
            channel="api",
            action="user.create",
            subject=f"user:{r.json()['id']}",
        )

    refused: list[tuple[dict[str, Any], str]] = [
        ({"username": "da-hubei", "role": "district_admin", "districts": ["42"]}, "districts"),
        (
            {"username": "da-mixed", "role": "district_admin", "districts": ["4201", "4202"]},
            "districts",
        ),
        ({"username": "planner-hs", "role": "planner", "districts": ["4202"]}, "districts"),
        ({"username": "boss", "role": "admin"}, "role"),
        ({"username": "mgr-hs", "role": "manager", "stations": [world["s_huangshi"]]}, "stations"),
        (
            {
                "username": "mgr-split",
                "role": "manager",
                "stations": [world["s_jianghan"], world["s_huangshi"]],
            },
            "stations",
        ),
        ({"username": "mgr-none", "role": "manager", "stations": [world["s_nowhere"]]}, "stations"),
        ({"username": "mgr-empty", "role": "manager"}, "stations"),
    ]
    for case, field in refused:
        before = mark(conn)
        r = client.post(USERS, json={"display_name": "越权", **case}, headers=da)
        assert r.status_code == 403, (case, r.text)
        assert r.json()["field"] == field, (case, r.json())
        assert not queries.username_taken(conn, case["username"])
        assert events_since(conn, before) == []


def test_district_admin_lists_exactly_the_users_in_scope(client, conn, pw_hash, world):
    s_jh, s_hs, s_hsh, s_none = (
        world["s_jianghan"],
        world["s_hongshan"],
        world["s_huangshi"],
        world["s_nowhere"],
    )
    # (username, role, districts, stations, in the Wuhan district admin's scope?)
    population = [
        ("root", "admin", (), (), False),
        ("da-hubei", "district_admin", ("42",), (), False),  # above
        ("da-huangshi", "district_admin", ("4202",), (), False),
        ("da-jianghan", "district_admin", ("420103",), (), True),
        ("da-two", "district_admin", ("420103", "420111"), (), True),
        ("da-straddle", "district_admin", ("420103", "420202"), (), False),
        ("planner-wh", "planner", ("4201",), (), True),
        ("planner-hs", "planner", ("4202",), (), False),
        ("planner-all", "planner", (), (), False),  # no district scope: not the DA's
        ("mgr-jh", "manager", (), (s_jh,), True),
        ("mgr-two", "manager", (), (s_jh, s_hs), True),
        ("mgr-split", "manager", (), (s_jh, s_hsh), False),
        ("mgr-hs", "manager", (), (s_hsh,), False),
        ("mgr-unplaced", "manager", (), (s_none,), False),
        ("mgr-idle", "manager", (), (), False),
    ]
    ids = {
        name: make_user(conn, pw_hash, name, role, districts, stations)
        for name, role, districts, stations, _ in population
    }
    removed = make_user(conn, pw_hash, "mgr-removed", "manager", (), (s_jh,))
    queries.remove_user(conn, removed)

    expected = {ids[name] for name, *_, inside in population if inside} | {world["da"]}
    r = client.get(USERS, headers=bearer(world["da_tok"]))
    assert r.status_code == 200, r.text
    got = {u["id"] for u in r.json()["users"]}
    assert got == expected
    assert r.json()["numberMatched"] == len(expected)

    # paged, in id order, the same set
    pages: list[int] = []
    for offset in range(0, len(expected) + 2, 2):
        page = client.get(
            USERS, params={"limit": 2, "offset": offset}, headers=bearer(world["da_tok"])
        ).json()
        pages += [u["id"] for u in page["users"]]
    assert pages == sorted(expected)

    # each user's own GET agrees with the list
    for name, uid in ids.items():
        status = client.get(f"{USERS}/{uid}", headers=bearer(world["da_tok"])).status_code
        assert status == (200 if uid in expected else 403), name
    assert client.get(f"{USERS}/{removed}", headers=bearer(world["da_tok"])).status_code == 404

    # an admin sees every live account
    everyone = client.get(USERS, params={"limit": 500}, headers=AUTH).json()
    all_ids = {u["id"] for u in everyone["users"]}
    assert set(ids.values()) | {world["da"]} <= all_ids and removed not in all_ids


def test_managers_and_planners_may_not_list_users_but_may_read_themselves(
    client, conn, pw_hash, world
):
    mgr = make_user(conn, pw_hash, "mgr-self", "manager", (), (world["s_jianghan"],))
    planner = make_user(conn, pw_hash, "planner-self", "planner", ("4201",))
    for uid in (mgr, planner):
        tok = token_for(conn, uid)
        r = client.get(USERS, headers=bearer(tok))
        assert r.status_code == 403, r.text
        assert client.get(f"{USERS}/{uid}", headers=bearer(tok)).json()["id"] == uid
        assert client.get(f"{USERS}/{world['da']}", headers=bearer(tok)).status_code == 403
        r = client.post(
            USERS,
            json={
                "username": "x-" + str(uid),
                "display_name": "X",
                "role": "planner",
                "districts": ["4201"],
            },
            headers=bearer(tok),
        )
        assert r.status_code == 403
    assert client.get(USERS).status_code == 401


def test_get_user_out_of_scope_is_403_and_unknown_is_404(client, conn, pw_hash, world):
    outside = make_user(conn, pw_hash, "hs-planner", "planner", ("4202",))
    da = bearer(world["da_tok"])
    r = client.get(f"{USERS}/{outside}", headers=da)
    assert r.status_code == 403 and r.json()["field"] == "id"
    assert "hs-planner" not in r.text
    r = client.get(f"{USERS}/987654321", headers=da)
    assert r.status_code == 404 and r.json()["field"] == "id"
    assert client.get(f"{USERS}/987654321", headers=AUTH).status_code == 404
    # and the same for changes and removal
    assert (
        client.patch(f"{USERS}/{outside}", json={"display_name": "Y"}, headers=da).status_code
        == 403
    )
    assert client.delete(f"{USERS}/{outside}", headers=da).status_code == 403
    assert client.get(f"{USERS}/{outside}", headers=AUTH).json()["display_name"] == "Hs-Planner"


def test_no_one_changes_their_own_role_or_scope(client, conn, pw_hash, world):
    mgr = make_user(conn, pw_hash, "mgr-climber", "manager", (), (world["s_jianghan"],))
    admin = make_user(conn, pw_hash, "real-admin", "admin")
    before = mark(conn)
    for uid, patch in [
        (world["da"], {"role": "admin"}),
        (world["da"], {"districts": ["42"]}),
        (mgr, {"role": "district_admin", "districts": ["4201"]}),
        (mgr, {"stations": [world["s_jianghan"], world["s_huangshi"]]}),
        (admin, {"role": "planner", "districts": ["42"]}),
    ]:
        tok = token_for(conn, uid)
        r = client.patch(f"{USERS}/{uid}", json=patch, headers=bearer(tok))
        assert r.status_code == 403, (patch, r.text)
    assert events_since(conn, before) == []
    me = client.get(ME, headers=bearer(world["da_tok"])).json()
    assert me["role"] == "district_admin" and me["districts"] == ["4201"]
    # a display name is one's own to change
    r = client.patch(
        f"{USERS}/{mgr}", json={"display_name": "王站长"}, headers=bearer(token_for(conn, mgr))
    )
    assert r.status_code == 200 and r.json()["display_name"] == "王站长"
    one_event(conn, before, actor_id=mgr, action="user.update", subject=f"user:{mgr}")
    # nor removes their own account
    assert (
        client.delete(f"{USERS}/{admin}", headers=bearer(token_for(conn, admin))).status_code == 403
    )


def test_district_admin_changes_and_removes_within_scope(client, conn, pw_hash, world):
    da = bearer(world["da_tok"])
    mgr = make_user(conn, pw_hash, "mgr-move", "manager", (), (world["s_jianghan"],))
    before = mark(conn)
    r = client.patch(f"{USERS}/{mgr}", json={"stations": [world["s_hongshan"]]}, headers=da)
    assert r.status_code == 200 and r.json()["stations"] == [world["s_hongshan"]]
    one_event(
        conn,
        before,
        actor_name="da-wuhan",
        channel="api",
        action="user.update",
        subject=f"user:{mgr}",
    )
    before = mark(conn)
    r = client.patch(f"{USERS}/{mgr}", json={"stations": [world["s_huangshi"]]}, headers=da)
    assert r.status_code == 403 and r.json()["field"] == "stations"
    r = client.patch(f"{USERS}/{mgr}", json={"role": "admin", "stations": []}, headers=da)
    assert r.status_code == 403 and r.json()["field"] == "role"
    assert events_since(conn, before) == []
    assert client.delete(f"{USERS}/{mgr}", headers=da).status_code == 204
    one_event(conn, before, actor_name="da-wuhan", action="user.remove", subject=f"user:{mgr}")


def test_duplicate_username_is_409(client, conn, pw_hash):
    make_user(conn, pw_hash, "taken-name", "admin")
    before = mark(conn)
    for name in ("taken-name", "TAKEN-NAME"):
        r = client.post(
            USERS, json={"username": name, "display_name": "D", "role": "admin"}, headers=AUTH
        )
        assert r.status_code == 409, (name, r.text)
        assert r.json()["field"] == "username"
    # the schema's pattern is what is enforced: no padding
    padded = client.post(
        USERS, json={"username": " taken-name ", "display_name": "D", "role": "admin"}, headers=AUTH
    )
    assert padded.status_code == 422 and padded.json()["field"] == "username"
    assert events_since(conn, before) == []
    # user names are folded to lower case when created, as when logging in
    r = client.post(
        USERS, json={"username": "Zhao.Liu", "display_name": "D", "role": "admin"}, headers=AUTH
    )
    assert r.status_code == 201 and r.json()["username"] == "zhao.liu"


# ------------------------------------------------------------------------------------------
# Invitations
# ------------------------------------------------------------------------------------------


def test_invitation_code_is_shown_once_and_stored_as_its_sha256(client, conn, world):
    before = mark(conn)
    r = client.post(
        INVITATIONS,
        json={"role": "manager", "stations": [world["s_jianghan"]], "display_name": "李站长"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert "no-store" in r.headers["cache-control"]
    inv = r.json()
    code = inv["code"]
    assert inv["accept_url"].endswith(f"/{code}/accept")
    row = (
        conn.execute(
            text(
                "SELECT code_hash, row_to_json(invitations)::text AS raw FROM invitations "
                "WHERE id = :id"
            ),
            {"id": inv["id"]},
        )
        .mappings()
        .one()
    )
    assert row["code_hash"] == sha256(code)
    assert code not in row["raw"]
    ev = one_event(
        conn,
        before,
        actor_kind="admin_token",
        actor_name="admin-token",
        channel="api",
        action="invitation.create",
        subject=f"invitation:{inv['id']}",
    )
    assert code not in ev["raw"]


def test_accepting_an_invitation_creates_the_user_with_its_scope(client, conn, world):
    r = client.post(
        INVITATIONS,
        json={"role": "manager", "stations": [world["s_hongshan"], world["s_jianghan"]]},
        headers=bearer(world["da_tok"]),
    )
    assert r.status_code == 201, r.text
    inv = r.json()
    before = mark(conn)
    r = client.post(
        f"{INVITATIONS}/{inv['code']}/accept",
        json={"password": PW, "username": "wang.wu", "display_name": "王五"},
    )
    assert r.status_code == 201, r.text
    user, token = r.json()["user"], r.json()["token"]
    assert user["username"] == "wang.wu" and user["display_name"] == "王五"
    assert user["role"] == "manager"
    assert user["stations"] == sorted([world["s_hongshan"], world["s_jianghan"]])
    assert user["districts"] == []
    assert user["created_by"] == "da-wuhan"
    assert r.headers["location"] == f"{USERS}/{user['id']}"
    assert token["token_type"] == "bearer"
    me = client.get(ME, headers=bearer(token["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    assert me.json()["stations"] == user["stations"]
    one_event(
        conn,
        before,
        actor_kind="user",
        actor_id=user["id"],
        actor_name="wang.wu",
        channel="api",
        action="invitation.accept",
        subject=f"invitation:{inv['id']}",
    )
    accepted = conn.execute(
        text("SELECT accepted_at IS NOT NULL, user_id FROM invitations WHERE id = :id"),
        {"id": inv["id"]},
    ).one()
    assert tuple(accepted) == (True, user["id"])
    assert login(client, "wang.wu", PW).status_code == 200

    # a code is spent once
    before = mark(conn)
    r = client.post(
        f"{INVITATIONS}/{inv['code']}/accept", json={"password": PW, "username": "wang.liu"}
    )
    assert r.status_code == 404 and r.json()["field"] == "code"
    assert not queries.username_taken(conn, "wang.liu")
    assert events_since(conn, before) == []


def test_accepted_district_admin_gets_the_invited_districts(client, conn, world):
    r = client.post(
        INVITATIONS,
        json={"role": "district_admin", "districts": ["420106"], "username": "da-wuchang"},
        headers=bearer(world["da_tok"]),
    )
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    # the invitation names the user: another name is refused
    r = client.post(f"{INVITATIONS}/{code}/accept", json={"password": PW, "username": "other"})
    assert r.status_code == 422 and r.json()["field"] == "username"
    r = client.post(f"{INVITATIONS}/{code}/accept", json={"password": PW})
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    assert (user["username"], user["role"], user["districts"], user["stations"]) == (
        "da-wuchang",
        "district_admin",
        ["420106"],
        [],
    )
    tok = r.json()["token"]["access_token"]
    assert client.get(ME, headers=bearer(tok)).json()["districts"] == ["420106"]


def test_an_expired_invitation_is_404(client, conn, world):
    r = client.post(INVITATIONS, json={"role": "planner", "districts": ["4201"]}, headers=AUTH)
    inv = r.json()
    conn.execute(
        text("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": inv["id"]},
    )
    r = client.post(
        f"{INVITATIONS}/{inv['code']}/accept", json={"password": PW, "username": "late"}
    )
    assert r.status_code == 404 and r.json()["field"] == "code"
    assert not queries.username_taken(conn, "late")
    # and an unknown code answers the same
    r2 = client.post(f"{INVITATIONS}/{'x' * 32}/accept", json={"password": PW, "username": "late"})
    assert r2.status_code == 404 and r2.json() == r.json()


def test_invitation_expiry_is_the_setting(client, conn, settings):
    inv = client.post(INVITATIONS, json={"role": "admin"}, headers=AUTH).json()
    days = conn.execute(
        text(
            "SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM invitations "
            "WHERE id = :id"
        ),
        {"id": inv["id"]},
    ).scalar_one()
    assert abs(float(days) - settings.invitation_ttl_days) < 0.01


def test_district_admin_cannot_invite_above_scope(client, conn, pw_hash, world):
    da = bearer(world["da_tok"])
    before = mark(conn)
    for body, field in [
        ({"role": "admin"}, "role"),
        ({"role": "district_admin", "districts": ["42"]}, "districts"),
        ({"role": "planner", "districts": ["4202"]}, "districts"),
        ({"role": "manager", "stations": [world["s_huangshi"]]}, "stations"),
    ]:
        r = client.post(INVITATIONS, json=body, headers=da)
        assert r.status_code == 403, (body, r.text)
        assert r.json()["field"] == field
        assert "code" not in r.json()
    mgr = make_user(conn, pw_hash, "mgr-inviter", "manager", (), (world["s_jianghan"],))
    r = client.post(
        INVITATIONS,
        json={"role": "manager", "stations": [world["s_jianghan"]]},
        headers=bearer(token_for(conn, mgr)),
    )
    assert r.status_code == 403
    assert client.post(INVITATIONS, json={"role": "admin"}).status_code == 401
    assert conn.execute(text("SELECT count(*) FROM invitations")).scalar_one() == 0
    assert events_since(conn, before) == []


def test_district_admin_invitation_is_audited_as_theirs(client, conn, world):
    before = mark(conn)
    r = client.post(
        INVITATIONS,
        json={"role": "planner", "districts": ["420103"]},
        headers=bearer(world["da_tok"]),
    )
    assert r.status_code == 201
    one_event(
        conn,
        before,
        actor_kind="user",
        actor_id=world["da"],
        actor_name="da-wuhan",
        channel="api",
        action="invitation.create",
        subject=f"invitation:{r.json()['id']}",
    )


# ------------------------------------------------------------------------------------------
# GET /me
# ------------------------------------------------------------------------------------------


def test_me_for_a_user(client, conn, pw_hash, world):
    uid = make_user(conn, pw_hash, "mgr-me", "manager", (), (world["s_jianghan"],))
    r = client.get(ME, headers=bearer(token_for(conn, uid)))
    assert r.status_code == 200
    me = r.json()
    assert me["id"] == uid and me["username"] == "mgr-me" and me["display_name"] == "Mgr-Me"
    assert me["kind"] == "user" and me["role"] == "manager"
    assert me["role_label"] == {"zh": "站点负责人", "en": "Station manager"}
    assert me["stations"] == [world["s_jianghan"]] and me["districts"] == []
    assert "password_hash" not in me
    da = client.get(ME, headers=bearer(world["da_tok"])).json()
    assert (da["role"], da["districts"], da["kind"]) == ("district_admin", ["4201"], "user")


def test_me_for_the_admin_token(client):
    r = client.get(ME, headers=AUTH)
    assert r.status_code == 200
    me = r.json()
    assert (me["kind"], me["role"], me["id"], me["username"]) == (
        "admin_token",
        "admin",
        None,
        "admin-token",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer yz_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer test-admin-tokenx"},
    ],
)
def test_me_without_a_valid_token_is_401_with_bearer_challenge(client, headers):
    r = client.get(ME, headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["field"] == "Authorization"


@pytest.mark.parametrize("name", ["a\x00b", "张三", "x" * 300, " ", "demo manager"])
def test_a_user_name_that_cannot_exist_is_an_unknown_user(client, name):
    """NUL, spaces, Chinese or over-long names never reach the database: the same 401 as any
    unknown user (found by sending a NUL byte: it was a 500)."""
    r = client.post("/api/v1/auth/token", data={"username": name, "password": "whatever-1"})
    unknown = client.post(
        "/api/v1/auth/token", data={"username": "nobody-here", "password": "whatever-1"}
    )
    assert r.status_code == 401 or (r.status_code == 422 and len(name) > 256), r.text
    if r.status_code == 401:
        assert r.json() == unknown.json()
