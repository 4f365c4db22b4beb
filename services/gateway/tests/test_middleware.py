"""The protective middleware, driven directly with hand-built scopes and channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

import pytest
from gateway.middleware import BodyLimit, LoadShedder, RateLimiter, TrustedHost
from gateway.middleware.asgi import ASGIApp, Message, Receive, Scope, Send

PROBLEMS = "https://ordermesh.dev/problems/"
Tasks = list[asyncio.Task["Response"]]


class Downstream:
    """A tiny app answering 200 with the body it read; it records whether it ran."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        if self.gate is not None:
            await self.gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Response:
    def __init__(self, messages: list[Message]) -> None:
        start = messages[0]
        self.status: int = start["status"]
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]}
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    def problem(self, slug: str) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json"
        assert int(self.headers["content-length"]) == len(self.body)
        payload = json.loads(self.body)
        assert payload["type"] == PROBLEMS + slug
        assert payload["status"] == self.status
        assert isinstance(payload["title"], str)
        assert isinstance(payload["detail"], str)
        return dict(payload)


def http_scope(
    path: str = "/v1/orders", headers: Iterable[tuple[str, str]] = (), method: str = "POST"
) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


async def call(app: ASGIApp, scope: Scope, chunks: Iterable[bytes] = (b"",)) -> Response:
    parts = list(chunks)
    inbound: list[Message] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if inbound:
            return inbound.pop(0)
        await asyncio.Event().wait()  # a live connection: nothing more until disconnect
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return Response(sent)


def wrap(middleware: str, downstream: ASGIApp) -> ASGIApp:
    if middleware == "body":
        return BodyLimit(downstream, max_bytes=0)
    if middleware == "shed":
        return LoadShedder(downstream, max_in_flight=1)
    if middleware == "rate":
        return RateLimiter(downstream, rate_per_second=1, burst=1, key=lambda s: "k")
    return TrustedHost(downstream, allowed_hosts=["api.example"])


@pytest.mark.parametrize("middleware", ["body", "shed", "rate", "host"])
async def test_non_http_scopes_pass_straight_through(middleware: str) -> None:
    downstream = Downstream()
    app = wrap(middleware, downstream)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError(f"middleware answered a non-http scope: {message}")

    for kind in ("lifespan", "websocket"):
        await app({"type": kind, "path": "/", "headers": []}, receive, send)
    assert downstream.calls == 2


# --- BodyLimit ---------------------------------------------------------------------


async def test_body_within_declared_limit_reaches_the_app() -> None:
    downstream = Downstream()
    response = await call(
        BodyLimit(downstream, max_bytes=10),
        http_scope(headers=[("content-length", "5")]),
        [b"hello"],
    )
    assert response.status == 200
    assert downstream.bodies == [b"hello"]


async def test_big_declared_content_length_is_413_before_the_app_runs() -> None:
    downstream = Downstream()
    response = await call(
        BodyLimit(downstream, max_bytes=10), http_scope(headers=[("content-length", "11")])
    )
    assert response.status == 413
    response.problem("payload-too-large")
    assert downstream.calls == 0


async def test_big_chunked_body_is_413_and_the_app_never_runs() -> None:
    downstream = Downstream()
    response = await call(
        BodyLimit(downstream, max_bytes=10),
        http_scope(headers=[("transfer-encoding", "chunked")]),
        [b"12345", b"67890", b"x", b"never read"],
    )
    assert response.status == 413
    response.problem("payload-too-large")
    assert downstream.calls == 0


async def test_small_chunked_body_is_replayed_whole_to_the_app() -> None:
    downstream = Downstream()
    response = await call(
        BodyLimit(downstream, max_bytes=10),
        http_scope(headers=[("transfer-encoding", "chunked")]),
        [b"12345", b"67890", b""],
    )
    assert response.status == 200
    assert downstream.bodies == [b"1234567890"]


async def test_bodiless_request_passes() -> None:
    downstream = Downstream()
    response = await call(BodyLimit(downstream, max_bytes=0), http_scope(method="GET"))
    assert response.status == 200


@pytest.mark.parametrize(
    ("http_version", "headers", "buffered"),
    [
        ("1.1", [], False),  # no body by definition (RFC 9112, 6.3): passed straight on
        ("1.0", [], False),
        ("1.1", [("transfer-encoding", "chunked")], True),
        ("2", [], True),  # HTTP/2 frames a body without either header
    ],
)
async def test_only_requests_that_may_have_a_body_are_buffered(
    http_version: str, headers: list[tuple[str, str]], buffered: bool
) -> None:
    async def original() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    seen: list[Receive] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)

    async def send(message: Message) -> None:
        raise AssertionError(f"BodyLimit answered: {message}")

    scope = {**http_scope(headers=headers, method="GET"), "http_version": http_version}
    await BodyLimit(app, max_bytes=10)(scope, original, send)
    assert len(seen) == 1
    assert (seen[0] is not original) == buffered


async def test_client_gone_while_buffering_calls_nothing() -> None:
    downstream = Downstream()
    sent: list[Message] = []
    inbound: list[Message] = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return inbound.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyLimit(downstream, max_bytes=10)(http_scope(), receive, send)
    assert (downstream.calls, sent) == (0, [])


@pytest.mark.parametrize("values", [["abc"], ["-1"], [""], ["1.5"], ["5", "6"]])
async def test_malformed_content_length_is_400(values: list[str]) -> None:
    downstream = Downstream()
    scope = http_scope(headers=[("content-length", v) for v in values])
    response = await call(BodyLimit(downstream, max_bytes=10), scope)
    assert response.status == 400
    response.problem("invalid-content-length")
    assert downstream.calls == 0


# --- LoadShedder -------------------------------------------------------------------


async def test_one_over_the_bound_is_shed_at_once_and_the_rest_complete() -> None:
    gate = asyncio.Event()
    shed_events: list[None] = []
    shedder = LoadShedder(
        Downstream(gate),
        max_in_flight=3,
        retry_after_seconds=7,
        on_shed=lambda: shed_events.append(None),
    )
    tasks = [asyncio.create_task(call(shedder, http_scope())) for _ in range(4)]
    done, _ = await asyncio.wait(tasks, timeout=1, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1  # the shed one answered without waiting for the gate
    assert shedder.in_flight == 3
    gate.set()
    responses = await asyncio.gather(*tasks)
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 200, 503]
    shed = next(r for r in responses if r.status == 503)
    shed.problem("overloaded")
    assert shed.headers["retry-after"] == "7"
    assert (shedder.in_flight, shedder.shed, len(shed_events)) == (0, 1, 1)


async def test_beyond_the_bound_requests_queue_in_order_and_run_when_a_slot_frees() -> None:
    order: list[int] = []

    class Recording(Downstream):
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            order.append(int(scope["path"].rsplit("/", 1)[-1]))
            await super().__call__(scope, receive, send)

    gate = asyncio.Event()
    shedder = LoadShedder(Recording(gate), max_in_flight=1, max_queued=2, max_queue_seconds=5)
    tasks = []
    for n in range(4):
        tasks.append(asyncio.create_task(call(shedder, http_scope(path=f"/v1/orders/{n}"))))
        await asyncio.sleep(0.01)  # arrive in this order
    done, _ = await asyncio.wait(tasks, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
    assert [tasks.index(t) for t in done] == [3]  # the queue was full: shed at once
    assert (shedder.in_flight, shedder.queued, order) == (1, 2, [0])
    gate.set()
    responses = await asyncio.gather(*tasks)
    assert [r.status for r in responses] == [200, 200, 200, 503]
    assert order == [0, 1, 2]  # first come, first served
    assert (shedder.in_flight, shedder.queued, shedder.shed) == (0, 0, 1)


async def test_a_request_waiting_longer_than_the_queue_allows_is_shed() -> None:
    gate = asyncio.Event()
    shedder = LoadShedder(Downstream(gate), max_in_flight=1, max_queued=5, max_queue_seconds=0.05)
    busy = asyncio.create_task(call(shedder, http_scope()))
    await asyncio.sleep(0)
    waited = await asyncio.wait_for(call(shedder, http_scope()), timeout=2)
    waited.problem("overloaded")
    assert waited.status == 503
    assert (shedder.queued, shedder.shed) == (0, 1)
    gate.set()
    assert (await busy).status == 200
    assert shedder.in_flight == 0


async def one_running_two_waiting() -> tuple[asyncio.Event, Downstream, LoadShedder, Tasks]:
    """A shedder with one slot, taken by a request held at `gate`, and two in its queue."""
    gate = asyncio.Event()
    downstream = Downstream(gate)
    shedder = LoadShedder(downstream, max_in_flight=1, max_queued=2, max_queue_seconds=5)
    running = asyncio.create_task(call(shedder, http_scope()))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(call(shedder, http_scope())) for _ in range(2)]
    await asyncio.sleep(0.01)
    return gate, downstream, shedder, [running, *waiting]


async def test_a_waiter_that_leaves_gives_up_its_place_and_loses_no_slot() -> None:
    gate, downstream, shedder, (busy, leaving, staying) = await one_running_two_waiting()
    assert shedder.queued == 2
    leaving.cancel()
    await asyncio.sleep(0)
    assert shedder.queued == 1
    gate.set()
    assert [(await busy).status, (await staying).status] == [200, 200]
    assert leaving.cancelled()
    assert (shedder.in_flight, shedder.queued, downstream.calls) == (0, 0, 2)


async def test_a_slot_handed_to_a_waiter_that_is_cancelled_passes_to_the_next() -> None:
    gate, _, shedder, (first, second, third) = await one_running_two_waiting()
    gate.set()
    # Let `first` finish (handing its slot to `second`), then cancel `second` before
    # it runs again: the slot must go on to `third`, not be lost.
    # Polled one loop turn at a time on purpose: an Event or asyncio.wait would wake
    # this test only after `second` has run.
    while not first.done():  # noqa: ASYNC110
        await asyncio.sleep(0)
    second.cancel()
    assert (await third).status == 200
    assert second.cancelled()
    assert (shedder.in_flight, shedder.queued) == (0, 0)


async def test_exempt_paths_are_never_shed() -> None:
    gate = asyncio.Event()
    shedder = LoadShedder(Downstream(gate), max_in_flight=1)
    busy = asyncio.create_task(call(shedder, http_scope()))
    probes = [
        asyncio.create_task(call(shedder, http_scope(path=p, method="GET")))
        for p in ("/healthz", "/readyz", "/metrics")
    ]
    await asyncio.sleep(0)
    assert shedder.in_flight == 1
    gate.set()
    responses = await asyncio.gather(busy, *probes)
    assert [r.status for r in responses] == [200, 200, 200, 200]
    assert shedder.shed == 0


async def test_in_flight_is_released_when_the_app_fails() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    shedder = LoadShedder(broken, max_in_flight=1)
    with pytest.raises(RuntimeError):
        await call(shedder, http_scope())
    assert shedder.in_flight == 0


# --- RateLimiter -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def subject_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-subject":
            return str(value.decode())
    return None


def as_subject(subject: str) -> Scope:
    return http_scope(headers=[("x-subject", subject)])


async def test_burst_passes_then_429_then_passes_after_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Downstream(), rate_per_second=0.5, burst=3, key=subject_key, clock=clock)
    for _ in range(3):
        assert (await call(limiter, as_subject("alice"))).status == 200
    limited = await call(limiter, as_subject("alice"))
    assert limited.status == 429
    limited.problem("rate-limited")
    assert limited.headers["retry-after"] == "2"  # one token per 2 s
    clock.now += 1.5
    retry = await call(limiter, as_subject("alice"))
    assert (retry.status, retry.headers["retry-after"]) == (429, "1")
    clock.now += 0.5
    assert (await call(limiter, as_subject("alice"))).status == 200
    assert limiter.limited == 2


async def test_retry_after_is_at_least_one_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Downstream(), rate_per_second=100, burst=1, key=subject_key, clock=clock)
    assert (await call(limiter, as_subject("alice"))).status == 200
    limited = await call(limiter, as_subject("alice"))
    assert (limited.status, limited.headers["retry-after"]) == (429, "1")


async def test_keys_are_independent_and_none_is_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Downstream(), rate_per_second=1, burst=1, key=subject_key, clock=clock)
    assert (await call(limiter, as_subject("alice"))).status == 200
    assert (await call(limiter, as_subject("alice"))).status == 429
    assert (await call(limiter, as_subject("bob"))).status == 200
    for _ in range(20):
        assert (await call(limiter, http_scope())).status == 200
    assert len(limiter) == 2


async def test_idle_buckets_are_dropped_once_full_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Downstream(), rate_per_second=1, burst=2, key=subject_key, clock=clock)
    for i in range(100):
        await call(limiter, as_subject(f"user-{i}"))
    assert len(limiter) == 100
    clock.now += 2  # burst / rate: every bucket is full again
    await call(limiter, as_subject("late"))
    assert len(limiter) == 1


async def test_key_count_is_capped_least_recently_used_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        Downstream(), rate_per_second=1, burst=1, key=subject_key, clock=clock, max_keys=3
    )
    for name in ("a", "b", "c"):
        await call(limiter, as_subject(name))
    assert (await call(limiter, as_subject("a"))).status == 429  # "a" is now most recent
    await call(limiter, as_subject("d"))  # evicts "b", the least recently used
    assert len(limiter) == 3
    assert (await call(limiter, as_subject("a"))).status == 429
    assert (await call(limiter, as_subject("c"))).status == 429
    assert (await call(limiter, as_subject("b"))).status == 200  # forgotten: a fresh bucket


# --- TrustedHost -------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["api.ordermesh.dev", "api.ordermesh.dev:8443", "API.Ordermesh.Dev", "[::1]:8080"]
)
async def test_allowed_hosts_pass_with_or_without_port(host: str) -> None:
    app = TrustedHost(Downstream(), allowed_hosts=["api.ordermesh.dev", "[::1]"])
    assert (await call(app, http_scope(headers=[("host", host)]))).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        [("host", "evil.example")],
        [("host", "evil.example:443")],
        [("host", "api.ordermesh.dev.evil")],
        [],
    ],
)
async def test_other_hosts_are_400(headers: list[tuple[str, str]]) -> None:
    downstream = Downstream()
    app = TrustedHost(downstream, allowed_hosts=["api.ordermesh.dev"])
    response = await call(app, http_scope(headers=headers))
    assert response.status == 400
    response.problem("unknown-host")
    assert downstream.calls == 0


async def test_wildcard_allows_every_host() -> None:
    app = TrustedHost(Downstream(), allowed_hosts=["*"])
    assert (await call(app, http_scope(headers=[("host", "anything.example")]))).status == 200
