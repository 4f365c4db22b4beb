"""Order events reach notify exactly once in effect, whatever crashes.

Black-box over real processes: `orders serve` (with its outbox relay) and `notify
serve`, each on a fresh database of the machine's PostgreSQL, on a RabbitMQ vhost of
their own (or, for the broker restart, a private RabbitMQ node). The tests create
orders over gRPC, break things with real signals, and then compare what orders
committed with what notify recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub
from ordermesh.children import ChildProcess
from ordermesh.localbroker import LocalRabbit, create_vhost, delete_vhost
from ordermesh.probes import http_status, port_open
from servicekit.testing.net import free_ports

PG = os.environ.get("ORDERMESH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER = "amqp://guest:guest@127.0.0.1:5672"
LOCALHOST = "127.0.0.1"
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _db_url(name: str) -> str:
    return PG.rsplit("/", 1)[0] + "/" + name


@dataclass
class System:
    """orders + notify as processes, with what the tests need to break and inspect them."""

    tmp: Path
    amqp_url: str
    orders_db: str
    notify_db: str
    grpc_port: int
    orders_http: int
    notify_http: int
    processes: dict[str, ChildProcess] = field(default_factory=dict)
    generation: int = 0

    def _env(self, name: str, failpoints: tuple[str, ...]) -> dict[str, str]:
        common = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if name == "orders":
            return {
                **common,
                "ORDERS_ENVIRONMENT": "test",
                "ORDERS_DATABASE_URL": self.orders_db,
                "ORDERS_AMQP_URL": self.amqp_url,
                "ORDERS_GRPC_HOST": LOCALHOST,
                "ORDERS_GRPC_PORT": str(self.grpc_port),
                "ORDERS_HTTP_HOST": LOCALHOST,
                "ORDERS_HTTP_PORT": str(self.orders_http),
                "ORDERS_DRAIN_SECONDS": "2",
                "ORDERS_FAILPOINTS": ",".join(failpoints),
            }
        return {
            **common,
            "NOTIFY_ENVIRONMENT": "test",
            "NOTIFY_DATABASE_URL": self.notify_db,
            "NOTIFY_AMQP_URL": self.amqp_url,
            "NOTIFY_HTTP_HOST": LOCALHOST,
            "NOTIFY_HTTP_PORT": str(self.notify_http),
            "NOTIFY_DRAIN_SECONDS": "5",
            "NOTIFY_RETRY_DELAY_SECONDS": "1",
            "NOTIFY_FAILPOINTS": ",".join(failpoints),
        }

    async def start(
        self, name: str, *, failpoints: tuple[str, ...] = (), wait: bool = True
    ) -> ChildProcess:
        """Start a service and (unless `wait` is false) wait until /readyz answers 200."""
        self.generation += 1
        child = ChildProcess(
            name,
            (sys.executable, "-m", name, "serve"),
            env=self._env(name, failpoints),
            log_file=self.tmp / f"{name}-{self.generation}.log",
        )
        self.processes[name] = child
        await child.start()
        if not wait:
            return child
        port = self.orders_http if name == "orders" else self.notify_http
        deadline = time.monotonic() + 30
        while await _status(f"http://{LOCALHOST}:{port}/readyz") != 200:
            if child.returncode is not None or time.monotonic() > deadline:
                pytest.fail(f"{name} did not become ready:\n{child.log_tail(40)}")
            await asyncio.sleep(0.1)
        return child

    async def kill(self, name: str) -> None:
        """SIGKILL: a crash, no drain."""
        child = self.processes[name]
        child.kill()
        await child.wait()

    async def stop_all(self) -> None:
        for child in self.processes.values():
            await child.stop(grace=10)

    def logs(self) -> str:
        return "\n".join(f"--- {c.name}\n{c.log_tail(30)}" for c in self.processes.values())

    async def metric(self, name: str) -> float:
        """A counter or gauge of notify's /metrics (summed over labels)."""
        import urllib.request

        url = f"http://{LOCALHOST}:{self.notify_http}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", re.MULTILINE)
        return sum(float(v) for v in pattern.findall(text.decode()))


async def _status(url: str) -> int:
    try:
        return await http_status(url, within=2)
    except OSError:
        return 0


@pytest.fixture
async def databases() -> AsyncIterator[tuple[str, str]]:
    names = [f"evt_{kind}_{uuid.uuid4().hex[:10]}" for kind in ("orders", "notify")]
    for name in names:
        await _admin(f'CREATE DATABASE "{name}"')
    yield _db_url(names[0]), _db_url(names[1])
    for name in names:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def vhost() -> AsyncIterator[str]:
    name = f"ordermesh-test-{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(create_vhost, name)
    yield name
    await asyncio.to_thread(delete_vhost, name)


def _system(tmp_path: Path, amqp_url: str, dbs: tuple[str, str]) -> System:
    grpc_port, orders_http, notify_http = free_ports(3)
    return System(tmp_path, amqp_url, dbs[0], dbs[1], grpc_port, orders_http, notify_http)


@pytest.fixture
async def system(tmp_path: Path, databases: tuple[str, str], vhost: str) -> AsyncIterator[System]:
    running = _system(tmp_path, f"{BROKER}/{vhost}", databases)
    try:
        yield running
    finally:
        await running.stop_all()


async def create_orders(system: System, count: int, *, concurrency: int = 32) -> list[str]:
    """Create `count` orders, retrying each with its own idempotency key until it lands."""
    keys = [uuid.uuid4().hex for _ in range(count)]
    ids: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in keys:
        queue.put_nowait(key)
    async with grpc.aio.insecure_channel(f"{LOCALHOST}:{system.grpc_port}") as channel:
        stub = OrdersServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                key = queue.get_nowait()
                ids.append(await _create_until_it_lands(stub, key))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


async def _create_until_it_lands(stub: OrdersServiceStub, key: str) -> str:
    request = pb.CreateOrderRequest(
        customer_id="burst",
        idempotency_key=key,
        currency="EUR",
        items=[pb.LineItem(sku="sku-1", quantity=1, unit_price_minor=100)],
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            return (await stub.CreateOrder(request, timeout=10)).order.id
        except grpc.aio.AioRpcError as error:
            # A crashed or restarting orders answers UNAVAILABLE, and a busy machine may
            # blow a deadline; the same key makes the retry safe (that is what it is for).
            # Anything else is a real failure.
            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Tally:
    committed_orders: int
    committed_events: int
    recorded: int
    distinct_recorded: int
    duplicates: int


async def tally(system: System) -> Tally:
    orders = await asyncpg.connect(system.orders_db)
    notify = await asyncpg.connect(system.notify_db)
    try:
        committed_orders = await orders.fetchval("SELECT count(*) FROM orders")
        committed_events = await orders.fetchval("SELECT count(*) FROM outbox")
        row = await notify.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_n, "
            "coalesce(sum(duplicates), 0) AS duplicates FROM notifications"
        )
    finally:
        await orders.close()
        await notify.close()
    assert row is not None
    return Tally(committed_orders, committed_events, row["n"], row["distinct_n"], row["duplicates"])


async def settled(system: System, events: int, seconds: float = 120) -> Tally:
    """Wait until notify recorded `events` notifications (or time runs out)."""
    deadline = time.monotonic() + seconds
    while True:
        current = await tally(system)
        if current.distinct_recorded >= events or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.25)


async def when(check: Callable[[], Awaitable[bool]], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds}s")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(240)
async def test_a_burst_of_10k_orders_gives_10k_notifications(system: System) -> None:
    await system.start("notify")
    await system.start("orders")
    ids = await create_orders(system, 10_000, concurrency=64)
    result = await settled(system, 10_000)
    assert len(set(ids)) == 10_000
    assert result == Tally(10_000, 10_000, 10_000, 10_000, 0), system.logs()


@pytest.mark.timeout(240)
async def test_notify_killed_mid_burst_loses_nothing_and_records_nothing_twice(
    system: System,
) -> None:
    await system.start("notify")
    await system.start("orders")
    burst = asyncio.ensure_future(create_orders(system, 3_000))

    async def busy_mid_burst() -> bool:
        # Kill only while notify holds messages: then the kill surely hits work in flight.
        if (await tally(system)).recorded < 500:
            return False
        return await system.metric("ordermesh_notify_in_flight") > 0

    await when(busy_mid_burst)
    await system.kill("notify")
    await asyncio.sleep(0.5)  # the broker notices the dead connection and requeues
    await system.start("notify")
    await burst
    result = await settled(system, 3_000)
    assert result.committed_events == result.distinct_recorded == result.recorded == 3_000, (
        result,
        system.logs(),
    )
    # Proof that the kill hit in-flight work: the broker delivered something again.
    redelivered = await system.metric("ordermesh_notify_redelivered_total")
    assert redelivered + result.duplicates >= 1, (result, redelivered)


@pytest.mark.timeout(240)
async def test_broker_stopped_and_restarted_mid_burst_loses_nothing(
    tmp_path: Path, databases: tuple[str, str]
) -> None:
    amqp_port, dist_port = free_ports(2)
    broker = LocalRabbit(tmp_path / "rabbit", amqp_port=amqp_port, dist_port=dist_port)
    await asyncio.to_thread(broker.start)
    system = _system(tmp_path, broker.url(), databases)
    try:
        await system.start("notify")
        await system.start("orders")
        first = await create_orders(system, 1_000)
        await asyncio.to_thread(broker.stop)
        assert not await port_open(LOCALHOST, amqp_port)
        # orders keeps taking orders while the broker is away: they wait in the outbox.
        during = await create_orders(system, 1_000)
        await asyncio.to_thread(broker.start)
        after = await create_orders(system, 1_000)
        result = await settled(system, 3_000, seconds=180)
        assert len(set(first + during + after)) == 3_000
        assert result.committed_events == result.distinct_recorded == result.recorded == 3_000, (
            result,
            system.logs(),
        )
    finally:
        await system.stop_all()
        await asyncio.to_thread(broker.stop)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "failpoint", ["create.before_commit", "relay.after_claim", "relay.after_confirm"]
)
async def test_orders_killed_at_each_crash_point_delivers_each_committed_order_once(
    system: System, failpoint: str
) -> None:
    await system.start("notify")
    await system.start("orders")
    await create_orders(system, 200)
    # Restart orders with the failpoint armed: the next order (or relay batch) kills it.
    # That may come before it is ready (rows left unpublished by the stop), so no wait.
    await system.processes["orders"].stop(grace=10)
    crashing = await system.start("orders", failpoints=(failpoint,), wait=False)
    burst = asyncio.ensure_future(create_orders(system, 300))
    assert await asyncio.wait_for(crashing.wait(), timeout=60) == -9, system.logs()
    await system.start("orders")  # the same database, no failpoint
    await burst
    result = await settled(system, 500)
    assert result.committed_orders == result.committed_events == 500, (result, system.logs())
    assert result.distinct_recorded == result.recorded == 500, (result, system.logs())
    if failpoint == "relay.after_confirm":
        # Published and confirmed, then the crash: the restarted relay publishes again,
        # and notify recognises the repeat.
        assert result.duplicates >= 1, result


@pytest.mark.timeout(120)
async def test_one_poison_message_among_a_thousand_is_dead_lettered_and_blocks_nothing(
    system: System,
) -> None:
    import aio_pika
    from contracts.events import OrderCreated, OrderLine, OrderSnapshot
    from contracts.topology import ORDER_CREATED, ORDER_EVENTS_EXCHANGE
    from notify.topology import DEAD_REASON_HEADER

    await system.start("notify")
    await system.start("orders")  # idle here; the tally reads its (empty) tables too
    now = datetime.now(UTC)
    good = [
        OrderCreated(
            event_id=uuid.uuid4(),
            occurred_at=now,
            order=OrderSnapshot(
                id=uuid.uuid4(),
                customer_id="poison-test",
                status="pending",
                currency="EUR",
                total_minor=100,
                items=(OrderLine(sku="a", quantity=1, unit_price_minor=100),),
                created_at=now,
                updated_at=now,
            ),
        )
        for _ in range(999)
    ]
    bodies = [e.model_dump_json().encode() for e in good]
    bodies.insert(500, b'{"event_type": "order.created", "version": 1, "truncated')
    connection = await aio_pika.connect(system.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(ORDER_EVENTS_EXCHANGE)
        for body in bodies:
            message = aio_pika.Message(
                body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=uuid.uuid4().hex
            )
            await exchange.publish(message, routing_key=ORDER_CREATED)
        result = await settled(system, 999, seconds=60)
        dead_letters = await channel.declare_queue("notify.order-events.dlq", passive=True)
        dead = await dead_letters.get(timeout=10, fail=True)
        assert dead is not None
        await dead.ack()
        assert dead.body == bodies[500]
        assert "not a valid order event" in str(dead.headers[DEAD_REASON_HEADER])
        # Dead-lettered on its first delivery, not after a crash loop up to the limit.
        assert dead.headers.get("x-delivery-count") in (None, 0)
        queue = await channel.declare_queue("notify.order-events", passive=True)
        assert queue.declaration_result.message_count == 0
    assert result.recorded == result.distinct_recorded == 999, result
