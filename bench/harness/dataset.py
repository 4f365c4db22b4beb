"""The seeded data every implementation reads, and the files wrk rotates through.

One orders database per implementation (Ordermesh's own, `bench_sync`,
`bench_default_async`; the same PostgreSQL server), all seeded by bench/seed.py with the
same arguments, so the rows are identical byte for byte. They are apart because
Ordermesh's outbox relay would publish every order a baseline creates. Notifications go
into notify's database once: the sampled ids are the same everywhere.

Seeding comes in two steps so reads can be measured at two table sizes: first the
readers' orders (`Data.small_orders`, the ids and cursors wrk drives), then the export
customer's and bulk customers' orders up to `Data.total_orders`; `shrink` takes the
table back to the readers' orders, so the two sizes can be measured in turn.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncpg
from ordermesh.token import mint_dev_token

from bench.baselines.records import encode_cursor
from bench.harness.plan import Data
from bench.seed import (
    SeededCustomer,
    create_database,
    customer_ids,
    delete_customers,
    order_counts,
    order_rows,
    seed_notifications,
    seed_orders,
)

READERS: Final = "bench"
EXPORTER: Final = "export"
BULK: Final = "bulk"
CREATORS: Final = "creator"
EXPORT_CUSTOMER: Final = f"{EXPORTER}-0"
TOKEN_SECONDS: Final = 12 * 3600  # outlives the longest run


@dataclass(frozen=True)
class Dataset:
    reads: Path  # "<token> <order id>" lines
    pages: Path  # "<token> <cursor>" lines: each cursor's page is a full page
    creators: Path  # a token a line
    read_pairs: int
    page_pairs: int
    export_customer: str
    export_token: str
    export_rows: int


def token(subject: str) -> str:
    """The gateway's development HS256 token; the baselines check the same claims."""
    return mint_dev_token(subject=subject, ttl_seconds=TOKEN_SECONDS, environ=os.environ)


async def create_databases(server: str, names: Iterable[str]) -> dict[str, str]:
    """Each database (with orders' migrations) on `server` (a URL without a database)."""
    urls = {name: f"{server}/{name}" for name in names}
    for url in urls.values():
        await create_database(url)
    return urls


async def seed_readers(
    orders_dbs: Iterable[str], notify_db: str, data: Data, files: Path
) -> tuple[Dataset, dict[str, float]]:
    """Every database gets the readers' orders; notify gets their notifications."""
    seconds: dict[str, float] = {}
    customers: list[SeededCustomer] = []
    per_customer = max(order_counts(data.small_orders, data.readers))
    for url in orders_dbs:
        result = await seed_orders(
            url,
            orders=data.small_orders,
            customers=data.readers,
            prefix=READERS,
            sample=per_customer,
        )
        await _settle(url)  # as after the rest: the small table is read in the same state
        seconds[_database(url)] = result.seconds
        customers = result.customers
    started = time.perf_counter()
    await seed_notifications(notify_db, customers, per_order=data.notifications)
    seconds["notify"] = time.perf_counter() - started
    return _write_files(customers, data, files), seconds


async def seed_rest(orders_dbs: Iterable[str], data: Data) -> dict[str, float]:
    """The export customer's orders and the bulk, up to the full table, settled."""
    seconds: dict[str, float] = {}
    for url in orders_dbs:
        started = time.perf_counter()
        await seed_orders(url, orders=data.export_rows, customers=1, prefix=EXPORTER, sample=0)
        if data.bulk_orders:
            await seed_orders(
                url, orders=data.bulk_orders, customers=data.bulk_customers, prefix=BULK, sample=0
            )
        await _settle(url)
        seconds[_database(url)] = time.perf_counter() - started
    return seconds


async def shrink(orders_dbs: Iterable[str], data: Data) -> dict[str, float]:
    """Back to the readers' orders alone: the rest deleted, the table and its indexes
    rewritten at that size (VACUUM FULL), settled; seed_rest fills it again."""
    seconds: dict[str, float] = {}
    rest = customer_ids(EXPORTER, 1) + customer_ids(BULK, data.bulk_customers)
    for url in orders_dbs:
        started = time.perf_counter()
        conn = await asyncpg.connect(url)
        try:
            await delete_customers(conn, rest)
            await conn.execute("VACUUM FULL orders")
        finally:
            await conn.close()
        await _settle(url)
        seconds[_database(url)] = time.perf_counter() - started
    return seconds


async def _settle(url: str) -> None:
    """VACUUM (visibility map, hint bits, statistics), then CHECKPOINT: without it the
    seeding's dirty pages are written out during the next reads, on the core they use."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE) orders")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def count_orders(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


def _write_files(customers: list[SeededCustomer], data: Data, folder: Path) -> Dataset:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = {c.customer_id: token(c.customer_id) for c in customers}
    reads = [(tokens[c.customer_id], i) for c in customers for i in c.sample_ids]
    pages = [(tokens[c.customer_id], cursor) for c in customers for cursor in _cursors(c, data)]
    # Shuffled once, the same every run: neighbours in the file are other customers.
    shuffle = random.Random(0).shuffle
    shuffle(reads)
    shuffle(pages)
    exporter = EXPORT_CUSTOMER
    dataset = Dataset(
        reads=folder / "reads.txt",
        pages=folder / "pages.txt",
        creators=folder / "creators.txt",
        read_pairs=len(reads),
        page_pairs=len(pages),
        export_customer=exporter,
        export_token=token(exporter),
        export_rows=data.export_rows,
    )
    dataset.reads.write_text("".join(f"{t} {v}\n" for t, v in reads))
    dataset.pages.write_text("".join(f"{t} {v}\n" for t, v in pages))
    creators = [token(f"{CREATORS}-{n}") for n in range(data.creators)]
    dataset.creators.write_text("".join(f"{t}\n" for t in creators))
    return dataset


def _cursors(customer: SeededCustomer, data: Data) -> list[str]:
    """Cursors after which `page_limit` older orders remain: every page is a full one."""
    rows = list(order_rows(customer.customer_id, customer.orders))
    return [
        encode_cursor((row[6], row[0]))
        for position, row in enumerate(rows)
        if position >= data.page_limit
    ]


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def describe(dataset: Dataset, data: Data) -> dict[str, Any]:
    return {
        "readers": data.readers,
        "reader_orders": data.small_orders,
        "export_customer": dataset.export_customer,
        "export_rows": data.export_rows,
        "total_orders": max(data.total_orders, data.small_orders + data.export_rows),
        "notifications_per_read_order": data.notifications,
        "read_pairs": dataset.read_pairs,
        "page_pairs": dataset.page_pairs,
        "page_limit": data.page_limit,
        "creators": data.creators,
    }
