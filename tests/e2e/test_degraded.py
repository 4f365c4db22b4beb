"""With notify not answering, a summary still returns the order in time, marked degraded."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.support import create_order, poll_until
from tests.e2e.target import Target

# The gateway waits GATEWAY_NOTIFY_TIMEOUT_SECONDS (0.5 s by default) for notify.
DEGRADED_WITHIN_SECONDS = 2.0


async def test_summary_degrades_while_notify_is_paused_and_recovers(
    client: httpx.AsyncClient, target: Target
) -> None:
    if target.pause_notify is None or target.resume_notify is None:
        pytest.fail("set ORDERMESH_E2E_PAUSE_NOTIFY and ORDERMESH_E2E_RESUME_NOTIFY (target.py)")
    auth = target.auth()
    order = await create_order(client, auth)
    path = f"/v1/orders/{order['id']}/summary"
    target.pause_notify()
    try:
        for _ in range(3):
            started = time.monotonic()
            response = await client.get(path, headers=auth)
            elapsed = time.monotonic() - started
            assert response.status_code == 200, response.text
            summary = response.json()
            assert summary["degraded"] is True
            assert summary["notifications"] == []
            assert summary["degraded_reason"], summary
            assert summary["order"] == order
            assert elapsed < DEGRADED_WITHIN_SECONDS, elapsed
    finally:
        target.resume_notify()

    async def whole() -> dict[str, Any] | None:
        summary: dict[str, Any] = (await client.get(path, headers=auth)).json()
        return summary if not summary["degraded"] and summary["notifications"] else None

    summary = await poll_until(whole, seconds=30, what="a full summary after notify is back")
    assert summary["notifications"][0]["event_type"] == "order.created"
