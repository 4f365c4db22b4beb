"""The settings base every service derives from.

Each service subclasses `ServiceSettings` with its own env prefix (`ORDERS_`, ...),
builds it once in its app factory and passes it down: nothing below the factory reads
the environment, so tests build services with whatever settings they need. A service
with a PostgreSQL database derives from `DatabaseSettings`, one with crash points also
from `FailpointSettings`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from servicekit.failpoints import parse_names

Environment = Literal["development", "test", "production"]

# Values that mean "nobody chose a secret yet"; refused outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "changethis", "secret", "password", "placeholder", "todo", "xxx"}
)


class ServiceSettings(BaseSettings):
    """Settings shared by every service; subclasses set `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = Field(
        default="production",
        description="development relaxes the secret checks; anything else enforces them",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="lowest log level written"
    )
    request_metrics: bool = Field(
        default=True,
        description="RED metrics of every request and call; false only to measure their cost",
    )
    drain_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="graceful shutdown: time in-flight work gets after SIGTERM",
    )

    @model_validator(mode="after")
    def _reject_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "development":
            return self
        for name, value in self:
            secret = _secret_in(value)
            if secret is not None and secret.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{name} holds a placeholder secret; set a real one "
                    f"(placeholders are allowed only with environment=development)"
                )
        return self


class DatabaseSettings(ServiceSettings):
    """The PostgreSQL settings of a service with a database of its own.

    Subclasses give `database_url` its default and description (each service has its
    own database) and may redeclare a field to describe it in their own terms.
    """

    database_url: SecretStr = Field(description="PostgreSQL DSN of the service's database")
    db_pool_min_size: int = Field(default=2, ge=0, description="connections kept open")
    db_pool_max_size: int = Field(default=10, ge=1, description="most connections per process")
    db_connect_timeout_seconds: float = Field(
        default=2.0, gt=0, description="time to open one database connection"
    )
    db_acquire_timeout_seconds: float = Field(
        default=2.0, gt=0, description="wait for a free pooled connection"
    )
    db_statement_cache_size: int = Field(
        default=256, ge=0, description="prepared statements cached per connection"
    )
    migrate_on_start: bool = Field(
        default=True, description="apply pending migrations at start-up (advisory-locked)"
    )


class FailpointSettings(ServiceSettings):
    """The crash points a crash test enables (servicekit.failpoints).

    Subclasses list their points in `failpoint_names`, so a typo stops the process
    instead of passing silently.
    """

    failpoint_names: ClassVar[frozenset[str]] = frozenset()

    failpoints: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        description="crash tests only: comma-separated (or JSON list of) crash points where "
        "the process kills itself with SIGKILL; never set in production",
    )

    @field_validator("failpoints", mode="before")
    @classmethod
    def _parse_failpoints(cls, value: object) -> object:
        return parse_names(value, known=cls.failpoint_names)


def _secret_in(value: object) -> str | None:
    """The secret part of a setting: a SecretStr's value or a URL's password."""
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        if "://" in raw:
            return urlsplit(raw).password
        return raw
    return None
