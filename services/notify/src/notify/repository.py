"""All SQL of the notify service. Each method is one statement, so one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from contracts.events import OrderEvent

from notify.db import connection
from notify.domain import Notification, Recorded, Status

_COLUMNS = (
    "id, event_id, event_type, order_id, customer_id, channel, status, payload, "
    "occurred_at, recorded_at, delivered_at, last_error, duplicates"
)


class NotificationsRepository:
    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    def _connection(self) -> Any:
        return connection(self._pool, timeout=self._acquire_timeout)

    async def record(self, *, event: OrderEvent, channel: str, duplicate: bool) -> Recorded:
        """Insert the event's row, or count one more arrival of it when it exists.

        `duplicate` False (a scheduled retry of our own) finds the row without counting.
        """
        async with self._connection() as conn:
            # xmax = 0 only for a row this statement inserted; an updated row has our xid.
            row = await conn.fetchrow(
                """INSERT INTO notifications
                       (event_id, event_type, order_id, customer_id, channel, payload,
                        occurred_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (event_id) DO UPDATE
                       SET duplicates = notifications.duplicates + $8::int
                   RETURNING status, recorded_at, (xmax = 0) AS inserted""",
                event.event_id,
                event.event_type,
                event.order.id,
                event.order.customer_id,
                channel,
                event.model_dump(mode="json"),
                event.occurred_at,
                1 if duplicate else 0,
            )
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
        return Recorded(
            inserted=row["inserted"], status=Status(row["status"]), recorded_at=row["recorded_at"]
        )

    async def mark_sent(self, event_ids: Sequence[uuid.UUID]) -> None:
        """Mark the events' rows sent (those still pending), in one statement."""
        async with self._connection() as conn:
            # A btree scan sorts the = ANY keys, so two of these statements (two
            # replicas) lock shared rows in the same order: no deadlock.
            await conn.execute(
                """UPDATE notifications
                   SET status = 'sent', delivered_at = clock_timestamp(), last_error = NULL
                   WHERE event_id = ANY($1::uuid[]) AND status = 'pending'""",
                list(event_ids),
            )

    async def note_failure(self, *, event_id: uuid.UUID, error: str, final: bool) -> None:
        """Keep why the send failed; `final` marks the row failed (it was dead-lettered)."""
        async with self._connection() as conn:
            await conn.execute(
                """UPDATE notifications
                   SET last_error = $2,
                       status = CASE WHEN $3 THEN 'failed' ELSE status END
                   WHERE event_id = $1 AND status = 'pending'""",
                event_id,
                error,
                final,
            )

    async def list_page(
        self, *, order_id: uuid.UUID, after_id: int | None, limit: int
    ) -> list[Notification]:
        """The order's notifications with id > after_id, oldest first."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"""SELECT {_COLUMNS} FROM notifications
                    WHERE order_id = $1 AND id > $2
                    ORDER BY id LIMIT $3""",
                order_id,
                after_id or 0,
                limit,
            )
        return [_notification(row) for row in rows]


def _notification(row: asyncpg.Record) -> Notification:
    values = dict(row.items())
    values["status"] = Status(values["status"])
    return Notification(**values)
