"""Order event schemas: round trips, and rejection of anything unknown."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from contracts.events import (
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderSnapshot,
    parse_order_event,
)
from contracts.topology import ALL_ORDER_EVENTS, ORDER_CANCELLED, ORDER_CREATED
from pydantic import ValidationError

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _snapshot(status: str = "pending") -> OrderSnapshot:
    return OrderSnapshot.model_validate(
        {
            "id": uuid.uuid4(),
            "customer_id": "alice",
            "status": status,
            "currency": "EUR",
            "total_minor": 300,
            "items": [OrderLine(sku="a", quantity=2, unit_price_minor=150)],
            "created_at": NOW,
            "updated_at": NOW,
        }
    )


def test_an_event_survives_a_round_trip_through_json() -> None:
    event = OrderCreated(event_id=uuid.uuid4(), occurred_at=NOW, order=_snapshot())
    parsed = parse_order_event(event.model_dump_json().encode())
    assert parsed == event
    assert isinstance(parsed, OrderCreated)
    assert parsed.event_type == ORDER_CREATED
    assert parsed.version == 1


def test_the_type_field_selects_the_class() -> None:
    event = OrderCancelled(event_id=uuid.uuid4(), occurred_at=NOW, order=_snapshot("cancelled"))
    parsed = parse_order_event(event.model_dump_json().encode())
    assert isinstance(parsed, OrderCancelled)
    assert parsed.event_type == ORDER_CANCELLED


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"event_type": "order.shipped"},
        {"surprise": True},
    ],
)
def test_unknown_versions_types_and_fields_are_rejected(change: dict[str, object]) -> None:
    event = OrderCreated(event_id=uuid.uuid4(), occurred_at=NOW, order=_snapshot())
    body = {**event.model_dump(mode="json"), **change}
    with pytest.raises(ValidationError):
        parse_order_event(json.dumps(body).encode())


def test_garbage_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_order_event(b"\x00not json")


def test_the_binding_pattern_matches_every_event_type() -> None:
    assert ALL_ORDER_EVENTS == "order.*"
    assert all(t.startswith("order.") for t in (ORDER_CREATED, ORDER_CANCELLED))
