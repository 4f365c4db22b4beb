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
from orders.grpc_errors import rpc_scope
from orders.service import OrdersService

Context = grpc.aio.ServicerContext[Any, Any]


class OrdersServicer(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, *, service: OrdersService, max_rpc_seconds: float, batch_size: int) -> None:
        self._service = service
        self._max_rpc_seconds = max_rpc_seconds
        self._batch_size = batch_size

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
            batches = self._service.export_orders(
                customer_id=request.customer_id, batch_size=self._batch_size
            )
            async with contextlib.aclosing(batches):  # ends the DB cursor if the client leaves
                async for batch in batches:
                    yield pb.ExportOrdersResponse(orders=[order_to_proto(o) for o in batch])
