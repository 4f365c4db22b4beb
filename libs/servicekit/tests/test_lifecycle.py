"""Signals and the in-loop HTTP server."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import urllib.request

from servicekit.health import Readiness
from servicekit.lifecycle import GC_YOUNG_THRESHOLD, EmbeddedHttpServer, serve, shutdown_signal
from servicekit.metrics import new_registry
from servicekit.ops_app import build_ops_app


async def test_sigterm_sets_the_shutdown_event() -> None:
    loop = asyncio.get_running_loop()
    event = shutdown_signal()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(event.wait(), timeout=2)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    assert event.is_set()


async def test_embedded_server_serves_and_stops_without_touching_signals() -> None:
    before = signal.getsignal(signal.SIGTERM)
    server = EmbeddedHttpServer(
        build_ops_app(readiness=Readiness(), registry=new_registry()), host="127.0.0.1", port=0
    )
    await server.start()
    url = f"http://127.0.0.1:{server.port}/healthz"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read())
    assert body == b'{"status": "ok"}'
    assert signal.getsignal(signal.SIGTERM) is before
    await server.stop()
    try:
        await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=1).read())
    except OSError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


async def test_serve_settles_the_heap_once_started_then_stops_on_sigterm() -> None:
    class Recording:
        def __init__(self) -> None:
            self.events: list[tuple[str, int, int]] = []

        async def start(self) -> None:
            self.events.append(("start", gc.get_threshold()[0], gc.get_freeze_count()))

        async def stop(self) -> None:
            self.events.append(("stop", gc.get_threshold()[0], gc.get_freeze_count()))

    runtime = Recording()
    threshold = gc.get_threshold()
    try:
        served = asyncio.create_task(serve(runtime))
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(served, timeout=5)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    (_, before, _), (_, after, frozen) = runtime.events
    assert before == threshold[0]  # start-up runs with the defaults
    assert (after, frozen > 0) == (GC_YOUNG_THRESHOLD, True)
