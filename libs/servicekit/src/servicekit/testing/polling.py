"""Waiting in tests for something that happens in the background."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


async def poll_until(
    check: Callable[[], Awaitable[T]],
    *,
    seconds: float = 20,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Call `check` until it returns something truthy, and return that; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {seconds}s")
        await asyncio.sleep(interval)
