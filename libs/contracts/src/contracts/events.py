"""Order events: the messages orders publishes (through its outbox) and notify consumes.

Every event is an envelope with an id (the consumer's deduplication key), a type, a
schema version and when it happened, around a snapshot of the order after the change.
A change that breaks consumers gets a new `version`; consumers reject versions they
do not know instead of guessing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contracts.topology import ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_CREATED

SCHEMA_VERSION: Final = 1


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str
    quantity: int = Field(ge=1)
    unit_price_minor: int = Field(ge=0)


class OrderSnapshot(BaseModel):
    """The order as it was right after the change the event reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    customer_id: str
    status: Literal["pending", "confirmed", "cancelled"]
    currency: str = Field(min_length=3, max_length=3)
    total_minor: int = Field(ge=0)
    items: tuple[OrderLine, ...]
    created_at: datetime
    updated_at: datetime


class _OrderEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    version: Literal[1] = SCHEMA_VERSION
    occurred_at: datetime
    order: OrderSnapshot


class OrderCreated(_OrderEvent):
    event_type: Literal["order.created"] = ORDER_CREATED


class OrderConfirmed(_OrderEvent):
    event_type: Literal["order.confirmed"] = ORDER_CONFIRMED


class OrderCancelled(_OrderEvent):
    event_type: Literal["order.cancelled"] = ORDER_CANCELLED


OrderEvent = Annotated[
    OrderCreated | OrderConfirmed | OrderCancelled, Field(discriminator="event_type")
]
ORDER_EVENT = TypeAdapter[OrderEvent](OrderEvent)


def parse_order_event(body: bytes) -> OrderEvent:
    """Parse a message body; raises pydantic.ValidationError for anything unknown."""
    return ORDER_EVENT.validate_json(body)
