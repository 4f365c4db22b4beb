"""Lean gRPC tracing: a server interceptor and a client span helper, W3C context in metadata.

Why not opentelemetry-instrumentation-grpc's aio interceptors: measured in-process with
16 calls in flight, they added about 200 µs per unary call on the client and 120 µs
on the server (the client one awaits the call's code and details inside the
interceptor chain); these add a few µs. The spans keep that instrumentation's shape:
named by the full method (`/ordermesh.orders.v1.OrdersService/GetOrder`), kinds CLIENT
and SERVER, `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, and
ERROR status for codes that are the server's fault. Health and reflection calls are
not traced: probes would bury real traffic.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Final

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from servicekit.grpc_handlers import WrappedHandlers, wrap_handler
from servicekit.telemetry import tracing_enabled

UNTRACED_SERVICES: Final = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
)
# Codes that mean the server failed; the others are the caller's (NOT_FOUND, ...).
SERVER_FAULTS: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
_TRACE_KEYS: Final = frozenset({"traceparent", "tracestate", "baggage"})
tracer = trace.get_tracer("servicekit.grpc")

Metadata = tuple[tuple[str, str], ...]


@contextlib.contextmanager
def client_span(full_method: str, links: Sequence[trace.SpanContext] = ()) -> Iterator[Metadata]:
    """A CLIENT span around one call to `full_method`; yields the metadata to send with it.

    The context is injected even for an unsampled span, so the server follows the
    caller's decision instead of making one of its own. `links`: the spans of other
    requests the call also serves (a batch). Without the SDK: nothing.
    """
    if not tracing_enabled():
        yield ()
        return
    with tracer.start_as_current_span(
        full_method,
        kind=SpanKind.CLIENT,
        links=[trace.Link(c) for c in links] or None,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if span.is_recording():
            span.set_attributes(_rpc_attributes(full_method))
        try:
            yield tuple(carrier.items())
        except grpc.aio.AioRpcError as error:
            _set_code(span, error.code())
            raise
        else:
            _set_code(span, grpc.StatusCode.OK)


class GrpcServerSpans(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """A SERVER span per unary or server-streaming RPC, continuing the caller's trace."""

    def __init__(self) -> None:
        self._handlers = WrappedHandlers(_traced)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._handlers.get(handler_call_details.method, handler)


def _traced(full_method: str, handler: Any) -> Any:
    if full_method.split("/")[1] in UNTRACED_SERVICES:
        return handler
    return wrap_handler(
        handler,
        unary=lambda behavior: _traced_unary(behavior, full_method),
        stream=lambda behavior: _traced_stream(behavior, full_method),
    )


def _traced_unary(behavior: Any, full_method: str) -> Any:
    async def traced(request: Any, servicer_context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with _server_span(full_method, servicer_context):
            return await behavior(request, servicer_context)

    return traced


def _traced_stream(behavior: Any, full_method: str) -> Any:
    async def traced(
        request: Any, servicer_context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        with _server_span(full_method, servicer_context):
            async for response in behavior(request, servicer_context):
                yield response

    return traced


@contextlib.contextmanager
def _server_span(
    full_method: str, servicer_context: grpc.aio.ServicerContext[Any, Any]
) -> Iterator[None]:
    carrier = {
        key: value
        for key, value in servicer_context.invocation_metadata() or ()
        if key in _TRACE_KEYS and isinstance(value, str)
    }
    parent = propagate.extract(carrier) if carrier else None
    span = tracer.start_span(full_method, context=parent, kind=SpanKind.SERVER)
    token = context.attach(trace.set_span_in_context(span, parent))
    try:
        if span.is_recording():
            span.set_attributes(_rpc_attributes(full_method))
        yield
    except BaseException as exc:
        if span.is_recording():
            span.record_exception(exc)
        raise
    finally:
        if span.is_recording():
            code = servicer_context.code()
            _set_code(span, code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK)
        span.end()
        context.detach(token)


def _rpc_attributes(full_method: str) -> dict[str, str]:
    _, service, method = full_method.split("/", 2)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def _set_code(span: trace.Span, code: grpc.StatusCode) -> None:
    if not span.is_recording():
        return
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in SERVER_FAULTS:
        span.set_status(Status(StatusCode.ERROR, code.name))
