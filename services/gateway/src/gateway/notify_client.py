"""The gateway's client of notify's HTTP API: the httpx API on the aiohttp transport.

httpx's default transport loses throughput as concurrency rises (see the project's
performance notes), so the client runs on `httpx_aiohttp.AiohttpTransport`; tests can
still hand in any httpx transport. Every call has a timeout; failures and timeouts
count towards notify's circuit breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport
from servicekit.instrumentation import trace_httpx

from gateway.resilience import CircuitBreaker

MAX_CONNECTIONS: Final = 100


class NotifyUnavailable(Exception):
    """notify did not give a usable answer (down, slow, failing, or circuit open)."""


class NotifyClient:
    def __init__(
        self,
        base_url: str,
        *,
        breaker: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
        observe: Callable[[str, float], None] = lambda outcome, seconds: None,
    ) -> None:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        # Traced: a client span per call, and its traceparent in the request headers.
        self._client = trace_httpx(
            httpx.AsyncClient(
                base_url=base_url,
                transport=transport or AiohttpTransport(limits=limits, trust_env=False),
                trust_env=False,
            )
        )
        self.breaker = breaker
        self._observe = observe

    async def aclose(self) -> None:
        await self._client.aclose()

    async def notifications(
        self, order_id: str, *, limit: int, timeout: float
    ) -> list[dict[str, Any]]:
        """The first `limit` notifications of an order, oldest first."""
        self.breaker.before_call()
        started = time.perf_counter()
        try:
            response = await self._client.get(
                "/v1/notifications",
                params={"order_id": order_id, "limit": limit},
                timeout=timeout,
            )
        except httpx.HTTPError as error:
            self._observe("error", time.perf_counter() - started)
            self.breaker.failed()
            raise NotifyUnavailable(f"{type(error).__name__}: {error}") from error
        except BaseException:
            self.breaker.released()
            raise
        self._observe(f"{response.status_code // 100}xx", time.perf_counter() - started)
        if response.status_code >= 500:
            self.breaker.failed()
            raise NotifyUnavailable(f"notify answered {response.status_code}")
        self.breaker.succeeded()
        if response.status_code != 200:
            raise NotifyUnavailable(f"notify answered {response.status_code}")
        items: list[dict[str, Any]] = orjson.loads(response.content)["items"]
        return items
