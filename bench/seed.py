"""Seed orders into an orders database with COPY: fast, deterministic, the same everywhere.

    .venv/bin/python bench/seed.py --database-url postgresql://postgres@127.0.0.1:55432/orders \
        --orders 1000000 --customers 1 --prefix bench --out seeded.json

The rows go into the orders service's own tables (the local stack's database, or one
made here with `--create`, which applies orders' migrations), so Ordermesh and the
baselines read the same schema. The same arguments always give the same rows (ids from a
seeded generator, fixed timestamps), so two databases seeded alike hold identical data
and a harness can give each implementation its own copy. Seeding what is already there
is skipped; `--replace` deletes those customers' orders first.

With `--notify-database-url` and `--notifications N`, every sampled order also gets N
notifications in notify's table, so a summary returns a real list and not an empty one.
The JSON printed (and written with `--out`) names each customer with sampled ids to drive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from servicekit.migrations import migrate

# What every seeded order holds: two line items, like a small real basket.
ITEMS: Final[tuple[dict[str, Any], ...]] = (
    {"sku": "sku-1", "quantity": 2, "unit_price_minor": 150},
    {"sku": "sku-2", "quantity": 1, "unit_price_minor": 990},
)
TOTAL_MINOR: Final = sum(int(i["quantity"]) * int(i["unit_price_minor"]) for i in ITEMS)
ITEMS_JSON: Final = json.dumps(list(ITEMS))
START: Final = datetime(2025, 1, 1, tzinfo=UTC)
ORDER_COLUMNS: Final = (
    "id",
    "customer_id",
    "status",
    "currency",
    "total_minor",
    "items",
    "created_at",
    "updated_at",
)
NOTIFICATION_COLUMNS: Final = (
    "event_id",
    "event_type",
    "order_id",
    "customer_id",
    "channel",
    "status",
    "payload",
    "occurred_at",
    "delivered_at",
)
OrderRow = tuple[uuid.UUID, str, str, str, int, str, datetime, datetime]


@dataclass(frozen=True, slots=True)
class SeededCustomer:
    customer_id: str
    orders: int
    sample_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SeedResult:
    customers: list[SeededCustomer]
    seconds: float
    skipped: bool  # the rows were there already


def customer_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


def order_rows(customer_id: str, count: int, *, seed: int = 0) -> Iterator[OrderRow]:
    """The customer's seeded orders, oldest first; the same on every call."""
    rng = random.Random(f"{seed}/{customer_id}")
    for n in range(count):
        order_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        # Microseconds never a multiple of 1000: timestamps print with six digits, as real
        # ones (clock_timestamp()) nearly always do, so payloads have the real length.
        created = START + timedelta(microseconds=n * 1000 + 123)
        yield (order_id, customer_id, "pending", "EUR", TOTAL_MINOR, ITEMS_JSON, created, created)


def order_counts(total: int, customers: int) -> list[int]:
    """`total` orders spread as evenly as they go over `customers`."""
    share, rest = divmod(total, customers)
    return [share + (1 if n < rest else 0) for n in range(customers)]


def sample_positions(count: int, wanted: int) -> set[int]:
    """Up to `wanted` positions spread evenly over `count` orders."""
    if count == 0 or wanted <= 0:
        return set()
    step = max(1, count // wanted)
    return set(range(0, count, step)[:wanted])


async def seed_orders(
    database_url: str,
    *,
    orders: int,
    customers: int = 1,
    prefix: str = "bench",
    seed: int = 0,
    sample: int = 100,
    replace: bool = False,
) -> SeedResult:
    """COPY `orders` orders for `customers` customers, unless they are there already."""
    names = customer_ids(prefix, customers)
    counts = order_counts(orders, customers)
    started = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        if replace:
            await delete_customers(conn, names)
        elif await _already_seeded(conn, names, counts, seed):
            seeded = [_sampled(n, c, seed, sample) for n, c in zip(names, counts, strict=True)]
            return SeedResult(seeded, time.perf_counter() - started, skipped=True)
        seeded = [SeededCustomer(name, count) for name, count in zip(names, counts, strict=True)]
        await conn.copy_records_to_table(
            "orders", records=_sampling(seeded, seed, sample), columns=ORDER_COLUMNS
        )
        await conn.execute("ANALYZE orders")
    finally:
        await conn.close()
    return SeedResult(seeded, time.perf_counter() - started, skipped=False)


async def seed_notifications(
    database_url: str, customers: Iterable[SeededCustomer], *, per_order: int, seed: int = 0
) -> int:
    """COPY `per_order` sent notifications for each sampled order; how many were written."""
    rng = random.Random(f"{seed}/notifications")
    records: list[tuple[Any, ...]] = []
    for customer in customers:
        for order_id in customer.sample_ids:
            for n in range(per_order):
                event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                at = START + timedelta(seconds=n, microseconds=456)
                payload = json.dumps({"event_id": str(event_id), "order_id": order_id})
                records.append(
                    (
                        event_id,
                        "order.created",
                        uuid.UUID(order_id),
                        customer.customer_id,
                        "log",
                        "sent",
                        payload,
                        at,
                        at,
                    )
                )
    conn = await asyncpg.connect(database_url)
    try:
        order_ids = [uuid.UUID(i) for c in customers for i in c.sample_ids]
        # Seeding again replaces the seeded history rather than doubling it.
        await conn.execute("DELETE FROM notifications WHERE order_id = ANY($1::uuid[])", order_ids)
        await conn.copy_records_to_table(
            "notifications", records=records, columns=NOTIFICATION_COLUMNS
        )
    finally:
        await conn.close()
    return len(records)


async def create_database(database_url: str, *, package: str = "orders") -> bool:
    """Create the URL's database if missing and apply `package`'s migrations; True if new."""
    base, name = database_url.rsplit("/", 1)
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, package)
    finally:
        await conn.close()
    return not exists


def _sampling(customers: list[SeededCustomer], seed: int, sample: int) -> Iterator[OrderRow]:
    """Every customer's rows, noting the sampled ids on the way (one pass over 1M rows)."""
    for customer in customers:
        positions = sample_positions(customer.orders, sample)
        for n, row in enumerate(order_rows(customer.customer_id, customer.orders, seed=seed)):
            if n in positions:
                customer.sample_ids.append(str(row[0]))
            yield row


def _sampled(customer_id: str, count: int, seed: int, sample: int) -> SeededCustomer:
    customer = SeededCustomer(customer_id, count)
    for _ in _sampling([customer], seed, sample):
        pass
    return customer


async def _already_seeded(
    conn: asyncpg.Connection, names: list[str], counts: list[int], seed: int
) -> bool:
    """True when the first seeded order exists (one COPY wrote all rows or none)."""
    for name, count in zip(names, counts, strict=True):
        if count:
            first = next(order_rows(name, 1, seed=seed))[0]
            found = await conn.fetchval("SELECT 1 FROM orders WHERE id = $1", first)
            return bool(found)
    return True


async def delete_customers(conn: asyncpg.Connection, names: list[str]) -> None:
    """Every order of these customers, and their idempotency keys."""
    async with conn.transaction():
        # Keys point at orders (a deferred foreign key): they go first.
        await conn.execute("DELETE FROM idempotency_keys WHERE customer_id = ANY($1)", names)
        await conn.execute("DELETE FROM orders WHERE customer_id = ANY($1)", names)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    if args.create:
        await create_database(args.database_url)
    result = await seed_orders(
        args.database_url,
        orders=args.orders,
        customers=args.customers,
        prefix=args.prefix,
        seed=args.seed,
        sample=args.sample,
        replace=args.replace,
    )
    notifications = 0
    if args.notify_database_url and args.notifications:
        notifications = await seed_notifications(
            args.notify_database_url,
            result.customers,
            per_order=args.notifications,
            seed=args.seed,
        )
    return {**asdict(result), "notifications": notifications, "seed": args.seed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="the orders database")
    parser.add_argument("--orders", type=int, required=True, help="orders in all")
    parser.add_argument("--customers", type=int, default=1, help="customers they belong to")
    parser.add_argument("--prefix", default="bench", help="customer ids are PREFIX-0, PREFIX-1…")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same rows")
    parser.add_argument("--sample", type=int, default=100, help="ids listed per customer")
    parser.add_argument("--replace", action="store_true", help="delete those customers first")
    parser.add_argument(
        "--create", action="store_true", help="create the database and apply orders' migrations"
    )
    parser.add_argument("--notify-database-url", help="notify's database, for --notifications")
    parser.add_argument("--notifications", type=int, default=0, help="per sampled order")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.orders < 0 or args.customers < 1:
        parser.error("--orders must be >= 0 and --customers >= 1")
    summary = json.dumps(asyncio.run(_main(args)), indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(summary + "\n")
    sys.stdout.write(summary + "\n")


if __name__ == "__main__":
    main()
