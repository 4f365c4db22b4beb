"""The shape of the local stack as data: its options and one `ServiceSpec` per service."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ordermesh.broker_check import DEFAULT_AMQP_URL
from ordermesh.paths import PROMETHEUS_CONFIG, STATE_DIR
from ordermesh.probes import HealthCheck

LOCALHOST = "127.0.0.1"
DEFAULT_PG_PORT = 55432  # not 5432: the machine's own PostgreSQL usually holds that
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_PROMETHEUS_PORT = 9090


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
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT
    # Its rule_files are resolved against its own folder.
    prometheus_config: Path = PROMETHEUS_CONFIG
    # None: the interval of observability/prometheus/prometheus.yml; tests ask for less,
    # so rate() over a short window has samples within seconds.
    scrape_interval_seconds: float | None = None
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

    @property
    def prometheus_dir(self) -> Path:
        return self.state_dir / "prometheus"


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
    """One service of the stack: how to run it and how to tell that it is ready.

    `metrics` is the host:port whose /metrics Prometheus scrapes under job=`name`;
    `prepare` writes what the process reads at start (a config file) and may raise
    StackError; `install_hint` says how to get `command[0]` when it is not installed.
    """

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    ports: tuple[Port, ...]
    checks: tuple[HealthCheck, ...]
    endpoints: tuple[Endpoint, ...]
    drain_seconds: float
    database: Database | None = None
    needs_broker: bool = False
    metrics: str | None = None
    prepare: Callable[[], object] | None = None
    install_hint: str = ""

    @property
    def stop_timeout(self) -> float:
        """How long a SIGTERM gets before SIGKILL: the drain time and a margin to close."""
        return self.drain_seconds + 5.0
