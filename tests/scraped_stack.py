"""The local stack in the test's own process, scraped by its Prometheus: for the tests
that query real metrics (tests/test_live_metrics.py, tests/test_autoscaling_signals.py)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from ordermesh.paths import PROMETHEUS_CONFIG
from ordermesh.progress import Progress
from ordermesh.prometheus import RABBITMQ_METRICS_PORT
from ordermesh.stack import Stack, StackError, StackOptions
from servicekit.testing.net import port_open

from tests.local_stack import StackPorts


@contextlib.asynccontextmanager
async def scraped_stack(
    state_dir: Path,
    environ: Mapping[str, str],
    *,
    scrape_seconds: float,
    start_seconds: float,
    prometheus_config: Path = PROMETHEUS_CONFIG,
) -> AsyncIterator[StackPorts]:
    """The local stack in this process (the `make up` machinery) on free ports, its
    Prometheus scraping every `scrape_seconds`, RabbitMQ's plugin among the targets;
    a stack that does not start fails the test with what it printed."""
    assert port_open(RABBITMQ_METRICS_PORT), (
        f"RabbitMQ's Prometheus plugin does not answer on 127.0.0.1:{RABBITMQ_METRICS_PORT}: "
        "run scripts/ensure-prereqs.sh (as root), or `rabbitmq-plugins enable rabbitmq_prometheus`"
    )
    ports = StackPorts.free()
    options = StackOptions(
        state_dir=state_dir,
        pg_port=ports.pg,
        orders_grpc_port=ports.grpc,
        orders_http_port=ports.orders_http,
        notify_http_port=ports.notify_http,
        gateway_http_port=ports.gateway,
        prometheus_port=ports.prometheus,
        prometheus_config=prometheus_config,
        scrape_interval_seconds=scrape_seconds,
        start_timeout=start_seconds,
        environ=dict(environ),
    )
    output = io.StringIO()
    stack = Stack(options, progress=Progress(output, interactive=False))
    try:
        try:
            await stack.start()
        except StackError as exc:
            pytest.fail(f"the local stack did not start: {exc}\n\n{output.getvalue()}")
        yield ports
    finally:
        await stack.stop()
