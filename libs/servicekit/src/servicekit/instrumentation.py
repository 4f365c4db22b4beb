"""The maintained OpenTelemetry instrumentations, wired the way every service uses them.

One place that says which hop is traced by what: HTTP servers by the ASGI
instrumentation (span named by route template), gRPC by its aio interceptors (health
and reflection calls left out: probes would bury real traffic), httpx clients by theirs,
and asyncpg and aio-pika by patching the libraries once per process. Context crosses
every hop in W3C `traceparent` headers: HTTP headers, gRPC metadata, AMQP headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import grpc
import httpx
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from servicekit.asgi import ASGIApp, Message, Receive, Scope, Send
from servicekit.http_metrics import UNROUTED, route_of
from servicekit.telemetry import tracing_enabled

UNTRACED_GRPC_SERVICES: Final = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
)


# FastAPI (0.165+) has telemetry of its own. Left on, it starts a second server span
# inside the app, a sibling of the one below that also covers the middleware chain,
# and it would export OTel metrics next to our Prometheus ones. One of each is enough.
FASTAPI_TELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}


def instrument_libraries() -> None:
    """Patch asyncpg (a span per query) and aio-pika (publish and consume) in this process."""
    for instrumentor in (AsyncPGInstrumentor(), AioPikaInstrumentor()):  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def trace_http(app: ASGIApp) -> ASGIApp:
    """`app` inside a server span per HTTP request, named `METHOD /route/{template}`.

    Without the SDK (OTEL_SDK_DISABLED, or a test building the app in-process) `app` is
    returned as it is: tracing that is off costs nothing per request.
    """
    if not tracing_enabled():
        return app
    # Per-message receive/send spans would double the span count and say nothing new.
    return OpenTelemetryMiddleware(_NameSpanByRoute(app), exclude_spans=["receive", "send"])


class _NameSpanByRoute:
    """Renames the server span once routing has happened (the route is unknown before)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            await self.app(scope, receive, send)
            return

        async def send_and_name(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = route_of(scope)
                if route != UNROUTED:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, send_and_name)


def grpc_server_interceptors() -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """A server span per RPC, continuing the caller's trace (none without the SDK)."""
    if not tracing_enabled():
        return []
    interceptor = aio_server_interceptor(filter_=_untraced_services())  # type: ignore[no-untyped-call]
    return [cast("grpc.aio.ServerInterceptor[Any, Any]", interceptor)]


def grpc_client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """A client span per call, its context sent in the metadata (none without the SDK)."""
    if not tracing_enabled():
        return []
    interceptors = aio_client_interceptors(filter_=_untraced_services())  # type: ignore[no-untyped-call]
    return list(cast("Sequence[grpc.aio.ClientInterceptor]", interceptors))


def _untraced_services() -> Any:
    untraced = [filters.service_name(name) for name in UNTRACED_GRPC_SERVICES]
    return filters.negate(filters.any_of(*untraced))


def trace_httpx(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """`client` with a client span and an injected `traceparent` on every request."""
    if tracing_enabled():
        HTTPXClientInstrumentor.instrument_client(client)
    return client
