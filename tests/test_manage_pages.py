"""The /manage pages over HTTP (TestClient, real PostGIS): signing in with a cookie session
(flags, throttling, no enumeration), CSRF refused on every form post, scope (another manager's
station editor is a 403 page), the editor (fields by role, hours advice and the 7-day preview,
a conflicting edit shown side by side with nothing lost), history, users and invitations, and
hostile text escaped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from app.accounts.credentials import Passwords
from app.web.manage import COOKIE, LOGIN_CSRF_COOKIE, csrf_token
from tests.app_routes import write_routes
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import Person, make_user

PASSWORD = "correct horse battery staple 7"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture(scope="module")
def password_hash() -> str:
    return Passwords(1, 1024, 1).hash(PASSWORD)


def _station(client, ext: str, **props) -> int:
    r = client.post("/api/v1/stations", json=feature(ext, **props), headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
def town(client, conn, password_hash):
    """Two Jianghan stations kept by two managers, one Wuchang station, a district admin of
    Jianghan (420103) and one of Wuhan (4201)."""
    a = _station(client, "M-A", name="江汉一号驿站")
    b = _station(client, "M-B", name="江汉二号驿站")
    c = _station(client, "M-C", name="武昌驿站", district_code="420106")
    people = {
        "zhang": make_user(conn, "zhang", "manager", stations=(a,), password_hash=password_hash),
        "li": make_user(conn, "li-si", "manager", stations=(b,), password_hash=password_hash),
        "jh": make_user(
            conn, "jh-admin", "district_admin", districts=("420103",), password_hash=password_hash
        ),
    }
    return {"a": a, "b": b, "c": c, **people}


def login_csrf(client) -> str:
    r = client.get("/manage/login")
    assert r.status_code == 200
    return r.cookies.get(LOGIN_CSRF_COOKIE) or client.cookies.get(LOGIN_CSRF_COOKIE)


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    token = login_csrf(client)
    return client.post(
        "/manage/login",
        data={"username": username, "password": password, "csrf": token, **extra},
        follow_redirects=False,
    )


def page_csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no csrf field on the page"
    return m.group(1)


def signed_in(client, who: Person) -> str:
    """Sign in as `who`; the session's CSRF value."""
    r = sign_in(client, who.username)
    assert r.status_code == 303, r.text
    return csrf_token(client.cookies.get(COOKIE))


# --- signing in ----------------------------------------------------------------------------


def test_login_page_is_chinese_by_default_and_english_on_request(client):
    zh = client.get("/manage/login")
    assert zh.status_code == 200 and 'lang="zh-CN"' in zh.text and "登录驿站管理" in zh.text
    en = client.get("/manage/login?lang=en")
    assert 'lang="en"' in en.text and "Sign in to station management" in en.text


def test_pages_need_a_session(client, town):
    for path in ("/manage", f"/manage/stations/{town['a']}", "/manage/users", "/manage/reports"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/manage/login?next=")


def test_login_sets_a_cookie_session_with_safe_flags(client, conn, town):
    r = sign_in(client, "zhang", next=f"/manage/stations/{town['a']}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/manage/stations/{town['a']}"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http here; https requests get Secure (next test)
    token = client.cookies.get(COOKIE)
    kind, ttl = conn.execute(
        text(
            "SELECT kind, extract(epoch FROM expires_at - created_at) FROM auth_sessions "
            "WHERE user_id = :u ORDER BY id"  # the sign-in's is the newest (the fixture's first)
        ),
        {"u": town["zhang"].id},
    ).all()[-1]
    # expires_at is stamped in Python after the transaction's now(): the password hash and a
    # busy machine sit between them, so allow a minute (the point: hours, not days or seconds)
    assert kind == "cookie" and abs(float(ttl) - client.app.state.settings.token_ttl_s) < 60
    assert token and client.get("/manage").status_code == 200


def test_cookie_is_secure_over_https(client, town):
    client.base_url = "https://testserver"
    r = sign_in(client, "zhang")
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "secure" in cookie.lower()


def test_open_redirect_after_login_is_refused(client, town):
    r = sign_in(client, "zhang", next="https://evil.example/")
    assert r.headers["location"] == "/manage"
    client.cookies.clear()
    r = sign_in(client, "zhang", next="//evil.example/manage")
    assert r.headers["location"] == "/manage"


def test_wrong_password_and_unknown_user_get_the_same_answer(client, town):
    wrong = sign_in(client, "zhang", "not the password at all")
    unknown = sign_in(client, "nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    msg = re.compile(r'id="login-error">([^<]*)<')
    assert msg.search(wrong.text).group(1) == msg.search(unknown.text).group(1)
    assert COOKIE not in client.cookies


def test_login_is_throttled_like_the_api(client, town):
    statuses = [sign_in(client, "li-si", f"wrong password {i}").status_code for i in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    r = sign_in(client, "li-si")  # even the right password, while throttled
    assert r.status_code == 429 and "retry-after" in r.headers


def test_cookie_session_does_not_authenticate_the_api(client, town):
    signed_in(client, town["zhang"])
    token = client.cookies.get(COOKIE)
    # the cookie alone: the API ignores it
    r = client.patch(
        f"/api/v1/stations/{town['a']}",
        json={"type": "Feature", "properties": {"phone": "027-1"}},
        headers={"If-Match": "*"},
    )
    assert r.status_code == 401
    # nor is a cookie session accepted as a bearer token
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    # and a bearer token is no page session
    client.cookies.clear()
    client.cookies.set(COOKIE, town["zhang"].token)
    assert client.get("/manage", follow_redirects=False).status_code == 303


def test_logout_revokes_the_session(client, conn, town):
    csrf = signed_in(client, town["zhang"])
    token = client.cookies.get(COOKIE)
    r = client.post("/manage/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/manage/login"
    client.cookies.set(COOKIE, token)  # replaying the old cookie
    assert client.get("/manage", follow_redirects=False).status_code == 303
    n = conn.execute(
        text("SELECT count(*) FROM auth_sessions WHERE user_id = :u AND kind = 'cookie'"),
        {"u": town["zhang"].id},
    ).scalar_one()
    assert n == 0


# --- CSRF ------------------------------------------------------------------------------------


def test_every_form_post_without_the_csrf_value_is_refused(client, conn, town):
    # the login form: no pre-login cookie pair
    r = client.post(
        "/manage/login", data={"username": "zhang", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 403 and COOKIE not in client.cookies
    signed_in(client, town["jh"])
    before = conn.execute(
        text("SELECT version, phone FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    posts = [
        (f"/manage/stations/{town['a']}", {"action": "save", "version": "1", "phone": "027-9"}),
        (f"/manage/stations/{town['a']}/confirm", {}),
        ("/manage/invitations", {"role": "manager", "stations": str(town["a"])}),
        (f"/manage/users/{town['li'].id}/remove", {}),
        ("/manage/reports/1", {"status": "resolved", "note": "x"}),
        (f"/manage/stations/{town['a']}/inspections", {"inspected_on": "2026-01-01"}),
        ("/manage/invitations/accept", {"code": "x" * 20, "password": "whatever 123 !"}),
        (f"/manage/stations/{town['a']}/proposals", {"lon": "114.3", "lat": "30.6"}),
        ("/manage/proposals/1", {"decision": "accept"}),
        ("/manage/import", {}),
        ("/manage/import/apply", {"upload": "x"}),
        ("/manage/logout", {}),
    ]
    # every form post of the pages is in the list (a new one must join it)
    routes = {path for _, path in write_routes(client.app, "/manage")}
    shapes = {
        "/manage/stations/{station_id}": f"/manage/stations/{town['a']}",
        "/manage/stations/{station_id}/confirm": f"/manage/stations/{town['a']}/confirm",
        "/manage/stations/{station_id}/inspections": f"/manage/stations/{town['a']}/inspections",
        "/manage/stations/{station_id}/proposals": f"/manage/stations/{town['a']}/proposals",
        "/manage/users/{user_id}/remove": f"/manage/users/{town['li'].id}/remove",
        "/manage/reports/{report_id}": "/manage/reports/1",
        "/manage/proposals/{proposal_id}": "/manage/proposals/1",
    }
    assert {shapes.get(r, r) for r in routes} - {"/manage/login"} == {p for p, _ in posts}
    for path, data in posts:
        for forged in ({}, {"csrf": "0" * 64}):
            r = client.post(path, data={**data, **forged}, follow_redirects=False)
            assert r.status_code == 403, (path, r.status_code)
            assert "text/html" in r.headers["content-type"]
    after = conn.execute(
        text("SELECT version, phone FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    assert after == before
    assert (
        conn.execute(
            text("SELECT removed_at FROM users WHERE id = :i"), {"i": town["li"].id}
        ).scalar_one()
        is None
    )
    assert client.get("/manage").status_code == 200  # logout was refused too


def test_the_csrf_value_of_another_session_does_not_work(client, town):
    other = csrf_token("someone-elses-session-token")
    signed_in(client, town["zhang"])
    r = client.post(
        f"/manage/stations/{town['a']}",
        data={"csrf": other, "action": "save", "version": "1", "phone": "027-9"},
    )
    assert r.status_code == 403


# --- scope -----------------------------------------------------------------------------------


def test_managers_see_their_stations_only(client, town):
    signed_in(client, town["zhang"])
    home = client.get("/manage")
    assert "江汉一号驿站" in home.text and "江汉二号驿站" not in home.text
    r = client.get(f"/manage/stations/{town['b']}")
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "无权编辑此站点" in r.text
    csrf = page_csrf(client.get(f"/manage/stations/{town['a']}").text)
    r = client.post(
        f"/manage/stations/{town['b']}",
        data={"csrf": csrf, "action": "save", "version": "1", "phone": "027-9"},
    )
    assert r.status_code == 403
    assert client.get(f"/manage/stations/{town['b']}/history").status_code == 403
    assert client.get("/manage/stations/999999").status_code == 404
    assert client.get("/manage/users").status_code == 403


def test_district_admin_sees_the_district(client, town):
    signed_in(client, town["jh"])
    home = client.get("/manage")
    assert "江汉一号驿站" in home.text and "江汉二号驿站" in home.text
    assert "武昌驿站" not in home.text
    assert client.get(f"/manage/stations/{town['c']}").status_code == 403
    assert client.get(f"/manage/stations/{town['b']}").status_code == 200


# --- the editor ------------------------------------------------------------------------------


def test_manager_sees_only_the_fields_they_may_set(client, town):
    signed_in(client, town["zhang"])
    html = client.get(f"/manage/stations/{town['a']}").text
    for name in ("opening_hours", "amenities", "status", "phone", "capacity", "notes"):
        assert f'name="{name}"' in html, name
    for name in ("name", "address", "operator"):
        assert f'name="{name}"' not in html, name
    client.cookies.clear()
    signed_in(client, town["jh"])
    html = client.get(f"/manage/stations/{town['a']}").text
    assert 'name="name"' in html and 'name="address"' in html


def form_of(html: str) -> dict[str, object]:
    """The editor's current values as a form post (amenities as a list)."""
    out: dict[str, object] = {"csrf": page_csrf(html)}
    out["version"] = re.search(r'name="version" value="(\d+)"', html).group(1)
    for name, value in re.findall(
        r'<input type="text" id="f-\w+" name="(\w+)" value="([^"]*)"', html
    ):
        out[name] = value
    out["amenities"] = re.findall(r'name="amenities" value="(\w+)" checked', html)
    status = re.search(r'<option value="(\w+)" selected>', html)
    out["status"] = status.group(1)
    cap = re.search(r'name="capacity" value="([^"]*)"', html)
    out["capacity"] = cap.group(1)
    notes = re.search(r'name="notes"[^>]*>([^<]*)</textarea>', html)
    out["notes"] = notes.group(1)
    return out


def test_save_changes_the_station_and_records_the_page_channel(client, conn, town):
    signed_in(client, town["zhang"])
    form = form_of(client.get(f"/manage/stations/{town['a']}").text)
    form.update(action="save", phone="027-66668888", amenities=["toilet", "wifi"])
    r = client.post(f"/manage/stations/{town['a']}", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/manage/stations/{town['a']}?done=saved"
    row = conn.execute(
        text("SELECT phone, amenities, version FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    assert row.phone == "027-66668888" and sorted(row.amenities) == ["toilet", "wifi"]
    assert row.version == int(form["version"]) + 1
    rev = conn.execute(
        text(
            "SELECT actor_name, channel, changes FROM station_revisions WHERE station_id = :i "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"i": town["a"]},
    ).one()
    assert rev.actor_name == "zhang" and rev.channel == "page"
    assert set(rev.changes) == {"phone", "amenities"}  # only what changed was sent
    page = client.get(r.headers["location"])
    assert "已保存" in page.text


def test_hours_typed_in_chinese_get_a_suggestion_not_a_grammar(client, conn, town):
    signed_in(client, town["zhang"])
    form = form_of(client.get(f"/manage/stations/{town['a']}").text)
    form.update(action="save", opening_hours="8点到22点")
    r = client.post(f"/manage/stations/{town['a']}", data=form)
    assert r.status_code == 422
    assert '<code id="hours-suggestion">08:00-22:00</code>' in r.text
    assert "expected EOI" not in r.text and "syntax error" not in r.text
    assert 'value="8点到22点"' in r.text  # the input is kept
    hours = conn.execute(
        text("SELECT opening_hours FROM stations WHERE id = :i"), {"i": town["a"]}
    ).scalar_one()
    assert hours == "Mo-Su 08:00-20:00"
    form.update(action="preview", opening_hours="周一至周五 9点到17点")
    r = client.post(f"/manage/stations/{town['a']}?lang=en", data=form)
    assert "Mo-Fr 09:00-17:00" in r.text and "Write times and weekdays without Chinese" in r.text


def test_preview_shows_the_next_seven_days(client, conn, town):
    signed_in(client, town["zhang"])
    form = form_of(client.get(f"/manage/stations/{town['a']}").text)
    form.update(action="preview", opening_hours="Mo-Su 07:30-21:00")
    r = client.post(f"/manage/stations/{town['a']}", data=form)
    assert r.status_code == 200
    week = r.text[r.text.index('id="week"') :]
    rows = re.findall(r"<tr><th>(.*?)</th>\s*<td class=\"(\w+)\">([^<]*)</td>", week, re.S)
    assert len(rows) == 7
    assert all(cls == "open" and txt == "07:30-21:00" for _, cls, txt in rows)
    assert rows[0][0].startswith("今天")
    # preview writes nothing
    assert (
        conn.execute(
            text("SELECT opening_hours FROM stations WHERE id = :i"), {"i": town["a"]}
        ).scalar_one()
        == "Mo-Su 08:00-20:00"
    )
    form.update(status="closed")
    r = client.post(f"/manage/stations/{town['a']}", data=form)
    week = r.text[r.text.index('id="week"') :]
    rows = re.findall(r"<td class=\"(\w+)\">([^<]*)</td>", week)
    assert len(rows) == 7 and all(cls == "shut" and txt == "已关闭" for cls, txt in rows)


def test_a_conflicting_edit_is_shown_and_nothing_is_lost(client, conn, town):
    signed_in(client, town["zhang"])
    mine = form_of(client.get(f"/manage/stations/{town['a']}").text)
    # someone else saves first (the district admin through the API)
    r = client.patch(
        f"/api/v1/stations/{town['a']}",
        json={"type": "Feature", "properties": {"phone": "027-11112222"}},
        headers={**town["jh"].headers, "If-Match": f'"{mine["version"]}"'},
    )
    assert r.status_code == 200, r.text
    mine.update(action="save", phone="027-33334444", notes="下午停水")
    r = client.post(f"/manage/stations/{town['a']}", data=mine)
    assert r.status_code == 409
    assert "此站点已被他人修改" in r.text
    assert 'href="/manage?lang=en"' in r.text  # the language switch never re-posts
    conflict = r.text[r.text.index('id="conflict"') : r.text.index('id="editor"')]
    assert "027-11112222" in conflict and "027-33334444" in conflict and "jh-admin" in conflict
    # their value stands, mine is in the form, ready to save again
    assert (
        conn.execute(
            text("SELECT phone FROM stations WHERE id = :i"), {"i": town["a"]}
        ).scalar_one()
        == "027-11112222"
    )
    again = form_of(r.text)
    assert again["phone"] == "027-33334444" and again["notes"] == "下午停水"
    assert int(again["version"]) == int(mine["version"]) + 1
    again["action"] = "save"
    r = client.post(f"/manage/stations/{town['a']}", data=again, follow_redirects=False)
    assert r.status_code == 303
    assert conn.execute(
        text("SELECT phone, notes FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one() == ("027-33334444", "下午停水")


def test_history_shows_each_change_before_and_after(client, town):
    signed_in(client, town["zhang"])
    form = form_of(client.get(f"/manage/stations/{town['a']}").text)
    form.update(action="save", phone="027-55556666")
    client.post(f"/manage/stations/{town['a']}", data=form)
    html = client.get(f"/manage/stations/{town['a']}/history").text
    assert re.search(r"027-85551234</td><td>→</td><td>027-55556666", html)
    assert "zhang" in html


def test_hostile_text_is_escaped(client, conn, town):
    conn.execute(
        text("UPDATE stations SET name = :n, notes = :n WHERE id = :i"), {"n": XSS, "i": town["a"]}
    )
    signed_in(client, town["zhang"])
    for path in (
        "/manage",
        f"/manage/stations/{town['a']}",
        f"/manage/stations/{town['a']}/history",
    ):
        html = client.get(path).text
        assert "<script>window.__xss" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path


def test_pages_carry_the_security_headers(client, town):
    signed_in(client, town["zhang"])
    for path in ("/manage/login", "/manage", f"/manage/stations/{town['a']}"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert (
            "frame-ancestors 'none'" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        for tag in re.findall(r"<script\b[^>]*>|<style\b[^>]*>", r.text):
            assert f'nonce="{nonce}"' in tag
        assert "http://" not in re.sub(r'href="http[^"]*"', "", r.text.split("<body>")[0])


# --- users and invitations -------------------------------------------------------------------


def test_invitation_code_is_shown_once_and_users_can_be_removed(client, conn, town):
    csrf = signed_in(client, town["jh"])
    r = client.post(
        "/manage/invitations",
        data={"csrf": csrf, "role": "manager", "stations": str(town["b"]), "username": ""},
    )
    assert r.status_code == 200, r.text
    code = re.search(r'id="invitation-code"[^>]*>([^<]+)<', r.text).group(1)
    accepted = client.post(
        f"/api/v1/invitations/{code}/accept",
        json={"username": "wang-wu", "password": "a long enough secret 42"},
    )
    assert accepted.status_code in (200, 201), accepted.text
    listing = client.get("/manage/users").text
    assert "wang-wu" in listing and code not in listing
    # out of scope: a Wuchang station
    r = client.post(
        "/manage/invitations", data={"csrf": csrf, "role": "manager", "stations": str(town["c"])}
    )
    assert r.status_code == 403 and "form-error" in r.text
    r = client.post(
        f"/manage/users/{town['li'].id}/remove", data={"csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    assert conn.execute(
        text("SELECT removed_at IS NOT NULL FROM users WHERE id = :i"), {"i": town["li"].id}
    ).scalar_one()


# --- freshness, the report queue, inspections -------------------------------------------------


def _report(client, conn, station_id: int, kind: str, comment: str, days_old: int = 0) -> int:
    r = client.post(
        f"/api/v1/stations/{station_id}/reports", json={"kind": kind, "comment": comment}
    )
    assert r.status_code == 201, r.text
    rid = int(r.json()["id"])
    if days_old:
        conn.execute(
            text("UPDATE reports SET created_at = now() - make_interval(days => :d) WHERE id = :i"),
            {"d": days_old, "i": rid},
        )
    return rid


def test_still_correct_confirms_the_station(client, conn, town):
    csrf = signed_in(client, town["zhang"])
    home = client.get("/manage").text
    assert "信息可能已过期" in home and "从未确认" in home
    r = client.post(
        f"/manage/stations/{town['a']}/confirm",
        data={"csrf": csrf, "back": "/manage"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/manage?done=confirmed"
    confirmed, version = conn.execute(
        text("SELECT confirmed_at IS NOT NULL, version FROM stations WHERE id = :i"),
        {"i": town["a"]},
    ).one()
    assert confirmed and version == 1  # a confirmation is not an edit
    home = client.get(r.headers["location"]).text
    assert "今天已确认" in home and "已确认站点信息仍然正确" in home
    assert "信息可能已过期" not in home
    # another manager's station: refused, nothing confirmed
    r = client.post(f"/manage/stations/{town['b']}/confirm", data={"csrf": csrf})
    assert r.status_code == 403
    assert (
        conn.execute(
            text("SELECT confirmed_at FROM stations WHERE id = :i"), {"i": town["b"]}
        ).scalar_one()
        is None
    )


def test_district_admin_filters_by_stale_overdue_and_level(client, conn, town):
    conn.execute(
        text("UPDATE stations SET confirmed_at = now(), level = 4 WHERE id = :i"), {"i": town["a"]}
    )
    _report(client, conn, town["b"], "other", "门口积水", days_old=5)
    signed_in(client, town["jh"])

    def names(query: str) -> set[str]:
        html = client.get("/manage" + query).text
        return set(re.findall(r'<div class="name"><a href="[^"]+">([^<]+)</a>', html))

    assert names("") == {"江汉一号驿站", "江汉二号驿站"}
    assert names("?stale=1") == {"江汉二号驿站"}
    assert names("?overdue=1") == {"江汉二号驿站"}
    assert names("?level=4") == {"江汉一号驿站"}
    assert names("?level=5") == set()
    assert "1 条超期未处理" in client.get("/manage").text


def test_resolving_a_report_with_the_matching_station_edit(client, conn, town):
    conn.execute(
        text("UPDATE stations SET status = 'temporarily_closed' WHERE id = :i"), {"i": town["a"]}
    )
    closed = _report(client, conn, town["a"], "closed_when_should_be_open", "中午锁门了")
    broken = _report(client, conn, town["a"], "amenity_missing_or_broken", "微波炉坏了")
    other = _report(client, conn, town["b"], "other", "not mine")
    csrf = signed_in(client, town["zhang"])
    queue = client.get("/manage/reports").text
    assert "中午锁门了" in queue and "微波炉坏了" in queue and "not mine" not in queue
    # resolving needs a note: refused, nothing written
    r = client.post(f"/manage/reports/{closed}", data={"csrf": csrf, "status": "resolved"})
    assert r.status_code == 422 and "note" in r.text
    assert (
        conn.execute(text("SELECT status FROM reports WHERE id = :i"), {"i": closed}).scalar_one()
        == "open"
    )
    r = client.post(
        f"/manage/reports/{closed}",
        data={"csrf": csrf, "status": "resolved", "note": "已恢复开放", "fix_status": "open"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/manage/reports?done=answered"
    r = client.post(
        f"/manage/reports/{broken}",
        data={"csrf": csrf, "status": "resolved", "note": "已报修", "remove_amenity": "microwave"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    rows = dict(
        conn.execute(
            text("SELECT id, status FROM reports WHERE id IN (:a, :b)"), {"a": closed, "b": broken}
        ).all()
    )
    assert rows == {closed: "resolved", broken: "resolved"}
    status, amenities = conn.execute(
        text("SELECT status, amenities FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    assert status == "open" and list(amenities) == ["drinking_water"]
    channels = {
        c
        for (c,) in conn.execute(
            text(
                "SELECT channel FROM station_revisions "
                "WHERE station_id = :i AND actor_name = 'zhang'"
            ),
            {"i": town["a"]},
        )
    }
    assert channels == {"page"}
    # another manager's report: refused
    r = client.post(f"/manage/reports/{other}", data={"csrf": csrf, "status": "acknowledged"})
    assert r.status_code == 403
    assert client.get("/manage/reports").text.count('class="card report"') == 0
    assert client.get("/manage/reports?all=1").text.count('class="card report"') == 2


def test_district_admin_records_an_inspection_and_level(client, conn, town):
    csrf = signed_in(client, town["jh"])
    page = client.get(f"/manage/stations/{town['a']}").text
    assert 'id="inspection"' in page and "有统一的标识名称" in page
    r = client.post(
        f"/manage/stations/{town['a']}/inspections",
        data={
            "csrf": csrf,
            "inspected_on": "2026-01-05",
            "inspector": "县总工会 王检查",
            "check": ["signage", "premises"],
            "findings": "未按公示时间开放",
            "level": "3",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    (level,) = conn.execute(
        text("SELECT level FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    assert level == 3
    checklist, inspector = conn.execute(
        text("SELECT checklist, inspector FROM inspections WHERE station_id = :i"), {"i": town["a"]}
    ).one()
    assert checklist["signage"] is True and checklist["online_map"] is False
    assert inspector == "县总工会 王检查"
    page = client.get(r.headers["location"]).text
    assert "检查记录已保存" in page and "2/8 项符合" in page
    # a future date is refused with the form kept, nothing stored
    r = client.post(
        f"/manage/stations/{town['a']}/inspections",
        data={"csrf": csrf, "inspected_on": "2999-01-01"},
    )
    assert r.status_code == 422
    assert (
        conn.execute(
            text("SELECT count(*) FROM inspections WHERE station_id = :i"), {"i": town["a"]}
        ).scalar_one()
        == 1
    )
    # managers get no inspection form and cannot post one
    client.cookies.clear()
    csrf = signed_in(client, town["zhang"])
    assert 'id="inspection"' not in client.get(f"/manage/stations/{town['a']}").text
    r = client.post(
        f"/manage/stations/{town['a']}/inspections",
        data={"csrf": csrf, "inspected_on": "2026-01-05"},
    )
    assert r.status_code == 403


def test_temporary_closure_is_previewed_and_saved(client, conn, town):
    signed_in(client, town["zhang"])
    form = form_of(client.get(f"/manage/stations/{town['a']}").text)
    form.update(
        action="save",
        status="temporarily_closed",
        closed_until="2099-03-01T08:00",
        status_reason="装修",
    )
    r = client.post(f"/manage/stations/{town['a']}", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    status, until, reason = conn.execute(
        text(
            "SELECT status, closed_until AT TIME ZONE 'Asia/Shanghai', status_reason "
            "FROM stations WHERE id = :i"
        ),
        {"i": town["a"]},
    ).one()
    assert status == "temporarily_closed" and reason == "装修"
    assert until.isoformat() == "2099-03-01T08:00:00"
    html = client.get(f"/manage/stations/{town['a']}").text
    assert 'value="2099-03-01T08:00"' in html
    week = html[html.index('id="week"') :]
    assert week.count("暂停开放") >= 7


def test_an_invitee_accepts_on_the_page_and_is_signed_in(client, conn, town):
    csrf = signed_in(client, town["jh"])
    r = client.post(
        "/manage/invitations",
        data={"csrf": csrf, "role": "manager", "stations": str(town["b"]), "username": "zhao-liu"},
    )
    code = re.search(r'id="invitation-code"[^>]*>([^<]+)<', r.text).group(1)
    link = re.search(r'id="invitation-link">([^<]+)<', r.text).group(1)
    assert link.endswith(f"/manage/invitations/accept#{code}")  # the code never hits a log
    client.cookies.clear()
    form = client.get("/manage/invitations/accept")
    assert form.status_code == 200 and code not in form.text
    token = client.cookies.get(LOGIN_CSRF_COOKIE)
    weak = client.post(
        "/manage/invitations/accept", data={"csrf": token, "code": code, "password": "password"}
    )
    assert weak.status_code == 422 and 'id="accept-error"' in weak.text
    r = client.post(
        "/manage/invitations/accept",
        data={"csrf": token, "code": code, "password": "plum blossom river 88"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/manage"
    home = client.get("/manage").text
    assert "江汉二号驿站" in home and "zhao-liu" in home and "站点负责人" in home
    kind = conn.execute(
        text(
            "SELECT s.kind FROM auth_sessions s JOIN users u ON u.id = s.user_id "
            "WHERE u.username = 'zhao-liu'"
        )
    ).scalar_one()
    assert kind == "cookie"
    # the code is spent
    client.cookies.clear()
    client.get("/manage/invitations/accept")
    again = client.post(
        "/manage/invitations/accept",
        data={
            "csrf": client.cookies.get(LOGIN_CSRF_COOKIE),
            "code": code,
            "password": "plum blossom river 88",
        },
    )
    assert again.status_code == 404 and "邀请无效或已过期" in again.text


def test_district_filters_cover_the_whole_scope_not_one_page(client, conn, town):
    """A city union holds thousands of stations: the stale filter and the count are SQL over
    the whole scope, not over the first page of 200."""
    from tests.factories import bulk_insert

    ids = bulk_insert(conn, [(114.2 + i * 1e-4, 30.5, [], "open") for i in range(260)], "MANY")
    conn.execute(
        text("UPDATE stations SET district_code = '420103' WHERE id = ANY(:ids)"), {"ids": ids}
    )
    confirmed = ids[:30]
    conn.execute(
        text("UPDATE stations SET confirmed_at = now() WHERE id = ANY(:ids)"), {"ids": confirmed}
    )
    want_all = conn.execute(
        text("SELECT count(*) FROM stations WHERE district_code LIKE '420103%'")
    ).scalar_one()
    want_stale = conn.execute(
        text(
            "SELECT count(*) FROM stations WHERE district_code LIKE '420103%' "
            "AND confirmed_at IS NULL"
        )
    ).scalar_one()
    signed_in(client, town["jh"])
    assert f"共 {want_all} 个站点" in client.get("/manage").text
    stale = client.get("/manage?stale=1").text
    assert f"共 {want_stale} 个站点" in stale and want_stale > 200
    link = re.search(r'href="(/manage\?[^"]*offset=200[^"]*)"', stale)
    assert link and "stale=1" in link.group(1)
    nxt = client.get(link.group(1).replace("&amp;", "&")).text
    shown = len(re.findall(r'<div class="name">', nxt))
    assert shown == want_stale - 200


def test_nul_bytes_in_page_queries_and_forms_are_refused_not_500(client, conn, town):
    signed_in(client, town["jh"])
    r = client.get("/manage?q=a%00b")
    assert r.status_code == 422 and r.json()["field"] == "q"
    before = conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one()
    client.cookies.clear()
    csrf = signed_in(client, town["zhang"])
    r = client.post(f"/manage/stations/{town['a']}", data={"csrf": csrf, "notes": "a\x00b"})
    assert 400 <= r.status_code < 500 and "NUL" in r.text
    assert conn.execute(text("SELECT count(*) FROM station_revisions")).scalar_one() == before
    client.cookies.clear()
    token = login_csrf(client)
    login = client.post(
        "/manage/login", data={"username": "a\x00b", "password": "x", "csrf": token}
    )
    assert 400 <= login.status_code < 500


def test_a_manager_proposes_a_position_and_the_district_admin_accepts_it(client, conn, town):
    import coordTransform

    gcj = (114.2885, 30.5830)  # as copied from Amap
    csrf = signed_in(client, town["zhang"])
    page = client.get(f"/manage/stations/{town['a']}").text
    assert 'id="propose"' in page
    r = client.post(
        f"/manage/stations/{town['a']}/proposals",
        data={"csrf": csrf, "lon": str(gcj[0]), "lat": str(gcj[1]), "note": "门在马路对面"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    row = conn.execute(
        text(
            "SELECT id, ST_X(geom), ST_Y(geom), proposed_by, status FROM location_proposals "
            "WHERE station_id = :s"
        ),
        {"s": town["a"]},
    ).one()
    want = coordTransform.gcj02_to_wgs84(*gcj)
    assert abs(row[1] - want[0]) < 2e-5 and abs(row[2] - want[1]) < 2e-5
    assert (row[3], row[4]) == ("zhang", "pending")
    # the manager sees it pending but cannot decide
    mine = client.get("/manage/proposals").text
    assert "门在马路对面" in mine and 'class="decide"' not in mine
    refused = client.post(f"/manage/proposals/{row[0]}", data={"csrf": csrf, "decision": "accept"})
    assert refused.status_code == 403
    # the district admin accepts: the station moves, the revision names them, channel page
    client.cookies.clear()
    csrf = signed_in(client, town["jh"])
    assert 'class="decide"' in client.get("/manage/proposals").text
    ok = client.post(
        f"/manage/proposals/{row[0]}",
        data={"csrf": csrf, "decision": "accept", "note": "核实无误"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    lon, lat = conn.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE id = :i"), {"i": town["a"]}
    ).one()
    assert (round(lon, 7), round(lat, 7)) == (round(row[1], 7), round(row[2], 7))
    rev = conn.execute(
        text(
            "SELECT action, actor_name, channel FROM station_revisions WHERE station_id = :i "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"i": town["a"]},
    ).one()
    assert tuple(rev) == ("proposal", "jh-admin", "page")
    again = client.post(f"/manage/proposals/{row[0]}", data={"csrf": csrf, "decision": "reject"})
    assert again.status_code == 409


def test_a_proposal_with_bad_coordinates_is_refused_and_writes_nothing(client, conn, town):
    csrf = signed_in(client, town["zhang"])
    for lon, lat in (("abc", "30.6"), ("114.3", "95"), ("nan", "30"), ("", "")):
        r = client.post(
            f"/manage/stations/{town['a']}/proposals",
            data={"csrf": csrf, "lon": lon, "lat": lat},
        )
        assert r.status_code == 422, (lon, lat)
    n = conn.execute(text("SELECT count(*) FROM location_proposals")).scalar_one()
    assert n == 0
    # another manager's station: 403
    r = client.post(
        f"/manage/stations/{town['b']}/proposals",
        data={"csrf": csrf, "lon": "114.3", "lat": "30.6"},
    )
    assert r.status_code == 403
