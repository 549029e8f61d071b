"""One settings object for the whole app, read from the environment (and `.env`)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def normalise_database_url(url: str) -> str:
    """Point any PostgreSQL URL at SQLAlchemy's psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Deployment settings. `DATABASE_URL` and `ADMIN_TOKEN` are read without prefix."""

    model_config = SettingsConfigDict(
        env_prefix="YIZHAN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="postgresql+psycopg://yizhan@127.0.0.1:55432/yizhan",
        validation_alias=AliasChoices("DATABASE_URL", "YIZHAN_DATABASE_URL"),
    )
    admin_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ADMIN_TOKEN", "YIZHAN_ADMIN_TOKEN")
    )
    #: Largest request body accepted, in bytes (a station Feature is ~1 KiB).
    max_body_bytes: int = 64 * 1024
    pool_size: int = 10
    time_zone: str = "Asia/Shanghai"

    @field_validator("database_url")
    @classmethod
    def _driver(cls, v: str) -> str:
        return normalise_database_url(v)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
