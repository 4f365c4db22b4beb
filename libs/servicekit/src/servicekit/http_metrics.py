"""RED metrics of an HTTP server, as one pure ASGI middleware.

Duration by method, route template and status class, and requests in flight. Labels
stay bounded: the route is the template the router matched (`/v1/orders/{order_id}`),
never the raw path; a request refused before routing (401, 413, 429, 503 ...) is
`unrouted`, and an unusual method is `other`.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CollectorRegistry, Gauge, Histogram

from servicekit.asgi import ASGIApp, Message, Receive, Scope, Send

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED: Final = "unrouted"
# From a cached read (ms) to a request that ran out its budget (s).
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class HttpServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "ordermesh_http_server_request_duration_seconds",
            "HTTP requests served, by method, route template and status class",
            ["method", "route", "status_class"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "ordermesh_http_server_requests_in_flight",
            "HTTP requests being served now",
            registry=registry,
        )


class MeasureHttp:
    """Pure ASGI middleware observing every HTTP request into HttpServerMetrics."""

    def __init__(self, app: ASGIApp, metrics: HttpServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception is a server error

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.in_flight.dec()
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.duration.labels(method, route_of(scope), f"{status // 100}xx").observe(
                time.perf_counter() - started
            )


def route_of(scope: Scope) -> str:
    """The route template the router put in the scope, or `unrouted`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNROUTED
