"""Protobuf messages from orders to the public JSON shapes (plain dicts for orjson)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson
from contracts.orders.v1 import orders_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

STATUS_NAMES: Final = {
    pb.ORDER_STATUS_PENDING: "pending",
    pb.ORDER_STATUS_CONFIRMED: "confirmed",
    pb.ORDER_STATUS_CANCELLED: "cancelled",
}


def order_json(order: pb.Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": STATUS_NAMES[order.status],  # an unknown status is a bug: fail loudly
        "currency": order.currency,
        "total_minor": order.total_minor,
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "unit_price_minor": i.unit_price_minor}
            for i in order.items
        ],
        "created_at": _timestamp(order.created_at),
        "updated_at": _timestamp(order.updated_at),
    }


def ndjson_lines(orders: Iterable[pb.Order]) -> bytes:
    """Orders as NDJSON, one order_json per line (what orders' NDJSON export sends)."""
    return b"".join(orjson.dumps(order_json(o), option=orjson.OPT_APPEND_NEWLINE) for o in orders)


def _timestamp(value: Timestamp) -> str:
    return value.ToJsonString()  # RFC 3339 in UTC, e.g. 2026-11-22T10:00:00.123456Z
