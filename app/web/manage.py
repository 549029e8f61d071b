"""The /manage pages: station managers and district admins keep their stations true.

Server-rendered, phone-first, zh-CN (default) and English (`?lang=en`). Thin like every page:
they call the same services as the API (app.accounts.service, app.stations.service, …) and
render templates/manage_*.html.

Sessions: `POST /manage/login` checks the password exactly like `POST /api/v1/auth/token`
(the same service, throttle and single answer for unknown users and wrong passwords) and
stores a session of kind 'cookie' in auth_sessions (same table and TTL as bearer tokens). The
cookie is HttpOnly, SameSite=Lax, Path=/, and Secure when the request came over HTTPS. It
authenticates these pages only: the JSON API reads bearer tokens alone (and a cookie session
is refused as a bearer token), so a cross-site request can never reach the API with it.

CSRF: every form post carries a `csrf` field checked here before anything else. Signed in,
it is HMAC-SHA256 keyed by the session token (which only the browser's HttpOnly cookie holds
and the database keeps only as a digest), so another site can neither read nor compute it.
Before sign-in, the login form uses a double-submit pair: a random `yizhan_login_csrf`
cookie and the same value in the form. A post without the right value is a 403 page and
changes nothing.

Writes run in a savepoint of the request's unit of work: a refused write (403, 412, 422)
renders its page and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.engine import Connection, RowMapping
from starlette.concurrency import run_in_threadpool

from app.accounts import policy
from app.accounts import service as accounts
from app.accounts.policy import Action, Actor, StationRef
from app.accounts.schemas import AcceptIn, InvitationIn
from app.api.deps import ConnDep, SettingsDep
from app.api.headers import csp_nonce
from app.api.security import LoginThrottleDep, PasswordsDep
from app.audit import service as audit
from app.config import Settings
from app.errors import (
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
    TooManyRequestsError,
    UnauthorizedError,
    status_for,
)
from app.exchange import csvsafe
from app.geo.coords import CoordSys
from app.geo.links import navigation_links
from app.hours import HoursError, describe, station_state, zone
from app.hours import suggest as hours_suggest
from app.hours.calendar import DayKind
from app.inspections import service as inspections_service
from app.reports import service as reports_service
from app.reports.vocab import KIND_LABELS, OPEN_STATUSES
from app.reports.vocab import STATUS_LABELS as REPORT_STATUS_LABELS
from app.stations import exchange_service
from app.stations import queries as station_queries
from app.stations import service as stations
from app.stations.schemas import (
    AmenityChange,
    StationFeaturePatch,
    StationPatchProperties,
    check_lon_lat,
)
from app.stations.vocab import AMENITIES, AMENITY_CODES, STATUSES
from app.web.manage_text import texts

COOKIE = "yizhan_session"
LOGIN_CSRF_COOKIE = "yizhan_login_csrf"
_CSRF_KEY_INFO = b"yizhan /manage csrf v1"
#: Stations on one list page (district admins page through the rest).
PAGE_SIZE = 200
#: Fields of the station editor, in form order. Managers see only those the policy lets them
#: set; the rest (district admins, admins) are the station's descriptive fields.
EDITOR_FIELDS = (
    "status",
    "closed_until",
    "status_reason",
    "duplicate_of",
    "opening_hours",
    "amenities",
    "phone",
    "capacity",
    "notes",
    "name",
    "address",
    "operator",
)
_TEXT_FIELDS = ("status_reason", "phone", "notes", "name", "address", "operator")


def _page_context(request: Request) -> dict[str, Any]:
    return {"csp_nonce": csp_nonce(request)}


TEMPLATES = Jinja2Templates(
    directory=str(Path(__file__).resolve().parents[2] / "templates"),
    context_processors=[_page_context],
)
router = APIRouter(prefix="/manage", include_in_schema=False)

StationId = Annotated[int, PathParam(ge=1, le=2**62)]
Lang = Annotated[str, Query(max_length=5)]


# --- sessions, CSRF and the page frame -------------------------------------------------------


def csrf_token(session_token: str) -> str:
    """The CSRF value of a signed-in session (see the module docstring)."""
    return hmac.new(session_token.encode(), _CSRF_KEY_INFO, hashlib.sha256).hexdigest()


class _Stop(Exception):
    """Answer with this response now (a redirect to sign in, a 403 page)."""

    def __init__(self, response: Response) -> None:
        self.response = response


@dataclass
class Page:
    """One request's view of the pages: language, texts, the signed-in actor, its CSRF."""

    request: Request
    lang: str
    t: dict[str, str]
    actor: Actor | None = None
    csrf: str = ""
    nav: list[tuple[str, str]] = field(default_factory=list)

    @property
    def role_label(self) -> str:
        if self.actor is None:
            return ""
        term = policy.ROLE_LABELS[self.actor.role]
        return str(term.en if self.lang == "en" else term.zh)

    def url(self, path: str, **params: Any) -> str:
        """A /manage URL keeping the language."""
        query = {k: v for k, v in params.items() if v not in (None, "", False)}
        if self.lang == "en":
            query["lang"] = "en"
        return path + (("?" + urlencode(query)) if query else "")

    def render(
        self, template: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any
    ) -> HTMLResponse:
        other = "zh" if self.lang == "en" else "en"
        switch = str(self.request.url.include_query_params(lang=other))
        if self.request.method != "GET":  # the answer to a post: switch on a page to GET
            home = "/manage" if self.actor is not None else "/manage/login"
            switch = home + ("?lang=en" if other == "en" else "")
        base = {
            "t": self.t,
            "lang": self.lang,
            "page": self,
            "other_lang_url": switch,
            "csrf": self.csrf,
        }
        response = TEMPLATES.TemplateResponse(
            self.request, template, {**base, **ctx}, status_code=status, headers=headers
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def problem(self, status: int, message: str) -> HTMLResponse:
        """An error page (403, 404, CSRF …) in the page's language."""
        title = {403: self.t["forbidden"], 404: self.t["not_found"]}.get(status, self.t["error"])
        return self.render("manage_error.html", status=status, title=title, message=message)


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _page(request: Request, conn: Connection, *, required: bool = True) -> Page:
    """The page frame; with `required`, the signed-in actor (else a redirect to sign in)."""
    lang = _lang(request)
    page = Page(request=request, lang=lang, t=texts(lang))
    token = request.cookies.get(COOKIE)
    actor = accounts.authenticate_cookie(conn, token)
    if actor is None:
        if required:
            # a post cannot be replayed after signing in: back to the list instead
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                target = "/manage"
            raise _Stop(RedirectResponse(page.url("/manage/login", next=target), status_code=303))
        return page
    assert token is not None
    page.actor = actor
    page.csrf = csrf_token(token)
    page.nav = [(page.url("/manage"), page.t["nav_stations"])]
    page.nav.append((page.url("/manage/reports"), page.t["nav_reports"]))
    page.nav.append((page.url("/manage/proposals"), page.t["nav_proposals"]))
    if policy.can(actor, Action.USERS_READ):
        page.nav.append((page.url("/manage/users"), page.t["nav_users"]))
    if _may_import(actor):
        page.nav.append((page.url("/manage/import"), page.t["nav_import"]))
    return page


def _actor(page: Page) -> Actor:
    assert page.actor is not None
    return page.actor


def _check_csrf(page: Page, form: dict[str, list[str]]) -> None:
    """Refuse (403 page, nothing changed) a post without this session's CSRF value."""
    sent = (form.get("csrf") or [""])[0]
    if not page.csrf or not hmac.compare_digest(sent.encode(), page.csrf.encode()):
        raise _Stop(page.problem(403, page.t["csrf"]))


async def _form(request: Request) -> dict[str, list[str]]:
    """The posted form as {name: [values]} (no files; a bounded number of fields)."""
    data = await request.form(max_files=0, max_fields=200)
    out: dict[str, list[str]] = {}
    for key, value in data.multi_items():
        if isinstance(value, str):
            if "\x00" in value or "\x00" in key:
                # PostgreSQL text cannot hold NUL and no field has a use for one
                raise InvalidInputError(
                    f"{key}: must not contain NUL characters (不能包含 NUL 字符)", field=key
                )
            out.setdefault(key, []).append(value)
    return out


def _one(form: dict[str, list[str]], key: str, limit: int = 2000) -> str:
    return (form.get(key) or [""])[0][:limit]


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A write that either lands whole or leaves nothing (its error is re-raised)."""
    with conn.begin_nested():
        yield


def _serve(
    request: Request,
    conn: Connection,
    work: Callable[[Page], Response],
    form: dict[str, list[str]] | None = None,
) -> Response:
    """Run a page for the signed-in actor (else a redirect to sign in), checking a post's
    CSRF value first when its `form` is given."""
    holder: list[Page] = []

    def run() -> Response:
        page = _page(request, conn)
        holder.append(page)
        if form is not None:
            _check_csrf(page, form)
        return work(page)

    return _guard(lambda: holder[0] if holder else None, run)


def _guard(page_of: Callable[[], Page | None], work: Callable[[], Response]) -> Response:
    """Run a page: early answers (_Stop) and domain errors become pages, never JSON."""
    try:
        return work()
    except _Stop as stop:
        return stop.response
    except DomainError as exc:
        page = page_of()
        if page is None:
            raise
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        response = page.problem(status_for(exc), exc.detail)
        if headers:
            response.headers.update(headers)
        return response


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


# --- sign in and out -------------------------------------------------------------------------


def _safe_next(raw: str | None) -> str:
    """Where to go after signing in: a /manage path of ours, never another site."""
    if raw and raw.startswith("/manage") and "//" not in raw and "\\" not in raw:
        return raw
    return "/manage"


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    conn: ConnDep,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The sign-in form (already signed in: on to /manage)."""
    page = _page(request, conn, required=False)
    if page.actor is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(page, next)


def _login_csrf_value(request: Request) -> str:
    """The pre-session CSRF value: the browser's `yizhan_login_csrf` cookie, or a new one."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    return value if value and len(value) <= 100 else secrets.token_urlsafe(24)


def _set_login_csrf(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path="/manage",
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )


def _login_csrf_ok(request: Request, form: dict[str, list[str]]) -> bool:
    """The double-submit check of the forms used before signing in."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    sent = _one(form, "csrf", 200)
    return bool(cookie) and hmac.compare_digest(sent.encode(), cookie.encode())


def _start_session(request: Request, response: Response, token: str, ttl_s: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/manage")


def _login_form(
    page: Page, next_url: str | None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    value = _login_csrf_value(page.request)
    response = page.render(
        "manage_login.html",
        status=status,
        login_csrf=value,
        next=_safe_next(next_url),
        error=error,
        username=page.request.query_params.get("username", ""),
    )
    _set_login_csrf(page.request, response, value)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    throttle: LoginThrottleDep,
) -> Response:
    """Check the password (throttled, one answer for unknown user and wrong password) and
    start a cookie session."""
    form = await _form(request)

    def work() -> Response:
        page = _page(request, conn, required=False)
        if not _login_csrf_ok(request, form):
            return page.problem(403, page.t["csrf"])
        address = request.client.host if request.client else "unknown"
        try:
            with _savepoint(conn):
                token = accounts.login(
                    conn,
                    _one(form, "username", 256),
                    _one(form, "password", 256),
                    address,
                    passwords,
                    throttle,
                    settings.token_ttl_s,
                    kind="cookie",
                )["access_token"]
        except UnauthorizedError as exc:
            return _login_form(page, _one(form, "next", 500), exc.detail, 401)
        except TooManyRequestsError as exc:
            limited = _login_form(page, _one(form, "next", 500), exc.detail, 429)
            limited.headers["Retry-After"] = str(exc.retry_after or 60)
            return limited
        response = RedirectResponse(_next_with_lang(page, _one(form, "next", 500)), status_code=303)
        _start_session(request, response, token, settings.token_ttl_s)
        return response

    return await run_in_threadpool(_guard, lambda: None, work)


def _next_with_lang(page: Page, raw: str) -> str:
    target = _safe_next(raw)
    if page.lang == "en" and "lang=" not in target:
        target += ("&" if "?" in target else "?") + "lang=en"
    return target


@router.post("/logout")
async def logout(request: Request, conn: ConnDep) -> Response:
    """End the cookie session (revoked in the database, cookie cleared)."""
    form = await _form(request)

    def work(page: Page) -> Response:
        with _savepoint(conn):
            accounts.logout(conn, _actor(page))
        response = RedirectResponse(page.url("/manage/login"), status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return await run_in_threadpool(_serve, request, conn, work, form)


# --- accepting an invitation ---------------------------------------------------------------


@router.get("/invitations/accept", response_class=HTMLResponse)
def accept_page(request: Request, conn: ConnDep) -> Response:
    """The invitee chooses a user name (unless the invitation set one) and a password. The
    code comes in the link's fragment (#code), which never reaches a server log."""
    page = _page(request, conn, required=False)
    return _accept_form(page)


def _accept_form(
    page: Page, error: str | None = None, status: int = 200, typed: dict[str, str] | None = None
) -> HTMLResponse:
    value = _login_csrf_value(page.request)
    response = page.render(
        "manage_accept.html", status=status, login_csrf=value, error=error, typed=typed or {}
    )
    _set_login_csrf(page.request, response, value)
    return response


@router.post("/invitations/accept", response_class=HTMLResponse)
async def accept_submit(
    request: Request, conn: ConnDep, settings: SettingsDep, passwords: PasswordsDep
) -> Response:
    """Create the invited account and sign it in (a cookie session)."""
    form = await _form(request)

    def work() -> Response:
        page = _page(request, conn, required=False)
        if not _login_csrf_ok(request, form):
            return page.problem(403, page.t["csrf"])
        typed = {k: _one(form, k, 200).strip() for k in ("code", "username", "display_name")}
        body = {k: v for k, v in typed.items() if v and k != "code"}
        try:
            acceptance = AcceptIn.model_validate({**body, "password": _one(form, "password", 300)})
            with _savepoint(conn):
                _, token = accounts.accept_invitation(
                    conn,
                    typed["code"],
                    acceptance,
                    passwords,
                    settings.password_min_length,
                    settings.token_ttl_s,
                    kind="cookie",
                )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _accept_form(page, f"{where}: {first['msg']}", 422, typed)
        except DomainError as exc:
            return _accept_form(page, exc.detail, status_for(exc), typed)
        response = RedirectResponse(page.url("/manage"), status_code=303)
        _start_session(request, response, token["access_token"], settings.token_ttl_s)
        return response

    return await run_in_threadpool(_guard, lambda: None, work)


# --- my stations -----------------------------------------------------------------------------


def _station_item(
    row: RowMapping, ctx: stations.FeatureContext, actor: Actor, overdue: int, lang: str
) -> dict[str, Any]:
    fresh = stations.freshness(row, ctx)
    status = next(s for s in STATUSES if s.code == row["status"])
    return {
        "id": row["id"],
        "name": row["name"],
        "address": row["address"],
        "district_code": row["district_code"],
        "status": status.en if lang == "en" else status.zh,
        "open_reports": int(row["open_reports"] or 0),
        "overdue": overdue,
        "confirmed_days": fresh["confirmed_days_ago"],
        "stale": fresh["stale"],
        "level": row["level"],
        "can_confirm": policy.can(
            actor, Action.STATION_CONFIRM, StationRef(int(row["id"]), row["district_code"])
        ),
    }


#: Overdue reports counted per station on the list (the queue's first this many).
OVERDUE_SCAN = 2000


def _overdue_counts(conn: Connection, actor: Actor, settings: Settings) -> dict[int, int]:
    """Overdue (unanswered past YIZHAN_REPORT_ESCALATE_DAYS) reports per station in scope,
    from the report queue (scoped in SQL)."""
    queue = reports_service.report_queue(
        conn, actor, None, True, settings.report_escalate_days, OVERDUE_SCAN
    )
    counts: dict[int, int] = {}
    for r in queue["reports"]:
        counts[int(r["station_id"])] = counts.get(int(r["station_id"]), 0) + 1
    return counts


@router.get("", response_class=HTMLResponse)
def home(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    stale: Annotated[str | None, Query(max_length=5)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    reports: Annotated[str | None, Query(max_length=5)] = None,
    level: Annotated[str | None, Query(max_length=5)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    done: Annotated[str | None, Query(max_length=20)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """My stations (managers) / the stations in scope (district admins, admins), with open
    reports, freshness and a one-tap "still correct"."""

    def work(page: Page) -> Response:
        actor = _actor(page)
        scope = policy.station_scope(actor)
        level_min = int(level) if level and level.isdigit() and 1 <= int(level) <= 5 else None
        now = datetime.now(UTC)
        # every filter is SQL over the whole scope (a city union holds thousands of stations)
        flt = station_queries.StationFilter(
            scope=scope,
            q=(q or "").strip() or None,
            level_min=level_min,
            stale_before=now - timedelta(days=settings.stale_days) if stale else None,
            with_open_reports=bool(reports),
            overdue_before=(
                now - timedelta(days=settings.report_escalate_days) if overdue else None
            ),
        )
        rows, total = station_queries.page(conn, flt, PAGE_SIZE, offset)
        ctx = stations.FeatureContext.build(settings, conn, None, "wgs84")
        overdue_by = _overdue_counts(conn, actor, settings)
        items = [
            _station_item(r, ctx, actor, overdue_by.get(int(r["id"]), 0), page.lang) for r in rows
        ]
        more = offset + PAGE_SIZE < total
        return page.render(
            "manage_home.html",
            stations=items,
            total=total,
            district_view=actor.role != "manager",
            filters={"stale": stale, "overdue": overdue, "reports": reports, "level": level},
            q=q or "",
            done={"confirmed": page.t["confirmed_done"]}.get(done or ""),
            next_url=(
                page.url(
                    "/manage",
                    stale=stale,
                    overdue=overdue,
                    reports=reports,
                    level=level,
                    q=q,
                    offset=offset + PAGE_SIZE,
                )
                if more
                else None
            ),
        )

    return _serve(request, conn, work)


@router.post("/stations/{station_id}/confirm")
async def confirm(request: Request, conn: ConnDep, station_id: StationId) -> Response:
    """ "Still correct": the manager confirms the station as it is (H2's confirm service)."""
    form = await _form(request)

    def work(page: Page) -> Response:
        with _savepoint(conn):
            stations.confirm_station(conn, _actor(page), station_id, channel="page")
        back = _one(form, "back", 500)
        target = back if back.startswith("/manage") and "//" not in back else page.url("/manage")
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}done=confirmed", status_code=303)

    return await run_in_threadpool(_serve, request, conn, work, form)


# --- the station editor ----------------------------------------------------------------------


def _editable(actor: Actor) -> list[str]:
    """The editor's fields this actor may set (and the schema knows)."""
    known = set(StationPatchProperties.model_fields)
    fields = [f for f in EDITOR_FIELDS if f in known]
    if actor.role == "manager":
        fields = [f for f in fields if f in policy.MANAGER_FIELDS]
    return fields


def _local_input(value: datetime | None, tz: str) -> str:
    """An aware instant as a datetime-local input value in the deployment's time zone."""
    return "" if value is None else value.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M")


def _row_values(row: RowMapping, fields: list[str], tz: str) -> dict[str, Any]:
    """The station's current values in the form's shapes (strings, amenity list)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = row.get(f)
        if f == "amenities":
            out[f] = list(value or [])
        elif f == "closed_until":
            out[f] = _local_input(value, tz)
        elif f in ("capacity", "duplicate_of"):
            out[f] = "" if value is None else str(value)
        else:
            out[f] = value or ""
    return out


def _form_values(form: dict[str, list[str]], fields: list[str]) -> dict[str, Any]:
    """What the user typed, as strings (amenities: the known codes ticked)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f == "amenities":
            ticked = set(form.get("amenities") or [])
            out[f] = [a for a in AMENITY_CODES if a in ticked]
        else:
            out[f] = _one(form, f).strip()
    return out


def _to_patch(
    values: dict[str, Any], current: dict[str, Any], tz: str, t: dict[str, str]
) -> dict[str, Any]:
    """The changed fields as PATCH properties (blank clears an optional field). Raises
    InvalidInputError naming the field for a value that cannot be read."""
    changes: dict[str, Any] = {}
    for f, value in values.items():
        if value == current.get(f):
            continue
        if f in ("capacity", "duplicate_of"):
            if value == "":
                changes[f] = None
            elif value.isascii() and value.isdigit() and len(value) < 18:
                changes[f] = int(value)
            else:
                raise InvalidInputError(f"{t[f]}: {value!r} — 0-9", field=f"properties.{f}")
        elif f == "closed_until":
            if value == "":
                changes[f] = None
            else:
                try:
                    local = datetime.strptime(value, "%Y-%m-%dT%H:%M")
                except ValueError as exc:
                    raise InvalidInputError(
                        f"{t['closed_until']}: {value!r}", field="properties.closed_until"
                    ) from exc
                changes[f] = local.replace(tzinfo=zone(tz)).isoformat()
        elif f in _TEXT_FIELDS or f == "opening_hours":
            changes[f] = value or None
        else:
            changes[f] = value
    return changes


def _preview(
    values: dict[str, Any], row: RowMapping, settings: Settings, conn: Connection, lang: str
) -> dict[str, Any]:
    """The 7-day preview and the hours advice for the values in the form."""
    t = texts(lang)
    hours = values.get("opening_hours", row["opening_hours"]) or ""
    status = values.get("status", row["status"])
    advice = hours_suggest.advise(hours)
    closed_until = None
    raw_until = values.get("closed_until")
    if isinstance(raw_until, str) and raw_until:
        try:
            closed_until = datetime.strptime(raw_until, "%Y-%m-%dT%H:%M").replace(
                tzinfo=zone(settings.time_zone)
            )
        except ValueError:
            closed_until = None
    elif "closed_until" not in values:
        closed_until = row.get("closed_until")
    ctx = stations.FeatureContext.build(settings, conn, None, "wgs84")
    days: list[dict[str, Any]] | None = None
    now_label = None
    if advice.valid:
        try:
            week = hours_suggest.week(
                advice.normalised, status, ctx.at, settings.time_zone, ctx.calendar, closed_until
            )
        except HoursError:
            week = None
        if week is not None:
            days = []
            for i, d in enumerate(week):
                name = t["today"] if i == 0 else t[f"weekday_{d.day.weekday()}"]
                if d.closed_by_status:
                    text = (
                        t["temporarily_closed_day"]
                        if status == "temporarily_closed"
                        else (
                            next(
                                s.en if lang == "en" else s.zh for s in STATUSES if s.code == status
                            )
                        )
                    )
                elif not d.spans:
                    text = t["closed_all_day"]
                elif d.spans == ("00:00-24:00",):
                    text = t["open_all_day"]
                else:
                    text = ", ".join(d.spans)
                kind = {DayKind.HOLIDAY: t["holiday"], DayKind.MAKEUP_WORKDAY: t["makeup"]}.get(
                    d.kind
                )
                days.append(
                    {
                        "label": f"{name} {d.day.month}/{d.day.day}"
                        if lang == "en"
                        else f"{name} {d.day.month}月{d.day.day}日",
                        "text": text,
                        "kind": kind,
                        "open": bool(d.spans),
                    }
                )
        state = station_state(advice.normalised, status, ctx.at, settings.time_zone, ctx.calendar)
        label = describe(state, ctx.at, settings.time_zone)["next_change_label"]
        now_label = label.get(lang)
    return {"advice": advice, "days": days, "now_label": now_label}


def _editor(
    page: Page,
    conn: Connection,
    settings: Settings,
    row: RowMapping,
    values: dict[str, Any],
    version: int,
    *,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
    error_field: str | None = None,
    conflict: dict[str, Any] | None = None,
) -> HTMLResponse:
    actor = _actor(page)
    fields = _editable(actor)
    t = page.t
    return page.render(
        "manage_station.html",
        status=status,
        station=row,
        fields=fields,
        values=values,
        version=version,
        amenities=[(a.code, a.en if page.lang == "en" else a.zh) for a in AMENITIES],
        statuses=[(s.code, s.en if page.lang == "en" else s.zh) for s in STATUSES],
        preview=_preview(values, row, settings, conn, page.lang),
        message=message,
        error=error,
        error_field=error_field,
        conflict=conflict,
        manager=actor.role == "manager",
        can_confirm=policy.can(
            actor, Action.STATION_CONFIRM, StationRef(int(row["id"]), row["district_code"])
        ),
        action=page.url(f"/manage/stations/{row['id']}"),
        history_url=page.url(f"/manage/stations/{row['id']}/history"),
        labels={f: t.get(f, f) for f in EDITOR_FIELDS},
        inspections=_inspection_form(page, conn, settings, row),
        propose=(
            {"action": page.url(f"/manage/stations/{row['id']}/proposals")}
            if policy.can(
                actor, Action.LOCATION_PROPOSE, StationRef(int(row["id"]), row["district_code"])
            )
            and actor.role == "manager"
            else None
        ),
    )


def _editable_row(conn: Connection, actor: Actor, station_id: int) -> RowMapping:
    """The station, if this actor may edit it (403 page otherwise, 404 for an unknown id)."""
    row = stations.get_station(conn, station_id)
    policy.check(actor, Action.STATION_EDIT, StationRef(int(row["id"]), row["district_code"]))
    return row


@router.get("/stations/{station_id}", response_class=HTMLResponse)
def station_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    station_id: StationId,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The station editor, with the next 7 days as couriers will see them."""

    def work(page: Page) -> Response:
        row = _editable_row(conn, _actor(page), station_id)
        values = _row_values(row, _editable(_actor(page)), settings.time_zone)
        message = {
            "saved": page.t["saved"],
            "nothing": page.t["nothing_changed"],
            "confirmed": page.t["confirmed_done"],
            "inspected": page.t["insp_done"],
            "proposed": page.t["p_sent"],
        }.get(done or "")
        return _editor(page, conn, settings, row, values, int(row["version"]), message=message)

    return _serve(request, conn, work)


def _conflict(
    conn: Connection, page: Page, current: RowMapping, values: dict[str, Any], tz: str
) -> dict[str, Any]:
    """What differs between the saved station and the user's form, and who saved it."""
    theirs = _row_values(current, list(values), tz)
    labels = {a.code: (a.en if page.lang == "en" else a.zh) for a in AMENITIES}
    statuses = {s.code: (s.en if page.lang == "en" else s.zh) for s in STATUSES}

    def show(f: str, v: Any) -> str:
        if f == "amenities":
            return (
                "、".join(labels.get(a, a) for a in v)
                if page.lang == "zh"
                else ", ".join(labels.get(a, a) for a in v)
            )
        if f == "status":
            return statuses.get(v, v)
        return str(v)

    rows = [
        {"field": page.t.get(f, f), "theirs": show(f, theirs[f]), "yours": show(f, values[f])}
        for f in values
        if theirs[f] != values[f]
    ]
    last = audit.last_revision(conn, int(current["id"]))
    by = None
    if last is not None:
        at = last["at"].astimezone(zone(page_tz(page))).strftime("%Y-%m-%d %H:%M")
        by = page.t["conflict_by"].format(who=last["actor_name"], at=at)
    return {"rows": rows, "by": by}


def page_tz(page: Page) -> str:
    settings: Settings = page.request.app.state.settings
    return settings.time_zone


@router.post("/stations/{station_id}", response_class=HTMLResponse)
async def station_submit(
    request: Request, conn: ConnDep, settings: SettingsDep, station_id: StationId
) -> Response:
    """Preview or save the editor. Saving sends only the changed fields with If-Match = the
    version the form was rendered with: an edit saved meanwhile is shown side by side with
    the user's values, which stay in the form."""
    form = await _form(request)

    def work(page: Page) -> Response:
        actor = _actor(page)
        row = _editable_row(conn, actor, station_id)
        fields = _editable(actor)
        values = _form_values(form, fields)
        raw_version = _one(form, "version", 20)
        version = int(raw_version) if raw_version.isdigit() else -1
        if _one(form, "action", 20) != "save":
            return _editor(page, conn, settings, row, values, version)
        if version != int(row["version"]):
            return _editor(
                page,
                conn,
                settings,
                row,
                values,
                int(row["version"]),
                status=409,
                conflict=_conflict(conn, page, row, values, settings.time_zone),
            )
        current = _row_values(row, fields, settings.time_zone)
        if "opening_hours" in values and values["opening_hours"] != current["opening_hours"]:
            advice = hours_suggest.advise(values["opening_hours"])
            if not advice.valid:
                return _editor(
                    page,
                    conn,
                    settings,
                    row,
                    values,
                    version,
                    status=422,
                    error=page.t["hours_invalid"],
                    error_field="opening_hours",
                )
        try:
            changes = _to_patch(values, current, settings.time_zone, page.t)
            if not changes:
                return RedirectResponse(
                    page.url(f"/manage/stations/{station_id}", done="nothing"), status_code=303
                )
            patch = StationFeaturePatch.model_validate({"type": "Feature", "properties": changes})
            ctx = stations.FeatureContext.build(settings, conn, None, "wgs84")
            with _savepoint(conn):
                stations.patch_station(conn, station_id, patch, version, ctx, actor, channel="page")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = str(first["loc"][-1]) if first.get("loc") else ""
            return _editor(
                page,
                conn,
                settings,
                row,
                values,
                version,
                status=422,
                error=f"{page.t.get(where, where)}: {first['msg']}",
                error_field=where,
            )
        except PreconditionFailedError:
            fresh = stations.get_station(conn, station_id)
            return _editor(
                page,
                conn,
                settings,
                fresh,
                values,
                int(fresh["version"]),
                status=409,
                conflict=_conflict(conn, page, fresh, values, settings.time_zone),
            )
        except DomainError as exc:  # 403 field, 422 value, 404/409 duplicate target …
            where = (exc.field or "").removeprefix("properties.")
            return _editor(
                page,
                conn,
                settings,
                row,
                values,
                version,
                status=status_for(exc),
                error=exc.detail,
                error_field=where,
            )
        return RedirectResponse(
            page.url(f"/manage/stations/{station_id}", done="saved"), status_code=303
        )

    return await run_in_threadpool(_serve, request, conn, work, form)


# --- history ---------------------------------------------------------------------------------


@router.get("/stations/{station_id}/history", response_class=HTMLResponse)
def history_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    station_id: StationId,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    """Who changed what and when, each field before → after, newest first."""

    def work(page: Page) -> Response:
        result = stations.history(conn, _actor(page), station_id, 50, before)
        tz = zone(settings.time_zone)
        items = []
        for rev in result["revisions"]:
            changes = rev["changes"] or {}
            items.append(
                {
                    "at": datetime.fromisoformat(rev["at"])
                    .astimezone(tz)
                    .strftime("%Y-%m-%d %H:%M"),
                    "who": rev["actor"]["name"],
                    "channel": rev["channel"],
                    "op": rev["op"],
                    "version": rev["version"],
                    "changes": [
                        (page.t.get(k, k), _show(v[0]), _show(v[1]))
                        for k, v in sorted(changes.items())
                        if isinstance(v, list) and len(v) == 2
                    ],
                }
            )
        name = _station_name(conn, station_id)
        older = None
        if result["next"] and result["revisions"]:
            older = page.url(
                f"/manage/stations/{station_id}/history", before=result["revisions"][-1]["id"]
            )
        return page.render(
            "manage_history.html",
            title=page.t["history_title"].format(name=name),
            revisions=items,
            older=older,
            station_url=page.url(f"/manage/stations/{station_id}"),
        )

    return _serve(request, conn, work)


def _station_name(conn: Connection, station_id: int) -> str:
    try:
        return str(stations.get_station(conn, station_id)["name"])
    except NotFoundError:
        return f"#{station_id}"


def _show(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "–"
    return str(value)


# --- report queue ---------------------------------------------------------------------------

#: Reports shown on the queue page (overdue first, then newest).
QUEUE_LIMIT = 200


def _queue(
    page: Page, conn: Connection, settings: Settings, show_all: bool, overdue_only: bool
) -> list[dict[str, Any]]:
    """The actor's report queue (scoped in SQL by the report service): unanswered reports
    (open, acknowledged), or all of them; overdue first, then newest first."""
    actor = _actor(page)
    days = settings.report_escalate_days
    if show_all:
        found = reports_service.report_queue(conn, actor, None, overdue_only, days, QUEUE_LIMIT)
        rows = found["reports"]
    else:
        rows = []
        for status in OPEN_STATUSES:
            found = reports_service.report_queue(
                conn, actor, status, overdue_only, days, QUEUE_LIMIT
            )
            rows.extend(found["reports"])
        rows = sorted(rows, key=lambda r: r["created_at"], reverse=True)
        rows = sorted(rows, key=lambda r: not r["overdue"])[:QUEUE_LIMIT]
    tz = zone(settings.time_zone)
    lang = page.lang
    items = []
    station_rows: dict[int, RowMapping] = {}
    for r in rows:
        sid = int(r["station_id"])
        if sid not in station_rows:
            station_rows[sid] = stations.get_station(conn, sid)
        ref = StationRef(sid, station_rows[sid]["district_code"])
        answerable = r["status"] in OPEN_STATUSES and policy.can(actor, Action.REPORT_ANSWER, ref)
        fix: dict[str, Any] = {}
        if answerable and r["kind"] == "closed_when_should_be_open":
            fix["status_open"] = station_rows[sid]["status"] != "open"
        if answerable and r["kind"] == "amenity_missing_or_broken":
            labels = {a.code: (a.en if lang == "en" else a.zh) for a in AMENITIES}
            fix["amenities"] = [(c, labels.get(c, c)) for c in station_rows[sid]["amenities"]]
        kind = KIND_LABELS[r["kind"]]
        state = REPORT_STATUS_LABELS[r["status"]]
        items.append(
            {
                "id": r["id"],
                "kind": kind.en if lang == "en" else kind.zh,
                "station_name": r["station_name"],
                "station_url": page.url(f"/manage/stations/{sid}"),
                "filed": datetime.fromisoformat(r["created_at"])
                .astimezone(tz)
                .strftime("%Y-%m-%d %H:%M"),
                "status": state.en if lang == "en" else state.zh,
                "comment": r["comment"],
                "note": r["note"],
                "answered_by": r["answered_by"],
                "overdue": r["overdue"],
                "answerable": answerable,
                "acknowledged": r["status"] == "acknowledged",
                "fix": fix,
                "action": page.url(f"/manage/reports/{r['id']}"),
            }
        )
    return items


def _reports(
    page: Page,
    conn: Connection,
    settings: Settings,
    *,
    show_all: bool = False,
    overdue_only: bool = False,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    return page.render(
        "manage_reports.html",
        status=status,
        reports=_queue(page, conn, settings, show_all, overdue_only),
        show_all=show_all,
        overdue_only=overdue_only,
        escalate_days=settings.report_escalate_days,
        message=message,
        error=error,
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
    include_answered: Annotated[str | None, Query(alias="all", max_length=5)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
) -> Response:
    """The reports about the actor's stations (district admins: all in scope), overdue first,
    then newest first, each with acknowledge / resolve / reject."""

    def work(page: Page) -> Response:
        return _reports(
            page,
            conn,
            settings,
            show_all=bool(include_answered),
            overdue_only=bool(overdue),
            message=page.t["r_done"] if done == "answered" else None,
        )

    return _serve(request, conn, work)


@router.post("/reports/{report_id}", response_class=HTMLResponse)
async def answer_report(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    report_id: Annotated[int, PathParam(ge=1, le=2**62)],
) -> Response:
    """Acknowledge, resolve (saying what was done) or reject (saying why) a report; resolving
    can apply the matching station edit in the same transaction."""
    form = await _form(request)

    def work(page: Page) -> Response:
        answer: dict[str, Any] = {"status": _one(form, "status", 20)}
        note = _one(form, "note", 600).strip()
        if note:
            answer["note"] = note
        station: dict[str, Any] = {}
        if answer["status"] == "resolved" and _one(form, "fix_status", 10) == "open":
            station["status"] = "open"
        removed = [a for a in AMENITY_CODES if a in set(form.get("remove_amenity") or [])]
        if station:
            answer["station"] = station
        try:
            body = reports_service.ReportAnswerIn.model_validate(answer)
            with _savepoint(conn):
                done = reports_service.answer_report(
                    conn, settings, _actor(page), report_id, body, channel="page"
                )
                if body.status == "resolved" and removed:
                    # "amenity broken": taken off the station atomically (no read-modify-write)
                    stations.change_amenities(
                        conn,
                        int(done["station_id"]),
                        AmenityChange(remove=removed),
                        None,
                        _actor(page),
                        channel="page",
                    )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _reports(page, conn, settings, status=422, error=f"{where}: {first['msg']}")
        except DomainError as exc:
            if isinstance(exc, NotFoundError):
                raise
            return _reports(page, conn, settings, status=status_for(exc), error=exc.detail)
        return RedirectResponse(page.url("/manage/reports", done="answered"), status_code=303)

    return await run_in_threadpool(_serve, request, conn, work, form)


# --- inspections (district admins, admins) ---------------------------------------------------


def _inspection_form(
    page: Page, conn: Connection, settings: Settings, row: RowMapping
) -> dict[str, Any] | None:
    """The inspection form and the last inspections, for those who may record them."""
    actor = _actor(page)
    ref = StationRef(int(row["id"]), row["district_code"])
    if not policy.can(actor, Action.INSPECTION_WRITE, ref):
        return None
    found = inspections_service.station_inspections(conn, settings, actor, int(row["id"]), 5)
    lang = page.lang
    return {
        "action": page.url(f"/manage/stations/{row['id']}/inspections"),
        "today": datetime.now(zone(settings.time_zone)).date().isoformat(),
        "inspector": actor.display_name or actor.name,
        "checks": [(i["code"], i["en"] if lang == "en" else i["zh"]) for i in found["checklist"]],
        "level": found["level"],
        "recent": [
            {
                "on": i["inspected_on"],
                "inspector": i["inspector"],
                "passed": i["passed"],
                "of": len(i["checklist"]),
                "level": i["level"],
                "findings": i["findings"],
            }
            for i in found["inspections"]
        ],
    }


@router.post("/stations/{station_id}/inspections", response_class=HTMLResponse)
async def record_inspection(
    request: Request, conn: ConnDep, settings: SettingsDep, station_id: StationId
) -> Response:
    """Record an inspection (date, inspector, checklist, findings) and the star level."""
    form = await _form(request)

    def work(page: Page) -> Response:
        row = stations.get_station(conn, station_id)
        ticked = set(form.get("check") or [])
        codes = [t.code for t in inspections_service.items(settings)]
        level = _one(form, "level", 5)
        body: dict[str, Any] = {
            "inspected_on": _one(form, "inspected_on", 20),
            "checklist": {c: c in ticked for c in codes},
        }
        for key in ("findings", "inspector"):
            value = _one(form, key, 2100).strip()
            if value:
                body[key] = value
        if level:
            body["level"] = int(level) if level.isdigit() else level
        try:
            parsed = inspections_service.InspectionIn.model_validate(body)
            with _savepoint(conn):
                inspections_service.record_inspection(
                    conn, settings, _actor(page), station_id, parsed, channel="page"
                )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _editor_again(page, conn, settings, row, 422, f"{where}: {first['msg']}")
        except (InvalidInputError, ForbiddenError) as exc:
            return _editor_again(page, conn, settings, row, status_for(exc), exc.detail)
        return RedirectResponse(
            page.url(f"/manage/stations/{station_id}", done="inspected"), status_code=303
        )

    return await run_in_threadpool(_serve, request, conn, work, form)


def _editor_again(
    page: Page, conn: Connection, settings: Settings, row: RowMapping, status: int, error: str
) -> HTMLResponse:
    values = _row_values(row, _editable(_actor(page)), settings.time_zone)
    return _editor(
        page, conn, settings, row, values, int(row["version"]), status=status, error=error
    )


# --- users and invitations (district admins, admins) -----------------------------------------


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.replace("，", ",").split(",") if p.strip()]


@router.get("/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The accounts in scope (remove), and a form to invite one."""

    def work(page: Page) -> Response:
        return _users(page, conn, message=page.t["u_removed"] if done == "removed" else None)

    return _serve(request, conn, work)


def _users(
    page: Page,
    conn: Connection,
    *,
    status: int = 200,
    message: str | None = None,
    error: str | None = None,
    invitation: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    actor = _actor(page)
    users, total = accounts.list_users(conn, actor, 500, 0)
    roles = [
        (r.code, r.en if page.lang == "en" else r.zh)
        for r in policy.ROLES
        if actor.is_admin or r.code != "admin"
    ]
    for u in users:
        u["role_text"] = u["role_label"]["en" if page.lang == "en" else "zh"]
        u["removable"] = u["id"] != actor.user_id
    return page.render(
        "manage_users.html",
        status=status,
        users=users,
        total=total,
        roles=roles,
        message=message,
        error=error,
        invitation=invitation,
        form=form or {},
    )


@router.post("/users/{user_id}/remove")
async def remove_user(
    request: Request, conn: ConnDep, user_id: Annotated[int, PathParam(ge=1, le=2**62)]
) -> Response:
    """Remove an account in scope (its sessions end; its edits stay attributed)."""
    form = await _form(request)

    def work(page: Page) -> Response:
        with _savepoint(conn):
            accounts.remove_user(conn, _actor(page), user_id, channel="page")
        return RedirectResponse(page.url("/manage/users", done="removed"), status_code=303)

    return await run_in_threadpool(_serve, request, conn, work, form)


@router.post("/invitations", response_class=HTMLResponse)
async def invite(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """Create a one-time invitation; its code is shown on this response only."""
    form = await _form(request)

    def work(page: Page) -> Response:
        keys = ("role", "districts", "stations", "username")
        typed = {k: _one(form, k, 500).strip() for k in keys}
        try:
            stations_ids = [int(s) for s in _split(typed["stations"])]
        except ValueError:
            return _users(
                page, conn, status=422, error=f"{page.t['inv_stations']}: 0-9", form=typed
            )
        try:
            body = InvitationIn.model_validate(
                {
                    "role": typed["role"],
                    "districts": _split(typed["districts"]),
                    "stations": stations_ids,
                    **({"username": typed["username"]} if typed["username"] else {}),
                }
            )
            with _savepoint(conn):
                row, code = accounts.create_invitation(
                    conn, _actor(page), body, settings.invitation_ttl_days, channel="page"
                )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            return _users(page, conn, status=422, error=f"{where}: {first['msg']}", form=typed)
        except (InvalidInputError, ForbiddenError) as exc:
            return _users(page, conn, status=status_for(exc), error=exc.detail, form=typed)
        invitation = accounts.invitation_json(row, code)
        invitation["accept_url"] = f"/api/v1/invitations/{quote(code)}/accept"
        invitation["link"] = f"{request.base_url}manage/invitations/accept#{quote(code)}"
        invitation["expires"] = (
            row["expires_at"].astimezone(zone(settings.time_zone)).strftime("%Y-%m-%d %H:%M")
        )
        return _users(page, conn, invitation=invitation)

    return await run_in_threadpool(_serve, request, conn, work, form)


# --- spreadsheets: upload with a preview, apply, exports, the stale call list ---------------
#
# The uploaded bytes wait on the server between the preview and the apply: a file in a
# private temporary directory (0700) named by a digest of the session's CSRF value (itself a
# keyed digest of the session token, so only this browser session can name it) and a random
# 128-bit id carried in the apply form. It expires after IMPORT_TTL_S; expired uploads are
# swept on every upload and apply, and an applied upload is deleted. Beside the bytes a small
# JSON file keeps the file name, media type, coordinate system and a fingerprint of the
# preview shown: applying re-reads exactly those bytes, recomputes the preview under row
# locks and applies only if it still matches what the user saw (otherwise: the new preview,
# nothing written).

#: The upload page's form post: allowed bodies up to YIZHAN_MAX_UPLOAD_BYTES (app.main).
UPLOAD_PAGE_PATH = "/manage/import"
#: How long an uploaded file waits for its apply.
IMPORT_TTL_S = 30 * 60
#: Rows of each list (errors, changes, new, duplicates) shown on the preview page.
PREVIEW_ROWS = 500
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{20,40}")
_COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
_XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _upload_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "yizhan-manage-imports"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _session_key(page: Page) -> str:
    return hashlib.sha256(page.csrf.encode()).hexdigest()[:32]


def _sweep(folder: Path) -> None:
    """Delete uploads older than IMPORT_TTL_S (anyone's)."""
    limit = time.time() - IMPORT_TTL_S
    for path in folder.glob("*.*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _store_upload(page: Page, data: bytes, meta: dict[str, Any]) -> str:
    folder = _upload_dir()
    _sweep(folder)
    upload_id = secrets.token_urlsafe(16)
    stem = folder / f"{_session_key(page)}-{upload_id}"
    stem.with_suffix(".bin").write_bytes(data)
    stem.with_suffix(".json").write_text(json.dumps(meta))
    return upload_id


def _upload_paths(page: Page, upload_id: str) -> tuple[Path, Path] | None:
    if not _UPLOAD_ID.fullmatch(upload_id):
        return None
    stem = _upload_dir() / f"{_session_key(page)}-{upload_id}"
    return stem.with_suffix(".bin"), stem.with_suffix(".json")


def _load_upload(page: Page, upload_id: str) -> tuple[bytes, dict[str, Any]] | None:
    """This session's upload, unless unknown or expired."""
    _sweep(_upload_dir())
    paths = _upload_paths(page, upload_id)
    if paths is None:
        return None
    try:
        return paths[0].read_bytes(), json.loads(paths[1].read_text())
    except (OSError, ValueError):
        return None


def _drop_upload(page: Page, upload_id: str) -> None:
    for path in _upload_paths(page, upload_id) or ():
        path.unlink(missing_ok=True)


def _fingerprint(preview: dict[str, Any]) -> str:
    """What the preview showed (everything but the dry-run flag)."""
    shown = {k: v for k, v in preview.items() if k not in ("dry_run", "applied", "written")}
    return hashlib.sha256(json.dumps(shown, sort_keys=True, default=str).encode()).hexdigest()


def _may_import(actor: Actor) -> bool:
    try:
        exchange_service.check_may_import(actor)
    except ForbiddenError:
        return False
    return True


def _import_links(page: Page) -> dict[str, str]:
    return {
        "template_xlsx": "/api/v1/stations/template.xlsx",
        "template_csv": "/api/v1/stations/template.csv",
        "export_xlsx": page.url("/manage/export.xlsx"),
        "export_csv": page.url("/manage/export.csv"),
        "export_geojson": page.url("/manage/export.geojson"),
    }


def _shown_preview(page: Page, preview: dict[str, Any]) -> dict[str, Any]:
    """The service's preview in the page's language and shapes."""
    lang = page.lang
    t = page.t

    def label(key: str) -> str:
        return t.get(key, key) if key != "location" else t["imp_location"]

    dups = []
    for d in preview["duplicates"][:PREVIEW_ROWS]:
        matches = []
        for m in d["matches"]:
            if m["reason"] == "nearby":
                text_ = t["imp_dup_nearby"].format(
                    name=m["name"], id=m["station_id"], m=m["distance_m"]
                )
            elif m["reason"] == "external_id":
                text_ = t["imp_dup_external_id"].format(
                    name=m["name"], id=m["station_id"], ext=m["external_id"]
                )
            else:
                text_ = t["imp_dup_same_file"].format(
                    name=m["name"], row=m["row"], m=m["distance_m"]
                )
            matches.append(text_)
        dups.append({**d, "texts": matches})
    return {
        "counts": preview["counts"],
        "rows": preview["rows"],
        "format": preview["format"],
        "errors": [e[lang] for e in preview["errors"][:PREVIEW_ROWS]],
        "refused": [e[lang] for e in preview["refused"][:PREVIEW_ROWS]],
        "new": preview["new"][:PREVIEW_ROWS],
        "changed": [
            {
                **c,
                "fields": [
                    (label(k), _show(v[0]), _show(v[1])) for k, v in sorted(c["changes"].items())
                ],
            }
            for c in preview["changed"][:PREVIEW_ROWS]
        ],
        "duplicates": dups,
        "cut": PREVIEW_ROWS,
    }


def _import_page(
    page: Page,
    *,
    status: int = 200,
    preview: dict[str, Any] | None = None,
    upload_id: str | None = None,
    filename: str | None = None,
    coord_sys: str = "wgs84",
    choices: dict[str, str] | None = None,
    error: str | None = None,
    done: dict[str, Any] | None = None,
) -> HTMLResponse:
    t = page.t
    return page.render(
        "manage_import.html",
        status=status,
        links=_import_links(page),
        coord_systems=[(c, t[f"imp_coord_{c}"]) for c in _COORD_SYSTEMS],
        coord_sys=coord_sys,
        preview=_shown_preview(page, preview) if preview is not None else None,
        upload_id=upload_id,
        filename=filename,
        choices=choices or {},
        error=error,
        done=done,
        ttl_min=IMPORT_TTL_S // 60,
        stations_url=page.url("/manage"),
    )


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, conn: ConnDep) -> Response:
    """Upload XLSX, CSV or GeoJSON for a preview (district admins, admins); the template and
    the exports of the stations in scope."""

    def work(page: Page) -> Response:
        exchange_service.check_may_import(_actor(page))
        return _import_page(page)

    return _serve(request, conn, work)


async def _upload_form(request: Request) -> tuple[dict[str, list[str]], bytes | None, str, str]:
    """The upload form: its text fields, the file's bytes (None when no file was sent), its
    name and media type."""
    fields: dict[str, list[str]] = {}
    data: bytes | None = None
    filename, media = "", ""
    async with request.form(max_files=1, max_fields=10) as form:
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(key, []).append(value)
            elif key == "file" and data is None:
                data = await value.read()
                filename, media = value.filename or "", value.content_type or ""
    return fields, data, filename, media


@router.post("/import", response_class=HTMLResponse)
async def import_preview(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """Read and check the whole file and show what applying it would do; nothing is
    written. The file waits server-side (IMPORT_TTL_S) for the apply form."""
    form, data, filename, media = await _upload_form(request)

    def work(page: Page) -> Response:
        actor = _actor(page)
        exchange_service.check_may_import(actor)
        coord_sys = _one(form, "coord_sys", 10) or "wgs84"
        if coord_sys not in _COORD_SYSTEMS:
            return _import_page(page, status=422, error=f"{page.t['imp_coord']}: {coord_sys!r}")
        if not data or not data.strip():
            return _import_page(page, status=422, error=page.t["imp_no_file"], coord_sys=coord_sys)
        try:
            parsed = exchange_service.read_file(data, media, filename, coord_sys)
        except InvalidInputError as exc:
            return _import_page(page, status=422, error=exc.detail, coord_sys=coord_sys)
        options = exchange_service.ImportOptions(dry_run=True, coord_sys=coord_sys)
        preview = exchange_service.plan(conn, actor, parsed, options).body()
        counts = preview["counts"]
        upload_id = None
        if not counts["errors"] and not counts["refused"]:  # else there is nothing to apply
            upload_id = _store_upload(
                page,
                data,
                {
                    "filename": filename,
                    "media": media,
                    "coord_sys": coord_sys,
                    "fingerprint": _fingerprint(preview),
                },
            )
        return _import_page(
            page, preview=preview, upload_id=upload_id, filename=filename, coord_sys=coord_sys
        )

    return await run_in_threadpool(_serve, request, conn, work, form)


class _PreviewChanged(Exception):
    """The stations changed since the preview: roll the apply back and show the new one."""

    def __init__(self, preview: dict[str, Any]) -> None:
        self.preview = preview


@router.post("/import/apply", response_class=HTMLResponse)
async def import_apply(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """Apply exactly the previewed file, all of it or nothing, audited with channel
    `import`; each likely duplicate as the user chose (skip / import anyway)."""
    form = await _form(request)

    def work(page: Page) -> Response:
        actor = _actor(page)
        exchange_service.check_may_import(actor)
        upload_id = _one(form, "upload", 60)
        stored = _load_upload(page, upload_id)
        if stored is None:
            return _import_page(page, status=410, error=page.t["imp_expired"])
        data, meta = stored
        coord_sys = str(meta.get("coord_sys") or "wgs84")
        filename = str(meta.get("filename") or "")
        again: dict[str, Any] = {
            "upload_id": upload_id,
            "filename": filename,
            "coord_sys": coord_sys,
        }
        parsed = exchange_service.read_file(data, meta.get("media"), filename, coord_sys)
        choices = {
            k.removeprefix("dup_"): v[0]
            for k, v in form.items()
            if k.startswith("dup_") and v and v[0] in ("skip", "import")
        }
        ctx = stations.FeatureContext.build(settings, conn, None, "wgs84")
        try:
            with _savepoint(conn):
                base = exchange_service.plan(
                    conn,
                    actor,
                    parsed,
                    exchange_service.ImportOptions(dry_run=True, coord_sys=coord_sys),
                    lock=True,
                )
                preview = base.body()
                if _fingerprint(preview) != meta.get("fingerprint"):
                    raise _PreviewChanged(preview)
                undecided = [d for d in base.duplicates if str(d["row"]) not in choices]
                if undecided and not base.errors and not base.refused:
                    return _import_page(
                        page,
                        status=409,
                        preview=preview,
                        choices=choices,
                        error=page.t["imp_undecided"],
                        **again,
                    )
                skip = frozenset(
                    str(d["external_id"])
                    for d in base.duplicates
                    if choices.get(str(d["row"])) == "skip"
                )
                outcome = exchange_service.run_import(
                    conn,
                    actor,
                    parsed,
                    exchange_service.ImportOptions(
                        dry_run=False,
                        coord_sys=coord_sys,
                        skip=skip,
                        confirm_duplicates=not undecided,
                    ),
                    ctx,
                )
        except _PreviewChanged as changed:
            meta["fingerprint"] = _fingerprint(changed.preview)
            paths = _upload_paths(page, upload_id)
            if paths is not None:
                paths[1].write_text(json.dumps(meta))
            return _import_page(
                page,
                status=409,
                preview=changed.preview,
                choices=choices,
                error=page.t["imp_changed_since"],
                **again,
            )
        if outcome.status != 200:
            detail = {
                422: page.t["imp_has_errors"],
                403: page.t["imp_has_refused"],
                409: page.t["imp_undecided"],
            }.get(outcome.status, str(outcome.body.get("detail", "")))
            return _import_page(
                page,
                status=outcome.status,
                preview=outcome.body.get("preview") or preview,
                choices=choices,
                error=detail,
                **again,
            )
        _drop_upload(page, upload_id)
        counts = dict(outcome.body["counts"])
        counts["written"] = outcome.body.get("written", 0)
        return _import_page(page, done=counts, filename=filename)

    return await run_in_threadpool(_serve, request, conn, work, form)


def _download(data: bytes | str, media: str, filename: str) -> Response:
    response = Response(data, media_type=media, headers=csvsafe.attachment(filename))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/export.{fmt}")
def export_page(
    request: Request, conn: ConnDep, fmt: Annotated[str, PathParam(max_length=10)]
) -> Response:
    """The stations the signed-in user may edit (admins: all) as XLSX, CSV or GeoJSON, by the
    same service as GET /api/v1/me/stations/export.*"""

    def work(page: Page) -> Response:
        if fmt not in ("xlsx", "csv", "geojson"):
            raise NotFoundError(page.t["not_found"])
        rows = exchange_service.export_rows(conn, _actor(page))
        name = f"{exchange_service.EXPORT_NAME}.{fmt}"
        if fmt == "xlsx":
            return _download(exchange_service.export_xlsx(rows), _XLSX_MEDIA, name)
        if fmt == "csv":
            return _download(exchange_service.export_csv(rows), csvsafe.MEDIA_TYPE, name)
        body = json.dumps(exchange_service.export_geojson(rows), ensure_ascii=False, default=str)
        return _download(body.encode(), "application/geo+json", name)

    return _serve(request, conn, work)


#: Stations on the stale call list download.
STALE_CSV_LIMIT = 10_000


@router.get("/stale.csv")
def stale_csv(request: Request, conn: ConnDep, settings: SettingsDep) -> Response:
    """The call list of stale stations in scope (district admins, admins): the same CSV as
    GET /api/v1/stations/stale?format=csv."""

    def work(page: Page) -> Response:
        result = stations.stale_stations(
            conn,
            _actor(page),
            settings.stale_days,
            settings.report_escalate_days,
            STALE_CSV_LIMIT,
        )
        body = csvsafe.write_rows(
            ([item[k] for k, _ in stations.STALE_COLUMNS] for item in result["stations"]),
            header=[zh for _, zh in stations.STALE_COLUMNS],
        )
        return _download(body, csvsafe.MEDIA_TYPE, "stale-stations.csv")

    return _serve(request, conn, work)


# --- location proposals ------------------------------------------------------------------------


@router.post("/stations/{station_id}/proposals", response_class=HTMLResponse)
async def propose(request: Request, conn: ConnDep, station_id: StationId) -> Response:
    """A manager proposes a new position (coordinates as copied from a phone map)."""
    form = await _form(request)

    def work(page: Page) -> Response:
        sent = _one(form, "coord_sys", 10)
        crs: CoordSys = "wgs84" if sent == "wgs84" else "bd09" if sent == "bd09" else "gcj02"
        try:
            lon = float(_one(form, "lon", 20).strip())
            lat = float(_one(form, "lat", 20).strip())
            check_lon_lat(lon, lat)
        except ValueError:
            return page.problem(422, page.t["p_bad_number"])
        note = _one(form, "note", 500).strip() or None
        with _savepoint(conn):
            stations.propose_location(
                conn, _actor(page), station_id, lon, lat, note, crs, channel="page"
            )
        target = page.url(f"/manage/stations/{station_id}", done="proposed")
        return RedirectResponse(target, status_code=303)

    return await run_in_threadpool(_serve, request, conn, work, form)


def _proposal_item(page: Page, actor: Actor, r: RowMapping) -> dict[str, Any]:
    lon, lat = float(r["lon"]), float(r["lat"])
    return {
        "id": r["id"],
        "station_name": r["station_name"],
        "station_url": page.url(f"/manage/stations/{r['station_id']}"),
        "proposed_by": r["proposed_by"],
        "created": r["created_at"].astimezone(zone(page_tz(page))).strftime("%Y-%m-%d %H:%M"),
        "status": page.t[f"p_status_{r['status']}"],
        "distance": f"{float(r['distance_m']):.0f}",
        "current": f"{float(r['station_lon']):.6f}, {float(r['station_lat']):.6f}",
        "coordinates": f"{lon:.6f}, {lat:.6f}",
        "map_url": navigation_links(lon, lat, str(r["station_name"]))["osm"],
        "note": r["note"],
        "decided_by": r["decided_by"],
        "decision_note": r["decision_note"],
        "decidable": r["status"] == "pending"
        and policy.can(
            actor, Action.LOCATION_DECIDE, StationRef(int(r["station_id"]), r["district_code"])
        ),
        "action": page.url(f"/manage/proposals/{r['id']}"),
    }


@router.get("/proposals", response_class=HTMLResponse)
def proposals_page(
    request: Request,
    conn: ConnDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """Location proposals for the stations in scope: managers follow theirs, district admins
    decide."""

    def work(page: Page) -> Response:
        actor = _actor(page)
        rows = stations.list_proposals(conn, actor, None, None, 200)
        return page.render(
            "manage_proposals.html",
            proposals=[_proposal_item(page, actor, r) for r in rows],
            message={"accepted": page.t["p_accepted"], "rejected": page.t["p_rejected"]}.get(
                done or ""
            ),
        )

    return _serve(request, conn, work)


@router.post("/proposals/{proposal_id}", response_class=HTMLResponse)
async def decide_proposal(
    request: Request,
    conn: ConnDep,
    proposal_id: Annotated[int, PathParam(ge=1, le=2**62)],
) -> Response:
    """Accept (the station moves) or reject a proposal."""
    form = await _form(request)

    def work(page: Page) -> Response:
        accept = _one(form, "decision", 10) == "accept"
        note = _one(form, "note", 500).strip() or None
        with _savepoint(conn):
            stations.decide_proposal(conn, _actor(page), proposal_id, accept, note, channel="page")
        done = "accepted" if accept else "rejected"
        return RedirectResponse(page.url("/manage/proposals", done=done), status_code=303)

    return await run_in_threadpool(_serve, request, conn, work, form)
