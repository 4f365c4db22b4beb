"""Order rows as the public JSON, page cursors, request fingerprints, the outbox event.

What both baselines' back tiers compute from the rows of the orders tables, exactly as
the orders service and the gateway together compute it: the same JSON (timestamps
formatted as the gateway's protobuf conversion does, so a payload has the same bytes),
the same opaque cursors (orders.pagination) and the same request digest
(orders.domain.NewOrder.fingerprint), so an idempotency key written by one
implementation replays in another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import asyncpg
import orjson
from contracts.limits import MAX_CUSTOMER_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH
from pydantic import BaseModel, Field
from starlette.responses import Response

from bench.baselines.contract import LineItemIn, problem

# A row of ORDER_COLUMNS (id, customer_id, status, currency, total_minor, items,
# created_at, updated_at) from psycopg (a tuple) or asyncpg (a Record).
Row = Sequence[Any] | asyncpg.Record
Position = tuple[datetime, uuid.UUID]
CREATED: Final = "order.created"
EVENT_VERSION: Final = 1  # contracts.events.SCHEMA_VERSION


class NewOrder(BaseModel):
    """What a front tier sends to create an order: its request plus who and which key."""

    customer_id: Annotated[str, Field(min_length=1, max_length=MAX_CUSTOMER_ID_LENGTH)]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY_LENGTH)]
    currency: str
    items: list[LineItemIn]

    @property
    def total_minor(self) -> int:
        return sum(item.quantity * item.unit_price_minor for item in self.items)

    def fingerprint(self) -> bytes:
        """Digest of everything but the key, as orders computes it."""
        canonical = json.dumps(
            [self.currency, [[i.sku, i.quantity, i.unit_price_minor] for i in self.items]],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).digest()


class BadCursor(ValueError):
    pass


def timestamp_json(moment: datetime) -> str:
    """RFC 3339 in UTC with 0, 3 or 6 fractional digits, as protobuf's ToJsonString."""
    utc = moment.astimezone(UTC)
    text = utc.replace(tzinfo=None).isoformat(timespec="seconds")
    micros = utc.microsecond
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def order_json(row: Row) -> dict[str, Any]:
    """The public JSON of an order row (gateway.convert.order_json)."""
    items = row[5]
    if isinstance(items, str):  # asyncpg's default codec hands jsonb over as text
        items = orjson.loads(items)
    return {
        "id": str(row[0]),
        "customer_id": row[1],
        "status": row[2],
        "currency": row[3],
        "total_minor": row[4],
        "items": [
            {"sku": i["sku"], "quantity": i["quantity"], "unit_price_minor": i["unit_price_minor"]}
            for i in items
        ],
        "created_at": timestamp_json(row[6]),
        "updated_at": timestamp_json(row[7]),
    }


def ndjson(rows: Sequence[Row]) -> bytes:
    return b"".join(orjson.dumps(order_json(row)) + b"\n" for row in rows)


def page_json(rows: Sequence[Row], limit: int) -> dict[str, Any]:
    """A page from `limit + 1` rows: the extra row only says that another page follows."""
    page = rows[:limit]
    more = len(rows) > limit
    cursor = encode_cursor((page[-1][6], page[-1][0])) if more else None
    return {"items": [order_json(row) for row in page], "next_cursor": cursor}


def encode_cursor(position: Position) -> str:
    created_at, order_id = position
    raw = f"{created_at.astimezone(UTC).isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created_at, order_id = raw.split("|")
        position = (datetime.fromisoformat(created_at), uuid.UUID(order_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor from None
    if position[0].tzinfo is None:
        raise BadCursor
    return position


def created_event(order: dict[str, Any]) -> tuple[uuid.UUID, dict[str, Any]]:
    """The id and payload of the order.created event the outbox row carries."""
    event_id = uuid.uuid4()
    payload = {
        "event_id": str(event_id),
        "version": EVENT_VERSION,
        "occurred_at": order["updated_at"],
        "order": order,
        "event_type": CREATED,
    }
    return event_id, payload


def bad_cursor() -> Response:
    message = "is not a token this service issued"
    return problem(
        422,
        "validation-failed",
        "Invalid request",
        f"page_token: {message}",
        errors=[{"field": "page_token", "message": message}],
    )


def key_reused() -> Response:
    return problem(
        422,
        "idempotency-key-reused",
        "Idempotency key reused",
        "this Idempotency-Key was used for a different request body",
    )
