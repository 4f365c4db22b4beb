"""All SQL of the orders service. Each write is one transaction: an explicit one, or one
statement (a create).

Every state change writes the order row and its outbox event in one transaction, so
an event exists exactly when the change it reports was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from contracts.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    OrderSnapshot,
)
from opentelemetry import propagate, trace
from servicekit.failpoints import Failpoints

from orders.db import Connection, connection
from orders.domain import LineItem, NewOrder, Order, OrderStatus, check_transition
from orders.errors import IdempotencyKeyReused, OrderNotFound
from orders.settings import CREATE_BEFORE_COMMIT

tracer = trace.get_tracer("orders")

# The columns of an order row, in the order every query (and bulk COPY) uses.
ORDER_COLUMNS = (
    "id",
    "customer_id",
    "status",
    "currency",
    "total_minor",
    "items",
    "created_at",
    "updated_at",
)
_ORDER_COLUMNS = ", ".join(ORDER_COLUMNS)
# The same columns as the NDJSON export reads them (orders.public_json.ExportRow): the id
# and the items as text, which skips a UUID object and the jsonb codec per row, and the
# timestamps as RFC 3339 text with all six fraction digits, formatted by PostgreSQL while
# orders renders the batch before (decoding them as datetimes was half of orders' fetch).
_RFC3339 = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
EXPORT_ROW_COLUMNS = (
    "id::text, customer_id, status, currency, total_minor, items::text, "
    f"{_RFC3339.format('created_at')}, {_RFC3339.format('updated_at')}"
)
StatusEvent = type[OrderConfirmed] | type[OrderCancelled]
EventClass = type[OrderCreated] | StatusEvent
_EVENT_FOR_STATUS: dict[OrderStatus, StatusEvent] = {
    OrderStatus.CONFIRMED: OrderConfirmed,
    OrderStatus.CANCELLED: OrderCancelled,
}

# A create in one statement (one round trip, and its own transaction): claim the key
# (a concurrent duplicate waits on the first caller's key row until that commits, then
# finds it taken), write the order and its order.created event. The key's order_id
# references the order written after it: the constraint is deferred to the commit. A key
# that exists and has not expired claims nothing, so nothing is written and the
# statement returns no row; the caller replays the earlier order. Each placeholder
# appears once, in order, so the baselines' psycopg spelling is the same statement.
_CREATE = """
WITH claimed AS (
    INSERT INTO idempotency_keys
        (customer_id, idempotency_key, request_hash, order_id, expires_at)
    VALUES ($1, $2, $3, $4, now() + $5::interval)
    ON CONFLICT (customer_id, idempotency_key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id,
            created_at = now(), expires_at = EXCLUDED.expires_at
        WHERE idempotency_keys.expires_at <= now()
    RETURNING order_id, customer_id
), created AS (
    INSERT INTO orders (id, customer_id, status, currency, total_minor, items,
                        created_at, updated_at)
    SELECT order_id, customer_id, $6, $7, $8, $9, at, at
    FROM claimed, (SELECT $10::timestamptz AS at) AS clock
    RETURNING id
)
INSERT INTO outbox (event_id, event_type, aggregate_id, payload, headers)
SELECT $11, $12, id, $13, $14 FROM created
RETURNING aggregate_id
"""

# Cursor position for keyset pagination: (created_at, id) of the last row seen.
Position = tuple[datetime, uuid.UUID]


class OrdersRepository:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        acquire_timeout: float,
        failpoints: Failpoints | None = None,
    ) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._failpoints = failpoints or Failpoints()

    def _connection(self) -> Any:
        return connection(self._pool, timeout=self._acquire_timeout)

    async def create(self, *, new: NewOrder, key_ttl: timedelta) -> tuple[Order, bool]:
        """Insert the order unless its idempotency key exists; return (order, created)."""
        # One clock reading for created_at, updated_at and the event's occurred_at, taken
        # here so that the event can be built before the one statement that writes it.
        now = datetime.now(UTC)
        order = Order(
            id=uuid.uuid4(),
            customer_id=new.customer_id,
            status=OrderStatus.PENDING,
            currency=new.currency,
            total_minor=new.total_minor,
            items=new.items,
            created_at=now,
            updated_at=now,
        )
        event = _event(OrderCreated, order)
        async with self._connection() as conn, self._atomic(conn, CREATE_BEFORE_COMMIT):
            with _outbox_write(event) as headers:
                written = await conn.fetchval(
                    _CREATE,
                    new.customer_id,
                    new.idempotency_key,
                    new.fingerprint(),
                    order.id,
                    key_ttl,
                    order.status.value,
                    order.currency,
                    order.total_minor,
                    [asdict(item) for item in order.items],
                    now,
                    event.event_id,
                    event.event_type,
                    event.model_dump(mode="json"),
                    headers,
                )
            if written is None:  # the key exists: nothing was written
                return await _replay(conn, new), False
            return order, True

    @contextlib.asynccontextmanager
    async def _atomic(self, conn: Connection, failpoint: str) -> AsyncIterator[None]:
        """Nothing to add for one statement, which is its own transaction; with the crash
        test's `failpoint` enabled, an explicit one, and the crash before its commit."""
        if failpoint not in self._failpoints.enabled:
            yield
            return
        async with conn.transaction():
            yield
            self._failpoints.hit(failpoint)

    async def get(self, *, customer_id: str, order_id: uuid.UUID) -> Order:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1 AND customer_id = $2",
                order_id,
                customer_id,
            )
        if row is None:
            raise OrderNotFound(str(order_id))
        return _to_order(row)

    async def get_many(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Order]:
        """The orders among `order_ids` that exist, by id: one query for a batch of reads
        (the caller checks whose each is, as `get` does in its WHERE)."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ANY($1::uuid[])", order_ids
            )
        return {row["id"]: _to_order(row) for row in rows}

    async def list_page(
        self, *, customer_id: str, after: Position | None, limit: int
    ) -> list[Order]:
        """Up to `limit` orders, newest first, strictly after `after`."""
        async with self._connection() as conn:
            if after is None:
                rows = await conn.fetch(
                    f"""SELECT {_ORDER_COLUMNS} FROM orders WHERE customer_id = $1
                        ORDER BY created_at DESC, id DESC LIMIT $2""",
                    customer_id,
                    limit,
                )
            else:
                rows = await conn.fetch(
                    f"""SELECT {_ORDER_COLUMNS} FROM orders
                        WHERE customer_id = $1 AND (created_at, id) < ($2, $3)
                        ORDER BY created_at DESC, id DESC LIMIT $4""",
                    customer_id,
                    after[0],
                    after[1],
                    limit,
                )
        return [_to_order(row) for row in rows]

    async def transition(
        self, *, customer_id: str, order_id: uuid.UUID, target: OrderStatus
    ) -> Order:
        """Move the order to `target` (a no-op if it is there already)."""
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""SELECT {_ORDER_COLUMNS} FROM orders
                    WHERE id = $1 AND customer_id = $2 FOR UPDATE""",
                order_id,
                customer_id,
            )
            if row is None:
                raise OrderNotFound(str(order_id))
            order = _to_order(row)
            if not check_transition(order, target):
                return order
            row = await conn.fetchrow(
                # greatest(): a create's timestamps come from orders' clock, this one from
                # PostgreSQL's; skew between the two must not put an update before it.
                f"""UPDATE orders SET status = $2,
                                      updated_at = greatest(clock_timestamp(), updated_at)
                    WHERE id = $1 RETURNING {_ORDER_COLUMNS}""",
                order_id,
                target.value,
            )
            order = _to_order(row)
            await _write_event(conn, _EVENT_FOR_STATUS[target], order)
            return order

    async def export(self, *, customer_id: str, batch_size: int) -> AsyncGenerator[list[Order]]:
        """Every order of the customer, oldest first, in batches from one snapshot."""
        batches = self._export_batches(_ORDER_COLUMNS, customer_id, batch_size)
        async with contextlib.aclosing(batches):  # closing this closes the cursor at once
            async for rows in batches:
                yield [_to_order(row) for row in rows]

    def export_rows(
        self, *, customer_id: str, batch_size: int
    ) -> AsyncGenerator[list[asyncpg.Record]]:
        """As `export`, but raw EXPORT_ROW_COLUMNS rows, for orders.public_json."""
        return self._export_batches(EXPORT_ROW_COLUMNS, customer_id, batch_size)

    async def _export_batches(
        self, columns: str, customer_id: str, batch_size: int
    ) -> AsyncGenerator[list[asyncpg.Record]]:
        """The customer's rows, oldest first, from a read-only snapshot through a cursor;
        the connection goes back to the pool when the generator closes (the client left)."""
        async with (
            self._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            cursor = await conn.cursor(
                f"""SELECT {columns} FROM orders WHERE customer_id = $1
                    ORDER BY created_at, id""",
                customer_id,
            )
            # Read ahead: the next batch is asked for before this one is handed out, so
            # PostgreSQL produces it while the caller renders and sends this one.
            ahead = asyncio.ensure_future(cursor.fetch(batch_size))
            try:
                while rows := await ahead:
                    ahead = asyncio.ensure_future(cursor.fetch(batch_size))
                    await asyncio.sleep(0)  # the fetch goes out before the caller's work
                    yield rows
            finally:
                # The connection takes one query at a time: end the fetch in flight (a
                # cancelled one is cancelled on the server) before the transaction.
                ahead.cancel()
                await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # retrieved, so an abandoned fetch's error is not logged

    async def purge_expired_keys(self, *, batch_size: int = 1000) -> int:
        """Delete idempotency keys past their expiry; return how many went."""
        async with self._connection() as conn:
            status: str = await conn.execute(
                """DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
                       SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1))""",
                batch_size,
            )
        return int(status.rsplit(" ", 1)[1])


async def _replay(conn: Connection, new: NewOrder) -> Order:
    """The order an earlier call with the same key created, if the requests match."""
    existing = await conn.fetchrow(
        """SELECT k.request_hash, o.id, o.customer_id, o.status, o.currency, o.total_minor,
                  o.items, o.created_at, o.updated_at
           FROM idempotency_keys k JOIN orders o ON o.id = k.order_id
           WHERE k.customer_id = $1 AND k.idempotency_key = $2""",
        new.customer_id,
        new.idempotency_key,
    )
    assert existing is not None, "the key row was seen by the insert above"
    if bytes(existing["request_hash"]) != new.fingerprint():
        raise IdempotencyKeyReused()
    return _to_order(existing)


def _event(event_class: EventClass, order: Order) -> OrderEvent:
    return event_class(
        event_id=uuid.uuid4(),
        occurred_at=order.updated_at,
        order=OrderSnapshot.model_validate(asdict(order)),
    )


@contextlib.contextmanager
def _outbox_write(event: OrderEvent) -> Iterator[dict[str, str]]:
    """The span of the statement that writes `event` into the outbox, and the headers
    for its row: this span's trace context, so the relay's publish joins the trace."""
    with tracer.start_as_current_span(
        "orders.outbox.write", attributes={"ordermesh.event_type": event.event_type}
    ):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield headers


async def _write_event(
    conn: Connection,
    event_class: EventClass,
    order: Order,
) -> None:
    event = _event(event_class, order)
    with _outbox_write(event) as headers:
        await conn.execute(
            """INSERT INTO outbox (event_id, event_type, aggregate_id, payload, headers)
               VALUES ($1, $2, $3, $4, $5)""",
            event.event_id,
            event.event_type,
            order.id,
            event.model_dump(mode="json"),
            headers,
        )


def _to_order(row: asyncpg.Record) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        status=OrderStatus(row["status"]),
        currency=row["currency"],
        total_minor=row["total_minor"],
        items=tuple(LineItem(**item) for item in row["items"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
