"""Start, stop and drain the four implementations, all on one PostgreSQL server.

- **ordermesh**: the local stack (`ordermesh up` on free ports, in a state directory of
  its own, with a RabbitMQ vhost of its own), default settings, observability on: 10%
  of traces exported over OTLP/HTTP (to servicekit's `OtlpReceiver`, counting only: a
  collector's stand-in) and RED metrics scraped by the stack's Prometheus. The
  per-subject rate limit stays at its default (100/s, burst 200): the load comes from
  many seeded customers, a token each, so every subject stays far below it and the
  limiter's cost is measured, not lifted.
- **sync**, **default_async**, **ceiling**: bench/baselines, through its launch module,
  on databases of their own on the stack's PostgreSQL; their summaries call the stack's
  notify (its real API, as the baselines' README says).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

import psutil
import psycopg
from gateway.settings import GatewaySettings
from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost
from servicekit.telemetry import DEFAULT_SAMPLE_RATIO
from servicekit.testing.net import free_ports

from bench.baselines.launch import Implementation, Name
from tests.local_stack import READY_LINE, StackPorts, pid_of, up_command, up_environment

DESCRIPTIONS: Final = {
    "ordermesh": "the local stack as it ships: gateway (FastAPI) -> orders (gRPC, asyncpg) "
    "-> PostgreSQL, notify over HTTP; default settings, tracing at 10% exported, metrics",
    "sync": "FastAPI def routes, requests.Session, JSON over HTTP, psycopg pool",
    "default_async": "FastAPI async def routes, default httpx.AsyncClient, JSON over HTTP, "
    "asyncpg default pool",
    "ceiling": "a raw ASGI app answering the same payloads from memory",
}
START_SECONDS: Final = 120.0
IN_FLIGHT: Final = re.compile(r"^ordermesh_http_server_requests_in_flight ([\d.e+]+)$", re.M)


def ordermesh_settings() -> str:
    """The gateway's protective limits as the stack gets them (GATEWAY_* pass through)."""
    gw = GatewaySettings(environment="development")  # as `ordermesh up` starts it
    return (
        f"gateway max_in_flight {gw.max_in_flight:,}, then a queue of {gw.max_queued:,} "
        f"for up to {gw.max_queue_seconds:g} s (503 beyond), {gw.read_calls_in_flight} "
        f"reads by id and {gw.write_calls_in_flight} writes out to orders at once, "
        f"rate limit {gw.rate_limit_per_second:g}/s per subject "
        f"(burst {gw.rate_limit_burst:,}), traces sampled at "
        f"{DEFAULT_SAMPLE_RATIO:.0%}, RED metrics on"
    )


@dataclass
class Running:
    """One implementation, up: its public URL and its own processes by role."""

    name: str
    url: str
    own: dict[str, psutil.Process]
    front: str  # the role of the front tier (pinned to a core of its own)
    busy: Callable[[], str | None] = field(default=lambda: None)  # what it still does


class OrdermeshStack:
    """`ordermesh up` until the block ends; also the PostgreSQL all implementations use."""

    def __init__(self, state_dir: Path, otlp_endpoint: str) -> None:
        self.state_dir = state_dir
        self.ports = StackPorts.free()
        self.vhost = f"bench-harness-{uuid.uuid4().hex[:8]}"
        self._otlp = otlp_endpoint
        self._process: subprocess.Popen[bytes] | None = None
        self._db: psycopg.Connection[tuple[object, ...]] | None = None
        self.log = state_dir / "up.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def server(self) -> str:
        """The PostgreSQL server, without a database name."""
        return f"postgresql://postgres@127.0.0.1:{self.ports.pg}"

    @property
    def orders_db(self) -> str:
        return f"{self.server}/orders"

    @property
    def notify_db(self) -> str:
        return f"{self.server}/notify"

    @property
    def notify_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.notify_http}"

    def __enter__(self) -> OrdermeshStack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        create_vhost(self.vhost)
        # Tracing as in a deployment: the defaults, exporting to a collector (the sink).
        environ = {k: v for k, v in up_environment().items() if not k.startswith("OTEL_")}
        environ |= {
            "AMQP_URL": amqp_url(self.vhost),
            "OTEL_EXPORTER_OTLP_ENDPOINT": self._otlp,
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 (our own command)
                up_command(self.state_dir, self.ports),
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + START_SECONDS
            while READY_LINE not in (output := self.log.read_text(errors="replace")):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Ordermesh stack did not start:\n{output[-4000:]}")
                time.sleep(0.2)
            self._db = psycopg.connect(self.orders_db, autocommit=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._db is not None:
            self._db.close()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        delete_vhost(self.vhost)

    def pid(self, service: str) -> int:
        return pid_of(self.log.read_text(errors="replace"), service)

    def postgres(self) -> psutil.Process:
        """The postmaster (its backends are its children)."""
        first_line = (self.state_dir / "postgres" / "postmaster.pid").read_text().split()[0]
        return psutil.Process(int(first_line))

    def running(self) -> Running:
        own = {s: psutil.Process(self.pid(s)) for s in ("gateway", "orders", "notify")}
        return Running("ordermesh", self.url, own, front="gateway", busy=self.busy)

    def busy(self) -> str | None:
        """Requests still in flight in the gateway, or events the relay has not published."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as answer:  # noqa: S310
            metrics = answer.read().decode()
        match = IN_FLIGHT.search(metrics)
        if match and float(match.group(1)) > 0:
            return f"{match.group(1)} requests in flight"
        assert self._db is not None
        row = self._db.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
        backlog = int(str(row[0])) if row else 0
        return f"{backlog} events unpublished" if backlog else None


def baseline(
    name: Name,
    *,
    log_dir: Path,
    database_url: str,
    notify_url: str,
    export_customer: str,
    export_rows: int,
) -> Implementation:
    """A baseline's processes (not started yet); the ceiling serves the export customer's
    rows, so its payloads have the seeded orders' shape and its export their count."""
    front, back = free_ports(2)
    return Implementation.of(
        name,
        log_dir=log_dir,
        front_port=front,
        back_port=back,
        database_url=database_url,
        notify_url=notify_url,
        ceiling_args=(f"--customer={export_customer}", f"--export-rows={export_rows}"),
    )


def running_baseline(name: Name, implementation: Implementation) -> Running:
    own = {
        tier.name.rsplit(".", 1)[-1]: psutil.Process(process.pid)
        for tier, process in zip(implementation.tiers, implementation.processes, strict=True)
    }
    front = "front" if "front" in own else name
    return Running(name, implementation.url, own, front=front)


def rabbitmq() -> psutil.Process | None:
    """The machine's RabbitMQ node (beam.smp), read only: its CPU is reported, not pinned."""
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "beam.smp":
            return process
    return None
