"""The outbox relay: publishes committed outbox rows to RabbitMQ, at least once.

One round: make sure the broker channel is open, claim a batch of rows (FOR UPDATE
SKIP LOCKED), publish them all at once, wait for every confirm, mark the confirmed
rows published and commit. A full batch starts the next round at once; otherwise the
relay sleeps until a NOTIFY from the outbox trigger or the next poll, then lingers
`relay_linger_seconds` (10 ms) for more rows to share the round. Any failure
leaves the rows unpublished and backs off with jitter; the relay never gives up.

A crash between the confirms and the commit publishes those rows again after the
restart: consumers deduplicate on the message id (the event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from servicekit.backoff import Backoff
from servicekit.failpoints import Failpoints
from servicekit.postgres import CONNECTIVITY_ERRORS
from servicekit.telemetry import background

from orders import outbox
from orders.broker import BrokerUnavailable, EventPublisher, PublishReport
from orders.metrics import OrdersMetrics
from orders.settings import RELAY_AFTER_CLAIM, RELAY_AFTER_CONFIRM, OrdersSettings

log = logging.getLogger(__name__)

APPLICATION_NAME: Final = "ordermesh-orders-relay"
BROKER_TIMEOUT_SECONDS: Final = 10.0  # connect, declare, and wait for one confirm
BACKLOG_REFRESH_SECONDS: Final = 2.0
LISTEN_CHECK_SECONDS: Final = 15.0  # how often an idle LISTEN connection is probed
_UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (*CONNECTIVITY_ERRORS, TimeoutError)


@dataclass(frozen=True, slots=True)
class _Round:
    claimed: int
    report: PublishReport


class OutboxRelay:
    """Publishes the outbox until stopped; owns its own database and broker connections."""

    def __init__(
        self, settings: OrdersSettings, *, metrics: OrdersMetrics, failpoints: Failpoints
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._failpoints = failpoints
        self._publisher = EventPublisher(
            settings.amqp_url.get_secret_value(), timeout=BROKER_TIMEOUT_SECONDS
        )
        self._pool: asyncpg.Pool | None = None
        self._wake = asyncio.Event()  # a NOTIFY arrived (or stop was asked)
        self._stopping = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._helpers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the loop in the background; connects lazily, so a dead DB or broker is fine."""
        s = self._settings
        # Its own connections, not the service pool's: a claim stays open while the
        # broker confirms, and must neither take RPC capacity nor look like a stuck call.
        # min_size=0: creating the pool connects to nothing, so it works with no database.
        self._pool = await asyncpg.create_pool(
            s.database_url.get_secret_value(),
            min_size=0,
            max_size=2,
            timeout=s.db_connect_timeout_seconds,
            server_settings={"application_name": APPLICATION_NAME},
        )
        # Untraced: claims and polls are housekeeping. Each publish continues the trace
        # of the change that wrote its row instead (broker.py).
        with background():
            self._main = asyncio.create_task(self._run(self._pool))
            self._helpers = [
                asyncio.create_task(self._listen()),
                asyncio.create_task(self._refresh_backlog(self._pool)),
            ]
        log.info("outbox relay started", extra={"batch_size": s.relay_batch_size})

    async def stop(self, *, timeout: float) -> None:
        """Stop claiming, give the batch in flight `timeout` seconds, close every connection."""
        self._stopping.set()
        self._wake.set()
        if self._main is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                # Past the timeout the batch is cancelled: its claim rolls back and the
                # rows are published later, perhaps a second time.
                await asyncio.wait_for(self._main, timeout)
        for task in self._helpers:
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)
        await self._publisher.close()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=5)
            except TimeoutError:
                self._pool.terminate()
        log.info("outbox relay stopped")

    async def _run(self, pool: asyncpg.Pool) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            self._wake.clear()  # a NOTIFY during the round makes the next wait return at once
            done = await self._round_or_none(pool)
            if done is None or done.report.failures:
                await _wait(self._stopping, backoff.next())
                continue
            backoff.reset()
            if done.claimed < self._settings.relay_batch_size:
                await _wait(self._wake, self._settings.relay_poll_seconds)
                # Under load each commit's NOTIFY would start a round of its own
                # (decision 41): a moment's wait lets the rows of many share one. A poll
                # that found nothing new (no wake) has nothing to wait for.
                if self._wake.is_set() and self._settings.relay_linger_seconds:
                    await _wait(self._stopping, self._settings.relay_linger_seconds)

    async def _round_or_none(self, pool: asyncpg.Pool) -> _Round | None:
        """One round; None when the database or the broker could not be reached."""
        try:
            return await self._round(pool)
        except BrokerUnavailable as exc:
            self._metrics.outbox_publish_failures.labels(reason="broker_unavailable").inc()
            log.warning("broker not reachable, outbox relay retrying", extra={"error": str(exc)})
        except _UNAVAILABLE as exc:
            log.warning(
                "database not reachable, outbox relay retrying",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        except Exception:
            self._metrics.outbox_publish_failures.labels(reason="error").inc()
            log.exception("outbox relay round failed, retrying")
        return None

    async def _round(self, pool: asyncpg.Pool) -> _Round:
        # The broker first: with it down there is no point in locking rows.
        await self._publisher.open()
        timeout = self._settings.db_acquire_timeout_seconds
        async with pool.acquire(timeout=timeout) as conn, conn.transaction():
            rows = await outbox.claim(conn, limit=self._settings.relay_batch_size)
            if not rows:
                return _Round(0, PublishReport())
            self._failpoints.hit(RELAY_AFTER_CLAIM)
            report = await self._publisher.publish(rows)
            self._failpoints.hit(RELAY_AFTER_CONFIRM)
            await outbox.mark_published(conn, report.confirmed)
        self._account(report)
        return _Round(len(rows), report)

    def _account(self, report: PublishReport) -> None:
        self._metrics.outbox_published.inc(len(report.confirmed))
        for reason, count in report.failures.items():
            self._metrics.outbox_publish_failures.labels(reason=reason).inc(count)
        if report.failures:
            log.warning(
                "outbox events not published, they stay pending",
                extra={
                    "confirmed": len(report.confirmed),
                    "failures": dict(report.failures),
                    # Unroutable: no queue is bound for these routing keys.
                    "returned": report.returned[:5],
                },
            )

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; each notification wakes the loop."""
        backoff = Backoff()
        while True:
            try:
                await self._listen_once(backoff)
            except _UNAVAILABLE as exc:
                log.info("outbox LISTEN connection lost", extra={"error": type(exc).__name__})
            await asyncio.sleep(backoff.next())

    async def _listen_once(self, backoff: Backoff) -> None:
        s = self._settings
        conn: asyncpg.Connection = await asyncpg.connect(
            s.database_url.get_secret_value(),
            timeout=s.db_connect_timeout_seconds,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(outbox.NOTIFY_CHANNEL, self._on_notify)
            backoff.reset()
            self._wake.set()  # catch up on whatever was written while nobody listened
            while not lost.is_set():
                await _wait(lost, LISTEN_CHECK_SECONDS)
                if not lost.is_set():
                    # A half-open connection stays silent; a query finds out.
                    await conn.execute("SELECT 1", timeout=s.db_connect_timeout_seconds)
        finally:
            conn.terminate()

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _refresh_backlog(self, pool: asyncpg.Pool) -> None:
        """Keep the backlog gauges current; on failure they keep their last values."""
        timeout = self._settings.db_acquire_timeout_seconds
        while True:
            try:
                async with pool.acquire(timeout=timeout) as conn:
                    backlog = await outbox.backlog(conn)
            except _UNAVAILABLE:
                pass  # the relay loop already says the database is gone
            except Exception as exc:
                log.warning(
                    "outbox backlog query failed", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
            else:
                self._metrics.outbox_backlog.set(backlog.rows)
                self._metrics.outbox_oldest_age.set(backlog.oldest_age_seconds)
            await asyncio.sleep(BACKLOG_REFRESH_SECONDS)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Return when `event` is set or after `seconds`, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
