"""The public REST API: FastAPI routes over the orders and notify clients.

Handlers stay thin: they read the principal set by the authentication middleware
(the customer id is always the token's subject, so a caller only ever reaches their
own orders; another customer's order is a plain 404), give each downstream call the
rest of the request's budget, and answer pre-serialised JSON (orjson) while the
declared response models document the contract.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated, Any, Final

import orjson
from contracts.orders.v1 import orders_pb2 as pb
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from servicekit.instrumentation import FASTAPI_TELEMETRY
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway import error_handlers
from gateway.convert import order_json
from gateway.error_handlers import IDEMPOTENCY_HEADER
from gateway.metrics import GatewayMetrics
from gateway.middleware.authenticate import principal_of
from gateway.notify_client import NotifyClient, NotifyUnavailable
from gateway.orders_client import OrdersClient
from gateway.problems import PROBLEM_CONTENT_TYPE, ApiError
from gateway.resilience import Budget, BudgetExhausted, CircuitOpen, Coalescer
from gateway.schemas import (
    DEFAULT_PAGE_SIZE,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    CreateOrderIn,
    OrderOut,
    OrderPage,
    OrderSummary,
    Problem,
    notification_out,
)
from gateway.settings import GatewaySettings

JSON: Final = "application/json"
NDJSON: Final = "application/x-ndjson"
SUMMARY_NOTIFICATIONS: Final = 50
# Documented on every operation; which apply is said in each problem's detail.
_COMMON_ERRORS: Final = (400, 401, 413, 422, 429, 503, 504)
BEARER_SCHEME: Final = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "a JWT; `ordermesh token --sub alice` mints one",
}


# No FastAPI dependencies on the hot path: solving them (even `async def` ones, and the
# app-wide HTTPBearer that only documented the scheme) was a fifth of the gateway's
# CPU per read. The authentication middleware has already checked the token; the
# security scheme is added to the OpenAPI document instead (_openapi).
def _caller(request: Request) -> tuple[str, Budget]:
    return caller_of(request.scope, request.app.state.budget_seconds)


def caller_of(scope: Scope, budget_seconds: float) -> tuple[str, Budget]:
    """The token's subject, and the request's deadline counted from when its handler starts."""
    principal = principal_of(scope)
    if principal is None:  # only if the app runs without the authentication middleware
        raise ApiError(401, "unauthorized", "Unauthorized", "a valid bearer token is required")
    return principal.subject, Budget.of(budget_seconds)


OrderId = Annotated[uuid.UUID, Path(description="the order's id")]


@dataclass(frozen=True, slots=True)
class Downstreams:
    orders: OrdersClient
    notify: NotifyClient
    metrics: GatewayMetrics
    coalescer: Coalescer


def build_api(settings: GatewaySettings, downstreams: Downstreams) -> FastAPI:
    app = FastAPI(
        title="Ordermesh API",
        version="1",
        description="Orders and their notifications. Every call needs a bearer token.",
        docs_url="/docs",
        redoc_url=None,
        telemetry=FASTAPI_TELEMETRY,
    )
    error_handlers.install(app)
    orders, notify, metrics = downstreams.orders, downstreams.notify, downstreams.metrics
    coalesce = downstreams.coalescer.run

    app.state.budget_seconds = settings.request_budget_seconds

    @app.post(
        "/v1/orders",
        status_code=201,
        response_model=OrderOut,
        responses=_errors(409),
        summary="Create an order",
    )
    async def create_order(
        request: Request,
        body: CreateOrderIn,
        idempotency_key: Annotated[
            str,
            Header(
                alias=IDEMPOTENCY_HEADER,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="unique per intended order: a retry with the same key and "
                "body returns the first answer, never a second order",
            ),
        ],
    ) -> Response:
        customer, deadline = _caller(request)
        create = pb.CreateOrderRequest(
            customer_id=customer,
            idempotency_key=idempotency_key,
            currency=body.currency,
            items=[
                pb.LineItem(sku=i.sku, quantity=i.quantity, unit_price_minor=i.unit_price_minor)
                for i in body.items
            ],
        )
        created = await orders.create(create, deadline)
        headers = {} if created.created else {"Idempotent-Replayed": "true"}
        return _json(order_json(created.order), status=201, headers=headers)

    # Declared before /v1/orders/{order_id}, which would otherwise match "export".
    @app.get(
        "/v1/orders/export",
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}}}, **_errors()},
        summary="Export all your orders as NDJSON (one order per line, oldest first)",
    )
    async def export_orders(request: Request) -> StreamingResponse:
        customer, _ = _caller(request)
        chunks = orders.export(customer, seconds=settings.export_seconds)
        # Read the first chunk before answering, so a failure to start is a real status;
        # a failure later cuts the stream short (the chunked body never ends cleanly).
        first = await anext(chunks, None)
        return ClosingStreamingResponse(_ndjson(first, chunks), media_type=NDJSON)

    @app.get(
        "/v1/orders/{order_id}", response_model=OrderOut, responses=_errors(404), summary="An order"
    )
    async def get_order(request: Request, order_id: OrderId) -> Response:
        # Most reads are answered by gateway.read_route without FastAPI, by the same
        # function; this route documents the contract and takes ids in other spellings.
        customer, deadline = _caller(request)
        return await read_order(downstreams, customer, str(order_id), deadline)

    @app.get("/v1/orders", response_model=OrderPage, responses=_errors(), summary="Your orders")
    async def list_orders(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[
            str | None,
            Query(min_length=1, max_length=MAX_CURSOR_LENGTH, description="next_cursor of a page"),
        ] = None,
    ) -> Response:
        customer, deadline = _caller(request)
        key = ("list", customer, limit, cursor)
        page = await coalesce(
            key,
            lambda: orders.list(
                customer, page_size=limit, page_token=cursor or "", budget=deadline
            ),
        )
        return _json(
            {
                "items": [order_json(o) for o in page.orders],
                "next_cursor": page.next_page_token or None,
            }
        )

    @app.post(
        "/v1/orders/{order_id}/cancel",
        response_model=OrderOut,
        responses=_errors(404, 409),
        summary="Cancel a pending order (cancelling a cancelled order changes nothing)",
    )
    async def cancel_order(request: Request, order_id: OrderId) -> Response:
        customer, deadline = _caller(request)
        return _json(order_json(await orders.cancel(customer, str(order_id), deadline)))

    @app.get(
        "/v1/orders/{order_id}/summary",
        response_model=OrderSummary,
        responses=_errors(404),
        summary="An order with its notifications, fetched concurrently",
    )
    async def order_summary(request: Request, order_id: OrderId) -> Response:
        customer, deadline = _caller(request)
        # Both calls start at once. The order decides the answer; notifications are
        # best effort within notify_timeout_seconds and only shown for the caller's
        # own order (the order call is what checks ownership).
        notifications = asyncio.ensure_future(
            _notifications(notify, str(order_id), deadline, settings.notify_timeout_seconds)
        )
        try:
            order = await orders.get(customer, str(order_id), deadline)
        except BaseException:
            notifications.cancel()
            raise
        items, reason = await notifications
        if reason is not None:
            metrics.degraded.inc()
        return _json(
            {
                "order": order_json(order),
                "notifications": items,
                "degraded": reason is not None,
                "degraded_reason": reason,
            }
        )

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def read_order(
    downstreams: Downstreams, customer: str, order_id: str, deadline: Budget
) -> Response:
    """GET /v1/orders/{order_id}: identical concurrent reads by one caller share a call."""
    order = await downstreams.coalescer.run(
        ("get", customer, order_id), lambda: downstreams.orders.get(customer, order_id, deadline)
    )
    return _json(order_json(order))


async def _notifications(
    notify: NotifyClient, order_id: str, budget: Budget, cap: float
) -> tuple[list[dict[str, Any]], str | None]:
    """(notifications, None), or ([], why not) when notify cannot answer in time."""
    try:
        raw = await notify.notifications(
            order_id, limit=SUMMARY_NOTIFICATIONS, timeout=budget.remaining(cap)
        )
    except CircuitOpen:
        return [], "notify is failing; its circuit is open"
    except (NotifyUnavailable, BudgetExhausted) as exc:
        return [], f"notify unavailable: {exc}" if str(exc) else "notify unavailable"
    return [notification_out(n) for n in raw], None


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that closes its body however the response ends. When the
    client leaves, Starlette cancels the response where it is; if that is while sending,
    the body stays suspended until the garbage collector finalizes it, and so do the
    gRPC stream behind it and a circuit breaker trial waiting for its verdict."""

    def __init__(self, body: AsyncGenerator[bytes], *, media_type: str) -> None:
        super().__init__(body, media_type=media_type)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()


async def _ndjson(first: bytes | None, rest: AsyncGenerator[bytes]) -> AsyncGenerator[bytes]:
    """orders' NDJSON chunks as they come: one in hand at a time, never re-encoded."""
    try:
        if first is None:
            return
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # ends the gRPC stream at once when the client went away


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _errors(*extra: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in sorted({*_COMMON_ERRORS, *extra})}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with errors as application/problem+json (what is really sent)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for operations in schema["paths"].values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if int(code) >= 400 and JSON in content:
                    response["content"] = {PROBLEM_CONTENT_TYPE: content[JSON]}
    schema["components"]["securitySchemes"] = {"HTTPBearer": BEARER_SCHEME}
    schema["security"] = [{"HTTPBearer": []}]
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    app.openapi_schema = schema
    return schema
