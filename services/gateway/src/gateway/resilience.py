"""Request budgets, circuit breakers and request coalescing for the downstream calls.

* `Budget`: the deadline of one incoming request. Every downstream call gets what is
  left of it, so a slow first hop shortens the second instead of stacking timeouts.
* `CircuitBreaker`: after `failures` consecutive failures of a downstream the circuit
  opens and calls fail fast for `reset_seconds`; then one trial call is let through
  (half-open): success closes the circuit, failure opens it again. Only the
  downstream's own failures count (unavailable, timeouts), never a 404 or a 422.
* `Coalescer`: identical concurrent reads share one downstream call (single flight).
  Only for reads whose key includes everything that makes the answer differ, here
  the caller's subject: one customer never receives another's result.
* `Bulkhead`: at most `size` calls of one kind out at once; the rest wait here, within
  their budget, where waiting is cheaper than in the downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final, TypeVar, cast

T = TypeVar("T")

MIN_CALL_SECONDS: Final = 0.001  # below this a call cannot succeed: treat as expired


class BudgetExhausted(Exception):
    """The request's deadline passed before a downstream call could be made."""


@dataclass(frozen=True, slots=True)
class Budget:
    """The deadline of one request, on the monotonic clock."""

    deadline: float

    @classmethod
    def of(cls, seconds: float) -> Budget:
        return cls(time.monotonic() + seconds)

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left (at most `cap`); BudgetExhausted when none are."""
        left = self.deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            raise BudgetExhausted
        return left if cap is None else min(left, cap)


class CircuitOpen(Exception):
    """The circuit of a downstream is open: the call was not made."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"{name} is failing (circuit open); calls paused for {retry_after:.1f}s")
        self.name = name
        self.retry_after = retry_after


class State(Enum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclass(slots=True)
class CircuitBreaker:
    """Consecutive-failure circuit breaker for one downstream (one per process)."""

    name: str
    failures: int
    reset_seconds: float
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[State], None] | None = None
    state: State = State.CLOSED
    _consecutive: int = 0
    _opened_at: float = 0.0
    _trial_running: bool = False

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go out now (and account for a trial)."""
        if self.state is State.CLOSED:
            return
        wait = self._opened_at + self.reset_seconds - self.clock()
        if self.state is State.OPEN and wait <= 0:
            self._set(State.HALF_OPEN)
        if self.state is State.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return
        raise CircuitOpen(self.name, max(wait, 0.0) or self.reset_seconds)

    def succeeded(self) -> None:
        self._trial_running = False
        self._consecutive = 0
        if self.state is not State.CLOSED:
            self._set(State.CLOSED)

    def failed(self) -> None:
        self._trial_running = False
        self._consecutive += 1
        if self.state is State.HALF_OPEN or self._consecutive >= self.failures:
            self._opened_at = self.clock()
            self._set(State.OPEN)

    def released(self) -> None:
        """The call ended with neither verdict (e.g. the caller went away)."""
        self._trial_running = False

    def _set(self, state: State) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(state)


@dataclass(slots=True)
class Coalescer:
    """Single flight: concurrent calls with the same key share the first one's result."""

    on_shared: Callable[[], None] | None = None
    _running: dict[Hashable, asyncio.Future[object]] = field(default_factory=dict)

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            task: asyncio.Future[object] = asyncio.ensure_future(call())
            self._running[key] = running = task
            task.add_done_callback(lambda future: self._finished(key, future))
        elif self.on_shared is not None:
            self.on_shared()
        # shield: one caller leaving (its client hung up) must not cancel the others.
        return cast(T, await asyncio.shield(running))

    def _finished(self, key: Hashable, future: asyncio.Future[object]) -> None:
        self._running.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved: with every caller gone, nobody else would

    def __len__(self) -> int:
        return len(self._running)


class Bulkhead:
    """At most `size` calls out at once; later ones wait in turn until their deadline."""

    def __init__(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)
        self.waiting = 0  # calls waiting for a slot now (a gauge reads it when scraped)

    @contextlib.asynccontextmanager
    async def slot(self, budget: Budget) -> AsyncIterator[None]:
        if self._slots.locked():  # only a wait needs a timer
            self.waiting += 1
            try:
                async with asyncio.timeout(budget.remaining()):
                    await self._slots.acquire()
            except TimeoutError:
                raise BudgetExhausted from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
