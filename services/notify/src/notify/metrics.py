"""Every Prometheus instrument of the notify service, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# What became of one delivered message; a closed set, so the label stays bounded.
OUTCOMES: Final = ("recorded", "duplicate", "retried", "dead_lettered")
SENDER_OUTCOMES: Final = ("ok", "transient", "permanent")
# Every sender NOTIFY_SENDER may name (notify.senders); a process that knows its own
# passes just that one, so it exports no zeros for a sender it never uses.
SENDERS: Final = ("log", "webhook")

# From milliseconds (a healthy pipeline) to minutes (a backlog after an outage).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry, *, senders: Iterable[str] = SENDERS) -> None:
        self.handled = Counter(
            "ordermesh_notify_messages_handled_total",
            "Messages handled, by outcome: recorded (first arrival), duplicate (seen "
            "before), retried (sent to the retry queue), dead_lettered",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.handled.labels(outcome=outcome)  # export zeros from the start
        self.handling_seconds = Histogram(
            "ordermesh_notify_handling_seconds",
            "Time from a message's arrival in this process to its acknowledgement",
            registry=registry,
        )
        self.redelivered = Counter(
            "ordermesh_notify_redelivered_total",
            "Messages the broker delivered again (a consumer died or gave them back)",
            registry=registry,
        )
        self.event_latency = Histogram(
            "ordermesh_event_latency_seconds",
            "From the event's commit in orders (occurred_at) to its record in notify",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.sender_seconds = Histogram(
            "ordermesh_notify_sender_seconds",
            "Time to send one notification, by sender and outcome (ok, transient, permanent)",
            ["sender", "outcome"],
            registry=registry,
        )
        for sender in senders:
            for sender_outcome in SENDER_OUTCOMES:
                self.sender_seconds.labels(sender=sender, outcome=sender_outcome)
        self.in_flight = Gauge(
            "ordermesh_notify_in_flight",
            "Messages being handled right now",
            registry=registry,
        )
