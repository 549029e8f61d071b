"""Text search over names and addresses, filters that combine, and courier problem reports."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from app.stations import queries
from tests.conftest import AUTH
from tests.factories import feature

URL = "/api/v1/stations"


def create(client, **kw):
    r = client.post(URL, json=feature(**kw), headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()


def names(fc) -> list[str]:
    return sorted(f["properties"]["external_id"] for f in fc["features"])


@pytest.fixture
def searchable(client):
    create(client, external_id="S1", name="江汉路驿站", address="武汉市江汉区江汉路100号")
    create(client, external_id="S2", name="汉口火车站爱心驿站", address="武汉市江岸区发展大道")
    create(client, external_id="S3", name="Optics Valley Rest Stop", address="光谷大道 1 号")
    create(
        client,
        external_id="S4",
        name="洪山区环卫工人驿站",
        address="武汉市洪山区珞喻路",
        access="drivers_only",
        amenities=["toilet"],
    )
    create(client, external_id="S5", name="100%_安心驿站", address="武昌区中山路")


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("江汉", ["S1"]),  # two Chinese characters: "江汉" finds "江汉路驿站"
        ("江汉路", ["S1"]),
        ("汉", ["S1", "S2", "S4"]),  # one character (S4 by its address, 武汉市…)
        ("驿站", ["S1", "S2", "S4", "S5"]),
        ("optics", ["S3"]),  # case-insensitive Latin
        ("VALLEY rest", ["S3"]),
        ("珞喻", ["S4"]),  # address match
        ("光谷大道 1", ["S3"]),
        ("100%", ["S5"]),  # LIKE wildcards are literal
        ("_", ["S5"]),
        ("上海", []),
    ],
)
def test_search_matches_substrings_in_chinese_and_latin(client, searchable, q, expected):
    r = client.get(URL, params={"q": q})
    assert r.status_code == 200, r.text
    assert names(r.json()) == expected


def test_search_combines_with_other_filters(client, searchable):
    got = client.get(URL, params={"q": "驿站", "access": "drivers_only"}).json()
    assert names(got) == ["S4"]
    got = client.get(URL, params={"q": "驿站", "amenities": "toilet"}).json()
    assert names(got) == ["S4"]
    got = client.get(URL, params={"q": "驿站", "district": "420103"}).json()
    assert names(got) == ["S1", "S2", "S4", "S5"]  # factory default district
    near = client.get(f"{URL}/nearest", params={"lat": 30.58, "lon": 114.29, "q": "江汉"}).json()
    assert names(near) == ["S1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "长" * 51}, "q"),
        ({"district": "42"}, "district"),
        ({"access": "everyone"}, "access"),
    ],
)
def test_bad_search_parameters(client, params, field):
    r = client.get(URL, params=params)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(field)


def test_search_agrees_with_a_python_substring_scan(conn):
    """Random names from a small alphabet: the indexed search equals `q in name or address`."""
    rng = random.Random(5)
    alphabet = "江汉路口站驿武昌ab C"
    rows = []
    for i in range(300):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))).strip() or "x"
        address = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        rows.append((f"R{i}", name, address or None))
        conn.execute(
            text(
                "INSERT INTO stations (external_id, name, address, geom) "
                "VALUES (:e, :n, :a, ST_SetSRID(ST_MakePoint(114.3, 30.5), 4326))"
            ),
            {"e": f"R{i}", "n": name, "a": address or None},
        )
    for q in ["江", "江汉", "汉路口", "ab", "AB", "b c", "站驿", "口站", "武昌a"]:
        got, total = queries.page(conn, queries.StationFilter(q=q), 500, 0)
        ql = q.lower()
        want = {e for e, n, a in rows if ql in n.lower() or (a is not None and ql in a.lower())}
        assert {r["external_id"] for r in got} == want, q
        assert total == len(want)


def test_search_uses_the_gram_index(conn):
    conn.execute(
        text(
            "INSERT INTO stations (external_id, name, geom) SELECT 'G' || g, "
            "'站点' || g, ST_SetSRID(ST_MakePoint(114, 30), 4326) "
            "FROM generate_series(1, 5000) g"
        )
    )
    conn.execute(text("ANALYZE stations"))
    # The table is tiny, so the planner may rightly prefer a scan; forbid that to prove the
    # index can serve the predicate at all.
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        conn.execute(
            text(
                "EXPLAIN SELECT id FROM stations WHERE search_grams @> "
                "yizhan_query_grams('江汉') AND name ILIKE '%江汉%'"
            )
        ).scalars()
    )
    assert "ix_stations_search_grams" in plan


# --- problem reports ---------------------------------------------------------------------


def report(client, sid, **body):
    return client.post(f"{URL}/{sid}/reports", json={"kind": "other", **body})


def test_report_is_public_counted_and_plain_text(client):
    sid = create(client)["id"]
    r = report(client, sid, kind="amenity_missing_or_broken", comment="<b>微波炉</b>坏了")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["comment"] == "<b>微波炉</b>坏了"  # stored verbatim as text, never as markup
    assert body["station_open_reports"] == 1
    report(client, sid, kind="closed_when_should_be_open")
    station = client.get(f"{URL}/{sid}").json()
    assert station["properties"]["open_reports"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "rude_staff"}, "kind"),
        ({"kind": "other", "comment": "长" * 501}, "comment"),
        ({"kind": "other", "comment": "bad\x00byte"}, "comment"),
        ({"kind": "other", "extra": 1}, "extra"),
        ({}, "kind"),
    ],
)
def test_bad_reports_are_422_and_store_nothing(client, conn, body, field):
    sid = create(client)["id"]
    r = client.post(f"{URL}/{sid}/reports", json=body)
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]
    assert conn.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0


def test_report_on_unknown_station_is_404(client):
    assert report(client, 987654).status_code == 404


def test_report_flooding_is_429_and_stores_nothing_more(client, conn):
    sid = create(client)["id"]
    codes = [report(client, sid, comment=f"第{i}次").status_code for i in range(7)]
    assert codes == [201] * 5 + [429] * 2  # the test settings allow 5 a minute
    last = report(client, sid)
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
    assert last.json()["field"] == "client"
    assert conn.execute(text("SELECT count(*) FROM reports")).scalar_one() == 5
    stored = conn.execute(text("SELECT DISTINCT client_key FROM reports")).scalars().all()
    assert len(stored) == 1 and "testclient" not in stored[0]


def test_reports_go_when_the_station_goes(client, conn):
    sid = create(client)["id"]
    report(client, sid)
    assert client.delete(f"{URL}/{sid}", headers=AUTH).status_code == 204
    assert conn.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0
