"""The observability tax: gateway GET /v1/orders/{id} with tracing and metrics on vs off.

Starts two local stacks side by side (`ordermesh up` on free ports, each with its own
state directory and RabbitMQ vhost) and measures them in turn, round after round, so
drift on a shared machine hits both alike:

- **on**: the defaults (parent-based sampling at 10%, RED metrics), exporting OTLP/HTTP
  to a receiver in this process, as a real deployment exports to a collector;
- **off**: `OTEL_SDK_DISABLED=true` and `*_REQUEST_METRICS=false` (no tracing
  middleware or interceptors at all, no request histograms).

    .venv/bin/python bench/observability_tax.py \
        --output bench/results/$(date +%F)/observability-tax.json

The rate limit is lifted in both (one token is one subject). wrk is the load generator.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ordermesh.localbroker import amqp_url, create_vhost, delete_vhost
from servicekit.testing.otlp import OtlpReceiver

sys.path.insert(0, str(Path(__file__).parents[1]))  # run as a script from anywhere
from bench.gateway_http import create_order, run_wrk, summarise, token, wait_until_idle
from tests.local_stack import READY_LINE, StackPorts, up_command, up_environment

UNLIMITED = {"GATEWAY_RATE_LIMIT_PER_SECOND": "1000000", "GATEWAY_RATE_LIMIT_BURST": "1000000"}
OFF = {
    "OTEL_SDK_DISABLED": "true",
    **{f"{service}_REQUEST_METRICS": "false" for service in ("GATEWAY", "ORDERS", "NOTIFY")},
}


@dataclass(frozen=True)
class Stack:
    name: str
    url: str


@contextlib.contextmanager
def stack(name: str, env: dict[str, str], state_dir: Path) -> Iterator[Stack]:
    """`ordermesh up` with `env`, on free ports (as the tests run it), until the block ends."""
    ports = StackPorts.free()
    vhost = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    create_vhost(vhost)
    # Each stack gets only the tracing variables it is given.
    environ = {k: v for k, v in up_environment().items() if not k.startswith("OTEL_")}
    environ |= {**UNLIMITED, **env, "AMQP_URL": amqp_url(vhost), "PYTHONUNBUFFERED": "1"}
    log_file = state_dir / "up.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 (our own command)
            up_command(state_dir, ports), env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while READY_LINE not in (output := log_file.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"stack {name} did not start:\n{output}")
            time.sleep(0.2)
        yield Stack(name, f"http://127.0.0.1:{ports.gateway}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        delete_vhost(vhost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    bearer = token(dict(os.environ))
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    with (
        tempfile.TemporaryDirectory(prefix="ordermesh-tax-") as tmp,
        OtlpReceiver() as receiver,
    ):
        on_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        (Path(tmp) / "on").mkdir()
        (Path(tmp) / "off").mkdir()
        with (
            stack("on", on_env, Path(tmp) / "on") as on,
            stack("off", OFF, Path(tmp) / "off") as off,
        ):
            targets = {
                s.name: f"{s.url}/v1/orders/{create_order(s.url, bearer)}" for s in (on, off)
            }
            for target in targets.values():
                run_wrk(target, bearer, args.connections, 2)  # warm-up
            for _ in range(args.rounds):
                for stack_ in (on, off):
                    wait_until_idle(stack_.url)
                    runs[stack_.name].append(
                        run_wrk(targets[stack_.name], bearer, args.connections, args.duration)
                    )
        spans = len(receiver.spans())

    rps = {
        name: summarise([r["requests_per_second"] for r in rounds]) for name, rounds in runs.items()
    }
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "endpoint": "GET /v1/orders/{id}",
        "connections": args.connections,
        "duration_seconds": args.duration,
        "rounds": args.rounds,
        "requests_per_second": rps,
        "p99_ms": {name: summarise([r["p99_ms"] for r in rounds]) for name, rounds in runs.items()},
        "non_2xx": {name: sum(r["non_2xx"] for r in rounds) for name, rounds in runs.items()},
        "loss_percent": 100 * (1 - rps["on"]["median"] / rps["off"]["median"]),
        "spans_exported_by_on": spans,
        "raw": runs,
    }
    print(_table(result))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


def _table(result: dict[str, Any]) -> str:
    def cell(s: dict[str, float], fmt: str) -> str:
        return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"

    lines = ["| observability | requests/s | p99 ms | non-2xx |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {cell(result['requests_per_second'][name], '{:,.0f}')} "
        f"| {cell(result['p99_ms'][name], '{:.1f}')} | {result['non_2xx'][name]:.0f} |"
        for name in ("on", "off")
    ]
    lines.append(
        f"\nloss with observability on: {result['loss_percent']:.1f}% of the off median "
        f"({result['spans_exported_by_on']} spans exported)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
