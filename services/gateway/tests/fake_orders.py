"""A scriptable in-process orders gRPC server: the transport is real, the service is not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import orjson
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1 import orders_pb2_grpc
from gateway.convert import order_json
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, status_pb2


def make_order(customer_id: str, order_id: str | None = None) -> pb.Order:
    now = Timestamp(seconds=1_795_000_000, nanos=123_000)
    return pb.Order(
        id=order_id or str(uuid.uuid4()),
        customer_id=customer_id,
        items=[pb.LineItem(sku="tea", quantity=2, unit_price_minor=450)],
        currency="EUR",
        total_minor=900,
        status=pb.ORDER_STATUS_PENDING,
        created_at=now,
        updated_at=now,
    )


@dataclass
class FakeOrders(orders_pb2_grpc.OrdersServiceServicer):
    """Answers from a script: a delay, failures to return first, how much to export."""

    delay: float = 0.0
    fail_with: list[grpc.StatusCode] = field(default_factory=list)  # popped per call
    # Made lazily, as the stream is read: a count no buffer can hold (~300 MB of NDJSON
    # for a million) makes sure a client that leaves does so mid-stream.
    export_count: int = 0
    # An orders from before ExportFormat: typed orders whatever the request asks for.
    ignores_export_format: bool = False
    export_formats: list[int] = field(default_factory=list)
    export_abandoned: asyncio.Event = field(default_factory=asyncio.Event)  # the caller left
    calls: list[str] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)  # order ids per BatchGetOrders
    missing: set[str] = field(default_factory=set)  # order ids a batch answers NOT_FOUND
    deadlines: list[float | None] = field(default_factory=list)
    in_flight: int = 0  # calls being answered now, and the most there were at once
    peak_in_flight: int = 0

    async def _script(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.calls.append(method)
        self.deadlines.append(context.time_remaining())
        if self.fail_with:
            code = self.fail_with.pop(0)
            await context.abort(code, f"scripted {code.name}")
        if self.delay:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1

    async def GetOrder(
        self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetOrderResponse:
        await self._script("GetOrder", context)
        return pb.GetOrderResponse(order=make_order(request.customer_id, request.order_id))

    async def BatchGetOrders(
        self, request: pb.BatchGetOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.BatchGetOrdersResponse:
        await self._script("BatchGetOrders", context)
        self.batches.append([read.order_id for read in request.reads])
        return pb.BatchGetOrdersResponse(
            results=[
                pb.GetOrderResult(error=status_pb2.Status(code=code_pb2.NOT_FOUND, message="no"))
                if read.order_id in self.missing
                else pb.GetOrderResult(order=make_order(read.customer_id, read.order_id))
                for read in request.reads
            ]
        )

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CancelOrderResponse:
        await self._script("CancelOrder", context)
        order = make_order(request.customer_id, request.order_id)
        order.status = pb.ORDER_STATUS_CANCELLED
        return pb.CancelOrderResponse(order=order)

    async def ExportOrders(
        self, request: pb.ExportOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ExportOrdersResponse]:
        await self._script("ExportOrders", context)
        self.export_formats.append(request.format)
        finished = False
        try:
            async for reply in self._export(request):
                yield reply
            finished = True
        finally:
            if not finished:
                self.export_abandoned.set()

    async def _export(
        self, request: pb.ExportOrdersRequest
    ) -> AsyncIterator[pb.ExportOrdersResponse]:
        sent = 0
        while sent < self.export_count:
            size = min(500, self.export_count - sent)
            batch = [make_order(request.customer_id) for _ in range(size)]
            if request.format == pb.EXPORT_FORMAT_NDJSON and not self.ignores_export_format:
                # What orders sends: the lines of the public JSON (the contract test
                # holds orders' rendering to this one).
                lines = (orjson.dumps(order_json(o)) + b"\n" for o in batch)
                yield pb.ExportOrdersResponse(ndjson=b"".join(lines))
            else:
                yield pb.ExportOrdersResponse(orders=batch)
            sent += size

    # Not used by these tests; present because the servicer declares every RPC.
    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateOrderResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListOrdersResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")

    async def ConfirmOrder(
        self, request: pb.ConfirmOrderRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ConfirmOrderResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")


async def serve(fake: FakeOrders) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port
