"""`ordermesh up`: start the local stack, show its endpoints, stop it on Ctrl-C or SIGTERM.

Exit codes: 0 after a requested stop, 1 when the stack could not start or a service
died while running (the rest is stopped first in both cases).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from ordermesh.children import describe_exit
from ordermesh.progress import Progress, display_path
from ordermesh.stack import Stack, StackError
from ordermesh.stackspec import StackOptions

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_up(options: StackOptions, progress: Progress) -> int:
    """Run the stack until a signal asks it to stop or a service dies; the exit code."""
    stop_requested = asyncio.Event()
    stack = Stack(options, progress=progress)
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, _request_stop, stop_requested, stack, progress)
    started = time.monotonic()
    progress.line(f"Starting the Ordermesh stack (state in {display_path(options.state_dir)})")
    try:
        if await _unless_stopped(stack.start(), stop_requested) is None:
            progress.line("\nStopping...")
            return 0
        progress.line(f"\nOrdermesh is ready ({time.monotonic() - started:.1f}s).")
        _print_endpoints(stack, progress)
        progress.line("\nPress Ctrl-C to stop.")
        ended = await _unless_stopped(stack.wait_for_exit(), stop_requested)
        if ended is None:
            progress.line("\nStopping...")
            return 0
        child = ended.result()
        progress.line(
            f"\n{child.name} ended on its own ({describe_exit(child.returncode or 0)}). "
            f"Last lines of {display_path(child.log_file)}:\n{child.log_tail()}\n\n"
            "Stopping the rest..."
        )
        return 1
    except StackError as exc:
        progress.line(f"\nError: {exc}\n")
        return 1
    finally:
        await stack.stop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _unless_stopped(
    work: Coroutine[Any, Any, T], stop: asyncio.Event
) -> asyncio.Task[T] | None:
    """Run `work` until it ends (its task) or `stop` is set first (None; `work` is cancelled)."""
    task = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        task.result()  # raises the work's error
        return task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


def _request_stop(stop_requested: asyncio.Event, stack: Stack, progress: Progress) -> None:
    if stop_requested.is_set():
        progress.line("\nSecond signal: killing the services now.")
        stack.kill()
    stop_requested.set()


def _print_endpoints(stack: Stack, progress: Progress) -> None:
    endpoints = stack.endpoints()
    width = max(len(e.label) for e in endpoints)
    for endpoint in endpoints:
        progress.line(f"  {endpoint.label:<{width}}  {endpoint.value}")
