"""Reads by id that queue up behind the gateway's calls to orders leave together.

Every call to orders costs both processes a fixed amount of CPU whatever it carries
(grpc.aio's call machinery, a span, metrics: the bare hop alone is ~0.4 ms a side in
bench/grpc_floor.py), and under load that fixed part was most of a read. So:

* While fewer than `max_in_flight` read calls are out, a read goes at once as its own
  GetOrder: at low load nothing waits and nothing changes.
* Beyond that, reads wait for the next call to come back, then leave together, up to
  `max_batch` in one BatchGetOrders (one hop for the gateway, one hop and one query for
  orders). The wait is at most one call's round trip, the time the read would
  otherwise have queued inside orders.

Nothing is cached or shared between callers: each read is answered from a query made
after it arrived, with the error GetOrder would have given it alone. A batch's deadline
is its tightest read's (reads arrive with the same budget, so that is the oldest one's).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from contracts.orders.v1 import orders_pb2 as pb
from opentelemetry import trace

from gateway.resilience import Budget, BudgetExhausted


@dataclass(slots=True)
class Read:
    """One waiting read: what to ask, whom to answer, and the trace it belongs to."""

    customer_id: str
    order_id: str
    budget: Budget
    future: asyncio.Future[pb.Order]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    span: trace.SpanContext = field(
        default_factory=lambda: trace.get_current_span().get_span_context()
    )


# The single read (GetOrder), and the batch (BatchGetOrders: per read, the order or the
# exception that read alone would have raised; a failed call raises for all of them).
ReadOne = Callable[[str, str, Budget], Awaitable[pb.Order]]
ReadMany = Callable[[Sequence[Read], Budget], Awaitable[list[pb.Order | Exception]]]


class ReadBatcher:
    def __init__(
        self,
        one: ReadOne,
        many: ReadMany,
        *,
        max_in_flight: int,
        max_batch: int,
        observe: Callable[[int], None] = lambda reads: None,
    ) -> None:
        self._one, self._many = one, many
        self._max_in_flight, self._max_batch = max_in_flight, max_batch
        self._observe = observe  # reads per call, for the metrics
        self._in_flight = 0
        self._waiting: deque[Read] = deque()
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def get(self, customer_id: str, order_id: str, budget: Budget) -> pb.Order:
        if self._in_flight < self._max_in_flight and not self._waiting:
            self._in_flight += 1
            self._observe(1)
            try:
                return await self._one(customer_id, order_id, budget)
            finally:
                self._call_ended()
        read = Read(customer_id, order_id, budget, asyncio.get_running_loop().create_future())
        self._waiting.append(read)
        # A caller that leaves cancels its future; the batch then skips it.
        return await read.future

    def _call_ended(self) -> None:
        self._in_flight -= 1
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._take()
            if not batch:
                continue
            self._in_flight += 1
            self._observe(len(batch))
            # The call runs in the trace of the first sampled read, so one trace shows
            # the hop in full; the call's span links to the others.
            parent = next((r for r in batch if r.span.trace_flags.sampled), batch[0])
            task = asyncio.get_running_loop().create_task(self._send(batch), context=parent.context)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[Read]:
        """Up to max_batch waiting reads still wanted; those out of time fail here."""
        batch: list[Read] = []
        while self._waiting and len(batch) < self._max_batch:
            read = self._waiting.popleft()
            if read.future.done():  # its caller left
                continue
            try:
                read.budget.remaining()
            except BudgetExhausted as exc:
                read.future.set_exception(exc)
                continue
            batch.append(read)
        return batch

    async def _send(self, batch: list[Read]) -> None:
        results: Sequence[pb.Order | BaseException]
        try:
            if len(batch) == 1:
                read = batch[0]
                results = [await self._one(read.customer_id, read.order_id, read.budget)]
            else:
                tightest = Budget(min(r.budget.deadline for r in batch))
                results = await self._many(batch, tightest)
        except Exception as exc:
            results = [exc] * len(batch)
        except BaseException:
            for read in batch:
                read.future.cancel()
            raise
        finally:
            self._call_ended()
        for read, result in zip(batch, results, strict=True):
            if read.future.done():
                continue
            if isinstance(result, BaseException):
                read.future.set_exception(result)
            else:
                read.future.set_result(result)
