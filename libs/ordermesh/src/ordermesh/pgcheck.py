"""PostgreSQL helpers of the local stack: does a URL answer, create a database, hide passwords."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

CONNECT_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def database_problem(url: str, *, within: float = 5.0) -> str | None:
    """None when `url` accepts a connection and a query, else what went wrong."""
    try:
        conn = await asyncpg.connect(url, timeout=within)
    except CONNECT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        await conn.fetchval("SELECT 1", timeout=within)
    except CONNECT_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await conn.close(timeout=within)
    return None


async def ensure_database(admin_url: str, name: str, *, within: float = 10.0) -> bool:
    """Create database `name` on the server of `admin_url` unless it exists; True if created."""
    conn = await asyncpg.connect(admin_url, timeout=within)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}", timeout=within)
        except asyncpg.DuplicateDatabaseError:
            return False  # created concurrently by someone else: just as good
        return True
    finally:
        await conn.close(timeout=within)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def redact(url: str) -> str:
    """`url` with its password replaced by `***`, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
