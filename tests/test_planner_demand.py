"""Imported demand layers on the planner page (issue 14): every layer is offered in the
"需求按 / Demand by" drop-down, and the headline's share and median are both over demand.

The headline once read "100.0 % … 中位时间 21.9 分钟" with a layer: the share was over demand
but the median over every cell, zero-demand street cells included. Now the median is the
demand-weighted (lower) median, so share within T ≥ 50 % exactly when the median ≤ T.

The page tests use the hand-made street grid of tests/test_planner_page.py (3 stations, a gap
in the middle) and hand-made layers of three weighted points: next to two stations and in the
gap. The expected share and median are worked out here from the three cells' minutes.
"""

from __future__ import annotations

import random
import re
from html import unescape

import numpy as np
import pytest

from app.coverage import derive
from tests.conftest import AUTH
from tests.test_network_api import LAT, east, north
from tests.test_planner_page import grid_town, leaflet_assets, stations  # noqa: F401

PARAMS = {"minutes": "5", "resolution": "9"}
INF = float("inf")

#: (lon, lat) of the three demand points: at the stations EVIL and PLAIN, and in the gap
AT_EVIL = (east(200), LAT)
AT_PLAIN = (east(1800), north(400))
IN_GAP = (east(1000), LAT)


# --- the median itself (pure) ---------------------------------------------------------------


def test_demand_median_by_hand():
    m = np.array([2.0, 7.0, 12.0, INF])
    # half of 10 is 5: 1 + 2 < 5 ≤ 1 + 2 + 3 → 12
    assert derive.demand_median(m, np.array([1.0, 2.0, 3.0, 4.0])) == 12.0
    # exactly half at 7 → the lower median, 7
    assert derive.demand_median(m, np.array([1.0, 4.0, 0.0, 5.0])) == 7.0
    # zero-demand cells play no part, however many there are
    many = np.concatenate([m, np.full(100, 30.0)])
    w = np.concatenate([np.array([5.0, 1.0, 1.0, 0.0]), np.zeros(100)])
    assert derive.demand_median(many, w) == 2.0
    # more than half unreachable → inf (JSON: None); no demand → None
    assert derive.demand_median(m, np.array([1.0, 0.0, 0.0, 2.0])) == INF
    assert derive.demand_median(m, np.zeros(4)) is None
    assert derive.round_up(INF, 2) is None and derive.round_up(None, 1) is None
    assert derive.round_up(7.1234, 2) == 7.13 and derive.round_up(15.0 + 1e-10, 1) == 15.0


def test_demand_median_agrees_with_the_share_brute_force():
    """share within T ≥ 50 % ⟺ median ≤ T, against the definition, on random cells."""
    rng = random.Random(14)
    for _ in range(400):
        n = rng.randint(1, 12)
        mins = np.array(
            [INF if rng.random() < 0.15 else float(rng.choice(range(0, 30))) for _ in range(n)]
        )
        w = np.array(
            [0.0 if rng.random() < 0.2 else rng.choice([0.1, 0.2, 1.0, 3.0]) for _ in mins]
        )
        med = derive.demand_median(mins, w)
        if w.sum() == 0:
            assert med is None
            continue
        # brute force: the least cell minutes whose covered demand is at least half
        candidates = sorted({x for x, wi in zip(mins, w, strict=True) if wi > 0})
        want = next(t for t in candidates if w[mins <= t].sum() >= w.sum() / 2 - 1e-12)
        assert med == want
        for t in range(0, 31):
            share = w[mins <= t + 1e-9].sum() / w.sum()
            assert (share >= 0.5 - 1e-12) == (med <= t)


def test_summary_carries_the_demand_median_next_to_the_shares():
    from tests.test_mutation_coverage import AREA, MINUTES, WEIGHTS, _dense_reach, _model

    m = _model(MINUTES, WEIGHTS, _dense_reach(), n_points=3)
    s = derive.area_summary(m, np.ones(5, bool), AREA, (5, 10, 15), 3)
    # minutes 2, 7.1234, 12, inf, 20 with weights 1, 2, 3, 4, 0.5: half of 10.5 is 5.25,
    # reached at 12 (1 + 2 + 3 = 6), so the median over demand is 12 while over cells 9.56
    assert s["demand_median_minutes"] == 12.0
    assert s["median_minutes"] == 9.56


# --- the page ---------------------------------------------------------------------------------


def put_layer(client, name: str, points: list[tuple[tuple[float, float], float]], **params):
    body = "lon,lat,weight\n" + "".join(f"{x},{y},{w}\n" for (x, y), w in points)
    r = client.put(
        f"/api/v1/demand/{name}",
        params={"unit": "persons", "resolution": 9, **params},
        content=body.encode(),
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert r.status_code in (200, 201), r.text


def weight_options(page: str) -> list[tuple[str, str]]:
    select = re.search(r'<select name="weight">(.*?)</select>', page, re.S)
    assert select
    return [
        (v, unescape(label).strip())
        for v, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select[1])
    ]


@pytest.mark.usefixtures("stations")
def test_the_drop_down_offers_every_imported_layer(client):
    put_layer(client, "residents", [(AT_EVIL, 1)], description="常住人口 <2025>")
    put_layer(client, "orders", [(AT_PLAIN, 1)])
    zh = client.get("/planner", params=PARAMS)
    assert zh.status_code == 200, zh.text
    assert weight_options(zh.text) == [
        ("road", "街道长度"),
        ("area", "面积"),
        ("orders", "orders（persons）"),
        ("residents", "residents：常住人口 <2025>（persons）"),
    ]
    assert "<2025>" not in zh.text  # the description is text, escaped
    assert '<optgroup label="导入的需求图层">' in zh.text
    en = client.get("/planner", params={**PARAMS, "lang": "en", "weight": "residents"}).text
    assert ("residents", "residents: 常住人口 <2025> (persons)") in weight_options(en)
    assert re.search(r'<option value="residents" selected>', en)
    # a layer deleted meanwhile is no longer offered
    assert client.delete("/api/v1/demand/orders", headers=AUTH).status_code == 204
    assert "orders" not in dict(weight_options(client.get("/planner", params=PARAMS).text))


def _cell_minutes(client, weight: str) -> list[tuple[float, float | None]]:
    """(weight, minutes) of the cells with demand, from the cells download."""
    cells = client.get(
        "/api/v1/coverage/cells", params={**PARAMS, "weight": weight, "mode": "walk"}
    ).json()["features"]
    return [
        (f["properties"]["weight"], f["properties"]["minutes"])
        for f in cells
        if f["properties"]["weight"] > 0
    ]


def _headline(page: str) -> tuple[float, str]:
    m = re.search(r'<p class="headline">(.*?)</p>', page, re.S)
    assert m, page[:2000]
    text = unescape(m[1])
    share = re.search(r"by walking: ([0-9.]+)%", text)
    median = re.search(r"half of the demand within ([0-9.]+|–) min", text)
    assert share and median, text
    return float(share[1]), median[1]


@pytest.mark.parametrize(
    ("weights", "share", "median_in_gap"),
    [
        # everything next to a station: 100 %, so half of it is within the target too
        ((30.0, 25.0, 0.0), 100.0, False),
        # 55 % near stations: the median is the later of the two station cells
        ((30.0, 25.0, 45.0), 55.0, False),
        # 41 % near stations: the median is the gap cell, beyond the target
        ((20.0, 21.0, 59.0), 41.0, True),
    ],
)
@pytest.mark.usefixtures("stations")
def test_headline_share_and_median_are_both_over_demand(client, weights, share, median_in_gap):
    a, b, c = weights
    points = [(AT_EVIL, a), (AT_PLAIN, b)] + ([(IN_GAP, c)] if c else [])
    put_layer(client, "hand", points)
    page = client.get("/planner", params={**PARAMS, "weight": "hand", "lang": "en"})
    assert page.status_code == 200, page.text
    shown_share, shown_median = _headline(page.text)
    assert shown_share == share
    # the three cells' minutes, read from the cells the same run produced
    cells = sorted(_cell_minutes(client, "hand"), key=lambda wm: wm[0])
    assert sorted(w for w, _ in cells) == sorted(w for w in weights if w)
    minutes = {w: m for w, m in cells}
    assert minutes[a] <= 5 and minutes[b] <= 5  # the station cells
    if c:
        assert minutes[c] > 5  # the gap cell
    want = minutes[c] if median_in_gap else max(minutes[a], minutes[b])
    # shown rounded up to 0.1 (the cells download may round its minutes to 0.01)
    assert want - 0.01 <= float(shown_median) <= want + 0.11
    # consistent: at least half within the target exactly when the median is within it
    assert (shown_share >= 50) == (float(shown_median) <= 5)
