"""ExportOrders: every order of the customer, in batches, with flat memory."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import psutil
from contracts.orders.v1 import orders_pb2 as pb
from orders.repository import ORDER_COLUMNS
from orders.server import OrdersRuntime

from .support import create_request

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

BULK = 100_000
BATCH = 500  # the default export_batch_size


async def seed(db: asyncpg.Connection, customer: str, count: int) -> list[uuid.UUID]:
    """COPY `count` orders in, one second apart, oldest first; return their ids."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    items = '[{"sku": "sku-1", "quantity": 2, "unit_price_minor": 150}]'
    records = [
        (oid, customer, "pending", "EUR", 300, items, t, t)
        for n, oid in enumerate(ids)
        for t in (start + timedelta(seconds=n),)
    ]
    await db.copy_records_to_table(
        "orders",
        records=records,
        columns=ORDER_COLUMNS,
    )
    await db.execute("ANALYZE orders")
    return ids


class PeakRss:
    """Samples this process's resident memory in a thread while the block runs."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


async def test_export_streams_100k_orders_in_batches_with_flat_memory(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    ids = await seed(db, "bulk", BULK)
    await seed(db, "someone-else", 10)
    request = pb.ExportOrdersRequest(customer_id="bulk")
    # Warm up allocator and channel so the measurement sees only the export itself.
    async for _ in stub.ExportOrders(pb.ExportOrdersRequest(customer_id="someone-else")):
        pass

    exported: list[str] = []
    messages = 0
    with PeakRss() as rss:
        async for reply in stub.ExportOrders(request, timeout=120):
            messages += 1
            # Keep only the ids: the client side must not be what holds memory.
            exported.extend(o.id for o in reply.orders)
    assert exported == [str(i) for i in ids]  # all of them, oldest first, nobody else's
    assert messages == BULK // BATCH
    # Holding 100k decoded orders at once costs well over 100 MB in this process;
    # streaming batch by batch grows it by under 10 MB.
    assert rss.growth_mb < 40, f"RSS grew by {rss.growth_mb:.0f} MB during the export"


async def test_export_of_a_customer_without_orders_is_empty(stub: OrdersServiceStub) -> None:
    await stub.CreateOrder(create_request(customer="alice"))
    replies = [r async for r in stub.ExportOrders(pb.ExportOrdersRequest(customer_id="bob"))]
    assert replies == []


async def test_export_sees_one_snapshot(stub: OrdersServiceStub, db: asyncpg.Connection) -> None:
    await seed(db, "alice", 2_000)
    total = 0
    async for reply in stub.ExportOrders(pb.ExportOrdersRequest(customer_id="alice")):
        if total == 0:  # the snapshot has begun: this order must not show up
            await stub.CreateOrder(create_request(customer="alice"))
        total += len(reply.orders)
    assert total == 2_000


async def test_a_client_leaving_mid_export_frees_the_database_connection(
    runtime: OrdersRuntime, db: asyncpg.Connection
) -> None:
    await seed(db, "alice", 20_000)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

        stream = OrdersServiceStub(channel).ExportOrders(
            pb.ExportOrdersRequest(customer_id="alice")
        )
        await stream.read()
        stream.cancel()
    pool = runtime.pool
    assert pool is not None
    for _ in range(100):
        if pool.get_idle_size() == pool.get_size():
            break
        await asyncio.sleep(0.05)
    assert pool.get_idle_size() == pool.get_size()
    open_cursors = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'ordermesh-orders' AND state = 'idle in transaction'"
    )
    assert open_cursors == 0
