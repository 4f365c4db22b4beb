"""Every Prometheus instrument of the orders service, in one place."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from orders.domain import OrderStatus

# Why an outbox row was not published; a closed set, so the label stays bounded.
PUBLISH_FAILURE_REASONS: Final = ("returned", "nacked", "broker_unavailable", "error")
# The statuses a confirm or cancel call can leave an order in.
STATUS_CHANGE_STATUSES: Final = (OrderStatus.CONFIRMED.value, OrderStatus.CANCELLED.value)


class OrdersMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders_created = Counter(
            "ordermesh_orders_created_total", "Orders created", registry=registry
        )
        self.idempotent_replays = Counter(
            "ordermesh_orders_idempotent_replays_total",
            "CreateOrder calls answered from an earlier call with the same key",
            registry=registry,
        )
        self.status_changes = Counter(
            "ordermesh_orders_status_changes_total",
            "Confirm/cancel calls by the status the order has afterwards",
            ["status"],
            registry=registry,
        )
        for status in STATUS_CHANGE_STATUSES:
            self.status_changes.labels(status=status)  # export zeros from the start
        self.outbox_backlog = Gauge(
            "ordermesh_outbox_backlog",
            "Outbox rows not published yet (refreshed every few seconds)",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "ordermesh_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row; 0 when none is waiting",
            registry=registry,
        )
        self.outbox_published = Counter(
            "ordermesh_outbox_published_total",
            "Outbox events the broker confirmed",
            registry=registry,
        )
        self.outbox_publish_failures = Counter(
            "ordermesh_outbox_publish_failures_total",
            "Outbox events not published, by reason (broker_unavailable also counts each "
            "failed attempt to reach the broker)",
            ["reason"],
            registry=registry,
        )
        for reason in PUBLISH_FAILURE_REASONS:
            self.outbox_publish_failures.labels(reason=reason)  # export zeros from the start
