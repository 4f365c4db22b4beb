"""SentMarks on its own: what is written alone, what together, who gets which outcome.

The write is a recording coroutine the test releases; the real UPDATE is exercised by
the consumer tests (test_consumer.py), which wait for every row to be 'sent'.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from notify.errors import DatabaseUnavailable
from notify.sent_marks import SentMarks


@dataclass
class Writes:
    """Records each statement's ids; each statement ends when `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    statements: list[list[uuid.UUID]] = field(default_factory=list)
    fail_next: Exception | None = None

    async def write(self, event_ids: Sequence[uuid.UUID]) -> None:
        self.statements.append(list(event_ids))
        await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error


async def _settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_mark_is_written_at_once_and_alone() -> None:
    writes = Writes()
    writes.release.set()
    event_id = uuid.uuid4()
    await SentMarks(writes.write, linger=0).mark(event_id)
    assert writes.statements == [[event_id]]


async def test_marks_within_the_linger_go_together_in_the_first() -> None:
    writes = Writes()
    writes.release.set()
    marks = SentMarks(writes.write, linger=0.05)
    ids = [uuid.uuid4() for _ in range(3)]
    first = asyncio.ensure_future(marks.mark(ids[0]))
    await asyncio.sleep(0.01)
    assert writes.statements == []  # still lingering
    await asyncio.gather(first, *(marks.mark(event_id) for event_id in ids[1:]))
    assert writes.statements == [ids]


async def test_marks_during_a_write_go_together_in_the_next() -> None:
    writes = Writes()
    marks = SentMarks(writes.write, linger=0)
    first, *later = (uuid.uuid4() for _ in range(4))
    calls = [asyncio.ensure_future(marks.mark(first))]
    await _settled()
    calls += [asyncio.ensure_future(marks.mark(event_id)) for event_id in later]
    await _settled()
    assert writes.statements == [[first]]  # the later ones wait for it
    assert marks.waiting == 3
    writes.release.set()
    await asyncio.gather(*calls)
    assert writes.statements == [[first], later]
    assert marks.waiting == 0


async def test_a_failed_statement_fails_its_marks_only() -> None:
    writes = Writes()
    marks = SentMarks(writes.write, linger=0)
    ids = [uuid.uuid4() for _ in range(3)]
    first = asyncio.ensure_future(marks.mark(ids[0]))
    await _settled()
    rest = [asyncio.ensure_future(marks.mark(event_id)) for event_id in ids[1:]]
    writes.fail_next = DatabaseUnavailable("gone")
    writes.release.set()
    with pytest.raises(DatabaseUnavailable):
        await first
    await asyncio.gather(*rest)  # the next statement carried them, and succeeded
    assert writes.statements == [ids[:1], ids[1:]]


async def test_batches_are_at_most_max_batch() -> None:
    writes = Writes()
    marks = SentMarks(writes.write, max_batch=2, linger=0)
    first = asyncio.ensure_future(marks.mark(uuid.uuid4()))
    await _settled()
    rest = [asyncio.ensure_future(marks.mark(uuid.uuid4())) for _ in range(5)]
    writes.release.set()
    await asyncio.gather(first, *rest)
    assert [len(ids) for ids in writes.statements] == [1, 2, 2, 1]


async def test_a_caller_that_leaves_does_not_stop_the_others() -> None:
    writes = Writes()
    marks = SentMarks(writes.write, linger=0)
    first = asyncio.ensure_future(marks.mark(uuid.uuid4()))
    await _settled()
    leaving, staying = (asyncio.ensure_future(marks.mark(uuid.uuid4())) for _ in range(2))
    await _settled()
    leaving.cancel()
    writes.release.set()
    await asyncio.gather(first, staying)
    assert leaving.cancelled()
    assert len(writes.statements[1]) == 2  # its row was sent: it is marked all the same


def test_max_batch_and_linger_are_checked() -> None:
    async def write(event_ids: Sequence[uuid.UUID]) -> None:
        return None

    with pytest.raises(ValueError, match="max_batch"):
        SentMarks(write, max_batch=0)
    with pytest.raises(ValueError, match="linger"):
        SentMarks(write, linger=-1)
