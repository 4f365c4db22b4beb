"""The default-async baseline's front tier: `async def` routes and one shared httpx client.

    python -m bench.baselines.default_async.front --port 8092 \
        --back-url http://127.0.0.1:8093 --notify-url http://127.0.0.1:8082

The recipe most FastAPI articles give: one `httpx.AsyncClient()` made in the lifespan
and shared by every request, with its default transport and default limits (100
connections, 20 kept alive, 5 s timeouts), with one change: no timeout on the wait for
a pooled connection. httpcore 1.0.9 can leak a pool slot when a request waiting for a
connection is cancelled or times out there (encode/httpcore#1093); once the 100 slots
are gone every call times out against a healthy back tier. In the 2026-12-03 evening
run that happened at 256 and 1,024 connections, and the baseline answered nothing for
the rest of the run. Without that timeout an overloaded request waits its turn, and
wrk's 5 s timeout counts it as an error instead. The token check, the scoping to the token's
subject and the error answers are the gateway's (bench.baselines.contract); the back
tier's JSON is forwarded unchanged.

The summary asks the back tier and notify's real HTTP API at once, as the gateway does;
notify gets at most NOTIFY_TIMEOUT_SECONDS (else the summary is degraded) and its
answer is dropped when the order is not the caller's. It is awaited even then, never
cancelled, for the same leak (bench/baselines/tests/test_contention.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import orjson
from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from bench.baselines import serving
from bench.baselines.contract import (
    DEFAULT_LIMIT,
    NDJSON,
    NOTIFY_TIMEOUT_SECONDS,
    REPLAYED_HEADER,
    SUMMARY_NOTIFICATIONS,
    CreateOrderIn,
    Cursor,
    Customer,
    IdempotencyKey,
    JwtCheck,
    Limit,
    OrderId,
    bad_gateway,
    json_response,
    notifications_out,
    public_app,
    summary_json,
    timed_out,
    unavailable,
)

_FORWARDED: Final = ("content-type", REPLAYED_HEADER.lower())
# httpx's default 5 s for connecting, reading and writing, but no limit on the wait for
# one of the pool's connections: a request timed out there can leak its slot (below).
TIMEOUT: Final = httpx.Timeout(5.0, pool=None)


def build(*, back_url: str, notify_url: str, jwt_check: JwtCheck) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            yield {"client": client}

    app = public_app(jwt_check=jwt_check, lifespan=lifespan)

    @app.post("/v1/orders", status_code=201)
    async def create_order(
        request: Request, body: CreateOrderIn, customer: Customer, key: IdempotencyKey
    ) -> Response:
        new = {"customer_id": customer, "idempotency_key": key, **body.model_dump()}
        call = _client(request).post(
            f"{back_url}/orders",
            content=orjson.dumps(new),
            headers={"content-type": "application/json"},
        )
        return await _answer(call)

    @app.get("/v1/orders/export")
    async def export_orders(request: Request, customer: Customer) -> Response:
        client = _client(request)
        outgoing = client.build_request(
            "GET", f"{back_url}/orders/export", params={"customer_id": customer}
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as error:
            return _failure(error)
        if answer.status_code != 200:
            await answer.aread()
            await answer.aclose()
            return _forward(answer)
        return StreamingResponse(
            answer.aiter_raw(), media_type=NDJSON, background=BackgroundTask(answer.aclose)
        )

    @app.get("/v1/orders/{order_id}")
    async def get_order(request: Request, order_id: OrderId, customer: Customer) -> Response:
        call = _client(request).get(
            f"{back_url}/orders/{order_id}", params={"customer_id": customer}
        )
        return await _answer(call)

    @app.get("/v1/orders")
    async def list_orders(
        request: Request, customer: Customer, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Response:
        params: dict[str, str | int] = {"customer_id": customer, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await _answer(_client(request).get(f"{back_url}/orders", params=params))

    @app.get("/v1/orders/{order_id}/summary")
    async def order_summary(request: Request, order_id: OrderId, customer: Customer) -> Response:
        client = _client(request)
        # Both calls at once, awaited together. Cancelling notify's call when the order
        # fails could leak its pool slot (module notes).
        order: Response
        order, (items, reason) = await asyncio.gather(
            _answer(client.get(f"{back_url}/orders/{order_id}", params={"customer_id": customer})),
            _notifications(client, notify_url, str(order_id)),
        )
        if order.status_code != 200:
            return order
        return json_response(summary_json(orjson.loads(order.body), items, reason))

    return app


def _client(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.state.client
    return client


async def _answer(call: Awaitable[httpx.Response]) -> Response:
    """The back tier's answer, or the gateway's 503/504 when it gives none."""
    try:
        answer = await call
    except httpx.HTTPError as error:
        return _failure(error)
    return _forward(answer)


def _forward(answer: httpx.Response) -> Response:
    if answer.status_code >= 500:
        return bad_gateway("the back tier", answer.status_code)
    headers = {name: answer.headers[name] for name in _FORWARDED if name in answer.headers}
    return Response(answer.content, status_code=answer.status_code, headers=headers)


def _failure(error: httpx.HTTPError) -> Response:
    if isinstance(error, httpx.TimeoutException):
        return timed_out("the back tier")
    return unavailable("the back tier")


async def _notifications(
    client: httpx.AsyncClient, notify_url: str, order_id: str
) -> tuple[list[dict[str, Any]], str | None]:
    """(notifications, None), or ([], why not) when notify cannot answer in time."""
    try:
        answer = await client.get(
            f"{notify_url}/v1/notifications",
            params={"order_id": order_id, "limit": SUMMARY_NOTIFICATIONS},
            timeout=NOTIFY_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        return [], f"notify unavailable: {type(error).__name__}"
    if answer.status_code != 200:
        return [], f"notify unavailable: notify answered {answer.status_code}"
    return notifications_out(orjson.loads(answer.content)["items"]), None


def main() -> None:
    serving.run_front(build, description=__doc__, port=8092)


if __name__ == "__main__":
    main()
