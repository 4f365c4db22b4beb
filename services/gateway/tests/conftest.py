"""A gateway in this process in front of a scripted orders, for the tests that need one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from gateway.server import GatewayRuntime
from gateway.settings import GatewaySettings
from pydantic import SecretStr

from .fake_orders import FakeOrders, serve

SECRET = "a-test-secret-of-more-than-32-bytes-long"
Start = Callable[..., Awaitable[tuple[FakeOrders, httpx.AsyncClient, GatewayRuntime]]]


def token(subject: str = "alice") -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": subject, "iss": "t", "aud": "t", "iat": now, "exp": now + 600}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start a fake orders and a gateway in front of it (settings overridable)."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def run(
        fake: FakeOrders | None = None, **overrides: Any
    ) -> tuple[FakeOrders, httpx.AsyncClient, GatewayRuntime]:
        fake = fake or FakeOrders()
        server, port = await serve(fake)
        cleanups.append(lambda: server.stop(None))
        settings = GatewaySettings(
            environment="test",
            http_host="127.0.0.1",
            http_port=0,
            orders_target=f"127.0.0.1:{port}",
            notify_url="http://127.0.0.1:9",  # nothing there
            jwt_secret=SecretStr(SECRET),
            jwt_issuer="t",
            jwt_audience="t",
            rate_limit_per_second=10_000,
            rate_limit_burst=10_000,
            **overrides,
        )
        runtime = GatewayRuntime(settings)
        await runtime.start()
        cleanups.append(runtime.stop)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.http_port}", timeout=30)
        cleanups.append(client.aclose)
        return fake, client, runtime

    yield run
    for cleanup in reversed(cleanups):
        await cleanup()
