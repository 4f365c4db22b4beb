"""The notify process: builds every part from settings, starts and stops them in order.

Start: the HTTP port first (liveness answers at once, readiness says "starting"), then
the database (retried with backoff until it answers) and its migrations, the sender,
and the subscription to the queue (retried likewise; it reconnects by itself later).
Stop: readiness goes false, the subscription cancels and settles every message it
already holds within the drain time, then the broker connection, the sender, the pool
and the HTTP port close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import CollectorRegistry
from servicekit.failpoints import Failpoints
from servicekit.health import Readiness
from servicekit.http_metrics import HttpServerMetrics, MeasureHttp
from servicekit.instrumentation import trace_http
from servicekit.lifecycle import EmbeddedHttpServer
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app
from servicekit.pool_metrics import PoolMetrics

from notify.api import HttpApp, build_api
from notify.consumer import EventConsumer
from notify.db import DATABASE
from notify.metrics import NotifyMetrics
from notify.repository import NotificationsRepository
from notify.senders import Sender, build_sender
from notify.service import NotificationsService
from notify.settings import NotifySettings
from notify.subscription import Subscription

log = logging.getLogger(__name__)


class NotifyRuntime:
    """Everything one notify process owns."""

    def __init__(self, settings: NotifySettings, *, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry or new_registry()
        self.metrics = NotifyMetrics(self.registry, senders=(settings.sender,))
        self.readiness = Readiness()
        self._pool_metrics = PoolMetrics(self.registry)
        self.pool: asyncpg.Pool | None = None
        self.sender: Sender | None = None
        self.subscription: Subscription | None = None
        self._stopped = False
        self._app = HttpApp(build_ops_app(readiness=self.readiness, registry=self.registry))
        self._http = EmbeddedHttpServer(self._app, host=settings.http_host, port=settings.http_port)

    @property
    def http_port(self) -> int:
        return self._http.port

    async def start(self) -> None:
        await self._http.start()
        self.pool = pool = await DATABASE.open_pool(self.settings)
        self._pool_metrics.watch(pool, name="api")
        timeout = self.settings.db_acquire_timeout_seconds
        self.readiness.add_check("database", lambda: DATABASE.ping(pool, timeout=timeout))
        self.sender = build_sender(self.settings)
        service = NotificationsService(
            repository=NotificationsRepository(
                pool, acquire_timeout=self.settings.db_acquire_timeout_seconds
            ),
            sender=self.sender,
            metrics=self.metrics,
        )
        api = trace_http(build_api(service=service))
        if self.settings.request_metrics:
            api = MeasureHttp(api, HttpServerMetrics(self.registry))
        self._app.api = api
        consumer = EventConsumer(
            service=service,
            metrics=self.metrics,
            failpoints=Failpoints(self.settings.failpoints),
            max_attempts=self.settings.max_attempts,
        )
        self.subscription = Subscription(settings=self.settings, consumer=consumer)
        self.readiness.add_check("broker", self.subscription.check)
        await self.subscription.start()
        self.readiness.mark_started()
        log.info("notify started", extra={"http_port": self._http.port})

    async def stop(self) -> None:
        """Drain and close everything that was started; safe after a partial start."""
        if self._stopped:
            return
        self._stopped = True
        self.readiness.start_draining()
        if self.subscription is not None:
            await self.subscription.stop(drain_seconds=self.settings.drain_seconds)
        if self.sender is not None:
            with contextlib.suppress(Exception):
                await self.sender.aclose()
        if self.pool is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pool.close(), timeout=5)
            self._pool_metrics.forget(self.pool)
        await self._http.stop()
        log.info("notify stopped")
