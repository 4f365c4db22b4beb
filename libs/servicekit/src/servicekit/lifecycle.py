"""Process lifecycle: waiting for SIGTERM/SIGINT and serving ASGI apps in-process.

A service's main coroutine is `serve(runtime)`: it waits on `shutdown_signal()`, then
drains: readiness goes false first, in-flight work gets `drain_seconds`, then pools and
servers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn

log = logging.getLogger(__name__)


def shutdown_signal() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT delivered to this process."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_shutdown(signum: int) -> None:
        log.info("shutdown requested", extra={"signal": signal.Signals(signum).name})
        event.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, request_shutdown, signum)
    return event


class Runtime(Protocol):
    """What `serve` runs: a service process that starts and stops."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def serve(runtime: Runtime) -> None:
    """Start `runtime` and run until SIGTERM/SIGINT, then drain and stop it.

    A signal during start-up cancels the start, and `stop` then runs on a partial
    start. A failed start raises its error without stopping: the process ends.
    """
    stop = shutdown_signal()
    starting = asyncio.create_task(runtime.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()  # a failed start ends the process with its error
        await stopping
    else:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    await runtime.stop()


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the service's main loop owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class EmbeddedHttpServer:
    """An ASGI app served by uvicorn inside the caller's event loop."""

    def __init__(self, app: Any, *, host: str, port: int, **config: Any) -> None:
        self._config = uvicorn.Config(
            app, host=host, port=port, lifespan="off", log_config=None, access_log=False, **config
        )
        self._server = _EmbeddedUvicorn(self._config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and start serving; raise if the port cannot be bound."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the start-up error
                raise RuntimeError(f"HTTP server on port {self._config.port} did not start")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if not self._server.started:
            raise RuntimeError("the HTTP server has not started yet")
        sock: socket.socket = self._server.servers[0].sockets[0]
        port: int = sock.getsockname()[1]
        return port

    async def stop(self, *, timeout: float = 5.0) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout)
