"""Every Prometheus instrument of the gateway, in one place (labels are closed sets)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.resilience import State

DOWNSTREAMS: Final = ("orders", "notify")
COALESCED_ROUTES: Final = ("get_order", "list_orders")
# Outcomes of a call to notify: its status class (it never redirects), or error (no answer).
NOTIFY_CALL_OUTCOMES: Final = ("2xx", "4xx", "5xx", "error")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.shed = Counter(
            "ordermesh_gateway_shed_total",
            "Requests answered 503: the in-flight bound and its queue were full, or the wait "
            "ran out",
            registry=registry,
        )
        # Read when scraped (set_function in server.py): nothing per request.
        self.queued = Gauge(
            "ordermesh_gateway_queued_requests",
            "Requests waiting for an in-flight slot now (GATEWAY_MAX_QUEUED at most)",
            registry=registry,
        )
        self.writes_waiting = Gauge(
            "ordermesh_gateway_orders_writes_waiting",
            "Creates and cancels waiting now for one of GATEWAY_WRITE_CALLS_IN_FLIGHT calls "
            "to orders",
            registry=registry,
        )
        self.rate_limited = Counter(
            "ordermesh_gateway_rate_limited_total",
            "Requests answered 429 because their subject exceeded its rate",
            registry=registry,
        )
        self.circuit_state = Gauge(
            "ordermesh_gateway_circuit_state",
            "Circuit breaker per downstream: 0 closed, 1 open, 2 half-open",
            ["downstream"],
            registry=registry,
        )
        self.coalesced = Counter(
            "ordermesh_gateway_coalesced_total",
            "Requests answered by sharing an identical in-flight downstream call",
            ["route"],
            registry=registry,
        )
        self.reads_per_call = Histogram(
            "ordermesh_gateway_orders_reads_per_call",
            "Reads by id per call to orders: 1 is a GetOrder, more a BatchGetOrders of reads "
            "that queued behind GATEWAY_READ_CALLS_IN_FLIGHT calls",
            buckets=(1, 2, 4, 8, 16, 32, 64, 100),
            registry=registry,
        )
        self.notify_calls = Histogram(
            "ordermesh_http_client_duration_seconds",
            "Outbound HTTP calls, by target and outcome (2xx, 4xx, 5xx, error)",
            ["target", "outcome"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.degraded = Counter(
            "ordermesh_gateway_degraded_summaries_total",
            "Order summaries answered without notifications (notify slow, down or failing)",
            registry=registry,
        )
        for downstream in DOWNSTREAMS:
            self.circuit_state.labels(downstream=downstream).set(State.CLOSED.value)
        # Known label combinations export zeros from the start, so a rate() over them
        # is 0 rather than no data until the first event.
        for route in COALESCED_ROUTES:
            self.coalesced.labels(route=route)
        for outcome in NOTIFY_CALL_OUTCOMES:
            self.notify_calls.labels("notify", outcome)

    def observe_notify_call(self, outcome: str, seconds: float) -> None:
        self.notify_calls.labels("notify", outcome).observe(seconds)
