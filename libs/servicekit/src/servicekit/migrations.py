"""Versioned SQL migrations, applied in order under an advisory lock.

Each service ships its files as `<package>/migrations/NNNN_name.sql`. They are
applied once each in its own transaction and recorded with a checksum; an applied
file that was edited afterwards stops the service instead of leaving the schema in
an unknown state. Concurrent replicas serialise on the advisory lock, so only the
first applies anything. Run them on a connection of their own, not a pooled one: the
lock is held by the session.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SqlConnection(Protocol):
    """What migrations need of a connection (asyncpg's Connection has it)."""

    async def execute(self, query: str, *args: Any) -> str: ...
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    def transaction(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def bundled_migrations(package: str) -> list[Migration]:
    """The migrations shipped in `package`'s migrations folder, in version order."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions: {versions}")
    return found


def lock_id(package: str) -> int:
    """The advisory lock key of a package's migrations: the same in every replica."""
    return zlib.crc32(f"ordermesh-migrations:{package}".encode())


async def migrate(
    conn: SqlConnection, package: str, migrations: list[Migration] | None = None
) -> list[int]:
    """Apply pending migrations on an asyncpg connection; return the versions applied."""
    todo = bundled_migrations(package) if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", lock_id(package))
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done = []
        for migration in todo:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version}_{migration.name} changed after it "
                        "was applied; add a new migration instead of editing an old one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration applied", extra={"version": migration.version})
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_id(package))
