"""Cold starts (issue 14): the default run warmed in the background after start-up, the
reach step of site suggestions computed once per run and candidate set.

The town is tests/test_coverage_api.py's (two parallel streets joined by a bridge at the east
end); the warm-up reads committed data through the app's own engine, so those tests use a
database of their own (`<db>_<tag>warm`), not the rolled-back test transaction.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.coverage import service
from app.db import migrate
from app.db.engine import make_engine
from app.main import create_app
from tests.conftest import ADMIN_TOKEN, fresh_database
from tests.test_coverage_api import RES
from tests.test_network_api import LAT, create, east, line, load, north


def _town_features() -> list[dict]:
    s = [(east(x), LAT) for x in range(0, 1501, 250)]
    n = [(east(x), north(400)) for x in range(0, 1501, 250)]
    feats = [line([s[i], s[i + 1]]) for i in range(len(s) - 1)]
    feats += [line([n[i], n[i + 1]]) for i in range(len(n) - 1)]
    feats.append(line([s[-1], (east(1500), north(200)), n[-1]]))
    return feats


def _wait(app, timeout_s: float = 120.0) -> dict:
    task = app.state.warm_up
    deadline = time.monotonic() + timeout_s
    while not task.done():
        assert time.monotonic() < deadline, "the warm-up did not finish"
        time.sleep(0.05)
    return task.result()


def _warm_settings(url: str, **extra) -> Settings:
    given = {"coverage_warm_up": True, "coverage_worker": "thread", **extra}
    return Settings(database_url=url, admin_token=ADMIN_TOKEN, hours_auto_refresh=False, **given)


# -- the reach cache --------------------------------------------------------------------------


def test_suggestions_compute_the_reach_step_once_per_candidate_set(
    client, conn, tmp_path, monkeypatch
):
    load(conn, tmp_path, _town_features())
    create(client, "N0", east(0), north(400))
    assert client.get("/api/v1/coverage/summary", params=RES).status_code == 200
    (run,) = client.app.state.coverage._runs.values()
    calls = []
    real = service.point_reach

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "point_reach", counting)
    one = service.suggest(run, 1)
    two = service.suggest(run, 2)  # another K: same candidates, same reach
    assert len(calls) == 1 and not one["timing_s"]["reach_reused"]
    assert two["timing_s"]["reach_reused"]
    assert two["picks"][0] == one["picks"][0]  # greedy: K=2 starts with K=1's pick
    # the API's suggestions share it too
    r = client.post("/api/v1/coverage/suggestions", json={"k": 3, **RES})
    assert r.status_code == 200, r.text
    assert len(calls) == 1 and r.json()["timing_s"]["reach_reused"]
    # the kept matrix is exactly what a fresh reach step gives, and so are the picks
    cand_cells = run._memo[("cell_candidates", None)]
    s = run.cell_snaps
    cand = service.Points(s.edge[cand_cells], s.fraction[cand_cells], s.off_m[cand_cells])
    kept, reused = service.reach_cover(run, cand)
    assert reused and len(calls) == 1
    fresh = real(run.graph, cand, run.cell_snaps, run.params.minutes * 60.0).matrix()
    assert (kept != fresh).nnz == 0 and kept.shape == fresh.shape
    run._memo.clear()
    again = service.suggest(run, 2)
    assert len(calls) == 2 and not again["timing_s"]["reach_reused"]
    assert again["picks"] == two["picks"]


def test_planner_sites_are_their_own_candidate_set(client, conn, tmp_path, monkeypatch):
    load(conn, tmp_path, _town_features())
    create(client, "N0", east(0), north(400))
    assert client.get("/api/v1/coverage/summary", params=RES).status_code == 200
    (run,) = client.app.state.coverage._runs.values()
    sites_a = [service.SitePoint(east(1400), LAT), service.SitePoint(east(700), LAT)]
    sites_b = [service.SitePoint(east(1400), LAT)]
    a1 = service.suggest(run, 1, sites=sites_a)
    a2 = service.suggest(run, 2, sites=sites_a)
    b1 = service.suggest(run, 1, sites=sites_b)
    assert not a1["timing_s"]["reach_reused"] and a2["timing_s"]["reach_reused"]
    assert not b1["timing_s"]["reach_reused"]  # other points: not mistaken for a's
    assert len(run._memo["reach"]) == 2
    # bounded: the oldest candidate set goes first
    for i in range(service.KEEP_REACH + 1):
        service.suggest(run, 1, sites=[service.SitePoint(east(100 + 200 * i), LAT)])
    assert len(run._memo["reach"]) == service.KEEP_REACH
    assert not service.suggest(run, 1, sites=sites_a)["timing_s"]["reach_reused"]
    np.testing.assert_allclose(a1["picks"][0]["gain"], a2["picks"][0]["gain"])


# -- the warm-up ------------------------------------------------------------------------------


def test_warm_up_without_a_network_does_not_break_start_up(database_url):
    """The migrated test database has no live network (tests load theirs in rolled-back
    transactions): the warm-up is skipped, the app serves."""
    app = create_app(_warm_settings(database_url))
    with TestClient(app) as tc:
        assert tc.get("/healthz").status_code == 200
        assert tc.get("/readyz").status_code == 200
        done = _wait(app)
        assert done["status"] == "skipped", done
        assert tc.get("/readyz").status_code == 200


def test_warm_up_without_a_database_does_not_break_start_up():
    app = create_app(_warm_settings("postgresql://nobody:x@127.0.0.1:9/none"))
    with TestClient(app) as tc:
        assert tc.get("/healthz").status_code == 200
        done = _wait(app)
        assert done["status"] == "skipped" and done["reason"].startswith("database"), done
        assert tc.get("/readyz").status_code == 503  # says so; the process still serves


@pytest.fixture(scope="module")
def town_db(tmp_path_factory) -> str:
    """A database of its own with the town committed: network and one station."""
    url = fresh_database("warm")
    migrate.upgrade(url)
    eng = make_engine(Settings(database_url=url, hours_auto_refresh=False))
    try:
        with eng.begin() as conn:
            load(conn, tmp_path_factory.mktemp("town"), _town_features())
    finally:
        eng.dispose()
    setup = create_app(_warm_settings(url, coverage_warm_up=False))
    with TestClient(setup) as tc:
        create(tc, "N0", east(0), north(400))
    return url


def test_warm_up_computes_the_default_run_the_first_page_then_uses(town_db):
    app = create_app(_warm_settings(town_db))
    with TestClient(app) as tc:
        done = _wait(app)
        assert done["status"] == "ok", done
        engine = app.state.coverage
        run = engine.cached(done["run_key"])
        assert run is not None and run.run_id is not None  # computed and stored
        assert run.params.as_dict() == service.make_params().as_dict()  # the default view
        assert any(k[0] == "suggest" for k in run._memo if isinstance(k, tuple))
        assert run._memo.get("reach")  # the default suggestions' reach step is kept
        assert any(k[0] == "pairs" for k in run._memo if isinstance(k, tuple))  # map built
        # the first request finds it: same run (same stored id), nothing computed again
        before = engine.stats()
        body = tc.get("/api/v1/coverage/summary").json()
        assert body["run_id"] == run.run_id
        assert engine.stats()["runs"] == before["runs"] == 1
        page = tc.get("/planner")
        assert page.status_code == 200
        assert engine.stats()["runs"] == 1
        # its answers are a fresh run's: the same summary from a new app without warm-up
    cold = create_app(_warm_settings(town_db, coverage_warm_up=False))
    with TestClient(cold) as tc:
        fresh = tc.get("/api/v1/coverage/summary").json()
    assert fresh["overall"] == body["overall"]
    assert fresh["districts"] == body["districts"]


def test_warm_up_off_leaves_the_engine_empty(town_db):
    app = create_app(_warm_settings(town_db, coverage_warm_up=False))
    with TestClient(app):
        assert not hasattr(app.state, "warm_up")
        time.sleep(0.5)
        assert app.state.coverage.stats() == {**app.state.coverage.stats(), "runs": 0}


def test_two_callers_of_one_candidate_set_share_one_reach_step(client, conn, tmp_path, monkeypatch):
    import threading

    load(conn, tmp_path, _town_features())
    create(client, "N0", east(0), north(400))
    assert client.get("/api/v1/coverage/summary", params=RES).status_code == 200
    (run,) = client.app.state.coverage._runs.values()
    sites = [service.SitePoint(east(1400), LAT), service.SitePoint(east(700), LAT)]
    cand = service._snap_or_422(run, sites, "candidates")
    calls, entered, release = [], threading.Event(), threading.Event()
    real = service.point_reach

    def slow(*args, **kwargs):
        calls.append(1)
        entered.set()
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "point_reach", slow)
    got: list = []
    first = threading.Thread(target=lambda: got.append(service.reach_cover(run, cand)))
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=lambda: got.append(service.reach_cover(run, cand)))
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1
    assert sorted(reused for _, reused in got) == [False, True]
    assert got[0][0] is got[1][0]
