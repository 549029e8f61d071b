"""The command line as a named actor (`yizhan --as USER`, else `system`) and `yizhan users`.

Every command runs through typer's CliRunner against a database of this module's own (the CLI
commits), so every assertion reads what was really committed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from typer.testing import CliRunner, Result

from app import cli
from app.accounts import queries as account_queries
from app.accounts import service
from app.accounts.credentials import LoginThrottle, Passwords
from app.accounts.schemas import AcceptIn
from app.config import Settings
from app.db import migrate
from app.db.engine import make_engine
from app.errors import NotFoundError, UnauthorizedError
from tests.conftest import fresh_database
from tests.factories import feature

PASSWORD = "plum-blossom-river-7"


@pytest.fixture(scope="module")
def settings() -> Settings:
    url = fresh_database("cli_acc")
    migrate.upgrade(url)
    # Cheap Argon2 costs: this module tests who acts, not the hash (test_accounts does).
    return Settings(
        database_url=url,
        hours_auto_refresh=False,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    eng = make_engine(settings)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def passwords(settings: Settings) -> Passwords:
    return Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


Invoke = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Invoke:
    """`run("users", "list", input=…, env=…)` → the CLI's Result."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.delenv("YIZHAN_AS", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli.cli, list(args), input=input, env=env)

    return invoke


def flat(result: Result) -> str:
    """The output (stdout and stderr) on one line, whatever rich wrapped."""
    return " ".join(result.output.split())


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as c:
        return c.execute(text(sql), params).scalar_one()


def counts(engine: Engine) -> tuple[int, int, int, int]:
    """(stations, station revisions, audit events, users)."""
    with engine.connect() as c:
        row = c.execute(
            text(
                "SELECT (SELECT count(*) FROM stations), (SELECT count(*) FROM station_revisions),"
                " (SELECT count(*) FROM audit_events), (SELECT count(*) FROM users)"
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def make_user(engine: Engine, username: str, role: str, districts: tuple[str, ...] = ()) -> int:
    """An account without a password, inserted directly (`--as` needs no login)."""
    with engine.begin() as c:
        return account_queries.insert_user(
            c, username, username, role, list(districts), None, "test"
        )


def stations_file(tmp_path: Path, name: str, features: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        "utf-8",
    )
    return path


def login(engine: Engine, passwords: Passwords, username: str, password: str) -> dict[str, Any]:
    throttle = LoginThrottle("100/minute", "100/minute", "memory://")
    with engine.begin() as c:
        return service.login(c, username, password, "192.0.2.1", passwords, throttle, 600)


def events(conn: Connection, action: str) -> list[Any]:
    return list(
        conn.execute(
            text(
                "SELECT actor_kind, actor_id, actor_name, channel, subject, details "
                "FROM audit_events WHERE action = :a ORDER BY id"
            ),
            {"a": action},
        )
    )


# ------------------------------------------------------------------------------------------
# yizhan users
# ------------------------------------------------------------------------------------------


def test_add_admin_with_password_from_stdin_can_log_in(run, engine, passwords):
    before = counts(engine)
    done = run("users", "add-admin", "root-admin", "--password-stdin", input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert "root-admin" in done.output and "admin" in done.output
    # a bearer token for the password given on stdin (without its newline)
    token = login(engine, passwords, "root-admin", PASSWORD)
    assert token["token_type"] == "bearer" and token["access_token"]
    with pytest.raises(UnauthorizedError):
        login(engine, passwords, "root-admin", PASSWORD + "\n")
    with engine.connect() as c:
        row = c.execute(
            text("SELECT role, districts, created_by FROM users WHERE username = 'root-admin'")
        ).one()
        created = [e for e in events(c, "user.create") if e.details["username"] == "root-admin"]
    assert (row.role, list(row.districts), row.created_by) == ("admin", [], "system")
    assert [(e.actor_kind, e.actor_name, e.channel) for e in created] == [
        ("system", "system", "cli")
    ]
    assert counts(engine)[3] == before[3] + 1


def test_a_refused_password_writes_nothing(run, engine):
    before = counts(engine)
    weak = run("users", "add-admin", "weak-admin", "--password-stdin", input="password\n")
    assert weak.exit_code == 2
    assert "password" in flat(weak) and "nothing was changed" in flat(weak)
    empty = run("users", "add", "empty-pw", "--role", "planner", "--password-stdin", input="\n")
    assert empty.exit_code == 2 and "--password-stdin" in flat(empty)
    bad_role = run("users", "add", "someone", "--role", "emperor")
    assert bad_role.exit_code == 2 and "role" in flat(bad_role)
    assert counts(engine) == before


def test_users_add_prints_an_invitation_that_accepting_turns_into_the_user(run, engine, passwords):
    done = run("users", "add", "wuchang-union", "--role", "district_admin", "--district", "420106")
    assert done.exit_code == 0, done.output
    code = re.search(r"^code: (\S+)$", done.output, re.M)
    assert code is not None, done.output
    code_s = code.group(1)
    assert f"accept: POST /api/v1/invitations/{code_s}/accept" in done.output
    expires = re.search(r"^expires: (\S+)$", done.output, re.M)
    assert expires is not None
    expected = datetime.now(UTC) + timedelta(days=7)  # the default invitation_ttl_days
    assert abs(datetime.fromisoformat(expires.group(1)) - expected) < timedelta(minutes=10)
    with engine.connect() as c:
        assert account_queries.user_by_name(c, "wuchang-union") is None  # not before accepting
    with engine.begin() as c:
        user, token = service.accept_invitation(
            c, code_s, AcceptIn(password=PASSWORD), passwords, 8, 600
        )
    assert (user["username"], user["role"], list(user["districts"])) == (
        "wuchang-union",
        "district_admin",
        ["420106"],
    )
    assert token["access_token"]
    with engine.connect() as c:
        invited = [
            e for e in events(c, "invitation.create") if e.details["role"] == "district_admin"
        ]
    assert [(e.actor_name, e.channel) for e in invited] == [("system", "cli")]
    # the code is spent
    with engine.begin() as c, pytest.raises(NotFoundError):
        service.accept_invitation(c, code_s, AcceptIn(password=PASSWORD), passwords, 8, 600)


def test_a_district_admin_invites_only_within_their_scope(run, engine, tmp_path, passwords):
    make_user(engine, "hongshan-da", "district_admin", ("420111",))
    path = stations_file(
        tmp_path,
        "two.geojson",
        [
            feature("INV-IN", district_code="420111001"),
            feature("INV-OUT", district_code="420103"),
        ],
    )
    assert run("stations", "import", str(path)).exit_code == 0
    with engine.connect() as c:
        ids = dict(
            c.execute(
                text("SELECT external_id, id FROM stations WHERE external_id LIKE 'INV-%'")
            ).all()
        )
    before = counts(engine)
    above = run(
        "--as",
        "hongshan-da",
        "users",
        "add",
        "city-da",
        "--role",
        "district_admin",
        "--district",
        "4201",
    )
    assert above.exit_code == 2 and "districts" in flat(above)
    admin = run("--as", "hongshan-da", "users", "add-admin", "sneaky")
    assert admin.exit_code == 2 and "administrator" in flat(admin)
    out = run(
        "--as",
        "hongshan-da",
        "users",
        "add",
        "far-mgr",
        "--role",
        "manager",
        "--station",
        str(ids["INV-OUT"]),
    )
    assert out.exit_code == 2 and "stations" in flat(out)
    assert counts(engine) == before
    ok = run(
        "--as",
        "hongshan-da",
        "users",
        "add",
        "near-mgr",
        "--role",
        "manager",
        "--station",
        str(ids["INV-IN"]),
        "--password-stdin",
        input=PASSWORD,
    )
    assert ok.exit_code == 0, ok.output
    with engine.connect() as c:
        mgr = account_queries.user_by_name(c, "near-mgr")
        made = [e for e in events(c, "user.create") if e.details["username"] == "near-mgr"]
    assert mgr is not None and mgr["role"] == "manager"
    assert [int(s) for s in mgr["stations"]] == [ids["INV-IN"]]
    assert mgr["created_by"] == "hongshan-da"
    assert [(e.actor_kind, e.actor_name, e.channel) for e in made] == [
        ("user", "hongshan-da", "cli")
    ]
    assert login(engine, passwords, "near-mgr", PASSWORD)["access_token"]


def test_users_list_and_remove(run, engine, passwords):
    made = run(
        "users",
        "add",
        "leaving-planner",
        "--role",
        "planner",
        "--district",
        "4201",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    assert login(engine, passwords, "leaving-planner", PASSWORD)["access_token"]
    listed = run("users", "list")
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if "leaving-planner" in ln)
    assert "planner" in line and "4201" in line

    gone = run("users", "remove", "leaving-planner")
    assert gone.exit_code == 0, gone.output
    with pytest.raises(UnauthorizedError):
        login(engine, passwords, "leaving-planner", PASSWORD)
    assert "leaving-planner" not in run("users", "list").output
    again = run("users", "remove", "leaving-planner")
    assert again.exit_code == 2 and "no user named" in flat(again)
    with engine.connect() as c:
        removed = events(c, "user.remove")
    assert [
        (e.actor_name, e.channel) for e in removed if e.details["username"] == "leaving-planner"
    ] == [("system", "cli")]
    # a removed user cannot be acted as either
    as_removed = run("--as", "leaving-planner", "users", "list")
    assert as_removed.exit_code == 2 and "no user named" in flat(as_removed)


def test_a_district_admin_lists_only_accounts_in_scope(run, engine):
    make_user(engine, "qiaokou-da", "district_admin", ("420104",))
    make_user(engine, "qiaokou-planner", "planner", ("420104",))
    make_user(engine, "jianghan-planner", "planner", ("420103",))
    listed = run("--as", "qiaokou-da", "users", "list")
    assert listed.exit_code == 0, listed.output
    assert "qiaokou-planner" in listed.output and "qiaokou-da" in listed.output
    assert "jianghan-planner" not in listed.output and "root-admin" not in listed.output
    planner = run("--as", "qiaokou-planner", "users", "list")
    assert planner.exit_code == 2 and "may not" in flat(planner)


# ------------------------------------------------------------------------------------------
# --as on the writing commands
# ------------------------------------------------------------------------------------------


def test_unknown_as_user_is_refused_before_anything_is_written(run, engine, tmp_path):
    path = stations_file(tmp_path, "one.geojson", [feature("NOBODY-1")])
    before = counts(engine)
    done = run("--as", "nobody-here", "stations", "import", str(path))
    assert done.exit_code == 2
    assert "no user named 'nobody-here'" in flat(done)
    by_env = run("stations", "import", str(path), env={"YIZHAN_AS": "nobody-either"})
    assert by_env.exit_code == 2 and "nobody-either" in flat(by_env)
    assert counts(engine) == before


def test_district_admin_import_with_one_station_outside_writes_nothing(run, engine, tmp_path):
    make_user(engine, "jiangan-da", "district_admin", ("420102",))
    path = stations_file(
        tmp_path,
        "mixed.geojson",
        [
            feature("MIX-1", district_code="420102001"),
            feature("MIX-2", district_code="420103"),  # outside 420102
            feature("MIX-3", district_code="420102"),
        ],
    )
    before = counts(engine)
    done = run("--as", "jiangan-da", "stations", "import", str(path))
    assert done.exit_code == 2
    out = flat(done)
    assert "jiangan-da (district_admin) may not import" in out and "nothing was imported" in out
    assert counts(engine) == before


def test_district_admin_import_in_scope_is_recorded_as_them(run, engine, tmp_path):
    da_id = make_user(engine, "caidian-da", "district_admin", ("420114",))
    path = stations_file(
        tmp_path,
        "caidian.geojson",
        [
            feature("CD-1", district_code="420114"),
            feature("CD-2", lon=114.03, lat=30.58, district_code="420114001"),
        ],
    )
    done = run("--as", "caidian-da", "stations", "import", str(path))
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        revs = c.execute(
            text(
                "SELECT s.external_id, r.actor_kind, r.actor_id, r.actor_name, r.channel, "
                "r.action, r.op FROM station_revisions r JOIN stations s ON s.id = r.station_id "
                "WHERE s.external_id IN ('CD-1', 'CD-2') ORDER BY s.external_id"
            )
        ).all()
    assert [tuple(r) for r in revs] == [
        ("CD-1", "user", da_id, "caidian-da", "import", "import", "create"),
        ("CD-2", "user", da_id, "caidian-da", "import", "import", "create"),
    ]


def test_import_without_as_is_the_system(run, engine, tmp_path):
    path = stations_file(tmp_path, "sys.geojson", [feature("SYS-1", district_code="420103")])
    done = run("stations", "import", str(path))
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        revs = c.execute(
            text(
                "SELECT r.actor_kind, r.actor_id, r.actor_name, r.channel, r.action "
                "FROM station_revisions r JOIN stations s ON s.id = r.station_id "
                "WHERE s.external_id = 'SYS-1'"
            )
        ).all()
    assert [tuple(r) for r in revs] == [("system", None, "system", "import", "import")]


def _district_file(tmp_path: Path, code: str) -> Path:
    # far from Wuhan, so that no station of the other tests changes district
    lon, lat, d = 100.0, 40.0, 0.01
    ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
    body = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"code": code, "name": f"区{code}"},
            }
        ],
    }
    path = tmp_path / f"d{code}.geojson"
    path.write_text(json.dumps(body, ensure_ascii=False), "utf-8")
    return path


def test_districts_import_is_audited_and_scoped(run, engine, tmp_path):
    make_user(engine, "wh-manager", "manager")
    before = counts(engine)
    refused = run(
        "--as", "wh-manager", "districts", "import", str(_district_file(tmp_path, "620102"))
    )
    assert refused.exit_code == 2 and "may not change district outlines" in flat(refused)
    assert counts(engine) == before
    assert scalar(engine, "SELECT count(*) FROM districts") == 0

    done = run("districts", "import", str(_district_file(tmp_path, "620102")), "--upsert")
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        got = events(c, "districts.upsert")
    assert [(e.actor_kind, e.actor_name, e.channel, e.details["districts"]) for e in got] == [
        ("system", "system", "cli", 1)
    ]
    assert counts(engine)[2] == before[2] + 1

    pid = make_user(engine, "gs-planner", "planner", ("62",))
    done = run(
        "--as",
        "gs-planner",
        "districts",
        "import",
        str(_district_file(tmp_path, "620103")),
        "--upsert",
    )
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        got = events(c, "districts.upsert")
    assert [(e.actor_kind, e.actor_id, e.actor_name, e.channel) for e in got][1:] == [
        ("user", pid, "gs-planner", "cli")
    ]
    assert scalar(engine, "SELECT count(*) FROM districts") == 2


def test_demand_import_writes_one_audit_event_in_its_transaction(run, engine, tmp_path):
    make_user(engine, "demand-manager", "manager")
    points = tmp_path / "pop.csv"
    points.write_text("lon,lat,weight\n114.30,30.55,2\n114.31,30.56,3\n", "utf-8")
    args = ("demand", "import", str(points), "--name", "cli-pop", "--unit", "persons")
    before = counts(engine)
    refused = run("--as", "demand-manager", *args)
    assert refused.exit_code == 2 and "may not change demand layers" in flat(refused)
    assert counts(engine) == before
    assert scalar(engine, "SELECT count(*) FROM demand_layers WHERE name = 'cli-pop'") == 0

    done = run(*args)
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        created = events(c, "demand.create")
    assert [(e.actor_kind, e.actor_name, e.channel, e.subject) for e in created] == [
        ("system", "system", "cli", "demand:cli-pop")
    ]
    assert created[0].details["unit"] == "persons" and created[0].details["resolution"] == 9
    assert counts(engine)[2] == before[2] + 1

    planner = make_user(engine, "demand-planner", "planner", ("4201",))
    again = run("--as", "demand-planner", *args)
    assert again.exit_code == 0, again.output
    with engine.connect() as c:
        replaced = events(c, "demand.replace")
    assert [(e.actor_id, e.actor_name, e.channel, e.subject) for e in replaced] == [
        (planner, "demand-planner", "cli", "demand:cli-pop")
    ]
    assert counts(engine)[2] == before[2] + 2


def _network_file(tmp_path: Path) -> Path:
    c, n, e, s = [114.30, 30.55], [114.30, 30.551], [114.301, 30.55], [114.30, 30.549]
    lines = [[c, n], [c, e], [c, s]]
    body = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {"highway": "residential"},
            }
            for coords in lines
        ],
    }
    path = tmp_path / "tiny-net.geojson"
    path.write_text(json.dumps(body), "utf-8")
    return path


def test_network_import_needs_an_admin_and_is_audited(run, engine, tmp_path):
    make_user(engine, "net-planner", "planner", ("4201",))
    path = _network_file(tmp_path)
    before = counts(engine)
    refused = run("--as", "net-planner", "network", "import", str(path))
    assert refused.exit_code == 2 and "may not change the road network" in flat(refused)
    assert scalar(engine, "SELECT count(*) FROM network_versions") == 0
    assert counts(engine) == before

    done = run("network", "import", str(path), "--min-largest-share", "0")
    assert done.exit_code == 0, done.output
    with engine.connect() as c:
        live = c.execute(text("SELECT id, sha256 FROM network_versions WHERE is_live")).one()
        got = events(c, "network.import")
    assert [(e.actor_kind, e.actor_name, e.channel, e.subject) for e in got] == [
        ("system", "system", "cli", f"network:{live.id}")
    ]
    assert got[0].details["sha256"] == live.sha256 and got[0].details["edges"] == 3
    # the same file again is a no-op: no new version, no event
    same = run("network", "import", str(path))
    assert same.exit_code == 0 and "already this file" in flat(same)
    with engine.connect() as c:
        assert len(events(c, "network.import")) == 1


def test_demo_accounts_one_per_role_once(run, engine, tmp_path, passwords):
    feats = [
        feature(f"DEMO-ACC-{i}", lon=114.26 + i * 0.001, district_code="420103") for i in range(4)
    ]
    assert (
        run("stations", "import", str(stations_file(tmp_path, "d.geojson", feats))).exit_code == 0
    )
    first = run("demo", "accounts", "--password-stdin", input=PASSWORD + "\n")
    assert first.exit_code == 0, first.output
    with engine.connect() as c:
        rows = {
            r.username: (r.role, list(r.districts), sorted(r.stations))
            for r in c.execute(
                text(
                    "SELECT username, role, districts, ARRAY(SELECT station_id FROM "
                    "user_stations s WHERE s.user_id = u.id) AS stations FROM users u "
                    "WHERE username LIKE 'demo-%'"
                )
            )
        }
        jianghan = sorted(
            c.execute(
                text("SELECT id FROM stations WHERE district_code LIKE '420103%' ORDER BY id")
            ).scalars()
        )[:3]
    assert rows == {
        "demo-admin": ("admin", [], []),
        "demo-wuhan": ("district_admin", ["4201"], []),
        "demo-jianghan": ("district_admin", ["420103"], []),
        "demo-manager": ("manager", [], jianghan),
        "demo-planner": ("planner", [], []),
    }
    assert login(engine, passwords, "demo-manager", PASSWORD)["token_type"] == "bearer"
    again = run("demo", "accounts", "--password-stdin", input="another-password-9\n")
    assert again.exit_code == 0 and "all exist already" in flat(again)
    assert login(engine, passwords, "demo-manager", PASSWORD)["token_type"] == "bearer"
