"""The gateway's protective limits: 413, 429, 503 and unknown hosts, each with a problem."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx

from tests.e2e.support import assert_problem, poll_until
from tests.e2e.target import Target


async def test_an_oversized_body_is_413_declared_or_streamed(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
    body = b'{"currency": "EUR", "items": [], "pad": "' + b"x" * target.max_body_bytes + b'"}'
    declared = await client.post(
        "/v1/orders", content=body, headers=headers | {"content-type": "application/json"}
    )
    assert_problem(declared, 413, "payload-too-large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = await client.post(
        "/v1/orders", content=chunks(), headers=headers | {"content-type": "application/json"}
    )
    assert_problem(streamed, 413, "payload-too-large")


async def test_a_subject_over_its_rate_gets_429_with_retry_after(target: Target) -> None:
    auth = target.auth()
    # Few connections: the requests come fast, but never near the in-flight limit.
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=target.url, timeout=15, limits=limits) as client:
        count = target.rate_burst + 20
        requests = [client.get(f"/v1/orders/{uuid.uuid4()}", headers=auth) for _ in range(count)]
        responses = await asyncio.gather(*requests)
        limited = [r for r in responses if r.status_code == 429]
        assert limited, {r.status_code for r in responses}
        assert {r.status_code for r in responses} == {404, 429}
        assert_problem(limited[0], 429, "rate-limited")
        assert int(limited[0].headers["retry-after"]) >= 1
        # Another subject is not affected.
        other = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
        assert other.status_code == 404


async def test_beyond_max_in_flight_a_fast_503_with_retry_after(target: Target) -> None:
    release = asyncio.Event()
    limits = httpx.Limits(max_connections=target.max_in_flight + 20)
    async with httpx.AsyncClient(base_url=target.url, timeout=30, limits=limits) as client:

        async def slow_body() -> AsyncIterator[bytes]:
            yield b'{"currency": "EUR", '
            await release.wait()  # the request stays in flight until then
            yield b'"items": [{"sku": "a", "quantity": 1, "unit_price_minor": 1}]}'

        async def slow_request() -> int:
            headers = target.auth() | {"Idempotency-Key": uuid.uuid4().hex}
            headers["content-type"] = "application/json"
            response = await client.post("/v1/orders", content=slow_body(), headers=headers)
            return response.status_code

        # A few more than the limit: those beyond it are shed, the rest hold every slot.
        holders = [asyncio.ensure_future(slow_request()) for _ in range(target.max_in_flight + 2)]
        try:

            async def shed() -> httpx.Response | None:
                probe = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
                return probe if probe.status_code == 503 else None

            probe = await poll_until(shed, seconds=30, what="a 503 with every slot held")
            assert_problem(probe, 503, "overloaded")
            assert int(probe.headers["retry-after"]) >= 1
            assert probe.elapsed.total_seconds() < 1.0  # fast, not queued
            assert (await client.get("/healthz")).status_code == 200  # probes exempt
        finally:
            release.set()
            statuses = await asyncio.gather(*holders)
        # Held requests complete normally once their bodies arrive.
        assert set(statuses) <= {201, 503}, statuses
        after = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
        assert after.status_code == 404


async def test_an_unknown_host_is_400(client: httpx.AsyncClient, target: Target) -> None:
    response = await client.get("/v1/orders", headers=target.auth() | {"Host": "evil.example"})
    assert_problem(response, 400, "unknown-host")
    # Probes pass whatever the Host: kubelet sends the pod IP.
    assert (await client.get("/healthz", headers={"Host": "10.1.2.3"})).status_code == 200
