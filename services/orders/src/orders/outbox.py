"""The SQL of the outbox relay: claim unpublished rows, mark them published, measure.

Rows are claimed `FOR UPDATE SKIP LOCKED` inside the caller's transaction, so several
relays share the backlog without ever holding the same row; the lock lasts until that
transaction ends, which is after the broker has confirmed the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from orders.db import Connection

# The channel the 0002 trigger notifies after every insert into the outbox.
NOTIFY_CHANNEL: Final = "orders_outbox"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event to publish: the payload is the envelope's JSON exactly as stored."""

    id: int
    event_id: uuid.UUID
    event_type: str
    version: int
    payload: bytes
    headers: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Backlog:
    rows: int
    oldest_age_seconds: float


async def claim(conn: Connection, *, limit: int) -> list[OutboxRow]:
    """Lock up to `limit` unpublished rows, oldest first, skipping rows others hold."""
    # Text, not jsonb: the payload goes to the broker as it is, with no decode/encode.
    rows = await conn.fetch(
        """SELECT id, event_id, event_type, (payload->>'version')::int AS version,
                  payload::text AS payload, headers::text AS headers, created_at
           FROM outbox WHERE published_at IS NULL
           ORDER BY id LIMIT $1
           FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [
        OutboxRow(
            id=row["id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            version=row["version"],
            payload=row["payload"].encode(),
            headers=orjson.loads(row["headers"]),
            created_at=row["created_at"],
        )
        for row in rows
    ]


async def mark_published(conn: Connection, ids: Sequence[int]) -> None:
    """Record that the broker confirmed these rows."""
    if ids:
        await conn.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", list(ids)
        )


async def backlog(conn: Connection) -> Backlog:
    """How many rows wait, and for how long the oldest has: two scans of the partial index."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS rows,
                  coalesce(extract(epoch FROM clock_timestamp() - (
                      SELECT created_at FROM outbox WHERE published_at IS NULL
                      ORDER BY id LIMIT 1)), 0)::float8 AS oldest_age"""
    )
    assert row is not None  # an aggregate query always returns one row
    return Backlog(rows=row["rows"], oldest_age_seconds=max(0.0, row["oldest_age"]))
