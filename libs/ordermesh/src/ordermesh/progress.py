"""Live progress lines for the dev tool: one line per step, with its elapsed time.

On a terminal a spinner redraws the current step in place; anywhere else (a pipe, a
CI log) each step prints one plain line when it ends, so logs stay readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

_FANCY = {"ok": "✓", "fail": "✗", "warn": "!", "spin": "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"}
_PLAIN = {"ok": "ok", "fail": "FAIL", "warn": "!!", "spin": "|/-\\"}
_SPIN_SECONDS = 0.1


@dataclass
class Step:
    """What a running step reports: a detail shown after its label, or a warning."""

    label: str
    detail: str = ""
    warning: str = ""


class Progress:
    """Writes step lines to `stream` (stdout by default); safe to share in one event loop."""

    def __init__(self, stream: TextIO | None = None, *, interactive: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._interactive = self._stream.isatty() if interactive is None else interactive
        self._symbols = _FANCY if _can_encode(self._stream, "".join(_FANCY.values())) else _PLAIN

    @contextlib.asynccontextmanager
    async def step(self, label: str) -> AsyncIterator[Step]:
        """Show `label` while the block runs, then one line: ok, warning or failure."""
        step = Step(label)
        started = time.monotonic()
        spinner = asyncio.create_task(self._spin(step, started)) if self._interactive else None
        try:
            yield step
        except asyncio.CancelledError:
            step.detail = f"{step.detail}, interrupted" if step.detail else "interrupted"
            self._finish(spinner, self._symbols["fail"], step, started)
            raise
        except BaseException:
            self._finish(spinner, self._symbols["fail"], step, started)
            raise
        symbol = self._symbols["warn"] if step.warning else self._symbols["ok"]
        self._finish(spinner, symbol, step, started)
        if step.warning:
            self.line(_indent(step.warning))

    def line(self, text: str = "") -> None:
        """Print one plain line at once (never buffered, so pipes see it)."""
        self._stream.write(text + "\n")
        self._stream.flush()

    def _finish(
        self, spinner: asyncio.Task[None] | None, symbol: str, step: Step, t0: float
    ) -> None:
        if spinner is not None:
            spinner.cancel()
            self._stream.write("\r\033[K")
        self.line(f"{symbol} {_describe(step)} {time.monotonic() - t0:.1f}s")

    async def _spin(self, step: Step, started: float) -> None:
        frames = self._symbols["spin"]
        tick = 0
        while True:
            frame = frames[tick % len(frames)]
            elapsed = f" {time.monotonic() - started:.1f}s"
            # A wrapped line cannot be redrawn in place: cut it to the terminal's width.
            room = max(shutil.get_terminal_size().columns - 1 - len(elapsed), 20)
            text = f"{frame} {_describe(step)}"[:room] + elapsed
            self._stream.write("\r\033[K" + text)
            self._stream.flush()
            tick += 1
            await asyncio.sleep(_SPIN_SECONDS)


def _describe(step: Step) -> str:
    return f"{step.label} ({step.detail})" if step.detail else step.label


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)
