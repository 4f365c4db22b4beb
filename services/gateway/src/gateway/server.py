"""The gateway process: builds the middleware chain and the clients, starts and stops them.

Request path, outermost first: operational endpoints (/healthz, /readyz, /metrics)
are answered before anything else, so probes pass no matter the Host header, the
load or the credentials. Everything else goes through

    server span (trace) → trusted host → CORS (only if origins are configured)
    → admission (in-flight bound, a bounded queue, then 503) → body limit
    → authentication → per-subject rate limit → handler span
    → reads by id (gateway.read_route) → FastAPI

so the cheapest refusals come first and no handler work is done for a request that
will be refused. Readiness does not depend on orders or notify: with a downstream
down the gateway still answers (a fast 503 or a degraded summary), and taking every
gateway out of the load balancer would turn a partial outage into a total one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import httpx
from prometheus_client import CollectorRegistry
from servicekit.grpc_metrics import GrpcClientMetrics
from servicekit.health import Readiness
from servicekit.http_metrics import HttpServerMetrics, MeasureHttp
from servicekit.instrumentation import trace_http
from servicekit.lifecycle import EmbeddedHttpServer
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app
from starlette.middleware.cors import CORSMiddleware

from gateway.api import Downstreams, build_api
from gateway.auth import Authenticator
from gateway.jwks import JwksRefresher
from gateway.metrics import GatewayMetrics
from gateway.middleware import BodyLimit, LoadShedder, RateLimiter, TrustedHost
from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send
from gateway.middleware.authenticate import Authenticate, subject_key
from gateway.middleware.request_context import HandlerSpan, TraceIdHeader
from gateway.notify_client import NotifyClient
from gateway.orders_client import OrdersClient
from gateway.read_route import ReadRoute
from gateway.resilience import CircuitBreaker, Coalescer, State
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

OPS_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


class GatewayRuntime:
    """Everything one gateway process owns."""

    def __init__(
        self, settings: GatewaySettings, *, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or new_registry()
        self.metrics = GatewayMetrics(self.registry)
        self.readiness = Readiness()
        # Client spans and metrics are made around each call (OrdersClient), not by
        # interceptors: grpc.aio's intercepted path costs a call object and a task more.
        self.orders = OrdersClient(
            settings.orders_target,
            breaker=self._breaker("orders"),
            metrics=GrpcClientMetrics(self.registry) if settings.request_metrics else None,
            read_calls_in_flight=settings.read_calls_in_flight,
            write_calls_in_flight=settings.write_calls_in_flight,
            read_batch_max=settings.read_batch_max,
            observe_reads_per_call=self.metrics.reads_per_call.observe
            if settings.request_metrics
            else lambda reads: None,
        )
        writes = self.orders.writes
        self.metrics.writes_waiting.set_function(lambda: writes.waiting)
        self.notify = NotifyClient(
            settings.notify_url,
            breaker=self._breaker("notify"),
            observe=self.metrics.observe_notify_call,
        )
        self.authenticator = Authenticator(settings)
        self._jwks: JwksRefresher | None = None
        self._jwks_client: httpx.AsyncClient | None = None
        self._background: list[asyncio.Task[None]] = []
        downstreams = Downstreams(self.orders, self.notify, self.metrics, Coalescer())
        self.api = build_api(settings, downstreams)
        # What the middleware chain ends in: the direct read route in front of FastAPI.
        self.routes: ASGIApp = (
            ReadRoute(self.api, downstreams, budget_seconds=settings.request_budget_seconds)
            if settings.direct_reads
            else self.api
        )
        self.app = build_app(
            settings,
            api=self.routes,
            ops=build_ops_app(readiness=self.readiness, registry=self.registry),
            metrics=self.metrics,
            http_metrics=HttpServerMetrics(self.registry),
            authenticator=self.authenticator,
        )
        self._http = EmbeddedHttpServer(
            self.app,
            host=settings.http_host,
            port=settings.http_port,
            timeout_graceful_shutdown=settings.drain_seconds,
        )
        self._stopped = False

    @property
    def http_port(self) -> int:
        return self._http.port

    async def start(self) -> None:
        await self._http.start()
        if self.settings.jwt_jwks_url is not None:
            self._jwks_client = httpx.AsyncClient(trust_env=False)
            self._jwks = JwksRefresher(
                self.settings.jwt_jwks_url,
                self.authenticator,
                refresh_seconds=self.settings.jwt_jwks_refresh_seconds,
                min_refetch_seconds=self.settings.jwt_jwks_refetch_seconds,
                client=self._jwks_client,
            )
            self.readiness.add_check("jwks", self._jwks.check)
            self._background.append(asyncio.create_task(self._jwks.run()))
        self.readiness.mark_started()
        log.info(
            "gateway started",
            extra={
                "http_port": self._http.port,
                "orders": self.settings.orders_target,
                "notify": self.settings.notify_url,
            },
        )

    async def stop(self) -> None:
        """Stop taking traffic, let requests in flight finish, close the clients."""
        if self._stopped:
            return
        self._stopped = True
        self.readiness.start_draining()
        await self._http.stop(timeout=self.settings.drain_seconds + 1)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._jwks_client is not None:
            await self._jwks_client.aclose()
        await self.orders.close(grace=1.0)
        await self.notify.aclose()
        log.info("gateway stopped")

    def _breaker(self, downstream: str) -> CircuitBreaker:
        gauge = self.metrics.circuit_state.labels(downstream=downstream)

        def changed(state: State) -> None:
            gauge.set(state.value)
            log.warning("circuit changed", extra={"downstream": downstream, "state": state.name})

        return CircuitBreaker(
            downstream,
            failures=self.settings.breaker_failures,
            reset_seconds=self.settings.breaker_reset_seconds,
            on_change=changed,
        )


def build_app(
    settings: GatewaySettings,
    *,
    api: ASGIApp,
    ops: ASGIApp,
    metrics: GatewayMetrics,
    http_metrics: HttpServerMetrics,
    authenticator: Authenticator,
) -> ASGIApp:
    """The whole ASGI app: ops endpoints first, then the protective chain around `api`."""
    chain: ASGIApp = RateLimiter(
        HandlerSpan(api),
        rate_per_second=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        key=subject_key,
        on_limited=metrics.rate_limited.inc,
    )
    chain = Authenticate(chain, authenticator=authenticator)
    chain = BodyLimit(chain, max_bytes=settings.max_body_bytes)
    shedder = LoadShedder(
        chain,
        max_in_flight=settings.max_in_flight,
        max_queued=settings.max_queued,
        max_queue_seconds=settings.max_queue_seconds,
        on_shed=metrics.shed.inc,
    )
    metrics.queued.set_function(lambda: shedder.queued)
    chain = shedder
    if settings.cors_origins:
        chain = CORSMiddleware(
            chain,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "X-Trace-Id", "Idempotent-Replayed"],
            max_age=600,
        )
    chain = TrustedHost(chain, allowed_hosts=settings.allowed_hosts)
    chain = trace_http(TraceIdHeader(chain))
    if settings.request_metrics:
        chain = MeasureHttp(chain, http_metrics)  # outermost: refusals are measured too

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPS_PATHS:
            await ops(scope, receive, send)
        else:
            await chain(scope, receive, send)

    return app
