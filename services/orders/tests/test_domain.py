"""Pure domain rules: transitions, totals, fingerprints, page tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from orders import pagination
from orders.convert import timestamp
from orders.domain import (
    TRANSITIONS,
    LineItem,
    Order,
    OrderStatus,
    check_transition,
    validate_new_order,
)
from orders.errors import IllegalTransition, ValidationFailed

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def _order(status: OrderStatus) -> Order:
    return Order(uuid.uuid4(), "alice", status, "EUR", 0, (), NOW, NOW)


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("target", [OrderStatus.CONFIRMED, OrderStatus.CANCELLED])
def test_transition_table(current: OrderStatus, target: OrderStatus) -> None:
    order = _order(current)
    if current == target:
        assert check_transition(order, target) is False
    elif target in TRANSITIONS[current]:
        assert check_transition(order, target) is True
    else:
        with pytest.raises(IllegalTransition):
            check_transition(order, target)


def test_only_pending_orders_can_move() -> None:
    assert TRANSITIONS[OrderStatus.PENDING] == {OrderStatus.CONFIRMED, OrderStatus.CANCELLED}
    assert not TRANSITIONS[OrderStatus.CONFIRMED]
    assert not TRANSITIONS[OrderStatus.CANCELLED]


def test_total_is_the_sum_of_quantity_times_price() -> None:
    new = validate_new_order(
        customer_id="alice",
        idempotency_key="k",
        currency="EUR",
        items=[LineItem("a", 3, 250), LineItem("b", 2, 1)],
    )
    assert new.total_minor == 752


def test_fingerprint_ignores_the_key_but_not_the_content() -> None:
    def fp(key: str, qty: int, currency: str = "EUR") -> bytes:
        items = [LineItem("a", qty, 1)]
        new = validate_new_order(
            customer_id="alice", idempotency_key=key, currency=currency, items=items
        )
        return new.fingerprint()

    assert fp("k1", 1) == fp("k2", 1)
    assert fp("k1", 1) != fp("k1", 2)
    assert fp("k1", 1) != fp("k1", 1, "USD")


def test_validation_collects_every_problem() -> None:
    with pytest.raises(ValidationFailed) as failure:
        validate_new_order(customer_id="", idempotency_key="", currency="", items=[])
    assert [v.field for v in failure.value.violations] == [
        "customer_id",
        "idempotency_key",
        "currency",
        "items",
    ]


def test_page_token_round_trip() -> None:
    position = (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4())
    assert pagination.decode_token(pagination.encode_token(position)) == position
    assert pagination.decode_token("") is None


@pytest.mark.parametrize("token", ["x", "!!!", "bm90fGF8dXVpZA", "MjAyNi0wMS0wMnw1"])
def test_foreign_page_tokens_are_rejected(token: str) -> None:
    with pytest.raises(ValidationFailed, match="page_token"):
        pagination.decode_token(token)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 22, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_timestamp_conversion_matches_protobufs_own(moment: datetime) -> None:
    reference = Timestamp()
    reference.FromDatetime(moment)
    assert timestamp(moment) == reference


def test_control_characters_are_refused_in_skus_and_customer_ids() -> None:
    # PostgreSQL cannot store NUL in text or jsonb: it must be a 422, never a 500.
    with pytest.raises(ValidationFailed) as caught:
        validate_new_order(
            customer_id="al\x00ice",
            idempotency_key="k",
            currency="EUR",
            items=[LineItem("sku\x00", 1, 1)],
        )
    fields = {v.field: v.description for v in caught.value.violations}
    assert fields == {
        "customer_id": "must not contain control characters",
        "items[0].sku": "must not contain control characters",
    }
