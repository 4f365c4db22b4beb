"""Budgets, circuit breakers, coalescing and bulkheads, on a fake clock and the real
event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from gateway.resilience import (
    Budget,
    BudgetExhausted,
    Bulkhead,
    CircuitBreaker,
    CircuitOpen,
    Coalescer,
    State,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, changes: list[State] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        "orders",
        failures=3,
        reset_seconds=5,
        clock=clock,
        on_change=(changes.append if changes is not None else None),
    )


def state(circuit: CircuitBreaker) -> State:
    """The state, read through a call (mypy would otherwise narrow it for good)."""
    return circuit.state


def test_the_circuit_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock, changes = Clock(), list[State]()
    circuit = breaker(clock, changes)
    for _ in range(2):
        circuit.before_call()
        circuit.failed()
    circuit.before_call()
    circuit.succeeded()  # a success in between resets the count
    for _ in range(3):
        circuit.before_call()
        circuit.failed()
    assert circuit.state is State.OPEN
    clock.now += 2
    with pytest.raises(CircuitOpen) as refused:
        circuit.before_call()
    assert refused.value.retry_after == pytest.approx(3)
    assert changes == [State.OPEN]


def test_after_the_reset_time_one_trial_call_decides() -> None:
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.failed()
    clock.now += 5
    circuit.before_call()  # the trial
    assert state(circuit) is State.HALF_OPEN
    with pytest.raises(CircuitOpen):
        circuit.before_call()  # only one trial at a time
    circuit.failed()
    assert state(circuit) is State.OPEN  # the trial failed: open again, for a full period
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        circuit.before_call()
    clock.now += 0.1
    circuit.before_call()
    circuit.succeeded()
    assert state(circuit) is State.CLOSED
    circuit.before_call()  # closed: calls flow


def test_a_trial_that_ends_without_a_verdict_frees_the_next_trial() -> None:
    clock = Clock()
    circuit = breaker(clock)
    for _ in range(3):
        circuit.failed()
    clock.now += 5
    circuit.before_call()
    circuit.released()  # e.g. the caller went away
    circuit.before_call()  # another trial may go
    assert state(circuit) is State.HALF_OPEN


def test_a_budget_gives_what_is_left_and_refuses_when_spent() -> None:
    budget = Budget.of(10)
    assert 9.9 < budget.remaining() <= 10
    assert budget.remaining(cap=0.5) == 0.5
    with pytest.raises(BudgetExhausted):
        Budget.of(-1).remaining()


async def test_identical_concurrent_calls_share_one_and_different_keys_do_not() -> None:
    shared: list[int] = []
    coalescer = Coalescer(on_shared=lambda: shared.append(1))
    calls: list[str] = []
    gate = asyncio.Event()

    async def fetch(key: str) -> str:
        calls.append(key)
        await gate.wait()
        return f"result of {key}"

    def call(key: str) -> Callable[[], Awaitable[str]]:
        return lambda: fetch(key)

    waiting = [
        asyncio.ensure_future(coalescer.run(key, call(key)))
        for key in ("alice", "alice", "alice", "bob")
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting)
    assert results == ["result of alice"] * 3 + ["result of bob"]
    assert calls == ["alice", "bob"]
    assert len(shared) == 2
    assert len(coalescer) == 0  # nothing kept once done
    await coalescer.run("alice", lambda: fetch("alice"))
    assert calls == ["alice", "bob", "alice"]  # a later call is a new call


async def test_a_failure_reaches_every_sharer_and_one_leaving_cancels_nothing() -> None:
    coalescer = Coalescer()
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise ValueError("orders said no")

    first = asyncio.ensure_future(coalescer.run("k", failing))
    second = asyncio.ensure_future(coalescer.run("k", failing))
    leaver = asyncio.ensure_future(coalescer.run("k", failing))
    await asyncio.sleep(0)
    leaver.cancel()  # its client hung up
    await asyncio.sleep(0)
    gate.set()
    for waiter in (first, second):
        with pytest.raises(ValueError, match="orders said no"):
            await waiter
    assert leaver.cancelled()


async def test_a_bulkhead_lets_size_calls_out_and_the_rest_follow_as_slots_free() -> None:
    bulkhead = Bulkhead(2)
    out: list[int] = []
    peak = 0
    gates = [asyncio.Event() for _ in range(5)]

    async def call(i: int) -> int:
        nonlocal peak
        async with bulkhead.slot(Budget.of(10)):
            out.append(i)
            peak = max(peak, len(out))
            await gates[i].wait()
            out.remove(i)
        return i

    calls = [asyncio.ensure_future(call(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    assert out == [0, 1]  # the others wait in the bulkhead, not downstream
    gates[1].set()
    await asyncio.sleep(0.01)
    assert out == [0, 2]  # the first waiter took the freed slot
    for gate in gates:
        gate.set()
    assert await asyncio.gather(*calls) == [0, 1, 2, 3, 4]
    assert peak == 2


async def test_a_wait_past_the_budget_or_cancelled_keeps_no_slot() -> None:
    bulkhead = Bulkhead(1)
    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead.slot(Budget.of(10)):
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    with pytest.raises(BudgetExhausted):
        async with bulkhead.slot(Budget.of(0.05)):
            pytest.fail("entered a full bulkhead")

    async def enter() -> None:
        async with bulkhead.slot(Budget.of(10)):
            pass

    leaver = asyncio.ensure_future(enter())
    await asyncio.sleep(0)
    leaver.cancel()  # its client hung up while it waited
    release.set()
    await holder
    # Neither the late nor the cancelled waiter kept the one slot: it is free again.
    async with asyncio.timeout(1), bulkhead.slot(Budget.of(10)):
        pass
    assert leaver.cancelled()
