"""A private RabbitMQ node on its own ports and data directory, plus vhost helpers.

Used by tests that must stop, restart or crash a broker without touching the
machine's shared node (rabbit@localhost on 5672). The node runs the installed
RabbitMQ as a child process of the caller, with everything it writes (mnesia,
logs, config, cookie, pid file) under one directory, so a restart of the same
directory finds its durable queues and persistent messages again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psutil

from ordermesh.broker_check import PROTOCOL_HEADER

# The Debian package's real scripts. /usr/sbin/rabbitmq-server is a wrapper that, run
# as root, re-runs the script as the `rabbitmq` user via su: that user cannot create
# a data directory under a root-owned path (the node dies at boot with
# failed_to_create_feature_flags_file_directory, before it has a log file) and it
# starts in /var/lib/rabbitmq, where the crash dump then lands.
_DEBIAN_BIN = Path("/usr/lib/rabbitmq/bin")
START_SECONDS = 60.0
STOP_SECONDS = 60.0
# Both the node and its CLI use distribution on loopback only, as the shared node does
# (its rabbitmq-env.conf sets the same ERL_FLAGS).
_ERL_FLAGS = "-kernel inet_dist_use_interface {127,0,0,1}"
_BEAM = "beam.smp"


def amqp_url(vhost: str = "/", *, port: int = 5672) -> str:
    """The guest URL of `vhost` on 127.0.0.1 (guest may only log in over loopback)."""
    path = "" if vhost == "/" else quote(vhost, safe="")
    return f"amqp://guest:guest@127.0.0.1:{port}/{path}"


class LocalRabbit:
    """One RabbitMQ node with its data in `data_dir`, listening on 127.0.0.1:`amqp_port`.

    `dist_port` is the Erlang distribution port (picked once here when not given, and
    kept for restarts); the node registers as `node_name` with the shared epmd.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        amqp_port: int,
        dist_port: int | None = None,
        node_name: str | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.amqp_port = amqp_port
        self.dist_port = dist_port if dist_port is not None else _free_port()
        self.node_name = node_name or f"ordermesh-{amqp_port}@localhost"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def console_log(self) -> Path:
        """The node's stdout and stderr: its log, plus errors from before logging starts."""
        return self.data_dir / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "rabbitmq.pid"

    def url(self, vhost: str = "/") -> str:
        return amqp_url(vhost, port=self.amqp_port)

    def running(self) -> bool:
        return self.beam_pid() is not None

    def beam_pid(self) -> int | None:
        """The OS pid of the node's Erlang VM while it is alive, else None.

        RabbitMQ writes its pid file early in boot; before that the VM is found as the
        child of our `rabbitmq-server` script. A pid is only believed while it is a live
        beam.smp started with this node's environment, so a stale pid file left by kill()
        cannot point at some other process that got the same pid later.
        """
        candidates: list[int] = []
        with contextlib.suppress(OSError, ValueError):
            candidates.append(int(self.pid_file.read_text().strip()))
        if self._process is not None and self._process.poll() is None:
            try:
                children = psutil.Process(self._process.pid).children()
            except psutil.NoSuchProcess:
                children = []
            candidates.extend(child.pid for child in children)
        for pid in candidates:
            if self._is_our_beam(pid):
                return pid
        return None

    def _is_our_beam(self, pid: int) -> bool:
        try:
            process = psutil.Process(pid)
            return (
                process.name() == _BEAM
                and process.status() != psutil.STATUS_ZOMBIE
                and process.environ().get("RABBITMQ_PID_FILE") == str(self.pid_file)
            )
        except psutil.Error:  # gone, or another user's process
            return False

    def start(self) -> None:
        """Boot the node and wait until it answers the AMQP handshake (a no-op if up)."""
        if self.running():
            return
        if _port_open(self.amqp_port):
            # The readiness probe would otherwise mistake that listener for this node.
            raise RuntimeError(f"127.0.0.1:{self.amqp_port} is already in use")
        self._reap()
        self._write_files()
        with self.console_log.open("ab") as console:
            console.write(f"--- ordermesh: starting {self.node_name} ---\n".encode())
            console.flush()
            # Not detached and not in a session of its own: the script in the foreground
            # forwards SIGTERM/SIGINT to the node, so a Ctrl-C at the terminal that runs
            # the tests stops this node too instead of leaving it behind.
            self._process = subprocess.Popen(  # noqa: S603 - fixed script, our arguments
                [str(_bin_dir() / "rabbitmq-server")],
                env=self._env(),
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while not _amqp_answers(self.amqp_port):
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(
                    f"RabbitMQ node {self.node_name} exited (code {code}) during boot; "
                    f"its output:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"RabbitMQ node {self.node_name} did not accept AMQP connections within "
                    f"{START_SECONDS:g}s; its output:\n{self._log_tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop cleanly and wait until the VM has exited and the port is closed.

        SIGTERM to the VM is RabbitMQ's own graceful shutdown (the same path as
        `rabbitmqctl stop`), without needing the CLI and its cookie.
        """
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Crash the node: SIGKILL of its Erlang VM, then wait until the port is closed."""
        self._signal(signal.SIGKILL)

    def rabbitmqctl(self, *args: str) -> str:
        """Run `rabbitmqctl -n <this node> ARGS` with this node's cookie; its stdout."""
        command = [str(_bin_dir() / "rabbitmqctl"), "-n", self.node_name, "-q", *args]
        return _run(command, env=self._env())

    def _signal(self, signum: signal.Signals) -> None:
        pid = self.beam_pid()
        if pid is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                beam = psutil.Process(pid)
                beam.send_signal(signum)
                beam.wait(STOP_SECONDS)
        elif self._process is not None and self._process.poll() is None:
            # Too early in boot for a VM: the script's trap stops whatever it started.
            self._process.terminate()
        self._reap()
        _wait_until(lambda: not _port_open(self.amqp_port), f"port {self.amqp_port} to close")

    def _reap(self) -> None:
        """Wait for our `rabbitmq-server` script, which ends once its VM has ended."""
        if self._process is None:
            return
        try:
            self._process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _write_files(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Our own listener only: the shared /etc/rabbitmq/rabbitmq.conf binds 5672.
        (self.data_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
        )
        (self.data_dir / "enabled_plugins").write_text("[].\n")
        # Read in place of /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
        (self.data_dir / "rabbitmq-env.conf").write_text("# see ordermesh.localbroker\n")
        cookie = self.data_dir / ".erlang.cookie"
        if not cookie.exists():
            # Erlang refuses a cookie file that others can read.
            fd = os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(16).upper())

    def _env(self) -> dict[str, str]:
        """The environment of the node and of its CLI: everything under data_dir.

        HOME is data_dir so that both find the same .erlang.cookie; inherited RABBITMQ_*
        variables are dropped so nothing points back at the shared node.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        data = self.data_dir
        env.update(
            HOME=str(data),
            ERL_FLAGS=_ERL_FLAGS,
            ERL_EPMD_ADDRESS="127.0.0.1",
            ERL_CRASH_DUMP=str(data / "erl_crash.dump"),
            RABBITMQ_CONF_ENV_FILE=str(data / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(data / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(data / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(data / "enabled_plugins"),
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(data / "mnesia"),
            RABBITMQ_LOG_BASE=str(data / "log"),
            RABBITMQ_PID_FILE=str(self.pid_file),
        )
        return env

    def _log_tail(self, lines: int = 40) -> str:
        if not self.console_log.exists():
            return "(no output)"
        return "\n".join(self.console_log.read_text(errors="replace").splitlines()[-lines:])


def create_vhost(name: str, node: str | LocalRabbit | None = None) -> None:
    """Add vhost `name` and give guest full rights on it, for a test of its own.

    `node` is a node name for the machine's rabbitmqctl (None: its default node, the
    shared one) or a LocalRabbit, whose own CLI and cookie are used.
    """
    _ctl(node, "add_vhost", name)
    _ctl(node, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def delete_vhost(name: str, node: str | LocalRabbit | None = None) -> None:
    """Delete vhost `name` with everything in it; its connections are closed."""
    _ctl(node, "delete_vhost", name)


def _ctl(node: str | LocalRabbit | None, *args: str) -> str:
    if isinstance(node, LocalRabbit):
        return node.rabbitmqctl(*args)
    # The wrapper on PATH: as root it runs the CLI as `rabbitmq`, whose HOME holds the
    # shared node's cookie.
    command = [shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"]
    if node is not None:
        command += ["-n", node]
    return _run([*command, "-q", *args])


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(  # noqa: S603 - rabbitmqctl with our arguments
        command, env=env, capture_output=True, text=True, timeout=STOP_SECONDS, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit code {result.returncode}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


def _bin_dir() -> Path:
    """Where the real rabbitmq-server and rabbitmqctl scripts are (not the su wrappers)."""
    if _DEBIAN_BIN.is_dir():
        return _DEBIAN_BIN
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise RuntimeError("RabbitMQ is not installed (no rabbitmq-server on PATH)")
    return Path(found).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _amqp_answers(port: int) -> bool:
    """Does 127.0.0.1:`port` reply to the AMQP 0-9-1 header with a method frame?

    RabbitMQ opens its listeners last in boot, so this is when clients can connect; the
    reply (not just a TCP connect) shows the port is served by a broker.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(PROTOCOL_HEADER)
            reply = b""
            while len(reply) < 11:
                chunk = sock.recv(11 - len(reply))
                if not chunk:
                    return False
                reply += chunk
    except OSError:
        return False
    # frame type 1 (method) on channel 0
    return reply.startswith(b"\x01\x00\x00")


def _wait_until(condition: Callable[[], bool], what: str, seconds: float = STOP_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seconds:g}s waiting for {what}")
        time.sleep(0.1)
