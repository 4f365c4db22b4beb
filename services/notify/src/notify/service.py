"""The notify use cases: record each event once, send it, list an order's history."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass

from contracts.events import OrderEvent
from opentelemetry import trace

from notify.domain import Notification, Status
from notify.errors import PermanentFailure, TransientFailure
from notify.metrics import NotifyMetrics
from notify.repository import NotificationsRepository
from notify.senders import Sender
from notify.sent_marks import SentMarks

tracer = trace.get_tracer("notify")


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Notification]
    last_id: int | None  # where the next page starts; None on the last page


class NotificationsService:
    def __init__(
        self, *, repository: NotificationsRepository, sender: Sender, metrics: NotifyMetrics
    ) -> None:
        self._repository = repository
        self._sender = sender
        self._metrics = metrics
        self._sent = SentMarks(repository.mark_sent)

    async def handle_event(self, *, event: OrderEvent, count_duplicate: bool = True) -> bool:
        """Record the event once and send it unless an earlier arrival did; True when new.

        `count_duplicate` is False for our own scheduled retries, which are not duplicates.
        Raises TransientFailure (try again later) or PermanentFailure (dead-letter it).
        """
        recorded = await self._repository.record(
            event=event, channel=self._sender.name, duplicate=count_duplicate
        )
        if recorded.inserted:
            latency = (recorded.recorded_at - event.occurred_at).total_seconds()
            self._metrics.event_latency.observe(max(latency, 0.0))
        if recorded.status is Status.PENDING:
            # Pending on a repeat means the earlier attempt never finished: send again.
            await self._send(event)
            await self._sent.mark(event.event_id)
        return recorded.inserted

    async def give_up(self, *, event: OrderEvent, reason: str) -> None:
        """Mark the event failed because it goes to the dead-letter queue (best effort)."""
        await self._note_failure(event.event_id, reason, final=True)

    async def list_notifications(
        self, *, order_id: uuid.UUID, after_id: int | None, limit: int
    ) -> Page:
        """A page of the order's notifications, oldest first."""
        # One row more than asked tells whether another page follows.
        rows = await self._repository.list_page(
            order_id=order_id, after_id=after_id, limit=limit + 1
        )
        items = rows[:limit]
        return Page(items=items, last_id=items[-1].id if len(rows) > limit else None)

    async def _send(self, event: OrderEvent) -> None:
        started = time.perf_counter()
        outcome = "transient"  # also for an unexpected error: the consumer retries those
        try:
            with tracer.start_as_current_span(
                "notify.send", attributes={"ordermesh.sender": self._sender.name}
            ):
                await self._sender.send(event=event)
            outcome = "ok"
        except PermanentFailure as exc:
            outcome = "permanent"
            await self._note_failure(event.event_id, str(exc), final=True)
            raise
        except TransientFailure as exc:
            await self._note_failure(event.event_id, str(exc), final=False)
            raise
        finally:
            self._metrics.sender_seconds.labels(sender=self._sender.name, outcome=outcome).observe(
                time.perf_counter() - started
            )

    async def _note_failure(self, event_id: uuid.UUID, reason: str, *, final: bool) -> None:
        # Only bookkeeping: when the database is down too, the broker still has the message.
        with contextlib.suppress(TransientFailure):
            await self._repository.note_failure(event_id=event_id, error=reason, final=final)
