"""The `gateway` command: `gateway serve` runs the public API until SIGTERM."""

from __future__ import annotations

import argparse

import uvloop
from servicekit import lifecycle
from servicekit.logs import configure_logging
from servicekit.telemetry import tracing

from gateway.server import GatewayRuntime
from gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    parser.add_argument("command", choices=["serve"], nargs="?", default="serve")
    parser.parse_args(argv)
    settings = GatewaySettings()
    configure_logging(service="gateway", level=settings.log_level)
    with tracing(service="gateway"):
        uvloop.run(serve(settings))


async def serve(settings: GatewaySettings) -> None:
    # Built inside the loop: the gRPC channel and the HTTP client bind to it.
    await lifecycle.serve(GatewayRuntime(settings))


if __name__ == "__main__":
    main()
