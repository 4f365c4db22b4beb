"""The gateway's protective limits: 413, 429, 503 and unknown hosts, each with a problem."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import orjson

from tests.e2e.support import ORDER, assert_problem, poll_until
from tests.e2e.target import Target

# The gateway's gauge counts the queued requests too (its metrics wrap the admission).
IN_FLIGHT = re.compile(r"^ordermesh_http_server_requests_in_flight ([\d.e+]+)$", re.M)


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
        count = 2 * target.rate_burst + 50  # the bucket refills while they run
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


async def test_beyond_the_in_flight_bound_requests_queue_then_a_fast_503(
    client: httpx.AsyncClient, target: Target
) -> None:
    release = asyncio.Event()
    # Every slot held, and every place in the queue: those requests wait, unanswered.
    holders = [
        asyncio.ensure_future(_hold_a_slot(target, release))
        for _ in range(target.max_in_flight + target.max_queued)
    ]
    try:

        async def all_held() -> bool | None:
            metrics = (await client.get("/metrics")).text
            held = IN_FLIGHT.search(metrics)
            return True if held and float(held[1]) >= len(holders) else None

        # Probing before then could put the probe itself in the queue, for its 30 s.
        await poll_until(all_held, seconds=30, what="every slot and place in the queue held")
        probe = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
        assert_problem(probe, 503, "overloaded")
        assert int(probe.headers["retry-after"]) >= 1
        assert probe.elapsed.total_seconds() < 1.0  # fast: the queue was full
        assert (await client.get("/healthz")).status_code == 200  # probes are exempt
        assert not any(holder.done() for holder in holders)  # the queued ones still wait
    finally:
        release.set()
        statuses = await asyncio.gather(*holders)
    # The held and the queued requests complete normally once their bodies arrive.
    assert set(statuses) == {201}, statuses
    after = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
    assert after.status_code == 404


async def _hold_a_slot(target: Target, release: asyncio.Event) -> int:
    """Keep one create request in flight (its body half sent) until `release`; its status.

    Raw HTTP/1.1, because a client library sends the whole body before it reads an
    answer: a request shed while its body is held back would never be seen to fail.
    Here a 503 that arrives early is noticed, and the request is sent again.
    """
    url = urlsplit(target.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    body = orjson.dumps(ORDER)
    head = (
        f"POST /v1/orders HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {target.token()}\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    while True:
        reader, writer = await asyncio.open_connection(
            url.hostname, port, ssl=url.scheme == "https" or None
        )
        try:
            writer.write(head + body[:10])
            await writer.drain()
            answer = asyncio.ensure_future(reader.readline())
            released = asyncio.ensure_future(release.wait())
            await asyncio.wait({answer, released}, return_when=asyncio.FIRST_COMPLETED)
            released.cancel()
            if not answer.done():
                writer.write(body[10:])
                await writer.drain()
            status = int((await answer).split()[1])
        finally:
            writer.close()
        if status != 503 or release.is_set():
            return status
        await asyncio.sleep(0.05)  # shed before the slots filled up: try again


async def test_an_unknown_host_is_400(client: httpx.AsyncClient, target: Target) -> None:
    response = await client.get("/v1/orders", headers=target.auth() | {"Host": "evil.example"})
    assert_problem(response, 400, "unknown-host")
    # Probes pass whatever the Host: kubelet sends the pod IP.
    assert (await client.get("/healthz", headers={"Host": "10.1.2.3"})).status_code == 200
