"""RabbitMQ helpers for the relay tests: a vhost per test, a queue that collects what
the relay publishes, and a TCP proxy that plays a broker going away and coming back.

The broker is the machine's real RabbitMQ (127.0.0.1:5672, guest/guest, or
ORDERMESH_TEST_AMQP_URL); each test gets its own vhost, so no test sees another's
exchanges, queues or messages, and the shared broker is never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from urllib.parse import urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue
from contracts.topology import ALL_ORDER_EVENTS, ORDER_EVENTS_EXCHANGE

BROKER_URL = os.environ.get("ORDERMESH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
_BROKER = urlsplit(BROKER_URL)
BROKER_HOST = _BROKER.hostname or "127.0.0.1"
BROKER_PORT = _BROKER.port or 5672


async def rabbitmqctl(*args: str) -> None:
    """Run one rabbitmqctl command; fail the test with its output when it fails."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("the relay tests need rabbitmqctl on PATH to create vhosts", pytrace=False)
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        pytest.fail(
            f"rabbitmqctl {' '.join(args)} failed ({process.returncode}): is RabbitMQ "
            f"running at {BROKER_HOST}:{BROKER_PORT}?\n{output.decode(errors='replace')}",
            pytrace=False,
        )


async def create_vhost() -> str:
    """A new vhost guest may use; returns its name."""
    name = f"orders-relay-test-{uuid.uuid4().hex[:12]}"
    await rabbitmqctl("add_vhost", name)
    await rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def vhost_url(vhost: str, *, port: int = BROKER_PORT) -> str:
    """The AMQP URL of `vhost`, on the real broker or on a proxy's port."""
    return f"amqp://guest:guest@{BROKER_HOST}:{port}/{vhost}"


class EventSink:
    """An exclusive queue bound to the order events exchange with `order.*`."""

    def __init__(self) -> None:
        self.messages: list[AbstractIncomingMessage] = []
        self._connection: AbstractConnection | None = None
        self._queue: AbstractQueue | None = None

    async def open(self, url: str) -> EventSink:
        try:
            self._connection = await aio_pika.connect(url, timeout=5)
        except (OSError, aio_pika.exceptions.AMQPError) as exc:
            pytest.fail(f"the relay tests need RabbitMQ at {url} ({exc!r})", pytrace=False)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            ORDER_EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        self._queue = await channel.declare_queue(exclusive=True)
        await self._queue.bind(exchange, ALL_ORDER_EVENTS)
        await self._queue.consume(self._collect, no_ack=True)
        return self

    async def _collect(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(message)

    @property
    def message_ids(self) -> list[str]:
        return [str(m.message_id) for m in self.messages]

    async def wait_for(self, count: int, *, seconds: float = 10) -> None:
        """Wait until at least `count` messages arrived; fail the test otherwise."""
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"expected {count} messages within {seconds}s, got {len(self.messages)}"
                )
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


class TcpProxy:
    """A TCP forwarder to the broker that can be switched off (refusing connections and
    cutting the open ones) and on again, on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port, reuse_address=True
        )

    async def close(self) -> None:
        """Stop listening and cut every open connection, as a dying broker would."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _forward(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(BROKER_HOST, BROKER_PORT)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update({client_w, broker_w})
        await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w))
        for writer in (client_w, broker_w):
            self._writers.discard(writer)
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
