"""Start an implementation's processes and wait until each answers /healthz.

    with Implementation.of("sync", front_port=8090, back_port=8091,
                           database_url=..., notify_url=..., log_dir=Path("logs")) as api:
        ...  # api.url is the public API; wrk it

For a harness or a test: the exact commands (`argv`), one log file per tier, and a stop
that sends SIGTERM and waits (SIGKILL only after STOP_SECONDS). Start several with
`start()` first and `wait_ready()` after, and they come up side by side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
Name = Literal["sync", "default_async", "ceiling"]
NAMES: Final[tuple[Name, ...]] = ("sync", "default_async", "ceiling")
START_SECONDS: Final = 30.0
STOP_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class Tier:
    name: str  # e.g. sync.back
    port: int
    argv: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def tiers(
    name: Name,
    *,
    front_port: int,
    back_port: int | None = None,
    database_url: str | None = None,
    notify_url: str | None = None,
    ceiling_args: tuple[str, ...] = (),
    python: str = sys.executable,
) -> list[Tier]:
    """The processes of `name`, back tier first."""
    if name == "ceiling":
        argv = [python, "-m", "bench.baselines.ceiling", f"--port={front_port}", *ceiling_args]
        return [Tier(name, front_port, argv)]
    if back_port is None or database_url is None or notify_url is None:
        raise ValueError(f"{name} needs back_port, database_url and notify_url")
    back = Tier(
        f"{name}.back",
        back_port,
        [
            python,
            "-m",
            f"bench.baselines.{name}.back",
            f"--port={back_port}",
            f"--database-url={database_url}",
        ],
    )
    front = Tier(
        f"{name}.front",
        front_port,
        [
            python,
            "-m",
            f"bench.baselines.{name}.front",
            f"--port={front_port}",
            f"--back-url={back.url}",
            f"--notify-url={notify_url}",
        ],
    )
    return [back, front]


@dataclass
class Implementation:
    """One implementation's running processes (started, not yet ready, or stopped)."""

    tiers: list[Tier]
    log_dir: Path
    environ: Mapping[str, str] | None = None  # GATEWAY_JWT_* for the front tier
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        name: Name,
        *,
        log_dir: Path,
        environ: Mapping[str, str] | None = None,
        front_port: int,
        back_port: int | None = None,
        database_url: str | None = None,
        notify_url: str | None = None,
        ceiling_args: tuple[str, ...] = (),
    ) -> Implementation:
        found = tiers(
            name,
            front_port=front_port,
            back_port=back_port,
            database_url=database_url,
            notify_url=notify_url,
            ceiling_args=ceiling_args,
        )
        return cls(found, log_dir, environ)

    @property
    def url(self) -> str:
        """The public API (the front tier, or the ceiling)."""
        return self.tiers[-1].url

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, **(self.environ or {}), "PYTHONUNBUFFERED": "1"}
        for tier in self.tiers:
            with (self.log_dir / f"{tier.name}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
                        tier.argv, cwd=REPO_ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT
                    )
                )

    def wait_ready(self, seconds: float = START_SECONDS) -> None:
        """Return once every tier answers /healthz with 200; raise with its log if not."""
        deadline = time.monotonic() + seconds
        for tier, process in zip(self.tiers, self.processes, strict=True):
            while not _healthy(tier.url):
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (self.log_dir / f"{tier.name}.log").read_text(errors="replace")
                    state = f"exited {process.returncode}" if process.poll() is not None else "up"
                    raise RuntimeError(f"{tier.name} did not get ready ({state}):\n{log[-3000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Implementation:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:  # noqa: S310 (http)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False
