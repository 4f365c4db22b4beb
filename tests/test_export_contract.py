"""One JSON shape for an order, rendered in two places: the contract between them.

The gateway renders an order's public JSON from protobuf (gateway.convert.order_json,
for every read); orders renders the same lines itself for the NDJSON export
(orders.public_json, straight from the database row). These properties hold the two
byte-identical over generated orders: first the renderers alone, then the whole
orders side (SQL, casts, jsonb) against the real PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from contracts.currencies import ISO_4217
from contracts.limits import (
    MAX_CUSTOMER_ID_LENGTH,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE_MINOR,
)
from gateway.convert import order_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orders.convert import order_to_proto
from orders.db import DATABASE
from orders.domain import LineItem, Order, OrderStatus
from orders.public_json import ndjson_chunks
from orders.repository import ORDER_COLUMNS, OrdersRepository
from orders.settings import OrdersSettings
from pydantic import SecretStr
from servicekit.testing import postgres as pgtest

NEEDED_BY = "the export contract tests"

# Any text the limits allow: no control characters (contracts.limits), no lone
# surrogates (not encodable); non-ASCII, quotes and backslashes included.
TEXT = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
# protobuf's JSON writes 0, 3 or 6 fraction digits by the microseconds; all three kinds.
MICROSECONDS = st.one_of(
    st.just(0), st.integers(1, 999).map(lambda ms: ms * 1000), st.integers(0, 999_999)
)
# Years 1 to 9999 but their very first and last instants, which asyncpg takes for
# PostgreSQL's -infinity and infinity.
MOMENTS = st.builds(
    lambda moment, micro: moment.replace(microsecond=micro),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(UTC),
    ),
    MICROSECONDS,
)
ITEMS = st.builds(
    LineItem,
    sku=st.text(TEXT, min_size=1, max_size=MAX_SKU_LENGTH),
    quantity=st.integers(1, MAX_QUANTITY),
    unit_price_minor=st.integers(0, MAX_UNIT_PRICE_MINOR),
)
ORDERS = st.builds(
    Order,
    id=st.uuids(),
    customer_id=st.text(TEXT, min_size=1, max_size=MAX_CUSTOMER_ID_LENGTH),
    status=st.sampled_from(OrderStatus),
    currency=st.sampled_from(sorted(ISO_4217)),
    total_minor=st.integers(0, 2**63 - 1),
    items=st.lists(ITEMS, min_size=1, max_size=MAX_ITEMS).map(tuple),
    created_at=MOMENTS,
    updated_at=MOMENTS,
)


def gateway_line(order: Order) -> bytes:
    """What GET /v1/orders/{id} answers for the order, as an NDJSON line."""
    return orjson.dumps(order_json(order_to_proto(order))) + b"\n"


def jsonb_text(items: tuple[LineItem, ...], keys: list[str], ascii_only: bool) -> str:
    """The items as PostgreSQL might print jsonb: spaced, keys in any order."""
    return json.dumps([{k: asdict(i)[k] for k in keys} for i in items], ensure_ascii=ascii_only)


def export_row(order: Order, items_text: str) -> tuple[object, ...]:
    """The order as the export reads it (repository.EXPORT_ROW_COLUMNS)."""
    return (
        str(order.id),
        order.customer_id,
        order.status.value,
        order.currency,
        order.total_minor,
        items_text,
        rfc3339(order.created_at),
        rfc3339(order.updated_at),
    )


def rfc3339(moment: datetime) -> str:
    """The moment as the export's SQL formats it: UTC, always six fraction digits."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


KEY_ORDERS = st.permutations(["sku", "quantity", "unit_price_minor"])


@given(order=ORDERS, keys=KEY_ORDERS, ascii_only=st.booleans())
@settings(max_examples=500, deadline=None)
def test_an_ndjson_line_is_the_gateways_json_of_the_order(
    order: Order, keys: list[str], ascii_only: bool
) -> None:
    row = export_row(order, jsonb_text(order.items, keys, ascii_only))
    assert b"".join(ndjson_chunks([row], max_bytes=2**20)) == gateway_line(order)


@given(
    orders=st.lists(ORDERS, max_size=12),
    max_bytes=st.integers(1, 40_000),
)
@settings(max_examples=200, deadline=None)
def test_chunks_are_whole_lines_within_the_size(orders: list[Order], max_bytes: int) -> None:
    rows = [
        export_row(o, jsonb_text(o.items, ["sku", "quantity", "unit_price_minor"], False))
        for o in orders
    ]
    chunks = list(ndjson_chunks(rows, max_bytes=max_bytes))
    assert b"".join(chunks) == b"".join(gateway_line(o) for o in orders)
    for chunk in chunks:
        assert chunk.endswith(b"\n")
        assert len(chunk) <= max_bytes or chunk.count(b"\n") == 1  # a longer line alone
    if sum(map(len, chunks)) <= max_bytes:
        assert len(chunks) == min(len(orders), 1)


# Through the real database: what orders' NDJSON export sends for stored orders is what
# the gateway makes of the typed export of the same rows. (The typed rows go in through
# the pool's jsonb codec, which has no binary form for COPY.)
INSERT = f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"


@pytest.fixture(scope="module")
def template_database() -> Iterator[str]:
    with pgtest.template_database("orders", needed_by=NEEDED_BY) as name:
        yield name


@pytest.fixture
async def repository(
    template_database: str,
) -> AsyncIterator[tuple[OrdersRepository, asyncpg.Pool]]:
    async with pgtest.cloned_database(
        template_database, package="orders", needed_by=NEEDED_BY
    ) as url:
        pool = await DATABASE.create_pool(
            OrdersSettings(database_url=SecretStr(url), db_pool_min_size=1)
        )
        try:
            yield OrdersRepository(pool, acquire_timeout=5), pool
        finally:
            await pool.close()


@given(orders=st.lists(ORDERS, min_size=1, max_size=20))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_the_ndjson_export_of_stored_orders_is_the_gateways_json_of_them(
    repository: tuple[OrdersRepository, asyncpg.Pool], orders: list[Order]
) -> None:
    repo, pool = repository
    # The examples share the database, so each gets a customer (and ids) of its own.
    customer = orders[0].customer_id[:96] + uuid.uuid4().hex
    stored = sorted(
        (replace(o, id=uuid.uuid4(), customer_id=customer) for o in orders),
        key=lambda o: (o.created_at, o.id),
    )
    async with pool.acquire() as conn:
        await conn.executemany(
            INSERT,
            [
                (
                    o.id,
                    o.customer_id,
                    o.status.value,
                    o.currency,
                    o.total_minor,
                    [asdict(i) for i in o.items],
                    o.created_at,
                    o.updated_at,
                )
                for o in stored
            ],
        )
    typed = [o async for batch in repo.export(customer_id=customer, batch_size=7) for o in batch]
    assert typed == stored  # the database kept every field as generated
    rows = [
        r async for batch in repo.export_rows(customer_id=customer, batch_size=7) for r in batch
    ]
    ndjson = b"".join(ndjson_chunks(rows, max_bytes=2**20))
    assert ndjson == b"".join(gateway_line(o) for o in typed)
