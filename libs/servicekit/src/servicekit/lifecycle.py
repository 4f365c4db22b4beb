"""Process lifecycle: waiting for SIGTERM/SIGINT and serving ASGI apps in-process.

A service's main coroutine is `serve(runtime)`: it waits on `shutdown_signal()`, then
drains: readiness goes false first, in-flight work gets `drain_seconds`, then pools and
servers close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn

log = logging.getLogger(__name__)

# Allocations between young collections (CPython's default is 700). See settle_heap.
GC_YOUNG_THRESHOLD = 10_000


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
        settle_heap()
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


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a server that has finished starting.

    With CPython's defaults the gateway spent about a quarter of its CPU in the
    collector under load (py-spy, GET /v1/orders/{id}): a young collection every 700
    allocations, and a request's objects, alive while it is in flight, promoted and
    later rescanned in full collections of the whole heap (~100 ms each, several a
    second). Two changes, measured together at about 1.4x the gateway's requests/s
    (bench/README.md): what start-up built (modules, apps, clients) is frozen, so no
    collection scans it again; and young collections run every 10,000 allocations, so
    they see requests that have finished and are mostly gone by refcount. The heap
    holds little cyclic garbage (a full collection under load found ~50 objects), so
    the older generations keep their default thresholds, counted in young ones.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
