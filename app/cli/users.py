"""`yizhan users …` and who the command line acts as (`yizhan --as USER …`).

Without `--as` (or `YIZHAN_AS`) the CLI acts as `system`; with it, as that named, live account,
with exactly that account's role and scope (the same policy as the API), and every write it
makes is recorded under that name. `--as` is attribution and a self-imposed limit, not a
login: whoever runs the CLI holds DATABASE_URL and could write anything with psql anyway.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from app.errors import DomainError, ForbiddenError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from pydantic import ValidationError
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from app.accounts.credentials import Passwords
    from app.accounts.policy import Action, Actor
    from app.config import Settings

users_cli = typer.Typer(help="User accounts and invitations", no_args_is_help=True)
console = Console(stderr=True)


def get_settings() -> Settings:
    """The process settings (app.config, imported on first use: the CLI starts fast)."""
    from app.config import get_settings as settings

    return settings()


def make_engine(settings: Settings) -> Engine:
    """A database engine for one command (app.db.engine, imported on first use)."""
    from app.db.engine import make_engine as engine

    return engine(settings)


@dataclass(frozen=True)
class CliState:
    """What the root callback learnt: the `--as` user name (None: system) and how to read the
    settings (a callable, so that `db upgrade` or `--help` never need a valid database)."""

    as_user: str | None
    settings: Callable[[], Settings]


def state(ctx: typer.Context) -> CliState:
    """The state the root callback left in the command's context (defaults when a sub-app
    runs on its own)."""
    return ctx.obj if isinstance(ctx.obj, CliState) else CliState(None, get_settings)


def fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=2)


def resolve_actor(conn: Connection, name: str | None) -> Actor:
    """`system` without a name, else the live account of that user name (InvalidInputError
    when there is none, or it was removed)."""
    from app.accounts import queries, service
    from app.accounts.policy import SYSTEM

    if name is None:
        return SYSTEM
    row = queries.user_by_name(conn, name.strip().lower())
    if row is None:
        raise InvalidInputError(
            f"--as: no user named {name!r} (unknown or removed); see `yizhan users list`",
            field="--as",
        )
    return service.actor_from_row(row)


def acting(ctx: typer.Context, settings: Settings, action: Action | None = None) -> Actor:
    """The actor of this command, checked against `action` (a global action such as
    DEMAND_WRITE) before any work is done. Raises DomainError."""
    from app.accounts.policy import SYSTEM, check

    name = state(ctx).as_user
    if name is None:
        actor = SYSTEM
    else:
        engine = make_engine(settings)
        try:
            with engine.connect() as conn:
                actor = resolve_actor(conn, name)
        finally:
            engine.dispose()
    if action is not None:
        check(actor, action)
    return actor


@contextmanager
def _unit(ctx: typer.Context) -> Iterator[tuple[Connection, Actor, Settings]]:
    """One transaction for the whole command, acting as the `--as` user (resolved inside
    it); a DomainError is reported and ends the command with exit code 2, nothing written."""
    cli_state = state(ctx)
    settings = cli_state.settings()
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            yield conn, resolve_actor(conn, cli_state.as_user), settings
    except DomainError as exc:
        raise fail(f"{exc.detail} — nothing was changed") from exc
    finally:
        engine.dispose()


def _passwords(settings: Settings) -> Passwords:
    from app.accounts.credentials import Passwords

    return Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


def _read_password() -> str:
    """One line of standard input, without its line ending."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise fail("--password-stdin: no password on standard input — nothing was changed")
    return line


def _invalid(exc: ValidationError) -> typer.Exit:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e["loc"]) or "input"
        parts.append(f"{where}: {e['msg']}")
    return fail("; ".join(parts) + " — nothing was changed")


def _add(
    ctx: typer.Context,
    name: str,
    role: str,
    districts: list[str],
    stations: list[int],
    display_name: str | None,
    password_stdin: bool,
    admin_only: bool = False,
) -> None:
    from pydantic import ValidationError

    from app.accounts import service
    from app.accounts.schemas import InvitationIn, UserIn

    password = _read_password() if password_stdin else None
    try:
        body: UserIn | InvitationIn
        if password is not None:
            body = UserIn(
                username=name,
                display_name=display_name or name,
                role=role,
                districts=districts,
                stations=stations,
                password=password,
            )
        else:
            body = InvitationIn(
                username=name,
                display_name=display_name,
                role=role,
                districts=districts,
                stations=stations,
            )
    except ValidationError as exc:
        raise _invalid(exc) from exc
    out = Console(highlight=False, soft_wrap=True)  # lines to copy: never wrapped
    with _unit(ctx) as (conn, actor, settings):
        if admin_only and not actor.is_admin:
            raise ForbiddenError(
                f"{actor.name} ({actor.role}) may not add an administrator "
                "(只有系统管理员可以添加系统管理员)",
                field="--as",
            )
        if isinstance(body, UserIn):
            row = service.create_user(
                conn, actor, body, _passwords(settings), settings.password_min_length, "cli"
            )
        else:
            inv, code = service.create_invitation(
                conn, actor, body, settings.invitation_ttl_days, channel="cli"
            )
    # committed: only now is anything reported
    if isinstance(body, UserIn):
        out.print(
            f"user {row['username']} (id {row['id']}, {row['role']}) created by {actor.name}; "
            "it can log in now",
            markup=False,
        )
        return
    shown = service.invitation_json(inv, code)
    out.print(f"invitation {shown['id']} for {shown['username']} ({shown['role']})", markup=False)
    out.print(f"code: {code}", markup=False)
    out.print(f"accept: POST {shown['accept_url']}", markup=False)
    out.print(f"expires: {shown['expires_at']}", markup=False)
    console.print(
        "the code is shown only once: hand it to the invitee, who sets a password with "
        '{"password": "…"} at the accept URL',
        markup=False,
    )


@users_cli.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (3-40 of a-z 0-9 . _ -, or a mobile number)"),
    role: str = typer.Option(..., help="admin, district_admin, manager or planner"),
    district: list[str] = typer.Option(
        [], "--district", help="District code prefix (district admins, planners); repeatable"
    ),
    station: list[int] = typer.Option(
        [], "--station", help="Station id the manager keeps; repeatable"
    ),
    display_name: str | None = typer.Option(None, help="Name shown to others (default: NAME)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Create the account now with a password read from stdin"
    ),
) -> None:
    """Invite NAME to ROLE and scope (prints a one-time code and the accept URL), or with
    --password-stdin create the account directly. Acts as --as: no one grants above their
    own scope."""
    _add(ctx, name, role, district, station, display_name, password_stdin)


@users_cli.command("add-admin")
def users_add_admin(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name of the administrator"),
    display_name: str | None = typer.Option(None, help="Name shown to others (default: NAME)"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Create the account now with a password read from stdin"
    ),
) -> None:
    """Bootstrap an administrator (as system, or --as an administrator): an invitation, or
    with --password-stdin the account itself."""
    _add(ctx, name, "admin", [], [], display_name, password_stdin, admin_only=True)


@users_cli.command("list")
def users_list(ctx: typer.Context) -> None:
    """List the live accounts (those in the --as user's scope)."""
    from rich.table import Table

    from app.accounts import service

    rows: list[dict[str, object]] = []
    with _unit(ctx) as (conn, actor, _):
        while True:
            page, total = service.list_users(conn, actor, 500, len(rows))
            rows.extend(page)
            if not page or len(rows) >= total:
                break
    if not rows:
        console.print("no accounts yet: yizhan users add-admin NAME --password-stdin")
        return
    table = Table("id", "username", "role", "districts", "stations")
    for u in rows:
        districts = u["districts"]
        stations = u["stations"]
        assert isinstance(districts, list) and isinstance(stations, list)
        table.add_row(
            str(u["id"]),
            str(u["username"]),
            str(u["role"]),
            ",".join(districts),
            ",".join(map(str, stations)),
        )
    Console(width=160, highlight=False).print(table)


@users_cli.command("remove")
def users_remove(ctx: typer.Context, name: str = typer.Argument(..., help="User name")) -> None:
    """Remove an account: its sessions end, it can no longer log in, its stations are freed;
    its edits stay attributed to it."""
    from app.accounts import queries, service

    with _unit(ctx) as (conn, actor, _):
        row = queries.user_by_name(conn, name.strip().lower())
        if row is None:
            raise NotFoundError(f"NAME: no user named {name!r} (unknown or removed)", field="NAME")
        service.remove_user(conn, actor, int(row["id"]), channel="cli")
    Console(highlight=False, soft_wrap=True).print(
        f"user {row['username']} (id {row['id']}) removed", markup=False
    )
