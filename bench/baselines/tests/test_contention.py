"""The default-async front tier keeps answering after overloads and failed summaries.

httpcore 1.0.9 leaks a pool slot when a request is cancelled (or times out) while it
waits for a connection the pool has just made for it (encode/httpcore#1093, shown
below): once the 100 slots leaked, every call waits out its pool timeout against a
healthy back tier. In the 2026-12-03 evening run that wedged the baseline at 256 and
1,024 connections, and it answered no create at all. So its client has no pool
timeout and a failed summary never cancels notify's call; the burst test runs a
front tier of its own, so a wedged pool could not spoil the other tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from servicekit.testing.net import free_ports

from bench.baselines.default_async.front import TIMEOUT
from bench.baselines.launch import Implementation, tiers
from bench.baselines.tests.conftest import JWT, Stack, auth

BURST = 400  # concurrent summaries: four times the client's 100 connections
ROUNDS = 2
AFTER = 50  # summaries at once after the bursts: half the pool, no wait for a slot


@pytest.fixture(scope="module")
def default_async_front(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    (port,) = free_ports(1)
    back_port = int(stack.back_urls["default_async"].rsplit(":", 1)[1])
    front = tiers(
        "default_async",
        front_port=port,
        back_port=back_port,
        database_url="unused",
        notify_url=stack.notify_url,
    )[-1]
    implementation = Implementation(
        [front], tmp_path_factory.mktemp("contention"), JWT.environment()
    )
    implementation.start()
    try:
        implementation.wait_ready()
        yield implementation.url
    finally:
        implementation.stop()


async def _burst(url: str, path: str, headers: dict[str, str], count: int = BURST) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        answers = await asyncio.gather(*(client.get(path, headers=headers) for _ in range(count)))
    return [answer.status_code for answer in answers]


def test_failed_summaries_under_contention_leave_the_pool_usable(
    stack: Stack, default_async_front: str
) -> None:
    customer = stack.seeded.customers[0]
    order_id = stack.seeded.ids[customer][0]
    path = f"/v1/orders/{order_id}/summary"
    for _ in range(ROUNDS):  # not the caller's order: the order call fails with a 404
        statuses = asyncio.run(_burst(default_async_front, path, auth("someone-else")))
        # an overloaded front tier may time out connecting (a 504): slow, not broken
        assert set(statuses) <= {404, 504}, statuses
    after = asyncio.run(_burst(default_async_front, path, auth(customer), count=AFTER))
    assert after == [200] * AFTER  # a leaked pool would answer 504s, or hang
    with httpx.Client(base_url=default_async_front, timeout=30) as client:
        answer = client.get(path, headers=auth(customer))
    assert answer.status_code == 200, answer.text
    assert answer.json()["degraded"] is False
    assert answer.elapsed.total_seconds() < 1.0  # not a wait for a slot that never frees


async def _answer_every_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.readuntil(b"\r\n\r\n"):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()


async def _cancel_while_waiting(timeout: httpx.Timeout) -> str:
    """Two requests on a one-connection pool, both cancelled before they connect; then
    a third: its outcome."""
    server = await asyncio.start_server(_answer_every_request, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        calls = [asyncio.ensure_future(client.get(f"http://127.0.0.1:{port}/")) for _ in "ab"]
        await asyncio.sleep(0)  # the pool has made the connection for the first
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        try:
            answer = await asyncio.wait_for(
                client.get(f"http://127.0.0.1:{port}/", timeout=timeout), 2
            )
        except (httpx.PoolTimeout, TimeoutError) as error:
            return type(error).__name__
        return str(answer.status_code)


def test_httpcore_still_leaks_the_slot_of_a_cancelled_wait() -> None:
    """Why the workarounds exist: when this fails, httpcore is fixed and they can go."""
    assert asyncio.run(_cancel_while_waiting(httpx.Timeout(5.0, pool=0.5))) == "PoolTimeout"
    assert asyncio.run(_cancel_while_waiting(TIMEOUT)) == "TimeoutError"  # waits for ever
