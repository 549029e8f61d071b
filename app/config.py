"""One settings object for the whole app, read from the environment (and `.env`)."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def normalise_database_url(url: str) -> str:
    """Point any PostgreSQL URL at SQLAlchemy's psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def private_database_url() -> str:
    """The running private cluster's URL (scripts/lib.sh's .pgdata), or "" when there is none:
    never a guessed address where someone else's server may listen."""
    from app.localdb import NoDatabaseError, discover

    try:
        return discover().url
    except NoDatabaseError:
        return ""


def require_database_url(url: str) -> str:
    """`url`, or when it is empty the private cluster's, or NoDatabaseError saying why not."""
    if url:
        return url
    from app.localdb import discover

    return normalise_database_url(discover().url)


class Settings(BaseSettings):
    """Deployment settings. `DATABASE_URL` and `ADMIN_TOKEN` are read without prefix."""

    model_config = SettingsConfigDict(
        env_prefix="YIZHAN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    #: Unset: the project's private cluster (app/localdb.py: .pgdata's port and password,
    #: only while that cluster runs), else "" — and `require_database_url` refuses, saying why.
    database_url: str = Field(
        default_factory=lambda: private_database_url(),
        validation_alias=AliasChoices("DATABASE_URL", "YIZHAN_DATABASE_URL"),
    )
    admin_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ADMIN_TOKEN", "YIZHAN_ADMIN_TOKEN")
    )
    #: Accounts (app/accounts): bearer tokens and browser sessions live this long (seconds);
    #: invitations this many days. Passwords: at least `password_min_length` characters and not
    #: on the common-password list; Argon2id with these costs (OWASP's second
    #: recommendation, about 30 ms a hash here). Hashes made with other costs are redone at the
    #: next successful login.
    token_ttl_s: int = Field(default=12 * 3600, ge=60, le=90 * 86400)
    invitation_ttl_days: int = Field(default=7, ge=1, le=90)
    password_min_length: int = Field(default=8, ge=6, le=64)
    argon2_time_cost: int = Field(default=2, ge=1, le=10)
    argon2_memory_kib: int = Field(default=19456, ge=1024, le=1024 * 1024)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    #: Failed logins allowed per account and per client address (`limits` syntax, moving
    #: window); beyond them: 429 + Retry-After, the same for existing and unknown accounts.
    login_rate_limit_account: str = "5/minute;20/hour"
    login_rate_limit_address: str = "20/minute;100/hour"
    #: Largest request body accepted, in bytes (a station Feature is ~1 KiB).
    max_body_bytes: int = 64 * 1024
    #: Largest body of an admin upload (`PUT /api/v1/districts`: district outlines run to
    #: megabytes), in bytes; every other request keeps `max_body_bytes`.
    max_upload_bytes: int = 20 * 1024 * 1024
    #: Database connections: `pool_size` kept open plus `pool_max_overflow` opened under load.
    #: As many requests as there are connections are admitted to the database at once; the
    #: others wait on the event loop (no thread, no connection) and get 503 + Retry-After after
    #: `pool_timeout_s`. Worker threads default to connections + 8, so an admitted request
    #: always finds a thread. A write waiting for a row lock longer than `lock_timeout_ms`
    #: gets 409. See app/api/admission.py and docs/reliability.md.
    pool_size: int = Field(default=10, ge=1, le=200)
    pool_max_overflow: int = Field(default=10, ge=0, le=200)
    pool_timeout_s: float = Field(default=5.0, gt=0, le=60)
    worker_threads: int | None = Field(default=None, ge=1, le=1000)
    lock_timeout_ms: int = Field(default=3000, ge=1, le=600_000)
    #: Client addresses (IPs or CIDR networks, comma-separated) of reverse proxies whose
    #: X-Forwarded-For / X-Forwarded-Proto are believed; empty = believe no one, the client is
    #: the socket's peer. E.g. YIZHAN_TRUSTED_PROXIES=127.0.0.1 behind a local nginx.
    trusted_proxies: str = ""
    #: Time zone in which opening hours are evaluated (the stations' own, not the server's).
    time_zone: str = "Asia/Shanghai"
    #: Travel model (issue: road network): walking and e-bike speeds in km/h, and how far a
    #: point may lie from the nearest usable road.
    walk_kmh: float = Field(default=5.0, gt=0, le=20)
    ebike_kmh: float = Field(default=15.0, gt=0, le=40)
    max_off_network_m: float = Field(default=500.0, gt=0, le=5000)
    #: Car speeds by OSM highway class, merged over the defaults in app/network/travel.py,
    #: e.g. YIZHAN_CAR_KMH='{"primary": 35, "residential": 15}'.
    car_kmh: dict[str, float] = Field(default_factory=dict)
    #: Map tiles of the map page: `osm` (OpenStreetMap, WGS-84) or `amap` (高德, GCJ-02; every
    #: geometry drawn on it is then requested in GCJ-02 so it lines up).
    tiles: Literal["osm", "amap"] = "osm"
    #: Planner's coverage runs: how long a request waits for a run being computed before it
    #: gets 202 + a status URL (the run goes on in the background), and how many finished
    #: runs stay in memory.
    coverage_wait_s: float = Field(default=20.0, ge=0, le=120)
    coverage_keep_runs: int = Field(default=6, ge=1, le=50)
    #: At most one run computes at a time and `coverage_max_queued` more wait; a new run
    #: beyond that is refused with 503 + Retry-After (identical requests join one run). A
    #: queued or computing run that no request waits for and nobody has polled for
    #: `coverage_abandon_s` is dropped.
    coverage_max_queued: int = Field(default=2, ge=0, le=20)
    coverage_abandon_s: float = Field(default=15.0, ge=1, le=600)
    #: Memory for finished runs and their demand grids, in MiB (estimated; least recently
    #: used runs are dropped beyond it). See docs/reliability.md for what a run costs.
    coverage_memory_mb: int = Field(default=256, ge=32, le=65536)
    #: Where runs compute: `process` (one separate process at idle CPU priority, so a run
    #: never holds the server's GIL nor takes CPU time from requests) or `thread` (in the
    #: server process: tests, debugging).
    coverage_worker: Literal["process", "thread"] = "process"
    #: After start-up, compute the planner's default run (walk, 15 min) and what its page
    #: shows, in the background (app/coverage/warmup.py): the first page is then served warm.
    coverage_warm_up: bool = True
    #: Keep the opening-hours window fresh from inside the server (check hourly).
    hours_auto_refresh: bool = True
    #: Problem reports a client address may file (`limits` syntax), and where counts live
    #: (`memory://` per process; `redis://host:6379` to share them between workers).
    report_rate_limit: str = "5/minute;30/day"
    rate_limit_storage: str = "memory://"
    #: Salt of the stored client-address hashes; random per process unless set.
    report_salt: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_hex(16)))
    #: A report still unanswered (open or acknowledged) this many days after it was filed is
    #: overdue: it heads the district admin's queue.
    report_escalate_days: int = Field(default=3, ge=1, le=365)
    #: A station not confirmed by its people (POST /stations/{id}/confirm or any edit of
    #: theirs) for this many days is `stale`: its information may be out of date.
    stale_days: int = Field(default=90, ge=1, le=3650)
    #: Couriers' "open / closed when I got there" check-ins a client address may send
    #: (`limits` syntax; counted apart from reports, in `rate_limit_storage`).
    checkin_rate_limit: str = "10/minute;50/day"
    #: The inspection checklist, replacing Zhejiang's "八有" default
    #: (app/inspections/checklist.py): a JSON list of {"code", "zh", "en"}, e.g.
    #: YIZHAN_INSPECTION_CHECKLIST='[{"code": "signage", "zh": "有统一标识", "en": "Signage"}]'.
    inspection_checklist: list[dict[str, str]] | None = None

    @field_validator("inspection_checklist")
    @classmethod
    def _checklist(cls, v: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        if v is None:
            return None
        if not 1 <= len(v) <= 50:
            raise ValueError("the inspection checklist needs 1-50 items")
        codes = set()
        for item in v:
            if set(item) != {"code", "zh", "en"}:
                raise ValueError("each checklist item is exactly {code, zh, en}")
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", item["code"]):
                raise ValueError(f"checklist code {item['code']!r}: a-z, 0-9, _ (≤ 40)")
            if not item["zh"].strip() or not item["en"].strip():
                raise ValueError(f"checklist item {item['code']}: zh and en labels are needed")
            codes.add(item["code"])
        if len(codes) != len(v):
            raise ValueError("checklist codes must be unique")
        return v

    @field_validator("database_url")
    @classmethod
    def _driver(cls, v: str) -> str:
        return normalise_database_url(v)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
