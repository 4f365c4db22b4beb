"""The orders migrations through servicekit.migrations: once each, replica-safe, edits detected."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from servicekit.migrations import Migration, MigrationError, bundled_migrations, migrate

from .conftest import ADMIN_URL, database_url


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    name = f"orders_mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_concurrent_replicas_apply_each_migration_once(empty_db: str) -> None:
    conns = [await asyncpg.connect(empty_db) for _ in range(5)]
    try:
        applied = await asyncio.gather(*(migrate(c, "orders") for c in conns))
    finally:
        for c in conns:
            await c.close()
    everything = [m.version for m in bundled_migrations("orders")]
    assert sorted(v for run in applied for v in run) == everything
    assert sum(1 for run in applied if run) == 1


async def test_rerun_applies_nothing(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        assert await migrate(conn, "orders") == [m.version for m in bundled_migrations("orders")]
        assert await migrate(conn, "orders") == []
    finally:
        await conn.close()


async def test_an_edited_applied_migration_stops_start_up(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        await migrate(conn, "orders")
        edited = [
            Migration(m.version, m.name, m.sql + "\n-- edited")
            for m in bundled_migrations("orders")
        ]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, "orders", edited)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(empty_db: str) -> None:
    conn = await asyncpg.connect(empty_db)
    broken = [Migration(1, "broken", "CREATE TABLE a (x int); SELECT 1/0;")]
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(conn, "orders", broken)
        assert await conn.fetchval("SELECT to_regclass('a')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()
