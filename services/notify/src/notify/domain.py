"""The notification record and what recording an event returns. No I/O here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "pending"  # recorded, the sender has not finished with it
    SENT = "sent"
    FAILED = "failed"  # given up: dead-lettered


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    event_id: uuid.UUID
    event_type: str
    order_id: uuid.UUID
    customer_id: str
    channel: str
    status: Status
    payload: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    duplicates: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """The inbox row after an event arrived: new, or seen before (and in which state)."""

    inserted: bool
    status: Status
    recorded_at: datetime
