"""Command lines of the baselines: every tier is one uvicorn process, as each Ordermesh
service is one process.

uvicorn picks uvloop and httptools when installed, as Ordermesh's services get them;
access logs are off in both.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn


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
