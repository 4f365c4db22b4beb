"""The broker topology: idempotent declaration, quorum arguments, delivery limit, retries."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractChannel
from notify import topology

from .conftest import make_settings
from .support import drain_queue, order_event, publish_events


def _queues(vhost: str) -> dict[str, dict[str, object]]:
    """name -> {"type": ..., "arguments": {...}} as the broker reports them."""
    done = subprocess.run(
        [
            "rabbitmqctl",
            "list_queues",
            "-p",
            vhost,
            "name",
            "type",
            "arguments",
            "--formatter=json",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return {
        q["name"]: {"type": q["type"], "arguments": {k: v for k, _, v in q["arguments"]}}
        for q in json.loads(done.stdout)
    }


async def test_declaring_twice_is_harmless_and_sets_every_argument(
    broker: AbstractChannel, amqp_url: str
) -> None:
    settings = make_settings("postgresql://unused", amqp_url, retry_delay_seconds=1.5)
    await topology.declare(broker, settings)
    await topology.declare(broker, settings)
    queues = await asyncio.to_thread(_queues, amqp_url.rsplit("/", 1)[1])
    assert {name: q["type"] for name, q in queues.items()} == {
        "notify.order-events": "quorum",
        "notify.order-events.retry": "quorum",
        "notify.order-events.dlq": "quorum",
    }
    assert queues["notify.order-events"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 10,
        "x-dead-letter-exchange": "notify.dlx",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    retry = queues["notify.order-events.retry"]["arguments"]
    assert isinstance(retry, dict)
    assert retry["x-message-ttl"] == 1500
    assert retry["x-dead-letter-routing-key"] == "notify.order-events"


async def test_a_message_returned_too_often_is_dead_lettered_by_the_broker(
    broker: AbstractChannel, amqp_url: str
) -> None:
    settings = make_settings("postgresql://unused", amqp_url, delivery_limit=2)
    declared = await topology.declare(broker, settings)
    event = order_event()
    await publish_events(broker, [event])
    deliveries = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = await declared.queue.get(fail=False, timeout=5)
        if message is None:
            if deliveries > 2:
                break
            await asyncio.sleep(0.02)
            continue
        deliveries += 1
        await message.nack(requeue=True)  # what a crashing consumer amounts to
    assert deliveries == 3  # the first delivery and two more, then the limit
    (dead,) = await drain_queue(broker, settings.dead_letter_queue, expect=1)
    assert dead.message_id == str(event.event_id)
    death = dead.headers["x-death"]
    assert isinstance(death, list)
    assert isinstance(death[0], dict)
    assert death[0]["reason"] == "delivery_limit"


async def test_the_retry_queue_hands_messages_back_after_the_delay(
    broker: AbstractChannel, amqp_url: str
) -> None:
    settings = make_settings("postgresql://unused", amqp_url, retry_delay_seconds=0.3)
    declared = await topology.declare(broker, settings)
    started = time.monotonic()
    body = uuid.uuid4().bytes
    await broker.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=settings.retry_queue,
    )
    (back,) = await drain_queue(broker, settings.queue, expect=1)
    assert back.body == body
    assert time.monotonic() - started >= 0.3
    assert declared.retry_queue.name == settings.retry_queue
