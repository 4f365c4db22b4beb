"""The `notify` command: `notify serve` runs the service, `notify migrate` the migrations."""

from __future__ import annotations

import argparse
import logging

import uvloop
from servicekit import lifecycle
from servicekit.logs import configure_logging
from servicekit.telemetry import tracing

from notify.db import DATABASE
from notify.server import NotifyRuntime
from notify.settings import NotifySettings

log = logging.getLogger("notify")


async def serve(settings: NotifySettings) -> None:
    """Run until SIGTERM/SIGINT, then drain and stop."""
    await lifecycle.serve(NotifyRuntime(settings))


async def run_migrations(settings: NotifySettings) -> None:
    applied = await DATABASE.apply_migrations(settings)
    log.info("migrations done", extra={"applied": applied})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="notify", description=__doc__)
    parser.add_argument("command", choices=["serve", "migrate"], nargs="?", default="serve")
    args = parser.parse_args(argv)
    settings = NotifySettings()
    configure_logging(service="notify", level=settings.log_level)
    command = serve if args.command == "serve" else run_migrations
    with tracing(service="notify"):
        uvloop.run(command(settings))


if __name__ == "__main__":
    main()
