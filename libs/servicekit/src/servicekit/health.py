"""Liveness and readiness.

Liveness means the process works: it answers as long as the event loop runs.
Readiness means the process should get traffic: it has started, is not draining,
and every dependency check passes within its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from servicekit.telemetry import background

# A check returns when the dependency answers and raises when it does not.
Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    ready: bool
    checks: dict[str, str]


class Readiness:
    """Tracks start-up, draining and the dependency checks of one process."""

    def __init__(self, *, check_timeout: float = 1.0) -> None:
        self._checks: dict[str, Check] = {}
        self._check_timeout = check_timeout
        self._started = False
        self._draining = False

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def mark_started(self) -> None:
        self._started = True

    def start_draining(self) -> None:
        """From now on report not ready, so load balancers stop sending work."""
        self._draining = True

    @property
    def draining(self) -> bool:
        return self._draining

    async def evaluate(self) -> ReadinessReport:
        """Run every check concurrently and report each outcome."""
        names = list(self._checks)
        with background():  # a probe every few seconds is not a trace worth keeping
            outcomes = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        checks = dict(zip(names, outcomes, strict=True))
        if not self._started:
            checks["startup"] = "starting"
        if self._draining:
            checks["shutdown"] = "draining"
        ready = all(outcome == "ok" for outcome in checks.values())
        return ReadinessReport(ready=ready, checks=checks)

    async def _run(self, check: Check) -> str:
        try:
            async with asyncio.timeout(self._check_timeout):
                await check()
        except TimeoutError:
            return f"timed out after {self._check_timeout}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "ok"
