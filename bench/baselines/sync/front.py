"""The sync baseline's front tier: the public API with `def` routes and `requests`.

    python -m bench.baselines.sync.front --port 8090 \
        --back-url http://127.0.0.1:8091 --notify-url http://127.0.0.1:8082

Each route runs in FastAPI's thread pool (anyio's default limit, THREADS) and calls the
back tier over one shared requests.Session whose connection pool holds as many
connections as there are threads, so no thread ever opens a throw-away connection. The
token check, the scoping to the token's subject and the error answers are the
gateway's (bench.baselines.contract); the back tier's JSON is forwarded unchanged.

The summary calls the back tier, then notify's real HTTP API (at most
NOTIFY_TIMEOUT_SECONDS, else the summary is degraded), one after the other: the way sync
code is written; it only asks notify about an order the back tier found for the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import orjson
import requests
from fastapi import FastAPI, Request
from requests.adapters import HTTPAdapter
from starlette.responses import Response, StreamingResponse

from bench.baselines import serving
from bench.baselines.contract import (
    DEFAULT_LIMIT,
    NDJSON,
    NOTIFY_TIMEOUT_SECONDS,
    REPLAYED_HEADER,
    REQUEST_TIMEOUT_SECONDS,
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

THREADS: Final = 40  # anyio's default thread limiter, which FastAPI's `def` routes share
_FORWARDED: Final = ("content-type", REPLAYED_HEADER.lower())


def build(*, back_url: str, notify_url: str, jwt_check: JwtCheck) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=THREADS))
        try:
            yield {"session": session}
        finally:
            session.close()

    app = public_app(jwt_check=jwt_check, lifespan=lifespan)

    @app.post("/v1/orders", status_code=201)
    def create_order(
        request: Request, body: CreateOrderIn, customer: Customer, key: IdempotencyKey
    ) -> Response:
        new = {"customer_id": customer, "idempotency_key": key, **body.model_dump()}
        return _call(_session(request), "POST", f"{back_url}/orders", data=orjson.dumps(new))

    @app.get("/v1/orders/export")
    def export_orders(request: Request, customer: Customer) -> Response:
        try:
            answer = _session(request).get(
                f"{back_url}/orders/export",
                params={"customer_id": customer},
                timeout=REQUEST_TIMEOUT_SECONDS,
                stream=True,
            )
        except requests.RequestException as error:
            return _failure(error)
        if answer.status_code != 200:
            return _forward(answer)
        return StreamingResponse(_relay(answer), media_type=NDJSON)

    @app.get("/v1/orders/{order_id}")
    def get_order(request: Request, order_id: OrderId, customer: Customer) -> Response:
        url = f"{back_url}/orders/{order_id}"
        return _call(_session(request), "GET", url, params={"customer_id": customer})

    @app.get("/v1/orders")
    def list_orders(
        request: Request, customer: Customer, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Response:
        params: dict[str, str | int] = {"customer_id": customer, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        return _call(_session(request), "GET", f"{back_url}/orders", params=params)

    @app.get("/v1/orders/{order_id}/summary")
    def order_summary(request: Request, order_id: OrderId, customer: Customer) -> Response:
        session = _session(request)
        order = _call(session, "GET", f"{back_url}/orders/{order_id}", {"customer_id": customer})
        if order.status_code != 200:
            return order
        items, reason = _notifications(session, notify_url, str(order_id))
        return json_response(summary_json(orjson.loads(order.body), items, reason))

    return app


def _session(request: Request) -> requests.Session:
    session: requests.Session = request.state.session
    return session


def _call(
    session: requests.Session,
    method: str,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    data: bytes | None = None,
) -> Response:
    """The back tier's answer, or the gateway's 503/504 when it gives none."""
    headers = {"content-type": "application/json"} if data is not None else None
    try:
        answer = session.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
    except requests.RequestException as error:
        return _failure(error)
    return _forward(answer)


def _forward(answer: requests.Response) -> Response:
    if answer.status_code >= 500:
        return bad_gateway("the back tier", answer.status_code)
    headers = {name: answer.headers[name] for name in _FORWARDED if name in answer.headers}
    return Response(answer.content, status_code=answer.status_code, headers=headers)


def _failure(error: requests.RequestException) -> Response:
    if isinstance(error, requests.Timeout):
        return timed_out("the back tier")
    return unavailable("the back tier")


def _relay(answer: requests.Response) -> Iterator[bytes]:
    try:
        yield from answer.iter_content(chunk_size=65_536)
    finally:
        answer.close()


def _notifications(
    session: requests.Session, notify_url: str, order_id: str
) -> tuple[list[dict[str, Any]], str | None]:
    """(notifications, None), or ([], why not) when notify cannot answer in time."""
    params: dict[str, str | int] = {"order_id": order_id, "limit": SUMMARY_NOTIFICATIONS}
    try:
        answer = session.get(
            f"{notify_url}/v1/notifications", params=params, timeout=NOTIFY_TIMEOUT_SECONDS
        )
    except requests.RequestException as error:
        return [], f"notify unavailable: {type(error).__name__}"
    if answer.status_code != 200:
        return [], f"notify unavailable: notify answered {answer.status_code}"
    return notifications_out(orjson.loads(answer.content)["items"]), None


def main() -> None:
    serving.run_front(build, description=__doc__, port=8090)


if __name__ == "__main__":
    main()
