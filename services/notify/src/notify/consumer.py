"""What happens to one delivered message: parse it, call the service, pick the outcome.

The consumer stays thin (house style): it decides, and `Settle` (the subscription, on
the broker) makes the decision durable before the message is acked:

- recorded or duplicate: ack, after the row is committed;
- poison (unparseable, unknown version or type): a copy to the dead-letter exchange
  with a reason, never a requeue;
- transient failure: a copy to the retry queue with the attempt number + 1, back after
  the retry delay; after max_attempts, or on a permanent failure, dead-lettered with a
  reason. An outage of notify's own database does not use up attempts: it is not the
  event's fault, and a long one would otherwise dead-letter every event.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage
from contracts.events import parse_order_event
from pydantic import ValidationError
from servicekit.failpoints import Failpoints

from notify.errors import DatabaseUnavailable, PermanentFailure, TransientFailure
from notify.metrics import NotifyMetrics
from notify.service import NotificationsService
from notify.settings import AFTER_RECORD
from notify.topology import ATTEMPT_HEADER

log = logging.getLogger(__name__)


class Settle(Protocol):
    """Ends a message's stay in the queue; each copy is confirmed before the ack."""

    async def ack(self, message: AbstractIncomingMessage) -> None: ...

    async def retry(
        self, message: AbstractIncomingMessage, *, attempt: int, error: str
    ) -> None: ...

    async def dead_letter(self, message: AbstractIncomingMessage, *, reason: str) -> None: ...


class EventConsumer:
    def __init__(
        self,
        *,
        service: NotificationsService,
        metrics: NotifyMetrics,
        failpoints: Failpoints,
        max_attempts: int,
    ) -> None:
        self._service = service
        self._metrics = metrics
        self._failpoints = failpoints
        self._max_attempts = max_attempts

    async def handle(self, message: AbstractIncomingMessage, settle: Settle) -> None:
        """Handle and settle one message; raises only when settling itself failed."""
        started = time.perf_counter()
        with self._metrics.in_flight.track_inprogress():
            outcome = await self._handle(message, settle)
        self._metrics.handled.labels(outcome=outcome).inc()
        self._metrics.handling_seconds.observe(time.perf_counter() - started)

    async def _handle(self, message: AbstractIncomingMessage, settle: Settle) -> str:
        if message.redelivered:
            self._metrics.redelivered.inc()
            log.info(
                "message redelivered",
                extra={
                    "message_id": message.message_id,
                    "delivery_count": message.headers.get("x-delivery-count"),
                },
            )
        try:
            event = parse_order_event(message.body)
        except ValidationError as exc:
            await settle.dead_letter(message, reason=poison_reason(exc))
            return "dead_lettered"
        attempt = attempt_of(message)
        # A copy back from our own retry queue (also a database-outage retry, which keeps
        # attempt 1) is expected to find its row: only a broker redelivery is a duplicate.
        ours = is_scheduled_retry(message)
        try:
            inserted = await self._service.handle_event(
                event=event, count_duplicate=not ours or bool(message.redelivered)
            )
        except PermanentFailure as exc:
            await settle.dead_letter(message, reason=f"permanent failure: {exc}")
            return "dead_lettered"
        except Exception as exc:
            # Transient, or a bug: either way the event must not be lost to it.
            if not isinstance(exc, TransientFailure):
                log.exception("unexpected error handling an event", extra={"attempt": attempt})
            error = str(exc) or type(exc).__name__
            if isinstance(exc, DatabaseUnavailable):
                await settle.retry(message, attempt=attempt, error=error)
                return "retried"
            if attempt >= self._max_attempts:
                reason = f"gave up after {attempt} attempts; last error: {error}"
                await self._service.give_up(event=event, reason=reason)
                await settle.dead_letter(message, reason=reason)
                return "dead_lettered"
            await settle.retry(message, attempt=attempt + 1, error=error)
            return "retried"
        self._failpoints.hit(AFTER_RECORD)
        await settle.ack(message)
        return "recorded" if inserted or ours else "duplicate"


def is_scheduled_retry(message: AbstractIncomingMessage) -> bool:
    """True for a copy our retry queue sent back (only those carry the attempt header)."""
    return ATTEMPT_HEADER in message.headers


def attempt_of(message: AbstractIncomingMessage) -> int:
    """Which attempt this delivery is: 1 unless our retry header says otherwise."""
    value = message.headers.get(ATTEMPT_HEADER)
    return value if isinstance(value, int) and value >= 1 else 1


def poison_reason(error: ValidationError) -> str:
    """What is wrong with an unusable message, for a person reading the dead-letter queue."""
    problems = []
    for detail in error.errors()[:3]:
        where = ".".join(str(part) for part in detail["loc"])
        if detail["loc"][-1:] == ("version",):
            problems.append(f"unknown schema version {detail['input']!r} (this consumer knows 1)")
        else:
            problems.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    more = error.error_count() - len(problems)
    suffix = f" (and {more} more problems)" if more > 0 else ""
    return "not a valid order event: " + "; ".join(problems) + suffix
