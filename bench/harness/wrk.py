"""wrk runs: the command, and its `wrk-summary` line (bench/lua/summary.lua) parsed.

Statuses are counted by the scripts, so Ordermesh's designed 503 sheds (the gateway's
`max_in_flight`) are told apart from other non-2xx answers and from socket errors
(connect, read, write, timeout). wrk's own requests/s counts every answer, sheds too;
`ok_per_second` counts 2xx only and is what the tables and targets call throughput.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

SUMMARY: Final = "wrk-summary "
SHED: Final = 503
SOCKET_ERRORS: Final = ("connect_errors", "read_errors", "write_errors", "timeouts")


class WrkFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def shed(self) -> int:
        return self.statuses.get(SHED, 0)

    @property
    def other_non_2xx(self) -> int:
        return self.requests - self.ok - self.shed

    @property
    def errors(self) -> int:
        """Everything that is neither 2xx nor a designed shed (a run with no answer at
        all counts as one error: its requests never even timed out within the run)."""
        return self.other_non_2xx + sum(self.socket_errors.values()) + (self.requests == 0)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        data |= {
            "requests_per_second": self.per_second,
            "ok_per_second": self.ok_per_second,
            "shed": self.shed,
            "other_non_2xx": self.other_non_2xx,
            "errors": self.errors,
        }
        return data


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkFailed("wrk is not on PATH: run scripts/ensure-prereqs.sh (apt-get install wrk)")
    return found


def threads_for(connections: int) -> int:
    """One wrk thread per CPU this process may use (after pinning: the shared ones)."""
    return max(1, min(connections, len(os.sched_getaffinity(0))))


def run(
    script: Path,
    url: str,
    *,
    connections: int,
    seconds: float,
    env: Mapping[str, str],
    timeout: str = "10s",
) -> WrkRun:
    command = [
        binary(),
        f"-t{threads_for(connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        f"--timeout={timeout}",
        f"--script={script}",
        url,
    ]
    try:
        done = subprocess.run(  # noqa: S603 (wrk with our own arguments)
            command,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkFailed(f"wrk did not end: {' '.join(command)}") from exc
    if done.returncode != 0:
        raise WrkFailed(f"wrk exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return parse(done.stdout)


def parse(output: str) -> WrkRun:
    lines = [line for line in output.splitlines() if line.startswith(SUMMARY)]
    if not lines:
        raise WrkFailed(f"no {SUMMARY.strip()} line in wrk's output:\n{output}")
    data = json.loads(lines[-1][len(SUMMARY) :])
    requests = int(data["requests"])
    if "statuses" in data:
        statuses = {int(k): int(v) for k, v in data["statuses"].items()}
    else:  # a script that does not count: wrk knows only "not 2xx/3xx"
        statuses = {200: requests - int(data["non_2xx_3xx"]), 0: int(data["non_2xx_3xx"])}
    return WrkRun(
        requests=requests,
        seconds=int(data["duration_us"]) / 1e6,
        statuses=statuses,
        socket_errors={k: int(data[k]) for k in SOCKET_ERRORS},
        p50_ms=int(data["p50_us"]) / 1e3,
        p90_ms=int(data["p90_us"]) / 1e3,
        p99_ms=int(data["p99_us"]) / 1e3,
        max_ms=int(data["max_us"]) / 1e3,
    )
