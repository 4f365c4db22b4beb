"""SIGTERM on a real `orders serve` process: readiness drops, in-flight work drains, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

from .support import create_request, free_port, http_status


async def _wait_for(port: int, path: str, status: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while await http_status(port, path) != status:
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not answer {status} within {seconds}s")
        await asyncio.sleep(0.1)


@pytest.mark.timeout(60)
async def test_sigterm_drains_in_flight_calls_and_exits_zero(db_url: str) -> None:
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "ORDERS_ENVIRONMENT": "test",
        "ORDERS_DATABASE_URL": db_url,
        "ORDERS_GRPC_HOST": "127.0.0.1",
        "ORDERS_GRPC_PORT": str(grpc_port),
        "ORDERS_HTTP_HOST": "127.0.0.1",
        "ORDERS_HTTP_PORT": str(http_port),
        "ORDERS_DRAIN_SECONDS": "10",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orders", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    blocker = await asyncpg.connect(db_url)
    try:
        await _wait_for(http_port, "/readyz", 200)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = OrdersServiceStub(channel)
            order = (await stub.CreateOrder(create_request())).order
            # Hold the row so that a cancel is in flight when SIGTERM arrives.
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute(
                "SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", uuid.UUID(order.id)
            )
            in_flight = asyncio.ensure_future(
                stub.CancelOrder(
                    pb.CancelOrderRequest(customer_id="alice", order_id=order.id), timeout=20
                )
            )
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            await _wait_for(http_port, "/readyz", 503, seconds=5)
            assert process.returncode is None, "the process must wait for in-flight work"
            await lock.rollback()  # the in-flight call may now finish
            reply = await in_flight
            assert reply.order.status == pb.ORDER_STATUS_CANCELLED
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        await blocker.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert '"orders stopped"' in stderr
