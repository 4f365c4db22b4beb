"""The webhook sender against a local HTTP server: signature, headers, timeouts, retries."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time

import orjson
import pytest
from notify.errors import PermanentFailure, TransientFailure
from notify.senders import WebhookSender, webhook_client

from .support import order_event, webhook_receiver

SECRET = b"k-test-2f1c"


def _sender(url: str, *, timeout: float = 2.0, tries: int = 3) -> WebhookSender:
    return WebhookSender(
        client=webhook_client(timeout=timeout, max_connections=8),
        url=url,
        secret=SECRET,
        timeout=timeout,
        tries=tries,
    )


async def test_the_post_is_signed_and_names_the_event() -> None:
    event = order_event("confirmed")
    async with webhook_receiver() as hook:
        sender = _sender(hook.url)
        try:
            await sender.send(event=event)
        finally:
            await sender.aclose()
    ((headers, body),) = hook.requests
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-ordermesh-signature"], f"sha256={expected}")
    assert headers["x-ordermesh-event-id"] == str(event.event_id)
    assert headers["x-ordermesh-event-type"] == "order.confirmed"
    assert headers["content-type"] == "application/json"
    assert orjson.loads(body) == event.model_dump(mode="json")


async def test_5xx_is_retried_within_the_budget_then_succeeds() -> None:
    async with webhook_receiver([502, 503]) as hook:
        sender = _sender(hook.url, tries=3)
        try:
            await sender.send(event=order_event())
        finally:
            await sender.aclose()
    assert len(hook.requests) == 3


async def test_5xx_every_time_is_a_transient_failure_after_the_budget() -> None:
    async with webhook_receiver([500] * 5) as hook:
        sender = _sender(hook.url, tries=3)
        try:
            with pytest.raises(TransientFailure, match="webhook answered 500"):
                await sender.send(event=order_event())
        finally:
            await sender.aclose()
    assert len(hook.requests) == 3


async def test_4xx_is_permanent_and_not_retried() -> None:
    async with webhook_receiver([422]) as hook:
        sender = _sender(hook.url, tries=3)
        try:
            with pytest.raises(PermanentFailure, match="webhook answered 422"):
                await sender.send(event=order_event())
        finally:
            await sender.aclose()
    assert len(hook.requests) == 1


async def test_a_slow_receiver_hits_the_timeout() -> None:
    async with webhook_receiver(delay=3.0) as hook:
        sender = _sender(hook.url, timeout=0.3, tries=2)
        started = time.monotonic()
        try:
            with pytest.raises(TransientFailure, match=r"timed out after 0\.3s"):
                await sender.send(event=order_event())
        finally:
            await sender.aclose()
        elapsed = time.monotonic() - started
    assert len(hook.requests) == 2
    assert 0.6 <= elapsed < 1.5, elapsed


async def test_nobody_listening_is_a_transient_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        sender = _sender(f"http://127.0.0.1:{port}/hook", tries=2)
        try:
            with pytest.raises(TransientFailure, match="webhook unreachable"):
                await sender.send(event=order_event())
        finally:
            await sender.aclose()
