"""ExportOrders with EXPORT_FORMAT_NDJSON: the public JSON lines, rendered by orders.

The byte-for-byte match with the gateway's rendering is tests/test_export_contract.py;
here are the stream's own promises: whole lines, every order once and oldest first,
message sizes, one snapshot, flat memory, and the public shape of tricky values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
import grpc
import orjson
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1 import orders_pb2_grpc
from orders.server import OrdersRuntime
from orders.servicer import MAX_NDJSON_CHUNK_BYTES

from .conftest import test_settings
from .support import PeakRss, create_request, field_violations, line, seed

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

BULK = 100_000
BATCH = 500  # the default export_batch_size


def ndjson(customer: str) -> pb.ExportOrdersRequest:
    return pb.ExportOrdersRequest(customer_id=customer, format=pb.EXPORT_FORMAT_NDJSON)


async def export_lines(stub: OrdersServiceStub, customer: str) -> list[bytes]:
    body = b"".join([r.ndjson async for r in stub.ExportOrders(ndjson(customer))])
    assert body.endswith(b"\n") or body == b""
    return body.splitlines()


async def test_ndjson_export_streams_100k_orders_as_whole_lines_with_flat_memory(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    ids = await seed(db, "bulk", BULK)
    await seed(db, "someone-else", 10)
    async for _ in stub.ExportOrders(ndjson("someone-else")):  # warm up
        pass

    exported: list[str] = []
    messages = 0
    with PeakRss() as rss:
        async for reply in stub.ExportOrders(ndjson("bulk"), timeout=120):
            messages += 1
            assert reply.ndjson.endswith(b"\n")  # complete lines only
            assert len(reply.ndjson) <= MAX_NDJSON_CHUNK_BYTES
            assert not reply.orders
            exported.extend(orjson.loads(raw)["id"] for raw in reply.ndjson.splitlines())
    assert exported == [str(i) for i in ids]  # all of them, oldest first, nobody else's
    assert messages == BULK // BATCH  # a fetched batch of small orders is one message
    assert rss.growth_mb < 40, f"RSS grew by {rss.growth_mb:.0f} MB during the export"


async def test_ndjson_lines_are_the_public_json_of_each_order(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    tea = await stub.CreateOrder(
        create_request(
            items=[line("Grüner Tee 緑茶", 2, 450), line('a "quoted" \\ sku', 1, 0)],
            currency="JPY",
        )
    )
    cup = await stub.CreateOrder(create_request(items=[line("cup", 3, 1_999)]))
    pot = await stub.CreateOrder(create_request(items=[line("pot", 1, 100_000_000_000)]))
    await stub.ConfirmOrder(pb.ConfirmOrderRequest(customer_id="alice", order_id=cup.order.id))
    await stub.CancelOrder(pb.CancelOrderRequest(customer_id="alice", order_id=pot.order.id))
    # protobuf's JSON has no fraction for whole seconds, 3 digits for whole milliseconds,
    # else 6; the rows are put at such instants (and in this order).
    moments = {
        tea.order.id: (datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC), "2025-03-01T10:00:00Z"),
        cup.order.id: (
            datetime(2025, 3, 1, 10, 0, 1, 250_000, tzinfo=UTC),
            "2025-03-01T10:00:01.250Z",
        ),
        pot.order.id: (
            datetime(2025, 3, 1, 10, 0, 2, 123_456, tzinfo=UTC),
            "2025-03-01T10:00:02.123456Z",
        ),
    }
    for order_id, (moment, _) in moments.items():
        await db.execute(
            "UPDATE orders SET created_at = $2, updated_at = $2 WHERE id = $1::uuid",
            order_id,
            moment,
        )

    lines = await export_lines(stub, "alice")
    assert len(lines) == 3
    tea_line = (
        '{"id":"' + tea.order.id + '","customer_id":"alice","status":"pending","currency":"JPY",'
        '"total_minor":900,"items":[{"sku":"Grüner Tee 緑茶","quantity":2,'
        '"unit_price_minor":450},{"sku":"a \\"quoted\\" \\\\ sku","quantity":1,'
        '"unit_price_minor":0}],"created_at":"2025-03-01T10:00:00Z",'
        '"updated_at":"2025-03-01T10:00:00Z"}'
    )
    assert lines[0] == tea_line.encode()  # UTF-8 as is, quotes and backslashes escaped
    for raw, (order_id, (_, stamp)), status, total in zip(
        lines,
        moments.items(),
        ["pending", "confirmed", "cancelled"],
        [900, 5_997, 100_000_000_000],
        strict=True,
    ):
        order = orjson.loads(raw)
        assert list(order) == [
            "id",
            "customer_id",
            "status",
            "currency",
            "total_minor",
            "items",
            "created_at",
            "updated_at",
        ]
        assert (order["id"], order["status"], order["total_minor"]) == (order_id, status, total)
        assert (order["created_at"], order["updated_at"]) == (stamp, stamp)
        assert f'"created_at":"{stamp}"'.encode() in raw


async def test_ndjson_export_sees_one_snapshot(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    await seed(db, "alice", 2_000)
    lines = 0
    async for reply in stub.ExportOrders(ndjson("alice")):
        if lines == 0:  # the snapshot has begun: this order must not show up
            await stub.CreateOrder(create_request(customer="alice"))
        lines += reply.ndjson.count(b"\n")
    assert lines == 2_000


# 100 items with 64-character SKUs of 3-byte UTF-8 characters: ~25 KB per line, so a
# fetched batch of 500 such orders is ~12 MB, far above one message.
Limited = tuple["OrdersServiceStub", int]  # a client, and the largest NDJSON message
BIG_ITEMS = orjson.dumps(
    [{"sku": "緑" * 64, "quantity": 10_000, "unit_price_minor": 100_000_000_000}] * 100
).decode()


@pytest.fixture(params=[None, 64 * 1024], ids=["default-limit", "64KiB-limit"])
async def limited(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[Limited]:
    """An orders with the default message limit, or one of 64 KiB (its client's too)."""
    limit: int | None = request.param
    overrides = {} if limit is None else {"max_message_bytes": limit}
    runtime = OrdersRuntime(test_settings(db_url, **overrides))
    await runtime.start()
    try:
        options = [] if limit is None else [("grpc.max_receive_message_length", limit)]
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{runtime.grpc_port}", options=options
        ) as channel:
            cap = MAX_NDJSON_CHUNK_BYTES if limit is None else limit - 16  # framing
            yield orders_pb2_grpc.OrdersServiceStub(channel), cap
    finally:
        await runtime.stop()


async def test_big_orders_are_split_into_messages_of_whole_lines_under_the_limit(
    limited: Limited, db: asyncpg.Connection
) -> None:
    client, cap = limited
    ids = await seed(db, "big", 600, items=BIG_ITEMS, total_minor=10**17)
    exported: list[str] = []
    sizes = []
    async for reply in client.ExportOrders(ndjson("big"), timeout=120):
        assert reply.ndjson.endswith(b"\n")
        sizes.append(len(reply.ndjson))
        exported.extend(orjson.loads(raw)["id"] for raw in reply.ndjson.splitlines())
    assert exported == [str(i) for i in ids]
    assert max(sizes) <= cap
    # Two fetched batches (500 + 100 orders) became many messages, most of them full.
    assert len(sizes) > 2
    assert len(sizes) <= 2 * sum(sizes) / cap + 2, sizes


async def test_an_unknown_export_format_is_invalid_argument(stub: OrdersServiceStub) -> None:
    request = pb.ExportOrdersRequest(customer_id="alice", format=99)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.ExportOrders(request):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in field_violations(caught.value)


async def test_an_ndjson_export_needs_a_customer(stub: OrdersServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.ExportOrders(ndjson("")):
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "customer_id" in field_violations(caught.value)
