"""CreateOrder idempotency: replays, concurrent duplicates, key reuse, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
import grpc
import pytest
from orders.repository import OrdersRepository
from orders.settings import OrdersSettings
from pydantic import ValidationError

from .support import create_request, error_reason, field_violations, line

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub


async def test_replay_returns_the_same_order_without_a_second_row(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    request = create_request(key="key-1")
    first = await stub.CreateOrder(request)
    replay = await stub.CreateOrder(request)
    assert first.created
    assert not replay.created
    assert replay.order == first.order
    assert await db.fetchval("SELECT count(*) FROM orders") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_twenty_concurrent_identical_calls_create_exactly_one_order(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    request = create_request(key="burst", items=[line("a", 2, 500), line("b", 1, 1)])
    replies = await asyncio.gather(*(stub.CreateOrder(request) for _ in range(20)))
    assert len({r.order.id for r in replies}) == 1
    assert sum(r.created for r in replies) == 1
    assert await db.fetchval("SELECT count(*) FROM orders") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_same_key_with_a_different_request_is_rejected(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    await stub.CreateOrder(create_request(key="key-2", items=[line(quantity=1)]))
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.CreateOrder(create_request(key="key-2", items=[line(quantity=2)]))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(failure.value) == "IDEMPOTENCY_KEY_REUSED"
    assert "idempotency_key" in field_violations(failure.value)
    assert await db.fetchval("SELECT count(*) FROM orders") == 1


async def test_concurrent_calls_with_one_key_and_different_bodies_create_one_order(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    requests = [create_request(key="race", items=[line(quantity=q)]) for q in range(1, 11)]
    outcomes = await asyncio.gather(
        *(stub.CreateOrder(r) for r in requests), return_exceptions=True
    )
    replies = [o for o in outcomes if not isinstance(o, BaseException)]
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(replies) == 1
    assert len(errors) == 9
    assert {error_reason(e) for e in errors} == {"IDEMPOTENCY_KEY_REUSED"}
    assert await db.fetchval("SELECT count(*) FROM orders") == 1


async def test_keys_are_scoped_per_customer(stub: OrdersServiceStub) -> None:
    alice = await stub.CreateOrder(create_request(customer="alice", key="shared"))
    bob = await stub.CreateOrder(create_request(customer="bob", key="shared"))
    assert alice.created
    assert bob.created
    assert alice.order.id != bob.order.id


async def test_keys_are_kept_at_least_24_hours(
    stub: OrdersServiceStub, db: asyncpg.Connection
) -> None:
    await stub.CreateOrder(create_request(key="kept"))
    kept_for = await db.fetchval("SELECT expires_at - created_at FROM idempotency_keys")
    assert kept_for >= timedelta(hours=24)


async def test_an_expired_key_starts_a_new_order_and_is_purged(
    stub: OrdersServiceStub, db: asyncpg.Connection, db_url: str
) -> None:
    request = create_request(key="old")
    first = await stub.CreateOrder(request)
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    second = await stub.CreateOrder(request)
    assert second.created
    assert second.order.id != first.order.id

    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        purged = await OrdersRepository(pool, acquire_timeout=2).purge_expired_keys()
    finally:
        await pool.close()
    assert purged == 1
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys") == 0


def test_settings_refuse_keeping_keys_for_less_than_24_hours() -> None:
    with pytest.raises(ValidationError, match="idempotency_ttl_hours"):
        OrdersSettings(idempotency_ttl_hours=23)
