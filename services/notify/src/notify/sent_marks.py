"""Marking notifications sent, many in one statement.

After a send, the row's status goes to 'sent' before the message is acked (the inbox:
a crash in between sends again, never loses). One UPDATE per event was a tenth of a
create's CPU on the machine's back core, notify's round trip and PostgreSQL's commit
(with no mark at all, creates ran 11% faster: bench/README.md, 2026-12-04). So:

* the first mark waits `linger` (10 ms) for others, then they go in one UPDATE;
* while one is being written, later marks wait for it to finish, then go together in
  the next (up to `max_batch` each).

Without the linger, marks at a few hundred events a second hardly ever met a statement
in flight, and went alone (no gain measured). The linger delays only the ack and the
'sent' status: an event's `recorded_at`, its latency, is set before the send.

Every caller still returns only after its own row is committed, or gets the error of
the statement that carried it (the consumer then retries the message as before).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

MAX_BATCH: Final = 500
LINGER_SECONDS: Final = 0.01

WriteMarks = Callable[[Sequence[uuid.UUID]], Awaitable[None]]


class SentMarks:
    def __init__(
        self, write: WriteMarks, *, max_batch: int = MAX_BATCH, linger: float = LINGER_SECONDS
    ) -> None:
        if max_batch < 1 or linger < 0:
            raise ValueError("max_batch must be at least 1, linger not negative")
        self._write = write
        self._max_batch = max_batch
        self._linger = linger
        self._waiting: list[tuple[uuid.UUID, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None  # the one statement in flight

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def mark(self, event_id: uuid.UUID) -> None:
        """Return once the row of `event_id` is marked sent (committed)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event_id, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        # A caller that leaves (shutdown) does not stop the statement: the row was sent.
        await done

    async def _write_all(self) -> None:
        try:
            if self._linger:
                await asyncio.sleep(self._linger)
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    await self._write([event_id for event_id, _ in batch])
                except Exception as exc:
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        finally:
            self._writer = None


def _settle(batch: list[tuple[uuid.UUID, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, done in batch:
        if done.done():  # its caller left
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
