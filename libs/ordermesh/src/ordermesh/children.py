"""Service processes of the local stack: started with output to a log file, stopped politely.

Children run in their own session, so a Ctrl-C at the terminal reaches only
`ordermesh up`, which then stops each child with SIGTERM (the drain path) and a
SIGKILL only for one that outlives its drain time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ordermesh.paths import REPO_ROOT


@dataclass(frozen=True)
class Stopped:
    """How a child ended when asked to stop."""

    returncode: int
    killed: bool


def describe_exit(code: int) -> str:
    """`exit code 3`, or `ended by SIGKILL` for a process ended by a signal."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"ended by {signal.Signals(-code).name}"
    return f"exit code {code}"


class ChildProcess:
    """One service process; its stdout and stderr go to `log_file`."""

    def __init__(
        self, name: str, command: Sequence[str], *, env: Mapping[str, str], log_file: Path
    ) -> None:
        self.name = name
        self.command = tuple(command)
        self.env = dict(env)
        self.log_file = log_file
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return None if self._process is None else self._process.returncode

    async def start(self) -> None:
        """Spawn the process; the previous run's log is kept beside it as `<name>.log.1`."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))
        with self.log_file.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )

    async def wait(self) -> int:
        """Wait until the process ends; its exit code."""
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return await self._process.wait()

    async def stop(self, *, grace: float) -> Stopped | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL; None if it never started."""
        if self._process is None:
            return None
        if self._process.returncode is not None:
            return Stopped(self._process.returncode, killed=False)
        self._signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                code = await self._process.wait()
        except TimeoutError:
            self.kill()
            return Stopped(await self._process.wait(), killed=True)
        return Stopped(code, killed=False)

    def kill(self) -> None:
        """SIGKILL at once (a second Ctrl-C, or a child that would not stop)."""
        self._signal(signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(the log is empty)"
        tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(tail) or "(the log is empty)"

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)
