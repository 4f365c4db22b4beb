"""The consumer against real RabbitMQ and PostgreSQL: once each, poison aside, retries."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel
from contracts.topology import ORDER_CREATED
from notify.topology import ATTEMPT_HEADER, DEAD_REASON_HEADER, ROUTING_KEY_HEADER
from servicekit.testing.polling import poll_until

from .conftest import RuntimeFactory
from .support import (
    drain_queue,
    order_event,
    publish_events,
    publish_raw,
    ready_count,
    webhook_receiver,
)

DLQ = "notify.order-events.dlq"
QUEUE = "notify.order-events"


async def _rows(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM notifications")
    return count


async def _recorded(db: asyncpg.Connection, expected: int, seconds: float = 20) -> None:
    async def enough() -> bool:
        return await _rows(db) >= expected

    await poll_until(enough, seconds=seconds, what=f"{expected} notifications recorded")


async def _sent(db: asyncpg.Connection, expected: int, seconds: float = 20) -> None:
    async def enough() -> bool:
        sent: int = await db.fetchval("SELECT count(*) FROM notifications WHERE status = 'sent'")
        return sent >= expected

    await poll_until(enough, seconds=seconds, what=f"{expected} notifications sent")


def _sample(runtime: Any, name: str, **labels: str) -> float:
    value = runtime.registry.get_sample_value(name, labels)
    return float(value or 0.0)


async def test_a_thousand_events_give_a_thousand_rows(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    runtime = await start_runtime()
    events = [order_event() for _ in range(1000)]
    started = time.perf_counter()
    await publish_events(broker, events)
    await _sent(db, 1000)
    elapsed = time.perf_counter() - started
    rows = await db.fetch("SELECT event_id, status, duplicates, channel FROM notifications")
    assert {r["event_id"] for r in rows} == {e.event_id for e in events}
    assert {(r["status"], r["duplicates"], r["channel"]) for r in rows} == {("sent", 0, "log")}
    assert await ready_count(broker, QUEUE) == 0
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="recorded") == 1000
    assert _sample(runtime, "ordermesh_notify_redelivered_total") == 0
    assert _sample(runtime, "ordermesh_event_latency_seconds_count") == 1000
    print(f"1000 events published and recorded in {elapsed:.2f}s")


async def test_the_same_event_twice_is_one_row_with_one_duplicate(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    runtime = await start_runtime()
    event = order_event()
    await publish_events(broker, [event])
    await _recorded(db, 1)
    await publish_events(broker, [event])

    async def counted() -> bool:
        return _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="duplicate") == 1

    await poll_until(counted, what="the duplicate handled")
    row = await db.fetchrow("SELECT status, duplicates FROM notifications")
    assert row is not None
    assert (await _rows(db), row["status"], row["duplicates"]) == (1, "sent", 1)


async def test_poison_is_dead_lettered_with_a_reason_and_blocks_nothing(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    await start_runtime()
    good = [order_event() for _ in range(50)]
    version_two = order_event().model_dump(mode="json") | {"version": 2}
    unknown_type = order_event().model_dump(mode="json") | {"event_type": "order.shipped"}
    poison = {
        "not json": (b"{not json", ORDER_CREATED),
        "version 2": (_json(version_two), ORDER_CREATED),
        "unknown type": (_json(unknown_type), "order.shipped"),
    }
    await publish_events(broker, good[:25])
    for body, routing_key in poison.values():
        await publish_raw(broker, body, routing_key=routing_key)
    await publish_events(broker, good[25:])
    await _sent(db, 50)
    dead = await drain_queue(broker, DLQ, expect=3)
    reasons = {m.body: str(m.headers[DEAD_REASON_HEADER]) for m in dead}
    assert "Invalid JSON" in reasons[b"{not json"]
    assert "unknown schema version 2" in reasons[poison["version 2"][0]]
    assert "order.shipped" in reasons[poison["unknown type"][0]]
    assert all(m.headers["x-schema-version"] == 1 for m in dead)  # original headers kept
    assert all(r.startswith("not a valid order event: ") for r in reasons.values())
    assert await ready_count(broker, QUEUE) == 0
    assert await _rows(db) == 50


async def test_a_transient_failure_is_retried_after_the_delay_then_recorded(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    async with webhook_receiver([503, 503]) as hook:
        runtime = await start_runtime(**_webhook(hook.url), retry_delay_seconds=0.3)
        event = order_event()
        started = time.monotonic()
        await publish_events(broker, [event])

        async def sent() -> bool:
            status = await db.fetchval("SELECT status FROM notifications")
            return bool(status == "sent")

        await poll_until(sent, what="the notification sent")
        assert time.monotonic() - started >= 0.6  # two retries, 0.3 s apart at least
        assert len(hook.requests) == 3
        assert {h["x-ordermesh-event-id"] for h, _ in hook.requests} == {str(event.event_id)}
    row = await db.fetchrow("SELECT duplicates, delivered_at, last_error FROM notifications")
    assert row is not None
    # Our own retries are not duplicates.
    assert (row["duplicates"], row["last_error"]) == (0, None)
    assert row["delivered_at"] is not None
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="retried") == 2
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="recorded") == 1


async def test_a_database_retry_after_the_row_was_recorded_is_not_a_duplicate(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    # One pooled connection, taken by the test while the webhook answers: recording
    # worked, marking the notification sent cannot get a connection, so the message goes
    # to the retry queue with attempt 1 (a database problem uses up no attempts). The
    # copy then finds its own row: that is our retry, not a duplicate delivery.
    async with webhook_receiver([200, 200], delay=0.5) as hook:
        runtime = await start_runtime(
            **_webhook(hook.url),
            db_pool_min_size=1,
            db_pool_max_size=1,
            db_acquire_timeout_seconds=0.2,
            retry_delay_seconds=0.1,
        )
        assert runtime.pool is not None
        await publish_events(broker, [order_event()])

        async def called() -> bool:
            return bool(hook.requests)

        await poll_until(called, what="the first webhook call")
        async with runtime.pool.acquire():
            await asyncio.sleep(1.0)  # past the webhook's answer and the acquire timeout

        async def sent() -> bool:
            return bool(await db.fetchval("SELECT status = 'sent' FROM notifications"))

        await poll_until(sent, what="the notification sent")
        assert len(hook.requests) == 2  # sent again: the first try was never marked sent
    assert await db.fetchval("SELECT duplicates FROM notifications") == 0
    # Once or more: a copy back while the test still holds the connection waits again.
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="retried") >= 1
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="recorded") == 1
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="duplicate") == 0


async def test_a_permanent_failure_is_dead_lettered_at_once(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    async with webhook_receiver([400]) as hook:
        await start_runtime(**_webhook(hook.url))
        event = order_event()
        await publish_events(broker, [event])
        (dead,) = await drain_queue(broker, DLQ, expect=1)
        assert len(hook.requests) == 1
    assert dead.message_id == str(event.event_id)
    assert dead.headers[DEAD_REASON_HEADER] == "permanent failure: webhook answered 400 Bad Request"
    row = await db.fetchrow("SELECT status, last_error FROM notifications")
    assert row is not None
    assert (row["status"], row["last_error"]) == ("failed", "webhook answered 400 Bad Request")


async def test_an_event_is_dead_lettered_after_max_attempts(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    async with webhook_receiver([500] * 10) as hook:
        await start_runtime(**_webhook(hook.url), max_attempts=3, retry_delay_seconds=0.1)
        await publish_events(broker, [order_event()])
        (dead,) = await drain_queue(broker, DLQ, expect=1)
        assert len(hook.requests) == 3
    assert dead.headers[ATTEMPT_HEADER] == 3
    # Retries come back under the queue's name; the event's own routing key is kept.
    assert dead.headers[ROUTING_KEY_HEADER] == "order.created"
    assert dead.headers[DEAD_REASON_HEADER] == (
        "gave up after 3 attempts; last error: webhook answered 500 Internal Server Error"
    )
    status = await db.fetchval("SELECT status FROM notifications")
    assert status == "failed"
    assert await ready_count(broker, "notify.order-events.retry") == 0


async def test_a_message_that_cannot_be_settled_is_requeued_not_lost(
    start_runtime: RuntimeFactory, broker: AbstractChannel, db: asyncpg.Connection
) -> None:
    # The retry queue is gone, so the copy for a retry cannot be routed: the consumer
    # must give the message back (not drop it), and it is handled once the queue exists.
    async with webhook_receiver([503]) as hook:
        runtime = await start_runtime(**_webhook(hook.url), delivery_limit=50)
        await broker.queue_delete("notify.order-events.retry")
        await publish_events(broker, [order_event()])

        async def requeued() -> bool:
            return _sample(runtime, "ordermesh_notify_redelivered_total") >= 1

        await poll_until(requeued, what="a redelivery")
        hook.statuses.clear()  # from now on the webhook answers 200
        await _recorded(db, 1)

        async def sent() -> bool:
            return bool(await db.fetchval("SELECT status FROM notifications") == "sent")

        await poll_until(sent, what="the notification sent")


def _webhook(url: str) -> dict[str, Any]:
    return {
        "sender": "webhook",
        "webhook_url": url,
        "webhook_secret": "k-" + uuid.uuid4().hex,
        "webhook_tries": 1,
        "webhook_timeout_seconds": 2.0,
    }


def _json(value: object) -> bytes:
    import orjson

    return orjson.dumps(value)


async def test_a_database_outage_is_waited_out_without_using_up_attempts(
    start_runtime: RuntimeFactory, broker: AbstractChannel
) -> None:
    # A short drain: the message keeps cycling, so shutdown never sees a quiet queue.
    runtime = await start_runtime(max_attempts=2, retry_delay_seconds=0.05, drain_seconds=0.5)
    assert runtime.pool is not None
    await runtime.pool.close()  # every query now fails as "database unavailable"
    await publish_events(broker, [order_event()])

    async def cycled() -> bool:
        return _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="retried") >= 5

    await poll_until(cycled, what="five retries")
    assert _sample(runtime, "ordermesh_notify_messages_handled_total", outcome="dead_lettered") == 0
    assert await ready_count(broker, DLQ) == 0


async def test_the_consumer_reconnects_when_the_broker_drops_it(
    start_runtime: RuntimeFactory,
    amqp_url: str,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = await start_runtime()
    vhost = amqp_url.rsplit("/", 1)[1]
    await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "test: broker restart"],
        check=True,
        capture_output=True,
    )

    async def reconnected() -> bool:
        assert runtime.subscription is not None
        report = await runtime.readiness.evaluate()
        lost = "broker connection lost" in caplog.text
        return lost and runtime.subscription.running and report.ready

    await poll_until(reconnected, what="the consumer back")
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await publish_events(channel, [order_event() for _ in range(10)])
        await _sent(db, 10)
    finally:
        await connection.close()
