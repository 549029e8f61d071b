"""Temporary closures with an end and the station lifecycle (planned, open, temporarily closed
until, closed, duplicate of): the pure state, the API's rules, the SQL open-now filter against
a brute-force oracle, who sees which stations, reverts and coverage.

Expected instants are worked out by hand from the hours strings (Asia/Shanghai, UTC+8, no DST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import text

from app.coverage import queries as coverage_queries
from app.coverage.service import _station_open_mask
from app.hours import describe, station_state
from app.hours import store as hours_store
from app.hours.state import Reason
from tests.conftest import AUTH
from tests.factories import feature
from tests.people import make_user

SH = ZoneInfo("Asia/Shanghai")
URL = "/api/v1/stations"
HOURS = "Mo-Su 08:00-20:00"


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SH)


# --- the pure state --------------------------------------------------------------------------


def test_closed_until_in_the_future_is_closed_and_reopens_at_the_end():
    # Wed 2 Dec 12:00, closed until Thu 3 Dec 10:00, when the hours (08-20) say open
    s = station_state(HOURS, "temporarily_closed", _at(2, 12), closed_until=_at(3, 10))
    assert s.open_now is False
    assert s.next_change == _at(3, 10)
    assert s.reason is Reason.TEMPORARILY_CLOSED
    d = describe(s, _at(2, 12))
    assert d["next_change"] == "2026-12-03T10:00:00+08:00"
    assert d["next_change_label"] == {
        "zh": "暂停开放至 12月3日 10:00",
        "en": "temporarily closed until 3 Dec 10:00",
    }


def test_a_closure_ending_outside_the_hours_reopens_at_the_next_opening():
    # ends Thu 3 Dec 22:00, after closing time: the door opens Fri 4 Dec 08:00
    s = station_state(HOURS, "temporarily_closed", _at(2, 12), closed_until=_at(3, 22))
    assert (s.open_now, s.next_change) == (False, _at(4, 8))
    # the label still names the closure's end, in local time even when given in UTC
    until_utc = _at(3, 22).astimezone(UTC)
    d = describe(
        station_state(HOURS, "temporarily_closed", _at(2, 12), closed_until=until_utc),
        _at(2, 12),
    )
    assert d["next_change_label"]["zh"] == "暂停开放至 12月3日 22:00"
    assert d["next_change"] == "2026-12-04T08:00:00+08:00"


def test_at_and_after_the_end_the_hours_apply():
    until = _at(3, 10)
    at_end = station_state(HOURS, "temporarily_closed", until, closed_until=until)
    assert (at_end.open_now, at_end.next_change, at_end.reason) == (True, _at(3, 20), Reason.HOURS)
    evening = station_state(HOURS, "temporarily_closed", _at(3, 21), closed_until=until)
    assert (evening.open_now, evening.next_change) == (False, _at(4, 8))
    one_second_before = until - timedelta(seconds=1)
    before = station_state(HOURS, "temporarily_closed", one_second_before, closed_until=until)
    assert (before.open_now, before.next_change) == (False, until)


def test_unknown_hours_reopen_to_unknown():
    s = station_state(None, "temporarily_closed", _at(2, 12), closed_until=_at(3, 10))
    assert (s.open_now, s.next_change) == (False, _at(3, 10))
    after = station_state(None, "temporarily_closed", _at(3, 11), closed_until=_at(3, 10))
    assert (after.open_now, after.reason) == (None, Reason.UNKNOWN_HOURS)


def test_without_an_end_and_other_statuses():
    s = station_state(HOURS, "temporarily_closed", _at(2, 12))
    assert (s.open_now, s.next_change) == (False, None)
    assert describe(s, _at(2, 12))["next_change_label"]["zh"] == "暂停开放"
    for status in ("planned", "closed", "duplicate"):
        assert station_state(HOURS, status, _at(2, 12)).open_now is False
    # closed_until only counts with temporarily_closed
    assert station_state(HOURS, "open", _at(2, 12), closed_until=_at(9, 9)).open_now is True
    with pytest.raises(ValueError, match="closed_until"):
        station_state(HOURS, "temporarily_closed", _at(2, 12), closed_until=datetime(2026, 12, 3))


# --- the API's rules --------------------------------------------------------------------------


def _create(client, ext: str, **props):
    lon = props.pop("lon", 114.30)
    lat = props.pop("lat", 30.58)
    r = client.post(URL, json=feature(ext, lon, lat, **props), headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()


def _patch(client, sid: int, props: dict, headers=AUTH):
    return client.patch(
        f"{URL}/{sid}",
        json={"type": "Feature", "properties": props},
        headers={**headers, "If-Match": "*"},
    )


def test_closed_until_only_with_temporarily_closed(client):
    until = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    sid = _create(client, "L-1")["id"]
    r = _patch(client, sid, {"closed_until": until.isoformat()})
    assert r.status_code == 422 and r.json()["field"] == "properties.closed_until", r.text
    r = _patch(client, sid, {"closed_until": "2026-12-03T10:00:00"})  # no offset: not an instant
    assert r.status_code == 422 and "closed_until" in r.text
    r = _patch(
        client,
        sid,
        {
            "status": "temporarily_closed",
            "closed_until": until.isoformat(),
            "status_reason": "装修",
        },
    )
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert datetime.fromisoformat(p["closed_until"]) == until
    assert p["status_reason"] == "装修"
    assert p["open_now"] is False
    assert p["next_change_label"]["zh"].startswith("暂停开放至 ")
    # another status clears the end and the old reason
    r = _patch(client, sid, {"status": "open"})
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert (p["closed_until"], p["status_reason"]) == (None, None)
    r = _patch(client, sid, {"status_reason": "x" * 201})
    assert r.status_code == 422 and "status_reason" in r.text
    r = client.post(
        URL,
        json=feature("L-1b", closed_until=until.isoformat()),
        headers=AUTH,
    )
    assert r.status_code == 422 and r.json()["field"] == "properties.closed_until", r.text


def test_duplicate_of_rules(client):
    keep = _create(client, "D-keep")["id"]
    dup = _create(client, "D-dup", lon=114.3001)["id"]
    other = _create(client, "D-other", lon=114.3002)["id"]
    r = _patch(client, dup, {"status": "duplicate"})
    assert (r.status_code, r.json()["field"]) == (422, "properties.duplicate_of"), r.text
    r = _patch(client, dup, {"status": "duplicate", "duplicate_of": dup})
    assert (r.status_code, r.json()["field"]) == (422, "properties.duplicate_of"), r.text
    r = _patch(client, dup, {"status": "duplicate", "duplicate_of": 987654321})
    assert (r.status_code, r.json()["field"]) == (404, "properties.duplicate_of"), r.text
    r = _patch(client, dup, {"duplicate_of": keep})  # status stays open
    assert (r.status_code, r.json()["field"]) == (422, "properties.duplicate_of"), r.text
    r = _patch(client, dup, {"status": "duplicate", "duplicate_of": keep, "status_reason": "同址"})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["duplicate_of"] == keep
    # a duplicate of a duplicate is refused: point at the station that stays
    r = _patch(client, other, {"status": "duplicate", "duplicate_of": dup})
    assert (r.status_code, r.json()["field"]) == (422, "properties.duplicate_of"), r.text
    # the station that stays can neither be deleted nor become a duplicate while pointed at
    r = client.delete(f"{URL}/{keep}", headers=AUTH)
    assert (r.status_code, r.json()["field"]) == (409, "id"), r.text
    r = _patch(client, keep, {"status": "duplicate", "duplicate_of": other})
    assert r.status_code == 409, r.text
    # leaving duplicate clears the pointer, then the kept station may go
    r = _patch(client, dup, {"status": "closed"})
    assert r.status_code == 200 and r.json()["properties"]["duplicate_of"] is None
    assert client.delete(f"{URL}/{keep}", headers=AUTH).status_code == 204


def test_managers_close_temporarily_but_set_no_level_nor_duplicate(client, conn):
    sid = _create(client, "M-1")["id"]
    keep = _create(client, "M-keep", lon=114.31)["id"]
    manager = make_user(conn, "life-manager", "manager", stations=(sid,))
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    r = _patch(
        client,
        sid,
        {"status": "temporarily_closed", "closed_until": until, "status_reason": "停电"},
        manager.headers,
    )
    assert r.status_code == 200, r.text
    r = _patch(client, sid, {"level": 5}, manager.headers)
    assert (r.status_code, r.json()["field"]) == (403, "properties.level"), r.text
    r = _patch(client, sid, {"status": "duplicate", "duplicate_of": keep}, manager.headers)
    assert (r.status_code, r.json()["field"]) == (403, "properties.duplicate_of"), r.text
    da = make_user(conn, "life-da", "district_admin", districts=("4201",))
    r = _patch(client, sid, {"level": 4}, da.headers)
    assert r.status_code == 200 and r.json()["properties"]["level"] == 4, r.text
    r = _patch(client, sid, {"level": 6}, da.headers)
    assert r.status_code == 422 and "level" in r.text


def test_revert_restores_the_new_fields(client, conn):
    sid = _create(client, "R-1")["id"]
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = _patch(
        client,
        sid,
        {
            "status": "temporarily_closed",
            "closed_until": until.isoformat(),
            "status_reason": "暂停维修",
            "level": 3,
        },
    )
    assert r.status_code == 200, r.text
    rev = conn.execute(
        text("SELECT max(id) FROM station_revisions WHERE station_id = :s"), {"s": sid}
    ).scalar_one()
    assert _patch(client, sid, {"status": "open", "level": 1}).status_code == 200
    r = client.post(f"{URL}/{sid}/revert?to={rev}", headers=AUTH)
    assert r.status_code == 200, r.text
    p = r.json()["properties"]
    assert p["status"] == "temporarily_closed"
    assert datetime.fromisoformat(p["closed_until"]) == until
    assert (p["status_reason"], p["level"]) == ("暂停维修", 3)


# --- the SQL open-now filter against a brute-force oracle ---------------------------------------


def test_sql_open_filter_equals_station_state_per_station(client, conn):
    hours_store.refresh(conn, "Asia/Shanghai")  # the window around the real now
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    hours_options = [HOURS, "24/7", "Mo-Fr 09:00-17:00", None, "Sa,Su 10:00-14:00"]
    ends = [None, now - timedelta(hours=5), now + timedelta(hours=3), now + timedelta(days=2)]
    statuses = ["open", "temporarily_closed", "closed", "planned"]
    stations = []
    n = 0
    for hours in hours_options:
        for status in statuses:
            for end in ends if status == "temporarily_closed" else [None]:
                n += 1
                props = {"opening_hours": hours, "status": status}
                if end is not None:
                    props["closed_until"] = end.isoformat()
                f = _create(client, f"O-{n}", lon=100.0 + n * 1e-4, lat=40.0, **props)
                stations.append((f["id"], hours, status, end))
    instants = [now + timedelta(hours=h, minutes=7) for h in (1, 4, 10, 30, 49, 75)]
    for at in instants:
        oracle = {
            sid
            for sid, hours, status, end in stations
            if station_state(hours, status, at, SH, closed_until=end).open_now is True
        }
        r = client.get(
            URL, params={"open_at": at.isoformat(), "limit": 500, "bbox": "99.9,39.9,100.1,40.1"}
        )
        assert r.status_code == 200, r.text
        listed = {f["id"] for f in r.json()["features"]}
        assert listed == oracle, at
        # every listed station also says open_now in its own properties
        assert all(f["properties"]["open_now"] is True for f in r.json()["features"])
        near = client.get(
            f"{URL}/nearest",
            params={"lat": 40.0, "lon": 100.0, "k": 50, "open_at": at.isoformat()},
        )
        assert {f["id"] for f in near.json()["features"]} == oracle, at
    # the oracle is not trivial: a closure ending between the instants flips stations
    closing = [s for s in stations if s[2] == "temporarily_closed" and s[3] is not None]
    assert closing


# --- who sees which stations ------------------------------------------------------------------


def test_planned_duplicate_and_closed_leave_courier_results(client):
    keep = _create(client, "V-keep", name="保留站")["id"]
    _create(client, "V-planned", lon=114.3001, status="planned", name="筹建站")
    _create(client, "V-closed", lon=114.3002, status="closed", name="关闭站")
    _create(client, "V-dup", lon=114.3003, status="duplicate", duplicate_of=keep, name="重复站")
    near = client.get(f"{URL}/nearest?lat=30.58&lon=114.30&k=10").json()
    assert [f["properties"]["external_id"] for f in near["features"]] == ["V-keep"]
    page = client.get("/?lat=30.58&lon=114.30&open_now=false").text
    assert "保留站" in page
    assert "筹建站" not in page and "重复站" not in page and "关闭站" not in page
    # still there when asked for, in the list and the stations' history
    asked = client.get(
        f"{URL}?status=planned,duplicate,closed&bbox=114.2999,30.5799,114.3004,30.5801"
    ).json()
    assert {f["properties"]["external_id"] for f in asked["features"]} == {
        "V-planned",
        "V-closed",
        "V-dup",
    }
    dup = next(f for f in asked["features"] if f["properties"]["external_id"] == "V-dup")
    assert dup["properties"]["duplicate_of"] == keep
    hist = client.get(f"{URL}/{dup['id']}/history", headers=AUTH)
    assert hist.status_code == 200 and hist.json()["numberMatched"] == 1


def test_coverage_stations_and_open_mask(client, conn):
    now = datetime.now(UTC)
    ids = {}
    for ext, status, end in [
        ("C-open", "open", None),
        ("C-ended", "temporarily_closed", now - timedelta(hours=1)),
        ("C-later", "temporarily_closed", now + timedelta(days=1)),
        ("C-plain", "temporarily_closed", None),
        ("C-planned", "planned", None),
        ("C-closed", "closed", None),
    ]:
        props = {"status": status, "opening_hours": "24/7"}
        if end is not None:
            props["closed_until"] = end.isoformat()
        ids[ext] = _create(client, ext, lon=114.30 + len(ids) * 1e-3, **props)["id"]
    rows = coverage_queries.stations(conn)
    got = dict(zip(rows.ids.tolist(), rows.status, strict=True))
    # planned and closed stations are not in an analysis; an ended closure reads as open
    assert ids["C-planned"] not in got and ids["C-closed"] not in got
    assert got[ids["C-ended"]] == "open"
    assert got[ids["C-later"]] == got[ids["C-plain"]] == "temporarily_closed"

    def mask(open_at):
        inputs = SimpleNamespace(
            stations=rows,
            params=SimpleNamespace(open_at=open_at),
            time_zone="Asia/Shanghai",
            calendar=None,
        )
        ok, _ = _station_open_mask(inputs)  # type: ignore[arg-type]
        return {int(i) for i in np.asarray(rows.ids)[ok]}

    mine = set(ids.values())
    assert mask(None) & mine == {ids["C-open"], ids["C-ended"]}
    # two days on, the later closure has ended too; an hour ago the first one had not
    assert mask(now + timedelta(days=2)) & mine == {ids["C-open"], ids["C-ended"], ids["C-later"]}
    assert mask(now - timedelta(hours=2)) & mine == {ids["C-open"]}
    # a station reopening by itself changes the analysis' cache key
    before = coverage_queries.stations_fingerprint(conn)
    conn.execute(
        text("UPDATE stations SET closed_until = now() - interval '1 minute' WHERE id = :i"),
        {"i": ids["C-later"]},
    )
    assert coverage_queries.stations_fingerprint(conn) != before
