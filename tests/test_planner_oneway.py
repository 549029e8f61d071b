"""One-way rules are modelled (riding and driving follow `oneway`), but the Wuhan demo network
(neatnet's undirected OSMnx export) has no one-way edges, so they never act there. The planner
page and `yizhan network info` say so when the live network has no one-way edge, and stay
silent when it has one (issue 14).

The hand-made network: a triangle of residential streets, 600 m on each leg, in two versions:
all two-way, and with one leg one-way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.config import Settings
from app.db import migrate
from tests.conftest import fresh_database
from tests.test_network_api import LAT, create, east, line, load, north

NOTE_ZH = "此路网无单行道数据，未考虑单行限制"
NOTE_EN = "This network has no one-way data"
PARAMS = {"minutes": "5", "resolution": "9", "mode": "car"}


def triangle(oneway: bool) -> list[dict]:
    a, b, c = (east(0), LAT), (east(600), LAT), (east(600), north(600))
    first = line([a, b], oneway="yes") if oneway else line([a, b])
    return [first, line([b, c]), line([c, a])]


@pytest.mark.parametrize("oneway", [False, True])
def test_planner_page_says_when_one_way_rules_cannot_act(client, conn, tmp_path, oneway):
    load(conn, tmp_path, triangle(oneway))
    create(client, "OW-1", east(600), LAT)
    for lang, note in (("zh", NOTE_ZH), ("en", NOTE_EN)):
        for mode in ("walk", "car"):
            page = client.get("/planner", params={**PARAMS, "mode": mode, "lang": lang})
            assert page.status_code == 200, page.text
            assert (note in page.text) is (not oneway), (lang, mode)
            assert ('class="notes no-oneway"' in page.text) is (not oneway)
    summary = client.get("/api/v1/coverage/summary", params=PARAMS)
    assert summary.status_code == 200, summary.text
    assert summary.json()["network_oneway_edges"] == (1 if oneway else 0)


def _write(tmp: Path, name: str, feats: list[dict]) -> Path:
    import json

    p = tmp / name
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), "utf-8")
    return p


def test_cli_network_info_says_so_too(monkeypatch, tmp_path):
    from app import cli

    url = fresh_database("oneway_cli")
    migrate.upgrade(url)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=url))
    runner = CliRunner()
    for oneway, want in ((False, True), (True, False)):
        path = _write(tmp_path, f"tri-{oneway}.geojson", triangle(oneway))
        ok = runner.invoke(cli.cli, ["network", "import", str(path), "--force"])
        assert ok.exit_code == 0, ok.output
        info = runner.invoke(cli.cli, ["network", "info"])
        assert info.exit_code == 0, info.output
        text = " ".join(info.output.split())
        assert f"{1 if oneway else 0} one-way edges" in text
        assert ("one-way rules are not modelled" in text) is want
        assert (NOTE_ZH in text) is want
