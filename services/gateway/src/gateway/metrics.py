"""Every Prometheus instrument of the gateway, in one place (labels are closed sets)."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.resilience import State

DOWNSTREAMS: Final = ("orders", "notify")
COALESCED_ROUTES: Final = ("get_order", "list_orders")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.shed = Counter(
            "ordermesh_gateway_shed_total",
            "Requests answered 503 at once because too many were in flight",
            registry=registry,
        )
        self.in_flight = Gauge(
            "ordermesh_gateway_requests_in_flight",
            "API requests being handled now (what the load shedder bounds)",
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
        self.degraded = Counter(
            "ordermesh_gateway_degraded_summaries_total",
            "Order summaries answered without notifications (notify slow, down or failing)",
            registry=registry,
        )
        for downstream in DOWNSTREAMS:
            self.circuit_state.labels(downstream=downstream).set(State.CLOSED.value)
        for route in COALESCED_ROUTES:
            self.coalesced.labels(route=route)
