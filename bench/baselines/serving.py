"""Command lines of the baselines: every tier is one uvicorn process, as each Ordermesh
service is one process.

uvicorn picks uvloop and httptools when installed, as Ordermesh's services get them;
access logs are off in both.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import uvicorn

from bench.baselines.contract import JwtCheck


def parser(description: str | None, *, port: int) -> argparse.ArgumentParser:
    """An argument parser with --host and --port (default `port`)."""
    arguments = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument("--host", default="127.0.0.1", help="address to bind")
    arguments.add_argument("--port", type=int, default=port, help="port to bind (%(default)s)")
    return arguments


def serve(app: Any, *, host: str, port: int) -> None:
    """Serve `app` until SIGINT/SIGTERM."""
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")


def run_front(build: Callable[..., Any], *, description: str | None, port: int) -> None:
    """A front tier's command line: its back tier, notify, and the GATEWAY_JWT_* variables."""
    arguments = parser(description, port=port)
    arguments.add_argument("--back-url", required=True, help="this baseline's back tier")
    arguments.add_argument("--notify-url", required=True, help="notify's HTTP API")
    args = arguments.parse_args()
    app = build(
        back_url=args.back_url.rstrip("/"),
        notify_url=args.notify_url.rstrip("/"),
        jwt_check=JwtCheck.from_environment(os.environ),
    )
    serve(app, host=args.host, port=args.port)


def run_back(build: Callable[[str], Any], *, description: str | None, port: int) -> None:
    """A back tier's command line: the orders database."""
    arguments = parser(description, port=port)
    arguments.add_argument("--database-url", required=True, help="the orders database")
    args = arguments.parse_args()
    serve(build(args.database_url), host=args.host, port=args.port)
