"""ListOrders: keyset pagination on (created_at, id), newest first, per customer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg
from contracts.orders.v1 import orders_pb2 as pb

from .support import create_request

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub


async def _all_pages(stub: OrdersServiceStub, customer: str, size: int) -> list[list[str]]:
    pages, token = [], ""
    while True:
        reply = await stub.ListOrders(
            pb.ListOrdersRequest(customer_id=customer, page_size=size, page_token=token)
        )
        pages.append([o.id for o in reply.orders])
        token = reply.next_page_token
        if not token:
            return pages


async def test_pages_cover_every_order_once_newest_first(stub: OrdersServiceStub) -> None:
    created = [(await stub.CreateOrder(create_request())).order.id for _ in range(45)]
    await stub.CreateOrder(create_request(customer="bob"))
    pages = await _all_pages(stub, "alice", 20)
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [oid for page in pages for oid in page] == created[::-1]


async def test_exactly_one_full_page_has_no_next_token(stub: OrdersServiceStub) -> None:
    for _ in range(5):
        await stub.CreateOrder(create_request())
    assert [len(p) for p in await _all_pages(stub, "alice", 5)] == [5]


async def test_no_orders_is_one_empty_page(stub: OrdersServiceStub) -> None:
    assert await _all_pages(stub, "nobody", 10) == [[]]


async def test_default_page_size_is_20(stub: OrdersServiceStub) -> None:
    for _ in range(21):
        await stub.CreateOrder(create_request())
    reply = await stub.ListOrders(pb.ListOrdersRequest(customer_id="alice"))
    assert len(reply.orders) == 20
    assert reply.next_page_token


async def test_equal_timestamps_are_ordered_by_id_without_gaps(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    ids = sorted(uuid.uuid4() for _ in range(7))
    await db.executemany(
        """INSERT INTO orders (id, customer_id, status, currency, total_minor, items,
                               created_at, updated_at)
           VALUES ($1, 'alice', 'pending', 'EUR', 0, '[]', $2, $2)""",
        [(i, moment) for i in ids],
    )
    pages = await _all_pages(stub, "alice", 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [oid for page in pages for oid in page] == [str(i) for i in reversed(ids)]


async def test_orders_created_between_pages_do_not_shift_later_pages(
    stub: OrdersServiceStub,
) -> None:
    older = [(await stub.CreateOrder(create_request())).order.id for _ in range(4)]
    first = await stub.ListOrders(pb.ListOrdersRequest(customer_id="alice", page_size=2))
    await stub.CreateOrder(create_request())  # newer than everything listed so far
    second = await stub.ListOrders(
        pb.ListOrdersRequest(customer_id="alice", page_size=2, page_token=first.next_page_token)
    )
    assert [o.id for o in first.orders] == older[:1:-1]
    assert [o.id for o in second.orders] == older[1::-1]
