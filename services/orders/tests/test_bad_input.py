"""Every kind of bad CreateOrder input gets INVALID_ARGUMENT with field details."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2 as pb

from .support import create_request, field_violations, line

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

BAD_REQUESTS: dict[str, tuple[pb.CreateOrderRequest, str]] = {
    "empty items": (create_request(items=[]), "items"),
    "quantity 0": (create_request(items=[line(quantity=0)]), "items[0].quantity"),
    "negative price": (create_request(items=[line(price=-1)]), "items[0].unit_price_minor"),
    "unknown currency": (create_request(currency="XYZ"), "currency"),
    "lower-case currency": (create_request(currency="eur"), "currency"),
    "empty currency": (create_request(currency=""), "currency"),
    "over-long sku": (create_request(items=[line(sku="s" * 65)]), "items[0].sku"),
    "empty sku": (create_request(items=[line(sku="")]), "items[0].sku"),
    "over-long customer id": (create_request(customer="c" * 129), "customer_id"),
    "missing customer id": (create_request(customer=""), "customer_id"),
    "over-long idempotency key": (create_request(key="k" * 256), "idempotency_key"),
    "missing idempotency key": (create_request(key=""), "idempotency_key"),
    "non-ASCII idempotency key": (create_request(key="clé"), "idempotency_key"),
    "101 items": (create_request(items=[line(f"s{i}") for i in range(101)]), "items"),
    "huge quantity": (create_request(items=[line(quantity=10_001)]), "items[0].quantity"),
    "second item bad": (
        create_request(items=[line("ok"), line("bad", quantity=0)]),
        "items[1].quantity",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_create_request_is_rejected_with_the_field(
    stub: OrdersServiceStub, db: asyncpg.Connection, case: str
) -> None:
    request, field = BAD_REQUESTS[case]
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.CreateOrder(request)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(failure.value)
    assert field in violations, violations
    assert violations[field]  # a human-readable description
    assert await db.fetchval("SELECT count(*) FROM orders") == 0
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_all_problems_are_reported_at_once(stub: OrdersServiceStub) -> None:
    request = create_request(customer="", currency="eur", items=[line(sku="", quantity=0)])
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.CreateOrder(request)
    assert set(field_violations(failure.value)) == {
        "customer_id",
        "currency",
        "items[0].sku",
        "items[0].quantity",
    }


async def test_the_limits_themselves_are_accepted(stub: OrdersServiceStub) -> None:
    items = [line("s" * 64, 10_000, 100_000_000_000)] + [line(f"s{i}") for i in range(99)]
    request = create_request(customer="c" * 128, key="k" * 255, items=items, currency="JPY")
    reply = await stub.CreateOrder(request)
    assert len(reply.order.items) == 100
    assert reply.order.total_minor == 10_000 * 100_000_000_000 + 99 * 100


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListOrdersRequest(customer_id="alice", page_size=101), "page_size"),
        (pb.ListOrdersRequest(customer_id="alice", page_size=-1), "page_size"),
        (pb.ListOrdersRequest(customer_id="alice", page_token="not-a-token"), "page_token"),
        (pb.ListOrdersRequest(customer_id=""), "customer_id"),
    ],
)
async def test_bad_list_request_is_rejected(
    stub: OrdersServiceStub, request_: pb.ListOrdersRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.ListOrders(request_)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(failure.value)


async def test_oversized_message_is_refused_by_the_transport(db_url: str) -> None:
    from orders.server import OrdersRuntime

    from .conftest import test_settings

    runtime = OrdersRuntime(test_settings(db_url, max_message_bytes=64 * 1024))
    await runtime.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
            from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

            stub = OrdersServiceStub(channel)
            big = create_request(items=[line("s" * 64) for _ in range(2000)])
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stub.CreateOrder(big)
        assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await runtime.stop()
