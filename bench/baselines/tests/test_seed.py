"""bench/seed.py: the same arguments give the same rows in any database, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from servicekit.testing import postgres as pgtest

from bench.seed import create_database, order_counts, order_rows, sample_positions, seed_orders

NEEDED_BY = "the seed tests"


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    names = [f"bench_seed_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    yield pgtest.database_url(names[0]), pgtest.database_url(names[1])
    for name in names:
        asyncio.run(
            pgtest.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', needed_by=NEEDED_BY)
        )


async def _rows(url: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM orders ORDER BY customer_id, created_at, id")
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


def test_two_databases_seeded_alike_hold_the_same_rows(two_databases: tuple[str, str]) -> None:
    async def run() -> None:
        results = []
        for url in two_databases:
            assert await create_database(url) is True
            results.append(await seed_orders(url, orders=301, customers=3, prefix="s", sample=5))
        assert results[0].customers == results[1].customers
        assert [c.orders for c in results[0].customers] == [101, 100, 100]
        assert all(len(c.sample_ids) == 5 for c in results[0].customers)
        first, second = await _rows(two_databases[0]), await _rows(two_databases[1])
        assert len(first) == 301
        assert first == second

        again = await seed_orders(two_databases[0], orders=301, customers=3, prefix="s", sample=5)
        assert again.skipped
        assert again.customers == results[0].customers
        assert len(await _rows(two_databases[0])) == 301  # nothing written twice

        replaced = await seed_orders(
            two_databases[0], orders=301, customers=3, prefix="s", sample=5, replace=True
        )
        assert not replaced.skipped
        assert await _rows(two_databases[0]) == second

    asyncio.run(run())


def test_the_rows_are_spread_and_sampled_evenly() -> None:
    assert order_counts(10, 3) == [4, 3, 3]
    assert order_counts(0, 2) == [0, 0]
    assert sorted(sample_positions(10, 3)) == [0, 3, 6]
    assert sample_positions(2, 5) == {0, 1}
    rows = list(order_rows("c", 3, seed=7))
    assert rows == list(order_rows("c", 3, seed=7))
    assert rows != list(order_rows("c", 3, seed=8))
    assert [r[6] for r in rows] == sorted(r[6] for r in rows)  # oldest first
    assert all(r[6].microsecond % 1000 for r in rows)  # six fractional digits when printed
