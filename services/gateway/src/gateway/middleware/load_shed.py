"""Bound the HTTP requests in flight: a short, bounded queue, then a fast 503.

Up to ``max_in_flight`` requests run at once. The next ``max_queued`` wait, first come
first served, for at most ``max_queue_seconds``; a request that finds the queue full,
or waits its time out, gets 503 with ``Retry-After``.

Why a queue and not a 503 at once (as this middleware first did): under a closed loop
of clients, a fast 503 comes straight back as the next request, so a saturated
process spends its CPU answering sheds while the admitted requests starve. Measured
with 1,024 connections against a limit of 256, goodput fell to 6% of that at 64
connections (bench/README.md). A waiting request costs nothing until a slot frees,
so the process keeps doing useful work at its full rate; the queue's bounds keep
the latency bounded and still shed under a real overload (arrivals faster than the
process can ever serve). The queue wait is not taken from the request's budget,
which starts with the handler.

Unlike uvicorn's ``--limit-concurrency`` this counts requests, not connections, so
idle keep-alive connections do not count, and it sets ``Retry-After``. Probe and
scrape paths are exempt: shedding them would make an overloaded pod look dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable

from opentelemetry import trace
from servicekit.telemetry import span_if_recording

from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send, send_problem

DEFAULT_EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
tracer = trace.get_tracer("gateway")


class LoadShedder:
    """Pure ASGI middleware: a bounded number of requests in flight, a bounded queue."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        max_queued: int = 0,
        max_queue_seconds: float = 1.0,
        retry_after_seconds: int = 1,
        exempt_paths: Iterable[str] = DEFAULT_EXEMPT_PATHS,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if max_queued < 0 or max_queue_seconds <= 0:
            raise ValueError("max_queued must not be negative, max_queue_seconds positive")
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.max_queue_seconds = max_queue_seconds
        self.exempt_paths = frozenset(exempt_paths)
        self.on_shed = on_shed
        # Plain counters are enough: the event loop runs one callback at a time.
        self.in_flight = 0
        self.shed = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._retry_after = [(b"retry-after", str(max(1, retry_after_seconds)).encode())]

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight < self.max_in_flight:  # a free slot: nothing to wait for or trace
            self.in_flight += 1
        else:
            # A span only for a wait (or a shed): one for every admitted request cost
            # what any span costs and showed nothing (docs/observability.md).
            with span_if_recording(tracer, "gateway.admit") as span:
                admitted = await self._wait_for_slot()
                span.set_attribute("ordermesh.shed", not admitted)
            if not admitted:
                await self._answer_shed(send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _wait_for_slot(self) -> bool:
        """Wait in the queue for a slot; False: shed.

        A slot that frees goes straight to the longest waiter (``_release``), so while
        anyone waits every slot is taken and a newcomer cannot jump the queue."""
        if len(self._waiting) >= self.max_queued:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self.max_queue_seconds):
                await waiter
        except TimeoutError:
            pass
        except BaseException:  # the client left while waiting
            if _handed_a_slot(waiter):
                self._release()  # pass on the slot it will not use
            else:
                self._forget(waiter)
            raise
        if _handed_a_slot(waiter):  # also when it came just as the time ran out
            return True
        self._forget(waiter)
        return False

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):  # _release may have dropped it already
            self._waiting.remove(waiter)

    def _release(self) -> None:
        """Hand the slot to the longest live waiter, or give it back."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # not timed out or abandoned
                waiter.set_result(None)
                return
        self.in_flight -= 1

    async def _answer_shed(self, send: Send) -> None:
        self.shed += 1
        if self.on_shed is not None:
            self.on_shed()
        await send_problem(
            send,
            status=503,
            slug="overloaded",
            title="Service overloaded",
            detail="too many requests in flight and queued; retry later",
            headers=self._retry_after,
        )


def _handed_a_slot(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled()
