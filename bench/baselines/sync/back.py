"""The sync baseline's back tier: JSON over HTTP in front of PostgreSQL, psycopg 3 pooled.

    python -m bench.baselines.sync.back --port 8091 \
        --database-url postgresql://postgres@127.0.0.1:55432/orders

FastAPI `def` routes (run in its thread pool) over one psycopg_pool.ConnectionPool of
POOL_SIZE connections, opened before the first request. Connections are in autocommit,
as asyncpg's are: a read is one statement, a write one explicit transaction. The SQL is
the orders service's own (bench.baselines.queries); no outbox relay runs here, so the
events the creates write stay unpublished.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool
from starlette.responses import Response, StreamingResponse

from bench.baselines import queries, serving
from bench.baselines.contract import NDJSON, REPLAYED_HEADER, build_app, json_response, not_found
from bench.baselines.records import (
    BadCursor,
    NewOrder,
    bad_cursor,
    created_event,
    decode_cursor,
    key_reused,
    ndjson,
    order_json,
    page_json,
)

# Ordermesh's orders process holds at most 10 connections (servicekit's db_pool_max_size).
POOL_SIZE: Final = 10
KEY_TTL: Final = timedelta(hours=24)
EXPORT_BATCH: Final = 500  # orders' export_batch_size
SNAPSHOT: Final = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
GET_ORDER: Final = queries.pyformat(queries.GET_ORDER)
LIST_FIRST: Final = queries.pyformat(queries.LIST_FIRST)
LIST_AFTER: Final = queries.pyformat(queries.LIST_AFTER)
EXPORT: Final = queries.pyformat(queries.EXPORT)
CREATE: Final = queries.pyformat(queries.CREATE)
REPLAY: Final = queries.pyformat(queries.REPLAY)

# jsonb through orjson, as the orders service's asyncpg codec does.
set_json_dumps(orjson.dumps)
set_json_loads(orjson.loads)


def build(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        pool = ConnectionPool(
            database_url,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            open=False,
        )
        await asyncio.to_thread(pool.open, wait=True)
        try:
            yield {"pool": pool}
        finally:
            await asyncio.to_thread(pool.close)

    app = build_app(lifespan)

    @app.get("/orders/export")
    def export_orders(request: Request, customer_id: str) -> StreamingResponse:
        return StreamingResponse(_export(_pool(request), customer_id), media_type=NDJSON)

    @app.get("/orders/{order_id}")
    def get_order(request: Request, order_id: uuid.UUID, customer_id: str) -> Response:
        with _pool(request).connection() as conn:
            row = conn.execute(GET_ORDER, (order_id, customer_id)).fetchone()
        return not_found() if row is None else json_response(order_json(row))

    @app.get("/orders")
    def list_orders(
        request: Request, customer_id: str, limit: int, cursor: str | None = None
    ) -> Response:
        try:
            after = decode_cursor(cursor) if cursor else None
        except BadCursor:
            return bad_cursor()
        with _pool(request).connection() as conn:
            if after is None:
                rows = conn.execute(LIST_FIRST, (customer_id, limit + 1)).fetchall()
            else:
                rows = conn.execute(LIST_AFTER, (customer_id, *after, limit + 1)).fetchall()
        return json_response(page_json(rows, limit))

    @app.post("/orders", status_code=201)
    def create_order(request: Request, new: NewOrder) -> Response:
        order_id, digest, now = uuid.uuid4(), new.fingerprint(), datetime.now(UTC)
        items = [item.model_dump() for item in new.items]
        row = (order_id, new.customer_id, "pending", new.currency, new.total_minor, items, now, now)
        order = order_json(row)
        event_id, payload = created_event(order)
        with _pool(request).connection() as conn:
            written = conn.execute(
                CREATE,
                (
                    *(new.customer_id, new.idempotency_key, digest, order_id, KEY_TTL),
                    *("pending", new.currency, new.total_minor, Jsonb(items), now),
                    *(event_id, "order.created", Jsonb(payload), Jsonb({})),
                ),
            ).fetchone()
            if written is None:
                existing = conn.execute(REPLAY, (new.customer_id, new.idempotency_key)).fetchone()
                assert existing is not None, "the key row was seen by the claim above"
                if bytes(existing[0]) != digest:
                    return key_reused()
                replayed = order_json(existing[1:])
                return json_response(replayed, status=201, headers={REPLAYED_HEADER: "true"})
        return json_response(order, status=201)

    return app


def _pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.state.pool
    return pool


def _export(pool: ConnectionPool, customer_id: str) -> Iterator[bytes]:
    """Every order of the customer, oldest first, from one snapshot (a server-side cursor)."""
    with pool.connection() as conn, conn.transaction():
        conn.execute(SNAPSHOT)
        with conn.cursor(name="export") as cursor:
            cursor.execute(EXPORT, (customer_id,))
            while rows := cursor.fetchmany(EXPORT_BATCH):
                yield ndjson(rows)


def main() -> None:
    serving.run_back(build, description=__doc__, port=8091)


if __name__ == "__main__":
    main()
