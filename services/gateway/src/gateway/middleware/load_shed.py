"""Answer 503 at once when too many requests are in flight, instead of queueing.

A queue in front of a saturated process only adds latency to every request; a quick
503 with ``Retry-After`` lets the client (or the load balancer) go elsewhere.
Unlike uvicorn's ``--limit-concurrency`` this counts requests, not connections, so
idle keep-alive connections do not count, and it sets ``Retry-After``. Probe and
scrape paths are exempt: shedding them would make an overloaded pod look dead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry import trace
from servicekit.telemetry import span_if_recording

from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send, send_problem

DEFAULT_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
tracer = trace.get_tracer("gateway")


class LoadShedder:
    """Pure ASGI middleware bounding the HTTP requests in flight in this process."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        retry_after_seconds: int = 1,
        exempt_paths: Iterable[str] = DEFAULT_EXEMPT_PATHS,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.app = app
        self.max_in_flight = max_in_flight
        self.exempt_paths = frozenset(exempt_paths)
        self.on_shed = on_shed
        # A plain int is enough: the event loop runs one callback at a time.
        self.in_flight = 0
        self.shed = 0
        self._retry_after = [(b"retry-after", str(max(1, retry_after_seconds)).encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        with span_if_recording(tracer, "gateway.shed") as span:
            shed = self.in_flight >= self.max_in_flight
            span.set_attribute("ordermesh.shed", shed)
        if shed:
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed()
            await send_problem(
                send,
                status=503,
                slug="overloaded",
                title="Service overloaded",
                detail="too many requests in flight; retry later",
                headers=self._retry_after,
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
