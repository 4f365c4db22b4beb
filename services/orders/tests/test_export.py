"""ExportOrders: every order of the customer, in batches, with flat memory (typed orders;
test_export_ndjson.py has the NDJSON format)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from orders.server import OrdersRuntime

from .support import PeakRss, create_request, seed

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

BULK = 100_000
BATCH = 500  # the default export_batch_size


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


FORMATS = pytest.mark.parametrize(
    "export_format",
    [pb.EXPORT_FORMAT_UNSPECIFIED, pb.EXPORT_FORMAT_ORDERS, pb.EXPORT_FORMAT_NDJSON],
    ids=["unspecified", "orders", "ndjson"],
)


@FORMATS
async def test_export_of_a_customer_without_orders_is_empty(
    stub: OrdersServiceStub, export_format: pb.ExportFormat.ValueType
) -> None:
    await stub.CreateOrder(create_request(customer="alice"))
    request = pb.ExportOrdersRequest(customer_id="bob", format=export_format)
    replies = [r async for r in stub.ExportOrders(request)]
    assert replies == []


async def test_a_client_that_sets_no_format_gets_typed_orders(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    ids = await seed(db, "alice", 3)
    for request in (
        pb.ExportOrdersRequest(customer_id="alice"),
        pb.ExportOrdersRequest(customer_id="alice", format=pb.EXPORT_FORMAT_ORDERS),
    ):
        replies = [r async for r in stub.ExportOrders(request)]
        assert [o.id for r in replies for o in r.orders] == [str(i) for i in ids]
        assert all(r.ndjson == b"" for r in replies)


async def test_export_sees_one_snapshot(stub: OrdersServiceStub, db: asyncpg.Connection) -> None:
    await seed(db, "alice", 2_000)
    total = 0
    async for reply in stub.ExportOrders(pb.ExportOrdersRequest(customer_id="alice")):
        if total == 0:  # the snapshot has begun: this order must not show up
            await stub.CreateOrder(create_request(customer="alice"))
        total += len(reply.orders)
    assert total == 2_000


@FORMATS
async def test_a_client_leaving_mid_export_frees_the_database_connection(
    runtime: OrdersRuntime, db: asyncpg.Connection, export_format: pb.ExportFormat.ValueType
) -> None:
    await seed(db, "alice", 20_000)
    async with alices_export(runtime, export_format) as stream:
        await stream.read()
        stream.cancel()
    await assert_connections_freed(runtime, db)


@FORMATS
async def test_an_export_past_its_deadline_ends_and_frees_the_database_connection(
    runtime: OrdersRuntime, db: asyncpg.Connection, export_format: pb.ExportFormat.ValueType
) -> None:
    await seed(db, "alice", 50_000)
    async with alices_export(runtime, export_format, timeout=0.5) as stream:
        await stream.read()
        await asyncio.sleep(1)  # a slow reader: orders waits on flow control meanwhile
        read: list[int] = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await read_all(stream, read)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(read) < 50_000 // 500 - 1  # it ended mid-stream, not after the last batch
    await assert_connections_freed(runtime, db)


@contextlib.asynccontextmanager
async def alices_export(
    runtime: OrdersRuntime, export_format: pb.ExportFormat.ValueType, **call: Any
) -> AsyncIterator[Any]:
    """alice's export on a channel of its own, closed when the block ends."""
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        request = pb.ExportOrdersRequest(customer_id="alice", format=export_format)
        yield OrdersServiceStub(channel).ExportOrders(request, **call)


async def read_all(stream: Any, read: list[int]) -> None:
    eof = grpc.aio.EOF  # type: ignore[attr-defined]  # in grpc.aio, not in its stubs
    while (reply := await stream.read()) is not eof:
        read.append(reply.ByteSize())


async def assert_connections_freed(runtime: OrdersRuntime, db: asyncpg.Connection) -> None:
    """Every pooled connection is back, and none sits in an open transaction."""
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
