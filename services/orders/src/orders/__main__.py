"""The `orders` command: `orders serve` runs the service, `orders migrate` the migrations,
`orders relay` only the outbox relay (to scale it apart from the gRPC service)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop
from servicekit import lifecycle
from servicekit.failpoints import Failpoints
from servicekit.health import Readiness
from servicekit.lifecycle import EmbeddedHttpServer, shutdown_signal
from servicekit.logs import configure_logging
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app
from servicekit.telemetry import tracing

from orders.db import DATABASE
from orders.metrics import OrdersMetrics
from orders.relay import OutboxRelay
from orders.server import OrdersRuntime
from orders.settings import OrdersSettings

log = logging.getLogger("orders")


async def serve(settings: OrdersSettings) -> None:
    """Run until SIGTERM/SIGINT, then drain and stop."""
    await lifecycle.serve(OrdersRuntime(settings))


async def relay(settings: OrdersSettings) -> None:
    """Run only the outbox relay, with /healthz, /readyz and /metrics, until SIGTERM/SIGINT."""
    stop = shutdown_signal()
    registry = new_registry()
    readiness = Readiness()
    ops = EmbeddedHttpServer(
        build_ops_app(readiness=readiness, registry=registry),
        host=settings.http_host,
        port=settings.http_port,
    )
    await ops.start()
    outbox_relay = OutboxRelay(
        settings, metrics=OrdersMetrics(registry), failpoints=Failpoints(settings.failpoints)
    )
    await outbox_relay.start()
    readiness.mark_started()  # like serve, ready without the broker: the relay retries
    await stop.wait()
    readiness.start_draining()
    await outbox_relay.stop(timeout=settings.drain_seconds)
    await ops.stop()


async def run_migrations(settings: OrdersSettings) -> None:
    applied = await DATABASE.apply_migrations(settings)
    log.info("migrations done", extra={"applied": applied})


COMMANDS: dict[str, Callable[[OrdersSettings], Coroutine[Any, Any, None]]] = {
    "serve": serve,
    "migrate": run_migrations,
    "relay": relay,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orders", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS), nargs="?", default="serve")
    args = parser.parse_args(argv)
    settings = OrdersSettings()
    configure_logging(service="orders", level=settings.log_level)
    with tracing(service="orders"):
        uvloop.run(COMMANDS[args.command](settings))


if __name__ == "__main__":
    main()
