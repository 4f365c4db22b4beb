"""LocalRabbit, a private RabbitMQ node, and the vhost helpers.

The private node is stopped, restarted and SIGKILLed here; the machine's shared node
(rabbit@localhost on 5672) is only used for a vhost of this test's own, created and
deleted again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import psutil
import pytest
from aiormq.exceptions import AMQPError
from ordermesh.localbroker import LocalRabbit, amqp_url, create_vhost, delete_vhost
from servicekit.testing.net import free_ports, port_open

QUEUE = "durable-orders"


@pytest.fixture
async def rabbit(tmp_path: Path) -> AsyncIterator[LocalRabbit]:
    """A private node, not yet started; killed at the end whatever the test left."""
    amqp_port, dist_port = free_ports(2)
    node = LocalRabbit(tmp_path / "rabbit", amqp_port=amqp_port, dist_port=dist_port)
    yield node
    await asyncio.to_thread(node.kill)


async def publish(url: str, body: bytes) -> None:
    """A persistent message to the durable queue, confirmed by the broker."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()  # publisher confirms are on by default
        await channel.declare_queue(QUEUE, durable=True)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=QUEUE)


async def take(url: str) -> bytes | None:
    """The next message of the durable queue (acknowledged), or None when it is empty."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, durable=True)
        message = await queue.get(fail=False)
        if message is None:
            return None
        await message.ack()
        return message.body


async def test_private_node_keeps_persistent_messages_across_stop_and_kill(
    rabbit: LocalRabbit,
) -> None:
    await asyncio.to_thread(rabbit.start)
    assert rabbit.running()
    await publish(rabbit.url(), b"before stop")
    await asyncio.to_thread(create_vhost, "isolated", rabbit)

    await asyncio.to_thread(rabbit.stop)
    assert not rabbit.running()
    assert not port_open(rabbit.amqp_port)

    await asyncio.to_thread(rabbit.start)
    assert await take(rabbit.url()) == b"before stop"
    assert await take(rabbit.url()) is None
    connection = await aio_pika.connect(rabbit.url("isolated"))  # vhosts are durable too
    await connection.close()
    await publish(rabbit.url(), b"before kill")

    beam = rabbit.beam_pid()
    assert beam is not None
    await asyncio.to_thread(rabbit.kill)
    assert not rabbit.running()
    assert not port_open(rabbit.amqp_port)
    assert not psutil.pid_exists(beam)

    await asyncio.to_thread(rabbit.start)
    assert rabbit.beam_pid() not in (None, beam)
    # Confirmed persistent messages survive a crash as well as a clean stop.
    assert await take(rabbit.url()) == b"before kill"

    await asyncio.to_thread(rabbit.stop)
    assert not rabbit.running()
    assert not port_open(rabbit.amqp_port)


async def test_vhost_on_the_shared_node_works_until_deleted() -> None:
    vhost = f"ordermesh-test-{uuid.uuid4().hex[:12]}"
    url = amqp_url(vhost)
    await asyncio.to_thread(create_vhost, vhost)
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue("probe", auto_delete=True)
    finally:
        await asyncio.to_thread(delete_vhost, vhost)
    # The broker answers Connection.Open with Connection.Close (530, vhost not found).
    with pytest.raises(AMQPError):
        await aio_pika.connect(url)
