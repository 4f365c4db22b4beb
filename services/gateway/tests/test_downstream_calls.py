"""The gateway's calls to orders, against a scripted orders over real gRPC and HTTP.

Deadlines, retries, error mapping, the circuit breaker, coalescing, the streaming
export and the admission queue's gauge, each seen from outside: HTTP requests in,
gRPC calls counted on the fake.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable

import grpc
import orjson
import pytest
from contracts.orders.v1 import orders_pb2 as pb
from gateway.api import ClosingStreamingResponse
from gateway.convert import order_json
from servicekit.testing.polling import poll_until
from starlette.types import Message

from .conftest import Start, token
from .fake_orders import FakeOrders, make_order


async def test_each_call_gets_what_is_left_of_the_request_budget(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(delay=3), request_budget_seconds=1.0)
    began = time.monotonic()
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=token())
    took = time.monotonic() - began
    assert response.status_code == 504, response.text
    assert response.json()["type"].endswith("/timeout")
    assert 0.9 < took < 2.0  # the budget, not the fake's 3 s
    assert fake.deadlines[0] is not None
    assert 0.5 < fake.deadlines[0] <= 1.0


async def test_an_idempotent_read_is_retried_on_unavailable(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(fail_with=[grpc.StatusCode.UNAVAILABLE] * 2))
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=token())
    assert response.status_code == 200, response.text
    assert fake.calls == ["GetOrder"] * 3


async def test_other_failures_are_not_retried(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(fail_with=[grpc.StatusCode.INTERNAL]))
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=token())
    assert response.status_code == 502
    assert fake.calls == ["GetOrder"]


# gRPC status from orders -> (HTTP status, problem slug) of the gateway.
STATUS_MAP = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "validation-failed"),
    grpc.StatusCode.NOT_FOUND: (404, "not-found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (503, "unavailable"),
    grpc.StatusCode.INTERNAL: (502, "bad-gateway"),
    grpc.StatusCode.PERMISSION_DENIED: (502, "bad-gateway"),
    grpc.StatusCode.UNKNOWN: (502, "bad-gateway"),
}


async def test_grpc_statuses_map_to_http_consistently(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(), breaker_failures=1000)
    for code, (status, slug) in STATUS_MAP.items():
        fake.fail_with.append(code)
        response = await client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=token())
        assert (response.status_code, response.json()["type"].rsplit("/", 1)[1]) == (
            status,
            slug,
        ), code
        assert response.headers["content-type"] == "application/problem+json"
    fake.fail_with = [grpc.StatusCode.UNAVAILABLE] * 3  # all attempts fail
    response = await client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=token())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_the_circuit_opens_and_then_calls_fail_fast(start: Start) -> None:
    fake, client, _runtime = await start(FakeOrders(), breaker_failures=3, breaker_reset_seconds=30)
    fake.fail_with = [grpc.StatusCode.INTERNAL] * 3
    for _ in range(3):
        response = await client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=token())
        assert response.status_code == 502
    assert len(fake.calls) == 3
    began = time.monotonic()
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=token())
    assert response.status_code == 503
    assert "circuit" in response.json()["detail"]
    assert int(response.headers["retry-after"]) >= 1
    assert time.monotonic() - began < 0.5
    assert len(fake.calls) == 3  # orders was not called
    metrics = (await client.get("/metrics")).text
    assert 'ordermesh_gateway_circuit_state{downstream="orders"} 1.0' in metrics


async def test_identical_concurrent_reads_share_one_call_per_caller(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(delay=0.3))
    order_id = uuid.uuid4()
    alice, bob = token("alice"), token("bob")
    responses = await asyncio.gather(
        *(client.get(f"/v1/orders/{order_id}", headers=alice) for _ in range(20)),
        client.get(f"/v1/orders/{order_id}", headers=bob),
    )
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["customer_id"] for r in responses[:20]} == {"alice"}
    assert responses[20].json()["customer_id"] == "bob"  # never someone else's answer
    assert fake.calls == ["GetOrder", "GetOrder"]
    metrics = (await client.get("/metrics")).text
    assert 'ordermesh_gateway_coalesced_total{route="get_order"}' in metrics


@pytest.mark.timeout(120)
async def test_the_export_streams_100k_orders_in_bounded_memory(start: Start) -> None:
    count = 100_000
    _, client, _ = await start(FakeOrders(export_count=count))
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        lines = size = 0
        async with client.stream("GET", "/v1/orders/export", headers=token()) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == count
    growth = peak - baseline
    # The whole export is ~25 MB of JSON; streaming holds a few batches at a time.
    assert size > 20_000_000
    assert growth < size / 5, (growth, size)


async def test_the_export_asks_orders_for_ndjson_and_relays_it_unchanged(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(export_count=1_200))
    response = await client.get("/v1/orders/export", headers=token())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert fake.export_formats == [pb.EXPORT_FORMAT_NDJSON]
    lines = response.content.split(b"\n")
    assert lines.pop() == b""  # every line ends in a newline, the last one too
    assert len(lines) == 1_200
    # The fake's orders differ only in their ids: the line is orders' rendering as sent.
    expected = orjson.dumps(order_json(make_order("alice", orjson.loads(lines[0])["id"])))
    assert lines[0] == expected


async def test_the_export_renders_typed_orders_from_an_orders_without_ndjson(
    start: Start,
) -> None:
    fake, client, _ = await start(FakeOrders(export_count=700, ignores_export_format=True))
    response = await client.get("/v1/orders/export", headers=token())
    assert response.status_code == 200
    assert fake.export_formats == [pb.EXPORT_FORMAT_NDJSON]  # asked, and not understood
    lines = response.content.splitlines()
    assert len(lines) == 700
    first = orjson.loads(lines[0])
    assert lines[0] == orjson.dumps(order_json(make_order("alice", first["id"])))


async def test_an_export_that_cannot_start_answers_a_real_status(start: Start) -> None:
    fake, client, _ = await start(
        FakeOrders(export_count=10, fail_with=[grpc.StatusCode.UNAVAILABLE])
    )
    response = await client.get("/v1/orders/export", headers=token())
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert fake.calls == ["ExportOrders"]  # a stream is never retried


async def test_a_client_leaving_mid_export_cancels_the_orders_stream(start: Start) -> None:
    fake, client, _ = await start(FakeOrders(export_count=1_000_000))
    async with client.stream("GET", "/v1/orders/export", headers=token()) as response:
        assert response.status_code == 200
        async for _ in response.aiter_bytes():
            break
    await asyncio.wait_for(fake.export_abandoned.wait(), timeout=10)


async def test_the_export_body_is_closed_when_the_client_leaves_during_a_send() -> None:
    # Starlette's own StreamingResponse leaves the body suspended here (until garbage
    # collection): ClosingStreamingResponse exists for this case.
    closed = asyncio.Event()

    async def body() -> AsyncGenerator[bytes]:
        try:
            while True:
                yield b"{}\n"
        finally:
            closed.set()

    chunks = body()  # held here, so no garbage collection can close it instead
    response = ClosingStreamingResponse(chunks, media_type="application/x-ndjson")
    sending = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sending.set()
            await asyncio.Event().wait()  # a client that reads no more

    async def receive() -> Message:
        await sending.wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}
    await asyncio.wait_for(response(scope, receive, send), timeout=5)
    assert closed.is_set()


async def test_red_metrics_name_routes_methods_and_outcomes(start: Start) -> None:
    _, client, runtime = await start(FakeOrders())
    order = f"/v1/orders/{uuid.uuid4()}"
    assert (await client.get(order, headers=token())).status_code == 200
    assert (await client.get(order)).status_code == 401  # refused before routing
    summary = await client.get(f"{order}/summary", headers=token())
    assert summary.json()["degraded"] is True  # notify_url points at nothing

    def sample(name: str, **labels: str) -> float:
        return runtime.registry.get_sample_value(name, labels) or 0.0

    http = "ordermesh_http_server_request_duration_seconds_count"
    route = "/v1/orders/{order_id}"
    assert sample(http, method="GET", route=route, status_class="2xx") == 1
    assert sample(http, method="GET", route="unrouted", status_class="4xx") == 1
    assert sample(http, method="GET", route=route + "/summary", status_class="2xx") == 1
    grpc_calls = "ordermesh_grpc_client_duration_seconds_count"
    assert sample(grpc_calls, method="GetOrder", code="OK") == 2
    notify_calls = "ordermesh_http_client_duration_seconds_count"
    assert sample(notify_calls, target="notify", outcome="error") == 1


async def test_an_export_abandoned_during_a_trial_frees_the_circuit(start: Start) -> None:
    fake, client, _ = await start(
        FakeOrders(export_count=1_000_000), breaker_failures=1, breaker_reset_seconds=0.2
    )
    fake.fail_with = [grpc.StatusCode.INTERNAL]
    assert (
        await client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=token())
    ).status_code == 502
    await asyncio.sleep(0.3)  # the circuit is half-open: the next call is its trial
    async with client.stream("GET", "/v1/orders/export", headers=token()) as response:
        assert response.status_code == 200
        async for _ in response.aiter_bytes():
            break  # the client hangs up after the first chunk
    # The gateway gave its verdict (none) before cancelling the stream orders now sees
    # ended; waiting for that, not for a fixed time, keeps a loaded machine from failing.
    await asyncio.wait_for(fake.export_abandoned.wait(), timeout=10)
    # The abandoned trial gave no verdict; the next call may try again (and succeeds).
    response = await client.get(f"/v1/orders/{uuid.uuid4()}", headers=token())
    assert response.status_code == 200, response.text


async def test_the_queued_requests_gauge_counts_the_waiting_ones(start: Start) -> None:
    _, client, runtime = await start(
        FakeOrders(delay=0.5), max_in_flight=1, max_queued=5, max_queue_seconds=10
    )
    reads = [
        asyncio.ensure_future(client.get(f"/v1/orders/{uuid.uuid4()}", headers=token()))
        for _ in range(3)
    ]

    def queued() -> float | None:
        return runtime.registry.get_sample_value("ordermesh_gateway_queued_requests")

    async def two_waiting() -> bool | None:  # and one in flight
        return True if queued() == 2 else None

    await poll_until(two_waiting, seconds=5, what="two requests queued", interval=0.02)
    assert not any(read.done() for read in reads)
    assert {r.status_code for r in await asyncio.gather(*reads)} == {200}
    assert queued() == 0


async def test_writes_beyond_the_bulkhead_wait_in_the_gateway(start: Start) -> None:
    fake, client, runtime = await start(FakeOrders(delay=0.5), write_calls_in_flight=2)
    cancels = [
        asyncio.create_task(client.post(f"/v1/orders/{uuid.uuid4()}/cancel", headers=token()))
        for _ in range(6)
    ]

    def waiting() -> float | None:
        return runtime.registry.get_sample_value("ordermesh_gateway_orders_writes_waiting")

    async def four_waiting() -> bool | None:
        return True if waiting() == 4 else None

    await poll_until(four_waiting, seconds=5, what="four writes waiting", interval=0.02)
    assert {r.status_code for r in await asyncio.gather(*cancels)} == {200}
    assert fake.calls.count("CancelOrder") == 6
    assert fake.peak_in_flight == 2  # never more out to orders at once
    assert waiting() == 0


async def test_reads_that_queue_behind_the_calls_in_flight_share_one_batch_call(
    start: Start,
) -> None:
    fake, client, runtime = await start(FakeOrders(delay=0.3), read_calls_in_flight=1)
    ids = [str(uuid.uuid4()) for _ in range(6)]
    fake.missing = {ids[3]}
    first = asyncio.create_task(client.get(f"/v1/orders/{ids[0]}", headers=token()))
    # The first read is out (its call counted on the fake): the next ones must wait.
    await poll_until(_calls_are(fake, ["GetOrder"]), seconds=5, what="the first GetOrder")
    rest = await asyncio.gather(*(client.get(f"/v1/orders/{i}", headers=token()) for i in ids[1:]))
    responses = [await first, *rest]
    assert fake.calls == ["GetOrder", "BatchGetOrders"]
    assert sorted(fake.batches[0]) == sorted(ids[1:])
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 200, 200]
    for order_id, response in zip(ids, responses, strict=True):
        if response.status_code == 200:
            assert response.json()["id"] == order_id
    assert responses[3].json()["type"].endswith("/not-found")
    reads = runtime.registry.get_sample_value("ordermesh_gateway_orders_reads_per_call_sum")
    assert reads == 6


def _calls_are(fake: FakeOrders, calls: list[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return fake.calls == calls

    return check
