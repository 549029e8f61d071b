"""Bounded public compute: coverage parameters from finite sets, a capped run queue with
503 + Retry-After, identical requests joining one run, no database connection held while a
request waits, abandoned runs stopped, and a memory budget for finished runs.

Runs are made to block deterministically by replacing the compute function with one that
waits on a `threading.Event` (thread worker); nothing here depends on timing.

The town: one 1,500 m street east-west, 400 m north a parallel one, joined at both ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.config import Settings
from app.coverage import service
from app.coverage.service import approx_nbytes, grid_nbytes
from app.db import migrate
from app.main import create_app
from tests.conftest import TransactionDatabase, fresh_database
from tests.factories import feature
from tests.test_network_api import AUTH, LAT, create, east, line, load, north

URL = "/api/v1/coverage"
RES = {"resolution": 10}
#: Long enough never to be reached by a test that works; bounds one that hangs.
DEADLINE_S = 60.0


def _town_features() -> list[dict[str, Any]]:
    s = [(east(x), LAT) for x in range(0, 1501, 500)]
    n = [(east(x), north(400)) for x in range(0, 1501, 500)]
    feats = [line([s[i], s[i + 1]]) for i in range(len(s) - 1)]
    feats += [line([n[i], n[i + 1]]) for i in range(len(n) - 1)]
    feats.append(line([s[0], n[0]]))
    feats.append(line([s[-1], n[-1]]))
    return feats


@pytest.fixture
def town(conn, tmp_path):
    return load(conn, tmp_path, _town_features())


def _thread_settings(settings: Settings, **kw: Any) -> Settings:
    return settings.model_copy(update={"coverage_worker": "thread", **kw})


@pytest.fixture
def tclient(settings: Settings, conn) -> Iterator[TestClient]:
    """The app with runs computed in a thread of this process (so the compute function can
    be replaced), inside the test's transaction."""
    app = create_app(_thread_settings(settings))
    with TestClient(app) as tc:
        app.state.db = TransactionDatabase(conn)
        yield tc


class Gate:
    """Replaces `service.compute_run`: each call records its target minutes, signals that
    it started, and waits until the test opens the gate (then computes for real)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, report_progress: bool = False):
        self.real = service.compute_run
        self.entered = threading.Event()
        self.open = threading.Event()
        self.calls: list[int] = []
        self.report_progress = report_progress
        monkeypatch.setattr(service, "compute_run", self)

    def __call__(self, inputs: Any, grid: Any, progress: Any = None, **kw: Any) -> Any:
        self.calls.append(inputs.params.minutes)
        self.entered.set()
        while not self.open.wait(0.01):
            if self.report_progress and progress is not None:
                progress("stations", 0, 1)  # where a real run would notice it is unwanted
        return self.real(inputs, grid, progress, **kw)


@pytest.fixture
def make_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Gate]]:
    """Makes Gates; opens every one at the end, so a failing test cannot leave a request
    blocked (and the app's shutdown waiting for it)."""
    made: list[Gate] = []

    def make(**kw: Any) -> Gate:
        g = Gate(monkeypatch, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.open.set()


def wait_until(cond: Callable[[], bool], what: str) -> None:
    """Poll until `cond()` holds (a bound against hanging, not a timing assertion)."""
    end = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def _idle(engine: service.CoverageEngine) -> bool:
    st = engine.stats()
    return st["computing"] == 0 and st["queued"] == 0


# -- parameters from finite sets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"dense_minutes": "2.5"}, "dense_minutes"),
        ({"dense_minutes": "16"}, "dense_minutes"),
        ({"dense_minutes": "0.0001"}, "dense_minutes"),
    ],
)
def test_run_parameters_outside_their_set_are_422_naming_the_field(tclient, town, params, field):
    create(tclient, "A", east(0), LAT)
    r = tclient.get(URL + "/summary", params={**RES, **params})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"].startswith(f"{field}:")
    assert body.get("field", field) == field
    assert tclient.app.state.coverage.stats()["runs"] == 0  # refused before any run


def test_messages_list_the_allowed_values_in_chinese_and_english(tclient, town):
    body = tclient.get(URL + "/summary", params={**RES, "dense_minutes": "7.5"}).json()
    assert "1–15" in body["detail"] and "整数分钟" in body["detail"]
    assert "whole minutes" in body["detail"] and body["field"] == "dense_minutes"
    # the same rules for the JSON bodies of suggestions and scenarios
    r = tclient.post(URL + "/suggestions", json={**RES, "k": 1, "dense_minutes": 2.5})
    assert r.status_code == 422 and r.json()["field"] == "dense_minutes"
    r = tclient.post(URL + "/scenario", json={**RES, "bands": "5,99"})
    assert r.status_code == 422 and r.json()["field"] == "bands"
    # the close-pair radius of the over-density view (a search per station per value)
    r = tclient.get(URL + "/overdense", params={**RES, "pair_minutes": "2.75"})
    assert r.status_code == 422 and r.json()["field"] == "pair_minutes"


def test_planner_page_accepts_only_its_listed_values(tclient, town):
    for params, field in (
        ({"suggest": "4"}, "suggest"),
        ({"minutes": "1_5"}, "minutes"),
        ({"resolution": "+9"}, "resolution"),
    ):
        r = tclient.get("/planner", params=params)
        assert r.status_code == 422, params
        assert f"{field}:" in r.text
        assert tclient.get("/planner/districts.csv", params=params).status_code == 422


def test_bands_and_equivalent_instants_share_one_run(tclient, town):
    a = create(tclient, "A", east(0), LAT)
    r = tclient.post(
        "/api/v1/stations",
        json=feature("DAY", lon=east(1500), lat=north(400), opening_hours="Mo-Su 08:00-18:00"),
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    day = r.json()["id"]
    engine = tclient.app.state.coverage
    one = tclient.get(URL + "/summary", params={**RES, "bands": "5,10,15"}).json()
    two = tclient.get(URL + "/summary", params={**RES, "bands": "3,6,9,12,15"}).json()
    assert one["run"] == two["run"] and engine.stats()["runs"] == 1
    assert [w["minutes"] for w in two["overall"]["within"]] == [3, 6, 9, 12, 15]
    assert two["params"]["bands"] == [3, 6, 9, 12, 15]
    # at 10:00 and 11:00 (+08:00) both stations are open: the run without open_at
    at10 = tclient.get(URL + "/summary", params={**RES, "open_at": "2026-11-23T10:00+08:00"})
    at11 = tclient.get(URL + "/summary", params={**RES, "open_at": "2026-11-23T11:00+08:00"})
    assert at10.json()["run"] == at11.json()["run"] == one["run"]
    assert at11.json()["params"]["open_at"] == "2026-11-23T11:00:00+08:00"
    # at 22:00 the day station is closed: another run, which leaves it out
    night = tclient.get(URL + "/summary", params={**RES, "open_at": "2026-11-23T22:00+08:00"})
    body = night.json()
    assert body["run"] != one["run"] and engine.stats()["runs"] == 2
    assert {"id": day, "reason": "closed_at_open_at"} in body["stations_excluded"]
    assert body["stations_used"] == 1 and one["stations_used"] == 2
    assert a != day


def test_a_known_run_is_found_from_fingerprints_alone(tclient, town, monkeypatch):
    create(tclient, "A", east(0), LAT)
    engine = tclient.app.state.coverage
    first = tclient.get(URL + "/summary", params=RES).json()
    reads: list[Any] = []
    real = engine.read_inputs
    monkeypatch.setattr(engine, "read_inputs", lambda *a, **kw: reads.append(a) or real(*a, **kw))
    again = tclient.get(URL + "/summary", params={**RES, "bands": "5,15"}).json()
    assert again["run"] == first["run"] and reads == []  # no stations or outlines read
    # a changed station changes the fingerprint: the inputs are read and a new run made
    create(tclient, "B", east(1500), north(400))
    third = tclient.get(URL + "/summary", params=RES).json()
    assert third["run"] != first["run"] and len(reads) == 1


# -- the queue: cap, joining, abandoned runs --------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after(tclient, town, make_gate):
    create(tclient, "A", east(0), LAT)
    gate = make_gate()
    engine = tclient.app.state.coverage
    engine.wait_s = 0.0  # answer 202 at once, the runs stay queued
    engine.abandon_s = 3600.0
    assert engine.max_queued == 2
    for minutes in (5, 6, 7):  # one computing, two queued
        r = tclient.get(URL + "/summary", params={**RES, "minutes": minutes})
        assert r.status_code == 202, r.text
    gate.entered.wait(DEADLINE_S)
    full = tclient.get(URL + "/summary", params={**RES, "minutes": 8})
    assert full.status_code == 503, full.text
    assert int(full.headers["Retry-After"]) >= 1
    body = full.json()
    assert body["field"] == "coverage" and body["detail"].startswith("coverage:")
    assert "繁忙" in body["detail"] and "busy" in body["detail"]
    # the planner page and its downloads say the same, with Retry-After
    page = tclient.get("/planner", params={"minutes": 9})
    assert page.status_code == 503 and "Retry-After" in page.headers
    dl = tclient.get("/planner/districts.csv", params={"minutes": 9})
    assert dl.status_code == 503 and "Retry-After" in dl.headers
    # a run already queued is joined, not refused
    assert tclient.get(URL + "/summary", params={**RES, "minutes": 7}).status_code == 202
    gate.open.set()
    wait_until(lambda: _idle(engine), "the queue drains")
    assert sorted(gate.calls) == [5, 6, 7]
    engine.wait_s = 20.0
    assert tclient.get(URL + "/summary", params={**RES, "minutes": 8}).status_code == 200


def test_identical_requests_join_one_run(tclient, town, make_gate):
    create(tclient, "A", east(0), LAT)
    gate = make_gate()
    engine = tclient.app.state.coverage
    engine.wait_s = 0.0
    engine.abandon_s = 3600.0
    first = tclient.get(URL + "/summary", params=RES)
    gate.entered.wait(DEADLINE_S)
    others = [tclient.get(URL + "/summary", params=RES) for _ in range(5)]
    assert {r.status_code for r in [first, *others]} == {202}
    assert {r.json()["run"] for r in others} == {first.json()["run"]}
    assert engine.stats()["computing"] + engine.stats()["queued"] == 1
    gate.open.set()
    wait_until(lambda: _idle(engine), "the run finishes")
    done = tclient.get(URL + "/summary", params=RES)
    assert done.status_code == 200 and done.json()["run"] == first.json()["run"]
    assert gate.calls == [15]  # computed once


def test_waiters_share_the_result_when_it_comes(tclient, town, make_gate):
    create(tclient, "A", east(0), LAT)
    gate = make_gate()
    engine = tclient.app.state.coverage
    answers: list[Any] = []

    def ask() -> None:
        answers.append(tclient.get(URL + "/summary", params=RES))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for n, t in enumerate(threads, start=1):  # one at a time: they share one connection
        t.start()
        wait_until(lambda n=n: any(j.waiters == n for j in engine._jobs.values()), f"{n} waiters")
    gate.open.set()
    for t in threads:
        t.join(DEADLINE_S)
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len({r.json()["run"] for r in answers}) == 1 and gate.calls == [15]


def test_a_queued_run_nobody_wants_is_dropped_and_a_running_one_stopped(tclient, town, make_gate):
    create(tclient, "A", east(0), LAT)
    gate = make_gate(report_progress=True)
    engine = tclient.app.state.coverage
    engine.wait_s = 0.0
    engine.abandon_s = 3600.0
    running = tclient.get(URL + "/summary", params={**RES, "minutes": 5}).json()["run"]
    gate.entered.wait(DEADLINE_S)
    queued = tclient.get(URL + "/summary", params={**RES, "minutes": 6}).json()["run"]
    # nobody waits for either (their requests got 202) and nobody polls from now on
    engine.abandon_s = -1.0
    wait_until(lambda: _idle(engine), "both runs end")
    assert gate.calls == [5]  # the queued one never started
    for key in (running, queued):
        status = tclient.get(f"{URL}/runs/{key}").json()
        assert status["status"] == "cancelled", status
    assert engine.stats()["runs"] == 0


def test_a_waiting_post_survives_the_client_checks(tclient, town, make_gate, monkeypatch):
    a = create(tclient, "A", east(0), LAT)
    gate = make_gate()
    engine = tclient.app.state.coverage
    monkeypatch.setattr(service, "WAIT_SLICE_S", 0.001)  # check the client very often
    checks: list[bool] = []
    real = engine.obtain

    async def counting(db, params, *, time_zone, disconnected=None):
        async def check() -> bool:
            gone = await disconnected()
            checks.append(gone)
            if len(checks) >= 20:
                gate.open.set()  # the run ends only after many checks
            return gone

        return await real(db, params, time_zone=time_zone, disconnected=check)

    monkeypatch.setattr(engine, "obtain", counting)
    r = tclient.post(URL + "/scenario", json={**RES, "close": [a]})
    assert r.status_code == 200, r.text
    assert len(checks) >= 20 and not any(checks)


# -- no connection held while waiting (a real database, real pool) ---------------------------


@pytest.fixture(scope="module")
def real_db_url() -> str:
    url = fresh_database("limits")
    migrate.upgrade(url)
    return url


def test_a_waiting_request_holds_no_database_connection(settings, real_db_url, tmp_path, make_gate):
    eng = create_engine(real_db_url)
    with eng.begin() as c:
        c.execute(text("TRUNCATE stations, network_versions CASCADE"))
        load(c, tmp_path, _town_features())
    eng.dispose()
    app = create_app(_thread_settings(settings, database_url=real_db_url))
    with TestClient(app) as tc:  # the app's own Database on its own engine and pool
        create(tc, "A", east(0), LAT)
        pool = app.state.engine.pool
        gate = make_gate()
        answers: list[Any] = []
        waiting = threading.Thread(
            target=lambda: answers.append(tc.get(URL + "/summary", params=RES))
        )
        waiting.start()
        try:
            # the run is computing, so its request is waiting for it (it read its inputs
            # before the run could start)
            assert gate.entered.wait(DEADLINE_S)
            assert waiting.is_alive()
            assert pool.checkedout() == 0
        finally:
            gate.open.set()
            waiting.join(DEADLINE_S)
        assert answers[0].status_code == 200, answers[0].text
        assert answers[0].json()["run_id"] is not None  # stored by its own write unit
        assert pool.checkedout() == 0


# -- memory budget ------------------------------------------------------------------------------


def test_the_memory_budget_evicts_least_recently_used_runs(tclient, town):
    create(tclient, "A", east(0), LAT)
    create(tclient, "B", east(1500), north(400))
    engine = tclient.app.state.coverage
    k1 = tclient.get(URL + "/summary", params={**RES, "minutes": 5}).json()["run"]
    run1 = engine.cached(k1)
    # the estimate counts at least the run's own arrays (checked against numpy directly)
    own = sum(
        a.nbytes
        for a in (
            run1.model.minutes,
            run1.model.nearest,
            run1.model.reach.cell,
            run1.model.reach.seconds,
            run1.weights,
            run1.cell_district,
        )
    )
    assert approx_nbytes(run1) >= own
    grid = grid_nbytes(run1.grid)
    assert grid >= run1.grid.cells.nbytes + run1.grid.piece_edge.nbytes
    # room for the grid and one and a half runs: each new run pushes the oldest out
    engine.memory_bytes = grid + int(1.5 * approx_nbytes(run1))
    k2 = tclient.get(URL + "/summary", params={**RES, "minutes": 6}).json()["run"]
    k3 = tclient.get(URL + "/summary", params={**RES, "minutes": 7}).json()["run"]
    assert engine.cached(k1) is None and engine.cached(k2) is None
    assert engine.cached(k3) is not None
    assert engine.stats()["memory_bytes"] <= engine.memory_bytes
    # and the count limit holds on its own
    engine.memory_bytes = 2**40
    engine.keep = 2
    for m in (8, 9, 10):
        tclient.get(URL + "/summary", params={**RES, "minutes": m})
    assert engine.stats()["runs"] == 2


# -- the compute process gives the same answer as computing here --------------------------------


def test_the_compute_process_matches_the_in_process_run(client, tclient, town):
    create(client, "A", east(0), LAT)
    assert client.app.state.coverage.worker == "process"
    here = tclient.get(URL + "/summary", params=RES).json()
    there = client.get(URL + "/summary", params=RES).json()
    assert here["run"] == there["run"]
    a = tclient.app.state.coverage.cached(here["run"])
    b = client.app.state.coverage.cached(there["run"])
    assert a is not b
    np.testing.assert_array_equal(a.model.minutes, b.model.minutes)
    np.testing.assert_array_equal(a.model.multiplicity, b.model.multiplicity)
    np.testing.assert_array_equal(a.grid.cells, b.grid.cells)
    assert [p.wkb for p in a.grid.polygons] == [p.wkb for p in b.grid.polygons]
    assert here["overall"] == there["overall"]
