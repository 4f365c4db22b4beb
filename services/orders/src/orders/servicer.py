"""The OrdersService gRPC servicer: proto in, service call, proto out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from contracts.orders.v1 import orders_pb2 as pb
from contracts.orders.v1 import orders_pb2_grpc

from orders.convert import items_from_proto, order_to_proto
from orders.domain import OrderStatus
from orders.errors import FieldViolation, OrdersError, ValidationFailed
from orders.grpc_errors import rpc_scope, to_status_proto
from orders.service import OrdersService

Context = grpc.aio.ServicerContext[Any, Any]
EXPORT_FORMATS = frozenset(pb.ExportFormat.values())  # UNSPECIFIED means typed orders
# NDJSON bytes per export message: whole lines, well under the gRPC message limits on
# both sides (the gateway's receive limit is gRPC's default 4 MiB), so one or two
# messages are all the gateway holds.
MAX_NDJSON_CHUNK_BYTES = 1024 * 1024


class OrdersServicer(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(
        self,
        *,
        service: OrdersService,
        max_rpc_seconds: float,
        batch_size: int,
        max_message_bytes: int,
    ) -> None:
        self._service = service
        self._max_rpc_seconds = max_rpc_seconds
        self._batch_size = batch_size
        # Room for the message's own framing (a tag and a length) below the send limit.
        self._max_chunk_bytes = min(MAX_NDJSON_CHUNK_BYTES, max_message_bytes - 16)

    async def CreateOrder(
        self, request: pb.CreateOrderRequest, context: Context
    ) -> pb.CreateOrderResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            order, created = await self._service.create_order(
                customer_id=request.customer_id,
                idempotency_key=request.idempotency_key,
                currency=request.currency,
                items=items_from_proto(request.items),
            )
        return pb.CreateOrderResponse(order=order_to_proto(order), created=created)

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            order = await self._service.get_order(
                customer_id=request.customer_id, order_id=request.order_id
            )
        return pb.GetOrderResponse(order=order_to_proto(order))

    async def BatchGetOrders(
        self, request: pb.BatchGetOrdersRequest, context: Context
    ) -> pb.BatchGetOrdersResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            results = await self._service.get_orders(
                [(read.customer_id, read.order_id) for read in request.reads]
            )
        return pb.BatchGetOrdersResponse(
            results=[
                pb.GetOrderResult(error=to_status_proto(r))
                if isinstance(r, OrdersError)
                else pb.GetOrderResult(order=order_to_proto(r))
                for r in results
            ]
        )

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            page = await self._service.list_orders(
                customer_id=request.customer_id,
                page_size=request.page_size,
                page_token=request.page_token,
            )
        return pb.ListOrdersResponse(
            orders=[order_to_proto(o) for o in page.orders], next_page_token=page.next_page_token
        )

    async def ConfirmOrder(
        self, request: pb.ConfirmOrderRequest, context: Context
    ) -> pb.ConfirmOrderResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            order = await self._service.change_status(
                customer_id=request.customer_id,
                order_id=request.order_id,
                target=OrderStatus.CONFIRMED,
            )
        return pb.ConfirmOrderResponse(order=order_to_proto(order))

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        async with rpc_scope(context, max_seconds=self._max_rpc_seconds):
            order = await self._service.change_status(
                customer_id=request.customer_id,
                order_id=request.order_id,
                target=OrderStatus.CANCELLED,
            )
        return pb.CancelOrderResponse(order=order_to_proto(order))

    async def ExportOrders(
        self, request: pb.ExportOrdersRequest, context: Context
    ) -> AsyncIterator[pb.ExportOrdersResponse]:
        # Only the caller's deadline bounds an export: it may legitimately run long.
        async with rpc_scope(context, max_seconds=None):
            if request.format not in EXPORT_FORMATS:
                raise ValidationFailed(
                    [FieldViolation("format", f"{request.format} is not an ExportFormat")]
                )
            if request.format == pb.EXPORT_FORMAT_NDJSON:
                chunks = self._service.export_ndjson(
                    customer_id=request.customer_id,
                    batch_size=self._batch_size,
                    max_chunk_bytes=self._max_chunk_bytes,
                )
                async with contextlib.aclosing(chunks):  # ends the DB cursor if the client leaves
                    async for chunk in chunks:
                        yield pb.ExportOrdersResponse(ndjson=chunk)
                return
            batches = self._service.export_orders(
                customer_id=request.customer_id, batch_size=self._batch_size
            )
            async with contextlib.aclosing(batches):  # ends the DB cursor if the client leaves
                async for batch in batches:
                    yield pb.ExportOrdersResponse(orders=[order_to_proto(o) for o in batch])
