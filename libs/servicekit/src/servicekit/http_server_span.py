"""A server span per HTTP request, as one lean pure ASGI middleware.

Why not opentelemetry-instrumentation-asgi: measured in-process, it costs about 44 µs
per request at 10% sampling, because it builds every attribute and records OTel
metrics before it knows whether the span is sampled; this costs about 7 µs. On the
gateway that difference alone was 6% of its requests/s (docs/observability.md). It
keeps what matters of that instrumentation: the caller's W3C context is continued,
the span is named `METHOD /route/{template}` once routing is done, and the stable HTTP
semantic-convention attributes are set, only on sampled spans.
"""

from __future__ import annotations

from typing import Final

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from servicekit.asgi import ASGIApp, Message, Receive, Scope, Send
from servicekit.http_metrics import UNROUTED, route_of

_TRACE_HEADERS: Final = frozenset({b"traceparent", b"tracestate", b"baggage"})
tracer = trace.get_tracer("servicekit.http")


class ServerSpan:
    """Pure ASGI middleware running each HTTP request inside a SERVER span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in _TRACE_HEADERS
        }
        parent = propagate.extract(carrier) if carrier else None
        span = tracer.start_span(scope["method"], context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            if span.is_recording():
                _describe_request(span, scope)
                await self.app(scope, receive, _noting_response(span, scope, send))
            else:
                await self.app(scope, receive, send)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            span.end()
            context.detach(token)


def _describe_request(span: trace.Span, scope: Scope) -> None:
    server = scope.get("server") or ("", 0)
    client = scope.get("client") or ("", 0)
    span.set_attributes(
        {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
            "server.address": str(server[0]),
            "server.port": int(server[1] or 0),
            "client.address": str(client[0]),
        }
    )
    for key, value in scope["headers"]:
        if key == b"user-agent":
            span.set_attribute("user_agent.original", value.decode("latin-1"))


def _noting_response(span: trace.Span, scope: Scope, send: Send) -> Send:
    async def send_and_note(message: Message) -> None:
        if message["type"] == "http.response.start":
            status: int = message["status"]
            route = route_of(scope)
            if route != UNROUTED:
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:  # a 4xx is the caller's error, not the server's
                span.set_status(Status(StatusCode.ERROR))
        await send(message)

    return send_and_note
