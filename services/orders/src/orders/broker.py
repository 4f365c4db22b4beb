"""The relay's side of RabbitMQ: one connection, one confirm channel, publish with confirms.

Every message is published `mandatory` on a channel with publisher confirms, so each one
ends in exactly one of: confirmed (the broker has it in every bound queue), returned
(no queue is bound for its routing key), nacked, or lost with the connection. Only the
first counts as published. After a connection or channel failure everything is closed
and reopened on the next batch, so a dead channel is never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    DeliveryMode,
    HeadersType,
)
from aio_pika.exceptions import (
    AMQPConnectionError,
    ChannelClosed,
    ChannelInvalidStateError,
    DeliveryError,
    PublishError,
)
from contracts.topology import ORDER_EVENTS_EXCHANGE, SCHEMA_VERSION_HEADER
from opentelemetry import context, propagate

from orders.outbox import OutboxRow

# Errors that mean "the broker cannot be reached or the channel is gone": retry later.
BROKER_ERRORS: Final[tuple[type[BaseException], ...]] = (
    AMQPConnectionError,
    ChannelClosed,
    ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class BrokerUnavailable(Exception):
    """The broker could not be reached; nothing was published."""


@dataclass(slots=True)
class PublishReport:
    """What became of one batch: the confirmed row ids and the rest by reason."""

    confirmed: list[int] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    returned: list[str] = field(default_factory=list)  # "routing key/event id", for the log

    @property
    def broker_lost(self) -> bool:
        return self.failures["broker_unavailable"] > 0


class EventPublisher:
    """Publishes outbox rows to the order events exchange and waits for their confirms."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def open(self) -> None:
        """Connect and declare the exchange unless a live channel exists; else BrokerUnavailable."""
        if self._exchange is not None and self._channel is not None:
            if not self._channel.is_closed:
                return
            await self.close()  # the channel died: reopen everything
        try:
            self._connection = await aio_pika.connect(self._url, timeout=self._timeout)
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchange = await self._channel.declare_exchange(
                ORDER_EVENTS_EXCHANGE,
                aio_pika.ExchangeType.TOPIC,
                durable=True,
                timeout=self._timeout,
            )
        except BROKER_ERRORS as exc:
            await self.close()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def publish(self, rows: Sequence[OutboxRow]) -> PublishReport:
        """Publish every row at once and wait for all confirms; never raises for one row."""
        await self.open()
        exchange = self._exchange
        assert exchange is not None
        results = await asyncio.gather(
            *(self._publish_one(exchange, row) for row in rows), return_exceptions=True
        )
        report = PublishReport()
        for row, result in zip(rows, results, strict=True):
            reason = _failure_reason(result)
            if reason is None:
                report.confirmed.append(row.id)
                continue
            report.failures[reason] += 1
            if reason == "returned":
                report.returned.append(f"{row.event_type}/{row.event_id}")
        if report.broker_lost:
            await self.close()
        return report

    async def _publish_one(self, exchange: aio_pika.abc.AbstractExchange, row: OutboxRow) -> object:
        """Publish one row inside the trace of the change that wrote it.

        The row's headers hold the trace context of its outbox write, so the publish
        span (aio-pika's instrumentation, which also puts its own context in the
        message headers) joins the request's trace across the outbox and the broker.
        Each row runs in a task of its own under gather, so attaching is local to it.
        """
        token = context.attach(propagate.extract(row.headers, context=context.Context()))
        try:
            return await exchange.publish(
                _message(row), row.event_type, mandatory=True, timeout=self._timeout
            )
        finally:
            context.detach(token)

    async def close(self) -> None:
        connection = self._connection
        self._connection = self._channel = self._exchange = None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=self._timeout)


def _message(row: OutboxRow) -> aio_pika.Message:
    headers = cast(HeadersType, {**row.headers, SCHEMA_VERSION_HEADER: row.version})
    return aio_pika.Message(
        row.payload,
        headers=headers,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=str(row.event_id),
        type=row.event_type,
        timestamp=row.created_at,
    )


def _failure_reason(result: object) -> str | None:
    """None for a confirm; otherwise the metric's reason label."""
    if not isinstance(result, BaseException):
        return None
    if isinstance(result, PublishError):
        return "returned"
    if isinstance(result, DeliveryError):
        return "nacked"
    # aiormq cancels the confirms still pending when the connection closes under them.
    if isinstance(result, BROKER_ERRORS | asyncio.CancelledError):
        return "broker_unavailable"
    return "error"
