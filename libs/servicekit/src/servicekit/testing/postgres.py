"""Per-test PostgreSQL databases for the services' integration tests.

They run against the machine's real PostgreSQL (ORDERMESH_TEST_PG_URL, default
127.0.0.1:5432, user postgres). A session migrates one template database; each test
clones it, which is much faster than migrating again, and drops its clone afterwards.
The fixtures stay in each service's conftest; these are the steps they take.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from servicekit.migrations import migrate

ADMIN_URL = os.environ.get("ORDERMESH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """The URL of database `name` on the test server."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def admin(sql: str, *, needed_by: str) -> None:
    """Run `sql` as the admin; fail the test with a hint when PostgreSQL is not running.

    `needed_by` names who needs it in that hint ("the notify tests").
    """
    try:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"{needed_by} need PostgreSQL at {ADMIN_URL} ({exc}); start it "
            "(pg_ctlcluster <version> main start) or set ORDERMESH_TEST_PG_URL",
            pytrace=False,
        )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def template_database(package: str, *, needed_by: str) -> Iterator[str]:
    """A database with every migration of `package` applied, for tests to clone.

    Synchronous (each step runs its own event loop), for a session-scoped fixture.
    """
    name = f"{package}_tpl_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        await admin(f'CREATE DATABASE "{name}"', needed_by=needed_by)
        conn = await asyncpg.connect(database_url(name))
        try:
            await migrate(conn, package)
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', needed_by=needed_by))


@contextlib.asynccontextmanager
async def cloned_database(template: str, *, package: str, needed_by: str) -> AsyncIterator[str]:
    """The URL of a fresh database cloned from `template`, dropped on exit."""
    name = f"{package}_test_{uuid.uuid4().hex[:12]}"
    await admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"', needed_by=needed_by)
    yield database_url(name)
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', needed_by=needed_by)


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to a test database, to look behind the service."""
    conn = await asyncpg.connect(url)
    yield conn
    await conn.close()
