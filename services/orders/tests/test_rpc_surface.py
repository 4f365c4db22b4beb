"""The full RPC surface through a real grpc.aio server on a real database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from contracts.events import parse_order_event
from contracts.orders.v1 import orders_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from orders.server import OrdersRuntime

from .support import create_request, error_reason, field_violations, line

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub


async def test_create_get_confirm_roundtrip(stub: OrdersServiceStub) -> None:
    items = [line("apple", 3, 250), line("pear", 1, 99)]
    created = await stub.CreateOrder(create_request(items=items, currency="USD"))
    assert created.created
    order = created.order
    assert order.total_minor == 3 * 250 + 99
    assert order.status == pb.ORDER_STATUS_PENDING
    assert [(i.sku, i.quantity, i.unit_price_minor) for i in order.items] == [
        ("apple", 3, 250),
        ("pear", 1, 99),
    ]
    assert order.created_at.ToDatetime() == order.updated_at.ToDatetime()

    fetched = await stub.GetOrder(pb.GetOrderRequest(customer_id="alice", order_id=order.id))
    assert fetched.order == order

    confirmed = await stub.ConfirmOrder(
        pb.ConfirmOrderRequest(customer_id="alice", order_id=order.id)
    )
    assert confirmed.order.status == pb.ORDER_STATUS_CONFIRMED
    assert confirmed.order.updated_at.ToDatetime() > order.updated_at.ToDatetime()


async def test_cancel_pending_then_cancel_again_is_a_no_op(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    order = (await stub.CreateOrder(create_request())).order
    request = pb.CancelOrderRequest(customer_id="alice", order_id=order.id)
    first = await stub.CancelOrder(request)
    again = await stub.CancelOrder(request)
    assert first.order.status == again.order.status == pb.ORDER_STATUS_CANCELLED
    assert again.order.updated_at == first.order.updated_at
    types = await db.fetch("SELECT event_type FROM outbox ORDER BY id")
    assert [r["event_type"] for r in types] == ["order.created", "order.cancelled"]


@pytest.mark.parametrize(
    ("first", "then"),
    [("cancel", "confirm"), ("confirm", "cancel")],
)
async def test_terminal_states_reject_other_transitions(
    stub: OrdersServiceStub, db: asyncpg.Connection, first: str, then: str
) -> None:
    order = (await stub.CreateOrder(create_request())).order
    await _change(stub, first, order.id)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await _change(stub, then, order.id)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(failure.value) == "ILLEGAL_TRANSITION"
    assert "cannot become" in (failure.value.details() or "")
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2  # created + first only


async def test_every_state_change_writes_one_event_with_the_new_state(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    order = (await stub.CreateOrder(create_request())).order
    await stub.ConfirmOrder(pb.ConfirmOrderRequest(customer_id="alice", order_id=order.id))
    rows = await db.fetch("SELECT event_id, aggregate_id, payload FROM outbox ORDER BY id")
    # this plain connection has no jsonb codec: payloads arrive as JSON text
    events = [parse_order_event(r["payload"].encode()) for r in rows]
    assert [e.event_type for e in events] == ["order.created", "order.confirmed"]
    assert [e.order.status for e in events] == ["pending", "confirmed"]
    assert {str(r["aggregate_id"]) for r in rows} == {order.id}
    assert [e.event_id for e in events] == [r["event_id"] for r in rows]
    assert events[0].order.total_minor == order.total_minor
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2


async def test_unknown_order_is_not_found(stub: OrdersServiceStub) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for call in (
        stub.GetOrder(pb.GetOrderRequest(customer_id="alice", order_id=missing)),
        stub.CancelOrder(pb.CancelOrderRequest(customer_id="alice", order_id=missing)),
        stub.ConfirmOrder(pb.ConfirmOrderRequest(customer_id="alice", order_id=missing)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        assert missing in (failure.value.details() or "")


async def test_another_customers_order_is_not_found_and_untouched(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    order = (await stub.CreateOrder(create_request(customer="alice"))).order
    with pytest.raises(grpc.aio.AioRpcError) as read:
        await stub.GetOrder(pb.GetOrderRequest(customer_id="mallory", order_id=order.id))
    with pytest.raises(grpc.aio.AioRpcError) as cancel:
        await stub.CancelOrder(pb.CancelOrderRequest(customer_id="mallory", order_id=order.id))
    assert read.value.code() == cancel.value.code() == grpc.StatusCode.NOT_FOUND
    assert await db.fetchval("SELECT status FROM orders") == "pending"
    listed = await stub.ListOrders(pb.ListOrdersRequest(customer_id="mallory"))
    assert list(listed.orders) == []


async def test_malformed_order_id_is_invalid_argument(stub: OrdersServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.GetOrder(pb.GetOrderRequest(customer_id="alice", order_id="42; DROP TABLE"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order_id" in field_violations(failure.value)


async def test_server_reflection_and_health_are_served(runtime: OrdersRuntime) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        await _check_reflection_and_health(channel)


async def _check_reflection_and_health(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(
        health_pb2.HealthCheckRequest(service="ordermesh.orders.v1.OrdersService")
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = [s.name async for r in responses for s in r.list_services_response.service]
    assert "ordermesh.orders.v1.OrdersService" in services
    assert "grpc.health.v1.Health" in services


async def _change(stub: OrdersServiceStub, action: str, order_id: str) -> None:
    if action == "cancel":
        await stub.CancelOrder(pb.CancelOrderRequest(customer_id="alice", order_id=order_id))
    else:
        await stub.ConfirmOrder(pb.ConfirmOrderRequest(customer_id="alice", order_id=order_id))


async def test_rpcs_and_pool_waits_are_measured(
    runtime: OrdersRuntime, stub: OrdersServiceStub
) -> None:
    created = await stub.CreateOrder(create_request())
    await stub.GetOrder(pb.GetOrderRequest(customer_id="alice", order_id=created.order.id))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetOrder(pb.GetOrderRequest(customer_id="alice", order_id="nope"))
    batches = [b async for b in stub.ExportOrders(pb.ExportOrdersRequest(customer_id="alice"))]
    assert sum(len(b.orders) for b in batches) == 1

    def sample(name: str, **labels: str) -> float:
        return runtime.registry.get_sample_value(name, labels) or 0.0

    handled = "ordermesh_grpc_server_handling_seconds_count"
    assert sample(handled, method="CreateOrder", code="OK") == 1
    assert sample(handled, method="GetOrder", code="OK") == 1
    assert sample(handled, method="GetOrder", code="INVALID_ARGUMENT") == 1
    assert sample(handled, method="ExportOrders", code="OK") == 1
    assert sample("ordermesh_db_pool_acquire_seconds_count", pool="api") >= 2


async def test_a_new_order_was_updated_when_it_was_created(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    # Two clock readings (one per column default) differed by a microsecond now and
    # then; a hundred creates would show it.
    for n in range(100):
        await stub.CreateOrder(create_request(key=f"same-instant-{n}"))
    differing = await db.fetchval("SELECT count(*) FROM orders WHERE created_at <> updated_at")
    assert differing == 0


async def test_batch_get_answers_each_read_in_order_as_get_order_would(
    stub: OrdersServiceStub,
) -> None:
    alices = [(await stub.CreateOrder(create_request())).order for _ in range(2)]
    bobs = (await stub.CreateOrder(create_request(customer="bob"))).order
    missing = "00000000-0000-4000-8000-000000000000"

    def read(customer: str, order_id: str) -> pb.GetOrderRequest:
        return pb.GetOrderRequest(customer_id=customer, order_id=order_id)

    reads = [
        read("alice", alices[1].id),
        read("alice", bobs.id),  # another customer's order: not found, as for GetOrder
        read("alice", missing),
        read("alice", "not-a-uuid"),
        read("bob", bobs.id),
        read("alice", alices[0].id),
        read("alice", alices[0].id),  # the same read twice: answered twice
    ]
    response = await stub.BatchGetOrders(pb.BatchGetOrdersRequest(reads=reads))
    results = list(response.results)
    assert len(results) == len(reads)
    assert [r.WhichOneof("result") for r in results] == [
        "order",
        "error",
        "error",
        "error",
        "order",
        "order",
        "order",
    ]
    assert results[0].order == alices[1]
    assert results[4].order == bobs
    assert results[5].order == results[6].order == alices[0]
    codes = [r.error.code for r in results[1:4]]
    assert codes == [grpc.StatusCode.NOT_FOUND.value[0]] * 2 + [
        grpc.StatusCode.INVALID_ARGUMENT.value[0]
    ]
    assert "not-a-uuid" in results[3].error.message


@pytest.mark.parametrize("count", [0, 101])
async def test_batch_get_refuses_an_empty_or_oversized_batch(
    stub: OrdersServiceStub, count: int
) -> None:
    reads = [pb.GetOrderRequest(customer_id="alice", order_id="x")] * count
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.BatchGetOrders(pb.BatchGetOrdersRequest(reads=reads))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "reads" in field_violations(caught.value)
