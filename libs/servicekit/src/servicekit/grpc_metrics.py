"""RED metrics of gRPC servers (an interceptor) and clients (around each call).

Server: duration by method and status code, for unary and server-streaming RPCs (a
stream is timed until its last message). Client: duration by method and status code
of unary calls, retries included (the time the caller waited). Methods come from the
service's own descriptors, so the label set is closed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Histogram

from servicekit.grpc_handlers import WrappedHandlers, wrap_handler

T = TypeVar("T")

BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)


def _method_name(full: str) -> str:
    """`/ordermesh.orders.v1.OrdersService/GetOrder` → `GetOrder`; unknown shapes → `other`."""
    _, _, name = full.rpartition("/")
    return name or "other"


class GrpcServerMetrics(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "ordermesh_grpc_server_handling_seconds",
            "gRPC calls handled, by method and status code",
            ["method", "code"],
            buckets=BUCKETS,
            registry=registry,
        )
        self._handlers = WrappedHandlers(self._timed)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:  # no such method: gRPC answers UNIMPLEMENTED
            return None
        return self._handlers.get(handler_call_details.method, handler)

    def _timed(self, full_method: str, handler: Any) -> Any:
        method = _method_name(full_method)
        return wrap_handler(
            handler,
            unary=lambda behavior: self._unary(behavior, method),
            stream=lambda behavior: self._stream(behavior, method),
        )

    def _unary(self, behavior: Any, method: str) -> Any:
        async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            finally:
                self._observe(method, context, started)

        return timed

    def _stream(self, behavior: Any, method: str) -> Any:
        async def timed(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for response in behavior(request, context):
                    yield response
            finally:
                self._observe(method, context, started)

        return timed

    def _observe(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], started: float
    ) -> None:
        code = context.code()
        name = code.name if isinstance(code, grpc.StatusCode) else "OK"
        self.duration.labels(method, name).observe(time.perf_counter() - started)


class GrpcClientMetrics:
    """Duration of unary calls by method and status code, observed around the awaited
    call (retries included: the time the caller waited).

    Not a client interceptor: grpc.aio's intercepted path builds a second call object
    and a task per call, which measured about 50 µs of the gateway's CPU per request
    (a sixth of what the gRPC call itself costs it)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "ordermesh_grpc_client_duration_seconds",
            "gRPC unary calls made, by method and status code (retries included)",
            ["method", "code"],
            buckets=BUCKETS,
            registry=registry,
        )

    async def call(self, method: str, call: Awaitable[T]) -> T:
        """Await `call` (a call to `method`, e.g. `GetOrder`) and observe how it ended."""
        started = time.perf_counter()
        try:
            response = await call
        except grpc.aio.AioRpcError as error:
            self.duration.labels(method, error.code().name).observe(time.perf_counter() - started)
            raise
        self.duration.labels(method, "OK").observe(time.perf_counter() - started)
        return response
