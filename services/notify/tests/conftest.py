"""Fixtures for the notify integration tests.

They run against the machine's real PostgreSQL (ORDERMESH_TEST_PG_URL, default
127.0.0.1:5432, user postgres) and real RabbitMQ (ORDERMESH_TEST_AMQP_URL, default
guest@127.0.0.1:5672). Each test gets its own database, cloned from a template that was
migrated once per session, and its own RabbitMQ vhost (ordermesh.localbroker's
helpers around rabbitmqctl; deleted in the background afterwards), so queues and rows
never leak between tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from notify.server import NotifyRuntime
from notify.settings import NotifySettings
from ordermesh.localbroker import create_vhost, delete_vhost
from servicekit.testing import postgres as pgtest

NEEDED_BY = "the notify tests"  # who needs PostgreSQL, in the hint when it is down
# The machine's shared RabbitMQ node; vhosts are made with its rabbitmqctl.
AMQP_BASE = "amqp://guest:guest@127.0.0.1:5672"

# Deleting a vhost takes half a second; tests hand it to this thread and move on.
_cleanup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vhost-cleanup")
_vhost_deletions: list[Future[None]] = []


def _create_vhost(name: str) -> None:
    try:
        create_vhost(name)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        pytest.fail(
            f"the notify tests need RabbitMQ at {AMQP_BASE} and its rabbitmqctl to create a "
            f"vhost per test: {exc}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    with pgtest.template_database("notify", needed_by=NEEDED_BY) as name:
        yield name


@pytest.fixture
async def db_url(template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with pgtest.cloned_database(
        template_database, package="notify", needed_by=NEEDED_BY
    ) as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, to look behind the service."""
    async with pgtest.connected(db_url) as conn:
        yield conn


@pytest.fixture(scope="session", autouse=True)
def _reap_vhost_deletions() -> Iterator[None]:
    yield
    for deletion in _vhost_deletions:
        deletion.result(timeout=60)


@pytest.fixture
async def amqp_url() -> AsyncIterator[str]:
    """The URL of a RabbitMQ vhost of this test's own."""
    name = f"notify-test-{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(_create_vhost, name)
    yield f"{AMQP_BASE}/{name}"
    _vhost_deletions.append(_cleanup.submit(delete_vhost, name))


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    """A confirm channel on the test's vhost, for publishing and inspecting."""
    try:
        connection: AbstractConnection = await aio_pika.connect(amqp_url, timeout=5)
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        pytest.fail(f"the notify tests need RabbitMQ at {AMQP_BASE} ({exc})", pytrace=False)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    yield channel
    await connection.close()


def make_settings(db_url: str, amqp_url: str, **overrides: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": db_url,
        "amqp_url": amqp_url,
        "http_host": "127.0.0.1",
        "http_port": 0,
        "drain_seconds": 5.0,
        "db_pool_min_size": 1,
        "retry_delay_seconds": 0.2,
        **overrides,
    }
    return NotifySettings(**values)


RuntimeFactory = Callable[..., Awaitable[NotifyRuntime]]


@pytest.fixture
async def start_runtime(db_url: str, amqp_url: str) -> AsyncIterator[RuntimeFactory]:
    """Start notify in-process with test settings (overrides as keywords); stopped at the end."""
    started: list[NotifyRuntime] = []

    async def start(**overrides: Any) -> NotifyRuntime:
        runtime = NotifyRuntime(make_settings(db_url, amqp_url, **overrides))
        started.append(runtime)
        await runtime.start()
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()
