"""The gateway under test: the one at ORDERMESH_E2E_URL, or a local stack started here.

Without ORDERMESH_E2E_URL the suite runs `ordermesh up` (what `make up` runs) on free
ports, with its own state directory and RabbitMQ vhost, and with small limits so the
413/429/503 tests need few requests; it tells the tests those limits. Pointed at a
running stack, the suite takes the limits from the environment (see target.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost

from tests.e2e.target import Target
from tests.local_stack import StackPorts, pid_of, up_environment
from tests.stack_process import running_stack

START_SECONDS = 60.0
# Small limits for the stack started here (a running stack says its own in the env).
LOCAL_LIMITS = {
    "GATEWAY_MAX_IN_FLIGHT": "32",
    "GATEWAY_MAX_QUEUED": "16",
    "GATEWAY_MAX_QUEUE_SECONDS": "30",
    "GATEWAY_RATE_LIMIT_BURST": "40",
    "GATEWAY_RATE_LIMIT_PER_SECOND": "20",
    "GATEWAY_MAX_BODY_BYTES": "65536",
}


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if os.environ.get("ORDERMESH_E2E_URL"):
        yield _warmed_up(Target.from_environment(os.environ))
        return
    with _local_stack(tmp_path_factory.mktemp("e2e-stack")) as started:
        yield _warmed_up(started)


@pytest.fixture
async def client(target: Target) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.url, timeout=15) as client:
        yield client


def _warmed_up(target: Target) -> Target:
    """Wait until the gateway is ready and an authenticated call reaches orders."""
    deadline = time.monotonic() + START_SECONDS
    last = "no answer"
    with httpx.Client(base_url=target.url, timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                ready = client.get("/readyz")
                probe = client.get(f"/v1/orders/{uuid.uuid4()}", headers=target.auth())
                if ready.status_code == 200 and probe.status_code == 404:
                    return target
                last = f"/readyz {ready.status_code}, GET order {probe.status_code}: {probe.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    pytest.fail(f"the gateway at {target.url} did not warm up: {last}")


@contextlib.contextmanager
def _local_stack(state_dir: Path) -> Iterator[Target]:
    ports = StackPorts.free()
    vhost = f"e2e-{uuid.uuid4().hex[:8]}"
    create_vhost(vhost)
    env = up_environment(AMQP_URL=amqp_url(vhost), PYTHONUNBUFFERED="1")
    # The gateway runs with the limits above, never with the caller's GATEWAY_ settings.
    env = {k: v for k, v in env.items() if not k.startswith("GATEWAY_")}
    env |= {**LOCAL_LIMITS, "GATEWAY_DRAIN_SECONDS": "1"}
    try:
        with running_stack(state_dir, ports, env) as output:
            notify_pid = pid_of(output.text(), "notify")
            yield Target(
                url=f"http://127.0.0.1:{ports.gateway}",
                max_in_flight=int(LOCAL_LIMITS["GATEWAY_MAX_IN_FLIGHT"]),
                max_queued=int(LOCAL_LIMITS["GATEWAY_MAX_QUEUED"]),
                rate_burst=int(LOCAL_LIMITS["GATEWAY_RATE_LIMIT_BURST"]),
                max_body_bytes=int(LOCAL_LIMITS["GATEWAY_MAX_BODY_BYTES"]),
                pause_notify=lambda: os.kill(notify_pid, signal.SIGSTOP),
                resume_notify=lambda: os.kill(notify_pid, signal.SIGCONT),
            )
    finally:
        delete_vhost(vhost)
