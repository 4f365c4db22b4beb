"""The direct read route answers exactly as FastAPI's route does, and is really taken."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import httpx
import orjson
from gateway.read_route import ReadRoute
from gateway.server import GatewayRuntime

from .conftest import Start, token
from .fake_orders import FakeOrders

ORDER = uuid.uuid4()
# (method, path, headers, orders' scripted failure, what answers it)
REQUESTS: list[tuple[str, str, dict[str, str], grpc.StatusCode | None, str]] = [
    ("GET", f"/v1/orders/{ORDER}", token(), None, "direct"),
    ("GET", f"/v1/orders/{str(ORDER).upper()}", token(), None, "direct"),
    ("GET", f"/v1/orders/{ORDER}?expand=nothing", token(), None, "direct"),
    ("GET", f"/v1/orders/{ORDER}", token(), grpc.StatusCode.NOT_FOUND, "direct"),
    ("GET", f"/v1/orders/{ORDER}", token(), grpc.StatusCode.INVALID_ARGUMENT, "direct"),
    ("GET", f"/v1/orders/{ORDER}", token(), grpc.StatusCode.DEADLINE_EXCEEDED, "direct"),
    ("GET", f"/v1/orders/{ORDER}", token(), grpc.StatusCode.INTERNAL, "direct"),
    ("GET", f"/v1/orders/{ORDER}", {}, None, "middleware"),  # refused before any route
    ("GET", f"/v1/orders/{ORDER.hex}", token(), None, "fastapi"),  # another spelling: FastAPI's
    ("GET", "/v1/orders/not-an-id", token(), None, "fastapi"),
    ("GET", f"/v1/orders/{ORDER}/", token(), None, "fastapi"),
    ("GET", f"/v1/orders/{ORDER}x", token(), None, "fastapi"),
    ("HEAD", f"/v1/orders/{ORDER}", token(), None, "fastapi"),
    ("POST", f"/v1/orders/{ORDER}", token(), None, "fastapi"),
]
_VARYING = {"date", "x-trace-id", "server"}


class CountingApi:
    """Stands in front of FastAPI inside the direct route, counting what reaches it."""

    def __init__(self, api: Any) -> None:
        self.api, self.requests = api, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.requests += 1
        await self.api(scope, receive, send)


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in _VARYING}
    if "location" in headers:  # each gateway's own port
        headers["location"] = httpx.URL(headers["location"]).raw_path.decode()
    body = orjson.loads(response.content) if response.content else None
    if isinstance(body, dict):
        body.pop("trace_id", None)  # each request's own
    return response.status_code, headers, body


async def _ask(
    fake: FakeOrders, client: httpx.AsyncClient, request: tuple[Any, ...]
) -> httpx.Response:
    method, path, headers, failure, _ = request
    fake.fail_with = [failure] if failure else []
    return await client.request(method, path, headers=headers)


def _counting(runtime: GatewayRuntime) -> CountingApi:
    route = runtime.routes
    assert isinstance(route, ReadRoute)
    counting = CountingApi(route.api)
    route.api = counting  # type: ignore[assignment]
    return counting


async def test_direct_reads_answer_as_fastapi_does_for_every_kind_of_request(
    start: Start,
) -> None:
    fake = FakeOrders()
    _, direct, direct_runtime = await start(fake, breaker_failures=1000)
    _, via_fastapi, fastapi_runtime = await start(fake, breaker_failures=1000, direct_reads=False)
    assert not isinstance(fastapi_runtime.routes, ReadRoute)
    counting = _counting(direct_runtime)
    for request in REQUESTS:
        before = counting.requests
        expected = _answer(await _ask(fake, via_fastapi, request))
        got = _answer(await _ask(fake, direct, request))
        assert got == expected, request[:2]
        assert (counting.requests > before) == (request[4] == "fastapi"), request[:2]
    statuses = {_answer(await _ask(fake, direct, r))[0] for r in REQUESTS}
    assert {200, 401, 404, 405, 422, 502, 504} <= statuses  # the cases are really different


async def test_a_direct_read_out_of_time_is_a_504_problem(start: Start) -> None:
    _, client, runtime = await start(FakeOrders(delay=0.5), request_budget_seconds=0.1)
    counting = _counting(runtime)
    response = await client.get(f"/v1/orders/{ORDER}", headers=token())
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/timeout")
    assert counting.requests == 0


async def test_an_unexpected_error_in_a_direct_read_is_a_500_problem(start: Start) -> None:
    _, client, runtime = await start(FakeOrders())

    async def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    runtime.orders.get = broken  # type: ignore[method-assign,assignment]
    response = await client.get(f"/v1/orders/{ORDER}", headers=token())
    assert response.status_code == 500
    assert response.json()["type"].endswith("/internal")
    assert "a bug" not in response.text  # the detail stays in the log
