"""The OpenTelemetry instrumentations, wired the way every service uses them.

One place that says which hop is traced by what: HTTP servers and gRPC by our own
lean spans (servicekit.http_server_span and servicekit.grpc_tracing say why not the
maintained ASGI and gRPC instrumentations: they cost several times more per request),
httpx clients, asyncpg and aio-pika by the maintained instrumentations. Context crosses
every hop in W3C `traceparent` headers: HTTP headers, gRPC metadata, AMQP headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import grpc
import httpx
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from servicekit.asgi import ASGIApp
from servicekit.grpc_tracing import GrpcServerSpans
from servicekit.http_server_span import ServerSpan
from servicekit.telemetry import tracing_enabled

if TYPE_CHECKING:  # only the FastAPI services import fastapi
    from fastapi.telemetry import TelemetryConfig


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
    return ServerSpan(app) if tracing_enabled() else app


def grpc_server_interceptors() -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """A server span per RPC, continuing the caller's trace (none without the SDK).

    Client spans are made by `servicekit.grpc_tracing.client_span` around each call.
    """
    return [GrpcServerSpans()] if tracing_enabled() else []


def trace_httpx(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """`client` with a client span and an injected `traceparent` on every request."""
    if tracing_enabled():
        HTTPXClientInstrumentor.instrument_client(client)
    return client
