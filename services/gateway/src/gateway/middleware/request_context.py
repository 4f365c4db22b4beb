"""The request's trace, as the caller and the handler see it.

The server span itself comes from the ASGI instrumentation (`servicekit.instrumentation
.trace_http`), which continues the caller's W3C ``traceparent`` or starts a trace. Here:
``TraceIdHeader`` tells the caller the trace id in ``x-trace-id`` (the same id is in
every problem body and log line), and ``HandlerSpan`` marks where the middleware chain
ends and the route handler's own work begins.
"""

from __future__ import annotations

from opentelemetry import trace
from servicekit.telemetry import span_if_recording

from gateway.middleware.asgi import ASGIApp, Message, Receive, Scope, Send

TRACE_ID_HEADER = b"x-trace-id"
tracer = trace.get_tracer("gateway")


class TraceIdHeader:
    """Pure ASGI middleware adding ``x-trace-id`` to every response with a trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span_context = trace.get_current_span().get_span_context()
        if scope["type"] != "http" or not span_context.is_valid:
            await self.app(scope, receive, send)
            return
        trace_id = format(span_context.trace_id, "032x").encode()

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (TRACE_ID_HEADER, trace_id)]
            await send(message)

        await self.app(scope, receive, send_with_trace_id)


class HandlerSpan:
    """Pure ASGI middleware: a `gateway.handler` span around the application (FastAPI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with span_if_recording(tracer, "gateway.handler"):
            await self.app(scope, receive, send)
