"""The public API's request and response models: the OpenAPI contract.

Limits mirror the orders service's own checks, so most bad input is refused here
with a 422 before any downstream call; orders still checks everything itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from contracts.currencies import ISO_4217
from contracts.limits import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE_MINOR,
    NO_CONTROL_CHARACTERS,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
MAX_CURSOR_LENGTH: Final = 512
# Printable ASCII with no space at either end (HTTP strips those anyway).
IDEMPOTENCY_KEY_PATTERN: Final = rf"^[!-~]([ -~]{{0,{MAX_IDEMPOTENCY_KEY_LENGTH - 2}}}[!-~])?$"

OrderStatus = Literal["pending", "confirmed", "cancelled"]


def _known_currency(code: str) -> str:
    if code not in ISO_4217:
        raise ValueError(f"{code!r} is not an ISO 4217 code such as 'EUR'")
    return code


Currency = Annotated[
    str,
    AfterValidator(_known_currency),
    Field(description="ISO 4217 code, e.g. EUR", json_schema_extra={"enum": sorted(ISO_4217)}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineItemIn(_Strict):
    sku: Annotated[
        str, Field(min_length=1, max_length=MAX_SKU_LENGTH, pattern=NO_CONTROL_CHARACTERS)
    ]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    unit_price_minor: Annotated[
        int, Field(ge=0, le=MAX_UNIT_PRICE_MINOR, description="price in the currency's minor unit")
    ]


class CreateOrderIn(_Strict):
    currency: Currency
    items: Annotated[list[LineItemIn], Field(min_length=1, max_length=MAX_ITEMS)]


class LineItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int


class OrderOut(BaseModel):
    id: uuid.UUID
    customer_id: str
    status: OrderStatus
    currency: str
    total_minor: int
    items: list[LineItemOut]
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end"
    )


class NotificationOut(BaseModel):
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "sent", "failed"]
    channel: str
    occurred_at: datetime
    recorded_at: datetime
    delivered_at: datetime | None


class OrderSummary(BaseModel):
    order: OrderOut
    notifications: list[NotificationOut]
    degraded: bool = Field(description="true when the notifications could not be fetched")
    degraded_reason: str | None


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    trace_id: str | None
    errors: list[FieldError] | None = None


def notification_out(raw: dict[str, Any]) -> dict[str, Any]:
    """The public fields of one of notify's notifications."""
    return {name: raw.get(name) for name in NotificationOut.model_fields}
