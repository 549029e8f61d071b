"""The /manage pages in a real browser: Debian's Chromium driven by Playwright against a real
uvicorn, at a phone (390×844) and a desktop (1280×800) size.

A station manager signs in, types opening hours the way people say them and takes the
suggestion, previews the week, saves; a conflicting edit saved first in a second tab gives a
clear message with nothing lost, and saving again lands; "still correct" confirms; a courier's
report is resolved and the courier sees the answer; a forged form post without the CSRF value
(same site, and from another site) changes nothing. Every page loads with no console error, no
CSP violation and no request to another host. Screenshots: /tmp/shots/manage-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text

from app.accounts.credentials import Passwords
from app.db import migrate
from tests.conftest import ADMIN_TOKEN, AUTH, fresh_database
from tests.factories import feature
from tests.servers import uvicorn_server
from tests.test_browser import VIEWPORTS, Tab, browser, tab_factory  # noqa: F401

PASSWORD = "quiet-lantern-42-harbour"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    """A fresh database served by uvicorn: three Jianghan stations (one with a hostile name),
    a manager of two of them and a district admin of Jianghan."""
    url = fresh_database("manage_e2e")
    migrate.upgrade(url)
    env = {"DATABASE_URL": url, "ADMIN_TOKEN": ADMIN_TOKEN, "YIZHAN_HOURS_AUTO_REFRESH": "0"}
    with uvicorn_server(env) as base:
        ids = []
        for i, name in enumerate(("江汉路驿站", "花楼街驿站", XSS)):
            r = httpx.post(
                f"{base}/api/v1/stations",
                json=feature(f"E2E-{i}", lon=114.28 + i / 100, name=name),
                headers=AUTH,
            )
            assert r.status_code == 201, r.text
            ids.append(int(r.json()["id"]))
        hashed = Passwords(1, 1024, 1).hash(PASSWORD)
        eng = create_engine(url)
        with eng.begin() as c:
            for username, role, districts in (
                ("zhang-manager", "manager", []),
                ("jianghan-admin", "district_admin", ["420103"]),
            ):
                uid = c.execute(
                    text(
                        "INSERT INTO users (username, display_name, role, districts, "
                        "password_hash) VALUES (:u, :u, :r, CAST(:d AS text[]), :h) RETURNING id"
                    ),
                    {"u": username, "r": role, "d": districts, "h": hashed},
                ).scalar_one()
                if role == "manager":
                    for sid in ids[:1] + ids[2:]:
                        c.execute(
                            text("INSERT INTO user_stations (user_id, station_id) VALUES (:u, :s)"),
                            {"u": uid, "s": sid},
                        )
        yield {"base": base, "ids": ids, "engine": eng}
        eng.dispose()


def _sign_in(tab: Tab, base: str, username: str) -> None:
    tab.open(f"{base}/manage", "#login-form")
    tab.page.fill("#username", username)
    tab.page.fill("#password", PASSWORD)
    tab.page.click("#login-form button[type=submit]")
    tab.page.wait_for_selector("#stations", timeout=15_000)


def _station(site: dict[str, Any], sid: int) -> dict[str, Any]:
    r = httpx.get(f"{site['base']}/api/v1/stations/{sid}")
    assert r.status_code == 200
    return r.json()["properties"]


def _reset(site: dict[str, Any], sid: int) -> None:
    r = httpx.patch(
        f"{site['base']}/api/v1/stations/{sid}",
        json={
            "type": "Feature",
            "properties": {"phone": "027-85551234", "notes": None, "opening_hours": "08:00-20:00"},
        },
        headers={**AUTH, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_manager_edits_with_hours_help_and_a_conflict(site, tab_factory, size):  # noqa: F811
    base, sid = site["base"], site["ids"][0]
    _reset(site, sid)
    tab = tab_factory(base, VIEWPORTS[size])
    _sign_in(tab, base, "zhang-manager")
    page = tab.page
    assert page.locator("#stations li.station").count() == 2
    tab.clean()
    tab.shot(f"manage-{size}-home")

    # the editor: hours typed the way people say them → a suggestion, then a 7-day preview
    tab.open(f"{base}/manage/stations/{sid}", "#editor")
    page.fill("#f-opening_hours", "早8点-晚10点")
    page.click("#preview")
    page.wait_for_selector("#hours-suggestion")
    assert page.inner_text("#hours-suggestion") == "08:00-22:00"
    assert "expected" not in page.inner_text("#hours-advice")
    page.click("#use-suggestion")  # fills the field and previews again
    page.wait_for_selector("#week table")
    assert page.input_value("#f-opening_hours") == "08:00-22:00"
    days = page.locator("#week td").all_inner_texts()
    assert days == ["08:00-22:00"] * 7
    tab.clean()
    tab.shot(f"manage-{size}-preview")
    page.click("#save")
    page.wait_for_selector("#done")
    assert _station(site, sid)["opening_hours"] == "08:00-22:00"

    # a second tab saves first …
    other = tab.ctx.new_page()
    tab.open(f"{base}/manage/stations/{sid}", "#editor")
    other.goto(f"{base}/manage/stations/{sid}")
    other.fill("#f-phone", "027-11112222")
    other.click("#save")
    other.wait_for_selector("#done")
    other.close()
    # … then this tab, rendered before that save
    page.fill("#f-phone", "027-99990000")
    page.fill("#f-notes", "周三下午停水")
    page.check("#f-amenities input[value=toilet]")
    page.click("#save")
    page.wait_for_selector("#conflict")
    message = page.inner_text("#conflict")
    assert "此站点已被他人修改" in message
    assert "027-11112222" in message and "027-99990000" in message
    # nothing lost: the form still holds what was typed here
    assert page.input_value("#f-phone") == "027-99990000"
    assert page.input_value("#f-notes") == "周三下午停水"
    assert page.is_checked("#f-amenities input[value=toilet]")
    assert _station(site, sid)["phone"] == "027-11112222"
    # the conflict page answers 409, which Chromium logs; nothing else may be logged
    assert [e for e in tab.errors if "409" not in e] == []
    tab.errors.clear()
    tab.clean()
    tab.shot(f"manage-{size}-conflict")
    page.click("#save")  # deliberately, after reading theirs
    page.wait_for_selector("#done")
    props = _station(site, sid)
    assert props["phone"] == "027-99990000" and props["notes"] == "周三下午停水"
    assert "toilet" in props["amenities"]

    # still correct
    tab.open(f"{base}/manage", "#stations")
    page.click(f"li.station[data-id='{sid}'] button.confirm")
    page.wait_for_selector("#done")
    assert _station(site, sid)["freshness"]["confirmed_days_ago"] == 0
    tab.clean()
    tab.shot(f"manage-{size}-confirmed")

    # the history shows the change, before → after
    tab.open(f"{base}/manage/stations/{sid}/history", "#revisions")
    assert "027-99990000" in page.inner_text("#revisions")
    tab.clean()
    tab.shot(f"manage-{size}-history")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_manager_resolves_a_report_and_the_courier_sees_it(site, tab_factory, size):  # noqa: F811
    base, sid = site["base"], site["ids"][0]
    filed = httpx.post(
        f"{base}/api/v1/stations/{sid}/reports",
        json={"kind": "other", "comment": f"门口没有标识 {size}"},
    )
    assert filed.status_code == 201, filed.text
    rid, key = filed.json()["id"], filed.json()["key"]
    tab = tab_factory(base, VIEWPORTS[size])
    _sign_in(tab, base, "zhang-manager")
    page = tab.page
    tab.open(f"{base}/manage/reports", "#reports")
    card = page.locator(f"li.report[data-id='{rid}']")
    assert f"门口没有标识 {size}" in card.inner_text()
    tab.shot(f"manage-{size}-reports")
    card.locator("textarea[name=note]").fill("已补挂标识牌")
    card.locator("button.resolve").click()
    page.wait_for_selector("#done")
    assert page.locator(f"li.report[data-id='{rid}']").count() == 0
    tab.clean()
    seen = httpx.get(f"{base}/api/v1/reports/{rid}", params={"key": key}).json()
    assert seen["status"] == "resolved" and seen["note"] == "已补挂标识牌"


def test_forged_posts_without_the_csrf_value_are_refused(site, tab_factory):  # noqa: F811
    base, sid = site["base"], site["ids"][0]
    before = _station(site, sid)
    tab = tab_factory(base, VIEWPORTS["desktop"])
    _sign_in(tab, base, "zhang-manager")
    page = tab.page
    # same site: a form built in the page without the csrf field
    page.evaluate(
        """([action, version]) => {
            var f = document.createElement("form");
            f.method = "post"; f.action = action;
            for (var [k, v] of [["action", "save"], ["version", version],
                                ["phone", "027-66666666"], ["status", "closed"]]) {
                var i = document.createElement("input");
                i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
            }
            document.body.appendChild(f); f.submit();
        }""",
        [f"{base}/manage/stations/{sid}", str(before["version"])],
    )
    page.wait_for_selector("#problem")
    assert "安全校验码" in page.inner_text("#problem")
    tab.shot("manage-desktop-csrf-refused")
    # a page of another origin posting a guessed value: refused (by the CSRF check, or
    # earlier — asked to sign in — where the browser withholds the SameSite=Lax cookie)
    evil = (
        f'<!doctype html><form method="post" action="{base}/manage/stations/{sid}/confirm" '
        'id="f"><input name="csrf" value="guess"></form>'
    )
    tab.ctx.route(
        "http://evil.test/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=evil),
    )
    page.goto("http://evil.test/")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.evaluate("document.getElementById('f').submit()")
    answer = posted.value
    # Chromium withholds the SameSite=Lax cookie from this cross-site POST: the page is asked
    # to sign in (303) — and were the cookie sent, the CSRF check answers 403
    assert answer.status in (303, 403), answer.status
    if answer.status == 303:
        assert answer.headers["location"].startswith("/manage/login")
    page.wait_for_load_state()
    after = _station(site, sid)
    assert after["version"] == before["version"] and after["phone"] == before["phone"]
    assert after["freshness"]["confirmed_at"] == before["freshness"]["confirmed_at"]


def test_hostile_names_stay_text_and_district_admin_pages_load(site, tab_factory):  # noqa: F811
    base = site["base"]
    for size in ("phone", "desktop"):
        tab = tab_factory(base, VIEWPORTS[size])
        _sign_in(tab, base, "jianghan-admin")
        assert XSS in tab.page.inner_text("#stations")
        tab.clean()
        tab.shot(f"manage-{size}-district")
        tab.open(f"{base}/manage/stations/{site['ids'][2]}", "#inspection")
        assert tab.page.inner_text("#station-name") == XSS
        tab.clean()
        tab.assert_csp_enforced()
        tab.shot(f"manage-{size}-editor-admin")
        tab.open(f"{base}/manage/users", "#users")
        tab.page.select_option("#inv-role", "manager")
        tab.page.fill("#inv-stations", str(site["ids"][1]))
        tab.page.click("#invite button[type=submit]")
        tab.page.wait_for_selector("#invitation-code")
        assert len(tab.page.inner_text("#invitation-code")) >= 16
        tab.clean()
        tab.shot(f"manage-{size}-users")


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_district_admin_uploads_previews_and_applies_a_csv(site, tab_factory, size):  # noqa: F811
    from tests.test_spreadsheets import csv_bytes, row

    base = site["base"]
    kept = httpx.get(f"{base}/api/v1/stations/{site['ids'][0]}").json()
    lon, lat = kept["geometry"]["coordinates"]
    data = csv_bytes(
        [
            row(f"UP-{size}-1", name=f"上传驿站一 {size}", lon=114.20, lat=30.60),
            row(f"UP-{size}-2", name=f"上传驿站二 {size}", lon=114.21, lat=30.61),
            # ~10 m from 江汉路驿站 with its name: a likely duplicate, skipped below
            row(f"UP-{size}-3", name=kept["properties"]["name"], lon=lon + 0.0001, lat=lat),
        ]
    )
    tab = tab_factory(base, VIEWPORTS[size])
    _sign_in(tab, base, "jianghan-admin")
    page = tab.page
    tab.open(f"{base}/manage/import", "#upload-form")
    tab.clean()
    page.set_input_files(
        "#file", files=[{"name": "stations.csv", "mimeType": "text/csv", "buffer": data}]
    )
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert page.inner_text(".count-new b") == "3"
    assert page.locator("li.duplicate").count() == 1
    tab.clean()
    tab.shot(f"manage-{size}-import-preview")
    page.locator("li.duplicate input[value=skip]").check()
    page.click("#apply")
    page.wait_for_selector("#done")
    assert "新建 2 个" in page.inner_text("#done") and "跳过 1 个" in page.inner_text("#done")
    tab.clean()
    tab.shot(f"manage-{size}-import-done")
    with site["engine"].connect() as c:
        written = c.execute(
            text(
                "SELECT s.external_id, r.channel, r.actor_name FROM stations s "
                "JOIN station_revisions r ON r.station_id = s.id "
                "WHERE s.external_id LIKE :p ORDER BY 1"
            ),
            {"p": f"UP-{size}-%"},
        ).all()
    assert [tuple(w) for w in written] == [
        (f"UP-{size}-1", "import", "jianghan-admin"),
        (f"UP-{size}-2", "import", "jianghan-admin"),
    ]
