"""`ordermesh up` as a child process of a test: its output collected, its stop bounded."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local_stack import READY_LINE, StackPorts, up_command

START_SECONDS = 60.0


@contextlib.contextmanager
def running_stack(state_dir: Path, ports: StackPorts, env: dict[str, str]) -> Iterator[Output]:
    """`ordermesh up` with `env` until the block ends; yields its output once it is ready."""
    process = subprocess.Popen(
        up_command(state_dir, ports),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(process)
    try:
        output.wait_for(READY_LINE, seconds=START_SECONDS)
        yield output
    finally:
        stop_stack(process, output)


class Output:
    """Collects a child's output in a thread, so waiting on it can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        self._thread.join(timeout=5)
        assert self._process.stdout is not None
        self._process.stdout.close()

    def wait_for(self, needle: str, *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while needle not in self.text():
            if self._process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ordermesh up` did not get ready:\n{self.text()}")
            time.sleep(0.1)


def stop_stack(process: subprocess.Popen[str], output: Output) -> None:
    """Ctrl-C, as a developer would; SIGKILL if the stack has not ended within 30 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output.close()
