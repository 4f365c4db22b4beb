"""wrk as a child process, with the shared Lua scripts in bench/lua.

The scripts end a run with one `wrk-summary {json}` line (bench/lua/summary.lua). A run
runs while the test watches Prometheus; `stop` ends it early with SIGINT, after which
wrk still prints its report.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parents[2] / "bench" / "lua"
GET_ORDER = LUA_DIR / "get_order.lua"
CREATE_ORDER = LUA_DIR / "create_order.lua"
THREAD_DONE = "wrk-thread-done"
_SUMMARY = "wrk-summary "


def wrk_binary() -> str:
    found = shutil.which("wrk")
    # Missing tools fail the test rather than skip it: `make test` installs them.
    assert found, "wrk is not on PATH: run scripts/ensure-prereqs.sh (as root: apt-get install wrk)"
    return found


@dataclass(frozen=True)
class Summary:
    requests: int
    non_2xx_3xx: int
    socket_errors: int
    seconds: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f}s ({self.per_second:.0f}/s), "
            f"{self.non_2xx_3xx} non-2xx/3xx, {self.socket_errors} socket errors, "
            f"p99 {self.p99_ms:.0f} ms"
        )


@asynccontextmanager
async def running(
    script: Path,
    url: str,
    *,
    connections: int,
    seconds: float,
    env: Mapping[str, str],
    threads: int = 1,
) -> AsyncIterator[Run]:
    """wrk with `script` against `url` for at most `seconds`; killed if the block fails."""
    process = await asyncio.create_subprocess_exec(
        *(wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"),
        *("--timeout", "10s", "-s", str(script), url),
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        yield Run(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class Run:
    """One wrk process; its output is read as it comes, so its markers can be watched."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for raw in self._process.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def count(self, marker: str) -> int:
        return sum(line.strip() == marker for line in self.lines)

    def ended(self) -> bool:
        return self._reader.done()

    async def stop(self) -> Summary:
        """SIGINT (wrk's Ctrl-C ends the run and reports it), then the summary."""
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
        return await self.finish(seconds=15)

    async def finish(self, *, seconds: float) -> Summary:
        """Wait for the end of the run; its summary."""
        try:
            async with asyncio.timeout(seconds):
                await self._process.wait()
                await self._reader
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise AssertionError(f"wrk did not end within {seconds:g}s:\n{self.text()}") from None
        return self.summary()

    def text(self) -> str:
        return "".join(self.lines)

    def summary(self) -> Summary:
        found = [line for line in self.lines if line.startswith(_SUMMARY)]
        problem = f"wrk exited {self._process.returncode}:\n{self.text()}"
        assert self._process.returncode == 0, problem
        assert found, f"no summary line: {problem}"
        data = json.loads(found[-1][len(_SUMMARY) :])
        return Summary(
            requests=data["requests"],
            non_2xx_3xx=data["non_2xx_3xx"],
            socket_errors=sum(
                data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
            ),
            seconds=data["duration_us"] / 1e6,
            p99_ms=data["p99_us"] / 1e3,
        )
