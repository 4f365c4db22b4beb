"""Acks sent just before the subscription closes are kept by the broker.

The real RabbitMQ, and the real Subscription; only the consumer is a stand-in that
holds every message until shutdown and then acks them all at once, the last moment
before the connection closes. RabbitMQ's quorum queues drop acks still buffered in the
channel when it closes (rabbitmq/rabbitmq-server#10327): without the pause before the
close, about one run in four of this test found messages back in the queue, and
test_process's SIGTERM test saw them redelivered. The loss is a race, so each round
is one more chance to catch it.
"""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from notify import topology
from notify.consumer import Settle
from notify.subscription import Subscription
from servicekit.testing.polling import poll_until

from .conftest import make_settings
from .support import order_event, publish_events, ready_count

HELD = 300


class HoldThenAck:
    """Holds each message until `release`, then acks it: a burst of acks at shutdown."""

    def __init__(self) -> None:
        self.held = 0
        self.release = asyncio.Event()

    async def handle(self, message: AbstractIncomingMessage, settle: Settle) -> None:
        self.held += 1
        await self.release.wait()
        await settle.ack(message)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("round_", range(4))
async def test_a_burst_of_acks_right_before_the_close_is_not_lost(
    broker: AbstractChannel, amqp_url: str, round_: int
) -> None:
    settings = make_settings("postgresql://unused", amqp_url, prefetch=HELD, max_concurrency=HELD)
    await topology.declare(broker, settings)
    await publish_events(broker, [order_event() for _ in range(HELD)])
    consumer = HoldThenAck()
    subscription = Subscription(settings=settings, consumer=consumer)  # type: ignore[arg-type]
    await subscription.start()

    async def all_held() -> bool:
        return consumer.held == HELD

    await poll_until(all_held, what=f"{HELD} messages held")
    stopping = asyncio.create_task(subscription.stop(drain_seconds=10))
    await asyncio.sleep(0.3)  # stop has held acks back and cancelled the consumer
    assert not stopping.done()
    consumer.release.set()  # every ack now, then stop closes at once
    await stopping

    async def settled() -> bool:
        # A lost ack brings its message back to the queue when the channel ends.
        return await ready_count(broker, settings.queue) == 0

    await asyncio.sleep(0.5)
    assert await ready_count(broker, settings.queue) == 0, "acks were lost at the close"
    assert await settled()
