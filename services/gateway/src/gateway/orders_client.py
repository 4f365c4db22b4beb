"""The gateway's client of orders: one grpc.aio channel per process, used by every request.

* Deadlines: each call gets what is left of the request's budget.
* Retries: declared in the channel's service config, so gRPC itself retries (with
  jittered exponential backoff and a token-bucket retry budget, `retryThrottling`)
  and only on UNAVAILABLE. Only idempotent methods have a policy: the reads, create
  (its Idempotency-Key makes a second try return the first result) and cancel (a
  repeated cancel is a no-op). The export stream is not retried: a half-read stream
  cannot be resumed.
* Keepalive pings find a dead connection before a request does; orders accepts them
  every 10 s (see its server options).
* A circuit breaker: after repeated failures calls fail fast for a while.
* Reads by id that queue up behind the calls in flight go as one BatchGetOrders
  (gateway.read_batcher).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Final, TypeVar

import grpc
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1 import orders_pb2_grpc
from opentelemetry import trace
from servicekit.grpc_metrics import GrpcClientMetrics
from servicekit.grpc_tracing import client_span

from gateway.convert import ndjson_lines
from gateway.grpc_errors import DOWNSTREAM_FAILURES, status_to_api_error, to_api_error
from gateway.problems import ApiError
from gateway.read_batcher import Read, ReadBatcher
from gateway.resilience import Budget, Bulkhead, CircuitBreaker

T = TypeVar("T")

SERVICE: Final = "ordermesh.orders.v1.OrdersService"
_RETRY_POLICY: Final = {
    "maxAttempts": 3,
    "initialBackoff": "0.05s",
    "maxBackoff": "0.5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_CONFIG: Final = {
    "methodConfig": [
        {
            "name": [
                {"service": SERVICE, "method": method}
                for method in (
                    "GetOrder",
                    "BatchGetOrders",
                    "ListOrders",
                    "CreateOrder",
                    "CancelOrder",
                )
            ],
            "retryPolicy": _RETRY_POLICY,
            "waitForReady": False,
        },
        {"name": [{"service": SERVICE, "method": "ExportOrders"}], "waitForReady": False},
    ],
    # At most 10 retry tokens; each success returns 0.1. Under an outage retries stop
    # at once instead of tripling the load on a struggling orders.
    "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
}
CHANNEL_OPTIONS: Final = (
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after orders restarts (the default backoff starts at 1 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


class OrdersClient:
    """Typed calls to orders; gRPC errors come out as gateway.problems.ApiError."""

    def __init__(
        self,
        target: str,
        *,
        breaker: CircuitBreaker,
        metrics: GrpcClientMetrics | None = None,
        read_calls_in_flight: int = 4,
        read_batch_max: int = 64,
        write_calls_in_flight: int = 64,
        observe_reads_per_call: Callable[[int], None] = lambda reads: None,
    ) -> None:
        self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = orders_pb2_grpc.OrdersServiceStub(self._channel)
        self.breaker = breaker
        self._metrics = metrics
        # Creates and cancels each hold one of orders' pooled connections for a statement;
        # hundreds at once only queue inside orders, where waiting costs more CPU.
        self.writes = Bulkhead(write_calls_in_flight)
        self.reads = ReadBatcher(
            self._get_one,
            self._get_many,
            max_in_flight=read_calls_in_flight,
            max_batch=read_batch_max,
            observe=observe_reads_per_call,
        )

    async def close(self, *, grace: float | None = None) -> None:
        await self._channel.close(grace)

    async def create(
        self, request: pb.CreateOrderRequest, budget: Budget
    ) -> pb.CreateOrderResponse:
        async with self.writes.slot(budget):
            return await self._unary(self._stub.CreateOrder, request, budget, rpc="CreateOrder")

    async def get(self, customer_id: str, order_id: str, budget: Budget) -> pb.Order:
        return await self.reads.get(customer_id, order_id, budget)

    async def _get_one(self, customer_id: str, order_id: str, budget: Budget) -> pb.Order:
        request = pb.GetOrderRequest(customer_id=customer_id, order_id=order_id)
        return (await self._unary(self._stub.GetOrder, request, budget, rpc="GetOrder")).order

    async def _get_many(self, reads: Sequence[Read], budget: Budget) -> list[pb.Order | Exception]:
        request = pb.BatchGetOrdersRequest(
            reads=[
                pb.GetOrderRequest(customer_id=r.customer_id, order_id=r.order_id) for r in reads
            ]
        )
        current = trace.get_current_span().get_span_context()
        links = [r.span for r in reads if r.span.trace_flags.sampled and r.span != current]
        response = await self._unary(
            self._stub.BatchGetOrders, request, budget, rpc="BatchGetOrders", links=links
        )
        if len(response.results) != len(reads):
            raise ApiError(
                502, "bad-gateway", "Bad gateway", "orders answered a batch of reads wrongly"
            )
        return [
            r.order if r.HasField("order") else status_to_api_error(r.error)
            for r in response.results
        ]

    async def list(
        self, customer_id: str, *, page_size: int, page_token: str, budget: Budget
    ) -> pb.ListOrdersResponse:
        request = pb.ListOrdersRequest(
            customer_id=customer_id, page_size=page_size, page_token=page_token
        )
        return await self._unary(
            self._stub.ListOrders, request, budget, rpc="ListOrders", what="page"
        )

    async def cancel(self, customer_id: str, order_id: str, budget: Budget) -> pb.Order:
        request = pb.CancelOrderRequest(customer_id=customer_id, order_id=order_id)
        async with self.writes.slot(budget):
            call = self._unary(self._stub.CancelOrder, request, budget, rpc="CancelOrder")
            return (await call).order

    async def export(self, customer_id: str, *, seconds: float) -> AsyncGenerator[bytes]:
        """Every order of the customer as NDJSON, in the chunks orders streams (whole
        lines, up to 1 MiB each), rendered by orders: nothing per order happens here."""
        self.breaker.before_call()
        with client_span(f"/{SERVICE}/ExportOrders") as metadata:
            request = pb.ExportOrdersRequest(
                customer_id=customer_id, format=pb.EXPORT_FORMAT_NDJSON
            )
            call = self._stub.ExportOrders(request, timeout=seconds, metadata=metadata)
            try:
                async for reply in call:
                    # An orders from before the NDJSON format ignores it and sends typed
                    # orders (during a rolling upgrade): render those here instead.
                    if chunk := reply.ndjson or ndjson_lines(reply.orders):
                        yield chunk
            except grpc.aio.AioRpcError as error:
                self._account(error)
                raise to_api_error(error) from None
            except BaseException:
                self.breaker.released()  # the client left mid-stream: no verdict on orders
                raise
            else:
                self.breaker.succeeded()
            finally:
                call.cancel()  # a no-op when complete; stops orders when the client left

    async def _unary(
        self,
        method: Callable[..., Awaitable[T]],
        request: object,
        budget: Budget,
        *,
        rpc: str,
        what: str = "order",
        links: Sequence[trace.SpanContext] = (),
    ) -> T:
        self.breaker.before_call()
        try:
            with client_span(f"/{SERVICE}/{rpc}", links) as metadata:
                call = method(request, timeout=budget.remaining(), metadata=metadata)
                response = await (call if self._metrics is None else self._metrics.call(rpc, call))
        except grpc.aio.AioRpcError as error:
            self._account(error)
            raise to_api_error(error, what=what) from None
        except BaseException:
            self.breaker.released()
            raise
        self.breaker.succeeded()
        return response

    def _account(self, error: grpc.aio.AioRpcError) -> None:
        if error.code() in DOWNSTREAM_FAILURES:
            self.breaker.failed()
        else:
            self.breaker.succeeded()  # orders answered: it is up
