"""The orders use cases: validate, then call the repository. No SQL, no gRPC here."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from orders import pagination, public_json
from orders.domain import (
    LineItem,
    Order,
    OrderStatus,
    parse_order_ref,
    validate_customer_id,
    validate_new_order,
)
from orders.errors import FieldViolation, OrderNotFound, OrdersError, ValidationFailed
from orders.metrics import OrdersMetrics
from orders.repository import OrdersRepository

# Reads per BatchGetOrders call: the gateway sends at most its GATEWAY_READ_BATCH_MAX.
MAX_BATCH_READS = 100


@dataclass(frozen=True, slots=True)
class Page:
    orders: list[Order]
    next_page_token: str


class OrdersService:
    def __init__(
        self, *, repository: OrdersRepository, metrics: OrdersMetrics, key_ttl: timedelta
    ) -> None:
        self._repository = repository
        self._metrics = metrics
        self._key_ttl = key_ttl

    async def create_order(
        self, *, customer_id: str, idempotency_key: str, currency: str, items: list[LineItem]
    ) -> tuple[Order, bool]:
        """Create an order, or replay the one created earlier with the same key."""
        new = validate_new_order(
            customer_id=customer_id, idempotency_key=idempotency_key, currency=currency, items=items
        )
        order, created = await self._repository.create(new=new, key_ttl=self._key_ttl)
        if created:
            self._metrics.orders_created.inc()
        else:
            self._metrics.idempotent_replays.inc()
        return order, created

    async def get_order(self, *, customer_id: str, order_id: str) -> Order:
        """One order of the customer."""
        return await self._repository.get(
            customer_id=customer_id, order_id=parse_order_ref(customer_id, order_id)
        )

    async def get_orders(self, reads: Sequence[tuple[str, str]]) -> list[Order | OrdersError]:
        """Many (customer id, order id) reads in one query: for each, in order, the order
        or the error `get_order` would have raised for it alone."""
        if not 1 <= len(reads) <= MAX_BATCH_READS:
            raise ValidationFailed(
                [FieldViolation("reads", f"holds {len(reads)}; send 1 to {MAX_BATCH_READS}")]
            )
        parsed: list[uuid.UUID | OrdersError] = []
        for customer_id, order_id in reads:
            try:
                parsed.append(parse_order_ref(customer_id, order_id))
            except OrdersError as exc:
                parsed.append(exc)
        found = await self._repository.get_many([p for p in parsed if isinstance(p, uuid.UUID)])
        results: list[Order | OrdersError] = []
        for (customer_id, _), wanted in zip(reads, parsed, strict=True):
            if isinstance(wanted, OrdersError):
                results.append(wanted)
            elif (order := found.get(wanted)) is not None and order.customer_id == customer_id:
                results.append(order)
            else:  # another customer's order is not found, as for get_order
                results.append(OrderNotFound(str(wanted)))
        return results

    async def list_orders(self, *, customer_id: str, page_size: int, page_token: str) -> Page:
        """A page of the customer's orders, newest first."""
        validate_customer_id(customer_id)
        limit = pagination.page_size(page_size)
        after = pagination.decode_token(page_token)
        # One row more than asked tells whether another page follows.
        rows = await self._repository.list_page(
            customer_id=customer_id, after=after, limit=limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        token = pagination.encode_token((page[-1].created_at, page[-1].id)) if more else ""
        return Page(orders=page, next_page_token=token)

    async def change_status(self, *, customer_id: str, order_id: str, target: OrderStatus) -> Order:
        """Confirm or cancel an order, following the allowed transitions."""
        order = await self._repository.transition(
            customer_id=customer_id, order_id=parse_order_ref(customer_id, order_id), target=target
        )
        self._metrics.status_changes.labels(status=order.status.value).inc()
        return order

    def export_orders(self, *, customer_id: str, batch_size: int) -> AsyncGenerator[list[Order]]:
        """All of the customer's orders, oldest first, in batches."""
        validate_customer_id(customer_id)
        return self._repository.export(customer_id=customer_id, batch_size=batch_size)

    def export_ndjson(
        self, *, customer_id: str, batch_size: int, max_chunk_bytes: int
    ) -> AsyncGenerator[bytes]:
        """All of the customer's orders, oldest first, as NDJSON in whole-line chunks."""
        validate_customer_id(customer_id)
        rows = self._repository.export_rows(customer_id=customer_id, batch_size=batch_size)
        return _ndjson(rows, max_chunk_bytes)


async def _ndjson(
    batches: AsyncGenerator[list[asyncpg.Record]], max_bytes: int
) -> AsyncGenerator[bytes]:
    async with contextlib.aclosing(batches):  # closing this closes the cursor at once
        async for rows in batches:
            for chunk in public_json.ndjson_chunks(rows, max_bytes=max_bytes):
                yield chunk
