"""Response models of the HTTP API: typed, so FastAPI serialises them in Rust."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: uuid.UUID
    event_type: str
    order_id: uuid.UUID
    customer_id: str
    channel: str
    status: Literal["pending", "sent", "failed"]
    payload: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    duplicates: int


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
