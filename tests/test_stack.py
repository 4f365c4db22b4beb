"""`ordermesh up` for real: a subprocess on free ports, called over gRPC, stopped with Ctrl-C.

The second test needs the machine's PostgreSQL at 127.0.0.1:5432 (user postgres,
trust authentication; ORDERMESH_TEST_PG_URL points elsewhere), like the orders
integration tests: it creates and drops a database of its own there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import psutil
import pytest
from contracts.orders.v1 import orders_pb2, orders_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost
from ordermesh.prometheus import LOCAL_NAMESPACE
from servicekit.testing.net import port_open
from servicekit.testing.postgres import admin, database_url

from tests.local_stack import READY_LINE, StackPorts, pid_of, up_command, up_environment

START_SECONDS = 25.0
STOP_SECONDS = 20.0
NEEDED_BY = "the `ordermesh up` tests"


@dataclass
class Up:
    """A running `ordermesh up` and everything it printed so far."""

    process: asyncio.subprocess.Process
    grpc_port: int
    http_port: int
    notify_port: int
    gateway_port: int
    pg_port: int
    prometheus_port: int
    output: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.output)

    async def read_until(self, needle: str, *, seconds: float) -> None:
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(seconds):
                while not any(needle in line for line in self.output):
                    line = await self.process.stdout.readline()
                    if not line:
                        break
                    self.output.append(line.decode(errors="replace"))
        except TimeoutError:
            pytest.fail(f"no {needle!r} within {seconds:g}s; output so far:\n{self.text()}")
        assert any(needle in line for line in self.output), (
            f"`ordermesh up` ended (code {await self.process.wait()}) before {needle!r}:\n"
            f"{self.text()}"
        )

    async def interrupt(self) -> int:
        """Ctrl-C, then the exit code once it has stopped (output read to the end)."""
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGINT)
        async with asyncio.timeout(STOP_SECONDS):
            self.output.append((await self.process.stdout.read()).decode(errors="replace"))
            return await self.process.wait()

    def pid_of(self, service: str) -> int:
        return pid_of(self.text(), service)


@contextlib.asynccontextmanager
async def ordermesh_up(state_dir: Path, **env: str) -> AsyncIterator[Up]:
    """`ordermesh up` on free ports, waited for until ready; killed if the test fails."""
    ports = StackPorts.free()
    process = await asyncio.create_subprocess_exec(
        *up_command(state_dir, ports),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=up_environment(**env),
    )
    up = Up(
        process,
        ports.grpc,
        ports.orders_http,
        ports.notify_http,
        ports.gateway,
        ports.pg,
        ports.prometheus,
    )
    try:
        await up.read_until(READY_LINE, seconds=START_SECONDS)
        yield up
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await process.communicate()
            except TimeoutError:
                process.kill()
                await process.wait()


async def check_orders(grpc_port: int) -> str:
    """gRPC health says SERVING and one CreateOrder goes through; the order's id."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="ordermesh.orders.v1.OrdersService"), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        orders = orders_pb2_grpc.OrdersServiceStub(channel)
        created = await orders.CreateOrder(
            orders_pb2.CreateOrderRequest(
                customer_id="stack-test",
                idempotency_key=str(uuid.uuid4()),
                currency="EUR",
                items=[orders_pb2.LineItem(sku="book-42", quantity=2, unit_price_minor=1250)],
            ),
            timeout=5,
        )
    assert created.created
    assert created.order.total_minor == 2500
    return created.order.id


async def check_notified(notify_port: int, order_id: str) -> None:
    """The order's event went orders -> outbox relay -> RabbitMQ -> notify."""
    url = f"http://127.0.0.1:{notify_port}/v1/notifications?order_id={order_id}"
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        items = json.loads(body)["items"]
        if items or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [item["event_type"] for item in items] == ["order.created"]


@pytest.fixture
async def vhost() -> AsyncIterator[str]:
    """AMQP_URL for a vhost of this test's own on the machine's RabbitMQ."""
    name = f"ordermesh-stack-{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(create_vhost, name)
    yield amqp_url(name)
    await asyncio.to_thread(delete_vhost, name)


async def test_up_runs_the_services_on_embedded_postgres_and_stops_on_ctrl_c(
    tmp_path: Path, vhost: str
) -> None:
    async with ordermesh_up(tmp_path / "state", AMQP_URL=vhost) as up:
        order_id = await check_orders(up.grpc_port)
        await check_notified(up.notify_port, order_id)
        pids = [up.pid_of(name) for name in ("orders", "notify", "gateway", "prometheus")]
        assert port_open(up.pg_port), up.text()
        assert f"http://127.0.0.1:{up.prometheus_port}" in up.text()
        code = await up.interrupt()

    assert code == 0, up.text()
    assert "Stopped orders" in up.text()
    assert "Stopped notify" in up.text()
    assert "Stopped gateway" in up.text()
    assert "Stopped prometheus" in up.text()
    assert "Stopped PostgreSQL" in up.text()
    assert not any(psutil.pid_exists(pid) for pid in pids), "a service outlived `ordermesh up`"
    ports = (up.grpc_port, up.http_port, up.notify_port, up.gateway_port, up.pg_port)
    for port in (*ports, up.prometheus_port):
        assert not port_open(port), f"port {port} still accepts connections after the stop"
    assert not (tmp_path / "state" / "postgres" / "postmaster.pid").exists()
    assert (tmp_path / "state" / "logs" / "orders.log").stat().st_size > 0
    targets = tmp_path / "state" / "prometheus" / "targets" / "orders.json"
    assert json.loads(targets.read_text()) == [
        {"targets": [f"127.0.0.1:{up.http_port}"], "labels": {"namespace": LOCAL_NAMESPACE}}
    ]


async def test_up_without_prometheus_installed_fails_at_once_saying_how_to_get_it(
    tmp_path: Path,
) -> None:
    # No PATH: nothing is found, but the services run on this interpreter (an absolute path).
    process = await asyncio.create_subprocess_exec(
        *up_command(tmp_path / "state", StackPorts.free()),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**up_environment(), "PATH": str(tmp_path / "empty")},
    )
    async with asyncio.timeout(STOP_SECONDS):
        output = (await process.communicate())[0].decode()
    assert process.returncode == 1, output
    assert "prometheus cannot start: prometheus is not installed" in output
    assert "apt-get install prometheus" in output
    assert not (tmp_path / "state" / "postgres").exists(), "it started PostgreSQL first"


@pytest.fixture
async def machine_database() -> AsyncIterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    async with _machine_database() as url:
        yield url


@pytest.fixture
async def second_machine_database() -> AsyncIterator[str]:
    async with _machine_database() as url:
        yield url


@contextlib.asynccontextmanager
async def _machine_database() -> AsyncIterator[str]:
    name = f"ordermesh_stack_{uuid.uuid4().hex[:12]}"
    await admin(f'CREATE DATABASE "{name}"', needed_by=NEEDED_BY)
    try:
        yield database_url(name)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', needed_by=NEEDED_BY)


async def test_up_uses_given_database_urls_without_embedded_postgres(
    tmp_path: Path, machine_database: str, second_machine_database: str, vhost: str
) -> None:
    given = {
        "ORDERS_DATABASE_URL": machine_database,
        "NOTIFY_DATABASE_URL": second_machine_database,
        "AMQP_URL": vhost,
    }
    async with ordermesh_up(tmp_path / "state", **given) as up:
        assert not port_open(up.pg_port), "an embedded PostgreSQL was started anyway"
        await check_orders(up.grpc_port)
        code = await up.interrupt()

    assert code == 0, up.text()
    assert "embedded" not in up.text()
    assert not (tmp_path / "state" / "postgres").exists()
    conn = await asyncpg.connect(machine_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1
    finally:
        await conn.close()
