"""Give every request a trace context before anything else runs.

The trace id comes from the caller's W3C ``traceparent`` when it sends a valid one,
else a new one is made; the request gets its own span id. The context is attached for
the whole request, so logs, problem bodies (``trace_id``) and the calls to orders and
notify (``traceparent`` injected by the clients) all carry the same id, and the
response says it in ``x-trace-id``.

This uses the OpenTelemetry API only: without an SDK the span records nothing, but
the ids are real and propagate. When the SDK is installed (observability work) the
ASGI instrumentation takes over this job and this middleware steps aside.
"""

from __future__ import annotations

import random

from opentelemetry import context, propagate, trace

from gateway.middleware.asgi import ASGIApp, Message, Receive, Scope, Send

TRACE_ID_HEADER = b"x-trace-id"


class RequestContext:
    """Pure ASGI middleware attaching a trace context to each HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span_context = _span_context(scope)
        span = trace.NonRecordingSpan(span_context)
        token = context.attach(trace.set_span_in_context(span))
        trace_id = format(span_context.trace_id, "032x").encode()

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (TRACE_ID_HEADER, trace_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace_id)
        finally:
            context.detach(token)


def _span_context(scope: Scope) -> trace.SpanContext:
    carrier = {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope["headers"]
        if key in (b"traceparent", b"tracestate")
    }
    parent = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    if parent.is_valid:
        trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
    else:
        trace_id = random.getrandbits(128) or 1
        flags, state = trace.TraceFlags(trace.TraceFlags.SAMPLED), trace.TraceState()
    return trace.SpanContext(
        trace_id=trace_id,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=flags,
        trace_state=state,
    )
