"""notify's queues on the broker, declared idempotently at every start.

    orders.events (topic) --order.*--> notify.order-events (quorum)
        |  x-delivery-limit: a message the broker delivered that often (crash loops)
        |  is dead-lettered; at-least-once dead-lettering keeps it until the DLQ has it
        v
    notify.dlx (fanout) --> notify.order-events.dlq (quorum)

    notify.order-events.retry (quorum, x-message-ttl = retry delay)
        --expired, via the default exchange--> notify.order-events

The consumer publishes poison messages to the DLX itself (with a reason header) and
transient failures to the retry queue, each with a publisher confirm before it acks.
Queue arguments cannot change on an existing queue: the broker refuses the
declaration (PRECONDITION_FAILED), so a new delivery limit or delay needs new queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, FieldValue
from contracts.topology import ALL_ORDER_EVENTS, ORDER_EVENTS_EXCHANGE

from notify.settings import NotifySettings

# Headers notify adds to the copies it publishes (retries and dead letters).
ATTEMPT_HEADER: Final = "x-ordermesh-attempt"  # 1 for the first delivery
DEAD_REASON_HEADER: Final = "x-ordermesh-dead-reason"  # why it was dead-lettered
LAST_ERROR_HEADER: Final = "x-ordermesh-last-error"  # why the last attempt failed
ROUTING_KEY_HEADER: Final = "x-ordermesh-routing-key"  # the event's original routing key

QueueArguments = dict[str, FieldValue]

# Dead-lettering from a quorum queue is at-most-once unless the queue uses this pair
# (RabbitMQ 3.10+): the broker keeps a message until the dead-letter target confirms it.
_SAFE_DEAD_LETTERING: QueueArguments = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


@dataclass(frozen=True, slots=True)
class Topology:
    queue: AbstractQueue
    retry_queue: AbstractQueue
    dead_letter_exchange: AbstractExchange
    dead_letter_queue: AbstractQueue


def queue_arguments(settings: NotifySettings) -> QueueArguments:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": settings.dead_letter_exchange,
        **_SAFE_DEAD_LETTERING,
    }


def retry_queue_arguments(settings: NotifySettings) -> QueueArguments:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": round(settings.retry_delay_seconds * 1000),
        # Expired messages go back to the main queue through the default exchange.
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": settings.queue,
        **_SAFE_DEAD_LETTERING,
    }


async def declare(channel: AbstractChannel, settings: NotifySettings) -> Topology:
    """Declare (or confirm) every exchange, queue and binding notify uses."""
    events = await channel.declare_exchange(
        ORDER_EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(
        settings.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_letters = await channel.declare_queue(
        settings.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_letters.bind(dlx)
    queue = await channel.declare_queue(
        settings.queue, durable=True, arguments=queue_arguments(settings)
    )
    await queue.bind(events, routing_key=ALL_ORDER_EVENTS)
    retry = await channel.declare_queue(
        settings.retry_queue, durable=True, arguments=retry_queue_arguments(settings)
    )
    return Topology(
        queue=queue, retry_queue=retry, dead_letter_exchange=dlx, dead_letter_queue=dead_letters
    )
