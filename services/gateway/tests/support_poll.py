"""Polling for the gateway's in-process tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest


async def poll_until(
    check: Callable[[], Awaitable[bool]], *, seconds: float = 20, what: str = "condition"
) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {seconds}s")
        await asyncio.sleep(0.05)
