"""A service's PostgreSQL plumbing with asyncpg: the pool, migrations, connections, ping.

Each service's thin `db` module declares its `Database`: the application name, the
migrations package and its own "database unavailable" error; everything else about
talking to PostgreSQL lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from servicekit.backoff import Backoff
from servicekit.migrations import migrate
from servicekit.pool_metrics import acquire_histogram
from servicekit.settings import DatabaseSettings
from servicekit.telemetry import background

log = logging.getLogger(__name__)

# What the repositories and migrations run SQL on: a plain or a pooled connection.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Errors that mean "cannot talk to PostgreSQL right now", as opposed to a bug or a
# constraint violation: the caller may try again later.
CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb through orjson: faster than the stdlib and returns ready-made objects.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
    )


async def _keep_session(conn: Connection) -> None:
    """Pool reset hook: nothing to undo beyond asyncpg's own rollback of an open transaction.

    asyncpg's default reset runs RESET ALL, UNLISTEN *, CLOSE ALL and an advisory unlock
    on every release: a second round trip per call. The services never change session
    state on pooled connections (migrations and their lock use a connection of their
    own), so that work would only add latency (architecture decision 21).
    """


@dataclass(frozen=True, slots=True)
class Database:
    """One service's database: what differs between services, and what is done with it."""

    application_name: str  # shown in pg_stat_activity
    migrations: str  # the package whose `migrations` folder holds the service's SQL
    unavailable: Callable[[str], Exception]  # the service's "database unavailable" error

    async def create_pool(self, settings: DatabaseSettings) -> asyncpg.Pool:
        """Open the process's one pool; raises a connectivity error when the DB is down."""
        pool = await asyncpg.create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            timeout=settings.db_connect_timeout_seconds,
            statement_cache_size=settings.db_statement_cache_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"application_name": self.application_name},
        )
        assert pool is not None  # create_pool only returns None for an un-awaited pool
        return pool

    async def apply_migrations(self, settings: DatabaseSettings) -> list[int]:
        """Run pending migrations on a connection of their own (it holds an advisory lock)."""
        conn = await asyncpg.connect(
            settings.database_url.get_secret_value(), timeout=settings.db_connect_timeout_seconds
        )
        try:
            return await migrate(conn, self.migrations)
        finally:
            await conn.close()

    async def open_pool(self, settings: DatabaseSettings) -> asyncpg.Pool:
        """Migrate (if `migrate_on_start`) and open the pool, retrying with jittered
        backoff until PostgreSQL answers."""
        backoff = Backoff()
        while True:
            try:
                with background():  # start-up SQL is not a trace worth keeping
                    if settings.migrate_on_start:
                        await self.apply_migrations(settings)
                    return await self.create_pool(settings)
            except CONNECTIVITY_ERRORS as exc:
                delay = backoff.next()
                log.warning(
                    "database not reachable, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in": round(delay, 2)},
                )
                await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def connection(self, pool: asyncpg.Pool, *, timeout: float) -> AsyncIterator[Connection]:
        """A pooled connection; connectivity problems surface as the service's error."""
        waited = acquire_histogram(pool)
        started = time.perf_counter()
        try:
            async with pool.acquire(timeout=timeout) as conn:
                if waited is not None:
                    waited.observe(time.perf_counter() - started)
                yield conn
        except CONNECTIVITY_ERRORS as exc:
            raise self.unavailable(type(exc).__name__) from exc
        except TimeoutError as exc:
            if waited is not None:
                waited.observe(time.perf_counter() - started)
            # pool.acquire's own timeout; a caller's deadline arrives as cancellation instead
            raise self.unavailable(f"no connection free within {timeout}s") from exc

    async def ping(self, pool: asyncpg.Pool, *, timeout: float) -> None:
        """Readiness check: one round trip on a pooled connection."""
        async with self.connection(pool, timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)
