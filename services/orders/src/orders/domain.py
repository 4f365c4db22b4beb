"""The order model, its validation and its status transitions. No I/O here."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from contracts.currencies import ISO_4217
from contracts.limits import (
    MAX_CUSTOMER_ID_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_ITEMS,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    MAX_UNIT_PRICE_MINOR,
    has_control_characters,
)

from orders.errors import FieldViolation, IllegalTransition, ValidationFailed

# The limits (contracts.limits) keep a total of 100 items far inside int64.


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


# Which status may follow which. Asking for the status an order already has is a
# no-op (so callers may retry), anything not listed is an illegal transition.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class LineItem:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated CreateOrder request."""

    customer_id: str
    idempotency_key: str
    currency: str
    items: tuple[LineItem, ...]

    @property
    def total_minor(self) -> int:
        return sum(item.quantity * item.unit_price_minor for item in self.items)

    def fingerprint(self) -> bytes:
        """Digest of everything but the key: equal requests have equal fingerprints."""
        canonical = json.dumps(
            [self.currency, [[i.sku, i.quantity, i.unit_price_minor] for i in self.items]],
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).digest()


@dataclass(frozen=True, slots=True)
class Order:
    id: uuid.UUID
    customer_id: str
    status: OrderStatus
    currency: str
    total_minor: int
    items: tuple[LineItem, ...]
    created_at: datetime
    updated_at: datetime


def check_transition(order: Order, target: OrderStatus) -> bool:
    """True when the order must change to `target`, False when it already has it."""
    if order.status == target:
        return False
    if target not in TRANSITIONS[order.status]:
        raise IllegalTransition(str(order.id), order.status.value, target.value)
    return True


def validate_new_order(
    *, customer_id: str, idempotency_key: str, currency: str, items: list[LineItem]
) -> NewOrder:
    """Check every field of a create request; report all problems at once."""
    problems = _customer_problems(customer_id)
    if not idempotency_key:
        problems.append(FieldViolation("idempotency_key", "is required"))
    elif len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        problems.append(
            FieldViolation("idempotency_key", f"is longer than {MAX_IDEMPOTENCY_KEY_LENGTH}")
        )
    elif not (idempotency_key.isascii() and idempotency_key.isprintable()):
        problems.append(FieldViolation("idempotency_key", "must be printable ASCII"))
    if currency not in ISO_4217:
        problems.append(
            FieldViolation("currency", f"{currency!r} is not an ISO 4217 code such as 'EUR'")
        )
    if not items:
        problems.append(FieldViolation("items", "must hold at least one item"))
    elif len(items) > MAX_ITEMS:
        problems.append(FieldViolation("items", f"holds {len(items)} items, at most {MAX_ITEMS}"))
    else:
        for index, item in enumerate(items):
            problems.extend(_item_problems(f"items[{index}]", item))
    if problems:
        raise ValidationFailed(problems)
    return NewOrder(customer_id, idempotency_key, currency, tuple(items))


def validate_customer_id(customer_id: str) -> None:
    if problems := _customer_problems(customer_id):
        raise ValidationFailed(problems)


def parse_order_id(raw: str) -> uuid.UUID:
    """The order id as a UUID, or a validation error naming the field."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationFailed([FieldViolation("order_id", f"{raw!r} is not a UUID")]) from None


def parse_order_ref(customer_id: str, order_id: str) -> uuid.UUID:
    """An RPC's (customer id, order id): the customer id checked, the order id parsed."""
    validate_customer_id(customer_id)
    return parse_order_id(order_id)


def _customer_problems(customer_id: str) -> list[FieldViolation]:
    if not customer_id:
        return [FieldViolation("customer_id", "is required")]
    if len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        return [FieldViolation("customer_id", f"is longer than {MAX_CUSTOMER_ID_LENGTH}")]
    if has_control_characters(customer_id):
        return [FieldViolation("customer_id", "must not contain control characters")]
    return []


def _item_problems(path: str, item: LineItem) -> list[FieldViolation]:
    problems = []
    if not item.sku:
        problems.append(FieldViolation(f"{path}.sku", "is required"))
    elif len(item.sku) > MAX_SKU_LENGTH:
        problems.append(FieldViolation(f"{path}.sku", f"is longer than {MAX_SKU_LENGTH}"))
    elif has_control_characters(item.sku):
        # PostgreSQL text and jsonb cannot hold NUL; no control character is a SKU.
        problems.append(FieldViolation(f"{path}.sku", "must not contain control characters"))
    if not 1 <= item.quantity <= MAX_QUANTITY:
        problems.append(FieldViolation(f"{path}.quantity", f"must be between 1 and {MAX_QUANTITY}"))
    if not 0 <= item.unit_price_minor <= MAX_UNIT_PRICE_MINOR:
        problems.append(
            FieldViolation(
                f"{path}.unit_price_minor", f"must be between 0 and {MAX_UNIT_PRICE_MINOR}"
            )
        )
    return problems
