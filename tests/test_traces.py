"""One order creation is one connected trace, from the client to the notification.

The local stack runs as real processes exporting OTLP/HTTP to a real receiver in this
test; the test sends its own `traceparent`, creates an order through the gateway and
follows the parent links of what every service exported: the gateway's middleware
chain, the gRPC hop, orders' SQL and outbox write, the relay's publish, the broker hop,
notify's consume, its SQL and its sender.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost
from servicekit.testing.otlp import OtlpReceiver, ReceivedSpan

from tests.e2e.conftest import LOCAL_LIMITS
from tests.e2e.support import ORDER
from tests.e2e.target import Target, new_subject
from tests.local_stack import StackPorts, up_environment
from tests.stack_process import running_stack

TRACE_SECONDS = 30.0
CREATE = "/ordermesh.orders.v1.OrdersService/CreateOrder"
BATCH_GET = "/ordermesh.orders.v1.OrdersService/BatchGetOrders"


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, OtlpReceiver]]:
    """The local stack with every trace sampled and exported to a receiver of ours."""
    state_dir: Path = tmp_path_factory.mktemp("traced-stack")
    ports = StackPorts.free()
    vhost = f"traces-{uuid.uuid4().hex[:8]}"
    create_vhost(vhost)
    with OtlpReceiver() as receiver:
        env = up_environment(
            AMQP_URL=amqp_url(vhost),
            PYTHONUNBUFFERED="1",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_TRACES_SAMPLER="parentbased_always_on",
            OTEL_BSP_SCHEDULE_DELAY="100",
            **LOCAL_LIMITS,
            # One read call out at a time, so concurrent reads batch (the batch test).
            GATEWAY_READ_CALLS_IN_FLIGHT="1",
        )
        try:
            with running_stack(state_dir, ports, env):
                yield Target(url=f"http://127.0.0.1:{ports.gateway}"), receiver
        finally:
            delete_vhost(vhost)


def test_an_order_creation_is_one_trace_from_the_client_to_the_sender(
    traced_stack: tuple[Target, OtlpReceiver],
) -> None:
    target, receiver = traced_stack
    trace_id, client_span = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    headers = {
        **target.auth(),
        "Idempotency-Key": uuid.uuid4().hex,
        "traceparent": f"00-{trace_id}-{client_span}-01",
    }
    response = httpx.post(f"{target.url}/v1/orders", json=ORDER, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    assert response.headers["x-trace-id"] == trace_id

    spans = _wait_for_trace(receiver, trace_id, until="notify.send")
    tree = _Tree(spans)

    server = tree.only("gateway", "SERVER", "POST /v1/orders")
    assert server.parent_id == client_span, "the gateway continues the caller's trace"
    for step in ("gateway.authenticate", "gateway.handler"):  # a new token: really verified
        tree.assert_child(server, tree.only("gateway", "INTERNAL", step))
    # Decisions that took microseconds are not spans: admission without a wait, the rate limit.
    internal = {s.name for s in tree.named("gateway", kind="INTERNAL")}
    assert not internal & {"gateway.admit", "gateway.rate_limit"}, internal
    grpc_client = tree.only("gateway", "CLIENT", CREATE)
    tree.assert_descends(grpc_client, tree.only("gateway", "INTERNAL", "gateway.handler"))

    grpc_server = tree.only("orders", "SERVER", CREATE)
    tree.assert_child(grpc_client, grpc_server)
    outbox_write = tree.only("orders", "INTERNAL", "orders.outbox.write")
    tree.assert_descends(outbox_write, grpc_server)
    orders_sql = tree.named("orders", kind="CLIENT")
    assert any(s.attributes.get("db.system") == "postgresql" for s in orders_sql), orders_sql
    assert any(s.parent_id == outbox_write.span_id for s in orders_sql), "the outbox INSERT"

    publish = tree.only("orders", "PRODUCER")
    tree.assert_child(outbox_write, publish)  # across the outbox table and the relay

    consume = tree.only("notify", "CONSUMER")
    tree.assert_child(publish, consume)  # across the broker, in the message headers
    notify_sql = [s for s in tree.named("notify", kind="CLIENT") if "db.system" in s.attributes]
    assert notify_sql, "notify's queries are in the trace"
    for query in notify_sql:
        tree.assert_descends(query, consume)
    tree.assert_descends(tree.only("notify", "INTERNAL", "notify.send"), consume)


def test_reads_sent_as_one_batch_show_the_hop_in_one_trace_linked_from_the_others(
    traced_stack: tuple[Target, OtlpReceiver],
) -> None:
    target, receiver = traced_stack
    auth = target.auth(new_subject())  # 40 requests: within the local rate limit's burst
    order_ids = []
    for _ in range(10):  # distinct orders: identical reads would share one call instead
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        created = httpx.post(f"{target.url}/v1/orders", json=ORDER, headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        order_ids.append(created.json()["id"])

    async def read_all(trace_ids: list[str]) -> list[int]:
        async with httpx.AsyncClient(base_url=target.url, timeout=10) as client:
            responses = await asyncio.gather(
                *(
                    client.get(
                        f"/v1/orders/{order_id}",
                        headers={**auth, "traceparent": f"00-{t}-{random.getrandbits(64):016x}-01"},
                    )
                    for order_id, t in zip(order_ids, trace_ids, strict=True)
                )
            )
        return [r.status_code for r in responses]

    ours: set[str] = set()
    batch: ReceivedSpan | None = None
    for _ in range(3):  # concurrent reads batch unless the first always came back first
        trace_ids = [f"{random.getrandbits(128):032x}" for _ in order_ids]
        ours.update(trace_ids)
        assert asyncio.run(read_all(trace_ids)) == [200] * len(order_ids)
        time.sleep(0.5)  # the spans' export delay
        batches = [s for s in receiver.spans() if s.name == BATCH_GET and s.trace_id in ours]
        if batch := next((s for s in batches if s.kind == "CLIENT"), None):
            break
    assert batch is not None, "10 concurrent reads, 3 times, never went as one batch"
    assert batch.links, "the batch's span links to the other reads it served"
    for trace_id, _ in batch.links:
        assert trace_id in ours
        assert trace_id != batch.trace_id

    tree = _Tree(_wait_for_trace(receiver, batch.trace_id, until=BATCH_GET))
    tree.assert_descends(batch, tree.only("gateway", "SERVER", "GET /v1/orders/{order_id}"))
    server = tree.only("orders", "SERVER", BATCH_GET)
    tree.assert_child(batch, server)
    queries = [q for q in tree.named("orders", kind="CLIENT") if "db.system" in q.attributes]
    assert len(queries) == 1, f"one query for the whole batch, got {queries}"
    tree.assert_descends(queries[0], server)


def test_probes_and_housekeeping_make_no_traces(traced_stack: tuple[Target, OtlpReceiver]) -> None:
    target, receiver = traced_stack
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{target.url}{path}", timeout=5).status_code == 200
    time.sleep(1.5)  # health polls, relay polls and backlog refreshes run meanwhile
    roots = [s for s in receiver.spans() if s.parent_id is None]
    unexpected = [s for s in roots if s.kind not in ("SERVER",)]
    assert not unexpected, f"root spans outside requests: {sorted(map(str, unexpected))}"
    assert not [s for s in roots if "/healthz" in s.name or "Health" in s.name], roots


def _wait_for_trace(receiver: OtlpReceiver, trace_id: str, *, until: str) -> list[ReceivedSpan]:
    deadline = time.monotonic() + TRACE_SECONDS
    while time.monotonic() < deadline:
        spans = [s for s in receiver.spans() if s.trace_id == trace_id]
        if any(s.name == until for s in spans):
            time.sleep(0.5)  # the spans that end after the sender's are one batch behind
            return [s for s in receiver.spans() if s.trace_id == trace_id]
        time.sleep(0.1)
    got = sorted(map(str, (s for s in receiver.spans() if s.trace_id == trace_id)))
    pytest.fail(f"no {until!r} span in trace {trace_id} within {TRACE_SECONDS}s; got {got}")


class _Tree:
    """The spans of one trace, with the lookups the assertions above need."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans
        self.by_id = {s.span_id: s for s in spans}

    def named(self, service: str, *, kind: str, name: str | None = None) -> list[ReceivedSpan]:
        return [
            s
            for s in self.spans
            if s.service == service and s.kind == kind and (name is None or s.name == name)
        ]

    def only(self, service: str, kind: str, name: str | None = None) -> ReceivedSpan:
        found = self.named(service, kind=kind, name=name)
        assert len(found) == 1, (
            f"expected one {kind} span {name or ''} from {service}, got {found}; "
            f"the trace has {sorted(map(str, self.spans))}"
        )
        return found[0]

    def assert_child(self, parent: ReceivedSpan, child: ReceivedSpan) -> None:
        assert child.parent_id == parent.span_id, f"{child} is not a child of {parent}"

    def assert_descends(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> None:
        node: ReceivedSpan | None = span
        while node is not None and node.parent_id is not None:
            if node.parent_id == ancestor.span_id:
                return
            node = self.by_id.get(node.parent_id)
        pytest.fail(f"{span} does not descend from {ancestor}")
