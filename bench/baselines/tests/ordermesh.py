"""Ordermesh itself, in this process, as the reference the baselines are held to.

The real orders service (gRPC, its outbox relay off: no broker here), notify's real
HTTP API over its real database (without its queue consumer), and the real gateway in
front of both, all on one event loop in a background thread, so synchronous tests and
the baselines' processes can call them over HTTP like any client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from gateway.server import GatewayRuntime
from gateway.settings import GatewaySettings
from notify.api import build_api
from notify.db import DATABASE as NOTIFY_DATABASE
from notify.metrics import NotifyMetrics
from notify.repository import NotificationsRepository
from notify.senders import LogSender
from notify.service import NotificationsService
from notify.settings import NotifySettings
from orders.server import OrdersRuntime
from orders.settings import OrdersSettings
from pydantic import SecretStr
from servicekit.lifecycle import EmbeddedHttpServer
from servicekit.metrics import new_registry

T = TypeVar("T")
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Jwt:
    secret: str
    issuer: str
    audience: str

    def environment(self) -> dict[str, str]:
        """What the baselines' front tiers read (the gateway's own variable names)."""
        return {
            "GATEWAY_JWT_SECRET": self.secret,
            "GATEWAY_JWT_ISSUER": self.issuer,
            "GATEWAY_JWT_AUDIENCE": self.audience,
        }


class BackgroundLoop:
    """An event loop running in a daemon thread; `run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], *, seconds: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(seconds)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class Ordermesh:
    """orders + notify's API + gateway on `loop`; `url` is the gateway's public API."""

    def __init__(self, loop: BackgroundLoop, *, orders_db: str, notify_db: str, jwt: Jwt):
        self._loop = loop
        self._orders_db, self._notify_db, self._jwt = orders_db, notify_db, jwt
        self._orders: OrdersRuntime | None = None
        self._notify_pool: asyncpg.Pool | None = None
        self._notify: EmbeddedHttpServer | None = None
        self._gateway: GatewayRuntime | None = None
        self.url = self.notify_url = ""

    def start(self) -> None:
        self._loop.run(self._start())

    def stop(self) -> None:
        self._loop.run(self._stop())

    async def _start(self) -> None:
        self._orders = OrdersRuntime(
            OrdersSettings(
                environment="test",
                database_url=SecretStr(self._orders_db),
                grpc_host=LOCALHOST,
                grpc_port=0,
                http_host=LOCALHOST,
                http_port=0,
                relay_enabled=False,
                db_pool_min_size=1,
            )
        )
        await self._orders.start()
        notify_settings = NotifySettings(
            environment="test", database_url=SecretStr(self._notify_db), db_pool_min_size=1
        )
        self._notify_pool = pool = await NOTIFY_DATABASE.create_pool(notify_settings)
        service = NotificationsService(
            repository=NotificationsRepository(pool, acquire_timeout=2.0),
            sender=LogSender(),
            metrics=NotifyMetrics(new_registry(), senders=("log",)),
        )
        self._notify = EmbeddedHttpServer(build_api(service=service), host=LOCALHOST, port=0)
        await self._notify.start()
        self.notify_url = f"http://{LOCALHOST}:{self._notify.port}"
        self._gateway = GatewayRuntime(
            GatewaySettings(
                environment="test",
                http_host=LOCALHOST,
                http_port=0,
                orders_target=f"{LOCALHOST}:{self._orders.grpc_port}",
                notify_url=self.notify_url,
                jwt_secret=SecretStr(self._jwt.secret),
                jwt_issuer=self._jwt.issuer,
                jwt_audience=self._jwt.audience,
                rate_limit_per_second=100_000,
                rate_limit_burst=100_000,
                drain_seconds=0.5,
            )
        )
        await self._gateway.start()
        self.url = f"http://{LOCALHOST}:{self._gateway.http_port}"

    async def _stop(self) -> None:
        if self._gateway is not None:
            await self._gateway.stop()
        if self._notify is not None:
            await self._notify.stop()
        if self._notify_pool is not None:
            await self._notify_pool.close()
        if self._orders is not None:
            await self._orders.stop()
