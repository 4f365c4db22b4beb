"""Per-subject token-bucket rate limiting, answered with 429 and ``Retry-After``.

Each key (the authenticated subject, from an injected ``key(scope)`` function; ``None``
means "not limited") owns a bucket of ``burst`` tokens refilled at ``rate_per_second``.
A request takes one token; with none left it gets 429 and ``Retry-After`` set to the
whole seconds until the next token (at least 1).

Memory is bounded. Buckets sit in an ``OrderedDict`` in order of last use, which is
also the order of last refill, so the most idle buckets are always at the front:
a bucket idle for ``burst / rate_per_second`` seconds is full again, is exactly
equivalent to no bucket at all, and is dropped. On top of that, at most ``max_keys``
buckets are kept; past that the least recently used one is evicted, which can hand
that key a fresh burst early, a deliberate trade against unbounded memory.

Several replicas: each replica keeps its own buckets in process memory, so with N
replicas behind a load balancer a subject may get up to N times ``rate_per_second``
(and N times ``burst``). Configure the per-replica rate with that in mind; a global
limit would need a shared store (e.g. Redis) consulted on every request.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from gateway.middleware.asgi import ASGIApp, Receive, Scope, Send, send_problem

KeyFunc = Callable[[Scope], str | None]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Pure ASGI middleware applying a token bucket per key."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_per_second: float,
        burst: int,
        key: KeyFunc,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
        on_limited: Callable[[], None] | None = None,
    ) -> None:
        if rate_per_second <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_second must be > 0, burst and max_keys >= 1")
        self.app = app
        self.rate = rate_per_second
        self.burst = burst
        self.key = key
        self.clock = clock
        self.max_keys = max_keys
        self.limited = 0
        self.on_limited = on_limited
        self._full_after = burst / rate_per_second
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """How many buckets are held in memory."""
        return len(self._buckets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        subject = self.key(scope)
        wait = 0.0 if subject is None else self._take(subject)
        if wait > 0:
            # An attribute, not a span: the decision takes microseconds.
            trace.get_current_span().set_attribute("ordermesh.rate_limited", True)
            self.limited += 1
            if self.on_limited is not None:
                self.on_limited()
            await send_problem(
                send,
                status=429,
                slug="rate-limited",
                title="Too many requests",
                detail="the request rate limit for this subject is exhausted",
                headers=[(b"retry-after", str(max(1, math.ceil(wait))).encode())],
            )
            return
        await self.app(scope, receive, send)

    def _take(self, subject: str) -> float:
        """Take a token for ``subject``: 0 on success, else seconds until one is due."""
        now = self.clock()
        self._expire(now)
        bucket = self._buckets.pop(subject, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = now - bucket.updated
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        self._buckets[subject] = bucket  # re-inserted last: most recently used
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _expire(self, now: float) -> None:
        """Drop buckets idle long enough to be full again (they hold no information)."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.updated < self._full_after:
                break
            buckets.popitem(last=False)
