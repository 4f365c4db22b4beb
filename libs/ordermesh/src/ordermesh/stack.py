"""The local stack as a Python API: PostgreSQL, a broker check, every service, Prometheus.

    async with Stack(StackOptions(orders_grpc_port=50052)) as stack:
        ...  # every service answers its health checks here

`start()` raises `StackError` with a message fit for a terminal (and the service's
log tail); `stop()` is safe after a partial start and stops only what it started.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
from collections.abc import Sequence
from types import TracebackType

from ordermesh.broker_check import amqp_problem
from ordermesh.children import ChildProcess, describe_exit
from ordermesh.databases import Databases
from ordermesh.pgcheck import redact
from ordermesh.probes import port_open
from ordermesh.progress import Progress, Step, display_path
from ordermesh.services import service_specs
from ordermesh.stackspec import LOCALHOST, Endpoint, ServiceSpec, StackError, StackOptions

__all__ = ["Stack", "StackError", "StackOptions"]

POLL_SECONDS = 0.2
CHECK_TIMEOUT = 1.0
BROKER_HINT = (
    "To get one on Debian/Ubuntu: apt-get install rabbitmq-server && rabbitmq-server -detached; "
    "or point AMQP_URL at a running broker."
)


class Stack:
    """Starts the services of `specs` (default: all of them) and what they need."""

    def __init__(
        self,
        options: StackOptions,
        *,
        specs: Sequence[ServiceSpec] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.options = options
        self.specs = list(specs) if specs is not None else service_specs(options)
        self.progress = progress or Progress()
        self.databases = Databases(options, self.progress)
        self.broker_problem: str | None = None
        self.children: dict[str, ChildProcess] = {}
        self._lock_fd: int | None = None

    async def __aenter__(self) -> Stack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start everything and wait until every service passes its health checks."""
        self._take_lock()
        self._check_commands()
        await self._check_ports()
        await self.databases.prepare(self.specs)
        await self._check_broker()
        for spec in self.specs:
            await self._start_service(spec)

    async def stop(self) -> None:
        """Stop services in reverse start order, then the embedded PostgreSQL."""
        grace = {spec.name: spec.stop_timeout for spec in self.specs}
        for name, child in reversed(list(self.children.items())):
            await self._stop_child(child, grace=grace[name])
        self.children.clear()
        await self.databases.stop()
        self._release_lock()

    async def _stop_child(self, child: ChildProcess, *, grace: float) -> None:
        exited_before = child.returncode
        async with self.progress.step(f"Stopping {child.name}") as step:
            result = await child.stop(grace=grace)
            step.label = f"Stopped {child.name}"
            if result is None:
                step.detail = "never started"
            elif exited_before is not None:
                step.detail = f"had already ended: {describe_exit(exited_before)}"
            elif result.killed:
                step.warning = f"no exit within {grace:g}s of SIGTERM: killed"
            else:
                step.detail = describe_exit(result.returncode)
                if result.returncode not in (0, -signal.SIGTERM):
                    step.warning = f"see {display_path(child.log_file)}"

    def kill(self) -> None:
        """SIGKILL every child at once (a second Ctrl-C while stopping)."""
        for child in self.children.values():
            child.kill()

    async def wait_for_exit(self) -> ChildProcess:
        """Wait until any service process ends on its own; that process."""
        waits = {asyncio.ensure_future(child.wait()): child for child in self.children.values()}
        if not waits:
            raise StackError("no service is running")
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return waits[done.pop()]

    def endpoints(self) -> list[Endpoint]:
        """What a developer connects to, service by service, then the shared parts."""
        found: list[Endpoint] = []
        for spec in self.specs:
            found += [Endpoint(f"{spec.name} {e.label}", e.value) for e in spec.endpoints]
            if spec.name in self.databases.urls:
                url = redact(self.databases.urls[spec.name])
                found.append(Endpoint(f"{spec.name} database", url))
            if spec.name in self.children:
                found.append(
                    Endpoint(f"{spec.name} log", display_path(self.children[spec.name].log_file))
                )
        if self.databases.postgres is not None:
            log = display_path(self.databases.postgres.log_file)
            found.append(Endpoint("PostgreSQL log", log))
        broker = "not running" if self.broker_problem else redact(self.options.amqp_url)
        found.append(Endpoint("RabbitMQ", broker))
        return found

    def _take_lock(self) -> None:
        """One `ordermesh up` per state directory: a second would stop the first's database."""
        state_dir = self.options.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StackError(
                f"another `ordermesh up` is running with state directory "
                f"{display_path(state_dir)}: stop it first, or pass a different --state-dir"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _check_commands(self) -> None:
        """Fail before anything starts when a program of the stack is not installed."""
        for spec in self.specs:
            program = spec.command[0]
            if shutil.which(program) is None:
                raise StackError(
                    f"{spec.name} cannot start: {program} is not installed (or not on PATH). "
                    f"{spec.install_hint}".strip()
                )

    async def _check_ports(self) -> None:
        for spec in self.specs:
            for port in spec.ports:
                if await port_open(LOCALHOST, port.number):
                    raise StackError(
                        f"port {port.number} ({port.purpose}) is already in use: stop what holds "
                        f"it, or choose another port with {port.flag}"
                    )

    async def _check_broker(self) -> None:
        url = self.options.amqp_url
        needed_by = [spec.name for spec in self.specs if spec.needs_broker]
        async with self.progress.step("RabbitMQ") as step:
            step.detail = redact(url)
            self.broker_problem = await amqp_problem(url)
            if self.broker_problem is not None and not needed_by:
                step.warning = (
                    f"No broker: {self.broker_problem}.\n"
                    f"No service of the stack needs it yet, so carrying on.\n{BROKER_HINT}"
                )
        if self.broker_problem is not None and needed_by:
            raise StackError(
                f"{', '.join(needed_by)} need(s) RabbitMQ at {redact(url)}: "
                f"{self.broker_problem}\n{BROKER_HINT}"
            )

    async def _start_service(self, spec: ServiceSpec) -> None:
        env = {**self.options.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        if spec.database is not None:
            env[spec.database.url_env] = self.databases.urls[spec.name]
        log_file = self.options.log_dir / f"{spec.name}.log"
        child = ChildProcess(spec.name, spec.command, env=env, log_file=log_file)
        async with self.progress.step(spec.name) as step:
            step.detail = f"log in {display_path(log_file)}"
            if spec.prepare is not None:
                spec.prepare()
            self.children[spec.name] = child
            await child.start()
            await self._wait_ready(spec, child, step)
            step.detail = ", ".join([*(e.value for e in spec.endpoints[:1]), f"pid {child.pid}"])

    async def _wait_ready(self, spec: ServiceSpec, child: ChildProcess, step: Step) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.start_timeout
        while True:
            if child.returncode is not None:
                step.detail = describe_exit(child.returncode)
                raise StackError(
                    f"{spec.name} ended during start-up ({describe_exit(child.returncode)}). "
                    f"Last lines of {display_path(child.log_file)}:\n{child.log_tail()}"
                )
            results = await asyncio.gather(*(c.problem(within=CHECK_TIMEOUT) for c in spec.checks))
            problems = [p for p in results if p is not None]
            if not problems:
                return
            step.detail = f"waiting for {problems[0]}"
            if loop.time() >= deadline:
                step.detail = f"not ready after {self.options.start_timeout:g}s"
                raise StackError(
                    f"{spec.name} was not ready after {self.options.start_timeout:g}s "
                    f"({problems[0]}). Last lines of {display_path(child.log_file)}:\n"
                    f"{child.log_tail()}"
                )
            await asyncio.sleep(POLL_SECONDS)
