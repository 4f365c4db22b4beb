"""Fixtures for the orders integration tests.

They run against the machine's real PostgreSQL (ORDERMESH_TEST_PG_URL, default
127.0.0.1:5432, user postgres). Each test gets its own database, cloned from a
template that was migrated once per session, and a real grpc.aio server on an
ephemeral port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from contracts.orders.v1 import orders_pb2_grpc
from orders.server import OrdersRuntime
from orders.settings import OrdersSettings
from servicekit.testing import postgres as pgtest

# test_migrations.py takes these from here
from servicekit.testing.postgres import ADMIN_URL as ADMIN_URL
from servicekit.testing.postgres import database_url as database_url

if TYPE_CHECKING:
    from contracts.orders.v1.orders_pb2_grpc import OrdersServiceStub

NEEDED_BY = "the integration tests"  # who needs PostgreSQL, in the hint when it is down


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A database with every migration applied, cloned by each test."""
    with pgtest.template_database("orders", needed_by=NEEDED_BY) as name:
        yield name


@pytest.fixture
async def db_url(template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    async with pgtest.cloned_database(
        template_database, package="orders", needed_by=NEEDED_BY
    ) as url:
        yield url


def test_settings(url: str, **overrides: Any) -> OrdersSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": url,
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "http_host": "127.0.0.1",
        "http_port": 0,
        "drain_seconds": 1.0,
        "db_pool_min_size": 1,
        # The relay has tests of its own (test_relay.py); elsewhere it would only
        # publish into the shared broker.
        "relay_enabled": False,
        **overrides,
    }
    return OrdersSettings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[OrdersRuntime]:
    """A started orders service on ephemeral ports."""
    rt = OrdersRuntime(test_settings(db_url))
    await rt.start()
    yield rt
    await rt.stop()


@pytest.fixture
async def stub(runtime: OrdersRuntime) -> AsyncIterator[OrdersServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
        yield orders_pb2_grpc.OrdersServiceStub(channel)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, to look behind the API."""
    async with pgtest.connected(db_url) as conn:
        yield conn
