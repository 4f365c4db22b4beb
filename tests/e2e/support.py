"""Helpers of the black-box suite: polling, and orders made through the public API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from servicekit.testing.polling import poll_until as _poll_until

T = TypeVar("T")

ORDER: dict[str, Any] = {
    "currency": "EUR",
    "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}],
}


async def poll_until(
    check: Callable[[], Awaitable[T | None]], *, seconds: float = 20, what: str = "condition"
) -> T:
    """servicekit's poll_until, at 10 calls/s: each check is a request to a rate-limited API."""
    result = await _poll_until(check, seconds=seconds, what=what, interval=0.1)
    assert result is not None
    return result


async def create_order(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/orders",
        json=body or ORDER,
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The response is problem details with this status and type, and a trace id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    assert body["detail"], body
    assert len(body["trace_id"] or "") == 32, body
    return body
