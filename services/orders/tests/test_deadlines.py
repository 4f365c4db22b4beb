"""Deadlines: an expired deadline ends the call and cancels the database work."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub
from orders.server import OrdersRuntime

from .conftest import test_settings
from .support import create_request

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

# Only this test's database: other orders processes may share the server.
WAITING_ON_LOCK = """SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database()
                       AND application_name = 'ordermesh-orders' AND wait_event_type = 'Lock'"""

IDLE_IN_TRANSACTION = """SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database()
                           AND application_name = 'ordermesh-orders'
                           AND state LIKE 'idle in transaction%'"""


async def _poll_count(db: asyncpg.Connection, sql: str, want: int, seconds: float = 5) -> int:
    deadline = time.monotonic() + seconds
    while True:
        got: int = await db.fetchval(sql)
        if got == want or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.02)


async def test_expired_deadline_cancels_the_query_and_changes_nothing(
    stub: OrdersServiceStub, db: asyncpg.Connection, db_url: str
) -> None:
    order = (await stub.CreateOrder(create_request())).order
    blocker = await asyncpg.connect(db_url)
    lock = blocker.transaction()
    await lock.start()
    await blocker.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", _uuid(order.id))
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.CancelOrder(
                pb.CancelOrderRequest(customer_id="alice", order_id=order.id), timeout=0.3
            )
        assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2
        # The blocked UPDATE no longer waits in PostgreSQL: it was cancelled there.
        assert await _poll_count(db, WAITING_ON_LOCK, 0) == 0
    finally:
        await lock.rollback()
        await blocker.close()
    await asyncio.sleep(0.2)  # had the work survived, it would commit now
    assert await db.fetchval("SELECT status FROM orders") == "pending"
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1
    # The pooled connection that was cancelled mid-transaction came back clean.
    assert await _poll_count(db, IDLE_IN_TRANSACTION, 0) == 0
    for _ in range(5):  # more calls than the pool has connections
        await stub.CreateOrder(create_request())
    cancelled = await stub.CancelOrder(
        pb.CancelOrderRequest(customer_id="alice", order_id=order.id)
    )
    assert cancelled.order.status == pb.ORDER_STATUS_CANCELLED


@pytest.mark.timeout(30)  # without the cap this call would wait forever
async def test_calls_without_a_deadline_are_capped_by_the_server(
    db_url: str, db: asyncpg.Connection
) -> None:
    runtime = OrdersRuntime(test_settings(db_url, max_rpc_seconds=0.3))
    await runtime.start()
    blocker = await asyncpg.connect(db_url)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
            stub = OrdersServiceStub(channel)
            order = (await stub.CreateOrder(create_request())).order
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
                with pytest.raises(grpc.aio.AioRpcError) as failure:
                    await stub.ConfirmOrder(
                        pb.ConfirmOrderRequest(customer_id="alice", order_id=order.id)
                    )
                assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert await _poll_count(db, WAITING_ON_LOCK, 0) == 0
    finally:
        await blocker.close()
        await runtime.stop()


def _uuid(raw: str) -> object:
    import uuid

    return uuid.UUID(raw)
