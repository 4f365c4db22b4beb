"""ReadBatcher on its own: what goes alone, what goes together, who gets which answer.

The single and batch calls are recording coroutines whose answers the test releases;
the gRPC side is in test_downstream_calls.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from contracts.orders.v1 import orders_pb2 as pb
from gateway.problems import ApiError
from gateway.read_batcher import Read, ReadBatcher
from gateway.resilience import Budget, BudgetExhausted


@dataclass
class Orders:
    """Answers each read with an order of that id once `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    singles: list[str] = field(default_factory=list)
    batches: list[list[str]] = field(default_factory=list)
    batch_deadlines: list[float] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    batch_fails: Exception | None = None

    async def one(self, customer_id: str, order_id: str, budget: Budget) -> pb.Order:
        self.singles.append(order_id)
        await self.release.wait()
        if order_id in self.missing:
            raise ApiError(404, "not-found", "Not found", "no such order")
        return pb.Order(id=order_id, customer_id=customer_id)

    async def many(self, reads: Sequence[Read], budget: Budget) -> list[pb.Order | Exception]:
        self.batches.append([r.order_id for r in reads])
        self.batch_deadlines.append(budget.deadline)
        await self.release.wait()
        if self.batch_fails is not None:
            raise self.batch_fails
        return [
            ApiError(404, "not-found", "Not found", "no such order")
            if r.order_id in self.missing
            else pb.Order(id=r.order_id, customer_id=r.customer_id)
            for r in reads
        ]


def batcher(orders: Orders, *, in_flight: int = 1, max_batch: int = 64) -> ReadBatcher:
    return ReadBatcher(orders.one, orders.many, max_in_flight=in_flight, max_batch=max_batch)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def reads(
    b: ReadBatcher, ids: Sequence[str], *, budget: float = 5.0
) -> list[asyncio.Task[pb.Order]]:
    return [asyncio.create_task(b.get("alice", i, Budget.of(budget))) for i in ids]


async def test_reads_within_the_calls_in_flight_go_alone_at_once() -> None:
    orders = Orders()
    b = batcher(orders, in_flight=3)
    tasks = reads(b, ["a", "b", "c"])
    await settle()
    assert orders.singles == ["a", "b", "c"]
    assert orders.batches == []
    orders.release.set()
    assert [t.id for t in await asyncio.gather(*tasks)] == ["a", "b", "c"]


async def test_reads_that_queue_leave_together_and_each_gets_its_own_order() -> None:
    orders = Orders()
    b = batcher(orders)
    tasks = reads(b, ["first", "x", "y", "z"])
    await settle()
    assert orders.singles == ["first"]
    assert b.waiting == 3
    orders.release.set()
    results = await asyncio.gather(*tasks)
    assert orders.batches == [["x", "y", "z"]]
    assert [(r.id, r.customer_id) for r in results] == [
        ("first", "alice"),
        ("x", "alice"),
        ("y", "alice"),
        ("z", "alice"),
    ]


async def test_one_read_not_found_in_a_batch_fails_only_that_read() -> None:
    orders = Orders(missing={"y"})
    b = batcher(orders)
    tasks = reads(b, ["first", "x", "y", "z"])
    await settle()
    orders.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], ApiError)
    assert results[2].status == 404
    assert [r.id for r in results if isinstance(r, pb.Order)] == ["first", "x", "z"]


async def test_a_failed_batch_call_fails_each_of_its_reads() -> None:
    unavailable = ApiError(503, "unavailable", "Service unavailable", "orders is unavailable")
    orders = Orders(batch_fails=unavailable)
    b = batcher(orders)
    tasks = reads(b, ["first", "x", "y"])
    await settle()
    orders.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], pb.Order)
    assert results[1:] == [unavailable, unavailable]


async def test_batches_hold_at_most_max_batch_reads_and_a_lone_leftover_goes_alone() -> None:
    orders = Orders()
    b = batcher(orders, in_flight=1, max_batch=2)
    tasks = reads(b, ["first", "a", "b", "c"])
    await settle()
    orders.release.set()
    await asyncio.gather(*tasks)
    assert orders.batches == [["a", "b"]]
    assert orders.singles == ["first", "c"]


async def test_a_read_whose_caller_left_is_not_sent() -> None:
    orders = Orders()
    b = batcher(orders)
    tasks = reads(b, ["first", "x", "gone", "y"])
    await settle()
    tasks[2].cancel()
    await settle()
    orders.release.set()
    await asyncio.gather(tasks[0], tasks[1], tasks[3])
    assert orders.batches == [["x", "y"]]
    assert tasks[2].cancelled()


async def test_a_read_out_of_time_while_waiting_fails_and_is_not_sent() -> None:
    orders = Orders()
    b = batcher(orders)
    first = reads(b, ["first"])
    late = reads(b, ["late"], budget=0.05)
    rest = reads(b, ["x", "y"])
    await asyncio.sleep(0.1)  # "late" has no time left when the first call returns
    orders.release.set()
    with pytest.raises(BudgetExhausted):
        await late[0]
    await asyncio.gather(*first, *rest)
    assert orders.batches == [["x", "y"]]


async def test_a_batch_gets_the_deadline_of_its_tightest_read() -> None:
    orders = Orders()
    b = batcher(orders)
    first = reads(b, ["first"])
    began = time.monotonic()
    tasks = reads(b, ["x"], budget=9.0) + reads(b, ["y"], budget=2.0) + reads(b, ["z"], budget=7.0)
    await settle()
    orders.release.set()
    await asyncio.gather(*first, *tasks)
    assert began + 1.9 < orders.batch_deadlines[0] < began + 2.1


async def test_reads_per_call_are_observed() -> None:
    orders = Orders()
    seen: list[int] = []
    b = ReadBatcher(orders.one, orders.many, max_in_flight=1, max_batch=64, observe=seen.append)
    tasks = reads(b, ["first", "x", "y"])
    await settle()
    orders.release.set()
    await asyncio.gather(*tasks)
    assert seen == [1, 2]
