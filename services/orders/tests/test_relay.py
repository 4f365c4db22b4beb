"""The outbox relay against the real RabbitMQ: conventions, promptness, concurrency,
unroutable events, a broker that goes away, and crashes at every dangerous moment.

Each test has its own database (conftest) and its own RabbitMQ vhost (`broker.py`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from aio_pika import DeliveryMode
from contracts.events import parse_order_event
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub
from contracts.topology import ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_CREATED
from orders.metrics import OrdersMetrics
from orders.relay import OutboxRelay
from orders.server import OrdersRuntime
from orders.settings import OrdersSettings
from prometheus_client import CollectorRegistry
from servicekit.failpoints import Failpoints

from .broker import EventSink, TcpProxy, create_vhost, rabbitmqctl, vhost_url
from .conftest import test_settings
from .support import create_request, free_port, http_status

SERVE_TIMEOUT = 20.0


@pytest.fixture
async def vhost() -> AsyncIterator[str]:
    """A RabbitMQ vhost of this test's own, deleted afterwards."""
    name = await create_vhost()
    yield name
    await rabbitmqctl("delete_vhost", name)


@pytest.fixture
async def sink(vhost: str) -> AsyncIterator[EventSink]:
    """A queue bound to `order.*` in the test's vhost, collecting every event."""
    events = await EventSink().open(vhost_url(vhost))
    yield events
    await events.close()


@asynccontextmanager
async def running(settings: OrdersSettings) -> AsyncIterator[OrdersRuntime]:
    runtime = OrdersRuntime(settings)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@asynccontextmanager
async def client(runtime: OrdersRuntime) -> AsyncIterator[OrdersServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        yield OrdersServiceStub(channel)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds}s")
        await asyncio.sleep(0.05)


async def unpublished(db_url: str) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return count
    finally:
        await conn.close()


async def outbox_event_ids(db_url: str) -> list[str]:
    conn = await asyncpg.connect(db_url)
    try:
        return [str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM outbox")]
    finally:
        await conn.close()


async def test_events_are_published_once_with_the_message_conventions(
    db_url: str, vhost: str, sink: EventSink
) -> None:
    settings = test_settings(db_url, relay_enabled=True, amqp_url=vhost_url(vhost))
    async with running(settings) as runtime, client(runtime) as stub:
        orders = [(await stub.CreateOrder(create_request())).order for _ in range(3)]
        await stub.ConfirmOrder(pb.ConfirmOrderRequest(customer_id="alice", order_id=orders[0].id))
        await stub.CancelOrder(pb.CancelOrderRequest(customer_id="alice", order_id=orders[1].id))
        await sink.wait_for(5)
        await asyncio.sleep(0.3)  # room for a duplicate to show up

        assert sorted(sink.message_ids) == sorted(await outbox_event_ids(db_url))
        assert Counter(m.routing_key for m in sink.messages) == {
            ORDER_CREATED: 3,
            ORDER_CONFIRMED: 1,
            ORDER_CANCELLED: 1,
        }
        for message in sink.messages:
            event = parse_order_event(message.body)
            assert message.message_id == str(event.event_id)
            assert message.routing_key == message.type == event.event_type
            assert message.delivery_mode == DeliveryMode.PERSISTENT
            assert message.content_type == "application/json"
            assert message.timestamp is not None
            assert message.headers == {"x-schema-version": 1}
        assert await unpublished(db_url) == 0
        registry = runtime.registry
        assert metric(registry, "ordermesh_outbox_published_total") == 5

        async def backlog_empty() -> bool:
            return (
                metric(registry, "ordermesh_outbox_backlog") == 0
                and metric(registry, "ordermesh_outbox_oldest_age_seconds") == 0
            )

        await eventually(backlog_empty, "backlog gauges back to 0")


async def test_notify_wakes_the_relay_long_before_the_poll(
    db_url: str, vhost: str, sink: EventSink
) -> None:
    settings = test_settings(
        db_url, relay_enabled=True, amqp_url=vhost_url(vhost), relay_poll_seconds=30
    )
    async with running(settings) as runtime, client(runtime) as stub:
        await asyncio.sleep(0.5)  # the relay's first round is over; it now waits 30 s
        started = time.monotonic()
        await stub.CreateOrder(create_request())
        await sink.wait_for(1, seconds=5)
        assert time.monotonic() - started < 1.0


async def test_the_relay_lingers_after_a_notify_for_more_rows(
    db_url: str, vhost: str, sink: EventSink
) -> None:
    linger = 0.6
    settings = test_settings(
        db_url,
        relay_enabled=True,
        amqp_url=vhost_url(vhost),
        relay_poll_seconds=30,
        relay_linger_seconds=linger,
    )
    async with running(settings) as runtime, client(runtime) as stub:
        await asyncio.sleep(0.5)  # the relay's first round is over; it now waits 30 s
        started = time.monotonic()
        await stub.CreateOrder(create_request())
        await asyncio.sleep(linger / 3)  # a second row while the first lingers
        await stub.CreateOrder(create_request())
        await sink.wait_for(2, seconds=5)
        waited = time.monotonic() - started
        assert linger <= waited < linger + 1.0

        async def both_counted() -> bool:  # counted after the commit, after the confirms
            return metric(runtime.registry, "ordermesh_outbox_published_total") == 2

        await eventually(both_counted, "both events counted as published")


async def test_two_relays_publish_every_row_exactly_once(
    db_url: str, vhost: str, sink: EventSink
) -> None:
    settings = test_settings(
        db_url, relay_enabled=True, amqp_url=vhost_url(vhost), relay_poll_seconds=0.2
    )
    registries = [CollectorRegistry(), CollectorRegistry()]
    relays = [
        OutboxRelay(settings, metrics=OrdersMetrics(registry), failpoints=Failpoints())
        for registry in registries
    ]
    for relay in relays:
        await relay.start()
    conn = await asyncpg.connect(db_url)
    try:
        for _ in range(10):  # written while both relays run, 200 at a time
            await conn.execute(
                """INSERT INTO outbox (event_id, event_type, aggregate_id, payload)
                   SELECT gen_random_uuid(), 'order.created', gen_random_uuid(),
                          jsonb_build_object('version', 1, 'n', n)
                   FROM generate_series(1, 200) AS n"""
            )
        await sink.wait_for(2000, seconds=20)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
        expected = [str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM outbox")]
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    finally:
        await conn.close()
        for relay in relays:
            await relay.stop(timeout=2)
    duplicates = [i for i, n in Counter(sink.message_ids).items() if n > 1]
    assert duplicates == []
    assert sorted(sink.message_ids) == sorted(expected)
    published = [metric(r, "ordermesh_outbox_published_total") for r in registries]
    assert sum(published) == 2000


async def test_unroutable_events_stay_pending_until_a_queue_is_bound(
    db_url: str, vhost: str
) -> None:
    settings = test_settings(db_url, relay_enabled=True, amqp_url=vhost_url(vhost))
    async with running(settings) as runtime, client(runtime) as stub:
        await stub.CreateOrder(create_request())
        registry = runtime.registry

        async def returned() -> bool:
            reason = {"reason": "returned"}
            return (registry.get_sample_value(_FAILURES, reason) or 0) >= 1

        await eventually(returned, "the unroutable event counted as returned")
        assert await unpublished(db_url) == 1
        assert metric(registry, "ordermesh_outbox_published_total") == 0

        sink = await EventSink().open(vhost_url(vhost))
        try:
            await sink.wait_for(1, seconds=15)
            assert sink.message_ids == await outbox_event_ids(db_url)
            await eventually(lambda: _equals(unpublished(db_url), 0), "the row marked published")
        finally:
            await sink.close()


_FAILURES = "ordermesh_outbox_publish_failures_total"


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_orders_go_on_while_the_broker_is_away_and_are_published_after(
    db_url: str, vhost: str, sink: EventSink
) -> None:
    proxy = TcpProxy(free_port())  # not listening yet: connections are refused
    settings = test_settings(db_url, relay_enabled=True, amqp_url=vhost_url(vhost, port=proxy.port))
    try:
        async with running(settings) as runtime, client(runtime) as stub:
            registry = runtime.registry
            for _ in range(3):
                assert (await stub.CreateOrder(create_request())).created
            assert await http_status(runtime.http_port, "/readyz") == 200

            async def backlog_is(rows: int) -> bool:
                return metric(registry, "ordermesh_outbox_backlog") == rows

            await eventually(lambda: backlog_is(3), "the backlog gauge shows 3 rows")
            assert metric(registry, _FAILURES, reason="broker_unavailable") >= 1
            assert sink.messages == []

            await proxy.open()  # the broker is back
            await sink.wait_for(3, seconds=15)

            await proxy.close()  # and gone again, cutting the relay's open connection
            for _ in range(2):
                assert (await stub.CreateOrder(create_request())).created
            await asyncio.sleep(0.5)
            assert len(sink.messages) == 3
            await proxy.open()
            await sink.wait_for(5, seconds=15)
        assert sorted(sink.message_ids) == sorted(await outbox_event_ids(db_url))
        assert await unpublished(db_url) == 0
    finally:
        await proxy.close()


# --- crashes of a real `orders serve` process --------------------------------------


class OrdersProcess:
    """`orders serve` as a subprocess on free ports, its log in a file."""

    def __init__(self, db_url: str, amqp_url: str, log_path: Path) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        self._env = {
            **os.environ,
            "ORDERS_ENVIRONMENT": "test",
            "ORDERS_DATABASE_URL": db_url,
            "ORDERS_AMQP_URL": amqp_url,
            "ORDERS_GRPC_HOST": "127.0.0.1",
            "ORDERS_GRPC_PORT": str(self.grpc_port),
            "ORDERS_HTTP_HOST": "127.0.0.1",
            "ORDERS_HTTP_PORT": str(self.http_port),
            "ORDERS_DRAIN_SECONDS": "1",
        }
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, failpoints: str = "", command: str = "serve") -> OrdersProcess:
        env = {**self._env, "ORDERS_FAILPOINTS": failpoints}
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "orders", command, env=env, stderr=log
            )
        return self

    async def terminate(self) -> int:
        """SIGTERM, then wait for the exit; the return code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        return await self.died()

    @property
    def log(self) -> str:
        return self._log_path.read_text()

    async def ready(self) -> None:
        async def answers() -> bool:
            if self._process is not None and self._process.returncode is not None:
                pytest.fail(f"orders exited early:\n{self._log_path.read_text()}")
            return await http_status(self.http_port, "/readyz") == 200

        await eventually(answers, "orders ready", seconds=SERVE_TIMEOUT)

    async def died(self) -> int:
        """Wait for the process to end by itself; its return code."""
        assert self._process is not None
        return await asyncio.wait_for(self._process.wait(), timeout=SERVE_TIMEOUT)

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    @asynccontextmanager
    async def stub(self) -> AsyncIterator[OrdersServiceStub]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            yield OrdersServiceStub(channel)


@pytest.fixture
async def orders_process(db_url: str, vhost: str, tmp_path: Path) -> AsyncIterator[OrdersProcess]:
    process = OrdersProcess(db_url, vhost_url(vhost), tmp_path / "orders.log")
    yield process
    await process.kill()


async def _create_orders(db_url: str, count: int) -> list[str]:
    """Create orders through an in-process service without a relay; their event ids."""
    async with (
        running(test_settings(db_url, relay_enabled=False)) as runtime,
        client(runtime) as stub,
    ):
        for _ in range(count):
            await stub.CreateOrder(create_request())
    return await outbox_event_ids(db_url)


async def test_crash_after_confirm_publishes_again_after_restart(
    db_url: str, sink: EventSink, orders_process: OrdersProcess
) -> None:
    event_ids = await _create_orders(db_url, 3)
    await orders_process.start(failpoints='["relay.after_confirm"]')
    assert await orders_process.died() == -9
    # Everything reached the broker, but nothing was marked before the crash.
    await sink.wait_for(3)
    assert sorted(sink.message_ids) == sorted(event_ids)
    assert await unpublished(db_url) == 3

    await orders_process.start()
    await orders_process.ready()
    await sink.wait_for(6)
    await eventually(lambda: _equals(unpublished(db_url), 0), "every row marked published")
    # At least once: each event twice on the wire, which consumers deduplicate.
    assert Counter(sink.message_ids) == dict.fromkeys(event_ids, 2)


async def test_crash_after_claim_publishes_once_after_restart(
    db_url: str, sink: EventSink, orders_process: OrdersProcess
) -> None:
    event_ids = await _create_orders(db_url, 3)
    await orders_process.start(failpoints="relay.after_claim")
    assert await orders_process.died() == -9
    await asyncio.sleep(0.3)
    assert sink.messages == []
    assert await unpublished(db_url) == 3  # the locks died with the process's connection

    await orders_process.start()
    await orders_process.ready()
    await sink.wait_for(3)
    await eventually(lambda: _equals(unpublished(db_url), 0), "every row marked published")
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    assert sorted(sink.message_ids) == sorted(event_ids)


async def test_crash_before_commit_loses_the_order_and_the_retry_creates_it_once(
    db_url: str, sink: EventSink, orders_process: OrdersProcess
) -> None:
    await orders_process.start(failpoints="create.before_commit")
    await orders_process.ready()
    request = create_request(key="crash-before-commit")
    async with orders_process.stub() as stub:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.CreateOrder(request, timeout=10)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await orders_process.died() == -9
    conn = await asyncpg.connect(db_url)
    try:
        for table in ("orders", "outbox", "idempotency_keys"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await conn.close()

    await orders_process.start()
    await orders_process.ready()
    async with orders_process.stub() as stub:
        reply = await stub.CreateOrder(request, timeout=10)
        assert reply.created
        again = await stub.CreateOrder(request, timeout=10)
        assert not again.created
        assert again.order.id == reply.order.id
    await sink.wait_for(1)
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    assert sink.message_ids == await outbox_event_ids(db_url)
    assert parse_order_event(sink.messages[0].body).order.id == uuid.UUID(reply.order.id)


async def test_relay_command_runs_only_the_relay_and_stops_on_sigterm(
    db_url: str, sink: EventSink, orders_process: OrdersProcess
) -> None:
    event_ids = await _create_orders(db_url, 2)
    await orders_process.start(command="relay")
    await orders_process.ready()
    await sink.wait_for(2)
    assert sorted(sink.message_ids) == sorted(event_ids)
    assert await http_status(orders_process.http_port, "/metrics") == 200
    assert await orders_process.terminate() == 0
    assert '"outbox relay stopped"' in orders_process.log


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", frozenset()),
        ("relay.after_claim", {"relay.after_claim"}),
        ("relay.after_claim, create.before_commit", {"relay.after_claim", "create.before_commit"}),
        ('["relay.after_confirm"]', {"relay.after_confirm"}),
    ],
)
def test_failpoints_setting_reads_a_comma_or_json_list(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: Any
) -> None:
    monkeypatch.setenv("ORDERS_FAILPOINTS", raw)
    assert OrdersSettings().failpoints == expected


def test_unknown_failpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_FAILPOINTS", "relay.after_clam")
    with pytest.raises(ValueError, match="unknown failpoints"):
        OrdersSettings()


def test_failpoints_setting_takes_a_list_in_code() -> None:
    settings = test_settings("postgresql://x/y", failpoints=["relay.after_claim"])
    assert settings.failpoints == {"relay.after_claim"}
