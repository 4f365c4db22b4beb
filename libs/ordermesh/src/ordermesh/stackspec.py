"""The shape of the local stack as data: its options and one `ServiceSpec` per service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ordermesh.broker_check import DEFAULT_AMQP_URL
from ordermesh.paths import STATE_DIR
from ordermesh.probes import HealthCheck

DEFAULT_PG_PORT = 55432  # not 5432: the machine's own PostgreSQL usually holds that
DEFAULT_START_TIMEOUT = 60.0


class StackError(Exception):
    """The stack could not start; the message says why and what to do about it."""


@dataclass(frozen=True)
class StackOptions:
    """What `ordermesh up` was asked for.

    `environ` is what the stack reads its variables from (ORDERS_DATABASE_URL, AMQP_URL,
    ...) and what the children inherit: this process's environment unless given.
    """

    state_dir: Path = STATE_DIR
    pg_port: int = DEFAULT_PG_PORT
    orders_grpc_port: int = 50051
    orders_http_port: int = 8081
    notify_http_port: int = 8082
    gateway_http_port: int = 8080
    start_timeout: float = DEFAULT_START_TIMEOUT
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def amqp_url(self) -> str:
        return self.environ.get("AMQP_URL") or DEFAULT_AMQP_URL

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"


@dataclass(frozen=True)
class Database:
    """A database a service needs: `url_env` if set, else one created on the embedded server."""

    name: str
    url_env: str


@dataclass(frozen=True)
class Port:
    """A port a service binds, with the flag that changes it (named in the error if taken)."""

    number: int
    purpose: str
    flag: str


@dataclass(frozen=True)
class Endpoint:
    label: str
    value: str


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack: how to run it and how to tell that it is ready."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    ports: tuple[Port, ...]
    checks: tuple[HealthCheck, ...]
    endpoints: tuple[Endpoint, ...]
    drain_seconds: float
    database: Database | None = None
    needs_broker: bool = False

    @property
    def stop_timeout(self) -> float:
        """How long a SIGTERM gets before SIGKILL: the drain time and a margin to close."""
        return self.drain_seconds + 5.0
