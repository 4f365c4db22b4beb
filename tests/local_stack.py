"""`ordermesh up` as the tests run it: on free ports, with short drains and no given URLs."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from servicekit.testing.net import free_ports

ORDERMESH = Path(sys.executable).with_name("ordermesh")
READY_LINE = "Press Ctrl-C to stop"
# Database and broker URLs the stack would take from the environment instead of its own.
GIVEN_URLS = ("ORDERS_DATABASE_URL", "NOTIFY_DATABASE_URL", "AMQP_URL")


@dataclass(frozen=True)
class StackPorts:
    pg: int
    grpc: int
    orders_http: int
    notify_http: int
    gateway: int
    prometheus: int

    @classmethod
    def free(cls) -> StackPorts:
        return cls(*free_ports(6))


def up_command(state_dir: Path, ports: StackPorts) -> list[str]:
    assert ORDERMESH.exists(), f"{ORDERMESH} is missing: run `make test`, which installs it"
    return [
        *(str(ORDERMESH), "up", "--state-dir", str(state_dir), "--pg-port", str(ports.pg)),
        *("--orders-grpc-port", str(ports.grpc), "--orders-http-port", str(ports.orders_http)),
        *("--notify-http-port", str(ports.notify_http)),
        *("--gateway-http-port", str(ports.gateway), "--prometheus-port", str(ports.prometheus)),
    ]


def up_environment(**env: str) -> dict[str, str]:
    """This process's environment without given URLs, with 1 s drains, then `env`."""
    environ = {k: v for k, v in os.environ.items() if k not in GIVEN_URLS}
    drains = {f"{name}_DRAIN_SECONDS": "1" for name in ("ORDERS", "NOTIFY", "GATEWAY")}
    return {**environ, **drains, **env}


def pid_of(output: str, service: str) -> int:
    """The pid `ordermesh up` printed for `service`."""
    match = re.search(rf"{service} \(.*pid (\d+)\)", output)
    assert match, f"no pid for {service} in:\n{output}"
    return int(match.group(1))
