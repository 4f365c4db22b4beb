"""The databases of the local stack: a URL from the environment, or the embedded server.

A service's database comes from its URL variable (e.g. ORDERS_DATABASE_URL) when that
is set, used as is after checking that it answers; otherwise one embedded PostgreSQL
(data under the state directory) is started and the database created on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from ordermesh.localdb import LocalPostgres
from ordermesh.pgcheck import CONNECT_ERRORS, database_problem, ensure_database, redact
from ordermesh.probes import port_open
from ordermesh.progress import Progress, display_path
from ordermesh.stackspec import LOCALHOST, Database, ServiceSpec, StackError, StackOptions


class Databases:
    """Resolves each service's database URL; owns the embedded server if it starts one."""

    def __init__(self, options: StackOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress
        self.postgres: LocalPostgres | None = None
        self.urls: dict[str, str] = {}  # service name -> its database URL
        self._starting: asyncio.Future[None] | None = None

    async def prepare(self, specs: Sequence[ServiceSpec]) -> None:
        for spec in specs:
            if spec.database is not None:
                self.urls[spec.name] = await self._url_for(spec.name, spec.database)

    async def stop(self) -> None:
        """Stop the embedded server if this started one (its data stays)."""
        postgres, self.postgres = self.postgres, None
        if postgres is None:
            return
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting  # a start cut short by Ctrl-C still finishes first
            self._starting = None
        async with self.progress.step("Stopping PostgreSQL") as step:
            if await asyncio.to_thread(postgres.running):
                await asyncio.to_thread(postgres.stop)
            step.label = "Stopped PostgreSQL"
            step.detail = f"embedded, data kept in {display_path(postgres.data_dir)}"

    async def _url_for(self, service: str, database: Database) -> str:
        given = self.options.environ.get(database.url_env)
        if given:
            await self._check_given(service, database.url_env, given)
            return given
        postgres = self.postgres or await self._start_embedded()
        async with self.progress.step(f"Database {database.name}") as step:
            try:
                created = await ensure_database(postgres.url(), database.name)
            except CONNECT_ERRORS as exc:
                raise StackError(f"cannot create database {database.name}: {exc}") from exc
            step.detail = "created" if created else "exists"
        return postgres.url(database.name)

    async def _check_given(self, service: str, url_env: str, url: str) -> None:
        async with self.progress.step(f"PostgreSQL for {service}") as step:
            step.detail = f"{url_env}={redact(url)}"
            problem = await database_problem(url)
            if problem is not None:
                raise StackError(
                    f"{url_env} ({redact(url)}) does not answer: {problem}\n"
                    f"Start that server or create the database, fix {url_env}, or unset it "
                    "to use an embedded PostgreSQL."
                )

    async def _start_embedded(self) -> LocalPostgres:
        port = self.options.pg_port
        postgres = LocalPostgres(self.options.postgres_dir, port=port)
        self.postgres = postgres
        async with self.progress.step("PostgreSQL") as step:
            step.detail = f"embedded, {LOCALHOST}:{port}"
            if await asyncio.to_thread(postgres.running):
                # Left running by an `ordermesh up` that died: the state-dir lock rules out
                # a live one.
                await asyncio.to_thread(postgres.stop)
                step.detail += ", restarted a server left running"
            if await port_open(LOCALHOST, port):
                raise StackError(
                    f"port {port} (embedded PostgreSQL) is already in use: choose another "
                    "port with --pg-port, or set ORDERS_DATABASE_URL to use that server"
                )
            # Shielded: a Ctrl-C meanwhile must not leave a server that stop() misses.
            self._starting = asyncio.ensure_future(asyncio.to_thread(postgres.start))
            try:
                await asyncio.shield(self._starting)
            except RuntimeError as exc:
                raise StackError(str(exc)) from exc
            step.detail += f", data in {display_path(self.options.postgres_dir)}"
        return postgres
