"""Helpers of the black-box suite: polling, and orders made through the public API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")

ORDER: dict[str, Any] = {
    "currency": "EUR",
    "items": [{"sku": "tea", "quantity": 2, "unit_price_minor": 450}],
}


async def poll_until(
    check: Callable[[], Awaitable[T | None]], *, seconds: float = 20, what: str = "condition"
) -> T:
    """Call `check` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {seconds}s")
        await asyncio.sleep(0.1)


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
