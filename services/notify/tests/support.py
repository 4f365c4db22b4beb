"""Helpers shared by the notify tests: events, publishing, polling, a webhook receiver."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, DeliveryMode
from aiohttp import web
from contracts.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderEvent,
    OrderLine,
    OrderSnapshot,
)
from contracts.topology import ORDER_EVENTS_EXCHANGE, SCHEMA_VERSION_HEADER

_KINDS: dict[str, type[OrderCreated] | type[OrderConfirmed] | type[OrderCancelled]] = {
    "pending": OrderCreated,
    "confirmed": OrderConfirmed,
    "cancelled": OrderCancelled,
}


def order_event(
    status: str = "pending", *, order_id: uuid.UUID | None = None, customer: str = "alice"
) -> OrderEvent:
    """An order event as orders' outbox would write it."""
    now = datetime.now(UTC)
    snapshot = OrderSnapshot(
        id=order_id or uuid.uuid4(),
        customer_id=customer,
        status=status,  # type: ignore[arg-type]
        currency="EUR",
        total_minor=300,
        items=(OrderLine(sku="sku-1", quantity=3, unit_price_minor=100),),
        created_at=now,
        updated_at=now,
    )
    return _KINDS[status](event_id=uuid.uuid4(), occurred_at=now, order=snapshot)


async def publish_raw(
    channel: AbstractChannel,
    body: bytes,
    *,
    routing_key: str,
    message_id: str | None = None,
    version: int = 1,
) -> None:
    """Publish like orders' relay: persistent, mandatory, confirmed."""
    exchange = await channel.get_exchange(ORDER_EVENTS_EXCHANGE)
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id or str(uuid.uuid4()),
        type=routing_key,
        headers={SCHEMA_VERSION_HEADER: version},
    )
    await exchange.publish(message, routing_key=routing_key, mandatory=True)


async def publish_events(channel: AbstractChannel, events: list[OrderEvent]) -> None:
    """Publish every event at once and wait for all confirms."""
    await asyncio.gather(
        *(
            publish_raw(
                channel,
                event.model_dump_json().encode(),
                routing_key=event.event_type,
                message_id=str(event.event_id),
            )
            for event in events
        )
    )


async def drain_queue(
    channel: AbstractChannel, name: str, *, expect: int, seconds: float = 10
) -> list[AbstractIncomingMessage]:
    """Take (and ack) `expect` messages from a queue, waiting for them to arrive."""
    queue = await channel.get_queue(name, ensure=False)
    taken: list[AbstractIncomingMessage] = []
    deadline = time.monotonic() + seconds
    while len(taken) < expect:
        message = await queue.get(fail=False, timeout=5)
        if message is None:
            if time.monotonic() > deadline:
                pytest.fail(f"{name} held {len(taken)} messages, expected {expect}")
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        taken.append(message)
    return taken


async def ready_count(channel: AbstractChannel, name: str) -> int:
    """Messages waiting in a queue (not counting those delivered and unacked)."""
    queue = await channel.declare_queue(name, passive=True)
    count = queue.declaration_result.message_count
    assert count is not None
    return count


def metric_value(text: str, name: str) -> float:
    """A sample from Prometheus text, summed over labels."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


@dataclass
class WebhookReceiver:
    """A local HTTP server that answers with the scripted statuses, then 200."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append((headers, await request.read()))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="scripted")


@asynccontextmanager
async def webhook_receiver(
    statuses: list[int] | None = None, *, delay: float = 0.0
) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses=list(statuses or []), delay=delay)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
