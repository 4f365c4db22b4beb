"""The orders process: builds every part from settings, starts and stops them in order.

Start: the HTTP side port first (liveness answers at once, readiness says "starting"),
then the database (retried with backoff until it answers), migrations, the gRPC
server and the outbox relay. Stop: readiness and gRPC health go NOT_SERVING, in-flight
RPCs and the relay's batch in flight get the drain time, then background tasks, the
pool and the side port close. Readiness never depends on the broker: orders are
accepted while RabbitMQ is down and published once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from contracts.orders.v1 import orders_pb2, orders_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry
from servicekit.failpoints import Failpoints
from servicekit.grpc_metrics import GrpcServerMetrics
from servicekit.health import Readiness
from servicekit.instrumentation import grpc_server_interceptors
from servicekit.lifecycle import EmbeddedHttpServer
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app
from servicekit.pool_metrics import PoolMetrics
from servicekit.telemetry import background

from orders.db import DATABASE
from orders.metrics import OrdersMetrics
from orders.relay import OutboxRelay
from orders.repository import OrdersRepository
from orders.service import OrdersService
from orders.servicer import OrdersServicer
from orders.settings import OrdersSettings

log = logging.getLogger(__name__)

SERVICE_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrdersService"].full_name
HEALTH_POLL_SECONDS = 1.0
KEY_PURGE_SECONDS = 600.0


class OrdersRuntime:
    """Everything one orders process owns."""

    def __init__(self, settings: OrdersSettings, *, registry: CollectorRegistry | None = None):
        self.settings = settings
        self.registry = registry or new_registry()
        self.metrics = OrdersMetrics(self.registry)
        self.failpoints = Failpoints(settings.failpoints)
        self.readiness = Readiness()
        self._pool_metrics = PoolMetrics(self.registry)
        self.pool: asyncpg.Pool | None = None
        self._ops = EmbeddedHttpServer(
            build_ops_app(readiness=self.readiness, registry=self.registry),
            host=settings.http_host,
            port=settings.http_port,
        )
        # grpc-stubs predates the asyncio health servicer
        self._health: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._grpc: grpc.aio.Server | None = None
        self._grpc_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._relay: OutboxRelay | None = None

    @property
    def grpc_port(self) -> int:
        return self._grpc_port

    @property
    def http_port(self) -> int:
        return self._ops.port

    async def start(self) -> None:
        await self._ops.start()
        self.pool = await DATABASE.open_pool(self.settings)
        self._pool_metrics.watch(self.pool, name="api")
        pool = self.pool
        self.readiness.add_check(
            "database",
            lambda: DATABASE.ping(pool, timeout=self.settings.db_acquire_timeout_seconds),
        )
        repository = OrdersRepository(
            pool,
            acquire_timeout=self.settings.db_acquire_timeout_seconds,
            failpoints=self.failpoints,
        )
        service = OrdersService(
            repository=repository,
            metrics=self.metrics,
            key_ttl=timedelta(hours=self.settings.idempotency_ttl_hours),
        )
        self._grpc = self._build_grpc_server(service)
        self._grpc_port = self._grpc.add_insecure_port(
            f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        )
        self.readiness.mark_started()
        await self._sync_health()  # health answers SERVING from the first call on
        await self._grpc.start()
        with background():  # health polls and key purges are not traced
            self._tasks = [
                asyncio.create_task(self._publish_health()),
                asyncio.create_task(self._purge_keys(repository)),
            ]
        if self.settings.relay_enabled:
            self._relay = OutboxRelay(
                self.settings, metrics=self.metrics, failpoints=self.failpoints
            )
            await self._relay.start()
        log.info(
            "orders started",
            extra={"grpc_port": self._grpc_port, "http_port": self._ops.port},
        )

    async def stop(self) -> None:
        """Drain and close everything that was started; safe after a partial start."""
        self.readiness.start_draining()
        await self._health.enter_graceful_shutdown()
        # The relay drains alongside the RPCs: what they commit meanwhile is published
        # by another replica or after the next start.
        await asyncio.gather(self._stop_grpc(), self._stop_relay())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pool is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pool.close(), timeout=5)
            self._pool_metrics.forget(self.pool)
        await self._ops.stop()
        log.info("orders stopped")

    async def _stop_grpc(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(grace=self.settings.drain_seconds)

    async def _stop_relay(self) -> None:
        if self._relay is not None:
            await self._relay.stop(timeout=self.settings.drain_seconds)

    def _build_grpc_server(self, service: OrdersService) -> grpc.aio.Server:
        s = self.settings
        server = grpc.aio.server(
            # Tracing outermost, so the metrics interceptor runs inside the server span.
            interceptors=[
                *grpc_server_interceptors(),
                *([GrpcServerMetrics(self.registry)] if s.request_metrics else []),
            ],
            maximum_concurrent_rpcs=s.max_concurrent_rpcs,
            options=[
                # Never share the port with another process by accident.
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", s.max_message_bytes),
                ("grpc.max_send_message_length", s.max_message_bytes),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                # Accept clients' keepalive pings down to every 10s, even when idle.
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.max_connection_age_ms", int(s.max_connection_age_seconds * 1000)),
                ("grpc.max_connection_age_grace_ms", int(s.drain_seconds * 1000)),
            ],
        )
        servicer = OrdersServicer(
            service=service,
            max_rpc_seconds=s.max_rpc_seconds,
            batch_size=s.export_batch_size,
            max_message_bytes=s.max_message_bytes,
        )
        orders_pb2_grpc.add_OrdersServiceServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        return server

    async def _publish_health(self) -> None:
        """Mirror readiness into gRPC health, so native gRPC probes see the database."""
        while True:
            await asyncio.sleep(HEALTH_POLL_SECONDS)
            await self._sync_health()

    async def _sync_health(self) -> None:
        report = await self.readiness.evaluate()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if report.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self._health.set(name, status)

    async def _purge_keys(self, repository: OrdersRepository) -> None:
        """Delete expired idempotency keys now and then; failures wait for the next round."""
        while True:
            try:
                while await repository.purge_expired_keys() > 0:
                    pass
            except Exception:
                log.warning("idempotency key purge failed", exc_info=True)
            await asyncio.sleep(KEY_PURGE_SECONDS)
