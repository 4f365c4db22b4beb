"""How a notification leaves the service: a log line, or a signed webhook POST.

Both sit behind the `Sender` protocol; settings choose one per process. Delivery is
at least once: when a process dies after the POST but before the inbox row is marked
sent, the redelivered event is sent again. Receivers deduplicate on the
X-Ordermesh-Event-Id header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
from typing import Final, Protocol

import aiohttp
import httpx
from contracts.events import OrderEvent
from httpx_aiohttp import AiohttpTransport
from servicekit.instrumentation import trace_httpx

from notify.errors import PermanentFailure, TransientFailure
from notify.settings import NotifySettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-Ordermesh-Signature"
EVENT_ID_HEADER: Final = "X-Ordermesh-Event-Id"
EVENT_TYPE_HEADER: Final = "X-Ordermesh-Event-Type"
# Answers that may turn out differently a moment later; any other non-2xx is final.
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
_FIRST_BACKOFF_SECONDS: Final = 0.1


class Sender(Protocol):
    """Delivers one notification; raises TransientFailure or PermanentFailure."""

    @property
    def name(self) -> str: ...

    async def send(self, *, event: OrderEvent) -> None: ...

    async def aclose(self) -> None: ...


class LogSender:
    """One structured log line per notification: the default, and enough for development."""

    name = "log"

    async def send(self, *, event: OrderEvent) -> None:
        log.info(
            "notification",
            extra={
                "event_id": str(event.event_id),
                "event_type": event.event_type,
                "order_id": str(event.order.id),
                "customer_id": event.order.customer_id,
                "order_status": event.order.status,
            },
        )

    async def aclose(self) -> None:
        pass


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSender:
    """POSTs the event envelope as JSON, signed with HMAC-SHA256, with a few quick retries."""

    name = "webhook"

    def __init__(
        self, *, client: httpx.AsyncClient, url: str, secret: bytes, timeout: float, tries: int
    ) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._tries = tries

    async def send(self, *, event: OrderEvent) -> None:
        body = event.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            EVENT_ID_HEADER: str(event.event_id),
            EVENT_TYPE_HEADER: event.event_type,
        }
        backoff = _FIRST_BACKOFF_SECONDS
        for attempt in range(1, self._tries + 1):
            try:
                await self._post(body, headers)
            except TransientFailure:
                if attempt == self._tries:
                    raise
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                backoff *= 2
            else:
                return

    async def _post(self, body: bytes, headers: dict[str, str]) -> None:
        try:
            # The aiohttp transport maps httpx's timeouts to per-read limits only; this
            # bounds the whole request, however slowly a server trickles its answer.
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(self._url, content=body, headers=headers)
        except TimeoutError:
            raise TransientFailure(f"webhook timed out after {self._timeout:g}s") from None
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise TransientFailure(f"webhook unreachable: {type(exc).__name__} {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        problem = f"webhook answered {status} {response.reason_phrase}".rstrip()
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise TransientFailure(problem)
        raise PermanentFailure(problem)

    async def aclose(self) -> None:
        await self._client.aclose()


def webhook_client(*, timeout: float, max_connections: int) -> httpx.AsyncClient:
    """The process's one HTTP client: httpx's API on aiohttp's faster transport."""
    transport = AiohttpTransport(
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
    )
    # Traced: the receiver gets the event's trace in `traceparent`.
    return trace_httpx(httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout)))


def build_sender(settings: NotifySettings) -> Sender:
    """The sender the settings choose; a webhook sender owns a new HTTP client."""
    if settings.sender == "log":
        return LogSender()
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    return WebhookSender(
        client=webhook_client(
            timeout=settings.webhook_timeout_seconds, max_connections=settings.max_concurrency
        ),
        url=settings.webhook_url,
        secret=settings.webhook_secret.get_secret_value().encode(),
        timeout=settings.webhook_timeout_seconds,
        tries=settings.webhook_tries,
    )
