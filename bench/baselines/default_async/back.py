"""The default-async baseline's back tier: JSON over HTTP in front of PostgreSQL, asyncpg.

    python -m bench.baselines.default_async.back --port 8093 \
        --database-url postgresql://postgres@127.0.0.1:55432/orders

FastAPI `async def` routes over `asyncpg.create_pool()` with its defaults, the recipe:
10 connections, asyncpg's own reset on every release (a round trip Ordermesh saves) and
jsonb as text (parsed here with orjson, as Ordermesh's codec would). The SQL is the
orders service's own (bench.baselines.queries); no outbox relay runs here, so the events
the creates write stay unpublished.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import orjson
from fastapi import FastAPI, Request
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

KEY_TTL: Final = timedelta(hours=24)
EXPORT_BATCH: Final = 500  # orders' export_batch_size


def build(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with asyncpg.create_pool(database_url) as pool:
            yield {"pool": pool}

    app = build_app(lifespan)

    @app.get("/orders/export")
    async def export_orders(request: Request, customer_id: str) -> StreamingResponse:
        return StreamingResponse(_export(_pool(request), customer_id), media_type=NDJSON)

    @app.get("/orders/{order_id}")
    async def get_order(request: Request, order_id: uuid.UUID, customer_id: str) -> Response:
        row = await _pool(request).fetchrow(queries.GET_ORDER, order_id, customer_id)
        return not_found() if row is None else json_response(order_json(row))

    @app.get("/orders")
    async def list_orders(
        request: Request, customer_id: str, limit: int, cursor: str | None = None
    ) -> Response:
        try:
            after = decode_cursor(cursor) if cursor else None
        except BadCursor:
            return bad_cursor()
        pool = _pool(request)
        if after is None:
            rows = await pool.fetch(queries.LIST_FIRST, customer_id, limit + 1)
        else:
            rows = await pool.fetch(queries.LIST_AFTER, customer_id, *after, limit + 1)
        return json_response(page_json(rows, limit))

    @app.post("/orders", status_code=201)
    async def create_order(request: Request, new: NewOrder) -> Response:
        order_id, digest, now = uuid.uuid4(), new.fingerprint(), datetime.now(UTC)
        items = [item.model_dump() for item in new.items]
        row = (order_id, new.customer_id, "pending", new.currency, new.total_minor, items, now, now)
        order = order_json(row)
        event_id, payload = created_event(order)
        async with _pool(request).acquire() as conn:
            written = await conn.fetchval(
                queries.CREATE,
                *(new.customer_id, new.idempotency_key, digest, order_id, KEY_TTL),
                *("pending", new.currency, new.total_minor, orjson.dumps(items).decode(), now),
                *(event_id, "order.created", orjson.dumps(payload).decode(), "{}"),
            )
            if written is None:
                existing = await conn.fetchrow(queries.REPLAY, new.customer_id, new.idempotency_key)
                assert existing is not None, "the key row was seen by the claim above"
                if bytes(existing[0]) != digest:
                    return key_reused()
                replayed = order_json(existing[1:])
                return json_response(replayed, status=201, headers={REPLAYED_HEADER: "true"})
        return json_response(order, status=201)

    return app


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.state.pool
    return pool


async def _export(pool: asyncpg.Pool, customer_id: str) -> AsyncIterator[bytes]:
    """Every order of the customer, oldest first, from one snapshot (a server-side cursor)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(queries.EXPORT, customer_id)
        while rows := await cursor.fetch(EXPORT_BATCH):
            yield ndjson(rows)


def main() -> None:
    serving.run_back(build, description=__doc__, port=8093)


if __name__ == "__main__":
    main()
