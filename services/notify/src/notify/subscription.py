"""notify's subscription to the order events queue: connection, settling, reconnects, drain.

aio-pika's defaults would lose data, so every choice here is explicit:

- acks are manual, and only after the outcome is durable: the row committed, or a copy
  confirmed in the retry or dead-letter queue;
- every copy is persistent and mandatory on a confirm channel that raises on return,
  so an unroutable copy is an error, not a silent drop;
- nothing is rejected without requeue: when settling fails, the message goes back
  (nack with requeue) and the queue's delivery limit bounds the loop;
- one connection and channel; a lost connection is reopened with jittered backoff,
  and the broker redelivers whatever was unacked on the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    DeliveryMode,
    HeadersType,
)
from aio_pika.exceptions import AMQPError, ChannelPreconditionFailed
from servicekit.backoff import Backoff

from notify import topology
from notify.consumer import EventConsumer
from notify.settings import NotifySettings
from notify.topology import (
    ATTEMPT_HEADER,
    DEAD_REASON_HEADER,
    LAST_ERROR_HEADER,
    ROUTING_KEY_HEADER,
)

log = logging.getLogger(__name__)

# Errors that mean "cannot talk to the broker right now": reconnect with backoff.
BROKER_ERRORS: Final[tuple[type[BaseException], ...]] = (
    AMQPError,
    ConnectionError,
    OSError,
    TimeoutError,
)
CONNECT_TIMEOUT_SECONDS: Final = 5.0
PUBLISH_TIMEOUT_SECONDS: Final = 10.0
# Shutdown: how long without a delivery means nothing is in transit, and the longest
# wait for that before cancelling anyway.
QUIET_SECONDS: Final = 0.1
QUIESCE_LIMIT_SECONDS: Final = 2.0
# Shutdown: how long the last acks get to reach the queue before the connection closes.
# RabbitMQ's quorum queues drop acks still buffered in the channel when it closes, and
# their messages come back redelivered (rabbitmq/rabbitmq-server#10327, seen on 3.10
# after a burst of a few hundred acks).
ACKS_LANDING_SECONDS: Final = 0.25


class BrokerUnavailable(Exception):
    """The subscription is not consuming (readiness reports it)."""


class Subscription:
    """Feeds the queue's messages to the consumer and settles them on the broker."""

    def __init__(self, *, settings: NotifySettings, consumer: EventConsumer) -> None:
        self._settings = settings
        self._consumer = consumer
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._active = 0  # delivered to this process and not settled yet
        self._idle = asyncio.Event()
        self._idle.set()
        self._acks_open = asyncio.Event()  # cleared while shutdown holds acks back
        self._acks_open.set()
        self._last_delivery = time.monotonic()
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._dead_letters: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        channel = self._channel
        return self._consumer_tag is not None and channel is not None and not channel.is_closed

    async def check(self) -> None:
        """Readiness check: raises unless messages are being consumed."""
        if not self.running:
            raise BrokerUnavailable("not consuming")

    async def start(self) -> None:
        """Connect, declare the topology and consume; retries until the broker answers."""
        await self._connect_with_backoff()
        self._supervisor = asyncio.create_task(self._reconnect_when_lost())

    async def stop(self, *, drain_seconds: float) -> None:
        """Stop consuming, settle every message already delivered, then close.

        A plain basic.cancel is not enough with quorum queues (seen on RabbitMQ 3.10):
        messages on their way from the queue to the channel when the cancel lands are
        returned to the queue, marked redelivered and counted against the delivery
        limit. So acks are held first: the consumer's credit (the prefetch) runs out,
        nothing is left in transit, and only then is the consumer cancelled. The held
        messages are then acked as their handling finishes, and the connection closes
        a moment after the last ack (ACKS_LANDING_SECONDS).
        """
        deadline = time.monotonic() + drain_seconds

        def remaining() -> float:
            return max(deadline - time.monotonic(), 0)

        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self.running:
            self._acks_open.clear()
            await self._wait_for_quiet(min(drain_seconds, QUIESCE_LIMIT_SECONDS))
            await self._cancel_consumer()
        self._acks_open.set()
        # Deliveries that arrived before the broker's cancel-ok are tasks that may not
        # have run yet; let them start, so that waiting for "idle" includes them.
        for _ in range(3):
            await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=remaining())
        except TimeoutError:
            log.warning(
                "drain time over; unsettled messages go back to the queue",
                extra={"unsettled": self._active},
            )
        await asyncio.sleep(min(ACKS_LANDING_SECONDS, remaining()))
        await self._close()

    # Settle: what the consumer calls to end a message's stay in the queue.

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Ack, unless shutdown holds acks back until the consumer is cancelled."""
        await self._acks_open.wait()
        await message.ack()

    async def retry(self, message: AbstractIncomingMessage, *, attempt: int, error: str) -> None:
        """Copy the message to the retry queue (back after the delay), confirm, then ack."""
        assert self._channel is not None, "no channel: the message goes back to the queue"
        log.info(
            "retrying later",
            extra={"message_id": message.message_id, "attempt": attempt, "error": error},
        )
        copy = _copy(message, {ATTEMPT_HEADER: attempt, LAST_ERROR_HEADER: error})
        await self._channel.default_exchange.publish(
            copy, routing_key=self._settings.retry_queue, timeout=PUBLISH_TIMEOUT_SECONDS
        )
        await self.ack(message)

    async def dead_letter(self, message: AbstractIncomingMessage, *, reason: str) -> None:
        """Copy the message to the dead-letter exchange, confirm, then ack."""
        assert self._dead_letters is not None, "no channel: the message goes back to the queue"
        log.warning(
            "dead-lettering a message", extra={"message_id": message.message_id, "reason": reason}
        )
        copy = _copy(message, {DEAD_REASON_HEADER: reason})
        await self._dead_letters.publish(
            copy, routing_key=message.routing_key or "", timeout=PUBLISH_TIMEOUT_SECONDS
        )
        await self.ack(message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._active += 1
        self._idle.clear()
        self._last_delivery = time.monotonic()
        try:
            async with self._slots:
                await self._consumer.handle(message, self)
        except Exception as exc:
            # The outcome could not be made durable (broker trouble, most likely): give
            # the message back. The queue's delivery limit stops an endless loop.
            log.warning(
                "message not settled, requeueing",
                extra={"message_id": message.message_id, "error": repr(exc)},
            )
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def _wait_for_quiet(self, limit: float) -> None:
        """Until the broker cannot send more: prefetch exhausted, or no delivery for a while."""
        give_up = time.monotonic() + limit
        while time.monotonic() < give_up:
            if self._active >= self._settings.prefetch:
                return
            if time.monotonic() - self._last_delivery >= QUIET_SECONDS:
                return
            await asyncio.sleep(0.01)

    async def _connect_with_backoff(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._connect()
            except ChannelPreconditionFailed:
                await self._close()
                raise  # existing queues with other arguments: retrying cannot help
            except BROKER_ERRORS as exc:
                await self._close()
                delay = backoff.next()
                log.warning(
                    "broker not reachable, retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in": round(delay, 2)},
                )
                await asyncio.sleep(delay)
            else:
                return

    async def _connect(self) -> None:
        s = self._settings
        self._connection = await aio_pika.connect(
            s.amqp_url.get_secret_value(),
            timeout=CONNECT_TIMEOUT_SECONDS,
            client_properties={"connection_name": "ordermesh-notify"},
        )
        # Confirms for our own publishes (retry, dead letters); a returned message raises.
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await self._channel.set_qos(prefetch_count=s.prefetch)
        declared = await topology.declare(self._channel, s)
        self._dead_letters = declared.dead_letter_exchange
        self._queue = declared.queue
        self._consumer_tag = await declared.queue.consume(self._on_message, no_ack=False)
        log.info("consuming", extra={"queue": s.queue, "prefetch": s.prefetch})

    async def _reconnect_when_lost(self) -> None:
        while True:
            assert self._connection is not None
            assert self._channel is not None
            lost = [
                asyncio.ensure_future(self._connection.closed()),
                asyncio.ensure_future(self._channel.closed()),
            ]
            try:
                await asyncio.wait(lost, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in lost:
                    waiter.cancel()
            log.warning("broker connection lost, reconnecting")
            await self._close()
            while True:
                try:
                    await self._connect_with_backoff()
                except ChannelPreconditionFailed:
                    log.exception("queue declaration refused; retrying later")
                    await asyncio.sleep(5.0)
                else:
                    break

    async def _cancel_consumer(self) -> None:
        """basic.cancel: the broker sends nothing more; delivered messages stay ours."""
        if self._consumer_tag is None or self._queue is None or not self.running:
            return
        tag, self._consumer_tag = self._consumer_tag, None
        try:
            await self._queue.cancel(tag, timeout=PUBLISH_TIMEOUT_SECONDS)
        except BROKER_ERRORS as exc:
            log.warning("could not cancel the consumer", extra={"error": repr(exc)})

    async def _close(self) -> None:
        connection = self._connection
        self._connection = self._channel = self._dead_letters = self._queue = None
        self._consumer_tag = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=CONNECT_TIMEOUT_SECONDS)


def _copy(message: AbstractIncomingMessage, extra_headers: HeadersType) -> aio_pika.Message:
    """A persistent copy with the original properties and headers, plus ours."""
    headers: HeadersType = {
        # The event's own routing key, kept across retries (which arrive with another).
        ROUTING_KEY_HEADER: message.routing_key or "",
        **message.headers,
        **extra_headers,
    }
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        timestamp=message.timestamp,
    )
