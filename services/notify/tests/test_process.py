"""A real `notify serve` process: SIGTERM drains without redeliveries, SIGKILL loses nothing.

The burst is in the queue before the process starts, so it is mid-burst when the
signal arrives. Afterwards a second notify (in-process) takes what is left, and the
inbox tells what happened: a duplicate means a message was delivered again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from aio_pika.abc import AbstractChannel
from notify import topology
from servicekit.testing.polling import poll_until

from .conftest import RuntimeFactory, make_settings
from .support import order_event, publish_events


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NotifyProcess:
    """`python -m notify serve` with its log in a file (a pipe nobody reads would block it)."""

    def __init__(self, db_url: str, amqp_url: str, log: Path, **env: str) -> None:
        self.port = _free_port()
        self.log = log
        self._env = {
            **os.environ,
            "NOTIFY_ENVIRONMENT": "test",
            "NOTIFY_DATABASE_URL": db_url,
            "NOTIFY_AMQP_URL": amqp_url,
            "NOTIFY_HTTP_HOST": "127.0.0.1",
            "NOTIFY_HTTP_PORT": str(self.port),
            "NOTIFY_DRAIN_SECONDS": "10",
            # The same queue arguments as make_settings, which the in-process notify uses.
            "NOTIFY_RETRY_DELAY_SECONDS": str(make_settings("", "").retry_delay_seconds),
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "notify", "serve", env=self._env, stderr=log
            )

    async def wait_ready(self, seconds: float = 20) -> None:
        async def ready() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                pytest.fail(f"notify exited with {self.process.returncode}:\n{self.tail()}")
            try:
                async with httpx.AsyncClient() as http:
                    reply = await http.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
            except httpx.TransportError:
                return False
            return reply.status_code == 200

        await poll_until(ready, seconds=seconds, what="notify ready")

    async def wait(self, seconds: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout=seconds)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def notify_process(
    db_url: str, amqp_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., NotifyProcess]]:
    made: list[NotifyProcess] = []

    def make(**env: str) -> NotifyProcess:
        process = NotifyProcess(db_url, amqp_url, tmp_path / f"notify-{len(made)}.log", **env)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()
        if process.process is not None:
            await process.process.wait()


async def _burst(broker: AbstractChannel, amqp_url: str, count: int) -> None:
    """Declare notify's queues and fill the main one with `count` events."""
    await topology.declare(broker, make_settings("postgresql://unused", amqp_url))
    await publish_events(broker, [order_event() for _ in range(count)])


async def _tally(db: asyncpg.Connection) -> tuple[int, int]:
    row = await db.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(duplicates), 0) AS dups FROM notifications"
    )
    assert row is not None
    return row["n"], row["dups"]


async def _all_recorded(db: asyncpg.Connection, count: int, seconds: float = 30) -> None:
    async def done() -> bool:
        sent: int = await db.fetchval("SELECT count(*) FROM notifications WHERE status = 'sent'")
        return sent >= count

    await poll_until(done, seconds=seconds, what=f"{count} notifications sent")


@pytest.mark.timeout(60)
async def test_sigterm_mid_burst_settles_what_it_holds_and_exits_zero(
    notify_process: Callable[..., NotifyProcess],
    start_runtime: RuntimeFactory,
    broker: AbstractChannel,
    amqp_url: str,
    db: asyncpg.Connection,
) -> None:
    burst = 1500
    await _burst(broker, amqp_url, burst)
    first = notify_process()
    await first.start()

    async def under_way() -> bool:
        return (await _tally(db))[0] >= 300

    await poll_until(under_way, what="the burst under way")
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert await first.wait(15) == 0, first.tail()
    assert '"notify stopped"' in first.log.read_text()
    recorded_by_first, duplicates = await _tally(db)
    assert recorded_by_first < burst, "the burst was over before SIGTERM; make it larger"
    assert duplicates == 0

    # Whatever the first process held was settled: nothing comes back redelivered.
    second = await start_runtime()
    await _all_recorded(db, burst)
    assert await _tally(db) == (burst, 0)
    redelivered = second.registry.get_sample_value("ordermesh_notify_redelivered_total")
    assert redelivered == 0


@pytest.mark.timeout(60)
async def test_a_crash_after_recording_loses_nothing_and_records_nothing_twice(
    notify_process: Callable[..., NotifyProcess],
    start_runtime: RuntimeFactory,
    broker: AbstractChannel,
    amqp_url: str,
    db: asyncpg.Connection,
) -> None:
    burst = 500
    await _burst(broker, amqp_url, burst)
    crashing = notify_process(NOTIFY_FAILPOINTS="notify.after_record")
    await crashing.start()
    assert await crashing.wait(20) == -signal.SIGKILL, crashing.tail()
    assert "failpoint hit" in crashing.log.read_text()
    recorded_before, _ = await _tally(db)
    assert recorded_before >= 1  # the notification committed, the ack never sent

    started = time.monotonic()
    second = await start_runtime()
    await _all_recorded(db, burst)
    rows, duplicates = await _tally(db)
    assert rows == burst  # each event once
    redelivered = second.registry.get_sample_value("ordermesh_notify_redelivered_total")
    assert redelivered is not None
    assert redelivered >= 1
    assert duplicates >= 1  # at least the message the failpoint killed us after
    assert time.monotonic() - started < 30
